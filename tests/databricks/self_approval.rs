//! Self-approval through a group: a grant to a group is refused when an approver is a member of it,
//! directly or through nested groups, and allowed when every approver is outside.

use uc_access::domain::{EntraObjectId, PrincipalQuery};
use uc_access::policy::Policy;
use uc_access::standin::{Seed, SeedGroup, demo};
use uc_access::usecases::provision::{ProvisionError, provision};

use crate::support::{World, deadline};

const OUTER_GROUP: &str = "analytics-guild";
const OUTER_ENTRA_ID: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// The demo account plus a group that contains the analysts group (Alice is an analyst).
fn seed() -> Seed {
    let mut seed = Seed::demo();
    seed.groups.push(SeedGroup {
        id: "3900".into(),
        display_name: OUTER_GROUP.into(),
        external_id: Some(OUTER_ENTRA_ID.into()),
        member_ids: vec!["3001".into()],
        workspace_local: false,
    });
    seed
}

/// Bob asks for the orders table for `group`, approved by `approver`.
async fn ask_for_group(
    world: &World,
    group: &str,
    approver: &str,
) -> Result<String, ProvisionError> {
    let dir = tempfile::tempdir().unwrap();
    let ctx = world.context(dir.path(), Policy::default());
    let mut request = world.table_request("PT10M");
    request.requester = EntraObjectId::parse(demo::BOB_ENTRA_ID).unwrap();
    request.grantee = PrincipalQuery::GroupExternalId {
        id: EntraObjectId::parse(group).unwrap(),
    };
    request.approval.approvers = vec![EntraObjectId::parse(approver).unwrap()];
    provision(&ctx, &request, deadline())
        .await
        .map(|o| o.status.as_str().to_owned())
}

fn assert_self_approval(result: Result<String, ProvisionError>, who: &str) {
    match result {
        Err(ProvisionError::Denied(denial)) => {
            assert_eq!(denial.rule, "self_approval", "{denial:?}");
            assert!(denial.message.contains(who), "{}", denial.message);
        }
        other => panic!("expected a self-approval denial, got {other:?}"),
    }
}

#[tokio::test]
async fn an_approver_inside_the_group_is_refused_and_nothing_is_granted() {
    let world = World::start(seed(), false).await;
    world.standin.state().clear_requests();
    let result = ask_for_group(&world, demo::ANALYSTS_ENTRA_ID, demo::ALICE_ENTRA_ID).await;
    assert_self_approval(result, demo::ALICE_ENTRA_ID);
    let patches = world
        .standin
        .state()
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 0);
}

#[tokio::test]
async fn an_approver_inside_a_nested_group_is_refused() {
    let world = World::start(seed(), false).await;
    let result = ask_for_group(&world, OUTER_ENTRA_ID, demo::ALICE_ENTRA_ID).await;
    assert_self_approval(result, demo::ALICE_ENTRA_ID);
}

#[tokio::test]
async fn an_approver_outside_the_group_may_approve() {
    let world = World::start(seed(), false).await;
    let status = ask_for_group(&world, OUTER_ENTRA_ID, demo::CAROL_ENTRA_ID)
        .await
        .unwrap();
    assert_eq!(status, "granted");
    let held = world
        .standin
        .state()
        .grants_on("table", "sales.reporting.orders");
    assert_eq!(held[OUTER_GROUP], vec!["SELECT"]);
}
