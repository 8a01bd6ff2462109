//! Clients for the Databricks APIs uc-access calls: token sources, one retry policy, typed errors, account
//! SCIM, Automatic Identity Management, and Unity Catalog permissions.

mod auth;
mod catalogs;
mod directory;
mod error;
mod http;
mod identity;
mod permissions;
mod retry;
mod scim;
mod settings;
mod sharing;
mod token;
mod uc_paths;

use std::sync::Arc;

pub use auth::{
    AccountFirstTokens, CachingTokenSource, DEFAULT_REFRESH_MARGIN, DatabricksAuth,
    MIN_AGE_TO_DROP_REFUSED,
};
pub use catalogs::{CatalogInfo, CatalogsClient};
pub use directory::{DirectoryApi, DirectoryClient, DirectoryEntry, GroupMember};
pub use error::{DatabricksError, Upstream};
pub use http::{RequestCounter, Transport, encode_segment};
pub use identity::{IdentityClient, ResolvedIdentity};
pub use permissions::{
    EffectiveAssignment, EffectivePrivilege, GetPermissionsOptions, GrantsApi, GrantsClient,
    PermissionsChange, PrivilegeAssignment,
};
pub use retry::{Deadline, Failure, Idempotency, RetryPolicy, parse_retry_after};
pub use scim::{ScimClient, ScimCollection, ScimMember, ScimMeta, ScimResource, eq_filter};
pub use settings::{AuthSettings, DEFAULT_ACCOUNT_HOST, DatabricksSettings, parse_host};
pub use sharing::{
    NewRecipient, ObjectAction, RecipientInfo, RecipientToken, ShareAssignment, ShareInfo,
    SharingApi, SharingClient, is_already_exists, is_does_not_exist,
};
pub use token::{
    AZURE_DATABRICKS_RESOURCE, BearerToken, EntraClientSecretSource, EntraTokenSource,
    OAuthM2mTokenSource, StaticToken, TokenSource,
};
pub use uc_paths::{UC_ROOT, UcPath, grant_calls, share_step_call};

/// The clients built once at start from the settings, sharing one transport (and request counter) and
/// one set of token caches.
#[derive(Debug, Clone)]
pub struct DatabricksClients {
    pub grants: Arc<GrantsClient>,
    pub directory: Arc<DirectoryClient>,
    /// Account and workspace SCIM, for the doctor's probes (the directory uses its own copy).
    pub scim: ScimClient,
    pub catalogs: CatalogsClient,
    /// Delta Sharing: shares, recipients, share permissions.
    pub sharing: Arc<SharingClient>,
    pub auth: Arc<DatabricksAuth>,
    pub transport: Transport,
}

impl DatabricksClients {
    /// The clients for `settings` over `http` ([`crate::outbound::http_client`], shared with the process's
    /// other outbound calls: `app::outbound_clients`).
    pub fn from_settings(
        settings: &DatabricksSettings,
        http: reqwest::Client,
    ) -> Result<Self, DatabricksError> {
        let auth = Arc::new(DatabricksAuth::from_settings(settings, http.clone())?);
        let retry = RetryPolicy {
            max_attempts: settings.max_attempts,
            ..RetryPolicy::default()
        };
        let transport = Transport::new(http, retry, settings.request_timeout);
        Ok(Self::new(
            transport,
            auth,
            settings.account_host.clone(),
            settings.account_id.clone(),
            settings.resolve_by_external_id,
        ))
    }

    /// Wires the clients over an explicit transport and auth (tests, the local run).
    pub fn new(
        transport: Transport,
        auth: Arc<DatabricksAuth>,
        account_host: url::Url,
        account_id: String,
        resolve_by_external_id: bool,
    ) -> Self {
        let scim = ScimClient::new(
            transport.clone(),
            auth.clone(),
            account_host.clone(),
            account_id.clone(),
        );
        let identity =
            IdentityClient::new(transport.clone(), auth.clone(), account_host, account_id);
        Self {
            grants: Arc::new(GrantsClient::new(transport.clone(), auth.clone())),
            directory: Arc::new(DirectoryClient::new(
                scim.clone(),
                identity,
                resolve_by_external_id,
            )),
            scim,
            catalogs: CatalogsClient::new(transport.clone(), auth.clone()),
            sharing: Arc::new(SharingClient::new(transport.clone(), auth.clone())),
            auth,
            transport,
        }
    }

    /// Databricks requests sent so far (every attempt counts).
    pub fn requests(&self) -> u64 {
        self.transport.requests().get()
    }
}
