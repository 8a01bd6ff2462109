//! The doctor: a "Test connection" for a deployment. Each check proves one thing uc-access needs —
//! settings, the audiences callers' tokens carry, a Databricks token per host, account SCIM, each
//! workspace, `MANAGE` on each governed catalog, Microsoft Graph's permissions when it is used, a
//! writable ledger, readable secrets — and every failure names its fix.
//!
//! Checks run in order and never stop early: an operator fixing a deployment wants the whole list.
//! Checks that depend on a failed one (a catalog in an unreachable workspace) fail saying so.

mod auth;
mod databricks;
mod graph;
mod vault;

pub use vault::VaultProbe;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::auth::Authenticator;
use crate::databricks::DatabricksClients;
use crate::domain::Workspaces;
use crate::host::peer::ALLOW_REMOTE_INVOCATIONS;
use crate::ledger::{LedgerStore, ROLE_NEEDED};
use crate::settings::{
    BIND_ADDRESS, Exposure, GOVERNED_CATALOGS, GovernedCatalogs, ServerSettings, SettingsError,
};

/// One check's outcome. `fix` says what to change when `ok` is false (and may advise when it is true).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A passing check with advice (a check that could not run because nothing is configured for it).
    pub fn advise(mut self, advice: impl Into<String>) -> Self {
        self.fix = Some(advice.into());
        self
    }

    /// The settings check: loaded, or the key that stopped them.
    pub fn settings(loaded: Result<(), &SettingsError>) -> Self {
        match loaded {
            Ok(()) => Self::pass("settings", "every setting loaded and passed validation"),
            Err(e) => Self::fail(
                "settings",
                e.to_string(),
                format!("set {} correctly in the Function app's settings", e.key),
            ),
        }
    }
}

/// Every check, and whether all passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Self {
        Self {
            ok: checks.iter().all(|c| c.ok),
            checks,
        }
    }

    /// The check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            writeln!(f, "{mark} {}: {}", c.name, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "     fix: {fix}")?;
            }
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        if failed == 0 {
            write!(f, "all {} checks passed", self.checks.len())
        } else {
            write!(f, "{failed} of {} checks failed", self.checks.len())
        }
    }
}

/// The secrets adapter's side of the doctor: reads every secret the configuration takes from Key Vault
/// and reports one check per secret (implemented by [`VaultProbe`]).
#[async_trait]
pub trait SecretsProbe: Send + Sync + fmt::Debug {
    async fn probe(&self, budget: Duration) -> Vec<Check>;
}

/// What the doctor looks at: the same parts the functions use.
#[derive(Debug, Clone)]
pub struct Doctor<'a> {
    /// Where the handler listens and who may send invocation payloads.
    pub server: &'a ServerSettings,
    /// The callers' authenticator: its audiences, and the tokens it refused for their audience alone.
    pub auth: &'a Authenticator,
    /// Checks the caller made that need no I/O and belong to a layer above this one (the host's locks).
    pub extra: Vec<Check>,
    /// `None` when the Databricks settings are absent.
    pub databricks: Option<&'a DatabricksClients>,
    pub workspaces: &'a Workspaces,
    pub governed: &'a GovernedCatalogs,
    /// Whether policy can provision through Delta Sharing (then `SELECT` on governed catalogs is checked).
    pub sharing: bool,
    pub ledger: &'a dyn LedgerStore,
    /// Microsoft Graph, when configured.
    pub graph: Option<&'a dyn crate::graph::GraphApi>,
    /// The secrets to read (`None`: the check is skipped, saying so).
    pub secrets: Option<&'a dyn SecretsProbe>,
    /// The most any one check may wait.
    pub budget: Duration,
}

impl Doctor<'_> {
    /// Runs every check after the settings check the caller made (settings are loaded before the
    /// doctor's parts can exist).
    pub async fn run(&self, settings: Check) -> Report {
        let mut checks = vec![
            settings,
            listener_check(self.server),
            auth::audience_check(self.auth),
        ];
        checks.extend(self.extra.iter().cloned());
        match self.databricks {
            Some(clients) => {
                checks.extend(
                    databricks::checks(clients, self.workspaces, self.governed, self.sharing, self.budget)
                        .await,
                );
            }
            None => checks.push(Check::fail(
                "databricks.settings",
                "no Databricks settings: uc-access answers every request with 503",
                "set DATABRICKS_ACCOUNT_ID, DATABRICKS_HOST and the credentials (DATABRICKS_AUTH_TYPE and its keys)",
            )),
        }
        checks.extend(graph::checks(self.graph, self.budget).await);
        checks.push(self.ledger_check().await);
        checks.extend(self.secrets_checks().await);
        Report::new(checks)
    }

    async fn ledger_check(&self) -> Check {
        match tokio::time::timeout(self.budget, self.ledger.probe()).await {
            Ok(Ok(done)) => Check::pass("ledger", done),
            Ok(Err(e)) => Check::fail(
                "ledger",
                e.to_string(),
                format!(
                    "check LEDGER_BACKEND and its location (LEDGER_BLOB_ACCOUNT_URL and LEDGER_CONTAINER, or \
                     LEDGER_DIR); in Azure grant the Function app's managed identity {ROLE_NEEDED} on the \
                     ledger container"
                ),
            ),
            Err(_) => Check::fail(
                "ledger",
                format!("the ledger did not answer within {:?}", self.budget),
                "check the storage account's network rules and that the Function app can reach it",
            ),
        }
    }

    async fn secrets_checks(&self) -> Vec<Check> {
        match self.secrets {
            Some(secrets) => secrets.probe(self.budget).await,
            None => vec![Check::pass(
                "secrets",
                "not checked: no secrets were given to the doctor",
            )],
        }
    }
}

/// Whether the listener lets anyone but the Functions host send invocation payloads, which carry no
/// caller credentials: a failure when it does, advice when it listens beyond loopback at all.
pub fn listener_check(server: &ServerSettings) -> Check {
    const NAME: &str = "listener";
    let warning = server.exposure_warning();
    match (server.exposure(), warning) {
        (Exposure::Loopback, _) | (_, None) => Check::pass(
            NAME,
            format!(
                "listening on {} (loopback): only this machine, where the Functions host runs, can connect",
                server.addr
            ),
        ),
        (Exposure::Guarded, Some(warning)) => Check::pass(NAME, warning).advise(format!(
            "unset {BIND_ADDRESS} to listen on 127.0.0.1, unless something other than the Functions host must reach the handler"
        )),
        (Exposure::Open, Some(warning)) => Check::fail(
            NAME,
            warning,
            format!(
                "unset {ALLOW_REMOTE_INVOCATIONS} (invocation payloads are then accepted from loopback only), or unset {BIND_ADDRESS} to listen on 127.0.0.1"
            ),
        ),
    }
}

/// The advice when no catalog is known to be governed.
fn no_governed_catalogs() -> Check {
    Check::pass(
        "catalogs",
        "no governed catalogs are configured, so MANAGE was checked nowhere",
    )
    .advise(format!(
        "set {GOVERNED_CATALOGS} (e.g. `sales,hr`), or name catalogs in the policy's [names] allow list"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_passes_only_when_every_check_passes() {
        let pass = Check::pass("a", "fine");
        let fail = Check::fail("b", "broken", "mend it");
        assert!(Report::new(vec![pass.clone()]).ok);
        let report = Report::new(vec![pass, fail]);
        assert!(!report.ok);
        assert_eq!(report.check("b").unwrap().fix.as_deref(), Some("mend it"));
    }

    #[test]
    fn the_printed_report_marks_failures_and_shows_their_fix() {
        let report = Report::new(vec![
            Check::pass("settings", "loaded"),
            Check::fail("ledger", "403", "grant the role"),
        ]);
        let text = report.to_string();
        assert!(text.contains("ok   settings: loaded"), "{text}");
        assert!(
            text.contains("FAIL ledger: 403\n     fix: grant the role"),
            "{text}"
        );
        assert!(text.ends_with("1 of 2 checks failed"), "{text}");
    }

    #[test]
    fn the_listener_check_fails_when_anyone_may_send_invocations_and_advises_beyond_loopback() {
        use crate::env::Env;

        let server = |pairs: &[(&str, &str)]| {
            ServerSettings::from_env(&Env::from_pairs(pairs.iter().copied())).unwrap()
        };
        let loopback = listener_check(&server(&[]));
        assert!(loopback.ok && loopback.fix.is_none(), "{loopback:?}");

        let guarded = listener_check(&server(&[(BIND_ADDRESS, "0.0.0.0")]));
        assert!(
            guarded.ok,
            "invocations are refused from other peers: {guarded:?}"
        );
        assert!(guarded.detail.contains("0.0.0.0"), "{guarded:?}");
        assert!(guarded.fix.unwrap().contains(BIND_ADDRESS));

        let open = listener_check(&server(&[
            (BIND_ADDRESS, "0.0.0.0"),
            (ALLOW_REMOTE_INVOCATIONS, "true"),
        ]));
        assert!(!open.ok, "{open:?}");
        assert!(open.detail.contains("revoke-expired"), "{open:?}");
        let fix = open.fix.unwrap();
        assert!(
            fix.contains(ALLOW_REMOTE_INVOCATIONS) && fix.contains(BIND_ADDRESS),
            "{fix}"
        );
    }

    #[test]
    fn a_settings_failure_names_the_key_to_set() {
        let e = SettingsError::new("DATABRICKS_ACCOUNT_ID", "must be a GUID");
        let c = Check::settings(Err(&e));
        assert!(!c.ok);
        assert!(c.fix.unwrap().contains("DATABRICKS_ACCOUNT_ID"));
    }
}
