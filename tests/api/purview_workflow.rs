//! `purview/workflow.json`, the Purview workflow shipped as code, must stay a definition the Workflow
//! REST API can take and must call `purview-callback` with the contract's own field names.

use std::collections::BTreeSet;

use serde_json::Value;
use uc_access::contract::purview::FIELDS;

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
        "approvers",
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
