//! An approval racing the revoke of another grant of the same principal. The revoke looked for the
//! principal's other live grants before the approval's record existed; the approval read Unity Catalog
//! before the revoke's `PATCH`es, found the parents held (by the grant being revoked) and did not add
//! them. The revoke looks again after its `PATCH`es, adds back what the new grant relies on and hands
//! it over, so the new grant works now and removes the parents when it ends.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use uc_access::databricks::{
    DatabricksError, Deadline, EffectiveAssignment, GetPermissionsOptions, GrantsApi,
    PermissionsChange, PrivilegeAssignment,
};
use uc_access::domain::{AccessRequest, Principal, Securable, SecurableType};
use uc_access::ledger::{GrantState, LocalLedger};
use uc_access::policy::Policy;
use uc_access::standin::{Seed, demo};
use uc_access::usecases::Context;
use uc_access::usecases::expire::sweep;
use uc_access::usecases::provision::provision;
use uc_access::usecases::resolve::Resolver;
use url::Url;

use crate::support::{World, all_records, deadline, skewed_clock};

/// Runs a hook once, just before the first `PATCH` that removes something.
struct BeforeFirstRemoval {
    inner: Arc<dyn GrantsApi>,
    hook: Mutex<Option<BoxFuture<'static, ()>>>,
}

#[async_trait]
impl GrantsApi for BeforeFirstRemoval {
    async fn get_direct(
        &self,
        w: &Url,
        s: &Securable,
        o: &GetPermissionsOptions,
        d: Deadline,
    ) -> Result<Vec<PrivilegeAssignment>, DatabricksError> {
        self.inner.get_direct(w, s, o, d).await
    }
    async fn update(
        &self,
        w: &Url,
        s: &Securable,
        c: &[PermissionsChange],
        d: Deadline,
    ) -> Result<Vec<PrivilegeAssignment>, DatabricksError> {
        if c.iter().any(|change| !change.remove.is_empty()) {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook.await;
            }
        }
        self.inner.update(w, s, c, d).await
    }
    async fn effective(
        &self,
        w: &Url,
        s: &Securable,
        p: Option<&Principal>,
        d: Deadline,
    ) -> Result<Vec<EffectiveAssignment>, DatabricksError> {
        self.inner.effective(w, s, p, d).await
    }
}

fn context(world: &World, dir: &std::path::Path, skew: &Arc<AtomicI64>) -> Context {
    Context {
        policy: Policy::default(),
        resolver: Resolver::new(
            world.clients.directory.clone(),
            Duration::from_secs(60),
            false,
        ),
        grants: world.clients.grants.clone(),
        ledger: Arc::new(LocalLedger::new(dir)),
        clock: skewed_clock(skew.clone()),
        sharing: world.sharing(),
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
    let racing = Arc::new(BeforeFirstRemoval {
        inner: world.clients.grants.clone(),
        hook: Mutex::new(None),
    });
    let sweeper = Context {
        grants: racing.clone(),
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
    *racing.hook.lock().unwrap() = Some(Box::pin(async move {
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
