//! Revoking ending grants together: mark them `revoking`, plan one change per securable, send the
//! `PATCH`es.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use time::OffsetDateTime;
use url::Url;

use super::backoff;
use super::finish::{
    Need, claims_of, close, hand_over, names_of, restore_for_newcomers, secure_needs,
};
use crate::databricks::{Deadline, PermissionsChange};
use crate::domain::{Principal, PrivilegeSet, Securable};
use crate::ledger::{GrantId, GrantRecord, GrantState, LedgerError, Versioned};
use crate::planning::grant::PlannedChange;
use crate::planning::revoke::{Ending, Staying, plan_revocation};
use crate::usecases::Context;

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
pub(super) struct Marked {
    pub(super) id: GrantId,
    /// The version written when it was marked: closing changes the record only if it is still at it.
    pub(super) version: String,
    pub(super) attempts: u32,
    pub(super) scope: Arc<Scope>,
    pub(super) ending: Ending<GrantId>,
    /// The whole record, kept for shared grants (their steps read it) and when asked (a small run);
    /// otherwise read again, by chunks, when the grant is closed.
    pub(super) record: Option<Box<Versioned<GrantRecord>>>,
}

/// Where a grant is: its workspace (configured name and host) and catalog.
#[derive(PartialEq, Eq)]
pub(super) struct Scope {
    pub(super) workspace_name: String,
    pub(super) host: Arc<str>,
    pub(super) catalog: String,
}

/// One copy per wave of what its briefs repeat: the scope of a catalog's grants, and each securable
/// (a catalog's grants name its catalog and schemas over and over). Names are reference-counted, so a
/// shared copy costs a pointer.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) scope: Option<Arc<Scope>>,
    pub(super) securables: HashSet<Securable>,
}

impl Shared {
    pub(super) fn scope(&mut self, r: &GrantRecord) -> Arc<Scope> {
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

    pub(super) fn securable(&mut self, s: &Securable) -> Securable {
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
    pub(super) fn of(v: Versioned<GrantRecord>, keep: bool, shared: &mut Shared) -> Self {
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
pub(super) async fn mark_revoking(
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
pub(super) async fn finish_revoke(
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
    let unshare_failed = crate::usecases::unshare::unshare(ctx, &shared, deadline).await;
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
pub(super) type Lookups = BTreeMap<String, (BTreeSet<String>, BTreeSet<Principal>)>;

/// The live grants (pending or active) of `lookups`' principals in their workspaces and catalogs,
/// other than `except`: what they need. One ledger query per workspace.
pub(super) async fn live_others(
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
pub(super) async fn patch(
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
