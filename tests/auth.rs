//! Caller authentication end to end: real RS256 tokens, an OpenID configuration and JWKS served over
//! HTTP by a local server, and the production `Authenticator` fetching them.

// A test binary: a panic is a failing test with its location, so helpers may unwrap too.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header::AUTHORIZATION};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::SecretString;
use serde_json::{Value, json};
use tempfile::TempDir;
use url::Url;
use uuid::Uuid;

use uc_access::auth::{
    AllowedBy, AuthError, AuthSettings, Authenticator, BasicCredentials, Caller, Callers,
    FunctionAccess, TokenVersion,
};
use uc_access_dev::local_issuer::{self, LocalCaller, LocalIssuer};

const TENANT: Uuid = Uuid::from_u128(0x3f2a1b4c_5d6e_4f70_8a9b_0c1d2e3f4a5b);
const OTHER_TENANT: Uuid = Uuid::from_u128(0x99999999_5d6e_4f70_8a9b_0c1d2e3f4a5b);
const PURVIEW_APP: Uuid = Uuid::from_u128(0x0a0a0a0a_1111_4111_8111_111111111111);
const CONNECTOR_APP: Uuid = Uuid::from_u128(0x0c0c0c0c_2222_4222_8222_222222222222);
const STRANGER_APP: Uuid = Uuid::from_u128(0x0d0d0d0d_3333_4333_8333_333333333333);
const USER_OID: Uuid = Uuid::from_u128(0x0e0e0e0e_4444_4444_8444_444444444444);
const APP_ID_URI: &str = "api://uc-access";
/// uc-access's own client id: the `aud` of every v2.0 token for it.
const API_CLIENT_ID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const OPERATOR: &str = "UcAccess.Operator";

/// A stand-in for Entra's discovery endpoints of one tenant, at Entra's paths: the v2.0 document
/// (`/v2.0/.well-known/openid-configuration`, keys at `/discovery/v2.0/keys`) and the v1.0 document
/// (`/.well-known/openid-configuration`, keys at `/discovery/keys`). The test can rotate and take down the
/// v2.0 key set, and give the v1.0 document a key set of its own.
#[derive(Clone)]
struct Idp {
    issuer: String,
    issuer_v1: String,
    /// The server's own base URL, known once it is bound.
    base: Arc<OnceLock<String>>,
    jwks: Arc<Mutex<Value>>,
    /// The v1.0 document's keys; `None` serves the v2.0 set (as Entra publishes the same keys in both).
    jwks_v1: Arc<Mutex<Option<Value>>>,
    config_hits: Arc<AtomicUsize>,
    jwks_hits: Arc<AtomicUsize>,
    v1_hits: Arc<AtomicUsize>,
    up: Arc<AtomicBool>,
}

struct Harness {
    idp: Idp,
    base: Url,
    signer: LocalIssuer,
    rotated: LocalIssuer,
}

/// Keys live in the target's scratch directory: generated once (RSA generation is slow in debug
/// builds), then loaded by every test, concurrently, through the same load-or-create path.
fn key_dir(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("auth-test-keys")
        .join(name)
}

async fn config(State(idp): State<Idp>) -> Response {
    idp.config_hits.fetch_add(1, Ordering::SeqCst);
    if !idp.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let base = idp.base.get().expect("set once the server is bound");
    axum::Json(json!({ "issuer": idp.issuer, "jwks_uri": format!("{base}/discovery/v2.0/keys") }))
        .into_response()
}

async fn config_v1(State(idp): State<Idp>) -> Response {
    idp.v1_hits.fetch_add(1, Ordering::SeqCst);
    let base = idp.base.get().expect("set once the server is bound");
    axum::Json(json!({ "issuer": idp.issuer_v1, "jwks_uri": format!("{base}/discovery/keys") }))
        .into_response()
}

async fn keys_v1(State(idp): State<Idp>) -> Response {
    idp.v1_hits.fetch_add(1, Ordering::SeqCst);
    let own = idp.jwks_v1.lock().unwrap().clone();
    axum::Json(own.unwrap_or_else(|| idp.jwks.lock().unwrap().clone())).into_response()
}

async fn keys(State(idp): State<Idp>) -> Response {
    idp.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if !idp.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let set = idp.jwks.lock().unwrap().clone();
    axum::Json(set).into_response()
}

async fn serve(router: Router) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Url::parse(&format!("http://{addr}")).unwrap()
}

impl Harness {
    async fn start() -> Self {
        let placeholder = Url::parse("http://127.0.0.1:1").unwrap();
        let signer = LocalIssuer::load_or_create(&key_dir("current"), &placeholder).unwrap();
        let rotated = LocalIssuer::load_or_create(&key_dir("rotated"), &placeholder).unwrap();
        let idp = Idp {
            issuer: format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
            issuer_v1: format!("https://sts.windows.net/{TENANT}/"),
            base: Arc::default(),
            jwks: Arc::new(Mutex::new(signer.jwks())),
            jwks_v1: Arc::default(),
            config_hits: Arc::default(),
            jwks_hits: Arc::default(),
            v1_hits: Arc::default(),
            up: Arc::new(AtomicBool::new(true)),
        };
        let router = Router::new()
            .route("/v2.0/.well-known/openid-configuration", get(config))
            .route("/discovery/v2.0/keys", get(keys))
            .route("/.well-known/openid-configuration", get(config_v1))
            .route("/discovery/keys", get(keys_v1))
            .with_state(idp.clone());
        let base = serve(router).await;
        idp.base
            .set(base.as_str().trim_end_matches('/').to_owned())
            .unwrap();
        Self {
            idp,
            base,
            signer,
            rotated,
        }
    }

    fn settings(&self) -> AuthSettings {
        // The v2.0 document; the v1.0 one is derived from it as in production.
        let openid = self
            .base
            .join("v2.0/.well-known/openid-configuration")
            .unwrap();
        let mut purview = FunctionAccess::default();
        purview.allowed_app_ids.insert(PURVIEW_APP);
        purview.basic = Some(BasicCredentials::new(
            "purview",
            SecretString::from("correct horse battery"),
        ));
        let mut grant = FunctionAccess::default();
        grant.allowed_roles.insert(OPERATOR.to_owned());
        grant.callers = Callers::People;
        let mut settings = AuthSettings::new(TENANT, vec![APP_ID_URI.to_owned()], openid)
            .with_function("purview-callback", purview)
            .with_function("grant-access", grant);
        settings.key_refresh.http_timeout = Duration::from_secs(2);
        settings
    }

    fn authenticator(&self) -> Authenticator {
        Authenticator::new(self.settings()).unwrap()
    }

    fn rotate_to_include_the_second_key(&self) {
        *self.idp.jwks.lock().unwrap() = json!({ "keys": [self.signer.jwk(), self.rotated.jwk()] });
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What Entra issues to Purview's service principal (v2.0 access token, app-only).
fn app_claims(app: Uuid) -> Value {
    json!({
        "aud": APP_ID_URI,
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "iat": now(), "nbf": now(), "exp": now() + 3600,
        "tid": TENANT, "oid": Uuid::new_v4(), "sub": Uuid::new_v4(),
        "azp": app, "azpacr": "1", "idtyp": "app", "ver": "2.0",
    })
}

/// What Entra issues to the same service principal when uc-access's registration accepts v1.0 tokens
/// (the default) and the scope was `api://uc-access/.default`: the `sts.windows.net` issuer, the caller
/// in `appid`, `aud` the application id URI.
fn v1_app_claims(app: Uuid) -> Value {
    json!({
        "aud": APP_ID_URI,
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "iat": now(), "nbf": now(), "exp": now() + 3600,
        "tid": TENANT, "oid": Uuid::new_v4(), "sub": Uuid::new_v4(),
        "appid": app, "appidacr": "1", "idtyp": "app", "ver": "1.0",
    })
}

/// A delegated v2.0 token of a person using the connector.
fn user_claims(roles: &[&str]) -> Value {
    let mut claims = app_claims(CONNECTOR_APP);
    claims["oid"] = json!(USER_OID);
    claims["scp"] = json!("user_impersonation");
    claims["roles"] = json!(roles);
    claims["preferred_username"] = json!("ana@contoso.example");
    claims.as_object_mut().unwrap().remove("idtyp");
    claims
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

fn basic(user_pass: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let value = format!("Basic {}", STANDARD.encode(user_pass));
    h.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
    h
}

/// A token with an arbitrary header and an HMAC signature (or none), as an attacker would forge it.
fn forged(header: Value, claims: &Value, hmac_secret: Option<&[u8]>) -> String {
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    let message = format!("{h}.{c}");
    let signature = match hmac_secret {
        None => String::new(),
        Some(secret) => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
            URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, message.as_bytes()))
        }
    };
    format!("{message}.{signature}")
}

async fn refusal(auth: &Authenticator, function: &str, headers: &HeaderMap) -> AuthError {
    auth.authenticate(function, headers).await.unwrap_err()
}

#[tokio::test]
async fn a_v2_app_token_from_an_allowed_application_is_accepted() {
    let h = Harness::start().await;
    let token = h.signer.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    let caller = h
        .authenticator()
        .authenticate("purview-callback", &bearer(&token))
        .await
        .unwrap();
    let Caller::Application(app) = caller else {
        panic!("expected an application, got {caller:?}")
    };
    assert_eq!(app.app_id, PURVIEW_APP);
    assert_eq!(app.allowed_by, AllowedBy::AppId);
}

#[tokio::test]
async fn a_v1_token_with_appid_and_the_sts_issuer_is_accepted() {
    let h = Harness::start().await;
    let mut claims = app_claims(PURVIEW_APP);
    let map = claims.as_object_mut().unwrap();
    map.remove("azp");
    map.insert("appid".into(), json!(PURVIEW_APP));
    map.insert(
        "iss".into(),
        json!(format!("https://sts.windows.net/{TENANT}/")),
    );
    map.insert("ver".into(), json!("1.0"));
    let token = h.signer.sign_claims(&claims).unwrap();
    let caller = h
        .authenticator()
        .authenticate("purview-callback", &bearer(&token))
        .await
        .unwrap();
    assert_eq!(caller.app_id(), Some(PURVIEW_APP));
}

#[tokio::test]
async fn the_uri_and_the_client_id_are_accepted_in_the_version_that_carries_each() {
    let h = Harness::start().await;
    let mut settings = h.settings();
    settings.audiences = vec![APP_ID_URI.to_owned(), API_CLIENT_ID.to_owned()];
    let auth = Authenticator::new(settings).unwrap();
    let mut v2 = app_claims(PURVIEW_APP);
    v2["aud"] = json!(API_CLIENT_ID);
    let mut v1_by_client_id = v1_app_claims(PURVIEW_APP);
    v1_by_client_id["aud"] = json!(API_CLIENT_ID);
    for (what, claims) in [
        ("v2.0, aud = client id", v2),
        ("v1.0, aud = application id URI", v1_app_claims(PURVIEW_APP)),
        ("v1.0 asked for by client id", v1_by_client_id),
    ] {
        let token = h.signer.sign_claims(&claims).unwrap();
        let caller = auth
            .authenticate("purview-callback", &bearer(&token))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(caller.app_id(), Some(PURVIEW_APP), "{what}");
    }
    assert_eq!(auth.audience_mismatches(), (vec![], 0));
}

#[tokio::test]
async fn a_v2_token_for_the_client_id_is_refused_when_only_the_uri_is_listed_and_the_doctor_can_name_it()
 {
    let h = Harness::start().await;
    // The settings list the URI only; the registration issues v2.0 tokens, whose aud is the client id.
    let auth = h.authenticator();
    let mut v2 = app_claims(PURVIEW_APP);
    v2["aud"] = json!(API_CLIENT_ID);
    let token = h.signer.sign_claims(&v2).unwrap();
    for _ in 0..2 {
        assert_eq!(
            refusal(&auth, "purview-callback", &bearer(&token)).await,
            AuthError::WrongAudience
        );
    }
    let (seen, others) = auth.audience_mismatches();
    assert_eq!(others, 0);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].version, TokenVersion::V2);
    assert_eq!(seen[0].audience, API_CLIENT_ID);
    assert_eq!(seen[0].app_id, PURVIEW_APP);
    assert_eq!(seen[0].count, 2);

    // Refused for anything else first, a token with a foreign aud is not an audience mismatch: nothing
    // unverified or out of this tenant reaches the doctor.
    let mut expired = v2.clone();
    expired["exp"] = json!(now() - 3600);
    let mut foreign_tenant = v2.clone();
    foreign_tenant["tid"] = json!(OTHER_TENANT);
    foreign_tenant["aud"] = json!("api://another");
    let tampered = {
        let other = h.signer.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
        let mut parts: Vec<String> = other.split('.').map(str::to_owned).collect();
        let mut claims = v2.clone();
        claims["aud"] = json!("api://forged");
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        parts.join(".")
    };
    for token in [
        h.signer.sign_claims(&expired).unwrap(),
        h.signer.sign_claims(&foreign_tenant).unwrap(),
        tampered,
    ] {
        assert_ne!(
            refusal(&auth, "purview-callback", &bearer(&token)).await,
            AuthError::WrongAudience
        );
    }
    assert_eq!(auth.audience_mismatches().0[0].count, 2);
    assert_eq!(auth.audience_mismatches().0.len(), 1);
}

#[tokio::test]
async fn each_version_needs_its_own_issuer_and_names_its_caller_in_its_own_claim() {
    let h = Harness::start().await;
    let auth = h.authenticator();
    let edit = |mut claims: Value, key: &str, value: Option<Value>| {
        match value {
            Some(v) => claims[key] = v,
            None => {
                claims.as_object_mut().unwrap().remove(key);
            }
        }
        claims
    };
    let v2_issuer = json!(format!("https://login.microsoftonline.com/{TENANT}/v2.0"));
    let v1_issuer = json!(format!("https://sts.windows.net/{TENANT}/"));
    let v1 = v1_app_claims(PURVIEW_APP);
    let v2 = app_claims(PURVIEW_APP);
    let cases = [
        (
            "v1.0 with the v2.0 issuer",
            edit(v1.clone(), "iss", Some(v2_issuer)),
            AuthError::WrongIssuer,
        ),
        (
            "v2.0 with the v1.0 issuer",
            edit(v2.clone(), "iss", Some(v1_issuer.clone())),
            AuthError::WrongIssuer,
        ),
        (
            "v1.0 naming its caller in azp only",
            edit(
                edit(v1.clone(), "appid", None),
                "azp",
                Some(json!(PURVIEW_APP)),
            ),
            AuthError::MissingClaim,
        ),
        (
            "v2.0 naming its caller in appid only",
            edit(
                edit(v2.clone(), "azp", None),
                "appid",
                Some(json!(PURVIEW_APP)),
            ),
            AuthError::MissingClaim,
        ),
        (
            "ver 3.0",
            edit(v2.clone(), "ver", Some(json!("3.0"))),
            AuthError::MalformedToken,
        ),
        // Without `ver` a token follows the v2.0 rules: the v1.0 issuer does not pass.
        (
            "no ver, v1.0 issuer",
            edit(edit(v1.clone(), "ver", None), "iss", Some(v1_issuer)),
            AuthError::WrongIssuer,
        ),
    ];
    for (what, claims, expected) in cases {
        let token = h.signer.sign_claims(&claims).unwrap();
        assert_eq!(
            refusal(&auth, "purview-callback", &bearer(&token)).await,
            expected,
            "{what}"
        );
    }
    // A v1.0 token of another shape than v1_app_claims: a person's, named by unique_name.
    let mut person = v1_app_claims(CONNECTOR_APP);
    person["scp"] = json!("user_impersonation");
    person["roles"] = json!([OPERATOR]);
    person["oid"] = json!(USER_OID);
    person["unique_name"] = json!("ana@contoso.example");
    person.as_object_mut().unwrap().remove("idtyp");
    let token = h.signer.sign_claims(&person).unwrap();
    let Caller::User(user) = auth
        .authenticate("grant-access", &bearer(&token))
        .await
        .unwrap()
    else {
        panic!("a v1.0 delegated token is a user")
    };
    assert_eq!(user.app_id, CONNECTOR_APP);
    assert_eq!(user.display_name.as_deref(), Some("ana@contoso.example"));
}

#[tokio::test]
async fn a_v1_token_is_verified_with_the_v1_documents_keys_and_a_v2_token_with_the_v2_ones() {
    let h = Harness::start().await;
    // The v1.0 document publishes only the second key; the v2.0 document only the first.
    *h.idp.jwks_v1.lock().unwrap() = Some(h.rotated.jwks());
    let auth = h.authenticator();
    let v1_by_v1_key = h.rotated.sign_claims(&v1_app_claims(PURVIEW_APP)).unwrap();
    assert!(
        auth.authenticate("purview-callback", &bearer(&v1_by_v1_key))
            .await
            .is_ok()
    );
    assert!(
        h.idp.v1_hits.load(Ordering::SeqCst) >= 2,
        "the v1.0 document and its keys were read"
    );
    let v1_by_v2_key = h.signer.sign_claims(&v1_app_claims(PURVIEW_APP)).unwrap();
    assert_eq!(
        refusal(&auth, "purview-callback", &bearer(&v1_by_v2_key)).await,
        AuthError::UnknownSigningKey
    );
    let v2_by_v1_key = h.rotated.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    assert_eq!(
        refusal(&auth, "purview-callback", &bearer(&v2_by_v1_key)).await,
        AuthError::UnknownSigningKey
    );
    let v2 = h.signer.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    assert!(
        auth.authenticate("purview-callback", &bearer(&v2))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn without_a_v1_document_a_v1_token_is_refused_as_of_an_unknown_issuer_and_nothing_is_fetched()
 {
    let h = Harness::start().await;
    let mut settings = h.settings();
    settings.v1_openid_configuration_url = None;
    let auth = Authenticator::new(settings).unwrap();
    let token = h.signer.sign_claims(&v1_app_claims(PURVIEW_APP)).unwrap();
    assert_eq!(
        refusal(&auth, "purview-callback", &bearer(&token)).await,
        AuthError::WrongIssuer
    );
    assert_eq!(h.idp.v1_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_delegated_token_with_an_allowed_role_is_accepted_as_a_user() {
    let h = Harness::start().await;
    let token = h
        .signer
        .sign_claims(&user_claims(&["Reader", OPERATOR]))
        .unwrap();
    let caller = h
        .authenticator()
        .authenticate("grant-access", &bearer(&token))
        .await
        .unwrap();
    let Caller::User(user) = caller else {
        panic!("expected a user, got {caller:?}")
    };
    assert_eq!(user.object_id, Some(USER_OID));
    assert_eq!(user.allowed_by, AllowedBy::Role(OPERATOR.to_owned()));
    assert_eq!(user.scopes, vec!["user_impersonation"]);
    assert_eq!(user.display_name.as_deref(), Some("ana@contoso.example"));
}

/// Settings where the connector's client id is listed as an application and `OPERATOR` as a role, on
/// both a function for people (`grant-access`) and one for services (`purview-callback`): the
/// configuration that used to let every user of the connector in.
fn connector_listed_everywhere(h: &Harness) -> Authenticator {
    let both = |callers| {
        let mut access = FunctionAccess::default();
        access.allowed_app_ids.insert(CONNECTOR_APP);
        access.allowed_roles.insert(OPERATOR.to_owned());
        access.callers = callers;
        access
    };
    let settings = h
        .settings()
        .with_function("grant-access", both(Callers::People))
        .with_function("purview-callback", both(Callers::Services));
    Authenticator::new(settings).unwrap()
}

#[tokio::test]
async fn an_app_id_entry_admits_only_app_only_tokens_never_a_person_signed_in_through_that_app() {
    let h = Harness::start().await;
    let auth = connector_listed_everywhere(&h);

    // A person signed in through the listed client, with no allowed role: the app-id entry is not theirs.
    let person = h.signer.sign_claims(&user_claims(&["Reader"])).unwrap();
    assert_eq!(
        refusal(&auth, "grant-access", &bearer(&person)).await,
        AuthError::AppIdRequiresAppOnlyToken
    );
    // The same when the token says it is a user's through `idtyp` only, or contradicts itself.
    let mut idtyp_user = app_claims(CONNECTOR_APP);
    idtyp_user["idtyp"] = json!("user");
    let mut scp_and_app = app_claims(CONNECTOR_APP);
    scp_and_app["scp"] = json!("user_impersonation");
    let mut empty_scp = app_claims(CONNECTOR_APP);
    empty_scp["scp"] = json!("");
    for claims in [idtyp_user, scp_and_app, empty_scp] {
        let token = h.signer.sign_claims(&claims).unwrap();
        assert_eq!(
            refusal(&auth, "grant-access", &bearer(&token)).await,
            AuthError::AppIdRequiresAppOnlyToken,
            "{claims}"
        );
    }

    // The application's own tokens still pass: v2 with `idtyp: app`, and v1 without `idtyp`.
    let app_only = h.signer.sign_claims(&app_claims(CONNECTOR_APP)).unwrap();
    let caller = auth
        .authenticate("grant-access", &bearer(&app_only))
        .await
        .unwrap();
    assert_eq!(caller.kind(), "application");
    let mut v1 = app_claims(CONNECTOR_APP);
    let map = v1.as_object_mut().unwrap();
    map.remove("azp");
    map.remove("idtyp");
    map.insert("appid".into(), json!(CONNECTOR_APP));
    map.insert("ver".into(), json!("1.0"));
    map.insert(
        "iss".into(),
        json!(format!("https://sts.windows.net/{TENANT}/")),
    );
    let v1 = h.signer.sign_claims(&v1).unwrap();
    let Caller::Application(app) = auth
        .authenticate("grant-access", &bearer(&v1))
        .await
        .unwrap()
    else {
        panic!("a v1 app-only token is an application")
    };
    assert_eq!(app.allowed_by, AllowedBy::AppId);

    // A person with an allowed role gets in on a function for people, by the role, as a user.
    let operator = h.signer.sign_claims(&user_claims(&[OPERATOR])).unwrap();
    let Caller::User(user) = auth
        .authenticate("grant-access", &bearer(&operator))
        .await
        .unwrap()
    else {
        panic!("a delegated token is a user")
    };
    assert_eq!(user.allowed_by, AllowedBy::Role(OPERATOR.to_owned()));
}

#[tokio::test]
async fn a_delegated_token_is_refused_on_the_purview_callback_whatever_role_or_client_it_has() {
    let h = Harness::start().await;
    let auth = connector_listed_everywhere(&h);
    let mut idtyp_user = user_claims(&[OPERATOR]);
    idtyp_user.as_object_mut().unwrap().remove("scp");
    idtyp_user["idtyp"] = json!("user");
    for claims in [user_claims(&[OPERATOR]), user_claims(&[]), idtyp_user] {
        let token = h.signer.sign_claims(&claims).unwrap();
        assert_eq!(
            refusal(&auth, "purview-callback", &bearer(&token)).await,
            AuthError::DelegatedTokenNotAccepted,
            "{claims}"
        );
    }
    // An application holding the role as an application permission (an app-only token) still may.
    let mut app_with_role = app_claims(STRANGER_APP);
    app_with_role["roles"] = json!([OPERATOR]);
    let token = h.signer.sign_claims(&app_with_role).unwrap();
    let Caller::Application(app) = auth
        .authenticate("purview-callback", &bearer(&token))
        .await
        .unwrap()
    else {
        panic!("an app-only token is an application")
    };
    assert_eq!(app.allowed_by, AllowedBy::Role(OPERATOR.to_owned()));
}

#[tokio::test]
async fn callers_not_on_the_allow_list_are_refused_and_unknown_functions_allow_nobody() {
    let h = Harness::start().await;
    let auth = h.authenticator();
    let stranger = h.signer.sign_claims(&app_claims(STRANGER_APP)).unwrap();
    assert_eq!(
        refusal(&auth, "purview-callback", &bearer(&stranger)).await,
        AuthError::CallerNotAllowed
    );
    let purview = h.signer.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    assert_eq!(
        refusal(&auth, "grant-access", &bearer(&purview)).await,
        AuthError::CallerNotAllowed
    );
    let no_role = h.signer.sign_claims(&user_claims(&["Reader"])).unwrap();
    assert_eq!(
        refusal(&auth, "grant-access", &bearer(&no_role)).await,
        AuthError::CallerNotAllowed
    );
    assert_eq!(
        refusal(&auth, "revoke-early", &bearer(&purview)).await,
        AuthError::CallerNotAllowed
    );
}

#[tokio::test]
async fn a_token_with_alg_none_is_refused() {
    let h = Harness::start().await;
    let token = forged(
        json!({"alg": "none", "typ": "JWT", "kid": h.signer.kid()}),
        &app_claims(PURVIEW_APP),
        None,
    );
    assert_eq!(
        refusal(&h.authenticator(), "purview-callback", &bearer(&token)).await,
        AuthError::UnsupportedAlgorithm
    );
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_public_key_as_secret_is_refused() {
    let h = Harness::start().await;
    let public_key = serde_json::to_vec(&h.signer.jwk()).unwrap();
    let n = h.signer.jwk()["n"].as_str().unwrap().to_owned();
    for secret in [public_key.as_slice(), n.as_bytes()] {
        let token = forged(
            json!({"alg": "HS256", "typ": "JWT", "kid": h.signer.kid()}),
            &app_claims(PURVIEW_APP),
            Some(secret),
        );
        assert_eq!(
            refusal(&h.authenticator(), "purview-callback", &bearer(&token)).await,
            AuthError::UnsupportedAlgorithm
        );
    }
}

#[tokio::test]
async fn each_bad_claim_is_refused_with_its_own_reason() {
    let h = Harness::start().await;
    let auth = h.authenticator();
    let with = |key: &str, value: Value| {
        let mut c = app_claims(PURVIEW_APP);
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = app_claims(PURVIEW_APP);
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let cases = [
        (with("exp", json!(now() - 120)), AuthError::TokenExpired),
        (with("nbf", json!(now() + 600)), AuthError::TokenNotYetValid),
        (
            with(
                "iss",
                json!(format!(
                    "https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"
                )),
            ),
            AuthError::WrongIssuer,
        ),
        (
            with("iss", json!("https://evil.example/")),
            AuthError::WrongIssuer,
        ),
        (
            with("aud", json!("api://someone-else")),
            AuthError::WrongAudience,
        ),
        (with("tid", json!(OTHER_TENANT)), AuthError::WrongTenant),
        (without("tid"), AuthError::MissingClaim),
        (without("azp"), AuthError::MissingClaim),
        (without("exp"), AuthError::MissingClaim),
        (without("aud"), AuthError::MissingClaim),
        (with("azp", json!("purview")), AuthError::MalformedToken),
    ];
    for (claims, expected) in cases {
        let token = h.signer.sign_claims(&claims).unwrap();
        assert_eq!(
            refusal(&auth, "purview-callback", &bearer(&token)).await,
            expected,
            "{claims}"
        );
    }
}

#[tokio::test]
async fn expiry_within_the_clock_skew_is_tolerated() {
    let h = Harness::start().await;
    let mut claims = app_claims(PURVIEW_APP);
    claims["exp"] = json!(now() - 30);
    let token = h.signer.sign_claims(&claims).unwrap();
    assert!(
        h.authenticator()
            .authenticate("purview-callback", &bearer(&token))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_tampered_payload_fails_the_signature_check() {
    let h = Harness::start().await;
    let token = h.signer.sign_claims(&app_claims(STRANGER_APP)).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let swapped = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&app_claims(PURVIEW_APP)).unwrap());
    let tampered = format!("{}.{}.{}", parts[0], swapped, parts[2]);
    assert_eq!(
        refusal(&h.authenticator(), "purview-callback", &bearer(&tampered)).await,
        AuthError::InvalidSignature
    );
}

#[tokio::test]
async fn malformed_or_missing_credentials_are_refused() {
    let h = Harness::start().await;
    let auth = h.authenticator();
    assert_eq!(
        refusal(&auth, "purview-callback", &HeaderMap::new()).await,
        AuthError::MissingCredentials
    );
    let mut digest = HeaderMap::new();
    digest.insert(AUTHORIZATION, HeaderValue::from_static("Digest abc"));
    assert_eq!(
        refusal(&auth, "purview-callback", &digest).await,
        AuthError::MissingCredentials
    );
    for garbage in ["abc", "a.b.c", "a.b.c.d"] {
        assert_eq!(
            refusal(&auth, "purview-callback", &bearer(garbage)).await,
            AuthError::MalformedToken,
            "{garbage}"
        );
    }
    assert_eq!(
        h.idp.jwks_hits.load(Ordering::SeqCst),
        0,
        "no fetch for garbage"
    );
}

#[tokio::test]
async fn an_unknown_key_id_is_refetched_once_and_forged_ids_cannot_force_more_fetches() {
    let h = Harness::start().await;
    let auth = h.authenticator();
    let good = h.signer.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    auth.authenticate("purview-callback", &bearer(&good))
        .await
        .unwrap();
    assert_eq!(h.idp.jwks_hits.load(Ordering::SeqCst), 1);

    let unknown = h.rotated.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    assert_eq!(
        refusal(&auth, "purview-callback", &bearer(&unknown)).await,
        AuthError::UnknownSigningKey
    );
    assert_eq!(h.idp.jwks_hits.load(Ordering::SeqCst), 2, "one refetch");
    // Within the interval no refetch is made, so nothing can say the key is unknown: retry later.
    for _ in 0..5 {
        let err = refusal(&auth, "purview-callback", &bearer(&unknown)).await;
        assert_eq!(err, AuthError::SigningKeyNotYetKnown);
        assert!(err.is_retryable());
    }
    assert_eq!(h.idp.jwks_hits.load(Ordering::SeqCst), 2, "rate-limited");
    // Known keys keep working from the cache meanwhile.
    auth.authenticate("purview-callback", &bearer(&good))
        .await
        .unwrap();
    assert_eq!(h.idp.jwks_hits.load(Ordering::SeqCst), 2);
}

/// A short refetch interval, so the tests can wait it out.
const REFETCH_INTERVAL: Duration = Duration::from_secs(2);

fn with_short_refetch_interval(h: &Harness) -> Authenticator {
    let mut settings = h.settings();
    settings.key_refresh.min_refetch_interval = REFETCH_INTERVAL;
    Authenticator::new(settings).unwrap()
}

/// A token naming a key id the tenant never published (the signature is never reached).
fn forged_kid(kid: &str) -> String {
    forged(
        json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        &app_claims(PURVIEW_APP),
        Some(b"not checked"),
    )
}

#[tokio::test]
async fn a_key_rollover_just_after_a_forged_kid_refetch_is_retryable_then_accepted_once_a_refetch_is_allowed()
 {
    let h = Harness::start().await;
    let auth = with_short_refetch_interval(&h);
    let old = h.signer.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    auth.authenticate("purview-callback", &bearer(&old))
        .await
        .unwrap();
    // A forged key id spends the refetch the interval allows, before Entra publishes its new key.
    assert_eq!(
        refusal(
            &auth,
            "purview-callback",
            &bearer(&forged_kid("attacker-1"))
        )
        .await,
        AuthError::UnknownSigningKey
    );
    assert_eq!(h.idp.jwks_hits.load(Ordering::SeqCst), 2);

    h.rotate_to_include_the_second_key();
    let new = h.rotated.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    let err = refusal(&auth, "purview-callback", &bearer(&new)).await;
    assert_eq!(err, AuthError::SigningKeyNotYetKnown, "not a final 401");
    assert!(err.is_retryable());
    let wait = auth.retry_after(err).unwrap();
    assert!(
        wait >= Duration::from_secs(1) && wait <= REFETCH_INTERVAL,
        "{wait:?}"
    );
    assert_eq!(h.idp.jwks_hits.load(Ordering::SeqCst), 2, "still held back");

    // The caller retries after the wait: the refetch is allowed now and finds the new key.
    tokio::time::sleep(wait).await;
    let caller = auth
        .authenticate("purview-callback", &bearer(&new))
        .await
        .unwrap();
    assert_eq!(caller.app_id(), Some(PURVIEW_APP));
    assert_eq!(h.idp.jwks_hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn forged_key_ids_cause_at_most_one_key_set_fetch_per_refetch_interval() {
    let h = Harness::start().await;
    let auth = Arc::new(with_short_refetch_interval(&h));
    let good = h.signer.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    auth.authenticate("purview-callback", &bearer(&good))
        .await
        .unwrap();
    let burst = |round: usize| {
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let (auth, headers) = (auth.clone(), bearer(&forged_kid(&format!("r{round}-{i}"))));
                tokio::spawn(async move { auth.authenticate("purview-callback", &headers).await })
            })
            .collect();
        async move {
            for t in tasks {
                let err = t.await.unwrap().unwrap_err();
                assert!(
                    matches!(
                        err,
                        AuthError::UnknownSigningKey | AuthError::SigningKeyNotYetKnown
                    ),
                    "{err:?}"
                );
            }
        }
    };

    for round in 0..2 {
        let before = h.idp.jwks_hits.load(Ordering::SeqCst);
        burst(round).await;
        // Once the refetch of this interval is spent, every other forged id is held back, not fetched.
        for i in 0..10 {
            assert_eq!(
                refusal(
                    &auth,
                    "purview-callback",
                    &bearer(&forged_kid(&format!("s{round}-{i}")))
                )
                .await,
                AuthError::SigningKeyNotYetKnown
            );
        }
        assert_eq!(
            h.idp.jwks_hits.load(Ordering::SeqCst),
            before + 1,
            "round {round}: one fetch for 34 forged key ids"
        );
        // Known keys keep working from the cache meanwhile, without a fetch.
        auth.authenticate("purview-callback", &bearer(&good))
            .await
            .unwrap();
        assert_eq!(h.idp.jwks_hits.load(Ordering::SeqCst), before + 1);
        if round == 0 {
            tokio::time::sleep(REFETCH_INTERVAL).await;
        }
    }
}

#[tokio::test]
async fn a_rotated_key_is_accepted_after_a_single_refetch() {
    let h = Harness::start().await;
    let auth = h.authenticator();
    let old = h.signer.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    auth.authenticate("purview-callback", &bearer(&old))
        .await
        .unwrap();

    h.rotate_to_include_the_second_key();
    let new = h.rotated.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    auth.authenticate("purview-callback", &bearer(&new))
        .await
        .unwrap();
    assert_eq!(h.idp.jwks_hits.load(Ordering::SeqCst), 2);
    auth.authenticate("purview-callback", &bearer(&new))
        .await
        .unwrap();
    assert_eq!(
        h.idp.jwks_hits.load(Ordering::SeqCst),
        2,
        "served from cache"
    );
}

#[tokio::test]
async fn concurrent_first_requests_share_one_key_set_fetch() {
    let h = Harness::start().await;
    let auth = Arc::new(h.authenticator());
    let token = h.signer.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (auth, headers) = (auth.clone(), bearer(&token));
            tokio::spawn(async move { auth.authenticate("purview-callback", &headers).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(h.idp.config_hits.load(Ordering::SeqCst), 1);
    assert_eq!(h.idp.jwks_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_key_set_is_a_retryable_refusal() {
    let h = Harness::start().await;
    h.idp.up.store(false, Ordering::SeqCst);
    let auth = h.authenticator();
    let token = h.signer.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    let err = refusal(&auth, "purview-callback", &bearer(&token)).await;
    assert_eq!(err, AuthError::KeySetUnavailable);
    assert!(err.is_retryable());

    // Nothing listening at all (a port that was just freed).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let mut settings = h.settings();
    settings.openid_configuration_url = Url::parse(&dead)
        .unwrap()
        .join(".well-known/openid-configuration")
        .unwrap();
    let err = refusal(
        &Authenticator::new(settings).unwrap(),
        "purview-callback",
        &bearer(&token),
    )
    .await;
    assert_eq!(err, AuthError::KeySetUnavailable);
}

#[tokio::test]
async fn basic_credentials_are_checked_only_where_enabled() {
    let h = Harness::start().await;
    let auth = h.authenticator();
    let caller = auth
        .authenticate("purview-callback", &basic("purview:correct horse battery"))
        .await
        .unwrap();
    assert_eq!(caller.kind(), "basic");
    assert_eq!(
        refusal(&auth, "purview-callback", &basic("purview:wrong")).await,
        AuthError::InvalidBasicCredentials
    );
    assert_eq!(
        refusal(
            &auth,
            "purview-callback",
            &basic("intruder:correct horse battery")
        )
        .await,
        AuthError::InvalidBasicCredentials
    );
    assert_eq!(
        refusal(
            &auth,
            "grant-access",
            &basic("purview:correct horse battery")
        )
        .await,
        AuthError::BasicNotEnabled
    );
    assert_eq!(
        refusal(&auth, "purview-callback", &HeaderMap::new()).await,
        AuthError::MissingCredentials
    );
}

#[tokio::test]
async fn an_empty_basic_password_lets_no_basic_caller_in_while_bearer_tokens_still_work() {
    let h = Harness::start().await;
    let mut settings = h.settings();
    settings.set_basic_credentials(
        "purview-callback",
        BasicCredentials::new("purview", SecretString::from("")),
    );
    let auth = Authenticator::new(settings).unwrap();
    for sent in [
        "purview:",
        "purview: ",
        "purview:correct horse battery",
        ":",
    ] {
        let err = refusal(&auth, "purview-callback", &basic(sent)).await;
        assert_eq!(err, AuthError::BasicNotConfigured, "{sent}");
        assert_eq!(err.reason_code(), "not_configured");
        assert!(
            err.is_retryable(),
            "an operator's fix makes the same call work"
        );
    }
    let token = h.signer.sign_claims(&app_claims(PURVIEW_APP)).unwrap();
    assert!(
        auth.authenticate("purview-callback", &bearer(&token))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn local_issuer_tokens_pass_the_same_authenticator_over_http() {
    let dir = TempDir::new().unwrap();
    let keys = dir.path().join(".uc-access/local-issuer");
    // Bind first so the issuer URL carries the real port, as the local run does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let server_issuer = LocalIssuer::load_or_create(&keys, &base).unwrap();
    let app = Router::new().nest(local_issuer::MOUNT_PATH, server_issuer.router());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let functions = ["purview-callback", "grant-access"];
    let auth = Authenticator::new(local_issuer::local_auth_settings(&base, &functions)).unwrap();
    // A separate `uc-access-dev token` process loads the same directory.
    let cli = LocalIssuer::load_or_create(&keys, &base).unwrap();
    let mint_as = |version: TokenVersion, who: &str| {
        cli.mint_as(
            version,
            &who.parse::<LocalCaller>().unwrap(),
            &local_issuer::local_audience(version),
            Duration::from_secs(600),
        )
        .unwrap()
    };
    let mint = |who: &str| mint_as(TokenVersion::V2, who);

    // Both shapes Entra issues, each with its own issuer, caller claim and audience, pass the same
    // authenticator over the local issuer's two documents.
    for version in [TokenVersion::V1, TokenVersion::V2] {
        for (function, who) in [
            ("purview-callback", "purview"),
            ("grant-access", "operator"),
        ] {
            let caller = auth
                .authenticate(function, &bearer(&mint_as(version, who)))
                .await
                .unwrap_or_else(|e| panic!("{version} {who}: {e}"));
            assert!(caller.app_id().is_some(), "{version} {who}");
        }
    }

    let purview = auth
        .authenticate("purview-callback", &bearer(&mint("purview")))
        .await
        .unwrap();
    assert_eq!(purview.app_id(), Some(local_issuer::LOCAL_PURVIEW_APP_ID));
    assert_eq!(purview.kind(), "application");

    let operator = auth
        .authenticate("grant-access", &bearer(&mint("operator")))
        .await
        .unwrap();
    assert_eq!(operator.kind(), "user");
    assert_eq!(
        operator.object_id(),
        Some(local_issuer::LOCAL_OPERATOR_OBJECT_ID)
    );

    let custom = format!("user:{USER_OID}:{OPERATOR}");
    assert!(
        auth.authenticate("grant-access", &bearer(&mint(&custom)))
            .await
            .is_ok()
    );

    for (function, who, expected) in [
        (
            "grant-access",
            "purview".to_owned(),
            AuthError::CallerNotAllowed,
        ),
        (
            "purview-callback",
            "operator".to_owned(),
            AuthError::DelegatedTokenNotAccepted,
        ),
        (
            "purview-callback",
            format!("app:{STRANGER_APP}"),
            AuthError::CallerNotAllowed,
        ),
        (
            "grant-access",
            format!("user:{USER_OID}"),
            AuthError::CallerNotAllowed,
        ),
    ] {
        assert_eq!(
            refusal(&auth, function, &bearer(&mint(&who))).await,
            expected,
            "{who} on {function}"
        );
    }
}
