//! The built binary in its Azure shape: `LEDGER_BACKEND=blob`, authenticated as the app's managed identity
//! through the identity endpoint App Service and Azure Functions provide (the SDK's own
//! `ManagedIdentityCredential`, nothing of ours in between), against Azurite over HTTPS. The other ledger
//! tests build the Blob ledger in-process with a test credential; these start `uc-access serve` as the
//! Functions host does and send it a Purview approval.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uc_access::auth::local_issuer::{
    self, LOCAL_AUDIENCE, LOCAL_PURVIEW_APP_ID, LOCAL_TENANT_ID, LocalCaller, LocalIssuer,
};
use uc_access::ledger::{GrantState, LedgerStore, ListFilter};
use uc_access::standin::{RunningStandIn, Seed, StandIn, demo};

use crate::azurite::Azurite;
use crate::blob::ledger_in;
use crate::credential::{STORAGE_AUDIENCE, TestCredential};
use crate::identity::{IdentityEndpoint, Minting};

/// `uc-access serve` with the given settings (and nothing else from this environment); killed on drop.
struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything one run needs: the caller-token issuer, the Databricks stand-in, the identity endpoint and
/// a fresh ledger container on the shared Azurite.
struct World {
    _dir: tempfile::TempDir,
    issuer: LocalIssuer,
    issuer_base: url::Url,
    standin: RunningStandIn,
    identity: IdentityEndpoint,
    container: String,
    cert_file: std::path::PathBuf,
}

impl World {
    async fn start(minting: Minting) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let issuer_base =
            url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let issuer = LocalIssuer::load_or_create(&dir.path().join("issuer"), &issuer_base).unwrap();
        let router = axum::Router::new().nest(local_issuer::MOUNT_PATH, issuer.router());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let standin = StandIn::builder()
            .seed(Seed::demo())
            .start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        // The app trusts Azurite's self-signed certificate the way any process using the platform's
        // roots can be told to: SSL_CERT_FILE.
        let cert_file = dir.path().join("azurite.pem");
        std::fs::write(&cert_file, &Azurite::shared().cert_pem).unwrap();
        Self {
            _dir: dir,
            issuer,
            issuer_base,
            standin,
            identity: IdentityEndpoint::start(minting).await,
            container: format!("bin{}", uuid::Uuid::new_v4().simple()),
            cert_file,
        }
    }

    fn settings(&self) -> Vec<(String, String)> {
        let standin = self.standin.base_url().trim_end_matches('/').to_owned();
        let mut settings: Vec<(String, String)> = [
            ("AUTH_TENANT_ID", LOCAL_TENANT_ID.to_string()),
            ("AUTH_AUDIENCE", LOCAL_AUDIENCE.to_owned()),
            (
                "AUTH_OPENID_CONFIGURATION_URL",
                local_issuer::openid_configuration_url(&self.issuer_base).to_string(),
            ),
            (
                "PURVIEW_CALLBACK_ALLOWED_APP_IDS",
                LOCAL_PURVIEW_APP_ID.to_string(),
            ),
            ("LEDGER_BACKEND", "blob".to_owned()),
            (
                "LEDGER_BLOB_ACCOUNT_URL",
                Azurite::shared().account_url().to_string(),
            ),
            ("LEDGER_CONTAINER", self.container.clone()),
            (
                "SSL_CERT_FILE",
                self.cert_file.to_string_lossy().into_owned(),
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
        .collect();
        settings.extend(self.identity.app_settings());
        settings
    }

    async fn serve(&self) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_uc-access"))
            .arg("serve")
            .env_clear()
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .envs(self.settings())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let served = Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{}/", served.base)).send().await {
                let body = r.text().await.unwrap();
                assert!(body.contains("\"ready\""), "not configured: {body}");
                return served;
            }
            assert!(Instant::now() < deadline, "the binary never answered GET /");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Purview's approval of Alice's request for `sales.reporting.customers`, approved by Carol.
    async fn approve(&self, served: &Served) -> (u16, Value) {
        let token = self
            .issuer
            .mint(
                &"purview".parse::<LocalCaller>().unwrap(),
                LOCAL_AUDIENCE,
                Duration::from_secs(3600),
            )
            .unwrap();
        let body = json!({
            "requestorId": demo::ALICE_ENTRA_ID,
            "recipientId": "",
            "assetQualifiedName": format!(
                "databricks://{}/catalogs/sales/schemas/reporting/tables/customers",
                demo::METASTORE_ID
            ),
            "approvalOutcome": "Approved",
            "approvers": demo::CAROL_ENTRA_ID,
            "duration": "P7D",
        });
        let r = reqwest::Client::new()
            .post(format!("{}/api/purview-callback", served.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    fn patches(&self) -> usize {
        self.standin
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_records_an_approval_in_blob_storage_as_its_managed_identity() {
    let world = World::start(Minting::Storage).await;
    let served = world.serve().await;

    let (status, answer) = world.approve(&served).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "granted", "{answer}");
    assert!(world.patches() > 0, "Unity Catalog was not changed");

    // The record is in the container the settings name, read back with an independent client.
    let ledger = ledger_in(&world.container, TestCredential::new());
    let records = ledger.list(&ListFilter::default()).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0].record;
    assert_eq!(record.id.to_string(), answer["grantId"].as_str().unwrap());
    assert_eq!(record.state, GrantState::Active);
    assert_eq!(
        record.securable.to_string(),
        "table sales.reporting.customers"
    );

    // The token came from the identity endpoint, asked the way App Service expects, once: the SDK
    // keeps it for the second and later requests.
    let asked = world.identity.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let asked = &asked[0];
    assert_eq!(asked.resource.as_deref(), Some(STORAGE_AUDIENCE));
    assert_eq!(asked.api_version.as_deref(), Some("2019-08-01"));
    assert_eq!(
        asked.secret.as_deref(),
        Some(world.identity.secret.as_str())
    );
    assert_eq!(asked.client_id, None, "a system-assigned identity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_storage_role_the_approval_is_refused_before_unity_catalog_is_touched() {
    // Azure Storage answers 403 to an identity without a data role; Azurite does the same to a token
    // for another audience.
    let world = World::start(Minting::WrongAudience).await;
    let served = world.serve().await;

    let (status, answer) = world.approve(&served).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"], "ledger_forbidden", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("Storage Blob Data"),
        "{answer}"
    );
    assert_eq!(world.patches(), 0, "Unity Catalog was changed");
    let ledger = ledger_in(&world.container, TestCredential::new());
    let records = ledger
        .list(&ListFilter::default())
        .await
        .unwrap_or_default();
    assert!(records.is_empty(), "{records:?}");
    assert!(!world.identity.requests().is_empty());
}
