//! Crash safety: the process is killed (its future dropped mid-flight, with no clean-up) between every
//! pair of steps of a grant and of a revoke; then the timer runs. Afterwards no privilege the product
//! added lacks a live record, none outlives its expiry, and none that existed before is removed.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use uc_access::domain::{AccessRequest, Securable, SecurableType};
use uc_access::ledger::{GrantRecord, GrantState, LocalLedger};
use uc_access::policy::Policy;
use uc_access::usecases::Context;
use uc_access::usecases::expire::sweep;
use uc_access::usecases::provision::provision;
use uc_access::usecases::resolve::Resolver;
use uc_access_standin::{Seed, demo};

use crate::hooks::{Hook, HookedGrants, HookedLedger, HookedSharing};
use crate::support::{World, all_records, deadline, skewed_clock};

/// Counts mutating steps (PATCHes and ledger writes) and hangs forever at step `kill_at`: the caller's
/// future is then dropped, exactly like a process killed there.
#[derive(Debug, Default)]
struct Steps {
    done: AtomicUsize,
    kill_at: AtomicUsize,
}

impl Steps {
    async fn step(&self) {
        let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.kill_at.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }
    fn arm(&self, kill_at: usize) {
        self.done.store(0, Ordering::SeqCst);
        self.kill_at.store(kill_at, Ordering::SeqCst);
    }
}

impl Hook for Steps {
    fn before_change(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.step())
    }
}

struct Harness {
    world: World,
    ctx: Context,
    steps: Arc<Steps>,
    skew: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Self {
        let world = World::start(Seed::demo(), false).await;
        let dir = tempfile::tempdir().unwrap();
        let steps = Arc::new(Steps::default());
        let skew = Arc::new(AtomicI64::new(0));
        let ctx = Context {
            policy: Policy::default(),
            resolver: Resolver::new(
                world.clients.directory.clone(),
                Duration::from_secs(60),
                false,
            ),
            grants: Arc::new(HookedGrants::with_hook(
                world.clients.grants.clone(),
                steps.clone(),
            )),
            ledger: Arc::new(HookedLedger {
                inner: Arc::new(LocalLedger::new(dir.path())),
                hook: steps.clone(),
            }),
            clock: skewed_clock(skew.clone()),
            sharing: uc_access::usecases::share::Sharing {
                api: Arc::new(HookedSharing {
                    inner: world.clients.sharing.clone(),
                    hook: steps.clone(),
                }),
                naming: Default::default(),
            },
        };
        Self {
            world,
            ctx,
            steps,
            skew,
            _dir: dir,
        }
    }

    fn advance(&self, by: time::Duration) {
        self.skew.fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }

    fn request(&self) -> AccessRequest {
        self.world.table_request("PT2M")
    }

    fn alice_holds(&self) -> Vec<(String, Vec<String>)> {
        self.world.alice_holds()
    }

    async fn records(&self) -> Vec<GrantRecord> {
        all_records(self.ctx.ledger.as_ref()).await
    }

    /// Every privilege Alice holds is covered by a pending or active record.
    async fn assert_every_privilege_has_a_live_record(&self, when: &str) {
        self.world
            .assert_alice_covered(self.ctx.ledger.as_ref(), when)
            .await;
    }

    fn assert_bob_untouched(&self) {
        self.world.assert_bob_untouched();
    }
}

/// Runs `fut` until it finishes or hangs at the armed step (then drops it: the "kill").
async fn run_until_killed<F: std::future::Future>(fut: F) -> Option<F::Output> {
    tokio::time::timeout(Duration::from_secs(1), fut).await.ok()
}

#[tokio::test]
async fn a_grant_killed_between_any_two_steps_is_finished_or_undone_and_expires() {
    // Steps of a grant: create pending (1), three PATCHes (2-4), mark active (5).
    for kill_at in 1..=5 {
        let h = Harness::new().await;
        h.steps.arm(kill_at);
        let outcome = run_until_killed(provision(&h.ctx, &h.request(), deadline())).await;
        assert!(outcome.is_none(), "kill point {kill_at} was reached");
        h.steps.arm(0);
        h.assert_every_privilege_has_a_live_record(&format!("killed at step {kill_at}"))
            .await;

        // The timer finds the stale pending record, finishes or undoes it; then expiry removes all.
        h.advance(time::Duration::minutes(11));
        sweep(&h.ctx, h.ctx.now(), deadline()).await.unwrap();
        h.assert_every_privilege_has_a_live_record(&format!("after reconcile, kill {kill_at}"))
            .await;
        h.advance(time::Duration::minutes(3));
        sweep(&h.ctx, h.ctx.now(), deadline()).await.unwrap();
        assert!(
            h.alice_holds().is_empty(),
            "kill {kill_at}: {:?} outlived expiry",
            h.alice_holds()
        );
        h.assert_bob_untouched();
    }
}

#[tokio::test]
async fn a_revoke_killed_between_any_two_steps_converges_on_a_later_run() {
    // Steps of a revoke: mark revoking (1), three PATCHes (2-4), mark revoked (5).
    for kill_at in 1..=5 {
        let h = Harness::new().await;
        let outcome = provision(&h.ctx, &h.request(), deadline()).await.unwrap();
        assert_eq!(outcome.status.as_str(), "granted");
        h.advance(time::Duration::minutes(3));
        h.steps.arm(kill_at);
        let killed = run_until_killed(sweep(&h.ctx, h.ctx.now(), deadline())).await;
        assert!(killed.is_none(), "kill point {kill_at} was reached");
        h.steps.arm(0);
        h.assert_every_privilege_has_a_live_record(&format!("revoke killed at {kill_at}"))
            .await;

        // Retries wait for their backoff; a later run converges.
        h.advance(time::Duration::minutes(70));
        sweep(&h.ctx, h.ctx.now(), deadline()).await.unwrap();
        assert!(
            h.alice_holds().is_empty(),
            "revoke kill {kill_at}: {:?}",
            h.alice_holds()
        );
        let records = h.records().await;
        assert!(
            records.iter().all(|r| r.state == GrantState::Revoked),
            "{records:?}"
        );
        h.assert_bob_untouched();
    }
}

#[tokio::test]
async fn privileges_handed_over_to_a_grant_still_pending_are_revoked_when_it_ends() {
    let h = Harness::new().await;
    // A: orders, fully applied (adds USE_CATALOG, USE_SCHEMA, SELECT).
    provision(&h.ctx, &h.request(), deadline()).await.unwrap();
    // B: customers, needs only SELECT; killed before it is marked active (create, PATCH, mark active).
    let mut b = h.request();
    b.securable = Securable::parse(SecurableType::Table, "sales.reporting.customers").unwrap();
    b.duration = Some(uc_access::domain::GrantDuration::parse("PT10M").unwrap());
    h.steps.arm(3);
    assert!(
        run_until_killed(provision(&h.ctx, &b, deadline()))
            .await
            .is_none()
    );
    h.steps.arm(0);

    // A expires: the shared parents go to B (still pending), A's SELECT goes.
    h.advance(time::Duration::minutes(3));
    sweep(&h.ctx, h.ctx.now(), deadline()).await.unwrap();
    assert_eq!(
        h.alice_holds().len(),
        2,
        "USE_CATALOG and USE_SCHEMA stay for B: {:?}",
        h.alice_holds()
    );

    // B is found applied and finished; then it expires and takes the handed-over parents with it.
    h.advance(time::Duration::minutes(11));
    sweep(&h.ctx, h.ctx.now(), deadline()).await.unwrap();
    h.advance(time::Duration::minutes(11));
    sweep(&h.ctx, h.ctx.now(), deadline()).await.unwrap();
    let customers = h
        .world
        .standin
        .state()
        .grants_on("table", "sales.reporting.customers");
    assert!(!customers.contains_key(demo::ALICE), "{customers:?}");
    assert!(
        h.alice_holds().is_empty(),
        "handed-over privileges outlived every grant: {:?}",
        h.alice_holds()
    );
    h.assert_bob_untouched();
}

const SHARE: &str = "uc_access_sales_reporting_orders";
const ALICE_RECIPIENT: &str = "uc_access_5b1f2e3d_4c5b_4a69_8e7f_0a1b2c3d4e5f";

impl Harness {
    /// Alice asks for the orders table through Delta Sharing (the policy lets requests choose it).
    fn shared_request(&mut self) -> AccessRequest {
        self.ctx.policy =
            Policy::from_toml("[provisioning]\nrequestable = [\"delta-sharing\"]\n").unwrap();
        let mut request = self.request();
        request.provisioning = Some(uc_access::domain::ProvisioningMode::DeltaSharing);
        request
    }

    /// Whether Alice's recipient holds SELECT on the share, and whether the share holds the table.
    fn shared_state(&self) -> (bool, bool) {
        let state = self.world.standin.state();
        let select = state
            .share_permissions(SHARE)
            .get(ALICE_RECIPIENT)
            .is_some_and(|p| p.iter().any(|x| x == "SELECT"));
        let table = state
            .share_objects(SHARE)
            .is_some_and(|o| o.iter().any(|t| t == "sales.reporting.orders"));
        (select, table)
    }

    async fn live_records(&self) -> usize {
        self.records()
            .await
            .iter()
            .filter(|r| r.state != GrantState::Revoked)
            .count()
    }
}

#[tokio::test]
async fn a_shared_grant_killed_between_any_two_steps_is_finished_or_undone_and_expires() {
    // Count the steps of a complete shared grant first, then kill at each of them.
    let mut h = Harness::new().await;
    let request = h.shared_request();
    h.steps.arm(usize::MAX);
    provision(&h.ctx, &request, deadline()).await.unwrap();
    let total = h.steps.done.load(Ordering::SeqCst);
    assert!(
        total >= 5,
        "pending, recipient, share, table, SELECT, active: {total}"
    );

    for kill_at in 1..=total {
        let mut h = Harness::new().await;
        let request = h.shared_request();
        h.steps.arm(kill_at);
        let outcome = run_until_killed(provision(&h.ctx, &request, deadline())).await;
        assert!(outcome.is_none(), "kill point {kill_at} was reached");
        h.steps.arm(0);
        let (select, _) = h.shared_state();
        if select {
            assert_eq!(
                h.live_records().await,
                1,
                "kill {kill_at}: SELECT without a live record"
            );
        }

        // The timer finishes or undoes the stale pending grant; then expiry takes everything away.
        h.advance(time::Duration::minutes(11));
        sweep(&h.ctx, h.ctx.now(), deadline()).await.unwrap();
        let (select, _) = h.shared_state();
        if select {
            assert_eq!(
                h.live_records().await,
                1,
                "kill {kill_at}: SELECT kept without a record"
            );
        }
        for _ in 0..3 {
            h.advance(time::Duration::minutes(70));
            sweep(&h.ctx, h.ctx.now(), deadline()).await.unwrap();
        }
        assert_eq!(
            h.shared_state(),
            (false, false),
            "kill {kill_at}: the recipient's SELECT or the table outlived the grant"
        );
        assert_eq!(h.live_records().await, 0, "kill {kill_at}");
    }
}
