//! Start-up: when `KEY_VAULT_URL` is set, the secrets the settings need and the environment does not
//! carry are read from Key Vault (after the listener is bound, within a time limit) and handed to the
//! settings as if they were app settings. A secret given in the environment (for example through an
//! App Service Key Vault reference) wins and Key Vault is not asked.
//!
//! Read once per process: a rotated secret takes effect at the next start (the cache's rotation without
//! a restart needs the consumers to hold a `SecretRef`, which they do not yet).

use std::time::Duration;

use secrecy::ExposeSecret;

use super::{AppSecrets, SecretError, SecretsSettings};
use crate::settings::{Env, SettingsError};

/// Longest start-up wait for Key Vault: the Functions host waits about a minute for readiness.
pub const STARTUP_BUDGET: Duration = Duration::from_secs(20);

/// Why a secret could not be read at start; names the secret and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what} (Key Vault secret {secret:?}): {source}")]
pub struct InjectError {
    /// The setting the secret stands for (e.g. `DATABRICKS_CLIENT_SECRET`).
    pub setting: &'static str,
    pub what: &'static str,
    pub secret: String,
    #[source]
    pub source: SecretError,
}

/// Which setting each secret stands for, and when it is needed.
fn needed(env: &Env) -> Vec<(&'static str, Kind)> {
    let mut keys = Vec::new();
    if env.get("PURVIEW_CALLBACK_BASIC_USERNAME").is_some()
        && env.get("PURVIEW_CALLBACK_BASIC_PASSWORD").is_none()
    {
        keys.push(("PURVIEW_CALLBACK_BASIC_PASSWORD", Kind::BasicPassword));
    }
    let auth_type = env.get("DATABRICKS_AUTH_TYPE").map(str::to_ascii_lowercase);
    match auth_type.as_deref() {
        Some("azure-client-secret") if env.get("ARM_CLIENT_SECRET").is_none() => {
            keys.push(("ARM_CLIENT_SECRET", Kind::DatabricksSecret));
        }
        Some("oauth-m2m") | None
            if env.get("DATABRICKS_CLIENT_ID").is_some()
                && env.get("DATABRICKS_CLIENT_SECRET").is_none() =>
        {
            keys.push(("DATABRICKS_CLIENT_SECRET", Kind::DatabricksSecret));
        }
        _ => {}
    }
    keys
}

fn settings_vault(settings: &SecretsSettings) -> String {
    match &settings.source {
        super::SecretSource::KeyVault { vault_url, .. } => vault_url.to_string(),
        super::SecretSource::Environment => "(environment)".to_owned(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    BasicPassword,
    DatabricksSecret,
}

/// Returns `env` with the needed secrets read from Key Vault, or `env` unchanged without a vault.
pub async fn with_vault_secrets(env: Env) -> Result<Result<Env, InjectError>, SettingsError> {
    let settings = SecretsSettings::from_env(&env)?;
    if !settings.uses_key_vault() {
        return Ok(Ok(env));
    }
    let secrets = match AppSecrets::from_settings(&settings, &env) {
        Ok(s) => s,
        Err(e) => return Err(SettingsError::new(super::KEY_VAULT_URL, e.to_string())),
    };
    let mut env = env;
    for (key, kind) in needed(&env) {
        let (what, handle) = match kind {
            Kind::BasicPassword => (
                "the Purview Basic password",
                &secrets.purview_basic_password,
            ),
            Kind::DatabricksSecret => (
                "the Databricks client secret",
                &secrets.databricks_client_secret,
            ),
        };
        let read = tokio::time::timeout(STARTUP_BUDGET, handle.get())
            .await
            .unwrap_or_else(|_| {
                Err(SecretError::Unavailable {
                    vault: settings_vault(&settings),
                    detail: format!("no answer within {}s", STARTUP_BUDGET.as_secs()),
                })
            });
        match read {
            Ok(value) => {
                tracing::info!(secret = %handle.name(), setting = key, "secret read from Key Vault");
                env = env.with(key, value.expose_secret());
            }
            Err(source) => {
                return Ok(Err(InjectError {
                    setting: key,
                    what,
                    secret: handle.name().to_string(),
                    source,
                }));
            }
        }
    }
    Ok(Ok(env))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> Vec<&'static str> {
        needed(&Env::from_pairs(pairs.iter().copied()))
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn only_secrets_the_settings_need_and_the_environment_lacks_are_read() {
        assert!(keys(&[]).is_empty());
        assert_eq!(
            keys(&[("PURVIEW_CALLBACK_BASIC_USERNAME", "purview")]),
            vec!["PURVIEW_CALLBACK_BASIC_PASSWORD"]
        );
        assert!(
            keys(&[
                ("PURVIEW_CALLBACK_BASIC_USERNAME", "p"),
                ("PURVIEW_CALLBACK_BASIC_PASSWORD", "x")
            ])
            .is_empty()
        );
        assert_eq!(
            keys(&[("DATABRICKS_CLIENT_ID", "id")]),
            vec!["DATABRICKS_CLIENT_SECRET"]
        );
        assert_eq!(
            keys(&[
                ("DATABRICKS_AUTH_TYPE", "azure-client-secret"),
                ("ARM_CLIENT_ID", "id")
            ]),
            vec!["ARM_CLIENT_SECRET"]
        );
        assert!(
            keys(&[
                ("DATABRICKS_AUTH_TYPE", "azure-msi"),
                ("DATABRICKS_CLIENT_ID", "id")
            ])
            .is_empty()
        );
    }

    #[tokio::test]
    async fn without_a_vault_the_environment_is_unchanged() {
        let env = Env::from_pairs([("A", "1")]);
        let out = with_vault_secrets(env).await.unwrap().unwrap();
        assert_eq!(out.get("A"), Some("1"));
    }

    #[tokio::test]
    async fn a_bad_vault_url_names_the_setting() {
        let env = Env::from_pairs([("KEY_VAULT_URL", "http://vault.example")]);
        assert_eq!(
            with_vault_secrets(env).await.unwrap_err().key,
            "KEY_VAULT_URL"
        );
    }
}
