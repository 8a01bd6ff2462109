//! Delta Sharing end to end over HTTP: a callback becomes a TOKEN recipient, a share holding the table
//! and SELECT on it, answered with the activation link; a second delivery changes nothing; expiry takes
//! SELECT and the table away; shares and recipients uc-access did not create are left as they were.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uc_access_standin::demo;

use crate::helpers::{TestApp, callback_body};

const PATH: &str = "/api/purview-callback";
const SHARE: &str = "uc_access_sales_reporting_orders";
const ALICE_RECIPIENT: &str = "uc_access_5b1f2e3d_4c5b_4a69_8e7f_0a1b2c3d4e5f";
const BOB_RECIPIENT: &str = "uc_access_6c2a3f4e_5d6c_4b7a_9f80_1b2c3d4e5f60";

/// A policy where requests may ask for Delta Sharing.
async fn sharing_app() -> (TestApp, tempfile::TempDir) {
    TestApp::with_policy("[provisioning]\nrequestable = [\"delta-sharing\"]\n").await
}

fn shared(overrides: Value) -> String {
    let mut body = json!({"provisioning": "delta-sharing"});
    for (k, v) in overrides.as_object().unwrap() {
        body[k] = v.clone();
    }
    callback_body(body)
}

/// Requests that change something in the stand-in (anything but reads).
fn changes(app: &TestApp) -> Vec<String> {
    app.standin
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.starts_with("/oidc/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

async fn call(app: &TestApp, body: String) -> (StatusCode, Value) {
    app.post(PATH, Some(&app.token("purview")), body).await
}

#[tokio::test]
async fn a_shared_callback_creates_recipient_share_table_and_select_and_answers_the_link() {
    let (app, _policy) = sharing_app().await;
    let (status, answer) = call(&app, shared(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "granted");
    assert_eq!(answer["provisioning"], "delta-sharing");
    assert_eq!(answer["principal"], ALICE_RECIPIENT);
    assert_eq!(answer["principalKind"], "recipient");
    assert_eq!(answer["share"], SHARE);
    assert_eq!(answer["securable"], "sales.reporting.orders");
    assert!(answer["expiresAt"].is_string());
    let link = answer["activationUrl"].as_str().unwrap();
    assert!(
        link.contains("/delta_sharing/retrieve_config.html?"),
        "{link}"
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("activation link")
    );

    // The recipient: TOKEN, named from the object id, recording who and why, token ending with the grant.
    let recipient = app.standin.recipient(ALICE_RECIPIENT).unwrap();
    assert_eq!(recipient["authentication_type"], "TOKEN");
    let props = &recipient["properties_kvpairs"]["properties"];
    assert_eq!(props["uc_access_managed"], "true");
    assert_eq!(props["uc_access_object_id"], demo::ALICE_ENTRA_ID);
    assert_eq!(props["uc_access_requested_by"], demo::ALICE_ENTRA_ID);
    assert_eq!(props["uc_access_approved_by"], demo::CAROL_ENTRA_ID);
    assert!(
        props["uc_access_reason"]
            .as_str()
            .unwrap()
            .contains("sales.reporting.orders")
    );
    let expires = time::OffsetDateTime::parse(
        answer["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let token_ms = recipient["tokens"][0]["expiration_time"].as_i64().unwrap();
    // The token ends with the grant, plus the margin that lets the timer revoke first.
    let margin = token_ms / 1000 - expires.unix_timestamp();
    assert!((299..=300).contains(&margin), "{margin}");

    // The share, the table in it, SELECT for the recipient; no workspace grant to Alice.
    assert_eq!(
        app.standin.share_objects(SHARE).unwrap(),
        vec!["sales.reporting.orders"]
    );
    let (comment, _) = app.standin.share_comment_and_owner(SHARE).unwrap();
    assert!(comment.unwrap().starts_with("Managed by uc-access"));
    assert_eq!(
        app.standin.share_permissions(SHARE)[ALICE_RECIPIENT],
        vec!["SELECT"]
    );
    assert!(
        app.held("table", "sales.reporting.orders", demo::ALICE)
            .is_empty()
    );
    assert!(app.held("catalog", "sales", demo::ALICE).is_empty());

    // The activation link works once.
    let secret = link.split('?').nth(1).unwrap();
    let standin = link.split("/delta_sharing").next().unwrap();
    let url = format!("{standin}/api/2.1/unity-catalog/public/data_sharing_activation/{secret}");
    let first = reqwest::get(&url).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let credential: Value = first.json().await.unwrap();
    assert!(credential["bearer_token"].is_string());
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_second_delivery_changes_nothing_and_gets_the_same_answer() {
    let (app, _policy) = sharing_app().await;
    let (_, first) = call(&app, shared(json!({}))).await;
    assert_eq!(first["status"], "granted", "{first}");
    app.standin.clear_requests();
    let (status, second) = call(&app, shared(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    for key in [
        "status",
        "grantId",
        "principal",
        "share",
        "expiresAt",
        "activationUrl",
    ] {
        assert_eq!(first[key], second[key], "{key}");
    }
    assert!(changes(&app).is_empty(), "{:?}", changes(&app));
    assert_eq!(app.standin.sharing_counts(), (1, 1));
}

#[tokio::test]
async fn expiry_removes_select_and_the_table_and_nothing_else() {
    let (app, _policy) = sharing_app().await;
    let (_, answer) = call(&app, shared(json!({}))).await;
    assert_eq!(answer["status"], "granted", "{answer}");
    let early = app.run_timer().await;
    assert_eq!(early["due"], 0, "{early}");

    app.advance(time::Duration::minutes(3));
    let report = app.run_timer().await;
    assert_eq!(report["revoked"], 1, "{report}");
    assert!(app.standin.share_permissions(SHARE).is_empty());
    assert_eq!(
        app.standin.share_objects(SHARE).unwrap(),
        Vec::<String>::new()
    );
    // The share and the recipient stay (empty, without access); Bob's direct grant is untouched.
    assert_eq!(app.standin.sharing_counts(), (1, 1));
    assert_eq!(
        app.held("table", "sales.reporting.orders", demo::BOB),
        vec!["SELECT"]
    );
    let again = app.run_timer().await;
    assert_eq!(again["due"], 0, "{again}");
}

#[tokio::test]
async fn the_table_stays_while_another_persons_grant_uses_the_share() {
    let (app, _policy) = sharing_app().await;
    let (_, alice) = call(&app, shared(json!({}))).await;
    assert_eq!(alice["status"], "granted", "{alice}");
    let (_, bob) = call(
        &app,
        shared(json!({"requestorId": demo::BOB_ENTRA_ID, "duration": "P1D"})),
    )
    .await;
    assert_eq!(bob["status"], "granted", "{bob}");
    assert_eq!(bob["principal"], BOB_RECIPIENT);
    assert_eq!(bob["share"], SHARE, "one share per table");

    app.advance(time::Duration::minutes(3));
    let report = app.run_timer().await;
    assert_eq!(report["revoked"], 1, "{report}");
    let permissions = app.standin.share_permissions(SHARE);
    assert!(!permissions.contains_key(ALICE_RECIPIENT));
    assert_eq!(permissions[BOB_RECIPIENT], vec!["SELECT"]);
    assert_eq!(
        app.standin.share_objects(SHARE).unwrap(),
        vec!["sales.reporting.orders"]
    );
}

#[tokio::test]
async fn a_pre_existing_share_with_the_same_name_is_left_as_it_was() {
    let (app, _policy) = sharing_app().await;
    let (standin, carol) = standin_as_carol(&app).await;
    let created = carol
        .post(format!("{standin}/api/2.1/unity-catalog/shares"))
        .json(&json!({"name": SHARE, "comment": "the finance team's share"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let added = carol
        .patch(format!("{standin}/api/2.1/unity-catalog/shares/{SHARE}"))
        .json(&json!({"updates": [{"action": "ADD", "data_object": {"name": "sales.reporting.customers", "data_object_type": "TABLE"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK);
    app.standin.clear_requests();

    let (status, answer) = call(&app, shared(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], "share_name_taken");
    assert!(answer["message"].as_str().unwrap().contains(SHARE));
    assert_eq!(
        app.standin.share_objects(SHARE).unwrap(),
        vec!["sales.reporting.customers"]
    );
    let (comment, owner) = app.standin.share_comment_and_owner(SHARE).unwrap();
    assert_eq!(comment.as_deref(), Some("the finance team's share"));
    assert_eq!(owner, demo::CAROL);
    assert!(app.standin.share_permissions(SHARE).is_empty());
    assert!(changes(&app).is_empty(), "{:?}", changes(&app));
    assert_eq!(
        app.standin.sharing_counts(),
        (0, 1),
        "no recipient was created"
    );
}

#[tokio::test]
async fn a_pre_existing_recipient_with_the_same_name_is_left_as_it_was() {
    let (app, _policy) = sharing_app().await;
    let (standin, carol) = standin_as_carol(&app).await;
    let created = carol
        .post(format!("{standin}/api/2.1/unity-catalog/recipients"))
        .json(&json!({"name": ALICE_RECIPIENT, "authentication_type": "TOKEN", "comment": "made by hand"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let before = app.standin.recipient(ALICE_RECIPIENT).unwrap();
    app.standin.clear_requests();

    let (status, answer) = call(&app, shared(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], "recipient_name_taken");
    assert_eq!(app.standin.recipient(ALICE_RECIPIENT).unwrap(), before);
    assert!(changes(&app).is_empty(), "{:?}", changes(&app));
    assert_eq!(app.standin.sharing_counts(), (1, 0), "no share was created");
}

#[tokio::test]
async fn a_second_table_reuses_the_recipient_and_an_activated_one_needs_no_new_link() {
    let (app, _policy) = sharing_app().await;
    let (_, first) = call(&app, shared(json!({}))).await;
    let link = first["activationUrl"].as_str().unwrap().to_owned();
    let secret = link.split('?').nth(1).unwrap();
    let standin = link.split("/delta_sharing").next().unwrap();
    let used = reqwest::get(format!(
        "{standin}/api/2.1/unity-catalog/public/data_sharing_activation/{secret}"
    ))
    .await
    .unwrap();
    assert_eq!(used.status(), StatusCode::OK);

    let customers = "databricks://0b7e4d2a-6c1f-4e83-9a5d-2f8c7b1e6d40/catalogs/sales/schemas/reporting/tables/customers";
    let (status, second) = call(
        &app,
        shared(json!({"assetQualifiedName": customers, "duration": "P1D"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["status"], "granted");
    assert_eq!(second["principal"], ALICE_RECIPIENT);
    assert_eq!(second["share"], "uc_access_sales_reporting_customers");
    assert!(second.get("activationUrl").is_none(), "{second}");
    assert!(
        second["message"]
            .as_str()
            .unwrap()
            .contains("already downloaded")
    );
    assert_eq!(app.standin.sharing_counts(), (1, 2));
    // The token now lasts as long as the longer grant.
    let recipient = app.standin.recipient(ALICE_RECIPIENT).unwrap();
    let until = time::OffsetDateTime::parse(
        second["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(recipient["expiration_time"].as_i64().unwrap() / 1000 >= until.unix_timestamp());
}

#[tokio::test]
async fn a_catalog_rule_shares_without_the_request_asking() {
    let (app, _policy) =
        TestApp::with_policy("[provisioning]\ncatalogs = { sales = \"delta-sharing\" }\n").await;
    let (status, answer) = call(&app, callback_body(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["provisioning"], "delta-sharing");
    assert_eq!(
        app.standin.share_permissions(SHARE)[ALICE_RECIPIENT],
        vec!["SELECT"]
    );
    // A request cannot escape the catalog's rule when "direct" is not requestable.
    let (status, denied) = call(&app, callback_body(json!({"provisioning": "direct"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{denied}");
    assert_eq!(denied["error"], "provisioning_mode_not_allowed");
}

#[tokio::test]
async fn sharing_is_denied_where_policy_does_not_allow_requests_to_choose_it() {
    let app = TestApp::spawn().await;
    let (status, answer) = call(&app, shared(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"], "provisioning_mode_not_allowed");
    assert_eq!(app.standin.sharing_counts(), (0, 0));
    let (status, bad) = call(&app, callback_body(json!({"provisioning": "email"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(
        bad["message"].as_str().unwrap().contains("provisioning"),
        "{bad}"
    );
}

#[tokio::test]
async fn a_shared_dry_run_lists_the_calls_and_creates_nothing() {
    let (app, _policy) = sharing_app().await;
    let (status, answer) = call(&app, shared(json!({"dryRun": true}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "planned");
    let paths: Vec<&str> = answer["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            "/api/2.1/unity-catalog/recipients",
            "/api/2.1/unity-catalog/shares",
            &format!("/api/2.1/unity-catalog/shares/{SHARE}"),
            &format!("/api/2.1/unity-catalog/shares/{SHARE}/permissions"),
        ]
    );
    assert!(answer.get("activationUrl").is_none());
    assert_eq!(app.standin.sharing_counts(), (0, 0));
}

#[tokio::test]
async fn a_failed_step_is_undone_and_the_answer_says_retry() {
    use uc_access_standin::{Fault, FaultKind};
    let (app, _policy) = sharing_app().await;
    // The share permissions PATCH keeps failing: the table added a moment before is taken out again.
    app.standin.inject(
        Fault::new(
            FaultKind::Unavailable {
                retry_after_secs: None,
            },
            20,
        )
        .on_method("PATCH")
        .on_path_prefix(&format!(
            "/api/2.1/unity-catalog/shares/{SHARE}/permissions"
        )),
    );
    let (status, answer) = call(&app, shared(json!({}))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(app.standin.share_permissions(SHARE).is_empty());
    assert_eq!(
        app.standin.share_objects(SHARE).unwrap(),
        Vec::<String>::new()
    );

    app.standin.clear_faults();
    // The failed grant is finished off by the next timer run; then the approval can be delivered again.
    app.advance(time::Duration::minutes(10));
    let report = app.run_timer().await;
    assert_eq!(report["revoked"], 1, "{report}");
    let (status, retried) = call(&app, shared(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["status"], "granted");
    assert_eq!(
        app.standin.share_permissions(SHARE)[ALICE_RECIPIENT],
        vec!["SELECT"]
    );
}

/// The stand-in's base URL and a client authenticated as Carol (a metastore admin), for making shares
/// and recipients uc-access did not create.
async fn standin_as_carol(app: &TestApp) -> (String, reqwest::Client) {
    let base = app.standin_base.clone();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", demo::ADMIN_TOKEN).parse().unwrap(),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    (base, client)
}

/// Opens an activation link the way a Delta Sharing client does: the status says whether it still works.
async fn open_link(link: &str) -> StatusCode {
    let secret = link.split('?').nth(1).unwrap();
    let standin = link.split("/delta_sharing").next().unwrap();
    reqwest::get(format!(
        "{standin}/api/2.1/unity-catalog/public/data_sharing_activation/{secret}"
    ))
    .await
    .unwrap()
    .status()
}

#[tokio::test]
async fn a_later_approval_never_hands_out_the_link_issued_for_an_earlier_one() {
    let (app, _policy) = sharing_app().await;
    let (_, first) = call(&app, shared(json!({}))).await;
    let first_link = first["activationUrl"].as_str().unwrap().to_owned();

    // Alice has not downloaded her credential; a second table is approved for her.
    let customers = "databricks://0b7e4d2a-6c1f-4e83-9a5d-2f8c7b1e6d40/catalogs/sales/schemas/reporting/tables/customers";
    let (status, second) = call(
        &app,
        shared(json!({"assetQualifiedName": customers, "duration": "P1D"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second_link = second["activationUrl"].as_str().unwrap().to_owned();
    assert_ne!(
        second_link, first_link,
        "the earlier approval's link was handed out again"
    );
    // A repeated delivery of the first approval no longer carries a link: its token was replaced.
    let (_, again) = call(&app, shared(json!({}))).await;
    assert!(again.get("activationUrl").is_none(), "{again}");
    // The earlier, unused link no longer works; the new one does, once.
    assert_ne!(open_link(&first_link).await, StatusCode::OK);
    assert_eq!(open_link(&second_link).await, StatusCode::OK);
    assert_ne!(open_link(&second_link).await, StatusCode::OK);
}

#[tokio::test]
async fn a_shared_request_on_someone_elses_behalf_is_refused_and_creates_nothing() {
    let (app, _policy) = sharing_app().await;
    let (status, answer) = call(&app, shared(json!({"recipientId": demo::BOB_ENTRA_ID}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"], "sharing_for_others_not_allowed");
    assert!(answer.get("activationUrl").is_none());
    assert!(changes(&app).is_empty(), "{:?}", changes(&app));
    assert!(app.standin.recipient(BOB_RECIPIENT).is_none());
}

#[tokio::test]
async fn an_operators_shared_grant_never_receives_the_activation_link() {
    let (app, _policy) = sharing_app().await;
    let body = json!({
        "principal": {"objectId": demo::ALICE_ENTRA_ID},
        "securable": {"type": "table", "fullName": "sales.reporting.orders"},
        "provisioning": "delta-sharing",
        "duration": "P1D"
    });
    let (status, answer) = app
        .post(
            "/api/grant-access",
            Some(&app.token("operator")),
            body.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "granted");
    assert!(answer.get("activationUrl").is_none(), "{answer}");
    assert!(!answer.to_string().contains("retrieve_config"), "{answer}");
}

#[tokio::test]
async fn forbidden_object_ids_and_groups_are_refused_on_the_sharing_path_before_anything_is_created()
 {
    let (app, _policy) = TestApp::with_policy(&format!(
        "[provisioning]\nrequestable = [\"delta-sharing\"]\n[principals]\nforbidden_object_ids = [\"{}\"]\n",
        demo::ALICE_ENTRA_ID
    ))
    .await;
    let (status, answer) = call(&app, shared(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"], "forbidden_principal");
    let body = json!({
        "principal": {"objectId": demo::ANALYSTS_ENTRA_ID},
        "securable": {"type": "table", "fullName": "sales.reporting.orders"},
        "provisioning": "delta-sharing"
    });
    let (status, answer) = app
        .post(
            "/api/grant-access",
            Some(&app.token("operator")),
            body.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"], "sharing_needs_a_person");
    assert!(changes(&app).is_empty(), "{:?}", changes(&app));
    assert_eq!(app.standin.sharing_counts(), (0, 0));
}
