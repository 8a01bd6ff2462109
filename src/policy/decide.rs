//! Pure decisions: a request and a time in, a grant decision or a denial naming the rule out.

use time::OffsetDateTime;

use super::Policy;
use crate::domain::{
    AccessRequest, ApprovalOutcome, EntraObjectId, GrantDuration, Principal, PrincipalKind,
    PrincipalQuery, PrivilegeSet, RequestSource,
};

/// What policy allows for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub privileges: PrivilegeSet,
    pub duration: GrantDuration,
    pub expires_at: OffsetDateTime,
}

/// A refusal: `rule` is stable (callers branch on it), `message` is for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub rule: &'static str,
    pub message: String,
}

fn deny(rule: &'static str, message: impl Into<String>) -> Denial {
    Denial {
        rule,
        message: message.into(),
    }
}

/// Decides on a parsed request at `now`.
pub fn decide(
    policy: &Policy,
    request: &AccessRequest,
    now: OffsetDateTime,
) -> Result<Decision, Denial> {
    if let ApprovalOutcome::NotApproved(raw) = &request.approval.outcome {
        return Err(deny(
            "not_approved",
            format!("the approval outcome is {raw:?}; only Approved requests are granted"),
        ));
    }
    // For grant-access the caller is both requester and approver by construction: there the check is
    // that the grantee is not the caller (below for object ids, after resolution for other names).
    if policy.block_self_approval && request.source == RequestSource::PurviewCallback {
        let approvers = &request.approval.approvers;
        if approvers.contains(&request.requester)
            || request.target.is_some_and(|t| approvers.contains(&t))
        {
            return Err(deny(
                "self_approval",
                "the requester (or the person access is for) is among the approvers; someone else must approve",
            ));
        }
    }
    if policy.block_self_approval
        && let PrincipalQuery::ObjectId { id, .. } = &request.grantee
        && request.source == RequestSource::GrantAccess
        && request.approval.approvers.contains(id)
    {
        return Err(deny(
            "self_approval",
            "an operator may not grant access to themselves; ask another operator",
        ));
    }
    if request.target.is_some() && !policy.allow_requests_for_others {
        return Err(deny(
            "requests_for_others_not_allowed",
            "this deployment does not grant access requested on someone else's behalf; the person should ask themselves",
        ));
    }
    let kind = request.securable.securable_type();
    if !policy.securable_types.contains(&kind) {
        let allowed: Vec<&str> = policy.securable_types.iter().map(|t| t.as_str()).collect();
        return Err(deny(
            "securable_type_not_allowed",
            format!(
                "access to a whole {kind} is not granted here; ask for a {}",
                allowed.join(" or ")
            ),
        ));
    }
    if let Some(pattern) = policy.deny.matching(&request.securable) {
        return Err(deny(
            "securable_denied",
            format!(
                "{} is excluded from automatic grants (policy pattern {pattern:?}); ask the data owner",
                request.securable
            ),
        ));
    }
    if !policy.allow.is_empty() && policy.allow.matching(&request.securable).is_none() {
        return Err(deny(
            "securable_not_allowed",
            format!(
                "{} is not among the securables granted automatically; ask the data owner",
                request.securable
            ),
        ));
    }
    let allowed = policy.privileges_for(kind);
    let privileges = match &request.privileges {
        Some(asked) => asked.clone(),
        None => policy
            .default_privileges
            .get(&kind)
            .cloned()
            .unwrap_or_default(),
    };
    if let Some(refused) = privileges.iter().find(|p| !allowed.contains(p)) {
        let allowed: Vec<&str> = allowed.iter().map(|p| p.as_str()).collect();
        return Err(deny(
            "privilege_not_allowed",
            format!(
                "{refused} on a {kind} is not granted automatically; allowed: {}",
                allowed.join(", ")
            ),
        ));
    }
    let duration = request.duration.unwrap_or(policy.default_duration);
    if duration > policy.maximum_duration {
        return Err(deny(
            "duration_exceeds_maximum",
            format!(
                "{duration} is longer than the maximum of {}; ask for less",
                policy.maximum_duration
            ),
        ));
    }
    Ok(Decision {
        privileges,
        duration,
        expires_at: now + duration.as_duration(),
    })
}

/// After resolution: the principal's Entra object id may not be among the approvers (covers grantees
/// named by user name or application id, and Purview targets).
pub fn check_not_self_approved(
    policy: &Policy,
    request: &AccessRequest,
    external_id: Option<&str>,
) -> Result<(), Denial> {
    let Some(id) = external_id.and_then(|raw| EntraObjectId::parse(raw).ok()) else {
        return Ok(());
    };
    if policy.block_self_approval && request.approval.approvers.contains(&id) {
        return Err(deny(
            "self_approval",
            "the person or application receiving access is among the approvers; someone else must approve",
        ));
    }
    Ok(())
}

/// Checks the resolved principal: never `account users`, nothing forbidden, groups only if allowed.
pub fn check_principal(policy: &Policy, principal: &Principal) -> Result<(), Denial> {
    if principal.is_all_account_users() {
        return Err(deny(
            "forbidden_principal",
            "a grant to `account users` would give every user in the account access",
        ));
    }
    if policy
        .forbidden_principals
        .iter()
        .any(|f| principal.matches_uc_name(f))
    {
        return Err(deny(
            "forbidden_principal",
            format!(
                "{} may not receive grants from uc-access",
                principal.uc_name()
            ),
        ));
    }
    if principal.kind() == PrincipalKind::Group && !policy.allow_groups {
        return Err(deny(
            "group_grants_not_allowed",
            "grants to groups are not made automatically here; request access for a person",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Approval, EntraObjectId, PrincipalQuery, Privilege, RequestSource, Securable,
        SecurableType, WorkspaceRef,
    };
    use crate::policy::Patterns;

    const ALICE: &str = "5b1f2e3d-4c5b-4a69-8e7f-0a1b2c3d4e5f";
    const BOB: &str = "6c2a3f4e-5d6c-4b7a-9f80-1b2c3d4e5f60";
    const CAROL: &str = "7d3b4a5f-6e7d-4c8b-8a91-2c3d4e5f6071";

    fn id(s: &str) -> EntraObjectId {
        EntraObjectId::parse(s).unwrap()
    }

    fn request(kind: SecurableType, name: &str) -> AccessRequest {
        AccessRequest {
            requester: id(ALICE),
            target: None,
            grantee: PrincipalQuery::object_id(id(ALICE)),
            workspace: WorkspaceRef {
                name: "default".into(),
                host: url::Url::parse("https://adb-1.1.azuredatabricks.net").unwrap(),
            },
            securable: Securable::parse(kind, name).unwrap(),
            privileges: None,
            duration: None,
            approval: Approval {
                outcome: ApprovalOutcome::Approved,
                approvers: vec![id(CAROL)],
            },
            idempotency_key: None,
            dry_run: false,
            source: RequestSource::PurviewCallback,
        }
    }

    fn table() -> AccessRequest {
        request(SecurableType::Table, "sales.reporting.orders")
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-23 10:00 UTC)
    }

    fn rule(policy: &Policy, r: &AccessRequest) -> &'static str {
        decide(policy, r, now()).unwrap_err().rule
    }

    #[test]
    fn the_default_policy_grants_select_on_a_table_for_thirty_days() {
        let d = decide(&Policy::default(), &table(), now()).unwrap();
        assert_eq!(d.privileges, PrivilegeSet::from([Privilege::Select]));
        assert_eq!(d.duration.to_string(), "P30D");
        assert_eq!(d.expires_at, now() + time::Duration::days(30));
    }

    #[test]
    fn the_default_policy_refuses_escalating_privileges() {
        for p in [
            Privilege::Modify,
            Privilege::AllPrivileges,
            Privilege::Manage,
            Privilege::ApplyTag,
        ] {
            let mut r = table();
            r.privileges = Some(PrivilegeSet::from([p]));
            assert_eq!(rule(&Policy::default(), &r), "privilege_not_allowed", "{p}");
        }
    }

    #[test]
    fn only_approved_requests_are_granted() {
        let mut r = table();
        r.approval.outcome = ApprovalOutcome::NotApproved("Rejected".into());
        assert_eq!(rule(&Policy::default(), &r), "not_approved");
    }

    #[test]
    fn the_requester_or_the_target_may_not_approve() {
        let mut r = table();
        r.approval.approvers = vec![id(CAROL), id(ALICE)];
        assert_eq!(rule(&Policy::default(), &r), "self_approval");
        let mut r = table();
        r.target = Some(id(BOB));
        r.approval.approvers = vec![id(BOB)];
        assert_eq!(rule(&Policy::default(), &r), "self_approval");
        let open = Policy {
            block_self_approval: false,
            ..Policy::default()
        };
        assert!(decide(&open, &r, now()).is_ok());
    }

    #[test]
    fn an_operator_may_not_grant_to_themselves() {
        let mut r = table();
        r.source = RequestSource::GrantAccess;
        r.requester = id(CAROL);
        r.approval.approvers = vec![id(CAROL)];
        r.grantee = PrincipalQuery::object_id(id(ALICE));
        assert!(decide(&Policy::default(), &r, now()).is_ok());
        r.grantee = PrincipalQuery::object_id(id(CAROL));
        assert_eq!(rule(&Policy::default(), &r), "self_approval");
        r.grantee = PrincipalQuery::user_name("carol@contoso.com").unwrap();
        assert!(decide(&Policy::default(), &r, now()).is_ok());
        assert_eq!(
            check_not_self_approved(&Policy::default(), &r, Some(CAROL))
                .unwrap_err()
                .rule,
            "self_approval"
        );
        assert!(check_not_self_approved(&Policy::default(), &r, Some(ALICE)).is_ok());
        assert!(check_not_self_approved(&Policy::default(), &r, None).is_ok());
    }

    #[test]
    fn requests_for_others_can_be_turned_off() {
        let mut r = table();
        r.target = Some(id(BOB));
        assert!(decide(&Policy::default(), &r, now()).is_ok());
        let strict = Policy {
            allow_requests_for_others: false,
            ..Policy::default()
        };
        assert_eq!(rule(&strict, &r), "requests_for_others_not_allowed");
    }

    #[test]
    fn catalogs_and_schemas_are_refused_by_default() {
        assert_eq!(
            rule(
                &Policy::default(),
                &request(SecurableType::Catalog, "sales")
            ),
            "securable_type_not_allowed"
        );
        assert_eq!(
            rule(
                &Policy::default(),
                &request(SecurableType::Schema, "sales.reporting")
            ),
            "securable_type_not_allowed"
        );
    }

    #[test]
    fn a_deny_pattern_on_a_parent_denies_the_table_and_deny_wins_over_allow() {
        let policy = Policy {
            allow: Patterns::new(vec!["sales.*".into(), "hr".into()]).unwrap(),
            deny: Patterns::new(vec![
                "hr.people.salaries".into(),
                "*.pii_*".into(),
                "SALES.RAW".into(),
            ])
            .unwrap(),
            ..Policy::default()
        };
        assert!(decide(&policy, &table(), now()).is_ok());
        assert!(
            decide(
                &policy,
                &request(SecurableType::Table, "hr.people.employees"),
                now()
            )
            .is_ok()
        );
        assert_eq!(
            rule(
                &policy,
                &request(SecurableType::Table, "hr.people.salaries")
            ),
            "securable_denied"
        );
        assert_eq!(
            rule(
                &policy,
                &request(SecurableType::Table, "sales.reporting.pii_emails")
            ),
            "securable_denied"
        );
        assert_eq!(
            rule(&policy, &request(SecurableType::Table, "sales.raw.events")),
            "securable_denied"
        );
        assert_eq!(
            rule(&policy, &request(SecurableType::Table, "main.default.demo")),
            "securable_not_allowed"
        );
    }

    #[test]
    fn durations_default_and_never_exceed_the_maximum() {
        let mut r = table();
        r.duration = Some(GrantDuration::parse("P90D").unwrap());
        assert!(decide(&Policy::default(), &r, now()).is_ok());
        r.duration = Some(GrantDuration::parse("P91D").unwrap());
        assert_eq!(rule(&Policy::default(), &r), "duration_exceeds_maximum");
        r.duration = Some(GrantDuration::parse("PT8H").unwrap());
        assert_eq!(
            decide(&Policy::default(), &r, now()).unwrap().expires_at,
            now() + time::Duration::hours(8)
        );
    }

    #[test]
    fn account_users_forbidden_names_and_groups_are_checked_on_the_principal() {
        let p = Policy {
            forbidden_principals: vec!["Contractors".into(), "EVE@contoso.com".into()],
            ..Policy::default()
        };
        let deny_rule = |principal: Principal, policy: &Policy| {
            check_principal(policy, &principal).err().map(|d| d.rule)
        };
        assert_eq!(
            deny_rule(Principal::group("account users").unwrap(), &p),
            Some("forbidden_principal")
        );
        assert_eq!(
            deny_rule(Principal::group("Contractors").unwrap(), &p),
            Some("forbidden_principal")
        );
        assert_eq!(
            deny_rule(Principal::group("contractors").unwrap(), &p),
            None,
            "groups are case-sensitive"
        );
        assert_eq!(
            deny_rule(Principal::user("eve@contoso.com").unwrap(), &p),
            Some("forbidden_principal")
        );
        assert_eq!(
            deny_rule(Principal::user("alice@contoso.com").unwrap(), &p),
            None
        );
        let no_groups = Policy {
            allow_groups: false,
            ..Policy::default()
        };
        assert_eq!(
            deny_rule(Principal::group("data-analysts").unwrap(), &no_groups),
            Some("group_grants_not_allowed")
        );
    }

    #[test]
    fn a_renewal_extends_but_never_beyond_the_maximum_and_never_shortens() {
        let p = Policy::default();
        let d30 = GrantDuration::days(30).unwrap();
        let current = now() + time::Duration::days(5);
        assert_eq!(
            p.renewal_expiry(current, d30, now()),
            now() + time::Duration::days(30)
        );
        let far = now() + time::Duration::days(80);
        assert_eq!(p.renewal_expiry(far, d30, now()), far);
        let long = Policy {
            maximum_duration: GrantDuration::days(10).unwrap(),
            ..Policy::default()
        };
        assert_eq!(
            long.renewal_expiry(current, d30, now()),
            now() + time::Duration::days(10)
        );
    }
}
