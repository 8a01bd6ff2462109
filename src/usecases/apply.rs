//! Gathering facts before a grant and applying a plan after it: the principal's direct holdings on a
//! securable's lineage (one effective read, direct reads only where it shows something), one `PATCH` per securable that needs one (outermost first), and confirmation.
//!
//! Confirmation: the `PATCH` answer is the permissions API's own statement of the assignments after the
//! change, so it confirms the grant without another call. Only when that answer does not show what was
//! added (reads may lag a write for seconds) is the securable read back, a few times within the
//! caller's time budget; if the read still disagrees, the grant counts as applied — Unity Catalog
//! accepted it — and the disagreement is logged.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::future::try_join_all;
use url::Url;

use crate::databricks::{
    DatabricksError, Deadline, GetPermissionsOptions, GrantsApi, PermissionsChange,
    PrivilegeAssignment,
};
use crate::domain::{Principal, PrivilegeSet, Securable};
use crate::planning::grant::{Holdings, PlannedChange};

/// Reads what `principal` holds directly on `target` and each of its parents.
///
/// One effective-permissions read of `target` (Databricks documents that it includes what is inherited
/// from every parent) shows, for each level of the lineage, whether the principal's name holds anything
/// there. A level where it shows nothing holds nothing directly (a direct grant is always effective), so
/// it is not read again; a level where it shows something is read directly, because an effective
/// privilege may also arrive through a group (unverified how the real API attributes those) and planning
/// counts only direct grants. A cold approval with nothing held thus costs one read instead of one per
/// level, and a warm one (parents already held) no more than before.
pub async fn read_holdings(
    grants: &dyn GrantsApi,
    workspace: &Url,
    principal: &Principal,
    target: &Securable,
    deadline: Deadline,
) -> Result<Holdings, DatabricksError> {
    let lineage = target.lineage();
    let effective = grants
        .effective(workspace, target, Some(principal), deadline)
        .await?;
    let shown: BTreeSet<Securable> = effective
        .iter()
        .filter(|a| principal.matches_uc_name(&a.principal))
        .flat_map(|a| a.privileges.iter())
        .filter_map(|p| match &p.inherited_from_name {
            None => Some(target.clone()),
            // Inherited from outside the lineage (e.g. the metastore): not a level planning reads.
            Some(name) => lineage
                .iter()
                .find(|s| s.full_name().eq_ignore_ascii_case(name))
                .cloned(),
        })
        .collect();
    let options = GetPermissionsOptions {
        principal: Some(principal.clone()),
        page_size: None,
    };
    let levels: Vec<Securable> = lineage.into_iter().filter(|s| shown.contains(s)).collect();
    let reads = levels
        .iter()
        .map(|s| grants.get_direct(workspace, s, &options, deadline));
    let answers = try_join_all(reads).await?;
    Ok(levels
        .into_iter()
        .zip(answers)
        .filter_map(|(securable, assignments)| {
            let held = held_by(&assignments, principal);
            (!held.is_empty()).then_some((securable, held))
        })
        .collect())
}

/// The privileges `principal` holds in a list of assignments (Unity Catalog's case rules).
pub fn held_by(assignments: &[PrivilegeAssignment], principal: &Principal) -> PrivilegeSet {
    assignments
        .iter()
        .filter(|a| principal.matches_uc_name(&a.principal))
        .flat_map(|a| a.privileges.iter().copied())
        .collect()
}

/// How one `PATCH` went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedChange {
    pub change: PlannedChange,
    /// The privileges were seen after the change (in the answer or a read-back).
    pub confirmed: bool,
}

/// A plan that stopped part-way: what was applied before `error`.
#[derive(Debug)]
pub struct PartialApply {
    pub applied: Vec<AppliedChange>,
    pub error: DatabricksError,
}

/// Applies `changes` for `principal`, outermost securable first, one `PATCH` each.
pub async fn apply_additions(
    grants: &dyn GrantsApi,
    workspace: &Url,
    principal: &Principal,
    changes: &[PlannedChange],
    deadline: Deadline,
) -> Result<Vec<AppliedChange>, PartialApply> {
    let mut applied = Vec::with_capacity(changes.len());
    for change in changes {
        let patch = [PermissionsChange {
            principal: principal.clone(),
            add: change.add.clone(),
            remove: PrivilegeSet::new(),
        }];
        match grants
            .update(workspace, &change.securable, &patch, deadline)
            .await
        {
            Ok(after) => {
                let confirmed = change.add.is_subset(&held_by(&after, principal))
                    || read_back(grants, workspace, principal, change, deadline).await;
                if !confirmed {
                    tracing::warn!(
                        securable = %change.securable,
                        "the change was accepted but reads do not show it yet (read lag)"
                    );
                }
                applied.push(AppliedChange {
                    change: change.clone(),
                    confirmed,
                });
            }
            Err(error) => return Err(PartialApply { applied, error }),
        }
    }
    Ok(applied)
}

/// Reads the securable back a few times, tolerating lag, within the deadline.
async fn read_back(
    grants: &dyn GrantsApi,
    workspace: &Url,
    principal: &Principal,
    change: &PlannedChange,
    deadline: Deadline,
) -> bool {
    let options = GetPermissionsOptions {
        principal: Some(principal.clone()),
        page_size: None,
    };
    let mut wait = Duration::from_millis(200);
    for _ in 0..4 {
        if let Ok(now) = grants
            .get_direct(workspace, &change.securable, &options, deadline)
            .await
            && change.add.is_subset(&held_by(&now, principal))
        {
            return true;
        }
        if deadline.remaining() <= wait * 2 {
            break;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    false
}
