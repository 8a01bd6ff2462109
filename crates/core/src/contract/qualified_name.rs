//! Purview's qualified name of a Unity Catalog asset:
//! `databricks://<authority>/catalogs/<c>[/schemas/<s>[/tables/<t>|/views/<v>]]`.
//!
//! Parsed by its keywords, never by position, because the authority segment is unverified (probably the
//! metastore id, possibly the workspace host); configuration maps it to a workspace. Keywords are matched
//! in any case; a view may come as `tables/` or as `views/` (which keyword Purview uses is unverified), and
//! either is the table securable Unity Catalog grants views through. The path is split on `/` first and
//! each name then percent-decoded exactly once (whether Purview encodes is unverified: a name with no `%`
//! reads the same either way), so an encoded `/` or `.` can never add a level, and the decoded name must
//! be one Unity Catalog accepts ([`Name`]). A `%` that does not start an escape is refused with the hint to
//! write it as `%25`, because it cannot be told apart from an encoding mistake. `?` and `#` are characters
//! of names, not a query or a fragment: Unity Catalog allows them and this is not a URL anyone fetches.

use percent_encoding::percent_decode_str;

use crate::domain::{Name, Securable};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QualifiedNameError {
    #[error("must start with databricks:// (got {0:?})")]
    WrongScheme(String),
    #[error("has no authority after databricks://")]
    MissingAuthority,
    #[error("authority {0:?} may hold only letters, digits, '.', '-', '_' and ':'")]
    BadAuthority(String),
    #[error("has an empty path segment (a doubled '/')")]
    EmptySegment,
    #[error(
        "must name a catalog: databricks://<authority>/catalogs/<catalog>[/schemas/<schema>[/tables/<table>]] (views/<view> for a view)"
    )]
    MissingCatalog,
    #[error("expected \"{expected}\" but found {found:?}")]
    UnexpectedKeyword { expected: String, found: String },
    #[error("keyword {0:?} has no name after it")]
    MissingName(&'static str),
    #[error("has extra segments after the table name")]
    TrailingSegments,
    #[error("{keyword} name {problem}")]
    BadName {
        keyword: &'static str,
        problem: String,
    },
}

/// A parsed asset: the authority as given (lower case) and the securable it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualifiedAsset {
    pub authority: String,
    pub securable: Securable,
}

const SCHEME: &str = "databricks://";
/// The keyword of each level, in order; tables and views share the last level.
const KEYWORDS: [&[&str]; 3] = [&["catalogs"], &["schemas"], &["tables", "views"]];

pub fn parse(raw: &str) -> Result<QualifiedAsset, QualifiedNameError> {
    let raw = raw.trim();
    let rest = raw
        .get(..SCHEME.len())
        .filter(|s| s.eq_ignore_ascii_case(SCHEME))
        .map(|_| &raw[SCHEME.len()..])
        .ok_or_else(|| QualifiedNameError::WrongScheme(raw.chars().take(40).collect()))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(QualifiedNameError::MissingAuthority);
    }
    if !authority
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return Err(QualifiedNameError::BadAuthority(authority.to_owned()));
    }
    // One trailing slash is tolerated; anything emptier is a malformed path.
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Err(QualifiedNameError::MissingCatalog);
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(QualifiedNameError::EmptySegment);
    }

    let mut names: Vec<Name> = Vec::with_capacity(3);
    let mut it = segments.chunks(2);
    for keywords in KEYWORDS {
        let Some(pair) = it.next() else { break };
        let Some(keyword) = keywords
            .iter()
            .copied()
            .find(|k| pair[0].eq_ignore_ascii_case(k))
        else {
            return Err(QualifiedNameError::UnexpectedKeyword {
                expected: keywords.join("\" or \""),
                found: pair[0].to_owned(),
            });
        };
        let raw_name = pair
            .get(1)
            .ok_or(QualifiedNameError::MissingName(keyword))?;
        names.push(decode_name(keyword, raw_name)?);
    }
    if it.next().is_some() {
        return Err(QualifiedNameError::TrailingSegments);
    }

    let mut names = names.into_iter();
    let catalog = names.next().ok_or(QualifiedNameError::MissingCatalog)?;
    let securable = match (names.next(), names.next()) {
        (None, _) => Securable::catalog(catalog),
        (Some(schema), None) => Securable::schema(catalog, schema),
        (Some(schema), Some(table)) => Securable::table(catalog, schema, table),
    };
    Ok(QualifiedAsset {
        authority: authority.to_ascii_lowercase(),
        securable,
    })
}

fn decode_name(keyword: &'static str, raw: &str) -> Result<Name, QualifiedNameError> {
    let singular = keyword.trim_end_matches('s');
    if let Some(at) = stray_percent(raw) {
        return Err(QualifiedNameError::BadName {
            keyword: singular,
            problem: format!(
                "has a '%' at character {} that does not start a %XX escape; a name holding '%' is written %25 in the qualified name",
                raw[..at].chars().count() + 1
            ),
        });
    }
    let decoded =
        percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| QualifiedNameError::BadName {
                keyword: singular,
                problem: "is not valid UTF-8 once percent-decoded".into(),
            })?;
    Name::parse(&decoded).map_err(|e| QualifiedNameError::BadName {
        keyword: singular,
        problem: e.to_string(),
    })
}

/// The byte offset of the first `%` not followed by two hexadecimal digits.
fn stray_percent(raw: &str) -> Option<usize> {
    let bytes = raw.as_bytes();
    bytes.iter().enumerate().find_map(|(i, b)| {
        let escape = bytes
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        (*b == b'%' && !escape).then_some(i)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SecurableType;

    fn ok(raw: &str) -> QualifiedAsset {
        parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn table_schema_and_catalog_assets_are_recognised() {
        let t = ok(
            "databricks://0b7e4d2a-6c1f-4e83-9a5d-2f8c7b1e6d40/catalogs/Sales/schemas/reporting/tables/orders",
        );
        assert_eq!(t.authority, "0b7e4d2a-6c1f-4e83-9a5d-2f8c7b1e6d40");
        assert_eq!(t.securable.securable_type(), SecurableType::Table);
        assert_eq!(t.securable.full_name(), "sales.reporting.orders");
        let s = ok("databricks://adb-1.2.azuredatabricks.net/catalogs/sales/schemas/reporting");
        assert_eq!(s.securable.full_name(), "sales.reporting");
        assert_eq!(
            ok("databricks://m/catalogs/sales/").securable.full_name(),
            "sales"
        );
        assert_eq!(ok("DATABRICKS://M/Catalogs/a/SCHEMAS/b").authority, "m");
    }

    #[test]
    fn names_are_percent_decoded_once_and_then_checked() {
        for (raw, full_name) in [
            ("databricks://m/catalogs/my%2Dcat", "my-cat"),
            // Unencoded and encoded forms of the same name read the same.
            ("databricks://m/catalogs/kunden_ä", "kunden_ä"),
            ("databricks://m/catalogs/kunden_%C3%A4", "kunden_ä"),
            ("databricks://m/catalogs/Kunden_%C3%84", "kunden_ä"),
            ("databricks://m/catalogs/sales$2024", "sales$2024"),
            ("databricks://m/catalogs/o'neil", "o'neil"),
            ("databricks://m/catalogs/o%27neil", "o'neil"),
            ("databricks://m/catalogs/%60x%60", "`x`"),
            // Once only: %252e is the three characters "%2e".
            ("databricks://m/catalogs/a%252eb", "a%2eb"),
            ("databricks://m/catalogs/100%25_real", "100%_real"),
            // '?' and '#' are characters of names, encoded or not.
            ("databricks://m/catalogs/q?a#b", "q?a#b"),
            ("databricks://m/catalogs/q%3Fa%23b", "q?a#b"),
        ] {
            assert_eq!(ok(raw).securable.full_name(), full_name, "{raw}");
        }
        for (raw, says) in [
            ("databricks://m/catalogs/a%2Eb", "'.'"),
            ("databricks://m/catalogs/a%2Fb", "'/'"),
            ("databricks://m/catalogs/a%20b", "a space"),
            ("databricks://m/catalogs/a%0Ab", "U+000A"),
            ("databricks://m/catalogs/a%ZZ", "%25"),
            ("databricks://m/catalogs/100%_real", "%25"),
            ("databricks://m/catalogs/trailing%", "%25"),
            ("databricks://m/catalogs/a%C3", "UTF-8"),
        ] {
            match parse(raw) {
                Err(QualifiedNameError::BadName {
                    keyword: "catalog",
                    problem,
                }) => assert!(problem.contains(says), "{raw}: {problem}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_encoded_slash_never_adds_a_level() {
        // Split first, decode second: "a%2Fschemas%2Fb" is one (refused) catalog name, not two levels.
        assert!(matches!(
            parse("databricks://m/catalogs/a%2Fschemas%2Fb"),
            Err(QualifiedNameError::BadName { .. })
        ));
    }

    #[test]
    fn views_come_as_tables_or_as_views() {
        for raw in [
            "databricks://m/catalogs/sales/schemas/reporting/views/orders_summary",
            "databricks://m/catalogs/sales/schemas/reporting/VIEWS/orders_summary",
            "databricks://m/catalogs/sales/schemas/reporting/tables/orders_summary",
        ] {
            let asset = ok(raw);
            assert_eq!(asset.securable.securable_type(), SecurableType::Table);
            assert_eq!(
                asset.securable.full_name(),
                "sales.reporting.orders_summary"
            );
        }
    }

    #[test]
    fn keywords_out_of_order_repeated_or_unknown_are_refused() {
        for raw in [
            "databricks://m/schemas/s/catalogs/c",
            "databricks://m/catalogs/c/tables/t",
            "databricks://m/catalogs/c/views/v",
            "databricks://m/catalogs/c/catalogs/d",
            "databricks://m/catalogs/c/schemas/s/volumes/v",
            "databricks://m/volumes/v",
        ] {
            assert!(
                matches!(
                    parse(raw),
                    Err(QualifiedNameError::UnexpectedKeyword { .. })
                ),
                "{raw}"
            );
        }
        assert_eq!(
            parse("databricks://m/catalogs/c/schemas/s/volumes/v")
                .unwrap_err()
                .to_string(),
            "expected \"tables\" or \"views\" but found \"volumes\""
        );
    }

    #[test]
    fn malformed_names_get_a_precise_reason() {
        use QualifiedNameError::*;
        type Check = fn(&QualifiedNameError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("https://m/catalogs/c", |e| matches!(e, WrongScheme(_))),
            ("databricks:///catalogs/c", |e| {
                matches!(e, MissingAuthority)
            }),
            ("databricks://m", |e| matches!(e, MissingCatalog)),
            ("databricks://m/", |e| matches!(e, MissingCatalog)),
            ("databricks://m/catalogs", |e| {
                matches!(e, MissingName("catalogs"))
            }),
            ("databricks://m/catalogs//schemas/s", |e| {
                matches!(e, EmptySegment)
            }),
            (
                "databricks://m/catalogs/c/schemas/s/tables/t/columns/x",
                |e| matches!(e, TrailingSegments),
            ),
            ("databricks://m/catalogs/c/schemas/s/tables/t/x", |e| {
                matches!(e, TrailingSegments)
            }),
            ("databricks://m n/catalogs/c", |e| {
                matches!(e, BadAuthority(_))
            }),
            ("databricks://m?x/catalogs/c", |e| {
                matches!(e, BadAuthority(_))
            }),
            ("databricks://m/catalogs/../schemas/s", |e| {
                matches!(e, BadName { .. })
            }),
        ];
        for (raw, check) in cases {
            let err = parse(raw).unwrap_err();
            assert!(check(&err), "{raw}: {err:?}");
        }
    }
}
