//! Unity Catalog permissions: get, update (PATCH) and effective permissions, with the real paging rules.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use super::model::{Assignments, Model, missing_securable};
use super::privileges::{self, NOT_IN_ALL_PRIVILEGES, SecurableKind};
use super::seed::SeedSecurable;
use super::state::StandInState;

/// Securable types the API knows; only catalogs, schemas and tables (and views) exist in the stand-in.
const KNOWN_TYPES: &[&str] = &[
    "catalog",
    "schema",
    "table",
    "volume",
    "function",
    "external_location",
    "storage_credential",
    "credential",
    "connection",
    "metastore",
    "share",
    "provider",
    "recipient",
    "clean_room",
];

#[derive(Debug, Deserialize)]
pub struct ReadQuery {
    principal: Option<String>,
    max_results: Option<i64>,
    page_token: Option<String>,
}

/// Finds the securable a path names, or answers the 400/404 the real API would.
fn locate(model: &Model, securable_type: &str, full_name: &str) -> Result<SeedSecurable, ApiError> {
    let path_type = securable_type.to_ascii_lowercase();
    if !KNOWN_TYPES.contains(&path_type.as_str()) {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid securable type {securable_type}."
        )));
    }
    let name = full_name.to_lowercase();
    if let Some(found) = model.securable(&path_type, &name) {
        return Ok(found.clone());
    }
    if !["catalog", "schema", "table"].contains(&path_type.as_str()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("{path_type} '{name}' does not exist."),
        ));
    }
    let (code, message) = missing_securable(model, &path_type, &name);
    Err(ApiError::new(StatusCode::NOT_FOUND, code, message))
}

fn encode_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_token(token: &str) -> Option<usize> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    text.strip_prefix("offset:")?.parse().ok()
}

/// One page of assignments (sorted by principal for stable paging, shuffled within the page like the
/// real API's arbitrary order) and the token of the next page.
fn paginate<K: Ord, T>(
    mut items: Vec<(K, T)>,
    query: &ReadQuery,
    server_page_size: usize,
    empty_first_page: bool,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let size = match (query.max_results, &query.page_token) {
        (None, None) => {
            let mut all: Vec<T> = items.into_iter().map(|(_, v)| v).collect();
            all.shuffle(&mut rand::rng());
            return Ok((all, None));
        }
        (Some(n), _) if n < 0 => {
            return Err(ApiError::invalid_parameter(
                "max_results must be greater than or equal to 0.",
            ));
        }
        (Some(n), _) if (1..150).contains(&n) => {
            return Err(ApiError::invalid_parameter(
                "max_results must be either 0 or greater than or equal to 150.",
            ));
        }
        (Some(0) | None, _) => server_page_size,
        (Some(n), _) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let offset = match &query.page_token {
        Some(token) => {
            decode_token(token).ok_or_else(|| ApiError::invalid_parameter("Invalid page_token."))?
        }
        None if empty_first_page => return Ok((Vec::new(), Some(encode_token(0)))),
        None => 0,
    };
    let total = items.len();
    let end = offset.saturating_add(size).min(total);
    let mut page: Vec<T> = items
        .into_iter()
        .skip(offset)
        .take(end.saturating_sub(offset))
        .map(|(_, v)| v)
        .collect();
    page.shuffle(&mut rand::rng());
    let next = (end < total).then(|| encode_token(end));
    Ok((page, next))
}

/// A permissions answer: the page (absent when empty, as the real API leaves it out) and the next token.
#[derive(Serialize)]
struct Page<T> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    privilege_assignments: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

fn answer<T: Serialize>(page: Vec<T>, next: Option<String>) -> Response {
    Json(Page {
        privilege_assignments: page,
        next_page_token: next,
    })
    .into_response()
}

fn principal_filter(model: &Model, query: &ReadQuery) -> Result<Option<String>, ApiError> {
    match &query.principal {
        None => Ok(None),
        Some(name) => model
            .canonical_principal(name)
            .map(Some)
            .ok_or_else(|| ApiError::principal_not_found(name)),
    }
}

/// One principal's direct privileges, borrowed from the model and serialised while it is locked (a
/// catalog with a thousand principals is answered on every `PATCH`).
#[derive(Serialize)]
struct AssignmentOut<'a> {
    principal: &'a str,
    privileges: Vec<&'a str>,
}

fn assignments_json<'a>(
    assignments: &'a Assignments,
    only: Option<&str>,
) -> Vec<(&'a str, AssignmentOut<'a>)> {
    assignments
        .iter()
        .filter(|(p, privs)| !privs.is_empty() && only.is_none_or(|o| o == p.as_str()))
        .map(|(p, privs)| {
            (
                p.as_str(),
                AssignmentOut {
                    principal: p,
                    privileges: privs.iter().map(String::as_str).collect(),
                },
            )
        })
        .collect()
}

/// `GET /api/2.1/unity-catalog/permissions/{securable_type}/{full_name}`.
pub async fn get_permissions(
    State(state): State<StandInState>,
    Path((securable_type, full_name)): Path<(String, String)>,
    Query(query): Query<ReadQuery>,
) -> Response {
    let model = state.model();
    let result = locate(&model, &securable_type, &full_name).and_then(|s| {
        let only = principal_filter(&model, &query)?;
        let key = (s.kind.path_type().to_string(), s.full_name.clone());
        let items = model
            .visible_grants()
            .get(&key)
            .map(|a| assignments_json(a, only.as_deref()))
            .unwrap_or_default();
        paginate(
            items,
            &query,
            model.seed.page_size,
            model.seed.empty_first_page,
        )
    });
    match result {
        Ok((page, next)) => answer(page, next),
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct UpdateBody {
    #[serde(default)]
    changes: Vec<Change>,
    /// Newer SDKs may ask for an empty answer.
    #[serde(default)]
    omit_permissions_in_response: bool,
}

#[derive(Debug, Deserialize)]
struct Change {
    #[serde(default)]
    principal: String,
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// A change whose principal and privileges passed validation.
struct Checked {
    principal: String,
    add: BTreeSet<String>,
    remove: BTreeSet<String>,
}

fn check_privileges(
    names: &[String],
    securable: &SeedSecurable,
) -> Result<BTreeSet<String>, ApiError> {
    let mut out = BTreeSet::new();
    for raw in names {
        let name = privileges::normalize(raw);
        if !privileges::is_known(&name) {
            return Err(ApiError::invalid_parameter(format!(
                "Privilege {raw} is not a valid privilege."
            )));
        }
        if !privileges::valid_for(securable.kind).contains(&name.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "Privilege {} is not applicable to this entity [{}:{}]. If this seems unexpected, please check the privilege version of the metastore in use [1.0].",
                name.replace('_', " "),
                securable.full_name,
                securable.kind.entity_kind()
            )));
        }
        out.insert(name);
    }
    Ok(out)
}

fn check_changes(
    model: &Model,
    body: UpdateBody,
    securable: &SeedSecurable,
) -> Result<Vec<Checked>, ApiError> {
    if body.changes.is_empty() {
        return Err(ApiError::invalid_parameter("changes must not be empty."));
    }
    body.changes
        .into_iter()
        .map(|change| {
            if change.principal.trim().is_empty() {
                return Err(ApiError::invalid_parameter("principal must be specified."));
            }
            let principal = model
                .canonical_principal(&change.principal)
                .ok_or_else(|| ApiError::principal_not_found(&change.principal))?;
            let add = check_privileges(&change.add, securable)?;
            let remove = check_privileges(&change.remove, securable)?;
            if let Some(both) = add.intersection(&remove).next() {
                return Err(ApiError::invalid_parameter(format!(
                    "Privilege {both} cannot be both added and removed for principal {principal}."
                )));
            }
            Ok(Checked {
                principal,
                add,
                remove,
            })
        })
        .collect()
}

/// `PATCH /api/2.1/unity-catalog/permissions/{securable_type}/{full_name}`.
pub async fn update_permissions(
    State(state): State<StandInState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path((securable_type, full_name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let lag = state.read_lag();
    let mut model = state.model();
    let securable = match locate(&model, &securable_type, &full_name) {
        Ok(s) => s,
        Err(error) => return error.into_response(),
    };
    let parsed: UpdateBody = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(why) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_REQUEST",
                format!("Could not parse request object: {why}"),
            )
            .into_response();
        }
    };
    if !model.may_manage(&caller, &securable.full_name) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            format!(
                "User does not have MANAGE on {} '{}'",
                securable.kind.word(),
                securable.full_name
            ),
        )
        .into_response();
    }
    let omit = parsed.omit_permissions_in_response;
    let changes = match check_changes(&model, parsed, &securable) {
        Ok(changes) => changes,
        Err(error) => return error.into_response(),
    };
    if let Some(lag) = lag {
        model.lagged = Some((Instant::now() + lag, model.grants.clone()));
    }
    let key = (
        securable.kind.path_type().to_string(),
        securable.full_name.clone(),
    );
    let assignments = model.grants.entry(key).or_default();
    for change in changes {
        let held = assignments.entry(change.principal).or_default();
        for privilege in &change.remove {
            if privilege == "ALL_PRIVILEGES" {
                held.retain(|p| NOT_IN_ALL_PRIVILEGES.contains(&p.as_str()));
            } else {
                held.remove(privilege);
            }
        }
        held.extend(change.add);
    }
    assignments.retain(|_, privs| !privs.is_empty());
    if omit {
        return answer(Vec::<Value>::new(), None);
    }
    let mut all: Vec<AssignmentOut<'_>> = assignments_json(assignments, None)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    all.shuffle(&mut rand::rng());
    answer(all, None)
}

/// `GET /api/2.1/unity-catalog/effective-permissions/{securable_type}/{full_name}`: direct and inherited
/// privileges (privilege model 1.0: catalog and schema grants flow down to their children).
pub async fn get_effective(
    State(state): State<StandInState>,
    Path((securable_type, full_name)): Path<(String, String)>,
    Query(query): Query<ReadQuery>,
) -> Response {
    let model = state.model();
    let result = locate(&model, &securable_type, &full_name).and_then(|s| {
        let only = principal_filter(&model, &query)?;
        let mut per_principal: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for level in model.lineage(&s.full_name) {
            let key = (level.kind.path_type().to_string(), level.full_name.clone());
            let Some(assignments) = model.visible_grants().get(&key) else {
                continue;
            };
            for (principal, privs) in assignments {
                if only.as_deref().is_some_and(|o| o != principal) {
                    continue;
                }
                for privilege in privs {
                    let mut entry = json!({"privilege": privilege});
                    if level.full_name != s.full_name {
                        entry["inherited_from_type"] = json!(inherited_type(level.kind));
                        entry["inherited_from_name"] = json!(level.full_name);
                    }
                    per_principal
                        .entry(principal.clone())
                        .or_default()
                        .push(entry);
                }
            }
        }
        let items = per_principal
            .into_iter()
            .map(|(p, privs)| (p.clone(), json!({"principal": p, "privileges": privs})))
            .collect();
        paginate(
            items,
            &query,
            model.seed.page_size,
            model.seed.empty_first_page,
        )
    });
    match result {
        Ok((page, next)) => answer(page, next),
        Err(error) => error.into_response(),
    }
}

fn inherited_type(kind: SecurableKind) -> &'static str {
    kind.upper()
}
