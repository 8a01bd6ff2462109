//! The application: one router shared by `main` and the tests, and a server that binds its own listener
//! (port 0 in tests) and answers the host's readiness probe at once.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router, middleware};
use serde_json::json;
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::functions::{self, REVOKE_EXPIRED};
use crate::host::timer::TimerInfo;
use crate::host::{InvocationRequest, InvocationResponse, http_bridge};
use crate::telemetry::{self, INVOCATION_ID_HEADER};

/// Everything the functions need, built once in `main` (or a test) and shared by every request.
#[derive(Debug, Default)]
pub struct Services {}

/// The state every handler receives: cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct AppState {
    pub services: Arc<Services>,
}

/// Builds the router: readiness at `/`, forwarded HTTP functions at `/api/<name>`, and the invocation
/// payload protocol at `/<name>` (timers, and HTTP functions when forwarding is off).
pub fn router(state: AppState) -> Router {
    let api = api_router(state.clone());
    let bridge = Router::new()
        .route(
            &format!("/{REVOKE_EXPIRED}"),
            post(revoke_expired_invocation),
        )
        .with_state(state);
    let mut invocations = Router::new();
    for name in functions::http_function_names() {
        let api = api.clone();
        invocations = invocations.route(
            &format!("/{name}"),
            post(move |headers: HeaderMap, body: Bytes| bridged(api.clone(), name, headers, body)),
        );
    }
    api.merge(bridge)
        .merge(invocations)
        .route("/", get(readiness))
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn(telemetry::request_context))
}

/// The forwarded HTTP functions (`/api/<name>`).
fn api_router(state: AppState) -> Router {
    Router::new()
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
}

async fn readiness() -> Json<serde_json::Value> {
    Json(json!({
        "service": "uc-access",
        "version": env!("CARGO_PKG_VERSION"),
        "status": "ready",
    }))
}

/// An HTTP function invoked through the payload protocol: replayed through `/api/<name>`.
async fn bridged(api: Router, function: &'static str, headers: HeaderMap, body: Bytes) -> Response {
    let invocation: InvocationRequest = match serde_json::from_slice(&body) {
        Ok(inv) => inv,
        Err(e) => {
            return ApiError::malformed_body(format!("not an invocation payload: {e}"))
                .into_response();
        }
    };
    let answer = http_bridge::invoke(
        api,
        function,
        &invocation,
        headers.get(INVOCATION_ID_HEADER),
    )
    .await;
    Json(answer).into_response()
}

/// Name of the timer binding in `functions/revoke-expired/function.json`.
const TIMER_BINDING: &str = "timer";

async fn revoke_expired_invocation(State(_state): State<AppState>, body: Bytes) -> Response {
    let invocation: InvocationRequest = match serde_json::from_slice(&body) {
        Ok(inv) => inv,
        Err(e) => {
            return ApiError::malformed_body(format!("not an invocation payload: {e}"))
                .into_response();
        }
    };
    let timer = match invocation
        .binding(TIMER_BINDING)
        .map(|v| TimerInfo::from_binding(&v))
    {
        Some(Ok(timer)) => timer,
        Some(Err(e)) => return ApiError::malformed_body(e.to_string()).into_response(),
        None => TimerInfo::default(),
    };
    let report = functions::revoke_expired::run(&timer).await;
    tracing::info!(
        past_due = report.past_due,
        due = report.due,
        revoked = report.revoked,
        failed = report.failed,
        "revoke-expired run finished"
    );
    let answer = InvocationResponse {
        outputs: serde_json::Map::new(),
        logs: report.log_lines(),
        return_value: serde_json::to_value(&report).unwrap_or_default(),
    };
    (StatusCode::OK, Json(answer)).into_response()
}

/// A bound, not yet serving, application. Binding first lets the host's readiness probe succeed as soon
/// as `serve` starts, whatever else start-up still has to do lazily.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    pub async fn bind(addr: SocketAddr, state: AppState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            router: router(state),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The host calls us over loopback for every invocation: Nagle's algorithm would add tens of
        // milliseconds to small answers.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
