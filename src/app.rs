//! The application: one router shared by `main` and the tests, and a server that binds its own listener
//! (port 0 in tests) and answers the host's readiness probe at once.

use std::net::SocketAddr;
use std::sync::Arc;

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

use std::time::Duration;

use crate::auth::Authenticator;
use crate::databricks::DatabricksClients;
use crate::domain::{WorkspaceRef, Workspaces};
use crate::error::ApiError;
use crate::functions::{
    self, DOCTOR, GRANT_ACCESS, LIST_GRANTS, PURVIEW_CALLBACK, RESOLVE_PRINCIPAL, REVOKE_ACCESS,
    REVOKE_EXPIRED,
};
use crate::host::timer::TimerInfo;
use crate::host::{InvocationRequest, InvocationResponse, http_bridge};
use crate::ledger::LedgerStore;
use crate::settings::{GovernedCatalogs, ServerSettings, Settings, SettingsError};
use crate::telemetry::{self, INVOCATION_ID_HEADER};
use crate::usecases::resolve::Resolver;
use crate::usecases::{Clock, Context, system_clock};

/// Everything the functions need, built once in `main` (or a test) and shared by every request.
#[derive(Debug)]
pub struct Services {
    pub auth: Authenticator,
    pub max_body_bytes: usize,
    /// Where the handler listens and who may send it invocation payloads (the router and the doctor).
    pub server: ServerSettings,
    /// How long a request may spend waiting on Databricks (retries included).
    pub time_budget: Duration,
    pub workspaces: Workspaces,
    /// Where uc-access is expected to hold `MANAGE` (what the doctor checks).
    pub governed_catalogs: GovernedCatalogs,
    /// The secrets the settings read from Key Vault (what the doctor checks).
    pub secrets: crate::doctor::VaultProbe,
    /// The grant ledger, also when Databricks is not configured (the doctor probes it).
    pub ledger: Arc<dyn LedgerStore>,
    /// Microsoft Graph, when configured (the doctor probes it).
    pub graph: Option<Arc<dyn crate::graph::GraphApi>>,
    provisioning: Option<Provisioning>,
}

/// The Databricks side and the ledger, present once the Databricks settings are given.
#[derive(Debug)]
pub struct Provisioning {
    pub clients: DatabricksClients,
    pub context: Context,
}

/// Why the services could not be built from valid settings.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot set up the Databricks clients: {0}")]
    Databricks(#[from] crate::databricks::DatabricksError),
    #[error("cannot open the grant ledger: {0}")]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("cannot set up the Microsoft Graph client: {0}")]
    Graph(#[from] crate::graph::GraphError),
}

/// The Microsoft Graph client, when the settings switch Graph on, over `http` (the process's one client).
pub fn graph_client(
    settings: &Settings,
    http: &reqwest::Client,
) -> Result<Option<Arc<crate::graph::GraphClient>>, crate::graph::GraphError> {
    settings
        .graph
        .as_ref()
        .map(|g| crate::graph::GraphClient::from_settings(g, http.clone()).map(Arc::new))
        .transpose()
}

/// The clients that call out — the caller tokens' authenticator (its key set) and, when configured, the
/// Databricks clients — over `http`, the process's one client ([`crate::outbound`], which says why one).
/// The key set's requests carry their own timeout.
pub fn outbound_clients(
    settings: &Settings,
    http: reqwest::Client,
) -> Result<(Authenticator, Option<DatabricksClients>), crate::databricks::DatabricksError> {
    let clients = settings
        .databricks
        .as_ref()
        .map(|db| DatabricksClients::from_settings(db, http.clone()))
        .transpose()?;
    Ok((
        Authenticator::with_client(settings.auth.clone(), http),
        clients,
    ))
}

impl Services {
    /// Builds every client from the settings, all sending over `http` (the process's one client,
    /// [`crate::outbound`]). Nothing is fetched here: keys, tokens and secrets are loaded on first use,
    /// so the process is ready for the host at once.
    pub fn build(settings: &Settings, http: reqwest::Client) -> Result<Self, BuildError> {
        let ledger = crate::ledger::open(&settings.ledger, &http)?;
        let graph = graph_client(settings, &http)?;
        let (auth, clients) = outbound_clients(settings, http)?;
        Ok(Self::assemble_with_graph(
            settings,
            auth,
            clients,
            graph.map(|g| g as Arc<dyn crate::graph::GraphApi>),
            ledger,
            system_clock(),
        ))
    }

    /// Builds the services around parts made elsewhere (the local run, tests, benchmarks).
    pub fn assemble(
        settings: &Settings,
        auth: Authenticator,
        clients: Option<DatabricksClients>,
        ledger: Arc<dyn LedgerStore>,
        clock: Clock,
    ) -> Self {
        Self::assemble_with_graph(settings, auth, clients, None, ledger, clock)
    }

    /// [`Services::assemble`] with Microsoft Graph (the resolver's Graph path, Entra account states and
    /// group assignees), looking object ids up in `settings.resolve_order`.
    pub fn assemble_with_graph(
        settings: &Settings,
        auth: Authenticator,
        clients: Option<DatabricksClients>,
        graph: Option<Arc<dyn crate::graph::GraphApi>>,
        ledger: Arc<dyn LedgerStore>,
        clock: Clock,
    ) -> Self {
        let provisioning = match (clients, settings.databricks.as_ref()) {
            (Some(clients), Some(db)) => {
                let mut resolver = Resolver::new(
                    clients.directory.clone(),
                    settings.principal_cache_ttl,
                    db.resolve_by_external_id,
                );
                if let Some(graph) = graph.clone() {
                    resolver = resolver.with_graph(graph);
                }
                let resolver = resolver.with_order(settings.resolve_order.clone());
                let context = Context {
                    policy: settings.policy.clone(),
                    resolver,
                    grants: clients.grants.clone(),
                    ledger: ledger.clone(),
                    clock,
                    sharing: crate::usecases::share::Sharing {
                        api: clients.sharing.clone(),
                        naming: settings.share_naming.clone(),
                    },
                };
                Some(Provisioning { clients, context })
            }
            _ => None,
        };
        Self {
            auth,
            max_body_bytes: settings.server.max_body_bytes,
            server: settings.server.clone(),
            time_budget: settings.time_budget,
            workspaces: settings.workspaces.clone(),
            governed_catalogs: settings.governed_catalogs.clone(),
            secrets: crate::doctor::VaultProbe::of(settings),
            ledger,
            graph,
            provisioning,
        }
    }

    /// The Databricks side, or the answer that says it is not configured.
    pub fn provisioning(&self) -> Result<&Provisioning, ApiError> {
        self.provisioning.as_ref().ok_or_else(|| {
            ApiError::unavailable(
                "provisioning_not_configured",
                "uc-access has no Databricks settings yet (DATABRICKS_ACCOUNT_ID, DATABRICKS_HOST and credentials); nothing was done",
            )
            .with_retry_after(60)
        })
    }

    /// The Databricks clients, when configured (unlike [`Services::provisioning`], absence is no error).
    pub fn databricks(&self) -> Option<&DatabricksClients> {
        self.provisioning.as_ref().map(|p| &p.clients)
    }

    /// The default workspace, or the answer that says none is configured.
    pub fn default_workspace(&self) -> Result<&WorkspaceRef, ApiError> {
        self.workspaces.default_workspace().ok_or_else(|| {
            ApiError::unavailable(
                "workspace_not_configured",
                "no default workspace is configured (DATABRICKS_HOST)",
            )
        })
    }
}

/// The state every handler receives: cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub services: Arc<Services>,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        Self {
            services: Arc::new(services),
        }
    }
}

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

/// An invocation payload, or the JSON error answer when it could not be read (too large, cut off): the
/// same error shape as every other answer, never axum's plain-text rejection.
fn invocation_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(MAX_INVOCATION_BYTES)
        } else {
            ApiError::malformed_body(format!(
                "the invocation payload could not be read: {}",
                rejection.body_text()
            ))
        }
    })
}

async fn bridged(
    api: Router,
    function: &'static str,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match invocation_body(body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
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

async fn revoke_expired_invocation(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match invocation_body(body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
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
    let report = match functions::revoke_expired::run(&timer, &state.services).await {
        Ok(report) => report,
        Err(e) => {
            tracing::error!(alert = "revoke_run_failed", error = %e, "the revoke run could not read the ledger");
            return crate::functions::errors::ledger_error(&e).into_response();
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
