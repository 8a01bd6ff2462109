//! Expire and reconcile: what the `revoke-expired` timer does on every run, and what an early revoke
//! does for one grant.
//!
//! A run finds the due records (expired `active` grants, `revoking`/`failed` ones whose retry time has
//! come, `pending` ones left half-done by a process that died), finishes or rolls back the stale
//! `pending` ones by reading Unity Catalog, then revokes the ending grants together: one `PATCH` per
//! securable carrying every principal's removals, removing only what the product added and no other
//! active grant of the same principal still needs (that is handed over to the grant that needs it).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use url::Url;

use super::Context;
use super::apply::read_holdings;
use crate::databricks::{Deadline, PermissionsChange};
use crate::domain::{Principal, PrivilegeSet, Securable};
use crate::ledger::{
    DueGroup, DueQuery, GrantId, GrantRecord, GrantState, LedgerError, SecurableChange, Versioned,
};
use crate::planning::grant::{Facts, Holdings, PlannedChange};
use crate::planning::revoke::{Ending, RevocationPlan, Staying, plan_revocation, restorations};

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

/// What a revoke of several grants did.
#[derive(Debug, Default)]
pub struct RevokeOutcome {
    /// How many grants were revoked and their records closed.
    pub revoked: u64,
    /// The closed records of the revoked grants that were held whole throughout (an early revoke's);
    /// a sweep only counts its grants.
    pub revoked_records: Vec<GrantRecord>,
    pub failed: Vec<(GrantId, String)>,
    pub kept: u64,
    pub alerts: Vec<String>,
}

/// An ending grant once marked `revoking`, in brief: what planning, the `PATCH`es and closing need.
/// A wave holds one per grant, so what many grants repeat is shared ([`Shared`]), not copied.
struct Marked {
    id: GrantId,
    /// The version written when it was marked: closing changes the record only if it is still at it.
    version: String,
    attempts: u32,
    scope: Arc<Scope>,
    ending: Ending<GrantId>,
    /// The whole record, kept for shared grants (their steps read it) and when asked (a small run);
    /// otherwise read again, by chunks, when the grant is closed.
    record: Option<Box<Versioned<GrantRecord>>>,
}

/// Where a grant is: its workspace (configured name and host) and catalog.
#[derive(PartialEq, Eq)]
struct Scope {
    workspace_name: String,
    host: Arc<str>,
    catalog: String,
}

/// One copy per wave of what its briefs repeat: the scope of a catalog's grants, and each securable
/// (a catalog's grants name its catalog and schemas over and over). Names are reference-counted, so a
/// shared copy costs a pointer.
#[derive(Default)]
struct Shared {
    scope: Option<Arc<Scope>>,
    securables: HashSet<Securable>,
}

impl Shared {
    fn scope(&mut self, r: &GrantRecord) -> Arc<Scope> {
        let catalog = r.securable.catalog_name().as_str();
        match &self.scope {
            // Records come a catalog at a time: the last scope is nearly always the one.
            Some(s)
                if s.catalog == catalog
                    && *s.host == *r.workspace.host
                    && s.workspace_name == r.workspace.name =>
            {
                Arc::clone(s)
            }
            _ => {
                let scope = Arc::new(Scope {
                    workspace_name: r.workspace.name.clone(),
                    host: r.workspace.host.as_str().into(),
                    catalog: catalog.to_owned(),
                });
                self.scope = Some(Arc::clone(&scope));
                scope
            }
        }
    }

    fn securable(&mut self, s: &Securable) -> Securable {
        match self.securables.get(s) {
            Some(shared) => shared.clone(),
            None => {
                self.securables.insert(s.clone());
                s.clone()
            }
        }
    }
}

impl Marked {
    fn of(v: Versioned<GrantRecord>, keep: bool, shared: &mut Shared) -> Self {
        let r = &v.record;
        let scope = shared.scope(r);
        let brief = Self {
            id: r.id,
            version: v.version.clone(),
            attempts: r.attempts,
            ending: Ending {
                id: r.id,
                workspace: Arc::clone(&scope.host),
                principal: r.principal.clone(),
                added: r
                    .added
                    .iter()
                    .map(|c| PlannedChange {
                        securable: shared.securable(&c.securable),
                        add: c.privileges.clone(),
                    })
                    .collect(),
            },
            scope,
            record: None,
        };
        Self {
            record: (keep || r.sharing.is_some()).then(|| Box::new(v)),
            ..brief
        }
    }
}

/// Revokes `ending` grants together. Each is marked `revoking` first (so a crash leaves it due again),
/// then one `PATCH` per securable removes every principal's privileges that can go.
pub async fn revoke_grants(
    ctx: &Context,
    ending: Vec<Versioned<GrantRecord>>,
    now: OffsetDateTime,
    deadline: Deadline,
) -> RevokeOutcome {
    let mut shared = Shared::default();
    let marked = mark_revoking(ctx, ending, now)
        .await
        .into_iter()
        .map(|v| Marked::of(v, true, &mut shared))
        .collect();
    finish_revoke(ctx, marked, now, deadline).await
}

/// Marks each ending grant `revoking`, with a retry time in case this run dies (one ledger batch).
/// Answers the grants marked; one that changed meanwhile is left to the next run.
async fn mark_revoking(
    ctx: &Context,
    ending: Vec<Versioned<GrantRecord>>,
    now: OffsetDateTime,
) -> Vec<Versioned<GrantRecord>> {
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
    let mut marked: Vec<Versioned<GrantRecord>> = Vec::with_capacity(ids.len());
    for (id, result) in ids.into_iter().zip(ctx.ledger.update_many(to_mark).await) {
        match result {
            Ok(stored) => marked.push(stored),
            Err(e) => {
                tracing::warn!(grant = %id, error = %e, "could not mark the grant revoking; next run");
            }
        }
    }
    marked
}

/// Revokes grants already marked `revoking`: finds what the principals' other live grants still need,
/// sends one `PATCH` per securable, hands over what stays, and closes each grant.
async fn finish_revoke(
    ctx: &Context,
    mut marked: Vec<Marked>,
    now: OffsetDateTime,
    deadline: Deadline,
) -> RevokeOutcome {
    let mut outcome = RevokeOutcome::default();
    if marked.is_empty() {
        return outcome;
    }
    let phase = std::time::Instant::now();

    // 1. Every other live grant of the same principals that can share a securable with the ending
    //    ones (same workspace, same catalog): what they still need. One ledger query per workspace.
    //    Kept until after the `PATCH`es, which look again for grants approved meanwhile (3a).
    let mut known: BTreeSet<GrantId> = marked.iter().map(|m| m.id).collect();
    let mut per_workspace: BTreeMap<&str, (BTreeSet<String>, BTreeSet<Principal>)> =
        BTreeMap::new();
    for m in &marked {
        let (catalogs, principals) = per_workspace
            .entry(m.scope.workspace_name.as_str())
            .or_default();
        // A wave's grants share a few scopes: copy each catalog name once, not once per grant.
        if !catalogs.contains(&m.scope.catalog) {
            catalogs.insert(m.scope.catalog.clone());
        }
        principals.insert(m.ending.principal.clone());
    }
    // Owned, because the briefs change below while the lookups are kept.
    let lookups: Lookups = per_workspace
        .into_iter()
        .map(|(workspace, wanted)| (workspace.to_owned(), wanted))
        .collect();
    let staying = match live_others(ctx, &lookups, &known).await {
        Ok(staying) => staying,
        Err(e) => {
            // Without the other grants we cannot know what is shared: revoke nothing for them now.
            tracing::warn!(error = %e, "cannot list the principals' other grants; their revokes wait for the next run");
            let error = format!("ledger unavailable: {e}");
            close(ctx, marked, |_| Some(error.clone()), now, &mut outcome).await;
            return outcome;
        }
    };
    tracing::debug!(
        staying = staying.len(),
        ms = phase.elapsed().as_millis() as u64,
        "found the staying grants"
    );

    // 2. The plan: removals per securable, handovers to staying grants.
    let plan = plan_revocation(marked.iter().map(|m| &m.ending), &staying);
    known.extend(staying.iter().map(|s| s.id));
    drop(staying);
    // From here on the plan says what each grant's revoke depends on: the briefs' `added` can go.
    for m in &mut marked {
        m.ending.added = Vec::new();
    }

    let names = names_of(&marked);
    // 3. Staying grants whose need was met only through a broader privilege that goes now get their
    //    own narrow one first (claimed in their record, then added); where that fails, the broad one
    //    stays for that principal and the ending grants behind it are retried.
    let mut held_back: BTreeMap<(usize, Principal), String> = BTreeMap::new();
    let mut kept_back: BTreeMap<(usize, Principal), PrivilegeSet> = BTreeMap::new();
    if !plan.substitutions.is_empty() {
        let needs: Vec<Need> = plan
            .substitutions
            .iter()
            .map(|sub| Need {
                to: sub.to,
                host: sub.workspace.clone(),
                principal: sub.principal.clone(),
                securable: sub.securable.clone(),
                privileges: sub.privileges.clone(),
            })
            .collect();
        let results = secure_needs(ctx, &names, &needs, deadline, &mut outcome).await;
        for (sub, result) in plan.substitutions.iter().zip(results) {
            if let Err(e) = result {
                tracing::warn!(grant = %sub.to, securable = %sub.securable, error = %e, "a staying grant's own privilege could not be put in place; the broader one it relies on stays for now");
                for (i, privilege) in &sub.protects {
                    held_back.insert((*i, sub.principal.clone()), e.clone());
                    kept_back
                        .entry((*i, sub.principal.clone()))
                        .or_default()
                        .insert(*privilege);
                }
            }
        }
    }

    // 4. One PATCH per securable; remember which failed (by the removal's index in the plan).
    let mut failed_on: Vec<Option<String>> = vec![None; plan.removals.len()];
    for (i, removal) in plan.removals.iter().enumerate() {
        let changes: Vec<PermissionsChange> = removal
            .removals
            .iter()
            .map(
                |(principal, privileges): (&Principal, &PrivilegeSet)| PermissionsChange {
                    principal: principal.clone(),
                    add: PrivilegeSet::new(),
                    remove: match kept_back.get(&(i, principal.clone())) {
                        Some(kept) => privileges.difference(kept).copied().collect(),
                        None => privileges.clone(),
                    },
                },
            )
            .filter(|c| !c.remove.is_empty())
            .collect();
        if changes.is_empty() {
            continue;
        }
        let result = patch(
            ctx,
            &removal.workspace,
            &removal.securable,
            &changes,
            deadline,
        )
        .await;
        if let Err(e) = result {
            tracing::warn!(securable = %removal.securable, error = %e, "revoke failed on this securable");
            failed_on[i] = Some(e);
        }
    }

    // 4a. Grants approved since step 1 (an approval writes its record before it reads Unity Catalog, so
    //     one that counted on a privilege removed in step 3 is in the ledger by now): add back what they
    //     need, and hand it over to them.
    let removed: Vec<bool> = failed_on.iter().map(Option::is_none).collect();
    let rescue_failed = restore_for_newcomers(
        ctx,
        (&lookups, &names),
        &known,
        &plan,
        &removed,
        deadline,
        &mut outcome,
    )
    .await;
    drop(lookups);
    drop(known);

    // 4b. Delta Sharing grants: SELECT on the share, the table from the share (state-based).
    let shared: Vec<Versioned<GrantRecord>> = marked
        .iter()
        .filter_map(|m| m.record.as_deref())
        .filter(|v| v.record.sharing.is_some())
        .cloned()
        .collect();
    let unshare_failed = super::unshare::unshare(ctx, &shared, deadline).await;
    drop(shared);

    // 5. Hand over what staying grants still need exactly, so they remove it when they end.
    let mut handover_failed: BTreeMap<GrantId, String> = BTreeMap::new();
    for h in &plan.handovers {
        outcome.kept += h.privileges.len() as u64;
        match hand_over(ctx, h.to, &h.securable, &h.privileges).await {
            Ok(true) => {}
            // It ended meanwhile: retry the ending grant, whose next plan removes the privilege.
            Ok(false) => {
                handover_failed.insert(h.from, format!("grant {} ended during the handover", h.to));
            }
            Err(e) => {
                handover_failed.insert(h.from, format!("handover to {} failed: {e}", h.to));
            }
        }
    }

    // 6. Close each ending grant, or schedule its retry.
    let error_of = |m: &Marked| {
        plan.removed_by_grant
            .get(&m.id)
            .into_iter()
            .flatten()
            .find_map(|&i| {
                let key = (i, m.ending.principal.clone());
                failed_on[i]
                    .clone()
                    .or_else(|| held_back.get(&key).cloned())
                    .or_else(|| rescue_failed.get(&key).cloned())
            })
            .or_else(|| handover_failed.get(&m.id).cloned())
            .or_else(|| unshare_failed.get(&m.id).cloned())
    };
    close(ctx, marked, error_of, now, &mut outcome).await;
    outcome
}

/// Per workspace name: the catalogs and principals of a wave's ending grants.
type Lookups = BTreeMap<String, (BTreeSet<String>, BTreeSet<Principal>)>;

/// The live grants (pending or active) of `lookups`' principals in their workspaces and catalogs,
/// other than `except`: what they need. One ledger query per workspace.
async fn live_others(
    ctx: &Context,
    lookups: &Lookups,
    except: &BTreeSet<GrantId>,
) -> Result<Vec<Staying<GrantId>>, LedgerError> {
    let mut found = Vec::new();
    for (workspace, (catalogs, principals)) in lookups {
        let others = ctx
            .ledger
            .live_grants_sharing(workspace, catalogs, principals, except)
            .await?;
        found.extend(others.into_iter().map(|o| {
            let claims = claims_of(&o.record);
            Staying {
                id: o.record.id,
                workspace: o.record.workspace.host.into(),
                principal: o.record.principal,
                target: o.record.securable,
                privileges: o.record.requested_privileges,
                claims,
            }
        }));
    }
    Ok(found)
}

/// One `PATCH` of `changes` on `securable` in the workspace at `host` (as the ledger records it).
async fn patch(
    ctx: &Context,
    host: &str,
    securable: &Securable,
    changes: &[PermissionsChange],
    deadline: Deadline,
) -> Result<(), String> {
    let url = Url::parse(host).map_err(|e| format!("bad workspace host in the ledger: {e}"))?;
    ctx.grants
        .update(&url, securable, changes, deadline)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Looks for live grants of the wave's principals that are not `known` (approved after step 1 of
/// [`finish_revoke`]) and puts in place for each its own privilege that it relied on and the plan's
/// `removed` changes took away (directly, or a broader privilege it was met through), claimed in its
/// record first ([`secure_needs`]). Answers, per (removal index, principal), why that failed: the ending
/// grants behind the removal are then retried, and the retry, seeing the new grant as staying, plans
/// the same substitution again. A failure is also logged as an alert and the new grant's id goes into
/// the run's `alerts`, since its principal lacks access until then.
async fn restore_for_newcomers(
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
async fn close(
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
async fn hand_over(
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
struct Need {
    to: GrantId,
    /// The workspace host (as the ledger records it).
    host: String,
    principal: Principal,
    securable: Securable,
    privileges: PrivilegeSet,
}

/// The configured workspace name of each host among the marked grants (the ledger is queried by name).
fn names_of(marked: &[Marked]) -> BTreeMap<String, String> {
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
async fn secure_needs(
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
async fn facts_on(
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
