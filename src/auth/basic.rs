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
///
/// When the password lives in Key Vault and the username matched but the password did not, the vault
/// is read again (at most twice a minute, see [`LiveSecret`](crate::secrets::LiveSecret)): Purview may
/// already send a rotated password that the cache has not seen yet.
pub async fn check(encoded: &str, expected: &BasicCredentials) -> Result<String, AuthError> {
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
    // An empty password is no credential: whoever sends `user:` would match it. Settings refuse one at
    // start; this catches a value that became empty later (a Key Vault secret rotated to nothing). The
    // vault is read again (rate-limited, right username only) in case an operator has fixed it since.
    let mut current = expected.password.current().await;
    if is_blank(&current) {
        let fixed = if bool::from(user_ok) {
            expected.password.reload_after_refusal(&current).await
        } else {
            None
        };
        match fixed {
            Some(value) if !is_blank(&value) => current = value,
            _ => return Err(AuthError::BasicNotConfigured),
        }
    }
    let password_ok = same_digest(password, current.expose_secret());
    if bool::from(user_ok & password_ok) {
        return Ok(username.to_owned());
    }
    if bool::from(user_ok)
        && let Some(rotated) = expected.password.reload_after_refusal(&current).await
    {
        if is_blank(&rotated) {
            return Err(AuthError::BasicNotConfigured);
        }
        if bool::from(same_digest(password, rotated.expose_secret())) {
            return Ok(username.to_owned());
        }
    }
    Err(AuthError::InvalidBasicCredentials)
}

/// Whether a configured password is empty or only whitespace, so that it must never be compared.
pub(crate) fn is_blank(password: &secrecy::SecretString) -> bool {
    password.expose_secret().trim().is_empty()
}

fn same_digest(given: &str, expected: &str) -> subtle::Choice {
    let given = digest(&SHA256, given.as_bytes());
    let expected = digest(&SHA256, expected.as_bytes());
    given.as_ref().ct_eq(expected.as_ref())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use secrecy::SecretString;

    use super::*;
    use crate::secrets::{
        CachePolicy, CachedSecrets, LiveSecret, SecretError, SecretName, SecretRef, SecretStore,
    };

    fn creds() -> BasicCredentials {
        BasicCredentials::new("purview", SecretString::from("correct horse"))
    }

    fn encode(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[tokio::test]
    async fn the_right_username_and_password_pass() {
        assert_eq!(
            check(&encode("purview:correct horse"), &creds()).await,
            Ok("purview".into())
        );
    }

    #[tokio::test]
    async fn a_password_containing_a_colon_is_split_at_the_first_colon() {
        let c = BasicCredentials::new("u", SecretString::from("a:b"));
        assert!(check(&encode("u:a:b"), &c).await.is_ok());
    }

    #[tokio::test]
    async fn wrong_or_malformed_credentials_fail_the_same_way() {
        for bad in [
            encode("purview:wrong"),
            encode("someone:correct horse"),
            encode("purview:correct horse "),
            encode("purview"),
            encode(""),
            "%%%not base64".to_owned(),
        ] {
            assert_eq!(
                check(&bad, &creds()).await,
                Err(AuthError::InvalidBasicCredentials),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn an_empty_or_blank_configured_password_refuses_every_basic_caller() {
        for configured in ["", " ", "\t \n"] {
            let c = BasicCredentials::new("purview", SecretString::from(configured));
            for sent in [
                "purview:".to_owned(),
                format!("purview:{configured}"),
                "purview:anything".to_owned(),
            ] {
                assert_eq!(
                    check(&encode(&sent), &c).await,
                    Err(AuthError::BasicNotConfigured),
                    "configured {configured:?}, sent {sent:?}"
                );
            }
        }
    }

    /// A vault whose value the test rotates, counting reads.
    #[derive(Debug)]
    struct Vault {
        value: Mutex<String>,
        reads: Mutex<u32>,
    }

    #[async_trait]
    impl SecretStore for Vault {
        async fn get(&self, _name: &str) -> Result<SecretString, SecretError> {
            *self.reads.lock().unwrap() += 1;
            Ok(SecretString::from(self.value.lock().unwrap().clone()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_password_rotated_in_the_vault_is_accepted_at_once_and_the_old_one_refused() {
        let vault = Arc::new(Vault {
            value: Mutex::new("old".into()),
            reads: Mutex::new(0),
        });
        // Behind the cache, with a TTL longer than the test: only refusals make it read the vault.
        let cached = CachedSecrets::new(
            vault.clone(),
            CachePolicy::new(Duration::from_secs(3600), Duration::ZERO),
        );
        let secret = SecretRef::new(Arc::new(cached), SecretName::parse("pv-basic").unwrap());
        let creds = BasicCredentials::rotating("purview", LiveSecret::stored("old".into(), secret));
        assert!(check(&encode("purview:old"), &creds).await.is_ok());

        *vault.value.lock().unwrap() = "new".into();
        assert_eq!(
            check(&encode("purview:new"), &creds).await,
            Ok("purview".into())
        );
        assert_eq!(
            check(&encode("purview:old"), &creds).await,
            Err(AuthError::InvalidBasicCredentials)
        );

        // A wrong username never makes the vault be read again; wrong passwords re-read it at most
        // once per interval.
        let reads = *vault.reads.lock().unwrap();
        for _ in 0..20 {
            let _ = check(&encode("someone:guess"), &creds).await;
            let _ = check(&encode("purview:guess"), &creds).await;
        }
        assert!(*vault.reads.lock().unwrap() <= reads + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_password_rotated_to_empty_in_the_vault_refuses_basic_instead_of_matching_an_empty_one()
     {
        let vault = Arc::new(Vault {
            value: Mutex::new("old".into()),
            reads: Mutex::new(0),
        });
        let cached = CachedSecrets::new(
            vault.clone(),
            CachePolicy::new(Duration::from_secs(3600), Duration::ZERO),
        );
        let secret = SecretRef::new(Arc::new(cached), SecretName::parse("pv-basic").unwrap());
        let creds = BasicCredentials::rotating("purview", LiveSecret::stored("old".into(), secret));
        assert!(check(&encode("purview:old"), &creds).await.is_ok());

        // Someone empties the secret. A caller sending an empty password makes the vault be re-read (the
        // username matched), and what it finds is refused as a configuration, not compared.
        *vault.value.lock().unwrap() = String::new();
        assert_eq!(
            check(&encode("purview:"), &creds).await,
            Err(AuthError::BasicNotConfigured)
        );
        // From then on every Basic caller is refused, the old password included, until a real one is set.
        for sent in ["purview:", "purview:old", "purview: ", "someone:old"] {
            assert_eq!(
                check(&encode(sent), &creds).await,
                Err(AuthError::BasicNotConfigured),
                "{sent}"
            );
        }
        // The fix is picked up at the next re-read the interval allows, not only when the cache expires.
        tokio::time::advance(crate::secrets::MIN_RELOAD_INTERVAL).await;
        *vault.value.lock().unwrap() = "new".into();
        assert!(check(&encode("purview:new"), &creds).await.is_ok());
        assert_eq!(
            check(&encode("purview:"), &creds).await,
            Err(AuthError::InvalidBasicCredentials)
        );
    }
}
