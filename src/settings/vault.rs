//! Start-up: when `KEY_VAULT_URL` is set, the secrets the settings need and the environment does not
//! carry are read from Key Vault (after the listener is bound, within a time limit) and handed to the
//! settings as if they were app settings. A secret given in the environment (for example through an
//! App Service Key Vault reference) wins and Key Vault is not asked.
//!
//! The values read at start let the settings be checked before anything is served; the handles come
//! back with them ([`FromVault::secrets`]) and [`FromVault::keep_live`] gives them to the settings, so
//! the code that uses a secret reads it through the cache and picks up a rotation without a restart.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::{Env, Settings, SettingsError};
use crate::databricks::AuthSettings as DatabricksAuth;
use crate::secrets::{AppSecrets, LiveSecret, SecretError, SecretRef, SecretsSettings};

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
fn needed(env: &Env) -> Vec<(&'static str, SecretUse)> {
    let mut keys = Vec::new();
    if env.get("PURVIEW_CALLBACK_BASIC_USERNAME").is_some()
        && env.get("PURVIEW_CALLBACK_BASIC_PASSWORD").is_none()
    {
        keys.push(("PURVIEW_CALLBACK_BASIC_PASSWORD", SecretUse::BasicPassword));
    }
    let auth_type = env.get("DATABRICKS_AUTH_TYPE").map(str::to_ascii_lowercase);
    match auth_type.as_deref() {
        Some("azure-client-secret") if env.get("ARM_CLIENT_SECRET").is_none() => {
            keys.push(("ARM_CLIENT_SECRET", SecretUse::DatabricksSecret));
        }
        Some("oauth-m2m") | None
            if env.get("DATABRICKS_CLIENT_ID").is_some()
                && env.get("DATABRICKS_CLIENT_SECRET").is_none() =>
        {
            keys.push(("DATABRICKS_CLIENT_SECRET", SecretUse::DatabricksSecret));
        }
        _ => {}
    }
    keys
}

fn settings_vault(settings: &SecretsSettings) -> String {
    match &settings.source {
        crate::secrets::SecretSource::KeyVault { vault_url, .. } => vault_url.to_string(),
        crate::secrets::SecretSource::Environment => "(environment)".to_owned(),
    }
}

/// What a secret read from Key Vault is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    /// `purview-callback`'s HTTP Basic password.
    BasicPassword,
    /// The Databricks client secret (`oauth-m2m` or `azure-client-secret`).
    DatabricksSecret,
}

/// The environment with the secrets read from Key Vault, and the handles on those secrets.
#[derive(Debug)]
pub struct FromVault {
    pub env: Env,
    /// Each secret read from Key Vault: what it is used for and where it came from.
    pub secrets: Vec<(SecretUse, SecretRef)>,
}

impl FromVault {
    /// Makes the settings read each Key Vault secret through the store from now on (the value read at
    /// start is kept as the fallback), so a rotation is picked up within the cache's TTL, or at once
    /// when the old value is refused.
    pub fn keep_live(&self, settings: &mut Settings) {
        for (used_for, secret) in &self.secrets {
            match used_for {
                SecretUse::BasicPassword => {
                    let function = crate::host::catalog::PURVIEW_CALLBACK;
                    if let Some(basic) = settings
                        .auth
                        .function(function)
                        .and_then(|f| f.basic.clone())
                    {
                        let live = LiveSecret::stored(basic.password.last_known(), secret.clone());
                        settings.auth.set_basic_credentials(
                            function,
                            crate::auth::BasicCredentials::rotating(basic.username, live),
                        );
                    }
                }
                SecretUse::DatabricksSecret => {
                    if let Some(db) = settings.databricks.as_mut() {
                        match &mut db.auth {
                            DatabricksAuth::OAuthM2m { client_secret, .. }
                            | DatabricksAuth::AzureClientSecret { client_secret, .. } => {
                                *client_secret =
                                    LiveSecret::stored(client_secret.last_known(), secret.clone());
                            }
                            DatabricksAuth::AzureMsi { .. } | DatabricksAuth::Pat { .. } => {}
                        }
                    }
                }
            }
        }
    }
}

/// Returns `env` with the needed secrets read from Key Vault, or `env` unchanged without a vault.
/// Key Vault is reached over `http` (the process's one client, [`crate::outbound`]).
///
/// A secret that Key Vault holds but that is empty (or only whitespace) is a settings error naming the
/// setting it stands for: an empty Basic password would let in anyone who sends the username, and an
/// empty client secret can never work, so the process does not start with one.
pub async fn with_vault_secrets(
    env: Env,
    http: &reqwest::Client,
) -> Result<Result<FromVault, InjectError>, SettingsError> {
    let settings = SecretsSettings::from_env(&env)?;
    if !settings.uses_key_vault() {
        return Ok(Ok(FromVault {
            env,
            secrets: Vec::new(),
        }));
    }
    let secrets = match AppSecrets::from_settings(&settings, &env, http) {
        Ok(s) => s,
        Err(e) => {
            return Err(SettingsError::new(
                crate::secrets::KEY_VAULT_URL,
                e.to_string(),
            ));
        }
    };
    read_needed(env, &secrets, &settings_vault(&settings)).await
}

/// The part of [`with_vault_secrets`] after the store is built: reads each needed secret from `secrets`.
async fn read_needed(
    mut env: Env,
    secrets: &AppSecrets,
    vault: &str,
) -> Result<Result<FromVault, InjectError>, SettingsError> {
    let mut read_secrets = Vec::new();
    for (key, kind) in needed(&env) {
        let (what, handle) = match kind {
            SecretUse::BasicPassword => (
                "the Purview Basic password",
                &secrets.purview_basic_password,
            ),
            SecretUse::DatabricksSecret => (
                "the Databricks client secret",
                &secrets.databricks_client_secret,
            ),
        };
        let read = tokio::time::timeout(STARTUP_BUDGET, handle.get())
            .await
            .unwrap_or_else(|_| {
                Err(SecretError::Unavailable {
                    vault: vault.to_owned(),
                    detail: format!("no answer within {}s", STARTUP_BUDGET.as_secs()),
                })
            });
        match read {
            Ok(value) if value.expose_secret().trim().is_empty() => {
                return Err(SettingsError::new(
                    key,
                    format!(
                        "{what} read from Key Vault secret {:?} is empty; store the real value there \
                         (an empty secret is never accepted as a credential)",
                        handle.name().as_str()
                    ),
                ));
            }
            Ok(value) => {
                tracing::info!(secret = %handle.name(), setting = key, "secret read from Key Vault");
                env = env.with(key, value.expose_secret());
                read_secrets.push((kind, handle.clone()));
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
    Ok(Ok(FromVault {
        env,
        secrets: read_secrets,
    }))
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
        let out = with_vault_secrets(env, &crate::outbound::http_client())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out.env.get("A"), Some("1"));
        assert!(out.secrets.is_empty());
    }

    #[tokio::test]
    async fn a_bad_vault_url_names_the_setting() {
        let env = Env::from_pairs([("KEY_VAULT_URL", "http://vault.example")]);
        assert_eq!(
            with_vault_secrets(env, &crate::outbound::http_client())
                .await
                .unwrap_err()
                .key,
            "KEY_VAULT_URL"
        );
    }

    #[tokio::test]
    async fn an_empty_secret_read_from_key_vault_at_start_is_a_settings_error_naming_the_setting() {
        use std::sync::Arc;

        let env = Env::from_pairs([("PURVIEW_CALLBACK_BASIC_USERNAME", "purview")]);
        let settings = SecretsSettings::from_env(&env).unwrap();
        for stored in ["", "  \n"] {
            let store: Arc<dyn crate::secrets::SecretStore> = Arc::new(Holding(stored));
            let secrets = AppSecrets::with_store(store, &settings);
            let err = read_needed(env.clone(), &secrets, "https://kv.example/")
                .await
                .unwrap_err();
            assert_eq!(err.key, "PURVIEW_CALLBACK_BASIC_PASSWORD", "{stored:?}");
            assert!(
                err.problem.contains("empty")
                    && err
                        .problem
                        .contains(settings.purview_basic_password.as_str()),
                "{err}"
            );
            assert!(!err.is_missing(), "the start stops: {err}");
        }
        // A real value goes into the settings as before.
        let store: Arc<dyn crate::secrets::SecretStore> = Arc::new(Holding("s3cret"));
        let secrets = AppSecrets::with_store(store, &settings);
        let from_vault = read_needed(env, &secrets, "https://kv.example/")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            from_vault.env.get("PURVIEW_CALLBACK_BASIC_PASSWORD"),
            Some("s3cret")
        );
    }

    /// A stand-in for Key Vault holding one value for every secret, an empty one included (Key Vault
    /// hands out what it holds; the environment store would count a blank variable as unset).
    #[derive(Debug)]
    struct Holding(&'static str);

    #[async_trait::async_trait]
    impl crate::secrets::SecretStore for Holding {
        async fn get(&self, _name: &str) -> Result<secrecy::SecretString, SecretError> {
            Ok(secrecy::SecretString::from(self.0))
        }
    }

    #[test]
    fn settings_kept_live_read_the_vault_secrets_through_the_store() {
        use std::sync::Arc;

        use crate::secrets::{EnvSecrets, SecretName, SecretRef};

        let env = Env::from_pairs([
            ("AUTH_TENANT_ID", "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"),
            ("AUTH_AUDIENCE", "api://uc-access"),
            ("PURVIEW_CALLBACK_BASIC_USERNAME", "purview"),
            ("PURVIEW_CALLBACK_BASIC_PASSWORD", "from-start"),
            (
                "DATABRICKS_ACCOUNT_ID",
                "0d1c2b3a-4f5e-4d6c-8b7a-9f8e7d6c5b4a",
            ),
            ("DATABRICKS_HOST", "https://adb-1.1.azuredatabricks.net"),
            ("DATABRICKS_CLIENT_ID", "sp"),
            ("DATABRICKS_CLIENT_SECRET", "from-start"),
        ]);
        let mut settings = Settings::from_env(&env).unwrap();
        assert!(
            crate::doctor::VaultProbe::of(&settings).is_empty(),
            "environment values"
        );
        let store: Arc<dyn crate::secrets::SecretStore> = Arc::new(EnvSecrets::new(Env::default()));
        let secret = |n: &str| SecretRef::new(store.clone(), SecretName::parse(n).unwrap());
        let from_vault = FromVault {
            env,
            secrets: vec![
                (SecretUse::BasicPassword, secret("pv-basic")),
                (SecretUse::DatabricksSecret, secret("dbx")),
            ],
        };
        from_vault.keep_live(&mut settings);
        assert!(
            !crate::doctor::VaultProbe::of(&settings).is_empty(),
            "what the doctor reads"
        );

        let basic = settings
            .auth
            .function(crate::host::catalog::PURVIEW_CALLBACK)
            .and_then(|f| f.basic.clone())
            .unwrap();
        assert_eq!(basic.password.store_name(), Some("pv-basic"));
        assert_eq!(basic.password.last_known().expose_secret(), "from-start");
        match &settings.databricks.unwrap().auth {
            DatabricksAuth::OAuthM2m { client_secret, .. } => {
                assert_eq!(client_secret.store_name(), Some("dbx"));
            }
            other => panic!("{other:?}"),
        }
    }
}
