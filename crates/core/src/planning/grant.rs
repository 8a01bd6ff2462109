//! Grant planning: given what the principal already holds *directly* on a securable and its parents,
//! the minimal set of privileges to add, one change per securable, `USE_CATALOG` / `USE_SCHEMA` on the
//! parents included.
//!
//! Privilege model 1.0: a privilege held on a catalog or schema is inherited by everything inside it, so
//! holding `SELECT` on the schema already covers a table in it. `ALL_PRIVILEGES` covers everything but
//! `MANAGE` and `EXTERNAL_USE_SCHEMA`, which it never includes. Privileges that arrive through group
//! membership are deliberately *not* counted: membership can change at any time, and the approval is
//! for this principal, so uc-access grants (and later revokes) its own direct grant.
//!
//! What uc-access itself added for other approvals counts differently from what the principal held
//! otherwise (see [`Facts`]): a grant keeps only what it would have added itself — its own privileges on
//! its own securable and `USE_*` on its parents — so it never leans on a broader privilege that another
//! uc-access grant added and that goes when that grant ends. Only the *exact* privilege another live
//! uc-access grant holds on the same securable (typically the shared `USE_CATALOG`) counts as held: the
//! revoke hands it over to this grant when the other ends.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::{Principal, Privilege, PrivilegeSet, Securable, SecurableType};

/// What the principal holds directly, per securable (absent = nothing).
pub type Holdings = BTreeMap<Securable, PrivilegeSet>;

/// What planning knows of one principal: its direct holdings in Unity Catalog, and which of them
/// uc-access's own records claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Direct holdings, as read from Unity Catalog.
    pub held: Holdings,
    /// What records of uc-access that are not revoked (live or ending) say they added: never coverage
    /// by inheritance, since it goes when those grants end.
    pub claimed: Holdings,
    /// Of `claimed`, what grants that stay (`pending`, `active`) claim: held exactly, it is shared with
    /// them (and handed over when they end).
    pub claimed_live: Holdings,
}

impl Facts {
    /// Holdings no uc-access record claims: everything counts as the principal's own.
    pub fn unclaimed(held: Holdings) -> Self {
        Self {
            held,
            ..Self::default()
        }
    }

    /// Adds the claims of one record (`live`: a grant that stays).
    pub fn claim<'a>(
        &mut self,
        changes: impl IntoIterator<Item = (&'a Securable, &'a PrivilegeSet)>,
        live: bool,
    ) {
        for (securable, privileges) in changes {
            self.claimed
                .entry(securable.clone())
                .or_default()
                .extend(privileges.iter().copied());
            if live {
                self.claimed_live
                    .entry(securable.clone())
                    .or_default()
                    .extend(privileges.iter().copied());
            }
        }
    }

    fn holds(map: &Holdings, securable: &Securable, privilege: Privilege) -> bool {
        map.get(securable).is_some_and(|p| p.contains(&privilege))
    }

    /// What the principal holds that no uc-access record claims.
    pub fn foreign(&self) -> Holdings {
        self.held
            .iter()
            .filter_map(|(s, held)| {
                let rest: PrivilegeSet = match self.claimed.get(s) {
                    Some(claimed) => held.difference(claimed).copied().collect(),
                    None => held.clone(),
                };
                (!rest.is_empty()).then(|| (s.clone(), rest))
            })
            .collect()
    }

    /// Whether `privilege` on `securable` is already held in a way this grant may rely on: through what
    /// the principal holds of its own (directly or inherited from a parent, `ALL_PRIVILEGES` included),
    /// or exactly as a live uc-access grant holds it.
    pub fn covers(&self, securable: &Securable, privilege: Privilege) -> bool {
        if Self::holds(&self.held, securable, privilege)
            && Self::holds(&self.claimed_live, securable, privilege)
        {
            return true;
        }
        is_covered(&self.foreign(), securable, privilege)
    }
}

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
    facts: &Facts,
) -> GrantPlan {
    let foreign = facts.foreign();
    let mut changes = Vec::new();
    let mut already_held = Vec::new();
    for (securable, wanted) in needed(target, privileges) {
        let (held, missing): (PrivilegeSet, PrivilegeSet) = wanted.into_iter().partition(|p| {
            (Facts::holds(&facts.held, &securable, *p)
                && Facts::holds(&facts.claimed_live, &securable, *p))
                || is_covered(&foreign, &securable, *p)
        });
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
        let plan = plan_grant(&alice(), &table(), &set(&[Select]), &Facts::default());
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
        let plan = plan_grant(
            &alice(),
            &table(),
            &set(&[Select]),
            &Facts::unclaimed(holdings),
        );
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
        let plan = plan_grant(
            &alice(),
            &table(),
            &set(&[Select]),
            &Facts::unclaimed(holdings),
        );
        assert!(plan.is_noop(), "{:?}", plan.changes);
        assert_eq!(plan.already_held.len(), 3);
    }

    #[test]
    fn all_privileges_covers_select_but_never_manage() {
        let holdings = Holdings::from([(s(SecurableType::Catalog, "main"), set(&[AllPrivileges]))]);
        let plan = plan_grant(
            &alice(),
            &table(),
            &set(&[Select, Manage]),
            &Facts::unclaimed(holdings),
        );
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
        let plan = plan_grant(
            &alice(),
            &table(),
            &set(&[Select]),
            &Facts::unclaimed(holdings),
        );
        assert_eq!(plan.changes.len(), 3);
    }

    #[test]
    fn a_schema_grant_needs_use_catalog_and_use_schema_on_the_schema() {
        let schema = s(SecurableType::Schema, "main.sales");
        let plan = plan_grant(&alice(), &schema, &set(&[Select]), &Facts::default());
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
        let plan = plan_grant(&alice(), &catalog, &set(&[Select]), &Facts::default());
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
            &Facts::default(),
        );
        let added = plan.added();
        assert_eq!(added.len(), 3);
        assert_eq!(added[&table()], set(&[Modify, Select]));
    }

    fn claimed(held: Holdings, live: bool) -> Facts {
        let mut facts = Facts::unclaimed(held.clone());
        facts.claim(held.iter(), live);
        facts
    }

    #[test]
    fn a_broader_privilege_that_uc_access_added_for_another_grant_does_not_count_as_held() {
        // Another approval of Alice's added SELECT on the whole schema: it goes when that one ends,
        // so this table grant adds its own SELECT on the table.
        let held = Holdings::from([
            (s(SecurableType::Catalog, "main"), set(&[UseCatalog])),
            (
                s(SecurableType::Schema, "main.sales"),
                set(&[Select, UseSchema]),
            ),
        ]);
        for live in [true, false] {
            let plan = plan_grant(
                &alice(),
                &table(),
                &set(&[Select]),
                &claimed(held.clone(), live),
            );
            let expected_use = if live {
                vec![("main.sales.orders".to_owned(), vec!["SELECT"])]
            } else {
                // Claimed only by grants that are ending: even the exact USE_* are this grant's own.
                vec![
                    ("main".to_owned(), vec!["USE_CATALOG"]),
                    ("main.sales".to_owned(), vec!["USE_SCHEMA"]),
                    ("main.sales.orders".to_owned(), vec!["SELECT"]),
                ]
            };
            assert_eq!(changes(&plan), expected_use, "live: {live}");
        }
    }

    #[test]
    fn all_privileges_that_uc_access_added_does_not_cover_select() {
        let held = Holdings::from([(table(), set(&[AllPrivileges]))]);
        let mut facts = claimed(held, true);
        facts
            .held
            .insert(s(SecurableType::Catalog, "main"), set(&[UseCatalog]));
        facts
            .held
            .insert(s(SecurableType::Schema, "main.sales"), set(&[UseSchema]));
        let plan = plan_grant(&alice(), &table(), &set(&[Select]), &facts);
        assert_eq!(
            changes(&plan),
            vec![("main.sales.orders".into(), vec!["SELECT"])]
        );
    }

    #[test]
    fn the_exact_privilege_a_live_uc_access_grant_holds_is_shared() {
        let held = Holdings::from([
            (s(SecurableType::Catalog, "main"), set(&[UseCatalog])),
            (s(SecurableType::Schema, "main.sales"), set(&[UseSchema])),
            (table(), set(&[Select])),
        ]);
        let plan = plan_grant(&alice(), &table(), &set(&[Select]), &claimed(held, true));
        assert!(plan.is_noop(), "{:?}", plan.changes);
    }

    #[test]
    fn what_the_principal_holds_of_its_own_still_covers_by_inheritance() {
        // The catalog-wide SELECT was there before uc-access; the USE_SCHEMA was added by uc-access.
        let mut facts = Facts::unclaimed(Holdings::from([
            (
                s(SecurableType::Catalog, "main"),
                set(&[Select, UseCatalog]),
            ),
            (s(SecurableType::Schema, "main.sales"), set(&[UseSchema])),
        ]));
        facts.claim(
            [(&s(SecurableType::Schema, "main.sales"), &set(&[UseSchema]))],
            true,
        );
        let plan = plan_grant(&alice(), &table(), &set(&[Select]), &facts);
        assert!(plan.is_noop(), "{:?}", plan.changes);
        assert!(facts.covers(&table(), Select));
        assert!(!facts.covers(&table(), Modify));
    }
}
