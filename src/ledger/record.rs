//! The grant record: one JSON document per approval, the only memory uc-access has of what it granted,
//! with state transitions that refuse anything that would lose track of a privilege.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::ids::{GrantId, IdempotencyKey};
use crate::domain::{EntraObjectId, GrantDuration, Principal, PrivilegeSet, Securable};
use crate::planning::PlannedChange;

/// The newest record layout this build reads; readers refuse a record with a higher one rather than
/// misread it. Direct grants are still written as [`DIRECT_SCHEMA_VERSION`], so older builds keep
/// reading them; Delta Sharing grants are written as [`SHARING_SCHEMA_VERSION`], so an older build,
/// which could not revoke them, refuses them instead of marking them revoked.
pub const SCHEMA_VERSION: u32 = 2;
/// The layout of a direct grant (unchanged since the first release).
pub const DIRECT_SCHEMA_VERSION: u32 = 1;
/// The layout of a grant with `sharing`.
pub const SHARING_SCHEMA_VERSION: u32 = 2;

/// How long storage credentials that Unity Catalog vended before a revoke stay usable: Databricks
/// documents temporary table credentials as valid for up to one hour, so access is only *certain* to
/// have ended this long after the revoke.
pub const VENDED_CREDENTIAL_LIFETIME: Duration = Duration::hours(1);

/// `lastError` and event details are cut to this many characters so a huge upstream body cannot bloat
/// the record.
pub const MAX_DETAIL_CHARS: usize = 1000;

/// How many approval ids a record remembers (a record is renewed a handful of times in its life).
pub const MAX_APPROVAL_IDS: usize = 64;

/// How a delivery of a request relates to the record its idempotency key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Another delivery of the approval this record stands for: answer from the record, change nothing.
    Same,
    /// A new approval of the same request: it may renew the grant, or open a new cycle of an ended one.
    New,
    /// A re-delivery of an approval whose access has ended (expired or revoked early): it never
    /// restores access. `until` is when the same request counts as a new approval again (`None`: never,
    /// the approval named itself by id).
    Ended {
        until: Option<OffsetDateTime>,
        early: bool,
    },
}

/// Where a grant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GrantState {
    /// Recorded before any change in Unity Catalog; some of the plan may already be applied.
    Pending,
    /// Applied; `added` says what, `expiresAt` says until when.
    Active,
    /// Being revoked (or a half-done grant being undone); retried at `nextAttemptAt`.
    Revoking,
    /// Revoked, or undone. Terminal.
    Revoked,
    /// An apply or a revoke failed; the timer undoes it at `nextAttemptAt`.
    Failed,
}

impl GrantState {
    pub const ALL: [GrantState; 5] = [
        Self::Pending,
        Self::Active,
        Self::Revoking,
        Self::Revoked,
        Self::Failed,
    ];

    /// The lower-case spelling used in JSON and in blob index tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoking => "revoking",
            Self::Revoked => "revoked",
            Self::Failed => "failed",
        }
    }

    /// Whether privileges this grant added are meant to stay in place (so a revoke of another grant
    /// must keep the parent `USE_*` privileges they share). A pending grant counts: it may be applied
    /// at any moment.
    pub fn keeps_access(self) -> bool {
        matches!(self, Self::Pending | Self::Active)
    }
}

impl fmt::Display for GrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Privileges on one securable (planned or actually added). The ledger keeps its own type rather than
/// the planner's so the stored layout only changes with [`SCHEMA_VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurableChange {
    pub securable: Securable,
    pub privileges: PrivilegeSet,
}

impl From<&PlannedChange> for SecurableChange {
    fn from(change: &PlannedChange) -> Self {
        Self {
            securable: change.securable.clone(),
            privileges: change.add.clone(),
        }
    }
}

/// The Databricks workspace a grant was made through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceRef {
    /// The configured name (what settings and answers call it).
    pub name: String,
    /// The workspace host, e.g. `adb-123.4.azuredatabricks.net`.
    pub host: String,
}

/// A grant provisioned through Delta Sharing: the share and recipient it uses (named by the naming rule)
/// and what this grant itself did. Ownership of the share and recipient is also marked on them (comment,
/// properties) and checked before any change, so uc-access never alters one it did not create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareGrant {
    pub share: String,
    pub recipient: String,
    /// The Entra object id the recipient is named from.
    pub object_id: EntraObjectId,
    #[serde(default)]
    pub created_recipient: bool,
    #[serde(default)]
    pub created_share: bool,
    /// This grant put the table into the share.
    #[serde(default)]
    pub added_table: bool,
    /// This grant gave the recipient `SELECT` on the share.
    #[serde(default)]
    pub granted_select: bool,
    /// The id of the recipient token this grant issued (a new recipient's, or a rotated one): its
    /// activation link is this approval's to hand out, and no other approval's. Not a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token: Option<String>,
}

impl ShareGrant {
    pub fn new(share: String, recipient: String, object_id: EntraObjectId) -> Self {
        Self {
            share,
            recipient,
            object_id,
            created_recipient: false,
            created_share: false,
            added_table: false,
            granted_select: false,
            issued_token: None,
        }
    }
}

/// What happened, for the record's own history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    Recorded,
    /// A revoked grant approved again: a new cycle in the same record.
    Reopened,
    Applied,
    Extended,
    RevokeStarted,
    Revoked,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// What the caller knows when it records an approval, before anything is applied.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub idempotency_key: IdempotencyKey,
    pub requester: EntraObjectId,
    pub target: Option<EntraObjectId>,
    pub principal: Principal,
    pub workspace: WorkspaceRef,
    pub securable: Securable,
    pub requested_privileges: PrivilegeSet,
    pub duration: GrantDuration,
    pub plan: Vec<SecurableChange>,
    pub approvers: Vec<String>,
    /// Which entry point recorded it (`purview-callback`, `grant-access`, …).
    pub source: String,
    /// The approval's own id, when the workflow sent one (`approvalId`).
    pub approval_id: Option<String>,
}

/// One approval's grant. Holds names, ids and times only: never a token, a secret or a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantRecord {
    pub schema_version: u32,
    pub id: GrantId,
    pub idempotency_key: IdempotencyKey,
    pub requester: EntraObjectId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<EntraObjectId>,
    pub principal: Principal,
    pub workspace: WorkspaceRef,
    pub securable: Securable,
    pub requested_privileges: PrivilegeSet,
    pub duration: GrantDuration,
    pub plan: Vec<SecurableChange>,
    /// What was actually added, per securable: the only privileges uc-access may ever revoke.
    #[serde(default)]
    pub added: Vec<SecurableChange>,
    pub state: GrantState,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub applied_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// `revokedAt` + [`VENDED_CREDENTIAL_LIFETIME`]: when access is certain to have ended.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub access_ends_by: Option<OffsetDateTime>,
    #[serde(default)]
    pub approvers: Vec<String>,
    /// The ids of the approvals (`approvalId`) this record has stood for, oldest first, at most
    /// [`MAX_APPROVAL_IDS`]: a delivery naming one of them is a re-delivery, never a new approval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<String>,
    pub source: String,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub events: Vec<GrantEvent>,
    /// Present when the grant was provisioned through Delta Sharing (absent in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<ShareGrant>,
}

/// A transition the state machine does not allow; the record is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("grant {id} is {from}; it cannot become {to}")]
    Illegal {
        id: GrantId,
        from: GrantState,
        to: GrantState,
    },
    #[error("grant {id}: the new expiry must be later than the current one")]
    NotLater { id: GrantId },
}

fn clip(text: &str) -> String {
    text.chars().take(MAX_DETAIL_CHARS).collect()
}

impl GrantRecord {
    /// A `pending` record for an approval, stamped `now`.
    pub fn new(grant: NewGrant, now: OffsetDateTime) -> Self {
        let now = now.to_offset(time::UtcOffset::UTC);
        Self {
            schema_version: DIRECT_SCHEMA_VERSION,
            id: GrantId::for_key(&grant.idempotency_key),
            idempotency_key: grant.idempotency_key,
            requester: grant.requester,
            target: grant.target,
            principal: grant.principal,
            workspace: grant.workspace,
            securable: grant.securable,
            requested_privileges: grant.requested_privileges,
            duration: grant.duration,
            plan: grant.plan,
            added: Vec::new(),
            state: GrantState::Pending,
            requested_at: now,
            applied_at: None,
            expires_at: None,
            revoked_at: None,
            access_ends_by: None,
            approvers: grant.approvers,
            approvals: grant.approval_id.into_iter().collect(),
            source: grant.source,
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
            events: vec![GrantEvent {
                at: now,
                kind: EventKind::Recorded,
                detail: String::new(),
            }],
            sharing: None,
        }
    }

    /// Whether the record is one this version can trust: known layout, id matching its key.
    pub fn check_integrity(&self) -> Result<(), String> {
        if self.schema_version > SCHEMA_VERSION {
            return Err(format!(
                "schemaVersion {} is newer than this build understands ({SCHEMA_VERSION})",
                self.schema_version
            ));
        }
        if self.id != GrantId::for_key(&self.idempotency_key) {
            return Err("id does not derive from idempotencyKey".to_owned());
        }
        Ok(())
    }

    fn refuse(&self, to: GrantState) -> TransitionError {
        TransitionError::Illegal {
            id: self.id,
            from: self.state,
            to,
        }
    }

    fn log(&mut self, at: OffsetDateTime, kind: EventKind, detail: &str) {
        self.events.push(GrantEvent {
            at,
            kind,
            detail: clip(detail),
        });
    }

    /// Makes this a Delta Sharing grant (before it is first stored).
    pub fn set_sharing(&mut self, sharing: ShareGrant) {
        self.sharing = Some(sharing);
        self.schema_version = SHARING_SCHEMA_VERSION;
    }

    /// `pending` → `active`: Unity Catalog accepted the plan; `added` is what it actually added.
    /// Starts a new cycle of a revoked grant (the same request approved again after it ended): back to
    /// `pending` with the new plan; the history is kept.
    pub fn reopen(&mut self, grant: NewGrant, now: OffsetDateTime) -> Result<(), TransitionError> {
        if self.state != GrantState::Revoked {
            return Err(self.refuse(GrantState::Pending));
        }
        let now = now.to_offset(time::UtcOffset::UTC);
        self.requester = grant.requester;
        self.target = grant.target;
        self.principal = grant.principal;
        self.workspace = grant.workspace;
        self.securable = grant.securable;
        self.requested_privileges = grant.requested_privileges;
        self.duration = grant.duration;
        self.plan = grant.plan;
        self.approvers = grant.approvers;
        self.source = grant.source;
        if let Some(id) = grant.approval_id {
            self.note_approval(id);
        }
        self.added = Vec::new();
        self.state = GrantState::Pending;
        self.requested_at = now;
        self.applied_at = None;
        self.expires_at = None;
        self.revoked_at = None;
        self.access_ends_by = None;
        self.attempts = 0;
        self.last_error = None;
        self.next_attempt_at = None;
        self.sharing = None;
        self.schema_version = DIRECT_SCHEMA_VERSION;
        self.log(now, EventKind::Reopened, "");
        Ok(())
    }

    pub fn mark_active(
        &mut self,
        added: Vec<SecurableChange>,
        now: OffsetDateTime,
    ) -> Result<(), TransitionError> {
        if self.state != GrantState::Pending {
            return Err(self.refuse(GrantState::Active));
        }
        self.state = GrantState::Active;
        // Merge, never replace: while this grant was pending, an ending sibling may have handed over
        // privileges it still needs (see `usecases::expire`); losing them would leave them unrevoked.
        self.merge_added(added);
        self.applied_at = Some(now);
        self.expires_at = Some(now + self.duration.as_duration());
        self.next_attempt_at = None;
        self.last_error = None;
        self.log(now, EventKind::Applied, "");
        Ok(())
    }

    /// Adds `changes` to what this grant claims to have added. `added` is only ever merged into, never
    /// replaced: a privilege dropped from it would stay in Unity Catalog with no record to remove it.
    pub fn merge_added(&mut self, changes: impl IntoIterator<Item = SecurableChange>) {
        for change in changes {
            if change.privileges.is_empty() {
                continue;
            }
            match self
                .added
                .iter_mut()
                .find(|c| c.securable == change.securable)
            {
                Some(existing) => existing.privileges.extend(change.privileges),
                None => self.added.push(change),
            }
        }
    }

    /// Remembers an approval id (once; the oldest are forgotten past [`MAX_APPROVAL_IDS`]). Answers
    /// whether it was new, so the record needs writing.
    pub fn note_approval(&mut self, id: String) -> bool {
        if self.approvals.contains(&id) {
            return false;
        }
        self.approvals.push(id);
        if self.approvals.len() > MAX_APPROVAL_IDS {
            self.approvals.remove(0);
        }
        true
    }

    /// When this record last took an approval: its first delivery, a reopening or a renewal.
    pub fn last_approved_at(&self) -> OffsetDateTime {
        self.events
            .iter()
            .rev()
            .find(|e| {
                matches!(
                    e.kind,
                    EventKind::Recorded | EventKind::Reopened | EventKind::Extended
                )
            })
            .map_or(self.requested_at, |e| e.at)
    }

    /// How a delivery naming `approval_id` (if the workflow sent one) at `now` relates to this record.
    ///
    /// With ids on both sides the id decides. Without, deliveries within `window` of the record's last
    /// approval are taken as one approval (workflow retries, a replayed body within a token's life),
    /// and after an early revoke the same request stays refused until the revoked grant's own expiry.
    /// A grant that never gave access in its current cycle (its apply failed and was undone) may be
    /// delivered again: that is the workflow's retry, and it gets the grant.
    pub fn delivery(
        &self,
        approval_id: Option<&str>,
        now: OffsetDateTime,
        window: Duration,
    ) -> Delivery {
        let by_id = approval_id.filter(|_| !self.approvals.is_empty());
        let last = self.last_approved_at();
        let same = match by_id {
            Some(id) => self.approvals.iter().any(|a| a == id),
            None => now - last < window,
        };
        if self.state != GrantState::Revoked {
            return if same { Delivery::Same } else { Delivery::New };
        }
        if self.applied_at.is_none() {
            return Delivery::New;
        }
        let early_until = self
            .expires_at
            .filter(|e| self.revoked_at.is_some_and(|r| r < *e));
        let early = early_until.is_some();
        match (same, by_id) {
            (true, Some(_)) => Delivery::Ended { until: None, early },
            (true, None) => Delivery::Ended {
                until: Some(early_until.map_or(last + window, |e| e.max(last + window))),
                early,
            },
            (false, None) if early_until.is_some_and(|e| now < e) => Delivery::Ended {
                until: early_until,
                early,
            },
            (false, _) => Delivery::New,
        }
    }

    /// Moves an `active` grant's expiry later (a new approval of the same request that extends it).
    pub fn extend(
        &mut self,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
        approval_id: Option<String>,
    ) -> Result<(), TransitionError> {
        if self.state != GrantState::Active {
            return Err(self.refuse(GrantState::Active));
        }
        if self.expires_at.is_some_and(|current| expires_at <= current) {
            return Err(TransitionError::NotLater { id: self.id });
        }
        self.expires_at = Some(expires_at);
        if let Some(id) = approval_id {
            self.note_approval(id);
        }
        self.log(now, EventKind::Extended, "");
        Ok(())
    }

    /// `pending` | `active` | `failed` → `revoking`. `retry_at` is when the timer takes it up again if
    /// this attempt dies half-way.
    pub fn begin_revoke(
        &mut self,
        now: OffsetDateTime,
        retry_at: OffsetDateTime,
    ) -> Result<(), TransitionError> {
        if !matches!(
            self.state,
            GrantState::Pending | GrantState::Active | GrantState::Failed
        ) {
            return Err(self.refuse(GrantState::Revoking));
        }
        self.state = GrantState::Revoking;
        self.next_attempt_at = Some(retry_at);
        self.log(now, EventKind::RevokeStarted, "");
        Ok(())
    }

    /// `revoking` → `revoked`: everything in `added` that no other grant needs has been removed.
    pub fn mark_revoked(&mut self, now: OffsetDateTime) -> Result<(), TransitionError> {
        if self.state != GrantState::Revoking {
            return Err(self.refuse(GrantState::Revoked));
        }
        self.state = GrantState::Revoked;
        self.revoked_at = Some(now);
        self.access_ends_by = Some(now + VENDED_CREDENTIAL_LIFETIME);
        self.next_attempt_at = None;
        self.last_error = None;
        self.log(now, EventKind::Revoked, "");
        Ok(())
    }

    /// `pending` | `revoking` | `failed` → `failed`: an attempt failed; the timer tries again at
    /// `retry_at`. `error` must be a safe message (no tokens, no bodies that may hold secrets).
    pub fn mark_failed(
        &mut self,
        error: &str,
        now: OffsetDateTime,
        retry_at: OffsetDateTime,
    ) -> Result<(), TransitionError> {
        if !matches!(
            self.state,
            GrantState::Pending | GrantState::Revoking | GrantState::Failed
        ) {
            return Err(self.refuse(GrantState::Failed));
        }
        self.state = GrantState::Failed;
        self.attempts = self.attempts.saturating_add(1);
        self.last_error = Some(clip(error));
        self.next_attempt_at = Some(retry_at);
        self.log(now, EventKind::Failed, error);
        Ok(())
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
