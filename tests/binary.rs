//! Black-box tests of the built binary, started the way the Functions host starts it: with
//! `FUNCTIONS_CUSTOMHANDLER_PORT` set, polled on `GET /`, then fed host-shaped payloads.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Handler {
    child: Child,
    base: String,
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the binary and waits (bounded) until it answers the readiness probe, as the host does.
fn start(envs: &[(&str, &str)]) -> Handler {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_uc-access"))
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let handler = Handler {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = blocking_get(&format!("{}/", handler.base)) {
            assert_eq!(r.0, 200);
            return handler;
        }
        assert!(Instant::now() < deadline, "the binary never answered GET /");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn blocking_get(url: &str) -> Result<(u16, String), reqwest::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::get(url).await?;
        Ok((r.status().as_u16(), r.text().await?))
    })
}

fn blocking_post(url: &str, body: String) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    })
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A minimal valid configuration: caller authentication and a local ledger, no Databricks yet.
fn configured(ledger: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "AUTH_TENANT_ID",
            "72f988bf-86f1-41af-91ab-2d7cd011db47".to_owned(),
        ),
        ("AUTH_AUDIENCE", "api://uc-access".to_owned()),
        ("LEDGER_BACKEND", "local".to_owned()),
        ("LEDGER_DIR", ledger.to_string_lossy().into_owned()),
    ]
}

#[test]
fn the_binary_answers_the_readiness_probe_on_the_port_the_host_gives_it() {
    let dir = tempfile::tempdir().unwrap();
    let env = configured(dir.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let handler = start(&env);
    let (status, body) = blocking_get(&format!("{}/", handler.base)).unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"ready\""), "{body}");
}

#[test]
fn with_only_the_port_set_the_binary_is_ready_and_names_the_missing_setting_on_every_call() {
    let handler = start(&[]);
    let (status, body) = blocking_get(&format!("{}/", handler.base)).unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("unconfigured") && body.contains("AUTH_TENANT_ID"),
        "{body}"
    );
    let (status, json) = blocking_post(
        &format!("{}/api/purview-callback", handler.base),
        "{}".into(),
    );
    assert_eq!(status, 503);
    assert_eq!(json["error"], "not_configured");
    assert!(
        json["message"].as_str().unwrap().contains("AUTH_TENANT_ID"),
        "{json}"
    );
}

#[test]
fn the_binary_answers_a_timer_invocation_with_outputs_logs_and_return_value() {
    let dir = tempfile::tempdir().unwrap();
    let env = configured(dir.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let handler = start(&env);
    let (status, json) = blocking_post(
        &format!("{}/revoke-expired", handler.base),
        fixture("host/timer-with-schedule-status.json"),
    );
    assert_eq!(status, 200);
    assert!(json["Outputs"].is_object());
    assert!(json["Logs"].is_array());
    assert!(json["ReturnValue"].is_object());
    assert!(
        json["ReturnValue"]["message"]
            .as_str()
            .unwrap()
            .contains("not configured"),
        "{json}"
    );
}

#[test]
fn the_binary_refuses_to_start_with_a_bad_setting_and_names_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_uc-access"))
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "not-a-port")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FUNCTIONS_CUSTOMHANDLER_PORT"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_uc-access"))
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", free_port().to_string())
        .env("AUTH_TENANT_ID", "contoso.onmicrosoft.com")
        .env("AUTH_AUDIENCE", "api://uc-access")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AUTH_TENANT_ID"), "{stderr}");
}

#[test]
fn the_demo_shows_an_approval_become_a_grant_and_the_grant_revoked_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_uc-access"))
        .args(["demo", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
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
    let child = Command::new(env!("CARGO_BIN_EXE_uc-access"))
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
        assert!(Instant::now() < deadline, "uc-access local never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = Command::new(env!("CARGO_BIN_EXE_uc-access"))
        .args([
            "token",
            "purview",
            "--port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

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
fn doctor_local_passes_every_check_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_uc-access"))
        .args(["doctor", "--local", "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert!(
        report["checks"].as_array().unwrap().len() >= 8,
        "{report:#}"
    );
}

#[test]
fn doctor_without_settings_exits_non_zero_and_names_the_missing_one() {
    let output = Command::new(env!("CARGO_BIN_EXE_uc-access"))
        .arg("doctor")
        .env_clear()
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAIL settings"), "{stdout}");
    assert!(stdout.contains("fix: set "), "{stdout}");
}

#[test]
fn bound_beyond_loopback_the_binary_warns_at_start_and_still_answers_the_hosts_timer_over_loopback()
{
    use std::io::Read;

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_uc-access"))
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("UC_ACCESS_BIND_ADDRESS", "0.0.0.0")
        .envs(configured(dir.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while blocking_get(&format!("{base}/")).is_err() {
        assert!(Instant::now() < deadline, "the binary never answered GET /");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The host's own path still works: a real loopback connection, its peer read from the socket.
    let (status, json) = blocking_post(
        &format!("{base}/revoke-expired"),
        fixture("host/timer-with-schedule-status.json"),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{json}");

    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let warning = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["alert"] == "listener_beyond_loopback")
        .unwrap_or_else(|| panic!("no start-up warning in:\n{stdout}"));
    assert_eq!(warning["level"], "WARN", "{warning}");
    let message = warning["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("0.0.0.0:{port}")) && message.contains("refused with 403"),
        "{message}"
    );
}
