//! Ending Delta Sharing grants, and finishing or undoing ones a dead process left `pending`. State-based
//! and safe to repeat: what exists is read first, and only shares and recipients carrying uc-access's
//! mark are changed — `SELECT` for a recipient when no other live grant gives it that share, the table
//! when no live grant uses the share.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use url::Url;

use super::Context;
use super::share::read_facts;
use crate::databricks::{Deadline, ObjectAction};
use crate::ledger::{GrantId, GrantRecord, ListFilter, ShareGrant, Versioned};
use crate::planning::share::{self as plan, StillNeeded, UnshareFacts, UnshareStep, plan_unshare};

/// Ends the sharing side of `ending` grants: `SELECT` for each recipient no other live grant still
/// gives this share, and the table from each share uc-access created once no live grant uses it.
/// Answers the failures per grant (the caller retries them).
pub async fn unshare(
    ctx: &Context,
    ending: &[Versioned<GrantRecord>],
    deadline: Deadline,
) -> BTreeMap<GrantId, String> {
    let mut failed = BTreeMap::new();
    let ending_ids: Vec<GrantId> = ending.iter().map(|v| v.record.id).collect();
    for v in ending {
        let Some(sharing) = &v.record.sharing else {
            continue;
        };
        if let Err(e) = unshare_one(ctx, &v.record, sharing, &ending_ids, deadline).await {
            tracing::warn!(grant = %v.record.id, error = %e, "ending a shared grant failed");
            failed.insert(v.record.id, e);
        }
    }
    failed
}

async fn unshare_one(
    ctx: &Context,
    record: &GrantRecord,
    sharing: &ShareGrant,
    ending: &[GrantId],
    deadline: Deadline,
) -> Result<(), String> {
    let host = Url::parse(&record.workspace.host)
        .map_err(|e| format!("bad workspace host in the ledger: {e}"))?;
    let table = record.securable.full_name();
    let api = ctx.sharing.api.as_ref();
    let needed = still_needed(ctx, record, sharing, ending).await?;
    let (found_recipient, found_share) = futures_util::try_join!(
        api.get_recipient(&host, &sharing.recipient, deadline),
        api.get_share(&host, &sharing.share, deadline)
    )
    .map_err(|e| e.to_string())?;
    let facts = UnshareFacts {
        recipient_ours: found_recipient.as_ref().is_some_and(|r| {
            plan::recipient_is_ours(
                r.authentication_type.as_deref(),
                &r.properties,
                &sharing.object_id.to_string(),
            )
        }),
        share_ours: found_share
            .as_ref()
            .is_some_and(|s| plan::share_is_ours(s.comment.as_deref(), &table)),
        share_has_table: found_share
            .as_ref()
            .is_some_and(|s| s.objects.iter().any(|o| o.eq_ignore_ascii_case(&table))),
    };
    // Every step is tried even when one fails: either one alone ends the recipient's access to the
    // table, and the failed one is retried with the grant.
    let mut errors = Vec::new();
    for step in plan_unshare(facts, needed) {
        let result = match step {
            UnshareStep::RemoveSelect => api
                .set_select(&host, &sharing.share, &sharing.recipient, false, deadline)
                .await
                .map(|_| ()),
            UnshareStep::RemoveTable => {
                api.update_table(
                    &host,
                    &sharing.share,
                    ObjectAction::Remove,
                    &table,
                    deadline,
                )
                .await
            }
        };
        if let Err(e) = result {
            errors.push(e.to_string());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// What other live grants (not ending now) need of this grant's share and recipient.
async fn still_needed(
    ctx: &Context,
    record: &GrantRecord,
    sharing: &ShareGrant,
    ending: &[GrantId],
) -> Result<StillNeeded, String> {
    let filter = ListFilter {
        workspace: Some(record.workspace.name.clone()),
        securable: Some(record.securable.clone()),
        ..ListFilter::default()
    };
    let others = ctx
        .ledger
        .list(&filter)
        .await
        .map_err(|e| format!("ledger unavailable: {e}"))?;
    let live: Vec<&ShareGrant> = others
        .iter()
        .filter(|o| o.record.state.keeps_access() && !ending.contains(&o.record.id))
        .filter_map(|o| o.record.sharing.as_ref())
        .filter(|s| s.share == sharing.share)
        .collect();
    Ok(StillNeeded {
        by_recipient: live.iter().any(|s| s.recipient == sharing.recipient),
        by_anyone: !live.is_empty(),
    })
}

/// A stale `pending` sharing grant (its process died): finished if the recipient holds `SELECT` on a
/// share of ours holding the table, else rolled back.
#[derive(Debug)]
pub enum Reconciled {
    Finished,
    RollBack(Box<Versioned<GrantRecord>>),
    Skipped,
}

pub async fn reconcile_pending(
    ctx: &Context,
    mut record: Versioned<GrantRecord>,
    now: OffsetDateTime,
    deadline: Deadline,
) -> Reconciled {
    let Some(sharing) = record.record.sharing.clone() else {
        return Reconciled::Skipped;
    };
    let Ok(host) = Url::parse(&record.record.workspace.host) else {
        return Reconciled::Skipped;
    };
    let table = record.record.securable.full_name();
    let facts = read_facts(
        ctx.sharing.api.as_ref(),
        &host,
        &sharing.recipient,
        &sharing.share,
        &table,
        sharing.object_id,
        deadline,
    )
    .await;
    let (facts, _) = match facts {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(grant = %record.record.id, error = %e, "cannot read Delta Sharing to reconcile a stale pending grant; next run");
            return Reconciled::Skipped;
        }
    };
    let complete = facts.recipient.as_ref().is_some_and(|r| r.ours)
        && facts.share.as_ref().is_some_and(|s| s.ours && s.has_table)
        && facts.recipient_has_select;
    if complete {
        // What this grant did is unknown; `granted_select` stays as recorded, so a sibling that
        // gave the same SELECT is not mistaken for this one (the revoke is state-based either way).
        if record.record.mark_active(Vec::new(), now).is_ok()
            && ctx.ledger.update(&record).await.is_ok()
        {
            tracing::info!(grant = %record.record.id, "stale pending shared grant found applied: now active");
            return Reconciled::Finished;
        }
        return Reconciled::Skipped;
    }
    Reconciled::RollBack(Box::new(record))
}
