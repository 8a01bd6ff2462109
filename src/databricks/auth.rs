//! Token caching (refresh before expiry, one refresh in flight) and the choice of token source per
//! Databricks host, built from the settings.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use url::Url;

use super::error::DatabricksError;
use super::settings::{AuthSettings, DatabricksSettings};
use super::token::{
    BearerToken, EntraClientSecretSource, EntraTokenSource, OAuthM2mTokenSource, StaticToken,
    TokenSource,
};
use crate::secrets::LiveSecret;

/// Tokens are renewed this long before they expire, so a request never leaves with a token that dies
/// in flight.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Keeps a token until `margin` before its expiry. The async mutex is held across the fetch, so one
/// refresh is in flight at a time and concurrent callers wait for it and then share its token.
#[derive(Debug)]
pub struct CachingTokenSource {
    inner: Arc<dyn TokenSource>,
    margin: Duration,
    cached: tokio::sync::Mutex<Option<BearerToken>>,
    fetches: Arc<AtomicU64>,
}

impl CachingTokenSource {
    pub fn new(inner: Arc<dyn TokenSource>, margin: Duration) -> Self {
        Self::counting_into(inner, margin, Arc::new(AtomicU64::new(0)))
    }

    /// Like `new`, adding its fetches to a shared counter (one per process, for the benchmarks).
    pub fn counting_into(
        inner: Arc<dyn TokenSource>,
        margin: Duration,
        fetches: Arc<AtomicU64>,
    ) -> Self {
        Self {
            inner,
            margin,
            cached: tokio::sync::Mutex::new(None),
            fetches,
        }
    }

    /// Tokens fetched from the underlying source so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Whether `token` is the one cached now (waits for a fetch in flight).
    async fn holds(&self, token: &BearerToken) -> bool {
        self.cached
            .lock()
            .await
            .as_ref()
            .is_some_and(|t| t.expose() == token.expose())
    }
}

#[async_trait]
impl TokenSource for CachingTokenSource {
    async fn token(&self) -> Result<BearerToken, DatabricksError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.fresh_for(self.margin)) {
            return Ok(token.clone());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let token = self.inner.token().await?;
        *cached = Some(token.clone());
        Ok(token)
    }
}

/// OAuth M2M tokens for one workspace host: the account-level token first (one token fetch then serves
/// the account and every workspace), and, once the workspace refuses it as not authenticated, a
/// workspace-level token from the workspace's own endpoint for the rest of the process.
///
/// That workspaces accept account-level tokens is stated by Databricks (databricks-sdk-go PR #943) but
/// unverified against Azure Databricks; the switch makes either answer work, at the cost of one refused
/// request per workspace per process when the workspace refuses.
#[derive(Debug)]
pub struct AccountFirstTokens {
    host: String,
    account: Arc<CachingTokenSource>,
    /// Fetches nothing until the first `token()` after the switch; its lock keeps that to one fetch
    /// however many callers switch at once.
    workspace: Arc<CachingTokenSource>,
    use_workspace: AtomicBool,
}

impl AccountFirstTokens {
    /// Whether this host has refused the account-level token and now gets workspace-level tokens.
    pub fn uses_workspace_token(&self) -> bool {
        self.use_workspace.load(Ordering::Acquire)
    }

    /// The workspace-level source alone, whichever token the host uses now (the doctor checks it).
    pub fn workspace_level(&self) -> Arc<dyn TokenSource> {
        self.workspace.clone()
    }
}

#[async_trait]
impl TokenSource for AccountFirstTokens {
    async fn token(&self) -> Result<BearerToken, DatabricksError> {
        if self.uses_workspace_token() {
            self.workspace.token().await
        } else {
            self.account.token().await
        }
    }

    async fn refused(&self, used: &BearerToken) -> bool {
        if !self.use_workspace.swap(true, Ordering::AcqRel) {
            tracing::info!(
                host = %self.host,
                "the workspace refused the account-level OAuth token; using a workspace-level token for this host from now on"
            );
            return true;
        }
        // Already switched: a request that left with the account token before the switch is worth one
        // more try; one refused with the workspace-level token is not (there is no third kind). The
        // account token stays cached: the account APIs still accept it.
        !self.workspace.holds(used).await
    }
}

/// Hands out the token source for the account host and for each workspace host. Entra ID and static
/// tokens work everywhere; with OAuth M2M the account-level token serves the account and, until a
/// workspace refuses it, the workspaces (see `AccountFirstTokens`).
#[derive(Debug)]
pub struct DatabricksAuth {
    kind: AuthKind,
    account: Arc<CachingTokenSource>,
    workspaces: Mutex<HashMap<String, Arc<AccountFirstTokens>>>,
    fetches: Arc<AtomicU64>,
    margin: Duration,
}

#[derive(Debug)]
enum AuthKind {
    /// One source for every host.
    Shared,
    /// OAuth M2M: the account-level token first on every host, per-host workspace-level sources built
    /// on demand.
    PerHost {
        http: reqwest::Client,
        client_id: String,
        client_secret: LiveSecret,
        timeout: Duration,
    },
}

impl DatabricksAuth {
    /// One token source for every host (Entra ID, static, or a test fake).
    pub fn shared(source: Arc<dyn TokenSource>) -> Self {
        let fetches = Arc::new(AtomicU64::new(0));
        Self {
            kind: AuthKind::Shared,
            account: Arc::new(CachingTokenSource::counting_into(
                source,
                DEFAULT_REFRESH_MARGIN,
                fetches.clone(),
            )),
            workspaces: Mutex::new(HashMap::new()),
            fetches,
            margin: DEFAULT_REFRESH_MARGIN,
        }
    }

    /// Builds the token sources the settings ask for. `http` is the client M2M token calls use.
    pub fn from_settings(
        settings: &DatabricksSettings,
        http: reqwest::Client,
    ) -> Result<Self, DatabricksError> {
        let entra = |credential: Arc<dyn azure_core::credentials::TokenCredential>| {
            Self::shared(Arc::new(EntraTokenSource::new(credential)))
        };
        let setup_error = |e: azure_core::Error| DatabricksError::Unauthenticated {
            detail: format!("cannot set up the Entra ID credential: {e}"),
            upstream: None,
        };
        Ok(match &settings.auth {
            AuthSettings::Pat { token } => Self::shared(Arc::new(StaticToken::new(token.clone()))),
            AuthSettings::AzureMsi { client_id } => {
                let options = ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    ..Default::default()
                };
                entra(ManagedIdentityCredential::new(Some(options)).map_err(setup_error)?)
            }
            AuthSettings::AzureClientSecret {
                tenant_id,
                client_id,
                client_secret,
            } => Self::shared(Arc::new(
                EntraClientSecretSource::new(tenant_id, client_id, client_secret.clone())
                    .map_err(setup_error)?,
            )),
            AuthSettings::OAuthM2m {
                client_id,
                client_secret,
            } => {
                let fetches = Arc::new(AtomicU64::new(0));
                let account = OAuthM2mTokenSource::new(
                    http.clone(),
                    OAuthM2mTokenSource::account_token_url(
                        &settings.account_host,
                        &settings.account_id,
                    ),
                    client_id.clone(),
                    client_secret.clone(),
                    settings.request_timeout,
                );
                Self {
                    kind: AuthKind::PerHost {
                        http,
                        client_id: client_id.clone(),
                        client_secret: client_secret.clone(),
                        timeout: settings.request_timeout,
                    },
                    account: Arc::new(CachingTokenSource::counting_into(
                        Arc::new(account),
                        DEFAULT_REFRESH_MARGIN,
                        fetches.clone(),
                    )),
                    workspaces: Mutex::new(HashMap::new()),
                    fetches,
                    margin: DEFAULT_REFRESH_MARGIN,
                }
            }
        })
    }

    /// The token source for the account APIs (SCIM, identity).
    pub fn account(&self) -> Arc<dyn TokenSource> {
        self.account.clone()
    }

    /// The token source for one workspace host.
    pub fn workspace(&self, host: &Url) -> Arc<dyn TokenSource> {
        match self.m2m_workspace(host) {
            Some(tokens) => tokens,
            None => self.account.clone(),
        }
    }

    /// With OAuth M2M, one workspace host's tokens (account-level first, workspace-level after a
    /// refusal); `None` for the other kinds, where one token serves every host.
    pub fn m2m_workspace(&self, host: &Url) -> Option<Arc<AccountFirstTokens>> {
        let AuthKind::PerHost {
            http,
            client_id,
            client_secret,
            timeout,
        } = &self.kind
        else {
            return None;
        };
        let origin = host.origin().ascii_serialization();
        let mut map = self
            .workspaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tokens = map.entry(origin.clone()).or_insert_with(|| {
            let workspace = CachingTokenSource::counting_into(
                Arc::new(OAuthM2mTokenSource::new(
                    http.clone(),
                    OAuthM2mTokenSource::workspace_token_url(host),
                    client_id.clone(),
                    client_secret.clone(),
                    *timeout,
                )),
                self.margin,
                self.fetches.clone(),
            );
            Arc::new(AccountFirstTokens {
                host: origin,
                account: self.account.clone(),
                workspace: Arc::new(workspace),
                use_workspace: AtomicBool::new(false),
            })
        });
        Some(tokens.clone())
    }

    /// Tokens fetched across all hosts since start.
    pub fn token_fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    /// Hands out `<name>-1`, `<name>-2`, ... after a short pause (so concurrent callers overlap).
    #[derive(Debug)]
    struct Numbered {
        name: &'static str,
        issued: AtomicU64,
    }

    impl Numbered {
        fn new(name: &'static str) -> Arc<Self> {
            Arc::new(Self {
                name,
                issued: AtomicU64::new(0),
            })
        }
    }

    #[async_trait]
    impl TokenSource for Numbered {
        async fn token(&self) -> Result<BearerToken, DatabricksError> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(BearerToken::new(
                SecretString::from(format!("{}-{n}", self.name)),
                None,
            ))
        }
    }

    fn account_first(account: &Arc<Numbered>, workspace: &Arc<Numbered>) -> AccountFirstTokens {
        let cache = |source: &Arc<Numbered>| {
            Arc::new(CachingTokenSource::new(
                source.clone(),
                DEFAULT_REFRESH_MARGIN,
            ))
        };
        AccountFirstTokens {
            host: "https://adb-1.azuredatabricks.net".into(),
            account: cache(account),
            workspace: cache(workspace),
            use_workspace: AtomicBool::new(false),
        }
    }

    #[tokio::test]
    async fn the_account_token_serves_a_workspace_until_the_workspace_refuses_it() {
        let (account, workspace) = (Numbered::new("account"), Numbered::new("workspace"));
        let tokens = account_first(&account, &workspace);
        let first = tokens.token().await.unwrap();
        assert_eq!(first.expose(), "account-1");
        assert_eq!(tokens.token().await.unwrap().expose(), "account-1");
        assert_eq!(workspace.issued.load(Ordering::SeqCst), 0);

        assert!(tokens.refused(&first).await, "worth one retry");
        assert!(tokens.uses_workspace_token());
        assert_eq!(tokens.token().await.unwrap().expose(), "workspace-1");
        assert_eq!(tokens.token().await.unwrap().expose(), "workspace-1");
        assert_eq!(workspace.issued.load(Ordering::SeqCst), 1);
        // The account token stays cached for the account APIs.
        assert_eq!(tokens.account.token().await.unwrap().expose(), "account-1");
        assert_eq!(account.issued.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_workspace_token_is_not_retried() {
        let (account, workspace) = (Numbered::new("account"), Numbered::new("workspace"));
        let tokens = account_first(&account, &workspace);
        let first = tokens.token().await.unwrap();
        assert!(tokens.refused(&first).await);
        let second = tokens.token().await.unwrap();
        assert!(!tokens.refused(&second).await, "no third kind of token");
        assert!(tokens.uses_workspace_token());
    }

    #[tokio::test]
    async fn concurrent_refusals_fetch_one_workspace_token_and_each_retry_once() {
        let (account, workspace) = (Numbered::new("account"), Numbered::new("workspace"));
        let tokens = Arc::new(account_first(&account, &workspace));
        let first = tokens.token().await.unwrap();
        let callers: Vec<_> = (0..16)
            .map(|_| {
                let (tokens, used) = (tokens.clone(), first.clone());
                tokio::spawn(async move {
                    let retry = tokens.refused(&used).await;
                    (retry, tokens.token().await.unwrap().expose().to_owned())
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), (true, "workspace-1".to_owned()));
        }
        assert_eq!(workspace.issued.load(Ordering::SeqCst), 1);
        assert_eq!(account.issued.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn shared_sources_and_m2m_hand_out_what_their_kind_needs() {
        let host = Url::parse("https://adb-1.azuredatabricks.net").unwrap();
        let shared = DatabricksAuth::shared(Numbered::new("entra"));
        assert!(shared.m2m_workspace(&host).is_none());

        let settings = DatabricksSettings::from_env(&crate::settings::Env::from_pairs([
            (
                "DATABRICKS_ACCOUNT_ID",
                "11111111-2222-3333-4444-555555555555",
            ),
            ("DATABRICKS_CLIENT_ID", "sp-client"),
            ("DATABRICKS_CLIENT_SECRET", "s"),
        ]))
        .unwrap();
        let m2m = DatabricksAuth::from_settings(&settings, reqwest::Client::new()).unwrap();
        let a = m2m.m2m_workspace(&host).unwrap();
        let b = m2m
            .m2m_workspace(&Url::parse("https://adb-1.azuredatabricks.net/some/path").unwrap())
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b), "one source per workspace origin");
        assert!(!a.uses_workspace_token());
    }
}
