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

/// The host's invocation id of a request, for the log. The host's proxy overrides the header; its legacy
/// forwarding *adds* its value after whatever the caller sent (a second line, or `caller, host` in one),
/// so the last value is the host's. It is only ever logged, so a value that is not a plain GUID-ish
/// token is dropped rather than trusted (log injection through a forged header).
pub fn invocation_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get_all(INVOCATION_ID_HEADER)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or("")
        .to_owned()
}

/// Middleware: a fresh request id, a span per invocation, the id echoed in `x-request-id`.
pub async fn request_context(request: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let invocation_id = invocation_id(request.headers());
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

    #[test]
    fn the_invocation_id_logged_is_the_hosts_last_value_and_a_forged_shape_is_dropped() {
        use axum::http::{HeaderMap, HeaderValue};
        let host = "6f1d2c3b-4a59-4687-9a1b-2c3d4e5f6071";
        let mut headers = HeaderMap::new();
        assert_eq!(invocation_id(&headers), "");
        headers.insert(INVOCATION_ID_HEADER, HeaderValue::from_static(host));
        assert_eq!(
            invocation_id(&headers),
            host,
            "proxied: one value, the host's"
        );
        // Forwarded after a caller sent its own: the host's value comes last.
        let mut two = HeaderMap::new();
        two.append(
            INVOCATION_ID_HEADER,
            HeaderValue::from_static("caller-chose-this"),
        );
        two.append(INVOCATION_ID_HEADER, HeaderValue::from_static(host));
        assert_eq!(invocation_id(&two), host);
        let mut joined = HeaderMap::new();
        joined.insert(
            INVOCATION_ID_HEADER,
            HeaderValue::from_str(&format!("caller-chose-this, {host}")).unwrap(),
        );
        assert_eq!(invocation_id(&joined), host);
        let mut forged = HeaderMap::new();
        forged.insert(
            INVOCATION_ID_HEADER,
            HeaderValue::from_static("x\" level=error msg=\"forged"),
        );
        assert_eq!(invocation_id(&forged), "");
    }

    #[tokio::test]
    async fn the_request_id_is_visible_inside_its_scope_only() {
        assert_eq!(current_request_id(), "none");
        let seen = with_request_id("abc".into(), async { current_request_id() }).await;
        assert_eq!(seen, "abc");
    }
}
