//! Every decision rule alone, the defaults, pattern edge cases and renewal.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{Decision, Denial, Policy, check_not_self_approved, check_principal, decide};
use crate::domain::{
    AccessRequest, ApplicationId, Approval, ApprovalOutcome, EntraObjectId, GrantDuration,
    Operator, Principal, PrincipalQuery, Privilege, PrivilegeSet, RequestSource, Securable,
    SecurableType, WorkspaceRef,
};

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);
const ALICE: &str = "11111111-1111-1111-1111-111111111111";
const BOB: &str = "22222222-2222-2222-2222-222222222222";
const OWNER: &str = "33333333-3333-3333-3333-333333333333";

fn oid(raw: &str) -> EntraObjectId {
    EntraObjectId::parse(raw).unwrap()
}

fn securable(kind: SecurableType, name: &str) -> Securable {
    Securable::parse(kind, name).unwrap()
}

fn table(name: &str) -> Securable {
    securable(SecurableType::Table, name)
}

/// Alice asks for herself, the owner approves, on `main.sales.orders`, naming nothing else.
fn request() -> AccessRequest {
    AccessRequest {
        requester: oid(ALICE),
        target: None,
        grantee: PrincipalQuery::object_id(oid(ALICE)),
        workspace: WorkspaceRef {
            name: "prod".into(),
            host: "https://adb-1.azuredatabricks.net".parse().unwrap(),
        },
        securable: table("main.sales.orders"),
        privileges: None,
        duration: None,
        approval: Approval {
            id: None,
            outcome: ApprovalOutcome::Approved,
            approvers: vec![oid(OWNER)],
            operator: None,
        },
        idempotency_key: None,
        dry_run: false,
        source: RequestSource::PurviewCallback,
        provisioning: None,
    }
}

fn on(securable: Securable) -> AccessRequest {
    AccessRequest {
        securable,
        ..request()
    }
}

fn policy(toml: &str) -> Policy {
    Policy::from_toml(toml).unwrap()
}

fn privileges(list: &[Privilege]) -> Option<PrivilegeSet> {
    Some(list.iter().copied().collect())
}

fn days(n: i64) -> GrantDuration {
    GrantDuration::days(n).unwrap()
}

fn rule(result: Result<Decision, Denial>) -> &'static str {
    result.expect_err("expected a denial").rule
}

#[test]
fn the_default_policy_grants_select_on_a_table_for_thirty_days() {
    let decision = decide(&Policy::default(), &request(), NOW).unwrap();
    assert_eq!(decision.privileges, PrivilegeSet::from([Privilege::Select]));
    assert_eq!(decision.duration, days(30));
    assert_eq!(decision.expires_at, datetime!(2025-07-01 12:00 UTC));
}

#[test]
fn the_expiry_is_now_plus_the_requested_duration() {
    let r = AccessRequest {
        duration: Some(GrantDuration::parse("PT8H").unwrap()),
        ..request()
    };
    let decision = decide(&Policy::default(), &r, NOW).unwrap();
    assert_eq!(decision.expires_at, NOW + Duration::hours(8));
}

#[test]
fn the_default_policy_refuses_catalogs_and_schemas_and_says_to_ask_for_a_table() {
    for kind in [SecurableType::Catalog, SecurableType::Schema] {
        let name = if kind == SecurableType::Catalog {
            "main"
        } else {
            "main.sales"
        };
        let denial = decide(&Policy::default(), &on(securable(kind, name)), NOW).unwrap_err();
        assert_eq!(denial.rule, "securable_type_not_allowed");
        assert!(
            denial.message.contains("ask for a table"),
            "{}",
            denial.message
        );
    }
}

#[test]
fn the_default_policy_refuses_every_privilege_but_select() {
    for p in [
        Privilege::AllPrivileges,
        Privilege::Manage,
        Privilege::Modify,
        Privilege::ApplyTag,
        Privilege::Refresh,
    ] {
        let r = AccessRequest {
            privileges: privileges(&[Privilege::Select, p]),
            ..request()
        };
        let denial = decide(&Policy::default(), &r, NOW).unwrap_err();
        assert_eq!(denial.rule, "privilege_not_allowed", "{p}");
        assert!(denial.message.contains(p.as_str()), "{}", denial.message);
        assert!(
            denial.message.contains("ask for SELECT"),
            "{}",
            denial.message
        );
    }
}

#[test]
fn asking_for_exactly_select_is_granted_as_asked() {
    let r = AccessRequest {
        privileges: privileges(&[Privilege::Select]),
        ..request()
    };
    assert_eq!(
        decide(&Policy::default(), &r, NOW).unwrap().privileges,
        PrivilegeSet::from([Privilege::Select])
    );
}

#[test]
fn an_empty_privilege_list_is_refused_rather_than_read_as_the_default() {
    let r = AccessRequest {
        privileges: Some(PrivilegeSet::new()),
        ..request()
    };
    assert_eq!(
        rule(decide(&Policy::default(), &r, NOW)),
        "no_privileges_requested"
    );
}

#[test]
fn a_duration_over_the_maximum_is_refused_not_clamped() {
    let r = AccessRequest {
        duration: Some(days(91)),
        ..request()
    };
    let denial = decide(&Policy::default(), &r, NOW).unwrap_err();
    assert_eq!(denial.rule, "duration_exceeds_maximum");
    assert!(
        denial.message.contains("P90D or less"),
        "{}",
        denial.message
    );
}

#[test]
fn a_duration_of_exactly_the_maximum_is_granted() {
    let r = AccessRequest {
        duration: Some(days(90)),
        ..request()
    };
    assert_eq!(
        decide(&Policy::default(), &r, NOW).unwrap().duration,
        days(90)
    );
}

#[test]
fn an_outcome_other_than_approved_is_refused_naming_it() {
    for raw in ["Rejected", "Canceled", ""] {
        let mut r = request();
        r.approval.outcome = ApprovalOutcome::parse(raw);
        let denial = decide(&Policy::default(), &r, NOW).unwrap_err();
        assert_eq!(denial.rule, "not_approved");
        assert!(
            denial.message.contains(&format!("{raw:?}")),
            "{}",
            denial.message
        );
    }
}

#[test]
fn a_requester_who_approved_their_own_request_is_refused() {
    let mut r = request();
    r.approval.approvers = vec![oid(OWNER), oid(ALICE)];
    assert_eq!(rule(decide(&Policy::default(), &r, NOW)), "self_approval");
}

#[test]
fn a_target_who_approved_a_request_made_for_them_is_refused() {
    let mut r = request();
    r.target = Some(oid(BOB));
    r.grantee = PrincipalQuery::object_id(oid(BOB));
    r.approval.approvers = vec![oid(BOB)];
    assert_eq!(rule(decide(&Policy::default(), &r, NOW)), "self_approval");
}

#[test]
fn a_requester_who_approved_a_request_they_made_for_someone_else_is_refused() {
    let mut r = request();
    r.target = Some(oid(BOB));
    r.grantee = PrincipalQuery::object_id(oid(BOB));
    r.approval.approvers = vec![oid(ALICE)];
    assert_eq!(rule(decide(&Policy::default(), &r, NOW)), "self_approval");
}

#[test]
fn self_approval_is_allowed_only_when_the_policy_turns_the_block_off() {
    let mut r = request();
    r.approval.approvers = vec![oid(ALICE)];
    assert!(decide(&policy("block_self_approval = false"), &r, NOW).is_ok());
}

#[test]
fn an_operator_may_grant_to_someone_named_by_user_name_but_not_to_their_own_object_id() {
    let mut r = request();
    r.source = RequestSource::GrantAccess;
    r.approval.approvers = vec![oid(ALICE)];
    r.grantee = PrincipalQuery::user_name("bob@contoso.com").unwrap();
    assert!(decide(&Policy::default(), &r, NOW).is_ok());
    r.grantee = PrincipalQuery::object_id(oid(ALICE));
    assert_eq!(rule(decide(&Policy::default(), &r, NOW)), "self_approval");
}

#[test]
fn requests_for_someone_else_are_allowed_by_default_and_can_be_switched_off() {
    let mut r = request();
    r.target = Some(oid(BOB));
    r.grantee = PrincipalQuery::object_id(oid(BOB));
    assert!(decide(&Policy::default(), &r, NOW).is_ok());
    let strict = policy("allow_requests_for_others = false");
    assert_eq!(
        rule(decide(&strict, &r, NOW)),
        "requests_for_others_not_allowed"
    );
    // Naming oneself as the target is not a request for someone else.
    r.target = Some(oid(ALICE));
    r.grantee = PrincipalQuery::object_id(oid(ALICE));
    assert!(decide(&strict, &r, NOW).is_ok());
}

#[test]
fn approval_is_checked_before_anything_else() {
    let mut r = on(securable(SecurableType::Catalog, "main"));
    r.approval.outcome = ApprovalOutcome::parse("Rejected");
    r.duration = Some(days(365));
    assert_eq!(rule(decide(&Policy::default(), &r, NOW)), "not_approved");
}

#[test]
fn a_deny_on_a_catalog_denies_its_schemas_and_tables() {
    let p = policy(
        "[securables.catalog]\nprivileges = [\"SELECT\"]\n[securables.schema]\nprivileges = [\"SELECT\"]\n[securables.table]\nprivileges = [\"SELECT\"]\n[names]\ndeny = [\"hr\"]",
    );
    for r in [
        on(securable(SecurableType::Catalog, "hr")),
        on(securable(SecurableType::Schema, "hr.people")),
        on(table("HR.people.salaries")),
    ] {
        assert_eq!(
            rule(decide(&p, &r, NOW)),
            "securable_denied",
            "{}",
            r.securable
        );
    }
    assert!(decide(&p, &on(table("hr2.people.salaries")), NOW).is_ok());
}

#[test]
fn a_deny_inside_a_catalog_refuses_a_grant_on_the_catalog_that_would_be_inherited() {
    let p = policy(
        "[securables.catalog]\nprivileges = [\"SELECT\"]\n[securables.schema]\nprivileges = [\"SELECT\"]\n[securables.table]\nprivileges = [\"SELECT\"]\n[names]\ndeny = [\"main.*.pii_*\"]",
    );
    let denial = decide(&p, &on(securable(SecurableType::Catalog, "main")), NOW).unwrap_err();
    assert_eq!(denial.rule, "securable_denied");
    assert!(denial.message.contains("inherited"), "{}", denial.message);
    assert_eq!(
        rule(decide(
            &p,
            &on(securable(SecurableType::Schema, "main.sales")),
            NOW
        )),
        "securable_denied"
    );
    assert_eq!(
        rule(decide(&p, &on(table("main.sales.pii_customers")), NOW)),
        "securable_denied"
    );
    assert!(decide(&p, &on(table("main.sales.orders")), NOW).is_ok());
    assert!(decide(&p, &on(securable(SecurableType::Catalog, "other")), NOW).is_ok());
}

#[test]
fn an_empty_allow_list_allows_everything_not_denied() {
    assert!(decide(&Policy::default(), &on(table("any.where.at_all")), NOW).is_ok());
}

#[test]
fn a_non_empty_allow_list_must_cover_the_securable_or_a_parent() {
    let p = policy(
        "[securables.catalog]\nprivileges = [\"SELECT\"]\n[securables.schema]\nprivileges = [\"SELECT\"]\n[securables.table]\nprivileges = [\"SELECT\"]\n[names]\nallow = [\"sales\", \"main.public\"]",
    );
    assert!(decide(&p, &on(table("sales.eu.orders")), NOW).is_ok());
    assert!(decide(&p, &on(securable(SecurableType::Catalog, "sales")), NOW).is_ok());
    assert!(decide(&p, &on(table("MAIN.Public.x")), NOW).is_ok());
    assert!(
        decide(
            &p,
            &on(securable(SecurableType::Schema, "main.public")),
            NOW
        )
        .is_ok()
    );
    // An allowed schema does not allow its catalog: a catalog grant would reach far more.
    assert_eq!(
        rule(decide(
            &p,
            &on(securable(SecurableType::Catalog, "main")),
            NOW
        )),
        "securable_not_allowed"
    );
    assert_eq!(
        rule(decide(&p, &on(table("main.private.x")), NOW)),
        "securable_not_allowed"
    );
}

#[test]
fn deny_wins_over_allow() {
    let p = policy("[names]\nallow = [\"sales\"]\ndeny = [\"sales.*.pii_*\"]");
    assert!(decide(&p, &on(table("sales.eu.orders")), NOW).is_ok());
    assert_eq!(
        rule(decide(&p, &on(table("sales.eu.pii_customers")), NOW)),
        "securable_denied"
    );
}

#[test]
fn privileges_and_default_privileges_are_per_type() {
    let p = policy(
        "[securables.schema]\nprivileges = [\"SELECT\", \"USE_SCHEMA\", \"EXECUTE\"]\ndefault_privileges = [\"USE_SCHEMA\", \"SELECT\"]\n[securables.table]\nprivileges = [\"SELECT\", \"MODIFY\"]",
    );
    let schema = on(securable(SecurableType::Schema, "main.sales"));
    assert_eq!(
        decide(&p, &schema, NOW).unwrap().privileges,
        PrivilegeSet::from([Privilege::Select, Privilege::UseSchema])
    );
    let modify = AccessRequest {
        privileges: privileges(&[Privilege::Modify]),
        ..request()
    };
    assert!(decide(&p, &modify, NOW).is_ok());
    assert_eq!(
        decide(&p, &request(), NOW).unwrap().privileges,
        PrivilegeSet::from([Privilege::Select])
    );
    let modify_schema = AccessRequest {
        privileges: privileges(&[Privilege::Modify]),
        ..schema
    };
    let denial = decide(&p, &modify_schema, NOW).unwrap_err();
    assert_eq!(denial.rule, "privilege_not_allowed");
    assert!(
        denial.message.contains("EXECUTE, SELECT, USE_SCHEMA"),
        "{}",
        denial.message
    );
}

#[test]
fn a_type_may_tighten_the_durations() {
    let p = policy(
        "[durations]\ndefault = \"P14D\"\nmaximum = \"P60D\"\n[securables.table]\nprivileges = [\"SELECT\"]\ndefault_duration = \"P1D\"\nmaximum_duration = \"P7D\"\n[securables.schema]\nprivileges = [\"SELECT\"]",
    );
    assert_eq!(decide(&p, &request(), NOW).unwrap().duration, days(1));
    let long = AccessRequest {
        duration: Some(days(8)),
        ..request()
    };
    assert_eq!(rule(decide(&p, &long, NOW)), "duration_exceeds_maximum");
    let schema = on(securable(SecurableType::Schema, "main.sales"));
    assert_eq!(decide(&p, &schema, NOW).unwrap().duration, days(14));
    let schema_long = AccessRequest {
        duration: Some(days(60)),
        ..schema
    };
    assert!(decide(&p, &schema_long, NOW).is_ok());
}

#[test]
fn every_denial_names_a_documented_rule() {
    let docs = include_str!("../../../../docs/policy.md");
    for code in Denial::RULES {
        assert!(
            docs.contains(&format!("`{code}`")),
            "docs/policy.md does not document {code}"
        );
    }
}

#[test]
fn account_users_named_in_the_request_is_refused_before_resolving() {
    for name in ["account users", "Account Users"] {
        let mut r = request();
        r.grantee = PrincipalQuery::group_name(name).unwrap();
        let denial = decide(&Policy::default(), &r, NOW).unwrap_err();
        assert_eq!(denial.rule, "forbidden_principal", "{name}");
    }
}

#[test]
fn account_users_never_receive_a_grant_whatever_the_case() {
    for name in ["account users", "Account Users"] {
        let denial =
            check_principal(&Policy::default(), &Principal::group(name).unwrap()).unwrap_err();
        assert_eq!(denial.rule, "forbidden_principal");
    }
}

#[test]
fn users_and_groups_and_service_principals_pass_the_default_policy() {
    let sp = Principal::service_principal(ApplicationId::parse(OWNER).unwrap());
    for p in [
        Principal::user("alice@contoso.com").unwrap(),
        Principal::group("Analysts").unwrap(),
        sp,
    ] {
        assert_eq!(check_principal(&Policy::default(), &p), Ok(()));
    }
}

#[test]
fn forbidden_users_groups_and_service_principals_match_in_any_case() {
    let p = policy(&format!(
        "[principals]\nforbidden_users = [\"CEO@Contoso.com\"]\nforbidden_groups = [\"Platform Admins\", \"Équipe Paie\"]\nforbidden_service_principals = [\"{}\"]",
        OWNER.to_uppercase()
    ));
    let forbidden = |principal: Principal| check_principal(&p, &principal).map_err(|d| d.rule);
    assert_eq!(
        forbidden(Principal::user("ceo@contoso.COM").unwrap()),
        Err("forbidden_principal")
    );
    // Unity Catalog tells these groups apart; the forbidden list does not, so a look-alike in another
    // case cannot receive what the forbidden group may not.
    for group in [
        "Platform Admins",
        "platform admins",
        "PLATFORM ADMINS",
        "pLaTfOrM aDmInS",
        "équipe paie",
        "ÉQUIPE PAIE",
    ] {
        assert_eq!(
            forbidden(Principal::group(group).unwrap()),
            Err("forbidden_principal"),
            "{group}"
        );
    }
    assert_eq!(
        forbidden(Principal::group("Platform Admins 2").unwrap()),
        Ok(())
    );
    assert_eq!(
        forbidden(Principal::service_principal(
            ApplicationId::parse(OWNER).unwrap()
        )),
        Err("forbidden_principal")
    );
    assert_eq!(
        forbidden(Principal::user("cfo@contoso.com").unwrap()),
        Ok(())
    );
}

#[test]
fn groups_can_be_refused_as_grantees() {
    let p = policy("[principals]\nallow_groups = false");
    assert_eq!(
        check_principal(&p, &Principal::group("Analysts").unwrap())
            .unwrap_err()
            .rule,
        "group_grants_not_allowed"
    );
    assert_eq!(
        check_principal(&p, &Principal::user("a@contoso.com").unwrap()),
        Ok(())
    );
}

#[test]
fn renewal_extends_to_now_plus_the_duration() {
    let p = Policy::default();
    let current = NOW + Duration::days(2);
    assert_eq!(
        p.renewal_expiry(current, days(30), NOW),
        NOW + Duration::days(30)
    );
}

#[test]
fn renewal_never_shortens_an_active_grant() {
    let p = Policy::default();
    let current = NOW + Duration::days(80);
    assert_eq!(p.renewal_expiry(current, days(7), NOW), current);
}

#[test]
fn renewal_adds_at_most_the_maximum() {
    let p = Policy::default();
    assert_eq!(
        p.renewal_expiry(NOW, days(365), NOW),
        NOW + Duration::days(90)
    );
}

#[test]
fn renewal_after_expiry_starts_from_now() {
    let p = Policy::default();
    let current = NOW - Duration::days(5);
    assert_eq!(
        p.renewal_expiry(current, days(1), NOW),
        NOW + Duration::days(1)
    );
}

#[test]
fn a_denial_does_not_reveal_the_patterns_that_refused_it() {
    let p = policy("[names]\nallow = [\"sal?s\"]\ndeny = [\"*.secret_*\"]");
    for r in [on(table("sales.secret_x.t")), on(table("hr.people.t"))] {
        let denial = decide(&p, &r, NOW).unwrap_err();
        assert!(Denial::RULES.contains(&denial.rule));
        assert!(!denial.message.contains('*'), "{}", denial.message);
        assert!(!denial.message.contains("sal?s"), "{}", denial.message);
    }
}

/// An operator's `grant-access` request for `grantee`: the operator is requester and approver.
fn by_operator(grantee: PrincipalQuery, operator: Option<Operator>) -> AccessRequest {
    let mut r = request();
    r.source = RequestSource::GrantAccess;
    r.requester = oid(OWNER);
    r.grantee = grantee;
    r.approval.operator = operator;
    r
}

const CONNECTOR: &str = "44444444-4444-4444-8444-444444444444";
const OTHER_APP: &str = "55555555-5555-4555-8555-555555555555";

fn app(raw: &str) -> ApplicationId {
    ApplicationId::parse(raw).unwrap()
}

fn person() -> Option<Operator> {
    Some(Operator::Person {
        via: app(CONNECTOR),
    })
}

fn verdict(result: Result<(), Denial>) -> Result<(), &'static str> {
    result.map_err(|d| d.rule)
}

#[test]
fn a_grantee_resolved_to_an_approver_is_refused_as_self_approval() {
    let policy = Policy::default();
    let r = by_operator(
        PrincipalQuery::user_name("carol@contoso.com").unwrap(),
        person(),
    );
    let carol = Principal::user("carol@contoso.com").unwrap();
    assert_eq!(
        verdict(check_not_self_approved(
            &policy,
            &r,
            &carol,
            Some(oid(OWNER))
        )),
        Err(Denial::SELF_APPROVAL)
    );
    assert_eq!(
        verdict(check_not_self_approved(&policy, &r, &carol, Some(oid(BOB)))),
        Ok(())
    );
}

#[test]
fn a_user_whose_object_id_is_not_established_is_refused_unless_an_application_approved() {
    let policy = Policy::default();
    let frank = Principal::user("frank@contoso.com").unwrap();
    let query = PrincipalQuery::user_name("frank@contoso.com").unwrap();
    // A person, or an approver of unknown kind, may be Frank: nothing shows otherwise.
    for operator in [person(), None] {
        let denial =
            check_not_self_approved(&policy, &by_operator(query.clone(), operator), &frank, None)
                .unwrap_err();
        assert_eq!(
            denial.rule,
            Denial::SELF_APPROVAL_UNVERIFIABLE,
            "{operator:?}"
        );
        assert!(
            denial.message.contains("frank@contoso.com"),
            "{}",
            denial.message
        );
        assert!(denial.message.contains("objectId"), "{}", denial.message);
    }
    // An application calling as itself is not a user.
    let by_app = by_operator(
        query,
        Some(Operator::Application {
            app_id: app(OTHER_APP),
        }),
    );
    assert_eq!(
        verdict(check_not_self_approved(&policy, &by_app, &frank, None)),
        Ok(())
    );
}

#[test]
fn a_service_principal_is_the_operator_when_it_has_the_operators_application_id() {
    let policy = Policy::default();
    let sp = |id: &str| Principal::service_principal(app(id));
    let query = |id: &str| PrincipalQuery::ApplicationId { id: app(id) };
    let as_app = |id: &str| Some(Operator::Application { app_id: app(id) });
    let check = |grantee: &str, operator: Option<Operator>, entra: Option<EntraObjectId>| {
        verdict(check_not_self_approved(
            &policy,
            &by_operator(query(grantee), operator),
            &sp(grantee),
            entra,
        ))
    };
    // No externalId needed: an application is known by its application id.
    assert_eq!(
        check(OTHER_APP, as_app(OTHER_APP), None),
        Err(Denial::SELF_APPROVAL)
    );
    assert_eq!(check(CONNECTOR, as_app(OTHER_APP), None), Ok(()));
    // A person is never a service principal, but may not grant to the app they call through.
    assert_eq!(check(OTHER_APP, person(), None), Ok(()));
    assert_eq!(check(CONNECTOR, person(), None), Err(Denial::SELF_APPROVAL));
    // Who approved is not known: only an established object id tells the principal apart.
    assert_eq!(
        check(OTHER_APP, None, None),
        Err(Denial::SELF_APPROVAL_UNVERIFIABLE)
    );
    assert_eq!(check(OTHER_APP, None, Some(oid(BOB))), Ok(()));
    assert_eq!(
        check(OTHER_APP, None, Some(oid(OWNER))),
        Err(Denial::SELF_APPROVAL)
    );
}

#[test]
fn a_group_grantee_is_left_to_the_membership_check() {
    let r = by_operator(PrincipalQuery::group_name("Analysts").unwrap(), person());
    let group = Principal::group("Analysts").unwrap();
    assert_eq!(
        verdict(check_not_self_approved(
            &Policy::default(),
            &r,
            &group,
            None
        )),
        Ok(())
    );
}

#[test]
fn with_self_approval_allowed_an_unestablished_grantee_passes() {
    let policy = policy("block_self_approval = false");
    let r = by_operator(
        PrincipalQuery::user_name("frank@contoso.com").unwrap(),
        person(),
    );
    let frank = Principal::user("frank@contoso.com").unwrap();
    assert_eq!(
        verdict(check_not_self_approved(&policy, &r, &frank, None)),
        Ok(())
    );
    assert_eq!(
        verdict(check_not_self_approved(
            &policy,
            &r,
            &frank,
            Some(oid(OWNER))
        )),
        Ok(())
    );
}

mod provisioning_mode {
    use super::*;
    use crate::domain::{Privilege, PrivilegeSet, ProvisioningMode};

    const SHARING_POLICY: &str = r#"
[provisioning]
default = "direct"
requestable = ["delta-sharing"]
catalogs = { Partner = "delta-sharing" }
workspaces = { external = "delta-sharing" }
"#;

    fn mode(policy: &Policy, request: &AccessRequest) -> Result<ProvisioningMode, &'static str> {
        decide(policy, request, NOW)
            .map(|d| d.mode)
            .map_err(|d| d.rule)
    }

    #[test]
    fn the_default_policy_grants_directly_and_lets_no_request_choose_sharing() {
        let p = Policy::default();
        assert_eq!(mode(&p, &request()), Ok(ProvisioningMode::Direct));
        let asked = AccessRequest {
            provisioning: Some(ProvisioningMode::DeltaSharing),
            ..request()
        };
        assert_eq!(mode(&p, &asked), Err(Denial::PROVISIONING_MODE_NOT_ALLOWED));
        let direct = AccessRequest {
            provisioning: Some(ProvisioningMode::Direct),
            ..request()
        };
        assert_eq!(mode(&p, &direct), Ok(ProvisioningMode::Direct));
    }

    #[test]
    fn a_catalog_rule_wins_over_a_workspace_rule_and_a_request_where_allowed_wins_over_both() {
        let p = policy(SHARING_POLICY);
        assert_eq!(
            mode(&p, &on(table("partner.sales.orders"))),
            Ok(ProvisioningMode::DeltaSharing)
        );
        let mut external = request();
        external.workspace.name = "external".into();
        assert_eq!(mode(&p, &external), Ok(ProvisioningMode::DeltaSharing));
        let asked = AccessRequest {
            provisioning: Some(ProvisioningMode::DeltaSharing),
            ..request()
        };
        assert_eq!(mode(&p, &asked), Ok(ProvisioningMode::DeltaSharing));
        // "direct" is not requestable: a request cannot escape the catalog's rule.
        let escape = AccessRequest {
            provisioning: Some(ProvisioningMode::Direct),
            ..on(table("partner.sales.orders"))
        };
        assert_eq!(
            mode(&p, &escape),
            Err(Denial::PROVISIONING_MODE_NOT_ALLOWED)
        );
    }

    #[test]
    fn sharing_is_for_select_on_tables_to_people_named_by_object_id() {
        let p = policy(&format!(
            "{SHARING_POLICY}\n[securables.schema]\nprivileges = [\"SELECT\", \"USE_SCHEMA\"]\n[securables.table]\nprivileges = [\"SELECT\", \"MODIFY\"]\n"
        ));
        let schema = on(Securable::parse(SecurableType::Schema, "partner.sales").unwrap());
        assert_eq!(mode(&p, &schema), Err(Denial::SHARING_TABLES_ONLY));
        let modify = AccessRequest {
            privileges: Some(PrivilegeSet::from([Privilege::Modify])),
            ..on(table("partner.sales.orders"))
        };
        assert_eq!(mode(&p, &modify), Err(Denial::PRIVILEGE_NOT_ALLOWED));
        let by_name = AccessRequest {
            grantee: PrincipalQuery::user_name("bob@contoso.com").unwrap(),
            source: RequestSource::GrantAccess,
            ..on(table("partner.sales.orders"))
        };
        assert_eq!(mode(&p, &by_name), Err(Denial::SHARING_NEEDS_OBJECT_ID));
    }

    #[test]
    fn an_unknown_mode_in_the_file_stops_the_load() {
        let err = Policy::from_toml("[provisioning]\ndefault = \"email\"\n").unwrap_err();
        assert!(err.to_string().contains("provisioning"), "{err}");
    }
}
