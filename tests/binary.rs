//! Black-box tests of the built binary, started the way the Functions host starts it: with
//! `FUNCTIONS_CUSTOMHANDLER_PORT` set, polled on `GET /`, then fed host-shaped payloads.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/process.rs"]
mod process;
use process::{Handler, blocking_get, free_port};

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
fn the_shipped_binary_has_no_developer_subcommands() {
    // The local run, the demo, the token minter and the stand-in live in `uc-access-dev` (crates/dev).
    for command in ["local", "demo", "token", "standin"] {
        let output = Command::new(env!("CARGO_BIN_EXE_uc-access"))
            .arg(command)
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("unrecognized subcommand '{command}'")),
            "{command}: {stderr}"
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_uc-access"))
        .args(["doctor", "--local"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
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
