//! Revocation planning: which privileges to remove when grants end, batched into one change per
//! securable carrying every principal's removals.
//!
//! Two rules keep the product's promise. Only privileges a grant *added* are ever removed (what the
//! principal held before uc-access acted is never touched). And a privilege that another still-active
//! grant of the same principal in the same workspace needs — typically the shared `USE_CATALOG` /
//! `USE_SCHEMA` on a parent — is kept and handed over to that grant, so that it is removed when the last
//! grant needing it ends.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::domain::{Principal, Privilege, PrivilegeSet, Securable};
use crate::planning::grant::{PlannedChange, is_covered, needed};

/// A grant that is ending (expired or revoked early) and what it added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending<I> {
    pub id: I,
    /// The workspace host (shared by every grant of a sweep on that workspace).
    pub workspace: Arc<str>,
    pub principal: Principal,
    pub added: Vec<PlannedChange>,
}

/// A grant that stays active, and what it needs on its target's lineage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staying<I> {
    pub id: I,
    pub workspace: Arc<str>,
    pub principal: Principal,
    pub target: Securable,
    pub privileges: PrivilegeSet,
}

/// One change on one securable, for every principal that loses something there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurableRemoval {
    pub workspace: String,
    pub securable: Securable,
    pub removals: BTreeMap<Principal, PrivilegeSet>,
}

/// Privileges an ending grant added that a staying grant still needs: they move to the staying grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover<I> {
    pub from: I,
    pub to: I,
    pub securable: Securable,
    pub privileges: PrivilegeSet,
}

/// The whole plan for one timer run (or one early revoke).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationPlan<I> {
    /// One entry per (workspace, securable), in a stable order.
    pub removals: Vec<SecurableRemoval>,
    pub handovers: Vec<Handover<I>>,
    /// Per ending grant: the changes in `removals` (by index) that remove something on its behalf, so a
    /// failed change can be traced to the grants it leaves unrevoked.
    pub removed_by_grant: BTreeMap<I, Vec<usize>>,
}

/// Plans the removals for `ending` grants, keeping what any of `staying` still needs.
///
/// `staying` must hold every active grant of the ending grants' principals that is not itself ending.
pub fn plan_revocation<'e, I: Ord + Clone + 'e>(
    ending: impl IntoIterator<Item = &'e Ending<I>>,
    staying: &[Staying<I>],
) -> RevocationPlan<I> {
    // What each staying grant needs, per securable, by (workspace, principal): a large run looks up
    // only the needs of the principal at hand.
    type Needs<'a, I> = Vec<(&'a Staying<I>, Securable, PrivilegeSet)>;
    let mut needs_of: BTreeMap<(&str, &Principal), Needs<'_, I>> = BTreeMap::new();
    for s in staying {
        let entry = needs_of.entry((&*s.workspace, &s.principal)).or_default();
        for (securable, privileges) in needed(&s.target, &s.privileges) {
            entry.push((s, securable, privileges));
        }
    }
    let no_needs: Needs<'_, I> = Vec::new();

    // Keys borrow from the ending grants while planning; each securable and principal is cloned once
    // into the plan at the end (a sweep's plan covers thousands of grants).
    type Key<'a> = (&'a str, &'a Securable);
    let mut removals: BTreeMap<Key<'e>, BTreeMap<&'e Principal, PrivilegeSet>> = BTreeMap::new();
    let mut handovers = Vec::new();
    let mut removed_on: Vec<(&'e I, Vec<Key<'e>>)> = Vec::new();

    for grant in ending {
        let needs = needs_of
            .get(&(&*grant.workspace, &grant.principal))
            .unwrap_or(&no_needs);
        let mut removed_here = Vec::new();
        for change in &grant.added {
            let mut remove = PrivilegeSet::new();
            for privilege in &change.add {
                let heir = needs.iter().find(|(s, needed_on, needed_privs)| {
                    s.workspace == grant.workspace
                        && s.principal == grant.principal
                        && relies_on(needed_on, needed_privs, &change.securable, *privilege)
                });
                match heir {
                    Some((s, _, _)) => push_handover(
                        &mut handovers,
                        &grant.id,
                        &s.id,
                        &change.securable,
                        *privilege,
                    ),
                    None => {
                        remove.insert(*privilege);
                    }
                }
            }
            if !remove.is_empty() {
                let key = (&*grant.workspace, &change.securable);
                removals
                    .entry(key)
                    .or_default()
                    .entry(&grant.principal)
                    .or_default()
                    .extend(remove);
                removed_here.push(key);
            }
        }
        removed_on.push((&grant.id, removed_here));
    }

    let index: BTreeMap<Key<'e>, usize> =
        removals.keys().enumerate().map(|(i, k)| (*k, i)).collect();
    let removed_by_grant = removed_on
        .into_iter()
        .map(|(id, keys)| (id.clone(), keys.iter().map(|k| index[k]).collect()))
        .collect();
    RevocationPlan {
        removals: removals
            .into_iter()
            .map(|((workspace, securable), removals)| SecurableRemoval {
                workspace: workspace.to_owned(),
                securable: securable.clone(),
                removals: removals
                    .into_iter()
                    .map(|(principal, privileges)| (principal.clone(), privileges))
                    .collect(),
            })
            .collect(),
        handovers,
        removed_by_grant,
    }
}

/// A privilege a revocation removed that a grant unknown to its plan needs: to be added back and handed
/// over to that grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restoration<I> {
    pub to: I,
    /// The index of the removal in the plan's `removals` that took it away.
    pub removal: usize,
    pub workspace: String,
    pub securable: Securable,
    pub principal: Principal,
    pub privileges: PrivilegeSet,
}

/// What `newcomers` need of the plan's removals that went through (`removed[i]` says whether removal
/// `i` did): live grants of the ending grants' principals that the plan did not know about, because
/// they were approved after it was made. Such an approval may have read Unity Catalog before the
/// removals and counted on a parent privilege (or the table's own) as already held, so it did not add
/// it; without a restoration it would be left without it.
pub fn restorations<I: Clone>(
    plan: &RevocationPlan<I>,
    removed: &[bool],
    newcomers: &[Staying<I>],
) -> Vec<Restoration<I>> {
    let mut out: Vec<Restoration<I>> = Vec::new();
    for n in newcomers {
        let needs = needed(&n.target, &n.privileges);
        for (i, r) in plan.removals.iter().enumerate() {
            if !removed.get(i).copied().unwrap_or(false) || r.workspace != *n.workspace {
                continue;
            }
            let Some(taken) = r.removals.get(&n.principal) else {
                continue;
            };
            let wanted: PrivilegeSet = taken
                .iter()
                .copied()
                .filter(|p| {
                    needs
                        .iter()
                        .any(|(on, privs)| relies_on(on, privs, &r.securable, *p))
                })
                .collect();
            if !wanted.is_empty() {
                out.push(Restoration {
                    to: n.id.clone(),
                    removal: i,
                    workspace: r.workspace.clone(),
                    securable: r.securable.clone(),
                    principal: n.principal.clone(),
                    privileges: wanted,
                });
            }
        }
    }
    out
}

/// Whether a need for `needed_privs` on `needed_on` relies on `privilege` held on `held_on`: the held
/// privilege covers one of the needed ones on the needed securable (directly or by inheritance).
fn relies_on(
    needed_on: &Securable,
    needed_privs: &PrivilegeSet,
    held_on: &Securable,
    privilege: Privilege,
) -> bool {
    let holdings = BTreeMap::from([(held_on.clone(), PrivilegeSet::from([privilege]))]);
    needed_privs
        .iter()
        .any(|p| is_covered(&holdings, needed_on, *p))
}

fn push_handover<I: Ord + Clone>(
    handovers: &mut Vec<Handover<I>>,
    from: &I,
    to: &I,
    securable: &Securable,
    privilege: Privilege,
) {
    if let Some(h) = handovers
        .iter_mut()
        .find(|h| &h.from == from && &h.to == to && &h.securable == securable)
    {
        h.privileges.insert(privilege);
    } else {
        handovers.push(Handover {
            from: from.clone(),
            to: to.clone(),
            securable: securable.clone(),
            privileges: PrivilegeSet::from([privilege]),
        });
    }
}

#[cfg(test)]
mod tests {
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
            &Holdings::new(),
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
}
