//! Azurite (the Blob Storage emulator) started by the tests themselves over HTTPS with OAuth, so the
//! Blob ledger runs the same bearer-token path as in Azure. One server per test binary; each test
//! uses its own container.

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};

/// The target under which the Azure SDK logs each HTTP request it sends (`==> Request: url: …, method:
/// …`); an app started with `RUST_LOG=info,<this>=debug` shows every storage request in its log.
#[allow(dead_code)]
pub const SDK_REQUEST_LOG: &str = "typespec_client_core::http::policies::logging";

/// How the project installs Azurite (npm `azurite`, pinned in package.json).
const HOW_TO_INSTALL: &str =
    "run ./scripts/test (it installs the npm test tools from package.json and puts them on PATH)";

/// A running Azurite blob server; killed on drop (and by a watchdog if the test binary dies first,
/// since a static is never dropped).
#[derive(Debug)]
pub struct Azurite {
    child: Child,
    watchdog: Option<Child>,
    pub port: u16,
    pub cert_pem: String,
    /// `cert_pem` as a file (Azurite serves it; a separate process can be told to trust it).
    cert_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(watchdog) = &mut self.watchdog {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

impl Azurite {
    /// The shared server of this test binary, started on first use.
    pub fn shared() -> &'static Azurite {
        static SHARED: OnceLock<Azurite> = OnceLock::new();
        SHARED.get_or_init(Azurite::start)
    }

    /// `https://127.0.0.1:<port>/devstoreaccount1`: no trailing slash (a `//` gets an empty 400).
    pub fn account_url(&self) -> url::Url {
        url::Url::parse(&format!("https://127.0.0.1:{}/devstoreaccount1", self.port))
            .expect("a valid URL")
    }

    /// The settings that make a separately started app keep its ledger in `container` here: the Blob
    /// backend at this account, trusting this server's certificate through `SSL_CERT_FILE` (read by
    /// the platform verifier's native roots) as any process using the platform's roots can be told to.
    /// Its credential is the caller's to add (the identity endpoint's settings).
    pub fn app_settings(&self, container: &str) -> Vec<(String, String)> {
        [
            ("LEDGER_BACKEND", "blob".to_owned()),
            ("LEDGER_BLOB_ACCOUNT_URL", self.account_url().to_string()),
            ("LEDGER_CONTAINER", container.to_owned()),
            (
                "SSL_CERT_FILE",
                self.cert_path.to_string_lossy().into_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// An HTTP client that trusts this server's certificate (and nothing else), with no decompression
    /// and no redirects (the storage SDK expects raw bodies).
    pub fn http_client(&self) -> reqwest::Client {
        let cert = reqwest::Certificate::from_pem(self.cert_pem.as_bytes())
            .expect("the test certificate parses");
        reqwest::Client::builder()
            .tls_certs_only([cert])
            .no_gzip()
            .no_deflate()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client")
    }

    /// [`Azurite::http_client`] as the Azure SDK's transport.
    pub fn transport(&self) -> azure_core::http::Transport {
        azure_core::http::Transport::new(std::sync::Arc::new(self.http_client()))
    }

    /// The requests an app sent to this server, in order, as its JSON log shows them: the Azure SDK logs
    /// each request it sends (each try) at debug level under [`SDK_REQUEST_LOG`]. Each is the method and
    /// the URL after the account (`/<container>/<blob>?<query>`, slashes in blob names decoded).
    #[allow(dead_code)]
    pub fn requests_in_log(&self, log: &str) -> Vec<(String, String)> {
        let prefix = format!("==> Request: url: {}", self.account_url());
        log.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|entry| {
                // The app's JSON log puts an event's message at the top level.
                let message = entry["message"].as_str()?;
                let (url, rest) = message.strip_prefix(&prefix)?.split_once(", method: ")?;
                let method = rest.split(',').next()?;
                Some((method.to_owned(), url.replace("%2F", "/")))
            })
            .collect()
    }

    /// The server process's id (the benchmarks read its CPU time; the tests do not use it).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start() -> Azurite {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let main_js = root.join("node_modules/azurite/dist/src/blob/main.js");
        let node = find_on_path("node").unwrap_or_else(|| {
            panic!("node is not installed, so Azurite cannot run the Blob ledger tests: {HOW_TO_INSTALL}")
        });
        assert!(
            main_js.is_file(),
            "Azurite is not installed ({} is missing): {HOW_TO_INSTALL}",
            main_js.display()
        );

        let dir = tempfile::tempdir().expect("a temporary folder");
        let (cert_pem, key_pem) = self_signed_localhost();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, &cert_pem).expect("write the test certificate");
        std::fs::write(&key, key_pem).expect("write the test key");

        let port = free_port();
        // The server process itself (not npx), so that killing this PID stops it.
        // `--disableTelemetry` also makes it exit promptly on SIGTERM.
        let mut child = Command::new(node)
            .arg(&main_js)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .args([
                "--oauth",
                "basic",
                "--disableTelemetry",
                "--inMemoryPersistence",
                "--silent",
            ])
            // In-memory persistence writes nothing, but run in the temporary folder in case it does.
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Azurite: {e}; {HOW_TO_INSTALL}"));
        let watchdog = spawn_watchdog(child.id());

        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = err.read_to_string(&mut stderr);
                }
                panic!("Azurite exited with {status} before listening: {stderr}");
            }
            assert!(
                Instant::now() < deadline,
                "Azurite did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Azurite {
            child,
            watchdog,
            port,
            cert_pem,
            cert_path: cert,
            _dir: dir,
        }
    }
}

/// Kills `pid` once this test process is gone: statics are never dropped, so the shared server
/// would otherwise outlive the test binary.
fn spawn_watchdog(pid: u32) -> Option<Child> {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill {pid} 2>/dev/null",
        parent = std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// A certificate for `127.0.0.1` and `localhost`, `CA:FALSE`, server authentication only: rustls
/// refuses a CA certificate presented as a server's.
fn self_signed_localhost() -> (String, String) {
    let key = KeyPair::generate().expect("a key pair");
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("valid names");
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key).expect("a self-signed certificate");
    (cert.pem(), key.serialize_pem())
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
