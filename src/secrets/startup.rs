//! What `main` needs: the store the settings describe and handles on the two secrets, built without
//! any network call, so the process is ready for the host before Key Vault is asked anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;

use super::{
    CachedSecrets, EnvSecrets, KeyVaultOptions, KeyVaultSecrets, SecretError, SecretRef,
    SecretSource, SecretStore, SecretsSettings,
};
use crate::env::Env;

/// The function whose HTTP Basic password is a secret (its Azure function folder and route).
const PURVIEW_CALLBACK: &str = "purview-callback";
/// The setting that turns Basic on for that function; without it the password is not read.
const PURVIEW_CALLBACK_BASIC_USERNAME: &str = "PURVIEW_CALLBACK_BASIC_USERNAME";
/// The variables the rest of the settings already use for these secrets, kept for local runs when a
/// secret name is changed.
const DATABRICKS_CLIENT_SECRET_VAR: &str = "DATABRICKS_CLIENT_SECRET";
const PURVIEW_CALLBACK_BASIC_PASSWORD_VAR: &str = "PURVIEW_CALLBACK_BASIC_PASSWORD";

/// The store the settings describe: Key Vault behind the TTL cache (sending over `http`, the process's
/// one client, [`crate::outbound`]), or the environment.
pub fn build_store(
    settings: &SecretsSettings,
    env: &Env,
    http: &reqwest::Client,
) -> Result<Arc<dyn SecretStore>, SecretError> {
    Ok(match &settings.source {
        SecretSource::KeyVault {
            vault_url,
            managed_identity_client_id,
        } => {
            let vault = KeyVaultSecrets::with_managed_identity(
                vault_url,
                managed_identity_client_id.clone(),
                http,
                KeyVaultOptions::default(),
            )?;
            Arc::new(CachedSecrets::new(vault, settings.cache))
        }
        SecretSource::Environment => Arc::new(
            EnvSecrets::new(env.clone())
                .with_alias(
                    settings.databricks_client_secret.clone(),
                    DATABRICKS_CLIENT_SECRET_VAR,
                )
                .with_alias(
                    settings.purview_basic_password.clone(),
                    PURVIEW_CALLBACK_BASIC_PASSWORD_VAR,
                ),
        ),
    })
}

/// The app's secrets, read on first use.
#[derive(Debug, Clone)]
pub struct AppSecrets {
    pub databricks_client_secret: SecretRef,
    pub purview_basic_password: SecretRef,
    from_key_vault: bool,
}

impl AppSecrets {
    /// Builds the store and the handles. Sends nothing.
    pub fn from_settings(
        settings: &SecretsSettings,
        env: &Env,
        http: &reqwest::Client,
    ) -> Result<Self, SecretError> {
        Ok(Self::with_store(
            build_store(settings, env, http)?,
            settings,
        ))
    }

    /// Handles on a given store (tests, the local run).
    pub fn with_store(store: Arc<dyn SecretStore>, settings: &SecretsSettings) -> Self {
        Self {
            databricks_client_secret: SecretRef::new(
                store.clone(),
                settings.databricks_client_secret.clone(),
            ),
            purview_basic_password: SecretRef::new(store, settings.purview_basic_password.clone()),
            from_key_vault: settings.uses_key_vault(),
        }
    }

    pub fn from_key_vault(&self) -> bool {
        self.from_key_vault
    }

    /// The Basic passwords for [`AuthSettings::from_env_with_basic_passwords`](crate::auth::AuthSettings::from_env_with_basic_passwords):
    /// `purview-callback`'s, read only when `PURVIEW_CALLBACK_BASIC_USERNAME` is set (Basic is off
    /// otherwise, and a vault without that secret is fine).
    pub async fn basic_passwords(
        &self,
        env: &Env,
    ) -> Result<BTreeMap<String, SecretString>, SecretError> {
        let mut passwords = BTreeMap::new();
        if env.get(PURVIEW_CALLBACK_BASIC_USERNAME).is_some() {
            passwords.insert(
                PURVIEW_CALLBACK.to_owned(),
                self.purview_basic_password.get().await?,
            );
        }
        Ok(passwords)
    }

    /// The Databricks client secret (OAuth M2M, or the Entra application's secret).
    pub async fn databricks_client_secret(&self) -> Result<SecretString, SecretError> {
        self.databricks_client_secret.get().await
    }

    /// Reads `secrets` in the background once the app is serving, so the first request does not wait
    /// for Key Vault and a missing role or secret shows in the logs at start. Logs names, never values.
    pub fn spawn_prefetch(secrets: Vec<SecretRef>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            for secret in secrets {
                match secret.get().await {
                    Ok(_) => tracing::info!(secret = %secret.name(), "secret read"),
                    Err(e) => tracing::warn!(
                        secret = %secret.name(),
                        error = %e,
                        retryable = e.is_retryable(),
                        "cannot read a secret; calls that need it will fail until this is fixed"
                    ),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn settings(env: &Env) -> SecretsSettings {
        SecretsSettings::from_env(env).unwrap()
    }

    #[test]
    fn the_function_name_is_the_served_one() {
        assert_eq!(PURVIEW_CALLBACK, crate::host::catalog::PURVIEW_CALLBACK);
    }

    #[tokio::test]
    async fn basic_passwords_are_read_only_when_a_username_is_set() {
        let env = Env::from_pairs([("PURVIEW_CALLBACK_BASIC_PASSWORD", "pw")]);
        let secrets =
            AppSecrets::from_settings(&settings(&env), &env, &crate::outbound::http_client())
                .unwrap();
        assert!(secrets.basic_passwords(&env).await.unwrap().is_empty());

        let env = env.with(PURVIEW_CALLBACK_BASIC_USERNAME, "purview");
        let secrets =
            AppSecrets::from_settings(&settings(&env), &env, &crate::outbound::http_client())
                .unwrap();
        let passwords = secrets.basic_passwords(&env).await.unwrap();
        assert_eq!(passwords[PURVIEW_CALLBACK].expose_secret(), "pw");
        assert!(!secrets.from_key_vault());
    }

    #[tokio::test]
    async fn the_basic_password_map_is_accepted_by_the_auth_settings() {
        let env = Env::from_pairs([
            ("AUTH_TENANT_ID", "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"),
            ("AUTH_AUDIENCE", "api://uc-access"),
            (PURVIEW_CALLBACK_BASIC_USERNAME, "purview"),
            ("UC_ACCESS_SECRET_PURVIEW_BASIC_PASSWORD", "pv-basic"),
            ("PV_BASIC", "from-the-store"),
        ]);
        let secrets =
            AppSecrets::from_settings(&settings(&env), &env, &crate::outbound::http_client())
                .unwrap();
        let passwords = secrets.basic_passwords(&env).await.unwrap();
        let auth = crate::auth::AuthSettings::from_env_with_basic_passwords(
            &env,
            &[(PURVIEW_CALLBACK, crate::auth::Callers::Services)],
            passwords,
        )
        .unwrap();
        let basic = auth
            .function(PURVIEW_CALLBACK)
            .and_then(|f| f.basic.clone())
            .unwrap();
        assert_eq!(
            basic.password.current().await.expose_secret(),
            "from-the-store"
        );
    }

    #[tokio::test]
    async fn locally_a_renamed_secret_still_falls_back_to_the_usual_variable() {
        let env = Env::from_pairs([
            ("UC_ACCESS_SECRET_DATABRICKS_CLIENT_SECRET", "my-dbx-secret"),
            ("DATABRICKS_CLIENT_SECRET", "dbx"),
        ]);
        let secrets =
            AppSecrets::from_settings(&settings(&env), &env, &crate::outbound::http_client())
                .unwrap();
        let value = secrets.databricks_client_secret().await.unwrap();
        assert_eq!(value.expose_secret(), "dbx");
    }

    #[tokio::test]
    async fn a_key_vault_store_is_built_without_any_request() {
        let env = Env::from_pairs([("KEY_VAULT_URL", "https://kv-uc.vault.azure.net/")]);
        let secrets =
            AppSecrets::from_settings(&settings(&env), &env, &crate::outbound::http_client())
                .unwrap();
        assert!(secrets.from_key_vault());
        let printed = format!("{secrets:?}");
        assert!(printed.contains("databricks-client-secret"), "{printed}");
    }
}
