//! Delta Sharing: shares with their data objects, TOKEN recipients with activation links and token
//! expiry, share permissions, and the errors the real service answers with (`SHARE_ALREADY_EXISTS`,
//! `RECIPIENT_ALREADY_EXISTS`, `RESOURCE_ALREADY_EXISTS`, `SHARE_DOES_NOT_EXIST`,
//! `RECIPIENT_DOES_NOT_EXIST`). Shapes follow databricks-sdk's `sharing` service.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use super::model::Model;
use super::state::StandInState;

/// One data object in a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub name: String,
    pub data_object_type: String,
    pub added_at: i64,
    pub added_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredShare {
    pub name: String,
    pub comment: Option<String>,
    pub owner: String,
    pub created_at: i64,
    pub objects: Vec<StoredObject>,
    /// Recipient name → privileges.
    pub permissions: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub id: String,
    /// The secret part of the activation link; `None` once the credential was downloaded.
    pub activation_token: Option<String>,
    pub expiration_time: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecipient {
    pub name: String,
    pub comment: Option<String>,
    pub owner: String,
    pub authentication_type: String,
    pub properties: BTreeMap<String, String>,
    pub expiration_time: Option<i64>,
    pub activated: bool,
    pub created_at: i64,
    pub tokens: Vec<StoredToken>,
    /// Where activation links point (the workspace host the recipient was created through).
    pub base_url: String,
}

/// Every share and recipient of the metastore.
#[derive(Debug, Clone, Default)]
pub struct SharingWorld {
    pub shares: BTreeMap<String, StoredShare>,
    pub recipients: BTreeMap<String, StoredRecipient>,
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn random_token() -> String {
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn malformed(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "MALFORMED_REQUEST",
        format!("Could not parse request object: {why}"),
    )
}

fn share_missing(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "SHARE_DOES_NOT_EXIST",
        format!("Share '{name}' does not exist."),
    )
}

fn recipient_missing(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "RECIPIENT_DOES_NOT_EXIST",
        format!("Recipient '{name}' does not exist."),
    )
}

fn denied(what: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", what.to_owned())
}

/// Names of shares and recipients: Unity Catalog rules (no `.`, space, `/`, control characters).
fn check_name(kind: &str, name: &str) -> Result<String, ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid_parameter(format!(
            "Create{kind} Missing required field: name"
        )));
    }
    if name
        .chars()
        .any(|c| c == '.' || c == ' ' || c == '/' || c.is_control())
    {
        return Err(ApiError::invalid_parameter(format!(
            "Create{kind} {name} is not a valid name"
        )));
    }
    Ok(name.to_lowercase())
}

fn share_json(share: &StoredShare, with_objects: bool) -> Value {
    let mut v = json!({
        "name": share.name,
        "owner": share.owner,
        "created_at": share.created_at,
        "created_by": share.owner,
    });
    if let Some(c) = &share.comment {
        v["comment"] = json!(c);
    }
    if with_objects {
        v["objects"] = share
            .objects
            .iter()
            .map(|o| {
                json!({
                    "name": o.name,
                    "data_object_type": o.data_object_type,
                    "added_at": o.added_at,
                    "added_by": o.added_by,
                    "status": "ACTIVE",
                })
            })
            .collect();
    }
    v
}

/// A recipient as the API shows it (for tests and the state dump).
pub fn recipient_view(r: &StoredRecipient) -> Value {
    recipient_json(r)
}

fn recipient_json(r: &StoredRecipient) -> Value {
    let link = |t: &StoredToken| {
        t.activation_token.as_ref().map_or(String::new(), |secret| {
            format!("{}/delta_sharing/retrieve_config.html?{secret}", r.base_url)
        })
    };
    let tokens: Vec<Value> = r
        .tokens
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "activation_url": link(t),
                "expiration_time": t.expiration_time,
                "created_at": t.created_at,
                "created_by": r.owner,
            })
        })
        .collect();
    let mut v = json!({
        "name": r.name,
        "owner": r.owner,
        "authentication_type": r.authentication_type,
        "activated": r.activated,
        "activation_url": r.tokens.last().map(link).unwrap_or_default(),
        "created_at": r.created_at,
        "created_by": r.owner,
        "properties_kvpairs": {"properties": r.properties},
        "tokens": tokens,
    });
    if let Some(c) = &r.comment {
        v["comment"] = json!(c);
    }
    if let Some(t) = r.expiration_time {
        v["expiration_time"] = json!(t);
    }
    v
}

fn permissions_json(share: &StoredShare) -> Value {
    let assignments: Vec<Value> = share
        .permissions
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(principal, privileges)| json!({"principal": principal, "privileges": privileges}))
        .collect();
    if assignments.is_empty() {
        json!({})
    } else {
        json!({"privilege_assignments": assignments})
    }
}

fn owns(model: &Model, caller: &str, owner: &str) -> bool {
    model.is_metastore_admin(caller)
        || model
            .identities_of(caller)
            .iter()
            .any(|n| n.eq_ignore_ascii_case(owner))
}

/// Whether `who` may read `table` (SELECT or ALL_PRIVILEGES on it or a parent, or may manage it).
fn can_read(model: &Model, who: &str, table: &str) -> bool {
    if model.may_manage(who, table) {
        return true;
    }
    let names = model.identities_of(who);
    model.lineage(table).iter().any(|s| {
        model
            .grants
            .get(&(s.kind.path_type().to_string(), s.full_name.clone()))
            .is_some_and(|a| {
                names.iter().any(|n| {
                    a.get(n)
                        .is_some_and(|p| p.contains("SELECT") || p.contains("ALL_PRIVILEGES"))
                })
            })
    })
}

#[derive(Debug, Deserialize)]
struct CreateShare {
    #[serde(default)]
    name: String,
    comment: Option<String>,
}

/// `POST /api/2.1/unity-catalog/shares`.
pub async fn create_share(
    State(state): State<StandInState>,
    Extension(Caller(caller)): Extension<Caller>,
    body: Bytes,
) -> Response {
    let parsed: CreateShare = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return malformed(e).into_response(),
    };
    let name = match check_name("Share", &parsed.name) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let mut model = state.model();
    if model.sharing.shares.contains_key(&name) {
        return ApiError::new(
            StatusCode::CONFLICT,
            "SHARE_ALREADY_EXISTS",
            format!("Share {name} already exists"),
        )
        .into_response();
    }
    let share = StoredShare {
        name: name.clone(),
        comment: parsed.comment,
        owner: caller,
        created_at: now_ms(),
        objects: Vec::new(),
        permissions: BTreeMap::new(),
    };
    let answer = share_json(&share, false);
    model.sharing.shares.insert(name, share);
    Json(answer).into_response()
}

#[derive(Debug, Deserialize)]
pub struct GetShareQuery {
    include_shared_data: Option<bool>,
}

/// `GET /api/2.1/unity-catalog/shares/{name}`.
pub async fn get_share(
    State(state): State<StandInState>,
    Path(name): Path<String>,
    axum::extract::Query(query): axum::extract::Query<GetShareQuery>,
) -> Response {
    let model = state.model();
    match model.sharing.shares.get(&name.to_lowercase()) {
        Some(s) => Json(share_json(s, query.include_shared_data.unwrap_or(false))).into_response(),
        None => share_missing(&name).into_response(),
    }
}

/// `DELETE /api/2.1/unity-catalog/shares/{name}`: the owner only.
pub async fn delete_share(
    State(state): State<StandInState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    let mut model = state.model();
    let key = name.to_lowercase();
    let Some(share) = model.sharing.shares.get(&key) else {
        return share_missing(&name).into_response();
    };
    if !owns(&model, &caller, &share.owner) {
        return denied(&format!("User is not an owner of Share '{key}'.")).into_response();
    }
    model.sharing.shares.remove(&key);
    Json(json!({})).into_response()
}

#[derive(Debug, Deserialize)]
struct UpdateShare {
    #[serde(default)]
    updates: Vec<ObjectUpdate>,
    comment: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ObjectUpdate {
    #[serde(default)]
    action: String,
    data_object: Option<DataObject>,
}

#[derive(Debug, Deserialize)]
struct DataObject {
    #[serde(default)]
    name: String,
    data_object_type: Option<String>,
}

/// `PATCH /api/2.1/unity-catalog/shares/{name}`: comment and `updates` (ADD / REMOVE tables).
pub async fn update_share(
    State(state): State<StandInState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let parsed: UpdateShare = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return malformed(e).into_response(),
    };
    let mut model = state.model();
    let key = name.to_lowercase();
    let Some(share) = model.sharing.shares.get(&key).cloned() else {
        return share_missing(&name).into_response();
    };
    if !owns(&model, &caller, &share.owner) {
        return denied(&format!("User is not an owner of Share '{key}'.")).into_response();
    }
    let mut next = share;
    for update in parsed.updates {
        let Some(object) = update.data_object else {
            return ApiError::invalid_parameter("data_object must be specified.").into_response();
        };
        let table = object.name.to_lowercase();
        let kind = object
            .data_object_type
            .unwrap_or_else(|| "TABLE".to_owned())
            .to_uppercase();
        match update.action.to_uppercase().as_str() {
            "ADD" => {
                if model.securable("table", &table).is_none() {
                    let (code, message) = super::model::missing_securable(&model, "table", &table);
                    return ApiError::new(StatusCode::NOT_FOUND, code, message).into_response();
                }
                if next.objects.iter().any(|o| o.name == table) {
                    return ApiError::new(
                        StatusCode::CONFLICT,
                        "RESOURCE_ALREADY_EXISTS",
                        format!("Shared Table '{table}' already exists"),
                    )
                    .into_response();
                }
                // The share owner must be able to read what it shares.
                if !can_read(&model, &next.owner, &table) {
                    return denied(&format!("User does not have SELECT on Table '{table}'."))
                        .into_response();
                }
                next.objects.push(StoredObject {
                    name: table,
                    data_object_type: kind,
                    added_at: now_ms(),
                    added_by: caller.clone(),
                });
            }
            "REMOVE" => {
                let before = next.objects.len();
                next.objects.retain(|o| o.name != table);
                if next.objects.len() == before {
                    return ApiError::new(
                        StatusCode::NOT_FOUND,
                        "RESOURCE_DOES_NOT_EXIST",
                        format!("Shared Table '{table}' does not exist in share '{key}'."),
                    )
                    .into_response();
                }
            }
            other => {
                return ApiError::invalid_parameter(format!(
                    "Invalid action {other}; expected ADD, REMOVE or UPDATE."
                ))
                .into_response();
            }
        }
    }
    if let Some(comment) = parsed.comment {
        next.comment = Some(comment);
    }
    let answer = share_json(&next, true);
    model.sharing.shares.insert(key, next);
    Json(answer).into_response()
}

/// `GET /api/2.1/unity-catalog/shares/{name}/permissions`.
pub async fn get_share_permissions(
    State(state): State<StandInState>,
    Path(name): Path<String>,
) -> Response {
    let model = state.model();
    match model.sharing.shares.get(&name.to_lowercase()) {
        Some(s) => Json(permissions_json(s)).into_response(),
        None => share_missing(&name).into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct UpdatePermissions {
    #[serde(default)]
    changes: Vec<PermissionChange>,
}

#[derive(Debug, Deserialize)]
struct PermissionChange {
    #[serde(default)]
    principal: String,
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// `PATCH /api/2.1/unity-catalog/shares/{name}/permissions`: recipients gain or lose `SELECT`.
pub async fn update_share_permissions(
    State(state): State<StandInState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let parsed: UpdatePermissions = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return malformed(e).into_response(),
    };
    let mut model = state.model();
    let key = name.to_lowercase();
    let Some(share) = model.sharing.shares.get(&key).cloned() else {
        return share_missing(&name).into_response();
    };
    if !owns(&model, &caller, &share.owner) {
        return denied(&format!(
            "User is not an owner of Share '{key}' and lacks SET_SHARE_PERMISSION."
        ))
        .into_response();
    }
    let mut next = share;
    for change in parsed.changes {
        let recipient = change.principal.to_lowercase();
        if !model.sharing.recipients.contains_key(&recipient) {
            return recipient_missing(&change.principal).into_response();
        }
        for p in change.add.iter().chain(&change.remove) {
            if !p.eq_ignore_ascii_case("SELECT") {
                return ApiError::invalid_parameter(format!(
                    "Privilege {p} is not applicable to a share; only SELECT is."
                ))
                .into_response();
            }
        }
        if !change.add.is_empty() && !change.remove.is_empty() {
            return ApiError::invalid_parameter(format!(
                "Privilege SELECT cannot be both added and removed for principal {recipient}."
            ))
            .into_response();
        }
        let held = next.permissions.entry(recipient).or_default();
        if !change.add.is_empty() {
            held.insert("SELECT".to_owned());
        }
        if !change.remove.is_empty() {
            held.remove("SELECT");
        }
    }
    next.permissions.retain(|_, p| !p.is_empty());
    let answer = permissions_json(&next);
    model.sharing.shares.insert(key, next);
    Json(answer).into_response()
}

#[derive(Debug, Deserialize)]
struct CreateRecipient {
    #[serde(default)]
    name: String,
    authentication_type: Option<String>,
    comment: Option<String>,
    properties_kvpairs: Option<Properties>,
    expiration_time: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Properties {
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

/// `POST /api/2.1/unity-catalog/recipients`: TOKEN recipients get one token with an activation link.
pub async fn create_recipient(
    State(state): State<StandInState>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: CreateRecipient = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return malformed(e).into_response(),
    };
    let name = match check_name("Recipient", &parsed.name) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let auth = parsed
        .authentication_type
        .unwrap_or_default()
        .to_uppercase();
    if auth != "TOKEN" {
        return ApiError::invalid_parameter(format!(
            "authentication_type {auth:?} is not supported by this stand-in; use TOKEN"
        ))
        .into_response();
    }
    let mut model = state.model();
    if model.sharing.recipients.contains_key(&name) {
        return ApiError::new(
            StatusCode::CONFLICT,
            "RECIPIENT_ALREADY_EXISTS",
            format!("Recipient {name} already exists"),
        )
        .into_response();
    }
    let now = now_ms();
    let id = model.new_id();
    let recipient = StoredRecipient {
        name: name.clone(),
        comment: parsed.comment,
        owner: caller,
        authentication_type: auth,
        properties: parsed
            .properties_kvpairs
            .map(|p| p.properties)
            .unwrap_or_default(),
        expiration_time: parsed.expiration_time,
        activated: false,
        created_at: now,
        tokens: vec![StoredToken {
            id,
            activation_token: Some(random_token()),
            expiration_time: parsed.expiration_time,
            created_at: now,
        }],
        base_url: base_url(&headers),
    };
    let answer = recipient_json(&recipient);
    model.sharing.recipients.insert(name, recipient);
    Json(answer).into_response()
}

/// `GET /api/2.1/unity-catalog/recipients/{name}`.
pub async fn get_recipient(
    State(state): State<StandInState>,
    Path(name): Path<String>,
) -> Response {
    let model = state.model();
    match model.sharing.recipients.get(&name.to_lowercase()) {
        Some(r) => Json(recipient_json(r)).into_response(),
        None => recipient_missing(&name).into_response(),
    }
}

/// `DELETE /api/2.1/unity-catalog/recipients/{name}`: the owner only; its share permissions go too.
pub async fn delete_recipient(
    State(state): State<StandInState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    let mut model = state.model();
    let key = name.to_lowercase();
    let Some(r) = model.sharing.recipients.get(&key) else {
        return recipient_missing(&name).into_response();
    };
    if !owns(&model, &caller, &r.owner) {
        return denied(&format!("User is not an owner of Recipient '{key}'.")).into_response();
    }
    model.sharing.recipients.remove(&key);
    for share in model.sharing.shares.values_mut() {
        share.permissions.remove(&key);
    }
    Json(json!({})).into_response()
}

#[derive(Debug, Deserialize)]
struct UpdateRecipient {
    comment: Option<String>,
    expiration_time: Option<i64>,
    properties_kvpairs: Option<Properties>,
}

/// `PATCH /api/2.1/unity-catalog/recipients/{name}`: comment, properties (replaced whole), token
/// expiry (applied to the newest token too: unverified how the real service treats issued tokens).
pub async fn update_recipient(
    State(state): State<StandInState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let parsed: UpdateRecipient = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return malformed(e).into_response(),
    };
    let mut model = state.model();
    let key = name.to_lowercase();
    let Some(current) = model.sharing.recipients.get(&key).cloned() else {
        return recipient_missing(&name).into_response();
    };
    if !owns(&model, &caller, &current.owner) {
        return denied(&format!("User is not an owner of Recipient '{key}'.")).into_response();
    }
    let mut next = current;
    if let Some(c) = parsed.comment {
        next.comment = Some(c);
    }
    if let Some(p) = parsed.properties_kvpairs {
        next.properties = p.properties;
    }
    if let Some(t) = parsed.expiration_time {
        next.expiration_time = Some(t);
        if let Some(token) = next.tokens.last_mut() {
            token.expiration_time = Some(t);
        }
    }
    let answer = recipient_json(&next);
    model.sharing.recipients.insert(key, next);
    Json(answer).into_response()
}

#[derive(Debug, Deserialize)]
struct Rotate {
    existing_token_expire_in_seconds: Option<i64>,
}

/// `POST /api/2.1/unity-catalog/recipients/{name}/rotate-token`: a new token (new activation link);
/// the existing ones expire within `existing_token_expire_in_seconds` (never later than they would).
pub async fn rotate_token(
    State(state): State<StandInState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let parsed: Rotate = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return malformed(e).into_response(),
    };
    let Some(seconds) = parsed.existing_token_expire_in_seconds.filter(|s| *s >= 0) else {
        return ApiError::invalid_parameter(
            "existing_token_expire_in_seconds must be given and not negative.",
        )
        .into_response();
    };
    let mut model = state.model();
    let key = name.to_lowercase();
    let Some(current) = model.sharing.recipients.get(&key).cloned() else {
        return recipient_missing(&name).into_response();
    };
    if !owns(&model, &caller, &current.owner) {
        return denied(&format!("User is not an owner of Recipient '{key}'.")).into_response();
    }
    let now = now_ms();
    let live = current
        .tokens
        .iter()
        .filter(|t| t.expiration_time.is_none_or(|e| e > now))
        .count();
    if live >= 2 {
        return ApiError::invalid_parameter(format!(
            "There are already two active tokens for recipient {key}"
        ))
        .into_response();
    }
    let mut next = current;
    let cut = now.saturating_add(seconds.saturating_mul(1000));
    for token in &mut next.tokens {
        token.expiration_time = Some(token.expiration_time.map_or(cut, |e| e.min(cut)));
    }
    let id = model.new_id();
    next.tokens.push(StoredToken {
        id,
        activation_token: Some(random_token()),
        expiration_time: next.expiration_time,
        created_at: now,
    });
    next.activated = false;
    let answer = recipient_json(&next);
    model.sharing.recipients.insert(key, next);
    Json(answer).into_response()
}

/// `GET /api/2.1/unity-catalog/public/data_sharing_activation/{token}` (no authentication): the
/// credential, once. The link is used up; the recipient counts as activated.
pub async fn retrieve_token(
    State(state): State<StandInState>,
    headers: HeaderMap,
    Path(secret): Path<String>,
) -> Response {
    let mut model = state.model();
    let now = now_ms();
    let found = model.sharing.recipients.values_mut().find_map(|r| {
        // A token that has expired (a rotation expires the old ones) no longer activates.
        let token = r.tokens.iter_mut().find(|t| {
            t.activation_token.as_deref() == Some(secret.as_str())
                && t.expiration_time.is_none_or(|e| e > now)
        })?;
        token.activation_token = None;
        let expiration = token.expiration_time;
        r.activated = true;
        Some(expiration)
    });
    match found {
        Some(expiration) => Json(json!({
            "share_credentials_version": 1,
            "bearer_token": random_token(),
            "endpoint": format!("{}/api/2.0/delta-sharing/metastores/standin", base_url(&headers)),
            "expiration_time": expiration.map(|e| e.to_string()),
        }))
        .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            "The activation link is invalid, expired or was already used.",
        )
        .into_response(),
    }
}
