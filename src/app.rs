//! The application: one router shared by `main` and the tests, and a server that binds its own listener
//! (port 0 in tests) and answers the host's readiness probe at once.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router, middleware};
use serde_json::json;
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::functions::{
    self, DOCTOR, GRANT_ACCESS, LIST_GRANTS, PURVIEW_CALLBACK, RESOLVE_PRINCIPAL, REVOKE_ACCESS,
    REVOKE_EXPIRED,
};
use crate::host::timer::TimerInfo;
use crate::host::{InvocationRequest, InvocationResponse, http_bridge};
use crate::settings::SettingsError;
use crate::telemetry::{self, INVOCATION_ID_HEADER};

pub use crate::services::{
    AppState, BuildError, Provisioning, Services, graph_client, outbound_clients,
};

/// Builds the router: readiness at `/`, forwarded HTTP functions at `/api/<name>`, and the invocation
/// payload protocol at `/<name>` (timers, and HTTP functions when forwarding is off). Invocation payloads
/// carry no caller credentials, so those routes answer only the peers the settings admit (the host, over
/// loopback): serve the router with its connection info ([`Application::serve`] does).
pub fn router(state: AppState) -> Router {
    let api = api_router(state.clone());
    let peers = state.services.server.invocation_peers;
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
            post(
                move |headers: HeaderMap, body: Result<Bytes, BytesRejection>| {
                    bridged(api.clone(), name, headers, body)
                },
            ),
        );
    }
    let host_only = middleware::from_fn_with_state(peers, crate::host::peer::host_only);
    api.merge(bridge.merge(invocations).route_layer(host_only))
        .route("/", get(readiness))
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn(telemetry::request_context))
}

/// The router of a process whose required settings are missing: it answers the host's readiness probe
/// (so the host does not restart it in a loop) and every invocation with 503 naming the setting, so the
/// cause shows on every failed call in Application Insights.
pub fn unconfigured_router(missing: SettingsError) -> Router {
    let problem = missing.to_string();
    let readiness = {
        let problem = problem.clone();
        move || async move {
            Json(
                json!({"service": "uc-access", "version": env!("CARGO_PKG_VERSION"), "status": "unconfigured", "problem": problem}),
            )
        }
    };
    Router::new()
        .route("/", get(readiness))
        .fallback(move || {
            let problem = problem.clone();
            async move {
                ApiError::unavailable(
                    "not_configured",
                    format!("uc-access is not configured: {problem}"),
                )
                .with_retry_after(60)
            }
        })
        .layer(middleware::from_fn(telemetry::request_context))
}

/// The forwarded HTTP functions (`/api/<name>`).
fn api_router(state: AppState) -> Router {
    Router::new()
        .route(
            &format!("/api/{RESOLVE_PRINCIPAL}"),
            post(functions::resolve_principal::handle),
        )
        .route(
            &format!("/api/{PURVIEW_CALLBACK}"),
            post(functions::purview_callback::handle),
        )
        .route(
            &format!("/api/{GRANT_ACCESS}"),
            post(functions::grant_access::handle),
        )
        .route(
            &format!("/api/{REVOKE_ACCESS}"),
            post(functions::revoke_access::handle),
        )
        .route(
            &format!("/api/{LIST_GRANTS}"),
            get(functions::list_grants::handle),
        )
        .route(&format!("/api/{DOCTOR}"), get(functions::doctor::handle))
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
/// The largest invocation payload the host may send (axum's default limit, stated here so the answer can
/// name it). The HTTP body inside is then held to `UC_ACCESS_MAX_BODY_BYTES` like a forwarded one.
pub const MAX_INVOCATION_BYTES: usize = 2 * 1024 * 1024;

/// An invocation payload, or the JSON error answer when it could not be read (too large, cut off, not
/// the payload's shape): the same error shape as every other answer, never axum's plain-text rejection.
fn decode_invocation(body: Result<Bytes, BytesRejection>) -> Result<InvocationRequest, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(MAX_INVOCATION_BYTES)
        } else {
            ApiError::malformed_body(format!(
                "the invocation payload could not be read: {}",
                rejection.body_text()
            ))
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::malformed_body(format!("not an invocation payload: {e}")))
}

async fn bridged(
    api: Router,
    function: &'static str,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let invocation = match decode_invocation(body) {
        Ok(invocation) => invocation,
        Err(error) => return error.into_response(),
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

async fn revoke_expired_invocation(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let invocation = match decode_invocation(body) {
        Ok(invocation) => invocation,
        Err(error) => return error.into_response(),
    };
    let timer = match invocation
        .binding(TIMER_BINDING)
        .map(|v| TimerInfo::from_binding(&v))
    {
        Some(Ok(timer)) => timer,
        Some(Err(e)) => return ApiError::malformed_body(e.to_string()).into_response(),
        None => TimerInfo::default(),
    };
    let report = match functions::revoke_expired::run(&timer, &state.services).await {
        Ok(report) => report,
        Err(e) => {
            tracing::error!(alert = "revoke_run_failed", error = %e, "the revoke run could not read the ledger");
            return ApiError::from(&e).into_response();
        }
    };
    tracing::info!(
        event = "revoke.run",
        past_due = report.past_due,
        due = report.due,
        revoked = report.revoked,
        finished = report.finished,
        failed = report.failed,
        databricks_calls = report.databricks_calls,
        kept = report.kept,
        alerts = report.alerts.len(),
        "revoke-expired run finished"
    );
    let answer = InvocationResponse {
        outputs: serde_json::Map::new(),
        logs: report.log_lines(),
        return_value: serde_json::to_value(&report).unwrap_or_default(),
    };
    (StatusCode::OK, Json(answer)).into_response()
}

/// A bound, not yet serving, listener. Binding first lets the host's readiness probe succeed as soon as
/// `serve` starts, and lets the local run learn its own URL before it builds the app.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
}

impl Application {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `router` until `shutdown` resolves.
    pub async fn serve(
        self,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The host calls us over loopback for every invocation: Nagle's algorithm would add tens of
        // milliseconds to small answers.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        // The peer address is what tells the host's invocations (over loopback) from anyone else's.
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

/// Resolves on Ctrl-C or SIGTERM (what the Functions host sends to stop the worker): the graceful
/// shutdown of [`Application::serve`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            sig.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// A binary's `main`: runs `main` on a multi-threaded runtime and turns its result into the exit code,
/// printing an error as `<program>: <error and its causes>` on standard error.
pub fn run_main(
    program: &str,
    main: impl Future<Output = anyhow::Result<std::process::ExitCode>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(main).unwrap_or_else(|e| {
        eprintln!("{program}: {e:#}");
        std::process::ExitCode::FAILURE
    })
}
