//! `list-grants` (HTTP GET, operators): the ledger's grants, filtered by principal, securable, workspace
//! or state — `?principal=alice@contoso.com&state=active`.

use axum::Json;
use axum::extract::Query;
use serde::{Deserialize, Serialize};

use crate::contract::fields::FieldError;
use crate::domain::{ApplicationId, Principal, Securable, SecurableType};
use crate::error::ApiError;
use crate::functions::http::{Accepted, ListGrants};
use crate::ledger::{GrantRecord, GrantState, ListFilter};

/// Most grants returned in one answer.
pub const MAX_RESULTS: usize = 500;

/// The query parameters [`ListQuery`] accepts (the connector test checks they agree).
pub const QUERY_PARAMETERS: [&str; 4] = ["principal", "securable", "workspace", "state"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// A user name, a group display name, or a service principal's application id.
    principal: Option<String>,
    /// `catalog`, `catalog.schema` or `catalog.schema.table`.
    securable: Option<String>,
    workspace: Option<String>,
    state: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ListAnswer {
    pub grants: Vec<GrantRecord>,
    pub truncated: bool,
}

fn invalid(field: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::from(FieldError::new(field, problem))
}

fn filter(q: ListQuery) -> Result<ListFilter, ApiError> {
    let principal = q
        .principal
        .map(|raw| {
            if raw.contains('@') {
                Principal::user(&raw).map_err(|e| invalid("principal", e))
            } else if let Ok(app) = ApplicationId::parse(&raw) {
                Ok(Principal::service_principal(app))
            } else {
                Principal::group(&raw).map_err(|e| invalid("principal", e))
            }
        })
        .transpose()?;
    let securable = q
        .securable
        .map(|raw| {
            let kind = match raw.split('.').count() {
                1 => SecurableType::Catalog,
                2 => SecurableType::Schema,
                _ => SecurableType::Table,
            };
            Securable::parse(kind, &raw).map_err(|e| invalid("securable", e))
        })
        .transpose()?;
    let state = q
        .state
        .map(|raw| {
            GrantState::ALL
                .into_iter()
                .find(|s| s.as_str().eq_ignore_ascii_case(&raw))
                .ok_or_else(|| {
                    invalid(
                        "state",
                        "is not one of pending, active, revoking, revoked, failed",
                    )
                })
        })
        .transpose()?;
    Ok(ListFilter {
        principal,
        workspace: q.workspace,
        securable,
        state,
    })
}

pub async fn handle(
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
    accepted: Accepted<ListGrants>,
) -> Result<Json<ListAnswer>, ApiError> {
    let services = &accepted.services;
    let Query(query) = query.map_err(|e| ApiError::invalid_field("query", e.body_text()))?;
    let filter = filter(query)?;
    let provisioning = services.provisioning()?;
    let mut grants: Vec<GrantRecord> = provisioning
        .context
        .ledger
        .list(&filter)
        .await?
        .into_iter()
        .map(|v| v.record)
        .collect();
    let truncated = grants.len() > MAX_RESULTS;
    grants.truncate(MAX_RESULTS);
    Ok(Json(ListAnswer { grants, truncated }))
}
