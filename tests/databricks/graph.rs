//! Finding the requester through Microsoft Graph when Databricks holds no Entra object id for them:
//! each identity kind through the stand-ins (Databricks and Graph served by one process), with the
//! requests both received asserted in order.

use std::time::Duration;

use uc_access::domain::{EntraObjectId, PrincipalKind, PrincipalQuery};
use uc_access::graph::GraphError;
use uc_access::usecases::resolve::{ResolveError, ResolvePath, Resolver};
use uc_access_standin::{Fault, FaultKind, Seed, demo};

use crate::support::{World, deadline};

fn oid(raw: &str) -> EntraObjectId {
    EntraObjectId::parse(raw).unwrap()
}

fn with_graph(world: &World) -> Resolver {
    Resolver::new(
        world.clients.directory.clone(),
        Duration::from_secs(60),
        false,
    )
    .with_graph(world.graph())
}

async fn resolve(
    world: &World,
    r: &Resolver,
    id: &str,
) -> Result<uc_access::databricks::DirectoryEntry, ResolveError> {
    r.resolve(
        &PrincipalQuery::object_id(oid(id)),
        &world.workspace(),
        deadline(),
    )
    .await
}

fn users_by_external_id(id: &str) -> String {
    format!(
        "GET /api/2.0/accounts/{}/scim/v2/Users?filter=externalId eq \"{id}\"&startIndex=1&count=100",
        demo::ACCOUNT_ID
    )
}

fn sps_by_external_id(id: &str) -> String {
    format!(
        "GET /api/2.0/accounts/{}/scim/v2/ServicePrincipals?filter=externalId eq \"{id}\"&startIndex=1&count=100",
        demo::ACCOUNT_ID
    )
}

fn user_by_name(name: &str) -> String {
    format!(
        "GET /api/2.0/accounts/{}/scim/v2/Users?filter=userName eq \"{name}\"&startIndex=1&count=100",
        demo::ACCOUNT_ID
    )
}

fn graph_user(id: &str) -> String {
    format!("GET /v1.0/users/{id}?$select=id,userPrincipalName,mail,accountEnabled,userType")
}

#[tokio::test]
async fn a_user_added_by_email_has_no_external_id_and_is_found_through_graph_by_user_principal_name()
 {
    let world = World::start(Seed::demo(), false).await;
    let entry = resolve(&world, &with_graph(&world), demo::HEIDI_ENTRA_ID)
        .await
        .unwrap();
    assert_eq!(entry.principal.uc_name(), demo::HEIDI_BY_EMAIL);
    // Graph tied the object id to the name: self-approval can compare it with the approvers.
    assert_eq!(entry.external_id.as_deref(), Some(demo::HEIDI_ENTRA_ID));
    assert_eq!(
        world.calls(),
        [
            users_by_external_id(demo::HEIDI_ENTRA_ID),
            sps_by_external_id(demo::HEIDI_ENTRA_ID),
            graph_user(demo::HEIDI_ENTRA_ID),
            user_by_name(demo::HEIDI_BY_EMAIL),
        ]
    );
}

#[tokio::test]
async fn a_user_whose_mail_differs_from_the_user_principal_name_is_found_by_mail_after_the_upn() {
    let world = World::start(Seed::demo(), false).await;
    let entry = resolve(&world, &with_graph(&world), demo::IVAN_ENTRA_ID)
        .await
        .unwrap();
    assert_eq!(entry.principal.uc_name(), demo::IVAN_MAIL);
    let calls = world.calls();
    assert_eq!(
        calls[2..],
        [
            graph_user(demo::IVAN_ENTRA_ID),
            user_by_name(demo::IVAN_UPN),
            // Graph answers `Ivan.Petrov@…`: asked in lower case, as Databricks stores user names.
            user_by_name(demo::IVAN_MAIL),
        ]
    );
}

#[tokio::test]
async fn a_guest_is_found_by_the_address_they_were_invited_with_and_the_ext_upn_is_not_needed() {
    let world = World::start(Seed::demo(), false).await;
    let entry = resolve(&world, &with_graph(&world), demo::JUDY_ENTRA_ID)
        .await
        .unwrap();
    assert_eq!(entry.principal.uc_name(), demo::JUDY_GUEST);
    assert_eq!(
        world.calls()[2..],
        [
            graph_user(demo::JUDY_ENTRA_ID),
            user_by_name(demo::JUDY_GUEST)
        ]
    );
}

#[tokio::test]
async fn a_guest_provisioned_under_the_ext_upn_is_found_by_it_after_the_mail() {
    let mut seed = Seed::demo();
    let judy = seed
        .users
        .iter_mut()
        .find(|u| u.user_name == demo::JUDY_GUEST)
        .unwrap();
    judy.user_name = demo::JUDY_GUEST_UPN.to_owned();
    let world = World::start(seed, false).await;
    let entry = resolve(&world, &with_graph(&world), demo::JUDY_ENTRA_ID)
        .await
        .unwrap();
    assert_eq!(
        entry.principal.uc_name(),
        demo::JUDY_GUEST_UPN.to_lowercase()
    );
    assert_eq!(
        world.calls()[3..],
        [
            user_by_name(demo::JUDY_GUEST),
            user_by_name(&demo::JUDY_GUEST_UPN.to_lowercase())
        ]
    );
}

#[tokio::test]
async fn a_user_only_graph_finds_is_refused_when_the_entra_account_is_disabled() {
    let world = World::start(Seed::demo(), false).await;
    let r = with_graph(&world);
    // Mallory: found only through Graph, which says her account is disabled.
    let err = resolve(&world, &r, demo::MALLORY_ENTRA_ID)
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::Disabled { .. }), "{err}");
    assert!(err.to_string().contains("disabled"), "{err}");
    assert!(
        !world
            .calls()
            .contains(&user_by_name(demo::MALLORY_DISABLED)),
        "a disabled account is not looked up in Databricks"
    );
}

#[tokio::test]
async fn an_account_found_by_external_id_is_refused_when_graph_says_it_is_disabled() {
    let mut seed = Seed::demo();
    let alice = seed
        .graph
        .users
        .iter_mut()
        .find(|u| u.id == demo::ALICE_ENTRA_ID)
        .unwrap();
    alice.account_enabled = false;
    let world = World::start(seed, false).await;
    let err = resolve(&world, &with_graph(&world), demo::ALICE_ENTRA_ID)
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::Disabled { .. }), "{err}");
    assert_eq!(
        world.calls(),
        [
            users_by_external_id(demo::ALICE_ENTRA_ID),
            graph_user(demo::ALICE_ENTRA_ID)
        ]
    );
}

#[tokio::test]
async fn without_graph_a_disabled_account_databricks_holds_active_is_not_detected() {
    // What Graph adds: the account directory alone says Mallory is active.
    let world = World::start(Seed::demo(), false).await;
    let r = Resolver::new(
        world.clients.directory.clone(),
        Duration::from_secs(60),
        false,
    );
    let err = resolve(&world, &r, demo::MALLORY_ENTRA_ID)
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
    assert!(world.calls().iter().all(|c| !c.contains("/v1.0/")));
}

#[tokio::test]
async fn a_service_principal_without_external_id_is_found_through_graph_by_its_application_id() {
    let world = World::start(Seed::demo(), false).await;
    let entry = resolve(&world, &with_graph(&world), demo::ETL_SP_ENTRA_ID)
        .await
        .unwrap();
    assert_eq!(entry.principal.kind(), PrincipalKind::ServicePrincipal);
    assert_eq!(entry.principal.uc_name(), demo::ETL_CLIENT_ID);
    assert_eq!(
        world.calls()[2..],
        [
            graph_user(demo::ETL_SP_ENTRA_ID),
            format!(
                "GET /v1.0/servicePrincipals/{}?$select=id,appId,accountEnabled,displayName",
                demo::ETL_SP_ENTRA_ID
            ),
            format!(
                "GET /api/2.0/accounts/{}/scim/v2/ServicePrincipals?filter=applicationId eq \"{}\"&startIndex=1&count=100",
                demo::ACCOUNT_ID,
                demo::ETL_CLIENT_ID
            ),
        ]
    );
}

#[tokio::test]
async fn a_refused_external_id_filter_is_unknown_and_graph_takes_over() {
    let world = World::start(Seed::demo().without_external_id_filter(), false).await;
    let entry = resolve(&world, &with_graph(&world), demo::ALICE_ENTRA_ID)
        .await
        .unwrap();
    assert_eq!(entry.principal.uc_name(), demo::ALICE);
    let calls = world.calls();
    assert_eq!(calls[0], users_by_external_id(demo::ALICE_ENTRA_ID));
    assert_eq!(
        calls[1..],
        [graph_user(demo::ALICE_ENTRA_ID), user_by_name(demo::ALICE)]
    );
}

#[tokio::test]
async fn an_object_id_neither_databricks_nor_graph_knows_is_not_found_after_every_path() {
    let world = World::start(Seed::demo(), false).await;
    let unknown = "00000000-0000-4000-8000-0000000000aa";
    let err = resolve(&world, &with_graph(&world), unknown)
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
    let graph: Vec<String> = world
        .calls()
        .into_iter()
        .filter(|c| c.contains("/v1.0/"))
        .map(|c| c.split('?').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        graph,
        [
            format!("GET /v1.0/users/{unknown}"),
            format!("GET /v1.0/servicePrincipals/{unknown}"),
            format!("GET /v1.0/groups/{unknown}"),
        ]
    );
}

#[tokio::test]
async fn a_throttled_graph_answer_is_retried_after_the_retry_after_it_gave() {
    let world = World::start(Seed::demo(), false).await;
    world.standin.state().inject(
        Fault::new(
            FaultKind::TooManyRequests {
                retry_after_secs: 1,
            },
            1,
        )
        .on_path_prefix("/v1.0/"),
    );
    let started = std::time::Instant::now();
    let entry = resolve(&world, &with_graph(&world), demo::HEIDI_ENTRA_ID)
        .await
        .unwrap();
    assert_eq!(entry.principal.uc_name(), demo::HEIDI_BY_EMAIL);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited as told"
    );
    let graph: Vec<u16> = world
        .standin
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1.0/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(graph, [429, 200]);
}

#[tokio::test]
async fn graph_throttling_beyond_the_deadline_is_a_retryable_error_not_a_miss() {
    let world = World::start(Seed::demo(), false).await;
    world.standin.state().inject(
        Fault::new(
            FaultKind::TooManyRequests {
                retry_after_secs: 20,
            },
            1,
        )
        .on_path_prefix("/v1.0/"),
    );
    let r = with_graph(&world);
    let err = r
        .resolve(
            &PrincipalQuery::object_id(oid(demo::HEIDI_ENTRA_ID)),
            &world.workspace(),
            uc_access::databricks::Deadline::after(Duration::from_secs(3)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ResolveError::Graph(g @ GraphError::Unavailable { .. }) if g.retry_after() == Some(Duration::from_secs(20))),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_graph_permission_refusal_is_an_error_naming_graph_not_principal_not_found() {
    let mut seed = Seed::demo();
    seed.graph.denied = vec!["users".into()];
    let world = World::start(seed, false).await;
    let err = resolve(&world, &with_graph(&world), demo::HEIDI_ENTRA_ID)
        .await
        .unwrap_err();
    match &err {
        ResolveError::Graph(GraphError::Refused { status, code, .. }) => {
            assert_eq!(
                (*status, code.as_str()),
                (403, "Authorization_RequestDenied")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn resolve_by_external_id_creates_an_identity_only_after_graph_found_none() {
    let world = World::start(Seed::demo(), true).await;
    let r = Resolver::new(
        world.clients.directory.clone(),
        Duration::from_secs(60),
        true,
    )
    .with_graph(world.graph());
    let entry = resolve(&world, &r, demo::ERIN_ENTRA_ID).await.unwrap();
    assert_eq!(entry.principal.uc_name(), demo::ERIN_ENTRA_ONLY);
    assert_eq!(world.standin.state().created_identities().len(), 1);
    let calls = world.calls();
    let graph_at = calls
        .iter()
        .position(|c| c.starts_with("GET /v1.0/users/"))
        .unwrap();
    let created_at = calls
        .iter()
        .position(|c| c.contains("resolve-by-external-id"))
        .unwrap();
    assert!(graph_at < created_at, "{calls:#?}");
}

#[tokio::test]
async fn an_explicit_order_puts_graph_first_and_skips_the_external_id_search() {
    let world = World::start(Seed::demo(), false).await;
    let r = with_graph(&world).with_order(vec![ResolvePath::Graph]);
    let entry = resolve(&world, &r, demo::ALICE_ENTRA_ID).await.unwrap();
    assert_eq!(entry.principal.uc_name(), demo::ALICE);
    assert_eq!(
        world.calls(),
        [graph_user(demo::ALICE_ENTRA_ID), user_by_name(demo::ALICE)]
    );
}
