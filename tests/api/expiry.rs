//! Temporary access end to end: grants expire and the timer revokes exactly what uc-access added;
//! shared parents stay while a sibling needs them; concurrent duplicates make one grant.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;
use uc_access_standin::demo;

use crate::helpers::{TestApp, callback_body};

const PATH: &str = "/api/purview-callback";

#[tokio::test]
async fn an_expired_grant_is_revoked_by_the_timer_and_nothing_else_is_touched() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(PATH, Some(&app.token("purview")), callback_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");

    let early = app.run_timer().await;
    assert_eq!(early["due"], 0, "not expired yet: {early}");
    assert_eq!(
        app.held("table", "sales.reporting.orders", demo::ALICE),
        vec!["SELECT"]
    );

    app.advance(time::Duration::minutes(3));
    let report = app.run_timer().await;
    assert_eq!(report["due"], 1, "{report}");
    assert_eq!(report["revoked"], 1, "{report}");
    assert!(report["databricksCalls"].as_u64().unwrap() >= 3);
    assert!(
        app.held("table", "sales.reporting.orders", demo::ALICE)
            .is_empty()
    );
    assert!(
        app.held("schema", "sales.reporting", demo::ALICE)
            .is_empty()
    );
    assert!(app.held("catalog", "sales", demo::ALICE).is_empty());
    // Bob's pre-existing grants and the groups' grants are untouched.
    assert_eq!(
        app.held("table", "sales.reporting.orders", demo::BOB),
        vec!["SELECT"]
    );
    assert_eq!(app.held("catalog", "sales", demo::BOB), vec!["USE_CATALOG"]);
    assert_eq!(
        app.held("catalog", "sales", demo::ANALYSTS_GROUP),
        vec!["USE_CATALOG"]
    );

    let again = app.run_timer().await;
    assert_eq!(again["due"], 0, "a revoked grant is not due again: {again}");
}

#[tokio::test]
async fn a_shared_use_schema_stays_while_a_sibling_grant_is_active_and_goes_when_both_expire() {
    let app = TestApp::spawn().await;
    let token = app.token("purview");
    let (s1, _) = app
        .post(
            PATH,
            Some(&token),
            callback_body(json!({"duration": "PT2M"})),
        )
        .await;
    let customers = "databricks://m/catalogs/sales/schemas/reporting/tables/customers";
    let (s2, j2) = app
        .post(
            PATH,
            Some(&token),
            callback_body(json!({"duration": "PT10M", "assetQualifiedName": customers})),
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{j2}");
    assert!(
        j2["added"]
            .as_str()
            .unwrap()
            .contains("SELECT on table sales.reporting.customers")
    );
    assert!(
        !j2["added"].as_str().unwrap().contains("USE_SCHEMA"),
        "{j2}"
    );

    app.advance(time::Duration::minutes(3));
    let report = app.run_timer().await;
    assert_eq!(report["revoked"], 1, "{report}");
    assert!(report["kept"].as_u64().unwrap() >= 2, "{report}");
    assert!(
        app.held("table", "sales.reporting.orders", demo::ALICE)
            .is_empty()
    );
    assert_eq!(
        app.held("schema", "sales.reporting", demo::ALICE),
        vec!["USE_SCHEMA"]
    );
    assert_eq!(
        app.held("catalog", "sales", demo::ALICE),
        vec!["USE_CATALOG"]
    );

    app.advance(time::Duration::minutes(10));
    let report = app.run_timer().await;
    assert_eq!(report["revoked"], 1, "{report}");
    assert!(
        app.held("table", "sales.reporting.customers", demo::ALICE)
            .is_empty()
    );
    assert!(
        app.held("schema", "sales.reporting", demo::ALICE)
            .is_empty()
    );
    assert!(app.held("catalog", "sales", demo::ALICE).is_empty());
}

#[tokio::test]
async fn a_failed_revoke_is_retried_on_a_later_run() {
    let app = TestApp::spawn().await;
    app.post(PATH, Some(&app.token("purview")), callback_body(json!({})))
        .await;
    app.advance(time::Duration::minutes(3));
    app.standin.inject(
        uc_access_standin::Fault::new(
            uc_access_standin::FaultKind::Unavailable {
                retry_after_secs: None,
            },
            1000,
        )
        .on_method("PATCH"),
    );
    let report = app.run_timer().await;
    assert_eq!(report["failed"], 1, "{report}");
    assert_eq!(
        app.held("table", "sales.reporting.orders", demo::ALICE),
        vec!["SELECT"]
    );

    app.standin.clear_faults();
    let not_yet = app.run_timer().await;
    assert_eq!(not_yet["due"], 0, "backoff: {not_yet}");
    app.advance(time::Duration::minutes(5));
    let report = app.run_timer().await;
    assert_eq!(report["revoked"], 1, "{report}");
    assert!(
        app.held("table", "sales.reporting.orders", demo::ALICE)
            .is_empty()
    );
}

#[tokio::test]
async fn a_renewal_after_the_duplicate_window_extends_the_expiry() {
    let app = TestApp::spawn().await;
    let token = app.token("purview");
    let (_, first) = app
        .post(
            PATH,
            Some(&token),
            callback_body(json!({"duration": "P1D"})),
        )
        .await;
    app.advance(time::Duration::hours(2));
    let (status, renewed) = app
        .post(
            PATH,
            Some(&token),
            callback_body(json!({"duration": "P1D"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renewed["status"], "extended", "{renewed}");
    assert_eq!(renewed["grantId"], first["grantId"]);
    assert!(renewed["expiresAt"].as_str() > first["expiresAt"].as_str());
}

#[tokio::test]
async fn a_hundred_concurrent_identical_callbacks_make_one_record_and_one_set_of_changes() {
    let app = Arc::new(TestApp::spawn().await);
    let token = app.token("purview");
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let app = app.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            app.post(PATH, Some(&token), callback_body(json!({}))).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, json) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["status"], "granted", "{json}");
        ids.insert(json["grantId"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "one record");
    assert_eq!(app.patches(), 3, "one set of changes");
}
