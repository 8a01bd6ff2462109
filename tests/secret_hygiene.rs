//! Secret hygiene: the app is wired as `serve` wires it (settings from the environment, the production
//! Databricks and auth clients, Basic enabled on `purview-callback`), every flow is driven over HTTP —
//! callbacks by bearer token and by Basic, denials, bad bodies, refused and expired tokens, operator
//! functions, Databricks failures, the bridged host protocol, the timer, the doctor — with every log line
//! captured as JSON at `debug` (more than production's `info`). The test fails if any configured secret,
//! any token or password a caller sent, or any Databricks access token appears in a log line or in any
//! answer (body or headers).
//!
//! Key Vault values enter these same settings at start (`with_vault_secrets`); the Key Vault reader's own
//! errors are checked for the value in tests/secrets/.

#![allow(clippy::unwrap_used)] // a test panics with the failing value

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uc_access::app::{self, AppState, Application, Services};
use uc_access::auth::BasicCredentials;
use uc_access::functions::http_function_names;
use uc_access::settings::{Env, Settings};
use uc_access::usecases::Clock;
use uc_access_dev::local_issuer::{
    self, LOCAL_AUDIENCE, LocalCaller, LocalIssuer, local_auth_settings,
};
use uc_access_standin::{Fault, FaultKind, Seed, StandIn, demo};

/// Where every log line goes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

struct Answers {
    client: reqwest::Client,
    base: String,
    /// Every answer's status line, headers and body, to search afterwards.
    seen: Vec<String>,
}

impl Answers {
    async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        auth: Option<String>,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = format!("{:?}", resp.headers());
        let text = resp.text().await.unwrap();
        self.seen.push(format!("{status} {headers} {text}"));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn callback(overrides: Value) -> String {
    let mut body = json!({
        "requestorId": demo::ALICE_ENTRA_ID,
        "assetQualifiedName": format!("databricks://{}/catalogs/sales/schemas/reporting/tables/orders", demo::METASTORE_ID),
        "approvalOutcome": "Approved",
        "approvers": demo::CAROL_ENTRA_ID,
        "duration": "PT5M",
    });
    for (k, v) in overrides.as_object().unwrap() {
        body[k] = v.clone();
    }
    body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_token_or_password_reaches_a_log_line_or_an_answer() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(logs.clone())
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .init();

    // Secrets unique to this run, so any occurrence is a leak.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let client_secret = format!("dbx-client-secret-{run}");
    let basic_password = format!("basic-password-{run}");
    let wrong_password = format!("wrong-password-{run}");

    let mut seed = Seed::demo();
    for sp in &mut seed.service_principals {
        if sp.application_id == demo::PRODUCT_CLIENT_ID {
            sp.client_secret = Some(client_secret.clone());
        }
    }
    let standin = StandIn::builder()
        .seed(seed)
        .start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    // The workspace refuses the account-level token, so the logs also cover the refusal and the switch
    // to a workspace-level token.
    standin.state().set_account_tokens_on_workspaces(false);
    let dir = tempfile::tempdir().unwrap();
    let app = Application::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let base_url = local::base(app.local_addr().unwrap().port());
    let env = uc_access_dev::local::local_env(
        Env::from_pairs([("DATABRICKS_CLIENT_SECRET", client_secret.as_str())]),
        &url::Url::parse(standin.base_url()).unwrap(),
        dir.path(),
    );
    let mut auth = local_auth_settings(&base_url, &http_function_names());
    auth.set_basic_credentials(
        "purview-callback",
        BasicCredentials::new("purview", basic_password.clone().into()),
    );
    let settings = Settings::with_auth(&env, auth).unwrap();
    let skew = Arc::new(AtomicI64::new(0));
    let clock_skew = skew.clone();
    let clock: Clock = Arc::new(move || {
        OffsetDateTime::now_utc() + time::Duration::seconds(clock_skew.load(Ordering::SeqCst))
    });
    let (auth, clients) =
        app::outbound_clients(&settings, uc_access::outbound::http_client()).unwrap();
    let services = Services::assemble(
        &settings,
        auth,
        clients,
        uc_access::ledger::open(&settings.ledger, &uc_access::outbound::http_client()).unwrap(),
        clock,
    );
    let issuer = LocalIssuer::load_or_create(&dir.path().join("issuer"), &base_url).unwrap();
    let router =
        app::router(AppState::new(services)).nest(local_issuer::MOUNT_PATH, issuer.router());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(router, async {
        let _ = stopped.await;
    }));

    let mint = |caller: &str| {
        issuer
            .mint(
                &caller.parse::<LocalCaller>().unwrap(),
                LOCAL_AUDIENCE,
                Duration::from_secs(600),
            )
            .unwrap()
    };
    let purview = mint("purview");
    let operator = mint("operator");
    let expired = {
        let payload = purview.split('.').nth(1).unwrap();
        let mut claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        claims["exp"] = json!(now - 3600);
        claims["nbf"] = json!(now - 7200);
        issuer.sign_claims(&claims).unwrap()
    };
    let other_audience = issuer
        .mint(
            &LocalCaller::Purview,
            "api://another-app",
            Duration::from_secs(600),
        )
        .unwrap();
    let basic = |password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("purview:{password}"))
        )
    };
    let bearer = |t: &str| format!("Bearer {t}");

    let mut answers = Answers {
        client: reqwest::Client::new(),
        base: base_url.to_string(),
        seen: Vec::new(),
    };
    use reqwest::Method;
    let callback_path = "api/purview-callback";

    // Callbacks: by bearer token, by Basic, refused credentials, a denial, a bad body.
    let (s, j) = answers
        .send(
            Method::POST,
            callback_path,
            Some(bearer(&purview)),
            Some(callback(json!({}))),
        )
        .await;
    assert_eq!(s, 200, "{j}");
    let (s, j) = answers
        .send(
            Method::POST,
            callback_path,
            Some(basic(&basic_password)),
            Some(callback(json!({"assetQualifiedName": format!("databricks://{}/catalogs/sales/schemas/reporting/tables/customers", demo::METASTORE_ID)}))),
        )
        .await;
    assert_eq!(s, 200, "{j}");
    for (auth, want) in [
        (basic(&wrong_password), 401),
        (bearer(&expired), 401),
        (bearer(&other_audience), 401),
        (bearer(&operator), 401),
        (format!("Bearer {purview}x"), 401),
    ] {
        let (s, j) = answers
            .send(
                Method::POST,
                callback_path,
                Some(auth),
                Some(callback(json!({}))),
            )
            .await;
        assert_eq!(s, want, "{j}");
    }
    let (s, _) = answers
        .send(
            Method::POST,
            callback_path,
            Some(bearer(&purview)),
            Some(callback(json!({"privileges": ["MODIFY"]}))),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = answers
        .send(
            Method::POST,
            callback_path,
            Some(bearer(&purview)),
            Some("{\"requestorId\":".into()),
        )
        .await;
    assert_eq!(s, 400);

    // Databricks failing: 503 on every permissions call, then a dropped connection.
    standin.state().inject(
        Fault::new(
            FaultKind::Unavailable {
                retry_after_secs: Some(0),
            },
            50,
        )
        .on_path_prefix("/api/2.1/unity-catalog"),
    );
    let (s, j) = answers
        .send(
            Method::POST,
            callback_path,
            Some(bearer(&purview)),
            Some(callback(json!({"assetQualifiedName": format!("databricks://{}/catalogs/sales/schemas/raw/tables/events", demo::METASTORE_ID)}))),
        )
        .await;
    assert_eq!(s, 503, "{j}");
    standin.state().clear_faults();
    standin
        .state()
        .inject(Fault::new(FaultKind::Drop, 50).on_path_prefix("/api/2.1/unity-catalog"));
    let (s, j) = answers
        .send(
            Method::POST,
            "api/grant-access",
            Some(bearer(&operator)),
            Some(json!({"principal": {"userName": demo::BOB}, "securable": {"type": "table", "fullName": "hr.people.employees"}}).to_string()),
        )
        .await;
    assert!(s >= 500, "{s} {j}");
    standin.state().clear_faults();

    // Operators: resolve, grant, list, revoke, the doctor.
    let (s, _) = answers
        .send(
            Method::POST,
            "api/resolve-principal",
            Some(bearer(&operator)),
            Some(json!({"userName": demo::ALICE}).to_string()),
        )
        .await;
    assert_eq!(s, 200);
    let (s, granted) = answers
        .send(
            Method::POST,
            "api/grant-access",
            Some(bearer(&operator)),
            Some(json!({"principal": {"userName": demo::BOB}, "securable": {"type": "table", "fullName": "sales.reporting.customers"}, "duration": "PT5M"}).to_string()),
        )
        .await;
    assert_eq!(s, 200, "{granted}");
    let (s, _) = answers
        .send(
            Method::GET,
            "api/list-grants?state=active",
            Some(bearer(&operator)),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, j) = answers
        .send(
            Method::POST,
            "api/revoke-access",
            Some(bearer(&operator)),
            Some(json!({"grantId": granted["grantId"]}).to_string()),
        )
        .await;
    assert_eq!(s, 200, "{j}");
    let (s, j) = answers
        .send(Method::GET, "api/doctor", Some(bearer(&operator)), None)
        .await;
    assert_eq!(s, 200, "{j}");

    // The host protocol: a bridged callback carrying the credentials inside the payload.
    let payload = json!({
        "Data": {"req": {
            "Method": "POST",
            "Headers": {"Authorization": [basic(&basic_password)], "Content-Type": ["application/json"]},
            "Body": callback(json!({"privileges": ["MODIFY"]})),
        }},
        "Metadata": {}
    });
    let (s, j) = answers
        .send(
            Method::POST,
            "purview-callback",
            None,
            Some(payload.to_string()),
        )
        .await;
    assert_eq!(s, 200, "{j}");
    assert_eq!(j["Outputs"]["res"]["statusCode"], 403, "{j}");

    // The timer, after the grants expired.
    skew.fetch_add(600, Ordering::SeqCst);
    let (s, j) = answers
        .send(
            Method::POST,
            "revoke-expired",
            None,
            Some(json!({"Data": {"timer": {"IsPastDue": false}}, "Metadata": {}}).to_string()),
        )
        .await;
    assert_eq!(s, 200, "{j}");
    assert!(j["ReturnValue"]["revoked"].as_u64().unwrap() >= 2, "{j}");
    let _ = stop.send(());

    // What must never appear. Tokens are also looked for by their signature alone (a truncated token).
    let mut secrets: Vec<(String, String)> = vec![
        ("the Databricks client secret".into(), client_secret.clone()),
        ("the Basic password".into(), basic_password.clone()),
        ("a wrong Basic password".into(), wrong_password.clone()),
        (
            "a Basic header".into(),
            basic(&basic_password)["Basic ".len()..].to_owned(),
        ),
        (
            "a wrong Basic header".into(),
            basic(&wrong_password)["Basic ".len()..].to_owned(),
        ),
        ("Databricks access tokens".into(), "standin-oauth-".into()),
    ];
    for (what, token) in [
        ("the Purview token", &purview),
        ("the operator token", &operator),
        ("an expired token", &expired),
        ("a token for another audience", &other_audience),
    ] {
        secrets.push((what.into(), token.clone()));
        secrets.push((
            format!("{what}'s signature"),
            token.rsplit('.').next().unwrap().to_owned(),
        ));
    }
    assert!(
        standin.state().token_issuances() > 0,
        "the client secret was used"
    );
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("refused the account-level OAuth token"),
        "the switch to a workspace-level token was logged"
    );
    assert!(
        logs.lines().count() > 50
            && logs.contains("caller refused")
            && logs.contains("revoke-expired run finished"),
        "the logs of the flows were captured: {} lines",
        logs.lines().count()
    );
    for line in logs.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
    }
    let mut leaks = Vec::new();
    for (what, secret) in &secrets {
        if let Some(line) = logs.lines().find(|l| l.contains(secret.as_str())) {
            leaks.push(format!("{what} in a log line: {line}"));
        }
        if let Some(answer) = answers.seen.iter().find(|a| a.contains(secret.as_str())) {
            leaks.push(format!("{what} in an answer: {answer}"));
        }
    }
    assert!(leaks.is_empty(), "\n{}", leaks.join("\n"));
}

mod local {
    pub fn base(port: u16) -> url::Url {
        uc_access_dev::local::base_url(port)
    }
}
