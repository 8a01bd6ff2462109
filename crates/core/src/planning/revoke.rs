//! Revocation planning: which privileges to remove when grants end, batched into one change per
//! securable carrying every principal's removals.
//!
//! Three rules keep the product's promise. Only privileges a grant *added* are ever removed (what the
//! principal held before uc-access acted is never touched). A privilege that another still-active grant
//! of the same principal in the same workspace needs *exactly* — the same privilege on the same
//! securable, typically the shared `USE_CATALOG` / `USE_SCHEMA` on a parent — is kept and handed over to
//! that grant, so that it is removed when the last grant needing it ends. And a grant never inherits a
//! broader privilege: when a staying grant's need was met only through what an ending grant added on a
//! parent (its schema-wide `SELECT`, an `ALL_PRIVILEGES`), the plan gives the staying grant its own
//! narrow privilege (a [`Substitution`], added before the broad one is removed) instead of handing the
//! broad one over.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::domain::{Principal, Privilege, PrivilegeSet, Securable};
use crate::planning::grant::{Holdings, PlannedChange, is_covered, needed};

/// A grant that is ending (expired or revoked early) and what it added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending<I> {
    pub id: I,
    /// The workspace host (shared by every grant of a sweep on that workspace).
    pub workspace: Arc<str>,
    pub principal: Principal,
    pub added: Vec<PlannedChange>,
}

/// A grant that stays active, what it needs on its target's lineage, and what its record claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staying<I> {
    pub id: I,
    pub workspace: Arc<str>,
    pub principal: Principal,
    pub target: Securable,
    pub privileges: PrivilegeSet,
    /// What the record says it added, or plans to add (`added` and, while pending, `plan`).
    pub claims: Holdings,
}

impl<I> Staying<I> {
    fn claims_exactly(&self, securable: &Securable, privilege: Privilege) -> bool {
        self.claims
            .get(securable)
            .is_some_and(|p| p.contains(&privilege))
    }
}

/// One change on one securable, for every principal that loses something there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurableRemoval {
    pub workspace: String,
    pub securable: Securable,
    pub removals: BTreeMap<Principal, PrivilegeSet>,
}

/// Privileges an ending grant added that a staying grant needs exactly: they move to the staying grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover<I> {
    pub from: I,
    pub to: I,
    pub securable: Securable,
    pub privileges: PrivilegeSet,
}

/// A staying grant's own narrow privilege, to be added (and claimed by it) before removals that take away
/// the broader privilege its need was met through until now. Whether it must really be added depends on
/// what else the principal holds, which the caller reads first (see [`crate::planning::grant::Facts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution<I> {
    pub to: I,
    pub workspace: String,
    pub principal: Principal,
    pub securable: Securable,
    pub privileges: PrivilegeSet,
    /// The removals (index in the plan's `removals`, and the privilege they take) that may only go
    /// once this is in place.
    pub protects: Vec<(usize, Privilege)>,
}

/// The whole plan for one timer run (or one early revoke).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationPlan<I> {
    /// One entry per (workspace, securable), in a stable order.
    pub removals: Vec<SecurableRemoval>,
    pub handovers: Vec<Handover<I>>,
    pub substitutions: Vec<Substitution<I>>,
    /// Per ending grant: the changes in `removals` (by index) that remove something on its behalf, so a
    /// failed change can be traced to the grants it leaves unrevoked.
    pub removed_by_grant: BTreeMap<I, Vec<usize>>,
}

/// Plans the removals for `ending` grants, keeping what any of `staying` needs exactly and planning the
/// narrow substitutes of what they relied on through a broader privilege.
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
    // (staying grant, securable) → (privileges, protected (removal key, privilege)).
    type Substitutes<'a, 'e, I> =
        BTreeMap<(&'a I, &'a Securable), (&'a Staying<I>, PrivilegeSet, Vec<(Key<'e>, Privilege)>)>;
    let mut substitutes: Substitutes<'_, 'e, I> = BTreeMap::new();
    let mut removed_on: Vec<(&'e I, Vec<Key<'e>>)> = Vec::new();

    for grant in ending {
        let needs = needs_of
            .get(&(&*grant.workspace, &grant.principal))
            .unwrap_or(&no_needs);
        let mut removed_here = Vec::new();
        for change in &grant.added {
            let key = (&*grant.workspace, &change.securable);
            let mut remove = PrivilegeSet::new();
            for privilege in &change.add {
                let heir = needs.iter().find(|(_, needed_on, needed_privs)| {
                    *needed_on == change.securable && needed_privs.contains(privilege)
                });
                if let Some((s, _, _)) = heir {
                    push_handover(
                        &mut handovers,
                        &grant.id,
                        &s.id,
                        &change.securable,
                        *privilege,
                    );
                    continue;
                }
                remove.insert(*privilege);
                // Needs of staying grants that this broader privilege met: each gets its own.
                for (s, needed_on, needed_privs) in needs {
                    for wanted in needed_privs {
                        if relies_on(needed_on, *wanted, &change.securable, *privilege)
                            && !s.claims_exactly(needed_on, *wanted)
                        {
                            let entry = substitutes
                                .entry((&s.id, needed_on))
                                .or_insert_with(|| (s, PrivilegeSet::new(), Vec::new()));
                            entry.1.insert(*wanted);
                            entry.2.push((key, *privilege));
                        }
                    }
                }
            }
            if !remove.is_empty() {
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
    let substitutions = substitutes
        .into_iter()
        .map(|((_, securable), (s, privileges, protects))| {
            let mut protects: Vec<(usize, Privilege)> =
                protects.into_iter().map(|(k, p)| (index[&k], p)).collect();
            protects.sort();
            protects.dedup();
            Substitution {
                to: s.id.clone(),
                workspace: s.workspace.to_string(),
                principal: s.principal.clone(),
                securable: securable.clone(),
                privileges,
                protects,
            }
        })
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
        substitutions,
        removed_by_grant,
    }
}

/// A privilege a grant unknown to the plan needs, which one of the plan's removals took away (or took
/// away the broader privilege it was met through): to be added for that grant and claimed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restoration<I> {
    pub to: I,
    /// The indices of the removals in the plan's `removals` that took away what it relied on.
    pub removals: Vec<usize>,
    pub workspace: String,
    pub securable: Securable,
    pub principal: Principal,
    pub privileges: PrivilegeSet,
}

/// What `newcomers` need of the plan's removals that went through (`removed[i]` says whether removal
/// `i` did): live grants of the ending grants' principals that the plan did not know about, because
/// they were approved after it was made. Such an approval may have read Unity Catalog before the
/// removals and counted on a privilege as already held, so it did not add it; without a restoration it
/// would be left without it. What is restored is always the newcomer's *own* need (the privilege on its
/// own securable or the `USE_*` on a parent), never the broader privilege that was removed.
pub fn restorations<I: Clone + Ord>(
    plan: &RevocationPlan<I>,
    removed: &[bool],
    newcomers: &[Staying<I>],
) -> Vec<Restoration<I>> {
    let mut out: BTreeMap<(I, Securable), Restoration<I>> = BTreeMap::new();
    for n in newcomers {
        let needs = needed(&n.target, &n.privileges);
        for (i, r) in plan.removals.iter().enumerate() {
            if !removed.get(i).copied().unwrap_or(false) || r.workspace != *n.workspace {
                continue;
            }
            let Some(taken) = r.removals.get(&n.principal) else {
                continue;
            };
            for (on, privs) in &needs {
                for wanted in privs {
                    // Even a need the newcomer claims itself: it may have added it just before the
                    // removal took it away again. The caller reads what is held before adding.
                    if !taken
                        .iter()
                        .any(|p| relies_on(on, *wanted, &r.securable, *p))
                    {
                        continue;
                    }
                    let entry =
                        out.entry((n.id.clone(), on.clone()))
                            .or_insert_with(|| Restoration {
                                to: n.id.clone(),
                                removals: Vec::new(),
                                workspace: r.workspace.clone(),
                                securable: on.clone(),
                                principal: n.principal.clone(),
                                privileges: PrivilegeSet::new(),
                            });
                    entry.privileges.insert(*wanted);
                    if !entry.removals.contains(&i) {
                        entry.removals.push(i);
                    }
                }
            }
        }
    }
    out.into_values().collect()
}

/// Whether a need for `wanted` on `needed_on` is met by `privilege` held on `held_on` (directly or by
/// inheritance, `ALL_PRIVILEGES` included).
fn relies_on(
    needed_on: &Securable,
    wanted: Privilege,
    held_on: &Securable,
    privilege: Privilege,
) -> bool {
    let holdings = BTreeMap::from([(held_on.clone(), PrivilegeSet::from([privilege]))]);
    is_covered(&holdings, needed_on, wanted)
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
#[path = "revoke_tests.rs"]
mod tests;
