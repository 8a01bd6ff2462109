//! Expire and reconcile: what the `revoke-expired` timer does on every run, and what an early revoke
//! does for one grant.
//!
//! A run finds the due records (expired `active` grants, `revoking`/`failed` ones whose retry time has
//! come, `pending` ones left half-done by a process that died), finishes or rolls back the stale
//! `pending` ones by reading Unity Catalog, then revokes the ending grants together: one `PATCH` per
//! securable carrying every principal's removals, removing only what the product added and no other
//! active grant of the same principal still needs (that is handed over to the grant that needs it).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use time::OffsetDateTime;
use url::Url;

use super::Context;
use super::apply::read_holdings;
use crate::databricks::{Deadline, PermissionsChange};
use crate::domain::{Principal, PrivilegeSet, Securable};
use crate::ledger::{
    DueQuery, GrantId, GrantRecord, GrantState, LedgerError, SecurableChange, Versioned,
};
use crate::planning::grant::PlannedChange;
use crate::planning::revoke::{Ending, Staying, plan_revocation};

/// After this many failed attempts a grant's revoke raises an alert-worthy log event.
pub const ALERT_AFTER_ATTEMPTS: u32 = 3;
/// Longest wait between two attempts at a failing revoke.
pub const MAX_BACKOFF: time::Duration = time::Duration::hours(1);

/// What one run did; returned to the host and logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub due: u64,
    pub revoked: u64,
    /// Stale `pending` grants found fully applied and marked `active`.
    pub finished: u64,
    /// Privileges kept because another active grant still needs them (handed over).
    pub kept: u64,
    pub failed: u64,
    /// Ids of grants whose revoke keeps failing (alert-worthy).
    pub alerts: Vec<String>,
}

/// Backoff before the next attempt after `attempts` failures: 1, 2, 4, … minutes, at most an hour.
pub fn backoff(attempts: u32) -> time::Duration {
    let minutes = 1_i64 << attempts.min(10);
    time::Duration::minutes(minutes).min(MAX_BACKOFF)
}

/// One timer run at `now`.
///
/// Due grants are taken one group at a time, a group being the grants on one catalog of one workspace:
/// grants in different groups touch no common securable, so each securable still gets at most one
/// `PATCH` per run, while only one group's records are held in memory (the ledger answers the due list
/// in brief first).
pub async fn sweep(
    ctx: &Context,
    now: OffsetDateTime,
    deadline: Deadline,
) -> Result<SweepReport, LedgerError> {
    let query = DueQuery::at(now);
    let entries = ctx.ledger.find_due_entries(&query).await?;
    let mut report = SweepReport {
        due: entries.len() as u64,
        ..SweepReport::default()
    };
    // Oldest debt first: groups in the order their oldest grant became due.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<GrantId>> = BTreeMap::new();
    for entry in entries {
        let ids = groups.entry(entry.group.clone()).or_insert_with(|| {
            order.push(entry.group.clone());
            Vec::new()
        });
        ids.push(entry.id);
    }
    for group in order {
        let ids = groups.remove(&group).unwrap_or_default();
        let batch_started = std::time::Instant::now();
        let mut due = Vec::with_capacity(ids.len());
        for id in ids {
            match ctx.ledger.get(id).await {
                // Changed since the listing (an early revoke, a renewal): only what is still due.
                Ok(v) if query.is_due(&v.record) => due.push(v),
                Ok(_) | Err(LedgerError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let loaded = batch_started.elapsed();
        let count = due.len();
        sweep_group(ctx, due, now, deadline, &mut report).await;
        tracing::info!(
            workspace = %group.0,
            catalog = %group.1,
            grants = count,
            load_ms = loaded.as_millis() as u64,
            total_ms = batch_started.elapsed().as_millis() as u64,
            "revoke batch done"
        );
    }
    Ok(report)
}

/// Finishes or rolls back the stale `pending` grants of one group and revokes its ending ones together.
async fn sweep_group(
    ctx: &Context,
    due: Vec<Versioned<GrantRecord>>,
    now: OffsetDateTime,
    deadline: Deadline,
    report: &mut SweepReport,
) {
    let mut ending = Vec::new();
    for record in due {
        if record.record.state == GrantState::Pending && record.record.sharing.is_some() {
            match super::unshare::reconcile_pending(ctx, record, now, deadline).await {
                super::unshare::Reconciled::Finished => report.finished += 1,
                super::unshare::Reconciled::RollBack(r) => ending.push(*r),
                super::unshare::Reconciled::Skipped => {}
            }
        } else if record.record.state == GrantState::Pending {
            match reconcile_pending(ctx, record, now, deadline).await {
                Reconciled::Finished => report.finished += 1,
                Reconciled::RollBack(r) => ending.push(*r),
                Reconciled::Skipped => {}
            }
        } else {
            ending.push(record);
        }
    }
    let outcome = revoke_grants(ctx, ending, now, deadline).await;
    report.revoked += outcome.revoked.len() as u64;
    report.failed += outcome.failed.len() as u64;
    report.kept += outcome.kept;
    report.alerts.extend(outcome.alerts);
}

enum Reconciled {
    Finished,
    RollBack(Box<Versioned<GrantRecord>>),
    Skipped,
}

/// A `pending` record whose process died: if Unity Catalog shows every planned privilege, the grant
/// happened — mark it active (its expiry counts from when it was requested); otherwise undo whatever
/// part is there.
async fn reconcile_pending(
    ctx: &Context,
    mut record: Versioned<GrantRecord>,
    now: OffsetDateTime,
    deadline: Deadline,
) -> Reconciled {
    let Ok(host) = Url::parse(&record.record.workspace.host) else {
        return Reconciled::Skipped;
    };
    let holdings = match read_holdings(
        ctx.grants.as_ref(),
        &host,
        &record.record.principal,
        &record.record.securable,
        deadline,
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(grant = %record.record.id, error = %e, "cannot read Unity Catalog to reconcile a stale pending grant; next run");
            return Reconciled::Skipped;
        }
    };
    let present: Vec<SecurableChange> = record
        .record
        .plan
        .iter()
        .map(|c| SecurableChange {
            securable: c.securable.clone(),
            privileges: c
                .privileges
                .intersection(holdings.get(&c.securable).unwrap_or(&PrivilegeSet::new()))
                .copied()
                .collect(),
        })
        .filter(|c| !c.privileges.is_empty())
        .collect();
    let complete = record.record.plan.iter().all(|c| {
        holdings
            .get(&c.securable)
            .is_some_and(|held| c.privileges.is_subset(held))
    });
    if complete {
        // The changes were made right after the record was written (the caller may already have been
        // told `granted`): count the duration from then, not from this run, so access never lasts longer
        // than the answer said.
        let applied_at = record.record.requested_at.min(now);
        if record.record.mark_active(present, applied_at).is_ok()
            && ctx.ledger.update(&record).await.is_ok()
        {
            tracing::info!(grant = %record.record.id, "stale pending grant found applied: now active");
            return Reconciled::Finished;
        }
        return Reconciled::Skipped;
    }
    record.record.added = present;
    Reconciled::RollBack(Box::new(record))
}

/// What a revoke of several grants did.
#[derive(Debug, Default)]
pub struct RevokeOutcome {
    pub revoked: Vec<GrantRecord>,
    pub failed: Vec<(GrantId, String)>,
    pub kept: u64,
    pub alerts: Vec<String>,
}

/// Revokes `ending` grants together. Each is marked `revoking` first (so a crash leaves it due again),
/// then one `PATCH` per securable removes every principal's privileges that can go.
pub async fn revoke_grants(
    ctx: &Context,
    ending: Vec<Versioned<GrantRecord>>,
    now: OffsetDateTime,
    deadline: Deadline,
) -> RevokeOutcome {
    let mut outcome = RevokeOutcome::default();

    // 1. Mark each ending grant `revoking`, with a retry time in case this run dies (one batch).
    let mut to_mark: Vec<Versioned<GrantRecord>> = Vec::with_capacity(ending.len());
    for mut v in ending {
        let retry_at = now + backoff(v.record.attempts);
        let ok = match v.record.state {
            GrantState::Revoking => {
                v.record.next_attempt_at = Some(retry_at);
                true
            }
            _ => v.record.begin_revoke(now, retry_at).is_ok(),
        };
        if ok {
            to_mark.push(v);
        }
    }
    let ids: Vec<GrantId> = to_mark.iter().map(|v| v.record.id).collect();
    let phase = std::time::Instant::now();
    let mut marked: Vec<Versioned<GrantRecord>> = Vec::with_capacity(ids.len());
    for (id, result) in ids.into_iter().zip(ctx.ledger.update_many(to_mark).await) {
        match result {
            Ok(stored) => marked.push(stored),
            Err(e) => {
                tracing::warn!(grant = %id, error = %e, "could not mark the grant revoking; next run");
            }
        }
    }
    if marked.is_empty() {
        return outcome;
    }
    let ending_ids: BTreeSet<GrantId> = marked.iter().map(|v| v.record.id).collect();
    tracing::debug!(
        grants = marked.len(),
        ms = phase.elapsed().as_millis() as u64,
        "marked revoking"
    );
    let phase = std::time::Instant::now();

    // 2. Every other live grant of the same principals that can share a securable with the ending
    //    ones (same workspace, same catalog): what they still need. One ledger query per workspace.
    let mut per_workspace: BTreeMap<&str, (BTreeSet<String>, BTreeSet<Principal>)> =
        BTreeMap::new();
    for v in &marked {
        let (catalogs, principals) = per_workspace
            .entry(v.record.workspace.name.as_str())
            .or_default();
        catalogs.insert(v.record.securable.catalog_name().as_str().to_owned());
        principals.insert(v.record.principal.clone());
    }
    let mut staying = Vec::new();
    let mut unavailable = None;
    for (workspace, (catalogs, principals)) in &per_workspace {
        match ctx
            .ledger
            .live_grants_sharing(workspace, catalogs, principals, &ending_ids)
            .await
        {
            Ok(others) => staying.extend(others.into_iter().map(|o| Staying {
                id: o.record.id,
                workspace: o.record.workspace.host,
                principal: o.record.principal,
                target: o.record.securable,
                privileges: o.record.requested_privileges,
            })),
            Err(e) => {
                unavailable = Some(e);
                break;
            }
        }
    }
    drop(per_workspace);
    if let Some(e) = unavailable {
        // Without the other grants we cannot know what is shared: revoke nothing for them now.
        tracing::warn!(error = %e, "cannot list the principals' other grants; their revokes wait for the next run");
        return fail_all(
            ctx,
            marked,
            &format!("ledger unavailable: {e}"),
            now,
            outcome,
        )
        .await;
    }

    tracing::debug!(
        staying = staying.len(),
        ms = phase.elapsed().as_millis() as u64,
        "found the staying grants"
    );
    // 3. The plan: removals per securable, handovers to staying grants.
    let endings: Vec<Ending<GrantId>> = marked
        .iter()
        .map(|v| Ending {
            id: v.record.id,
            workspace: v.record.workspace.host.clone(),
            principal: v.record.principal.clone(),
            added: v
                .record
                .added
                .iter()
                .map(|c| PlannedChange {
                    securable: c.securable.clone(),
                    add: c.privileges.clone(),
                })
                .collect(),
        })
        .collect();
    let plan = plan_revocation(&endings, &staying);

    // 4. One PATCH per securable; remember which (workspace, securable) failed.
    let mut failed_on: BTreeMap<(String, Securable), String> = BTreeMap::new();
    for removal in &plan.removals {
        let changes: Vec<PermissionsChange> = removal
            .removals
            .iter()
            .map(
                |(principal, privileges): (&Principal, &PrivilegeSet)| PermissionsChange {
                    principal: principal.clone(),
                    add: PrivilegeSet::new(),
                    remove: privileges.clone(),
                },
            )
            .collect();
        let result = match Url::parse(&removal.workspace) {
            Ok(url) => ctx
                .grants
                .update(&url, &removal.securable, &changes, deadline)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("bad workspace host in the ledger: {e}")),
        };
        if let Err(e) = result {
            tracing::warn!(securable = %removal.securable, error = %e, "revoke failed on this securable");
            failed_on.insert((removal.workspace.clone(), removal.securable.clone()), e);
        }
    }

    // 4b. Delta Sharing grants: SELECT on the share, the table from the share (state-based).
    let unshare_failed = super::unshare::unshare(ctx, &marked, deadline).await;

    // 5. Hand over what staying grants still need, so they remove it when they end.
    let mut handover_failed: BTreeMap<GrantId, String> = BTreeMap::new();
    for h in &plan.handovers {
        outcome.kept += h.privileges.len() as u64;
        if let Err(e) = hand_over(ctx, h.to, &h.securable, &h.privileges).await {
            handover_failed.insert(h.from, format!("handover to {} failed: {e}", h.to));
        }
    }

    // 6. Close each ending grant, or schedule its retry (one batch).
    let mut closing: Vec<(Versioned<GrantRecord>, Option<String>)> =
        Vec::with_capacity(marked.len());
    for mut v in marked {
        let workspace = v.record.workspace.host.clone();
        let error = plan
            .removed_by_grant
            .get(&v.record.id)
            .into_iter()
            .flatten()
            .find_map(|c| {
                failed_on
                    .get(&(workspace.clone(), c.securable.clone()))
                    .cloned()
            })
            .or_else(|| handover_failed.get(&v.record.id).cloned())
            .or_else(|| unshare_failed.get(&v.record.id).cloned());
        let changed = match &error {
            None => v.record.mark_revoked(now).is_ok(),
            Some(e) => {
                let retry_at = now + backoff(v.record.attempts + 1);
                v.record.mark_failed(e, now, retry_at).is_ok()
            }
        };
        if changed || error.is_some() {
            closing.push((v, error));
        }
    }
    let (records, errors): (Vec<_>, Vec<_>) = closing.into_iter().unzip();
    let attempts: Vec<(GrantId, u32)> = records
        .iter()
        .map(|v| (v.record.id, v.record.attempts))
        .collect();
    let phase = std::time::Instant::now();
    let results = ctx.ledger.update_many(records).await;
    tracing::debug!(ms = phase.elapsed().as_millis() as u64, "closed the grants");
    for (((id, attempts), error), result) in attempts.into_iter().zip(errors).zip(results) {
        match error {
            None => match result {
                Ok(stored) => outcome.revoked.push(stored.record),
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
    outcome
}

async fn fail_all(
    ctx: &Context,
    marked: Vec<Versioned<GrantRecord>>,
    error: &str,
    now: OffsetDateTime,
    mut outcome: RevokeOutcome,
) -> RevokeOutcome {
    for mut v in marked {
        let retry_at = now + backoff(v.record.attempts + 1);
        if v.record.mark_failed(error, now, retry_at).is_ok() {
            let _ = ctx.ledger.update(&v).await;
        }
        outcome.failed.push((v.record.id, error.to_owned()));
    }
    outcome
}

/// Adds `privileges` on `securable` to the `added` of grant `to` (with a few retries on conflicts).
async fn hand_over(
    ctx: &Context,
    to: GrantId,
    securable: &Securable,
    privileges: &PrivilegeSet,
) -> Result<(), LedgerError> {
    for _ in 0..5 {
        let mut v = ctx.ledger.get(to).await?;
        match v
            .record
            .added
            .iter_mut()
            .find(|c| &c.securable == securable)
        {
            Some(c) => c.privileges.extend(privileges.iter().copied()),
            None => v.record.added.push(SecurableChange {
                securable: securable.clone(),
                privileges: privileges.clone(),
            }),
        }
        match ctx.ledger.update(&v).await {
            Ok(_) => return Ok(()),
            Err(LedgerError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(LedgerError::Conflict { id: to })
}

/// Why an early revoke was refused.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("no grant {0}")]
    NotFound(GrantId),
    #[error(
        "grant {id} is {state}: only active grants, or failed or revoking ones, can be revoked (a pending grant is still being applied)"
    )]
    NotRevocable { id: GrantId, state: GrantState },
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Revokes one grant now (the `revoke-access` function), with the same rules as the timer.
pub async fn revoke_now(
    ctx: &Context,
    id: GrantId,
    deadline: Deadline,
) -> Result<GrantRecord, RevokeError> {
    let record = match ctx.ledger.get(id).await {
        Ok(v) => v,
        Err(LedgerError::NotFound { .. }) => return Err(RevokeError::NotFound(id)),
        Err(e) => return Err(e.into()),
    };
    if !matches!(
        record.record.state,
        GrantState::Active | GrantState::Failed | GrantState::Revoking
    ) {
        return Err(RevokeError::NotRevocable {
            id,
            state: record.record.state,
        });
    }
    let outcome = revoke_grants(ctx, vec![record], ctx.now(), deadline).await;
    if let Some(done) = outcome.revoked.into_iter().next() {
        return Ok(done);
    }
    Err(RevokeError::Failed(
        outcome
            .failed
            .into_iter()
            .next()
            .map(|(_, e)| e)
            .unwrap_or_else(|| "the grant changed meanwhile; retry".to_owned()),
    ))
}
