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
        "contains {}; Unity Catalog names may not hold '.', spaces, '/' or control characters",
        describe(*.0)
    )]
    InvalidCharacter(char),
}

/// A refused character as a person can read it in a message: quoted when printable, by code point when not.
fn describe(c: char) -> String {
    if c.is_control() {
        format!("the control character U+{:04X}", u32::from(c))
    } else if c == ' ' {
        "a space".to_owned()
    } else {
        format!("{c:?}")
    }
}

/// Whether Unity Catalog refuses `c` in a catalog, schema or table name: the period, the space, the
/// forward slash, the ASCII control characters and DELETE (SQL reference, *Names*). Everything else is
/// a valid character of a (backtick-quoted) name, non-ASCII letters included.
pub fn is_refused_in_names(c: char) -> bool {
    matches!(c, '.' | ' ' | '/') || c.is_ascii_control()
}

/// One Unity Catalog identifier (a catalog, schema or table name), stored lower case as Unity Catalog does.
///
/// Exactly the names Unity Catalog accepts are accepted: everything but `.`, the space, `/` and the
/// control characters (0x00–0x1F, 0x7F). Lower-casing is Unicode's (`Kunden_Ä` is `kunden_ä`), and the
/// length limit applies to the lowered form, the one stored. uc-access never builds SQL from a name (it
/// speaks only REST, where a name is one percent-encoded path segment or a JSON string), so quotes,
/// backticks and `%` are ordinary characters here. Look-alikes (a Cyrillic `а` for a Latin `a`) name a
/// different object, which must exist and which policy patterns match only as written.
///
/// Shared, not copied, when cloned: plans and revoke sweeps clone securables by the thousand.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

impl Name {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if let Some(bad) = raw.chars().find(|c| is_refused_in_names(*c)) {
            return Err(NameError::InvalidCharacter(bad));
        }
        let lowered = raw.to_lowercase();
        if lowered.chars().count() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        Ok(Self(lowered.into()))
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
    fn names_are_stored_lower_case_the_unicode_way() {
        assert_eq!(Name::parse("Sales_EU-2").unwrap().as_str(), "sales_eu-2");
        assert_eq!(Name::parse("Kunden_Ä").unwrap().as_str(), "kunden_ä");
        assert_eq!(Name::parse("ΣΟΦΊΑ").unwrap().as_str(), "σοφία");
        assert_eq!(Name::parse("ÉTÉ").unwrap().as_str(), "été");
    }

    #[test]
    fn every_character_unity_catalog_allows_is_accepted() {
        for raw in [
            "kunden_ä",
            "sales$2024",
            "o'neil",
            "a`b",
            "a\"b",
            "100%_real",
            "q?a#b",
            "目录",
            "cat-a-log",
            "s\u{0430}les",
            "tab\u{00a0}nbsp",
            "emoji_🙂",
        ] {
            assert!(Name::parse(raw).is_ok(), "{raw:?}: {:?}", Name::parse(raw));
        }
    }

    #[test]
    fn periods_spaces_slashes_and_control_characters_are_refused() {
        for (raw, bad) in [
            ("a.b", '.'),
            ("a b", ' '),
            ("a/b", '/'),
            ("a\nb", '\n'),
            ("a\tb", '\t'),
            ("a\u{0}b", '\u{0}'),
            ("a\u{1f}b", '\u{1f}'),
            ("a\u{7f}b", '\u{7f}'),
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
    fn the_message_names_the_character_readably() {
        assert_eq!(
            NameError::InvalidCharacter('\u{7f}').to_string(),
            "contains the control character U+007F; Unity Catalog names may not hold '.', spaces, '/' or control characters"
        );
        assert!(
            NameError::InvalidCharacter(' ')
                .to_string()
                .starts_with("contains a space;")
        );
        assert!(
            NameError::InvalidCharacter('/')
                .to_string()
                .starts_with("contains '/';")
        );
    }

    #[test]
    fn empty_and_overlong_names_are_refused_on_the_lowered_form() {
        assert_eq!(Name::parse(""), Err(NameError::Empty));
        assert_eq!(Name::parse(&"a".repeat(256)), Err(NameError::TooLong));
        assert!(Name::parse(&"a".repeat(255)).is_ok());
        // Characters, not bytes: 255 two-byte letters fit.
        assert!(Name::parse(&"ä".repeat(255)).is_ok());
        // 'İ' (U+0130) lowers to two characters ("i" and a combining dot), so 200 of them are 400 stored.
        assert_eq!(Name::parse(&"İ".repeat(200)), Err(NameError::TooLong));
    }
}
