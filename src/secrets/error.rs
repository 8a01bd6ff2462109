//! What can go wrong reading a secret, classified so callers know whether to retry. No variant ever
//! carries a secret value: only names, the store, and the service's own error code and message.

use std::time::Duration;

/// A secret could not be read. `Clone` so a cache can hand the same failure to every waiting caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The name cannot be a secret name (Key Vault allows 1–127 letters, digits and dashes).
    #[error("{name:?} is not a valid secret name: use 1 to 127 letters, digits and dashes")]
    InvalidName { name: String },

    /// Key Vault answered 403: the app's identity may not read secrets in this vault.
    #[error(
        "Key Vault {vault} refused to let the app read secret {name:?} (403 {code}): give the app's managed identity the role \"Key Vault Secrets User\" on the vault or on the secret. Key Vault said: {message}"
    )]
    Forbidden {
        vault: String,
        name: String,
        code: String,
        message: String,
    },

    /// The secret exists but is disabled (Key Vault answers 403 `SecretDisabled`).
    #[error("secret {name:?} in Key Vault {vault} is disabled: enable it or create a new version")]
    Disabled { vault: String, name: String },

    /// No such secret (Key Vault answered 404, or the environment variable is not set).
    #[error("secret {name:?} was not found in {location}")]
    NotFound { name: String, location: String },

    /// Key Vault answered 429: it throttles per vault. Retry after `retry_after` when it said so.
    #[error("Key Vault {vault} is throttling requests (429){}", retry_after_text(*retry_after))]
    Throttled {
        vault: String,
        retry_after: Option<Duration>,
    },

    /// No token, or Key Vault refused the token (401): the identity or the tenant is wrong.
    #[error("cannot authenticate to Key Vault {vault}: {detail}")]
    Unauthenticated { vault: String, detail: String },

    /// The network, the vault or the token endpoint did not answer in time, or answered 5xx.
    #[error("Key Vault {vault} is unavailable: {detail}")]
    Unavailable { vault: String, detail: String },

    /// The client could not be built (a URL the SDK refuses, no managed identity support).
    #[error("cannot set up the secret store: {detail}")]
    Setup { detail: String },

    /// Any other answer (an unexpected status, a body that is not a secret, a misconfigured client).
    #[error("cannot read secret {name:?} from {location}: {detail}")]
    Other {
        name: String,
        location: String,
        detail: String,
    },
}

fn retry_after_text(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|d| format!("; retry after {} s", d.as_secs()))
        .unwrap_or_default()
}

impl SecretError {
    /// Whether the same read may succeed later without anyone changing anything: throttling and outages.
    /// Refusals, missing secrets and bad names need an operator.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Unavailable { .. })
    }

    /// How long the store asked us to wait, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_and_outages_are_retryable() {
        let throttled = SecretError::Throttled {
            vault: "v".into(),
            retry_after: Some(Duration::from_secs(7)),
        };
        assert!(throttled.is_retryable());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(7)));
        assert!(
            throttled.to_string().contains("retry after 7 s"),
            "{throttled}"
        );
        let forbidden = SecretError::Forbidden {
            vault: "v".into(),
            name: "n".into(),
            code: "Forbidden".into(),
            message: "m".into(),
        };
        assert!(!forbidden.is_retryable());
        assert!(forbidden.to_string().contains("Key Vault Secrets User"));
        assert!(
            !SecretError::NotFound {
                name: "n".into(),
                location: "l".into()
            }
            .is_retryable()
        );
    }
}
