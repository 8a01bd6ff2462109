//! `revoke-access` (HTTP POST, operators): end a grant before it expires, with the same rules as the
//! timer — only what uc-access added, nothing another active grant still needs.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;

use crate::app::AppState;
use crate::contract::fields::{FieldError, Fields};
use crate::databricks::Deadline;
use crate::error::ApiError;
use crate::functions::REVOKE_ACCESS;
use crate::functions::answer::rfc3339;
use crate::functions::errors::{body_error, ledger_error};
use crate::functions::http::accept;
use crate::ledger::GrantId;
use crate::usecases::expire::{RevokeError, revoke_now};

/// The fields of a `revoke-access` body.
pub const FIELDS: [&str; 1] = ["grantId"];

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeAnswer {
    pub status: &'static str,
    pub grant_id: String,
    pub principal: String,
    pub securable: String,
    pub revoked_at: Option<String>,
    /// When access is certain to have ended: storage credentials handed out before the revoke stay
    /// valid until they expire.
    pub access_ends_by: Option<String>,
    pub message: String,
}

pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RevokeAnswer>, ApiError> {
    let services = &state.services;
    let accepted = accept(services, REVOKE_ACCESS, &headers, body).await?;
    let fields = Fields::parse(&accepted.body, &FIELDS).map_err(|e| body_error(&e))?;
    let raw = fields.str("grantId").map_err(|e| body_error(&e.into()))?;
    let id = GrantId::parse(raw).map_err(|_| {
        body_error(
            &FieldError::new("grantId", "must be a grant id (a GUID) from a grant answer").into(),
        )
    })?;
    let provisioning = services.provisioning()?;
    let record = revoke_now(
        &provisioning.context,
        id,
        Deadline::after(services.time_budget),
    )
    .await
    .map_err(|e| match e {
        RevokeError::NotFound(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "grant_not_found", e.to_string())
        }
        RevokeError::NotRevocable { .. } => {
            ApiError::new(StatusCode::CONFLICT, "grant_not_revocable", e.to_string())
        }
        // Databricks' own text and the operator detail go to the log, not to the caller's run history.
        RevokeError::Failed(_) => ApiError::unavailable(
            "revoke_failed",
            "the revoke could not be completed now; the grant is marked failed and the timer retries it. Quote the requestId to the platform team",
        )
        .with_retry_after(60)
        .with_detail(e.to_string()),
        RevokeError::Ledger(l) => ledger_error(&l),
    })?;
    tracing::info!(event = "grant.revoked_early", caller = accepted.caller.kind(), grant_id = %record.id, "grant revoked before expiry");
    let ends = record.access_ends_by.map(rfc3339);
    Ok(Json(RevokeAnswer {
        status: "revoked",
        grant_id: record.id.to_string(),
        principal: record.principal.uc_name().to_owned(),
        securable: record.securable.full_name(),
        revoked_at: record.revoked_at.map(rfc3339),
        message: format!(
            "Revoked what uc-access added for {} on {}; access is certain to have ended by {}.",
            record.principal.uc_name(),
            record.securable,
            ends.clone().unwrap_or_default()
        ),
        access_ends_by: ends,
    }))
}
