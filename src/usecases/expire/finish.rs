//! After the `PATCH`es of a revoke: the own privileges of grants approved meanwhile put back, the
//! records closed, handed-over privileges claimed by the grants that keep them, and the facts planning
//! reads.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;
use url::Url;

use super::revoke::{Lookups, Marked, RevokeOutcome, live_others, patch};
use super::{ALERT_AFTER_ATTEMPTS, SWEEP_CHUNK, backoff};
use crate::databricks::{Deadline, PermissionsChange};
use crate::domain::{Principal, PrivilegeSet, Securable};
use crate::ledger::{GrantId, GrantRecord, GrantState, LedgerError, SecurableChange, Versioned};
use crate::planning::grant::{Facts, Holdings};
use crate::planning::revoke::{RevocationPlan, restorations};
use crate::usecases::Context;
use crate::usecases::apply::read_holdings;

/// Looks for live grants of the wave's principals that are not `known` (approved after step 1 of
/// [`finish_revoke`](super::revoke::finish_revoke)) and puts in place for each its own privilege that it
/// relied on and the plan's `removed` changes took away (directly, or a broader privilege it was met
/// through), claimed in its record first ([`secure_needs`]). Answers, per (removal index, principal), why
/// that failed: the ending grants behind the removal are then retried, and the retry, seeing the new grant as
/// staying, plans the same substitution again. A failure is also logged as an alert and the new grant's id
/// goes into the run's `alerts`, since its principal lacks access until then.
pub(super) async fn restore_for_newcomers(
    ctx: &Context,
    (lookups, names): (&Lookups, &BTreeMap<String, String>),
    known: &BTreeSet<GrantId>,
    plan: &RevocationPlan<GrantId>,
    removed: &[bool],
    deadline: Deadline,
    outcome: &mut RevokeOutcome,
) -> BTreeMap<(usize, Principal), String> {
    let mut failed = BTreeMap::new();
    // Only the principals something was taken from can have lost what a new grant relies on.
    let lost: BTreeSet<&Principal> = plan
        .removals
        .iter()
        .zip(removed)
        .filter(|(_, removed)| **removed)
        .flat_map(|(r, _)| r.removals.keys())
        .collect();
    let wanted: Lookups = lookups
        .iter()
        .map(|(workspace, (catalogs, principals))| {
            let principals: BTreeSet<Principal> = principals
                .iter()
                .filter(|p| lost.contains(p))
                .cloned()
                .collect();
            (workspace.clone(), (catalogs.clone(), principals))
        })
        .filter(|(_, (_, principals))| !principals.is_empty())
        .collect();
    let newcomers = match live_others(ctx, &wanted, known).await {
        Ok(newcomers) => newcomers,
        Err(e) => {
            tracing::error!(
                alert = "restore_unchecked",
                error = %e,
                "cannot look for grants approved during this revoke; one that relied on a removed privilege would lack it"
            );
            return failed;
        }
    };
    let restorations = restorations(plan, removed, &newcomers);
    let needs: Vec<Need> = restorations
        .iter()
        .map(|r| Need {
            to: r.to,
            host: r.workspace.clone(),
            principal: r.principal.clone(),
            securable: r.securable.clone(),
            privileges: r.privileges.clone(),
        })
        .collect();
    let results = secure_needs(ctx, names, &needs, deadline, outcome).await;
    for (r, result) in restorations.iter().zip(results) {
        match result {
            Ok(()) => tracing::warn!(
                grant = %r.to,
                securable = %r.securable,
                privileges = ?r.privileges,
                "a grant approved while this run revoked another of its principal's grants relied on what was removed: its own privilege is in place and claimed by it"
            ),
            Err(e) => {
                tracing::error!(
                    alert = "restore_failed",
                    grant = %r.to,
                    securable = %r.securable,
                    privileges = ?r.privileges,
                    error = %e,
                    "a grant approved during this revoke relied on a removed privilege, which could not be put back: its principal lacks it until the grant is approved again"
                );
                outcome.alerts.push(r.to.to_string());
                for i in &r.removals {
                    failed.insert((*i, r.principal.clone()), e.clone());
                }
            }
        }
    }
    failed
}

/// Closes each grant — `revoked`, or `failed` with `error_of` its error and a retry time — by chunks of
/// [`SWEEP_CHUNK`], reading again the records not held whole. A record that changed since it was marked
/// was taken over by someone else (an early revoke, a later run) and is left to them.
pub(super) async fn close(
    ctx: &Context,
    marked: Vec<Marked>,
    error_of: impl Fn(&Marked) -> Option<String>,
    now: OffsetDateTime,
    outcome: &mut RevokeOutcome,
) {
    let phase = std::time::Instant::now();
    let mut rest = marked.into_iter().peekable();
    while rest.peek().is_some() {
        let chunk: Vec<Marked> = rest.by_ref().take(SWEEP_CHUNK).collect();
        let missing: Vec<GrantId> = chunk
            .iter()
            .filter(|m| m.record.is_none())
            .map(|m| m.id)
            .collect();
        let mut reread: BTreeMap<GrantId, Result<Versioned<GrantRecord>, LedgerError>> = missing
            .iter()
            .copied()
            .zip(ctx.ledger.get_many(&missing).await)
            .collect();
        let mut records = Vec::with_capacity(chunk.len());
        let mut closing = Vec::with_capacity(chunk.len());
        for m in chunk {
            let error = error_of(&m);
            let kept_whole = m.record.is_some();
            let mut v = match m.record {
                Some(v) => *v,
                None => match reread.remove(&m.id) {
                    Some(Ok(v)) if v.version == m.version => v,
                    Some(Ok(_)) => {
                        tracing::warn!(grant = %m.id, "the grant changed since this run marked it revoking; left to whoever changed it");
                        continue;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(grant = %m.id, error = %e, "cannot read the grant to close it; the next run finishes it");
                        if let Some(error) = error {
                            outcome.failed.push((m.id, error));
                        }
                        continue;
                    }
                    None => continue,
                },
            };
            let changed = match &error {
                None => v.record.mark_revoked(now).is_ok(),
                Some(e) => {
                    let retry_at = now + backoff(m.attempts + 1);
                    v.record.mark_failed(e, now, retry_at).is_ok()
                }
            };
            if changed || error.is_some() {
                records.push(v);
                closing.push((
                    m.id,
                    m.attempts + u32::from(error.is_some()),
                    error,
                    kept_whole,
                ));
            }
        }
        let results = ctx.ledger.update_many(records).await;
        for ((id, attempts, error, kept_whole), result) in closing.into_iter().zip(results) {
            match error {
                None => match result {
                    Ok(stored) => {
                        outcome.revoked += 1;
                        if kept_whole {
                            outcome.revoked_records.push(stored.record);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(grant = %id, error = %e, "revoked in Unity Catalog; the record update failed and is retried next run")
                    }
                },
                Some(e) => {
                    if attempts >= ALERT_AFTER_ATTEMPTS {
                        tracing::error!(
                            alert = "revoke_failing",
                            grant = %id,
                            attempts,
                            error = %e,
                            "a revoke keeps failing: access outlives its expiry until this is fixed"
                        );
                        outcome.alerts.push(id.to_string());
                    }
                    outcome.failed.push((id, e));
                }
            }
        }
    }
    tracing::debug!(ms = phase.elapsed().as_millis() as u64, "closed the grants");
}

/// Adds `privileges` on `securable` to the `added` of grant `to` (with a few retries on conflicts).
/// Answers `false`, changing nothing, when that grant no longer keeps access (it is ending or ended):
/// a privilege claimed by a grant that is being revoked could outlive it.
pub(super) async fn hand_over(
    ctx: &Context,
    to: GrantId,
    securable: &Securable,
    privileges: &PrivilegeSet,
) -> Result<bool, LedgerError> {
    for _ in 0..5 {
        let mut v = ctx.ledger.get(to).await?;
        if !v.record.state.keeps_access() {
            return Ok(false);
        }
        v.record.merge_added([SecurableChange {
            securable: securable.clone(),
            privileges: privileges.clone(),
        }]);
        match ctx.ledger.update(&v).await {
            Ok(_) => return Ok(true),
            Err(LedgerError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(LedgerError::Conflict { id: to })
}

/// What the records of uc-access claim of a principal's holdings: `added`, and the `plan` while pending.
pub(super) fn claims_of(record: &GrantRecord) -> Holdings {
    let mut claims = Holdings::new();
    let pending = record.state == GrantState::Pending;
    let planned = record.plan.iter().filter(|_| pending);
    for c in record.added.iter().chain(planned) {
        claims
            .entry(c.securable.clone())
            .or_default()
            .extend(c.privileges.iter().copied());
    }
    claims
}

/// A staying grant's own privilege that must be in place: a substitute for a broader one that goes, or
/// what a grant approved during the revoke relied on.
pub(super) struct Need {
    pub(super) to: GrantId,
    /// The workspace host (as the ledger records it).
    pub(super) host: String,
    pub(super) principal: Principal,
    pub(super) securable: Securable,
    pub(super) privileges: PrivilegeSet,
}

/// The configured workspace name of each host among the marked grants (the ledger is queried by name).
pub(super) fn names_of(marked: &[Marked]) -> BTreeMap<String, String> {
    marked
        .iter()
        .map(|m| (m.scope.host.to_string(), m.scope.workspace_name.clone()))
        .collect()
}

/// Puts `needs` in place, each answered on its own (same order). Per principal, reads what it holds on
/// the needs' lineage and what uc-access's records claim of it; a need already met in a way its grant
/// may rely on (see [`crate::planning::grant::Facts`]) is left as it is. The rest is first claimed in
/// the grant's record (so a crash leaves no privilege without a record), then added, one `PATCH` per
/// securable. A grant that no longer keeps access needs nothing.
pub(super) async fn secure_needs(
    ctx: &Context,
    names: &BTreeMap<String, String>,
    needs: &[Need],
    deadline: Deadline,
    outcome: &mut RevokeOutcome,
) -> Vec<Result<(), String>> {
    let mut results: Vec<Result<(), String>> = vec![Ok(()); needs.len()];
    let mut by_principal: BTreeMap<(&str, &Principal), Vec<usize>> = BTreeMap::new();
    for (i, n) in needs.iter().enumerate() {
        by_principal
            .entry((n.host.as_str(), &n.principal))
            .or_default()
            .push(i);
    }
    // (host, securable) → what to add, per principal, and the needs behind it.
    let mut adds: BTreeMap<(&str, &Securable), BTreeMap<&Principal, PrivilegeSet>> =
        BTreeMap::new();
    let mut behind: BTreeMap<(&str, &Securable), Vec<usize>> = BTreeMap::new();
    for ((host, principal), indices) in by_principal {
        let facts = match facts_on(ctx, names, host, principal, needs, &indices, deadline).await {
            Ok(f) => f,
            Err(e) => {
                for i in indices {
                    results[i] = Err(e.clone());
                }
                continue;
            }
        };
        for i in indices {
            let n = &needs[i];
            let missing: PrivilegeSet = n
                .privileges
                .iter()
                .copied()
                .filter(|p| !facts.covers(&n.securable, *p))
                .collect();
            if missing.is_empty() {
                continue;
            }
            match hand_over(ctx, n.to, &n.securable, &missing).await {
                Ok(true) => {
                    outcome.kept += missing.len() as u64;
                    adds.entry((host, &n.securable))
                        .or_default()
                        .entry(principal)
                        .or_default()
                        .extend(missing);
                    behind.entry((host, &n.securable)).or_default().push(i);
                }
                Ok(false) => {}
                Err(e) => results[i] = Err(format!("could not claim it for grant {}: {e}", n.to)),
            }
        }
    }
    for ((host, securable), per_principal) in adds {
        let changes: Vec<PermissionsChange> = per_principal
            .into_iter()
            .map(|(principal, add)| PermissionsChange {
                principal: principal.clone(),
                add,
                remove: PrivilegeSet::new(),
            })
            .collect();
        if let Err(e) = patch(ctx, host, securable, &changes, deadline).await {
            for i in behind.remove(&(host, securable)).unwrap_or_default() {
                results[i] = Err(e.clone());
            }
        }
    }
    results
}

/// What one principal holds on the lineage of `needs[indices]`, and what uc-access's records claim of it.
pub(super) async fn facts_on(
    ctx: &Context,
    names: &BTreeMap<String, String>,
    host: &str,
    principal: &Principal,
    needs: &[Need],
    indices: &[usize],
    deadline: Deadline,
) -> Result<Facts, String> {
    let url = Url::parse(host).map_err(|e| format!("bad workspace host in the ledger: {e}"))?;
    let name = names
        .get(host)
        .ok_or_else(|| format!("no workspace name known for {host}"))?;
    let securables: BTreeSet<&Securable> = indices.iter().map(|i| &needs[*i].securable).collect();
    let mut held = Holdings::new();
    for securable in securables {
        let found = read_holdings(ctx.grants.as_ref(), &url, principal, securable, deadline)
            .await
            .map_err(|e| e.to_string())?;
        for (s, privileges) in found {
            held.entry(s).or_default().extend(privileges);
        }
    }
    let mut facts = Facts::unclaimed(held);
    let records = ctx
        .ledger
        .unrevoked_for_principal(name, principal)
        .await
        .map_err(|e| format!("ledger unavailable: {e}"))?;
    for v in records {
        let claims = claims_of(&v.record);
        facts.claim(claims.iter(), v.record.state.keeps_access());
    }
    Ok(facts)
}
