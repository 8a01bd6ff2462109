//! The one retry policy for every Databricks call: 429/503 always, timeouts and unreachable hosts only for
//! idempotent calls; `Retry-After` first, jittered exponential backoff otherwise; capped by attempts and by
//! the caller's deadline.
//!
//! Hand-written rather than `backon`: the delay must come from the server's `Retry-After` when present, and
//! when the next wait would overrun the caller's deadline the policy must stop and hand back the error
//! *with* that wait, so the edge can pass `Retry-After` on to Purview. Neither fits a generic backoff
//! iterator without wrapping it in as much code as this.

use std::future::Future;
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio::time::Instant;

use super::error::DatabricksError;

/// Whether repeating a call has the same effect as making it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, and the grants `PATCH`: Unity Catalog's permission changes are additive set operations
    /// (adding a held privilege or removing an absent one is a no-op), so replaying a `PATCH` whose answer
    /// was lost converges to the same assignments.
    Idempotent,
    /// Calls with side effects that a replay could duplicate (resolve-by-external-id creates identities).
    NotIdempotent,
}

/// A point in time after which no new attempt starts and no wait begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// The deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    pub fn at(instant: Instant) -> Self {
        Self(instant)
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub fn instant(&self) -> Instant {
        self.0
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff step when the server gave no `Retry-After`.
    pub base_delay: Duration,
    /// No single wait is longer than this. A `Retry-After` beyond it ends the retries (the error is
    /// handed back carrying it) rather than being shortened: calling back sooner than asked only earns
    /// another 429.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries (tests, and calls that must fail fast).
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    fn should_retry(error: &DatabricksError, idempotency: Idempotency) -> bool {
        match error {
            DatabricksError::RateLimited { .. } | DatabricksError::Unavailable { .. } => true,
            DatabricksError::Timeout { .. } | DatabricksError::Unreachable { .. } => {
                idempotency == Idempotency::Idempotent
            }
            _ => false,
        }
    }

    /// The wait before attempt `attempt + 1` (`attempt` counts from 1): the server's word when it gave one,
    /// else full-jitter exponential backoff.
    fn delay(&self, attempt: u32, error: &DatabricksError) -> Duration {
        if let Some(wait) = error.retry_after() {
            return wait;
        }
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        // Half fixed, half random: spreads concurrent callers without ever retrying immediately.
        let half = millis / 2;
        Duration::from_millis(half + rand::rng().random_range(0..=half))
    }

    /// Runs `call` (given the attempt number, from 1) until it succeeds, fails for good, runs out of
    /// attempts, or the next wait would pass `deadline`.
    pub async fn run<T, F, Fut>(
        &self,
        idempotency: Idempotency,
        deadline: Deadline,
        mut call: F,
    ) -> Result<T, DatabricksError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, DatabricksError>>,
    {
        let mut attempt = 1;
        loop {
            let error = match call(attempt).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if !Self::should_retry(&error, idempotency) || attempt >= self.max_attempts.max(1) {
                return Err(error);
            }
            let wait = self.delay(attempt, &error);
            if wait > self.max_delay || Instant::now() + wait >= deadline.instant() {
                tracing::debug!(attempt, ?wait, "retry would wait too long; giving up");
                return Err(error.or_retry_after(wait));
            }
            tracing::debug!(attempt, ?wait, error = %error, "retrying Databricks call");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// Reads `Retry-After`: integer seconds, or an HTTP date (a date in the past means "now").
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::databricks::error::Upstream;

    fn limited(retry_after: Option<u64>) -> DatabricksError {
        DatabricksError::RateLimited {
            upstream: Upstream::from_body("GET /x".into(), 429, b"{}"),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn timeout() -> DatabricksError {
        DatabricksError::Timeout {
            request: "GET /x".into(),
            after: Duration::from_secs(1),
        }
    }

    async fn count_attempts(
        policy: &RetryPolicy,
        idempotency: Idempotency,
        deadline: Deadline,
        fail_with: impl Fn() -> DatabricksError,
        succeed_on: u32,
    ) -> (Result<u32, DatabricksError>, u32) {
        let calls = Arc::new(AtomicU32::new(0));
        let result = policy
            .run(idempotency, deadline, |attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                let outcome = if attempt >= succeed_on {
                    Ok(attempt)
                } else {
                    Err(fail_with())
                };
                async move { outcome }
            })
            .await;
        (result, calls.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_calls_are_retried_until_they_succeed() {
        let policy = RetryPolicy::default();
        let (result, calls) = count_attempts(
            &policy,
            Idempotency::NotIdempotent,
            Deadline::after(Duration::from_secs(60)),
            || limited(None),
            3,
        )
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_stop_at_the_cap_and_return_the_last_error() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let (result, calls) = count_attempts(
            &policy,
            Idempotency::Idempotent,
            Deadline::after(Duration::from_secs(600)),
            || limited(None),
            99,
        )
        .await;
        assert!(matches!(result, Err(DatabricksError::RateLimited { .. })));
        assert_eq!(calls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_drives_the_wait() {
        let policy = RetryPolicy::default();
        let started = Instant::now();
        let (result, _) = count_attempts(
            &policy,
            Idempotency::Idempotent,
            Deadline::after(Duration::from_secs(60)),
            || limited(Some(7)),
            2,
        )
        .await;
        assert!(result.is_ok());
        assert_eq!(Instant::now() - started, Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_returns_the_error_carrying_retry_after_without_waiting() {
        let policy = RetryPolicy::default();
        let started = Instant::now();
        let (result, calls) = count_attempts(
            &policy,
            Idempotency::Idempotent,
            Deadline::after(Duration::from_secs(5)),
            || limited(Some(20)),
            2,
        )
        .await;
        let error = result.unwrap_err();
        assert_eq!(calls, 1);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(20)));
        assert_eq!(Instant::now(), started);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_longer_than_the_longest_wait_is_handed_back_not_shortened() {
        let policy = RetryPolicy {
            max_delay: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let (result, calls) = count_attempts(
            &policy,
            Idempotency::Idempotent,
            Deadline::after(Duration::from_secs(600)),
            || limited(Some(60)),
            2,
        )
        .await;
        assert_eq!(calls, 1);
        assert_eq!(
            result.unwrap_err().retry_after(),
            Some(Duration::from_secs(60))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_stop_without_retry_after_passes_on_the_computed_wait() {
        let policy = RetryPolicy {
            base_delay: Duration::from_secs(4),
            ..RetryPolicy::default()
        };
        let (result, _) = count_attempts(
            &policy,
            Idempotency::Idempotent,
            Deadline::after(Duration::from_secs(1)),
            || limited(None),
            2,
        )
        .await;
        let wait = result.unwrap_err().retry_after().unwrap();
        assert!(
            wait >= Duration::from_secs(2) && wait <= Duration::from_secs(4),
            "{wait:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn errors_that_cannot_heal_are_not_retried() {
        let policy = RetryPolicy::default();
        let (result, calls) = count_attempts(
            &policy,
            Idempotency::Idempotent,
            Deadline::after(Duration::from_secs(60)),
            || DatabricksError::InvalidParameter {
                upstream: Upstream::from_body("PATCH /x".into(), 400, b"{}"),
            },
            5,
        )
        .await;
        assert!(matches!(
            result,
            Err(DatabricksError::InvalidParameter { .. })
        ));
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_are_retried_only_for_idempotent_calls() {
        let policy = RetryPolicy::default();
        let deadline = Deadline::after(Duration::from_secs(60));
        let (_, calls) =
            count_attempts(&policy, Idempotency::NotIdempotent, deadline, timeout, 3).await;
        assert_eq!(calls, 1);
        let (result, calls) =
            count_attempts(&policy, Idempotency::Idempotent, deadline, timeout, 3).await;
        assert!(result.is_ok());
        assert_eq!(calls, 3);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let wait = parse_retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
