//! Self-approval through a group: a grant to a group is refused when an approver is a member of it,
//! directly or through nested groups, refused too when that cannot be established (the account refuses
//! the `externalId` filter, no identity carries the approver's object id, nesting beyond the limit),
//! and allowed when every approver is shown to be outside.

use uc_access::domain::{ApplicationId, EntraObjectId, Operator, PrincipalQuery, RequestSource};
use uc_access::ledger::LocalLedger;
use uc_access::policy::Policy;
use uc_access::usecases::provision::{ProvisionError, provision};
use uc_access::usecases::resolve::MAX_GROUPS_CHECKED;
use uc_access_standin::{Seed, SeedGroup, SeedUser, demo};

use crate::support::{World, all_records, deadline};

const OUTER_GROUP: &str = "analytics-guild";
const OUTER_ENTRA_ID: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
/// A group holding a user added by e-mail (no `externalId`) and the ETL service principal.
const MIXED_GROUP: &str = "contractors";
/// Frank was added to the account by e-mail: Databricks holds no Entra object id for him.
const FRANK: &str = "frank.contractor@contoso.com";
/// Frank's Entra object id, which Databricks does not know.
const FRANK_ENTRA_ID: &str = "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d";
/// An application the account does not know.
const STRANGER_APP_ID: &str = "1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b";

/// The demo account plus a group that contains the analysts group (Alice is an analyst), and a group
/// of Frank (no `externalId`) and the ETL service principal.
fn seed() -> Seed {
    let mut seed = Seed::demo();
    seed.users.push(SeedUser {
        id: "1009".into(),
        user_name: FRANK.into(),
        display_name: "Frank Contractor".into(),
        active: true,
        external_id: None,
    });
    seed.groups.push(SeedGroup {
        id: "3900".into(),
        display_name: OUTER_GROUP.into(),
        external_id: Some(OUTER_ENTRA_ID.into()),
        member_ids: vec!["3001".into()],
        workspace_local: false,
    });
    seed.groups.push(SeedGroup {
        id: "3901".into(),
        display_name: MIXED_GROUP.into(),
        external_id: None,
        member_ids: vec!["1009".into(), "2002".into()],
        workspace_local: false,
    });
    seed
}

/// `depth` groups, `chain-1` to `chain-<depth>`, each nesting the next; the last holds Alice.
fn with_chain(mut seed: Seed, depth: usize) -> Seed {
    for level in 1..=depth {
        let members = if level == depth {
            vec!["1001".to_owned()]
        } else {
            vec![format!("5{:03}", level + 1)]
        };
        seed.groups.push(SeedGroup {
            id: format!("5{level:03}"),
            display_name: format!("chain-{level}"),
            external_id: None,
            member_ids: members,
            workspace_local: false,
        });
    }
    seed
}

fn oid(raw: &str) -> EntraObjectId {
    EntraObjectId::parse(raw).unwrap()
}

fn by_name(group: &str) -> PrincipalQuery {
    PrincipalQuery::group_name(group).unwrap()
}

/// What came of a grant to a group, and what it left: the `PATCH`es the stand-in received and the
/// records in the ledger.
struct Asked {
    result: Result<String, ProvisionError>,
    patches: usize,
    records: usize,
}

/// An operator (`approver`, signed in as `operator`) grants the orders table to `group` through
/// `grant-access`.
async fn ask_for_group(
    world: &World,
    group: PrincipalQuery,
    approver: &str,
    operator: Option<Operator>,
) -> Asked {
    let dir = tempfile::tempdir().unwrap();
    let ctx = world.context(dir.path(), Policy::default());
    world.standin.state().clear_requests();
    let mut request = world.table_request("PT10M");
    request.source = RequestSource::GrantAccess;
    request.requester = oid(approver);
    request.grantee = group;
    request.approval.approvers = vec![oid(approver)];
    request.approval.operator = operator;
    let result = provision(&ctx, &request, deadline())
        .await
        .map(|o| o.status.as_str().to_owned());
    let patches = world
        .standin
        .state()
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    let records = all_records(&LocalLedger::new(dir.path())).await.len();
    Asked {
        result,
        patches,
        records,
    }
}

fn person() -> Option<Operator> {
    Some(Operator::Person {
        via: ApplicationId::parse("10ca1000-0000-4000-8000-0000000000c1").unwrap(),
    })
}

fn application(app_id: &str) -> Option<Operator> {
    Some(Operator::Application {
        app_id: ApplicationId::parse(app_id).unwrap(),
    })
}

/// Refused by `rule`, the message containing each of `words`, with nothing sent to Unity Catalog and
/// nothing recorded.
fn assert_refused(asked: Asked, rule: &str, words: &[&str]) {
    match asked.result {
        Err(ProvisionError::Denied(denial)) => {
            assert_eq!(denial.rule, rule, "{denial:?}");
            for word in words {
                assert!(denial.message.contains(word), "{}", denial.message);
            }
        }
        other => panic!("expected a {rule} denial, got {other:?}"),
    }
    assert_eq!(asked.patches, 0, "a refused grant sent a PATCH");
    assert_eq!(asked.records, 0, "a refused grant left a record");
}

fn assert_granted(world: &World, asked: Asked, group: &str) {
    assert_eq!(asked.result.unwrap(), "granted");
    let held = world
        .standin
        .state()
        .grants_on("table", "sales.reporting.orders");
    assert_eq!(held[group], vec!["SELECT"]);
}

#[tokio::test]
async fn an_approver_inside_the_group_is_refused_and_nothing_is_granted() {
    let world = World::start(seed(), false).await;
    let asked = ask_for_group(
        &world,
        PrincipalQuery::GroupExternalId {
            id: oid(demo::ANALYSTS_ENTRA_ID),
        },
        demo::ALICE_ENTRA_ID,
        person(),
    )
    .await;
    assert_refused(asked, "self_approval", &[demo::ALICE_ENTRA_ID]);
}

#[tokio::test]
async fn an_approver_inside_a_nested_group_is_refused() {
    let world = World::start(seed(), false).await;
    let asked = ask_for_group(&world, by_name(OUTER_GROUP), demo::ALICE_ENTRA_ID, None).await;
    assert_refused(asked, "self_approval", &[demo::ALICE_ENTRA_ID]);
}

#[tokio::test]
async fn an_approver_outside_the_group_may_approve() {
    let world = World::start(seed(), false).await;
    let asked = ask_for_group(
        &world,
        PrincipalQuery::GroupExternalId {
            id: oid(OUTER_ENTRA_ID),
        },
        demo::CAROL_ENTRA_ID,
        person(),
    )
    .await;
    assert_granted(&world, asked, OUTER_GROUP);
}

#[tokio::test]
async fn when_account_scim_refuses_the_external_id_filter_a_group_grant_is_refused_as_unverifiable()
{
    let world = World::start(seed().without_external_id_filter(), false).await;
    // Carol is outside the group, but the account will not say who she is.
    let asked = ask_for_group(&world, by_name(OUTER_GROUP), demo::CAROL_ENTRA_ID, person()).await;
    assert_refused(
        asked,
        "self_approval_unverifiable",
        &[OUTER_GROUP, "externalId", "grant to each person"],
    );
    let refused = world
        .standin
        .state()
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/scim/v2/Users") && r.status == 400);
    assert!(refused, "the stand-in did not refuse the externalId filter");
}

#[tokio::test]
async fn an_approver_whose_object_id_no_databricks_identity_carries_is_refused_as_unverifiable() {
    let world = World::start(seed(), false).await;
    // Frank approves a grant to his own group: Databricks cannot tell his user is him.
    let asked = ask_for_group(&world, by_name(MIXED_GROUP), FRANK_ENTRA_ID, person()).await;
    assert_refused(
        asked,
        "self_approval_unverifiable",
        &[MIXED_GROUP, FRANK_ENTRA_ID, "outside the group"],
    );
}

#[tokio::test]
async fn an_application_inside_the_group_is_refused_though_it_has_no_external_id() {
    let world = World::start(seed(), false).await;
    // The ETL pipeline, calling as itself, is a member of contractors by its application id.
    let etl_object_id = "2b3c4d5e-6f70-4819-9aab-1c2d3e4f5a6b";
    let asked = ask_for_group(
        &world,
        by_name(MIXED_GROUP),
        etl_object_id,
        application(demo::ETL_CLIENT_ID),
    )
    .await;
    assert_refused(asked, "self_approval", &[etl_object_id, MIXED_GROUP]);
}

#[tokio::test]
async fn an_application_the_account_does_not_know_may_grant_to_a_group() {
    let world = World::start(seed(), false).await;
    let asked = ask_for_group(
        &world,
        by_name(MIXED_GROUP),
        "3c4d5e6f-7081-492a-8bbc-2d3e4f5a6b7c",
        application(STRANGER_APP_ID),
    )
    .await;
    assert_granted(&world, asked, MIXED_GROUP);
}

#[tokio::test]
async fn nesting_up_to_the_limit_is_followed_and_beyond_it_the_grant_is_refused_as_unverifiable() {
    // chain-1 and the groups nested in it: exactly the limit, all read; Alice is found at the bottom.
    let world = World::start(with_chain(seed(), MAX_GROUPS_CHECKED), false).await;
    let asked = ask_for_group(&world, by_name("chain-1"), demo::ALICE_ENTRA_ID, person()).await;
    assert_refused(asked, "self_approval", &[demo::ALICE_ENTRA_ID]);
    // Carol is outside a chain the check reads whole.
    let asked = ask_for_group(&world, by_name("chain-1"), demo::CAROL_ENTRA_ID, person()).await;
    assert_granted(&world, asked, "chain-1");

    // One group more than is read: whoever approves, membership is not established.
    let world = World::start(with_chain(seed(), MAX_GROUPS_CHECKED + 1), false).await;
    let asked = ask_for_group(&world, by_name("chain-1"), demo::CAROL_ENTRA_ID, person()).await;
    assert_refused(
        asked,
        "self_approval_unverifiable",
        &["chain-1", &MAX_GROUPS_CHECKED.to_string()],
    );
    let group_reads = world
        .standin
        .state()
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/scim/v2/Groups/"))
        .count();
    assert_eq!(group_reads, MAX_GROUPS_CHECKED, "groups read");
}
