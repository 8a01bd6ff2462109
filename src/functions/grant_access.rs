//! `grant-access` (HTTP POST, operators and the Power Automate connector): a request naming the
//! principal and securable directly becomes a least-privilege grant with expiry, or with `dryRun` the
//! exact calls that would be made.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::app::AppState;
use crate::contract::grant_access;
use crate::databricks::Deadline;
use crate::domain::EntraObjectId;
use crate::error::ApiError;
use crate::functions::GRANT_ACCESS;
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
        GRANT_ACCESS,
        &headers,
        body,
        services.max_body_bytes,
    )
    .await?;
    // The operator's own object id stands as requester and approver, so policy refuses self-grants.
    let caller = accepted.caller.object_id().map(EntraObjectId::from).ok_or_else(|| {
        ApiError::unauthenticated(
            "missing_claim",
            "grant-access needs a caller identity with an object id (a user or a service principal token)",
        )
    })?;
    let request = grant_access::parse(&accepted.body, &services.workspaces, caller)
        .map_err(|e| body_error(&e))?;
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
        "grant-access answered"
    );
    Ok(Json(answer))
}
