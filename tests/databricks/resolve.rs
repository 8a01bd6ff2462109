//! Resolving requesters and targets to account principals.

use std::time::Duration;

use uc_access::domain::{
    ApplicationId, EntraObjectId, PrincipalKind, PrincipalQuery, PrincipalStatus,
};
use uc_access::usecases::resolve::{ResolveError, Resolver};
use uc_access_standin::{Seed, demo};

use crate::support::{World, deadline};

fn resolver(world: &World, resolve_by_external_id: bool) -> Resolver {
    Resolver::new(
        world.clients.directory.clone(),
        Duration::from_secs(60),
        resolve_by_external_id,
    )
}

fn oid(raw: &str) -> PrincipalQuery {
    PrincipalQuery::object_id(EntraObjectId::parse(raw).unwrap())
}

#[tokio::test]
async fn a_purview_requester_object_id_resolves_to_the_account_user() {
    let world = World::start(Seed::demo(), false).await;
    let entry = resolver(&world, false)
        .resolve(&oid(demo::ALICE_ENTRA_ID), &world.workspace(), deadline())
        .await
        .unwrap();
    assert_eq!(entry.principal.uc_name(), demo::ALICE);
    assert_eq!(entry.principal.kind(), PrincipalKind::User);
    assert_eq!(entry.status, PrincipalStatus::Active);
}

#[tokio::test]
async fn an_inactive_user_is_resolved_and_reported_inactive() {
    let world = World::start(Seed::demo(), false).await;
    let entry = resolver(&world, false)
        .resolve(&oid(demo::DAVE_ENTRA_ID), &world.workspace(), deadline())
        .await
        .unwrap();
    assert_eq!(entry.status, PrincipalStatus::Inactive);
}

#[tokio::test]
async fn an_unknown_object_id_is_not_found() {
    let world = World::start(Seed::demo(), false).await;
    let err = resolver(&world, false)
        .resolve(
            &oid("00000000-0000-4000-8000-000000000001"),
            &world.workspace(),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn an_entra_only_user_is_created_only_when_resolve_by_external_id_is_on() {
    let world = World::start(Seed::demo(), true).await;
    let off = resolver(&world, false)
        .resolve(&oid(demo::ERIN_ENTRA_ID), &world.workspace(), deadline())
        .await;
    assert!(matches!(off, Err(ResolveError::NotFound { .. })));
    assert!(world.standin.state().created_identities().is_empty());

    let entry = resolver(&world, true)
        .resolve(&oid(demo::ERIN_ENTRA_ID), &world.workspace(), deadline())
        .await
        .unwrap();
    assert_eq!(entry.principal.uc_name(), demo::ERIN_ENTRA_ONLY);
    assert_eq!(world.standin.state().created_identities().len(), 1);
}

#[tokio::test]
async fn a_workspace_local_group_is_refused_with_the_reason() {
    let world = World::start(Seed::demo(), false).await;
    let err = resolver(&world, false)
        .resolve(
            &PrincipalQuery::group_name(demo::WORKSPACE_LOCAL_GROUP).unwrap(),
            &world.workspace(),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::WorkspaceLocalGroup { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("account group"));
}

#[tokio::test]
async fn account_groups_and_service_principals_resolve_by_their_grant_names() {
    let world = World::start(Seed::demo(), false).await;
    let r = resolver(&world, false);
    let group = r
        .resolve(
            &PrincipalQuery::group_name(demo::FINANCE_GROUP).unwrap(),
            &world.workspace(),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(group.principal.uc_name(), "Finance Readers");
    let app = ApplicationId::parse(demo::ETL_CLIENT_ID).unwrap();
    let sp = r
        .resolve(
            &PrincipalQuery::ApplicationId { id: app },
            &world.workspace(),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(sp.principal.uc_name(), demo::ETL_CLIENT_ID);
    assert_eq!(sp.principal.kind(), PrincipalKind::ServicePrincipal);
}

#[tokio::test]
async fn a_repeated_requester_is_answered_from_the_cache() {
    let world = World::start(Seed::demo(), false).await;
    let r = resolver(&world, false);
    r.resolve(&oid(demo::BOB_ENTRA_ID), &world.workspace(), deadline())
        .await
        .unwrap();
    let after_first = world.clients.requests();
    r.resolve(&oid(demo::BOB_ENTRA_ID), &world.workspace(), deadline())
        .await
        .unwrap();
    assert_eq!(world.clients.requests(), after_first);
}
