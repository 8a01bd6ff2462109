//! Names as Unity Catalog allows them, through `purview-callback` and `grant-access`: every character but
//! `.`, space, `/` and control characters, lowered the Unicode way, percent-encoded on the wire; view
//! assets; privileges a view cannot take refused before anything changes. The oracle is the stand-in's
//! state (what Unity Catalog holds) and the requests it received, never the ledger.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uc_access_standin::demo;

use crate::helpers::{TestApp, callback_body};

const PATH: &str = "/api/purview-callback";
const METASTORE: &str = "0b7e4d2a-6c1f-4e83-9a5d-2f8c7b1e6d40";

fn asset(path: &str) -> Value {
    json!(format!("databricks://{METASTORE}/{path}"))
}

/// The table callback for the asset at `path`, asking for `privileges`.
fn asking(path: &str, privileges: &str) -> String {
    callback_body(json!({"assetQualifiedName": asset(path), "privileges": privileges}))
}

const TABLES_API: &str = "/api/2.1/unity-catalog/tables/";

/// Tables may be asked for SELECT, MODIFY and REFRESH.
const WRITE_POLICY: &str =
    "[securables.table]\nprivileges = [\"SELECT\", \"MODIFY\", \"REFRESH\"]\n";

#[tokio::test]
async fn tables_with_names_unity_catalog_allows_are_granted_as_named() {
    let app = TestApp::spawn().await;
    let token = app.token("purview");
    // Each as Purview may write it: unencoded, or percent-encoded (which one it does is unverified).
    for (qualified, full_name) in [
        (
            "catalogs/sales/schemas/intl/tables/kunden_ä",
            "sales.intl.kunden_ä",
        ),
        (
            "catalogs/Sales/schemas/INTL/tables/Kunden_%C3%84",
            "sales.intl.kunden_ä",
        ),
        (
            "catalogs/sales/schemas/intl/tables/sales$2024",
            "sales.intl.sales$2024",
        ),
        (
            "catalogs/sales/schemas/intl/tables/o'neil",
            "sales.intl.o'neil",
        ),
        (
            "catalogs/sales/schemas/intl/tables/q%3Fa%23b",
            "sales.intl.q?a#b",
        ),
        (
            "catalogs/sales/schemas/intl/tables/100%25_real",
            "sales.intl.100%_real",
        ),
    ] {
        let body = callback_body(json!({"assetQualifiedName": asset(qualified)}));
        let (status, answer) = app.post(PATH, Some(&token), body).await;
        assert_eq!(status, StatusCode::OK, "{qualified}: {answer}");
        assert!(
            ["granted", "already_granted"].contains(&answer["status"].as_str().unwrap()),
            "{qualified}: {answer}"
        );
        assert_eq!(answer["securable"], full_name, "{qualified}");
        assert_eq!(
            app.held("table", full_name, demo::ALICE),
            vec!["SELECT"],
            "{qualified}: Unity Catalog holds the grant on the table as named"
        );
    }
    // On the wire every name was one percent-encoded path segment: no raw '?', '#', '%', quote or
    // non-ASCII byte ever reached the server's path.
    for r in app.standin.requests() {
        if r.path.contains("sales.intl.") {
            assert!(
                r.path.bytes().all(|b| b.is_ascii_graphic())
                    && !r.path.contains(['?', '#', '\'', '$'])
                    && !r.path.contains("%_"),
                "{} {}",
                r.method,
                r.path
            );
        }
    }
    let encoded = app
        .standin
        .requests()
        .iter()
        .any(|r| r.method == "PATCH" && r.path.ends_with("/table/sales.intl.kunden_%C3%A4"));
    assert!(
        encoded,
        "the PATCH names the table percent-encoded as UTF-8"
    );
}

#[tokio::test]
async fn a_name_unity_catalog_refuses_is_a_400_that_names_the_character_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token("purview");
    let before = app.snapshot();
    for (qualified, says) in [
        ("catalogs/sales/schemas/intl/tables/a%2Eb", "'.'"),
        ("catalogs/sales/schemas/intl/tables/a%20b", "a space"),
        ("catalogs/sales/schemas/intl/tables/a%2Fb", "'/'"),
        ("catalogs/sales/schemas/intl/tables/a%09b", "U+0009"),
        ("catalogs/sales/schemas/intl/tables/a%7Fb", "U+007F"),
        ("catalogs/sales/schemas/intl/tables/100%_real", "%25"),
        ("catalogs/sales/schemas/intl/tables/a%FF", "UTF-8"),
    ] {
        let body = callback_body(json!({"assetQualifiedName": asset(qualified)}));
        let (status, answer) = app.post(PATH, Some(&token), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{qualified}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "{qualified}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains("assetQualifiedName"), "{message}");
        assert!(message.contains(says), "{qualified}: {message}");
    }
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn a_view_asset_is_granted_through_the_table_securable_with_either_keyword() {
    let app = TestApp::spawn().await;
    let token = app.token("purview");
    for keyword in ["views", "tables"] {
        let body = callback_body(json!({
            "assetQualifiedName": asset(&format!("catalogs/sales/schemas/reporting/{keyword}/orders_summary"))
        }));
        let (status, answer) = app.post(PATH, Some(&token), body).await;
        assert_eq!(status, StatusCode::OK, "{keyword}: {answer}");
        assert_eq!(answer["securable"], "sales.reporting.orders_summary");
    }
    assert_eq!(
        app.held("table", "sales.reporting.orders_summary", demo::ALICE),
        vec!["SELECT"]
    );
    // SELECT depends on no table kind: the table's type was never read.
    assert_eq!(
        app.standin_paths(TABLES_API),
        Vec::<String>::new(),
        "a SELECT request reads no table type"
    );
}

#[tokio::test]
async fn modify_on_a_view_and_refresh_on_a_table_are_refused_before_anything_changes() {
    let (app, _dir) = TestApp::with_policy(WRITE_POLICY).await;
    let token = app.token("purview");
    let before = app.snapshot();
    for (qualified, privileges, kind) in [
        (
            "catalogs/sales/schemas/reporting/views/orders_summary",
            "MODIFY",
            "a view",
        ),
        (
            "catalogs/sales/schemas/reporting/tables/orders_summary",
            "SELECT,MODIFY",
            "a view",
        ),
        (
            "catalogs/sales/schemas/reporting/tables/daily_totals",
            "MODIFY",
            "a materialized view",
        ),
        (
            "catalogs/sales/schemas/reporting/tables/orders",
            "REFRESH",
            "a table",
        ),
    ] {
        let body = asking(qualified, privileges);
        let (status, answer) = app.post(PATH, Some(&token), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{qualified}: {answer}");
        assert_eq!(answer["error"], "privilege_not_applicable", "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(kind), "{qualified}: {message}");
    }
    assert_eq!(
        app.snapshot(),
        before,
        "no grant, no identity, no record, no PATCH"
    );
    // No principal was even looked for: the refusal came before resolving anyone.
    assert!(
        !app.standin_paths("/").iter().any(|p| p.contains("/scim/")),
        "no SCIM request before the refusal"
    );
}

#[tokio::test]
async fn privileges_a_kind_of_table_does_take_are_granted() {
    let (app, _dir) = TestApp::with_policy(WRITE_POLICY).await;
    let token = app.token("purview");
    for (qualified, privileges, full_name, held) in [
        (
            "catalogs/sales/schemas/reporting/tables/daily_totals",
            "REFRESH",
            "sales.reporting.daily_totals",
            vec!["REFRESH"],
        ),
        (
            "catalogs/sales/schemas/intl/tables/kunden_%C3%A4",
            "MODIFY",
            "sales.intl.kunden_ä",
            vec!["MODIFY"],
        ),
    ] {
        let body = asking(qualified, privileges);
        let (status, answer) = app.post(PATH, Some(&token), body).await;
        assert_eq!(status, StatusCode::OK, "{qualified}: {answer}");
        assert_eq!(app.held("table", full_name, demo::ALICE), held);
    }
    assert_eq!(
        app.standin_paths(TABLES_API),
        [
            "/api/2.1/unity-catalog/tables/sales.reporting.daily_totals",
            "/api/2.1/unity-catalog/tables/sales.intl.kunden_%C3%A4",
        ],
        "the table's type is read once per request that asks for MODIFY or REFRESH"
    );
}

#[tokio::test]
async fn a_missing_table_asked_for_modify_is_not_found_and_changes_nothing() {
    let (app, _dir) = TestApp::with_policy(WRITE_POLICY).await;
    let before = app.snapshot();
    let body = callback_body(json!({
        "assetQualifiedName": asset("catalogs/sales/schemas/reporting/tables/nope"),
        "privileges": "MODIFY",
    }));
    let (status, answer) = app.post(PATH, Some(&app.token("purview")), body).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"], "securable_not_found");
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn policy_patterns_match_non_ascii_names_after_the_same_lowering() {
    let policy = "[names]\nallow = [\"sales.intl.Kunden_*\"]\n";
    let (app, _dir) = TestApp::with_policy(policy).await;
    let token = app.token("purview");
    let body = callback_body(json!({
        "assetQualifiedName": asset("catalogs/sales/schemas/intl/tables/KUNDEN_%C3%84"),
    }));
    let (status, answer) = app.post(PATH, Some(&token), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        app.held("table", "sales.intl.kunden_ä", demo::ALICE),
        ["SELECT"]
    );
    let before = app.snapshot();
    let body = callback_body(json!({
        "assetQualifiedName": asset("catalogs/sales/schemas/intl/tables/o'neil"),
    }));
    let (status, answer) = app.post(PATH, Some(&token), body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn grant_access_takes_the_same_names_as_a_plain_dotted_full_name() {
    let app = TestApp::spawn().await;
    let body = json!({
        "principal": {"userName": demo::ALICE},
        "securable": {"type": "table", "fullName": "Sales.Intl.Kunden_Ä"},
        "duration": "PT10M",
    });
    let (status, answer) = app
        .post(
            "/api/grant-access",
            Some(&app.token("operator")),
            body.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        app.held("table", "sales.intl.kunden_ä", demo::ALICE),
        ["SELECT"]
    );
    let before = app.snapshot();
    let body = json!({
        "principal": {"userName": demo::ALICE},
        "securable": {"type": "table", "fullName": "sales.intl.kunden ä"},
    });
    let (status, answer) = app
        .post(
            "/api/grant-access",
            Some(&app.token("operator")),
            body.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("a space"),
        "{answer}"
    );
    assert_eq!(app.snapshot(), before);
}
