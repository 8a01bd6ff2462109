//! The tenant's signing keys: fetched from the OpenID configuration's `jwks_uri`, cached, refreshed when
//! old, and refetched once (single-flight, rate-limited) when a token names a key id we do not know.
//!
//! The rate limit is what keeps forged key ids from making us a fetch amplifier, but it must not turn a
//! real key rollover into final refusals: while a refetch is held back, an unknown key id is answered
//! "not known yet, retry after the wait" rather than "unknown". Only a key set fetched after the token
//! arrived can say a key id is unknown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use serde::Deserialize;
use url::Url;
use uuid::Uuid;

use super::settings::{KeyRefreshPolicy, is_acceptable_key_url};

/// Why a key could not be produced for a key id.
#[derive(Debug)]
pub(crate) enum KeyError {
    /// A key set fetched after the token arrived does not contain the key id.
    Unknown,
    /// The key id is not in the cached set, and a refetch for an unknown key id happened less than the
    /// minimum interval ago, so none is made now. The key may be genuinely new: retry after `retry_after`.
    RefetchHeldBack { retry_after: Duration },
    /// The key set could not be loaded; the detail is for the log.
    Unavailable(String),
}

/// One loaded OpenID configuration and key set.
#[derive(Debug)]
pub(crate) struct KeySnapshot {
    /// The `issuer` of the OpenID configuration, with `{tenantid}` filled in.
    pub issuer: String,
    keys: HashMap<String, DecodingKey>,
    fetched_at: Instant,
    generation: u64,
}

#[derive(Debug, Default)]
struct RefreshState {
    last_failed_attempt: Option<Instant>,
    generation: u64,
}

#[derive(Debug)]
pub(crate) struct KeyStore {
    http: reqwest::Client,
    openid_configuration_url: Url,
    tenant_id: Uuid,
    policy: KeyRefreshPolicy,
    current: RwLock<Option<Arc<KeySnapshot>>>,
    // Held across the fetch so concurrent requests wait for one fetch instead of starting their own.
    refresh: tokio::sync::Mutex<RefreshState>,
    /// When an unknown key id last made us refetch. Written only while `refresh` is held; readable without
    /// it, so a refusal can say how long until the next refetch (`Retry-After`) without waiting for a fetch.
    last_unknown_kid_refetch: Mutex<Option<Instant>>,
}

#[derive(Deserialize)]
struct OpenIdConfiguration {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

impl KeyStore {
    pub(crate) fn new(
        http: reqwest::Client,
        openid_configuration_url: Url,
        tenant_id: Uuid,
        policy: KeyRefreshPolicy,
    ) -> Self {
        Self {
            http,
            openid_configuration_url,
            tenant_id,
            policy,
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            last_unknown_kid_refetch: Mutex::new(None),
        }
    }

    /// How long until an unknown key id may make us refetch again; `None` when it may now.
    pub(crate) fn unknown_kid_refetch_wait(&self) -> Option<Duration> {
        let last = *self
            .last_unknown_kid_refetch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        last.map(|at| {
            self.policy
                .min_refetch_interval
                .saturating_sub(at.elapsed())
        })
        .filter(|wait| !wait.is_zero())
    }

    fn snapshot(&self) -> Option<Arc<KeySnapshot>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The configuration issuer and the key for `kid`, loading or refreshing the key set as needed.
    pub(crate) async fn key_for(
        &self,
        kid: &str,
    ) -> Result<(Arc<KeySnapshot>, DecodingKey), KeyError> {
        let snapshot = self.fresh_snapshot().await?;
        if let Some(key) = snapshot.keys.get(kid) {
            return Ok((snapshot.clone(), key.clone()));
        }
        let snapshot = self.refetch_for_unknown_kid(snapshot.generation).await?;
        match snapshot.keys.get(kid) {
            Some(key) => Ok((snapshot.clone(), key.clone())),
            None => Err(KeyError::Unknown),
        }
    }

    /// The cached snapshot, loading it on first use and refreshing it when older than `max_age`.
    async fn fresh_snapshot(&self) -> Result<Arc<KeySnapshot>, KeyError> {
        let seen = self.snapshot();
        if let Some(s) = &seen
            && s.fetched_at.elapsed() < self.policy.max_age
        {
            return Ok(s.clone());
        }
        let mut state = self.refresh.lock().await;
        let now = self.snapshot();
        // Someone else refreshed while we waited for the lock.
        if let Some(s) = &now
            && seen
                .as_ref()
                .is_none_or(|old| old.generation != s.generation)
        {
            return Ok(s.clone());
        }
        // Entra unreachable: do not retry on every request; a stale key set is still useful meanwhile.
        if let Some(failed) = state.last_failed_attempt
            && failed.elapsed() < self.policy.min_refetch_interval
        {
            return now.ok_or_else(|| {
                KeyError::Unavailable(
                    "key set fetch failed recently; waiting before retrying".into(),
                )
            });
        }
        match self.fetch_and_store(&mut state).await {
            Ok(s) => Ok(s),
            Err(detail) => match now {
                Some(stale) => {
                    tracing::warn!(%detail, "could not refresh signing keys; using the cached set");
                    Ok(stale)
                }
                None => Err(KeyError::Unavailable(detail)),
            },
        }
    }

    async fn refetch_for_unknown_kid(
        &self,
        seen_generation: u64,
    ) -> Result<Arc<KeySnapshot>, KeyError> {
        let mut state = self.refresh.lock().await;
        // Someone fetched since this token arrived: that set is as current as one we would fetch now.
        if let Some(s) = self.snapshot()
            && s.generation != seen_generation
        {
            return Ok(s);
        }
        if let Some(retry_after) = self.unknown_kid_refetch_wait() {
            return Err(KeyError::RefetchHeldBack { retry_after });
        }
        *self
            .last_unknown_kid_refetch
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        self.fetch_and_store(&mut state)
            .await
            .map_err(KeyError::Unavailable)
    }

    async fn fetch_and_store(&self, state: &mut RefreshState) -> Result<Arc<KeySnapshot>, String> {
        match self.fetch().await {
            Ok((issuer, keys)) => {
                state.generation += 1;
                state.last_failed_attempt = None;
                let snapshot = Arc::new(KeySnapshot {
                    issuer,
                    keys,
                    fetched_at: Instant::now(),
                    generation: state.generation,
                });
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(snapshot.clone());
                tracing::info!(keys = snapshot.keys.len(), "loaded signing keys");
                Ok(snapshot)
            }
            Err(detail) => {
                state.last_failed_attempt = Some(Instant::now());
                Err(detail)
            }
        }
    }

    async fn fetch(&self) -> Result<(String, HashMap<String, DecodingKey>), String> {
        let config: OpenIdConfiguration = self
            .get_json(self.openid_configuration_url.clone())
            .await
            .map_err(|e| format!("OpenID configuration: {e}"))?;
        let jwks_uri = Url::parse(&config.jwks_uri)
            .map_err(|e| format!("OpenID configuration: jwks_uri is not a URL: {e}"))?;
        if !is_acceptable_key_url(&jwks_uri) {
            return Err("OpenID configuration: jwks_uri must be https".into());
        }
        let raw: RawKeySet = self
            .get_json(jwks_uri)
            .await
            .map_err(|e| format!("key set: {e}"))?;
        let keys: HashMap<_, _> = raw.keys.into_iter().filter_map(usable_key).collect();
        if keys.is_empty() {
            return Err("key set: no usable RSA signing key".into());
        }
        // The multi-tenant documents use a `{tenantid}` placeholder; ours is tenant-specific, but be exact.
        let issuer = config
            .issuer
            .replace("{tenantid}", &self.tenant_id.to_string());
        Ok((issuer, keys))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: Url) -> Result<T, String> {
        let response = self
            .http
            .get(url)
            .timeout(self.policy.http_timeout)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        response
            .json()
            .await
            .map_err(|e| format!("unexpected body: {e}"))
    }
}

/// An RSA signing key with a key id, or `None` for anything else in the set (encryption keys, other types).
fn usable_key(value: serde_json::Value) -> Option<(String, DecodingKey)> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    let kid = jwk.common.key_id.clone()?;
    if !matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    ) {
        return None;
    }
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        return None;
    };
    let key = DecodingKey::from_rsa_components(&rsa.n, &rsa.e).ok()?;
    Some((kid, key))
}
