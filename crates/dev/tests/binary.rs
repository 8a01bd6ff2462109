//! Black-box tests of the developer binary, `uc-access-dev`: the demo, the local run with tokens from its
//! issuer, and the doctor of a local run.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../../tests/common/process.rs"]
mod process;
use process::{Handler, blocking_get, free_port};

/// Runs `uc-access-dev <args> --data-dir <dir>` to its end; it must succeed. Answers its standard output.
fn run_dev(args: &[&str], dir: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_uc-access-dev"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn the_demo_shows_an_approval_become_a_grant_and_the_grant_revoked_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = run_dev(&["demo"], dir.path());
    assert!(stdout.contains("\"status\":\"granted\""), "{stdout}");
    assert!(stdout.contains("revoked=1"), "{stdout}");
    assert!(
        stdout.contains("table sales.reporting.orders: (nothing for Alice)"),
        "{stdout}"
    );
}

#[test]
fn the_built_binary_grants_a_purview_approval_in_the_stand_in_served_on_its_own_port() {
    let dir = tempfile::tempdir().unwrap();
    let (port, standin_port) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_uc-access-dev"))
        .args([
            "local",
            "--port",
            &port.to_string(),
            "--standin-port",
            &standin_port.to_string(),
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let handler = Handler {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while blocking_get(&format!("{}/", handler.base)).is_err() {
        assert!(
            Instant::now() < deadline,
            "uc-access-dev local never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let port_arg = port.to_string();
    let token = run_dev(&["token", "purview", "--port", &port_arg], dir.path())
        .trim()
        .to_owned();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, answer, state) = rt.block_on(async {
        let client = reqwest::Client::new();
        let r = client
            .post(format!("{}/api/purview-callback", handler.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(fixture("purview/callback-table.json"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let answer: serde_json::Value = r.json().await.unwrap();
        let state: serde_json::Value = client
            .get(format!("http://127.0.0.1:{standin_port}/__standin/state"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (status, answer, state)
    });
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "granted");
    let grants = &state["grants"];
    assert_eq!(
        grants["table/sales.reporting.orders"]["alice.analyst@contoso.com"],
        serde_json::json!(["SELECT"]),
        "{state}"
    );
    assert_eq!(
        grants["schema/sales.reporting"]["alice.analyst@contoso.com"],
        serde_json::json!(["USE_SCHEMA"]),
        "{state}"
    );
    assert_eq!(
        grants["catalog/sales"]["alice.analyst@contoso.com"],
        serde_json::json!(["USE_CATALOG"]),
        "{state}"
    );
}

#[test]
fn the_doctor_of_a_local_run_passes_every_check_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = run_dev(&["doctor", "--json"], dir.path());
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert!(
        report["checks"].as_array().unwrap().len() >= 8,
        "{report:#}"
    );
}
