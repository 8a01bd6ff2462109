//! A TTL cache in front of any [`SecretStore`]: Key Vault throttles per vault, and a rotated secret is
//! picked up once its cached copy expires, without a restart.
//!
//! Decisions, in the order `get` applies them:
//! - a value younger than `ttl` is served without asking the store;
//! - one read per name is in flight at a time (single flight): concurrent callers wait for it and share
//!   its answer, so a burst of requests after expiry costs one Key Vault call;
//! - after a failed read the store is not asked again for `failure_backoff` (or the `Retry-After` Key
//!   Vault sent, when longer), so a throttled or broken vault is not hammered;
//! - when the read fails for a reason that may pass by itself (throttling, an outage) and the previous
//!   value expired less than `stale_grace` ago, that value is served and a warning logged: a rotation
//!   keeps the old value valid for a while, and an outage of Key Vault should not stop grants. A refusal
//!   (403), a missing secret (404) or a bad identity (401) is an operator's change: the old value is
//!   dropped and the error returned.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use tokio::time::Instant;

use super::{SecretError, SecretStore};

/// Pause after a failed read before the store is asked again (unless it asked for longer).
pub const DEFAULT_FAILURE_BACKOFF: Duration = Duration::from_secs(5);

/// How long values are kept and how failures are absorbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// A value is served from the cache for this long after it was read.
    pub ttl: Duration,
    /// After `ttl`, how much longer an expired value may be served while the store is unavailable.
    /// Zero never serves an expired value.
    pub stale_grace: Duration,
    /// After a failed read, how long callers get the same answer without a new read.
    pub failure_backoff: Duration,
}

impl CachePolicy {
    pub fn new(ttl: Duration, stale_grace: Duration) -> Self {
        Self {
            ttl,
            stale_grace,
            failure_backoff: DEFAULT_FAILURE_BACKOFF,
        }
    }
}

/// What is known about one name. Guarded by an async mutex held across the read (single flight).
#[derive(Default)]
struct Slot {
    value: Option<(SecretString, Instant)>,
    /// The last failure and the instant before which it is repeated instead of asking again.
    failure: Option<(SecretError, Instant)>,
}

/// Caches another store's answers; see the module documentation for the rules.
pub struct CachedSecrets<S> {
    inner: S,
    policy: CachePolicy,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    reads: AtomicU64,
}

impl<S: fmt::Debug> fmt::Debug for CachedSecrets<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedSecrets")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S> CachedSecrets<S> {
    pub fn new(inner: S, policy: CachePolicy) -> Self {
        Self {
            inner,
            policy,
            slots: Mutex::new(HashMap::new()),
            reads: AtomicU64::new(0),
        }
    }

    /// Reads sent to the underlying store so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub fn policy(&self) -> CachePolicy {
        self.policy
    }

    fn slot(&self, name: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry(name.to_owned()).or_default().clone()
    }

    /// The expired value, if the failure may pass by itself and the value is within its grace period.
    fn stale(&self, slot: &Slot, error: &SecretError, now: Instant) -> Option<SecretString> {
        let (value, read_at) = slot.value.as_ref()?;
        let usable_until = *read_at + self.policy.ttl + self.policy.stale_grace;
        (error.is_retryable() && now < usable_until).then(|| value.clone())
    }
}

#[async_trait]
impl<S: SecretStore> SecretStore for CachedSecrets<S> {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        let slot = self.slot(name);
        let mut slot = slot.lock().await;
        let now = Instant::now();
        if let Some((value, read_at)) = &slot.value
            && now < *read_at + self.policy.ttl
        {
            return Ok(value.clone());
        }
        if let Some((error, until)) = &slot.failure
            && now < *until
        {
            return self.stale(&slot, error, now).ok_or_else(|| error.clone());
        }

        self.reads.fetch_add(1, Ordering::Relaxed);
        match self.inner.get(name).await {
            Ok(value) => {
                slot.value = Some((value.clone(), Instant::now()));
                slot.failure = None;
                Ok(value)
            }
            Err(error) => {
                let now = Instant::now();
                let pause = error
                    .retry_after()
                    .map_or(self.policy.failure_backoff, |asked| {
                        asked.max(self.policy.failure_backoff)
                    });
                slot.failure = Some((error.clone(), now + pause));
                if let Some(stale) = self.stale(&slot, &error, now) {
                    tracing::warn!(
                        secret = name,
                        error = %error,
                        "cannot refresh the secret; serving the value read earlier until the store answers or its grace period ends"
                    );
                    return Ok(stale);
                }
                if !error.is_retryable() {
                    slot.value = None;
                }
                Err(error)
            }
        }
    }

    async fn invalidate(&self, name: &str) {
        let slot = self.slot(name);
        let mut slot = slot.lock().await;
        slot.value = None;
        slot.failure = None;
    }
}

#[cfg(test)]
mod tests;
