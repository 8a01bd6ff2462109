//! The local run: the same binary and the same code paths as in Azure, on embedded defaults — the
//! Databricks stand-in in-process, the local token issuer, no cloud account.
//!
//! Only the settings differ from production: the caller authentication settings point at the local
//! issuer (served by this process), and the Databricks settings at the stand-in, with the product's OAuth
//! M2M client, so tokens, SCIM, grants and retries all run through the production clients. The stand-in
//! also serves Microsoft Graph for its tenant, so resolution through Graph and group assignees run too.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use url::Url;

use crate::local_issuer::{self, LocalIssuer};
use uc_access::app::{self, AppState, Application, Services};
use uc_access::functions::http_function_names;
use uc_access::settings::{Env, RevokeSchedule, Settings};
use uc_access::usecases::{Clock, system_clock};
use uc_access_standin::{RunningStandIn, Seed, StandIn, demo};

/// Where the local run keeps its state (issuer key, ledger).
pub const DEFAULT_DATA_DIR: &str = ".uc-access";
/// The local run's revoke timer: every fifteen seconds, so short grants visibly expire.
pub const LOCAL_SCHEDULE: &str = "*/15 * * * * *";

/// The local issuer's key directory inside the data directory.
pub fn issuer_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("local-issuer")
}

/// The local run's base URL for a port.
pub fn base_url(port: u16) -> Url {
    Url::parse(&format!("http://127.0.0.1:{port}")).expect("a loopback URL with a port is valid")
}

/// The environment the local run adds where the user has not set a value: the stand-in as both the
/// workspace and the account host, the product's OAuth M2M client.
pub fn local_env(env: Env, standin: &Url, data_dir: &Path) -> Env {
    let standin = standin.as_str().trim_end_matches('/').to_owned();
    env.with_default("LEDGER_BACKEND", "local")
        .with_default("REVOKE_SCHEDULE", LOCAL_SCHEDULE)
        .with_default("LEDGER_DIR", data_dir.join("ledger").to_string_lossy())
        .with_default("DATABRICKS_HOST", standin.clone())
        .with_default("DATABRICKS_ACCOUNT_HOST", standin.clone())
        .with_default("DATABRICKS_ACCOUNT_ID", demo::ACCOUNT_ID)
        .with_default("DATABRICKS_AUTH_TYPE", "oauth-m2m")
        .with_default("DATABRICKS_CLIENT_ID", demo::PRODUCT_CLIENT_ID)
        .with_default("DATABRICKS_CLIENT_SECRET", demo::PRODUCT_CLIENT_SECRET)
        // The stand-in's seed gives the product MANAGE on these two.
        .with_default(uc_access::settings::GOVERNED_CATALOGS, "sales,hr")
        // The stand-in also serves Microsoft Graph for its tenant.
        .with_default("UC_ACCESS_RESOLVE_WITH_GRAPH", "true")
        .with_default("GRAPH_ENDPOINT", standin.clone())
        .with_default("GRAPH_TOKEN", demo::GRAPH_TOKEN)
}

/// A running local deployment: the app, its stand-in and its issuer.
#[derive(Debug)]
pub struct LocalRun {
    pub base_url: Url,
    pub standin: RunningStandIn,
    pub issuer: LocalIssuer,
    /// The services the app serves with (the doctor runs its checks on them).
    pub services: Arc<Services>,
    app: Application,
    router: axum::Router,
    schedule: RevokeSchedule,
}

impl LocalRun {
    /// Binds `port` (0 for any), starts the stand-in, loads or creates the issuer key, builds the app.
    pub async fn start(env: Env, port: u16, data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with_clock(env, port, data_dir, system_clock()).await
    }

    /// [`LocalRun::start`] with a chosen clock (tests and the demo move time forward).
    pub async fn start_with_clock(
        env: Env,
        port: u16,
        data_dir: &Path,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        Self::start_with_seed(env, port, data_dir, clock, Seed::demo()).await
    }

    /// [`LocalRun::start_with_clock`] on a stand-in seeded with `seed` (tests that need a different
    /// account, e.g. without the product's `MANAGE` on a catalog).
    pub async fn start_with_seed(
        env: Env,
        port: u16,
        data_dir: &Path,
        clock: Clock,
        seed: Seed,
    ) -> anyhow::Result<Self> {
        let app = Application::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        let base_url = base_url(app.local_addr()?.port());
        let standin_port = env.parse_or("UC_ACCESS_LOCAL_STANDIN_PORT", 0_u16)?;
        let standin = StandIn::builder()
            .seed(seed)
            .start(SocketAddr::from((Ipv4Addr::LOCALHOST, standin_port)))
            .await?;
        let standin_url = Url::parse(standin.base_url())?;
        let issuer = LocalIssuer::load_or_create(&issuer_dir(data_dir), &base_url)?;

        let env = local_env(env, &standin_url, data_dir);
        let auth = local_issuer::local_auth_settings(&base_url, &http_function_names());
        let mut settings = Settings::with_auth(&env, auth)?;
        // The local run listens where it bound (loopback, any port), whatever UC_ACCESS_BIND_ADDRESS says;
        // the doctor reports this address.
        settings.server.addr = app.local_addr()?;
        let http = uc_access::outbound::http_client();
        let ledger = uc_access::ledger::open(&settings.ledger, &http)?;
        let graph = app::graph_client(&settings, &http)?;
        let (auth, clients) = app::outbound_clients(&settings, http)?;
        let clients = clients
            .ok_or_else(|| anyhow::anyhow!("the local run always has Databricks settings"))?;
        let services = Services::assemble_with_graph(
            &settings,
            auth,
            Some(clients),
            graph.map(|g| g as Arc<dyn uc_access::graph::GraphApi>),
            ledger,
            clock,
        );
        let state = AppState::new(services);
        let services = state.services.clone();
        let router = app::router(state).nest(local_issuer::MOUNT_PATH, issuer.router());
        Ok(Self {
            base_url,
            standin,
            issuer,
            services,
            app,
            router,
            schedule: settings.revoke_schedule.clone(),
        })
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            app,
            router,
            standin,
            ..
        } = self;
        let served = app.serve(router, shutdown).await;
        let _ = standin.shutdown().await;
        served
    }

    /// Serves and, like the Functions host, invokes `revoke-expired` on `REVOKE_SCHEDULE` with a
    /// host-shaped timer payload.
    pub async fn serve_with_timer(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let url = format!("{}revoke-expired", self.base_url);
        let schedule = self.schedule.clone();
        tracing::info!(
            schedule = schedule.expression(),
            "local revoke timer started"
        );
        let timer = tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                tokio::time::sleep(schedule.until_next()).await;
                let payload = serde_json::json!({
                    "Data": {"timer": {"Schedule": {"AdjustForDST": false}, "ScheduleStatus": null, "IsPastDue": false}},
                    "Metadata": {"sys": {"MethodName": "revoke-expired"}}
                });
                match client.post(&url).json(&payload).send().await {
                    Ok(r) => {
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        let report = &body["ReturnValue"];
                        if report["due"].as_u64().unwrap_or(0) > 0 {
                            tracing::info!(report = %report, "revoke-expired ran");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "local timer could not reach the app"),
                }
            }
        });
        let served = self.serve(shutdown).await;
        timer.abort();
        served
    }
}
