//! A secret as the code that uses it holds it: a value fixed at start (environment variables, local
//! runs) or a handle on a store (Key Vault behind the TTL cache), so that a rotated secret is used
//! without a restart.
//!
//! - [`LiveSecret::current`] reads through the store's cache; when the store cannot answer, the last
//!   value read is used (and a warning logged) rather than failing the call: an outage of Key Vault
//!   must not stop grants that the old value still authorises.
//! - [`LiveSecret::reload_after_refusal`] is for the moment the other side refused the value (Databricks'
//!   token endpoint, or a caller presenting the new Basic password): the cached copy is dropped and
//!   the store read again, at most once per [`MIN_RELOAD_INTERVAL`], so refused attempts from the
//!   outside cannot turn into a flood of Key Vault reads.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::SecretRef;

/// Shortest time between two forced re-reads of one secret.
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// A secret value that may change while the process runs. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct LiveSecret {
    last: Arc<Mutex<SecretString>>,
    source: Option<Source>,
}

#[derive(Clone)]
struct Source {
    secret: SecretRef,
    /// When the store was last re-read after a refusal.
    last_reload: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

impl fmt::Debug for LiveSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("LiveSecret");
        match &self.source {
            Some(source) => d.field("store", &source.secret.name().as_str()),
            None => d.field("store", &"(fixed)"),
        };
        d.finish_non_exhaustive()
    }
}

impl From<SecretString> for LiveSecret {
    fn from(value: SecretString) -> Self {
        Self::fixed(value)
    }
}

impl LiveSecret {
    /// A value that never changes (the environment, tests).
    pub fn fixed(value: SecretString) -> Self {
        Self {
            last: Arc::new(Mutex::new(value)),
            source: None,
        }
    }

    /// A value kept in a store; `initial` is the value already read (at start), used until the store
    /// answers.
    pub fn stored(initial: SecretString, secret: SecretRef) -> Self {
        Self {
            last: Arc::new(Mutex::new(initial)),
            source: Some(Source {
                secret,
                last_reload: Arc::new(tokio::sync::Mutex::new(None)),
            }),
        }
    }

    /// Whether the value can change (it comes from a store).
    pub fn is_stored(&self) -> bool {
        self.source.is_some()
    }

    /// The name of the store's secret, when there is one (for logs; never the value).
    pub fn store_name(&self) -> Option<&str> {
        self.source.as_ref().map(|s| s.secret.name().as_str())
    }

    /// The value read last (or the initial one), without asking the store.
    pub fn last_known(&self) -> SecretString {
        self.last()
    }

    fn last(&self) -> SecretString {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn remember(&self, value: &SecretString) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = value.clone();
    }

    /// The value to use now: the store's (through its cache), or the last one read when the store
    /// cannot answer.
    pub async fn current(&self) -> SecretString {
        let Some(source) = &self.source else {
            return self.last();
        };
        match source.secret.get().await {
            Ok(value) => {
                self.remember(&value);
                value
            }
            Err(error) => {
                tracing::warn!(
                    secret = %source.secret.name(),
                    error = %error,
                    "cannot read the secret; using the value read last"
                );
                self.last()
            }
        }
    }

    /// Reads the store again, bypassing its cache (the doctor's check). `None` for a fixed value.
    pub async fn read_fresh(&self) -> Option<Result<(), super::SecretError>> {
        let source = self.source.as_ref()?;
        source.secret.invalidate().await;
        Some(source.secret.get().await.map(|value| self.remember(&value)))
    }

    /// `refused` was just turned down by whoever checks it. Re-reads the store (bypassing its cache)
    /// unless that was done less than [`MIN_RELOAD_INTERVAL`] ago, and returns the new value when it
    /// differs from `refused`. `None`: nothing else to try.
    pub async fn reload_after_refusal(&self, refused: &SecretString) -> Option<SecretString> {
        let source = self.source.as_ref()?;
        let mut last_reload = source.last_reload.lock().await;
        let now = Instant::now();
        let recently = last_reload.is_some_and(|at| now.duration_since(at) < MIN_RELOAD_INTERVAL);
        if !recently {
            *last_reload = Some(now);
            source.secret.invalidate().await;
            match source.secret.get().await {
                Ok(value) => {
                    self.remember(&value);
                    tracing::info!(secret = %source.secret.name(), "secret re-read after a refusal");
                }
                Err(error) => tracing::warn!(
                    secret = %source.secret.name(),
                    error = %error,
                    "cannot re-read the secret after a refusal"
                ),
            }
        }
        drop(last_reload);
        let now_value = self.last();
        (now_value.expose_secret() != refused.expose_secret()).then_some(now_value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::secrets::{CachePolicy, CachedSecrets, SecretError, SecretName, SecretStore};

    /// A store whose value the test changes, counting reads.
    #[derive(Debug, Default)]
    struct Rotating {
        value: Mutex<Option<String>>,
        reads: AtomicU64,
    }

    #[async_trait]
    impl SecretStore for Rotating {
        async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            match self.value.lock().unwrap().clone() {
                Some(v) => Ok(SecretString::from(v)),
                None => Err(SecretError::Unavailable {
                    vault: "https://kv.example/".into(),
                    detail: format!("{name} unavailable"),
                }),
            }
        }
    }

    fn live(store: &Arc<Rotating>, policy: CachePolicy) -> LiveSecret {
        let cached: Arc<dyn SecretStore> = Arc::new(CachedSecrets::new(store.clone(), policy));
        LiveSecret::stored(
            SecretString::from("v1"),
            SecretRef::new(cached, SecretName::parse("s").unwrap()),
        )
    }

    fn set(store: &Rotating, value: Option<&str>) {
        *store.value.lock().unwrap() = value.map(str::to_owned);
    }

    #[tokio::test]
    async fn a_fixed_secret_never_changes_and_never_reloads() {
        let s = LiveSecret::fixed(SecretString::from("x"));
        assert_eq!(s.current().await.expose_secret(), "x");
        assert!(!s.is_stored());
        assert!(
            s.reload_after_refusal(&SecretString::from("x"))
                .await
                .is_none()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_is_seen_once_the_cache_expires() {
        let store = Arc::new(Rotating::default());
        set(&store, Some("v1"));
        let s = live(
            &store,
            CachePolicy::new(Duration::from_secs(300), Duration::ZERO),
        );
        assert_eq!(s.current().await.expose_secret(), "v1");
        set(&store, Some("v2"));
        assert_eq!(s.current().await.expose_secret(), "v1", "still cached");
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(s.current().await.expose_secret(), "v2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_rereads_the_store_at_once_but_not_more_than_twice_a_minute() {
        let store = Arc::new(Rotating::default());
        set(&store, Some("v1"));
        let s = live(
            &store,
            CachePolicy::new(Duration::from_secs(300), Duration::ZERO),
        );
        let v1 = s.current().await;
        set(&store, Some("v2"));
        let v2 = s.reload_after_refusal(&v1).await.expect("a new value");
        assert_eq!(v2.expose_secret(), "v2");
        let reads = store.reads.load(Ordering::SeqCst);

        // A second refusal right after: no new read, and the current value is not "new" to it.
        assert!(s.reload_after_refusal(&v2).await.is_none());
        // But a caller still holding v1 learns that v2 is current without a read.
        assert_eq!(
            s.reload_after_refusal(&v1).await.unwrap().expose_secret(),
            "v2"
        );
        assert_eq!(store.reads.load(Ordering::SeqCst), reads);

        tokio::time::advance(MIN_RELOAD_INTERVAL).await;
        set(&store, Some("v3"));
        assert_eq!(
            s.reload_after_refusal(&v2).await.unwrap().expose_secret(),
            "v3"
        );
        assert_eq!(store.reads.load(Ordering::SeqCst), reads + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn when_the_store_fails_the_last_value_is_used() {
        let store = Arc::new(Rotating::default());
        set(&store, None);
        let s = live(
            &store,
            CachePolicy::new(Duration::from_secs(1), Duration::ZERO),
        );
        assert_eq!(s.current().await.expose_secret(), "v1", "the initial value");
        set(&store, Some("v2"));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(s.current().await.expose_secret(), "v2");
        set(&store, None);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            s.current().await.expose_secret(),
            "v2",
            "the last value read"
        );
    }

    #[test]
    fn debug_names_the_secret_and_never_the_value() {
        let store = Arc::new(Rotating::default());
        let s = live(
            &store,
            CachePolicy::new(Duration::from_secs(1), Duration::ZERO),
        );
        let printed = format!("{s:?}");
        assert!(printed.contains("\"s\""), "{printed}");
        assert!(!printed.contains("v1"), "{printed}");
    }
}
