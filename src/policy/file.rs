//! The policy file (TOML), named by `UC_ACCESS_POLICY_FILE`. Unknown keys are errors, so a typo can never
//! silently loosen or tighten the policy; every value is checked when the file is loaded.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Patterns, Policy};
use crate::domain::{GrantDuration, Privilege, PrivilegeSet, SecurableType};
use crate::settings::{Env, SettingsError};

pub const POLICY_FILE: &str = "UC_ACCESS_POLICY_FILE";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    default_duration: Option<String>,
    maximum_duration: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    forbidden_principals: Vec<String>,
    allow_groups: Option<bool>,
    allow_requests_for_others: Option<bool>,
    block_self_approval: Option<bool>,
    /// Allowed securable types, each with its privileges.
    types: Option<BTreeMap<String, RawType>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    privileges: Vec<String>,
    default_privileges: Option<Vec<String>>,
}

impl Policy {
    /// The policy file named by `UC_ACCESS_POLICY_FILE`, or the safe defaults when it is not set.
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        match env.get(POLICY_FILE) {
            None => Ok(Self::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    SettingsError::new(POLICY_FILE, format!("cannot read {path}: {e}"))
                })?;
                Self::from_toml(&text)
                    .map_err(|e| SettingsError::new(POLICY_FILE, format!("{path}: {e}")))
            }
        }
    }

    /// Parses and checks a policy document.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| e.to_string())?;
        let defaults = Policy::default();
        let duration = |field: &str, raw: Option<String>, fallback: GrantDuration| {
            raw.map(|r| GrantDuration::parse(&r).map_err(|e| format!("{field} {r:?} {e}")))
                .transpose()
                .map(|d| d.unwrap_or(fallback))
        };
        let default_duration = duration(
            "default_duration",
            raw.default_duration,
            defaults.default_duration,
        )?;
        let maximum_duration = duration(
            "maximum_duration",
            raw.maximum_duration,
            defaults.maximum_duration,
        )?;
        if default_duration > maximum_duration {
            return Err(format!(
                "default_duration {default_duration} is longer than maximum_duration {maximum_duration}"
            ));
        }

        let (securable_types, privileges, default_privileges) = match raw.types {
            None => (
                defaults.securable_types,
                defaults.privileges,
                defaults.default_privileges,
            ),
            Some(types) => {
                let mut kinds = BTreeSet::new();
                let mut allowed = BTreeMap::new();
                let mut default = BTreeMap::new();
                for (name, t) in types {
                    let kind = SecurableType::parse(&name).ok_or_else(|| {
                        format!("types.{name}: not one of catalog, schema, table")
                    })?;
                    let parse = |list: &[String], field: &str| {
                        list.iter()
                            .map(|p| {
                                Privilege::parse_for(p, kind)
                                    .map_err(|e| format!("types.{name}.{field}: {e}"))
                            })
                            .collect::<Result<PrivilegeSet, String>>()
                    };
                    let privileges = parse(&t.privileges, "privileges")?;
                    if privileges.is_empty() {
                        return Err(format!(
                            "types.{name}.privileges: list at least one privilege"
                        ));
                    }
                    let defaults = match &t.default_privileges {
                        Some(list) => parse(list, "default_privileges")?,
                        None if privileges.contains(&Privilege::Select) => {
                            PrivilegeSet::from([Privilege::Select])
                        }
                        None => privileges.clone(),
                    };
                    if !defaults.is_subset(&privileges) {
                        return Err(format!(
                            "types.{name}.default_privileges: must be among types.{name}.privileges"
                        ));
                    }
                    kinds.insert(kind);
                    allowed.insert(kind, privileges);
                    default.insert(kind, defaults);
                }
                if kinds.is_empty() {
                    return Err("types: allow at least one securable type".into());
                }
                (kinds, allowed, default)
            }
        };

        let patterns = |field: &str, list: Vec<String>| {
            Patterns::new(list).map_err(|e| format!("{field}: {e}"))
        };
        Ok(Self {
            securable_types,
            privileges,
            default_privileges,
            allow: patterns("allow", raw.allow)?,
            deny: patterns("deny", raw.deny)?,
            default_duration,
            maximum_duration,
            forbidden_principals: raw.forbidden_principals,
            allow_groups: raw.allow_groups.unwrap_or(defaults.allow_groups),
            allow_requests_for_others: raw
                .allow_requests_for_others
                .unwrap_or(defaults.allow_requests_for_others),
            block_self_approval: raw
                .block_self_approval
                .unwrap_or(defaults.block_self_approval),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_safe_default() {
        let p = Policy::from_toml("").unwrap();
        assert_eq!(p.securable_types, BTreeSet::from([SecurableType::Table]));
        assert_eq!(
            p.privileges_for(SecurableType::Table),
            PrivilegeSet::from([Privilege::Select])
        );
        assert_eq!(p.default_duration.to_string(), "P30D");
        assert_eq!(p.maximum_duration.to_string(), "P90D");
        assert!(p.block_self_approval);
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_line() {
        let err = Policy::from_toml("default_duration = \"P7D\"\nmaximum_durration = \"P9D\"\n")
            .unwrap_err();
        assert!(err.contains("maximum_durration"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err =
            Policy::from_toml("[types.table]\nprivileges = [\"SELECT\"]\ndefault = [\"SELECT\"]\n")
                .unwrap_err();
        assert!(err.contains("default"), "{err}");
    }

    #[test]
    fn values_are_checked_at_load() {
        for (doc, needle) in [
            (
                "default_duration = \"P100D\"",
                "longer than maximum_duration",
            ),
            ("maximum_duration = \"P1M\"", "maximum_duration"),
            (
                "[types.table]\nprivileges = [\"USE_SCHEMA\"]",
                "types.table.privileges",
            ),
            (
                "[types.volume]\nprivileges = [\"READ_VOLUME\"]",
                "types.volume",
            ),
            ("[types.table]\nprivileges = []", "at least one"),
            (
                "[types.table]\nprivileges = [\"SELECT\"]\ndefault_privileges = [\"MODIFY\"]",
                "must be among",
            ),
            ("deny = [\"[\"]", "deny"),
        ] {
            let err = Policy::from_toml(doc).unwrap_err();
            assert!(err.contains(needle), "{doc}: {err}");
        }
    }

    #[test]
    fn the_example_policy_in_the_repository_loads() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policy.example.toml"))
                .unwrap();
        let p = Policy::from_toml(&text).unwrap();
        assert!(p.securable_types.contains(&SecurableType::Schema));
        assert!(!p.deny.is_empty());
    }

    #[test]
    fn a_missing_file_names_the_setting() {
        let env = Env::from_pairs([(POLICY_FILE, "/nonexistent/policy.toml")]);
        assert_eq!(Policy::from_env(&env).unwrap_err().key, POLICY_FILE);
        assert!(Policy::from_env(&Env::default()).is_ok());
    }
}
