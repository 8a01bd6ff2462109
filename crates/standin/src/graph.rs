//! A stand-in for the Microsoft Graph v1.0 calls uc-access makes (and the neighbouring ones a check
//! might), served under `/v1.0/` by the same stand-in process, recorded and faulted like the Databricks
//! APIs: users, service principals and groups by id (`$select` honoured), a group's transitive members
//! (paged with `@odata.nextLink`), and `checkMemberGroups`.
//!
//! Its answers follow Graph's documented shapes: `@odata.context`, camelCase properties, only the
//! default properties without `$select` (`accountEnabled` and `userType` are not among them), and errors
//! as `{"error":{"code","message","innerError"}}` with Graph's codes: `Request_ResourceNotFound` (404),
//! `InvalidAuthenticationToken` (401), `Authorization_RequestDenied` (403), `Request_BadRequest` (400).

use std::collections::{BTreeSet, HashSet};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::state::StandInState;

/// A user in the stand-in's Entra tenant.
#[derive(Debug, Clone, Serialize)]
pub struct GraphUser {
    pub id: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub display_name: String,
    pub account_enabled: bool,
    /// `Member` or `Guest`.
    pub user_type: String,
}

/// A service principal (an application's identity in the tenant).
#[derive(Debug, Clone, Serialize)]
pub struct GraphServicePrincipal {
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    pub account_enabled: bool,
}

/// A group; members are object ids of users, service principals or groups.
#[derive(Debug, Clone, Serialize)]
pub struct GraphGroup {
    pub id: String,
    pub display_name: String,
    pub member_ids: Vec<String>,
}

/// The Entra tenant Graph serves.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GraphTenant {
    pub users: Vec<GraphUser>,
    pub service_principals: Vec<GraphServicePrincipal>,
    pub groups: Vec<GraphGroup>,
    /// Collections (`users`, `servicePrincipals`, `groups`) the caller's token lacks the application
    /// permission for: reads of them answer 403 `Authorization_RequestDenied`, as Graph does.
    pub denied: Vec<String>,
}

/// The bearer token Graph accepts from uc-access in the stand-in (the local run's `GRAPH_TOKEN`).
pub const GRAPH_TOKEN: &str = "graph-standin-uc-access";

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {
        "code": code,
        "message": message.into(),
        "innerError": {"date": "2025-01-01T00:00:00", "request-id": "00000000-0000-4000-8000-000000000000"}
    }});
    (status, Json(body)).into_response()
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn denied() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// A Databricks-shaped rejection from the fault layer, in Graph's shape (`Retry-After` kept).
pub(crate) fn graph_fault(status: StatusCode, retry_after: Option<&HeaderValue>) -> Response {
    let code = match status {
        StatusCode::TOO_MANY_REQUESTS => "activityLimitReached",
        StatusCode::SERVICE_UNAVAILABLE => "serviceNotAvailable",
        _ => "generalException",
    };
    let mut response = error(
        status,
        code,
        "The request has been throttled or the service is unavailable.",
    );
    if let Some(v) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, v.clone());
    }
    response
}

/// Only the stand-in's Graph token passes; anything else is 401 as Graph answers it.
pub async fn graph_bearer(request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(GRAPH_TOKEN) => next.run(request).await,
        Some(_) => error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "IDX14100: JWT is not well formed.",
        ),
        None => error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        ),
    }
}

#[derive(Debug, Deserialize)]
pub struct Select {
    #[serde(rename = "$select")]
    select: Option<String>,
    #[serde(rename = "$top")]
    top: Option<usize>,
    #[serde(rename = "$skiptoken")]
    skip_token: Option<usize>,
}

fn context(headers: &HeaderMap, tail: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/v1.0/$metadata#{tail}")
}

/// `object` with only the `$select`ed properties (or `defaults` without `$select`); `id` always.
fn project(object: Value, select: Option<&str>, defaults: &[&str]) -> Map<String, Value> {
    let Value::Object(all) = object else {
        return Map::new();
    };
    let wanted: Vec<String> = match select {
        Some(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
        None => defaults.iter().map(|p| (*p).to_owned()).collect(),
    };
    let mut out = Map::new();
    for key in wanted.iter().chain(std::iter::once(&"id".to_owned())) {
        // Graph's property names are case-insensitive in `$select`.
        if let Some((k, v)) = all.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn user_json(u: &GraphUser) -> Value {
    json!({
        "id": u.id, "userPrincipalName": u.user_principal_name, "mail": u.mail,
        "displayName": u.display_name, "accountEnabled": u.account_enabled, "userType": u.user_type,
        "businessPhones": [], "givenName": null, "surname": null, "jobTitle": null,
        "mobilePhone": null, "officeLocation": null, "preferredLanguage": null,
    })
}

fn sp_json(sp: &GraphServicePrincipal) -> Value {
    json!({"id": sp.id, "appId": sp.app_id, "displayName": sp.display_name,
        "accountEnabled": sp.account_enabled, "servicePrincipalType": "Application"})
}

fn group_json(g: &GraphGroup) -> Value {
    json!({"id": g.id, "displayName": g.display_name, "securityEnabled": true, "mailEnabled": false,
        "groupTypes": []})
}

const USER_DEFAULTS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

fn answer(
    headers: &HeaderMap,
    set: &str,
    select: Option<&str>,
    mut body: Map<String, Value>,
) -> Response {
    let tail = match select {
        Some(s) => format!("{set}({s})/$entity"),
        None => format!("{set}/$entity"),
    };
    body.insert(
        "@odata.context".into(),
        Value::String(context(headers, &tail)),
    );
    Json(Value::Object(body)).into_response()
}

fn refused(state: &StandInState, collection: &str) -> bool {
    state
        .model()
        .seed
        .graph
        .denied
        .iter()
        .any(|d| d == collection)
}

/// `GET /v1.0/users/{id | userPrincipalName}`.
pub async fn get_user(
    State(state): State<StandInState>,
    Path(id): Path<String>,
    Query(q): Query<Select>,
    headers: HeaderMap,
) -> Response {
    if refused(&state, "users") {
        return denied();
    }
    let found = state
        .model()
        .seed
        .graph
        .users
        .iter()
        .find(|u| u.id.eq_ignore_ascii_case(&id) || u.user_principal_name.eq_ignore_ascii_case(&id))
        .map(user_json);
    match found {
        Some(u) => answer(
            &headers,
            "users",
            q.select.as_deref(),
            project(u, q.select.as_deref(), USER_DEFAULTS),
        ),
        None => not_found(&id),
    }
}

/// `GET /v1.0/servicePrincipals/{id}`.
pub async fn get_service_principal(
    State(state): State<StandInState>,
    Path(id): Path<String>,
    Query(q): Query<Select>,
    headers: HeaderMap,
) -> Response {
    if refused(&state, "servicePrincipals") {
        return denied();
    }
    let found = state
        .model()
        .seed
        .graph
        .service_principals
        .iter()
        .find(|sp| sp.id.eq_ignore_ascii_case(&id))
        .map(sp_json);
    match found {
        Some(sp) => {
            let all = [
                "id",
                "appId",
                "displayName",
                "accountEnabled",
                "servicePrincipalType",
            ];
            answer(
                &headers,
                "servicePrincipals",
                q.select.as_deref(),
                project(sp, q.select.as_deref(), &all),
            )
        }
        None => not_found(&id),
    }
}

/// `GET /v1.0/groups/{id}`.
pub async fn get_group(
    State(state): State<StandInState>,
    Path(id): Path<String>,
    Query(q): Query<Select>,
    headers: HeaderMap,
) -> Response {
    if refused(&state, "groups") {
        return denied();
    }
    let found = state
        .model()
        .seed
        .graph
        .groups
        .iter()
        .find(|g| g.id.eq_ignore_ascii_case(&id))
        .map(group_json);
    match found {
        Some(g) => {
            let all = [
                "id",
                "displayName",
                "securityEnabled",
                "mailEnabled",
                "groupTypes",
            ];
            answer(
                &headers,
                "groups",
                q.select.as_deref(),
                project(g, q.select.as_deref(), &all),
            )
        }
        None => not_found(&id),
    }
}

/// Every member of `group`, through nested groups (nested groups listed too), each once.
fn transitive_members(tenant: &super::seed::Seed, group: &str) -> Vec<String> {
    let graph = &tenant.graph;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut queue = vec![group.to_lowercase()];
    while let Some(id) = queue.pop() {
        let Some(g) = graph.groups.iter().find(|g| g.id.eq_ignore_ascii_case(&id)) else {
            continue;
        };
        for m in &g.member_ids {
            let m = m.to_lowercase();
            if seen.insert(m.clone()) {
                out.push(m.clone());
                queue.push(m);
            }
        }
    }
    out
}

fn member_json(tenant: &super::seed::Seed, id: &str) -> Option<Value> {
    let g = &tenant.graph;
    if let Some(u) = g.users.iter().find(|u| u.id.eq_ignore_ascii_case(id)) {
        let mut v = user_json(u);
        v["@odata.type"] = json!("#microsoft.graph.user");
        return Some(v);
    }
    if let Some(sp) = g
        .service_principals
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
    {
        let mut v = sp_json(sp);
        v["@odata.type"] = json!("#microsoft.graph.servicePrincipal");
        return Some(v);
    }
    g.groups
        .iter()
        .find(|x| x.id.eq_ignore_ascii_case(id))
        .map(|x| {
            let mut v = group_json(x);
            v["@odata.type"] = json!("#microsoft.graph.group");
            v
        })
}

/// `GET /v1.0/groups/{id}/transitiveMembers`: pages of `$top` (default 100, at most 999), the next one
/// linked by `@odata.nextLink` (an opaque `$skiptoken`).
pub async fn transitive_members_of(
    State(state): State<StandInState>,
    Path(id): Path<String>,
    Query(q): Query<Select>,
    headers: HeaderMap,
) -> Response {
    if refused(&state, "groups") {
        return denied();
    }
    let model = state.model();
    let seed = &model.seed;
    if !seed
        .graph
        .groups
        .iter()
        .any(|g| g.id.eq_ignore_ascii_case(&id))
    {
        return not_found(&id);
    }
    let top = q.top.unwrap_or(100);
    if !(1..=999).contains(&top) {
        return error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!("Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."),
        );
    }
    let members = transitive_members(seed, &id);
    let start = q.skip_token.unwrap_or(0).min(members.len());
    let end = (start + top).min(members.len());
    let value: Vec<Value> = members[start..end]
        .iter()
        .filter_map(|m| member_json(seed, m))
        .map(|m| {
            let mut out = project(m.clone(), q.select.as_deref(), &["displayName"]);
            out.insert("@odata.type".into(), m["@odata.type"].clone());
            Value::Object(out)
        })
        .collect();
    let mut body = json!({
        "@odata.context": context(&headers, "directoryObjects"),
        "value": value,
    });
    if end < members.len() {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let select = q
            .select
            .as_deref()
            .map(|s| format!("&$select={s}"))
            .unwrap_or_default();
        body["@odata.nextLink"] = json!(format!(
            "http://{host}/v1.0/groups/{id}/transitiveMembers?$top={top}&$skiptoken={end}{select}"
        ));
    }
    Json(body).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckMemberGroups {
    group_ids: Vec<String>,
}

/// `POST /v1.0/directoryObjects/{id}/checkMemberGroups` with `{"groupIds":[…]}` (at most 20): those of
/// the groups the object is a member of, directly or transitively.
pub async fn check_member_groups(
    State(state): State<StandInState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(asked) = serde_json::from_slice::<CheckMemberGroups>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid request body: groupIds is required.",
        );
    };
    if asked.group_ids.len() > 20 {
        return error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "The number of groupIds must not exceed 20.",
        );
    }
    if refused(&state, "groups") {
        return denied();
    }
    let model = state.model();
    let seed = &model.seed;
    let g = &seed.graph;
    let known = g.users.iter().any(|u| u.id.eq_ignore_ascii_case(&id))
        || g.service_principals
            .iter()
            .any(|s| s.id.eq_ignore_ascii_case(&id))
        || g.groups.iter().any(|x| x.id.eq_ignore_ascii_case(&id));
    if !known {
        return not_found(&id);
    }
    let member = id.to_lowercase();
    let mut value = BTreeSet::new();
    for group in &asked.group_ids {
        if transitive_members(seed, group).contains(&member) {
            value.insert(group.clone());
        }
    }
    Json(json!({
        "@odata.context": context(&headers, "Collection(Edm.String)"),
        "value": value.into_iter().collect::<Vec<_>>(),
    }))
    .into_response()
}
