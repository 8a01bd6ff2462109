//! The doctor's secrets check: every secret the serving settings read from Key Vault is read again,
//! bypassing the cache, and each failure is named with its fix.

use std::time::Duration;

use async_trait::async_trait;

use super::{Check, SecretsProbe};
use crate::databricks::AuthSettings as DatabricksAuth;
use crate::host::catalog::PURVIEW_CALLBACK;
use crate::secrets::{LiveSecret, SecretError};
use crate::settings::Settings;

/// The secrets a running configuration reads from a store, by the setting each stands for.
#[derive(Debug, Clone, Default)]
pub struct VaultProbe {
    secrets: Vec<(&'static str, LiveSecret)>,
}

impl VaultProbe {
    /// Keeps the secrets that come from a store; fixed values (the environment) have nothing to probe.
    pub fn new(secrets: impl IntoIterator<Item = (&'static str, LiveSecret)>) -> Self {
        Self {
            secrets: secrets.into_iter().filter(|(_, s)| s.is_stored()).collect(),
        }
    }

    /// The secrets these settings read through a store (Key Vault), by the setting each stands for.
    pub fn of(settings: &Settings) -> Self {
        let basic = settings
            .auth
            .function(PURVIEW_CALLBACK)
            .and_then(|f| f.basic.as_ref())
            .map(|b| ("PURVIEW_CALLBACK_BASIC_PASSWORD", b.password.clone()));
        let databricks = settings.databricks.as_ref().and_then(|db| match &db.auth {
            DatabricksAuth::OAuthM2m { client_secret, .. } => {
                Some(("DATABRICKS_CLIENT_SECRET", client_secret.clone()))
            }
            DatabricksAuth::AzureClientSecret { client_secret, .. } => {
                Some(("ARM_CLIENT_SECRET", client_secret.clone()))
            }
            _ => None,
        });
        Self::new(basic.into_iter().chain(databricks))
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

/// What an operator does about each kind of failure.
fn fix(error: &SecretError, name: &str) -> String {
    match error {
        SecretError::Forbidden { .. } => format!(
            "give the Function app's managed identity the role \"Key Vault Secrets User\" on the vault (or on secret {name})"
        ),
        SecretError::Disabled { .. } => format!("enable secret {name} or add a new, enabled version"),
        SecretError::NotFound { .. } => format!(
            "create it: az keyvault secret set --vault-name <vault> --name {name} --value <value>"
        ),
        SecretError::Throttled { .. } => {
            "Key Vault is throttling: retry later, and raise UC_ACCESS_SECRET_TTL_SECONDS if it persists".to_owned()
        }
        SecretError::Unauthenticated { .. } | SecretError::Setup { .. } => {
            "check KEY_VAULT_URL and AZURE_CLIENT_ID (the client id of the app's user-assigned identity)".to_owned()
        }
        SecretError::Unavailable { .. } => {
            "check the vault's network rules (the app must reach it) and KEY_VAULT_URL".to_owned()
        }
        SecretError::InvalidName { .. } | SecretError::Other { .. } => {
            "check the UC_ACCESS_SECRET_* names and KEY_VAULT_URL".to_owned()
        }
    }
}

#[async_trait]
impl SecretsProbe for VaultProbe {
    async fn probe(&self, budget: Duration) -> Vec<Check> {
        if self.secrets.is_empty() {
            return vec![Check::pass(
                "secrets",
                "no secret is read from Key Vault by this configuration (none needed, or given as app settings)",
            )];
        }
        let mut checks = Vec::with_capacity(self.secrets.len());
        for (setting, secret) in &self.secrets {
            let name = secret.store_name().unwrap_or("?");
            let check = format!("secrets.{name}");
            let read = tokio::time::timeout(budget, secret.read_fresh()).await;
            checks.push(match read {
                Ok(Some(Ok(()))) => Check::pass(
                    check,
                    format!("secret {name} ({setting}) is readable by the app's identity"),
                ),
                Ok(Some(Err(e))) => Check::fail(check, e.to_string(), fix(&e, name)),
                Ok(None) => Check::pass(check, format!("{setting} is a fixed value")),
                Err(_) => Check::fail(
                    check,
                    format!("Key Vault did not answer within {budget:?}"),
                    "check the vault's network rules and KEY_VAULT_URL",
                ),
            });
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use secrecy::SecretString;

    use super::*;
    use crate::secrets::{SecretName, SecretRef, SecretStore};

    #[derive(Debug)]
    struct Vault;

    #[async_trait]
    impl SecretStore for Vault {
        async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
            match name {
                "readable" => Ok(SecretString::from("v")),
                "forbidden" => Err(SecretError::Forbidden {
                    vault: "https://kv.example/".into(),
                    name: name.into(),
                    code: "ForbiddenByRbac".into(),
                    message: "no role".into(),
                }),
                _ => Err(SecretError::NotFound {
                    name: name.into(),
                    location: "https://kv.example/".into(),
                }),
            }
        }
    }

    fn stored(name: &str) -> LiveSecret {
        LiveSecret::stored(
            SecretString::from("start"),
            SecretRef::new(Arc::new(Vault), SecretName::parse(name).unwrap()),
        )
    }

    #[tokio::test]
    async fn each_vault_secret_is_read_and_each_failure_names_its_fix() {
        let probe = VaultProbe::new([
            ("DATABRICKS_CLIENT_SECRET", stored("readable")),
            ("PURVIEW_CALLBACK_BASIC_PASSWORD", stored("forbidden")),
            ("ARM_CLIENT_SECRET", stored("missing")),
            ("OTHER", LiveSecret::fixed(SecretString::from("env"))),
        ]);
        let checks = probe.probe(Duration::from_secs(5)).await;
        assert_eq!(checks.len(), 3, "the fixed value is not probed: {checks:?}");
        assert!(checks[0].ok, "{:?}", checks[0]);
        assert_eq!(checks[0].name, "secrets.readable");
        assert!(!checks[1].ok);
        assert!(
            checks[1]
                .fix
                .as_deref()
                .unwrap()
                .contains("Key Vault Secrets User")
        );
        assert!(!checks[2].ok);
        assert!(
            checks[2]
                .fix
                .as_deref()
                .unwrap()
                .contains("az keyvault secret set")
        );
        for c in &checks {
            assert!(
                !c.detail.contains("start") && !c.detail.contains(": v"),
                "{c:?}"
            );
        }
    }

    #[tokio::test]
    async fn without_vault_secrets_the_check_passes_and_says_why() {
        let checks = VaultProbe::new([]).probe(Duration::from_secs(1)).await;
        assert_eq!(checks.len(), 1);
        assert!(checks[0].ok);
        assert!(
            checks[0]
                .detail
                .contains("no secret is read from Key Vault")
        );
    }
}
