//! Secrets the app reads at run time (the Databricks client secret, Purview's Basic password): Azure Key
//! Vault in Azure, environment variables on a laptop, a TTL cache in front, all behind one narrow trait.

mod cache;
mod env;
mod error;
mod keyvault;
mod live;
mod name;
mod settings;
mod startup;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

pub use cache::{CachePolicy, CachedSecrets, DEFAULT_FAILURE_BACKOFF};
pub use env::EnvSecrets;
pub use error::SecretError;
pub use keyvault::{KeyVaultOptions, KeyVaultRetry, KeyVaultSecrets};
pub use live::{LiveSecret, MIN_RELOAD_INTERVAL};
pub use name::SecretName;
pub use settings::{
    DATABRICKS_CLIENT_SECRET_NAME, DEFAULT_DATABRICKS_CLIENT_SECRET_NAME,
    DEFAULT_PURVIEW_BASIC_PASSWORD_NAME, DEFAULT_STALE_GRACE_SECONDS, DEFAULT_TTL_SECONDS,
    KEY_VAULT_URL, PURVIEW_BASIC_PASSWORD_NAME, STALE_GRACE_SECONDS, SecretSource, SecretsSettings,
    TTL_SECONDS,
};
pub use startup::{AppSecrets, build_store};

/// Where secrets come from. Implementations never print a value (not in `Debug`, not in errors).
#[async_trait]
pub trait SecretStore: Send + Sync + fmt::Debug {
    /// The current value of the secret called `name`.
    async fn get(&self, name: &str) -> Result<SecretString, SecretError>;

    /// Forgets any cached copy of `name`, so the next `get` asks the store again (e.g. after Databricks
    /// refused the client secret because it was rotated). Stores without a cache have nothing to do.
    async fn invalidate(&self, _name: &str) {}
}

#[async_trait]
impl<S: SecretStore + ?Sized> SecretStore for Arc<S> {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        (**self).get(name).await
    }

    async fn invalidate(&self, name: &str) {
        (**self).invalidate(name).await;
    }
}

/// One named secret in a store, read when it is needed rather than at start, so the process answers
/// the host's readiness probe before Key Vault has been asked anything. Cheap to clone.
#[derive(Clone)]
pub struct SecretRef {
    store: Arc<dyn SecretStore>,
    name: SecretName,
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRef")
            .field("name", &self.name.as_str())
            .finish_non_exhaustive()
    }
}

impl SecretRef {
    pub fn new(store: Arc<dyn SecretStore>, name: SecretName) -> Self {
        Self { store, name }
    }

    pub fn name(&self) -> &SecretName {
        &self.name
    }

    /// The current value (from the cache while it is fresh).
    pub async fn get(&self) -> Result<SecretString, SecretError> {
        self.store.get(self.name.as_str()).await
    }

    /// Drops the cached value so the next [`SecretRef::get`] reads the store.
    pub async fn invalidate(&self) {
        self.store.invalidate(self.name.as_str()).await;
    }
}
