//! Automatic Identity Management: resolve-by-external-id for users, groups and service principals.
//!
//! Resolving an identity that exists only in the Entra directory creates it in the account, as the real
//! API does; each creation is recorded so tests can see the side effect.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::ApiError;
use super::model::{CreatedIdentity, Model};
use super::seed::{EntraIdentity, SeedGroup, SeedServicePrincipal, SeedUser};
use super::state::StandInState;

/// `POST /api/2.0/identity/accounts/{account_id}/{kind}/resolve-by-external-id`.
pub async fn account_resolve(
    State(state): State<StandInState>,
    Path((account_id, kind)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if account_id != state.model().seed.account_id {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("Account {account_id} does not exist."),
        )
        .into_response();
    }
    resolve(&state, &kind, &body)
}

/// `POST /api/2.0/identity/{kind}/resolve-by-external-id` (the workspace proxy).
pub async fn workspace_resolve(
    State(state): State<StandInState>,
    Path(kind): Path<String>,
    body: Bytes,
) -> Response {
    resolve(&state, &kind, &body)
}

fn resolve(state: &StandInState, kind: &str, body: &[u8]) -> Response {
    let external_id = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("external_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|s| !s.trim().is_empty());
    let Some(external_id) = external_id else {
        return ApiError::invalid_parameter("external_id is required.").into_response();
    };
    let mut model = state.model();
    let answer = match kind {
        "users" => resolve_user(&mut model, &external_id),
        "groups" => resolve_group(&mut model, &external_id),
        "service-principals" => resolve_service_principal(&mut model, &external_id),
        _ => {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                "ENDPOINT_NOT_FOUND",
                format!("No API found for 'POST /identity/{kind}/resolve-by-external-id'"),
            )
            .into_response();
        }
    };
    match answer {
        Some(body) => Json(body).into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!(
                "No identity with external ID {external_id} was found in the identity provider."
            ),
        )
        .into_response(),
    }
}

fn same(a: Option<&String>, b: &str) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case(b))
}

/// Takes the Entra-only identity with this external id out of the directory, if there is one.
fn take_from_directory(
    model: &mut Model,
    pick: impl Fn(&EntraIdentity) -> Option<&String>,
    external_id: &str,
) -> Option<EntraIdentity> {
    let index = model
        .entra_directory
        .iter()
        .position(|e| same(pick(e), external_id))?;
    Some(model.entra_directory.remove(index))
}

fn resolve_user(model: &mut Model, external_id: &str) -> Option<Value> {
    if !model
        .users
        .iter()
        .any(|u| same(u.external_id.as_ref(), external_id))
    {
        let entry = take_from_directory(
            model,
            |e| match e {
                EntraIdentity::User { external_id, .. } => Some(external_id),
                _ => None,
            },
            external_id,
        )?;
        let EntraIdentity::User {
            external_id,
            user_name,
            display_name,
        } = entry
        else {
            return None;
        };
        let id = model.new_id();
        // Just-in-time users stay inactive until their first login.
        model.users.push(SeedUser {
            id: id.clone(),
            user_name: user_name.to_lowercase(),
            display_name,
            active: false,
            external_id: Some(external_id.clone()),
        });
        model.created.push(CreatedIdentity {
            kind: "user",
            id,
            external_id,
            name: user_name.to_lowercase(),
        });
    }
    let user = model
        .users
        .iter()
        .find(|u| same(u.external_id.as_ref(), external_id))?;
    let (given, family) = user
        .display_name
        .split_once(' ')
        .unwrap_or((user.display_name.as_str(), ""));
    Some(json!({"user": {
        "account_id": model.seed.account_id,
        "user_id": user.id,
        "external_id": user.external_id,
        "username": user.user_name,
        "full_name": {"given_name": given, "family_name": family},
        "account_user_status": if user.active { "ACTIVE" } else { "INACTIVE" },
    }}))
}

fn resolve_group(model: &mut Model, external_id: &str) -> Option<Value> {
    let exists = model
        .groups
        .iter()
        .any(|g| !g.workspace_local && same(g.external_id.as_ref(), external_id));
    if !exists {
        let entry = take_from_directory(
            model,
            |e| match e {
                EntraIdentity::Group { external_id, .. } => Some(external_id),
                _ => None,
            },
            external_id,
        )?;
        let EntraIdentity::Group {
            external_id,
            display_name,
        } = entry
        else {
            return None;
        };
        let id = model.new_id();
        model.groups.push(SeedGroup {
            id: id.clone(),
            display_name: display_name.clone(),
            external_id: Some(external_id.clone()),
            member_ids: Vec::new(),
            workspace_local: false,
        });
        model.created.push(CreatedIdentity {
            kind: "group",
            id,
            external_id,
            name: display_name,
        });
    }
    let group = model
        .groups
        .iter()
        .find(|g| !g.workspace_local && same(g.external_id.as_ref(), external_id))?;
    Some(json!({"group": {
        "account_id": model.seed.account_id,
        "group_id": group.id,
        "external_id": group.external_id,
        "group_name": group.display_name,
    }}))
}

fn resolve_service_principal(model: &mut Model, external_id: &str) -> Option<Value> {
    let exists = model
        .service_principals
        .iter()
        .any(|sp| same(sp.external_id.as_ref(), external_id));
    if !exists {
        let entry = take_from_directory(
            model,
            |e| match e {
                EntraIdentity::ServicePrincipal { external_id, .. } => Some(external_id),
                _ => None,
            },
            external_id,
        )?;
        let EntraIdentity::ServicePrincipal {
            external_id,
            application_id,
            display_name,
        } = entry
        else {
            return None;
        };
        let id = model.new_id();
        model.service_principals.push(SeedServicePrincipal {
            id: id.clone(),
            application_id: application_id.clone(),
            display_name,
            active: true,
            external_id: Some(external_id.clone()),
            client_secret: None,
        });
        model.created.push(CreatedIdentity {
            kind: "service_principal",
            id,
            external_id,
            name: application_id,
        });
    }
    let sp = model
        .service_principals
        .iter()
        .find(|sp| same(sp.external_id.as_ref(), external_id))?;
    Some(json!({"service_principal": {
        "account_id": model.seed.account_id,
        "service_principal_id": sp.id,
        "external_id": sp.external_id,
        "application_id": sp.application_id,
        "display_name": sp.display_name,
        "account_sp_status": if sp.active { "ACTIVE" } else { "INACTIVE" },
    }}))
}
