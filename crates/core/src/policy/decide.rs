//! The pure decisions: whether an approved request may be provisioned and with what, and whether a
//! resolved principal may receive it. No I/O; the clock is a parameter.

use time::OffsetDateTime;

use super::Policy;
use crate::domain::{
    ACCOUNT_USERS, AccessRequest, ApplicationId, ApprovalOutcome, EntraObjectId, GrantDuration,
    Operator, Principal, PrincipalKind, PrincipalQuery, Privilege, PrivilegeSet, ProvisioningMode,
    RequestSource, Securable, SecurableType,
};

/// What policy grants for a request: the privileges, the length and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// How the access is provisioned.
    pub mode: ProvisioningMode,
    pub privileges: PrivilegeSet,
    pub duration: GrantDuration,
    pub expires_at: OffsetDateTime,
}

/// A refusal by a named rule. `rule` is a stable code (the edge answers 403 with it); `message` tells
/// the requester what was refused and what to ask for instead, with no internal detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}: {message}")]
pub struct Denial {
    pub rule: &'static str,
    pub message: String,
}

impl Denial {
    pub const NOT_APPROVED: &'static str = "not_approved";
    pub const SELF_APPROVAL: &'static str = "self_approval";
    /// Whether the grantee is an approver (or an approver is in the grantee group) could not be
    /// established: the check fails closed.
    pub const SELF_APPROVAL_UNVERIFIABLE: &'static str = "self_approval_unverifiable";
    pub const REQUESTS_FOR_OTHERS_NOT_ALLOWED: &'static str = "requests_for_others_not_allowed";
    pub const SECURABLE_TYPE_NOT_ALLOWED: &'static str = "securable_type_not_allowed";
    pub const SECURABLE_DENIED: &'static str = "securable_denied";
    pub const SECURABLE_NOT_ALLOWED: &'static str = "securable_not_allowed";
    pub const NO_PRIVILEGES_REQUESTED: &'static str = "no_privileges_requested";
    pub const PRIVILEGE_NOT_ALLOWED: &'static str = "privilege_not_allowed";
    pub const DURATION_EXCEEDS_MAXIMUM: &'static str = "duration_exceeds_maximum";
    pub const FORBIDDEN_PRINCIPAL: &'static str = "forbidden_principal";
    pub const GROUP_GRANTS_NOT_ALLOWED: &'static str = "group_grants_not_allowed";
    pub const PROVISIONING_MODE_NOT_ALLOWED: &'static str = "provisioning_mode_not_allowed";
    pub const SHARING_TABLES_ONLY: &'static str = "sharing_tables_only";
    pub const SHARING_NEEDS_OBJECT_ID: &'static str = "sharing_needs_object_id";
    pub const SHARING_FOR_OTHERS_NOT_ALLOWED: &'static str = "sharing_for_others_not_allowed";
    pub const SHARING_NEEDS_A_PERSON: &'static str = "sharing_needs_a_person";

    /// Every rule code, for documentation and tests.
    pub const RULES: [&'static str; 17] = [
        Self::NOT_APPROVED,
        Self::SELF_APPROVAL,
        Self::SELF_APPROVAL_UNVERIFIABLE,
        Self::REQUESTS_FOR_OTHERS_NOT_ALLOWED,
        Self::SECURABLE_TYPE_NOT_ALLOWED,
        Self::SECURABLE_DENIED,
        Self::SECURABLE_NOT_ALLOWED,
        Self::NO_PRIVILEGES_REQUESTED,
        Self::PRIVILEGE_NOT_ALLOWED,
        Self::DURATION_EXCEEDS_MAXIMUM,
        Self::FORBIDDEN_PRINCIPAL,
        Self::GROUP_GRANTS_NOT_ALLOWED,
        Self::PROVISIONING_MODE_NOT_ALLOWED,
        Self::SHARING_TABLES_ONLY,
        Self::SHARING_NEEDS_OBJECT_ID,
        Self::SHARING_FOR_OTHERS_NOT_ALLOWED,
        Self::SHARING_NEEDS_A_PERSON,
    ];

    pub fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
        }
    }
}

/// Decides on a parsed request. The checks run in a fixed order (approval, who approved, for whom,
/// what, which privileges, how long) so that the same request always gets the same rule.
pub fn decide(
    policy: &Policy,
    request: &AccessRequest,
    now: OffsetDateTime,
) -> Result<Decision, Denial> {
    check_approval(policy, request)?;
    check_named_account_users(&request.grantee)?;
    check_securable(policy, &request.securable)?;
    let kind = request.securable.securable_type();
    let rules = policy
        .type_rules(kind)
        .expect("check_securable refused types without rules");

    let privileges = request
        .privileges
        .clone()
        .unwrap_or_else(|| rules.default_privileges.clone());
    let allowed = list(&rules.privileges);
    if privileges.is_empty() {
        return Err(Denial::new(
            Denial::NO_PRIVILEGES_REQUESTED,
            format!(
                "the request names no privileges; ask for {allowed} on the {kind}, or leave privileges out for the default"
            ),
        ));
    }
    if let Some(refused) = privileges.difference(&rules.privileges).next() {
        return Err(Denial::new(
            Denial::PRIVILEGE_NOT_ALLOWED,
            format!("{refused} on a {kind} is not allowed by policy; ask for {allowed} instead"),
        ));
    }

    let maximum = policy.maximum_duration_for(kind);
    let duration = request
        .duration
        .unwrap_or_else(|| policy.default_duration_for(kind));
    // Never clamp: a requester told "granted" must get the length they asked for, or a refusal.
    if duration > maximum {
        return Err(Denial::new(
            Denial::DURATION_EXCEEDS_MAXIMUM,
            format!(
                "{duration} is longer than the maximum for a {kind}; ask for {maximum} or less"
            ),
        ));
    }

    let mode = choose_mode(policy, request)?;
    if mode == ProvisioningMode::DeltaSharing {
        check_sharing(request, &privileges)?;
    }

    Ok(Decision {
        mode,
        privileges,
        duration,
        expires_at: now + duration.as_duration(),
    })
}

/// `account users` named as the grantee is refused before anything is looked up: it need not exist in
/// the account's SCIM listing (it is built in) for the request to be what it is, a grant to everyone.
fn check_named_account_users(grantee: &PrincipalQuery) -> Result<(), Denial> {
    match grantee {
        PrincipalQuery::GroupName { name } if name.trim().eq_ignore_ascii_case(ACCOUNT_USERS) => {
            Err(account_users_denial())
        }
        _ => Ok(()),
    }
}

fn account_users_denial() -> Denial {
    Denial::new(
        Denial::FORBIDDEN_PRINCIPAL,
        "a grant to account users would give every user in the account access; request access for a person, a group or a service principal",
    )
}

/// The request's own mode where policy lets requests choose it (or it is what policy would choose
/// anyway), else policy's choice for the catalog, the workspace, or the default.
fn choose_mode(policy: &Policy, request: &AccessRequest) -> Result<ProvisioningMode, Denial> {
    let rules = policy.provisioning();
    let chosen = rules.chosen_for(
        request.securable.catalog_name().as_str(),
        &request.workspace.name,
    );
    match request.provisioning {
        None => Ok(chosen),
        Some(asked) if asked == chosen || rules.requestable.contains(&asked) => Ok(asked),
        Some(asked) => Err(Denial::new(
            Denial::PROVISIONING_MODE_NOT_ALLOWED,
            format!(
                "policy does not let a request choose {asked} here; leave provisioning out to get {chosen}"
            ),
        )),
    }
}

/// What Delta Sharing can provision: `SELECT` on a table, for a person or application named by Entra
/// object id (the recipient is named from it).
fn check_sharing(request: &AccessRequest, privileges: &PrivilegeSet) -> Result<(), Denial> {
    let kind = request.securable.securable_type();
    if kind != SecurableType::Table {
        return Err(Denial::new(
            Denial::SHARING_TABLES_ONLY,
            format!(
                "Delta Sharing provisions single tables, not a {kind}; ask for a table, or for direct provisioning"
            ),
        ));
    }
    if let Some(refused) = privileges.iter().find(|p| **p != Privilege::Select) {
        return Err(Denial::new(
            Denial::PRIVILEGE_NOT_ALLOWED,
            format!("{refused} cannot be given through Delta Sharing; ask for SELECT instead"),
        ));
    }
    if !matches!(request.grantee, PrincipalQuery::ObjectId { .. }) {
        return Err(Denial::new(
            Denial::SHARING_NEEDS_OBJECT_ID,
            "a Delta Sharing recipient is named from the Entra object id of the person who receives it; name the principal by objectId",
        ));
    }
    // The activation link is a bearer credential, and the answer (and the workflow's email) reaches the
    // requester: on someone else's behalf it would reach the wrong person.
    if request.target.is_some_and(|t| t != request.requester) {
        return Err(Denial::new(
            Denial::SHARING_FOR_OTHERS_NOT_ALLOWED,
            "Delta Sharing access hands out a credential that must reach only the person it is for; the person who needs the access must request it themselves",
        ));
    }
    Ok(())
}

fn check_approval(policy: &Policy, request: &AccessRequest) -> Result<(), Denial> {
    if let ApprovalOutcome::NotApproved(raw) = &request.approval.outcome {
        let raw: String = raw.chars().take(40).collect();
        return Err(Denial::new(
            Denial::NOT_APPROVED,
            format!(
                "the approval outcome is {raw:?}, not Approved; only approved requests are provisioned"
            ),
        ));
    }
    if policy.block_self_approval() && is_self_approved(request) {
        return Err(Denial::new(
            Denial::SELF_APPROVAL,
            "the person who asked for or receives this access also approved it; ask another approver, such as the data owner, to approve",
        ));
    }
    let for_someone_else = request.target.is_some_and(|t| t != request.requester);
    if for_someone_else && !policy.allow_requests_for_others() {
        return Err(Denial::new(
            Denial::REQUESTS_FOR_OTHERS_NOT_ALLOWED,
            "requests on behalf of someone else are not allowed; the person who needs access must request it",
        ));
    }
    Ok(())
}

/// Whether anyone who asked for, or will receive, the access is among its approvers.
///
/// For `grant-access` the calling operator is requester and approver by construction (the call is the
/// approval), so there only the recipient counts: an operator may grant to others, not to themselves.
fn is_self_approved(request: &AccessRequest) -> bool {
    let approvers = &request.approval.approvers;
    let requester =
        request.source != RequestSource::GrantAccess && approvers.contains(&request.requester);
    let target = request.target.is_some_and(|t| approvers.contains(&t));
    let grantee = match &request.grantee {
        PrincipalQuery::ObjectId { id, .. } => approvers.contains(id),
        _ => false,
    };
    requester || target || grantee
}

fn check_securable(policy: &Policy, securable: &Securable) -> Result<(), Denial> {
    let kind = securable.securable_type();
    if policy.type_rules(kind).is_none() {
        let allowed: Vec<&str> = policy.allowed_types().map(|t| t.as_str()).collect();
        return Err(Denial::new(
            Denial::SECURABLE_TYPE_NOT_ALLOWED,
            format!(
                "grants on a {kind} are not allowed by policy; ask for a {} instead",
                allowed.join(" or a ")
            ),
        ));
    }
    let name = securable.full_name();
    // Deny wins over allow, and reaches through inheritance both ways: a denied catalog denies its
    // tables, and a grant on a catalog or schema is refused when it would be inherited by something
    // denied inside it.
    if let Some(pattern) = policy.deny().reaching(securable) {
        let message = if pattern.covers(securable) {
            format!(
                "{kind} {name} is in an area the policy denies; it cannot be requested through uc-access"
            )
        } else {
            format!(
                "a grant on {kind} {name} would be inherited by objects the policy denies; ask for a specific schema or table instead"
            )
        };
        return Err(Denial::new(Denial::SECURABLE_DENIED, message));
    }
    if !policy.allow().is_empty() && policy.allow().covering(securable).is_none() {
        return Err(Denial::new(
            Denial::SECURABLE_NOT_ALLOWED,
            format!(
                "{kind} {name} is outside the catalogs, schemas and tables the policy allows; ask for one inside them"
            ),
        ));
    }
    Ok(())
}

/// Whether an Entra object id may receive access (`principals.forbidden_object_ids`): applied wherever
/// the grantee's object id is known, on every provisioning path.
pub fn check_object_id(policy: &Policy, id: EntraObjectId) -> Result<(), Denial> {
    if policy.principals().forbidden_object_ids.contains(&id) {
        return Err(Denial::new(
            Denial::FORBIDDEN_PRINCIPAL,
            "this principal may not receive grants through uc-access; ask a platform administrator",
        ));
    }
    Ok(())
}

/// Decides whether a resolved principal may receive a grant.
pub fn check_principal(policy: &Policy, principal: &Principal) -> Result<(), Denial> {
    if principal.is_all_account_users() {
        return Err(account_users_denial());
    }
    let rules = policy.principals();
    let name = principal.uc_name();
    // Every forbidden list is kept lower case and matched in any case. User names and application ids
    // are case-insensitive in Unity Catalog anyway. Group display names are case-sensitive there, so
    // `Platform Admins` and `platform admins` can be two groups: forbidding one forbids both, since a
    // look-alike of a forbidden group is more likely a way around the rule than a group to grant to.
    let forbidden = match principal.kind() {
        PrincipalKind::User => rules.forbidden_users.contains(&name.to_lowercase()),
        PrincipalKind::ServicePrincipal => rules
            .forbidden_service_principals
            .contains(&name.to_lowercase()),
        PrincipalKind::Group => rules.forbidden_groups.contains(&name.to_lowercase()),
        // Recipients are named by uc-access itself from an Entra object id; nothing to forbid by name.
        PrincipalKind::Recipient => false,
    };
    if forbidden {
        return Err(Denial::new(
            Denial::FORBIDDEN_PRINCIPAL,
            "this principal may not receive grants through uc-access; ask a platform administrator",
        ));
    }
    if principal.kind() == PrincipalKind::Group && !rules.allow_groups {
        return Err(Denial::new(
            Denial::GROUP_GRANTS_NOT_ALLOWED,
            "grants to groups are not allowed by policy; request access for each person instead",
        ));
    }
    Ok(())
}

fn list(privileges: &PrivilegeSet) -> String {
    privileges
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// After resolution: the principal receiving access may not be an approver. This catches grantees named
/// by user name or application id, whose Entra object id is only known once resolved.
///
/// `entra_id` is the principal's Entra object id as far as it is established: the `externalId`
/// Databricks holds for it, or the object id it was found by. When it is unknown the principal cannot
/// be compared with the approvers, and the answer is a denial (`self_approval_unverifiable`) unless the
/// operator's token proves them different: an application calling as itself is not a user, nor a
/// service principal with another application id; a person is never a service principal.
///
/// A user name is never taken as proof either way. The operator's `upn` / `preferred_username` is a
/// display value: it can change, it need not be the Databricks `userName` (often the mail address), and
/// one person can reach Databricks under more than one name, so an unequal name shows nothing.
pub fn check_not_self_approved(
    policy: &Policy,
    request: &AccessRequest,
    principal: &Principal,
    entra_id: Option<EntraObjectId>,
) -> Result<(), Denial> {
    if !policy.block_self_approval() {
        return Ok(());
    }
    let approvers = &request.approval.approvers;
    if entra_id.is_some_and(|id| approvers.contains(&id)) {
        return Err(self_approval_denial());
    }
    let operator = request.approval.operator;
    let established = entra_id.is_some();
    let proven_other = match principal.kind() {
        // Members are checked against the approvers separately; recipients are named by uc-access.
        PrincipalKind::Group | PrincipalKind::Recipient => true,
        PrincipalKind::ServicePrincipal => {
            let named = |id: ApplicationId| id.to_string() == principal.uc_name();
            match operator {
                Some(Operator::Application { app_id }) if named(app_id) => {
                    return Err(self_approval_denial());
                }
                // The client application the operator calls through: granting to it would give
                // the access to the caller's own channel rather than to another principal.
                Some(Operator::Person { via }) if named(via) => {
                    return Err(Denial::new(
                        Denial::SELF_APPROVAL,
                        "this service principal is the application the calling operator signed in through; grant to another principal, or ask another approver",
                    ));
                }
                Some(_) => true,
                None => established,
            }
        }
        PrincipalKind::User => {
            established || matches!(operator, Some(Operator::Application { .. }))
        }
    };
    if proven_other {
        return Ok(());
    }
    Err(Denial::new(
        Denial::SELF_APPROVAL_UNVERIFIABLE,
        format!(
            "{} has no Entra object id in the Databricks account (no externalId: identities added by e-mail, Terraform or just in time have none), so uc-access cannot establish that it is not the approver; name it by objectId once its Databricks identity carries one (provisioned from Entra ID, or through automatic identity management)",
            principal
        ),
    ))
}

fn self_approval_denial() -> Denial {
    Denial::new(
        Denial::SELF_APPROVAL,
        "the person or application receiving this access also approved it; ask another approver",
    )
}
