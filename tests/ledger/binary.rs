//! The built binary in its Azure shape: `LEDGER_BACKEND=blob`, authenticated as the app's managed identity
//! through the identity endpoint App Service and Azure Functions provide (the SDK's own
//! `ManagedIdentityCredential`, nothing of ours in between), against Azurite over HTTPS. The other ledger
//! tests build the Blob ledger in-process with a test credential; these start `uc-access serve` as the
//! Functions host does and send it a Purview approval.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use uc_access::ledger::{GrantState, LedgerStore, ListFilter};
use uc_access_dev::local_issuer::{self, LOCAL_AUDIENCE, LocalCaller, LocalIssuer};
use uc_access_standin::{RunningStandIn, Seed, StandIn, demo};

use crate::app::{App, app_settings};
use crate::azurite::{Azurite, SDK_REQUEST_LOG};
use crate::blob::ledger_in;
use crate::credential::{STORAGE_AUDIENCE, TestCredential};
use crate::identity::{IdentityEndpoint, Minting};

/// Everything one run needs: the caller-token issuer, the Databricks stand-in, the identity endpoint and
/// a fresh ledger container on the shared Azurite.
struct World {
    dir: tempfile::TempDir,
    issuer: LocalIssuer,
    issuer_base: url::Url,
    standin: RunningStandIn,
    identity: IdentityEndpoint,
    container: String,
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
        Self {
            dir,
            issuer,
            issuer_base,
            standin,
            identity: IdentityEndpoint::start(minting).await,
            container: format!("bin{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The app as configured in Azure: its ledger in Blob Storage, its credential the managed identity.
    async fn serve(&self) -> App {
        self.serve_with(Vec::new(), Stdio::null()).await
    }

    /// [`World::serve`], logging every storage request the SDK sends to `log` (JSON lines).
    async fn serve_logging(&self, log: &std::path::Path) -> App {
        let filter = format!("info,{SDK_REQUEST_LOG}=debug");
        let out = Stdio::from(std::fs::File::create(log).unwrap());
        self.serve_with(vec![("RUST_LOG".to_owned(), filter)], out)
            .await
    }

    async fn serve_with(&self, extra: Vec<(String, String)>, stdout: Stdio) -> App {
        let mut settings = app_settings(&self.issuer_base, self.standin.base_url());
        settings.extend(Azurite::shared().app_settings(&self.container));
        settings.extend(self.identity.app_settings());
        settings.extend(extra);
        let app = App::spawn(&settings, stdout);
        app.ready(&reqwest::Client::new()).await;
        app
    }

    /// Purview's approval of Alice's request for `sales.reporting.customers`, approved by Carol.
    async fn approve(&self, app: &App) -> (u16, Value) {
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
            .post(format!("{}/api/purview-callback", app.base))
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
    let app = world.serve().await;

    let (status, answer) = world.approve(&app).await;
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
async fn without_a_storage_role_the_approval_is_refused_before_unity_catalog_is_changed() {
    // Azure Storage answers 403 to an identity without a data role; Azurite does the same to a token
    // for another audience.
    let world = World::start(Minting::WrongAudience).await;
    let app = world.serve().await;

    let (status, answer) = world.approve(&app).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_approval_costs_three_storage_requests_and_a_repeated_one_reads_its_record() {
    let world = World::start(Minting::Storage).await;
    let log = world.dir.path().join("app.log");
    let app = world.serve_logging(&log).await;

    let (status, first) = world.approve(&app).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "granted", "{first}");
    let azurite = Azurite::shared();
    let id = first["grantId"].as_str().unwrap().to_owned();
    let record = format!("/{}/grants/{id}.json", world.container);
    let requests = azurite.requests_in_log(&std::fs::read_to_string(&log).unwrap());
    // The container is looked for once per process, at first use, and created since it is missing.
    let container = format!("/{}?restype=container", world.container);
    let (checks, approval): (Vec<_>, Vec<_>) =
        requests.iter().partition(|(_, url)| *url == container);
    let checks: Vec<&str> = checks.iter().map(|(method, _)| method.as_str()).collect();
    assert_eq!(checks, ["GET", "PUT"], "{requests:?}");
    let shape: Vec<(&str, bool)> = approval
        .iter()
        .map(|(method, url)| (method.as_str(), url.starts_with(&record)))
        .collect();
    assert_eq!(
        shape,
        [("PUT", false), ("PUT", true), ("PUT", true)],
        "the principal's marker, the record as pending, the record as active; no read: {approval:?}"
    );
    assert!(approval[0].1.contains("/by-principal/"), "{approval:?}");

    // The same delivery again: the create is refused, the record read (by the ledger, to check the marker
    // it wrote is this record's, then by the approval, to answer), the first answer given.
    let patches = world.patches();
    let (status, second) = world.approve(&app).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["grantId"], first["grantId"]);
    assert_eq!(world.patches(), patches, "no second PATCH");
    let requests = azurite.requests_in_log(&std::fs::read_to_string(&log).unwrap());
    let again: Vec<&str> = requests[requests.len() - 4..]
        .iter()
        .filter(|(_, url)| url.starts_with(&record))
        .map(|(method, _)| method.as_str())
        .collect();
    assert_eq!(again, ["PUT", "GET", "GET"], "{requests:?}");
}
