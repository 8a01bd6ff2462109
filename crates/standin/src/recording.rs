//! Request recording: every API request with its method, path, query, body and the status answered.

use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;
use super::faults::Dropped;
use super::state::StandInState;

const MAX_BODY: usize = 4 * 1024 * 1024;

/// One request the stand-in received (admin requests under `/__standin` are not recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The path as sent, still percent-encoded.
    pub path: String,
    pub query: Option<String>,
    /// The body as text; token requests are redacted because they carry client secrets.
    pub body: String,
    /// The status answered; 0 when the connection was dropped without an answer.
    pub status: u16,
    /// When the request arrived and how long the stand-in took to answer it (simulated latency and
    /// faults included): the benchmarks subtract this waiting from a callback's time.
    #[serde(skip)]
    pub received: Instant,
    #[serde(skip)]
    pub elapsed: Duration,
}

pub async fn record_layer(
    State(state): State<StandInState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if path.starts_with("/__standin") {
        return next.run(request).await;
    }
    let received = Instant::now();
    let method = request.method().to_string();
    let query = request.uri().query().map(str::to_string);
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return ApiError::invalid_parameter("Request body too large.").into_response(),
    };
    let text = if path.starts_with("/oidc/") {
        "<redacted>".to_string()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = if response.extensions().get::<Dropped>().is_some() {
        0
    } else {
        response.status().as_u16()
    };
    state.record(RecordedRequest {
        method,
        path,
        query,
        body: text,
        status,
        received,
        elapsed: received.elapsed(),
    });
    response
}
