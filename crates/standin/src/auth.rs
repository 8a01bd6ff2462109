//! OAuth M2M token endpoints (workspace and account), their discovery documents, and the bearer check.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::error::ApiError;
use super::state::StandInState;

/// The principal behind the bearer token of a request: a userName or an applicationId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// `GET /oidc/.well-known/oauth-authorization-server`: where the workspace token endpoint is.
pub async fn workspace_discovery(headers: HeaderMap) -> Json<serde_json::Value> {
    let base = base_url(&headers);
    Json(json!({
        "issuer": format!("{base}/oidc"),
        "authorization_endpoint": format!("{base}/oidc/v1/authorize"),
        "token_endpoint": format!("{base}/oidc/v1/token"),
    }))
}

/// `GET /oidc/accounts/{account_id}/.well-known/oauth-authorization-server`.
pub async fn account_discovery(
    Path(account_id): Path<String>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let base = format!("{}/oidc/accounts/{account_id}", base_url(&headers));
    Json(json!({
        "issuer": format!("{base}"),
        "authorization_endpoint": format!("{base}/v1/authorize"),
        "token_endpoint": format!("{base}/v1/token"),
    }))
}

/// `POST /oidc/v1/token`.
pub async fn workspace_token(
    State(state): State<StandInState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    issue_token(&state, &headers, &body, Issuer::Workspace)
}

/// Which token endpoint issued a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Issuer {
    Workspace,
    Account,
}

/// `POST /oidc/accounts/{account_id}/v1/token`.
pub async fn account_token(
    State(state): State<StandInState>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if account_id != state.model().seed.account_id {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    issue_token(&state, &headers, &body, Issuer::Account)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn issue_token(state: &StandInState, headers: &HeaderMap, body: &[u8], issuer: Issuer) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if field("grant_type").as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only client_credentials is supported",
        );
    }
    let credentials =
        basic_credentials(headers).or_else(|| Some((field("client_id")?, field("client_secret")?)));
    let Some((client_id, client_secret)) = credentials else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    };
    let scope = field("scope").unwrap_or_else(|| "all-apis".to_string());
    let mut model = state.model();
    let known = model.service_principals.iter().any(|sp| {
        sp.active
            && sp.application_id == client_id
            && sp.client_secret.as_deref() == Some(client_secret.as_str())
    });
    if !known {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    let token = format!("standin-oauth-{}", uuid::Uuid::new_v4().simple());
    model.tokens.insert(token.clone(), client_id);
    if issuer == Issuer::Account {
        model.account_tokens.insert(token.clone());
    }
    model.token_issuances += 1;
    Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": scope,
    }))
    .into_response()
}

/// The account APIs (SCIM and identity under `/accounts/{account_id}`); every other `/api` path is a
/// workspace API.
fn is_account_api(path: &str) -> bool {
    path.starts_with("/api/2.0/accounts/") || path.starts_with("/api/2.0/identity/accounts/")
}

/// Rejects API requests without a bearer token the stand-in issued or was seeded with, and (when told
/// to) workspace requests with a token from the account endpoint.
pub async fn bearer_layer(
    State(state): State<StandInState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_string);
    let caller = token.and_then(|t| {
        let model = state.model();
        let refused = !model.account_tokens_on_workspaces
            && model.account_tokens.contains(&t)
            && !is_account_api(request.uri().path());
        if refused {
            None
        } else {
            model.tokens.get(&t).cloned()
        }
    });
    match caller {
        Some(name) => {
            request.extensions_mut().insert(Caller(name));
            next.run(request).await
        }
        None => ApiError::unauthenticated().into_response(),
    }
}
