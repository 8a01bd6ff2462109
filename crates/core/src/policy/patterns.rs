//! Allow and deny patterns over securable full names: one glob per dotted level (`hr`, `sales.*`,
//! `*.*.pii_*`), matched against a securable, its parents and — for denials — what it may contain.
//!
//! Patterns are lower-cased the way names are (Unicode's lower case, [`Name`]) and then matched exactly,
//! character for character: `Kunden_*` matches `kunden_ä`, and a look-alike letter matches only itself.
//! Glob syntax (`*`, `?`, `[…]`, `{…}`) is special; `\` escapes it, so `sales\$2024` and `q\?` match the
//! characters themselves.
//!
//! [`Name`]: crate::domain::Name

use std::fmt;

use globset::{GlobBuilder, GlobMatcher};

use crate::domain::{Securable, SecurableType, is_refused_in_names};

/// Why a pattern was refused at load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("is empty")]
    Empty,
    #[error("has {0} dot-separated parts; use 1 (catalog), 2 (schema) or 3 (table)")]
    TooManyParts(usize),
    #[error("has an empty part (two dots in a row, or a leading or trailing dot)")]
    EmptyPart,
    #[error(
        "uses `**`; a pattern matches one level (1 part = catalog, 2 = schema, 3 = table) and already covers everything inside what it matches"
    )]
    DoubleStar,
    #[error("part {index} is not a valid glob: {problem}")]
    BadGlob { index: usize, problem: String },
    #[error(
        "part {index} contains {character:?}, which no Unity Catalog name can hold ('.', spaces, '/' and control characters are not allowed), so the pattern could never match"
    )]
    ImpossibleCharacter { index: usize, character: char },
}

/// One pattern: a glob per level. Its number of parts says which level it names.
#[derive(Clone)]
pub struct NamePattern {
    source: String,
    parts: Vec<GlobMatcher>,
}

impl NamePattern {
    pub fn parse(raw: &str) -> Result<Self, PatternError> {
        let source = raw.trim().to_lowercase();
        if source.is_empty() {
            return Err(PatternError::Empty);
        }
        // Names cannot contain '.', so splitting on it is exact; a '.' inside `{a.b,c}` would be a
        // pattern no name can match, and is refused below as a broken glob.
        let raw_parts: Vec<&str> = source.split('.').collect();
        if raw_parts.len() > 3 {
            return Err(PatternError::TooManyParts(raw_parts.len()));
        }
        let mut parts = Vec::with_capacity(raw_parts.len());
        for (i, part) in raw_parts.iter().enumerate() {
            if part.is_empty() {
                return Err(PatternError::EmptyPart);
            }
            if part.contains("**") {
                return Err(PatternError::DoubleStar);
            }
            if let Some(character) = part.chars().find(|c| is_refused_in_names(*c)) {
                return Err(PatternError::ImpossibleCharacter {
                    index: i + 1,
                    character,
                });
            }
            // Both sides are lowered the same way, so the match is exact: the glob library's own case
            // folding (simple case folding) is not the lower-casing Unity Catalog stores names in.
            let glob = GlobBuilder::new(part)
                .case_insensitive(false)
                .backslash_escape(true)
                .literal_separator(true)
                .build()
                .map_err(|e| PatternError::BadGlob {
                    index: i + 1,
                    problem: e.kind().to_string(),
                })?;
            parts.push(glob.compile_matcher());
        }
        Ok(Self { source, parts })
    }

    /// The pattern as written (lower case).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The level this pattern names.
    pub fn level(&self) -> SecurableType {
        match self.parts.len() {
            1 => SecurableType::Catalog,
            2 => SecurableType::Schema,
            _ => SecurableType::Table,
        }
    }

    fn names_of(securable: &Securable) -> Vec<&str> {
        match securable {
            Securable::Catalog { catalog } => vec![catalog.as_str()],
            Securable::Schema { catalog, schema } => vec![catalog.as_str(), schema.as_str()],
            Securable::Table {
                catalog,
                schema,
                table,
            } => vec![catalog.as_str(), schema.as_str(), table.as_str()],
        }
    }

    /// Whether the pattern names exactly this securable (same level, every part matches).
    pub fn matches(&self, securable: &Securable) -> bool {
        let names = Self::names_of(securable);
        names.len() == self.parts.len() && self.prefix_matches(&names)
    }

    /// Whether the pattern names this securable or one of its parents.
    pub fn covers(&self, securable: &Securable) -> bool {
        securable.lineage().iter().any(|s| self.matches(s))
    }

    /// Whether the pattern could name something inside this securable (a schema or table of a
    /// catalog, a table of a schema). Grants on catalogs and schemas are inherited by their
    /// children, so such a grant would reach what the pattern names.
    pub fn may_match_inside(&self, securable: &Securable) -> bool {
        let names = Self::names_of(securable);
        self.parts.len() > names.len() && self.prefix_matches(&names)
    }

    fn prefix_matches(&self, names: &[&str]) -> bool {
        self.parts
            .iter()
            .zip(names)
            .all(|(glob, name)| glob.is_match(name))
    }
}

impl fmt::Debug for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamePattern({:?})", self.source)
    }
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for NamePattern {}

/// A list of patterns; empty means "no pattern".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns(Vec<NamePattern>);

impl Patterns {
    pub fn new(patterns: Vec<NamePattern>) -> Self {
        Self(patterns)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &NamePattern> {
        self.0.iter()
    }

    /// The first pattern naming the securable or one of its parents.
    pub fn covering(&self, securable: &Securable) -> Option<&NamePattern> {
        self.0.iter().find(|p| p.covers(securable))
    }

    /// The first pattern naming the securable, a parent, or anything it may contain.
    pub fn reaching(&self, securable: &Securable) -> Option<&NamePattern> {
        self.0
            .iter()
            .find(|p| p.covers(securable) || p.may_match_inside(securable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: SecurableType, name: &str) -> Securable {
        Securable::parse(kind, name).unwrap()
    }

    fn catalog(name: &str) -> Securable {
        s(SecurableType::Catalog, name)
    }

    fn schema(name: &str) -> Securable {
        s(SecurableType::Schema, name)
    }

    fn table(name: &str) -> Securable {
        s(SecurableType::Table, name)
    }

    fn p(raw: &str) -> NamePattern {
        NamePattern::parse(raw).unwrap()
    }

    #[test]
    fn a_pattern_names_the_level_given_by_its_number_of_parts() {
        assert_eq!(p("hr").level(), SecurableType::Catalog);
        assert_eq!(p("sales.*").level(), SecurableType::Schema);
        assert_eq!(p("*.*.pii_*").level(), SecurableType::Table);
        assert!(p("hr").matches(&catalog("hr")));
        assert!(!p("hr").matches(&schema("hr.people")));
        assert!(!p("hr").matches(&catalog("hr2")));
    }

    #[test]
    fn a_catalog_pattern_covers_the_catalog_its_schemas_and_its_tables() {
        let hr = p("hr");
        assert!(hr.covers(&catalog("hr")));
        assert!(hr.covers(&schema("hr.people")));
        assert!(hr.covers(&table("hr.people.salaries")));
        assert!(!hr.covers(&table("sales.hr.orders")));
    }

    #[test]
    fn a_schema_pattern_covers_its_tables_but_not_its_catalog() {
        let pii = p("*.pii_*");
        assert!(pii.covers(&schema("main.pii_eu")));
        assert!(pii.covers(&table("main.pii_eu.customers")));
        assert!(!pii.covers(&catalog("pii_eu")));
        assert!(!pii.covers(&table("main.sales.pii_customers")));
    }

    #[test]
    fn a_star_does_not_cross_a_dot() {
        assert!(!p("*").matches(&schema("a.b")));
        assert!(!p("*.orders").matches(&table("main.sales.orders")));
    }

    #[test]
    fn patterns_match_names_whatever_the_case_they_were_written_in() {
        let pattern = p("Sales.PII_*");
        assert_eq!(pattern.as_str(), "sales.pii_*");
        assert!(pattern.covers(&table("SALES.pii_EU.x")));
    }

    #[test]
    fn non_ascii_names_are_matched_after_the_same_unicode_lowering() {
        let pattern = p("Sales.Kunden_*");
        assert!(pattern.covers(&schema("sales.KUNDEN_Ä")));
        assert!(p("*.*.kunden_Ä").matches(&table("a.b.Kunden_ä")));
        assert!(p("目录").matches(&catalog("目录")));
        // A Cyrillic 'а' is not a Latin 'a', in either direction.
        assert!(!p("sales").matches(&catalog("s\u{0430}les")));
        assert!(!p("s\u{0430}les").matches(&catalog("sales")));
        // The Kelvin sign lowers to a Latin 'k', on the pattern's side as on the name's.
        assert!(p("\u{212a}ey").matches(&catalog("key")));
        assert!(p("key").matches(&catalog("\u{212a}EY")));
    }

    #[test]
    fn glob_characters_in_names_are_matched_literally_when_escaped() {
        assert!(p("sales\\$2024").matches(&catalog("sales$2024")));
        assert!(p("sales$2024").matches(&catalog("sales$2024")));
        assert!(p("q\\?").matches(&catalog("q?")));
        assert!(!p("q\\?").matches(&catalog("qx")));
        assert!(p("o'neil").matches(&catalog("o'neil")));
        assert!(p("100%_*").matches(&catalog("100%_real")));
    }

    #[test]
    fn a_part_no_name_can_match_is_refused_at_load() {
        assert_eq!(
            NamePattern::parse("sales.my table").unwrap_err(),
            PatternError::ImpossibleCharacter {
                index: 2,
                character: ' '
            }
        );
        assert_eq!(
            NamePattern::parse("a/b").unwrap_err(),
            PatternError::ImpossibleCharacter {
                index: 1,
                character: '/'
            }
        );
        assert!(matches!(
            NamePattern::parse("a\tb").unwrap_err(),
            PatternError::ImpossibleCharacter { .. }
        ));
    }

    #[test]
    fn a_pattern_may_reach_inside_the_containers_whose_names_it_shares() {
        assert!(p("*.pii_*").may_match_inside(&catalog("main")));
        assert!(p("main.*.secret").may_match_inside(&schema("main.sales")));
        assert!(!p("main.*.secret").may_match_inside(&schema("other.sales")));
        assert!(!p("hr").may_match_inside(&catalog("hr")));
        assert!(!p("*.pii_*").may_match_inside(&table("main.pii_eu.x")));
    }

    #[test]
    fn character_classes_and_alternatives_work_inside_a_part() {
        assert!(p("{sales,marketing}").matches(&catalog("marketing")));
        assert!(p("dev[0-9]").matches(&catalog("dev7")));
        assert!(p("dev?").matches(&catalog("dev7")));
        assert!(!p("dev[0-9]").matches(&catalog("devx")));
    }

    #[test]
    fn malformed_patterns_are_refused_with_the_reason() {
        assert_eq!(NamePattern::parse(" ").unwrap_err(), PatternError::Empty);
        assert_eq!(
            NamePattern::parse("a.b.c.d").unwrap_err(),
            PatternError::TooManyParts(4)
        );
        assert_eq!(
            NamePattern::parse("a..b").unwrap_err(),
            PatternError::EmptyPart
        );
        assert_eq!(
            NamePattern::parse("sales.").unwrap_err(),
            PatternError::EmptyPart
        );
        assert_eq!(
            NamePattern::parse("sales.**").unwrap_err(),
            PatternError::DoubleStar
        );
        assert!(matches!(
            NamePattern::parse("sales.[a-").unwrap_err(),
            PatternError::BadGlob { index: 2, .. }
        ));
        assert!(matches!(
            NamePattern::parse("{a.b,c}").unwrap_err(),
            PatternError::BadGlob { index: 1, .. }
        ));
    }
}
