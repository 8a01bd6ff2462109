//! Where bearer tokens come from: Entra ID (managed identity or client secret) for the Azure Databricks
//! resource, Databricks OAuth M2M, or a static token for local runs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use super::error::{DatabricksError, Upstream};
use crate::secrets::LiveSecret;

/// The Entra ID application of the Azure Databricks resource; the same in every tenant.
pub const AZURE_DATABRICKS_RESOURCE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";

/// An access token and when it stops working.
#[derive(Clone)]
pub struct BearerToken {
    value: SecretString,
    /// `None` for tokens without a known lifetime (static tokens).
    expires_at: Option<Instant>,
}

impl BearerToken {
    pub fn new(value: SecretString, expires_at: Option<Instant>) -> Self {
        Self { value, expires_at }
    }

    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// The token text, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }

    /// Whether the token is still good `margin` from now.
    pub fn fresh_for(&self, margin: Duration) -> bool {
        self.expires_at
            .is_none_or(|at| Instant::now() + margin < at)
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Something that hands out bearer tokens for Databricks.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    async fn token(&self) -> Result<BearerToken, DatabricksError>;

    /// An API refused a request made with `used` as not authenticated (see
    /// `DatabricksError::is_token_refusal`). Returns whether the request is worth sending once more with
    /// a token from `token()`, because this source now hands out a different kind of token. Most sources
    /// have no other token to offer.
    async fn refused(&self, _used: &BearerToken) -> bool {
        false
    }
}

/// A fixed token (`DATABRICKS_TOKEN`): local runs and tests.
#[derive(Debug, Clone)]
pub struct StaticToken(BearerToken);

impl StaticToken {
    pub fn new(token: SecretString) -> Self {
        Self(BearerToken::new(token, None))
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<BearerToken, DatabricksError> {
        Ok(self.0.clone())
    }
}

/// Databricks OAuth machine-to-machine: `client_credentials` with `scope=all-apis`, the client id and
/// secret sent as HTTP Basic.
#[derive(Clone)]
pub struct OAuthM2mTokenSource {
    http: reqwest::Client,
    token_url: Url,
    client_id: String,
    /// Fixed, or read from Key Vault so a rotated secret is used without a restart.
    client_secret: LiveSecret,
    timeout: Duration,
}

impl fmt::Debug for OAuthM2mTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthM2mTokenSource")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    expires_in: Option<u64>,
}

impl OAuthM2mTokenSource {
    /// `https://<host>/oidc/v1/token`: tokens for one workspace.
    pub fn workspace_token_url(host: &Url) -> Url {
        let mut url = host.clone();
        url.set_path("/oidc/v1/token");
        url
    }

    /// `https://<account-host>/oidc/accounts/<account_id>/v1/token`: tokens for the account APIs.
    pub fn account_token_url(account_host: &Url, account_id: &str) -> Url {
        let mut url = account_host.clone();
        url.set_path(&format!("/oidc/accounts/{account_id}/v1/token"));
        url
    }

    pub fn new(
        http: reqwest::Client,
        token_url: Url,
        client_id: String,
        client_secret: impl Into<LiveSecret>,
        timeout: Duration,
    ) -> Self {
        let client_secret = client_secret.into();
        Self {
            http,
            token_url,
            client_id,
            client_secret,
            timeout,
        }
    }
}

#[async_trait]
impl TokenSource for OAuthM2mTokenSource {
    #[tracing::instrument(skip_all, fields(token_url = %self.token_url))]
    async fn token(&self) -> Result<BearerToken, DatabricksError> {
        let secret = self.client_secret.current().await;
        match self.request(&secret).await {
            // The secret may have been rotated in Key Vault since the cache read it: read it again once.
            Err(e @ DatabricksError::Unauthenticated { .. }) => {
                match self.client_secret.reload_after_refusal(&secret).await {
                    Some(rotated) => self.request(&rotated).await,
                    None => Err(e),
                }
            }
            other => other,
        }
    }
}

impl OAuthM2mTokenSource {
    async fn request(&self, client_secret: &SecretString) -> Result<BearerToken, DatabricksError> {
        let request = format!("POST {}", self.token_url.path());
        let response = self
            .http
            .post(self.token_url.clone())
            .basic_auth(&self.client_id, Some(client_secret.expose_secret()))
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| super::http::transport_error(&request, self.timeout, &e))?;
        let status = response.status();
        let retry_after = super::http::retry_after_header(&response);
        let body = response
            .bytes()
            .await
            .map_err(|e| super::http::answer_error(&request, self.timeout, &e))?;
        if !status.is_success() {
            let upstream = Upstream::from_body(request, status.as_u16(), &body);
            // The token endpoint answers 400 or 401 for a wrong id or secret: both mean our
            // credentials, whatever error code it chose.
            return Err(match status.as_u16() {
                400 | 401 | 403 => DatabricksError::Unauthenticated {
                    detail: format!("the OAuth token endpoint refused client {}", self.client_id),
                    upstream: Some(Box::new(upstream)),
                },
                _ => DatabricksError::from_response(upstream, retry_after),
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| DatabricksError::Unexpected {
                request: request.clone(),
                detail: format!("token response is not JSON with access_token: {e}"),
                upstream: None,
            })?;
        // Databricks tokens live an hour; assume so when expires_in is missing.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        Ok(BearerToken::new(
            parsed.access_token,
            Some(Instant::now() + lifetime),
        ))
    }
}

/// An Entra ID token for the Azure Databricks resource, from any `azure_identity` credential
/// (`ManagedIdentityCredential`, `ClientSecretCredential`, ...).
#[derive(Debug, Clone)]
pub struct EntraTokenSource {
    credential: Arc<dyn TokenCredential>,
}

impl EntraTokenSource {
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        Self { credential }
    }

    /// The scope requested: the resource's `.default`.
    pub fn scope() -> String {
        format!("{AZURE_DATABRICKS_RESOURCE}/.default")
    }
}

#[async_trait]
impl TokenSource for EntraTokenSource {
    #[tracing::instrument(skip_all)]
    async fn token(&self) -> Result<BearerToken, DatabricksError> {
        let scope = Self::scope();
        let token = self
            .credential
            .get_token(&[scope.as_str()], None)
            .await
            .map_err(|e| entra_error(&e))?;
        let left = token.expires_on - time::OffsetDateTime::now_utc();
        let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
        Ok(BearerToken::new(
            SecretString::from(token.token.secret().to_owned()),
            Some(Instant::now() + left),
        ))
    }
}

/// Entra ID tokens for an app registration's client secret (`azure-client-secret`). The secret may be
/// rotated in Key Vault while the process runs: the credential is rebuilt whenever the secret read
/// through the cache differs from the one it was built with, and once more after Entra ID refuses it.
pub struct EntraClientSecretSource {
    tenant_id: String,
    client_id: String,
    secret: LiveSecret,
    /// The process's client ([`crate::outbound`]): a rebuilt credential sends over it too.
    http: reqwest::Client,
    built: tokio::sync::Mutex<(SecretString, EntraTokenSource)>,
}

impl fmt::Debug for EntraClientSecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraClientSecretSource")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

impl EntraClientSecretSource {
    /// Builds the credential for the secret known now, sending over `http`; fails when the SDK refuses
    /// the tenant or id.
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        secret: LiveSecret,
        http: reqwest::Client,
    ) -> Result<Self, azure_core::Error> {
        let initial = secret.last_known();
        let source = Self::credential(tenant_id, client_id, &initial, &http)?;
        Ok(Self {
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            secret,
            http,
            built: tokio::sync::Mutex::new((initial, source)),
        })
    }

    fn credential(
        tenant_id: &str,
        client_id: &str,
        secret: &SecretString,
        http: &reqwest::Client,
    ) -> Result<EntraTokenSource, azure_core::Error> {
        let credential = azure_identity::ClientSecretCredential::new(
            tenant_id,
            client_id.to_owned(),
            secret.expose_secret().to_owned().into(),
            Some(azure_identity::ClientSecretCredentialOptions {
                client_options: crate::outbound::azure_client_options(http),
            }),
        )?;
        Ok(EntraTokenSource::new(credential))
    }

    /// The token source for `secret`, rebuilt when the secret changed.
    async fn source_for(&self, secret: &SecretString) -> Result<EntraTokenSource, DatabricksError> {
        let mut built = self.built.lock().await;
        if built.0.expose_secret() != secret.expose_secret() {
            let source = Self::credential(&self.tenant_id, &self.client_id, secret, &self.http)
                .map_err(|e| DatabricksError::Unauthenticated {
                    detail: format!("cannot set up the Entra ID credential: {e}"),
                    upstream: None,
                })?;
            tracing::info!(client_id = %self.client_id, "Entra ID credential rebuilt for a rotated client secret");
            *built = (secret.clone(), source);
        }
        Ok(built.1.clone())
    }
}

#[async_trait]
impl TokenSource for EntraClientSecretSource {
    async fn token(&self) -> Result<BearerToken, DatabricksError> {
        let secret = self.secret.current().await;
        match self.source_for(&secret).await?.token().await {
            Err(e @ DatabricksError::Unauthenticated { .. }) => {
                match self.secret.reload_after_refusal(&secret).await {
                    Some(rotated) => self.source_for(&rotated).await?.token().await,
                    None => Err(e),
                }
            }
            other => other,
        }
    }
}

fn entra_error(error: &azure_core::Error) -> DatabricksError {
    use azure_core::error::ErrorKind;
    let detail = format!("Entra ID token for Azure Databricks: {error}");
    match error.kind() {
        ErrorKind::Connection | ErrorKind::Io => DatabricksError::Unreachable {
            request: "Entra ID token".into(),
            detail,
        },
        ErrorKind::HttpResponse { status, .. } if u16::from(*status) >= 500 => {
            DatabricksError::Unavailable {
                upstream: Upstream {
                    request: "Entra ID token".into(),
                    status: u16::from(*status),
                    error_code: None,
                    message: detail,
                },
                retry_after: None,
            }
        }
        _ => DatabricksError::Unauthenticated {
            detail,
            upstream: None,
        },
    }
}
