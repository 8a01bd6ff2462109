//! Grant planning: given what the principal already holds *directly* on a securable and its parents,
//! the minimal set of privileges to add, one change per securable, `USE_CATALOG` / `USE_SCHEMA` on the
//! parents included.
//!
//! Privilege model 1.0: a privilege held on a catalog or schema is inherited by everything inside it, so
//! holding `SELECT` on the schema already covers a table in it. `ALL_PRIVILEGES` covers everything but
//! `MANAGE` and `EXTERNAL_USE_SCHEMA`, which it never includes. Privileges that arrive through group
//! membership are deliberately *not* counted: membership can change at any time, and the approval is
//! for this principal, so uc-access grants (and later revokes) its own direct grant.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::{Principal, Privilege, PrivilegeSet, Securable, SecurableType};

/// What the principal holds directly, per securable (absent = nothing).
pub type Holdings = BTreeMap<Securable, PrivilegeSet>;

/// Privileges to add on one securable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedChange {
    pub securable: Securable,
    pub add: PrivilegeSet,
}

/// The minimal change for one approval, and what was needed but is already held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantPlan {
    pub principal: Principal,
    pub target: Securable,
    /// Outermost securable first; only securables that need a change.
    pub changes: Vec<PlannedChange>,
    /// Needed privileges the principal already holds (directly or inherited from a parent).
    pub already_held: Vec<PlannedChange>,
}

impl GrantPlan {
    /// Nothing to add: the principal already holds everything the approval needs.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }

    /// Every privilege the plan adds, per securable, as a map (for the ledger and answers).
    pub fn added(&self) -> BTreeMap<Securable, PrivilegeSet> {
        self.changes
            .iter()
            .map(|c| (c.securable.clone(), c.add.clone()))
            .collect()
    }
}

/// What the approval needs on each securable of the target's lineage, outermost first.
pub fn needed(target: &Securable, privileges: &PrivilegeSet) -> Vec<(Securable, PrivilegeSet)> {
    let mut needs: Vec<(Securable, PrivilegeSet)> = target
        .parents()
        .into_iter()
        .map(|parent| {
            let usage = Privilege::usage_for(parent.securable_type())
                .into_iter()
                .collect::<PrivilegeSet>();
            (parent, usage)
        })
        .collect();
    let mut on_target = privileges.clone();
    match target.securable_type() {
        // A catalog-wide grant is only usable with USE_CATALOG, and its tables only with USE_SCHEMA
        // (granted on the catalog, so it is inherited by every schema in it).
        SecurableType::Catalog => {
            on_target.insert(Privilege::UseCatalog);
            on_target.insert(Privilege::UseSchema);
        }
        SecurableType::Schema => {
            on_target.insert(Privilege::UseSchema);
        }
        SecurableType::Table => {}
    }
    needs.push((target.clone(), on_target));
    needs
}

/// Whether `privilege` on `securable` is already held through a direct grant on it or on a parent.
pub fn is_covered(holdings: &Holdings, securable: &Securable, privilege: Privilege) -> bool {
    securable.lineage().iter().any(|s| {
        holdings.get(s).is_some_and(|held| {
            held.contains(&privilege)
                || (held.contains(&Privilege::AllPrivileges)
                    && !matches!(privilege, Privilege::Manage | Privilege::ExternalUseSchema))
        })
    })
}

/// Plans the minimal grant of `privileges` on `target` to `principal`.
pub fn plan_grant(
    principal: &Principal,
    target: &Securable,
    privileges: &PrivilegeSet,
    holdings: &Holdings,
) -> GrantPlan {
    let mut changes = Vec::new();
    let mut already_held = Vec::new();
    for (securable, wanted) in needed(target, privileges) {
        let (held, missing): (PrivilegeSet, PrivilegeSet) = wanted
            .into_iter()
            .partition(|p| is_covered(holdings, &securable, *p));
        if !missing.is_empty() {
            changes.push(PlannedChange {
                securable: securable.clone(),
                add: missing,
            });
        }
        if !held.is_empty() {
            already_held.push(PlannedChange {
                securable,
                add: held,
            });
        }
    }
    GrantPlan {
        principal: principal.clone(),
        target: target.clone(),
        changes,
        already_held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Privilege::*;

    fn s(kind: SecurableType, name: &str) -> Securable {
        Securable::parse(kind, name).unwrap()
    }
    fn set(ps: &[Privilege]) -> PrivilegeSet {
        ps.iter().copied().collect()
    }
    fn alice() -> Principal {
        Principal::user("alice@contoso.com").unwrap()
    }
    fn table() -> Securable {
        s(SecurableType::Table, "main.sales.orders")
    }
    fn changes(plan: &GrantPlan) -> Vec<(String, Vec<&'static str>)> {
        plan.changes
            .iter()
            .map(|c| {
                (
                    c.securable.full_name(),
                    c.add.iter().map(|p| p.as_str()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_principal_with_nothing_gets_use_catalog_use_schema_and_select() {
        let plan = plan_grant(&alice(), &table(), &set(&[Select]), &Holdings::new());
        assert_eq!(
            changes(&plan),
            vec![
                ("main".into(), vec!["USE_CATALOG"]),
                ("main.sales".into(), vec!["USE_SCHEMA"]),
                ("main.sales.orders".into(), vec!["SELECT"]),
            ]
        );
        assert!(plan.already_held.is_empty());
    }

    #[test]
    fn privileges_already_held_are_not_added_again_and_are_reported() {
        let holdings = Holdings::from([(s(SecurableType::Catalog, "main"), set(&[UseCatalog]))]);
        let plan = plan_grant(&alice(), &table(), &set(&[Select]), &holdings);
        assert_eq!(changes(&plan)[0].0, "main.sales");
        assert_eq!(plan.already_held.len(), 1);
        assert_eq!(plan.already_held[0].securable.full_name(), "main");
    }

    #[test]
    fn a_privilege_held_on_a_parent_covers_the_child() {
        let holdings = Holdings::from([
            (
                s(SecurableType::Catalog, "main"),
                set(&[UseCatalog, UseSchema]),
            ),
            (s(SecurableType::Schema, "main.sales"), set(&[Select])),
        ]);
        let plan = plan_grant(&alice(), &table(), &set(&[Select]), &holdings);
        assert!(plan.is_noop(), "{:?}", plan.changes);
        assert_eq!(plan.already_held.len(), 3);
    }

    #[test]
    fn all_privileges_covers_select_but_never_manage() {
        let holdings = Holdings::from([(s(SecurableType::Catalog, "main"), set(&[AllPrivileges]))]);
        let plan = plan_grant(&alice(), &table(), &set(&[Select, Manage]), &holdings);
        assert_eq!(
            changes(&plan),
            vec![("main.sales.orders".into(), vec!["MANAGE"])]
        );
    }

    #[test]
    fn holdings_on_an_unrelated_securable_do_not_count() {
        let holdings = Holdings::from([
            (
                s(SecurableType::Table, "main.sales.customers"),
                set(&[Select]),
            ),
            (s(SecurableType::Catalog, "other"), set(&[UseCatalog])),
        ]);
        let plan = plan_grant(&alice(), &table(), &set(&[Select]), &holdings);
        assert_eq!(plan.changes.len(), 3);
    }

    #[test]
    fn a_schema_grant_needs_use_catalog_and_use_schema_on_the_schema() {
        let schema = s(SecurableType::Schema, "main.sales");
        let plan = plan_grant(&alice(), &schema, &set(&[Select]), &Holdings::new());
        assert_eq!(
            changes(&plan),
            vec![
                ("main".into(), vec!["USE_CATALOG"]),
                ("main.sales".into(), vec!["SELECT", "USE_SCHEMA"]),
            ]
        );
    }

    #[test]
    fn a_catalog_grant_includes_use_catalog_and_use_schema_on_the_catalog() {
        let catalog = s(SecurableType::Catalog, "main");
        let plan = plan_grant(&alice(), &catalog, &set(&[Select]), &Holdings::new());
        assert_eq!(
            changes(&plan),
            vec![("main".into(), vec!["SELECT", "USE_CATALOG", "USE_SCHEMA"])]
        );
    }

    #[test]
    fn the_added_map_lists_exactly_the_planned_changes() {
        let plan = plan_grant(
            &alice(),
            &table(),
            &set(&[Select, Modify]),
            &Holdings::new(),
        );
        let added = plan.added();
        assert_eq!(added.len(), 3);
        assert_eq!(added[&table()], set(&[Modify, Select]));
    }
}
