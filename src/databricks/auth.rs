//! Token caching (refresh before expiry, one refresh in flight) and the choice of token source per
//! Databricks host, built from the settings.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

    /// Drops the cached token (after the API refused it) so the next call fetches a new one.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
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

/// Hands out the token source for the account host and for each workspace host. Entra ID and static
/// tokens work everywhere; OAuth M2M tokens are minted per host (workspace or account endpoint).
#[derive(Debug)]
pub struct DatabricksAuth {
    kind: AuthKind,
    account: Arc<CachingTokenSource>,
    workspaces: Mutex<HashMap<String, Arc<CachingTokenSource>>>,
    fetches: Arc<AtomicU64>,
    margin: Duration,
}

#[derive(Debug)]
enum AuthKind {
    /// One source for every host.
    Shared,
    /// Per-host OAuth M2M sources, built on demand.
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
        let AuthKind::PerHost {
            http,
            client_id,
            client_secret,
            timeout,
        } = &self.kind
        else {
            return self.account.clone();
        };
        let mut map = self
            .workspaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(host.origin().ascii_serialization())
            .or_insert_with(|| {
                Arc::new(CachingTokenSource::counting_into(
                    Arc::new(OAuthM2mTokenSource::new(
                        http.clone(),
                        OAuthM2mTokenSource::workspace_token_url(host),
                        client_id.clone(),
                        client_secret.clone(),
                        *timeout,
                    )),
                    self.margin,
                    self.fetches.clone(),
                ))
            })
            .clone()
    }

    /// Tokens fetched across all hosts since start.
    pub fn token_fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}
