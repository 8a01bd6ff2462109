//! The operator functions over HTTP: `grant-access`, `revoke-access`, `list-grants`, `resolve-principal`.

use reqwest::StatusCode;
use serde_json::json;
use uc_access_standin::demo;

use crate::helpers::TestApp;

fn grant_body(dry_run: bool) -> String {
    json!({
        "principal": {"userName": demo::ALICE},
        "securable": {"type": "table", "fullName": "sales.reporting.customers"},
        "duration": "PT8H",
        "dryRun": dry_run
    })
    .to_string()
}

#[tokio::test]
async fn an_operator_grants_directly_and_a_dry_run_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token("operator");
    let (status, plan) = app
        .post("/api/grant-access", Some(&token), grant_body(true))
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["status"], "planned");
    assert!(
        app.held("table", "sales.reporting.customers", demo::ALICE)
            .is_empty()
    );

    let (status, granted) = app
        .post("/api/grant-access", Some(&token), grant_body(false))
        .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(granted["status"], "granted");
    assert_eq!(
        app.held("table", "sales.reporting.customers", demo::ALICE),
        vec!["SELECT"]
    );
}

#[tokio::test]
async fn the_purview_application_may_not_call_grant_access() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            "/api/grant-access",
            Some(&app.token("purview")),
            grant_body(false),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"], "caller_not_allowed");
}

#[tokio::test]
async fn a_grant_can_be_listed_and_revoked_early_with_the_time_access_surely_ends() {
    let app = TestApp::spawn().await;
    let token = app.token("operator");
    let (_, granted) = app
        .post("/api/grant-access", Some(&token), grant_body(false))
        .await;
    let grant_id = granted["grantId"].as_str().unwrap().to_owned();

    let resp = reqwest::Client::new()
        .get(format!(
            "{}api/list-grants?principal={}&state=active",
            app.base,
            demo::ALICE
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let listed: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(listed["grants"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["grants"][0]["id"], grant_id);

    let (status, revoked) = app
        .post(
            "/api/revoke-access",
            Some(&token),
            json!({"grantId": grant_id}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["accessEndsBy"].as_str().unwrap() > revoked["revokedAt"].as_str().unwrap());
    assert!(
        app.held("table", "sales.reporting.customers", demo::ALICE)
            .is_empty()
    );

    let (status, again) = app
        .post(
            "/api/revoke-access",
            Some(&token),
            json!({"grantId": grant_id}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"], "grant_not_revocable");
}

#[tokio::test]
async fn revoke_access_and_list_grants_refuse_bad_input_by_field() {
    let app = TestApp::spawn().await;
    let token = app.token("operator");
    let (status, json) = app
        .post(
            "/api/revoke-access",
            Some(&token),
            json!({"grantId": "nope"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["message"].as_str().unwrap().starts_with("grantId:"));
    let (status, json) = app
        .post(
            "/api/revoke-access",
            Some(&token),
            json!({"grantId": "00000000-0000-4000-8000-000000000000"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
    let resp = reqwest::Client::new()
        .get(format!("{}api/list-grants?state=forgotten", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn resolve_principal_answers_the_grant_name_kind_and_status() {
    let app = TestApp::spawn().await;
    let token = app.token("operator");
    let (status, json) = app
        .post(
            "/api/resolve-principal",
            Some(&token),
            json!({"objectId": demo::DAVE_ENTRA_ID}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["principal"], demo::DAVE_INACTIVE);
    assert_eq!(json["kind"], "user");
    assert_eq!(json["status"], "inactive");
    let (status, json) = app
        .post(
            "/api/resolve-principal",
            Some(&token),
            json!({"groupName": demo::WORKSPACE_LOCAL_GROUP}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json["error"], "workspace_local_group");
}

#[tokio::test]
async fn a_purview_callback_delivered_again_after_an_early_revoke_is_refused_with_409_and_changes_nothing()
 {
    let app = TestApp::spawn().await;
    let purview = app.token("purview");
    let operator = app.token("operator");
    let body = crate::helpers::callback_body(json!({"duration": "P7D"}));
    let (status, granted) = app
        .post("/api/purview-callback", Some(&purview), body.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    let grant_id = granted["grantId"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post(
            "/api/revoke-access",
            Some(&operator),
            json!({"grantId": grant_id}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let patches = app.patches();

    // A Purview retry, a replayed body, the same body with another duration: none restores access.
    for again in [
        body.clone(),
        crate::helpers::callback_body(json!({"duration": "PT8H"})),
    ] {
        app.advance(time::Duration::hours(3));
        let (status, refused) = app
            .post("/api/purview-callback", Some(&purview), again)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["error"], "approval_ended");
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("revoked early"),
            "{refused}"
        );
        assert!(!refused.to_string().contains(&grant_id), "{refused}");
    }
    assert!(
        app.held("table", "sales.reporting.orders", demo::ALICE)
            .is_empty()
    );
    assert_eq!(app.patches(), patches, "nothing was sent to Unity Catalog");

    // After the revoked grant's own expiry, the same request is a new approval.
    app.advance(time::Duration::days(7));
    let (status, renewed) = app
        .post("/api/purview-callback", Some(&purview), body)
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_eq!(renewed["status"], "granted");
}

#[tokio::test]
async fn two_operators_choosing_the_same_idempotency_key_make_two_grants_and_learn_nothing_of_each_other()
 {
    let app = TestApp::spawn().await;
    let first = app.token("operator");
    let second = app.token(&format!(
        "user:6f1c2d3e-4b5a-4c69-8d7e-9f0a1b2c3d4e:{}",
        uc_access_dev::local_issuer::OPERATOR_ROLE
    ));
    let body = |who: &str, table: &str| {
        json!({
            "principal": {"userName": who},
            "securable": {"type": "table", "fullName": table},
            "duration": "PT8H",
            "idempotencyKey": "change-1234"
        })
        .to_string()
    };
    let (status, a) = app
        .post(
            "/api/grant-access",
            Some(&first),
            body(demo::ALICE, "sales.reporting.customers"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    let (status, b) = app
        .post(
            "/api/grant-access",
            Some(&second),
            body(demo::ALICE, "sales.raw.events"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "granted");
    assert_ne!(a["grantId"], b["grantId"]);
    assert_eq!(
        app.held("table", "sales.raw.events", demo::ALICE),
        vec!["SELECT"]
    );
    // The same operator reusing its key for another request is refused, without the other grant's id.
    let (status, reused) = app
        .post(
            "/api/grant-access",
            Some(&first),
            body(demo::ALICE, "sales.raw.events"),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reused}");
    assert_eq!(reused["error"], "idempotency_key_reused");
    assert!(
        !reused.to_string().contains(a["grantId"].as_str().unwrap()),
        "{reused}"
    );
}

#[tokio::test]
async fn a_failed_early_revoke_answers_a_safe_message_without_databricks_text() {
    use uc_access_standin::{Fault, FaultKind};
    let app = TestApp::spawn().await;
    let token = app.token("operator");
    let (_, granted) = app
        .post("/api/grant-access", Some(&token), grant_body(false))
        .await;
    let grant_id = granted["grantId"].as_str().unwrap().to_owned();
    app.standin.inject(
        Fault::new(
            FaultKind::Unavailable {
                retry_after_secs: Some(0),
            },
            50,
        )
        .on_method("PATCH"),
    );
    let (status, failed) = app
        .post(
            "/api/revoke-access",
            Some(&token),
            json!({"grantId": grant_id}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{failed}");
    assert_eq!(failed["error"], "revoke_failed");
    let text = failed.to_string();
    for upstream in [
        "TEMPORARILY_UNAVAILABLE",
        "503",
        "Databricks answered",
        "127.0.0.1",
    ] {
        assert!(!text.contains(upstream), "{upstream} in {text}");
    }
}
