//! Turns a byte offset in the policy file into what an operator needs to find a mistake: the line,
//! the column, and the dotted name of the field written there.

use std::ops::Range;

/// Where in the file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The dotted field (`durations.maximum`), when one is written there.
    pub field: Option<String>,
}

impl Location {
    pub fn of(source: &str, span: &Range<usize>) -> Self {
        let offset = floor_char_boundary(source, span.start.min(source.len()));
        let before = &source[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            field: field_at(source, line_start),
        }
    }
}

fn floor_char_boundary(source: &str, mut offset: usize) -> usize {
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The field written on the line starting at `line_start` (or, inside a multi-line array, on the
/// nearest line above that assigns one), prefixed by the table header in effect.
///
/// This reads the text, not a parsed document: the file may not parse at all, and the aim is only to
/// name the field in an error message.
fn field_at(source: &str, line_start: usize) -> Option<String> {
    let lines: Vec<&str> = source[..line_start].lines().collect();
    let this_line = source[line_start..].lines().next().unwrap_or("");
    let mut key: Option<String> = None;
    let mut candidates = std::iter::once(this_line).chain(lines.iter().rev().copied());
    for line in candidates.by_ref() {
        let text = strip_comment(line).trim();
        if let Some(header) = header_name(text) {
            return Some(match key {
                Some(k) => format!("{header}.{k}"),
                None => header,
            });
        }
        if key.is_none()
            && let Some((k, _)) = text.split_once('=')
        {
            key = Some(unquote(k.trim()));
        }
    }
    key
}

fn strip_comment(line: &str) -> &str {
    // Good enough for naming a field: '#' inside a quoted value only matters after the '='.
    line.split_once('#').map_or(line, |(code, _)| code)
}

fn header_name(text: &str) -> Option<String> {
    let inner = text
        .strip_prefix("[[")
        .and_then(|t| t.strip_suffix("]]"))
        .or_else(|| text.strip_prefix('[').and_then(|t| t.strip_suffix(']')))?;
    Some(
        inner
            .split('.')
            .map(|p| unquote(p.trim()))
            .collect::<Vec<_>>()
            .join("."),
    )
}

fn unquote(key: &str) -> String {
    key.trim_matches(|c| c == '"' || c == '\'').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "block_self_approval = true\n\n[durations]\ndefault = \"P30D\"  # a comment\n[names]\ndeny = [\n  \"hr\",\n  \"x..y\",\n]\n";

    fn at(needle: &str) -> Location {
        let start = SOURCE.find(needle).unwrap();
        Location::of(SOURCE, &(start..start + needle.len()))
    }

    #[test]
    fn a_top_level_key_is_named_alone() {
        let l = at("true");
        assert_eq!((l.line, l.column), (1, 23));
        assert_eq!(l.field.as_deref(), Some("block_self_approval"));
    }

    #[test]
    fn a_key_in_a_table_is_named_with_the_table() {
        let l = at("\"P30D\"");
        assert_eq!((l.line, l.column), (4, 11));
        assert_eq!(l.field.as_deref(), Some("durations.default"));
    }

    #[test]
    fn an_element_of_a_multi_line_array_is_named_by_the_array() {
        let l = at("\"x..y\"");
        assert_eq!(l.line, 8);
        assert_eq!(l.field.as_deref(), Some("names.deny"));
    }

    #[test]
    fn a_table_header_is_named_as_the_table() {
        assert_eq!(at("[names]").field.as_deref(), Some("names"));
    }
}
