//! The governed catalogs: where uc-access is expected to grant, so where its own principal needs
//! `MANAGE` (or ownership). The doctor checks each one.
//!
//! - `UC_ACCESS_GOVERNED_CATALOGS`: catalog names separated by `,` or `;`; `workspace:catalog` names a
//!   catalog in a workspace other than the default (workspace names as in `UC_ACCESS_WORKSPACES`).
//! - Unset: the catalogs the policy's allow patterns name literally (`sales`, `sales.*`, `hr.people.*`
//!   name `sales` and `hr`; `*` or `fin_*` name none), in the default workspace.

use super::{Env, SettingsError};
use crate::domain::{Name, Workspaces};
use crate::policy::Policy;

pub const GOVERNED_CATALOGS: &str = "UC_ACCESS_GOVERNED_CATALOGS";

/// One catalog uc-access governs, and the workspace (by configured name; `None`: the default) whose
/// metastore holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GovernedCatalog {
    pub workspace: Option<String>,
    pub catalog: Name,
}

/// Where the list came from, so the doctor can say why it checks what it checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GovernedSource {
    /// `UC_ACCESS_GOVERNED_CATALOGS`.
    Setting,
    /// The literal catalog names of the policy's allow patterns.
    PolicyAllowPatterns,
    /// Neither gave a name.
    #[default]
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GovernedCatalogs {
    pub catalogs: Vec<GovernedCatalog>,
    pub source: GovernedSource,
}

/// Glob metacharacters: a pattern part holding one names no single catalog.
const GLOB: &[char] = &['*', '?', '[', ']', '{', '}', '!', '\\'];

impl GovernedCatalogs {
    pub fn from_env(
        env: &Env,
        policy: &Policy,
        workspaces: &Workspaces,
    ) -> Result<Self, SettingsError> {
        let Some(raw) = env.get(GOVERNED_CATALOGS) else {
            return Ok(Self::from_policy(policy));
        };
        let mut catalogs = Vec::new();
        for item in raw
            .split([',', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (workspace, name) = match item.split_once(':') {
                Some((w, c)) => (Some(w.trim()), c.trim()),
                None => (None, item),
            };
            if let Some(w) = workspace
                && workspaces.by_name(Some(w)).is_err()
            {
                return Err(SettingsError::new(
                    GOVERNED_CATALOGS,
                    format!(
                        "{item:?} names workspace {w:?}, which UC_ACCESS_WORKSPACES does not define"
                    ),
                ));
            }
            let catalog = Name::parse(name).map_err(|e| {
                SettingsError::new(GOVERNED_CATALOGS, format!("{item:?}: the catalog name {e}"))
            })?;
            catalogs.push(GovernedCatalog {
                workspace: workspace.map(str::to_owned),
                catalog,
            });
        }
        catalogs.sort();
        catalogs.dedup();
        Ok(Self {
            catalogs,
            source: GovernedSource::Setting,
        })
    }

    /// The catalogs the policy's allow patterns name literally.
    pub fn from_policy(policy: &Policy) -> Self {
        let mut catalogs: Vec<GovernedCatalog> = policy
            .allow()
            .iter()
            .filter_map(|p| p.as_str().split('.').next())
            .filter(|first| !first.contains(GLOB))
            .filter_map(|first| Name::parse(first).ok())
            .map(|catalog| GovernedCatalog {
                workspace: None,
                catalog,
            })
            .collect();
        catalogs.sort();
        catalogs.dedup();
        let source = if catalogs.is_empty() {
            GovernedSource::Unknown
        } else {
            GovernedSource::PolicyAllowPatterns
        };
        Self { catalogs, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(g: &GovernedCatalogs) -> Vec<String> {
        g.catalogs
            .iter()
            .map(|c| match &c.workspace {
                Some(w) => format!("{w}:{}", c.catalog),
                None => c.catalog.to_string(),
            })
            .collect()
    }

    fn workspaces() -> Workspaces {
        super::super::workspaces_from_env(&Env::from_pairs([
            ("DATABRICKS_HOST", "https://adb-1.1.azuredatabricks.net"),
            (
                super::super::WORKSPACES,
                "finance=https://adb-2.2.azuredatabricks.net",
            ),
        ]))
        .unwrap()
    }

    #[test]
    fn the_setting_lists_catalogs_in_the_default_or_a_named_workspace() {
        let env = Env::from_pairs([(GOVERNED_CATALOGS, "sales; hr, finance:ledger,sales")]);
        let g = GovernedCatalogs::from_env(&env, &Policy::default(), &workspaces()).unwrap();
        assert_eq!(g.source, GovernedSource::Setting);
        assert_eq!(names(&g), vec!["hr", "sales", "finance:ledger"]);
    }

    #[test]
    fn an_unknown_workspace_or_a_bad_name_is_refused_naming_the_setting() {
        for raw in ["nowhere:sales", "sa les", "a.b"] {
            let env = Env::from_pairs([(GOVERNED_CATALOGS, raw)]);
            let err =
                GovernedCatalogs::from_env(&env, &Policy::default(), &workspaces()).unwrap_err();
            assert_eq!(err.key, GOVERNED_CATALOGS, "{raw}");
        }
    }

    #[test]
    fn without_the_setting_and_without_allow_patterns_no_catalog_is_known() {
        let g =
            GovernedCatalogs::from_env(&Env::default(), &Policy::default(), &workspaces()).unwrap();
        assert_eq!(g.source, GovernedSource::Unknown);
        assert!(g.catalogs.is_empty());
    }

    #[test]
    fn without_the_setting_the_literal_catalogs_of_the_allow_patterns_are_governed() {
        let policy = Policy::from_toml(
            "[names]\nallow = [\"sales\", \"hr.people.*\", \"fin_*\", \"*.public\", \"sales.raw\"]\n",
        )
        .unwrap();
        let g = GovernedCatalogs::from_env(&Env::default(), &policy, &workspaces()).unwrap();
        assert_eq!(g.source, GovernedSource::PolicyAllowPatterns);
        assert_eq!(names(&g), vec!["hr", "sales"]);
    }
}
