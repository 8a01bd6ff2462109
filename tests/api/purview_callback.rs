//! `purview-callback` end to end over HTTP: authentication first, then the contract, policy, and the
//! grant in the stand-in.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uc_access_dev::local_issuer::{LOCAL_AUDIENCE, LocalCaller, LocalIssuer};
use uc_access_standin::demo;

use crate::helpers::{TestApp, callback_body, fixture};

const PATH: &str = "/api/purview-callback";

#[tokio::test]
async fn a_callback_without_a_token_is_refused_with_401_and_nothing_else() {
    let app = TestApp::spawn().await;
    let (status, json) = app.post(PATH, None, callback_body(json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"], "missing_credentials");
    assert_eq!(json["status"], "error");
    assert_eq!(app.patches(), 0);
}

#[tokio::test]
async fn a_token_signed_by_a_key_outside_the_key_set_is_refused() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let stranger =
        LocalIssuer::load_or_create(dir.path(), &url::Url::parse(&app.base).unwrap()).unwrap();
    let token = stranger
        .mint(
            &LocalCaller::Purview,
            LOCAL_AUDIENCE,
            Duration::from_secs(600),
        )
        .unwrap();
    let (status, json) = app.post(PATH, Some(&token), callback_body(json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A different key has a different key id, unknown to the served key set.
    assert!(
        ["unknown_signing_key", "invalid_signature"].contains(&json["error"].as_str().unwrap()),
        "{json}"
    );
}

#[tokio::test]
async fn an_unknown_key_id_while_a_refetch_is_held_back_is_a_retryable_503_with_retry_after_and_changes_nothing()
 {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = TestApp::spawn().await;
    let payload = app.token("purview").split('.').nth(1).unwrap().to_owned();
    let forged = |kid: &str| {
        let header = b64.encode(json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string());
        format!("{header}.{payload}.c2lnbmF0dXJl")
    };
    // The first unknown key id makes uc-access fetch the key set again: then it is known to be unknown.
    let (status, json) = app
        .post(PATH, Some(&forged("forged-1")), callback_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"], "unknown_signing_key");

    // The next, within the refetch interval, gets no fetch; it may be a real new key, so: retry later.
    let before = app.snapshot();
    let authorization = format!("Bearer {}", forged("maybe-new"));
    let answer = app
        .send_raw(
            reqwest::Method::POST,
            PATH,
            &[
                ("authorization", &authorization),
                ("content-type", "application/json"),
            ],
            callback_body(json!({})).into_bytes(),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text
    );
    let json: Value = serde_json::from_str(&answer.text).unwrap();
    assert_eq!(json["error"], "signing_key_not_yet_known");
    let seconds: u64 = answer.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
    assert_eq!(json["retryAfterSeconds"], seconds);
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let app = TestApp::spawn().await;
    let dir_issuer = {
        let caller: LocalCaller = "purview".parse().unwrap();
        let mut claims = app_claims(&app, &caller);
        claims["aud"] = json!("api://some-other-app");
        app.sign(&claims)
    };
    let (status, json) = app
        .post(PATH, Some(&dir_issuer), callback_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"], "wrong_audience");
}

fn app_claims(app: &TestApp, caller: &LocalCaller) -> Value {
    let token = app.token(match caller {
        LocalCaller::Purview => "purview",
        _ => "operator",
    });
    // Decode the payload of a freshly minted token and change what the test needs.
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn an_operator_token_is_not_allowed_on_the_purview_callback() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(PATH, Some(&app.token("operator")), callback_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A person's delegated token, refused as such: the callback serves Purview's service principal only.
    assert_eq!(json["error"], "delegated_token_not_accepted");
}

#[tokio::test]
async fn a_malformed_qualified_name_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"assetQualifiedName": "sales.reporting.orders"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["error"], "invalid_request");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .starts_with("assetQualifiedName:"),
        "{json}"
    );
    assert_eq!(app.patches(), 0);
}

#[tokio::test]
async fn modify_on_a_table_under_the_default_policy_is_denied_naming_the_rule() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"privileges": ["MODIFY"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json["error"], "privilege_not_allowed");
    assert_eq!(json["status"], "denied");
    assert_eq!(app.patches(), 0);
}

#[tokio::test]
async fn an_approved_callback_grants_exactly_what_is_missing() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(PATH, Some(&app.token("purview")), callback_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "granted");
    assert_eq!(json["principal"], demo::ALICE);
    assert_eq!(json["securable"], "sales.reporting.orders");
    assert_eq!(json["privileges"], "SELECT");
    let added = json["added"].as_str().unwrap();
    assert!(added.contains("USE_CATALOG on catalog sales"), "{added}");
    assert!(
        added.contains("USE_SCHEMA on schema sales.reporting"),
        "{added}"
    );
    assert!(
        added.contains("SELECT on table sales.reporting.orders"),
        "{added}"
    );
    assert!(json["expiresAt"].is_string());
    assert!(json["grantId"].is_string());
    assert_eq!(
        app.held("table", "sales.reporting.orders", demo::ALICE),
        vec!["SELECT"]
    );
    assert_eq!(
        app.held("catalog", "sales", demo::ALICE),
        vec!["USE_CATALOG"]
    );
    assert_eq!(
        app.held("schema", "sales.reporting", demo::ALICE),
        vec!["USE_SCHEMA"]
    );
}

#[tokio::test]
async fn the_same_callback_twice_gives_the_same_answer_and_no_second_patch() {
    let app = TestApp::spawn().await;
    let token = app.token("purview");
    let (_, first) = app.post(PATH, Some(&token), callback_body(json!({}))).await;
    let patches_after_first = app.patches();
    let (status, second) = app.post(PATH, Some(&token), callback_body(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["status"], first["status"]);
    assert_eq!(second["grantId"], first["grantId"]);
    assert_eq!(app.patches(), patches_after_first);
}

#[tokio::test]
async fn privileges_the_user_already_had_are_reported_as_existing_not_added() {
    let app = TestApp::spawn().await;
    // Bob already holds USE_CATALOG, USE_SCHEMA and SELECT on sales.reporting.orders.
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"requestorId": demo::BOB_ENTRA_ID})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "already_granted");
    assert_eq!(json["added"], "");
    assert!(
        json["alreadyHeld"]
            .as_str()
            .unwrap()
            .contains("SELECT on table sales.reporting.orders")
    );
    assert_eq!(app.patches(), 0);
    // A duplicate of it gets the same answer, what was already held included.
    let (_, again) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"requestorId": demo::BOB_ENTRA_ID})),
        )
        .await;
    assert_eq!(again["alreadyHeld"], json["alreadyHeld"], "{again}");
    assert_eq!(again["status"], json["status"]);
}

#[tokio::test]
async fn a_duplicate_reports_what_the_first_delivery_found_already_held() {
    let app = TestApp::spawn().await;
    // Bob holds USE_CATALOG on sales and USE_SCHEMA on sales.reporting, not SELECT on customers.
    let body = callback_body(json!({
        "requestorId": demo::BOB_ENTRA_ID,
        "assetQualifiedName": "databricks://0b7e4d2a-6c1f-4e83-9a5d-2f8c7b1e6d40/catalogs/sales/schemas/reporting/tables/customers",
    }));
    let token = app.token("purview");
    let (status, first) = app.post(PATH, Some(&token), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "granted");
    assert_eq!(first["added"], "SELECT on table sales.reporting.customers");
    assert_eq!(
        first["alreadyHeld"],
        "USE_CATALOG on catalog sales; USE_SCHEMA on schema sales.reporting"
    );
    let (_, second) = app.post(PATH, Some(&token), body).await;
    for field in ["status", "added", "alreadyHeld", "grantId", "expiresAt"] {
        assert_eq!(second[field], first[field], "{field}: {second}");
    }
}

#[tokio::test]
async fn an_unknown_requester_is_a_clear_error_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"requestorId": "00000000-0000-4000-8000-000000000042"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json["error"], "principal_not_found");
    assert_eq!(app.patches(), 0);
}

#[tokio::test]
async fn an_inactive_user_is_a_clear_error_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"requestorId": demo::DAVE_ENTRA_ID})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(json["error"], "principal_inactive");
    assert_eq!(app.patches(), 0);
}

#[tokio::test]
async fn a_requester_whose_entra_account_is_disabled_is_refused_and_nothing_changes() {
    // Mallory is active in Databricks (no externalId); Graph finds her and says she is disabled.
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"requestorId": demo::MALLORY_ENTRA_ID})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    assert_eq!(json["error"], "principal_disabled");
    assert_eq!(app.patches(), 0);
}

#[tokio::test]
async fn a_requester_databricks_knows_only_by_email_is_granted_through_graph() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"requestorId": demo::HEIDI_ENTRA_ID})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "granted");
    assert_eq!(json["principal"], demo::HEIDI_BY_EMAIL);
}

#[tokio::test]
async fn an_approval_assigned_to_a_group_holding_the_requester_is_denied_as_self_approval() {
    // Alice is in owner-deputies, nested in data-owners.
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"approvers": demo::DATA_OWNERS_ENTRA_ID})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    assert_eq!(json["error"], "self_approval");
    assert_eq!(app.patches(), 0);
}

#[tokio::test]
async fn a_request_approved_by_the_requester_is_denied_as_self_approval() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"approvers": demo::ALICE_ENTRA_ID})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json["error"], "self_approval");
    assert_eq!(app.patches(), 0);
}

#[tokio::test]
async fn a_rejected_approval_is_denied() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"approvalOutcome": "Rejected"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json["error"], "not_approved");
}

#[tokio::test]
async fn a_dry_run_answers_the_exact_calls_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            callback_body(json!({"dryRun": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "planned");
    let calls = json["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[2]["method"], "PATCH");
    assert_eq!(
        calls[2]["path"],
        "/api/2.1/unity-catalog/permissions/table/sales.reporting.orders"
    );
    assert_eq!(calls[2]["body"]["changes"][0]["add"], json!(["SELECT"]));
    assert_eq!(app.patches(), 0);
}

#[tokio::test]
async fn a_429_storm_is_retried_within_the_budget() {
    let app = TestApp::spawn().await;
    app.standin.fail_next_with_429(2, 1);
    let (status, json) = app
        .post(PATH, Some(&app.token("purview")), callback_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "granted");
}

#[tokio::test]
async fn a_429_storm_longer_than_the_budget_answers_retryable_with_nothing_half_applied() {
    let app = TestApp::spawn_with(&[("UC_ACCESS_TIME_BUDGET_SECONDS", "2")]).await;
    // Let the reads and the first PATCH through, then throttle every further PATCH.
    app.standin.inject(
        uc_access_standin::Fault::new(
            uc_access_standin::FaultKind::TooManyRequests {
                retry_after_secs: 5,
            },
            100,
        )
        .on_method("PATCH")
        .on_path_prefix("/api/2.1/unity-catalog/permissions/schema"),
    );
    let (status, json) = app
        .post(PATH, Some(&app.token("purview")), callback_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert!(json["retryAfterSeconds"].as_u64().unwrap() >= 1);
    // The USE_CATALOG added before the storm was undone.
    assert!(app.held("catalog", "sales", demo::ALICE).is_empty());
    assert!(
        app.held("table", "sales.reporting.orders", demo::ALICE)
            .is_empty()
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_413_and_a_wrong_content_type_a_415_after_authentication() {
    let app = TestApp::spawn().await;
    let token = app.token("purview");
    let huge = callback_body(json!({"idempotencyKey": "x".repeat(70_000)}));
    let (status, json) = app.post(PATH, Some(&token), huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
    assert_eq!(json["error"], "body_too_large");

    let resp = reqwest::Client::new()
        .post(format!("{}api/purview-callback", app.base))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(callback_body(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Without a token the same oversized body is refused for the caller first.
    let (status, _) = app.post(PATH, None, "x".repeat(70_000)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.patches(), 0);
}

#[tokio::test]
async fn a_body_that_is_not_utf8_json_is_a_400() {
    let app = TestApp::spawn().await;
    let resp = reqwest::Client::new()
        .post(format!("{}api/purview-callback", app.base))
        .bearer_auth(app.token("purview"))
        .header("content-type", "application/json")
        .body(vec![0xff, 0xfe, b'{'])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["error"], "malformed_body");
}

#[tokio::test]
async fn with_forwarding_off_the_host_payload_reaches_the_same_callback() {
    let app = TestApp::spawn().await;
    let payload = fixture("host/http-invocation-purview-callback.json")
        .replace("{{TOKEN}}", &app.token("purview"))
        .replace(
            "\"{{BODY}}\"",
            &serde_json::to_string(&callback_body(json!({}))).unwrap(),
        );
    let (status, json) = app.post("/purview-callback", None, payload).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let res = &json["Outputs"]["res"];
    assert_eq!(res["statusCode"], 200, "{json}");
    let answer: Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["status"], "granted");
    assert_eq!(
        app.held("table", "sales.reporting.orders", demo::ALICE),
        vec!["SELECT"]
    );
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_request_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token("purview");
    let (status, _) = app
        .post(
            PATH,
            Some(&token),
            callback_body(json!({"idempotencyKey": "run-42"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let before = app.patches();
    let customers = "databricks://m/catalogs/sales/schemas/reporting/tables/customers";
    let (status, json) = app
        .post(
            PATH,
            Some(&token),
            callback_body(json!({"idempotencyKey": "run-42", "assetQualifiedName": customers})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{json}");
    assert_eq!(json["error"], "idempotency_key_reused");
    assert_eq!(app.patches(), before);
    assert!(
        app.held("table", "sales.reporting.customers", demo::ALICE)
            .is_empty()
    );
}

#[tokio::test]
async fn a_dry_run_after_a_grant_plans_from_unity_catalog_and_says_nothing_would_change() {
    let app = TestApp::spawn().await;
    let token = app.token("purview");
    app.post(PATH, Some(&token), callback_body(json!({}))).await;
    let (status, json) = app
        .post(PATH, Some(&token), callback_body(json!({"dryRun": true})))
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "planned");
    assert_eq!(json["calls"], json!([]));
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("nothing would change"),
        "{json}"
    );
}

#[tokio::test]
async fn the_schema_fixture_is_refused_by_the_default_policy_which_grants_tables_only() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            PATH,
            Some(&app.token("purview")),
            fixture("purview/callback-schema.json"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    assert_eq!(json["error"], "securable_type_not_allowed");
}

/// The Databricks requests one approval makes, by kind (a count, not a time: see BENCHMARKS.md).
fn calls_by_kind(app: &TestApp) -> std::collections::BTreeMap<&'static str, usize> {
    let mut kinds = std::collections::BTreeMap::new();
    for r in app.standin.requests() {
        let kind = if r.path.starts_with("/oidc/") {
            "token"
        } else if r.path.starts_with("/v1.0/") {
            "graph"
        } else if r.path.contains("/scim/v2/") {
            "scim"
        } else if r.path.contains("/effective-permissions/") {
            "effective"
        } else if r.method == "GET" && r.path.contains("/permissions/") {
            "direct"
        } else if r.method == "PATCH" {
            "patch"
        } else {
            "other"
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

#[tokio::test]
async fn a_cold_approval_reads_once_and_a_warm_one_reads_only_the_parents_it_holds() {
    let app = TestApp::spawn().await;
    let token = app.token("purview");
    // Alice holds nothing directly on sales.reporting: one effective read shows it, no direct reads.
    let body = callback_body(json!({
        "assetQualifiedName": format!("databricks://{}/catalogs/sales/schemas/reporting/tables/customers", demo::METASTORE_ID),
    }));
    let (status, json) = app.post(PATH, Some(&token), body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "granted");
    let cold = calls_by_kind(&app);
    assert_eq!(
        cold,
        [
            ("token", 1),
            ("scim", 1),
            ("graph", 2),
            ("effective", 1),
            ("patch", 3)
        ]
        .into_iter()
        .collect(),
        "OAuth M2M: the account-level token serves the account and the workspace; Graph is asked whether \
         the requester's account is enabled and whether the assignee is a group"
    );
    assert_eq!(app.standin_requests(), 8);
    assert_eq!(token_paths(&app), [account_token_path()]);

    // Warm: tokens and principal cached; the parents are now held directly, so they are read directly
    // (planning counts direct grants only) and only the table is patched.
    app.standin.clear_requests();
    let (status, json) = app.post(PATH, Some(&token), callback_body(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "granted");
    let warm = calls_by_kind(&app);
    assert_eq!(
        warm,
        [("effective", 1), ("direct", 2), ("patch", 1)]
            .into_iter()
            .collect()
    );
    assert_eq!(
        app.held("table", "sales.reporting.orders", demo::ALICE),
        vec!["SELECT"]
    );
    assert_eq!(
        app.held("schema", "sales.reporting", demo::ALICE),
        vec!["USE_SCHEMA"]
    );
}

fn account_token_path() -> String {
    format!("/oidc/accounts/{}/v1/token", demo::ACCOUNT_ID)
}

/// The token endpoints called, in order.
fn token_paths(app: &TestApp) -> Vec<String> {
    app.standin
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/oidc/"))
        .map(|r| r.path)
        .collect()
}

/// API requests (not token requests) answered 401.
fn refused(app: &TestApp) -> Vec<String> {
    app.standin
        .requests()
        .into_iter()
        .filter(|r| r.status == 401 && !r.path.starts_with("/oidc/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn a_workspace_that_refuses_the_account_token_costs_one_refused_request_and_one_more_token() {
    let app = TestApp::spawn().await;
    app.standin.set_account_tokens_on_workspaces(false);
    let token = app.token("purview");
    let (status, json) = app.post(PATH, Some(&token), callback_body(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "granted");
    assert_eq!(
        token_paths(&app),
        [account_token_path(), "/oidc/v1/token".to_owned()],
        "the account token for SCIM, then the workspace's own once it refused the account token"
    );
    let refused_cold = refused(&app);
    assert_eq!(refused_cold.len(), 1, "{refused_cold:?}");
    assert!(
        refused_cold[0].starts_with("GET /api/2.1/unity-catalog/"),
        "the first workspace request: {refused_cold:?}"
    );
    assert_eq!(
        calls_by_kind(&app),
        [
            ("token", 2),
            ("scim", 1),
            ("graph", 2),
            ("effective", 2),
            ("patch", 3)
        ]
        .into_iter()
        .collect(),
        "the refused read is sent once more with the workspace token"
    );
    assert_eq!(
        app.held("table", "sales.reporting.orders", demo::ALICE),
        vec!["SELECT"]
    );

    // Another table: the workspace gets its own token straight away, nothing is refused.
    app.standin.clear_requests();
    let body = callback_body(json!({
        "assetQualifiedName": format!("databricks://{}/catalogs/sales/schemas/reporting/tables/customers", demo::METASTORE_ID),
    }));
    let (status, json) = app.post(PATH, Some(&token), body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "granted", "{json}");
    assert_eq!(refused(&app), Vec::<String>::new());
    assert_eq!(
        token_paths(&app),
        Vec::<String>::new(),
        "the workspace token is cached"
    );
    assert_eq!(
        app.held("table", "sales.reporting.customers", demo::ALICE),
        vec!["SELECT"]
    );
}

#[tokio::test]
async fn a_permission_denial_with_the_account_token_fetches_no_workspace_token() {
    let seed = uc_access_standin::Seed::demo().without_grant(
        "catalog",
        "sales",
        demo::PRODUCT_CLIENT_ID,
        "MANAGE",
    );
    let app = TestApp::spawn_seeded(&[], seed).await;
    let (status, json) = app
        .post(PATH, Some(&app.token("purview")), callback_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{json}");
    assert_eq!(json["error"], "databricks_permission_denied", "{json}");
    let denied: Vec<_> = app
        .standin
        .requests()
        .into_iter()
        .filter(|r| r.status == 403)
        .collect();
    assert!(!denied.is_empty(), "the stand-in denied a request");
    assert_eq!(
        token_paths(&app),
        [account_token_path()],
        "a permission denial is not a refused token: no workspace token, no second try"
    );
    assert_eq!(refused(&app), Vec::<String>::new());
    assert_eq!(
        app.standin
            .requests()
            .iter()
            .filter(|r| r.status == 403)
            .count(),
        1,
        "the denied request is not sent again"
    );
}

#[tokio::test]
async fn a_databricks_permission_error_reaches_the_workflow_as_a_code_and_a_safe_message() {
    // The workflow's run history is readable by requesters and approvers: Databricks' own message (which
    // names uc-access's principal and the securable) and the operator hint stay in the log.
    let seed = uc_access_standin::Seed::demo().without_grant(
        "catalog",
        "sales",
        demo::PRODUCT_CLIENT_ID,
        "MANAGE",
    );
    let app = TestApp::spawn_seeded(&[], seed).await;
    let (status, json) = app
        .post(PATH, Some(&app.token("purview")), callback_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{json}");
    assert_eq!(json["status"], "error", "{json}");
    assert_eq!(json["error"], "databricks_permission_denied", "{json}");
    let denied = app
        .standin
        .requests()
        .into_iter()
        .find(|r| r.status == 403)
        .expect("the stand-in denied a request");
    let text = json.to_string();
    for leak in [
        "MANAGE",
        demo::PRODUCT_CLIENT_ID,
        "does not have",
        "PERMISSION_DENIED",
        denied.path.as_str(),
        app.standin_base.trim_end_matches('/'),
        "127.0.0.1",
    ] {
        assert!(
            !text.contains(leak),
            "{leak:?} reaches the workflow: {json}"
        );
    }
    assert!(
        json["message"].as_str().unwrap().contains("platform team"),
        "{json}"
    );
}
