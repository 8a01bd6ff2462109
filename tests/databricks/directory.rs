//! Account SCIM, the workspace-local group check, and resolve-by-external-id.

use std::time::Duration;

use serde_json::json;
use uc_access::databricks::{DatabricksError, Deadline, DirectoryApi, DirectoryEntry};
use uc_access::domain::{ApplicationId, EntraObjectId, Principal, PrincipalKind, PrincipalStatus};
use uc_access::usecases::resolve::{GroupApproval, Resolver};

use crate::fake::{ACCOUNT, Fake, Reply, clients, fast_retry};

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

const OID: &str = "a1b2c3d4-0000-4000-8000-00000000000f";
const APP: &str = "0f0e0d0c-1111-4222-8333-444455556666";

#[tokio::test]
async fn users_are_found_by_user_name_with_an_escaped_filter() {
    let fake = Fake::start(|_, _| {
        Reply::json(
            200,
            json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"startIndex":1,"itemsPerPage":1,
                   "Resources":[{"id":"123","userName":"Alice\"@contoso.com","active":false,"externalId":OID,"meta":{"resourceType":"User"}}]}),
        )
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let entry = c
        .directory
        .find_user_by_name("alice\"@contoso.com", deadline())
        .await
        .unwrap()
        .unwrap();

    // User names match in any case; Databricks answers them lower case.
    assert_eq!(entry.principal.uc_name(), "alice\"@contoso.com");
    assert_eq!(
        entry.status,
        PrincipalStatus::Inactive,
        "JIT users are inactive until first login"
    );
    assert_eq!(entry.external_id.as_deref(), Some(OID));
    let seen = &fake.seen()[0];
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.raw_path,
        format!("/api/2.0/accounts/{ACCOUNT}/scim/v2/Users")
    );
    assert_eq!(
        seen.param("filter"),
        Some(r#"userName eq "alice\"@contoso.com""#)
    );
    assert_eq!(seen.param("startIndex"), Some("1"));
}

#[tokio::test]
async fn a_user_answered_under_another_name_than_the_filter_asked_for_is_not_taken() {
    // An API that ignored the filter would answer with everyone: the first would be someone else.
    let fake = Fake::start(|_, _| {
        Reply::json(
            200,
            json!({"totalResults":1,"Resources":[{"id":"9","userName":"mallory@contoso.com"}]}),
        )
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let found = c
        .directory
        .find_user_by_name("alice@contoso.com", deadline())
        .await
        .unwrap();
    assert_eq!(found, None);
}

#[tokio::test]
async fn scim_pages_are_followed_until_total_results() {
    let fake = Fake::start(|seen, _| {
        let start: usize = seen.param("startIndex").unwrap().parse().unwrap();
        let resources: Vec<_> = (start..(start + 2).min(4))
            .map(|i| json!({"id": i.to_string(), "displayName": "eng", "meta": {"resourceType": "Group"}}))
            .collect();
        Reply::json(200, json!({"totalResults": 3, "startIndex": start, "Resources": resources}))
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let entry = c
        .directory
        .find_group("eng", deadline())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(entry.id, "1");
    let starts: Vec<_> = fake
        .seen()
        .iter()
        .map(|s| s.param("startIndex").unwrap().to_owned())
        .collect();
    assert_eq!(starts, ["1", "3"]);
    assert_eq!(
        fake.seen()[0].raw_path,
        format!("/api/2.0/accounts/{ACCOUNT}/scim/v2/Groups")
    );
}

#[tokio::test]
async fn nothing_found_is_none_not_an_error() {
    let fake = Fake::start(|_, _| Reply::json(200, json!({"totalResults":0,"Resources":[]}))).await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let app = ApplicationId::parse(APP).unwrap();
    assert!(
        c.directory
            .find_service_principal(app, deadline())
            .await
            .unwrap()
            .is_none()
    );
    let seen = &fake.seen()[0];
    assert!(seen.raw_path.ends_with("/scim/v2/ServicePrincipals"));
    assert_eq!(
        seen.param("filter"),
        Some(format!("applicationId eq \"{APP}\"").as_str())
    );
}

#[tokio::test]
async fn users_can_be_looked_up_by_entra_object_id() {
    let fake = Fake::start(|_, _| Reply::json(200, json!({"totalResults":0}))).await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let oid = EntraObjectId::parse(OID).unwrap();
    let found = c
        .directory
        .find_by_external_id(PrincipalKind::User, oid, deadline())
        .await
        .unwrap();
    assert!(found.is_none());
    assert_eq!(
        fake.seen()[0].param("filter"),
        Some(format!("externalId eq \"{OID}\"").as_str())
    );
}

#[tokio::test]
async fn scim_errors_keep_the_scim_detail() {
    let fake = Fake::start(|_, _| {
        Reply::json(400, json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"scimType":"invalidFilter","detail":"Unsupported filter","status":"400"}))
    })
    .await;
    let c = clients(&fake, fast_retry(3), Duration::from_secs(5), false);
    let err = c
        .directory
        .find_by_external_id(
            PrincipalKind::User,
            EntraObjectId::parse(OID).unwrap(),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DatabricksError::InvalidParameter { .. }),
        "{err:?}"
    );
    assert_eq!(err.upstream().unwrap().message, "Unsupported filter");
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn a_workspace_local_group_is_recognised_through_workspace_scim() {
    let fake = Fake::start(|_, _| {
        Reply::json(200, json!({"totalResults":1,"Resources":[{"id":"9","displayName":"admins","meta":{"resourceType":"WorkspaceGroup"}}]}))
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    assert!(
        c.directory
            .is_workspace_local_group(&fake.url, "admins", deadline())
            .await
            .unwrap()
    );
    assert!(
        !c.directory
            .is_workspace_local_group(&fake.url, "Admins", deadline())
            .await
            .unwrap()
    );
    let seen = &fake.seen()[0];
    assert_eq!(seen.raw_path, "/api/2.0/preview/scim/v2/Groups");
    assert_eq!(seen.param("filter"), Some(r#"displayName eq "admins""#));
}

#[tokio::test]
async fn resolve_by_external_id_is_refused_unless_enabled() {
    let fake = Fake::start(|_, _| Reply::json(200, json!({}))).await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let err = c
        .directory
        .resolve_by_external_id(
            PrincipalKind::User,
            EntraObjectId::parse(OID).unwrap(),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DatabricksError::Disabled { .. }));
    assert!(
        err.operator_hint()
            .contains("UC_ACCESS_RESOLVE_BY_EXTERNAL_ID")
    );
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn resolve_posts_the_object_id_and_reads_the_user() {
    let fake = Fake::start(|_, _| {
        Reply::json(200, json!({"user":{"internal_id":"4242","username":"Bob@Contoso.com","external_id":OID,"account_user_status":"ACTIVE"}}))
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), true);
    let entry = c
        .directory
        .resolve_by_external_id(
            PrincipalKind::User,
            EntraObjectId::parse(OID).unwrap(),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(entry.principal.uc_name(), "bob@contoso.com");
    assert_eq!(entry.id, "4242");
    assert_eq!(entry.status, PrincipalStatus::Active);
    let seen = &fake.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.raw_path,
        format!("/api/2.0/identity/accounts/{ACCOUNT}/users/resolve-by-external-id")
    );
    assert_eq!(seen.json(), json!({"external_id": OID}));
}

#[tokio::test]
async fn resolve_is_not_retried_on_timeout_because_it_creates_identities() {
    let fake = Fake::start(|_, _| Reply::json(200, json!({})).after(Duration::from_secs(3))).await;
    let c = clients(&fake, fast_retry(3), Duration::from_millis(200), true);
    let err = c
        .directory
        .resolve_by_external_id(
            PrincipalKind::ServicePrincipal,
            EntraObjectId::parse(OID).unwrap(),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DatabricksError::OutcomeUnknown { cause } if matches!(**cause, DatabricksError::Timeout { .. })),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(fake.seen().len(), 1);
    assert!(
        fake.seen()[0]
            .raw_path
            .ends_with("/service-principals/resolve-by-external-id")
    );
}

#[tokio::test]
async fn group_members_are_read_by_id_and_told_apart_by_kind_or_left_unknown() {
    let fake = Fake::start(|seen, _| {
        if seen.raw_path.ends_with("/Groups/77") {
            Reply::json(
                200,
                json!({"id":"77","displayName":"analysts","members":[
                    {"value":"1001","display":"Alice","$ref":"Users/1001"},
                    {"value":"78","display":"interns","$ref":"Groups/78"},
                    {"value":"2001","$ref":"https://accounts.example/api/2.0/accounts/x/scim/v2/ServicePrincipals/2001"},
                    {"value":"2002","display":"no reference"}]}),
            )
        } else {
            Reply::json(
                404,
                json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"Group not found","status":"404"}),
            )
        }
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let members = c.directory.group_members("77", deadline()).await.unwrap();
    let summary: Vec<(&str, Option<PrincipalKind>)> =
        members.iter().map(|m| (m.id.as_str(), m.kind)).collect();
    assert_eq!(
        summary,
        [
            ("1001", Some(PrincipalKind::User)),
            ("78", Some(PrincipalKind::Group)),
            ("2001", Some(PrincipalKind::ServicePrincipal)),
            ("2002", None),
        ]
    );
    assert_eq!(
        fake.seen()[0].raw_path,
        format!("/api/2.0/accounts/{ACCOUNT}/scim/v2/Groups/77")
    );
    // A group that is gone has no members (not an error).
    assert!(
        c.directory
            .group_members("99", deadline())
            .await
            .unwrap()
            .is_empty()
    );
}

/// The group self-approval check against an account whose group answers give no member kinds: Alice
/// (user 1001) is in group 78, nested in group 77 without a `$ref`.
#[tokio::test]
async fn a_member_whose_kind_is_not_given_is_read_as_a_group_so_an_approver_inside_it_is_found() {
    let fake = Fake::start(|seen, _| {
        let not_found = || {
            Reply::json(
                404,
                json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"not found","status":"404"}),
            )
        };
        match seen.raw_path.rsplit('/').next().unwrap() {
            "Users" => Reply::json(
                200,
                json!({"totalResults":1,"Resources":[{"id":"1001","userName":"alice@contoso.com","externalId":OID}]}),
            ),
            "77" => Reply::json(
                200,
                json!({"id":"77","displayName":"guild","members":[{"value":"2001"},{"value":"78"}]}),
            ),
            "78" => Reply::json(
                200,
                json!({"id":"78","displayName":"analysts","members":[{"value":"1001"}]}),
            ),
            _ => not_found(),
        }
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let resolver = Resolver::new(c.directory.clone(), Duration::from_secs(60), false);
    let guild = DirectoryEntry {
        principal: Principal::group("guild").unwrap(),
        id: "77".into(),
        external_id: None,
        display_name: Some("guild".into()),
        status: PrincipalStatus::Active,
    };
    let alice = EntraObjectId::parse(OID).unwrap();
    let found = resolver
        .approver_in_group(&[alice], None, &guild, deadline())
        .await
        .unwrap();
    assert_eq!(found, GroupApproval::Member(alice));
    let groups_read: Vec<String> = fake
        .seen()
        .iter()
        .filter(|s| s.raw_path.contains("/Groups/"))
        .map(|s| s.raw_path.rsplit('/').next().unwrap().to_owned())
        .collect();
    // 2001 (a service principal, as it turns out) is read as a group and has no members.
    assert_eq!(groups_read, ["77", "2001", "78"]);
}

#[tokio::test]
async fn an_answer_to_an_external_id_filter_counts_only_if_it_carries_that_external_id() {
    // An API that ignored the filter would answer with everyone; none of them is the one asked for.
    let fake = Fake::start(|_, _| {
        Reply::json(
            200,
            json!({"totalResults":2,"Resources":[
                {"id":"1","userName":"someone@contoso.com"},
                {"id":"2","userName":"other@contoso.com","externalId":"b0b0b0b0-0000-4000-8000-000000000000"}]}),
        )
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let found = c
        .directory
        .find_by_external_id(
            PrincipalKind::User,
            EntraObjectId::parse(OID).unwrap(),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(found, None);
}
