//! The local issuer's HTTP face: an OpenID configuration and a JWKS, the two documents the
//! [`Authenticator`](crate::auth::Authenticator) fetches from Entra in production.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

pub(super) const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub(super) const JWKS_PATH: &str = "/discovery/v2.0/keys";

pub(super) fn router(openid_configuration: Value, jwks: Value) -> Router {
    let configuration = Arc::new(openid_configuration);
    let jwks = Arc::new(jwks);
    Router::new()
        .route(
            OPENID_CONFIGURATION_PATH,
            get(move || {
                let c = configuration.clone();
                async move { Json((*c).clone()) }
            }),
        )
        .route(
            JWKS_PATH,
            get(move || {
                let k = jwks.clone();
                async move { Json((*k).clone()) }
            }),
        )
}
