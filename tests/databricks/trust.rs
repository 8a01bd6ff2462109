//! The trust defects of issue 18, each against the stand-in with the real use cases, the oracle being
//! what Unity Catalog (the stand-in's state) holds compared with what the approvals justify.
//!
//! Broad privileges never outlive their approval: a grant keeps only what it would have added itself,
//! its own privileges on its own securable and `USE_*` on its parents.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use uc_access::domain::{GrantDuration, Privilege, Securable, SecurableType};
use uc_access::ledger::{GrantRecord, GrantState};
use uc_access::policy::Policy;
use uc_access::usecases::Context;
use uc_access::usecases::expire::sweep;
use uc_access::usecases::provision::provision;
use uc_access_standin::{Seed, demo};

use crate::support::{HookedGrants, World, all_records, deadline, skewed_clock};

/// Catalog, schema and table grants of SELECT and MODIFY.
fn wide_policy() -> Policy {
    Policy::from_toml(
        r#"
        [securables.catalog]
        privileges = ["SELECT", "MODIFY"]
        [securables.schema]
        privileges = ["SELECT", "MODIFY"]
        [securables.table]
        privileges = ["SELECT", "MODIFY"]
        "#,
    )
    .unwrap()
}

struct Trust {
    world: World,
    ctx: Context,
    skew: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

impl Trust {
    async fn start() -> Self {
        let world = World::start(Seed::demo(), false).await;
        let dir = tempfile::tempdir().unwrap();
        let skew = Arc::new(AtomicI64::new(0));
        let ctx = Context {
            clock: skewed_clock(skew.clone()),
            ..world.context(dir.path(), wide_policy())
        };
        Self {
            world,
            ctx,
            skew,
            _dir: dir,
        }
    }

    /// Alice is approved for `privileges` on `kind name` for `duration`; answers the status.
    async fn approve(
        &self,
        kind: SecurableType,
        name: &str,
        privileges: &[Privilege],
        duration: &str,
    ) -> String {
        self.approve_in(&self.ctx, kind, name, privileges, duration)
            .await
    }

    async fn approve_in(
        &self,
        ctx: &Context,
        kind: SecurableType,
        name: &str,
        privileges: &[Privilege],
        duration: &str,
    ) -> String {
        let mut request = self.world.table_request(duration);
        request.securable = Securable::parse(kind, name).unwrap();
        request.privileges = Some(privileges.iter().copied().collect());
        request.duration = Some(GrantDuration::parse(duration).unwrap());
        let outcome = provision(ctx, &request, deadline()).await.unwrap();
        outcome.status.as_str().to_owned()
    }

    async fn advance_and_sweep(&self, seconds: i64) {
        self.skew.fetch_add(seconds, Ordering::SeqCst);
        let report = sweep(&self.ctx, self.ctx.now(), deadline()).await.unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
    }

    fn alice(&self, kind: &str, name: &str) -> Vec<String> {
        self.world.holds(demo::ALICE, kind, name)
    }

    async fn record_on(&self, name: &str) -> GrantRecord {
        all_records(self.ctx.ledger.as_ref())
            .await
            .into_iter()
            .find(|r| r.securable.full_name() == name && r.state != GrantState::Revoked)
            .unwrap_or_else(|| panic!("no live record on {name}"))
    }
}

fn claimed(record: &GrantRecord) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = record
        .added
        .iter()
        .flat_map(|c| {
            c.privileges
                .iter()
                .map(move |p| (c.securable.full_name(), p.as_str().to_owned()))
        })
        .collect();
    out.sort();
    out
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = items
        .iter()
        .map(|(s, p)| ((*s).to_owned(), (*p).to_owned()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_table_grant_inside_a_schema_grant_adds_its_own_select_and_keeps_only_that_when_the_schema_grant_ends()
 {
    let t = Trust::start().await;
    use Privilege::Select;
    assert_eq!(
        t.approve(SecurableType::Schema, "sales.raw", &[Select], "PT1M")
            .await,
        "granted"
    );
    // The schema-wide SELECT is uc-access's own, for another approval: not "already granted".
    assert_eq!(
        t.approve(SecurableType::Table, "sales.raw.events", &[Select], "P7D")
            .await,
        "granted"
    );
    assert_eq!(t.alice("table", "sales.raw.events"), vec!["SELECT"]);

    t.advance_and_sweep(120).await;
    // What the table approval justifies, and nothing more.
    assert_eq!(t.alice("schema", "sales.raw"), vec!["USE_SCHEMA"]);
    assert_eq!(t.alice("table", "sales.raw.events"), vec!["SELECT"]);
    assert_eq!(t.alice("catalog", "sales"), vec!["USE_CATALOG"]);
    let table = t.record_on("sales.raw.events").await;
    assert_eq!(
        claimed(&table),
        pairs(&[
            ("sales", "USE_CATALOG"),
            ("sales.raw", "USE_SCHEMA"),
            ("sales.raw.events", "SELECT")
        ])
    );

    t.advance_and_sweep(8 * 24 * 3600).await;
    for (kind, name) in [
        ("catalog", "sales"),
        ("schema", "sales.raw"),
        ("table", "sales.raw.events"),
    ] {
        assert!(
            t.alice(kind, name).is_empty(),
            "{kind} {name}: {:?}",
            t.alice(kind, name)
        );
    }
    t.world.assert_bob_untouched();
}

#[tokio::test]
async fn when_a_catalog_grant_of_select_and_modify_ends_a_table_grant_keeps_exactly_its_own_privileges()
 {
    let t = Trust::start().await;
    use Privilege::{Modify, Select};
    t.approve(SecurableType::Catalog, "sales", &[Select, Modify], "PT1M")
        .await;
    assert_eq!(
        t.approve(
            SecurableType::Table,
            "sales.reporting.orders",
            &[Select],
            "P7D"
        )
        .await,
        "granted"
    );
    t.advance_and_sweep(120).await;
    assert_eq!(t.alice("catalog", "sales"), vec!["USE_CATALOG"]);
    assert_eq!(t.alice("schema", "sales.reporting"), vec!["USE_SCHEMA"]);
    assert_eq!(t.alice("table", "sales.reporting.orders"), vec!["SELECT"]);
    let table = t.record_on("sales.reporting.orders").await;
    assert_eq!(
        claimed(&table),
        pairs(&[
            ("sales", "USE_CATALOG"),
            ("sales.reporting", "USE_SCHEMA"),
            ("sales.reporting.orders", "SELECT")
        ])
    );
}

#[tokio::test]
async fn a_grant_that_relied_on_a_broader_one_gets_its_own_privileges_before_the_broad_ones_go() {
    // A ledger written by an earlier release: the table grant recorded only what it found missing
    // while the schema grant gave SELECT and MODIFY on the whole schema, and relied on those.
    let t = Trust::start().await;
    use Privilege::{Modify, Select};
    t.approve(
        SecurableType::Schema,
        "sales.raw",
        &[Select, Modify],
        "PT1M",
    )
    .await;
    t.approve(
        SecurableType::Table,
        "sales.raw.events",
        &[Select, Modify],
        "P7D",
    )
    .await;
    t.world
        .admin_patch(
            "table",
            "sales.raw.events",
            demo::ALICE,
            &[],
            &["SELECT", "MODIFY"],
        )
        .await;
    let mut table = t
        .ctx
        .ledger
        .get(t.record_on("sales.raw.events").await.id)
        .await
        .unwrap();
    table
        .record
        .added
        .retain(|c| c.securable.securable_type() != SecurableType::Table);
    t.ctx.ledger.update(&table).await.unwrap();

    // Every removal must find the table's own privileges already in place.
    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let log = seen.clone();
    let state = t.world.standin.state().clone();
    let hooked = Context {
        grants: Arc::new(HookedGrants::new(t.ctx.grants.clone(), move |changes| {
            if changes.iter().any(|c| !c.remove.is_empty()) {
                let held = state
                    .grants_on("table", "sales.raw.events")
                    .get(demo::ALICE)
                    .cloned()
                    .unwrap_or_default();
                log.lock().unwrap().push(held);
            }
            Box::pin(async {})
        })),
        clock: t.ctx.clock.clone(),
        ..t.world.context(t._dir.path(), wide_policy())
    };
    t.skew.fetch_add(120, Ordering::SeqCst);
    let report = sweep(&hooked, hooked.now(), deadline()).await.unwrap();
    assert_eq!((report.revoked, report.failed), (1, 0), "{report:?}");
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    for held in seen {
        assert_eq!(
            held,
            vec!["MODIFY", "SELECT"],
            "a removal ran before the substitute was in place"
        );
    }
    assert_eq!(t.alice("schema", "sales.raw"), vec!["USE_SCHEMA"]);
    assert_eq!(
        t.alice("table", "sales.raw.events"),
        vec!["MODIFY", "SELECT"]
    );
    let table = t.record_on("sales.raw.events").await;
    assert!(
        claimed(&table).contains(&("sales.raw.events".to_owned(), "SELECT".to_owned()))
            && claimed(&table).contains(&("sales.raw.events".to_owned(), "MODIFY".to_owned())),
        "the substitute is the table grant's own: {table:?}"
    );
    // And it goes with the table grant.
    t.advance_and_sweep(8 * 24 * 3600).await;
    assert!(t.alice("table", "sales.raw.events").is_empty());
    assert!(t.alice("schema", "sales.raw").is_empty());
}

#[tokio::test]
async fn a_privilege_the_principal_held_before_covers_a_grant_and_is_never_claimed() {
    // Alice was given SELECT on the whole schema by hand: that is hers, and a table approval inside it
    // needs only the USE_* it lacks.
    let t = Trust::start().await;
    t.world
        .admin_patch(
            "schema",
            "sales.raw",
            demo::ALICE,
            &["SELECT", "USE_SCHEMA"],
            &[],
        )
        .await;
    let status = t
        .approve(
            SecurableType::Table,
            "sales.raw.events",
            &[Privilege::Select],
            "PT1M",
        )
        .await;
    assert_eq!(status, "granted");
    let table = t.record_on("sales.raw.events").await;
    assert_eq!(claimed(&table), pairs(&[("sales", "USE_CATALOG")]));
    t.advance_and_sweep(120).await;
    assert_eq!(t.alice("schema", "sales.raw"), vec!["SELECT", "USE_SCHEMA"]);
    assert!(t.alice("catalog", "sales").is_empty());
}

// ---- Handed-over privileges stay in the books on every failure path ----

/// A pending record written as an approval that died would have left it, claiming `added` and
/// planning `plan`, requested 20 minutes ago.
async fn crashed_pending(
    t: &Trust,
    added: &[(SecurableType, &str, &str)],
    plan: &[(SecurableType, &str, &str)],
) -> uc_access::ledger::GrantId {
    use uc_access::ledger::{IdempotencyKey, NewGrant, SecurableChange, WorkspaceRef};
    let change = |(kind, name, p): &(SecurableType, &str, &str)| SecurableChange {
        securable: Securable::parse(*kind, name).unwrap(),
        privileges: [Privilege::parse(p).unwrap()].into_iter().collect(),
    };
    let request = t.world.table_request("P1D");
    let new = NewGrant {
        idempotency_key: IdempotencyKey::parse("caller:test:crashed").unwrap(),
        requester: request.requester,
        target: None,
        principal: uc_access::domain::Principal::user(demo::ALICE).unwrap(),
        workspace: WorkspaceRef {
            name: "default".into(),
            host: t.world.workspace().to_string(),
        },
        securable: request.securable.clone(),
        requested_privileges: [Privilege::Select].into_iter().collect(),
        duration: GrantDuration::parse("P1D").unwrap(),
        plan: plan.iter().map(change).collect(),
        approvers: vec![demo::CAROL_ENTRA_ID.into()],
        source: "purview-callback".into(),
        approval_id: None,
    };
    let requested = t.ctx.now() - time::Duration::minutes(20);
    let mut created = t
        .ctx
        .ledger
        .create(GrantRecord::new(new, requested))
        .await
        .unwrap();
    created.record.added = added.iter().map(change).collect();
    t.ctx.ledger.update(&created).await.unwrap().record.id
}

#[tokio::test]
async fn a_pending_grant_rolled_back_after_a_crash_still_removes_what_was_handed_over_to_it() {
    let t = Trust::start().await;
    // The parents were handed over to the pending orders grant by a revoke; its own SELECT was never
    // sent. The roll-back must remove the parents too.
    t.world
        .admin_patch("catalog", "sales", demo::ALICE, &["USE_CATALOG"], &[])
        .await;
    t.world
        .admin_patch(
            "schema",
            "sales.reporting",
            demo::ALICE,
            &["USE_SCHEMA"],
            &[],
        )
        .await;
    let id = crashed_pending(
        &t,
        &[
            (SecurableType::Catalog, "sales", "USE_CATALOG"),
            (SecurableType::Schema, "sales.reporting", "USE_SCHEMA"),
        ],
        &[(SecurableType::Table, "sales.reporting.orders", "SELECT")],
    )
    .await;
    t.advance_and_sweep(0).await;
    assert_eq!(
        t.ctx.ledger.get(id).await.unwrap().record.state,
        GrantState::Revoked
    );
    assert!(
        t.alice("catalog", "sales").is_empty(),
        "{:?}",
        t.alice("catalog", "sales")
    );
    assert!(t.alice("schema", "sales.reporting").is_empty());
    t.world.assert_bob_untouched();
}

#[tokio::test]
async fn the_roll_back_of_a_crashed_grant_leaves_a_privilege_of_its_plan_that_it_never_sent() {
    let t = Trust::start().await;
    // The approval sent USE_CATALOG and died before USE_SCHEMA; meanwhile an administrator granted
    // Alice SELECT on the table by hand. Only what the grant could have sent is rolled back.
    t.world
        .admin_patch("catalog", "sales", demo::ALICE, &["USE_CATALOG"], &[])
        .await;
    t.world
        .admin_patch(
            "table",
            "sales.reporting.orders",
            demo::ALICE,
            &["SELECT"],
            &[],
        )
        .await;
    crashed_pending(
        &t,
        &[],
        &[
            (SecurableType::Catalog, "sales", "USE_CATALOG"),
            (SecurableType::Schema, "sales.reporting", "USE_SCHEMA"),
            (SecurableType::Table, "sales.reporting.orders", "SELECT"),
        ],
    )
    .await;
    t.advance_and_sweep(0).await;
    assert!(t.alice("catalog", "sales").is_empty());
    assert_eq!(t.alice("table", "sales.reporting.orders"), vec!["SELECT"]);
}

#[tokio::test]
async fn a_grant_whose_changes_fail_after_a_handover_removes_what_was_handed_over() {
    use uc_access_standin::{Fault, FaultKind};
    let t = Trust::start().await;
    t.approve(
        SecurableType::Table,
        "sales.reporting.orders",
        &[Privilege::Select],
        "PT1M",
    )
    .await;
    t.skew.fetch_add(120, Ordering::SeqCst);
    // Alice's customers approval shares the parents of her orders grant; just before its PATCH, the
    // timer ends the orders grant (handing the parents over to the pending one), and then every PATCH
    // of the approval fails.
    let sweeper = t.world.context(t._dir.path(), wide_policy());
    let sweeper = Context {
        clock: t.ctx.clock.clone(),
        ..sweeper
    };
    let sweeper = Arc::new(sweeper);
    let state = t.world.standin.state().clone();
    let once = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let approver = Context {
        grants: Arc::new(HookedGrants::new(t.ctx.grants.clone(), move |changes| {
            let adds = changes.iter().any(|c| !c.add.is_empty());
            let first = adds && !once.swap(true, Ordering::SeqCst);
            let (sweeper, state) = (sweeper.clone(), state.clone());
            Box::pin(async move {
                if first {
                    let report = sweep(&sweeper, sweeper.now(), deadline()).await.unwrap();
                    assert_eq!(report.revoked, 1, "{report:?}");
                    state.inject(
                        Fault::new(
                            FaultKind::Unavailable {
                                retry_after_secs: Some(0),
                            },
                            4,
                        )
                        .on_method("PATCH"),
                    );
                }
            })
        })),
        clock: t.ctx.clock.clone(),
        ..t.world.context(t._dir.path(), wide_policy())
    };
    let mut request = t.world.table_request("P1D");
    request.securable =
        Securable::parse(SecurableType::Table, "sales.reporting.customers").unwrap();
    assert!(provision(&approver, &request, deadline()).await.is_err());
    // Whatever the undo did not finish, the timer does.
    t.advance_and_sweep(600).await;
    for (kind, name) in [
        ("catalog", "sales"),
        ("schema", "sales.reporting"),
        ("table", "sales.reporting.customers"),
        ("table", "sales.reporting.orders"),
    ] {
        assert!(
            t.alice(kind, name).is_empty(),
            "{kind} {name}: {:?}",
            t.alice(kind, name)
        );
    }
    t.world.assert_bob_untouched();
}

// ---- An ended approval is never restored by delivering it again ----

impl Trust {
    /// Alice's orders request, delivered with `approval_id` (when given) for `duration`.
    async fn deliver(
        &self,
        duration: &str,
        approval_id: Option<&str>,
    ) -> Result<
        uc_access::usecases::provision::Outcome,
        uc_access::usecases::provision::ProvisionError,
    > {
        let mut request = self.world.table_request(duration);
        request.approval.id =
            approval_id.map(|id| uc_access::domain::RequestKey::parse(id).unwrap());
        provision(&self.ctx, &request, deadline()).await
    }

    fn orders_held(&self) -> Vec<String> {
        self.alice("table", "sales.reporting.orders")
    }
}

fn ended(
    result: Result<
        uc_access::usecases::provision::Outcome,
        uc_access::usecases::provision::ProvisionError,
    >,
) -> (Option<time::OffsetDateTime>, bool) {
    match result {
        Err(uc_access::usecases::provision::ProvisionError::ApprovalEnded {
            until, early, ..
        }) => (until, early),
        other => panic!("expected the re-delivery to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn an_approval_delivered_again_after_its_expiry_does_not_give_the_access_back() {
    let t = Trust::start().await;
    t.deliver("PT1M", None).await.unwrap();
    t.advance_and_sweep(120).await;
    assert!(t.orders_held().is_empty());
    // A late workflow retry, or the body replayed with a token that is still valid.
    let (until, early) = ended(t.deliver("PT1M", None).await);
    assert!(!early);
    assert!(until.unwrap() > t.ctx.now());
    assert!(t.orders_held().is_empty());
    // Once the re-delivery window is over, the same request is a new approval.
    t.skew.fetch_add(2 * 3600, Ordering::SeqCst);
    let outcome = t.deliver("PT1M", None).await.unwrap();
    assert_eq!(outcome.status.as_str(), "granted");
    assert_eq!(t.orders_held(), vec!["SELECT"]);
}

#[tokio::test]
async fn a_delivery_of_a_live_approval_never_extends_it() {
    let t = Trust::start().await;
    let first = t.deliver("PT1H", None).await.unwrap();
    let expires = first.record.unwrap().expires_at.unwrap();
    t.skew.fetch_add(30 * 60, Ordering::SeqCst);
    let again = t.deliver("PT1H", None).await.unwrap();
    assert_ne!(again.status.as_str(), "extended");
    assert_eq!(again.record.unwrap().expires_at.unwrap(), expires);
}

#[tokio::test]
async fn with_approval_ids_an_old_approval_never_comes_back_and_a_new_one_works_at_once() {
    let t = Trust::start().await;
    let first = t.deliver("P7D", Some("approval-1")).await.unwrap();
    let id = first.record.unwrap().id;
    uc_access::usecases::expire::revoke_now(&t.ctx, id, deadline())
        .await
        .unwrap();
    assert!(t.orders_held().is_empty());
    // The revoked approval, however late and with whatever duration: refused for good.
    for (wait, duration) in [(60, "P7D"), (30 * 24 * 3600, "PT8H")] {
        t.skew.fetch_add(wait, Ordering::SeqCst);
        let (until, early) = ended(t.deliver(duration, Some("approval-1")).await);
        assert_eq!((until, early), (None, true));
        assert!(t.orders_held().is_empty());
    }
    // A new approval of the same request opens it again at once…
    let second = t.deliver("P7D", Some("approval-2")).await.unwrap();
    assert_eq!(second.status.as_str(), "granted");
    assert_eq!(t.orders_held(), vec!["SELECT"]);
    // …and a delivery of the first one while the second is live changes nothing.
    let expires = second.record.unwrap().expires_at;
    t.skew.fetch_add(3 * 24 * 3600, Ordering::SeqCst);
    let old = t.deliver("P7D", Some("approval-1")).await.unwrap();
    assert_eq!(old.record.unwrap().expires_at, expires);
    // A third approval renews it.
    let third = t.deliver("P7D", Some("approval-3")).await.unwrap();
    assert_eq!(third.status.as_str(), "extended");
}

#[tokio::test]
async fn an_approval_that_did_not_move_the_expiry_is_remembered_and_never_extends_later() {
    // Found by tests/model.rs: approval 2 arrived while approval 1 held the grant longer, changed nothing
    // and was forgotten; delivered again with a longer duration it was taken for a new approval.
    let t = Trust::start().await;
    let first = t.deliver("PT30M", Some("approval-1")).await.unwrap();
    let expires = first.record.unwrap().expires_at;
    let short = t.deliver("PT2M", Some("approval-2")).await.unwrap();
    assert_eq!(short.status.as_str(), "already_granted");
    assert_eq!(short.record.as_ref().unwrap().expires_at, expires);
    assert!(
        short
            .record
            .unwrap()
            .approvals
            .contains(&"approval-2".to_owned()),
        "the approval is recorded though it changed nothing"
    );
    let replayed = t.deliver("PT4H", Some("approval-2")).await.unwrap();
    assert_ne!(replayed.status.as_str(), "extended");
    assert_eq!(replayed.record.unwrap().expires_at, expires);
    // In Unity Catalog: the access ends with approval 1's thirty minutes, not four hours later.
    assert_eq!(t.orders_held(), vec!["SELECT"]);
    t.advance_and_sweep(31 * 60).await;
    assert!(t.orders_held().is_empty(), "{:?}", t.orders_held());
}

#[tokio::test]
async fn an_id_first_seen_on_a_duplicate_is_remembered_so_it_never_reopens_the_grant() {
    // Found by tests/model.rs: the first delivery had no approvalId, a retry within the window carried one
    // (a workflow edited between runs); after the grant ended, that retry replayed later reopened it.
    let t = Trust::start().await;
    t.deliver("PT2M", None).await.unwrap();
    let duplicate = t.deliver("PT2M", Some("approval-1")).await.unwrap();
    assert_eq!(
        duplicate.status.as_str(),
        "granted",
        "a duplicate: the first answer"
    );
    t.advance_and_sweep(150 * 60).await;
    assert!(t.orders_held().is_empty());
    let (until, early) = ended(t.deliver("PT2M", Some("approval-1")).await);
    assert_eq!((until, early), (None, false));
    assert!(t.orders_held().is_empty());
    // A new approval still works.
    let new = t.deliver("PT2M", Some("approval-2")).await.unwrap();
    assert_eq!(new.status.as_str(), "granted");
    assert_eq!(t.orders_held(), vec!["SELECT"]);
}

#[tokio::test]
async fn a_workflow_retry_after_a_failed_apply_still_gets_the_grant() {
    use uc_access_standin::{Fault, FaultKind};
    let t = Trust::start().await;
    t.world.standin.state().inject(
        Fault::new(
            FaultKind::Unavailable {
                retry_after_secs: Some(0),
            },
            4,
        )
        .on_method("PATCH"),
    );
    assert!(t.deliver("P1D", None).await.is_err());
    assert!(t.orders_held().is_empty());
    let retried = t.deliver("P1D", None).await.unwrap();
    assert_eq!(retried.status.as_str(), "granted");
    assert_eq!(t.orders_held(), vec!["SELECT"]);
}
