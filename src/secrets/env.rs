//! Secrets from environment variables, for local runs and CI: secret `databricks-client-secret` is the
//! variable `DATABRICKS_CLIENT_SECRET` (upper case, dashes become underscores).

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{SecretError, SecretName, SecretStore};
use crate::env::Env;

/// Reads the process environment captured at start (an [`Env`]). Nothing is cached because nothing is
/// fetched; a variable changed after start is not seen, as with every other setting.
#[derive(Clone)]
pub struct EnvSecrets {
    env: Env,
    /// Explicit variables for some secret names, tried before the derived one.
    aliases: BTreeMap<SecretName, String>,
}

// The environment holds values that are secrets: show only the aliases (names, never values).
impl fmt::Debug for EnvSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSecrets")
            .field("aliases", &self.aliases)
            .finish_non_exhaustive()
    }
}

impl EnvSecrets {
    pub fn new(env: Env) -> Self {
        Self {
            env,
            aliases: BTreeMap::new(),
        }
    }

    /// Reads `name` from `variable` first (e.g. `ARM_CLIENT_SECRET` for the Databricks client secret when
    /// Databricks is reached as an Entra application), then from the derived variable.
    pub fn with_alias(mut self, name: SecretName, variable: impl Into<String>) -> Self {
        self.aliases.insert(name, variable.into());
        self
    }

    /// The variables tried for `name`, in order.
    pub fn variables_for(&self, name: &SecretName) -> Vec<String> {
        let mut vars: Vec<String> = self.aliases.get(name).cloned().into_iter().collect();
        vars.push(name.env_var());
        vars.dedup();
        vars
    }
}

#[async_trait]
impl SecretStore for EnvSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        let name = SecretName::parse(name)?;
        let vars = self.variables_for(&name);
        vars.iter()
            .find_map(|var| self.env.get(var))
            .map(|value| SecretString::from(value.to_owned()))
            .ok_or_else(|| SecretError::NotFound {
                name: name.to_string(),
                location: format!("the environment (set {})", vars.join(" or ")),
            })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[tokio::test]
    async fn a_secret_is_read_from_its_upper_snake_case_variable() {
        let store = EnvSecrets::new(Env::from_pairs([("DATABRICKS_CLIENT_SECRET", "s3cr3t")]));
        let value = store.get("databricks-client-secret").await.unwrap();
        assert_eq!(value.expose_secret(), "s3cr3t");
        assert!(!format!("{store:?}").contains("s3cr3t"));
    }

    #[tokio::test]
    async fn an_alias_wins_over_the_derived_variable() {
        let name = SecretName::parse("databricks-client-secret").unwrap();
        let store = EnvSecrets::new(Env::from_pairs([
            ("ARM_CLIENT_SECRET", "arm"),
            ("DATABRICKS_CLIENT_SECRET", "dbx"),
        ]))
        .with_alias(name, "ARM_CLIENT_SECRET");
        let value = store.get("databricks-client-secret").await.unwrap();
        assert_eq!(value.expose_secret(), "arm");
    }

    #[tokio::test]
    async fn a_missing_variable_is_named_in_the_error() {
        let store = EnvSecrets::new(Env::default());
        let err = store
            .get("purview-callback-basic-password")
            .await
            .unwrap_err();
        assert!(matches!(err, SecretError::NotFound { .. }));
        assert!(
            err.to_string().contains("PURVIEW_CALLBACK_BASIC_PASSWORD"),
            "{err}"
        );
        assert!(matches!(
            store.get("no/such").await,
            Err(SecretError::InvalidName { .. })
        ));
    }
}
