//! `uc-access serve` as a child process, started the way the Azure Functions host starts it, and the
//! settings that point it at a local token issuer and the Databricks stand-in. Shared by the benchmarks
//! (benches/uc_access.rs) and the black-box tests that need a whole approval (tests/ledger/binary.rs).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uc_access_dev::local_issuer::{self, LOCAL_AUDIENCE, LOCAL_PURVIEW_APP_ID, LOCAL_TENANT_ID};
use uc_access_standin::demo;

pub const BINARY: &str = env!("CARGO_BIN_EXE_uc-access");

/// Caller authentication by the local issuer served at `issuer_base` (Purview's app allowed to call
/// back), and Databricks at `standin` as both workspace and account host, with the product's OAuth M2M
/// client. No ledger: the caller adds the backend it wants.
pub fn app_settings(issuer_base: &url::Url, standin: &str) -> Vec<(String, String)> {
    let standin = standin.trim_end_matches('/').to_owned();
    [
        ("AUTH_TENANT_ID", LOCAL_TENANT_ID.to_string()),
        ("AUTH_AUDIENCE", LOCAL_AUDIENCE.to_owned()),
        (
            "AUTH_OPENID_CONFIGURATION_URL",
            local_issuer::openid_configuration_url(issuer_base).to_string(),
        ),
        (
            "PURVIEW_CALLBACK_ALLOWED_APP_IDS",
            LOCAL_PURVIEW_APP_ID.to_string(),
        ),
        ("DATABRICKS_HOST", standin.clone()),
        ("DATABRICKS_ACCOUNT_HOST", standin),
        ("DATABRICKS_ACCOUNT_ID", demo::ACCOUNT_ID.to_owned()),
        ("DATABRICKS_AUTH_TYPE", "oauth-m2m".to_owned()),
        ("DATABRICKS_CLIENT_ID", demo::PRODUCT_CLIENT_ID.to_owned()),
        (
            "DATABRICKS_CLIENT_SECRET",
            demo::PRODUCT_CLIENT_SECRET.to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The running app; killed on drop.
pub struct App {
    child: Child,
    pub base: String,
    pub started: Instant,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl App {
    /// Starts `uc-access serve` with exactly `env` (nothing inherited) and a free port.
    pub fn spawn(env: &[(String, String)], stdout: Stdio) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let started = Instant::now();
        let child = Command::new(BINARY)
            .arg("serve")
            .env_clear()
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            started,
        }
    }

    /// Polls `GET /` as the host does; answers the time from process start to the first answer.
    pub async fn ready(&self, client: &reqwest::Client) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{}/", self.base)).send().await
                && r.status().is_success()
            {
                return self.started.elapsed();
            }
            assert!(Instant::now() < deadline, "the app never answered GET /");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the app has used so far (user + system, from /proc/PID/stat).
    pub fn cpu_time(&self) -> Duration {
        cpu_time_of(&self.pid().to_string())
    }

    /// A value from /proc/PID/status in kB (`VmRSS`, `VmHWM`).
    pub fn memory_kb(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// User + system CPU time of process `pid` (`self` for this one) from `/proc/PID/stat`.
pub fn cpu_time_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime is the
    // 14th field of the line, stime the 15th, both in clock ticks (100 per second on Linux).
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}
