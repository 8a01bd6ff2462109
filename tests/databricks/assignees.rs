//! Self-approval through assignee groups: Purview's `Approval.Assigned To` may name groups, and a
//! requester (or the person receiving the access) inside one could approve their own request. With
//! Graph the groups are expanded transitively; without it an assignee the account does not know as a
//! user, service principal or group fails the check closed.

use uc_access::domain::{AccessRequest, EntraObjectId};
use uc_access::ledger::LocalLedger;
use uc_access::policy::Policy;
use uc_access::usecases::provision::{ProvisionError, provision};
use uc_access_standin::{Seed, demo};

use crate::support::{World, all_records, deadline};

fn oid(raw: &str) -> EntraObjectId {
    EntraObjectId::parse(raw).unwrap()
}

/// Alice asks for the customers table (she holds nothing there), approved by an approval assigned to
/// `assignees`.
fn request(world: &World, assignees: &[&str]) -> AccessRequest {
    let mut r = world.table_request("PT10M");
    r.securable = uc_access::domain::Securable::parse(
        uc_access::domain::SecurableType::Table,
        "sales.reporting.customers",
    )
    .unwrap();
    r.approval.approvers = assignees.iter().map(|a| oid(a)).collect();
    r
}

struct Outcome {
    result: Result<String, ProvisionError>,
    patches: usize,
    records: usize,
}

async fn run(world: &World, graph: bool, request: &AccessRequest) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let ctx = if graph {
        world.context_with_graph(dir.path(), Policy::default())
    } else {
        world.context(dir.path(), Policy::default())
    };
    world.standin.state().clear_requests();
    let result = provision(&ctx, request, deadline())
        .await
        .map(|o| o.status.as_str().to_owned());
    let patches = world
        .standin
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    let records = all_records(&LocalLedger::new(dir.path())).await.len();
    Outcome {
        result,
        patches,
        records,
    }
}

fn assert_denied(outcome: &Outcome, rule: &str, words: &[&str]) {
    match &outcome.result {
        Err(ProvisionError::Denied(d)) => {
            assert_eq!(d.rule, rule, "{}", d.message);
            for w in words {
                assert!(d.message.contains(w), "{w:?} missing from {}", d.message);
            }
        }
        other => panic!("expected {rule}, got {other:?}"),
    }
    assert_eq!(
        (outcome.patches, outcome.records),
        (0, 0),
        "nothing changed"
    );
}

fn graph_calls(world: &World) -> Vec<String> {
    world
        .calls()
        .into_iter()
        .filter(|c| c.contains("/v1.0/"))
        .collect()
}

#[tokio::test]
async fn a_requester_inside_an_assignee_group_through_a_nested_group_is_refused_as_self_approval() {
    let world = World::start(Seed::demo(), false).await;
    let outcome = run(
        &world,
        true,
        &request(&world, &[demo::DATA_OWNERS_ENTRA_ID]),
    )
    .await;
    assert_denied(
        &outcome,
        "self_approval",
        &[demo::ALICE_ENTRA_ID, demo::DATA_OWNERS_ENTRA_ID],
    );
    let calls = graph_calls(&world);
    assert!(
        calls.contains(&format!(
            "GET /v1.0/groups/{}?$select=id,displayName",
            demo::DATA_OWNERS_ENTRA_ID
        )),
        "{calls:#?}"
    );
    let check = world
        .standin
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/checkMemberGroups"))
        .expect("membership asked");
    assert_eq!(
        check.path,
        format!(
            "/v1.0/directoryObjects/{}/checkMemberGroups",
            demo::ALICE_ENTRA_ID
        )
    );
    let body: serde_json::Value = serde_json::from_str(&check.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"groupIds": [demo::DATA_OWNERS_ENTRA_ID]})
    );
}

#[tokio::test]
async fn the_person_receiving_access_inside_an_assignee_group_is_refused_too() {
    let world = World::start(Seed::demo(), false).await;
    // Bob asks for Alice; the approval went to the owners' deputies, Alice among them.
    let mut r = request(&world, &[demo::OWNER_DEPUTIES_ENTRA_ID]);
    r.requester = oid(demo::BOB_ENTRA_ID);
    r.target = Some(oid(demo::ALICE_ENTRA_ID));
    let outcome = run(&world, true, &r).await;
    assert_denied(&outcome, "self_approval", &[demo::ALICE_ENTRA_ID]);
}

#[tokio::test]
async fn an_approval_assigned_to_a_group_the_requester_is_not_in_is_granted() {
    let world = World::start(Seed::demo(), false).await;
    let outcome = run(&world, true, &request(&world, &[demo::FINANCE_ENTRA_ID])).await;
    assert_eq!(outcome.result.unwrap(), "granted");
}

#[tokio::test]
async fn a_user_assignee_needs_no_membership_check_and_is_classified_once() {
    let world = World::start(Seed::demo(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = world.context_with_graph(dir.path(), Policy::default());
    let r = request(&world, &[demo::CAROL_ENTRA_ID]);
    world.standin.state().clear_requests();
    assert_eq!(
        provision(&ctx, &r, deadline())
            .await
            .unwrap()
            .status
            .as_str(),
        "granted"
    );
    let first = graph_calls(&world);
    assert!(
        first.contains(&format!(
            "GET /v1.0/groups/{}?$select=id,displayName",
            demo::CAROL_ENTRA_ID
        )),
        "{first:#?}"
    );
    assert!(
        first.iter().all(|c| !c.contains("checkMemberGroups")),
        "{first:#?}"
    );
    world.standin.state().clear_requests();
    provision(&ctx, &r, deadline()).await.unwrap();
    assert!(
        graph_calls(&world).iter().all(|c| !c.contains("/groups/")),
        "the assignee's kind is cached"
    );
}

#[tokio::test]
async fn graph_refusing_to_read_groups_fails_the_check_closed() {
    let mut seed = Seed::demo();
    seed.graph.denied = vec!["groups".into()];
    let world = World::start(seed, false).await;
    let outcome = run(
        &world,
        true,
        &request(&world, &[demo::DATA_OWNERS_ENTRA_ID]),
    )
    .await;
    assert_denied(
        &outcome,
        "self_approval_unverifiable",
        &["GroupMember.Read.All"],
    );
}

#[tokio::test]
async fn without_graph_an_assignee_the_account_does_not_know_fails_closed() {
    let world = World::start(Seed::demo(), false).await;
    let outcome = run(
        &world,
        false,
        &request(&world, &[demo::DATA_OWNERS_ENTRA_ID]),
    )
    .await;
    assert_denied(
        &outcome,
        "self_approval_unverifiable",
        &[demo::DATA_OWNERS_ENTRA_ID, "UC_ACCESS_RESOLVE_WITH_GRAPH"],
    );
    assert!(graph_calls(&world).is_empty());
}

#[tokio::test]
async fn without_graph_an_account_group_assignee_holding_the_requester_is_refused() {
    // The analysts group is in the account with its Entra object id; Alice is a member.
    let world = World::start(Seed::demo(), false).await;
    let outcome = run(&world, false, &request(&world, &[demo::ANALYSTS_ENTRA_ID])).await;
    assert_denied(&outcome, "self_approval", &[demo::ANALYSTS_ENTRA_ID]);
}

#[tokio::test]
async fn without_graph_a_user_assignee_known_by_external_id_is_granted() {
    let world = World::start(Seed::demo(), false).await;
    let outcome = run(&world, false, &request(&world, &[demo::CAROL_ENTRA_ID])).await;
    assert_eq!(outcome.result.unwrap(), "granted");
}
