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
async fn m2m_settings_mint_account_and_workspace_tokens_at_their_own_endpoints() {
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
    auth.workspace(&fake.url).token().await.unwrap();

    let paths: Vec<_> = fake.seen().iter().map(|s| s.raw_path.clone()).collect();
    assert_eq!(
        paths,
        [
            format!("/oidc/accounts/{ACCOUNT}/v1/token"),
            "/oidc/v1/token".to_owned()
        ]
    );
    assert_eq!(auth.token_fetches(), 2);
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
    use uc_access::secrets::{CachePolicy, CachedSecrets, LiveSecret, SecretName, SecretRef};

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
    let vault = Arc::new(RotatingVault::default());
    *vault.value.lock().unwrap() = "old-secret".into();
    // A long cache TTL: only the refusal can make the source see the new value.
    let cached = CachedSecrets::new(
        vault.clone(),
        CachePolicy::new(Duration::from_secs(3600), Duration::ZERO),
    );
    let secret = LiveSecret::stored(
        SecretString::from("old-secret"),
        SecretRef::new(
            Arc::new(cached),
            SecretName::parse("databricks-client-secret").unwrap(),
        ),
    );
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
