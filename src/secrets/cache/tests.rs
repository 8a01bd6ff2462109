//! The cache's rules on tokio's paused clock, with a store that counts its reads and answers from a script.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use secrecy::ExposeSecret;

use super::*;

const TTL: Duration = Duration::from_secs(300);
const GRACE: Duration = Duration::from_secs(900);

/// Answers from a script (the last answer repeats), after `delay`, counting reads.
struct ScriptedStore {
    answers: Mutex<VecDeque<Result<&'static str, SecretError>>>,
    delay: Duration,
    reads: AtomicUsize,
}

// Like a real store, it never prints the values it holds.
impl fmt::Debug for ScriptedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedStore")
            .field("reads", &self.reads())
            .finish_non_exhaustive()
    }
}

impl ScriptedStore {
    fn new(answers: Vec<Result<&'static str, SecretError>>) -> Self {
        Self {
            answers: Mutex::new(answers.into()),
            delay: Duration::ZERO,
            reads: AtomicUsize::new(0),
        }
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl SecretStore for ScriptedStore {
    async fn get(&self, _name: &str) -> Result<SecretString, SecretError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let answer = {
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.pop_front().unwrap()
            } else {
                answers.front().cloned().unwrap()
            }
        };
        answer.map(|v| SecretString::from(v.to_owned()))
    }
}

fn cached(answers: Vec<Result<&'static str, SecretError>>) -> CachedSecrets<Arc<ScriptedStore>> {
    CachedSecrets::new(
        Arc::new(ScriptedStore::new(answers)),
        CachePolicy::new(TTL, GRACE),
    )
}

fn outage() -> SecretError {
    SecretError::Unavailable {
        vault: "https://kv.vault.azure.net/".into(),
        detail: "connection refused".into(),
    }
}

fn forbidden() -> SecretError {
    SecretError::Forbidden {
        vault: "https://kv.vault.azure.net/".into(),
        name: "s".into(),
        code: "Forbidden".into(),
        message: "no".into(),
    }
}

async fn value(store: &impl SecretStore) -> Result<String, SecretError> {
    store.get("s").await.map(|v| v.expose_secret().to_owned())
}

#[tokio::test(start_paused = true)]
async fn a_value_is_read_once_per_ttl_and_a_rotation_is_seen_after_it() {
    let store = cached(vec![Ok("v1"), Ok("v2")]);
    assert_eq!(value(&store).await.unwrap(), "v1");
    tokio::time::advance(TTL - Duration::from_secs(1)).await;
    assert_eq!(value(&store).await.unwrap(), "v1");
    assert_eq!(store.inner.reads(), 1);

    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(value(&store).await.unwrap(), "v2");
    assert_eq!(store.inner.reads(), 2);
    assert_eq!(store.reads(), 2);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_read() {
    let mut inner = ScriptedStore::new(vec![Ok("v1")]);
    inner.delay = Duration::from_millis(200);
    let store = Arc::new(CachedSecrets::new(
        Arc::new(inner),
        CachePolicy::new(TTL, GRACE),
    ));
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { value(&*store).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), "v1");
    }
    assert_eq!(store.inner.reads(), 1);
}

#[tokio::test(start_paused = true)]
async fn names_are_cached_separately() {
    let store = cached(vec![Ok("v")]);
    store.get("a").await.unwrap();
    store.get("b").await.unwrap();
    store.get("a").await.unwrap();
    assert_eq!(store.inner.reads(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_outage_after_expiry_serves_the_old_value_until_the_grace_period_ends() {
    let store = cached(vec![Ok("v1"), Err(outage())]);
    assert_eq!(value(&store).await.unwrap(), "v1");

    tokio::time::advance(TTL).await;
    assert_eq!(value(&store).await.unwrap(), "v1", "stale within grace");

    tokio::time::advance(GRACE).await;
    assert_eq!(value(&store).await.unwrap_err(), outage());
}

#[tokio::test(start_paused = true)]
async fn a_refusal_is_not_hidden_by_the_old_value() {
    let store = cached(vec![Ok("v1"), Err(forbidden()), Err(outage())]);
    assert_eq!(value(&store).await.unwrap(), "v1");
    tokio::time::advance(TTL).await;
    assert_eq!(value(&store).await.unwrap_err(), forbidden());

    // The old value is gone: a later outage has nothing stale to serve.
    tokio::time::advance(DEFAULT_FAILURE_BACKOFF).await;
    assert_eq!(value(&store).await.unwrap_err(), outage());
}

#[tokio::test(start_paused = true)]
async fn after_a_failure_the_store_is_left_alone_for_the_backoff() {
    let store = cached(vec![Err(outage()), Ok("v1")]);
    assert!(value(&store).await.is_err());
    assert!(value(&store).await.is_err());
    assert_eq!(
        store.inner.reads(),
        1,
        "the second caller got the remembered error"
    );

    tokio::time::advance(DEFAULT_FAILURE_BACKOFF).await;
    assert_eq!(value(&store).await.unwrap(), "v1");
    assert_eq!(store.inner.reads(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_the_backoff_is_honoured() {
    let throttled = SecretError::Throttled {
        vault: "https://kv.vault.azure.net/".into(),
        retry_after: Some(Duration::from_secs(30)),
    };
    let store = cached(vec![Err(throttled.clone()), Ok("v1")]);
    assert_eq!(value(&store).await.unwrap_err(), throttled);
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(value(&store).await.unwrap_err(), throttled);
    assert_eq!(store.inner.reads(), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(value(&store).await.unwrap(), "v1");
}

#[tokio::test(start_paused = true)]
async fn invalidate_forces_a_new_read_before_the_ttl() {
    let store = cached(vec![Ok("v1"), Ok("v2")]);
    assert_eq!(value(&store).await.unwrap(), "v1");
    store.invalidate("s").await;
    assert_eq!(value(&store).await.unwrap(), "v2");
    assert_eq!(store.inner.reads(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_zero_grace_never_serves_an_expired_value() {
    let store = CachedSecrets::new(
        Arc::new(ScriptedStore::new(vec![Ok("v1"), Err(outage())])),
        CachePolicy::new(TTL, Duration::ZERO),
    );
    value(&store).await.unwrap();
    tokio::time::advance(TTL).await;
    assert_eq!(value(&store).await.unwrap_err(), outage());
}

#[test]
fn debug_output_shows_no_value() {
    let store = cached(vec![Ok("hunter2")]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(store.get("s")).unwrap();
    let printed = format!("{store:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
}
