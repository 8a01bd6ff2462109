//! Secrets from Azure Key Vault through the official client (`azure_security_keyvault_secrets` 1.x),
//! authenticated as the Function app's managed identity, with Key Vault's answers mapped to
//! [`SecretError`]s that say what to do.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::headers::RETRY_AFTER;
use azure_core::http::policies::{RetryHeaders, RetryPolicy};
use azure_core::http::{ClientOptions, RawResponse, RetryOptions, StatusCode, Transport};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use secrecy::SecretString;
use url::Url;

use super::{SecretError, SecretName, SecretStore};

/// Ceiling for one read, token included: an HTTP function has about 25 s for everything.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The SDK's pipeline retry for Key Vault. Transient failures (connection errors, 408, 5xx) are retried
/// a couple of times quickly; 429 is *not*: the SDK would sleep for the whole `Retry-After` inside a
/// request, so throttling is returned to the cache, which stops asking until `Retry-After` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyVaultRetry {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Pause before the first retry; doubled for each next one.
    pub initial_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for KeyVaultRetry {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_delay: Duration::from_millis(200),
            max_elapsed: Duration::from_secs(5),
        }
    }
}

const TRANSIENT: &[StatusCode] = &[
    StatusCode::RequestTimeout,
    StatusCode::InternalServerError,
    StatusCode::BadGateway,
    StatusCode::ServiceUnavailable,
    StatusCode::GatewayTimeout,
];

fn sdk_duration(d: Duration) -> azure_core::time::Duration {
    azure_core::time::Duration::try_from(d).unwrap_or(azure_core::time::Duration::MAX)
}

impl RetryPolicy for KeyVaultRetry {
    fn is_expired(&self, since_start: azure_core::time::Duration, retry_count: u32) -> bool {
        retry_count >= self.max_retries || since_start >= sdk_duration(self.max_elapsed)
    }

    fn retry_headers(&self) -> Option<&RetryHeaders> {
        None
    }

    fn retry_status_codes(&self) -> &[StatusCode] {
        TRANSIENT
    }

    fn sleep_duration(&self, retry_count: u32) -> azure_core::time::Duration {
        let factor = 2u32.saturating_pow(retry_count.saturating_sub(1));
        sdk_duration(self.initial_delay.saturating_mul(factor))
    }
}

/// Construction options; production uses the defaults, tests inject a transport.
#[derive(Debug, Clone)]
pub struct KeyVaultOptions {
    /// The HTTP transport; default: the SDK's reqwest client.
    pub transport: Option<Transport>,
    pub retry: KeyVaultRetry,
    pub timeout: Duration,
}

impl Default for KeyVaultOptions {
    fn default() -> Self {
        Self {
            transport: None,
            retry: KeyVaultRetry::default(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Reads secrets from one vault.
pub struct KeyVaultSecrets {
    client: SecretClient,
    vault: String,
    timeout: Duration,
}

impl fmt::Debug for KeyVaultSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultSecrets")
            .field("vault", &self.vault)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl KeyVaultSecrets {
    /// A client for the vault at `vault_url` (`https://<name>.vault.azure.net/`) using `credential`.
    /// Nothing is sent until the first read.
    pub fn new(
        vault_url: &Url,
        credential: Arc<dyn TokenCredential>,
        options: KeyVaultOptions,
    ) -> Result<Self, SecretError> {
        let vault = vault_url.as_str().to_owned();
        let client_options = SecretClientOptions {
            client_options: ClientOptions {
                transport: options.transport,
                retry: RetryOptions::custom(Arc::new(options.retry)),
                ..ClientOptions::default()
            },
            ..SecretClientOptions::default()
        };
        let client = SecretClient::new(&vault, credential, Some(client_options)).map_err(|e| {
            SecretError::Setup {
                detail: format!(
                    "cannot build the Key Vault client for {vault} (KEY_VAULT_URL): {e}"
                ),
            }
        })?;
        Ok(Self {
            client,
            vault,
            timeout: options.timeout,
        })
    }

    /// A client authenticated as the app's managed identity: the user-assigned one with `client_id`
    /// (`ARM_CLIENT_ID` / `AZURE_CLIENT_ID`), or the system-assigned one when `None`. The client and its
    /// credential send over `http` (the process's one client, [`crate::outbound`]), whatever
    /// `options.transport` says.
    pub fn with_managed_identity(
        vault_url: &Url,
        client_id: Option<String>,
        http: &reqwest::Client,
        options: KeyVaultOptions,
    ) -> Result<Self, SecretError> {
        let credential =
            crate::outbound::managed_identity(client_id, http).map_err(|e| SecretError::Setup {
                detail: format!(
                    "cannot set up the managed identity credential (ARM_CLIENT_ID / AZURE_CLIENT_ID): {e}"
                ),
            })?;
        let options = KeyVaultOptions {
            transport: Some(crate::outbound::azure_transport(http)),
            ..options
        };
        Self::new(vault_url, credential, options)
    }

    pub fn vault(&self) -> &str {
        &self.vault
    }

    async fn read(&self, name: &SecretName) -> Result<SecretString, SecretError> {
        let response = self
            .client
            .get_secret(name.as_str(), None)
            .await
            .map_err(|e| self.map_error(name, &e))?;
        // The model's own parse error could quote the body, which holds the value: say only what failed.
        let secret = response
            .into_model()
            .map_err(|_| self.other(name, "the answer is not a secret"))?;
        secret
            .value
            .map(SecretString::from)
            .ok_or_else(|| self.other(name, "the answer has no value"))
    }

    fn other(&self, name: &SecretName, detail: &str) -> SecretError {
        SecretError::Other {
            name: name.to_string(),
            location: format!("Key Vault {}", self.vault),
            detail: detail.to_owned(),
        }
    }

    /// Turns the SDK's error into ours. Key Vault's error bodies carry a code and a message about the
    /// request (never the secret), which are kept for the operator.
    fn map_error(&self, name: &SecretName, error: &azure_core::Error) -> SecretError {
        let vault = self.vault.clone();
        match error.kind() {
            ErrorKind::HttpResponse {
                status,
                error_code,
                raw_response,
            } => {
                let body = raw_response.as_deref().map(ErrorBody::from_response);
                let code = error_code.clone().unwrap_or_else(|| status.to_string());
                let message = error.to_string();
                match u16::from(*status) {
                    401 => SecretError::Unauthenticated {
                        vault,
                        detail: format!("Key Vault refused the token (401 {code}): {message}"),
                    },
                    403 if body.as_ref().is_some_and(ErrorBody::is_disabled) => {
                        SecretError::Disabled {
                            vault,
                            name: name.to_string(),
                        }
                    }
                    403 => SecretError::Forbidden {
                        vault,
                        name: name.to_string(),
                        code: body.and_then(|b| b.inner_code).unwrap_or(code),
                        message,
                    },
                    404 => SecretError::NotFound {
                        name: name.to_string(),
                        location: format!("Key Vault {vault}"),
                    },
                    429 => SecretError::Throttled {
                        vault,
                        retry_after: raw_response.as_deref().and_then(retry_after),
                    },
                    408 | 500..=599 => SecretError::Unavailable {
                        vault,
                        detail: format!("{} {code}: {message}", u16::from(*status)),
                    },
                    other => SecretError::Other {
                        name: name.to_string(),
                        location: format!("Key Vault {vault}"),
                        detail: format!("unexpected answer {other} {code}: {message}"),
                    },
                }
            }
            ErrorKind::Credential => SecretError::Unauthenticated {
                vault,
                detail: format!(
                    "the managed identity could not get a token: {}",
                    chain(error)
                ),
            },
            ErrorKind::Io | ErrorKind::Connection => SecretError::Unavailable {
                vault,
                detail: format!("cannot reach the vault: {}", chain(error)),
            },
            ErrorKind::DataConversion | ErrorKind::Other => SecretError::Other {
                name: name.to_string(),
                location: format!("Key Vault {vault}"),
                detail: chain(error),
            },
        }
    }
}

#[async_trait]
impl SecretStore for KeyVaultSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        let name = SecretName::parse(name)?;
        match tokio::time::timeout(self.timeout, self.read(&name)).await {
            Ok(answer) => answer,
            Err(_) => Err(SecretError::Unavailable {
                vault: self.vault.clone(),
                detail: format!("no answer within {} s", self.timeout.as_secs()),
            }),
        }
    }
}

/// The parts of Key Vault's error body the mapping needs.
#[derive(Debug, Default)]
struct ErrorBody {
    inner_code: Option<String>,
    message: Option<String>,
}

impl ErrorBody {
    fn from_response(response: &RawResponse) -> Self {
        let json: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
        let error = &json["error"];
        Self {
            inner_code: error["innererror"]["code"].as_str().map(str::to_owned),
            message: error["message"].as_str().map(str::to_owned),
        }
    }

    fn is_disabled(&self) -> bool {
        self.inner_code.as_deref() == Some("SecretDisabled")
            || self
                .message
                .as_deref()
                .is_some_and(|m| m.contains("disabled secret"))
    }
}

/// The error and its causes: the pipeline wraps the credential's or the socket's error in its own
/// context ("will not be retried"), and the cause is what the operator needs.
fn chain(error: &azure_core::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(response: &RawResponse) -> Option<Duration> {
    let raw = response.headers().get_optional_str(&RETRY_AFTER)?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_stop_at_the_limits() {
        let retry = KeyVaultRetry::default();
        assert_eq!(
            retry.sleep_duration(1),
            azure_core::time::Duration::milliseconds(200)
        );
        assert_eq!(
            retry.sleep_duration(2),
            azure_core::time::Duration::milliseconds(400)
        );
        assert!(!retry.is_expired(azure_core::time::Duration::ZERO, 1));
        assert!(retry.is_expired(azure_core::time::Duration::ZERO, 2));
        assert!(retry.is_expired(azure_core::time::Duration::seconds(5), 0));
        assert!(
            !retry
                .retry_status_codes()
                .contains(&StatusCode::TooManyRequests)
        );
    }
}
