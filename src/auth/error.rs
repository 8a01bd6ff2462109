//! Why a caller was refused: a closed set of reason codes with a safe message each, and no HTTP status
//! (the edge maps them: 401 for all but the retryable ones, which are 503).

/// The reason an HTTP caller was not authenticated or not allowed.
///
/// The variants carry no data on purpose: the caller learns the reason code and a fixed message, never a
/// claim value or what we expected. The detail is logged (without the token) where the error arises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{}: {}", self.reason_code(), self.message())]
pub enum AuthError {
    /// No `Authorization` header, or a scheme we do not accept.
    MissingCredentials,
    /// The bearer token is not a well-formed JWT, or a claim has the wrong shape.
    MalformedToken,
    /// The token is signed with anything but RS256 (`none`, HS256, ...).
    UnsupportedAlgorithm,
    /// The token's key id is not in the tenant's key set, fetched after the token arrived.
    UnknownSigningKey,
    /// The token's key id is not in the cached key set, and a refetch is held back by the rate limit: the
    /// key may be new (a rollover), so the caller should retry after the wait.
    SigningKeyNotYetKnown,
    /// The signature does not verify against the key named by the token.
    InvalidSignature,
    /// `exp` is in the past (beyond the allowed clock skew).
    TokenExpired,
    /// `nbf` is in the future (beyond the allowed clock skew).
    TokenNotYetValid,
    /// `iss` is not one of the tenant's issuers.
    WrongIssuer,
    /// `aud` is not one of the configured audiences.
    WrongAudience,
    /// `tid` is not the configured tenant.
    WrongTenant,
    /// A claim we require (`exp`, `nbf`, `iss`, `aud`, `tid`, `azp`/`appid`) is absent.
    MissingClaim,
    /// The token is valid but its application and roles are not allowed to call this function.
    CallerNotAllowed,
    /// A delegated (user) token on a function that serves applications only (`purview-callback`).
    DelegatedTokenNotAccepted,
    /// A delegated token whose client application is on the function's app-id list: that list admits the
    /// application's own app-only tokens, never a person signed in through it.
    AppIdRequiresAppOnlyToken,
    /// HTTP Basic credentials that are malformed or do not match.
    InvalidBasicCredentials,
    /// HTTP Basic sent to a function that does not accept it.
    BasicNotEnabled,
    /// HTTP Basic is enabled on the function but the password it holds now is empty or blank (a Key Vault
    /// secret rotated to an empty value): no Basic caller is let in until an operator sets one.
    BasicNotConfigured,
    /// The tenant's signing keys could not be fetched; the caller may retry.
    KeySetUnavailable,
}

impl AuthError {
    /// Every reason, for documentation and exhaustive tests.
    pub const ALL: [AuthError; 19] = [
        AuthError::MissingCredentials,
        AuthError::MalformedToken,
        AuthError::UnsupportedAlgorithm,
        AuthError::UnknownSigningKey,
        AuthError::SigningKeyNotYetKnown,
        AuthError::InvalidSignature,
        AuthError::TokenExpired,
        AuthError::TokenNotYetValid,
        AuthError::WrongIssuer,
        AuthError::WrongAudience,
        AuthError::WrongTenant,
        AuthError::MissingClaim,
        AuthError::CallerNotAllowed,
        AuthError::DelegatedTokenNotAccepted,
        AuthError::AppIdRequiresAppOnlyToken,
        AuthError::InvalidBasicCredentials,
        AuthError::BasicNotEnabled,
        AuthError::BasicNotConfigured,
        AuthError::KeySetUnavailable,
    ];

    /// A stable, snake_case code for the answer body and for dashboards.
    pub fn reason_code(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "missing_credentials",
            AuthError::MalformedToken => "malformed_token",
            AuthError::UnsupportedAlgorithm => "unsupported_algorithm",
            AuthError::UnknownSigningKey => "unknown_signing_key",
            AuthError::SigningKeyNotYetKnown => "signing_key_not_yet_known",
            AuthError::InvalidSignature => "invalid_signature",
            AuthError::TokenExpired => "token_expired",
            AuthError::TokenNotYetValid => "token_not_yet_valid",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::WrongTenant => "wrong_tenant",
            AuthError::MissingClaim => "missing_claim",
            AuthError::CallerNotAllowed => "caller_not_allowed",
            AuthError::DelegatedTokenNotAccepted => "delegated_token_not_accepted",
            AuthError::AppIdRequiresAppOnlyToken => "app_id_requires_app_only_token",
            AuthError::InvalidBasicCredentials => "invalid_basic_credentials",
            AuthError::BasicNotEnabled => "basic_not_enabled",
            // The code every settings problem answers with: the caller cannot fix it, an operator must.
            AuthError::BasicNotConfigured => "not_configured",
            AuthError::KeySetUnavailable => "key_set_unavailable",
        }
    }

    /// A short message that is safe to send to the caller: it names the problem, never a value.
    pub fn message(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "No bearer token or Basic credentials were sent.",
            AuthError::MalformedToken => "The bearer token is not a well-formed JWT.",
            AuthError::UnsupportedAlgorithm => "The bearer token must be signed with RS256.",
            AuthError::UnknownSigningKey => {
                "The bearer token names a signing key that is not trusted."
            }
            AuthError::SigningKeyNotYetKnown => {
                "The bearer token names a signing key that is not loaded yet; try again after the time in Retry-After."
            }
            AuthError::InvalidSignature => "The bearer token's signature is not valid.",
            AuthError::TokenExpired => "The bearer token has expired.",
            AuthError::TokenNotYetValid => "The bearer token is not valid yet.",
            AuthError::WrongIssuer => "The bearer token was not issued by the expected tenant.",
            AuthError::WrongAudience => "The bearer token was issued for another audience.",
            AuthError::WrongTenant => "The bearer token belongs to another tenant.",
            AuthError::MissingClaim => "The bearer token lacks a required claim.",
            AuthError::CallerNotAllowed => "The caller is not allowed to call this function.",
            AuthError::DelegatedTokenNotAccepted => {
                "This function accepts only an application's own (app-only) token, not a token issued for a signed-in person."
            }
            AuthError::AppIdRequiresAppOnlyToken => {
                "The calling application is allowed only with its own app-only token; a person signed in through it needs an allowed app role."
            }
            AuthError::InvalidBasicCredentials => "The Basic credentials are not valid.",
            AuthError::BasicNotEnabled => "Basic authentication is not enabled for this function.",
            AuthError::BasicNotConfigured => {
                "Basic authentication for this function has an empty password configured, so no Basic credentials are accepted until an operator sets one."
            }
            AuthError::KeySetUnavailable => {
                "The signing keys could not be loaded; try again shortly."
            }
        }
    }

    /// Whether the same request may succeed later without the caller changing anything (once the keys can
    /// be fetched, or an operator has fixed the configuration).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AuthError::KeySetUnavailable
                | AuthError::SigningKeyNotYetKnown
                | AuthError::BasicNotConfigured
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn reason_codes_are_unique_snake_case_and_only_outages_and_misconfiguration_are_retryable() {
        let codes: HashSet<_> = AuthError::ALL.iter().map(|e| e.reason_code()).collect();
        assert_eq!(codes.len(), AuthError::ALL.len());
        for e in AuthError::ALL {
            let code = e.reason_code();
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
            assert_eq!(
                e.is_retryable(),
                matches!(
                    e,
                    AuthError::KeySetUnavailable
                        | AuthError::SigningKeyNotYetKnown
                        | AuthError::BasicNotConfigured
                ),
                "{code}"
            );
            assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn display_shows_the_code_and_the_safe_message() {
        assert_eq!(
            AuthError::WrongAudience.to_string(),
            "wrong_audience: The bearer token was issued for another audience."
        );
    }
}
