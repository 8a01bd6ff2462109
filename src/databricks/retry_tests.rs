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

/// A 503 or 504 answer with Databricks' `TEMPORARILY_UNAVAILABLE` code.
fn unavailable(status: u16) -> DatabricksError {
    DatabricksError::from_response(
        Upstream::from_body(
            "POST /x".into(),
            status,
            br#"{"error_code":"TEMPORARILY_UNAVAILABLE","message":"taking too long"}"#,
        ),
        None,
    )
}

fn connection_lost() -> DatabricksError {
    DatabricksError::ConnectionLost {
        request: "POST /x".into(),
        detail: "connection closed before message completed".into(),
    }
}

fn unreachable() -> DatabricksError {
    DatabricksError::Unreachable {
        request: "POST /x".into(),
        detail: "connection refused".into(),
    }
}

/// Runs the policy over a call whose attempts before `succeed_on` fail as `fail_with(attempt)` says.
async fn count_failures(
    policy: &RetryPolicy,
    idempotency: Idempotency,
    deadline: Deadline,
    fail_with: impl Fn(u32) -> Failure,
    succeed_on: u32,
) -> (Result<u32, DatabricksError>, u32) {
    let calls = Arc::new(AtomicU32::new(0));
    let result = policy
        .run(idempotency, deadline, |attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            let outcome = if attempt >= succeed_on {
                Ok(attempt)
            } else {
                Err(fail_with(attempt))
            };
            async move { outcome }
        })
        .await;
    (result, calls.load(Ordering::SeqCst))
}

/// [`count_failures`] where every failed attempt was sent and failed with `fail_with()`.
async fn count_attempts(
    policy: &RetryPolicy,
    idempotency: Idempotency,
    deadline: Deadline,
    fail_with: impl Fn() -> DatabricksError,
    succeed_on: u32,
) -> (Result<u32, DatabricksError>, u32) {
    count_failures(
        policy,
        idempotency,
        deadline,
        |_| Failure::sent(fail_with()),
        succeed_on,
    )
    .await
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
async fn timeouts_are_retried_for_reads_and_idempotent_changes_only() {
    let policy = RetryPolicy::default();
    let deadline = Deadline::after(Duration::from_secs(60));
    for idempotency in [Idempotency::Safe, Idempotency::Idempotent] {
        let (result, calls) = count_attempts(&policy, idempotency, deadline, timeout, 3).await;
        assert_eq!(result.unwrap(), 3, "{idempotency:?}");
        assert_eq!(calls, 3, "{idempotency:?}");
    }
    let (result, calls) =
        count_attempts(&policy, Idempotency::NotIdempotent, deadline, timeout, 3).await;
    assert_eq!(calls, 1);
    let error = result.unwrap_err();
    assert!(
        matches!(&error, DatabricksError::OutcomeUnknown { cause } if matches!(**cause, DatabricksError::Timeout { .. })),
        "{error:?}"
    );
    assert!(error.is_retryable(), "a later delivery reads back");
}

#[tokio::test(start_paused = true)]
async fn a_change_a_replay_could_duplicate_is_not_sent_again_after_any_failure_that_may_have_applied_it()
 {
    let policy = RetryPolicy::default();
    let deadline = Deadline::after(Duration::from_secs(60));
    // A lost connection, and Databricks' gateway giving up on a request it is still processing
    // (504 `TEMPORARILY_UNAVAILABLE`): the create may be done.
    for fail_with in [connection_lost as fn() -> DatabricksError, || {
        unavailable(504)
    }] {
        let (result, calls) =
            count_attempts(&policy, Idempotency::NotIdempotent, deadline, fail_with, 3).await;
        assert_eq!(calls, 1, "{:?}", fail_with());
        let error = result.unwrap_err();
        assert!(
            matches!(error, DatabricksError::OutcomeUnknown { .. }),
            "{error:?}"
        );
        assert!(error.outcome_unknown());
    }
    // The same failures of a read are retried and reported as they are.
    let (result, calls) = count_attempts(
        &policy,
        Idempotency::Safe,
        deadline,
        || unavailable(504),
        99,
    )
    .await;
    assert_eq!(calls, policy.max_attempts);
    assert!(matches!(
        result.unwrap_err(),
        DatabricksError::Unavailable { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_change_a_replay_could_duplicate_is_sent_again_after_a_failure_that_proves_it_was_not_applied()
 {
    let policy = RetryPolicy::default();
    let deadline = Deadline::after(Duration::from_secs(60));
    let refusals: [fn() -> DatabricksError; 3] =
        [|| limited(Some(0)), || unavailable(503), unreachable];
    for fail_with in refusals {
        let (result, calls) =
            count_attempts(&policy, Idempotency::NotIdempotent, deadline, fail_with, 3).await;
        assert_eq!(result.unwrap(), 3, "{:?}", fail_with());
        assert_eq!(calls, 3);
    }
    // A token that could not be fetched in time sent nothing, whatever the error says.
    let (result, calls) = count_failures(
        &policy,
        Idempotency::NotIdempotent,
        deadline,
        |_| Failure::not_sent(timeout()),
        2,
    )
    .await;
    assert_eq!(result.unwrap(), 2);
    assert_eq!(calls, 2);
}

#[tokio::test(start_paused = true)]
async fn an_idempotent_change_that_an_attempt_may_have_applied_reports_an_unknown_outcome_whatever_fails_last()
 {
    let policy = RetryPolicy::default();
    // The first answer is lost (the change may be in place), the retries are throttled to the end.
    let (result, calls) = count_failures(
        &policy,
        Idempotency::Idempotent,
        Deadline::after(Duration::from_secs(60)),
        |attempt| {
            Failure::sent(if attempt == 1 {
                connection_lost()
            } else {
                limited(Some(0))
            })
        },
        99,
    )
    .await;
    assert_eq!(calls, policy.max_attempts);
    let error = result.unwrap_err();
    assert!(
        matches!(&error, DatabricksError::OutcomeUnknown { cause } if matches!(**cause, DatabricksError::RateLimited { .. })),
        "{error:?}"
    );
    assert!(error.outcome_unknown());
    // A read's lost answer changes nothing: its last error is reported as it is.
    let (result, _) = count_failures(
        &policy,
        Idempotency::Safe,
        Deadline::after(Duration::from_secs(60)),
        |attempt| {
            Failure::sent(if attempt == 1 {
                connection_lost()
            } else {
                limited(Some(0))
            })
        },
        99,
    )
    .await;
    assert!(matches!(
        result.unwrap_err(),
        DatabricksError::RateLimited { .. }
    ));
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
