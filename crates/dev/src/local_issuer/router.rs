//! The local issuer's HTTP face: the v2.0 and v1.0 OpenID configurations and their key sets, the
//! documents the [`Authenticator`](uc_access::auth::Authenticator) fetches from Entra in production, at the
//! paths Entra uses under a tenant (`/v2.0/.well-known/…`, `/.well-known/…`, `/discovery/v2.0/keys`,
//! `/discovery/keys`).

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

pub(super) const V2_OPENID_CONFIGURATION_PATH: &str = "/v2.0/.well-known/openid-configuration";
pub(super) const V1_OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub(super) const V2_JWKS_PATH: &str = "/discovery/v2.0/keys";
pub(super) const V1_JWKS_PATH: &str = "/discovery/keys";

fn document(value: Value) -> axum::routing::MethodRouter {
    let value = Arc::new(value);
    get(move || {
        let v = value.clone();
        async move { Json((*v).clone()) }
    })
}

pub(super) fn router(v2_configuration: Value, v1_configuration: Value, jwks: Value) -> Router {
    Router::new()
        .route(V2_OPENID_CONFIGURATION_PATH, document(v2_configuration))
        .route(V1_OPENID_CONFIGURATION_PATH, document(v1_configuration))
        .route(V2_JWKS_PATH, document(jwks.clone()))
        .route(V1_JWKS_PATH, document(jwks))
}
