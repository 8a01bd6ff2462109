//! HTTP Basic for the functions that enable it (Purview's *Basic* credential), compared in constant time.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::AuthError;
use super::settings::BasicCredentials;

/// Checks the base64 part of an `Authorization: Basic …` header against the configured credentials.
/// Returns the username on success.
pub fn check(encoded: &str, expected: &BasicCredentials) -> Result<String, AuthError> {
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| AuthError::InvalidBasicCredentials)?;
    let decoded = String::from_utf8(decoded).map_err(|_| AuthError::InvalidBasicCredentials)?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or(AuthError::InvalidBasicCredentials)?;
    // Compare fixed-length digests so neither the content nor the length of the secret leaks through
    // timing; evaluate both comparisons before combining them so a wrong username takes as long.
    let user_ok = same_digest(username, &expected.username);
    let password_ok = same_digest(password, expected.password.expose_secret());
    if bool::from(user_ok & password_ok) {
        Ok(username.to_owned())
    } else {
        Err(AuthError::InvalidBasicCredentials)
    }
}

fn same_digest(given: &str, expected: &str) -> subtle::Choice {
    let given = digest(&SHA256, given.as_bytes());
    let expected = digest(&SHA256, expected.as_bytes());
    given.as_ref().ct_eq(expected.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn creds() -> BasicCredentials {
        BasicCredentials::new("purview", SecretString::from("correct horse"))
    }

    fn encode(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn the_right_username_and_password_pass() {
        assert_eq!(
            check(&encode("purview:correct horse"), &creds()),
            Ok("purview".into())
        );
    }

    #[test]
    fn a_password_containing_a_colon_is_split_at_the_first_colon() {
        let c = BasicCredentials::new("u", SecretString::from("a:b"));
        assert!(check(&encode("u:a:b"), &c).is_ok());
    }

    #[test]
    fn wrong_or_malformed_credentials_fail_the_same_way() {
        for bad in [
            encode("purview:wrong"),
            encode("someone:correct horse"),
            encode("purview:correct horse "),
            encode("purview"),
            encode(""),
            "%%%not base64".to_owned(),
        ] {
            assert_eq!(
                check(&bad, &creds()),
                Err(AuthError::InvalidBasicCredentials),
                "{bad}"
            );
        }
    }
}
