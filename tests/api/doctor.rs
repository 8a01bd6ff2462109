//! `GET /api/doctor`: every check against the stand-in, a missing `MANAGE` named with its fix, and the
//! operator lock in front of it.

use reqwest::StatusCode;
use serde_json::Value;
use uc_access_standin::{Seed, demo};

use crate::helpers::TestApp;

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

#[tokio::test]
async fn the_doctor_reports_the_listener_the_app_is_bound_to_and_that_only_loopback_can_reach_it() {
    let app = TestApp::spawn().await;
    let (status, report) = app
        .get_as("/api/doctor", Some(&app.token("operator")))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let c = check(&report, "listener");
    assert_eq!(c["ok"], true, "{c}");
    let port = url::Url::parse(&app.base).unwrap().port().unwrap();
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("127.0.0.1:{port}")) && detail.contains("loopback"),
        "{c}"
    );
}

#[tokio::test]
async fn against_the_demo_stand_in_every_check_passes_and_each_is_in_the_answer() {
    let app = TestApp::spawn().await;
    let (status, report) = app
        .get_as("/api/doctor", Some(&app.token("operator")))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], true, "{report:#}");
    for name in [
        "settings",
        "token.account",
        "token.workspace.default",
        "account.scim",
        "workspace.default",
        "catalog.hr",
        "catalog.sales",
        "ledger",
        "secrets",
    ] {
        let c = check(&report, name);
        assert_eq!(c["ok"], true, "{c}");
        assert!(!c["detail"].as_str().unwrap().is_empty(), "{c}");
    }
    assert!(
        check(&report, "workspace.default")["detail"]
            .as_str()
            .unwrap()
            .contains(demo::PRODUCT_CLIENT_ID),
        "the workspace check names who uc-access acts as"
    );
}

#[tokio::test]
async fn the_doctor_says_which_oauth_token_a_workspace_takes_and_passes_either_way() {
    for (accepted, says) in [
        (true, "with the account-level token"),
        (false, "with its workspace-level token"),
    ] {
        let app = TestApp::spawn().await;
        app.standin.set_account_tokens_on_workspaces(accepted);
        let (status, report) = app
            .get_as("/api/doctor", Some(&app.token("operator")))
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["ok"], true, "{report:#}");
        let detail = check(&report, "workspace.default")["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(detail.contains(says), "{accepted}: {detail}");
        let token = check(&report, "token.workspace.default")["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(token.contains("workspace-level"), "{token}");
    }
}

#[tokio::test]
async fn without_manage_on_sales_the_catalog_check_fails_and_names_the_grant_to_make() {
    let seed = Seed::demo().without_grant("catalog", "sales", demo::PRODUCT_CLIENT_ID, "MANAGE");
    let app = TestApp::spawn_seeded(&[], seed).await;
    let (status, report) = app
        .get_as("/api/doctor", Some(&app.token("operator")))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the body, not the status, reports failed checks"
    );
    assert_eq!(report["ok"], false, "{report:#}");
    let sales = check(&report, "catalog.sales");
    assert_eq!(sales["ok"], false, "{sales}");
    let fix = sales["fix"].as_str().unwrap();
    assert!(
        fix.contains("grant the uc-access service principal MANAGE on catalog `sales`"),
        "{fix}"
    );
    assert!(fix.contains(demo::PRODUCT_CLIENT_ID), "{fix}");
    assert_eq!(check(&report, "catalog.hr")["ok"], true);
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "only the sales check fails: {failed:?}");
}

#[tokio::test]
async fn owning_a_catalog_counts_as_well_as_holding_manage_on_it() {
    let mut seed =
        Seed::demo().without_grant("catalog", "sales", demo::PRODUCT_CLIENT_ID, "MANAGE");
    for s in seed
        .securables
        .iter_mut()
        .filter(|s| s.full_name == "sales")
    {
        s.owner = demo::PRODUCT_CLIENT_ID.into();
    }
    let app = TestApp::spawn_seeded(&[], seed).await;
    let (_, report) = app
        .get_as("/api/doctor", Some(&app.token("operator")))
        .await;
    let sales = check(&report, "catalog.sales");
    assert_eq!(sales["ok"], true, "{sales}");
    assert!(
        sales["detail"].as_str().unwrap().contains("owns"),
        "{sales}"
    );
}

#[tokio::test]
async fn a_governed_catalog_that_does_not_exist_fails_its_check() {
    let app = TestApp::spawn_with(&[("UC_ACCESS_GOVERNED_CATALOGS", "sales,finance")]).await;
    let (_, report) = app
        .get_as("/api/doctor", Some(&app.token("operator")))
        .await;
    let finance = check(&report, "catalog.finance");
    assert_eq!(finance["ok"], false, "{finance}");
    assert!(
        finance["detail"]
            .as_str()
            .unwrap()
            .contains("CATALOG_DOES_NOT_EXIST"),
        "{finance}"
    );
    assert_eq!(check(&report, "catalog.sales")["ok"], true);
}

#[tokio::test]
async fn the_doctor_answers_only_an_operator() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get_as("/api/doctor", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.get("checks").is_none(), "{body}");
    let (status, body) = app.get_as("/api/doctor", Some(&app.token("purview"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

/// The app with a policy that lets requests choose Delta Sharing.
async fn sharing_doctor(seed: Seed) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, "[provisioning]\nrequestable = [\"delta-sharing\"]\n").unwrap();
    let app =
        TestApp::spawn_seeded(&[("UC_ACCESS_POLICY_FILE", file.to_str().unwrap())], seed).await;
    let (status, report) = app
        .get_as("/api/doctor", Some(&app.token("operator")))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

#[tokio::test]
async fn when_policy_can_share_select_on_each_governed_catalog_is_checked() {
    // The demo gives uc-access MANAGE only: enough for direct grants, not to add tables to shares.
    let report = sharing_doctor(Seed::demo()).await;
    let sales = check(&report, "sharing.sales");
    assert_eq!(sales["ok"], false, "{sales}");
    let fix = sales["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!(
            "GRANT SELECT ON CATALOG `sales` TO `{}`",
            demo::PRODUCT_CLIENT_ID
        )),
        "{fix}"
    );
    assert_eq!(check(&report, "catalog.sales")["ok"], true);

    let seed = Seed::demo()
        .with_grant("catalog", "sales", demo::PRODUCT_CLIENT_ID, &["SELECT"])
        .with_grant("catalog", "hr", demo::PRODUCT_CLIENT_ID, &["SELECT"]);
    let report = sharing_doctor(seed).await;
    assert_eq!(check(&report, "sharing.sales")["ok"], true, "{report:#}");
    assert_eq!(check(&report, "sharing.hr")["ok"], true, "{report:#}");
}

#[tokio::test]
async fn without_sharing_in_policy_no_sharing_check_runs() {
    let app = TestApp::spawn().await;
    let (_, report) = app
        .get_as("/api/doctor", Some(&app.token("operator")))
        .await;
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("sharing.")),
        "{names:?}"
    );
}

#[tokio::test]
async fn after_a_v2_token_is_refused_for_its_audience_the_doctor_names_the_value_it_carried() {
    let app = TestApp::spawn().await;
    // Before: the local run accepts both forms, so the check passes without advice.
    let (_, report) = app
        .get_as("/api/doctor", Some(&app.token("operator")))
        .await;
    let c = check(&report, "auth.audience");
    assert_eq!(c["ok"], true, "{c}");
    assert!(c.get("fix").is_none(), "{c}");

    // Purview's service principal, with a v2.0 token for a client id uc-access does not list (what a
    // deployment sees when AUTH_AUDIENCE names only the URI).
    let unlisted = "0b5e8b4e-1a2b-4c3d-8e9f-001122334455";
    let mut claims = app.claims("purview");
    claims["aud"] = serde_json::json!(unlisted);
    let (status, json) = app
        .post(
            "/api/purview-callback",
            Some(&app.sign(&claims)),
            crate::helpers::callback_body(serde_json::json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"], "wrong_audience");

    let (_, report) = app
        .get_as("/api/doctor", Some(&app.token("operator")))
        .await;
    assert_eq!(report["ok"], false, "{report:#}");
    let c = check(&report, "auth.audience");
    assert_eq!(c["ok"], false, "{c}");
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains(unlisted)
            && detail.contains("v2.0")
            && detail.contains(&uc_access_dev::local_issuer::LOCAL_PURVIEW_APP_ID.to_string()),
        "{c}"
    );
    let fix = c["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!("{unlisted:?}")) && fix.contains("add it to AUTH_AUDIENCE"),
        "{c}"
    );
}

#[tokio::test]
async fn the_doctor_states_which_functions_the_host_key_guards_and_what_stands_in_elsewhere() {
    let app = TestApp::spawn().await;
    let (_, report) = app
        .get_as("/api/doctor", Some(&app.token("operator")))
        .await;
    let c = check(&report, "host_key");
    assert_eq!(c["ok"], true, "{c}");
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains("x-functions-key")
            && detail.contains("before uc-access on purview-callback"),
        "{c}"
    );
    for anonymous in [
        "grant-access",
        "resolve-principal",
        "revoke-access",
        "list-grants",
        "doctor",
    ] {
        assert!(detail.contains(anonymous), "{anonymous}: {c}");
    }
    assert!(
        c["fix"].as_str().unwrap().contains("Assignment required"),
        "{c}"
    );
}
