//! `purview/workflow.json`, the Purview workflow shipped as code, must stay a definition the Workflow
//! REST API can take and must call `purview-callback` with the contract's own field names, in a body
//! the callback understands however its expressions evaluate.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use uc_access::contract::purview::{self, FIELDS};
use uc_access::domain::{WorkspaceRef, Workspaces};
use uc_access_standin::demo;

use crate::dynamic_content::{Arrays, DynamicContent};

fn workflow() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/purview/workflow.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every action of a DAG level, with the nested levels of `If` actions (then and else), depth first.
fn actions(level: &Value, out: &mut Vec<(String, Value)>) {
    let Some(map) = level.as_object() else { return };
    for (name, action) in map {
        out.push((name.clone(), action.clone()));
        actions(&action["actions"], out);
        actions(&action["else"]["actions"], out);
    }
}

fn all_actions() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    actions(&workflow()["actionDag"]["actions"], &mut out);
    out
}

fn http_action() -> Value {
    let http: Vec<_> = all_actions()
        .into_iter()
        .filter(|(_, a)| a["type"] == "Http")
        .collect();
    assert_eq!(http.len(), 1, "exactly one HTTP action calls uc-access");
    http[0].1.clone()
}

#[test]
fn the_workflow_is_a_create_command_for_the_data_access_trigger() {
    let w = workflow();
    for key in ["name", "description", "isEnabled", "triggers", "actionDag"] {
        assert!(w.get(key).is_some(), "missing {key}");
    }
    assert_eq!(
        w["triggers"][0]["type"],
        "when_data_access_grant_is_requested"
    );
}

#[test]
fn the_http_action_body_uses_only_contract_fields_and_every_required_one() {
    let body = &http_action()["inputs"]["parameters"]["body"];
    let sent: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let contract: BTreeSet<&str> = FIELDS.into_iter().collect();
    let unknown: Vec<_> = sent.difference(&contract).collect();
    assert!(
        unknown.is_empty(),
        "fields the callback would refuse: {unknown:?}"
    );
    for required in [
        "requestorId",
        "assetQualifiedName",
        "approvalOutcome",
        "assignees",
    ] {
        assert!(sent.contains(required), "missing {required}");
    }
}

#[test]
fn the_shipped_workflow_starts_as_a_dry_run() {
    assert_eq!(
        http_action()["inputs"]["parameters"]["body"]["dryRun"],
        "true"
    );
}

#[test]
fn the_http_action_posts_to_purview_callback_with_service_principal_authentication() {
    let p = &http_action()["inputs"]["parameters"];
    assert_eq!(p["method"], "POST");
    assert_eq!(p["path"], "/api/purview-callback");
    assert_eq!(p["authentication"]["type"], "ServicePrincipal");
    for key in ["credential", "audience"] {
        let value = p["authentication"][key].as_str().unwrap();
        assert!(
            value.starts_with('<') && value.ends_with('>'),
            "{key} stays a placeholder: {value}"
        );
    }
}

#[test]
fn every_run_after_names_an_action_of_the_same_level() {
    fn check(level: &Value) {
        let Some(map) = level.as_object() else { return };
        for (name, action) in map {
            for after in action["runAfter"].as_object().unwrap().keys() {
                assert!(map.contains_key(after), "{name} runs after unknown {after}");
            }
            check(&action["actions"]);
            check(&action["else"]["actions"]);
        }
    }
    check(&workflow()["actionDag"]["actions"]);
}

#[test]
fn the_requester_is_emailed_the_answer_status_message_and_expiry() {
    let emails: Vec<String> = all_actions()
        .into_iter()
        .filter(|(_, a)| a["type"] == "EmailNotification")
        .map(|(_, a)| a["inputs"]["parameters"].to_string())
        .collect();
    let all = emails.join("\n");
    for field in ["['status']", "['message']", "['expiresAt']"] {
        assert!(all.contains(field), "no email uses {field}");
    }
}

// ---- the create command of the Workflow REST specification -------------------------------------
// Facts from `purviewWorkflow.json` (2023-10-01-preview): `WorkflowCreateOrUpdateCommand` has the
// properties below and requires all but `actionDag`; a `Trigger` requires `type` (one of the enum) and
// has three optional string properties; `actionDag` is an object. The action shapes are those of the
// specification's examples (`Approval`, `If`, `EmailNotification`).

const COMMAND_PROPERTIES: [&str; 5] = ["triggers", "name", "isEnabled", "description", "actionDag"];
const TRIGGER_TYPES: [&str; 6] = [
    "when_term_creation_is_requested",
    "when_term_deletion_is_requested",
    "when_term_update_is_requested",
    "when_terms_import_is_requested",
    "when_data_access_grant_is_requested",
    "when_asset_update_is_requested",
];
const TRIGGER_PROPERTIES: [&str; 4] = [
    "type",
    "underGlossaryHierarchy",
    "underCollection",
    "underGlossary",
];

#[test]
fn the_workflow_has_the_shape_of_the_create_command_of_the_workflow_api() {
    let w = workflow();
    let command = w.as_object().unwrap();
    for key in command.keys() {
        assert!(
            COMMAND_PROPERTIES.contains(&key.as_str()),
            "{key} is not a property of the create command"
        );
    }
    assert!(w["name"].is_string() && w["description"].is_string());
    assert!(w["isEnabled"].is_boolean());
    let triggers = w["triggers"].as_array().expect("triggers is an array");
    assert!(!triggers.is_empty());
    for trigger in triggers {
        for (key, value) in trigger.as_object().unwrap() {
            assert!(TRIGGER_PROPERTIES.contains(&key.as_str()), "trigger {key}");
            assert!(value.is_string(), "trigger {key} is a string");
        }
        assert!(TRIGGER_TYPES.contains(&trigger["type"].as_str().unwrap()));
    }
    assert!(w["actionDag"]["actions"].is_object());
    for (name, action) in all_actions() {
        let kind = action["type"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: type"));
        for (after, statuses) in action["runAfter"].as_object().unwrap() {
            for status in statuses.as_array().unwrap() {
                assert!(
                    ["Succeeded", "Failed", "Skipped", "TimedOut"]
                        .contains(&status.as_str().unwrap()),
                    "{name} after {after}: {status}"
                );
            }
        }
        let p = &action["inputs"]["parameters"];
        match kind {
            "Approval" => {
                assert!(
                    ["PendingOnAll", "PendingOnAny"].contains(&p["approvalType"].as_str().unwrap())
                );
                assert!(p["title"].is_string());
                let assigned = &p["assignedTo"];
                assert!(
                    assigned
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_string))
                        || assigned.as_str().is_some_and(is_whole_value),
                    "{name}: assignedTo is a list of ids or one expression for the whole list"
                );
            }
            "If" => {
                assert!(action["expression"].is_object(), "{name}: expression");
                assert!(action["actions"].is_object(), "{name}: actions");
            }
            "EmailNotification" => {
                assert!(p["emailSubject"].is_string() && p["emailMessage"].is_string());
                assert!(p["emailRecipients"].is_array());
            }
            _ => {}
        }
    }
}

// ---- expressions ---------------------------------------------------------------------------------

/// Whether `s` is one expression for a whole value (`@expr`, not an interpolation `@{…}`).
fn is_whole_value(s: &str) -> bool {
    s.starts_with('@') && !s.starts_with("@{") && !s.starts_with("@@")
}

/// Every string of `value`, depth first.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// The expressions in a JSON string value: the whole value, or each `@{…}` of an interpolation.
fn expressions(s: &str) -> Vec<String> {
    if is_whole_value(s) {
        return vec![s[1..].to_owned()];
    }
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("@{") {
        let inner = &rest[start + 2..];
        let end = closing_brace(inner).unwrap_or_else(|| panic!("unclosed @{{ in {s:?}"));
        out.push(inner[..end].to_owned());
        rest = &inner[end + 1..];
    }
    out
}

/// The index of the `}` that closes an interpolation, skipping single-quoted strings.
fn closing_brace(s: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Whether parentheses and brackets balance outside single-quoted strings, and quotes close.
fn well_formed(expr: &str) -> bool {
    let mut depth: Vec<char> = Vec::new();
    let mut quoted = false;
    for c in expr.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' | '[' if !quoted => depth.push(c),
            ')' | ']' if !quoted => {
                let open = if c == ')' { '(' } else { '[' };
                if depth.pop() != Some(open) {
                    return false;
                }
            }
            _ => {}
        }
    }
    !quoted && depth.is_empty()
}

fn all_expressions() -> Vec<String> {
    let mut all = Vec::new();
    strings(&workflow()["actionDag"], &mut all);
    all.iter().flat_map(|s| expressions(s)).collect()
}

#[test]
fn every_expression_of_the_workflow_is_well_formed() {
    let all = all_expressions();
    assert!(all.len() > 10, "{all:?}");
    for expr in all {
        assert!(well_formed(&expr), "{expr}");
        assert!(
            ["triggerBody()", "outputs('", "body('"]
                .iter()
                .any(|f| expr.starts_with(f)),
            "{expr}: an expression this test knows"
        );
    }
}

#[test]
fn every_trigger_and_approval_path_of_the_workflow_is_listed_as_unverified_in_the_readme() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/purview/README.md")).unwrap();
    let unverified = readme
        .split_once("has no data access example")
        .expect("the README has an unverified section")
        .1;
    let paths: BTreeSet<String> = all_expressions()
        .into_iter()
        .filter(|e| e.starts_with("triggerBody()") || e.starts_with("outputs('Start and wait"))
        // The examples of the specification read the approval's outcome this way.
        .filter(|e| !e.ends_with("['body/outcome']"))
        .collect();
    assert!(paths.len() >= 5, "{paths:?}");
    for path in paths {
        assert!(
            unverified.contains(&format!("`{path}`")),
            "{path} is not marked unverified in purview/README.md"
        );
    }
}

// ---- the HTTP body, evaluated --------------------------------------------------------------------

/// What each expression of the workflow stands for in the designer.
const DYNAMIC_CONTENT: [(&str, &str); 7] = [
    (
        "triggerBody()['request']['requestor']",
        "Workflow.Requestor",
    ),
    (
        "triggerBody()['request']['recipient']",
        "Workflow.Request Recipient",
    ),
    ("triggerBody()['request']['asset']['name']", "Asset.Name"),
    (
        "triggerBody()['request']['asset']['qualifiedName']",
        "Asset.Fully Qualified Name",
    ),
    ("triggerBody()['request']['asset']['owner']", "Asset.Owner"),
    (
        "outputs('Start and wait for an approval')['body/assignedTo']",
        "Approval.Assigned To",
    ),
    (
        "outputs('Start and wait for an approval')['body/outcome']",
        "Approval.Outcome",
    ),
];

fn dynamic_name(expr: &str) -> &'static str {
    DYNAMIC_CONTENT
        .iter()
        .find(|(e, _)| *e == expr)
        .unwrap_or_else(|| panic!("{expr} stands for no known dynamic content"))
        .1
}

/// `value` as the workflow engine evaluates it: a whole-value expression keeps its type, an
/// interpolation is a string with each value pasted as text (an array as its JSON text).
fn evaluate(value: &Value, content: &DynamicContent) -> Value {
    match value {
        Value::String(s) if is_whole_value(s) => content.value(dynamic_name(&s[1..])).clone(),
        Value::String(s) => Value::String(interpolate(s, content)),
        Value::Array(items) => items.iter().map(|i| evaluate(i, content)).collect(),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), evaluate(v, content)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

fn interpolate(s: &str, content: &DynamicContent) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..];
        let end = closing_brace(inner).unwrap();
        out.push_str(&content.text(dynamic_name(&inner[..end]), Arrays::JsonText));
        rest = &inner[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The body as text when every expression is pasted as plain text where it stands: a whole-value
/// expression (the whole JSON string) by its value's text, an interpolation inside its quotes.
fn render_as_text(body: &Map<String, Value>, content: &DynamicContent) -> String {
    let members: Vec<String> = body
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) if is_whole_value(s) => {
                    content.text(dynamic_name(&s[1..]), Arrays::JsonText)
                }
                Value::String(s) => format!("\"{}\"", interpolate(s, content)),
                other => other.to_string(),
            };
            format!("\"{key}\": {text}")
        })
        .collect();
    format!("{{{}}}", members.join(",\n"))
}

fn workspaces() -> Workspaces {
    Workspaces::new(Some(WorkspaceRef {
        name: "default".into(),
        host: url::Url::parse("https://adb-1234567890123456.7.azuredatabricks.net").unwrap(),
    }))
}

fn contents() -> Vec<DynamicContent> {
    let orders = format!(
        "databricks://{}/catalogs/sales/schemas/reporting/tables/orders",
        demo::METASTORE_ID
    );
    vec![
        DynamicContent::approved(demo::ALICE_ENTRA_ID, "", &orders, &[demo::CAROL_ENTRA_ID]),
        DynamicContent::approved(
            demo::ALICE_ENTRA_ID,
            demo::BOB_ENTRA_ID,
            &orders,
            &[
                demo::CAROL_ENTRA_ID,
                demo::FINANCE_ENTRA_ID,
                demo::DAVE_ENTRA_ID,
            ],
        ),
    ]
}

#[test]
fn the_http_body_evaluated_or_pasted_as_text_is_understood_for_one_and_many_assignees_and_any_free_text()
 {
    let body = http_action()["inputs"]["parameters"]["body"].clone();
    for content in contents() {
        let assignees = content
            .value("Approval.Assigned To")
            .as_array()
            .unwrap()
            .len();
        let evaluated = serde_json::to_vec(&evaluate(&body, &content)).unwrap();
        let pasted = render_as_text(body.as_object().unwrap(), &content);
        for (how, bytes) in [("evaluated", evaluated), ("pasted", pasted.into_bytes())] {
            let request = purview::parse(&bytes, &workspaces())
                .unwrap_or_else(|e| panic!("{how}: {e}\n{}", String::from_utf8_lossy(&bytes)));
            assert_eq!(request.requester.to_string(), demo::ALICE_ENTRA_ID, "{how}");
            assert_eq!(request.approval.approvers.len(), assignees, "{how}");
            assert_eq!(request.securable.full_name(), "sales.reporting.orders");
        }
        // The whole-value expression sends the assignees as a JSON array, not as text.
        assert!(evaluate(&body, &content)["assignees"].is_array());
    }
}

#[test]
fn the_approval_is_assigned_to_the_owners_themselves_not_to_a_list_wrapped_in_a_list() {
    let approval = all_actions()
        .into_iter()
        .find(|(_, a)| a["type"] == "Approval")
        .unwrap()
        .1;
    let content = &contents()[1];
    let assigned = evaluate(&approval["inputs"]["parameters"]["assignedTo"], content);
    assert_eq!(
        assigned,
        json!([
            demo::CAROL_ENTRA_ID,
            demo::FINANCE_ENTRA_ID,
            demo::DAVE_ENTRA_ID
        ]),
        "assignedTo evaluates to the owners' ids, each an item"
    );
}
