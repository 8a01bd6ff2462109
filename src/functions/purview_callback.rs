//! `purview-callback` (HTTP POST): called by a Purview workflow's HTTP action after approval.
//! Authenticate, parse, then provision (decide → resolve → plan → record → apply) and answer flat JSON.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::app::AppState;
use crate::contract::purview;
use crate::error::ApiError;
use crate::functions::PURVIEW_CALLBACK;
use crate::functions::answer::{Answer, provision_and_answer};
use crate::functions::errors::body_error;
use crate::functions::http::accept;

pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Answer>, ApiError> {
    let services = &state.services;
    let accepted = accept(services, PURVIEW_CALLBACK, &headers, body).await?;
    let request =
        purview::parse(&accepted.body, &services.workspaces).map_err(|e| body_error(&e))?;
    provision_and_answer(services, &accepted.caller, &request).await
}
