//! The one error shape every function answers with: `{"error": <stable code>, "message": <for a person>,
//! "requestId": …}`, a status that tells the caller whether to retry, and the detail kept for the log.
//!
//! Business errors carry no HTTP status; they are mapped here, once, at the edge.

use std::borrow::Cow;
use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::telemetry::current_request_id;

/// An error answer. `code` is stable (callers and Power Automate conditions match on it); `message` is
/// safe to show; `detail` goes to the log only.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    /// Seconds the caller should wait before retrying (429/503 only).
    pub retry_after: Option<u64>,
    detail: Option<String>,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The JSON body of every error answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody<'a> {
    /// `denied` for a policy refusal, `error` otherwise: the same field a successful answer carries, so a
    /// workflow can branch on `status` alone.
    pub status: &'static str,
    pub error: &'a str,
    pub message: &'a str,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
            detail: None,
        }
    }

    /// Adds detail for the log (never sent to the caller).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 400: the body is malformed; `field` names the part to fix.
    pub fn invalid_field(field: &str, problem: impl fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{field}: {problem}"),
        )
    }

    pub fn malformed_body(problem: impl fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            problem.to_string(),
        )
    }

    /// 401 with a reason code; the caller learns nothing else.
    pub fn unauthenticated(
        reason: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, reason, message)
    }

    /// 403: a policy rule refused the request; `rule` is the rule's stable name.
    pub fn denied(rule: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, rule, message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such function")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this function does not accept that HTTP method",
        )
    }

    /// 503: something we depend on is unavailable; the caller may retry.
    pub fn unavailable(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 500 for a fault of ours that a retry will not fix; the detail is logged, not sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "uc-access failed unexpectedly; nothing was changed. Quote the requestId to the operators.",
        )
        .with_detail(detail)
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
        )
    }

    fn log(&self) {
        let detail = self.detail.as_deref().unwrap_or("");
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), code = %self.code, reason = %self.message, detail, "request failed");
        } else {
            tracing::warn!(status = self.status.as_u16(), code = %self.code, reason = %self.message, detail, "request refused");
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let body = ErrorBody {
            status: if self.status == StatusCode::FORBIDDEN {
                "denied"
            } else {
                "error"
            },
            error: &self.code,
            message: &self.message,
            request_id: current_request_id(),
            retry_after_seconds: self.retry_after,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn an_error_answers_with_the_stable_shape_and_keeps_the_detail_out() {
        let response = ApiError::internal("database password=hunter2 rejected").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let json = body_json(response).await;
        assert_eq!(json["error"], "internal_error");
        assert!(json["requestId"].is_string());
        assert!(!json.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn a_retryable_error_carries_retry_after_in_header_and_body() {
        let err = ApiError::unavailable("databricks_rate_limited", "try later").with_retry_after(7);
        assert!(err.is_retryable());
        let response = err.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(body_json(response).await["retryAfterSeconds"], 7);
    }

    #[test]
    fn client_errors_are_not_retryable() {
        assert!(!ApiError::invalid_field("duration", "bad").is_retryable());
        assert!(!ApiError::denied("self_approval", "no").is_retryable());
    }

    #[tokio::test]
    async fn an_unauthenticated_answer_says_how_to_authenticate() {
        let response = ApiError::unauthenticated("token_expired", "expired").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
