//! The one retry policy for every Databricks call, explicit per request: reads and idempotent changes are
//! retried after any transient failure; changes a replay could duplicate only after a failure that shows
//! Databricks did not carry them out. `Retry-After` first, jittered exponential backoff otherwise;
//! capped by attempts and by the caller's deadline. A change whose outcome an attempt left unknown ends
//! in [`DatabricksError::OutcomeUnknown`], so the caller reads back instead of assuming either way.
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

/// What repeating a request does, which decides when it may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads: nothing to duplicate. Retried after every transient failure.
    Safe,
    /// Changes whose replay converges: the grants `PATCH` and the share-permission and recipient-expiry
    /// `PATCH`es (adding a held privilege or removing an absent one is a no-op). Retried after every
    /// transient failure; if an attempt's outcome was unknown, the error says so even when a later
    /// attempt failed otherwise (the change may be in place).
    Idempotent,
    /// Changes a replay could duplicate, or turn from a success into a spurious `*_ALREADY_EXISTS`:
    /// creating a share or a recipient, adding a table to a share, and resolve-by-external-id (which
    /// creates identities). Retried only after a failure that proves Databricks did not carry the
    /// request out ([`DatabricksError::proves_not_processed`]: nothing sent, 429, 503, a 4xx); any other
    /// failure ends at once in [`DatabricksError::OutcomeUnknown`].
    NotIdempotent,
}

/// One failed attempt: the error, and whether the request itself left (a token that could not be
/// fetched, or a deadline already spent, sends nothing, whatever the token endpoint's error says).
#[derive(Debug)]
pub struct Failure {
    pub error: DatabricksError,
    pub sent: bool,
}

impl Failure {
    /// The request was sent (or may have been) and failed with `error`.
    pub fn sent(error: DatabricksError) -> Self {
        Self { error, sent: true }
    }

    /// The attempt failed before the request left.
    pub fn not_sent(error: DatabricksError) -> Self {
        Self { error, sent: false }
    }

    /// Whether Databricks may have carried the request out.
    fn outcome_unknown(&self) -> bool {
        self.sent && self.error.outcome_unknown()
    }

    /// Whether Databricks certainly did not carry it out.
    fn not_processed(&self) -> bool {
        !self.sent || self.error.proves_not_processed()
    }
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

    fn should_retry(failure: &Failure, idempotency: Idempotency) -> bool {
        failure.error.is_transient()
            && match idempotency {
                Idempotency::Safe | Idempotency::Idempotent => true,
                Idempotency::NotIdempotent => failure.not_processed(),
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
    /// attempts, or the next wait would pass `deadline`. A change ([`Idempotency::Idempotent`] or
    /// [`Idempotency::NotIdempotent`]) that one of its attempts may have carried out fails with
    /// [`DatabricksError::OutcomeUnknown`].
    pub async fn run<T, F, Fut>(
        &self,
        idempotency: Idempotency,
        deadline: Deadline,
        mut call: F,
    ) -> Result<T, DatabricksError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut attempt = 1;
        let mut unknown = false;
        loop {
            let failure = match call(attempt).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            unknown |= idempotency != Idempotency::Safe && failure.outcome_unknown();
            let finish = |error: DatabricksError| {
                if unknown && !matches!(error, DatabricksError::OutcomeUnknown { .. }) {
                    DatabricksError::OutcomeUnknown {
                        cause: Box::new(error),
                    }
                } else {
                    error
                }
            };
            if !Self::should_retry(&failure, idempotency) || attempt >= self.max_attempts.max(1) {
                if unknown && idempotency == Idempotency::NotIdempotent {
                    tracing::debug!(attempt, error = %failure.error, "not repeating a change whose outcome is unknown");
                }
                return Err(finish(failure.error));
            }
            let wait = self.delay(attempt, &failure.error);
            if wait > self.max_delay || Instant::now() + wait >= deadline.instant() {
                tracing::debug!(attempt, ?wait, "retry would wait too long; giving up");
                return Err(finish(failure.error.or_retry_after(wait)));
            }
            tracing::debug!(attempt, ?wait, error = %failure.error, "retrying Databricks call");
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
#[path = "retry_tests.rs"]
mod tests;
