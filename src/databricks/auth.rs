//! Token caching (refresh before expiry or after a refusal, one refresh in flight) and the choice of
//! token source per Databricks host, built from the settings.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
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

/// A refused token is dropped (and the refused request sent once more with a new one) only when it is
/// at least this old: a token fetched moments ago and refused means the credential lacks access, and
/// fetching again would not help; the rule also bounds the extra fetches of a source whose every token
/// is refused to one per this interval.
pub const MIN_AGE_TO_DROP_REFUSED: Duration = Duration::from_secs(60);

/// Keeps a token until `margin` before its expiry, and drops it earlier when an API refuses it (a
/// token revoked or invalidated before it expires would otherwise fail every request until renewal).
/// Every request reads the token without waiting; one fetch is in flight at a time, and callers who
/// find no fresh token wait for it and share its token.
#[derive(Debug)]
pub struct CachingTokenSource {
    inner: Arc<dyn TokenSource>,
    margin: Duration,
    /// The token handed out now and when it was fetched. A plain lock, held only to copy or replace.
    current: std::sync::RwLock<Option<Cached>>,
    /// Held across a fetch.
    fetching: tokio::sync::Mutex<()>,
    fetches: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
struct Cached {
    token: BearerToken,
    fetched_at: tokio::time::Instant,
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
            current: std::sync::RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            fetches,
        }
    }

    /// Tokens fetched from the underlying source so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The cached token, if it is still fresh.
    fn fresh(&self) -> Option<BearerToken> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|c| c.token.fresh_for(self.margin))
            .map(|c| c.token.clone())
    }
}

#[async_trait]
impl TokenSource for CachingTokenSource {
    async fn token(&self) -> Result<BearerToken, DatabricksError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _fetching = self.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let token = self.inner.token().await?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Cached {
            token: token.clone(),
            fetched_at: tokio::time::Instant::now(),
        });
        Ok(token)
    }

    /// Worth a retry when `used` is no longer the cached token (another caller or a renewal replaced
    /// it), or when it is and is old enough to drop ([`MIN_AGE_TO_DROP_REFUSED`]); the retry's
    /// `token()` then fetches a new one.
    async fn refused(&self, used: &BearerToken) -> bool {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match current.as_ref() {
            Some(c) if c.token.expose() == used.expose() => {
                let age = c.fetched_at.elapsed();
                if age < MIN_AGE_TO_DROP_REFUSED {
                    return false;
                }
                tracing::warn!(
                    age_s = age.as_secs(),
                    "Databricks refused a cached token before its expiry; fetching a new one"
                );
                *current = None;
                true
            }
            _ => true,
        }
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
        // more try with the workspace-level token; one refused with the workspace-level token is worth
        // one only if that token is old enough to have been invalidated since (there is no third
        // kind). The account token stays cached: the account APIs still accept it.
        self.workspace.refused(used).await
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
            AuthSettings::AzureMsi { client_id } => entra(
                crate::outbound::managed_identity(client_id.clone(), &http).map_err(setup_error)?,
            ),
            AuthSettings::AzureClientSecret {
                tenant_id,
                client_id,
                client_secret,
            } => Self::shared(Arc::new(
                EntraClientSecretSource::new(
                    tenant_id,
                    client_id,
                    client_secret.clone(),
                    http.clone(),
                )
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

    /// Sixteen callers report `used` refused at once, then each asks for a token: whether each was told
    /// to retry, and the token each then got.
    async fn refuse_together(
        tokens: Arc<impl TokenSource + 'static>,
        used: &BearerToken,
    ) -> Vec<(bool, String)> {
        let callers: Vec<_> = (0..16)
            .map(|_| {
                let (tokens, used) = (tokens.clone(), used.clone());
                tokio::spawn(async move {
                    let retry = tokens.refused(&used).await;
                    (retry, tokens.token().await.unwrap().expose().to_owned())
                })
            })
            .collect();
        let mut answers = Vec::new();
        for caller in callers {
            answers.push(caller.await.unwrap());
        }
        answers
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
        for answer in refuse_together(tokens, &first).await {
            assert_eq!(answer, (true, "workspace-1".to_owned()));
        }
        assert_eq!(workspace.issued.load(Ordering::SeqCst), 1);
        assert_eq!(account.issued.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_token_is_dropped_once_it_is_old_enough_and_the_retry_gets_a_new_one() {
        let source = Numbered::new("t");
        let cache = CachingTokenSource::new(source.clone(), DEFAULT_REFRESH_MARGIN);
        let first = cache.token().await.unwrap();
        assert_eq!(first.expose(), "t-1");

        // Just fetched: the credential, not the token, is the problem; no retry, nothing fetched.
        assert!(!cache.refused(&first).await);
        assert_eq!(cache.token().await.unwrap().expose(), "t-1");
        assert_eq!(source.issued.load(Ordering::SeqCst), 1);

        tokio::time::advance(MIN_AGE_TO_DROP_REFUSED).await;
        assert!(
            cache.refused(&first).await,
            "an old refused token is worth one retry"
        );
        let second = cache.token().await.unwrap();
        assert_eq!(second.expose(), "t-2");
        assert_eq!(cache.fetches(), 2);

        // The new token refused at once: no third fetch (a source whose every token is refused costs
        // one extra fetch per interval, not one per request).
        assert!(!cache.refused(&second).await);
        // A request that left with the old token is worth a retry with the new one, fetching nothing.
        assert!(cache.refused(&first).await);
        assert_eq!(cache.token().await.unwrap().expose(), "t-2");
        assert_eq!(source.issued.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_refusals_of_one_old_token_fetch_one_new_token() {
        let source = Numbered::new("t");
        let cache = Arc::new(CachingTokenSource::new(
            source.clone(),
            DEFAULT_REFRESH_MARGIN,
        ));
        let old = cache.token().await.unwrap();
        tokio::time::advance(MIN_AGE_TO_DROP_REFUSED * 2).await;
        for answer in refuse_together(cache, &old).await {
            assert_eq!(answer, (true, "t-2".to_owned()));
        }
        assert_eq!(source.issued.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_old_workspace_token_refused_after_the_switch_is_replaced_once() {
        let (account, workspace) = (Numbered::new("account"), Numbered::new("workspace"));
        let tokens = account_first(&account, &workspace);
        let first = tokens.token().await.unwrap();
        assert!(tokens.refused(&first).await);
        let ws = tokens.token().await.unwrap();
        assert_eq!(ws.expose(), "workspace-1");
        tokio::time::advance(MIN_AGE_TO_DROP_REFUSED).await;
        assert!(tokens.refused(&ws).await);
        assert_eq!(tokens.token().await.unwrap().expose(), "workspace-2");
        assert!(tokens.uses_workspace_token());
        assert_eq!(account.issued.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn shared_sources_and_m2m_hand_out_what_their_kind_needs() {
        let host = Url::parse("https://adb-1.azuredatabricks.net").unwrap();
        let shared = DatabricksAuth::shared(Numbered::new("entra"));
        assert!(shared.m2m_workspace(&host).is_none());

        let settings = DatabricksSettings::from_env(&crate::env::Env::from_pairs([
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
