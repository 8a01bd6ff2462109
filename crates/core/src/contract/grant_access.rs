//! The `grant-access` body: an operator (or the Power Automate connector) asks for a grant directly,
//! naming the principal and the securable. The caller's own object id stands as requester and approver,
//! so policy's self-approval rule stops operators granting to themselves.

use super::fields::{BodyError, FieldError, Fields};
use super::{principal, qualified_name};
use crate::domain::{
    AccessRequest, Approval, ApprovalOutcome, EntraObjectId, RequestSource, Securable,
    SecurableType, WorkspaceRef, Workspaces,
};

pub const FIELDS: [&str; 10] = [
    "principal",
    "securable",
    "workspace",
    "assetQualifiedName",
    "privileges",
    "duration",
    "idempotencyKey",
    "approvalId",
    "dryRun",
    "provisioning",
];

/// The fields of the `securable` object.
pub const SECURABLE_FIELDS: [&str; 2] = ["type", "fullName"];

/// Parses a body for a caller whose object id is `caller`.
pub fn parse(
    body: &[u8],
    workspaces: &Workspaces,
    caller: EntraObjectId,
) -> Result<AccessRequest, BodyError> {
    let f = Fields::parse(body, &FIELDS)?;
    let grantee = principal::parse_object(
        f.opt_object("principal")?.ok_or_else(|| {
            FieldError::new(
                "principal",
                "is required, e.g. {\"userName\": \"alice@contoso.com\"}",
            )
        })?,
        "principal.",
    )?;
    let (workspace, securable) = target(&f, workspaces)?;
    let securable_type = securable.securable_type();
    Ok(AccessRequest {
        requester: caller,
        target: None,
        grantee,
        workspace,
        privileges: f.opt_privileges("privileges", securable_type)?,
        securable,
        duration: f.opt_duration("duration")?,
        approval: Approval {
            outcome: ApprovalOutcome::Approved,
            approvers: vec![caller],
            id: f.opt_key("approvalId")?,
            // The body cannot say how the operator signed in: the function sets it from the token.
            operator: None,
        },
        idempotency_key: f.opt_key("idempotencyKey")?,
        dry_run: f.opt_bool("dryRun")?.unwrap_or(false),
        provisioning: f.opt_mode("provisioning")?,
        source: RequestSource::GrantAccess,
    })
}

/// The securable: `{"securable": {"type", "fullName"}, "workspace": <name>}` or `assetQualifiedName`.
fn target(f: &Fields, workspaces: &Workspaces) -> Result<(WorkspaceRef, Securable), FieldError> {
    match (f.opt_object("securable")?, f.opt_str("assetQualifiedName")?) {
        (Some(_), Some(_)) | (None, None) => Err(FieldError::new(
            "securable|assetQualifiedName",
            "give exactly one of these fields",
        )),
        (None, Some(raw)) => {
            if f.opt_str("workspace")?.is_some() {
                return Err(FieldError::new(
                    "workspace",
                    "comes from assetQualifiedName's authority; do not give both",
                ));
            }
            let asset =
                qualified_name::parse(raw).map_err(|e| FieldError::new("assetQualifiedName", e))?;
            let workspace = workspaces
                .for_authority(&asset.authority)
                .map_err(|e| FieldError::new("assetQualifiedName", e))?;
            Ok((workspace.clone(), asset.securable))
        }
        (Some(obj), None) => {
            let inner = Fields::from_map(obj.clone(), &SECURABLE_FIELDS).map_err(|e| match e {
                BodyError::Field(x) => {
                    FieldError::new(&format!("securable.{}", x.field), x.problem)
                }
                BodyError::NotJson(p) => FieldError::new("securable", p),
            })?;
            let kind_raw = inner
                .str("type")
                .map_err(|e| FieldError::new("securable.type", e.problem))?;
            let kind = SecurableType::parse(kind_raw).ok_or_else(|| {
                FieldError::new(
                    "securable.type",
                    format!("{kind_raw:?} is not one of catalog, schema, table"),
                )
            })?;
            let full_name = inner
                .str("fullName")
                .map_err(|e| FieldError::new("securable.fullName", e.problem))?;
            let securable = Securable::parse(kind, full_name)
                .map_err(|e| FieldError::new("securable.fullName", e))?;
            let workspace = workspaces
                .by_name(f.opt_str("workspace")?)
                .map_err(|e| FieldError::new("workspace", e))?;
            Ok((workspace.clone(), securable))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PrincipalQuery;
    use serde_json::json;

    fn workspaces() -> Workspaces {
        Workspaces::new(Some(WorkspaceRef {
            name: "default".into(),
            host: url::Url::parse("https://adb-1.1.azuredatabricks.net").unwrap(),
        }))
    }

    fn operator() -> EntraObjectId {
        EntraObjectId::parse("10ca1000-0000-4000-8000-0000000000b1").unwrap()
    }

    fn parse_json(v: serde_json::Value) -> Result<AccessRequest, BodyError> {
        parse(&serde_json::to_vec(&v).unwrap(), &workspaces(), operator())
    }

    fn field(v: serde_json::Value) -> String {
        match parse_json(v).unwrap_err() {
            BodyError::Field(f) => f.field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_direct_request_names_the_principal_and_the_securable() {
        let r = parse_json(json!({
            "principal": {"userName": "alice.analyst@contoso.com"},
            "securable": {"type": "table", "fullName": "sales.reporting.orders"},
            "privileges": ["SELECT"], "duration": "PT8H", "dryRun": true
        }))
        .unwrap();
        assert_eq!(
            r.grantee,
            PrincipalQuery::user_name("alice.analyst@contoso.com").unwrap()
        );
        assert_eq!(r.workspace.name, "default");
        assert_eq!(r.requester, operator());
        assert_eq!(r.approval.approvers, vec![operator()]);
        assert!(r.dry_run);
    }

    #[test]
    fn the_securable_may_be_a_purview_qualified_name() {
        let r = parse_json(json!({
            "principal": {"groupName": "data-analysts"},
            "assetQualifiedName": "databricks://m/catalogs/sales/schemas/reporting"
        }))
        .unwrap();
        assert_eq!(r.securable.full_name(), "sales.reporting");
    }

    #[test]
    fn errors_name_the_nested_field() {
        assert_eq!(
            field(json!({"securable": {"type":"table","fullName":"a.b.c"}})),
            "principal"
        );
        assert_eq!(
            field(
                json!({"principal": {"userName": "x"}, "securable": {"type":"table","fullName":"a.b.c"}})
            ),
            "principal.userName"
        );
        assert_eq!(
            field(
                json!({"principal": {"userName": "a@b.com"}, "securable": {"type":"volume","fullName":"a.b.c"}})
            ),
            "securable.type"
        );
        assert_eq!(
            field(
                json!({"principal": {"userName": "a@b.com"}, "securable": {"type":"table","fullName":"a.b"}})
            ),
            "securable.fullName"
        );
        assert_eq!(
            field(
                json!({"principal": {"userName": "a@b.com"}, "securable": {"type":"table","fullName":"a.b.c","x":1}})
            ),
            "securable.x"
        );
        assert_eq!(
            field(
                json!({"principal": {"userName": "a@b.com"}, "securable": {"type":"table","fullName":"a.b.c"}, "workspace": "nope"})
            ),
            "workspace"
        );
        assert_eq!(
            field(json!({"principal": {"userName": "a@b.com"}})),
            "securable|assetQualifiedName"
        );
    }
}
