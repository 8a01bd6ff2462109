//! The workspace map from settings.
//!
//! - `DATABRICKS_HOST`: the default workspace, named `default`.
//! - `UC_ACCESS_WORKSPACES`: more workspaces by name, `name=https://adb-….azuredatabricks.net`, separated by
//!   `;` or `,`.
//! - `UC_ACCESS_WORKSPACE_AUTHORITIES`: which workspace a Purview qualified name's authority means,
//!   `authority=name` (the authority is probably the metastore id; this is unverified, so it is
//!   configuration). A workspace's own host name always counts as an authority for it.
//! - `UC_ACCESS_DEFAULT_WORKSPACE`: the workspace for authorities not in the map. With one workspace
//!   configured it is that one; with several, unmapped authorities are refused unless this is set.

use url::Url;

use super::{Env, SettingsError};
use crate::databricks::parse_host;
use crate::domain::{WorkspaceRef, Workspaces};

pub const WORKSPACES: &str = "UC_ACCESS_WORKSPACES";
pub const AUTHORITIES: &str = "UC_ACCESS_WORKSPACE_AUTHORITIES";
pub const DEFAULT_WORKSPACE: &str = "UC_ACCESS_DEFAULT_WORKSPACE";

fn pairs<'a>(env: &'a Env, key: &str) -> Result<Vec<(&'a str, &'a str)>, SettingsError> {
    env.get(key)
        .map(|raw| {
            raw.split([';', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|item| {
                    item.split_once('=')
                        .map(|(k, v)| (k.trim(), v.trim()))
                        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                        .ok_or_else(|| {
                            SettingsError::new(key, format!("{item:?} is not name=value"))
                        })
                })
                .collect()
        })
        .unwrap_or_else(|| Ok(Vec::new()))
}

pub fn workspaces_from_env(env: &Env) -> Result<Workspaces, SettingsError> {
    let mut named: Vec<WorkspaceRef> = Vec::new();
    if let Some(raw) = env.get("DATABRICKS_HOST") {
        named.push(WorkspaceRef {
            name: "default".into(),
            host: parse_host("DATABRICKS_HOST", raw)?,
        });
    }
    for (name, host) in pairs(env, WORKSPACES)? {
        if named.iter().any(|w| w.name.eq_ignore_ascii_case(name)) {
            return Err(SettingsError::new(
                WORKSPACES,
                format!("workspace {name:?} is named twice"),
            ));
        }
        named.push(WorkspaceRef {
            name: name.to_owned(),
            host: parse_host(WORKSPACES, host)?,
        });
    }
    let default = match env.get(DEFAULT_WORKSPACE) {
        Some(name) => Some(
            named
                .iter()
                .find(|w| w.name.eq_ignore_ascii_case(name))
                .cloned()
                .ok_or_else(|| {
                    SettingsError::new(DEFAULT_WORKSPACE, format!("no workspace is named {name:?}"))
                })?,
        ),
        None => named.first().cloned(),
    };
    let fallback = named.len() <= 1 || env.get(DEFAULT_WORKSPACE).is_some();
    let mut map = Workspaces::new(default).with_fallback(fallback);
    for w in &named {
        if let Some(host) = w.host.host_str() {
            map = map.with(host, w.clone());
        }
    }
    for (authority, name) in pairs(env, AUTHORITIES)? {
        let w = named
            .iter()
            .find(|w| w.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                SettingsError::new(AUTHORITIES, format!("no workspace is named {name:?}"))
            })?;
        map = map.with(authority, w.clone());
    }
    Ok(map)
}

/// The host of a workspace URL without a trailing slash, as the ledger stores it.
pub fn host_string(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_several_workspaces_an_unmapped_authority_is_refused_unless_a_default_is_chosen() {
        let pairs = [
            ("DATABRICKS_HOST", "https://adb-1.1.azuredatabricks.net"),
            (WORKSPACES, "finance=https://adb-2.2.azuredatabricks.net"),
        ];
        let map = workspaces_from_env(&Env::from_pairs(pairs)).unwrap();
        assert!(map.for_authority("unmapped-metastore").is_err());
        let env = Env::from_pairs(pairs).with(DEFAULT_WORKSPACE, "default");
        assert_eq!(
            workspaces_from_env(&env)
                .unwrap()
                .for_authority("unmapped")
                .unwrap()
                .name,
            "default"
        );
        let single = Env::from_pairs([("DATABRICKS_HOST", "https://adb-1.1.azuredatabricks.net")]);
        assert_eq!(
            workspaces_from_env(&single)
                .unwrap()
                .for_authority("any")
                .unwrap()
                .name,
            "default"
        );
    }

    #[test]
    fn the_default_workspace_and_named_ones_are_mapped_by_authority() {
        let env = Env::from_pairs([
            (DEFAULT_WORKSPACE, "default"),
            ("DATABRICKS_HOST", "https://adb-1.1.azuredatabricks.net"),
            (WORKSPACES, "finance=https://adb-2.2.azuredatabricks.net"),
            (AUTHORITIES, "0b7e4d2a-6c1f-4e83-9a5d-2f8c7b1e6d40=finance"),
        ]);
        let map = workspaces_from_env(&env).unwrap();
        assert_eq!(
            map.for_authority("0B7E4D2A-6C1F-4E83-9A5D-2F8C7B1E6D40")
                .unwrap()
                .name,
            "finance"
        );
        assert_eq!(
            map.for_authority("adb-2.2.azuredatabricks.net")
                .unwrap()
                .name,
            "finance"
        );
        assert_eq!(map.for_authority("anything-else").unwrap().name, "default");
        assert_eq!(
            map.by_name(Some("finance")).unwrap().host.as_str(),
            "https://adb-2.2.azuredatabricks.net/"
        );
    }

    #[test]
    fn mistakes_name_the_setting() {
        let bad = |pairs: &[(&str, &str)]| {
            workspaces_from_env(&Env::from_pairs(pairs.iter().copied()))
                .unwrap_err()
                .key
        };
        assert_eq!(bad(&[(WORKSPACES, "finance")]), WORKSPACES);
        assert_eq!(bad(&[(WORKSPACES, "f=http://example.com")]), WORKSPACES);
        assert_eq!(bad(&[(AUTHORITIES, "m=nope")]), AUTHORITIES);
        assert_eq!(bad(&[(DEFAULT_WORKSPACE, "nope")]), DEFAULT_WORKSPACE);
        assert_eq!(bad(&[("DATABRICKS_HOST", "not a url")]), "DATABRICKS_HOST");
    }
}
