//! Creates whose answer is lost: the stand-in applies the request and then drops the connection, or
//! answers as Databricks' front end does when the service behind it is slow (504
//! `TEMPORARILY_UNAVAILABLE`, while the request goes on). A create a replay could duplicate is sent once;
//! the client reads back what is in place, and the caller's answer is the one a clean run would give.

use std::time::Duration;

use uc_access::domain::{EntraObjectId, PrincipalKind, ProvisioningMode};
use uc_access::ledger::GrantState;
use uc_access::policy::Policy;
use uc_access::usecases::provision::{Status, provision};
use uc_access::usecases::resolve::{ResolveError, Resolver};
use uc_access_standin::{Fault, FaultKind, Seed, demo};

use crate::support::{World, all_records, deadline};

const SHARE: &str = "uc_access_sales_reporting_orders";
const ALICE_RECIPIENT: &str = "uc_access_5b1f2e3d_4c5b_4a69_8e7f_0a1b2c3d4e5f";
const RECIPIENTS: &str = "/api/2.1/unity-catalog/recipients";
const SHARES: &str = "/api/2.1/unity-catalog/shares";

/// `POST`s to exactly `path` the stand-in received (answered, dropped or timed out).
fn posts_to(world: &World, path: &str) -> usize {
    world
        .standin
        .state()
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .count()
}

/// Alice's approval of the orders table through Delta Sharing, with `fault` armed first; answers the
/// grant's status and leaves the ledger in `dir`.
async fn share_under(world: &World, dir: &std::path::Path, fault: Fault) -> Status {
    let policy = Policy::from_toml("[provisioning]\nrequestable = [\"delta-sharing\"]\n").unwrap();
    let ctx = world.context(dir, policy);
    let mut request = world.table_request("P7D");
    request.provisioning = Some(ProvisioningMode::DeltaSharing);
    world.standin.state().inject(fault);
    let outcome = provision(&ctx, &request, deadline())
        .await
        .expect("the grant goes through");
    let records = all_records(ctx.ledger.as_ref()).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].state, GrantState::Active, "{records:?}");
    outcome.status
}

/// What a clean shared grant leaves: one recipient (uc-access's, for Alice) and one share, holding the
/// table, on which the recipient has `SELECT`.
fn assert_shared_once(world: &World) {
    let state = world.standin.state();
    assert_eq!(state.sharing_counts(), (1, 1), "one recipient, one share");
    let recipient = state.recipient(ALICE_RECIPIENT).expect("Alice's recipient");
    assert_eq!(
        recipient["properties_kvpairs"]["properties"]["uc_access_managed"], "true",
        "{recipient}"
    );
    assert!(
        state
            .share_objects(SHARE)
            .is_some_and(|o| o.iter().any(|t| t == "sales.reporting.orders"))
    );
    assert_eq!(
        state.share_permissions(SHARE).get(ALICE_RECIPIENT),
        Some(&vec!["SELECT".to_owned()])
    );
}

#[tokio::test]
async fn a_recipient_create_whose_answer_is_lost_is_sent_once_and_the_grant_adopts_the_recipient_it_made()
 {
    let world = World::start(Seed::demo(), false).await;
    let dir = tempfile::tempdir().unwrap();
    // Every POST to the recipients collection is applied and its connection then dropped.
    let fault = Fault::new(FaultKind::DropAfterApply, 4)
        .on_method("POST")
        .on_path_prefix(RECIPIENTS);
    let status = share_under(&world, dir.path(), fault).await;
    assert_eq!(status, Status::Granted);
    assert_eq!(
        posts_to(&world, RECIPIENTS),
        1,
        "the create is not repeated"
    );
    assert_shared_once(&world);
}

#[tokio::test]
async fn a_share_create_answered_504_after_it_was_applied_is_not_sent_again() {
    let world = World::start(Seed::demo(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let fault = Fault::new(FaultKind::GatewayTimeoutAfterApply, 4)
        .on_method("POST")
        .on_path_prefix(SHARES);
    let status = share_under(&world, dir.path(), fault).await;
    assert_eq!(status, Status::Granted);
    assert_eq!(
        posts_to(&world, SHARES),
        1,
        "a 504 does not prove the create was not done"
    );
    assert_shared_once(&world);
}

#[tokio::test]
async fn a_recipient_create_dropped_before_it_was_applied_is_sent_again_once_a_read_shows_no_recipient()
 {
    let world = World::start(Seed::demo(), false).await;
    let dir = tempfile::tempdir().unwrap();
    // The first POST is dropped unanswered and not applied; the client cannot tell this from a lost
    // answer until it reads back.
    let fault = Fault::new(FaultKind::Drop, 1)
        .on_method("POST")
        .on_path_prefix(RECIPIENTS);
    let status = share_under(&world, dir.path(), fault).await;
    assert_eq!(status, Status::Granted);
    assert_eq!(posts_to(&world, RECIPIENTS), 2, "sent again after the read");
    assert_shared_once(&world);
}

#[tokio::test]
async fn a_resolve_by_external_id_answered_504_after_it_created_the_identity_is_not_sent_again() {
    let world = World::start(Seed::demo(), true).await;
    let resolver = || {
        Resolver::new(
            world.clients.directory.clone(),
            Duration::from_secs(60),
            true,
        )
    };
    let erin = uc_access::domain::PrincipalQuery::object_id(
        EntraObjectId::parse(demo::ERIN_ENTRA_ID).unwrap(),
    );
    world.standin.state().inject(
        Fault::new(FaultKind::GatewayTimeoutAfterApply, 4)
            .on_method("POST")
            .on_path_prefix("/api/2.0/identity/"),
    );
    let err = resolver()
        .resolve(&erin, &world.workspace(), deadline())
        .await
        .unwrap_err();
    let resolves = || {
        world
            .standin
            .state()
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/resolve-by-external-id"))
            .count()
    };
    assert_eq!(resolves(), 1, "a resolve creates identities: not repeated");
    assert!(
        matches!(&err, ResolveError::Databricks(e) if e.outcome_unknown() && e.is_retryable()),
        "{err:?}"
    );
    assert_eq!(world.standin.state().created_identities().len(), 1);

    // The caller's retry (a later delivery) finds the identity the lost call created.
    world.standin.state().clear_faults();
    let entry = resolver()
        .resolve(&erin, &world.workspace(), deadline())
        .await
        .unwrap();
    assert_eq!(entry.principal.uc_name(), demo::ERIN_ENTRA_ONLY);
    assert_eq!(entry.principal.kind(), PrincipalKind::User);
    assert_eq!(world.standin.state().created_identities().len(), 1);
}
