//! Every body of the corpus, and the ready-to-paste body of the docs rendered by plain text substitution,
//! sent to the built binary in its Azure shape. Each case gets a world of its own (a fresh Databricks
//! stand-in, identity endpoint and ledger container) and is delivered five times: forwarded by the host
//! (`/api/purview-callback`) with a v2 and with a v1 token, and as the host's invocation payload
//! (`/purview-callback`, the body as text, and as JSON already parsed) with either token. The first answer
//! must be the one the case documents; every later delivery is a re-delivery and must get the same
//! answer; and what Unity Catalog and the ledger hold afterwards must be what the case says (nothing at
//! all for a refusal).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use uc_access::auth::TokenVersion;
use uc_access::ledger::{BlobLedger, BlobLedgerOptions, GrantState, LedgerStore, ListFilter};
use uc_access_dev::local_issuer::{self, LOCAL_AUDIENCE, LocalCaller, LocalIssuer};
use uc_access_standin::{RunningStandIn, Seed, StandIn, demo};
use uuid::Uuid;

use crate::app::{App, app_settings};
use crate::azurite::Azurite;
use crate::credential::TestCredential;
use crate::dynamic_content::{Arrays, DynamicContent, ready_to_paste_body};
use crate::identity::{IdentityEndpoint, Minting};

/// The client id of uc-access's own app registration: the `aud` of v2 tokens (v1 tokens carry the
/// application id URI, [`LOCAL_AUDIENCE`]).
const API_CLIENT_ID: Uuid = Uuid::from_u128(0x10ca1000_0000_4000_8000_0000000000d1);

/// One body and what it must get, as a corpus file holds it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaseFile {
    about: String,
    source: String,
    /// A JSON body, sent as its serialization.
    body: Option<Value>,
    /// A body sent as this exact text (a body that is not JSON).
    body_text: Option<String>,
    expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Expect {
    status: u16,
    /// The `error` code of a refusal.
    error: Option<String>,
    /// Fields the answer must hold with these values.
    #[serde(default)]
    answer: Map<String, Value>,
    /// Text the answer's `message` must contain.
    #[serde(default)]
    message_contains: Vec<String>,
    /// `"<type> <full name>"` → principal → privileges it must hold afterwards.
    #[serde(default)]
    unity_catalog: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// How many ledger records must exist afterwards.
    ledger_records: usize,
}

#[derive(Debug)]
struct Case {
    name: String,
    body: Vec<u8>,
    /// The body as JSON, when it is JSON (a host may hand it over already parsed).
    parsed: Option<Value>,
    expect: Expect,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/purview/corpus")
}

fn corpus() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert_eq!(path.extension().unwrap(), "json", "{name}");
            let file: CaseFile = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                !file.about.is_empty() && !file.source.is_empty(),
                "{name}: every case says what it is and where its shape comes from"
            );
            let body = match (&file.body, &file.body_text) {
                (Some(body), None) => serde_json::to_vec(body).unwrap(),
                (None, Some(text)) => text.clone().into_bytes(),
                _ => panic!("{name}: exactly one of body and bodyText"),
            };
            Case {
                name,
                parsed: serde_json::from_slice(&body).ok(),
                body,
                expect: file.expect,
            }
        })
        .collect()
}

/// The ready-to-paste body of docs/callback-contract.md, rendered as the designer renders it, for one
/// assignee, for several, and with the requester among them. It carries `"dryRun": "true"`.
fn rendered_template_cases() -> Vec<Case> {
    let template = ready_to_paste_body("docs/callback-contract.md");
    let customers = format!(
        "databricks://{}/catalogs/sales/schemas/reporting/tables/customers",
        demo::METASTORE_ID
    );
    let planned = Expect {
        status: 200,
        error: None,
        answer: json!({"status": "planned", "principal": demo::ALICE, "securable": "sales.reporting.customers"})
            .as_object()
            .unwrap()
            .clone(),
        message_contains: vec!["Dry run".into()],
        unity_catalog: BTreeMap::new(),
        ledger_records: 0,
    };
    let self_approval = Expect {
        status: 403,
        error: Some("self_approval".into()),
        answer: Map::new(),
        message_contains: Vec::new(),
        unity_catalog: BTreeMap::new(),
        ledger_records: 0,
    };
    [
        ("one assignee", vec![demo::CAROL_ENTRA_ID], planned.clone()),
        (
            "many assignees",
            vec![
                demo::CAROL_ENTRA_ID,
                demo::BOB_ENTRA_ID,
                demo::DAVE_ENTRA_ID,
            ],
            planned,
        ),
        (
            "the requester last of the assignees",
            vec![demo::CAROL_ENTRA_ID, demo::ALICE_ENTRA_ID],
            self_approval,
        ),
    ]
    .into_iter()
    .map(|(what, assignees, expect)| {
        let content = DynamicContent::approved(demo::ALICE_ENTRA_ID, "", &customers, &assignees);
        let body = content.render(&template, Arrays::JsonText).into_bytes();
        Case {
            name: format!("the ready-to-paste body, {what}"),
            parsed: Some(serde_json::from_slice(&body).unwrap()),
            body,
            expect,
        }
    })
    .collect()
}

/// The two shapes of an Entra ID app-only token for Purview's service principal.
#[derive(Debug, Clone, Copy)]
enum TokenShape {
    /// v1: `iss` `https://sts.windows.net/<tenant>/`, `appid`, `ver` 1.0, `aud` the application id URI.
    V1,
    /// v2: `iss` `https://login.microsoftonline.com/<tenant>/v2.0`, `azp`, `ver` 2.0, `aud` the client id.
    V2,
}

/// A token as Entra ID issues it to Purview's service principal (client credentials), signed by the
/// local issuer, whose two OpenID documents (v2.0 and v1.0, each with its own issuer) the app trusts.
fn token(issuer: &LocalIssuer, shape: TokenShape) -> String {
    let purview = "purview".parse::<LocalCaller>().unwrap();
    let lifetime = Duration::from_secs(3600);
    let api_client_id = API_CLIENT_ID.to_string();
    let (version, audience) = match shape {
        TokenShape::V1 => (TokenVersion::V1, LOCAL_AUDIENCE),
        TokenShape::V2 => (TokenVersion::V2, &*api_client_id),
    };
    let claims = issuer.claims_as(version, &purview, audience, lifetime);
    issuer.sign_claims(&claims).unwrap()
}

/// How the Functions host hands a request to the custom handler.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    /// HTTP forwarding on: the original request at `/api/<function>`.
    Forwarded,
    /// Forwarding off: an invocation payload at `/<function>`, the body as text.
    Invocation,
    /// An invocation payload whose body the host had already parsed as JSON.
    InvocationParsed,
}

/// The caller-token issuer, served once for the whole run.
struct Issuer {
    issuer: LocalIssuer,
    base: url::Url,
    _dir: tempfile::TempDir,
}

impl Issuer {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let base = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let issuer = LocalIssuer::load_or_create(&dir.path().join("issuer"), &base).unwrap();
        let router = axum::Router::new().nest(local_issuer::MOUNT_PATH, issuer.router());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            issuer,
            base,
            _dir: dir,
        }
    }
}

/// One case's Databricks, identity endpoint and ledger container.
struct World {
    standin: RunningStandIn,
    identity: IdentityEndpoint,
    container: String,
}

impl World {
    async fn start() -> Self {
        let standin = StandIn::builder()
            .seed(Seed::demo())
            .start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        Self {
            standin,
            identity: IdentityEndpoint::start(Minting::Storage).await,
            container: format!("corpus{}", Uuid::new_v4().simple()),
        }
    }

    /// The app as configured in Azure, accepting both audiences of its registration.
    async fn serve(&self, issuer: &Issuer) -> App {
        let mut settings: Vec<(String, String)> =
            app_settings(&issuer.base, self.standin.base_url())
                .into_iter()
                .filter(|(k, _)| k != "AUTH_AUDIENCE")
                .collect();
        settings.push((
            "AUTH_AUDIENCE".to_owned(),
            format!("{LOCAL_AUDIENCE},{API_CLIENT_ID}"),
        ));
        settings.extend(Azurite::shared().app_settings(&self.container));
        settings.extend(self.identity.app_settings());
        let app = App::spawn(&settings, Stdio::null());
        app.ready(&reqwest::Client::new()).await;
        app
    }

    fn patches(&self) -> usize {
        self.standin
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
    }

    async fn ledger_records(&self) -> Vec<uc_access::ledger::GrantRecord> {
        let azurite = Azurite::shared();
        let ledger = BlobLedger::new(
            &azurite.account_url(),
            &self.container,
            TestCredential::new(),
            BlobLedgerOptions {
                transport: Some(azurite.transport()),
            },
        )
        .unwrap();
        ledger
            .list(&ListFilter::default())
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|listed| listed.record)
            .collect()
    }
}

/// Sends `case` to `app` as `delivery` with `token`; answers the status and the answer body.
async fn deliver(app: &App, case: &Case, delivery: Delivery, token: &str) -> (u16, Value) {
    let client = reqwest::Client::new();
    let content_type = "application/json; charset=utf-8";
    if let Delivery::Forwarded = delivery {
        let r = client
            .post(format!("{}/api/purview-callback", app.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(case.body.clone())
            .send()
            .await
            .unwrap();
        return (r.status().as_u16(), r.json().await.unwrap_or(Value::Null));
    }
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/host/http-invocation-purview-callback.json"
    ))
    .unwrap();
    let mut payload: Value = serde_json::from_str(&fixture).unwrap();
    let req = &mut payload["Data"]["req"];
    req["Headers"]["Authorization"] = json!([format!("Bearer {token}")]);
    req["Headers"]["Content-Type"] = json!([content_type]);
    req["Body"] = match (delivery, &case.parsed) {
        (Delivery::InvocationParsed, Some(parsed)) => parsed.clone(),
        _ => json!(String::from_utf8(case.body.clone()).unwrap()),
    };
    let r = client
        .post(format!("{}/purview-callback", app.base))
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the invocation itself succeeds");
    let outputs: Value = r.json().await.unwrap();
    let res = &outputs["Outputs"]["res"];
    let answer = serde_json::from_str(res["body"].as_str().unwrap()).unwrap_or(Value::Null);
    (res["statusCode"].as_u64().unwrap() as u16, answer)
}

/// Everything in `expect` that the first answer and the world afterwards do not match.
async fn check(case: &Case, world: &World, status: u16, answer: &Value) -> Vec<String> {
    let expect = &case.expect;
    let mut wrong = Vec::new();
    if status != expect.status {
        wrong.push(format!("status {status}, expected {}", expect.status));
    }
    if let Some(error) = &expect.error
        && answer["error"] != json!(error)
    {
        wrong.push(format!("error {}, expected {error}", answer["error"]));
    }
    for (key, value) in &expect.answer {
        if &answer[key] != value {
            wrong.push(format!("{key} {}, expected {value}", answer[key]));
        }
    }
    let message = answer["message"].as_str().unwrap_or_default();
    for part in &expect.message_contains {
        if !message.contains(part.as_str()) {
            wrong.push(format!("message {message:?} lacks {part:?}"));
        }
    }
    for (securable, principals) in &expect.unity_catalog {
        let (kind, name) = securable.split_once(' ').unwrap();
        let held = world.standin.state().grants_on(kind, name);
        for (principal, privileges) in principals {
            if held.get(principal) != Some(privileges) {
                wrong.push(format!(
                    "{principal} holds {:?} on {securable}, expected {privileges:?}",
                    held.get(principal)
                ));
            }
        }
    }
    let records = world.ledger_records().await;
    if records.len() != expect.ledger_records {
        wrong.push(format!(
            "{} ledger records, expected {}",
            records.len(),
            expect.ledger_records
        ));
    }
    if let Some(record) = records.first() {
        if record.state != GrantState::Active {
            wrong.push(format!("the record is {:?}, not active", record.state));
        }
        if answer["grantId"] != json!(record.id.to_string()) {
            wrong.push(format!("grantId {} is not the record's", answer["grantId"]));
        }
    }
    if !(200..300).contains(&status) && world.patches() != 0 {
        wrong.push("a refused body changed Unity Catalog".to_owned());
    }
    wrong
}

/// The answer without what differs between deliveries of one approval: the request id only. Every other
/// field, `alreadyHeld` included, is the first delivery's.
fn comparable(answer: &Value) -> Value {
    let mut answer = answer.clone();
    if let Some(map) = answer.as_object_mut() {
        map.remove("requestId");
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_of_the_purview_corpus_gets_its_documented_answer_from_the_binary_in_its_azure_shape()
 {
    let issuer = Issuer::start().await;
    let tokens = [
        ("v2", token(&issuer.issuer, TokenShape::V2)),
        ("v1", token(&issuer.issuer, TokenShape::V1)),
    ];
    let deliveries = [
        Delivery::Forwarded,
        Delivery::Invocation,
        Delivery::InvocationParsed,
    ];
    let cases: Vec<Case> = corpus()
        .into_iter()
        .chain(rendered_template_cases())
        .collect();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let world = World::start().await;
        let app = world.serve(&issuer).await;
        let mut answers = Vec::new();
        for delivery in deliveries {
            if matches!(delivery, Delivery::InvocationParsed) && case.parsed.is_none() {
                continue;
            }
            for (shape, token) in &tokens {
                let (status, answer) = deliver(&app, case, delivery, token).await;
                answers.push((format!("{delivery:?} with a {shape} token"), status, answer));
            }
        }
        let (_, status, first) = &answers[0];
        let mut wrong = check(case, &world, *status, first).await;
        for (how, other_status, other) in &answers[1..] {
            if (other_status, comparable(other)) != (status, comparable(first)) {
                wrong.push(format!(
                    "{how} answered {other_status} {other}, the first delivery {status} {first}"
                ));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}:\n  {}\n  answer: {first}",
                case.name,
                wrong.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_corpus_file_is_a_case_with_one_body_and_an_expectation() {
    let cases = corpus();
    assert!(cases.len() >= 25);
    for case in &cases {
        assert!(
            (200..600).contains(&case.expect.status),
            "{}: status",
            case.name
        );
        if case.expect.status >= 400 {
            assert!(
                case.expect.error.is_some(),
                "{}: a refusal names its code",
                case.name
            );
            assert_eq!(case.expect.ledger_records, 0, "{}", case.name);
        }
    }
}
