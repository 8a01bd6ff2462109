//! Unity Catalog privileges: a closed set, spelled as the API spells them, each valid only on some
//! securable types (privilege model 1.0: `USE_CATALOG` / `USE_SCHEMA`, inheritance from catalog and schema).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::securable::SecurableType;

macro_rules! privileges {
    ($($variant:ident => $api:literal),+ $(,)?) => {
        /// A Unity Catalog privilege. Parsing accepts any case and spaces for underscores, as the API does.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Privilege { $($variant),+ }

        impl Privilege {
            pub const ALL: &'static [Privilege] = &[$(Privilege::$variant),+];

            /// The name as the permissions API answers it (`USE_CATALOG`).
            pub fn as_str(self) -> &'static str {
                match self { $(Privilege::$variant => $api),+ }
            }
        }
    };
}

privileges! {
    AllPrivileges => "ALL_PRIVILEGES",
    ApplyTag => "APPLY_TAG",
    Browse => "BROWSE",
    CreateFunction => "CREATE_FUNCTION",
    CreateMaterializedView => "CREATE_MATERIALIZED_VIEW",
    CreateModel => "CREATE_MODEL",
    CreateSchema => "CREATE_SCHEMA",
    CreateTable => "CREATE_TABLE",
    CreateVolume => "CREATE_VOLUME",
    Execute => "EXECUTE",
    ExternalUseSchema => "EXTERNAL_USE_SCHEMA",
    Manage => "MANAGE",
    Modify => "MODIFY",
    ReadVolume => "READ_VOLUME",
    Refresh => "REFRESH",
    Select => "SELECT",
    UseCatalog => "USE_CATALOG",
    UseSchema => "USE_SCHEMA",
    WriteVolume => "WRITE_VOLUME",
}

/// Why a privilege name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivilegeError {
    #[error("{0:?} is not a Unity Catalog privilege")]
    Unknown(String),
    #[error("{privilege} cannot be granted on a {securable_type}")]
    NotValidOn {
        privilege: Privilege,
        securable_type: SecurableType,
    },
}

impl Privilege {
    /// Parses `SELECT`, `select`, `use catalog`, `USE_CATALOG` alike.
    pub fn parse(raw: &str) -> Result<Self, PrivilegeError> {
        let normalized: String = raw
            .trim()
            .chars()
            .map(|c| {
                if c == ' ' {
                    '_'
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == normalized)
            .ok_or_else(|| PrivilegeError::Unknown(raw.to_owned()))
    }

    /// Whether Unity Catalog accepts this privilege on a securable of this type.
    pub fn valid_on(self, securable_type: SecurableType) -> bool {
        use Privilege::*;
        match securable_type {
            SecurableType::Catalog => true,
            SecurableType::Schema => !matches!(self, Browse | CreateSchema | UseCatalog),
            SecurableType::Table => matches!(
                self,
                AllPrivileges | ApplyTag | Manage | Modify | Refresh | Select
            ),
        }
    }

    /// Parses and checks the privilege against the securable type it will be granted on.
    pub fn parse_for(raw: &str, securable_type: SecurableType) -> Result<Self, PrivilegeError> {
        let privilege = Self::parse(raw)?;
        if privilege.valid_on(securable_type) {
            Ok(privilege)
        } else {
            Err(PrivilegeError::NotValidOn {
                privilege,
                securable_type,
            })
        }
    }

    /// The privilege a principal needs on a parent to reach anything inside it.
    pub fn usage_for(parent: SecurableType) -> Option<Privilege> {
        match parent {
            SecurableType::Catalog => Some(Privilege::UseCatalog),
            SecurableType::Schema => Some(Privilege::UseSchema),
            SecurableType::Table => None,
        }
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Privilege {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Privilege {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Privilege::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A set of privileges, ordered so that plans and answers are deterministic.
pub type PrivilegeSet = BTreeSet<Privilege>;

/// What a `table` securable really is: Unity Catalog grants views, materialized views and streaming
/// tables through the same `table` securable, with fewer privileges (`table_type` of the Tables API:
/// `MANAGED`, `EXTERNAL`, their shallow clones, `FOREIGN`, `VIEW`, `MATERIALIZED_VIEW`, `METRIC_VIEW`,
/// `STREAMING_TABLE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableKind {
    /// A table holding data: managed, external, or a shallow clone of either.
    Table,
    View,
    MaterializedView,
    MetricView,
    StreamingTable,
    /// Any other type (`FOREIGN`, or one added after this release): Unity Catalog decides.
    Other(String),
}

impl TableKind {
    /// Reads the Tables API's `table_type`.
    pub fn from_table_type(raw: &str) -> Self {
        match raw.trim().to_ascii_uppercase().as_str() {
            "MANAGED" | "EXTERNAL" | "MANAGED_SHALLOW_CLONE" | "EXTERNAL_SHALLOW_CLONE" => {
                Self::Table
            }
            "VIEW" => Self::View,
            "MATERIALIZED_VIEW" => Self::MaterializedView,
            "METRIC_VIEW" => Self::MetricView,
            "STREAMING_TABLE" => Self::StreamingTable,
            _ => Self::Other(raw.trim().to_owned()),
        }
    }

    /// How a message names it: "a view", "a materialized view".
    pub fn with_article(&self) -> String {
        match self {
            Self::Table => "a table".to_owned(),
            Self::View => "a view".to_owned(),
            Self::MaterializedView => "a materialized view".to_owned(),
            Self::MetricView => "a metric view".to_owned(),
            Self::StreamingTable => "a streaming table".to_owned(),
            Self::Other(t) => format!("a table of type {t}"),
        }
    }
}

impl Privilege {
    /// Whether the privilege can be granted on a `table` securable of this kind (Unity Catalog's
    /// *privileges reference*): `MODIFY` writes data, so views of every kind refuse it; `REFRESH` re-runs a
    /// pipeline, so only materialized views and streaming tables take it. Kinds this release does not know
    /// are left to Unity Catalog, whose refusal is reported the same way.
    pub fn applies_to(self, kind: &TableKind) -> bool {
        match (self, kind) {
            (_, TableKind::Other(_)) => true,
            (
                Privilege::Modify,
                TableKind::View | TableKind::MaterializedView | TableKind::MetricView,
            ) => false,
            (Privilege::Refresh, TableKind::Table | TableKind::View | TableKind::MetricView) => {
                false
            }
            _ => true,
        }
    }

    /// The privileges that only some kinds of table take; a request holding none needs no look at the
    /// table's type.
    pub fn depends_on_table_kind(self) -> bool {
        matches!(self, Privilege::Modify | Privilege::Refresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_parse_in_any_case_and_with_spaces() {
        assert_eq!(Privilege::parse("select"), Ok(Privilege::Select));
        assert_eq!(Privilege::parse(" use catalog "), Ok(Privilege::UseCatalog));
        assert_eq!(
            Privilege::parse("ALL_PRIVILEGES"),
            Ok(Privilege::AllPrivileges)
        );
        assert_eq!(
            Privilege::parse("USAGE"),
            Err(PrivilegeError::Unknown("USAGE".into()))
        );
        assert!(Privilege::parse("SELECT;DROP").is_err());
    }

    #[test]
    fn every_privilege_round_trips_through_its_api_name() {
        for p in Privilege::ALL {
            assert_eq!(Privilege::parse(p.as_str()), Ok(*p));
        }
    }

    #[test]
    fn table_privileges_are_a_small_closed_set() {
        let on_table: Vec<_> = Privilege::ALL
            .iter()
            .filter(|p| p.valid_on(SecurableType::Table))
            .map(|p| p.as_str())
            .collect();
        assert_eq!(
            on_table,
            [
                "ALL_PRIVILEGES",
                "APPLY_TAG",
                "MANAGE",
                "MODIFY",
                "REFRESH",
                "SELECT"
            ]
        );
        assert_eq!(
            Privilege::parse_for("USE_SCHEMA", SecurableType::Table),
            Err(PrivilegeError::NotValidOn {
                privilege: Privilege::UseSchema,
                securable_type: SecurableType::Table
            })
        );
    }

    #[test]
    fn views_refuse_modify_and_only_pipelines_take_refresh() {
        use TableKind::*;
        let kinds = [
            Table,
            View,
            MaterializedView,
            MetricView,
            StreamingTable,
            Other("FOREIGN".into()),
        ];
        let takes = |p: Privilege| -> Vec<bool> { kinds.iter().map(|k| p.applies_to(k)).collect() };
        assert_eq!(
            takes(Privilege::Modify),
            [true, false, false, false, true, true]
        );
        assert_eq!(
            takes(Privilege::Refresh),
            [false, false, true, false, true, true]
        );
        for p in [
            Privilege::Select,
            Privilege::AllPrivileges,
            Privilege::Manage,
            Privilege::ApplyTag,
        ] {
            assert!(kinds.iter().all(|k| p.applies_to(k)), "{p}");
        }
        assert!(Privilege::Modify.depends_on_table_kind());
        assert!(!Privilege::Select.depends_on_table_kind());
    }

    #[test]
    fn table_types_are_read_as_the_tables_api_spells_them() {
        assert_eq!(TableKind::from_table_type("MANAGED"), TableKind::Table);
        assert_eq!(
            TableKind::from_table_type("EXTERNAL_SHALLOW_CLONE"),
            TableKind::Table
        );
        assert_eq!(TableKind::from_table_type("view"), TableKind::View);
        assert_eq!(
            TableKind::from_table_type("MATERIALIZED_VIEW"),
            TableKind::MaterializedView
        );
        assert_eq!(
            TableKind::from_table_type("FOREIGN"),
            TableKind::Other("FOREIGN".into())
        );
        assert_eq!(TableKind::View.with_article(), "a view");
    }

    #[test]
    fn use_catalog_is_only_valid_on_catalogs() {
        assert!(Privilege::UseCatalog.valid_on(SecurableType::Catalog));
        assert!(!Privilege::UseCatalog.valid_on(SecurableType::Schema));
        assert!(Privilege::UseSchema.valid_on(SecurableType::Catalog));
        assert!(Privilege::UseSchema.valid_on(SecurableType::Schema));
    }

    #[test]
    fn parents_need_their_usage_privilege() {
        assert_eq!(
            Privilege::usage_for(SecurableType::Catalog),
            Some(Privilege::UseCatalog)
        );
        assert_eq!(
            Privilege::usage_for(SecurableType::Schema),
            Some(Privilege::UseSchema)
        );
        assert_eq!(Privilege::usage_for(SecurableType::Table), None);
    }
}
