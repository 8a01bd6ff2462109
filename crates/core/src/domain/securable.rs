//! Securables uc-access can grant on: a catalog, a schema or a table (views count as tables), and their
//! parents, as Unity Catalog names them in its permissions API.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::name::Name;

/// The kind of a securable, spelled as the permissions API path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurableType {
    Catalog,
    Schema,
    Table,
}

impl SecurableType {
    pub const ALL: [SecurableType; 3] = [Self::Catalog, Self::Schema, Self::Table];

    /// The lower-case segment the permissions API expects (`catalog`, `schema`, `table`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Catalog => "catalog",
            Self::Schema => "schema",
            Self::Table => "table",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(raw.trim()))
    }
}

impl fmt::Display for SecurableType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A catalog, schema or table, identified by its names. Only valid names can be held.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Securable {
    Catalog {
        catalog: Name,
    },
    Schema {
        catalog: Name,
        schema: Name,
    },
    Table {
        catalog: Name,
        schema: Name,
        table: Name,
    },
}

/// Why a dotted full name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FullNameError {
    #[error("must have {expected} dot-separated parts for a {kind}, found {found}")]
    WrongArity {
        kind: SecurableType,
        expected: usize,
        found: usize,
    },
    #[error("part {index} {source}")]
    BadPart {
        index: usize,
        source: super::name::NameError,
    },
}

impl Securable {
    pub fn catalog(catalog: Name) -> Self {
        Self::Catalog { catalog }
    }

    pub fn schema(catalog: Name, schema: Name) -> Self {
        Self::Schema { catalog, schema }
    }

    pub fn table(catalog: Name, schema: Name, table: Name) -> Self {
        Self::Table {
            catalog,
            schema,
            table,
        }
    }

    /// Parses `catalog[.schema[.table]]` as the given type (a plain dotted name, no backticks).
    pub fn parse(kind: SecurableType, full_name: &str) -> Result<Self, FullNameError> {
        let parts: Vec<&str> = full_name.split('.').collect();
        let expected = match kind {
            SecurableType::Catalog => 1,
            SecurableType::Schema => 2,
            SecurableType::Table => 3,
        };
        if parts.len() != expected {
            return Err(FullNameError::WrongArity {
                kind,
                expected,
                found: parts.len(),
            });
        }
        let names = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Name::parse(p).map_err(|source| FullNameError::BadPart {
                    index: i + 1,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut it = names.into_iter();
        let mut next = || it.next().expect("arity checked above");
        Ok(match kind {
            SecurableType::Catalog => Self::catalog(next()),
            SecurableType::Schema => Self::schema(next(), next()),
            SecurableType::Table => Self::table(next(), next(), next()),
        })
    }

    pub fn securable_type(&self) -> SecurableType {
        match self {
            Self::Catalog { .. } => SecurableType::Catalog,
            Self::Schema { .. } => SecurableType::Schema,
            Self::Table { .. } => SecurableType::Table,
        }
    }

    pub fn catalog_name(&self) -> &Name {
        match self {
            Self::Catalog { catalog }
            | Self::Schema { catalog, .. }
            | Self::Table { catalog, .. } => catalog,
        }
    }

    pub fn schema_name(&self) -> Option<&Name> {
        match self {
            Self::Catalog { .. } => None,
            Self::Schema { schema, .. } | Self::Table { schema, .. } => Some(schema),
        }
    }

    /// The dotted name the permissions API takes (before percent-encoding), e.g. `main.sales.orders`.
    pub fn full_name(&self) -> String {
        match self {
            Self::Catalog { catalog } => catalog.to_string(),
            Self::Schema { catalog, schema } => format!("{catalog}.{schema}"),
            Self::Table {
                catalog,
                schema,
                table,
            } => format!("{catalog}.{schema}.{table}"),
        }
    }

    /// The enclosing securables, outermost first: a table's catalog and schema, a schema's catalog.
    pub fn parents(&self) -> Vec<Securable> {
        match self {
            Self::Catalog { .. } => vec![],
            Self::Schema { catalog, .. } => vec![Self::catalog(catalog.clone())],
            Self::Table {
                catalog, schema, ..
            } => vec![
                Self::catalog(catalog.clone()),
                Self::schema(catalog.clone(), schema.clone()),
            ],
        }
    }

    /// This securable and its parents, outermost first.
    pub fn lineage(&self) -> Vec<Securable> {
        let mut all = self.parents();
        all.push(self.clone());
        all
    }

    /// Whether `self` is `other` or encloses it.
    pub fn contains(&self, other: &Securable) -> bool {
        other.lineage().contains(self)
    }
}

impl fmt::Display for Securable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.securable_type(), self.full_name())
    }
}

/// Serialized as `{"type":"table","fullName":"main.sales.orders"}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecurableRepr {
    #[serde(rename = "type")]
    kind: SecurableType,
    full_name: String,
}

impl Serialize for Securable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SecurableRepr {
            kind: self.securable_type(),
            full_name: self.full_name(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Securable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = SecurableRepr::deserialize(d)?;
        Securable::parse(repr.kind, &repr.full_name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Securable {
        Securable::parse(SecurableType::Table, "Main.Sales.Orders").unwrap()
    }

    #[test]
    fn a_table_has_its_catalog_and_schema_as_parents_outermost_first() {
        let parents: Vec<String> = table().parents().iter().map(Securable::full_name).collect();
        assert_eq!(parents, vec!["main", "main.sales"]);
        assert_eq!(table().full_name(), "main.sales.orders");
    }

    #[test]
    fn a_catalog_contains_its_tables_but_not_the_other_way_round() {
        let catalog = Securable::parse(SecurableType::Catalog, "main").unwrap();
        assert!(catalog.contains(&table()));
        assert!(!table().contains(&catalog));
        assert!(table().contains(&table()));
    }

    #[test]
    fn full_names_with_the_wrong_number_of_parts_are_refused() {
        assert_eq!(
            Securable::parse(SecurableType::Table, "main.sales"),
            Err(FullNameError::WrongArity {
                kind: SecurableType::Table,
                expected: 3,
                found: 2
            })
        );
        assert!(matches!(
            Securable::parse(SecurableType::Schema, "main..x"),
            Err(FullNameError::WrongArity { .. })
        ));
        assert!(matches!(
            Securable::parse(SecurableType::Schema, "main.s x"),
            Err(FullNameError::BadPart { index: 2, .. })
        ));
        assert!(matches!(
            Securable::parse(SecurableType::Table, "main.sales.a/b"),
            Err(FullNameError::BadPart { index: 3, .. })
        ));
    }

    #[test]
    fn full_names_hold_any_name_unity_catalog_allows() {
        let t = Securable::parse(SecurableType::Table, "Sales.Intl.Kunden_Ä").unwrap();
        assert_eq!(t.full_name(), "sales.intl.kunden_ä");
        let t = Securable::parse(SecurableType::Table, "s.r.o'neil").unwrap();
        assert_eq!(t.full_name(), "s.r.o'neil");
        assert!(Securable::parse(SecurableType::Schema, "main.s`x").is_ok());
    }

    #[test]
    fn securables_round_trip_through_json() {
        let json = serde_json::to_value(table()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "table", "fullName": "main.sales.orders"})
        );
        let back: Securable = serde_json::from_value(json).unwrap();
        assert_eq!(back, table());
    }
}
