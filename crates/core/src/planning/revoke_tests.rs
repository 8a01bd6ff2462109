use super::*;
use crate::domain::SecurableType;
use crate::planning::grant::{Holdings, plan_grant};
use Privilege::*;

fn s(kind: SecurableType, name: &str) -> Securable {
    Securable::parse(kind, name).unwrap()
}
fn user(name: &str) -> Principal {
    Principal::user(name).unwrap()
}
fn select() -> PrivilegeSet {
    PrivilegeSet::from([Select])
}
fn ending(id: u32, who: &str, table: &str) -> Ending<u32> {
    let plan = plan_grant(
        &user(who),
        &s(SecurableType::Table, table),
        &select(),
        &Default::default(),
    );
    Ending {
        id,
        workspace: "ws".into(),
        principal: user(who),
        added: plan.changes,
    }
}
fn staying(id: u32, who: &str, table: &str) -> Staying<u32> {
    Staying {
        id,
        workspace: "ws".into(),
        principal: user(who),
        target: s(SecurableType::Table, table),
        privileges: select(),
        claims: Holdings::new(),
    }
}
fn removed(plan: &RevocationPlan<u32>) -> Vec<(String, String, Vec<&'static str>)> {
    plan.removals
        .iter()
        .flat_map(|r| {
            r.removals.iter().map(|(p, privs)| {
                (
                    r.securable.full_name(),
                    p.uc_name().to_owned(),
                    privs.iter().map(|x| x.as_str()).collect(),
                )
            })
        })
        .collect()
}

#[test]
fn an_expired_grant_alone_loses_everything_it_added() {
    let plan = plan_revocation(&[ending(1, "a@x.com", "main.sales.orders")], &[]);
    assert_eq!(
        removed(&plan),
        vec![
            ("main".into(), "a@x.com".into(), vec!["USE_CATALOG"]),
            ("main.sales".into(), "a@x.com".into(), vec!["USE_SCHEMA"]),
            ("main.sales.orders".into(), "a@x.com".into(), vec!["SELECT"]),
        ]
    );
    assert!(plan.handovers.is_empty());
}

#[test]
fn a_shared_use_schema_stays_while_a_sibling_grant_is_active_and_is_handed_over() {
    let plan = plan_revocation(
        &[ending(1, "a@x.com", "main.sales.orders")],
        &[staying(2, "a@x.com", "main.sales.customers")],
    );
    assert_eq!(
        removed(&plan),
        vec![("main.sales.orders".into(), "a@x.com".into(), vec!["SELECT"])]
    );
    assert_eq!(plan.handovers.len(), 2);
    assert!(plan.handovers.iter().all(|h| h.from == 1 && h.to == 2));
}

#[test]
fn the_shared_parent_goes_when_both_grants_end_together() {
    let mut second = ending(2, "a@x.com", "main.sales.customers");
    // The second grant found USE_CATALOG/USE_SCHEMA already there (added by the first).
    second
        .added
        .retain(|c| c.securable.securable_type() == SecurableType::Table);
    let plan = plan_revocation(&[ending(1, "a@x.com", "main.sales.orders"), second], &[]);
    assert_eq!(plan.removals.len(), 4);
    assert!(plan.handovers.is_empty());
}

#[test]
fn a_grant_approved_after_the_plan_gets_back_what_it_relies_on_and_nothing_else() {
    let plan = plan_revocation(&[ending(1, "a@x.com", "main.sales.orders")], &[]);
    let every = vec![true; plan.removals.len()];
    let restored = |newcomers: &[Staying<u32>], removed: &[bool]| {
        restorations(&plan, removed, newcomers)
            .into_iter()
            .map(|r| {
                let privs: Vec<&str> = r.privileges.iter().map(|p| p.as_str()).collect();
                (r.to, r.securable.full_name(), privs.join(","))
            })
            .collect::<Vec<_>>()
    };
    // A sibling table of the same schema relies on the parents, not on the other table's SELECT.
    assert_eq!(
        restored(&[staying(2, "a@x.com", "main.sales.customers")], &every),
        vec![
            (2, "main".to_owned(), "USE_CATALOG".to_owned()),
            (2, "main.sales".to_owned(), "USE_SCHEMA".to_owned()),
        ]
    );
    // A second approval of the very same table relies on its SELECT too.
    assert_eq!(
        restored(&[staying(3, "a@x.com", "main.sales.orders")], &every).len(),
        3
    );
    // Another schema of the catalog: only the catalog's USE_CATALOG.
    assert_eq!(
        restored(&[staying(4, "a@x.com", "main.hr.people")], &every),
        vec![(4, "main".to_owned(), "USE_CATALOG".to_owned())]
    );
    // Another principal, another workspace, or a removal that failed (nothing was taken): nothing.
    assert!(restored(&[staying(5, "b@x.com", "main.sales.customers")], &every).is_empty());
    let mut elsewhere = staying(6, "a@x.com", "main.sales.customers");
    elsewhere.workspace = "other".into();
    assert!(restored(&[elsewhere], &every).is_empty());
    assert!(
        restored(
            &[staying(7, "a@x.com", "main.sales.customers")],
            &vec![false; plan.removals.len()]
        )
        .is_empty()
    );
}

#[test]
fn another_principals_grant_does_not_keep_a_privilege() {
    let plan = plan_revocation(
        &[ending(1, "a@x.com", "main.sales.orders")],
        &[staying(2, "b@x.com", "main.sales.orders")],
    );
    assert_eq!(plan.removals.len(), 3);
    assert!(plan.handovers.is_empty());
}

#[test]
fn a_grant_in_another_workspace_does_not_keep_a_privilege() {
    let mut other = staying(2, "a@x.com", "main.sales.customers");
    other.workspace = "other".into();
    let plan = plan_revocation(&[ending(1, "a@x.com", "main.sales.orders")], &[other]);
    assert_eq!(plan.removals.len(), 3);
}

#[test]
fn removals_of_many_principals_on_one_securable_are_one_change() {
    let plan = plan_revocation(
        &[
            ending(1, "a@x.com", "main.sales.orders"),
            ending(2, "b@x.com", "main.sales.orders"),
        ],
        &[],
    );
    assert_eq!(plan.removals.len(), 3, "one change per securable");
    assert!(plan.removals.iter().all(|r| r.removals.len() == 2));
}

#[test]
fn nothing_the_grant_did_not_add_is_removed() {
    let mut grant = ending(1, "a@x.com", "main.sales.orders");
    grant
        .added
        .retain(|c| c.securable.securable_type() == SecurableType::Table);
    let plan = plan_revocation(&[grant], &[]);
    assert_eq!(
        removed(&plan),
        vec![("main.sales.orders".into(), "a@x.com".into(), vec!["SELECT"])]
    );
    assert_eq!(plan.removed_by_grant[&1].len(), 1);
    let change = &plan.removals[plan.removed_by_grant[&1][0]];
    assert_eq!(
        change.securable,
        s(SecurableType::Table, "main.sales.orders")
    );
}

fn staying_on(id: u32, who: &str, kind: SecurableType, name: &str) -> Staying<u32> {
    let target = s(kind, name);
    let claims = plan_grant(&user(who), &target, &select(), &Default::default()).added();
    Staying {
        id,
        workspace: "ws".into(),
        principal: user(who),
        target,
        privileges: select(),
        claims,
    }
}

fn ending_on(id: u32, who: &str, kind: SecurableType, name: &str) -> Ending<u32> {
    let plan = plan_grant(&user(who), &s(kind, name), &select(), &Default::default());
    Ending {
        id,
        workspace: "ws".into(),
        principal: user(who),
        added: plan.changes,
    }
}

#[test]
fn a_schema_wide_select_is_never_handed_over_to_a_table_grant_inside_it() {
    // The schema grant added USE_CATALOG, and SELECT + USE_SCHEMA on the schema; the table grant,
    // approved while it was live, found its parents held and added only what it lacked.
    let mut table = staying_on(2, "a@x.com", SecurableType::Table, "main.sales.orders");
    table.claims = Holdings::new();
    let plan = plan_revocation(
        &[ending_on(1, "a@x.com", SecurableType::Schema, "main.sales")],
        &[table],
    );
    // The USE_* the table grant needs exactly are handed over; the schema-wide SELECT is removed…
    assert_eq!(
        removed(&plan),
        vec![("main.sales".into(), "a@x.com".into(), vec!["SELECT"])]
    );
    let handed: Vec<(String, Vec<&str>)> = plan
        .handovers
        .iter()
        .map(|h| {
            (
                h.securable.full_name(),
                h.privileges.iter().map(|p| p.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        handed,
        vec![
            ("main".to_owned(), vec!["USE_CATALOG"]),
            ("main.sales".to_owned(), vec!["USE_SCHEMA"])
        ]
    );
    // …after the table grant gets its own SELECT on the table.
    assert_eq!(plan.substitutions.len(), 1);
    let sub = &plan.substitutions[0];
    assert_eq!(
        (sub.to, sub.securable.full_name()),
        (2, "main.sales.orders".to_owned())
    );
    assert_eq!(sub.privileges, select());
    assert_eq!(sub.protects, vec![(0, Select)]);
}

#[test]
fn a_table_grant_that_already_has_its_own_select_needs_no_substitute() {
    let plan = plan_revocation(
        &[ending_on(1, "a@x.com", SecurableType::Catalog, "main")],
        &[staying_on(
            2,
            "a@x.com",
            SecurableType::Table,
            "main.sales.orders",
        )],
    );
    assert!(plan.substitutions.is_empty(), "{:?}", plan.substitutions);
    // The catalog grant's USE_CATALOG is shared exactly; its SELECT and USE_SCHEMA go.
    assert_eq!(
        removed(&plan),
        vec![(
            "main".into(),
            "a@x.com".into(),
            vec!["SELECT", "USE_SCHEMA"]
        )]
    );
}

#[test]
fn all_privileges_on_the_same_table_is_replaced_by_the_staying_grants_select() {
    let table = s(SecurableType::Table, "main.sales.orders");
    let all = PrivilegeSet::from([AllPrivileges]);
    let broad = Ending {
        id: 1,
        workspace: "ws".into(),
        principal: user("a@x.com"),
        added: vec![PlannedChange {
            securable: table.clone(),
            add: all,
        }],
    };
    let mut narrow = staying_on(2, "a@x.com", SecurableType::Table, "main.sales.orders");
    narrow.claims.remove(&table);
    let plan = plan_revocation(&[broad], &[narrow]);
    assert_eq!(
        removed(&plan),
        vec![(
            "main.sales.orders".into(),
            "a@x.com".into(),
            vec!["ALL_PRIVILEGES"]
        )]
    );
    assert_eq!(plan.substitutions.len(), 1);
    assert_eq!(plan.substitutions[0].securable, table);
    assert_eq!(plan.substitutions[0].privileges, select());
}

#[test]
fn a_newcomer_gets_back_its_own_narrow_privilege_not_the_broad_one_that_was_removed() {
    let plan = plan_revocation(
        &[ending_on(1, "a@x.com", SecurableType::Schema, "main.sales")],
        &[],
    );
    let every = vec![true; plan.removals.len()];
    let mut newcomer = staying_on(3, "a@x.com", SecurableType::Table, "main.sales.orders");
    newcomer.claims = Holdings::new();
    let restored: Vec<(String, Vec<&str>)> = restorations(&plan, &every, &[newcomer])
        .iter()
        .map(|r| {
            (
                r.securable.full_name(),
                r.privileges.iter().map(|p| p.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        restored,
        vec![
            ("main".to_owned(), vec!["USE_CATALOG"]),
            ("main.sales".to_owned(), vec!["USE_SCHEMA"]),
            ("main.sales.orders".to_owned(), vec!["SELECT"]),
        ]
    );
}
