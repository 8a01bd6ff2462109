//! Telemetry in one place: JSON logs on stdout, one span per invocation carrying the Functions invocation
//! id and our request id, and the request id available to whatever answers the request.
//!
//! Nothing here logs headers or bodies: tokens, passwords and request payloads stay out of the logs.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// The header the Functions host puts on every request it sends to the handler.
pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";
/// The header on every answer that carries our request id (also in error bodies).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (Azure, CI): what Application Insights and log tooling parse.
    Json,
    /// Human-readable lines for a terminal (the local run).
    Text,
    /// Warnings and errors only, as text (the demo narrates on its own).
    Quiet,
}

/// Installs the global subscriber once; `RUST_LOG` filters (default `info`). Safe to call twice.
pub fn init(format: LogFormat) {
    let default = if format == LogFormat::Quiet {
        "warn"
    } else {
        "info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text | LogFormat::Quiet => builder.compact().with_target(false).try_init(),
    };
}

/// The id of the request being answered, or `"none"` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "none".to_owned())
}

/// Runs `fut` with `request_id` as the current request id.
pub async fn with_request_id<F: Future>(request_id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(request_id, fut).await
}

/// Middleware: a fresh request id, a span per invocation, the id echoed in `x-request-id`.
pub async fn request_context(request: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    // The invocation id is only ever logged, so a header that is not a plain GUID-ish token is dropped
    // rather than trusted (log injection through a forged header).
    let invocation_id = request
        .headers()
        .get(INVOCATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!(
        "invocation",
        path = %request.uri().path(),
        method = %request.method(),
        invocation_id = %invocation_id,
        request_id = %request_id,
    );
    let id_header = HeaderValue::from_str(&request_id).ok();
    let mut response = with_request_id(request_id, next.run(request))
        .instrument(span.clone())
        .await;
    span.in_scope(|| {
        tracing::info!(status = response.status().as_u16(), "answered");
    });
    if let Some(value) = id_header {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_request_id_is_visible_inside_its_scope_only() {
        assert_eq!(current_request_id(), "none");
        let seen = with_request_id("abc".into(), async { current_request_id() }).await;
        assert_eq!(seen, "abc");
    }
}
