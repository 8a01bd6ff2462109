//! The `purview-callback` body: what a Purview workflow's HTTP action sends after approval, built from
//! Purview's dynamic content (see docs/callback-contract.md for the ready-to-paste body).
//!
//! No free-text field is part of the contract: Purview pastes values into the JSON as plain text, so a
//! comment with a quote or newline would break the body. When a body is broken that way, the answer
//! says which token to change ([`super::rendering`]).

use super::fields::{BodyError, FieldError, Fields};
use super::{qualified_name, rendering};
use crate::domain::{
    AccessRequest, Approval, ApprovalOutcome, EntraObjectId, PrincipalQuery, RequestSource,
    Workspaces,
};

/// Most assignees accepted in one body (a workflow assigns an approval to a handful).
pub const MAX_ASSIGNEES: usize = 50;

/// The approval's assignees (Purview's `Approval.Assigned To`).
pub const ASSIGNEES: &str = "assignees";
/// The former name of [`ASSIGNEES`], still accepted: workflows built before the rename send it.
pub const ASSIGNEES_FORMER_NAME: &str = "approvers";

pub const FIELDS: [&str; 12] = [
    "requestorId",
    "recipientId",
    "assetQualifiedName",
    "approvalOutcome",
    ASSIGNEES,
    ASSIGNEES_FORMER_NAME,
    "privileges",
    "duration",
    "idempotencyKey",
    "approvalId",
    "dryRun",
    "provisioning",
];

/// The fields that hold lists (so may arrive as arrays, see [`Fields::opt_list`]), each with what a
/// workflow fills it from.
const LISTS: [(&str, &str); 3] = [
    (ASSIGNEES, "Approval.Assigned To"),
    (ASSIGNEES_FORMER_NAME, "Approval.Assigned To"),
    ("privileges", "the value"),
];

/// Parses a callback body into an access request in one of the configured workspaces.
pub fn parse(body: &[u8], workspaces: &Workspaces) -> Result<AccessRequest, BodyError> {
    let f = Fields::parse(body, &FIELDS).map_err(|e| match e {
        BodyError::NotJson(problem) => {
            BodyError::NotJson(rendering::explain(body, &problem, &LISTS))
        }
        other => other,
    })?;
    let requester = object_id(&f, "requestorId")?;
    let target = f
        .opt_str("recipientId")?
        .map(|raw| EntraObjectId::parse(raw).map_err(|e| FieldError::new("recipientId", e)))
        .transpose()?
        // "For someone else" naming oneself is just a request for oneself.
        .filter(|t| *t != requester);
    let asset = qualified_name::parse(f.str("assetQualifiedName")?)
        .map_err(|e| FieldError::new("assetQualifiedName", e))?;
    let workspace = workspaces
        .for_authority(&asset.authority)
        .map_err(|e| FieldError::new("assetQualifiedName", e))?
        .clone();
    let outcome = ApprovalOutcome::parse(f.str("approvalOutcome")?);
    let assignees = assignees(&f)?;
    let securable_type = asset.securable.securable_type();
    Ok(AccessRequest {
        requester,
        target,
        grantee: PrincipalQuery::object_id(target.unwrap_or(requester)),
        workspace,
        privileges: f.opt_privileges("privileges", securable_type)?,
        securable: asset.securable,
        duration: f.opt_duration("duration")?,
        approval: Approval {
            outcome,
            approvers: assignees,
            id: f.opt_key("approvalId")?,
            operator: None,
        },
        idempotency_key: f.opt_key("idempotencyKey")?,
        dry_run: f.opt_bool("dryRun")?.unwrap_or(false),
        provisioning: f.opt_mode("provisioning")?,
        source: RequestSource::PurviewCallback,
    })
}

fn object_id(f: &Fields, field: &str) -> Result<EntraObjectId, FieldError> {
    EntraObjectId::parse(f.str(field)?).map_err(|e| FieldError::new(field, e))
}

/// The object ids the approval was assigned to (users or groups: Purview's `Approval.Assigned To`
/// lists assignees, not who replied), sorted and without duplicates. Read from `assignees` or from its
/// former name `approvers`, never from both: a body naming both could be read differently by another
/// reader on the way. Every list shape of [`Fields::opt_list`] is accepted, since how a workflow renders
/// an array depends on how the token was placed in the body.
fn assignees(f: &Fields) -> Result<Vec<EntraObjectId>, FieldError> {
    let field = match (f.has(ASSIGNEES), f.has(ASSIGNEES_FORMER_NAME)) {
        (true, true) => {
            return Err(FieldError::new(
                ASSIGNEES,
                format!(
                    "and {ASSIGNEES_FORMER_NAME} are one field ({ASSIGNEES_FORMER_NAME} is its former name); \
                     send {ASSIGNEES} only"
                ),
            ));
        }
        (false, true) => ASSIGNEES_FORMER_NAME,
        _ => ASSIGNEES,
    };
    let items = f.opt_list(field)?.ok_or_else(|| {
        FieldError::new(
            field,
            "is required: the object ids the approval was assigned to (Purview's Approval.Assigned To)",
        )
    })?;
    if items.len() > MAX_ASSIGNEES {
        return Err(FieldError::new(
            field,
            format!("lists more than {MAX_ASSIGNEES} assignees"),
        ));
    }
    let mut ids = items
        .iter()
        .map(|raw| {
            EntraObjectId::parse(raw).map_err(|e| {
                FieldError::new(
                    field,
                    format!("{} {e} (an Entra object id)", rendering::excerpt(raw)),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Privilege, SecurableType, WorkspaceRef};
    use serde_json::json;

    const ALICE: &str = "5b1f2e3d-4c5b-4a69-8e7f-0a1b2c3d4e5f";
    const BOB: &str = "6c2a3f4e-5d6c-4b7a-9f80-1b2c3d4e5f60";
    const CAROL: &str = "7d3b4a5f-6e7d-4c8b-8a91-2c3d4e5f6071";

    fn workspaces() -> Workspaces {
        Workspaces::new(Some(WorkspaceRef {
            name: "default".into(),
            host: url::Url::parse("https://adb-1.1.azuredatabricks.net").unwrap(),
        }))
    }

    fn body(overrides: serde_json::Value) -> Vec<u8> {
        let mut base = json!({
            "requestorId": ALICE,
            "recipientId": "",
            "assetQualifiedName": "databricks://metastore/catalogs/sales/schemas/reporting/tables/orders",
            "approvalOutcome": "Approved",
            "assignees": CAROL,
        });
        for (k, v) in overrides.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::to_vec(&base).unwrap()
    }

    fn field_error(b: Vec<u8>) -> String {
        match parse(&b, &workspaces()).unwrap_err() {
            BodyError::Field(f) => f.field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_minimal_callback_becomes_a_request_for_the_requester() {
        let r = parse(&body(json!({})), &workspaces()).unwrap();
        assert_eq!(r.requester.to_string(), ALICE);
        assert_eq!(r.target, None);
        assert_eq!(r.grantee, PrincipalQuery::object_id(r.requester));
        assert_eq!(r.securable.full_name(), "sales.reporting.orders");
        assert_eq!(r.approval.outcome, ApprovalOutcome::Approved);
        assert_eq!(r.privileges, None);
        assert!(!r.dry_run);
    }

    #[test]
    fn a_request_for_someone_else_grants_to_the_recipient() {
        let r = parse(&body(json!({"recipientId": BOB})), &workspaces()).unwrap();
        assert_eq!(r.target.unwrap().to_string(), BOB);
        assert_eq!(r.grantee, PrincipalQuery::object_id(r.target.unwrap()));
        let same = parse(&body(json!({"recipientId": ALICE})), &workspaces()).unwrap();
        assert_eq!(same.target, None);
    }

    #[test]
    fn optional_fields_are_typed() {
        let r = parse(
            &body(json!({"privileges": "select", "duration": "P7D", "dryRun": "true", "idempotencyKey": "run-1",
                         "assignees": [CAROL, BOB, CAROL]})),
            &workspaces(),
        )
        .unwrap();
        assert_eq!(
            r.privileges.unwrap().into_iter().collect::<Vec<_>>(),
            vec![Privilege::Select]
        );
        assert_eq!(r.duration.unwrap().to_string(), "P7D");
        assert!(r.dry_run);
        assert_eq!(r.approval.approvers.len(), 2);
        assert_eq!(r.securable.securable_type(), SecurableType::Table);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(
            field_error(body(json!({"requestorId": "alice@contoso.com"}))),
            "requestorId"
        );
        assert_eq!(
            field_error(body(json!({"recipientId": "x"}))),
            "recipientId"
        );
        assert_eq!(
            field_error(body(
                json!({"assetQualifiedName": "sales.reporting.orders"})
            )),
            "assetQualifiedName"
        );
        assert_eq!(
            field_error(body(json!({"assignees": "carol@contoso.com"}))),
            "assignees"
        );
        assert_eq!(field_error(body(json!({"assignees": ""}))), "assignees");
        assert_eq!(
            field_error(body(json!({"privileges": ["USE_SCHEMA"]}))),
            "privileges"
        );
        assert_eq!(
            field_error(body(json!({"privileges": ["SELEC"]}))),
            "privileges"
        );
        assert_eq!(
            field_error(body(json!({"duration": "30 days"}))),
            "duration"
        );
        assert_eq!(field_error(body(json!({"dryRun": "maybe"}))), "dryRun");
        assert_eq!(field_error(body(json!({"comment": "please"}))), "comment");
        assert_eq!(
            field_error(body(json!({"approvalOutcome": null}))),
            "approvalOutcome"
        );
    }

    fn assignees_of(value: serde_json::Value) -> Vec<String> {
        let r = parse(&body(json!({ "assignees": value })), &workspaces()).unwrap();
        r.approval
            .approvers
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn assignees_arrive_in_every_shape_a_workflow_renders_an_array() {
        let both = vec![CAROL.to_owned(), BOB.to_owned()];
        let mut sorted = both.clone();
        sorted.sort();
        // A whole-value expression ("@expr"): the array itself.
        assert_eq!(assignees_of(json!([CAROL, BOB])), sorted);
        // An interpolation ("@{expr}"): the array's JSON text, in a string.
        assert_eq!(
            assignees_of(json!(format!("[\"{CAROL}\",\"{BOB}\"]"))),
            sorted
        );
        assert_eq!(
            assignees_of(json!(format!(" [ \"{CAROL}\" ] "))),
            vec![CAROL]
        );
        // A list separated by commas or semicolons, and a single id.
        assert_eq!(assignees_of(json!(format!("{CAROL}, {BOB}"))), sorted);
        assert_eq!(assignees_of(json!(format!("{CAROL};{BOB};"))), sorted);
        assert_eq!(assignees_of(json!(CAROL)), vec![CAROL]);
        // Duplicates and letter case do not make two assignees.
        assert_eq!(
            assignees_of(json!([CAROL, CAROL.to_uppercase()])),
            vec![CAROL]
        );
    }

    #[test]
    fn approvers_is_still_read_as_the_former_name_of_assignees() {
        let mut b: serde_json::Value = serde_json::from_slice(&body(json!({}))).unwrap();
        let assignees = b.as_object_mut().unwrap().remove("assignees").unwrap();
        b["approvers"] = json!([assignees, BOB]);
        let r = parse(&serde_json::to_vec(&b).unwrap(), &workspaces()).unwrap();
        assert_eq!(r.approval.approvers.len(), 2);
        b["approvers"] = json!("not-an-id");
        assert_eq!(field_error(serde_json::to_vec(&b).unwrap()), "approvers");
    }

    #[test]
    fn a_body_naming_both_assignees_and_approvers_is_refused() {
        for approvers in [json!(CAROL), json!(""), json!(null)] {
            let err = parse(&body(json!({"approvers": approvers})), &workspaces()).unwrap_err();
            let BodyError::Field(f) = err else {
                panic!("{err:?}")
            };
            assert_eq!(f.field, "assignees");
            assert!(f.problem.contains("send assignees only"), "{}", f.problem);
        }
    }

    #[test]
    fn without_assignees_the_message_names_the_field_and_its_dynamic_content() {
        let mut b: serde_json::Value = serde_json::from_slice(&body(json!({}))).unwrap();
        b.as_object_mut().unwrap().remove("assignees");
        let err = parse(&serde_json::to_vec(&b).unwrap(), &workspaces()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "assignees: is required: the object ids the approval was assigned to (Purview's Approval.Assigned To)"
        );
        for empty in [json!([]), json!("[]"), json!(" ; ")] {
            assert_eq!(field_error(body(json!({"assignees": empty}))), "assignees");
        }
    }

    #[test]
    fn more_than_the_maximum_of_assignees_is_refused() {
        let ids: Vec<String> = (0..=MAX_ASSIGNEES)
            .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
            .collect();
        assert_eq!(field_error(body(json!({"assignees": ids}))), "assignees");
        let ok = &ids[..MAX_ASSIGNEES];
        assert_eq!(assignees_of(json!(ok)).len(), MAX_ASSIGNEES);
    }

    #[test]
    fn a_wrong_assignee_is_quoted_short_whatever_its_length() {
        let err = parse(
            &body(json!({"assignees": format!("{CAROL},{}", "free text ".repeat(500))})),
            &workspaces(),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("assignees: \"free text"), "{message}");
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn the_designer_form_of_an_array_between_quotes_is_refused_with_the_fix() {
        let text = format!(
            "{{\"requestorId\": \"{ALICE}\", \"assetQualifiedName\": \"databricks://m/catalogs/a/schemas/b/tables/c\", \"approvalOutcome\": \"Approved\", \"assignees\": \"[\"{CAROL}\"]\"}}"
        );
        match parse(text.as_bytes(), &workspaces()).unwrap_err() {
            BodyError::NotJson(message) => assert!(
                message.contains("delete the two quotes around Approval.Assigned To"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_authority_without_a_workspace_is_refused_on_the_asset_field() {
        let err = parse(&body(json!({})), &Workspaces::new(None)).unwrap_err();
        assert!(matches!(err, BodyError::Field(f) if f.field == "assetQualifiedName"));
    }

    #[test]
    fn a_rejected_approval_still_parses_so_policy_can_name_the_rule() {
        let r = parse(&body(json!({"approvalOutcome": "Rejected"})), &workspaces()).unwrap();
        assert_eq!(
            r.approval.outcome,
            ApprovalOutcome::NotApproved("Rejected".into())
        );
    }
}
