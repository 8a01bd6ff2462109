//! `resolve-principal` (HTTP POST, operators and the Power Automate connector): an Entra object id, a user
//! name, an application id or a group becomes the account-level Databricks principal, with its status.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::databricks::{Deadline, DirectoryEntry};
use crate::domain::{ApplicationId, EntraObjectId, PrincipalKind, PrincipalQuery, PrincipalStatus};
use crate::error::ApiError;
use crate::functions::RESOLVE_PRINCIPAL;
use crate::functions::errors::resolve_error;
use crate::functions::http::accept;

/// The request body: exactly one way of naming the principal.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRequest {
    object_id: Option<String>,
    user_name: Option<String>,
    application_id: Option<String>,
    group_name: Option<String>,
    group_external_id: Option<String>,
    /// Tried when an object id cannot be found by external id (only with `objectId`).
    fallback_user_name: Option<String>,
}

/// Parses the body into a query; errors name the field.
pub fn parse(body: &[u8]) -> Result<PrincipalQuery, ApiError> {
    let raw: RawRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::malformed_body(format!("the body is not the expected JSON object: {e}"))
    })?;
    let given = [
        raw.object_id.is_some(),
        raw.user_name.is_some(),
        raw.application_id.is_some(),
        raw.group_name.is_some(),
        raw.group_external_id.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given != 1 {
        return Err(ApiError::invalid_field(
            "objectId|userName|applicationId|groupName|groupExternalId",
            "give exactly one of these fields",
        ));
    }
    if raw.fallback_user_name.is_some() && raw.object_id.is_none() {
        return Err(ApiError::invalid_field(
            "fallbackUserName",
            "only applies together with objectId",
        ));
    }
    if let Some(id) = raw.object_id {
        let id = EntraObjectId::parse(&id).map_err(|e| ApiError::invalid_field("objectId", e))?;
        let fallback_user_name = raw
            .fallback_user_name
            .map(|n| match PrincipalQuery::user_name(&n) {
                Ok(PrincipalQuery::UserName { user_name }) => Ok(user_name),
                Ok(_) => unreachable!("user_name builds a UserName query"),
                Err(e) => Err(ApiError::invalid_field("fallbackUserName", e)),
            })
            .transpose()?;
        return Ok(PrincipalQuery::ObjectId {
            id,
            fallback_user_name,
        });
    }
    if let Some(name) = raw.user_name {
        return PrincipalQuery::user_name(&name)
            .map_err(|e| ApiError::invalid_field("userName", e));
    }
    if let Some(id) = raw.application_id {
        let id =
            ApplicationId::parse(&id).map_err(|e| ApiError::invalid_field("applicationId", e))?;
        return Ok(PrincipalQuery::ApplicationId { id });
    }
    if let Some(name) = raw.group_name {
        return PrincipalQuery::group_name(&name)
            .map_err(|e| ApiError::invalid_field("groupName", e));
    }
    let id = raw.group_external_id.unwrap_or_default();
    let id =
        EntraObjectId::parse(&id).map_err(|e| ApiError::invalid_field("groupExternalId", e))?;
    Ok(PrincipalQuery::GroupExternalId { id })
}

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

pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Answer>, ApiError> {
    let services = &state.services;
    let accepted = accept(
        &services.auth,
        RESOLVE_PRINCIPAL,
        &headers,
        body,
        services.max_body_bytes,
    )
    .await?;
    let query = parse(&accepted.body)?;
    let databricks = services.databricks()?;
    let workspace = databricks.default_workspace()?;
    let deadline = Deadline::after(services.time_budget);
    let entry = databricks
        .resolver
        .resolve(&query, workspace, deadline)
        .await
        .map_err(|e| resolve_error(&e))?;
    tracing::info!(caller = accepted.caller.kind(), query = %query, principal = entry.principal.uc_name(), "principal resolved");
    Ok(Json(entry.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_way_of_naming_the_principal_is_accepted() {
        assert!(parse(br#"{"userName":"Alice@Contoso.com"}"#).is_ok());
        let err = parse(br#"{"userName":"a@b.com","groupName":"x"}"#).unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert!(parse(b"{}").is_err());
    }

    #[test]
    fn each_field_is_checked_and_named_in_the_error() {
        let err = parse(br#"{"objectId":"not-a-guid"}"#).unwrap_err();
        assert!(err.message.starts_with("objectId:"), "{}", err.message);
        let err = parse(br#"{"applicationId":"x"}"#).unwrap_err();
        assert!(err.message.starts_with("applicationId:"));
        let err = parse(br#"{"userName":"alice"}"#).unwrap_err();
        assert!(err.message.starts_with("userName:"));
        let err = parse(br#"{"groupName":"x","fallbackUserName":"a@b.com"}"#).unwrap_err();
        assert!(err.message.starts_with("fallbackUserName:"));
    }

    #[test]
    fn unknown_fields_and_non_json_are_refused() {
        let err = parse(br#"{"userNmae":"a@b.com"}"#).unwrap_err();
        assert!(err.message.contains("userNmae"), "{}", err.message);
        assert_eq!(parse(b"\xff\xfe").unwrap_err().code, "malformed_body");
    }
}
