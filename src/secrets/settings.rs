//! Where secrets come from and what they are called: `KEY_VAULT_URL` turns Key Vault on (otherwise the
//! environment is used), the secret names can be changed, and the cache's TTL and grace are bounded.

use std::time::Duration;

use url::Url;

use super::{CachePolicy, SecretName};
use crate::env::{Env, SettingsError};

/// The vault, e.g. `https://contoso-uc-access.vault.azure.net/`. Unset: secrets come from the environment.
pub const KEY_VAULT_URL: &str = "KEY_VAULT_URL";
/// Name of the secret holding the Databricks client secret (OAuth M2M, or the Entra application's).
pub const DATABRICKS_CLIENT_SECRET_NAME: &str = "UC_ACCESS_SECRET_DATABRICKS_CLIENT_SECRET";
/// Name of the secret holding the password of `purview-callback`'s HTTP Basic credentials.
pub const PURVIEW_BASIC_PASSWORD_NAME: &str = "UC_ACCESS_SECRET_PURVIEW_BASIC_PASSWORD";
/// How long a secret read from Key Vault is used before it is read again.
pub const TTL_SECONDS: &str = "UC_ACCESS_SECRET_TTL_SECONDS";
/// How long after its TTL an old value may still be used while Key Vault is throttling or unreachable.
pub const STALE_GRACE_SECONDS: &str = "UC_ACCESS_SECRET_STALE_GRACE_SECONDS";

pub const DEFAULT_DATABRICKS_CLIENT_SECRET_NAME: &str = "databricks-client-secret";
pub const DEFAULT_PURVIEW_BASIC_PASSWORD_NAME: &str = "purview-callback-basic-password";
/// Five minutes: a rotation is seen within five minutes, and a busy app reads each secret 12 times an
/// hour per instance, far below Key Vault's per-vault limits.
pub const DEFAULT_TTL_SECONDS: u64 = 300;
/// Fifteen minutes of Key Vault outage absorbed before calls that need a secret fail.
pub const DEFAULT_STALE_GRACE_SECONDS: u64 = 900;
/// A day: longer TTLs or graces would mostly hide a rotation or a revoked identity.
const MAX_SECONDS: u64 = 24 * 60 * 60;

/// The user-assigned managed identity's client id, read as the ledger reads it.
const CLIENT_ID_KEYS: [&str; 2] = ["ARM_CLIENT_ID", "AZURE_CLIENT_ID"];

/// Where the secrets are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Azure Key Vault, as the app's managed identity (user-assigned when a client id is given).
    KeyVault {
        vault_url: Url,
        managed_identity_client_id: Option<String>,
    },
    /// Environment variables (local runs, CI): see [`SecretName::env_var`].
    Environment,
}

/// The secret settings, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsSettings {
    pub source: SecretSource,
    pub databricks_client_secret: SecretName,
    pub purview_basic_password: SecretName,
    pub cache: CachePolicy,
}

impl SecretsSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let source = match env.get(KEY_VAULT_URL) {
            None => SecretSource::Environment,
            Some(raw) => SecretSource::KeyVault {
                vault_url: vault_url(raw)?,
                managed_identity_client_id: env
                    .get_first(&CLIENT_ID_KEYS)
                    .map(|(_, v)| v.to_owned()),
            },
        };
        let ttl = bounded_seconds(env, TTL_SECONDS, DEFAULT_TTL_SECONDS, 1)?;
        let grace = bounded_seconds(env, STALE_GRACE_SECONDS, DEFAULT_STALE_GRACE_SECONDS, 0)?;
        Ok(Self {
            source,
            databricks_client_secret: secret_name(
                env,
                DATABRICKS_CLIENT_SECRET_NAME,
                DEFAULT_DATABRICKS_CLIENT_SECRET_NAME,
            )?,
            purview_basic_password: secret_name(
                env,
                PURVIEW_BASIC_PASSWORD_NAME,
                DEFAULT_PURVIEW_BASIC_PASSWORD_NAME,
            )?,
            cache: CachePolicy::new(ttl, grace),
        })
    }

    pub fn uses_key_vault(&self) -> bool {
        matches!(self.source, SecretSource::KeyVault { .. })
    }
}

fn vault_url(raw: &str) -> Result<Url, SettingsError> {
    let bad = |problem: &str| SettingsError::new(KEY_VAULT_URL, problem);
    let url = Url::parse(raw)
        .map_err(|e| SettingsError::new(KEY_VAULT_URL, format!("is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(bad(
            "must be https (e.g. https://<vault>.vault.azure.net/); the Key Vault client sends tokens only over https",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must name the vault's host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "must be the vault URL without a path (e.g. https://<vault>.vault.azure.net/)",
        ));
    }
    Ok(url)
}

fn secret_name(env: &Env, key: &str, default: &str) -> Result<SecretName, SettingsError> {
    SecretName::parse(env.get(key).unwrap_or(default))
        .map_err(|e| SettingsError::new(key, e.to_string()))
}

fn bounded_seconds(
    env: &Env,
    key: &str,
    default: u64,
    min: u64,
) -> Result<Duration, SettingsError> {
    let seconds: u64 = env.parse_or(key, default)?;
    if !(min..=MAX_SECONDS).contains(&seconds) {
        return Err(SettingsError::new(
            key,
            format!("must be between {min} and {MAX_SECONDS} seconds"),
        ));
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_vault_secrets_come_from_the_environment_with_the_default_names() {
        let s = SecretsSettings::from_env(&Env::default()).unwrap();
        assert_eq!(s.source, SecretSource::Environment);
        assert_eq!(
            s.databricks_client_secret.as_str(),
            "databricks-client-secret"
        );
        assert_eq!(
            s.purview_basic_password.as_str(),
            "purview-callback-basic-password"
        );
        assert_eq!(s.cache.ttl, Duration::from_secs(300));
        assert_eq!(s.cache.stale_grace, Duration::from_secs(900));
    }

    #[test]
    fn a_vault_url_turns_key_vault_on_with_the_user_assigned_identity() {
        let s = SecretsSettings::from_env(&Env::from_pairs([
            (KEY_VAULT_URL, "https://kv-uc.vault.azure.net"),
            ("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111"),
            (DATABRICKS_CLIENT_SECRET_NAME, "dbx-sp-secret"),
            (TTL_SECONDS, "60"),
        ]))
        .unwrap();
        assert!(s.uses_key_vault());
        let SecretSource::KeyVault {
            vault_url,
            managed_identity_client_id,
        } = s.source
        else {
            panic!("expected Key Vault");
        };
        assert_eq!(vault_url.as_str(), "https://kv-uc.vault.azure.net/");
        assert_eq!(
            managed_identity_client_id.as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        assert_eq!(s.databricks_client_secret.as_str(), "dbx-sp-secret");
        assert_eq!(s.cache.ttl, Duration::from_secs(60));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            (KEY_VAULT_URL, "http://kv.vault.azure.net/"),
            (KEY_VAULT_URL, "https://kv.vault.azure.net/secrets/x"),
            (KEY_VAULT_URL, "kv.vault.azure.net"),
            (PURVIEW_BASIC_PASSWORD_NAME, "has_underscore"),
            (TTL_SECONDS, "0"),
            (TTL_SECONDS, "86401"),
            (STALE_GRACE_SECONDS, "soon"),
        ] {
            let err = SecretsSettings::from_env(&Env::from_pairs([(key, value)])).unwrap_err();
            assert_eq!(err.key, key, "{value}: {err}");
        }
    }
}
