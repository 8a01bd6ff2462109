//! The stand-in's own table of Unity Catalog privileges valid per securable kind (privilege model 1.0).
//!
//! Deliberately independent of the product's domain types, so that a mistake there cannot be mirrored here.

/// What kind of object a securable is; tables and views share the `table` path segment but not privileges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurableKind {
    Catalog,
    Schema,
    Table,
    View,
    MaterializedView,
}

impl SecurableKind {
    /// The lower-case securable type used in permission paths (`table` for views too).
    pub fn path_type(self) -> &'static str {
        match self {
            Self::Catalog => "catalog",
            Self::Schema => "schema",
            Self::Table | Self::View | Self::MaterializedView => "table",
        }
    }

    /// The upper-case type used in `inherited_from_type` and messages.
    pub fn upper(self) -> &'static str {
        match self {
            Self::Catalog => "CATALOG",
            Self::Schema => "SCHEMA",
            Self::Table | Self::View | Self::MaterializedView => "TABLE",
        }
    }

    /// The capitalised word the server uses in sentences: "Table 'main.a.b' does not exist."
    pub fn word(self) -> &'static str {
        match self {
            Self::Catalog => "Catalog",
            Self::Schema => "Schema",
            Self::Table | Self::View | Self::MaterializedView => "Table",
        }
    }

    /// The entity descriptor in "not applicable" messages, e.g. `TABLE/TABLE_VIEW`.
    pub fn entity_kind(self) -> &'static str {
        match self {
            Self::Catalog => "CATALOG/CATALOG_STANDARD",
            Self::Schema => "SCHEMA/SCHEMA_STANDARD",
            Self::Table => "TABLE/TABLE_DELTA",
            Self::View => "TABLE/TABLE_VIEW",
            Self::MaterializedView => "TABLE/TABLE_MATERIALIZED_VIEW",
        }
    }

    /// The Tables API's `table_type` (`None` above the table level).
    pub fn table_type(self) -> Option<&'static str> {
        match self {
            Self::Catalog | Self::Schema => None,
            Self::Table => Some("MANAGED"),
            Self::View => Some("VIEW"),
            Self::MaterializedView => Some("MATERIALIZED_VIEW"),
        }
    }
}

const CATALOG: &[&str] = &[
    "ALL_PRIVILEGES",
    "APPLY_TAG",
    "BROWSE",
    "CREATE_FUNCTION",
    "CREATE_MATERIALIZED_VIEW",
    "CREATE_MODEL",
    "CREATE_SCHEMA",
    "CREATE_TABLE",
    "CREATE_VOLUME",
    "EXECUTE",
    "EXTERNAL_USE_SCHEMA",
    "MANAGE",
    "MODIFY",
    "READ_VOLUME",
    "REFRESH",
    "SELECT",
    "USE_CATALOG",
    "USE_SCHEMA",
    "WRITE_VOLUME",
];

const SCHEMA: &[&str] = &[
    "ALL_PRIVILEGES",
    "APPLY_TAG",
    "CREATE_FUNCTION",
    "CREATE_MATERIALIZED_VIEW",
    "CREATE_MODEL",
    "CREATE_TABLE",
    "CREATE_VOLUME",
    "EXECUTE",
    "EXTERNAL_USE_SCHEMA",
    "MANAGE",
    "MODIFY",
    "READ_VOLUME",
    "REFRESH",
    "SELECT",
    "USE_SCHEMA",
    "WRITE_VOLUME",
];

const TABLE: &[&str] = &["ALL_PRIVILEGES", "APPLY_TAG", "MANAGE", "MODIFY", "SELECT"];

const VIEW: &[&str] = &["ALL_PRIVILEGES", "APPLY_TAG", "MANAGE", "SELECT"];

/// A materialized view is read and refreshed, never written.
const MATERIALIZED_VIEW: &[&str] = &["ALL_PRIVILEGES", "APPLY_TAG", "MANAGE", "REFRESH", "SELECT"];

/// Privileges that exist on other securable types (volumes, locations, connections, shares, the metastore):
/// known names, never applicable to the kinds this stand-in holds.
const OTHER_KNOWN: &[&str] = &[
    "ACCESS",
    "CREATE_CATALOG",
    "CREATE_CONNECTION",
    "CREATE_EXTERNAL_LOCATION",
    "CREATE_EXTERNAL_TABLE",
    "CREATE_EXTERNAL_VOLUME",
    "CREATE_FOREIGN_CATALOG",
    "CREATE_FOREIGN_SECURABLE",
    "CREATE_MANAGED_STORAGE",
    "CREATE_PROVIDER",
    "CREATE_RECIPIENT",
    "CREATE_SHARE",
    "CREATE_STORAGE_CREDENTIAL",
    "CREATE_SERVICE_CREDENTIAL",
    "CREATE_CLEAN_ROOM",
    "EXTERNAL_USE_LOCATION",
    "MANAGE_ALLOWLIST",
    "READ_FILES",
    "READ_METADATA",
    "SET_SHARE_PERMISSION",
    "USE_CONNECTION",
    "USE_MARKETPLACE_ASSETS",
    "USE_PROVIDER",
    "USE_RECIPIENT",
    "USE_SHARE",
    "WRITE_FILES",
];

/// Privileges that `ALL_PRIVILEGES` does not include, so removing `ALL_PRIVILEGES` leaves them in place.
pub const NOT_IN_ALL_PRIVILEGES: &[&str] = &[
    "MANAGE",
    "READ_METADATA",
    "EXTERNAL_USE_SCHEMA",
    "EXTERNAL_USE_LOCATION",
];

/// The privileges valid on one kind of securable.
pub fn valid_for(kind: SecurableKind) -> &'static [&'static str] {
    match kind {
        SecurableKind::Catalog => CATALOG,
        SecurableKind::Schema => SCHEMA,
        SecurableKind::Table => TABLE,
        SecurableKind::View => VIEW,
        SecurableKind::MaterializedView => MATERIALIZED_VIEW,
    }
}

/// Whether a name is a Unity Catalog privilege at all (on any securable type).
pub fn is_known(name: &str) -> bool {
    [CATALOG, SCHEMA, TABLE, VIEW, MATERIALIZED_VIEW, OTHER_KNOWN]
        .iter()
        .any(|list| list.contains(&name))
}

/// The server accepts `USE CATALOG` and answers `USE_CATALOG`.
pub fn normalize(name: &str) -> String {
    name.trim().replace(' ', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_schema_is_valid_on_a_catalog_but_use_catalog_is_not_valid_on_a_schema() {
        assert!(valid_for(SecurableKind::Catalog).contains(&"USE_SCHEMA"));
        assert!(!valid_for(SecurableKind::Schema).contains(&"USE_CATALOG"));
    }

    #[test]
    fn modify_is_valid_on_a_table_but_not_on_a_view() {
        assert!(valid_for(SecurableKind::Table).contains(&"MODIFY"));
        assert!(!valid_for(SecurableKind::View).contains(&"MODIFY"));
    }

    #[test]
    fn spaces_become_underscores_and_unknown_names_stay_unknown() {
        assert_eq!(normalize("USE CATALOG"), "USE_CATALOG");
        assert!(is_known("READ_FILES"));
        assert!(!is_known("USAGE"));
        assert!(!is_known("select"));
    }
}
