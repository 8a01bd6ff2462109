//! Why a body a workflow pasted together is not JSON, worded as the change to make in the workflow.
//!
//! Purview inserts each dynamic-content value into the HTTP action's body as plain text. Three things
//! break the JSON that way, and each has one fix in the template: an array token (`Approval.Assigned
//! To`) placed between quotes (its JSON text brings quotes of its own), a list token that renders as a
//! bare list outside quotes, and a value holding free text (a quote, a backslash, a line break). This
//! module only words the error. A body that is not JSON is always refused, never repaired: a repaired
//! body would be read by uc-access one way and by every other JSON reader on the way (logs, proxies,
//! the run history) another, and its other values were pasted just as unescaped.

use memchr::memmem;

/// The hint for a body whose error lies in, or just before, a value pasted from dynamic content.
const FREE_TEXT_HINT: &str = "a value pasted into the body from dynamic content probably holds a \
    double quote, a backslash or a line break: keep only the contract's fields in the body (object \
    ids, the qualified name, the outcome and fixed values), never free text such as Approval.Comments \
    or Asset.Description";

/// `problem` (the JSON parser's own message) followed by what to change in the workflow, when the
/// body shows which token broke it. `lists` are the fields that hold lists, each with what a workflow
/// fills it from. A body that is valid JSON (refused for another reason, such as a field given twice)
/// gets `problem` unchanged.
pub fn explain(body: &[u8], problem: &str, lists: &[(&str, &str)]) -> String {
    let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(body) else {
        return problem.to_owned();
    };
    for (field, source) in lists {
        match list_shape(body, field) {
            Some(ListShape::ArrayInQuotes) => {
                return format!(
                    "{problem}. \"{field}\" holds an array pasted between quotes: {source} is an \
                     array and renders with quotes and brackets of its own. In the HTTP action's \
                     body, delete the two quotes around {source}, so that the line reads \
                     \"{field}\": {source},"
                );
            }
            Some(ListShape::BareList) => {
                return format!(
                    "{problem}. \"{field}\" holds a list pasted without quotes: {source} rendered \
                     as plain text, not as a JSON array. In the HTTP action's body, put {source} \
                     between two quotes, so that the line reads \"{field}\": \"{source}\","
                );
            }
            None => {}
        }
    }
    match field_before(&body[..offset(body, &syntax)]) {
        Some(field) => {
            format!("{problem}, in or just before the value of \"{field}\": {FREE_TEXT_HINT}")
        }
        None => format!("{problem}: {FREE_TEXT_HINT}"),
    }
}

/// A value for an error message: quoted, and cut after 40 characters (a value may be pages of text).
pub fn excerpt(raw: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut chars = raw.chars();
    let head: String = chars.by_ref().take(MAX_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// How a list token rendered where it breaks the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListShape {
    /// `"assignees": "["id1","id2"]"`: an array's JSON text pasted between quotes.
    ArrayInQuotes,
    /// `"assignees": id1,id2`: ids pasted outside quotes.
    BareList,
}

/// The shape of the first value of `"<field>":` in `body` that matches one, if any. Only called on a
/// body that is not JSON, so the patterns (an unescaped quote right after `"[`, a hex digit where a
/// JSON value must start) are the break itself, not text inside a valid string.
fn list_shape(body: &[u8], field: &str) -> Option<ListShape> {
    let key = format!("\"{field}\"");
    memmem::find_iter(body, key.as_bytes()).find_map(|at| {
        let rest = after_colon(&body[at + key.len()..])?;
        match rest.first()? {
            b'"' => {
                let inner = skip_space(&rest[1..]);
                let inner = inner.strip_prefix(b"[")?;
                (skip_space(inner).first() == Some(&b'"')).then_some(ListShape::ArrayInQuotes)
            }
            c if c.is_ascii_hexdigit() => Some(ListShape::BareList),
            _ => None,
        }
    })
}

/// `text` after optional spaces and a `:` and more spaces, if it starts that way.
fn after_colon(text: &[u8]) -> Option<&[u8]> {
    skip_space(text).strip_prefix(b":").map(skip_space)
}

fn skip_space(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    &text[start..]
}

/// The byte offset the parser's error points at (it counts lines from 1 and columns from 1).
fn offset(body: &[u8], error: &serde_json::Error) -> usize {
    let line_start = if error.line() <= 1 {
        0
    } else {
        memchr::memchr_iter(b'\n', body)
            .nth(error.line() - 2)
            .map_or(body.len(), |newline| newline + 1)
    };
    (line_start + error.column()).min(body.len())
}

/// The name of the last `"<name>":` in `before` (a name of letters, digits, `_` or `-`, as every field
/// of the contracts is, known or not): the value the error is in, or the one just before it. A guess
/// for the message only, since the text around a break is not JSON.
fn field_before(before: &[u8]) -> Option<String> {
    let quotes: Vec<usize> = memchr::memchr_iter(b'"', before).collect();
    quotes.windows(2).rev().find_map(|pair| {
        let (open, close) = (pair[0], pair[1]);
        let name = &before[open + 1..close];
        let is_name = !name.is_empty()
            && name.len() <= 64
            && name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
        (is_name && after_colon(&before[close + 1..]).is_some())
            .then(|| String::from_utf8_lossy(name).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTS: [(&str, &str); 1] = [("assignees", "Approval.Assigned To")];

    fn explained(body: &str) -> String {
        let problem = serde_json::from_str::<serde_json::Value>(body)
            .map(|_| "valid".to_owned())
            .unwrap_or_else(|e| e.to_string());
        explain(body.as_bytes(), &problem, &LISTS)
    }

    #[test]
    fn an_array_pasted_between_quotes_is_told_to_lose_its_quotes() {
        for body in [
            "{\n  \"requestorId\": \"a\",\n  \"assignees\": \"[\"5b1f\",\"7d3b\"]\",\n}",
            "{\"assignees\":\"[ \"5b1f\"]\"}",
        ] {
            let message = explained(body);
            assert!(
                message.contains("delete the two quotes around Approval.Assigned To")
                    && message.contains("\"assignees\": Approval.Assigned To,"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_bare_list_is_told_to_go_between_quotes() {
        let message = explained("{\"requestorId\": \"a\", \"assignees\": 5b1f-x,7d3b-y}");
        assert!(
            message.contains("put Approval.Assigned To between two quotes")
                && message.contains("\"assignees\": \"Approval.Assigned To\","),
            "{message}"
        );
    }

    #[test]
    fn free_text_that_breaks_the_body_is_placed_at_its_field() {
        let body = "{\n \"requestorId\": \"a\",\n \"comment\": \"she said \"yes\"\n\"}";
        let message = explained(body);
        assert!(
            message.contains("in or just before the value of \"comment\"")
                && message.contains("never free text"),
            "{message}"
        );
        let line_break = "{\"requestorId\": \"a\nb\", \"assignees\": \"x\"}";
        assert!(
            explained(line_break).contains("the value of \"requestorId\""),
            "{}",
            explained(line_break)
        );
    }

    #[test]
    fn a_valid_body_keeps_its_problem_and_text_inside_strings_is_no_hint() {
        // Valid JSON refused for another reason (a duplicate field): no hint is invented.
        let body = br#"{"assignees":"[","assignees":"x"}"#;
        assert_eq!(explain(body, "twice", &LISTS), "twice");
        // Not JSON, but the assignees value is a proper string: the hint is the generic one.
        let message = explained(r#"{"assignees": "[\"5b1f\"]", "comment": "a"b"}"#);
        assert!(message.contains("the value of \"comment\""), "{message}");
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        assert_eq!(excerpt("abc"), "\"abc\"");
        let long = "x".repeat(100);
        assert_eq!(excerpt(&long), format!("\"{}\"…", "x".repeat(40)));
        assert_eq!(excerpt("a\"b\nc"), "\"a\\\"b\\nc\"");
    }
}
