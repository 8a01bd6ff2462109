//! The Key Vault store through the real `SecretClient` (`azure_security_keyvault_secrets` 1.x): a fake
//! transport plays Key Vault (401 challenge, then scripted answers) and a fake credential plays the managed
//! identity, so the SDK's bearer-token and challenge policies run as in Azure, with no network.

#![allow(clippy::unwrap_used)] // tests panic on purpose with the failing value

mod fake;
#[path = "../common/proxy.rs"]
mod proxy;

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;
use url::Url;

use fake::{Answer, FakeCredential, FakeVault, SCOPE, TOKEN, VALUE, VAULT};
use uc_access::secrets::{
    CachePolicy, CachedSecrets, KeyVaultOptions, KeyVaultRetry, KeyVaultSecrets, SecretError,
    SecretStore,
};

const NAME: &str = "databricks-client-secret";

fn store_with(vault: &Arc<FakeVault>, credential: Arc<FakeCredential>) -> KeyVaultSecrets {
    let options = KeyVaultOptions {
        transport: Some(vault.transport()),
        // Same counts as production, without the pauses.
        retry: KeyVaultRetry {
            initial_delay: Duration::ZERO,
            ..KeyVaultRetry::default()
        },
        timeout: Duration::from_secs(5),
    };
    KeyVaultSecrets::new(&Url::parse(VAULT).unwrap(), credential, options).unwrap()
}

fn store(vault: &Arc<FakeVault>) -> KeyVaultSecrets {
    store_with(vault, FakeCredential::new())
}

/// Every way a value could leak through printing.
fn assert_value_not_in(printed: &str) {
    assert!(
        !printed.contains(VALUE),
        "the secret value leaked: {printed}"
    );
}

async fn error_of(vault: &Arc<FakeVault>) -> SecretError {
    let err = store(vault).get(NAME).await.unwrap_err();
    assert_value_not_in(&err.to_string());
    assert_value_not_in(&format!("{err:?}"));
    err
}

#[tokio::test]
async fn a_secret_is_read_after_key_vaults_challenge_with_a_bearer_token_for_the_vault_scope() {
    let vault = FakeVault::new(vec![Answer::secret(NAME, VALUE)]);
    let credential = FakeCredential::new();
    let store = store_with(&vault, credential.clone());

    let value = store.get(NAME).await.unwrap();
    assert_eq!(value.expose_secret(), VALUE);

    let seen = vault.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].authorization, None,
        "the first request discovers the challenge"
    );
    assert_eq!(
        seen[1].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    for request in &seen {
        assert_eq!(request.method, "GET");
        assert_eq!(request.url.host_str(), Some("kv-uc-test.vault.azure.net"));
        assert_eq!(
            request.url.path().trim_end_matches('/'),
            format!("/secrets/{NAME}")
        );
        let api_version = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "api-version")
            .map(|(_, v)| v.into_owned());
        assert!(
            api_version.as_deref().is_some_and(|v| v.starts_with("20")),
            "{}",
            request.url
        );
    }
    assert_eq!(credential.scopes(), vec![SCOPE.to_owned()]);

    // The scope is known now: the next read is authorized at once.
    store.get(NAME).await.unwrap();
    let seen = vault.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen[2].authorization.is_some());

    assert_value_not_in(&format!("{store:?}"));
    assert_value_not_in(&format!("{value:?}"));
}

#[tokio::test]
async fn a_403_names_the_role_the_vault_and_keeps_key_vaults_code() {
    let vault = FakeVault::new(vec![Answer::with_body(
        403,
        json!({"error": {
            "code": "Forbidden",
            "message": "Caller is not authorized to perform action on resource. Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'",
            "innererror": {"code": "ForbiddenByRbac"}
        }}),
    )]);
    let err = error_of(&vault).await;
    let SecretError::Forbidden { ref code, .. } = err else {
        panic!("expected Forbidden, got {err:?}");
    };
    assert_eq!(code, "ForbiddenByRbac");
    let text = err.to_string();
    assert!(text.contains("Key Vault Secrets User"), "{text}");
    assert!(text.contains(VAULT), "{text}");
    assert!(text.contains(NAME), "{text}");
    assert!(
        text.contains("getSecret"),
        "Key Vault's message is kept: {text}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_disabled_secret_is_told_apart_from_a_missing_role() {
    let vault = FakeVault::new(vec![Answer::with_body(
        403,
        json!({"error": {"code": "Forbidden", "message": "Operation get is not allowed on a disabled secret.", "innererror": {"code": "SecretDisabled"}}}),
    )]);
    let err = error_of(&vault).await;
    assert!(matches!(err, SecretError::Disabled { .. }), "{err:?}");
    assert!(err.to_string().contains("disabled"));
}

#[tokio::test]
async fn a_404_names_the_secret_and_the_vault() {
    let vault = FakeVault::new(vec![Answer::error(
        404,
        "SecretNotFound",
        &format!("A secret with (name/id) {NAME} was not found in this key vault."),
    )]);
    let err = error_of(&vault).await;
    assert!(matches!(err, SecretError::NotFound { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(NAME) && text.contains(VAULT), "{text}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_429_is_returned_at_once_with_its_retry_after() {
    let vault = FakeVault::new(vec![
        Answer::error(
            429,
            "Throttled",
            "Request was not processed because too many requests were received.",
        )
        .header("retry-after", "17"),
    ]);
    let err = error_of(&vault).await;
    assert_eq!(
        err,
        SecretError::Throttled {
            vault: VAULT.to_owned(),
            retry_after: Some(Duration::from_secs(17)),
        }
    );
    assert!(err.is_retryable());
    let authorized = vault
        .seen()
        .iter()
        .filter(|s| s.authorization.is_some())
        .count();
    assert_eq!(
        authorized, 1,
        "429 is left to the cache, not slept on inside the request"
    );
}

#[tokio::test]
async fn a_transient_5xx_is_retried_by_the_pipeline() {
    let vault = FakeVault::new(vec![
        Answer::error(503, "ServiceUnavailable", "try again"),
        Answer::secret(NAME, VALUE),
    ]);
    let value = store(&vault).get(NAME).await.unwrap();
    assert_eq!(value.expose_secret(), VALUE);
    let authorized = vault
        .seen()
        .iter()
        .filter(|s| s.authorization.is_some())
        .count();
    assert_eq!(authorized, 2);
}

#[tokio::test]
async fn a_connection_error_is_retried_then_reported_as_unavailable() {
    let vault = FakeVault::new(vec![Answer::ConnectionError]);
    let err = store(&vault).get(NAME).await.unwrap_err();
    assert!(matches!(err, SecretError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("connection refused"), "{err}");
    assert!(err.is_retryable());
    let authorized = vault
        .seen()
        .iter()
        .filter(|s| s.authorization.is_some())
        .count();
    assert_eq!(
        authorized,
        1 + KeyVaultRetry::default().max_retries as usize
    );
}

#[tokio::test]
async fn a_refused_token_is_an_authentication_error() {
    let vault = FakeVault::new(vec![Answer::secret(NAME, VALUE)]);
    let err = store_with(
        &vault,
        FakeCredential::handing_out("token-from-another-tenant"),
    )
    .get(NAME)
    .await
    .unwrap_err();
    assert!(
        matches!(err, SecretError::Unauthenticated { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("401"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_managed_identity_failure_is_an_authentication_error() {
    let vault = FakeVault::new(vec![Answer::secret(NAME, VALUE)]);
    let err = store_with(&vault, FakeCredential::failing())
        .get(NAME)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SecretError::Unauthenticated { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("no identity assigned"), "{err}");
}

#[tokio::test]
async fn no_token_is_asked_for_a_challenge_naming_another_domain() {
    let vault = FakeVault::challenging_for(
        "https://vault.attacker.example",
        vec![Answer::secret(NAME, VALUE)],
    );
    let credential = FakeCredential::new();
    let err = store_with(&vault, credential.clone())
        .get(NAME)
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Other { .. }), "{err:?}");
    assert_eq!(credential.calls(), 0);
    assert_eq!(vault.seen().len(), 1);
}

#[tokio::test]
async fn a_body_that_is_not_a_secret_is_reported_without_quoting_it() {
    // serde would quote the string in its own message ("invalid type: string \"…\"").
    let vault = FakeVault::new(vec![Answer::with_body(
        200,
        json!({"value": VALUE, "attributes": VALUE}),
    )]);
    let err = error_of(&vault).await;
    assert!(matches!(err, SecretError::Other { .. }), "{err:?}");
}

#[tokio::test]
async fn a_vault_that_never_answers_is_unavailable_after_the_timeout() {
    let vault = FakeVault::new(vec![Answer::Hang]);
    let mut options = KeyVaultOptions {
        transport: Some(vault.transport()),
        ..KeyVaultOptions::default()
    };
    options.timeout = Duration::from_millis(200);
    let store =
        KeyVaultSecrets::new(&Url::parse(VAULT).unwrap(), FakeCredential::new(), options).unwrap();
    let err = store.get(NAME).await.unwrap_err();
    assert!(matches!(err, SecretError::Unavailable { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_bad_name_never_reaches_the_vault() {
    let vault = FakeVault::new(vec![Answer::secret(NAME, VALUE)]);
    let err = store(&vault).get("x/../../keys/k").await.unwrap_err();
    assert!(matches!(err, SecretError::InvalidName { .. }));
    assert!(vault.seen().is_empty());
}

#[tokio::test]
async fn the_cache_in_front_of_key_vault_reads_each_secret_once_per_ttl() {
    let vault = FakeVault::new(vec![Answer::secret(NAME, VALUE)]);
    let cached = CachedSecrets::new(
        store(&vault),
        CachePolicy::new(Duration::from_secs(300), Duration::from_secs(900)),
    );
    for _ in 0..5 {
        assert_eq!(cached.get(NAME).await.unwrap().expose_secret(), VALUE);
    }
    assert_eq!(cached.reads(), 1);
    assert_eq!(vault.seen().len(), 2, "one challenge, one authorized read");
    assert_value_not_in(&format!("{cached:?}"));
}

#[test]
fn the_managed_identity_store_is_built_without_a_request() {
    let store = KeyVaultSecrets::with_managed_identity(
        &Url::parse(VAULT).unwrap(),
        Some("11111111-1111-1111-1111-111111111111".to_owned()),
        &uc_access::outbound::http_client(),
        KeyVaultOptions::default(),
    )
    .unwrap();
    assert_eq!(store.vault(), VAULT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managed_identity_fetches_its_tokens_over_the_client_it_is_given() {
    // Key Vault, the Blob ledger and Databricks (`azure-msi`) build their credential with this; in the
    // app the client is the process's one HTTP client (uc_access::outbound), not one of the SDK's own.
    use azure_core::credentials::TokenCredential;

    let proxy = proxy::RecordingProxy::start().await;
    let credential = uc_access::outbound::managed_identity(None, &proxy.client()).unwrap();
    let token = credential
        .get_token(&["https://vault.azure.net/.default"], None)
        .await
        .unwrap();
    assert_eq!(token.token.secret(), "a-token-from-the-recording-proxy");
    let lines = proxy.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    // No App Service identity endpoint is set here, so the SDK asks the instance metadata service.
    assert!(
        lines[0].starts_with("GET http://169.254.169.254/metadata/identity/oauth2/token"),
        "{lines:?}"
    );
    assert!(lines[0].contains("resource=https"), "{lines:?}");
}
