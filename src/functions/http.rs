//! The few lines every HTTP function shares, in the order that keeps bad input from costing anything:
//! authenticate the caller (before reading the body), check the content type, read the body within the
//! limit. Then each function parses the body into its own types.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};

use super::{
    DOCTOR, GRANT_ACCESS, LIST_GRANTS, PURVIEW_CALLBACK, RESOLVE_PRINCIPAL, REVOKE_ACCESS,
};
use crate::auth::{AuthError, Caller, setting_prefix};
use crate::error::ApiError;
use crate::services::{AppState, Services};

/// An HTTP function, as a type: what [`Accepted`] authenticates callers for.
pub trait HttpFunction: Send + Sync + 'static {
    /// The function's name (= its folder and route).
    const NAME: &'static str;
}

macro_rules! http_functions {
    ($($(#[$doc:meta])* $ty:ident = $name:path;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $ty;
        impl HttpFunction for $ty {
            const NAME: &'static str = $name;
        }
    )*};
}

http_functions! {
    /// `purview-callback`.
    PurviewCallback = PURVIEW_CALLBACK;
    /// `grant-access`.
    GrantAccess = GRANT_ACCESS;
    /// `resolve-principal`.
    ResolvePrincipal = RESOLVE_PRINCIPAL;
    /// `revoke-access`.
    RevokeAccess = REVOKE_ACCESS;
    /// `list-grants`.
    ListGrants = LIST_GRANTS;
    /// `doctor`.
    Doctor = DOCTOR;
}

/// A request to function `F` that got through: the authenticated caller, the body they sent (JSON, within
/// the limit) and the services. A handler that takes it has nothing of the prologue left to repeat, and
/// cannot forget it: the extractor runs before the handler, and nothing has happened when it refuses.
#[derive(Debug)]
pub struct Accepted<F> {
    pub caller: Caller,
    pub body: Bytes,
    pub services: Arc<Services>,
    function: PhantomData<F>,
}

impl<F: HttpFunction> FromRequest<AppState> for Accepted<F> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let services = state.services.clone();
        let (caller, body) = accept(&services, F::NAME, &parts.headers, body).await?;
        Ok(Self {
            caller,
            body,
            services,
            function: PhantomData,
        })
    }
}

/// Authenticates, then checks content type and size. Nothing has happened yet when this fails.
async fn accept(
    services: &Services,
    function: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Caller, Bytes), ApiError> {
    let max_body_bytes = services.max_body_bytes;
    let caller = services
        .auth
        .authenticate(function, headers)
        .await
        .map_err(|e| auth_error(e, function, services.auth.retry_after(e)))?;
    check_content_type(headers)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_body_bytes) {
        return Err(ApiError::payload_too_large(max_body_bytes));
    }
    let body = to_bytes(body, max_body_bytes)
        .await
        .map_err(|_| ApiError::payload_too_large(max_body_bytes))?;
    Ok((caller, body))
}

/// JSON only. A missing content type is accepted: whether Purview's HTTP action sets one is unverified,
/// and the body is parsed as strict JSON anyway. Any other declared type is refused.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type())
    }
}

/// 401 with the reason code for every refusal of `function`'s caller; 503 for the retryable ones: the
/// signing keys could not be fetched or a new key is not loaded yet (`Retry-After`: `retry_after` rounded
/// up, or 5 s), or Basic is misconfigured (then the message names the setting, like every other
/// `not_configured` answer).
pub fn auth_error(e: AuthError, function: &str, retry_after: Option<Duration>) -> ApiError {
    match e {
        AuthError::BasicNotConfigured => ApiError::unavailable(
            e.reason_code(),
            format!(
                "uc-access is not configured: setting {}_BASIC_PASSWORD (or the Key Vault secret it comes from) is empty, so Basic authentication is refused; bearer tokens still work",
                setting_prefix(function)
            ),
        )
        .with_retry_after(60),
        e if e.is_retryable() => ApiError::unavailable(e.reason_code(), e.message())
            .with_retry_after(retry_after.map_or(5, whole_seconds_up)),
        e => ApiError::unauthenticated(e.reason_code(), e.message()),
    }
}

/// A wait in whole seconds, rounded up and at least one: a `Retry-After` that ends before the wait would
/// only bring the same answer again.
fn whole_seconds_up(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_type(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(t).unwrap());
        h
    }

    #[test]
    fn json_content_types_are_accepted_with_parameters_and_in_any_case() {
        assert!(check_content_type(&with_type("application/json")).is_ok());
        assert!(check_content_type(&with_type("Application/JSON; charset=utf-8")).is_ok());
        assert!(check_content_type(&with_type("application/problem+json")).is_ok());
        assert!(check_content_type(&HeaderMap::new()).is_ok());
    }

    #[test]
    fn other_content_types_are_refused_with_415() {
        for t in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "application/jsonp",
        ] {
            let err = check_content_type(&with_type(t)).unwrap_err();
            assert_eq!(err.status.as_u16(), 415, "{t}");
        }
    }

    #[test]
    fn every_auth_refusal_is_401_except_the_retryable_ones_which_are_503() {
        for e in AuthError::ALL {
            let api = auth_error(e, "purview-callback", None);
            assert_eq!(api.code, e.reason_code());
            if e.is_retryable() {
                assert_eq!(api.status.as_u16(), 503);
                assert!(api.retry_after.is_some());
            } else {
                assert_eq!(api.status.as_u16(), 401);
            }
        }
    }

    #[test]
    fn a_signing_key_not_yet_known_is_a_503_whose_retry_after_is_the_wait_rounded_up() {
        for (wait, seconds) in [
            (Duration::from_millis(12_300), 13),
            (Duration::from_secs(7), 7),
            (Duration::from_millis(1), 1),
            (Duration::ZERO, 1),
        ] {
            let api = auth_error(AuthError::SigningKeyNotYetKnown, "grant-access", Some(wait));
            assert_eq!(api.status.as_u16(), 503);
            assert_eq!(api.code, "signing_key_not_yet_known");
            assert_eq!(api.retry_after, Some(seconds), "{wait:?}");
        }
    }

    #[test]
    fn an_empty_basic_password_answers_503_not_configured_naming_the_setting() {
        let api = auth_error(AuthError::BasicNotConfigured, "purview-callback", None);
        assert_eq!(api.status.as_u16(), 503);
        assert_eq!(api.code, "not_configured");
        assert!(
            api.message.contains("PURVIEW_CALLBACK_BASIC_PASSWORD"),
            "{}",
            api.message
        );
        assert_eq!(api.retry_after, Some(60));
    }
}
