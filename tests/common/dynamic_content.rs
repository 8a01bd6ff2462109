//! Purview's dynamic content for the *When data access request is submitted* trigger and the approval
//! step, with the names and types Microsoft Learn gives them (*Workflow dynamic content*), and the two
//! ways a body gets them: a body typed in the designer, where each token is replaced by its value as plain
//! text, and the ready-to-paste body of the docs, read from the docs themselves. Shared by the template
//! tests (tests/api/purview_template.rs) and the contract corpus run through the binary (tests/contract).

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Every built-in variable of the trigger and of *Start and wait for an approval* (Learn lists these).
pub const NAMES: [&str; 13] = [
    "Workflow.Requestor",
    "Workflow.Request Recipient",
    "Asset.Name",
    "Asset.Description",
    "Asset.Type",
    "Asset.Fully Qualified Name",
    "Asset.Owner",
    "Asset.Classification",
    "Asset.Schema.Classification",
    "Asset.Is Certified",
    "Approval.Outcome",
    "Approval.Assigned To",
    "Approval.Comments",
];

/// Text no JSON string may hold unescaped: quotes, a backslash, line breaks, a tab, braces and commas
/// that close the object early, a token name and an expression (substitution must not run twice).
pub const FREE_TEXT: &str = "Needed for the Q3 \"close\" \\ see C:\\reports\\q3\n\tthanks!\r\n\
    \"}, \"privileges\": \"ALL_PRIVILEGES\", \"x\": {\" Asset.Name @{triggerBody()} 'ä' ✓";

/// How the designer pastes an array (`Asset.Owner`, `Approval.Assigned To`) as plain text. Its JSON
/// text is what an interpolation makes of an array; the plain list is the other possibility while
/// Purview's rendering is unverified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrays {
    JsonText,
    PlainList,
}

/// One request's dynamic content: a value for every name of [`NAMES`].
#[derive(Debug, Clone)]
pub struct DynamicContent(BTreeMap<&'static str, Value>);

impl DynamicContent {
    /// A request by `requestor` (for `recipient` when not empty) for `qualified_name`, approved, assigned
    /// to `assignees`, with [`FREE_TEXT`] in every free-text value.
    pub fn approved(
        requestor: &str,
        recipient: &str,
        qualified_name: &str,
        assignees: &[&str],
    ) -> Self {
        let values = BTreeMap::from([
            ("Workflow.Requestor", json!(requestor)),
            ("Workflow.Request Recipient", json!(recipient)),
            ("Asset.Name", json!(FREE_TEXT)),
            ("Asset.Description", json!(FREE_TEXT)),
            ("Asset.Type", json!("databricks_table")),
            ("Asset.Fully Qualified Name", json!(qualified_name)),
            ("Asset.Owner", json!(assignees)),
            (
                "Asset.Classification",
                json!([FREE_TEXT, "MICROSOFT.PERSONAL.NAME"]),
            ),
            ("Asset.Schema.Classification", json!([FREE_TEXT])),
            ("Asset.Is Certified", json!(false)),
            ("Approval.Outcome", json!("Approved")),
            ("Approval.Assigned To", json!(assignees)),
            ("Approval.Comments", json!(FREE_TEXT)),
        ]);
        assert!(NAMES.iter().all(|n| values.contains_key(n)));
        Self(values)
    }

    pub fn with(mut self, name: &'static str, value: Value) -> Self {
        assert!(NAMES.contains(&name), "{name} is not dynamic content");
        self.0.insert(name, value);
        self
    }

    pub fn value(&self, name: &str) -> &Value {
        &self.0[name]
    }

    /// `name`'s value as the designer pastes it: a string as its bare text, an array as `arrays` says,
    /// a boolean as `true`/`false`, null as nothing.
    pub fn text(&self, name: &str, arrays: Arrays) -> String {
        match (self.value(name), arrays) {
            (Value::String(s), _) => s.clone(),
            (Value::Null, _) => String::new(),
            (Value::Array(items), Arrays::PlainList) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            (other, _) => other.to_string(),
        }
    }

    /// `template` with every dynamic-content name replaced by its plain text, in one pass (the longest
    /// name first where names overlap; pasted text is never searched again).
    pub fn render(&self, template: &str, arrays: Arrays) -> String {
        let mut names = NAMES;
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        let mut out = String::new();
        let mut rest = template;
        'outer: while let Some(c) = rest.chars().next() {
            for name in names {
                if let Some(after) = rest.strip_prefix(name) {
                    out.push_str(&self.text(name, arrays));
                    rest = after;
                    continue 'outer;
                }
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

/// The ready-to-paste body in the document at `path` (relative to the repository): the `text` block
/// after the `<!-- ready-to-paste body` marker, without the indentation of a list item.
pub fn ready_to_paste_body(path: &str) -> String {
    let doc = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let after = doc
        .split_once("<!-- ready-to-paste body")
        .unwrap_or_else(|| panic!("{path} has no ready-to-paste body marker"))
        .1;
    let mut lines = after.lines().skip(1);
    let fence = lines.next().unwrap();
    assert_eq!(
        fence.trim(),
        "```text",
        "{path}: a text block follows the marker"
    );
    let indent = fence.len() - fence.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|l| l.trim() != "```")
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect();
    body.join("\n")
}
