//! `revoke-access` (HTTP POST, operators): end a grant before it expires, with the same rules as the
//! timer — only what uc-access added, nothing another active grant still needs.

use axum::Json;
use serde::Serialize;

use crate::contract::fields::{FieldError, Fields};
use crate::databricks::Deadline;
use crate::error::ApiError;
use crate::functions::answer::rfc3339;
use crate::functions::http::{Accepted, RevokeAccess};
use crate::ledger::GrantId;
use crate::usecases::expire::revoke_now;

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

pub async fn handle(accepted: Accepted<RevokeAccess>) -> Result<Json<RevokeAnswer>, ApiError> {
    let services = &accepted.services;
    let fields = Fields::parse(&accepted.body, &FIELDS)?;
    let raw = fields.str("grantId")?;
    let id = GrantId::parse(raw).map_err(|_| {
        ApiError::from(FieldError::new(
            "grantId",
            "must be a grant id (a GUID) from a grant answer",
        ))
    })?;
    let provisioning = services.provisioning()?;
    let record = revoke_now(
        &provisioning.context,
        id,
        Deadline::after(services.time_budget),
    )
    .await?;
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
