//! Everything the functions need, built once from the settings (or assembled around parts made
//! elsewhere: the local run, tests, benchmarks) and shared by every request. The router (`app`) and the
//! functions both build on it; it knows neither.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::databricks::DatabricksClients;
use crate::domain::{WorkspaceRef, Workspaces};
use crate::error::ApiError;
use crate::ledger::LedgerStore;
use crate::settings::{GovernedCatalogs, ServerSettings, Settings};
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
