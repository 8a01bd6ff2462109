//! Cross-check of the stand-in's Microsoft Graph with Microsoft's own Python SDK models
//! (tests/sdk/graph_crosscheck.py, msgraph-sdk from tests/requirements.txt).
//!
//! Needs a Python with msgraph-sdk: `UC_ACCESS_PYTHON`, else `.venv/bin/python` in the repo root (as
//! docs/standin.md says). A missing interpreter or SDK fails this test; it never skips.

#![allow(clippy::unwrap_used)] // a test: a failing unwrap shows the value

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{Value, json};
use uc_access_standin::{Seed, StandIn, demo};

fn python() -> PathBuf {
    std::env::var_os("UC_ACCESS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

#[tokio::test]
async fn microsofts_graph_sdk_models_read_every_stand_in_answer_without_unknown_properties() {
    let python = python();
    let probe = tokio::process::Command::new(&python)
        .args(["-c", "import msgraph.generated.models.user"])
        .output()
        .await;
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "{} lacks msgraph-sdk ({}); install tests/requirements.txt into .venv, see docs/standin.md",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("no Python interpreter at {} ({e})", python.display()),
    }
    let standin = StandIn::builder()
        .seed(Seed::demo())
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/graph_crosscheck.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .env("STANDIN_URL", standin.base_url())
        .env("STANDIN_GRAPH_TOKEN", demo::GRAPH_TOKEN)
        .env("STANDIN_JUDY", demo::JUDY_ENTRA_ID)
        .env("STANDIN_ETL_SP", demo::ETL_SP_ENTRA_ID)
        .env("STANDIN_OWNERS", demo::DATA_OWNERS_ENTRA_ID)
        .env("STANDIN_FINANCE", demo::FINANCE_ENTRA_ID)
        .env("STANDIN_ALICE", demo::ALICE_ENTRA_ID)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "graph_crosscheck.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(&stdout).unwrap();

    assert_eq!(
        seen["user"],
        json!({"id": demo::JUDY_ENTRA_ID, "userPrincipalName": demo::JUDY_GUEST_UPN,
               "mail": demo::JUDY_GUEST, "accountEnabled": true, "userType": "Guest"})
    );
    assert_eq!(seen["user_default_has_account_enabled"], false);
    assert_eq!(
        seen["service_principal"],
        json!({"id": demo::ETL_SP_ENTRA_ID, "appId": demo::ETL_CLIENT_ID, "accountEnabled": true})
    );
    assert_eq!(seen["group"]["displayName"], demo::DATA_OWNERS_GROUP);
    // Carol and the deputies group directly, Alice through it: typed by the SDK from @odata.type.
    let mut members = vec![
        json!(["User", demo::ALICE_ENTRA_ID]),
        json!(["User", demo::CAROL_ENTRA_ID]),
        json!(["Group", demo::OWNER_DEPUTIES_ENTRA_ID]),
    ];
    members.sort_by_key(|m| m.to_string());
    let mut got = seen["transitive_members"].as_array().unwrap().clone();
    got.sort_by_key(|m| m.to_string());
    assert_eq!(got, members);
    assert_eq!(seen["transitive_pages"], 3);
    // The body uc-access's client sends (src/graph/client.rs) is the SDK's.
    assert_eq!(
        seen["check_member_groups_sdk_body"],
        json!({"groupIds": [demo::DATA_OWNERS_ENTRA_ID, demo::FINANCE_ENTRA_ID]})
    );
    assert_eq!(
        seen["check_member_groups"],
        json!([demo::DATA_OWNERS_ENTRA_ID])
    );
    assert_eq!(seen["not_found"]["code"], "Request_ResourceNotFound");
    assert_eq!(seen["no_token"]["code"], "InvalidAuthenticationToken");
    assert_eq!(seen["too_many_groups"]["code"], "Request_BadRequest");
}
