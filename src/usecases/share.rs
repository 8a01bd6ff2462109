//! Delta Sharing provisioning: for a person with no Databricks workspace, a TOKEN recipient named from
//! their Entra object id, a share per table (named by the naming rule), the table in the share, and
//! `SELECT` on the share for the recipient; the answer carries the activation link at once.
//!
//! The same ledger and invariants as direct grants: the record is written `pending` before anything
//! changes, becomes `active` with what this grant did, and the timer ends it. Shares and recipients
//! uc-access creates carry its mark (a share's comment names the table, a recipient's properties name
//! the object id); one without the mark is never changed, and a request that would need it is answered
//! with a clear error.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;
use url::Url;

use super::Context;
use super::provision::{
    Outcome, ProvisionError, Status, follow_existing, idempotency_key_for_mode, recorded_for,
};
use crate::databricks::{
    DatabricksError, Deadline, DirectoryEntry, NewRecipient, ObjectAction, RecipientInfo,
    SharingApi, is_already_exists,
};
use crate::domain::{
    AccessRequest, EntraObjectId, Principal, PrincipalQuery, PrincipalStatus, ProvisioningMode,
};
use crate::ledger::{
    GrantId, GrantRecord, GrantState, LedgerError, NewGrant, ShareGrant, Versioned,
    WorkspaceRef as LedgerWorkspace,
};
use crate::planning::share::{
    self as plan, NameTaken, RecipientFacts, ShareFacts, ShareStep, SharedFacts, plan_share,
};
use crate::policy::Decision;
use crate::settings::ShareNaming;

/// The Delta Sharing port and the naming rule.
#[derive(Clone)]
pub struct Sharing {
    pub api: Arc<dyn SharingApi>,
    pub naming: ShareNaming,
}

impl std::fmt::Debug for Sharing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharing")
            .field("naming", &self.naming)
            .finish_non_exhaustive()
    }
}

/// What the answer needs beyond the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareOutcome {
    pub recipient: String,
    pub share: String,
    /// The one-time link to download the recipient's credential; `None` once it has been used.
    pub activation_url: Option<String>,
    /// Dry runs: the steps that would run.
    pub steps: Vec<ShareStep>,
    /// Whether the recipient already downloaded its credential (so no link is needed).
    pub activated: bool,
    /// The shared table.
    pub table: crate::domain::Securable,
}

/// The recipient's token outlives the grant by this much: the revoke (on the timer's next run) is what
/// ends access on time, and the token is the backstop that ends it even if every revoke failed. A token
/// ending before the grant would cut access the workflow promised.
pub const TOKEN_MARGIN: time::Duration = time::Duration::minutes(5);

fn epoch_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn object_id_of(request: &AccessRequest) -> Result<EntraObjectId, ProvisionError> {
    match &request.grantee {
        PrincipalQuery::ObjectId { id, .. } => Ok(*id),
        // Policy refuses this before; kept as a typed error rather than a panic.
        _ => Err(ProvisionError::Denied(crate::policy::Denial {
            rule: crate::policy::Denial::SHARING_NEEDS_OBJECT_ID,
            message: "a Delta Sharing recipient is named from an Entra object id".into(),
        })),
    }
}

/// The directory entry an answer shows for a recipient (recipients are not account identities).
fn recipient_entry(recipient: &Principal, object_id: EntraObjectId) -> DirectoryEntry {
    DirectoryEntry {
        principal: recipient.clone(),
        id: recipient.uc_name().to_owned(),
        external_id: Some(object_id.to_string()),
        display_name: None,
        status: PrincipalStatus::Active,
    }
}

/// Whether this approval hands the activation link to the person it is for: a Purview approval the
/// person asked for themselves. An operator's `grant-access` call never receives it (the caller is not
/// the recipient), and Purview requests on someone else's behalf are refused by policy.
fn hands_out_link(request: &AccessRequest) -> bool {
    request.source == crate::domain::RequestSource::PurviewCallback
        && request.target.is_none_or(|t| t == request.requester)
}

/// The principal rules on the sharing path: the Entra object id must not be forbidden, and where it
/// names an account identity, that identity must be a person (or application) the rules allow — a group
/// would hand one bearer credential to all its members. An object id unknown to the account (people
/// without a workspace usually are) is checked by id only; a directory that cannot answer stops the
/// request (retryable), never lets it through unchecked.
async fn check_recipient_person(
    ctx: &Context,
    object_id: EntraObjectId,
    deadline: Deadline,
) -> Result<(), ProvisionError> {
    crate::policy::check_object_id(&ctx.policy, object_id)?;
    if let Some(entry) = ctx.resolver.identify(object_id, deadline).await? {
        if entry.principal.kind() == crate::domain::PrincipalKind::Group {
            return Err(crate::policy::Denial::new(
                crate::policy::Denial::SHARING_NEEDS_A_PERSON,
                "the object id names a group; a Delta Sharing credential is for one person, so ask for each person",
            )
            .into());
        }
        crate::policy::check_principal(&ctx.policy, &entry.principal)?;
    }
    Ok(())
}

/// Reads what exists under the names this grant would use.
pub(super) async fn read_facts(
    api: &dyn SharingApi,
    workspace: &Url,
    recipient: &str,
    share: &str,
    table: &str,
    object_id: EntraObjectId,
    deadline: Deadline,
) -> Result<(ShareFacts, Option<RecipientInfo>), DatabricksError> {
    let (found_recipient, found_share) = futures_util::try_join!(
        api.get_recipient(workspace, recipient, deadline),
        api.get_share(workspace, share, deadline)
    )?;
    let share_ours = found_share
        .as_ref()
        .is_some_and(|s| plan::share_is_ours(s.comment.as_deref(), table));
    let recipient_has_select = if share_ours && found_recipient.is_some() {
        api.share_permissions(workspace, share, deadline)
            .await?
            .iter()
            .any(|a| {
                a.principal.eq_ignore_ascii_case(recipient)
                    && a.privileges
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case("SELECT"))
            })
    } else {
        false
    };
    let facts = ShareFacts {
        recipient: found_recipient.as_ref().map(|r| RecipientFacts {
            activated: r.activated.unwrap_or(false),
            ours: plan::recipient_is_ours(
                r.authentication_type.as_deref(),
                &r.properties,
                &object_id.to_string(),
            ),
            expires_ms: r.expiration_time,
        }),
        share: found_share.as_ref().map(|s| SharedFacts {
            ours: share_ours,
            has_table: s.objects.iter().any(|o| o.eq_ignore_ascii_case(table)),
        }),
        recipient_has_select,
    };
    Ok((facts, found_recipient))
}

/// Whether a stored record is this request.
fn same_request(record: &GrantRecord, request: &AccessRequest, recipient: &Principal) -> bool {
    record.principal == *recipient
        && record.securable == request.securable
        && record.workspace.name == request.workspace.name
        && record.sharing.is_some()
}

/// Provisions a request policy decided to share.
pub async fn provision_share(
    ctx: &Context,
    request: &AccessRequest,
    decision: Decision,
    deadline: Deadline,
) -> Result<Outcome, ProvisionError> {
    let now = ctx.now();
    let object_id = object_id_of(request)?;
    let naming = &ctx.sharing.naming;
    let recipient = naming.recipient_for(object_id);
    let share = naming
        .share_for(&request.securable)
        .ok_or_else(|| ProvisionError::Busy("Delta Sharing provisions tables only".into()))?;
    let table = request.securable.full_name();
    let entry = recipient_entry(&recipient, object_id);
    let workspace = &request.workspace.host;
    let api = ctx.sharing.api.as_ref();
    check_recipient_person(ctx, object_id, deadline).await?;
    super::provision::check_not_in_assignee_groups(ctx, request, Some(object_id), deadline).await?;
    let hands_out = hands_out_link(request);

    let key = idempotency_key_for_mode(
        request,
        &decision.privileges,
        ProvisioningMode::DeltaSharing,
    );
    let existing = recorded_for(ctx, request, &key).await?;
    if let Some(existing) = &existing
        && !same_request(&existing.record, request, &recipient)
    {
        return Err(ProvisionError::KeyReused(existing.record.id.to_string()));
    }
    if let Some(existing) = &existing
        && existing.record.state != GrantState::Revoked
    {
        let outcome =
            follow_existing(ctx, existing.clone(), &entry, &decision, request, deadline).await?;
        return Ok(answer_existing_share(ctx, outcome, request, deadline).await);
    }

    let expires_at = now + decision.duration.as_duration();
    let (facts, found_recipient) = read_facts(
        api,
        workspace,
        recipient.uc_name(),
        &share,
        &table,
        object_id,
        deadline,
    )
    .await?;
    let steps = plan_share(
        &facts,
        recipient.uc_name(),
        &share,
        epoch_ms(expires_at + TOKEN_MARGIN),
        hands_out,
    )
    .map_err(ProvisionError::NameTaken)?;
    if request.dry_run {
        return Ok(Outcome {
            status: Status::Planned,
            workspace: request.workspace.name.clone(),
            principal: entry,
            decision,
            record: None,
            plan: None,
            already_held: Vec::new(),
            sharing: Some(ShareOutcome {
                recipient: recipient.uc_name().to_owned(),
                share,
                activation_url: None,
                steps,
                activated: false,
                table: request.securable.clone(),
            }),
        });
    }

    // Write-ahead: the record exists before anything is created or changed.
    let new = NewGrant {
        idempotency_key: key.clone(),
        requester: request.requester,
        target: request.target,
        principal: recipient.clone(),
        workspace: LedgerWorkspace {
            name: request.workspace.name.clone(),
            host: request.workspace.host.to_string(),
        },
        securable: request.securable.clone(),
        requested_privileges: decision.privileges.clone(),
        duration: decision.duration,
        plan: Vec::new(),
        approvers: request
            .approval
            .approvers
            .iter()
            .map(ToString::to_string)
            .collect(),
        source: request.source.as_str().to_owned(),
        approval_id: super::provision::approval_id(request),
    };
    let sharing = ShareGrant::new(share.clone(), recipient.uc_name().to_owned(), object_id);
    let pending = match existing {
        Some(mut revoked) => {
            super::provision::refuse_ended(ctx, &revoked.record, request)?;
            revoked
                .record
                .reopen(new, now)
                .map_err(|e| LedgerError::Other {
                    message: e.to_string(),
                })?;
            revoked.record.set_sharing(sharing);
            match ctx.ledger.update(&revoked).await {
                Ok(v) => v,
                Err(LedgerError::Conflict { .. }) => {
                    return Err(ProvisionError::Busy(
                        "another delivery of this approval is being applied; retry shortly".into(),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => {
            let mut record = GrantRecord::new(new, now);
            record.set_sharing(sharing);
            match ctx.ledger.create(record).await {
                Ok(v) => v,
                Err(LedgerError::AlreadyExists { .. }) => {
                    let current = ctx.ledger.get_by_key(&key).await?;
                    let outcome =
                        follow_existing(ctx, current, &entry, &decision, request, deadline).await?;
                    return Ok(answer_existing_share(ctx, outcome, request, deadline).await);
                }
                Err(e) => return Err(e.into()),
            }
        }
    };

    let target = Target {
        workspace,
        recipient: &recipient,
        share: &share,
        table: &table,
        object_id,
        request,
        grant: pending.record.id,
    };
    let mut done = pending.record.sharing.clone().unwrap_or_else(|| {
        ShareGrant::new(share.clone(), recipient.uc_name().to_owned(), object_id)
    });
    // Only a link this approval itself issued (a new recipient's, or a rotated token's) is handed out,
    // and only to the person it is for: an unused link issued for an earlier approval never is.
    let mut link = None;
    let mut activated = found_recipient
        .as_ref()
        .and_then(|r| r.activated)
        .unwrap_or(false);
    for step in &steps {
        match apply_step(ctx, &target, *step, expires_at, &mut done, deadline).await {
            Ok(Some(issued)) => {
                if hands_out {
                    link = issued.activation_url().map(str::to_owned);
                }
                activated = issued.activated.unwrap_or(false);
            }
            Ok(None) => {}
            Err(error) => return Err(undo(ctx, pending, done, error, now).await),
        }
    }
    let record = super::provision::mark_active(ctx, pending, Vec::new(), Some(done)).await;
    let granted = record.sharing.as_ref().is_some_and(|s| s.granted_select);
    Ok(Outcome {
        status: if granted {
            Status::Granted
        } else {
            Status::AlreadyGranted
        },
        workspace: request.workspace.name.clone(),
        principal: entry,
        decision,
        record: Some(record),
        plan: None,
        already_held: Vec::new(),
        sharing: Some(ShareOutcome {
            recipient: recipient.uc_name().to_owned(),
            share,
            activation_url: link,
            steps: Vec::new(),
            activated,
            table: request.securable.clone(),
        }),
    })
}

/// Names and ids one grant's steps work on.
struct Target<'a> {
    workspace: &'a Url,
    recipient: &'a Principal,
    share: &'a str,
    table: &'a str,
    object_id: EntraObjectId,
    request: &'a AccessRequest,
    grant: GrantId,
}

/// What uc-access records on a recipient it creates: who it stands for, who asked, who approved, why.
fn recipient_properties(t: &Target<'_>) -> BTreeMap<String, String> {
    let approvers: Vec<String> = t
        .request
        .approval
        .approvers
        .iter()
        .map(ToString::to_string)
        .collect();
    BTreeMap::from([
        (plan::MANAGED_PROPERTY.to_owned(), "true".to_owned()),
        (plan::OBJECT_ID_PROPERTY.to_owned(), t.object_id.to_string()),
        (
            plan::REQUESTED_BY_PROPERTY.to_owned(),
            t.request.requester.to_string(),
        ),
        (plan::APPROVED_BY_PROPERTY.to_owned(), approvers.join(",")),
        (
            plan::REASON_PROPERTY.to_owned(),
            format!(
                "approved {} request for {}",
                t.request.source.as_str(),
                t.table
            ),
        ),
        (plan::FIRST_GRANT_PROPERTY.to_owned(), t.grant.to_string()),
    ])
}

/// Runs one step. A name that turns out to be taken meanwhile (a concurrent creator) is accepted only
/// if what is there now carries uc-access's mark.
async fn apply_step(
    ctx: &Context,
    t: &Target<'_>,
    step: ShareStep,
    expires_at: OffsetDateTime,
    done: &mut ShareGrant,
    deadline: Deadline,
) -> Result<Option<RecipientInfo>, StepError> {
    let api = ctx.sharing.api.as_ref();
    let ws = t.workspace;
    match step {
        ShareStep::CreateRecipient => {
            let new = NewRecipient {
                name: t.recipient.uc_name().to_owned(),
                comment: format!(
                    "Managed by uc-access: Delta Sharing recipient for Entra object id {}",
                    t.object_id
                ),
                properties: recipient_properties(t),
                expiration_time: epoch_ms(expires_at + TOKEN_MARGIN),
            };
            match api.create_recipient(ws, &new, deadline).await {
                Ok(created) => {
                    done.created_recipient = true;
                    done.issued_token = created.unused_token().and_then(|t| t.id.clone());
                    Ok(Some(created))
                }
                Err(e) if is_already_exists(&e) => {
                    let now = api.get_recipient(ws, &new.name, deadline).await?;
                    match now {
                        Some(r)
                            if plan::recipient_is_ours(
                                r.authentication_type.as_deref(),
                                &r.properties,
                                &t.object_id.to_string(),
                            ) =>
                        {
                            // Created meanwhile by a concurrent approval: its link is not ours.
                            Ok(None)
                        }
                        _ => Err(StepError::Taken(NameTaken::Recipient(new.name))),
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
        ShareStep::RotateToken => {
            let rotated = api
                .rotate_token(ws, t.recipient.uc_name(), deadline)
                .await?;
            done.issued_token = rotated.unused_token().and_then(|t| t.id.clone());
            Ok(Some(rotated))
        }
        ShareStep::ExtendToken => {
            api.set_recipient_expiry(
                ws,
                t.recipient.uc_name(),
                epoch_ms(expires_at + TOKEN_MARGIN),
                deadline,
            )
            .await?;
            Ok(None)
        }
        ShareStep::CreateShare => {
            match api
                .create_share(ws, t.share, &plan::share_comment(t.table), deadline)
                .await
            {
                Ok(_) => {
                    done.created_share = true;
                    Ok(None)
                }
                Err(e) if is_already_exists(&e) => {
                    match api.get_share(ws, t.share, deadline).await? {
                        Some(s) if plan::share_is_ours(s.comment.as_deref(), t.table) => Ok(None),
                        _ => Err(StepError::Taken(NameTaken::Share(t.share.to_owned()))),
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
        ShareStep::AddTable => {
            match api
                .update_table(ws, t.share, ObjectAction::Add, t.table, deadline)
                .await
            {
                Ok(()) => {
                    done.added_table = true;
                    Ok(None)
                }
                // Added meanwhile by a concurrent grant of the same table.
                Err(e) if is_already_exists(&e) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        ShareStep::GrantSelect => {
            api.set_select(ws, t.share, t.recipient.uc_name(), true, deadline)
                .await?;
            done.granted_select = true;
            Ok(None)
        }
    }
}

enum StepError {
    Databricks(DatabricksError),
    Taken(NameTaken),
}

impl From<DatabricksError> for StepError {
    fn from(e: DatabricksError) -> Self {
        Self::Databricks(e)
    }
}

/// A step failed: record what was done, end the grant at once (the same state-based revoke the timer
/// runs), and answer the error. If that revoke fails too, the record stays `failed` and the timer
/// retries it.
async fn undo(
    ctx: &Context,
    mut pending: Versioned<GrantRecord>,
    done: ShareGrant,
    error: StepError,
    now: OffsetDateTime,
) -> ProvisionError {
    let (message, answer) = match error {
        StepError::Databricks(e) => (e.to_string(), ProvisionError::Databricks(e)),
        StepError::Taken(t) => (t.to_string(), ProvisionError::NameTaken(t)),
    };
    pending.record.sharing = Some(done);
    let retry_at = now + time::Duration::minutes(1);
    if pending.record.mark_failed(&message, now, retry_at).is_ok()
        && let Ok(stored) = ctx.ledger.update(&pending).await
    {
        let deadline = Deadline::after(std::time::Duration::from_secs(5));
        let _ = super::expire::revoke_grants(ctx, vec![stored], ctx.now(), deadline).await;
    }
    answer
}

/// A duplicate or renewal of a sharing grant: the first delivery's status and a fresh read of the
/// activation link (links are credentials, never kept in the ledger).
async fn answer_existing_share(
    ctx: &Context,
    mut outcome: Outcome,
    request: &AccessRequest,
    deadline: Deadline,
) -> Outcome {
    let Some(record) = &outcome.record else {
        return outcome;
    };
    let Some(sharing) = record.sharing.clone() else {
        return outcome;
    };
    if outcome.status == Status::Extended
        && let (Ok(host), Some(until)) = (Url::parse(&record.workspace.host), record.expires_at)
    {
        // Best effort: the token must not end before the grant (whether a PATCH of
        // `expiration_time` moves an already issued token's expiry is unverified).
        if let Err(e) = ctx
            .sharing
            .api
            .set_recipient_expiry(
                &host,
                &sharing.recipient,
                epoch_ms(until + TOKEN_MARGIN),
                deadline,
            )
            .await
        {
            tracing::warn!(error = %e, grant = %record.id, "could not extend the recipient's token");
        }
    }
    // The link again only for this approval, to the person it is for, and only while the unused
    // token is still the one this grant issued (a later approval rotates it; a download uses it up).
    let (mut link, mut activated) = (None, false);
    if let Ok(host) = Url::parse(&record.workspace.host)
        && let Ok(Some(r)) = ctx
            .sharing
            .api
            .get_recipient(&host, &sharing.recipient, deadline)
            .await
    {
        let own = r.unused_token().and_then(|t| t.id.as_deref());
        if hands_out_link(request) && own.is_some() && own == sharing.issued_token.as_deref() {
            link = r.activation_url().map(str::to_owned);
        }
        activated = r.activated.unwrap_or(false);
    }
    outcome.sharing = Some(ShareOutcome {
        recipient: sharing.recipient,
        share: sharing.share,
        activation_url: link,
        steps: Vec::new(),
        activated,
        table: record.securable.clone(),
    });
    outcome
}
