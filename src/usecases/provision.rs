//! Provision an approval: decide → resolve → plan from facts → record, then apply → answer.
//!
//! The order is what makes the product trustworthy. Policy decides before anything is looked up; the
//! ledger record (`pending`, with the plan) is written before Unity Catalog changes, so a process that
//! dies half-way leaves a record the timer finishes or undoes; the record becomes `active` with what was
//! actually added; and the workflow hears `granted` only after Unity Catalog accepted the change.
//!
//! Exactly once: the record's name derives from the idempotency key (the caller's, or one derived from
//! requester, target, workspace, securable and privileges), so concurrent duplicates race on one name and
//! one wins; the others wait for its outcome and answer the same.

use std::time::Duration;

use super::Context;
use super::apply::{PartialApply, apply_additions, read_holdings};
use crate::databricks::{DatabricksError, Deadline, DirectoryEntry};
use crate::domain::{
    AccessRequest, EntraObjectId, PrincipalKind, PrincipalStatus, Privilege, PrivilegeSet,
    ProvisioningMode, Securable, SecurableType, TableKind,
};
use crate::ledger::{
    Delivery, GrantRecord, GrantState, IdempotencyKey, LedgerError, NewGrant, SecurableChange,
    ShareGrant, Versioned, WorkspaceRef as LedgerWorkspace,
};
use crate::planning::grant::{Facts, GrantPlan, Holdings, needed, plan_grant};
use crate::planning::share::NameTaken;
use crate::policy::{self, Decision, Denial};
use crate::usecases::resolve::{
    AssigneeCheck, AssigneeUnverifiable, GroupApproval, MAX_GROUPS_CHECKED, ResolveError,
    Unverifiable,
};
use crate::usecases::share::ShareOutcome;

/// How often a duplicate looks again at a grant another delivery is applying.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(100);

/// What happened, for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Granted,
    AlreadyGranted,
    Extended,
    /// `dryRun`: the plan, nothing changed.
    Planned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::AlreadyGranted => "already_granted",
            Self::Extended => "extended",
            Self::Planned => "planned",
        }
    }
}

/// The outcome of one approval.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    /// The configured name of the workspace.
    pub workspace: String,
    pub principal: DirectoryEntry,
    pub decision: Decision,
    /// The record (absent for a dry run).
    pub record: Option<GrantRecord>,
    /// For a dry run: the plan that would be applied.
    pub plan: Option<GrantPlan>,
    /// Needed privileges the principal already held.
    pub already_held: Vec<SecurableChange>,
    /// Delta Sharing grants: the recipient, share and activation link.
    pub sharing: Option<ShareOutcome>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{}", .0.message)]
    Denied(Denial),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(
        "{0} is inactive in the Databricks account (users provisioned just in time become active at their first login)"
    )]
    PrincipalInactive(String),
    #[error(transparent)]
    Databricks(#[from] DatabricksError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Another delivery of this approval is still being applied, or being undone.
    #[error("{0}")]
    Busy(String),
    /// The caller's idempotency key already names a different request (the grant's id, for the log
    /// only: the answer never shows another request's grant).
    #[error(
        "idempotencyKey already belongs to a request for another principal, securable or privileges; use a new key"
    )]
    KeyReused(String),
    /// A re-delivery of an approval whose access has ended: it never restores access.
    #[error("{}", ended_message(*.until, *.early))]
    ApprovalEnded {
        grant: String,
        until: Option<time::OffsetDateTime>,
        early: bool,
    },
    /// Delta Sharing: the share or recipient name is taken by something uc-access did not create.
    #[error(transparent)]
    NameTaken(#[from] NameTaken),
    /// A privilege this kind of table cannot take (`MODIFY` on a view, `REFRESH` on a plain table),
    /// found by reading the table's type before anything changed.
    #[error(
        "{privilege} cannot be granted on {securable}: it is {kind_text}, which does not take {privilege} ({hint})",
        kind_text = .kind.with_article(),
        hint = not_applicable_hint(*.privilege)
    )]
    PrivilegeNotApplicable {
        privilege: Privilege,
        securable: String,
        kind: TableKind,
    },
}

fn not_applicable_hint(privilege: Privilege) -> &'static str {
    match privilege {
        Privilege::Modify => "views of every kind are read-only; ask for SELECT",
        Privilege::Refresh => "only materialized views and streaming tables are refreshed",
        _ => "see Unity Catalog's privileges reference",
    }
}

/// Refuses, before any change, a privilege the requested table cannot take. The table's type is read
/// only when a requested privilege depends on it (`MODIFY`, `REFRESH`), so the usual `SELECT` request
/// costs no extra call. A table that does not exist is reported as such here, with nothing changed.
pub(super) async fn check_table_kind(
    ctx: &Context,
    workspace: &url::Url,
    securable: &Securable,
    privileges: &PrivilegeSet,
    deadline: Deadline,
) -> Result<(), ProvisionError> {
    if securable.securable_type() != SecurableType::Table
        || !privileges.iter().any(|p| p.depends_on_table_kind())
    {
        return Ok(());
    }
    let kind = ctx
        .grants
        .table_kind(workspace, securable, deadline)
        .await?;
    match privileges.iter().find(|p| !p.applies_to(&kind)) {
        Some(privilege) => Err(ProvisionError::PrivilegeNotApplicable {
            privilege: *privilege,
            securable: securable.full_name(),
            kind,
        }),
        None => Ok(()),
    }
}

impl ProvisionError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Databricks(e) => e.is_retryable(),
            Self::Resolve(e) => e.is_retryable(),
            Self::Ledger(e) => e.is_retryable(),
            Self::Busy(_) => true,
            _ => false,
        }
    }
}

fn ended_message(until: Option<time::OffsetDateTime>, early: bool) -> String {
    let how = if early {
        "was revoked early by an operator"
    } else {
        "has ended"
    };
    match until {
        Some(t) => format!(
            "the access this approval gave {how}, and delivering the approval again does not restore it; the same request is accepted as a new approval from {}, or sooner with a new approvalId",
            t.replace_nanosecond(0)
                .unwrap_or(t)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        ),
        None => format!(
            "the access this approval (approvalId) gave {how}, and delivering it again does not restore it; a new approval needs a new approvalId"
        ),
    }
}

impl From<Denial> for ProvisionError {
    fn from(d: Denial) -> Self {
        Self::Denied(d)
    }
}

/// The key that makes deliveries of one approval the same request.
pub fn idempotency_key(request: &AccessRequest, privileges: &PrivilegeSet) -> IdempotencyKey {
    idempotency_key_for_mode(request, privileges, ProvisioningMode::Direct)
}

/// The key for a request provisioned in `mode`. Direct keys are unchanged from earlier releases; a
/// shared request derives a different key, so the same table asked for both ways is two grants.
pub fn idempotency_key_for_mode(
    request: &AccessRequest,
    privileges: &PrivilegeSet,
    mode: ProvisioningMode,
) -> IdempotencyKey {
    let raw = match &request.idempotency_key {
        // A caller's key is scoped to who asked (for `grant-access`, the calling operator): two callers
        // choosing the same key are two requests, and neither learns of the other's.
        Some(k) => format!(
            "caller:v2:{}:{}:{}",
            request.source.as_str(),
            request.requester,
            k.as_str()
        ),
        None => {
            let privileges: Vec<&str> = privileges.iter().map(|p| p.as_str()).collect();
            let target = request.target.map(|t| t.to_string()).unwrap_or_default();
            let securable = request.securable.to_string();
            let digest = crate::ledger::hash_hex(&[
                &request.requester.to_string(),
                &target,
                &request.grantee.to_string(),
                request.workspace.host.as_str(),
                &securable,
                &privileges.join(","),
            ]);
            match mode {
                ProvisioningMode::Direct => format!("derived:v1:{digest}"),
                ProvisioningMode::DeltaSharing => format!("derived:v1:share:{digest}"),
            }
        }
    };
    IdempotencyKey::parse(&raw).expect("keys built here are short printable text")
}

/// Whether a stored record is this request (the same key must never stand for two requests).
fn same_request(
    record: &GrantRecord,
    request: &AccessRequest,
    principal: &DirectoryEntry,
    decision: &Decision,
) -> bool {
    record.principal == principal.principal
        && record.securable == request.securable
        && record.workspace.name == request.workspace.name
        && record.requested_privileges == decision.privileges
}

/// For a group grantee: no approver may be a member of the group (they would approve their own
/// access), and when membership cannot be established the grant is refused as well.
async fn check_not_approved_from_inside(
    ctx: &Context,
    request: &AccessRequest,
    principal: &DirectoryEntry,
    deadline: Deadline,
) -> Result<(), ProvisionError> {
    if principal.principal.kind() != PrincipalKind::Group || !ctx.policy.block_self_approval() {
        return Ok(());
    }
    let group = principal.principal.uc_name();
    let checked = ctx
        .resolver
        .approver_in_group(
            &request.approval.approvers,
            request.approval.operator,
            principal,
            deadline,
        )
        .await?;
    let unverifiable = |why: String| {
        Denial::new(
            Denial::SELF_APPROVAL_UNVERIFIABLE,
            format!("uc-access cannot establish that no approver is a member of group {group}, which would receive this access: {why}"),
        )
        .into()
    };
    match checked {
        GroupApproval::Outside => Ok(()),
        GroupApproval::Member(approver) => Err(Denial::new(
            Denial::SELF_APPROVAL,
            format!(
                "approver {approver} is a member of group {group} that would receive this access; ask an approver outside the group"
            ),
        )
        .into()),
        GroupApproval::Unverifiable(Unverifiable::ExternalIdFilterRefused) => Err(unverifiable(
            "the Databricks account refused to look approvers up by Entra object id (its SCIM API does not accept an externalId filter); grant to each person by userName or objectId instead".into(),
        )),
        GroupApproval::Unverifiable(Unverifiable::ApproverNotFound(approver)) => {
            Err(unverifiable(format!(
                "no Databricks identity carries approver {approver}'s Entra object id (externalId), so they may be a member under one that does not; ask an approver outside the group whose Databricks identity is provisioned from Entra ID, or grant to each person instead"
            )))
        }
        GroupApproval::Unverifiable(Unverifiable::TooManyGroups) => Err(unverifiable(format!(
            "it nests more than {MAX_GROUPS_CHECKED} groups and only that many are read; grant to a group with fewer nested groups, or to each person"
        ))),
    }
}

/// Self-approval through assignee groups: the approval was assigned to users or groups (Purview's
/// `Approval.Assigned To`), and nobody who asked for or receives the access may be inside an assignee
/// group; when that cannot be established the request is refused as well. `grantee` is the grantee's
/// Entra object id, when established.
///
/// `grant-access` is exempt: its one approver is the calling operator, a person or an application named
/// by their own token, never a group.
pub(super) async fn check_not_in_assignee_groups(
    ctx: &Context,
    request: &AccessRequest,
    grantee: Option<EntraObjectId>,
    deadline: Deadline,
) -> Result<(), ProvisionError> {
    if !ctx.policy.block_self_approval()
        || request.source == crate::domain::RequestSource::GrantAccess
        || request.approval.operator.is_some()
    {
        return Ok(());
    }
    let mut people = vec![request.requester];
    people.extend(request.target);
    people.extend(grantee);
    people.dedup();
    let checked = ctx
        .resolver
        .people_in_assignee_groups(&people, &request.approval.approvers, deadline)
        .await?;
    let unverifiable = |why: String| {
        Err(Denial::new(
            Denial::SELF_APPROVAL_UNVERIFIABLE,
            format!(
                "uc-access cannot establish that the person who asked for or receives this access is outside the groups the approval was assigned to: {why}"
            ),
        )
        .into())
    };
    match checked {
        AssigneeCheck::Outside => Ok(()),
        AssigneeCheck::InGroup { group, member } => Err(Denial::new(
            Denial::SELF_APPROVAL,
            format!(
                "{member} is a member of group {group}, to which the approval was assigned, so they could approve their own access; assign the approval to people or groups they are not in"
            ),
        )
        .into()),
        AssigneeCheck::Unverifiable(AssigneeUnverifiable::UnknownAssignee(assignee)) => {
            unverifiable(format!(
                "assignee {assignee} is no user, service principal or group the Databricks account knows by Entra object id, so it may be a group whose members uc-access cannot read; the platform team can switch on Microsoft Graph (UC_ACCESS_RESOLVE_WITH_GRAPH), or assign approvals to people provisioned from Entra ID"
            ))
        }
        AssigneeCheck::Unverifiable(AssigneeUnverifiable::ExternalIdFilterRefused) => unverifiable(
            "the Databricks account refused to look assignees up by Entra object id; the platform team can switch on Microsoft Graph (UC_ACCESS_RESOLVE_WITH_GRAPH)".into(),
        ),
        AssigneeCheck::Unverifiable(AssigneeUnverifiable::GraphRefused) => unverifiable(
            "Microsoft Graph refused to read the assignee groups or their members; the platform team must grant uc-access GroupMember.Read.All (docs/deploy.md)".into(),
        ),
        AssigneeCheck::Unverifiable(AssigneeUnverifiable::AccountGroup { group, why }) => {
            let why = match why {
                Unverifiable::ExternalIdFilterRefused => {
                    "the account refused to look its members up by Entra object id".to_owned()
                }
                Unverifiable::ApproverNotFound(person) => format!(
                    "no Databricks identity carries {person}'s Entra object id, so they may be a member under one that does not"
                ),
                Unverifiable::TooManyGroups => {
                    format!("it nests more than {MAX_GROUPS_CHECKED} groups")
                }
            };
            unverifiable(format!(
                "the members of assignee group {group} could not be checked: {why}; the platform team can switch on Microsoft Graph (UC_ACCESS_RESOLVE_WITH_GRAPH)"
            ))
        }
    }
}

/// Provisions one parsed request.
pub async fn provision(
    ctx: &Context,
    request: &AccessRequest,
    deadline: Deadline,
) -> Result<Outcome, ProvisionError> {
    let now = ctx.now();
    let decision = policy::decide(&ctx.policy, request, now)?;
    check_table_kind(
        ctx,
        &request.workspace.host,
        &request.securable,
        &decision.privileges,
        deadline,
    )
    .await?;
    if decision.mode == ProvisioningMode::DeltaSharing {
        // No account identity is needed: the recipient is named from the Entra object id.
        return super::share::provision_share(ctx, request, decision, deadline).await;
    }
    let workspace = &request.workspace.host;
    let principal = ctx
        .resolver
        .resolve(&request.grantee, workspace, deadline)
        .await?;
    if principal.status == PrincipalStatus::Inactive {
        return Err(ProvisionError::PrincipalInactive(
            principal.principal.uc_name().to_owned(),
        ));
    }
    policy::check_principal(&ctx.policy, &principal.principal)?;
    let entra_id = principal
        .external_id
        .as_deref()
        .and_then(|raw| EntraObjectId::parse(raw).ok());
    policy::check_not_self_approved(&ctx.policy, request, &principal.principal, entra_id)?;
    check_not_approved_from_inside(ctx, request, &principal, deadline).await?;
    check_not_in_assignee_groups(ctx, request, entra_id, deadline).await?;

    let key = idempotency_key(request, &decision.privileges);
    // The ledger is not asked first whether this request is recorded: a new approval (the common case)
    // would pay a read that finds nothing. The record is created, conditionally, after planning; if one
    // exists the create says so and it is read then (below). A repeated delivery thus reads Unity Catalog
    // before finding its record, which changes nothing. A dry run never touches the ledger.
    let holdings = read_holdings(
        ctx.grants.as_ref(),
        workspace,
        &principal.principal,
        &request.securable,
        deadline,
    )
    .await?;
    let facts = facts_for(ctx, &request.workspace.name, &principal.principal, holdings).await?;
    let plan = plan_grant(
        &principal.principal,
        &request.securable,
        &decision.privileges,
        &facts,
    );
    let already_held: Vec<SecurableChange> = plan.already_held.iter().map(Into::into).collect();
    if request.dry_run {
        return Ok(Outcome {
            workspace: request.workspace.name.clone(),
            status: Status::Planned,
            principal,
            decision,
            record: None,
            plan: Some(plan),
            already_held,
            sharing: None,
        });
    }

    // Write-ahead: the record exists before anything changes in Unity Catalog.
    let new = || NewGrant {
        idempotency_key: key.clone(),
        requester: request.requester,
        target: request.target,
        principal: principal.principal.clone(),
        workspace: LedgerWorkspace {
            name: request.workspace.name.clone(),
            host: request.workspace.host.to_string(),
        },
        securable: request.securable.clone(),
        requested_privileges: decision.privileges.clone(),
        duration: decision.duration,
        plan: plan.changes.iter().map(Into::into).collect(),
        approvers: request
            .approval
            .approvers
            .iter()
            .map(ToString::to_string)
            .collect(),
        source: request.source.as_str().to_owned(),
        approval_id: approval_id(request),
    };
    let pending = match ctx.ledger.create(GrantRecord::new(new(), now)).await {
        Ok(v) => v,
        Err(LedgerError::AlreadyExists { .. }) => {
            let mut existing = ctx.ledger.get_by_key(&key).await?;
            if !same_request(&existing.record, request, &principal, &decision) {
                return Err(ProvisionError::KeyReused(existing.record.id.to_string()));
            }
            if existing.record.state != GrantState::Revoked {
                return follow_existing(ctx, existing, &principal, &decision, request, deadline)
                    .await;
            }
            refuse_ended(ctx, &existing.record, request)?;
            // Approved again after it ended: the record is reopened with this plan.
            existing
                .record
                .reopen(new(), now)
                .map_err(|e| LedgerError::Other {
                    message: e.to_string(),
                })?;
            match ctx.ledger.update(&existing).await {
                Ok(v) => v,
                Err(LedgerError::Conflict { .. }) => {
                    return wait_for_other(ctx, &key, &principal, &decision, deadline).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };

    let applied = apply_additions(
        ctx.grants.as_ref(),
        workspace,
        &principal.principal,
        &plan.changes,
        deadline,
    )
    .await;
    match applied {
        Ok(applied) => {
            let added: Vec<SecurableChange> = applied.iter().map(|a| (&a.change).into()).collect();
            let record = mark_active(ctx, pending, added, None).await;
            let status = if plan.is_noop() {
                Status::AlreadyGranted
            } else {
                Status::Granted
            };
            Ok(Outcome {
                workspace: request.workspace.name.clone(),
                status,
                principal,
                decision,
                record: Some(record),
                plan: None,
                already_held,
                sharing: None,
            })
        }
        Err(partial) => Err(undo_partial(ctx, pending, partial).await),
    }
}

/// What planning knows of the principal: its direct holdings, and which of them uc-access's own records
/// (of any approval not yet revoked) claim. The ledger is asked only when Unity Catalog shows something
/// held on the lineage: a principal holding nothing there has nothing to tell apart.
pub(super) async fn facts_for(
    ctx: &Context,
    workspace: &str,
    principal: &crate::domain::Principal,
    held: Holdings,
) -> Result<Facts, LedgerError> {
    let mut facts = Facts::unclaimed(held);
    if facts.held.is_empty() {
        return Ok(facts);
    }
    for v in ctx
        .ledger
        .unrevoked_for_principal(workspace, principal)
        .await?
    {
        let r = &v.record;
        let live = r.state.keeps_access();
        facts.claim(r.added.iter().map(|c| (&c.securable, &c.privileges)), live);
        if r.state == GrantState::Pending {
            facts.claim(r.plan.iter().map(|c| (&c.securable, &c.privileges)), live);
        }
    }
    Ok(facts)
}

/// Marks the record active with what was added (and, for Delta Sharing, what was shared); on a conflict
/// (a sibling's revoke handed privileges over meanwhile) reads it again and retries. If the ledger stays
/// unavailable, Unity Catalog has accepted the change, so the answer is still `granted`: the record stays
/// `pending` and the timer finishes it from what Unity Catalog shows.
pub(super) async fn mark_active(
    ctx: &Context,
    mut current: Versioned<GrantRecord>,
    added: Vec<SecurableChange>,
    shared: Option<ShareGrant>,
) -> GrantRecord {
    for _ in 0..5 {
        let mut next = current.clone();
        if shared.is_some() {
            next.record.sharing = shared.clone();
        }
        if next.record.mark_active(added.clone(), ctx.now()).is_err() {
            return next.record;
        }
        match ctx.ledger.update(&next).await {
            Ok(stored) => return stored.record,
            Err(LedgerError::Conflict { .. }) => match ctx.ledger.get(current.record.id).await {
                Ok(fresh) => current = fresh,
                Err(_) => return next.record,
            },
            Err(e) => {
                tracing::warn!(error = %e, grant = %next.record.id, "grant applied but not marked active; the timer will finish it");
                return next.record;
            }
        }
    }
    current.record
}

/// A plan failed part-way: record what was (or may have been) added, then end the grant at once with
/// the timer's own revoke so nothing is half-applied when the caller hears the error; if that revoke
/// fails too, the record stays `failed` and the timer retries it.
///
/// `added` is merged, never replaced: a revoke may have handed this pending grant privileges it needs,
/// and those must stay claimed. Going through the revoke planner (rather than removing `added`
/// directly) keeps what another live grant of the principal shares exactly.
async fn undo_partial(
    ctx: &Context,
    mut pending: Versioned<GrantRecord>,
    partial: PartialApply,
) -> ProvisionError {
    let now = ctx.now();
    pending
        .record
        .merge_added(partial.applied.iter().map(|a| (&a.change).into()));
    let message = partial.error.to_string();
    let retry_at = now + time::Duration::minutes(1);
    if pending.record.mark_failed(&message, now, retry_at).is_ok()
        && let Ok(stored) = ctx.ledger.update(&pending).await
    {
        let deadline = Deadline::after(Duration::from_secs(5));
        let _ = super::expire::revoke_grants(ctx, vec![stored], ctx.now(), deadline).await;
    }
    partial.error.into()
}

/// The approval id the request carries, as the record keeps it.
pub(super) fn approval_id(request: &AccessRequest) -> Option<String> {
    request.approval.id.as_ref().map(|k| k.as_str().to_owned())
}

/// How this delivery relates to `record` (see [`GrantRecord::delivery`]).
pub(super) fn delivery_of(
    ctx: &Context,
    record: &GrantRecord,
    request: &AccessRequest,
) -> Delivery {
    record.delivery(
        request.approval.id.as_ref().map(|k| k.as_str()),
        ctx.now(),
        ctx.policy.redelivery_window(),
    )
}

/// A revoked record may only be reopened by a new approval: a re-delivery of the one that ended is
/// refused, and nothing changes.
pub(super) fn refuse_ended(
    ctx: &Context,
    record: &GrantRecord,
    request: &AccessRequest,
) -> Result<(), ProvisionError> {
    match delivery_of(ctx, record, request) {
        Delivery::Ended { until, early } => {
            tracing::info!(grant = %record.id, early, "a re-delivery of an ended approval was refused");
            Err(ProvisionError::ApprovalEnded {
                grant: record.id.to_string(),
                until,
                early,
            })
        }
        Delivery::Same | Delivery::New => Ok(()),
    }
}

/// The record already made for this request's idempotency key, if any. A dry run always plans from what
/// Unity Catalog holds now, whatever the ledger says: it sees none.
pub(super) async fn recorded_for(
    ctx: &Context,
    request: &AccessRequest,
    key: &IdempotencyKey,
) -> Result<Option<Versioned<GrantRecord>>, ProvisionError> {
    if request.dry_run {
        return Ok(None);
    }
    match ctx.ledger.get_by_key(key).await {
        Ok(v) => Ok(Some(v)),
        Err(LedgerError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A record for this key exists and is not revoked: answer from it.
pub(super) async fn follow_existing(
    ctx: &Context,
    mut existing: Versioned<GrantRecord>,
    principal: &DirectoryEntry,
    decision: &Decision,
    request: &AccessRequest,
    deadline: Deadline,
) -> Result<Outcome, ProvisionError> {
    loop {
        match existing.record.state {
            GrantState::Pending => {
                return wait_for_other(
                    ctx,
                    &existing.record.idempotency_key,
                    principal,
                    decision,
                    deadline,
                )
                .await;
            }
            GrantState::Active => {
                let now = ctx.now();
                let current = existing.record.expires_at.unwrap_or(now);
                let renewal = ctx.policy.renewal_expiry(current, decision.duration, now);
                // Another delivery of the same approval never extends it: only a new approval does.
                let duplicate = delivery_of(ctx, &existing.record, request) == Delivery::Same;
                if request.dry_run {
                    return Ok(answer_existing(
                        existing.record,
                        principal,
                        decision,
                        duplicate,
                    ));
                }
                if duplicate || renewal <= current {
                    // The approval's id is remembered even when the delivery changes nothing (a
                    // duplicate taken by time because the record knew no id yet, or a new approval
                    // that does not move the expiry): a later delivery of it, whatever duration that
                    // one carries, is then known as the same approval, never extends the grant and,
                    // once the grant has ended, never reopens it.
                    let noted =
                        approval_id(request).is_some_and(|id| existing.record.note_approval(id));
                    if !noted {
                        return Ok(answer_existing(
                            existing.record,
                            principal,
                            decision,
                            duplicate,
                        ));
                    }
                    match ctx.ledger.update(&existing).await {
                        Ok(stored) => {
                            return Ok(answer_existing(
                                stored.record,
                                principal,
                                decision,
                                duplicate,
                            ));
                        }
                        Err(LedgerError::Conflict { .. }) => {
                            existing = ctx.ledger.get(existing.record.id).await?;
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                existing
                    .record
                    .extend(renewal, now, approval_id(request))
                    .map_err(|e| LedgerError::Other {
                        message: e.to_string(),
                    })?;
                match ctx.ledger.update(&existing).await {
                    Ok(stored) => {
                        return Ok(Outcome {
                            workspace: request.workspace.name.clone(),
                            status: Status::Extended,
                            principal: principal.clone(),
                            decision: decision.clone(),
                            record: Some(stored.record),
                            plan: None,
                            already_held: Vec::new(),
                            sharing: None,
                        });
                    }
                    // Someone else changed it meanwhile: look again.
                    Err(LedgerError::Conflict { .. }) => {
                        existing = ctx.ledger.get(existing.record.id).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            GrantState::Revoking | GrantState::Failed => {
                return Err(ProvisionError::Busy(format!(
                    "grant {} is being revoked or undone after a failure; retry after the next revoke run",
                    existing.record.id
                )));
            }
            GrantState::Revoked => {
                return Err(ProvisionError::Busy(format!(
                    "grant {} ended while this request was being answered; retry",
                    existing.record.id
                )));
            }
        }
    }
}

/// The answer for a request whose grant is already active.
fn answer_existing(
    record: GrantRecord,
    principal: &DirectoryEntry,
    decision: &Decision,
    duplicate: bool,
) -> Outcome {
    // A duplicate delivery gets the answer the first delivery got: `granted` when it changed Unity
    // Catalog (`added`, or for Delta Sharing the `SELECT` it gave the recipient on the share).
    let gave =
        !record.added.is_empty() || record.sharing.as_ref().is_some_and(|s| s.granted_select);
    let status = if duplicate && gave {
        Status::Granted
    } else {
        Status::AlreadyGranted
    };
    let already_held = if duplicate {
        first_already_held(&record)
    } else {
        Vec::new()
    };
    Outcome {
        workspace: record.workspace.name.clone(),
        status,
        principal: principal.clone(),
        decision: decision.clone(),
        record: Some(record),
        plan: None,
        already_held,
        sharing: None,
    }
}

/// What the first delivery of the record's current cycle reported as already held: everything the
/// approval needed that its plan did not add. Delta Sharing grants need nothing of the principal's own.
fn first_already_held(record: &GrantRecord) -> Vec<SecurableChange> {
    if record.sharing.is_some() {
        return Vec::new();
    }
    needed(&record.securable, &record.requested_privileges)
        .into_iter()
        .filter_map(|(securable, wanted)| {
            let planned = record.plan.iter().find(|c| c.securable == securable);
            let held: PrivilegeSet = wanted
                .into_iter()
                .filter(|p| planned.is_none_or(|c| !c.privileges.contains(p)))
                .collect();
            (!held.is_empty()).then_some(SecurableChange {
                securable,
                privileges: held,
            })
        })
        .collect()
}

/// Another delivery holds the record: wait (within the deadline) for it to leave `pending`.
async fn wait_for_other(
    ctx: &Context,
    key: &IdempotencyKey,
    principal: &DirectoryEntry,
    decision: &Decision,
    deadline: Deadline,
) -> Result<Outcome, ProvisionError> {
    loop {
        let current = ctx.ledger.get_by_key(key).await?;
        match current.record.state {
            GrantState::Pending => {}
            GrantState::Active => {
                return Ok(answer_existing(current.record, principal, decision, true));
            }
            _ => {
                return Err(ProvisionError::Busy(format!(
                    "another delivery of this approval failed (grant {}); retry after the next revoke run",
                    current.record.id
                )));
            }
        }
        if deadline.remaining() <= IN_FLIGHT_POLL * 2 {
            return Err(ProvisionError::Busy(format!(
                "another delivery of this approval is still being applied (grant {}); retry shortly",
                current.record.id
            )));
        }
        tokio::time::sleep(IN_FLIGHT_POLL).await;
    }
}
