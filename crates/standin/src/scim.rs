//! SCIM 2.0 reads: account Users, Groups and ServicePrincipals, and the workspace view that adds local groups.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ScimError;
use super::model::Model;
use super::scim_filter;
use super::state::StandInState;

const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

fn user_json(model: &Model, index: usize) -> Value {
    let u = &model.users[index];
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": u.id,
        "userName": u.user_name,
        "displayName": u.display_name,
        "active": u.active,
        "externalId": u.external_id,
        "emails": [{"value": u.user_name, "type": "work", "primary": true}],
    })
}

fn group_json(model: &Model, index: usize) -> Value {
    let g = &model.groups[index];
    let members: Vec<Value> = g
        .member_ids
        .iter()
        .map(|id| {
            let (display, kind) = model
                .users
                .iter()
                .find(|u| &u.id == id)
                .map(|u| (u.display_name.clone(), "Users"))
                .or_else(|| {
                    model
                        .service_principals
                        .iter()
                        .find(|sp| &sp.id == id)
                        .map(|sp| (sp.display_name.clone(), "ServicePrincipals"))
                })
                .or_else(|| {
                    model
                        .groups
                        .iter()
                        .find(|g| &g.id == id)
                        .map(|g| (g.display_name.clone(), "Groups"))
                })
                .unwrap_or_default();
            json!({"value": id, "display": display, "$ref": format!("{kind}/{id}")})
        })
        .collect();
    let mut group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": g.id,
        "displayName": g.display_name,
        "members": members,
        "meta": {"resourceType": if g.workspace_local { "WorkspaceGroup" } else { "Group" }},
    });
    if let Some(ext) = &g.external_id {
        group["externalId"] = json!(ext);
    }
    group
}

fn service_principal_json(model: &Model, index: usize) -> Value {
    let sp = &model.service_principals[index];
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"],
        "id": sp.id,
        "applicationId": sp.application_id,
        "displayName": sp.display_name,
        "active": sp.active,
        "externalId": sp.external_id,
    })
}

/// Every resource of a kind, as JSON. `workspace` adds workspace-local groups.
fn resources(model: &Model, kind: &str, workspace: bool) -> Option<Vec<Value>> {
    match kind {
        "Users" => Some(
            (0..model.users.len())
                .map(|i| user_json(model, i))
                .collect(),
        ),
        "Groups" => Some(
            (0..model.groups.len())
                .filter(|&i| workspace || !model.groups[i].workspace_local)
                .map(|i| group_json(model, i))
                .collect(),
        ),
        "ServicePrincipals" => Some(
            (0..model.service_principals.len())
                .map(|i| service_principal_json(model, i))
                .collect(),
        ),
        _ => None,
    }
}

/// [`resources`], built once per state of the identities: building a thousand users' JSON for every
/// lookup (and dropping it) was most of the stand-in's CPU in the benchmarks.
fn cached_resources<'m>(model: &'m mut Model, kind: &str, workspace: bool) -> Option<&'m [Value]> {
    let kind: &'static str = match kind {
        "Users" => "Users",
        "Groups" => "Groups",
        "ServicePrincipals" => "ServicePrincipals",
        _ => return None,
    };
    let now = model.identities_state();
    if model.scim_cache.built_for != Some(now) {
        model.scim_cache.resources.clear();
        model.scim_cache.built_for = Some(now);
    }
    if !model.scim_cache.resources.contains_key(&(kind, workspace)) {
        let built = resources(model, kind, workspace)?;
        model.scim_cache.resources.insert((kind, workspace), built);
    }
    model
        .scim_cache
        .resources
        .get(&(kind, workspace))
        .map(Vec::as_slice)
}

fn list(
    state: &StandInState,
    kind: &str,
    workspace: bool,
    query: &HashMap<String, String>,
) -> Response {
    let filter = match query.get("filter").filter(|f| !f.trim().is_empty()) {
        Some(text) => match scim_filter::parse(text) {
            Ok(filter) => Some(filter),
            Err(why) => {
                return ScimError::invalid_filter(format!("INVALID_FILTER: {why}")).into_response();
            }
        },
        None => None,
    };
    let refuses_external_id = !workspace && !state.model().seed.account_external_id_filter;
    if refuses_external_id && filter.as_ref().is_some_and(|f| f.mentions("externalId")) {
        return ScimError::invalid_filter(
            "INVALID_FILTER: filtering on externalId is not supported".to_owned(),
        )
        .into_response();
    }
    let parse_number = |name: &str| -> Result<Option<usize>, ScimError> {
        match query.get(name) {
            None => Ok(None),
            Some(raw) => raw
                .parse::<i64>()
                .map(|n| Some(n.max(0) as usize))
                .map_err(|_| ScimError::invalid_value(format!("Invalid {name}: {raw}"))),
        }
    };
    let start_index = match parse_number("startIndex") {
        Ok(n) => n.unwrap_or(1).max(1),
        Err(error) => return error.into_response(),
    };
    let count = match parse_number("count") {
        Ok(n) => n,
        Err(error) => return error.into_response(),
    };
    let mut model = state.model();
    let Some(all) = cached_resources(&mut model, kind, workspace) else {
        return ScimError::not_found(format!("Unknown resource type {kind}")).into_response();
    };
    let matching: Vec<&Value> = all
        .iter()
        .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r)))
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(start_index - 1)
        .take(count.unwrap_or(usize::MAX))
        .cloned()
        .collect();
    let mut body = json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": page.len(),
    });
    if !page.is_empty() {
        body["Resources"] = Value::Array(page);
    }
    Json(body).into_response()
}

fn get_one(state: &StandInState, kind: &str, workspace: bool, id: &str) -> Response {
    let mut model = state.model();
    let found = cached_resources(&mut model, kind, workspace)
        .unwrap_or_default()
        .iter()
        .find(|r| r["id"] == id)
        .cloned();
    match found {
        Some(resource) => Json(resource).into_response(),
        None => ScimError::not_found(format!("{kind} with id {id} not found.")).into_response(),
    }
}

fn wrong_account(state: &StandInState, account_id: &str) -> Option<Response> {
    (state.model().seed.account_id != account_id)
        .then(|| ScimError::not_found(format!("Account {account_id} not found.")).into_response())
}

/// `GET /api/2.0/accounts/{account_id}/scim/v2/{kind}`.
pub async fn account_list(
    State(state): State<StandInState>,
    Path((account_id, kind)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    wrong_account(&state, &account_id).unwrap_or_else(|| list(&state, &kind, false, &query))
}

/// `GET /api/2.0/accounts/{account_id}/scim/v2/{kind}/{id}`.
pub async fn account_get(
    State(state): State<StandInState>,
    Path((account_id, kind, id)): Path<(String, String, String)>,
) -> Response {
    wrong_account(&state, &account_id).unwrap_or_else(|| get_one(&state, &kind, false, &id))
}

/// `GET /api/2.0/preview/scim/v2/{kind}`.
pub async fn workspace_list(
    State(state): State<StandInState>,
    Path(kind): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    list(&state, &kind, true, &query)
}

/// `GET /api/2.0/preview/scim/v2/{kind}/{id}`.
pub async fn workspace_get(
    State(state): State<StandInState>,
    Path((kind, id)): Path<(String, String)>,
) -> Response {
    get_one(&state, &kind, true, &id)
}

/// `GET /api/2.0/preview/scim/v2/Me`: the caller as a user (service principals answer with their SCIM form).
pub async fn workspace_me(
    State(state): State<StandInState>,
    Extension(Caller(caller)): Extension<Caller>,
) -> Response {
    let model = state.model();
    if let Some(i) = model
        .users
        .iter()
        .position(|u| u.user_name.eq_ignore_ascii_case(&caller))
    {
        return Json(user_json(&model, i)).into_response();
    }
    match model
        .service_principals
        .iter()
        .position(|sp| sp.application_id == caller)
    {
        Some(i) => Json(service_principal_json(&model, i)).into_response(),
        None => ScimError::not_found("Caller not found.").into_response(),
    }
}
