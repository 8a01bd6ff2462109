//! Ledger settings: which backend, and where it keeps records. Errors name the setting.

use std::path::PathBuf;

use url::Url;

use crate::env::{Env, SettingsError};

pub const BACKEND_KEY: &str = "LEDGER_BACKEND";
pub const ACCOUNT_URL_KEY: &str = "LEDGER_BLOB_ACCOUNT_URL";
pub const CONTAINER_KEY: &str = "LEDGER_CONTAINER";
pub const DIR_KEY: &str = "LEDGER_DIR";
/// The user-assigned managed identity's client id (`ARM_CLIENT_ID` first, as the Databricks clients
/// read it; `AZURE_CLIENT_ID` as the Azure SDKs do).
pub const CLIENT_ID_KEYS: [&str; 2] = ["ARM_CLIENT_ID", "AZURE_CLIENT_ID"];
/// Set by the Functions platform; used to refuse a silent fallback to a local folder in Azure.
const AZURE_SITE_KEY: &str = "WEBSITE_SITE_NAME";

pub const DEFAULT_CONTAINER: &str = "uc-access-grants";
pub const DEFAULT_LEDGER_DIR: &str = ".uc-access/ledger";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettings {
    pub backend: LedgerBackend,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerBackend {
    /// One JSON file per record in a folder: a single process only (a laptop, CI).
    Local {
        dir: PathBuf,
    },
    Blob(BlobSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobSettings {
    /// `https://<account>.blob.core.windows.net`, without a trailing slash.
    pub account_url: Url,
    pub container: String,
    /// The user-assigned managed identity to use; `None` means the system-assigned one.
    pub managed_identity_client_id: Option<String>,
}

impl LedgerSettings {
    /// `LEDGER_BACKEND` = `blob` | `local`. Unset: `blob` when `LEDGER_BLOB_ACCOUNT_URL` is set,
    /// `local` on a developer machine, and an error inside Azure Functions, where a local folder would
    /// lose records between instances.
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let backend = match env.get(BACKEND_KEY).map(str::to_ascii_lowercase).as_deref() {
            Some("blob") => "blob",
            Some("local") => "local",
            Some(other) => {
                return Err(SettingsError::new(
                    BACKEND_KEY,
                    format!("expected blob or local, got {other:?}"),
                ));
            }
            None if env.get(ACCOUNT_URL_KEY).is_some() => "blob",
            None if env.get(AZURE_SITE_KEY).is_some() => {
                return Err(SettingsError::new(
                    BACKEND_KEY,
                    "must be set in Azure (blob, with LEDGER_BLOB_ACCOUNT_URL): a local folder is not \
                     shared between instances",
                ));
            }
            None => "local",
        };
        let backend = if backend == "local" {
            LedgerBackend::Local {
                dir: PathBuf::from(env.get(DIR_KEY).unwrap_or(DEFAULT_LEDGER_DIR)),
            }
        } else {
            LedgerBackend::Blob(BlobSettings {
                account_url: account_url(env.required(ACCOUNT_URL_KEY)?)?,
                container: container_name(env.get(CONTAINER_KEY).unwrap_or(DEFAULT_CONTAINER))?,
                managed_identity_client_id: env
                    .get_first(&CLIENT_ID_KEYS)
                    .map(|(_, v)| v.to_owned()),
            })
        };
        Ok(Self { backend })
    }
}

fn account_url(raw: &str) -> Result<Url, SettingsError> {
    let bad = |problem: String| SettingsError::new(ACCOUNT_URL_KEY, problem);
    // A trailing slash would make every blob path start with `//`, which the service rejects.
    let url = Url::parse(raw.trim_end_matches('/')).map_err(|e| {
        bad(format!(
            "is not a URL ({e}), expected https://<account>.blob.core.windows.net"
        ))
    })?;
    if url.scheme() != "https" {
        return Err(bad(
            "must use https (bearer tokens are never sent over http)".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "must not have a query (no SAS tokens: the managed identity is used)".into(),
        ));
    }
    Ok(url)
}

/// Azure container names: 3–63 of `a-z 0-9 -`, starting with a letter or digit, no `--`.
fn container_name(raw: &str) -> Result<String, SettingsError> {
    let ok = (3..=63).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !raw.starts_with('-')
        && !raw.ends_with('-')
        && !raw.contains("--");
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(SettingsError::new(
            CONTAINER_KEY,
            format!("{raw:?} is not a container name (3-63 of a-z, 0-9 and single hyphens)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_settings_a_local_run_uses_the_default_folder() {
        let settings = LedgerSettings::from_env(&Env::default()).unwrap();
        assert_eq!(
            settings.backend,
            LedgerBackend::Local {
                dir: PathBuf::from(DEFAULT_LEDGER_DIR)
            }
        );
    }

    #[test]
    fn in_azure_the_backend_must_be_chosen() {
        let env = Env::from_pairs([("WEBSITE_SITE_NAME", "uc-access-prod")]);
        let err = LedgerSettings::from_env(&env).unwrap_err();
        assert_eq!(err.key, BACKEND_KEY);
    }

    #[test]
    fn the_blob_backend_takes_the_account_url_container_and_identity() {
        let env = Env::from_pairs([
            (
                "LEDGER_BLOB_ACCOUNT_URL",
                "https://acct.blob.core.windows.net/",
            ),
            ("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111"),
        ]);
        let LedgerBackend::Blob(blob) = LedgerSettings::from_env(&env).unwrap().backend else {
            panic!("expected the blob backend");
        };
        assert_eq!(
            blob.account_url.as_str(),
            "https://acct.blob.core.windows.net/"
        );
        assert_eq!(blob.container, DEFAULT_CONTAINER);
        assert_eq!(
            blob.managed_identity_client_id.as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
    }

    #[test]
    fn bad_blob_settings_name_their_key() {
        let blob = |pairs: &[(&str, &str)]| {
            LedgerSettings::from_env(&Env::from_pairs(pairs.iter().copied())).unwrap_err()
        };
        assert_eq!(blob(&[("LEDGER_BACKEND", "blob")]).key, ACCOUNT_URL_KEY);
        assert_eq!(
            blob(&[(
                "LEDGER_BLOB_ACCOUNT_URL",
                "http://acct.blob.core.windows.net"
            )])
            .key,
            ACCOUNT_URL_KEY
        );
        assert_eq!(
            blob(&[
                (
                    "LEDGER_BLOB_ACCOUNT_URL",
                    "https://acct.blob.core.windows.net"
                ),
                ("LEDGER_CONTAINER", "Grants_2025")
            ])
            .key,
            CONTAINER_KEY
        );
        assert_eq!(blob(&[("LEDGER_BACKEND", "table")]).key, BACKEND_KEY);
    }
}
