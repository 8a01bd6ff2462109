//! Unity Catalog object names: one identifier (`Name`) and the dotted path of a securable (`FullName`).

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// Longest identifier Unity Catalog accepts.
pub const MAX_NAME_LEN: usize = 255;

/// Why a name was refused; the message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error(
        "contains {0:?}; names may hold only ASCII letters, digits, '_' and '-' (Unity Catalog forbids '.', spaces, '/' and control characters, and uc-access refuses quotes, backticks, '%' and non-ASCII look-alikes)"
    )]
    InvalidCharacter(char),
}

/// One Unity Catalog identifier (a catalog, schema or table name), stored lower case as Unity Catalog does.
///
/// Unity Catalog itself forbids `.`, spaces, `/` and control characters. uc-access is stricter on
/// purpose: a name that reaches a grant must be plain ASCII letters, digits, `_` or `-`, so that
/// quoting tricks (backticks, quotes), percent-encoding games and Unicode look-alikes of a real name
/// are refused at the edge instead of being granted on an object that only looks right.
///
/// Shared, not copied, when cloned: plans and revoke sweeps clone securables by the thousand.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

impl Name {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if raw.chars().count() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(NameError::InvalidCharacter(bad));
        }
        Ok(Self(raw.to_ascii_lowercase().into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({})", self.0)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Name::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stored_lower_case() {
        assert_eq!(Name::parse("Sales_EU-2").unwrap().as_str(), "sales_eu-2");
    }

    #[test]
    fn names_with_separators_quotes_or_control_characters_are_refused() {
        for (raw, bad) in [
            ("a.b", '.'),
            ("a b", ' '),
            ("a/b", '/'),
            ("a`b", '`'),
            ("a\"b", '"'),
            ("a'b", '\''),
            ("a%2eb", '%'),
            ("a\nb", '\n'),
            ("..", '.'),
        ] {
            assert_eq!(
                Name::parse(raw),
                Err(NameError::InvalidCharacter(bad)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn unicode_look_alikes_are_refused() {
        // Cyrillic 'а' (U+0430) looks like Latin 'a'.
        assert_eq!(
            Name::parse("s\u{0430}les"),
            Err(NameError::InvalidCharacter('\u{0430}'))
        );
    }

    #[test]
    fn empty_and_overlong_names_are_refused() {
        assert_eq!(Name::parse(""), Err(NameError::Empty));
        assert_eq!(Name::parse(&"a".repeat(256)), Err(NameError::TooLong));
        assert!(Name::parse(&"a".repeat(255)).is_ok());
    }
}
