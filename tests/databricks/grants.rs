//! The Unity Catalog permissions client.

use std::time::Duration;

use serde_json::json;
use uc_access::databricks::{
    DatabricksError, Deadline, GetPermissionsOptions, GrantsApi, PermissionsChange,
};
use uc_access::domain::{Principal, Privilege, PrivilegeSet, Securable, SecurableType};

use crate::fake::{Fake, Reply, clients, fast_retry};

fn table() -> Securable {
    Securable::parse(SecurableType::Table, "sales.eu.orders-2024").expect("a valid name")
}

/// A change adding `privileges` for `principal`.
fn adding<const N: usize>(principal: Principal, privileges: [Privilege; N]) -> PermissionsChange {
    PermissionsChange {
        principal,
        add: PrivilegeSet::from(privileges),
        remove: PrivilegeSet::new(),
    }
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

#[tokio::test]
async fn direct_grants_are_read_with_token_principal_and_every_page() {
    let fake = Fake::start(|_, i| match i {
        0 => Reply::json(
            200,
            json!({"privilege_assignments":[{"principal":"a@x.com","privileges":["SELECT"]}],"next_page_token":"p2"}),
        ),
        // An empty page that still carries a token must not end the listing.
        1 => Reply::json(200, json!({"privilege_assignments":[],"next_page_token":"p3"})),
        _ => Reply::json(
            200,
            json!({"privilege_assignments":[{"principal":"a@x.com","privileges":["MODIFY","SOMETHING_NEW"]}]}),
        ),
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let options = GetPermissionsOptions {
        principal: Some(Principal::user("A@x.com").unwrap()),
        page_size: Some(10),
    };
    let got = c
        .grants
        .get_direct(&fake.url, &table(), &options, deadline())
        .await
        .unwrap();

    assert_eq!(got.len(), 2);
    assert_eq!(got[0].privileges, PrivilegeSet::from([Privilege::Select]));
    assert_eq!(got[1].unrecognised, vec!["SOMETHING_NEW"]);
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(c.requests(), 3);
    assert_eq!(
        seen[0].raw_path,
        "/api/2.1/unity-catalog/permissions/table/sales.eu.orders-2024"
    );
    assert_eq!(seen[0].param("principal"), Some("a@x.com"));
    assert_eq!(
        seen[0].param("max_results"),
        Some("150"),
        "1-149 is refused by the API"
    );
    assert_eq!(seen[0].param("page_token"), None);
    assert_eq!(seen[1].param("page_token"), Some("p2"));
    assert_eq!(seen[2].param("page_token"), Some("p3"));
    assert_eq!(seen[0].headers["authorization"], "Bearer test-token");
}

#[tokio::test]
async fn an_object_without_grants_answers_an_empty_list() {
    let fake = Fake::start(|_, _| Reply::json(200, json!({}))).await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let got = c
        .grants
        .get_direct(
            &fake.url,
            &table(),
            &GetPermissionsOptions::default(),
            deadline(),
        )
        .await
        .unwrap();
    assert!(got.is_empty());
    assert_eq!(fake.seen()[0].query, vec![]);
}

#[tokio::test]
async fn changes_are_sent_as_one_patch_and_the_new_assignments_returned() {
    let fake = Fake::start(|_, _| {
        Reply::json(
            200,
            json!({"privilege_assignments":[{"principal":"data eng","privileges":["USE_CATALOG","SELECT"]}]}),
        )
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let catalog = Securable::parse(SecurableType::Catalog, "sales").unwrap();
    let changes = [adding(
        Principal::group("data eng").unwrap(),
        [Privilege::UseCatalog, Privilege::Select],
    )];
    let got = c
        .grants
        .update(&fake.url, &catalog, &changes, deadline())
        .await
        .unwrap();

    assert_eq!(got[0].principal, "data eng");
    let seen = &fake.seen()[0];
    assert_eq!(seen.method, "PATCH");
    assert_eq!(
        seen.raw_path,
        "/api/2.1/unity-catalog/permissions/catalog/sales"
    );
    assert_eq!(
        seen.json(),
        json!({"changes":[{"principal":"data eng","add":["SELECT","USE_CATALOG"]}]})
    );
    assert_eq!(seen.headers["content-type"], "application/json");
}

#[tokio::test]
async fn a_patch_answers_only_the_changed_principals_assignments() {
    // Unity Catalog answers every principal's assignments on the securable; only those changed are
    // read: a user compared without case, a group exactly, an escaped name decoded, no privileges empty.
    let fake = Fake::start(|_, _| {
        Reply::json(
            200,
            json!({"privilege_assignments":[
                {"principal":"someone@x.com","privileges":["SELECT","MODIFY"]},
                {"principal":"Alice@X.com","privileges":["USE_CATALOG","NEW_THING"]},
                {"principal":"data eng","privileges":["USE_CATALOG"]},
                {"principal":"Data Eng","privileges":["SELECT"]},
                {"principal":"qu\"oted","privileges":null},
                {"principal":"bob@x.com"}
            ]}),
        )
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let catalog = Securable::parse(SecurableType::Catalog, "sales").unwrap();
    let change = |principal: Principal| adding(principal, [Privilege::UseCatalog]);
    let changes = [
        change(Principal::user("alice@x.com").unwrap()),
        change(Principal::group("data eng").unwrap()),
        change(Principal::group("qu\"oted").unwrap()),
        change(Principal::user("bob@x.com").unwrap()),
    ];
    let got = c
        .grants
        .update(&fake.url, &catalog, &changes, deadline())
        .await
        .unwrap();

    let names: Vec<&str> = got.iter().map(|a| a.principal.as_str()).collect();
    assert_eq!(names, ["Alice@X.com", "data eng", "qu\"oted", "bob@x.com"]);
    assert_eq!(
        got[0].privileges,
        PrivilegeSet::from([Privilege::UseCatalog])
    );
    assert_eq!(got[0].unrecognised, vec!["NEW_THING"]);
    assert!(got[2].privileges.is_empty() && got[3].privileges.is_empty());
}

#[tokio::test]
async fn a_patch_answer_that_is_not_json_is_an_unexpected_answer_naming_the_request() {
    let fake =
        Fake::start(|_, _| Reply::json(200, json!({"privilege_assignments":[{"principal":1}]})))
            .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let changes = [adding(
        Principal::user("alice@x.com").unwrap(),
        [Privilege::Select],
    )];
    let err = c
        .grants
        .update(&fake.url, &table(), &changes, deadline())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DatabricksError::Unexpected { request, detail, .. }
            if request.starts_with("PATCH ") && detail.starts_with("cannot read the answer")),
        "{err:?}"
    );
}

#[tokio::test]
async fn effective_privileges_keep_where_they_are_inherited_from() {
    let fake = Fake::start(|_, _| {
        Reply::json(
            200,
            json!({"privilege_assignments":[{"principal":"a@x.com","privileges":[
                {"privilege":"SELECT","inherited_from_type":"CATALOG","inherited_from_name":"sales"},
                {"privilege":"USE_SCHEMA"}]}]}),
        )
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let user = Principal::user("a@x.com").unwrap();
    let got = c
        .grants
        .effective(&fake.url, &table(), Some(&user), deadline())
        .await
        .unwrap();

    assert_eq!(
        got[0].privileges[0].inherited_from_name.as_deref(),
        Some("sales")
    );
    assert_eq!(got[0].privileges[1].inherited_from_type, None);
    let seen = &fake.seen()[0];
    assert_eq!(
        seen.raw_path,
        "/api/2.1/unity-catalog/effective-permissions/table/sales.eu.orders-2024"
    );
    assert_eq!(seen.param("principal"), Some("a@x.com"));
}

#[tokio::test]
async fn missing_manage_becomes_permission_denied_naming_the_catalog() {
    let fake = Fake::start(|_, _| {
        Reply::json(
            403,
            json!({"error_code":"PERMISSION_DENIED","message":"User does not have MANAGE on Table 'sales.eu.orders-2024'.","details":[]}),
        )
    })
    .await;
    let c = clients(&fake, fast_retry(3), Duration::from_secs(5), false);
    let err = c
        .grants
        .get_direct(
            &fake.url,
            &table(),
            &GetPermissionsOptions::default(),
            deadline(),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(err, DatabricksError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert_eq!(err.error_code(), Some("PERMISSION_DENIED"));
    assert!(err.operator_hint().contains("MANAGE on catalog `sales`"));
    assert_eq!(fake.seen().len(), 1, "permission errors are not retried");
}

#[tokio::test]
async fn each_not_found_is_told_apart_by_its_error_code() {
    let fake = Fake::start(|seen, _| {
        if seen.raw_path.contains("/catalog/") {
            Reply::json(404, json!({"error_code":"CATALOG_DOES_NOT_EXIST","message":"Catalog 'nope' does not exist."}))
        } else {
            Reply::json(404, json!({"error_code":"PRINCIPAL_DOES_NOT_EXIST","message":"Could not find principal with name users"}))
        }
    })
    .await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(5), false);
    let catalog = Securable::parse(SecurableType::Catalog, "nope").unwrap();
    let err = c
        .grants
        .get_direct(
            &fake.url,
            &catalog,
            &GetPermissionsOptions::default(),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DatabricksError::SecurableNotFound { .. }),
        "{err:?}"
    );

    let changes = [adding(
        Principal::group("users").unwrap(),
        [Privilege::Select],
    )];
    let err = c
        .grants
        .update(&fake.url, &table(), &changes, deadline())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DatabricksError::PrincipalNotFound { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("Could not find principal with name users")
    );
}

#[tokio::test]
async fn throttling_is_retried_after_the_servers_retry_after() {
    let fake = Fake::start(|_, i| {
        if i < 2 {
            Reply::json(
                429,
                json!({"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}),
            )
            .header("retry-after", "0")
        } else {
            Reply::json(200, json!({}))
        }
    })
    .await;
    let c = clients(&fake, fast_retry(4), Duration::from_secs(5), false);
    let got = c
        .grants
        .get_direct(
            &fake.url,
            &table(),
            &GetPermissionsOptions::default(),
            deadline(),
        )
        .await;
    assert!(got.is_ok(), "{got:?}");
    assert_eq!(fake.seen().len(), 3);
    assert_eq!(c.requests(), 3);
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_is_handed_back_instead_of_waited() {
    let fake = Fake::start(|_, _| {
        Reply::json(
            503,
            json!({"error_code":"TEMPORARILY_UNAVAILABLE","message":"later"}),
        )
        .header("retry-after", "30")
    })
    .await;
    let c = clients(&fake, fast_retry(5), Duration::from_secs(5), false);
    let started = std::time::Instant::now();
    let err = c
        .grants
        .update(
            &fake.url,
            &table(),
            &[],
            Deadline::after(Duration::from_secs(3)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DatabricksError::Unavailable { .. }),
        "{err:?}"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn a_slow_server_times_out_and_idempotent_reads_are_retried() {
    let fake = Fake::start(|_, _| Reply::json(200, json!({})).after(Duration::from_secs(3))).await;
    let c = clients(&fake, fast_retry(2), Duration::from_millis(200), false);
    let err = c
        .grants
        .get_direct(
            &fake.url,
            &table(),
            &GetPermissionsOptions::default(),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DatabricksError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn an_unreachable_host_is_reported_as_such() {
    // Bind and drop a listener so the port is known to be closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let fake = Fake::start(|_, _| Reply::json(200, json!({}))).await;
    let c = clients(&fake, fast_retry(1), Duration::from_secs(2), false);
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = c
        .grants
        .get_direct(
            &url,
            &table(),
            &GetPermissionsOptions::default(),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DatabricksError::Unreachable { .. }),
        "{err:?}"
    );
    assert!(err.operator_hint().contains("DATABRICKS_HOST"));
}
