//! Purview's qualified name of a Unity Catalog asset:
//! `databricks://<authority>/catalogs/<c>[/schemas/<s>[/tables/<t>]]`.
//!
//! Parsed by its keywords, never by position, because the authority segment is unverified (probably the
//! metastore id, possibly the workspace host); configuration maps it to a workspace. Keywords are matched
//! in any case. Each name is percent-decoded once (whether Purview encodes is unverified) and then must
//! be a valid [`Name`], so an encoded `.`, `/`, `%` or quote is refused rather than smuggled through.

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
    #[error("must not carry a query or fragment ('?' or '#')")]
    QueryOrFragment,
    #[error("has an empty path segment (a doubled '/')")]
    EmptySegment,
    #[error(
        "must name a catalog: databricks://<authority>/catalogs/<catalog>[/schemas/<schema>[/tables/<table>]]"
    )]
    MissingCatalog,
    #[error("expected {expected:?} but found {found:?}")]
    UnexpectedKeyword {
        expected: &'static str,
        found: String,
    },
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
const KEYWORDS: [&str; 3] = ["catalogs", "schemas", "tables"];

pub fn parse(raw: &str) -> Result<QualifiedAsset, QualifiedNameError> {
    let raw = raw.trim();
    let rest = raw
        .get(..SCHEME.len())
        .filter(|s| s.eq_ignore_ascii_case(SCHEME))
        .map(|_| &raw[SCHEME.len()..])
        .ok_or_else(|| QualifiedNameError::WrongScheme(raw.chars().take(40).collect()))?;
    if rest.contains(['?', '#']) {
        return Err(QualifiedNameError::QueryOrFragment);
    }
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
    for keyword in KEYWORDS {
        let Some(pair) = it.next() else { break };
        if !pair[0].eq_ignore_ascii_case(keyword) {
            return Err(QualifiedNameError::UnexpectedKeyword {
                expected: keyword,
                found: pair[0].to_owned(),
            });
        }
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
        assert_eq!(
            ok("databricks://m/catalogs/my%2Dcat").securable.full_name(),
            "my-cat"
        );
        for raw in [
            "databricks://m/catalogs/a%2Eb",
            "databricks://m/catalogs/a%2Fb",
            "databricks://m/catalogs/a%252eb",
            "databricks://m/catalogs/%60x%60",
            "databricks://m/catalogs/a%ZZ",
        ] {
            assert!(
                matches!(
                    parse(raw),
                    Err(QualifiedNameError::BadName {
                        keyword: "catalog",
                        ..
                    })
                ),
                "{raw}: {:?}",
                parse(raw)
            );
        }
    }

    #[test]
    fn keywords_out_of_order_repeated_or_unknown_are_refused() {
        for raw in [
            "databricks://m/schemas/s/catalogs/c",
            "databricks://m/catalogs/c/tables/t",
            "databricks://m/catalogs/c/catalogs/d",
            "databricks://m/catalogs/c/schemas/s/views/v",
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
            ("databricks://m/catalogs/c?x=1", |e| {
                matches!(e, QueryOrFragment)
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
            ("databricks://m/catalogs/../schemas/s", |e| {
                matches!(e, BadName { .. })
            }),
            ("databricks://m/catalogs/s\u{0430}les", |e| {
                matches!(e, BadName { .. })
            }),
        ];
        for (raw, check) in cases {
            let err = parse(raw).unwrap_err();
            assert!(check(&err), "{raw}: {err:?}");
        }
    }
}
