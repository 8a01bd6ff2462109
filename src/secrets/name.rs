//! A secret's name, valid for Key Vault (1–127 letters, digits and dashes), and the environment variable
//! that stands for it locally.

use std::fmt;
use std::str::FromStr;

use super::SecretError;

/// Longest name Key Vault accepts.
const MAX_LEN: usize = 127;

/// A name Key Vault accepts. Because only letters, digits and dashes pass, a name can never change the
/// path or the query of the request it is put in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);

impl SecretName {
    pub fn parse(raw: &str) -> Result<Self, SecretError> {
        let ok = (1..=MAX_LEN).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(SecretError::InvalidName {
                name: raw.to_owned(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The environment variable that holds this secret locally: upper case, dashes become underscores
    /// (`databricks-client-secret` → `DATABRICKS_CLIENT_SECRET`).
    pub fn env_var(&self) -> String {
        self.0.replace('-', "_").to_ascii_uppercase()
    }
}

impl FromStr for SecretName {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_vault_names_are_accepted_and_everything_else_refused() {
        assert!(SecretName::parse("databricks-client-secret").is_ok());
        assert!(SecretName::parse(&"a".repeat(127)).is_ok());
        for bad in [
            "",
            "a/b",
            "a?api-version=1",
            "a_b",
            "a b",
            "é",
            &"a".repeat(128),
        ] {
            assert!(SecretName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_environment_variable_is_the_name_in_upper_snake_case() {
        let name = SecretName::parse("purview-callback-basic-password").unwrap();
        assert_eq!(name.env_var(), "PURVIEW_CALLBACK_BASIC_PASSWORD");
    }
}
