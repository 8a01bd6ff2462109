//! Unity Catalog object reads by name: catalogs, schemas and tables (views included), with owners.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::model::missing_securable;
use super::state::StandInState;

fn describe(state: &StandInState, path_type: &str, full_name: &str) -> Response {
    let model = state.model();
    let name = full_name.to_lowercase();
    let Some(s) = model.securable(path_type, &name) else {
        let (code, message) = missing_securable(&model, path_type, &name);
        return ApiError::new(StatusCode::NOT_FOUND, code, message).into_response();
    };
    let parts: Vec<&str> = s.full_name.split('.').collect();
    let mut body = json!({
        "name": parts.last().copied().unwrap_or_default(),
        "full_name": s.full_name,
        "owner": s.owner,
        "metastore_id": model.seed.metastore_id,
    });
    if parts.len() >= 2 {
        body["catalog_name"] = json!(parts[0]);
    }
    if parts.len() == 3 {
        body["schema_name"] = json!(parts[1]);
        body["table_type"] = json!(s.kind.table_type());
        body["data_source_format"] = json!("DELTA");
    }
    Json(body).into_response()
}

/// `GET /api/2.1/unity-catalog/catalogs/{name}`.
pub async fn get_catalog(State(state): State<StandInState>, Path(name): Path<String>) -> Response {
    describe(&state, "catalog", &name)
}

/// `GET /api/2.1/unity-catalog/schemas/{full_name}`.
pub async fn get_schema(State(state): State<StandInState>, Path(name): Path<String>) -> Response {
    describe(&state, "schema", &name)
}

/// `GET /api/2.1/unity-catalog/tables/{full_name}`.
pub async fn get_table(State(state): State<StandInState>, Path(name): Path<String>) -> Response {
    describe(&state, "table", &name)
}
