//! An approval racing the revoke of another grant of the same principal. The revoke looked for the
//! principal's other live grants before the approval's record existed; the approval read Unity Catalog
//! before the revoke's `PATCH`es, found the parents held (by the grant being revoked) and did not add
//! them. The revoke looks again after its `PATCH`es, adds back what the new grant relies on and hands
//! it over, so the new grant works now and removes the parents when it ends.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use uc_access::domain::{AccessRequest, Securable, SecurableType};
use uc_access::ledger::GrantState;
use uc_access::policy::Policy;
use uc_access::usecases::Context;
use uc_access::usecases::expire::sweep;
use uc_access::usecases::provision::provision;
use uc_access_standin::{Seed, demo};

use crate::support::{HookedGrants, World, all_records, deadline, skewed_clock};

/// The stand-in's use cases with the clock moved on by `skew` seconds.
fn context(world: &World, dir: &std::path::Path, skew: &Arc<AtomicI64>) -> Context {
    Context {
        clock: skewed_clock(skew.clone()),
        ..world.context(dir, Policy::default())
    }
}

fn customers(world: &World, duration: &str) -> AccessRequest {
    let mut request = world.table_request(duration);
    request.securable =
        Securable::parse(SecurableType::Table, "sales.reporting.customers").unwrap();
    request
}

fn alice_on(world: &World, kind: &str, name: &str) -> Vec<String> {
    world
        .standin
        .state()
        .grants_on(kind, name)
        .get(demo::ALICE)
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn an_approval_landing_between_the_revokes_lookup_and_its_patches_keeps_its_parents() {
    let world = Arc::new(World::start(Seed::demo(), false).await);
    let dir = tempfile::tempdir().unwrap();
    let skew = Arc::new(AtomicI64::new(0));
    // Run once, just before the first `PATCH` that removes something.
    let hook: Arc<Mutex<Option<BoxFuture<'static, ()>>>> = Arc::default();
    let before_removal = hook.clone();
    let sweeper = Context {
        grants: Arc::new(HookedGrants::new(
            world.clients.grants.clone(),
            move |changes| {
                let removes = changes.iter().any(|c| !c.remove.is_empty());
                let once = removes
                    .then(|| before_removal.lock().unwrap().take())
                    .flatten();
                Box::pin(async move {
                    if let Some(once) = once {
                        once.await;
                    }
                })
            },
        )),
        ..context(&world, dir.path(), &skew)
    };

    // Alice's first grant adds the parents and SELECT on orders; it expires.
    let first = provision(&sweeper, &world.table_request("PT2M"), deadline())
        .await
        .unwrap();
    assert_eq!(first.status.as_str(), "granted");
    assert_eq!(alice_on(&world, "catalog", "sales"), vec!["USE_CATALOG"]);
    skew.fetch_add(180, Ordering::SeqCst);

    // While the timer revokes it, after it looked for Alice's other grants, she is approved for
    // customers: that approval finds the parents held and adds only SELECT.
    let ran = Arc::new(AtomicBool::new(false));
    let approver = context(&world, dir.path(), &skew);
    let (w, r) = (world.clone(), ran.clone());
    *hook.lock().unwrap() = Some(Box::pin(async move {
        let outcome = provision(&approver, &customers(&w, "PT1H"), deadline())
            .await
            .unwrap();
        assert_eq!(outcome.status.as_str(), "granted");
        r.store(true, Ordering::SeqCst);
    }));
    let report = sweep(&sweeper, sweeper.now(), deadline()).await.unwrap();
    assert!(ran.load(Ordering::SeqCst), "the approval ran mid-revoke");
    assert_eq!(report.revoked, 1, "{report:?}");
    assert!(report.alerts.is_empty(), "{report:?}");

    // Alice keeps what the customers grant relies on; the orders grant's SELECT is gone.
    assert_eq!(alice_on(&world, "catalog", "sales"), vec!["USE_CATALOG"]);
    assert_eq!(
        alice_on(&world, "schema", "sales.reporting"),
        vec!["USE_SCHEMA"]
    );
    assert_eq!(
        alice_on(&world, "table", "sales.reporting.customers"),
        vec!["SELECT"]
    );
    assert!(alice_on(&world, "table", "sales.reporting.orders").is_empty());
    // ...and the customers grant now owns the parents, so that it removes them when it ends.
    let records = all_records(sweeper.ledger.as_ref()).await;
    let second = records
        .iter()
        .find(|r| r.securable.full_name() == "sales.reporting.customers")
        .unwrap();
    assert_eq!(second.state, GrantState::Active);
    let owned: Vec<String> = second
        .added
        .iter()
        .map(|c| c.securable.full_name())
        .collect();
    assert_eq!(
        owned.len(),
        3,
        "SELECT, USE_SCHEMA and USE_CATALOG: {second:?}"
    );
    world
        .assert_alice_covered(sweeper.ledger.as_ref(), "after the race")
        .await;

    skew.fetch_add(2 * 3600, Ordering::SeqCst);
    let report = sweep(&sweeper, sweeper.now(), deadline()).await.unwrap();
    assert_eq!(report.revoked, 1, "{report:?}");
    for (kind, name) in [
        ("catalog", "sales"),
        ("schema", "sales.reporting"),
        ("table", "sales.reporting.customers"),
    ] {
        assert!(alice_on(&world, kind, name).is_empty(), "{kind} {name}");
    }
    world.assert_bob_untouched();
}
