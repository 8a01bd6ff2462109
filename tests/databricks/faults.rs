//! Faults from both sides: 429 storms, 503s, timeouts, connection resets and lagging reads from the
//! stand-in; write failures and ETag conflicts from the ledger. For each, a grant either succeeds or
//! ends in a retryable error with nothing half-applied (every privilege uc-access added in Unity
//! Catalog has a live record), and the next timer runs converge: the grant is finished or undone, and
//! nothing outlives its expiry or touches what others held before.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use uc_access::databricks::Deadline;
use uc_access::ledger::{
    DueQuery, GrantId, GrantRecord, GrantState, IdempotencyKey, LedgerError, LedgerStore,
    ListFilter, LocalLedger, Versioned,
};
use uc_access::policy::Policy;
use uc_access::usecases::Context;
use uc_access::usecases::expire::sweep;
use uc_access::usecases::provision::{ProvisionError, provision};
use uc_access::usecases::resolve::Resolver;
use uc_access_standin::{Fault, FaultKind, Seed};

use crate::support::{World, all_records, deadline, skewed_clock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Update,
}

/// The local ledger with scripted failures: the next writes of a kind fail with the given error
/// (before anything is written, as a refused or conflicting Blob write does).
#[derive(Debug)]
struct FaultyLedger {
    inner: LocalLedger,
    script: Mutex<VecDeque<(Op, LedgerError)>>,
}

impl FaultyLedger {
    fn fail(&self, op: Op, error: LedgerError) {
        self.script.lock().unwrap().push_back((op, error));
    }

    fn take(&self, op: Op) -> Option<LedgerError> {
        let mut script = self.script.lock().unwrap();
        let at = script.iter().position(|(o, _)| *o == op)?;
        script.remove(at).map(|(_, e)| e)
    }
}

#[async_trait]
impl LedgerStore for FaultyLedger {
    async fn create(&self, r: GrantRecord) -> Result<Versioned<GrantRecord>, LedgerError> {
        match self.take(Op::Create) {
            Some(e) => Err(e),
            None => self.inner.create(r).await,
        }
    }
    async fn get(&self, id: GrantId) -> Result<Versioned<GrantRecord>, LedgerError> {
        self.inner.get(id).await
    }
    async fn get_by_key(&self, k: &IdempotencyKey) -> Result<Versioned<GrantRecord>, LedgerError> {
        self.inner.get_by_key(k).await
    }
    async fn update(
        &self,
        r: &Versioned<GrantRecord>,
    ) -> Result<Versioned<GrantRecord>, LedgerError> {
        match self.take(Op::Update) {
            Some(e) => Err(e),
            None => self.inner.update(r).await,
        }
    }
    async fn find_due(&self, q: &DueQuery) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        self.inner.find_due(q).await
    }
    async fn list(&self, f: &ListFilter) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        self.inner.list(f).await
    }
    async fn probe(&self) -> Result<String, LedgerError> {
        self.inner.probe().await
    }
}

struct Harness {
    world: World,
    ledger: Arc<FaultyLedger>,
    ctx: Context,
    skew: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Self {
        let world = World::start(Seed::demo(), false).await;
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(FaultyLedger {
            inner: LocalLedger::new(dir.path()),
            script: Mutex::default(),
        });
        let skew = Arc::new(AtomicI64::new(0));
        let ctx = Context {
            policy: Policy::default(),
            resolver: Resolver::new(
                world.clients.directory.clone(),
                Duration::from_secs(60),
                false,
            ),
            grants: world.clients.grants.clone(),
            ledger: ledger.clone(),
            clock: skewed_clock(skew.clone()),
            sharing: world.sharing(),
        };
        Self {
            world,
            ledger,
            ctx,
            skew,
            _dir: dir,
        }
    }

    fn inject(&self, fault: Fault) {
        self.world.standin.state().inject(fault);
    }

    fn advance(&self, by: time::Duration) {
        self.skew.fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }

    async fn records(&self) -> Vec<GrantRecord> {
        all_records(self.ctx.ledger.as_ref()).await
    }

    /// Nothing half-applied: every privilege Alice holds is covered by a live record.
    async fn assert_covered(&self, when: &str) {
        self.world
            .assert_alice_covered(self.ctx.ledger.as_ref(), when)
            .await;
    }

    /// Faults cleared, the timer runs after the stale-pending window: no grant stays pending, and what
    /// Alice holds is exactly what an active record says; then, past expiry (and any retry backoff),
    /// nothing of hers is left and Bob's grants are as seeded.
    async fn assert_converges(&self, when: &str) {
        self.world.standin.state().clear_faults();
        self.ledger.script.lock().unwrap().clear();
        self.advance(time::Duration::minutes(11));
        sweep(&self.ctx, self.ctx.now(), deadline()).await.unwrap();
        let records = self.records().await;
        assert!(
            records.iter().all(|r| r.state != GrantState::Pending),
            "{when}: still pending after the timer: {records:?}"
        );
        self.assert_covered(&format!("{when}, after the timer"))
            .await;
        for _ in 0..3 {
            self.advance(time::Duration::minutes(70));
            sweep(&self.ctx, self.ctx.now(), deadline()).await.unwrap();
        }
        assert!(
            self.world.alice_holds().is_empty(),
            "{when}: outlived expiry: {:?}",
            self.world.alice_holds()
        );
        self.world.assert_bob_untouched();
    }

    /// One callback under the armed faults: it succeeds or fails retryably, never half-applied.
    async fn grant(&self, when: &str, d: Deadline) -> Result<(), ProvisionError> {
        let outcome = provision(&self.ctx, &self.world.table_request("PT30M"), d).await;
        if let Err(e) = &outcome {
            assert!(e.is_retryable(), "{when}: not retryable: {e:?}");
        }
        self.assert_covered(when).await;
        outcome.map(|_| ())
    }
}

fn patch(kind: FaultKind, count: u32) -> Fault {
    Fault::new(kind, count).on_method("PATCH")
}

#[tokio::test]
async fn a_429_storm_longer_than_the_retries_fails_retryably_and_converges() {
    let h = Harness::new().await;
    h.inject(patch(
        FaultKind::TooManyRequests {
            retry_after_secs: 0,
        },
        50,
    ));
    let err = h.grant("429 storm", deadline()).await.unwrap_err();
    assert!(
        err.to_string().contains("429") || err.is_retryable(),
        "{err}"
    );
    h.assert_converges("429 storm").await;
}

#[tokio::test]
async fn a_short_429_burst_is_absorbed_by_the_retries() {
    let h = Harness::new().await;
    h.inject(patch(
        FaultKind::TooManyRequests {
            retry_after_secs: 0,
        },
        2,
    ));
    h.grant("429 burst", deadline()).await.unwrap();
    assert_eq!(h.world.alice_holds().len(), 3);
    h.assert_converges("429 burst").await;
}

#[tokio::test]
async fn a_503_on_the_second_change_leaves_a_pending_record_that_the_timer_settles() {
    let h = Harness::new().await;
    // The catalog PATCH goes through; the schema PATCH meets an outage longer than the retries.
    h.inject(
        patch(
            FaultKind::Unavailable {
                retry_after_secs: None,
            },
            20,
        )
        .on_path_prefix("/api/2.1/unity-catalog/permissions/schema"),
    );
    h.grant("503 on the schema", deadline()).await.unwrap_err();
    h.assert_converges("503 on the schema").await;
}

#[tokio::test]
async fn a_directory_outage_fails_before_anything_is_written() {
    let h = Harness::new().await;
    h.inject(
        Fault::new(
            FaultKind::Unavailable {
                retry_after_secs: None,
            },
            20,
        )
        .on_method("GET"),
    );
    h.world.standin.state().clear_requests();
    h.grant("directory outage", deadline()).await.unwrap_err();
    assert!(
        h.records().await.is_empty(),
        "no record before the principal is known"
    );
    let patches = h
        .world
        .standin
        .state()
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 0);
    h.assert_converges("directory outage").await;
}

#[tokio::test]
async fn connection_resets_fail_retryably_or_succeed_and_converge() {
    for count in [1, 3, 10] {
        let h = Harness::new().await;
        h.inject(patch(FaultKind::Drop, count));
        let when = format!("{count} connection resets");
        let _ = h.grant(&when, deadline()).await;
        h.assert_converges(&when).await;
    }
}

#[tokio::test]
async fn a_change_slower_than_the_callers_deadline_is_settled_by_the_timer() {
    let h = Harness::new().await;
    h.inject(patch(FaultKind::Delay { millis: 1_500 }, 1));
    let when = "slow PATCH";
    h.grant(when, Deadline::after(Duration::from_millis(800)))
        .await
        .unwrap_err();
    // The stand-in may still apply the slow change after the caller gave up: wait for it.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    h.assert_converges(when).await;
}

#[tokio::test]
async fn lagging_reads_do_not_fail_or_duplicate_a_grant() {
    let h = Harness::new().await;
    h.world
        .standin
        .state()
        .set_read_lag(Some(Duration::from_secs(5)));
    h.grant("read lag", deadline()).await.unwrap();
    // A second delivery during the lag is the same grant, not a second one.
    h.grant("read lag, again", deadline()).await.unwrap();
    assert_eq!(h.records().await.len(), 1);
    h.assert_converges("read lag").await;
}

#[tokio::test]
async fn a_ledger_that_cannot_be_written_stops_the_grant_before_unity_catalog() {
    let h = Harness::new().await;
    h.ledger.fail(
        Op::Create,
        LedgerError::Unavailable {
            message: "storage 503".into(),
        },
    );
    h.world.standin.state().clear_requests();
    h.grant("ledger create fails", deadline())
        .await
        .unwrap_err();
    assert!(
        h.world.alice_holds().is_empty(),
        "write-ahead: nothing granted"
    );
    h.assert_converges("ledger create fails").await;
}

#[tokio::test]
async fn an_etag_conflict_when_marking_active_is_merged_and_retried() {
    let h = Harness::new().await;
    // The write-ahead record is created; the first "mark active" meets a concurrent writer.
    let id = GrantId::for_key(&IdempotencyKey::parse("conflict-test").unwrap());
    h.ledger.fail(Op::Update, LedgerError::Conflict { id });
    h.grant("ETag conflict", deadline()).await.unwrap();
    let records = h.records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].state, GrantState::Active, "{records:?}");
    h.assert_converges("ETag conflict").await;
}

#[tokio::test]
async fn a_ledger_outage_after_unity_catalog_accepted_is_finished_by_the_timer() {
    let h = Harness::new().await;
    for _ in 0..5 {
        h.ledger.fail(
            Op::Update,
            LedgerError::Unavailable {
                message: "storage 503".into(),
            },
        );
    }
    // Either answer is acceptable; the privileges must be covered by the pending record either way.
    let _ = h.grant("ledger update fails", deadline()).await;
    assert_eq!(h.world.alice_holds().len(), 3);
    h.ledger.script.lock().unwrap().clear();

    // The timer finishes the record; its 30 minutes count from the request, not from the timer's run,
    // so access never lasts longer than the answer said.
    h.advance(time::Duration::minutes(11));
    sweep(&h.ctx, h.ctx.now(), deadline()).await.unwrap();
    let record = h.records().await.remove(0);
    assert_eq!(record.state, GrantState::Active);
    assert_eq!(
        record.expires_at,
        Some(record.requested_at + time::Duration::minutes(30)),
        "{record:?}"
    );
    h.assert_converges("ledger update fails").await;
}

#[tokio::test]
async fn faults_during_a_revoke_are_retried_by_later_runs() {
    let h = Harness::new().await;
    h.grant("before the revoke", deadline()).await.unwrap();
    h.advance(time::Duration::minutes(31));
    h.inject(patch(
        FaultKind::TooManyRequests {
            retry_after_secs: 0,
        },
        50,
    ));
    h.ledger.fail(
        Op::Update,
        LedgerError::Unavailable {
            message: "storage 503".into(),
        },
    );
    // The run itself reports, it does not crash; the grant stays covered by its record.
    let _ = sweep(&h.ctx, h.ctx.now(), deadline()).await;
    h.assert_covered("revoke under faults").await;
    h.assert_converges("revoke under faults").await;
    let records = h.records().await;
    assert!(
        records.iter().all(|r| r.state == GrantState::Revoked),
        "{records:?}"
    );
}

#[tokio::test]
async fn a_change_applied_whose_answer_was_lost_is_undone_not_forgotten() {
    let h = Harness::new().await;
    // Each of the client's 4 attempts at the schema's PATCH is applied by Unity Catalog, then the
    // connection drops; the undo that follows is answered normally.
    h.inject(
        patch(FaultKind::DropAfterApply, 4)
            .on_path_prefix("/api/2.1/unity-catalog/permissions/schema"),
    );
    h.grant("lost answers", deadline()).await.unwrap_err();
    h.world.standin.state().clear_faults();
    let held = h.world.alice_holds();
    assert!(
        held.is_empty(),
        "the undo removes what may have been applied: {held:?}"
    );
    h.assert_converges("lost answers").await;
}

#[tokio::test]
async fn a_change_applied_whose_answer_was_lost_and_whose_retries_were_throttled_is_undone_not_forgotten()
 {
    let h = Harness::new().await;
    // The schema's PATCH is applied and its answer lost; the client's 3 retries are then throttled, so
    // the last error is a 429, but the first attempt changed Unity Catalog. The undo that follows is
    // answered normally.
    let schema = "/api/2.1/unity-catalog/permissions/schema";
    h.inject(patch(FaultKind::DropAfterApply, 1).on_path_prefix(schema));
    h.inject(
        patch(
            FaultKind::TooManyRequests {
                retry_after_secs: 0,
            },
            3,
        )
        .on_path_prefix(schema),
    );
    let err = h
        .grant("lost answer, then throttled", deadline())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    h.world.standin.state().clear_faults();
    let held = h.world.alice_holds();
    assert!(
        held.is_empty(),
        "the undo removes what the lost attempt may have applied: {held:?}"
    );
    h.assert_converges("lost answer, then throttled").await;
}
