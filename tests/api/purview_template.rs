//! The ready-to-paste body of docs/callback-contract.md (and its copy in purview/README.md), rendered
//! as the Purview designer renders a body: every dynamic-content token replaced by its value as plain
//! text, arrays included, free text included. Rendered that way it must be valid JSON that
//! `purview-callback` understands, for one assignee and for many, whatever the free text.

use serde_json::json;
use uc_access::contract::BodyError;
use uc_access::contract::purview;
use uc_access::domain::{AccessRequest, WorkspaceRef, Workspaces};
use uc_access_standin::demo;

use crate::dynamic_content::{Arrays, DynamicContent, FREE_TEXT, ready_to_paste_body};

const CONTRACT: &str = "docs/callback-contract.md";
const README: &str = "purview/README.md";

fn workspaces() -> Workspaces {
    Workspaces::new(Some(WorkspaceRef {
        name: "default".into(),
        host: url::Url::parse("https://adb-1234567890123456.7.azuredatabricks.net").unwrap(),
    }))
}

fn orders() -> String {
    format!(
        "databricks://{}/catalogs/sales/schemas/reporting/tables/orders",
        demo::METASTORE_ID
    )
}

fn parse(body: &str) -> Result<AccessRequest, BodyError> {
    purview::parse(body.as_bytes(), &workspaces())
}

fn not_json_message(body: &str) -> String {
    match parse(body) {
        Err(BodyError::NotJson(message)) => message,
        other => panic!("expected a body that is not JSON, got {other:?}\n{body}"),
    }
}

#[test]
fn the_ready_to_paste_body_is_the_same_in_the_contract_and_in_the_purview_readme() {
    assert_eq!(ready_to_paste_body(CONTRACT), ready_to_paste_body(README));
}

#[test]
fn the_ready_to_paste_body_rendered_as_plain_text_is_understood_for_one_and_many_assignees_and_any_free_text()
 {
    let template = ready_to_paste_body(CONTRACT);
    let cases = [
        (demo::ALICE_ENTRA_ID, "", vec![demo::CAROL_ENTRA_ID]),
        (
            demo::ALICE_ENTRA_ID,
            demo::BOB_ENTRA_ID,
            vec![
                demo::CAROL_ENTRA_ID,
                demo::FINANCE_ENTRA_ID,
                demo::DAVE_ENTRA_ID,
            ],
        ),
        (
            demo::BOB_ENTRA_ID,
            demo::BOB_ENTRA_ID,
            vec![demo::CAROL_ENTRA_ID, demo::CAROL_ENTRA_ID],
        ),
    ];
    for (requestor, recipient, assignees) in cases {
        let content = DynamicContent::approved(requestor, recipient, &orders(), &assignees)
            .with("Asset.Description", serde_json::Value::Null);
        let body = content.render(&template, Arrays::JsonText);
        assert!(
            !body.contains(FREE_TEXT),
            "no free-text token is in the body"
        );
        let request = parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
        assert_eq!(request.requester.to_string(), requestor);
        let target = request.target.map(|t| t.to_string());
        let expected_target =
            (!recipient.is_empty() && recipient != requestor).then_some(recipient);
        assert_eq!(target.as_deref(), expected_target, "{body}");
        assert_eq!(request.securable.full_name(), "sales.reporting.orders");
        let mut expected: Vec<String> = assignees.iter().map(|a| (*a).to_owned()).collect();
        expected.sort();
        expected.dedup();
        let read: Vec<String> = request
            .approval
            .approvers
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(read, expected, "{body}");
        assert!(request.dry_run, "the shipped body starts as a dry run");
    }
}

#[test]
fn with_the_assignees_token_between_quotes_the_rendered_body_is_refused_with_the_change_to_make() {
    // The form the docs used to show: the array token typed between quotes.
    let template = ready_to_paste_body(CONTRACT).replace(
        "\"assignees\": Approval.Assigned To",
        "\"assignees\": \"Approval.Assigned To\"",
    );
    assert!(template.contains("\"Approval.Assigned To\""));
    for assignees in [
        vec![demo::CAROL_ENTRA_ID],
        vec![demo::CAROL_ENTRA_ID, demo::BOB_ENTRA_ID],
    ] {
        let content = DynamicContent::approved(demo::ALICE_ENTRA_ID, "", &orders(), &assignees);
        let message = not_json_message(&content.render(&template, Arrays::JsonText));
        assert!(
            message.contains("delete the two quotes around Approval.Assigned To"),
            "{message}"
        );
    }
}

#[test]
fn if_the_designer_pastes_an_array_as_plain_ids_the_body_says_to_quote_the_token_and_quoted_it_is_understood()
 {
    let template = ready_to_paste_body(CONTRACT);
    let assignees = [demo::CAROL_ENTRA_ID, demo::BOB_ENTRA_ID];
    let content = DynamicContent::approved(demo::ALICE_ENTRA_ID, "", &orders(), &assignees);
    let message = not_json_message(&content.render(&template, Arrays::PlainList));
    assert!(
        message.contains("put Approval.Assigned To between two quotes"),
        "{message}"
    );
    // Following the message: the same rendering, with the token between quotes, is a separated list.
    let quoted = template.replace(
        "\"assignees\": Approval.Assigned To",
        "\"assignees\": \"Approval.Assigned To\"",
    );
    let request = parse(&content.render(&quoted, Arrays::PlainList)).unwrap();
    assert_eq!(request.approval.approvers.len(), 2);
}

#[test]
fn free_text_pasted_into_the_body_is_refused_at_its_field_and_nothing_is_read() {
    // A table whose own name holds a quote (Unity Catalog allows it), if Purview pastes it unencoded.
    let template = ready_to_paste_body(CONTRACT);
    let name = format!("{}_o\"neil", orders());
    let content =
        DynamicContent::approved(demo::ALICE_ENTRA_ID, "", &name, &[demo::CAROL_ENTRA_ID]);
    let message = not_json_message(&content.render(&template, Arrays::JsonText));
    assert!(
        message.contains("the value of \"assetQualifiedName\"") && message.contains("free text"),
        "{message}"
    );
    // A comment added to the body by hand: refused, with the field it broke named.
    let with_comment = template.replace(
        "\"dryRun\"",
        "\"comment\": \"Approval.Comments\",\n  \"dryRun\"",
    );
    let content = content.with("Asset.Fully Qualified Name", json!(orders()));
    let message = not_json_message(&content.render(&with_comment, Arrays::JsonText));
    assert!(message.contains("the value of \"comment\""), "{message}");
}
