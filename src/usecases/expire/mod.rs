//! Expire and reconcile: what the `revoke-expired` timer does on every run, and what an early revoke
//! does for one grant.
//!
//! A run finds the due records (expired `active` grants, `revoking`/`failed` ones whose retry time has
//! come, `pending` ones left half-done by a process that died), finishes or rolls back the stale
//! `pending` ones by reading Unity Catalog, then revokes the ending grants together: one `PATCH` per
//! securable carrying every principal's removals, removing only what the product added and no other
//! active grant of the same principal still needs (that is handed over to the grant that needs it).

use serde::Serialize;
use time::OffsetDateTime;
use url::Url;

use super::Context;
use super::apply::read_holdings;
use crate::databricks::Deadline;
use crate::ledger::{
    DueGroup, DueQuery, GrantId, GrantRecord, GrantState, LedgerError, SecurableChange, Versioned,
};

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
    /// Due grants not started because the run's time budget was spent: the next run takes them.
    pub deferred: u64,
    /// Ids of grants whose revoke keeps failing (alert-worthy).
    pub alerts: Vec<String>,
}

/// Backoff before the next attempt after `attempts` failures: 1, 2, 4, … minutes, at most an hour.
pub fn backoff(attempts: u32) -> time::Duration {
    let minutes = 1_i64 << attempts.min(10);
    time::Duration::minutes(minutes).min(MAX_BACKOFF)
}

/// How many due records a sweep holds whole at once. Between chunks it keeps only what planning, the
/// `PATCH`es and closing need of each ending grant (its id, version, principal and `added`).
pub const SWEEP_CHUNK: usize = 500;

/// About how many ending grants a sweep revokes together (a wave: whole catalogs, at least one; two
/// waves' briefs and one wave's plan are in memory at once, well under 1 kB per grant). The
/// principals' other live grants are looked up once per wave, and the next wave is read and marked
/// while this one's `PATCH`es wait on Databricks.
pub const SWEEP_WAVE: usize = 10_000;

/// A sweep starts no new catalog when less than this (or a quarter of its budget, if less) is left of
/// its time budget: revoking what was marked must still fit, and the rest stays due for the next run.
pub const SWEEP_RESERVE: std::time::Duration = std::time::Duration::from_secs(60);

/// One timer run at `now`.
///
/// Due grants are taken in waves of whole groups, a group being the grants on one catalog of one
/// workspace: grants in different groups touch no common securable, so each securable still gets at most
/// one `PATCH` per run. A group's records are read and marked `revoking` in chunks of [`SWEEP_CHUNK`], so
/// memory is bounded by a chunk of whole records plus a brief of each ending grant of two waves (the
/// one being revoked and the next one being marked), not by whole records of the backlog.
pub async fn sweep(
    ctx: &Context,
    now: OffsetDateTime,
    deadline: Deadline,
) -> Result<SweepReport, LedgerError> {
    let query = DueQuery::at(now);
    let groups = ctx.ledger.find_due_groups(&query).await?;
    let mut report = SweepReport {
        due: groups.iter().map(|g| g.ids.len() as u64).sum(),
        ..SweepReport::default()
    };
    let mut groups = groups.into_iter();
    let reserve = SWEEP_RESERVE.min(deadline.remaining() / 4);
    let mut wave = next_wave(ctx, &query, &mut groups, now, deadline, reserve).await;
    loop {
        report.finished += wave.finished;
        report.deferred += wave.deferred;
        let last = wave.last;
        let (outcome, next) = if last {
            (finish_revoke(ctx, wave.marked, now, deadline).await, None)
        } else {
            let (outcome, next) = futures::join!(
                finish_revoke(ctx, wave.marked, now, deadline),
                next_wave(ctx, &query, &mut groups, now, deadline, reserve)
            );
            (outcome, Some(next))
        };
        report.revoked += outcome.revoked;
        report.failed += outcome.failed.len() as u64;
        report.kept += outcome.kept;
        report.alerts.extend(outcome.alerts);
        if let Some(e) = wave.error {
            return Err(e);
        }
        match next {
            Some(next) => wave = next,
            None => break,
        }
    }
    if report.deferred > 0 {
        tracing::warn!(
            deferred = report.deferred,
            "the run's time budget is spent: the remaining due grants are left for the next run"
        );
    }
    Ok(report)
}

/// Due grants read and marked `revoking`, whole catalogs at a time, waiting for their revoke.
#[derive(Default)]
struct Wave {
    marked: Vec<Marked>,
    /// Stale `pending` grants found applied and marked active while reading.
    finished: u64,
    /// Due grants of catalogs not started for lack of time.
    deferred: u64,
    /// A ledger read failed: what was marked is still revoked, then the run stops with this error.
    error: Option<LedgerError>,
    /// Nothing comes after this wave.
    last: bool,
}

/// Reads and marks whole catalogs until the wave holds about [`SWEEP_WAVE`] grants, the groups run out
/// or less than `reserve` is left before `deadline`.
async fn next_wave(
    ctx: &Context,
    query: &DueQuery,
    groups: &mut impl Iterator<Item = DueGroup>,
    now: OffsetDateTime,
    deadline: Deadline,
    reserve: std::time::Duration,
) -> Wave {
    let mut wave = Wave::default();
    let mut shared = Shared::default();
    while wave.marked.len() < SWEEP_WAVE {
        if deadline.remaining() <= reserve {
            wave.deferred = groups.map(|g| g.ids.len() as u64).sum();
            wave.last = true;
            break;
        }
        let Some(group) = groups.next() else {
            wave.last = true;
            break;
        };
        let started = std::time::Instant::now();
        let before = wave.marked.len();
        wave.marked.reserve(group.ids.len());
        for chunk in group.ids.chunks(SWEEP_CHUNK) {
            let mut due = Vec::with_capacity(chunk.len());
            for result in ctx.ledger.get_many(chunk).await {
                match result {
                    // Changed since the listing (an early revoke, a renewal): only what is still due.
                    Ok(v) if query.is_due(&v.record) => due.push(v),
                    Ok(_) | Err(LedgerError::NotFound { .. }) => {}
                    Err(e) => {
                        wave.error = Some(e);
                        break;
                    }
                }
            }
            let ending = settle_pending(ctx, due, now, deadline, &mut wave.finished).await;
            wave.marked.extend(
                mark_revoking(ctx, ending, now)
                    .await
                    .into_iter()
                    .map(|v| Marked::of(v, false, &mut shared)),
            );
            if wave.error.is_some() {
                break;
            }
        }
        tracing::info!(
            workspace = %group.workspace,
            catalog = %group.catalog,
            grants = wave.marked.len() - before,
            ms = started.elapsed().as_millis() as u64,
            "catalog read and marked revoking"
        );
        if wave.error.is_some() {
            wave.last = true;
            break;
        }
    }
    wave
}

/// Finishes or rolls back the stale `pending` grants among `due`; answers the grants that end now.
async fn settle_pending(
    ctx: &Context,
    due: Vec<Versioned<GrantRecord>>,
    now: OffsetDateTime,
    deadline: Deadline,
    finished: &mut u64,
) -> Vec<Versioned<GrantRecord>> {
    let mut ending = Vec::with_capacity(due.len());
    for record in due {
        if record.record.state == GrantState::Pending && record.record.sharing.is_some() {
            match super::unshare::reconcile_pending(ctx, record, now, deadline).await {
                super::unshare::Reconciled::Finished => *finished += 1,
                super::unshare::Reconciled::RollBack(r) => ending.push(*r),
                super::unshare::Reconciled::Skipped => {}
            }
        } else if record.record.state == GrantState::Pending {
            match reconcile_pending(ctx, record, now, deadline).await {
                Reconciled::Finished => *finished += 1,
                Reconciled::RollBack(r) => ending.push(*r),
                Reconciled::Skipped => {}
            }
        } else {
            ending.push(record);
        }
    }
    ending
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
    // The plan's changes are sent one at a time, outermost first, and the first that fails stops the
    // rest; each `PATCH` adds its privileges together. So only the changes before the first that is not
    // wholly present can have been sent: a privilege of the plan found after it was granted by someone
    // else meanwhile (by hand, say) and is not rolled back.
    let fully_present = |c: &&SecurableChange| {
        holdings
            .get(&c.securable)
            .is_some_and(|held| c.privileges.is_subset(held))
    };
    let sent: Vec<SecurableChange> = record
        .record
        .plan
        .iter()
        .take_while(fully_present)
        .cloned()
        .collect();
    if sent.len() == record.record.plan.len() {
        // The changes were made right after the record was written (the caller may already have been
        // told `granted`): count the duration from then, not from this run, so access never lasts longer
        // than the answer said.
        let applied_at = record.record.requested_at.min(now);
        if record.record.mark_active(sent, applied_at).is_ok()
            && ctx.ledger.update(&record).await.is_ok()
        {
            tracing::info!(grant = %record.record.id, "stale pending grant found applied: now active");
            return Reconciled::Finished;
        }
        return Reconciled::Skipped;
    }
    // Merged, never replaced: what a revoke handed over to this grant while it was pending stays
    // claimed, and the roll-back (the revoke planner) decides what of it can go.
    record.record.merge_added(sent);
    Reconciled::RollBack(Box::new(record))
}

mod finish;
mod revoke;

use revoke::{Marked, Shared, finish_revoke, mark_revoking};
pub use revoke::{RevokeOutcome, revoke_grants};

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
    if let Some(done) = outcome.revoked_records.into_iter().next() {
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
