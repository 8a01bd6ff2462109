//! The real app, started as the local run starts it (local issuer, stand-in, local ledger) on a free
//! port, and a client that speaks to it over HTTP as Purview or an operator would.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use uc_access::settings::Env;
use uc_access::usecases::Clock;
use uc_access_dev::local::{self, LocalRun};
use uc_access_dev::local_issuer::{LOCAL_AUDIENCE, LocalCaller, LocalIssuer};
use uc_access_standin::{Seed, StandInState};

/// One issuer key for the whole test binary: RSA key generation is the slow part of a start.
fn data_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("api-tests"))
}

pub struct TestApp {
    pub base: String,
    /// Seconds added to the real clock: tests move time forward to expire grants.
    pub skew: Arc<AtomicI64>,
    pub standin: StandInState,
    /// The stand-in's own base URL (to act on it as someone other than uc-access).
    pub standin_base: String,
    issuer: LocalIssuer,
    client: reqwest::Client,
    ledger: tempfile::TempDir,
    /// The services the served router runs on, to drive the same app in-process (with a chosen peer).
    services: Arc<uc_access::app::Services>,
    _shutdown: oneshot::Sender<()>,
}

impl TestApp {
    /// Starts the app with the local run's embedded defaults plus `env`.
    pub async fn spawn_with(env: &[(&str, &str)]) -> Self {
        Self::spawn_seeded(env, Seed::demo()).await
    }

    /// Starts the app on a stand-in seeded with `seed`.
    pub async fn spawn_seeded(env: &[(&str, &str)], seed: Seed) -> Self {
        let ledger = tempfile::tempdir().unwrap();
        let env = Env::from_pairs(env.iter().copied())
            .with_default("LEDGER_DIR", ledger.path().to_string_lossy());
        let skew = Arc::new(AtomicI64::new(0));
        let clock_skew = skew.clone();
        let clock: Clock = Arc::new(move || {
            OffsetDateTime::now_utc() + time::Duration::seconds(clock_skew.load(Ordering::SeqCst))
        });
        let run = LocalRun::start_with_seed(env, 0, data_dir(), clock, seed)
            .await
            .unwrap();
        let base = run.base_url.to_string();
        let standin = run.standin.state().clone();
        let standin_base = run.standin.base_url().to_owned();
        let issuer =
            LocalIssuer::load_or_create(&local::issuer_dir(data_dir()), &run.base_url).unwrap();
        let services = run.services.clone();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(run.serve(async {
            let _ = rx.await;
        }));
        Self {
            base,
            skew,
            standin,
            standin_base,
            issuer,
            client: reqwest::Client::new(),
            ledger,
            services,
            _shutdown: tx,
        }
    }

    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Where the app's local ledger keeps its records.
    pub fn ledger_dir(&self) -> &std::path::Path {
        self.ledger.path()
    }

    /// Moves the app's clock forward.
    pub fn advance(&self, by: time::Duration) {
        self.skew.fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }

    /// Runs the revoke timer once, as the host would, and returns its `ReturnValue`.
    pub async fn run_timer(&self) -> Value {
        let (status, json) = self
            .post(
                "/revoke-expired",
                None,
                fixture("host/timer-with-schedule-status.json"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json["ReturnValue"].clone()
    }

    /// POSTs `body` to `path` through the app's router in-process, as if the connection came from `peer`
    /// (axum's connection info, which the served router gets from the socket).
    pub async fn post_from(
        &self,
        peer: std::net::SocketAddr,
        path: &str,
        body: impl Into<String>,
    ) -> (StatusCode, Value) {
        let request = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.into()))
            .unwrap();
        self.send_from(peer, request).await
    }

    /// Sends `request` (any method, headers and body) through the app's router in-process, as if the
    /// connection came from `peer`; returns the status and the JSON answer.
    pub async fn send_from(
        &self,
        peer: std::net::SocketAddr,
        request: axum::http::Request<axum::body::Body>,
    ) -> (StatusCode, Value) {
        use tower::ServiceExt;
        let router = uc_access::app::router(uc_access::app::AppState {
            services: self.services.clone(),
        })
        .layer(axum::extract::connect_info::MockConnectInfo(peer));
        let response = router.oneshot(request).await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json)
    }

    /// A token for a local caller preset (`purview`, `operator`, `app:<guid>`, `user:<guid>[:roles]`).
    pub fn token(&self, caller: &str) -> String {
        let caller: LocalCaller = caller.parse().unwrap();
        self.issuer
            .mint(&caller, LOCAL_AUDIENCE, Duration::from_secs(600))
            .unwrap()
    }

    /// The claims of a token for a local caller preset, to change before signing them with [`Self::sign`].
    pub fn claims(&self, caller: &str) -> Value {
        let caller: LocalCaller = caller.parse().unwrap();
        self.issuer
            .claims(&caller, LOCAL_AUDIENCE, Duration::from_secs(600))
    }

    /// Signs arbitrary claims with the trusted key (for forged-looking but well-signed tokens).
    pub fn sign(&self, claims: &Value) -> String {
        self.issuer.sign_claims(claims).unwrap()
    }

    /// POSTs JSON (or raw text) with an optional bearer token; returns the status and the JSON answer.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: impl Into<String>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}{}", self.base, path.trim_start_matches('/')))
            .header("content-type", "application/json")
            .body(body.into());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_as(path, None).await
    }

    /// GETs with an optional bearer token; returns the status and the JSON answer.
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .get(format!("{}{}", self.base, path.trim_start_matches('/')));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// The table callback fixture with some fields replaced.
pub fn callback_body(overrides: Value) -> String {
    let mut base: Value = serde_json::from_str(&fixture("purview/callback-table.json")).unwrap();
    for (k, v) in overrides.as_object().unwrap() {
        base[k] = v.clone();
    }
    base.to_string()
}

impl TestApp {
    /// What `who` holds directly on a securable in the stand-in, right now.
    pub fn held(&self, kind: &str, name: &str, who: &str) -> Vec<String> {
        self.standin
            .grants_on(kind, name)
            .get(who)
            .cloned()
            .unwrap_or_default()
    }

    /// The app with a policy file (`UC_ACCESS_POLICY_FILE`); the returned guard keeps its folder alive.
    pub async fn with_policy(policy: &str) -> (Self, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.toml");
        std::fs::write(&file, policy).unwrap();
        let app = Self::spawn_with(&[("UC_ACCESS_POLICY_FILE", file.to_str().unwrap())]).await;
        (app, dir)
    }

    /// The paths (still percent-encoded) of the requests the stand-in has received that start with
    /// `prefix`, in order.
    pub fn standin_paths(&self, prefix: &str) -> Vec<String> {
        self.standin
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .map(|r| r.path)
            .collect()
    }

    /// How many PATCHes the stand-in has received.
    pub fn patches(&self) -> usize {
        self.standin
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
    }
}

pub fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {full}: {e}"))
}

/// What an answer looked like, for tests that send unusual requests.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: StatusCode,
    pub content_type: Option<String>,
    /// The `Retry-After` header, when the answer has one.
    pub retry_after: Option<String>,
    pub text: String,
}

/// Everything a bad request could have changed: the stand-in's grants and created identities, the
/// mutating requests it received, and every file of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub grants: Value,
    pub created_identities: Value,
    pub mutating_requests: usize,
    pub ledger: std::collections::BTreeMap<String, Vec<u8>>,
}

impl TestApp {
    /// Sends any method, headers and raw body bytes; nothing is added (no content type, no token).
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> RawAnswer {
        let mut req = self.client.request(
            method,
            format!("{}{}", self.base, path.trim_start_matches('/')),
        );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.body(body).send().await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        RawAnswer {
            status,
            content_type,
            retry_after,
            text: resp.text().await.unwrap(),
        }
    }

    /// The state a rejected request must leave unchanged.
    pub fn snapshot(&self) -> Snapshot {
        let dump = self.standin.dump();
        let mutating_requests = self
            .standin
            .requests()
            .iter()
            .filter(|r| r.method != "GET" && !r.path.contains("/oidc/"))
            .count();
        let mut ledger = std::collections::BTreeMap::new();
        collect_files(self.ledger.path(), self.ledger.path(), &mut ledger);
        Snapshot {
            grants: dump["grants"].clone(),
            created_identities: dump["created_identities"].clone(),
            mutating_requests,
            ledger,
        }
    }

    /// How many requests of any kind the stand-in has received (token requests included).
    pub fn standin_requests(&self) -> usize {
        self.standin.requests().len()
    }
}

fn collect_files(
    root: &std::path::Path,
    dir: &std::path::Path,
    out: &mut std::collections::BTreeMap<String, Vec<u8>>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(root, &path, out);
        } else {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(name, std::fs::read(&path).unwrap_or_default());
        }
    }
}
