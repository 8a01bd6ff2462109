//! `purview-callback` (HTTP POST): called by a Purview workflow's HTTP action after approval.
//! Authenticate, parse, then provision (decide → resolve → plan → record → apply) and answer flat JSON.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::app::AppState;
use crate::contract::purview;
use crate::databricks::Deadline;
use crate::error::ApiError;
use crate::functions::PURVIEW_CALLBACK;
use crate::functions::answer::Answer;
use crate::functions::errors::{body_error, provision_error};
use crate::functions::http::accept;
use crate::usecases::provision::provision;

pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Answer>, ApiError> {
    let services = &state.services;
    let accepted = accept(
        &services.auth,
        PURVIEW_CALLBACK,
        &headers,
        body,
        services.max_body_bytes,
    )
    .await?;
    let request =
        purview::parse(&accepted.body, &services.workspaces).map_err(|e| body_error(&e))?;
    let provisioning = services.provisioning()?;
    let deadline = Deadline::after(services.time_budget);
    let outcome = provision(&provisioning.context, &request, deadline)
        .await
        .map_err(|e| provision_error(&e))?;
    let answer = Answer::from(outcome);
    tracing::info!(
        event = "grant.answered",
        caller = accepted.caller.kind(),
        status = answer.status,
        grant_id = answer.grant_id.as_deref().unwrap_or(""),
        principal = %answer.principal,
        securable = %answer.securable,
        "purview callback answered"
    );
    Ok(Json(answer))
}
