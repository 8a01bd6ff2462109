//! Databricks connection settings, read once under the unified-auth names Databricks users already know.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::env::{Env, SettingsError};
use crate::secrets::LiveSecret;

pub const DEFAULT_ACCOUNT_HOST: &str = "https://accounts.azuredatabricks.net";

/// How uc-access proves who it is to Databricks.
#[derive(Clone)]
pub enum AuthSettings {
    /// `azure-msi`: the Function app's managed identity; `client_id` picks a user-assigned one.
    AzureMsi { client_id: Option<String> },
    /// `azure-client-secret`: an Entra app registration's secret.
    AzureClientSecret {
        tenant_id: String,
        client_id: String,
        client_secret: LiveSecret,
    },
    /// `oauth-m2m`: a Databricks service principal's OAuth secret.
    OAuthM2m {
        client_id: String,
        client_secret: LiveSecret,
    },
    /// `pat`: a static token, for local runs against the stand-in.
    Pat { token: SecretString },
}

impl AuthSettings {
    pub fn auth_type(&self) -> &'static str {
        match self {
            Self::AzureMsi { .. } => "azure-msi",
            Self::AzureClientSecret { .. } => "azure-client-secret",
            Self::OAuthM2m { .. } => "oauth-m2m",
            Self::Pat { .. } => "pat",
        }
    }
}

// Only the type and non-secret ids are shown; secrets never are.
impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AuthSettings");
        d.field("type", &self.auth_type());
        match self {
            Self::AzureMsi { client_id } => d.field("client_id", client_id),
            Self::AzureClientSecret {
                tenant_id,
                client_id,
                ..
            } => d
                .field("tenant_id", tenant_id)
                .field("client_id", client_id),
            Self::OAuthM2m { client_id, .. } => d.field("client_id", client_id),
            Self::Pat { .. } => &mut d,
        };
        d.finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct DatabricksSettings {
    /// `DATABRICKS_HOST`: the default workspace (others come from the workspace map).
    pub host: Option<Url>,
    /// `DATABRICKS_ACCOUNT_ID`.
    pub account_id: String,
    /// `DATABRICKS_ACCOUNT_HOST`, default `https://accounts.azuredatabricks.net`.
    pub account_host: Url,
    pub auth: AuthSettings,
    /// `UC_ACCESS_RESOLVE_BY_EXTERNAL_ID`: opt-in because resolve creates the identity when missing.
    pub resolve_by_external_id: bool,
    /// `UC_ACCESS_DATABRICKS_TIMEOUT_SECS` (default 10): the ceiling for one HTTP request.
    pub request_timeout: Duration,
    /// `UC_ACCESS_DATABRICKS_MAX_ATTEMPTS` (default 4): attempts per call, the first included.
    pub max_attempts: u32,
}

/// Accepts `adb-1.azuredatabricks.net` or a full URL; plain `http` only for loopback (the stand-in).
pub fn parse_host(key: &str, raw: &str) -> Result<Url, SettingsError> {
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("https://{raw}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| SettingsError::new(key, format!("is not a host or URL ({e})")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        other => {
            return Err(SettingsError::new(
                key,
                format!(
                    "must use https (got {other}://); plain http is only allowed for 127.0.0.1"
                ),
            ));
        }
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(SettingsError::new(key, "must be a host without a path"));
    }
    Ok(url)
}

fn secret(env: &Env, key: &str) -> Result<SecretString, SettingsError> {
    env.required(key).map(|v| SecretString::from(v.to_owned()))
}

impl DatabricksSettings {
    /// Reads the settings. When `DATABRICKS_AUTH_TYPE` is unset the type is inferred, first match wins:
    /// `DATABRICKS_TOKEN` → `pat`; `DATABRICKS_CLIENT_ID` + `DATABRICKS_CLIENT_SECRET` → `oauth-m2m`;
    /// `ARM_CLIENT_SECRET` → `azure-client-secret`; otherwise `azure-msi` (the Function app's identity).
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let host = env
            .get("DATABRICKS_HOST")
            .map(|raw| parse_host("DATABRICKS_HOST", raw))
            .transpose()?;
        let account_id = env.required("DATABRICKS_ACCOUNT_ID")?;
        if uuid::Uuid::try_parse(account_id).is_err() {
            return Err(SettingsError::new(
                "DATABRICKS_ACCOUNT_ID",
                "must be the account id, a GUID (see the account console)",
            ));
        }
        let account_host = parse_host(
            "DATABRICKS_ACCOUNT_HOST",
            env.get("DATABRICKS_ACCOUNT_HOST")
                .unwrap_or(DEFAULT_ACCOUNT_HOST),
        )?;
        let auth_type = match env.get("DATABRICKS_AUTH_TYPE") {
            Some(explicit) => explicit.to_ascii_lowercase(),
            None if env.get("DATABRICKS_TOKEN").is_some() => "pat".into(),
            None if env.get("DATABRICKS_CLIENT_ID").is_some()
                && env.get("DATABRICKS_CLIENT_SECRET").is_some() =>
            {
                "oauth-m2m".into()
            }
            None if env.get("ARM_CLIENT_SECRET").is_some() => "azure-client-secret".into(),
            None => "azure-msi".into(),
        };
        let auth = match auth_type.as_str() {
            "azure-msi" => AuthSettings::AzureMsi {
                client_id: env.get("ARM_CLIENT_ID").map(str::to_owned),
            },
            "azure-client-secret" => AuthSettings::AzureClientSecret {
                tenant_id: env.required("ARM_TENANT_ID")?.to_owned(),
                client_id: env.required("ARM_CLIENT_ID")?.to_owned(),
                client_secret: secret(env, "ARM_CLIENT_SECRET")?.into(),
            },
            "oauth-m2m" => AuthSettings::OAuthM2m {
                client_id: env.required("DATABRICKS_CLIENT_ID")?.to_owned(),
                client_secret: secret(env, "DATABRICKS_CLIENT_SECRET")?.into(),
            },
            "pat" => AuthSettings::Pat {
                token: secret(env, "DATABRICKS_TOKEN")?,
            },
            other => {
                return Err(SettingsError::new(
                    "DATABRICKS_AUTH_TYPE",
                    format!(
                        "{other:?} is not one of azure-msi, azure-client-secret, oauth-m2m, pat"
                    ),
                ));
            }
        };
        let timeout_secs: u64 = env.parse_or("UC_ACCESS_DATABRICKS_TIMEOUT_SECS", 10)?;
        if timeout_secs == 0 {
            return Err(SettingsError::new(
                "UC_ACCESS_DATABRICKS_TIMEOUT_SECS",
                "must be at least 1",
            ));
        }
        let max_attempts: u32 = env.parse_or("UC_ACCESS_DATABRICKS_MAX_ATTEMPTS", 4)?;
        if !(1..=10).contains(&max_attempts) {
            return Err(SettingsError::new(
                "UC_ACCESS_DATABRICKS_MAX_ATTEMPTS",
                "must be between 1 and 10",
            ));
        }
        Ok(Self {
            host,
            account_id: account_id.to_owned(),
            account_host,
            auth,
            resolve_by_external_id: env.flag("UC_ACCESS_RESOLVE_BY_EXTERNAL_ID", false)?,
            request_timeout: Duration::from_secs(timeout_secs),
            max_attempts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "11111111-2222-3333-4444-555555555555";

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied()).with_default("DATABRICKS_ACCOUNT_ID", ACCOUNT)
    }

    #[test]
    fn without_credentials_the_managed_identity_is_used() {
        let s = DatabricksSettings::from_env(&env(&[("ARM_CLIENT_ID", "abc")])).unwrap();
        assert!(
            matches!(s.auth, AuthSettings::AzureMsi { client_id: Some(ref id) } if id == "abc")
        );
        assert_eq!(
            s.account_host.as_str(),
            "https://accounts.azuredatabricks.net/"
        );
        assert!(!s.resolve_by_external_id);
        assert_eq!(s.request_timeout, Duration::from_secs(10));
    }

    #[test]
    fn the_auth_type_is_inferred_from_the_credentials_present() {
        let pat = DatabricksSettings::from_env(&env(&[("DATABRICKS_TOKEN", "dapi1")])).unwrap();
        assert_eq!(pat.auth.auth_type(), "pat");
        let m2m = DatabricksSettings::from_env(&env(&[
            ("DATABRICKS_CLIENT_ID", "c"),
            ("DATABRICKS_CLIENT_SECRET", "s"),
        ]))
        .unwrap();
        assert_eq!(m2m.auth.auth_type(), "oauth-m2m");
        let sp = DatabricksSettings::from_env(&env(&[
            ("ARM_CLIENT_SECRET", "s"),
            ("ARM_CLIENT_ID", "c"),
            ("ARM_TENANT_ID", "t"),
        ]))
        .unwrap();
        assert_eq!(sp.auth.auth_type(), "azure-client-secret");
    }

    #[test]
    fn an_explicit_auth_type_names_the_missing_key() {
        let err = DatabricksSettings::from_env(&env(&[
            ("DATABRICKS_AUTH_TYPE", "oauth-m2m"),
            ("DATABRICKS_CLIENT_ID", "c"),
        ]))
        .unwrap_err();
        assert_eq!(err.key, "DATABRICKS_CLIENT_SECRET");
        let err = DatabricksSettings::from_env(&env(&[("DATABRICKS_AUTH_TYPE", "kerberos")]))
            .unwrap_err();
        assert_eq!(err.key, "DATABRICKS_AUTH_TYPE");
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let s = DatabricksSettings::from_env(&env(&[
            ("DATABRICKS_CLIENT_ID", "client-1"),
            ("DATABRICKS_CLIENT_SECRET", "hunter2-secret"),
        ]))
        .unwrap();
        let printed = format!("{s:?}");
        assert!(printed.contains("client-1"));
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn hosts_must_be_https_unless_loopback() {
        let s = DatabricksSettings::from_env(&env(&[(
            "DATABRICKS_HOST",
            "adb-1.2.azuredatabricks.net",
        )]))
        .unwrap();
        assert_eq!(
            s.host.unwrap().as_str(),
            "https://adb-1.2.azuredatabricks.net/"
        );
        assert!(parse_host("H", "http://127.0.0.1:8080").is_ok());
        assert_eq!(parse_host("H", "http://example.com").unwrap_err().key, "H");
        assert!(parse_host("H", "https://x.net/api").is_err());
    }

    #[test]
    fn the_account_id_is_required_and_must_be_a_guid() {
        let err = DatabricksSettings::from_env(&Env::default()).unwrap_err();
        assert_eq!(err.key, "DATABRICKS_ACCOUNT_ID");
        let err =
            DatabricksSettings::from_env(&Env::from_pairs([("DATABRICKS_ACCOUNT_ID", "acme")]))
                .unwrap_err();
        assert_eq!(err.key, "DATABRICKS_ACCOUNT_ID");
    }
}
