//! Workspaces: where a securable lives. A Purview asset names its metastore or workspace in the qualified
//! name's authority segment; configuration maps authorities to workspace hosts, with a default.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use url::Url;

/// A configured workspace: the name settings and answers use, and its host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct WorkspaceRef {
    pub name: String,
    pub host: Url,
}

impl fmt::Display for WorkspaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.host)
    }
}

/// Why an authority or workspace name matched no workspace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} matches no configured workspace (set UC_ACCESS_WORKSPACES, or DATABRICKS_HOST for a default)"
)]
pub struct UnknownWorkspace(pub String);

/// Authority (lower case) → workspace, and the default for authorities not in the map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workspaces {
    by_authority: BTreeMap<String, WorkspaceRef>,
    default: Option<WorkspaceRef>,
    /// Whether an authority not in the map goes to the default. Off when several workspaces are
    /// configured and none was chosen explicitly: an asset of an unmapped metastore must not be granted
    /// by name in another workspace's metastore.
    fallback: bool,
}

impl Workspaces {
    pub fn new(default: Option<WorkspaceRef>) -> Self {
        Self {
            by_authority: BTreeMap::new(),
            default,
            fallback: true,
        }
    }

    /// Whether unmapped authorities go to the default workspace.
    pub fn with_fallback(mut self, fallback: bool) -> Self {
        self.fallback = fallback;
        self
    }

    pub fn with(mut self, authority: &str, workspace: WorkspaceRef) -> Self {
        self.by_authority
            .insert(authority.to_ascii_lowercase(), workspace);
        self
    }

    /// The workspace for a qualified name's authority (case-insensitive), else the default.
    pub fn for_authority(&self, authority: &str) -> Result<&WorkspaceRef, UnknownWorkspace> {
        self.by_authority
            .get(&authority.to_ascii_lowercase())
            .or(self.default.as_ref().filter(|_| self.fallback))
            .ok_or_else(|| UnknownWorkspace(authority.to_owned()))
    }

    /// A workspace by its configured name; `None` asks for the default.
    pub fn by_name(&self, name: Option<&str>) -> Result<&WorkspaceRef, UnknownWorkspace> {
        match name {
            None => self
                .default
                .as_ref()
                .ok_or_else(|| UnknownWorkspace("(default)".to_owned())),
            Some(name) => self
                .all()
                .find(|w| w.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| UnknownWorkspace(name.to_owned())),
        }
    }

    pub fn default_workspace(&self) -> Option<&WorkspaceRef> {
        self.default.as_ref()
    }

    /// Every configured workspace once (the default first).
    pub fn all(&self) -> impl Iterator<Item = &WorkspaceRef> {
        let mut seen = Vec::new();
        self.default
            .iter()
            .chain(self.by_authority.values())
            .filter(move |w| {
                if seen.contains(&w.host) {
                    false
                } else {
                    seen.push(w.host.clone());
                    true
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(name: &str, host: &str) -> WorkspaceRef {
        WorkspaceRef {
            name: name.into(),
            host: Url::parse(host).unwrap(),
        }
    }

    #[test]
    fn an_authority_in_the_map_wins_over_the_default_in_any_case() {
        let map = Workspaces::new(Some(ws("default", "https://adb-1.1.azuredatabricks.net"))).with(
            "Metastore-A",
            ws("a", "https://adb-2.2.azuredatabricks.net"),
        );
        assert_eq!(map.for_authority("metastore-a").unwrap().name, "a");
        assert_eq!(map.for_authority("other").unwrap().name, "default");
        assert_eq!(map.by_name(Some("A")).unwrap().name, "a");
        assert_eq!(map.all().count(), 2);
    }

    #[test]
    fn without_fallback_an_unmapped_authority_is_an_error_even_with_a_default() {
        let map = Workspaces::new(Some(ws("default", "https://adb-1.1.azuredatabricks.net")))
            .with("a", ws("a", "https://adb-2.2.azuredatabricks.net"))
            .with_fallback(false);
        assert!(map.for_authority("b").is_err());
        assert_eq!(map.for_authority("a").unwrap().name, "a");
    }

    #[test]
    fn without_a_default_an_unknown_authority_is_an_error() {
        let map = Workspaces::new(None).with("a", ws("a", "https://adb-2.2.azuredatabricks.net"));
        assert_eq!(map.for_authority("b"), Err(UnknownWorkspace("b".into())));
        assert!(map.by_name(None).is_err());
    }
}
