//! `resolve-principal` (HTTP POST, operators and the Power Automate connector): an Entra object id, a user
//! name, an application id or a group becomes the account-level Databricks principal, with its status.

use axum::Json;
use serde::Serialize;

use crate::contract::principal;
use crate::databricks::{Deadline, DirectoryEntry};
use crate::domain::{PrincipalKind, PrincipalStatus};
use crate::error::ApiError;
use crate::functions::http::{Accepted, ResolvePrincipal};

/// The answer: the principal as Unity Catalog spells it in grants.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub principal: String,
    pub kind: PrincipalKind,
    pub status: PrincipalStatus,
    pub databricks_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl From<DirectoryEntry> for Answer {
    fn from(e: DirectoryEntry) -> Self {
        Self {
            principal: e.principal.uc_name().to_owned(),
            kind: e.principal.kind(),
            status: e.status,
            databricks_id: e.id,
            external_id: e.external_id,
            display_name: e.display_name,
        }
    }
}

pub async fn handle(accepted: Accepted<ResolvePrincipal>) -> Result<Json<Answer>, ApiError> {
    let services = &accepted.services;
    let query = principal::parse_body(&accepted.body)?;
    let provisioning = services.provisioning()?;
    let workspace = services.default_workspace()?;
    let deadline = Deadline::after(services.time_budget);
    let entry = provisioning
        .context
        .resolver
        .resolve(&query, &workspace.host, deadline)
        .await?;
    tracing::info!(caller = accepted.caller.kind(), query = %query, principal = entry.principal.uc_name(), "principal resolved");
    Ok(Json(entry.into()))
}
