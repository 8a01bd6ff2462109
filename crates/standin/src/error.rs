//! Error bodies in the two shapes Databricks answers with: the REST shape and the SCIM shape.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error in Databricks' REST shape: `{"error_code","message","details"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 and 503 only).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Invalid access token.",
        )
    }

    pub fn principal_not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "PRINCIPAL_DOES_NOT_EXIST",
            format!("Could not find principal with name {name}"),
        )
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "REQUEST_LIMIT_EXCEEDED",
                "Too many requests. Please wait a moment and try again.",
            )
        }
    }

    /// 504 `TEMPORARILY_UNAVAILABLE`: the front end gave up waiting for the service (which may still
    /// have carried the request out).
    pub fn gateway_timeout(path: &str) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "TEMPORARILY_UNAVAILABLE",
            format!(
                "The service at {path} is taking too long to process your request. Please try again later or try a faster operation."
            ),
        )
    }

    pub fn unavailable(retry_after_secs: Option<u64>) -> Self {
        Self {
            retry_after_secs,
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "TEMPORARILY_UNAVAILABLE",
                "The service is temporarily unavailable. Please try again later.",
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error_code": self.error_code,
            "message": self.message,
            "details": [],
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// An error in the SCIM shape (RFC 7644 §3.12) that the SCIM endpoints answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            scim_type: Some("invalidFilter"),
            detail: detail.into(),
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            scim_type: None,
            detail: detail.into(),
        }
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            scim_type: Some("invalidValue"),
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "detail": self.detail,
            "status": self.status.as_u16().to_string(),
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        (self.status, Json(body)).into_response()
    }
}
