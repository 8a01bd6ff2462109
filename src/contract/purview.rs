//! The `purview-callback` body: what a Purview workflow's HTTP action sends after approval, built from
//! Purview's dynamic content (see docs/callback-contract.md for the ready-to-paste body).
//!
//! No free-text field is part of the contract: Purview pastes values into the JSON as plain text, so a
//! comment with a quote or newline would break the body.

use super::fields::{BodyError, FieldError, Fields};
use super::qualified_name;
use crate::domain::{
    AccessRequest, Approval, ApprovalOutcome, EntraObjectId, PrincipalQuery, RequestSource,
    Workspaces,
};

/// Most approvers accepted in one body (a workflow assigns a handful).
pub const MAX_APPROVERS: usize = 50;

pub const FIELDS: [&str; 11] = [
    "requestorId",
    "recipientId",
    "assetQualifiedName",
    "approvalOutcome",
    "approvers",
    "privileges",
    "duration",
    "idempotencyKey",
    "approvalId",
    "dryRun",
    "provisioning",
];

/// Parses a callback body into an access request in one of the configured workspaces.
pub fn parse(body: &[u8], workspaces: &Workspaces) -> Result<AccessRequest, BodyError> {
    let f = Fields::parse(body, &FIELDS)?;
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
    let approvers = approvers(&f)?;
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
            approvers,
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

/// Approver object ids: a JSON array, or one string separated by commas or semicolons (how Purview
/// renders `Approval.Assigned To` in a body is unverified, so both are accepted).
fn approvers(f: &Fields) -> Result<Vec<EntraObjectId>, FieldError> {
    let items = f.opt_list("approvers")?.ok_or_else(|| {
        FieldError::new("approvers", "is required (Purview's Approval.Assigned To)")
    })?;
    if items.len() > MAX_APPROVERS {
        return Err(FieldError::new(
            "approvers",
            format!("lists more than {MAX_APPROVERS} approvers"),
        ));
    }
    let mut ids = items
        .iter()
        .map(|raw| {
            EntraObjectId::parse(raw)
                .map_err(|e| FieldError::new("approvers", format!("{raw:?} {e}")))
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
            "approvers": CAROL,
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
                         "approvers": [CAROL, BOB, CAROL]})),
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
            field_error(body(json!({"approvers": "carol@contoso.com"}))),
            "approvers"
        );
        assert_eq!(field_error(body(json!({"approvers": ""}))), "approvers");
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
