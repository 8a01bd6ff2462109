//! Typed settings, read once from the environment (the Function app's settings) and validated at start:
//! a bad or missing value stops the process with a message naming the key.

mod governed;
mod resolve;
mod schedule;
mod server;
mod sharing;
mod vault;
mod workspaces;

use std::time::Duration;

pub use crate::env::{Env, SettingsError};
pub use governed::{GOVERNED_CATALOGS, GovernedCatalog, GovernedCatalogs, GovernedSource};
pub use resolve::{RESOLVE_ORDER, resolve_order};
pub use schedule::{DEFAULT_SCHEDULE, REVOKE_SCHEDULE, RevokeSchedule};
pub use server::{BIND_ADDRESS, DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT, Exposure, ServerSettings};
pub use sharing::{
    DEFAULT_RECIPIENT_NAME, DEFAULT_SHARE_NAME, RECIPIENT_NAME, SHARE_NAME, ShareNaming,
};
pub use vault::{FromVault, InjectError, STARTUP_BUDGET, SecretUse, with_vault_secrets};
pub use workspaces::{
    AUTHORITIES, DEFAULT_WORKSPACE, WORKSPACES, host_string, workspaces_from_env,
};

use crate::auth::AuthSettings;
use crate::databricks::DatabricksSettings;
use crate::domain::Workspaces;
use crate::host::catalog::http_functions;
use crate::ledger::LedgerSettings;
use crate::policy::Policy;

/// Default time a resolved principal is cached.
pub const DEFAULT_PRINCIPAL_CACHE_SECONDS: u64 = 600;

/// Everything the binary reads from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub auth: AuthSettings,
    /// `None` until the Databricks settings are given: callbacks then answer "provisioning not
    /// configured" instead of pretending to grant.
    pub databricks: Option<DatabricksSettings>,
    pub principal_cache_ttl: Duration,
    pub workspaces: Workspaces,
    pub policy: Policy,
    pub ledger: LedgerSettings,
    /// How long an HTTP function may wait on Databricks before answering a retryable error.
    pub time_budget: Duration,
    pub revoke_schedule: RevokeSchedule,
    /// The catalogs where uc-access's principal needs `MANAGE` (what the doctor checks).
    pub governed_catalogs: GovernedCatalogs,
    /// How Delta Sharing provisioning names its shares and recipients.
    pub share_naming: ShareNaming,
    /// Microsoft Graph, when `UC_ACCESS_RESOLVE_WITH_GRAPH` is on.
    pub graph: Option<crate::graph::GraphSettings>,
    /// `UC_ACCESS_RESOLVE_ORDER`: how an Entra object id is looked up.
    pub resolve_order: Vec<crate::usecases::resolve::ResolvePath>,
}

/// Default for `UC_ACCESS_TIME_BUDGET_SECONDS`: well inside Purview's undocumented HTTP timeout and the
/// 230 s front-end cap.
pub const DEFAULT_TIME_BUDGET_SECONDS: u64 = 25;

impl Settings {
    /// Reads every setting; caller authentication settings are required.
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let auth = AuthSettings::from_env(env, &http_functions())?;
        Self::with_auth(env, auth)
    }

    /// Reads every setting but caller authentication, which is given (the local run's issuer).
    pub fn with_auth(env: &Env, auth: AuthSettings) -> Result<Self, SettingsError> {
        let databricks =
            if env.get("DATABRICKS_ACCOUNT_ID").is_some() || env.get("DATABRICKS_HOST").is_some() {
                Some(DatabricksSettings::from_env(env)?)
            } else {
                None
            };
        let cache_seconds = env.parse_or(
            "UC_ACCESS_PRINCIPAL_CACHE_SECONDS",
            DEFAULT_PRINCIPAL_CACHE_SECONDS,
        )?;
        let budget = env.parse_or("UC_ACCESS_TIME_BUDGET_SECONDS", DEFAULT_TIME_BUDGET_SECONDS)?;
        if !(1..=200).contains(&budget) {
            return Err(SettingsError::new(
                "UC_ACCESS_TIME_BUDGET_SECONDS",
                "must be between 1 and 200 (the Functions front end cuts HTTP answers at 230 s)",
            ));
        }
        let workspaces = workspaces_from_env(env)?;
        let policy = Policy::from_env(env)?;
        let governed_catalogs = GovernedCatalogs::from_env(env, &policy, &workspaces)?;
        let graph = crate::graph::GraphSettings::from_env(env)?;
        let resolve_order = resolve_order(
            env,
            graph.is_some(),
            databricks
                .as_ref()
                .is_some_and(|d| d.resolve_by_external_id),
        )?;
        Ok(Self {
            server: ServerSettings::from_env(env)?,
            auth,
            databricks,
            principal_cache_ttl: Duration::from_secs(cache_seconds),
            workspaces,
            policy,
            ledger: LedgerSettings::from_env(env)?,
            time_budget: Duration::from_secs(budget),
            revoke_schedule: RevokeSchedule::from_env(env)?,
            governed_catalogs,
            share_naming: ShareNaming::from_env(env)?,
            graph,
            resolve_order,
        })
    }
}
