//! The benchmarks behind BENCHMARKS.md: start-up (and the Python route beside it), throughput and the
//! handler's own latency, Databricks calls per approval, the revoke sweep at scale, footprint.
//!
//! Run them with `scripts/bench`, which builds this harness and the binary with the `benchmark` profile,
//! runs `cargo bench --profile benchmark --bench uc_access -- --out FILE` and rewrites the figures in
//! BENCHMARKS.md from FILE. The harness starts the real binary (`uc-access serve`, as the Functions host
//! does) against a Databricks stand-in and a local token issuer served from this process, and measures
//! from outside. It prints medians and ratios; nothing here is a test, and tests never assert times.
//!
//! Without `--bench` (as `cargo test --all-targets` runs bench targets) it does nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, BufReader};
use uc_access::domain::{
    EntraObjectId, GrantDuration, Principal, Privilege, PrivilegeSet, Securable, SecurableType,
};
use uc_access::ledger::{
    BlobLedger, BlobLedgerOptions, GrantRecord, IdempotencyKey, LedgerStore, LocalLedger, NewGrant,
    SecurableChange, WorkspaceRef,
};
use uc_access_dev::local_issuer::{self, LOCAL_AUDIENCE, LocalCaller, LocalIssuer};
use uc_access_standin::privileges::SecurableKind;
use uc_access_standin::{
    RecordedRequest, RunningStandIn, Seed, SeedGrant, SeedSecurable, SeedUser, StandIn,
    StandInState, demo,
};

// Azurite, its tokens and the App Service identity endpoint, shared with the ledger tests.
#[allow(dead_code)]
#[path = "../tests/ledger/azurite.rs"]
mod azurite;
#[allow(dead_code)]
#[path = "../tests/ledger/credential.rs"]
mod credential;
#[allow(dead_code)]
#[path = "../tests/ledger/identity.rs"]
mod identity;

use azurite::{Azurite, SDK_REQUEST_LOG};
use identity::{IdentityEndpoint, Minting};

// The app as a child process and its settings, shared with the black-box tests.
#[allow(dead_code)]
#[path = "../tests/common/app.rs"]
mod app;

use app::{App, BINARY, app_settings, cpu_time_of};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("uc_access bench: run it with scripts/bench (cargo bench passes --bench)");
        return;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let options = Options {
        out: value("--out").map(PathBuf::from),
        python: value("--python"),
        only: value("--only"),
        quick: args.iter().any(|a| a == "--quick"),
        levels: value("--levels").map(|v| parse_levels(&v)),
        delays_ms: value("--delays").map_or_else(
            || vec![0, 20],
            |v| {
                v.split(',')
                    .map(|d| d.parse().expect("--delays takes milliseconds, e.g. 0,20"))
                    .collect()
            },
        ),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(options));
}

#[derive(Debug, Clone)]
struct Options {
    out: Option<PathBuf>,
    python: Option<String>,
    only: Option<String>,
    quick: bool,
    /// `--levels 1:2000,16:1000`: concurrency and callbacks per level, instead of the standard ones (to
    /// profile one level; such a run's figures are not the document's).
    levels: Option<Vec<(usize, usize)>>,
    /// `--delays 0`: the stand-in's simulated latencies for the throughput part (default 0 and 20 ms).
    delays_ms: Vec<u64>,
}

fn parse_levels(text: &str) -> Vec<(usize, usize)> {
    text.split(',')
        .map(|level| {
            let (c, n) = level
                .split_once(':')
                .expect("--levels takes CONCURRENCY:CALLBACKS[,...]");
            (
                c.parse().expect("a concurrency"),
                n.parse().expect("a number of callbacks"),
            )
        })
        .collect()
}

impl Options {
    fn wants(&self, section: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|s| s == section))
    }
}

async fn run(options: Options) {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uc-access-bench");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let mut results = serde_json::Map::new();
    results.insert("binary".into(), json!(BINARY));
    let issuer = Issuer::start(&scratch).await;
    // A fixed CPU-bound workload, timed before and after the parts: the host's speed during this run, to
    // compare runs by (the cores are shared with other tenants' work).
    results.insert("hostControlBeforeMs".into(), json!(host_control()));
    results.insert("hostLoopbackBeforeMs".into(), json!(host_loopback()));

    if options.wants("startup") {
        let figures = startup(&options, &issuer, &scratch).await;
        results.insert("startup".into(), figures);
    }
    if options.wants("throughput") {
        let figures = throughput(&options, &issuer).await;
        results.insert("throughput".into(), figures);
    }
    if options.wants("blob") {
        let figures = throughput_blob(&options, &issuer).await;
        results.insert("throughputBlob".into(), figures);
    }
    if options.wants("sweep") {
        let figures = sweep(&options, &issuer, &scratch).await;
        results.insert("sweep".into(), figures);
    }
    if options.wants("blob-sweep") {
        let figures = sweep_blob(&options, &issuer, &scratch).await;
        results.insert("sweepBlob".into(), figures);
    }
    if options.wants("footprint") {
        results.insert(
            "footprint".into(),
            json!({ "binaryBytes": std::fs::metadata(BINARY).unwrap().len() }),
        );
    }
    results.insert("hostControlAfterMs".into(), json!(host_control()));
    results.insert("hostLoopbackAfterMs".into(), json!(host_loopback()));
    let text = serde_json::to_string_pretty(&Value::Object(results)).unwrap();
    println!("{text}");
    if let Some(out) = &options.out {
        std::fs::write(out, text).unwrap();
    }
}

/// The median of 5 timings of SHA-256 over the same 128 MiB (one thread), in milliseconds.
fn host_control() -> f64 {
    let block = "uc-access host control ".repeat(128 * 1024 * 1024 / 24);
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(uc_access::ledger::hash_hex(&[std::hint::black_box(&block)]));
            ms(started.elapsed())
        })
        .collect();
    round(median(&mut times), 1)
}

/// The kernel's share of the host's speed, which the CPU control above does not show: 10,000 one-byte
/// round trips over loopback TCP between two threads (what the app's exchanges with the stand-in cost the
/// kernel), median of 3, in milliseconds.
fn host_loopback() -> f64 {
    use std::io::{Read, Write};
    let mut times: Vec<f64> = (0..3)
        .map(|_| {
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let addr = listener.local_addr().unwrap();
            let echo = std::thread::spawn(move || {
                let (mut peer, _) = listener.accept().unwrap();
                peer.set_nodelay(true).unwrap();
                let mut byte = [0_u8; 1];
                while peer.read_exact(&mut byte).is_ok() {
                    peer.write_all(&byte).unwrap();
                }
            });
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_nodelay(true).unwrap();
            let mut byte = [7_u8; 1];
            let started = Instant::now();
            for _ in 0..10_000 {
                stream.write_all(&byte).unwrap();
                stream.read_exact(&mut byte).unwrap();
            }
            let took = ms(started.elapsed());
            drop(stream);
            echo.join().unwrap();
            took
        })
        .collect();
    round(median(&mut times), 1)
}

// ---------------------------------------------------------------------------------------------------
// The pieces: a token issuer served from here, the stand-in, the binary as a child process.

/// The local issuer, served from this process so the app (a separate process) can fetch its keys.
struct Issuer {
    _issuer: LocalIssuer,
    base: url::Url,
    token: String,
}

impl Issuer {
    async fn start(scratch: &Path) -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let base = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let issuer = LocalIssuer::load_or_create(&scratch.join("issuer"), &base).unwrap();
        let router = axum::Router::new().nest(local_issuer::MOUNT_PATH, issuer.router());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let token = issuer
            .mint(
                &"purview".parse::<LocalCaller>().unwrap(),
                LOCAL_AUDIENCE,
                Duration::from_secs(3 * 3600),
            )
            .unwrap();
        Self {
            _issuer: issuer,
            base,
            token,
        }
    }
}

async fn start_standin(seed: Seed) -> RunningStandIn {
    StandIn::builder()
        .seed(seed)
        .start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap()
}

fn app_env(issuer: &Issuer, standin: &str, ledger: &Path) -> Vec<(String, String)> {
    let mut env = app_settings(&issuer.base, standin);
    env.extend([
        ("LEDGER_BACKEND".to_owned(), "local".to_owned()),
        (
            "LEDGER_DIR".to_owned(),
            ledger.to_string_lossy().into_owned(),
        ),
    ]);
    env
}

/// Starts the app with `env`, plus what the harness passes through from its own environment:
/// `UC_ACCESS_BENCH_APP_LOG=<file>` keeps the app's log (with `RUST_LOG`), and the glibc allocator
/// variables (allocator experiments).
fn spawn_app(env: &[(String, String)]) -> App {
    let mut env = env.to_vec();
    env.extend(
        [
            "RUST_LOG",
            "MALLOC_ARENA_MAX",
            "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_TRIM_THRESHOLD_",
        ]
        .into_iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_owned(), v))),
    );
    let stdout = match std::env::var_os("UC_ACCESS_BENCH_APP_LOG") {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    App::spawn(&env, stdout)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .pool_max_idle_per_host(256)
        .build()
        .unwrap()
}

fn callback_body(requester: &str, table: &str) -> String {
    let mut parts = table.split('.');
    let (c, s, t) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    json!({
        "requestorId": requester,
        "recipientId": "",
        "assetQualifiedName": format!("databricks://{}/catalogs/{c}/schemas/{s}/tables/{t}", demo::METASTORE_ID),
        "approvalOutcome": "Approved",
        "approvers": demo::CAROL_ENTRA_ID,
        "duration": "P7D",
    })
    .to_string()
}

async fn callback(client: &reqwest::Client, app: &str, token: &str, body: String) -> (u16, Value) {
    let r = client
        .post(format!("{app}/api/purview-callback"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn median(values: &mut [f64]) -> f64 {
    percentile(values, 50.0)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10_f64.powi(places);
    (x * f).round() / f
}

fn is_token(r: &RecordedRequest) -> bool {
    r.path.starts_with("/oidc/") && r.method == "POST"
}

fn is_scim(r: &RecordedRequest) -> bool {
    r.path.contains("/scim/v2/")
}

// ---------------------------------------------------------------------------------------------------
// 1 and 3. Start-up, the Python route, calls per approval.

async fn startup(options: &Options, issuer: &Issuer, scratch: &Path) -> Value {
    let runs = if options.quick { 5 } else { 25 };
    let python_runs = if options.quick { 2 } else { 7 };
    let standin = start_standin(Seed::demo()).await;
    let state = standin.state().clone();
    let client = client();
    let (mut ready, mut first_grant, mut cold_calls, mut warm_calls, mut idle_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut cold_breakdown = Value::Null;
    let mut warm_breakdown = Value::Null;
    let mut scim_repeat = 0;
    for run in 0..runs {
        state.reset();
        let ledger = scratch.join(format!("startup-ledger-{run}"));
        let app = spawn_app(&app_env(issuer, standin.base_url(), &ledger));
        ready.push(ms(app.ready(&client).await));
        idle_rss.push(app.memory_kb("VmRSS") as f64);
        // Alice holds nothing directly on sales.reporting: a cold approval adds all three privileges.
        let (status, answer) = callback(
            &client,
            &app.base,
            &issuer.token,
            callback_body(demo::ALICE_ENTRA_ID, "sales.reporting.customers"),
        )
        .await;
        first_grant.push(ms(app.started.elapsed()));
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "granted", "{answer}");
        let cold = state.requests();
        cold_calls.push(cold.len() as f64);
        // Warm: the same requester, another table of the same schema (token and principal cached).
        let (status, answer) = callback(
            &client,
            &app.base,
            &issuer.token,
            callback_body(demo::ALICE_ENTRA_ID, "sales.reporting.orders"),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "granted", "{answer}");
        let all = state.requests();
        let warm = &all[cold.len()..];
        warm_calls.push(warm.len() as f64);
        scim_repeat = all.iter().filter(|r| is_scim(r)).count();
        if run == 0 {
            cold_breakdown = breakdown(&cold);
            warm_breakdown = breakdown(warm);
        }
        drop(app);
        let _ = std::fs::remove_dir_all(&ledger);
    }

    // The same cold approval with one token for every host (`pat` here; in Azure the managed identity's
    // Entra token, which is fetched from Entra ID, not from Databricks).
    state.reset();
    let ledger = scratch.join("startup-ledger-shared-token");
    let mut env = app_env(issuer, standin.base_url(), &ledger);
    env.retain(|(k, _)| !k.starts_with("DATABRICKS_CLIENT") && k != "DATABRICKS_AUTH_TYPE");
    env.push(("DATABRICKS_AUTH_TYPE".into(), "pat".into()));
    env.push(("DATABRICKS_TOKEN".into(), demo::PRODUCT_TOKEN.into()));
    let app = spawn_app(&env);
    app.ready(&client).await;
    let (status, answer) = callback(
        &client,
        &app.base,
        &issuer.token,
        callback_body(demo::ALICE_ENTRA_ID, "sales.reporting.customers"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let shared_token_cold = breakdown(&state.requests());
    let shared_token_cold_total = state.requests().len();
    drop(app);

    // Ready in the shape the app has in Azure: Blob ledger and Databricks both through the managed
    // identity, the platform's own root certificates (no SSL_CERT_FILE). Start-up builds every client and
    // credential but calls nothing, so the hosts named here are never contacted.
    let mut azure_ready = Vec::new();
    for _ in 0..runs {
        let mut env = app_settings(&issuer.base, standin.base_url());
        env.retain(|(k, _)| !k.starts_with("DATABRICKS_CLIENT") && k != "DATABRICKS_AUTH_TYPE");
        env.extend(
            [
                ("DATABRICKS_AUTH_TYPE", "azure-msi"),
                ("LEDGER_BACKEND", "blob"),
                (
                    "LEDGER_BLOB_ACCOUNT_URL",
                    "https://ucaccessbench.blob.core.windows.net",
                ),
                ("LEDGER_CONTAINER", "uc-access-ledger"),
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"),
                ("IDENTITY_HEADER", "not-used-before-the-first-call"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let app = spawn_app(&env);
        azure_ready.push(ms(app.ready(&client).await));
    }

    // The Python route: the same grant with the official SDK, from process start to "granted".
    let mut python = Vec::new();
    let mut python_error = None;
    if let Some(py) = &options.python {
        for _ in 0..python_runs {
            state.reset();
            match python_route(py, standin.base_url()).await {
                Ok(d) => python.push(ms(d)),
                Err(e) => {
                    python_error = Some(e);
                    break;
                }
            }
        }
    } else {
        python_error = Some("no --python interpreter given".to_owned());
    }
    let ready_median = median(&mut ready.clone());
    let grant_median = median(&mut first_grant.clone());
    let python_median = median(&mut python.clone());
    json!({
        "runs": runs,
        "readyMs": { "median": round(ready_median, 2), "min": round(ready.iter().cloned().fold(f64::INFINITY, f64::min), 2), "p90": round(percentile(&mut ready, 90.0), 2) },
        "firstGrantMs": { "median": round(grant_median, 2), "p90": round(percentile(&mut first_grant, 90.0), 2) },
        "readyAzureShapeMs": { "median": round(median(&mut azure_ready.clone()), 2), "p90": round(percentile(&mut azure_ready, 90.0), 2) },
        "python": {
            "runs": python.len(),
            "firstGrantMs": { "median": round(python_median, 1), "min": round(python.iter().cloned().fold(f64::INFINITY, f64::min), 1) },
            "error": python_error,
        },
        "ratio": round(python_median / grant_median, 1),
        "calls": {
            "coldMedian": median(&mut cold_calls),
            "warmMedian": median(&mut warm_calls),
            "cold": cold_breakdown,
            "warm": warm_breakdown,
            "scimForTwoApprovalsOfOneRequester": scim_repeat,
            "coldSharedToken": shared_token_cold,
            "coldSharedTokenTotal": shared_token_cold_total,
        },
        "idleRssKb": median(&mut idle_rss),
    })
}

/// Requests by kind, for the calls table.
fn breakdown(requests: &[RecordedRequest]) -> Value {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for r in requests {
        let kind = if is_token(r) {
            "token".to_owned()
        } else if is_scim(r) {
            "SCIM lookup".to_owned()
        } else if r.path.contains("/effective-permissions/") {
            "effective-permissions read".to_owned()
        } else if r.method == "GET" && r.path.contains("/permissions/") {
            "direct permissions read".to_owned()
        } else if r.method == "PATCH" {
            "PATCH".to_owned()
        } else {
            format!("{} {}", r.method, r.path)
        };
        *kinds.entry(kind).or_default() += 1;
    }
    json!(kinds)
}

async fn python_route(python: &str, standin: &str) -> Result<Duration, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/python_route.py");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .env("STANDIN_URL", standin.trim_end_matches('/'))
        .env("STANDIN_ACCOUNT_ID", demo::ACCOUNT_ID)
        .env("STANDIN_CLIENT_ID", demo::PRODUCT_CLIENT_ID)
        .env("STANDIN_CLIENT_SECRET", demo::PRODUCT_CLIENT_SECRET)
        .env("REQUESTER_ID", demo::ALICE_ENTRA_ID)
        .env("TABLE", "sales.reporting.customers")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {python}: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut granted = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "granted" {
            granted = Some(started.elapsed());
        }
    }
    let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
    match granted {
        Some(d) if output.status.success() => Ok(d),
        _ => Err(format!(
            "the Python route failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
    }
}

// ---------------------------------------------------------------------------------------------------
// 2. Throughput and the handler's own share.

const BENCH_USERS: usize = 1000;

fn bench_user(i: usize) -> (String, String) {
    (
        format!("u{i:04}@bench.example"),
        uuid::Uuid::from_u128(0xbe4c_0000_0000_4000_8000_0000_0000_0000 | i as u128).to_string(),
    )
}

fn bench_table(i: usize) -> String {
    format!("bench.s{}.t{}", i / 10, i % 10)
}

/// The demo account plus catalog `bench` (10 schemas of 10 tables, the product holding MANAGE on it) and
/// 1,000 active users.
fn throughput_seed() -> Seed {
    let mut seed = Seed::demo();
    let owner = demo::CAROL.to_owned();
    seed.securables.push(SeedSecurable {
        kind: SecurableKind::Catalog,
        full_name: "bench".into(),
        owner: owner.clone(),
    });
    for s in 0..10 {
        seed.securables.push(SeedSecurable {
            kind: SecurableKind::Schema,
            full_name: format!("bench.s{s}"),
            owner: owner.clone(),
        });
    }
    for t in 0..100 {
        seed.securables.push(SeedSecurable {
            kind: SecurableKind::Table,
            full_name: bench_table(t),
            owner: owner.clone(),
        });
    }
    seed.grants.push(SeedGrant {
        securable_type: "catalog".into(),
        full_name: "bench".into(),
        principal: demo::PRODUCT_CLIENT_ID.into(),
        privileges: vec!["MANAGE".into()],
    });
    for i in 0..BENCH_USERS {
        let (name, ext) = bench_user(i);
        seed.users.push(SeedUser {
            id: format!("{}", 7_000_000 + i),
            user_name: name.clone(),
            display_name: name,
            active: true,
            external_id: Some(ext),
        });
    }
    seed
}

/// The `n`-th (requester, table) pair: every pair distinct, consecutive requests by different users.
fn pair(n: usize) -> (usize, usize) {
    let user = n % BENCH_USERS;
    let round = n / BENCH_USERS;
    (user, (round + user * 7) % 100)
}

fn throughput_levels(options: &Options) -> Vec<(usize, usize)> {
    if let Some(levels) = &options.levels {
        levels.clone()
    } else if options.quick {
        vec![(1, 30), (16, 200), (128, 500)]
    } else {
        vec![(1, 150), (16, 1000), (128, 3000)]
    }
}

async fn throughput(options: &Options, issuer: &Issuer) -> Value {
    let standin = start_standin(throughput_seed()).await;
    let state = standin.state().clone();
    let mut modes = serde_json::Map::new();
    for &latency_ms in &options.delays_ms {
        state.reset();
        state.set_delay((latency_ms > 0).then(|| Duration::from_millis(latency_ms)));
        // The ledger folder on tmpfs: a flush per record on this disk (~3.8 ms, BENCHMARKS.md) would
        // be measured as the handler's time, where production writes to Blob Storage over the network.
        let ledger =
            PathBuf::from("/dev/shm").join(format!("uc-access-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&ledger);
        let app = spawn_app(&app_env(issuer, standin.base_url(), &ledger));
        let run = run_levels(&app, issuer, &state, &throughput_levels(options), None).await;
        modes.insert(format!("{latency_ms}ms"), run);
        drop(app);
        let _ = std::fs::remove_dir_all(&ledger);
    }
    state.set_delay(None);
    Value::Object(modes)
}

/// The throughput levels again with the ledger the app has in Azure: Blob Storage (Azurite, over HTTPS),
/// reached through the SDK's managed identity credential and an App Service identity endpoint served here.
/// The stand-in answers at once. Azurite runs on the same two cores; its CPU is reported beside the app's.
async fn throughput_blob(options: &Options, issuer: &Issuer) -> Value {
    let azurite = Azurite::start();
    let identity = IdentityEndpoint::start(Minting::Storage).await;
    let standin = start_standin(throughput_seed()).await;
    let state = standin.state().clone();
    let mut env = app_settings(&issuer.base, standin.base_url());
    env.extend(azurite.app_settings("uc-access-bench"));
    env.extend(identity.app_settings());
    let app = spawn_app(&env);
    let mut run = run_levels(
        &app,
        issuer,
        &state,
        &throughput_levels(options),
        Some(azurite.pid()),
    )
    .await;
    run["storageTokenRequests"] = json!(identity.requests().len());
    run
}

/// Warms the app up, then sends each level's callbacks from that many concurrent clients and measures
/// them (see BENCHMARKS.md, Method 2). `ledger_server`: a process whose CPU is reported per callback too.
async fn run_levels(
    app: &App,
    issuer: &Issuer,
    state: &StandInState,
    levels: &[(usize, usize)],
    ledger_server: Option<u32>,
) -> Value {
    let client = client();
    app.ready(&client).await;
    let idle_kb = app.memory_kb("VmRSS");
    let next = Arc::new(AtomicUsize::new(0));
    // Warm-up (the issuer's keys, the Databricks token, the storage token), not counted.
    for _ in 0..5 {
        let (u, t) = pair(next.fetch_add(1, Ordering::SeqCst));
        let (status, answer) = callback(
            &client,
            &app.base,
            &issuer.token,
            callback_body(&bench_user(u).1, &bench_table(t)),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
    let mut levels_out = Vec::new();
    let tokens_before = state.token_issuances();
    let run_started = Instant::now();
    let mut approvals = 0;
    for &(concurrency, count) in levels {
        state.clear_requests();
        let cpu_before = app.cpu_time();
        let harness_before = cpu_time_of("self");
        let server_before = ledger_server.map(|pid| cpu_time_of(&pid.to_string()));
        let started = Instant::now();
        let end = next.load(Ordering::SeqCst) + count;
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, base, token, next) = (
                client.clone(),
                app.base.clone(),
                issuer.token.clone(),
                next.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= end {
                        break;
                    }
                    let (u, t) = pair(n);
                    let (name, ext) = bench_user(u);
                    let sent = Instant::now();
                    let (status, _) =
                        callback(&client, &base, &token, callback_body(&ext, &bench_table(t)))
                            .await;
                    done.push((sent, Instant::now(), name, ext, status));
                }
                done
            }));
        }
        let mut done = Vec::new();
        for task in tasks {
            done.extend(task.await.unwrap());
        }
        let wall = started.elapsed();
        let app_cpu = app.cpu_time().saturating_sub(cpu_before);
        let harness_cpu = cpu_time_of("self").saturating_sub(harness_before);
        let server_cpu = ledger_server
            .zip(server_before)
            .map(|(pid, before)| cpu_time_of(&pid.to_string()).saturating_sub(before));
        approvals += done.len();
        let recorded = state.requests();
        let (mut totals, mut own, mut waits) = (Vec::new(), Vec::new(), Vec::new());
        let by_user = attribute(&recorded);
        let mut errors = 0;
        for (sent, answered, name, ext, status) in &done {
            if *status != 200 {
                errors += 1;
            }
            let total = answered.duration_since(*sent);
            let waited = waiting(&by_user, name, ext, *sent, *answered);
            totals.push(ms(total));
            waits.push(ms(waited));
            own.push(ms(total.saturating_sub(waited)));
        }
        let calls = recorded.len() as f64 / done.len() as f64;
        let mut level = json!({
            "concurrency": concurrency,
            "requests": done.len(),
            "errors": errors,
            "perSecond": round(done.len() as f64 / wall.as_secs_f64(), 1),
            "totalMs": { "p50": round(percentile(&mut totals.clone(), 50.0), 2), "p99": round(percentile(&mut totals, 99.0), 2) },
            "standInMs": { "p50": round(percentile(&mut waits.clone(), 50.0), 2), "p99": round(percentile(&mut waits, 99.0), 2) },
            "ownMs": { "p50": round(percentile(&mut own.clone(), 50.0), 3), "p99": round(percentile(&mut own, 99.0), 3) },
            "databricksCallsPerApproval": round(calls, 2),
            "appCpuMsPerCallback": round(ms(app_cpu) / done.len() as f64, 3),
            // The load generator and the stand-in, in this process on the same cores.
            "harnessCpuMsPerCallback": round(ms(harness_cpu) / done.len() as f64, 3),
        });
        if let Some(cpu) = server_cpu {
            level["ledgerServerCpuMsPerCallback"] = json!(round(ms(cpu) / done.len() as f64, 3));
        }
        levels_out.push(level);
    }
    let run_secs = run_started.elapsed().as_secs_f64();
    let all_scim = state.requests().iter().filter(|r| is_scim(r)).count();
    json!({
        "levels": levels_out,
        "idleRssKb": idle_kb,
        "peakRssKb": app.memory_kb("VmHWM"),
        "tokenFetches": state.token_issuances() - tokens_before,
        "approvals": approvals,
        "seconds": round(run_secs, 1),
        "scimLastLevel": all_scim,
    })
}

/// The stand-in's requests per bench user (matched by user name or external id in query or body).
fn attribute(recorded: &[RecordedRequest]) -> HashMap<String, Vec<(Instant, Duration)>> {
    let mut by: HashMap<String, Vec<(Instant, Duration)>> = HashMap::new();
    for r in recorded {
        let query = r
            .query
            .as_deref()
            .map(|q| {
                percent_encoding::percent_decode_str(q)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        let path = percent_encoding::percent_decode_str(&r.path)
            .decode_utf8_lossy()
            .into_owned();
        for text in [&query, &r.body, &path] {
            let mut found = false;
            // Names look like u0042@bench.example; external ids start with be4c0000-.
            for token in text.split(['"', '=', ' ', '&']) {
                if (token.starts_with('u') && token.ends_with("@bench.example"))
                    || token.starts_with("be4c0000-")
                {
                    by.entry(token.to_owned())
                        .or_default()
                        .push((r.received, r.elapsed));
                    found = true;
                    break;
                }
            }
            if found {
                break;
            }
        }
    }
    by
}

/// Time within [from, to] during which at least one stand-in request of this user was being answered.
fn waiting(
    by: &HashMap<String, Vec<(Instant, Duration)>>,
    name: &str,
    ext: &str,
    from: Instant,
    to: Instant,
) -> Duration {
    let mut spans: Vec<(Instant, Instant)> = [name, ext]
        .iter()
        .filter_map(|k| by.get(*k))
        .flatten()
        .filter(|(at, _)| *at >= from && *at <= to)
        .map(|(at, d)| (*at, (*at + *d).min(to)))
        .collect();
    spans.sort();
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (a, b) in spans {
        match current {
            Some((s, e)) if a <= e => current = Some((s, e.max(b))),
            Some((s, e)) => {
                total += e - s;
                current = Some((a, b));
            }
            None => current = Some((a, b)),
        }
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    total
}

// ---------------------------------------------------------------------------------------------------
// 4. The revoke sweep at scale.

const SWEEP_GRANTS: usize = 100_000;
const SWEEP_PRINCIPALS: usize = 10_000;
const SWEEP_TABLES: usize = 1_000;
/// Principals (of 10 grants each) in the Blob sweep: 4,000 blobs, within what Azurite's tag queries see.
const BLOB_SWEEP_PRINCIPALS: usize = 200;

fn sweep_principal(p: usize) -> String {
    format!("p{p:05}@sweep.example")
}

/// Table `t` of 1,000: 10 catalogs of 10 schemas of 10 tables.
fn sweep_table(t: usize) -> (String, String, String) {
    let (c, s, x) = (t / 100, (t / 10) % 10, t % 10);
    (
        format!("c{c}"),
        format!("c{c}.s{s}"),
        format!("c{c}.s{s}.t{x}"),
    )
}

/// Grant `k` (0..10) of principal `p`: ten distinct tables per principal, 100 grants per table.
fn sweep_grant_table(p: usize, k: usize) -> usize {
    (p * 7 + k * 101) % SWEEP_TABLES
}

/// The sweep's world: the stand-in holding every privilege the seeded records say uc-access added, and
/// the securables those records touched.
struct SweepWorld {
    standin: RunningStandIn,
    touched: BTreeSet<(String, String)>,
    grants: usize,
    principals: usize,
}

/// Seeds `principals` principals with `per_principal` active, expired grants each (on distinct tables)
/// into the stand-in and into `ledger`, `in_flight` writes at a time. Each record's `added` holds exactly
/// what a real first grant would have added (`USE_CATALOG`/`USE_SCHEMA` only on the principal's first
/// grant under that catalog/schema).
async fn sweep_world(
    principals: usize,
    per_principal: usize,
    ledger: Arc<dyn LedgerStore>,
    in_flight: usize,
) -> SweepWorld {
    // The stand-in: the tables, the principals, and every privilege the ledger says uc-access added.
    let mut seed = Seed::demo();
    let owner = demo::CAROL.to_owned();
    for c in 0..10 {
        seed.securables.push(SeedSecurable {
            kind: SecurableKind::Catalog,
            full_name: format!("c{c}"),
            owner: owner.clone(),
        });
        seed.grants.push(SeedGrant {
            securable_type: "catalog".into(),
            full_name: format!("c{c}"),
            principal: demo::PRODUCT_CLIENT_ID.into(),
            privileges: vec!["MANAGE".into()],
        });
        for s in 0..10 {
            seed.securables.push(SeedSecurable {
                kind: SecurableKind::Schema,
                full_name: format!("c{c}.s{s}"),
                owner: owner.clone(),
            });
            for t in 0..10 {
                seed.securables.push(SeedSecurable {
                    kind: SecurableKind::Table,
                    full_name: format!("c{c}.s{s}.t{t}"),
                    owner: owner.clone(),
                });
            }
        }
    }
    for p in 0..principals {
        let name = sweep_principal(p);
        seed.users.push(SeedUser {
            id: format!("{}", 8_000_000 + p),
            user_name: name.clone(),
            display_name: name,
            active: true,
            external_id: Some(sweep_requester(p).to_string()),
        });
    }
    let mut touched: BTreeSet<(String, String)> = BTreeSet::new();
    let mut records = Vec::with_capacity(principals * per_principal);
    // The stand-in's URL is needed in the records: start it with the seed built below.
    let mut grants: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for p in 0..principals {
        let principal = Principal::user(&sweep_principal(p)).unwrap();
        let mut held: BTreeSet<String> = BTreeSet::new();
        for k in 0..per_principal {
            let (c, s, t) = sweep_table(sweep_grant_table(p, k));
            let mut added = Vec::new();
            for (kind, name, privilege) in [
                ("catalog", &c, Privilege::UseCatalog),
                ("schema", &s, Privilege::UseSchema),
                ("table", &t, Privilege::Select),
            ] {
                if held.insert(name.clone()) {
                    let securable =
                        Securable::parse(SecurableType::parse(kind).unwrap(), name).unwrap();
                    added.push(SecurableChange {
                        securable,
                        privileges: PrivilegeSet::from([privilege]),
                    });
                    grants
                        .entry((
                            kind.to_owned(),
                            name.clone(),
                            principal.uc_name().to_owned(),
                        ))
                        .or_default()
                        .insert(privilege.as_str().to_owned());
                    touched.insert((kind.to_owned(), name.clone()));
                }
            }
            records.push((p, k, principal.clone(), t, added));
        }
    }
    for ((kind, name, principal), privileges) in grants {
        seed.grants.push(SeedGrant {
            securable_type: kind,
            full_name: name,
            principal,
            privileges: privileges.into_iter().collect(),
        });
    }
    let standin = start_standin(seed).await;
    let host = format!("{}/", standin.base_url().trim_end_matches('/'));
    let now = OffsetDateTime::now_utc();
    let requested = now - time::Duration::days(8);
    let grants = records.len();
    futures::stream::iter(records)
        .map(|(p, k, principal, table, added)| {
            let securable = Securable::parse(SecurableType::Table, &table).unwrap();
            let new = NewGrant {
                idempotency_key: IdempotencyKey::parse(&format!("bench:sweep:{p}:{k}")).unwrap(),
                requester: EntraObjectId::parse(&sweep_requester(p).to_string()).unwrap(),
                target: None,
                principal,
                workspace: WorkspaceRef {
                    name: "default".into(),
                    host: host.clone(),
                },
                securable,
                requested_privileges: PrivilegeSet::from([Privilege::Select]),
                duration: GrantDuration::days(7).unwrap(),
                plan: added.clone(),
                approvers: vec![demo::CAROL_ENTRA_ID.into()],
                source: "purview-callback".into(),
                approval_id: None,
            };
            let mut record = GrantRecord::new(new, requested);
            record
                .mark_active(added, requested + time::Duration::seconds(2))
                .unwrap();
            let ledger = Arc::clone(&ledger);
            async move { ledger.create(record).await.map(|_| ()) }
        })
        .buffer_unordered(in_flight)
        .try_collect::<()>()
        .await
        .unwrap();
    SweepWorld {
        standin,
        touched,
        grants,
        principals,
    }
}

fn sweep_requester(p: usize) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x5eee_0000_0000_4000_8000_0000_0000_0000 | p as u128)
}

async fn sweep(options: &Options, issuer: &Issuer, scratch: &Path) -> Value {
    let grants_per_principal = if options.quick {
        1
    } else {
        SWEEP_GRANTS / SWEEP_PRINCIPALS
    };
    // The records, written with the library's own local ledger on tmpfs, then copied to the disk the
    // app's ledger lives on (a flush per record would make seeding alone take minutes).
    let staging = PathBuf::from("/dev/shm").join(format!("uc-access-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let world = sweep_world(
        SWEEP_PRINCIPALS,
        grants_per_principal,
        Arc::new(LocalLedger::new(&staging)),
        256,
    )
    .await;
    let ledger_dir = scratch.join("sweep-ledger");
    let _ = std::fs::remove_dir_all(&ledger_dir);
    std::fs::create_dir_all(&ledger_dir).unwrap();
    for entry in std::fs::read_dir(&staging).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, ledger_dir.join(path.file_name().unwrap())).unwrap();
    }
    let _ = std::fs::remove_dir_all(&staging);
    // An existing ledger's records were written long before the run: flush the copies now, or the
    // sweep's first batch flush would be charged with writing the whole 190 MB seed to disk.
    let synced = Command::new("sync").status();
    assert!(
        synced.as_ref().is_ok_and(|s| s.success()),
        "sync failed: {synced:?}"
    );
    let ledger_bytes: u64 = std::fs::read_dir(&ledger_dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let app = spawn_app(&app_env(issuer, world.standin.base_url(), &ledger_dir));
    let mut figures = run_sweep(&app, &world).await;
    figures["ledgerBytes"] = json!(ledger_bytes);
    figures
}

/// The sweep with the Blob ledger (Azurite over HTTPS, the app on its managed identity): 200 principals
/// with 10 grants each, the same shape as the local sweep at a fiftieth of its size. Azurite cannot go
/// further: its Find Blobs by Tags only ever looks at the first 5,000 blobs of a container by name
/// (BENCHMARKS.md), and each grant is two blobs (record and principal marker). Besides the local
/// sweep's figures: the storage requests the app sent (counted from the Azure SDK's own request log)
/// and Azurite's CPU time.
async fn sweep_blob(options: &Options, issuer: &Issuer, scratch: &Path) -> Value {
    let principals = if options.quick {
        50
    } else {
        BLOB_SWEEP_PRINCIPALS
    };
    let azurite = Azurite::start();
    let container = "uc-access-sweep";
    let seeder = BlobLedger::new(
        &azurite.account_url(),
        container,
        credential::TestCredential::new(),
        BlobLedgerOptions {
            transport: Some(azurite.transport()),
        },
    )
    .unwrap();
    let seeding = Instant::now();
    let world = sweep_world(principals, 10, Arc::new(seeder), 32).await;
    let seeding = seeding.elapsed();
    let identity = IdentityEndpoint::start(Minting::Storage).await;
    let mut env = app_settings(&issuer.base, world.standin.base_url());
    env.extend(azurite.app_settings(container));
    env.extend(identity.app_settings());
    // The SDK logs every request it sends (each try) at debug level under this target.
    env.push((
        "RUST_LOG".to_owned(),
        format!("info,{SDK_REQUEST_LOG}=debug"),
    ));
    let log_path = scratch.join("sweep-blob-app.log");
    let app = App::spawn(&env, Stdio::from(std::fs::File::create(&log_path).unwrap()));
    let azurite_before = cpu_time_of(&azurite.pid().to_string());
    let mut figures = run_sweep(&app, &world).await;
    let azurite_cpu = cpu_time_of(&azurite.pid().to_string()).saturating_sub(azurite_before);
    drop(app);
    assert_eq!(
        figures["report"]["due"].as_u64(),
        Some(world.grants as u64),
        "the timer must find every seeded grant due (Azurite's tag queries see only a container's first 5,000 blobs)"
    );
    let storage = storage_requests(&std::fs::read_to_string(&log_path).unwrap(), &azurite);
    figures["seedingSeconds"] = json!(round(seeding.as_secs_f64(), 1));
    figures["azuriteCpuSeconds"] = json!(round(azurite_cpu.as_secs_f64(), 1));
    figures["storageRequests"] = json!(storage);
    figures["storageTokenRequests"] = json!(identity.requests().len());
    figures
}

/// The storage requests in the app's log, by method and by kind (counted from the SDK's request log,
/// keeping the requests to Azurite, not the identity endpoint's).
fn storage_requests(log: &str, azurite: &Azurite) -> Value {
    let mut by_method: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let requests = azurite.requests_in_log(log);
    for (method, url) in &requests {
        let kind = if url.contains("comp=blobs") {
            "find by tags"
        } else if url.contains("comp=list") {
            "list markers"
        } else if url.contains("/by-principal/") {
            "marker"
        } else if url.contains("/grants/") {
            "record"
        } else {
            "container"
        };
        *by_kind.entry(format!("{kind} {method}")).or_default() += 1;
        *by_method.entry(method.clone()).or_default() += 1;
    }
    json!({ "total": requests.len(), "byMethod": by_method, "byKind": by_kind })
}

/// Invokes the `revoke-expired` timer once, as the host would, with the stand-in admitting 25 requests
/// per second, and measures it (BENCHMARKS.md, Method 4).
async fn run_sweep(app: &App, world: &SweepWorld) -> Value {
    let state = world.standin.state().clone();
    let client = client();
    app.ready(&client).await;
    state.clear_requests();
    state.set_rate_limit(Some(25));
    let cpu_before = app.cpu_time();
    let started = Instant::now();
    let response = client
        .post(format!("{}/revoke-expired", app.base))
        .json(&json!({
            "Data": {"timer": {"Schedule": {"AdjustForDST": false}, "ScheduleStatus": null, "IsPastDue": false}},
            "Metadata": {"sys": {"MethodName": "revoke-expired"}}
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let wall = started.elapsed();
    let peak_kb = app.memory_kb("VmHWM");
    let app_cpu = app.cpu_time().saturating_sub(cpu_before);
    state.set_rate_limit(None);
    let recorded = state.requests();
    // Where the time went: before the first Databricks request (listing and loading the first catalog),
    // after the last one (closing the last batch), and pauses of more than 1.5 s between two requests
    // that are not waits after a 429 (the ledger work between catalogs).
    let first_at = recorded.first().map(|r| r.received.duration_since(started));
    let last_at = recorded
        .last()
        .map(|r| (r.received + r.elapsed).duration_since(started));
    let mut ledger_pauses = Duration::ZERO;
    for pair in recorded.windows(2) {
        let gap = pair[1]
            .received
            .saturating_duration_since(pair[0].received + pair[0].elapsed);
        if pair[0].status != 429 && gap > Duration::from_millis(1500) {
            ledger_pauses += gap;
        }
    }
    let patches_ok = recorded
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == 200)
        .count();
    let patches_sent = recorded.iter().filter(|r| r.method == "PATCH").count();
    let throttled = recorded.iter().filter(|r| r.status == 429).count();
    // Whatever uc-access added must be gone; nothing else may be.
    let dump = state.dump();
    let left: usize = dump["grants"]
        .as_object()
        .map(|by_securable| {
            by_securable
                .values()
                .flat_map(|a| a.as_object().cloned().unwrap_or_default())
                .filter(|(principal, _)| principal.ends_with("@sweep.example"))
                .count()
        })
        .unwrap_or(0);
    let report = &body["ReturnValue"];
    json!({
        "dueGrants": world.grants,
        "principals": world.principals,
        "tables": SWEEP_TABLES,
        "securablesTouched": world.touched.len(),
        "status": status,
        "report": report,
        "seconds": round(wall.as_secs_f64(), 1),
        "patchCalls": patches_ok,
        "patchAttempts": patches_sent,
        "throttled429": throttled,
        "databricksRequests": recorded.len(),
        "peakRssKb": peak_kb,
        "appCpuSeconds": round(app_cpu.as_secs_f64(), 1),
        "assignmentsLeft": left,
        "firstRequestAfterS": first_at.map(|d| round(d.as_secs_f64(), 1)),
        "lastRequestEndS": last_at.map(|d| round(d.as_secs_f64(), 1)),
        "pausesBetweenCatalogsS": round(ledger_pauses.as_secs_f64(), 1),
    })
}
