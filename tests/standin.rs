//! Behaviour of the Databricks stand-in itself, in-process with `oneshot` and, for connection faults, on a port.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use uc_access_standin::{Fault, FaultKind, Seed, StandIn, StandInState, demo};

fn state() -> StandInState {
    StandIn::builder()
        .seed(Seed::demo().with_empty_first_page(false))
        .state()
}

async fn call(
    state: &StandInState,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let response = StandIn::router(state.clone())
        .oneshot(request)
        .await
        .expect("response");
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const PERMS: &str = "/api/2.1/unity-catalog/permissions";

fn add(principal: &str, privileges: &[&str]) -> Value {
    json!({"changes": [{"principal": principal, "add": privileges}]})
}

#[tokio::test]
async fn a_securable_without_grants_answers_an_empty_object() {
    let s = state();
    let (status, body) = call(
        &s,
        "GET",
        &format!("{PERMS}/table/sales.reporting.customers"),
        demo::PRODUCT_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({}));
}

#[tokio::test]
async fn a_missing_or_unknown_bearer_token_is_unauthenticated() {
    let s = state();
    let (status, body) = call(&s, "GET", &format!("{PERMS}/catalog/sales"), "nope", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn adding_is_idempotent_user_names_are_case_insensitive_and_privileges_accept_spaces() {
    let s = state();
    let uri = format!("{PERMS}/schema/sales.raw");
    for _ in 0..2 {
        let (status, body) = call(
            &s,
            "PATCH",
            &uri,
            demo::PRODUCT_TOKEN,
            Some(add("Alice.Analyst@CONTOSO.com", &["USE SCHEMA"])),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"privilege_assignments": [{"principal": demo::ALICE, "privileges": ["USE_SCHEMA"]}]})
        );
    }
    assert_eq!(
        s.grants_on("schema", "sales.raw"),
        [(demo::ALICE.to_string(), vec!["USE_SCHEMA".to_string()])].into()
    );
}

#[tokio::test]
async fn the_same_privilege_in_add_and_remove_is_an_invalid_parameter() {
    let s = state();
    let body =
        json!({"changes": [{"principal": demo::ALICE, "add": ["SELECT"], "remove": ["SELECT"]}]});
    let (status, answer) = call(
        &s,
        "PATCH",
        &format!("{PERMS}/table/sales.raw.events"),
        demo::PRODUCT_TOKEN,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(
        s.grants_on("table", "sales.raw.events").is_empty(),
        "nothing changed"
    );
}

#[tokio::test]
async fn unknown_privileges_and_privileges_invalid_for_the_type_are_rejected() {
    let s = state();
    let (status, body) = call(
        &s,
        "PATCH",
        &format!("{PERMS}/table/sales.raw.events"),
        demo::PRODUCT_TOKEN,
        Some(add(demo::ALICE, &["USAGE"])),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_PARAMETER_VALUE"))
    );
    let (status, body) = call(
        &s,
        "PATCH",
        &format!("{PERMS}/table/sales.reporting.orders_summary"),
        demo::PRODUCT_TOKEN,
        Some(add(demo::ALICE, &["MODIFY"])),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("is not applicable to this entity")),
        "{body}"
    );
}

#[tokio::test]
async fn workspace_local_groups_and_unknown_names_are_not_principals_but_account_users_is() {
    let s = state();
    let uri = format!("{PERMS}/table/sales.raw.events");
    for name in [
        "users",
        "admins",
        demo::WORKSPACE_LOCAL_GROUP,
        "nobody@contoso.com",
        "DATA-ANALYSTS",
    ] {
        let (status, body) = call(
            &s,
            "PATCH",
            &uri,
            demo::PRODUCT_TOKEN,
            Some(add(name, &["SELECT"])),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}");
        assert_eq!(body["error_code"], "PRINCIPAL_DOES_NOT_EXIST");
        assert_eq!(
            body["message"],
            format!("Could not find principal with name {name}")
        );
    }
    let (status, _) = call(
        &s,
        "PATCH",
        &uri,
        demo::PRODUCT_TOKEN,
        Some(add("account users", &["SELECT"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn missing_securables_name_the_first_missing_level() {
    let s = state();
    for (path, code) in [
        ("table/nope.reporting.orders", "CATALOG_DOES_NOT_EXIST"),
        ("table/sales.nope.orders", "SCHEMA_DOES_NOT_EXIST"),
        ("table/sales.reporting.nope", "TABLE_DOES_NOT_EXIST"),
        ("schema/sales.nope", "SCHEMA_DOES_NOT_EXIST"),
    ] {
        let (status, body) = call(
            &s,
            "GET",
            &format!("{PERMS}/{path}"),
            demo::PRODUCT_TOKEN,
            None,
        )
        .await;
        assert_eq!(
            (status, body["error_code"].as_str()),
            (StatusCode::NOT_FOUND, Some(code)),
            "{path}"
        );
    }
}

#[tokio::test]
async fn percent_encoded_full_names_are_decoded() {
    let s = state();
    let (status, body) = call(
        &s,
        "GET",
        &format!("{PERMS}/table/sales%2Ereporting%2Eorders"),
        demo::PRODUCT_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["privilege_assignments"][0]["principal"], demo::BOB);
}

#[tokio::test]
async fn names_unity_catalog_allows_are_decoded_and_compared_without_case_the_unicode_way() {
    let s = state();
    for path in [
        "sales.intl.kunden_%C3%A4",
        "Sales.INTL.KUNDEN_%C3%84",
        "sales.intl.sales%242024",
        "sales.intl.o'neil",
        "sales.intl.q%3Fa%23b",
        "sales.intl.100%25_real",
    ] {
        let (status, body) = call(
            &s,
            "PATCH",
            &format!("{PERMS}/table/{path}"),
            demo::PRODUCT_TOKEN,
            Some(add(demo::ALICE, &["SELECT"])),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    for name in [
        "sales.intl.kunden_ä",
        "sales.intl.sales$2024",
        "sales.intl.o'neil",
        "sales.intl.q?a#b",
        "sales.intl.100%_real",
    ] {
        assert_eq!(
            s.grants_on("table", name).get(demo::ALICE),
            Some(&vec!["SELECT".to_owned()]),
            "{name}"
        );
    }
    // An unencoded '?' starts the query: the server sees the name before it, which does not exist.
    let (status, body) = call(
        &s,
        "GET",
        &format!("{PERMS}/table/sales.intl.q?a#b"),
        demo::PRODUCT_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn the_tables_api_answers_each_kind_and_privileges_follow_the_kind() {
    let s = state();
    for (name, table_type) in [
        ("sales.reporting.orders", "MANAGED"),
        ("sales.reporting.orders_summary", "VIEW"),
        ("sales.reporting.daily_totals", "MATERIALIZED_VIEW"),
    ] {
        let (status, body) = call(
            &s,
            "GET",
            &format!("/api/2.1/unity-catalog/tables/{name}"),
            demo::PRODUCT_TOKEN,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(body["table_type"], table_type, "{name}");
        assert_eq!(body["full_name"], name);
    }
    for (name, privilege, entity) in [
        (
            "sales.reporting.orders_summary",
            "MODIFY",
            "TABLE/TABLE_VIEW",
        ),
        (
            "sales.reporting.daily_totals",
            "MODIFY",
            "TABLE/TABLE_MATERIALIZED_VIEW",
        ),
        ("sales.reporting.orders", "REFRESH", "TABLE/TABLE_DELTA"),
    ] {
        let (status, body) = call(
            &s,
            "PATCH",
            &format!("{PERMS}/table/{name}"),
            demo::PRODUCT_TOKEN,
            Some(add(demo::ALICE, &[privilege])),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "Privilege {privilege} is not applicable to this entity [{name}:{entity}]"
            )),
            "{message}"
        );
    }
    let (status, _) = call(
        &s,
        "PATCH",
        &format!("{PERMS}/table/sales.reporting.daily_totals"),
        demo::PRODUCT_TOKEN,
        Some(add(demo::ALICE, &["REFRESH"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_caller_without_manage_or_ownership_is_denied() {
    let s = state();
    let (status, body) = call(
        &s,
        "PATCH",
        &format!("{PERMS}/table/sales.raw.events"),
        demo::ALICE_TOKEN,
        Some(add(demo::ALICE, &["SELECT"])),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error_code"], "PERMISSION_DENIED");
    assert_eq!(
        body["message"],
        "User does not have MANAGE on Table 'sales.raw.events'"
    );
}

#[tokio::test]
async fn dropping_the_products_manage_in_the_seed_denies_its_patches() {
    let s = StandIn::builder()
        .seed(Seed::demo().without_grant("catalog", "sales", demo::PRODUCT_CLIENT_ID, "MANAGE"))
        .state();
    let (status, _) = call(
        &s,
        "PATCH",
        &format!("{PERMS}/table/sales.raw.events"),
        demo::PRODUCT_TOKEN,
        Some(add(demo::ALICE, &["SELECT"])),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn max_results_below_150_is_rejected_and_zero_pages_through_everything() {
    let s = StandIn::builder()
        .seed(Seed::demo().with_page_size(1))
        .state();
    let uri = format!("{PERMS}/catalog/sales");
    let (status, _) = call(
        &s,
        "GET",
        &format!("{uri}?max_results=10"),
        demo::PRODUCT_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let query = token.as_ref().map_or("max_results=0".to_string(), |t| {
            format!("max_results=0&page_token={t}")
        });
        let (status, body) = call(
            &s,
            "GET",
            &format!("{uri}?{query}"),
            demo::PRODUCT_TOKEN,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        pages += 1;
        for a in body["privilege_assignments"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            seen.push(a["principal"].as_str().expect("principal").to_string());
        }
        match body["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let mut expected = vec![demo::PRODUCT_CLIENT_ID, demo::BOB, demo::ANALYSTS_GROUP];
    expected.sort_unstable();
    seen.sort();
    assert_eq!(seen, expected);
    assert_eq!(pages, 4, "an empty first page, then one principal per page");
}

#[tokio::test]
async fn effective_permissions_show_what_is_inherited_from_catalog_and_schema() {
    let s = state();
    let (status, body) = call(&s, "GET", &format!("/api/2.1/unity-catalog/effective-permissions/table/sales.reporting.orders?principal={}", demo::BOB), demo::PRODUCT_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK);
    let privileges = body["privilege_assignments"][0]["privileges"]
        .as_array()
        .expect("privileges")
        .clone();
    assert!(privileges.contains(&json!({"privilege": "USE_CATALOG", "inherited_from_type": "CATALOG", "inherited_from_name": "sales"})));
    assert!(privileges.contains(&json!({"privilege": "SELECT"})));
}

#[tokio::test]
async fn lagging_reads_answer_the_state_before_the_last_patch_until_the_lag_passes() {
    let s = state();
    s.set_read_lag(Some(Duration::from_millis(300)));
    let uri = format!("{PERMS}/table/sales.raw.events");
    let (status, _) = call(
        &s,
        "PATCH",
        &uri,
        demo::PRODUCT_TOKEN,
        Some(add(demo::ALICE, &["SELECT"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        call(&s, "GET", &uri, demo::PRODUCT_TOKEN, None).await.1,
        json!({})
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        call(&s, "GET", &uri, demo::PRODUCT_TOKEN, None).await.1["privilege_assignments"][0]["principal"],
        demo::ALICE
    );
}

#[tokio::test]
async fn an_injected_429_carries_retry_after_and_is_recorded() {
    let s = state();
    s.inject(
        Fault::new(
            FaultKind::TooManyRequests {
                retry_after_secs: 7,
            },
            1,
        )
        .on_method("PATCH"),
    );
    let request = Request::builder()
        .method("PATCH")
        .uri(format!("{PERMS}/table/sales.raw.events"))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", demo::PRODUCT_TOKEN),
        )
        .body(Body::from(add(demo::ALICE, &["SELECT"]).to_string()))
        .expect("request");
    let response = StandIn::router(s.clone())
        .oneshot(request)
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    assert!(s.grants_on("table", "sales.raw.events").is_empty());
    let recorded = s.requests();
    assert_eq!(
        (recorded[0].method.as_str(), recorded[0].status),
        ("PATCH", 429)
    );
}

#[tokio::test]
async fn resolving_an_entra_only_user_creates_it_in_the_account_once() {
    let s = state();
    let uri = format!(
        "/api/2.0/identity/accounts/{}/users/resolve-by-external-id",
        demo::ACCOUNT_ID
    );
    // Listed before and after: the stand-in keeps the SCIM answers' JSON between identity changes.
    let scim = format!(
        "/api/2.0/accounts/{}/scim/v2/Users?filter=userName%20eq%20%22{}%22",
        demo::ACCOUNT_ID,
        demo::ERIN_ENTRA_ONLY.to_uppercase()
    );
    let listed = |s: StandInState| {
        let scim = scim.clone();
        async move {
            let (status, body) = call(&s, "GET", &scim, demo::PRODUCT_TOKEN, None).await;
            assert_eq!(status, StatusCode::OK);
            body["totalResults"].clone()
        }
    };
    assert_eq!(listed(s.clone()).await, 0);
    for _ in 0..2 {
        let (status, body) = call(
            &s,
            "POST",
            &uri,
            demo::PRODUCT_TOKEN,
            Some(json!({"external_id": demo::ERIN_ENTRA_ID})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["user"]["username"], demo::ERIN_ENTRA_ONLY);
    }
    assert_eq!(s.created_identities().len(), 1);
    assert_eq!(listed(s.clone()).await, 1);
    let (status, _) = call(
        &s,
        "POST",
        &uri,
        demo::PRODUCT_TOKEN,
        Some(json!({"external_id": "00000000-0000-0000-0000-000000000000"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn account_scim_filters_users_and_rejects_oversized_filters() {
    let s = state();
    let base = format!("/api/2.0/accounts/{}/scim/v2/Users", demo::ACCOUNT_ID);
    let (status, body) = call(
        &s,
        "GET",
        &format!("{base}?filter=active%20eq%20false"),
        demo::PRODUCT_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["totalResults"], 1);
    assert_eq!(body["Resources"][0]["userName"], demo::DAVE_INACTIVE);
    let huge = vec!["userName%20eq%20%22x%22"; 101].join("%20or%20");
    let (status, body) = call(
        &s,
        "GET",
        &format!("{base}?filter={huge}"),
        demo::PRODUCT_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "400");
}

#[tokio::test]
async fn workspace_scim_lists_local_groups_as_workspace_groups() {
    let s = state();
    let (_, body) = call(
        &s,
        "GET",
        "/api/2.0/preview/scim/v2/Groups?filter=displayName%20eq%20%22users%22",
        demo::PRODUCT_TOKEN,
        None,
    )
    .await;
    assert_eq!(
        body["Resources"][0]["meta"]["resourceType"],
        "WorkspaceGroup"
    );
}

#[tokio::test]
async fn a_dropped_connection_gets_no_response_and_the_next_request_is_served() {
    let running = StandIn::builder()
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start");
    running.state().inject(Fault::new(FaultKind::Drop, 1));
    let client = reqwest::Client::new();
    let url = format!("{}{PERMS}/catalog/sales", running.base_url());
    let first = client
        .get(&url)
        .bearer_auth(demo::PRODUCT_TOKEN)
        .send()
        .await;
    assert!(first.is_err(), "no response: {first:?}");
    let second = client
        .get(&url)
        .bearer_auth(demo::PRODUCT_TOKEN)
        .send()
        .await
        .expect("served");
    assert_eq!(second.status(), 200);
    assert_eq!(
        running
            .requests()
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        vec![0, 200]
    );
}

/// Asks the token endpoint at `url` for an OAuth M2M token for the product's client id with `secret`.
async fn client_credentials(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
) -> reqwest::Response {
    client
        .post(url)
        .basic_auth(demo::PRODUCT_CLIENT_ID, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
        .send()
        .await
        .expect("answer")
}

#[tokio::test]
async fn oauth_m2m_issues_a_bearer_token_for_the_client_and_rejects_a_bad_secret() {
    let running = StandIn::builder()
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start");
    let client = reqwest::Client::new();
    let token_url = format!(
        "{}/oidc/accounts/{}/v1/token",
        running.base_url(),
        demo::ACCOUNT_ID
    );
    let bad = client_credentials(&client, &token_url, "wrong").await;
    assert_eq!(bad.status(), 401);
    let good: Value = client_credentials(&client, &token_url, demo::PRODUCT_CLIENT_SECRET)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (good["token_type"].as_str(), good["expires_in"].as_u64()),
        (Some("Bearer"), Some(3600))
    );
    let token = good["access_token"].as_str().expect("token");
    let me: Value = client
        .get(format!("{}/api/2.0/preview/scim/v2/Me", running.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(me["applicationId"], demo::PRODUCT_CLIENT_ID);
    assert_eq!(running.state().token_issuances(), 1);
}

#[tokio::test]
async fn workspaces_accept_account_tokens_unless_told_not_to() {
    let running = StandIn::builder()
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start");
    let base = running.base_url().to_owned();
    let client = reqwest::Client::new();
    let mint = |path: String| {
        let client = client.clone();
        async move {
            let answer: Value = client_credentials(&client, &path, demo::PRODUCT_CLIENT_SECRET)
                .await
                .json()
                .await
                .expect("json");
            answer["access_token"].as_str().expect("token").to_owned()
        }
    };
    let account = mint(format!(
        "{base}/oidc/accounts/{}/v1/token",
        demo::ACCOUNT_ID
    ))
    .await;
    let workspace = mint(format!("{base}/oidc/v1/token")).await;
    let workspace_api = format!("{base}{PERMS}/table/sales.reporting.customers");
    let account_api = format!(
        "{base}/api/2.0/accounts/{}/scim/v2/Users?count=1",
        demo::ACCOUNT_ID
    );
    let status = |url: String, token: String| {
        let client = client.clone();
        async move {
            let answer = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("answer");
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.expect("json"))
        }
    };
    assert_eq!(
        status(workspace_api.clone(), account.clone()).await.0,
        200,
        "by default, as Databricks says the real service does"
    );

    let admin = client
        .post(format!("{base}/__standin/account-tokens-on-workspaces"))
        .json(&json!({"accepted": false}))
        .send()
        .await
        .expect("admin");
    assert_eq!(admin.status(), 204);
    let (refused, body) = status(workspace_api.clone(), account.clone()).await;
    assert_eq!(
        (refused, body["error_code"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "the answer to an invalid token: {body}"
    );
    assert_eq!(status(workspace_api.clone(), workspace).await.0, 200);
    assert_eq!(
        status(account_api.clone(), account.clone()).await.0,
        200,
        "account APIs still accept it"
    );

    running.state().set_account_tokens_on_workspaces(true);
    assert_eq!(status(workspace_api, account).await.0, 200);
}

#[tokio::test]
async fn the_admin_api_injects_faults_and_dumps_state() {
    let running = StandIn::builder()
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start");
    let client = reqwest::Client::new();
    let admin = client
        .post(format!("{}/__standin/faults", running.base_url()))
        .json(&json!({"kind": "unavailable", "count": 1}))
        .send()
        .await
        .expect("admin");
    assert_eq!(admin.status(), 204);
    let url = format!("{}{PERMS}/catalog/sales", running.base_url());
    let first = client
        .get(&url)
        .bearer_auth(demo::PRODUCT_TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(first.status(), 503);
    let dump: Value = client
        .get(format!("{}/__standin/state", running.base_url()))
        .send()
        .await
        .expect("dump")
        .json()
        .await
        .expect("json");
    assert_eq!(
        dump["grants"]["table/sales.reporting.orders"][demo::BOB],
        json!(["SELECT"])
    );
    let recorded: Value = client
        .get(format!("{}/__standin/requests", running.base_url()))
        .send()
        .await
        .expect("records")
        .json()
        .await
        .expect("json");
    assert_eq!(
        recorded.as_array().map(Vec::len),
        Some(1),
        "admin calls are not recorded"
    );
}
