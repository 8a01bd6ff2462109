//! Token sources and the token cache.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use base64::Engine;
use secrecy::SecretString;
use serde_json::json;
use uc_access::databricks::{
    CachingTokenSource, DatabricksAuth, DatabricksError, DatabricksSettings, EntraTokenSource,
    OAuthM2mTokenSource, TokenSource,
};
use uc_access::settings::Env;

use crate::fake::{ACCOUNT, Fake, Reply, http};

const SECRET: &str = "dose-super-secret-value";

fn m2m(fake: &Fake) -> OAuthM2mTokenSource {
    OAuthM2mTokenSource::new(
        http(),
        OAuthM2mTokenSource::account_token_url(&fake.url, ACCOUNT),
        "sp-client".into(),
        SecretString::from(SECRET),
        Duration::from_secs(5),
    )
}

fn token_reply(expires_in: u64) -> Reply {
    Reply::json(
        200,
        json!({"access_token":"minted","token_type":"Bearer","expires_in":expires_in}),
    )
}

#[tokio::test]
async fn concurrent_callers_share_one_token_fetch() {
    let fake = Fake::start(|_, _| token_reply(3600).after(Duration::from_millis(100))).await;
    let cache = Arc::new(CachingTokenSource::new(
        Arc::new(m2m(&fake)),
        Duration::from_secs(60),
    ));
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap().expose(), "minted");
    }
    assert_eq!(fake.seen().len(), 1);
    assert_eq!(cache.fetches(), 1);
}

#[tokio::test]
async fn m2m_asks_for_all_apis_with_basic_client_credentials() {
    let fake = Fake::start(|_, _| token_reply(3600)).await;
    m2m(&fake).token().await.unwrap();
    let seen = &fake.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.raw_path, format!("/oidc/accounts/{ACCOUNT}/v1/token"));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("sp-client:{SECRET}"));
    assert_eq!(seen.headers["authorization"], format!("Basic {basic}"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(seen.body.as_bytes())
        .into_owned()
        .collect();
    assert!(form.contains(&("grant_type".into(), "client_credentials".into())));
    assert!(form.contains(&("scope".into(), "all-apis".into())));
}

#[tokio::test]
async fn an_expiring_token_is_refreshed() {
    let fake = Fake::start(|_, _| token_reply(1)).await;
    let cache = CachingTokenSource::new(Arc::new(m2m(&fake)), Duration::ZERO);
    cache.token().await.unwrap();
    cache.token().await.unwrap();
    assert_eq!(cache.fetches(), 1, "still fresh");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    cache.token().await.unwrap();
    assert_eq!(cache.fetches(), 2);
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn a_refused_secret_is_an_authentication_error_that_does_not_show_the_secret() {
    let fake = Fake::start(|_, _| {
        Reply::json(
            401,
            json!({"error":"invalid_client","error_description":"Client authentication failed"}),
        )
    })
    .await;
    let source = m2m(&fake);
    let err = source.token().await.unwrap_err();
    assert!(
        matches!(err, DatabricksError::Unauthenticated { .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("sp-client"));
    for printed in [err.to_string(), format!("{err:?}"), format!("{source:?}")] {
        assert!(!printed.contains(SECRET), "{printed}");
    }
}

#[derive(Debug, Default)]
struct FakeCredential {
    scopes: Mutex<Vec<String>>,
}

#[async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.scopes
            .lock()
            .expect("not poisoned")
            .extend(scopes.iter().map(|s| s.to_string()));
        Ok(AccessToken::new(
            "entra-token",
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

#[tokio::test]
async fn entra_tokens_are_asked_for_the_azure_databricks_resource() {
    let credential = Arc::new(FakeCredential::default());
    let token = EntraTokenSource::new(credential.clone())
        .token()
        .await
        .unwrap();
    assert_eq!(token.expose(), "entra-token");
    assert!(token.fresh_for(Duration::from_secs(3000)));
    assert_eq!(
        *credential.scopes.lock().unwrap(),
        ["2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"]
    );
}

#[tokio::test]
async fn with_m2m_one_account_token_serves_the_account_and_the_workspaces() {
    let fake = Fake::start(|_, _| token_reply(3600)).await;
    let env = Env::from_pairs([
        ("DATABRICKS_ACCOUNT_ID", ACCOUNT),
        ("DATABRICKS_ACCOUNT_HOST", fake.url.as_str()),
        ("DATABRICKS_CLIENT_ID", "sp-client"),
        ("DATABRICKS_CLIENT_SECRET", SECRET),
    ]);
    let settings = DatabricksSettings::from_env(&env).unwrap();
    let auth = DatabricksAuth::from_settings(&settings, http()).unwrap();
    auth.account().token().await.unwrap();
    auth.workspace(&fake.url).token().await.unwrap();
    let other = url::Url::parse("https://adb-2.azuredatabricks.net").unwrap();
    auth.workspace(&other).token().await.unwrap();

    let paths: Vec<_> = fake.seen().iter().map(|s| s.raw_path.clone()).collect();
    assert_eq!(paths, [format!("/oidc/accounts/{ACCOUNT}/v1/token")]);
    assert_eq!(auth.token_fetches(), 1);
    assert!(
        !auth
            .m2m_workspace(&fake.url)
            .unwrap()
            .uses_workspace_token()
    );
}

const ACCOUNT_TOKEN_PATH: &str = "/oidc/accounts/11111111-2222-3333-4444-555555555555/v1/token";
const WORKSPACE_TOKEN_PATH: &str = "/oidc/v1/token";
const PERMISSIONS_PATH: &str = "/api/2.1/unity-catalog/permissions/table/main.sales.orders";

/// Token endpoints that mint `account-<n>` and `workspace-<n>`, valid for `expires_in` seconds, and a
/// workspace API that answers a request with an account token `refusal` (when set) and 200 otherwise.
fn m2m_world(
    refusal: Arc<Mutex<Option<Reply>>>,
    expires_in: u64,
) -> impl Fn(&crate::fake::Seen, usize) -> Reply + Send + Sync + 'static {
    let issued = Arc::new(std::sync::atomic::AtomicU64::new(0));
    move |seen, _| {
        let n = issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let mint = |kind: &str| {
            Reply::json(
                200,
                json!({"access_token": format!("{kind}-{n}"), "token_type":"Bearer", "expires_in": expires_in}),
            )
        };
        if seen.raw_path == ACCOUNT_TOKEN_PATH {
            return mint("account");
        }
        if seen.raw_path == WORKSPACE_TOKEN_PATH {
            return mint("workspace");
        }
        let bearer = seen.headers["authorization"].to_str().unwrap();
        match refusal.lock().unwrap().clone() {
            Some(reply) if bearer.starts_with("Bearer account-") => reply,
            _ => Reply::json(200, json!({"privilege_assignments": []})),
        }
    }
}

fn m2m_clients(fake: &Fake, secret: LiveSecretArg) -> uc_access::databricks::DatabricksClients {
    use uc_access::databricks::{AuthSettings, DatabricksClients, Transport};
    let env = Env::from_pairs([
        ("DATABRICKS_ACCOUNT_ID", ACCOUNT),
        ("DATABRICKS_ACCOUNT_HOST", fake.url.as_str()),
        ("DATABRICKS_HOST", fake.url.as_str()),
        ("DATABRICKS_CLIENT_ID", "sp-client"),
        ("DATABRICKS_CLIENT_SECRET", SECRET),
    ]);
    let mut settings = DatabricksSettings::from_env(&env).unwrap();
    if let Some(secret) = secret {
        settings.auth = AuthSettings::OAuthM2m {
            client_id: "sp-client".into(),
            client_secret: secret,
        };
    }
    let auth = Arc::new(DatabricksAuth::from_settings(&settings, http()).unwrap());
    let transport = Transport::new(http(), crate::fake::fast_retry(1), Duration::from_secs(5));
    DatabricksClients::new(transport, auth, fake.url.clone(), ACCOUNT.into(), false)
}

type LiveSecretArg = Option<uc_access::secrets::LiveSecret>;

async fn read_grants(
    clients: &uc_access::databricks::DatabricksClients,
    fake: &Fake,
) -> Result<(), DatabricksError> {
    use uc_access::databricks::{Deadline, GetPermissionsOptions, GrantsApi};
    use uc_access::domain::{Securable, SecurableType};
    let table = Securable::parse(SecurableType::Table, "main.sales.orders").unwrap();
    clients
        .grants
        .get_direct(
            &fake.url,
            &table,
            &GetPermissionsOptions::default(),
            Deadline::after(Duration::from_secs(10)),
        )
        .await
        .map(|_| ())
}

/// Each request as `path bearer-or-basic`, tokens shown by value (they are fakes).
fn trail(fake: &Fake) -> Vec<String> {
    fake.seen()
        .iter()
        .map(|s| {
            let auth = s.headers["authorization"].to_str().unwrap();
            let auth = auth.strip_prefix("Bearer ").unwrap_or("basic");
            format!("{} {auth}", s.raw_path)
        })
        .collect()
}

#[tokio::test]
async fn a_workspace_that_refuses_the_account_token_gets_its_own_token_and_the_request_once_more() {
    let refusals = [
        Reply::json(
            401,
            json!({"error_code":"UNAUTHENTICATED","message":"Invalid access token."}),
        ),
        Reply::json(
            403,
            json!({"error_code":"403","message":"Invalid access token."}),
        ),
        Reply::json(
            403,
            json!({"error_code":"INVALID_TOKEN","message":"token not valid here"}),
        ),
    ];
    for refusal in refusals {
        let fake = Fake::start(m2m_world(Arc::new(Mutex::new(Some(refusal.clone()))), 3600)).await;
        let clients = m2m_clients(&fake, None);
        read_grants(&clients, &fake).await.unwrap();
        read_grants(&clients, &fake).await.unwrap();
        assert_eq!(
            trail(&fake),
            [
                format!("{ACCOUNT_TOKEN_PATH} basic"),
                format!("{PERMISSIONS_PATH} account-1"),
                format!("{WORKSPACE_TOKEN_PATH} basic"),
                format!("{PERMISSIONS_PATH} workspace-3"),
                format!("{PERMISSIONS_PATH} workspace-3"),
            ],
            "{refusal:?}"
        );
        assert_eq!(clients.auth.token_fetches(), 2);
        assert_eq!(clients.requests(), 3, "the refused request counts");
        assert!(
            clients
                .auth
                .m2m_workspace(&fake.url)
                .unwrap()
                .uses_workspace_token()
        );
        // The account APIs keep the account token: no new account token is fetched.
        clients.auth.account().token().await.unwrap();
        assert_eq!(clients.auth.token_fetches(), 2);
    }
}

#[tokio::test]
async fn a_permission_denial_with_the_account_token_is_not_a_reason_for_a_workspace_token() {
    let denial = Reply::json(
        403,
        json!({"error_code":"PERMISSION_DENIED","message":"User does not have MANAGE on Table 'main.sales.orders'"}),
    );
    let fake = Fake::start(m2m_world(Arc::new(Mutex::new(Some(denial))), 3600)).await;
    let clients = m2m_clients(&fake, None);
    let err = read_grants(&clients, &fake).await.unwrap_err();
    assert!(
        matches!(err, DatabricksError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert_eq!(
        trail(&fake),
        [
            format!("{ACCOUNT_TOKEN_PATH} basic"),
            format!("{PERMISSIONS_PATH} account-1"),
        ]
    );
    assert_eq!(clients.auth.token_fetches(), 1);
    assert!(
        !clients
            .auth
            .m2m_workspace(&fake.url)
            .unwrap()
            .uses_workspace_token()
    );
}

#[tokio::test]
async fn a_workspace_token_that_is_refused_too_is_an_authentication_error_without_a_loop() {
    let fake = Fake::start(|seen, _| match seen.raw_path.as_str() {
        ACCOUNT_TOKEN_PATH | WORKSPACE_TOKEN_PATH => token_reply(3600),
        _ => Reply::json(
            401,
            json!({"error_code":"UNAUTHENTICATED","message":"Invalid access token."}),
        ),
    })
    .await;
    let clients = m2m_clients(&fake, None);
    let err = read_grants(&clients, &fake).await.unwrap_err();
    assert!(
        matches!(err, DatabricksError::Unauthenticated { .. }),
        "{err:?}"
    );
    assert_eq!(
        fake.seen().len(),
        4,
        "account token, refused, workspace token, refused"
    );
    // From now on the workspace token alone, refused once per request, with no further token fetch.
    let err = read_grants(&clients, &fake).await.unwrap_err();
    assert!(matches!(err, DatabricksError::Unauthenticated { .. }));
    assert_eq!(fake.seen().len(), 5);
    assert_eq!(clients.auth.token_fetches(), 2);
}

#[tokio::test]
async fn concurrent_first_requests_to_a_refusing_workspace_fetch_one_workspace_token() {
    let refusal = Reply::json(
        401,
        json!({"error_code":"UNAUTHENTICATED","message":"Invalid access token."}),
    )
    .after(Duration::from_millis(50));
    let fake = Fake::start(m2m_world(Arc::new(Mutex::new(Some(refusal))), 3600)).await;
    let clients = Arc::new(m2m_clients(&fake, None));
    // The account token first, so every caller leaves with it at once.
    clients.auth.account().token().await.unwrap();
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (clients, fake) = (clients.clone(), fake.clone());
            tokio::spawn(async move { read_grants(&clients, &fake).await })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap().unwrap();
    }
    let seen = fake.seen();
    let count = |path: &str| seen.iter().filter(|s| s.raw_path == path).count();
    assert_eq!(count(WORKSPACE_TOKEN_PATH), 1);
    assert_eq!(count(ACCOUNT_TOKEN_PATH), 1);
    assert_eq!(clients.auth.token_fetches(), 2);
    // Each caller sent its request at most twice: once refused, once with the workspace token.
    assert!(count(PERMISSIONS_PATH) <= 16, "{}", count(PERMISSIONS_PATH));
}

/// A client secret read through Key Vault's cache with a long TTL (only a refusal re-reads it), stored
/// in a vault that holds `initial` until the test rotates it.
fn vaulted_secret(initial: &str) -> (Arc<RotatingVault>, uc_access::secrets::LiveSecret) {
    use uc_access::secrets::{CachePolicy, CachedSecrets, LiveSecret, SecretName, SecretRef};
    let vault = Arc::new(RotatingVault::default());
    *vault.value.lock().unwrap() = initial.into();
    let cached = CachedSecrets::new(
        vault.clone(),
        CachePolicy::new(Duration::from_secs(3600), Duration::ZERO),
    );
    let secret = LiveSecret::stored(
        SecretString::from(initial.to_owned()),
        SecretRef::new(
            Arc::new(cached),
            SecretName::parse("databricks-client-secret").unwrap(),
        ),
    );
    (vault, secret)
}

/// A Key Vault stand-in for rotation tests: the test changes the value; reads are counted.
#[derive(Debug, Default)]
struct RotatingVault {
    value: Mutex<String>,
    reads: Mutex<u32>,
}

#[async_trait]
impl uc_access::secrets::SecretStore for RotatingVault {
    async fn get(&self, _name: &str) -> Result<SecretString, uc_access::secrets::SecretError> {
        *self.reads.lock().unwrap() += 1;
        Ok(SecretString::from(self.value.lock().unwrap().clone()))
    }
}

fn basic_for(secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("sp-client:{secret}"))
    )
}

#[tokio::test]
async fn an_m2m_secret_rotated_in_key_vault_is_used_without_a_restart() {
    // Databricks accepts whichever secret is valid now.
    let valid = Arc::new(Mutex::new("old-secret".to_owned()));
    let accepted = valid.clone();
    let fake = Fake::start(move |seen, _| {
        if seen.headers["authorization"] == basic_for(&accepted.lock().unwrap()) {
            token_reply(3600)
        } else {
            Reply::json(401, json!({"error":"invalid_client"}))
        }
    })
    .await;
    // A long cache TTL: only the refusal can make the source see the new value.
    let (vault, secret) = vaulted_secret("old-secret");
    let source = OAuthM2mTokenSource::new(
        http(),
        OAuthM2mTokenSource::account_token_url(&fake.url, ACCOUNT),
        "sp-client".into(),
        secret,
        Duration::from_secs(5),
    );
    source.token().await.unwrap();

    // The operator rotates: a new secret in Databricks and in Key Vault; the old one stops working.
    *valid.lock().unwrap() = "new-secret".into();
    *vault.value.lock().unwrap() = "new-secret".into();
    assert_eq!(source.token().await.unwrap().expose(), "minted");
    let seen = fake.seen();
    assert_eq!(
        seen.len(),
        3,
        "the refused try and the retry with the new secret"
    );
    assert_eq!(seen[1].headers["authorization"], basic_for("old-secret"));
    assert_eq!(seen[2].headers["authorization"], basic_for("new-secret"));
    assert_eq!(
        *vault.reads.lock().unwrap(),
        2,
        "read at first use and after the refusal"
    );

    // Revoked in Databricks without a new value in Key Vault: a clear authentication error, and the
    // refusal does not turn into repeated vault reads.
    *valid.lock().unwrap() = "newer-secret".into();
    for _ in 0..3 {
        let err = source.token().await.unwrap_err();
        assert!(
            matches!(err, DatabricksError::Unauthenticated { .. }),
            "{err:?}"
        );
    }
    assert_eq!(
        *vault.reads.lock().unwrap(),
        2,
        "re-read at most once per interval"
    );
}

/// Rotates a secret once in the world of `m2m_world` (tokens always due for renewal, so every request
/// fetches one with the secret of the moment) and returns the token requests as `path secret`.
async fn rotate_once(refuse_account_tokens: bool) -> Vec<String> {
    let valid = Arc::new(Mutex::new("secret-0".to_owned()));
    let refusal = refuse_account_tokens.then(|| {
        Reply::json(
            401,
            json!({"error_code":"UNAUTHENTICATED","message":"Invalid access token."}),
        )
    });
    let world = m2m_world(Arc::new(Mutex::new(refusal)), 1);
    let accepted = valid.clone();
    let fake = Fake::start(move |seen, i| {
        let is_token = seen.raw_path.starts_with("/oidc/");
        if is_token && seen.headers["authorization"] != basic_for(&accepted.lock().unwrap()) {
            return Reply::json(401, json!({"error":"invalid_client"}));
        }
        world(seen, i)
    })
    .await;
    let (vault, secret) = vaulted_secret("secret-0");
    let clients = m2m_clients(&fake, Some(secret));
    read_grants(&clients, &fake).await.unwrap();
    *valid.lock().unwrap() = "secret-1".into();
    *vault.value.lock().unwrap() = "secret-1".into();
    read_grants(&clients, &fake).await.unwrap();
    fake.seen()
        .iter()
        .filter(|s| s.raw_path.starts_with("/oidc/"))
        .map(|s| {
            let auth = s.headers["authorization"].to_str().unwrap();
            let secret = if auth == basic_for("secret-0") {
                "secret-0"
            } else if auth == basic_for("secret-1") {
                "secret-1"
            } else {
                "?"
            };
            format!("{} {secret}", s.raw_path)
        })
        .collect()
}

#[tokio::test]
async fn a_rotated_secret_is_picked_up_whichever_token_a_workspace_gets() {
    assert_eq!(
        rotate_once(false).await,
        [
            format!("{ACCOUNT_TOKEN_PATH} secret-0"),
            format!("{ACCOUNT_TOKEN_PATH} secret-0"),
            format!("{ACCOUNT_TOKEN_PATH} secret-1"),
        ],
        "account-level token on the workspace: the account endpoint refuses the old secret, the new one is read"
    );
    assert_eq!(
        rotate_once(true).await,
        [
            format!("{ACCOUNT_TOKEN_PATH} secret-0"),
            format!("{WORKSPACE_TOKEN_PATH} secret-0"),
            format!("{WORKSPACE_TOKEN_PATH} secret-0"),
            format!("{WORKSPACE_TOKEN_PATH} secret-1"),
        ],
        "workspace-level token: the workspace endpoint refuses the old secret, the new one is read"
    );
}

/// One token for every host (as with Entra ID), minted `account-1`, `account-2`, ... by the fake, whose
/// permissions API refuses the tokens in `revoked` (`*`: every token).
fn revoking_world(
    revoked: Arc<Mutex<std::collections::BTreeSet<String>>>,
) -> impl Fn(&crate::fake::Seen, usize) -> Reply + Send + Sync + 'static {
    let issued = Arc::new(std::sync::atomic::AtomicU64::new(0));
    move |seen, _| {
        if seen.raw_path == ACCOUNT_TOKEN_PATH {
            let n = issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            return Reply::json(
                200,
                json!({"access_token": format!("account-{n}"), "token_type":"Bearer", "expires_in": 3600}),
            );
        }
        let bearer = seen.headers["authorization"].to_str().unwrap();
        let token = bearer.trim_start_matches("Bearer ");
        let revoked = revoked.lock().unwrap();
        if revoked.contains(token) || revoked.contains("*") {
            Reply::json(
                401,
                json!({"error_code":"UNAUTHENTICATED","message":"Invalid access token."}),
            )
        } else {
            Reply::json(200, json!({"privilege_assignments": []}))
        }
    }
}

#[tokio::test]
async fn a_cached_token_revoked_before_its_expiry_is_replaced_once_but_a_fresh_refused_one_is_not()
{
    use uc_access::databricks::{DatabricksClients, MIN_AGE_TO_DROP_REFUSED, Transport};
    let revoked = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let fake = Fake::start(revoking_world(revoked.clone())).await;
    let auth = Arc::new(DatabricksAuth::shared(Arc::new(m2m(&fake))));
    let transport = Transport::new(http(), crate::fake::fast_retry(1), Duration::from_secs(5));
    let clients = DatabricksClients::new(transport, auth, fake.url.clone(), ACCOUNT.into(), false);
    let bearers = |fake: &Fake| -> Vec<String> {
        fake.seen()
            .iter()
            .filter(|s| s.raw_path == PERMISSIONS_PATH)
            .map(|s| s.headers["authorization"].to_str().unwrap().to_owned())
            .collect()
    };

    read_grants(&clients, &fake).await.unwrap();
    // The hour-long token, a minute old, is revoked early.
    revoked.lock().unwrap().insert("account-1".to_owned());
    tokio::time::pause();
    tokio::time::advance(MIN_AGE_TO_DROP_REFUSED).await;
    tokio::time::resume();
    read_grants(&clients, &fake).await.unwrap();
    assert_eq!(
        bearers(&fake),
        ["Bearer account-1", "Bearer account-1", "Bearer account-2"],
        "the refused request is sent once more with a new token"
    );
    assert_eq!(clients.auth.token_fetches(), 2);

    // Every token refused: the new one was fetched moments ago, so the credential is the problem. Each
    // request fails once, without a retry and without fetching tokens in a loop.
    revoked.lock().unwrap().insert("*".to_owned());
    for _ in 0..3 {
        let err = read_grants(&clients, &fake).await.unwrap_err();
        assert!(
            matches!(err, DatabricksError::Unauthenticated { .. }),
            "{err:?}"
        );
    }
    assert_eq!(bearers(&fake).len(), 6);
    assert_eq!(clients.auth.token_fetches(), 2);
}
