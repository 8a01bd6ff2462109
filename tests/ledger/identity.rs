//! A stand-in for the managed identity endpoint that App Service and Azure Functions give an app
//! (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`; protocol version 2019-08-01), minting Azurite-acceptable
//! storage tokens. With it the built binary authenticates to Azurite through the SDK's own
//! `ManagedIdentityCredential`, exactly as it does in Azure.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::credential::{STORAGE_AUDIENCE, mint};

/// The path the endpoint is served at (`IDENTITY_ENDPOINT` is its full URL).
const PATH: &str = "/msi/token";

/// One token request as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub api_version: Option<String>,
    pub resource: Option<String>,
    pub client_id: Option<String>,
    /// The `X-IDENTITY-HEADER` value sent, if any.
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Minting {
    /// Tokens for the storage audience: the identity has its role on the account.
    Storage,
    /// Tokens for another audience: Azurite refuses them with `403`, as Azure Storage refuses an
    /// identity without a data role.
    WrongAudience,
}

#[derive(Clone)]
struct Shared {
    secret: String,
    minting: Minting,
    seen: Arc<Mutex<Vec<TokenRequest>>>,
}

/// The endpoint, served on loopback until the value is dropped.
pub struct IdentityEndpoint {
    pub url: String,
    pub secret: String,
    seen: Arc<Mutex<Vec<TokenRequest>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for IdentityEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl IdentityEndpoint {
    pub async fn start(minting: Minting) -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("a loopback port");
        let url = format!(
            "http://{}{PATH}",
            listener.local_addr().expect("an address")
        );
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            secret: secret.clone(),
            minting,
            seen: Arc::clone(&seen),
        };
        let router = axum::Router::new()
            .route(PATH, get(token))
            .with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url,
            secret,
            seen,
            server,
        }
    }

    /// The settings an App Service / Functions app gets for its managed identity.
    pub fn app_settings(&self) -> [(String, String); 2] {
        [
            ("IDENTITY_ENDPOINT".to_owned(), self.url.clone()),
            ("IDENTITY_HEADER".to_owned(), self.secret.clone()),
        ]
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

async fn token(
    State(shared): State<Shared>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let request = TokenRequest {
        api_version: query.get("api-version").cloned(),
        resource: query.get("resource").cloned(),
        client_id: query.get("client_id").cloned(),
        secret: headers
            .get("x-identity-header")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    shared
        .seen
        .lock()
        .expect("not poisoned")
        .push(request.clone());
    if request.secret.as_deref() != Some(shared.secret.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-IDENTITY-HEADER",
        )
            .into_response();
    }
    if request.api_version.as_deref() != Some("2019-08-01") {
        return (StatusCode::BAD_REQUEST, "unsupported api-version").into_response();
    }
    let Some(resource) = request.resource else {
        return (StatusCode::BAD_REQUEST, "resource is required").into_response();
    };
    let audience = match shared.minting {
        Minting::Storage => STORAGE_AUDIENCE,
        Minting::WrongAudience => "https://vault.azure.net",
    };
    let (access_token, expires) = mint(audience);
    axum::Json(json!({
        "access_token": access_token,
        // A string of epoch seconds, as the real endpoint answers.
        "expires_on": expires.unix_timestamp().to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response()
}
