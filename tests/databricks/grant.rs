//! Reading holdings, planning, and applying a grant against the stand-in.

use std::time::Duration;

use uc_access::domain::{Principal, Privilege, PrivilegeSet, Securable, SecurableType};
use uc_access::planning::grant::{Facts, plan_grant};
use uc_access::usecases::apply::{apply_additions, read_holdings};
use uc_access_standin::{Seed, demo};

use crate::support::{World, deadline};

fn orders() -> Securable {
    Securable::parse(SecurableType::Table, "sales.reporting.orders").unwrap()
}

fn select() -> PrivilegeSet {
    PrivilegeSet::from([Privilege::Select])
}

#[tokio::test]
async fn holdings_are_read_on_the_table_and_its_parents() {
    let world = World::start(Seed::demo(), false).await;
    let bob = Principal::user(demo::BOB).unwrap();
    let holdings = read_holdings(
        world.clients.grants.as_ref(),
        &world.workspace(),
        &bob,
        &orders(),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(holdings.len(), 3);
    let plan = plan_grant(&bob, &orders(), &select(), &Facts::unclaimed(holdings));
    assert!(
        plan.is_noop(),
        "bob already holds everything: {:?}",
        plan.changes
    );
}

#[tokio::test]
async fn a_plan_applied_adds_exactly_the_missing_privileges() {
    let world = World::start(Seed::demo(), false).await;
    let alice = Principal::user(demo::ALICE).unwrap();
    let ws = world.workspace();
    let grants = world.clients.grants.as_ref();
    let holdings = read_holdings(grants, &ws, &alice, &orders(), deadline())
        .await
        .unwrap();
    let plan = plan_grant(&alice, &orders(), &select(), &Facts::unclaimed(holdings));
    assert_eq!(plan.changes.len(), 3);

    let applied = apply_additions(grants, &ws, &alice, &plan.changes, deadline())
        .await
        .unwrap();
    assert!(applied.iter().all(|a| a.confirmed));

    let after = read_holdings(grants, &ws, &alice, &orders(), deadline())
        .await
        .unwrap();
    assert!(plan_grant(&alice, &orders(), &select(), &Facts::unclaimed(after)).is_noop());
    // Bob's pre-existing grants are untouched.
    let bob = Principal::user(demo::BOB).unwrap();
    let bobs = read_holdings(grants, &ws, &bob, &orders(), deadline())
        .await
        .unwrap();
    assert_eq!(bobs.len(), 3);
}

#[tokio::test]
async fn a_lagging_read_does_not_make_an_accepted_change_fail() {
    let world = World::start(Seed::demo(), false).await;
    world
        .standin
        .state()
        .set_read_lag(Some(Duration::from_secs(30)));
    let alice = Principal::user(demo::ALICE).unwrap();
    let ws = world.workspace();
    let grants = world.clients.grants.as_ref();
    let plan = plan_grant(&alice, &orders(), &select(), &Default::default());
    let applied = apply_additions(grants, &ws, &alice, &plan.changes, deadline())
        .await
        .unwrap();
    assert_eq!(applied.len(), 3);
    assert!(
        world
            .standin
            .state()
            .grants_on("table", "sales.reporting.orders")
            .iter()
            .any(|(p, privs)| p == demo::ALICE && privs.iter().any(|x| x == "SELECT")),
        "the stand-in holds the grant"
    );
}

#[tokio::test]
async fn a_grant_on_a_catalog_we_do_not_manage_stops_at_the_first_change() {
    let world = World::start(Seed::demo(), false).await;
    let alice = Principal::user(demo::ALICE).unwrap();
    let table = Securable::parse(SecurableType::Table, "main.default.demo").unwrap();
    let plan = plan_grant(&alice, &table, &select(), &Default::default());
    let err = apply_additions(
        world.clients.grants.as_ref(),
        &world.workspace(),
        &alice,
        &plan.changes,
        deadline(),
    )
    .await
    .unwrap_err();
    assert!(err.applied.is_empty());
    assert_eq!(err.error.error_code(), Some("PERMISSION_DENIED"));
}
