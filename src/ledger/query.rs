//! What the revoke timer and `list-grants` ask the ledger for, decided on a record's own content so
//! every backend answers alike (the Blob backend narrows with index tags first, then checks here).

use time::{Duration, OffsetDateTime};

use super::record::{GrantRecord, GrantState};
use crate::domain::{Principal, Securable};

/// Records the revoke timer must act on at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueQuery {
    pub now: OffsetDateTime,
    /// A `pending` record older than this is a grant whose process died half-way: finish or undo it.
    /// Longer than the slowest apply (HTTP answers are capped at 230 s), so live grants are left alone.
    pub stale_pending_after: Duration,
}

/// Default for [`DueQuery::stale_pending_after`]: comfortably above the 230 s HTTP cap.
pub const DEFAULT_STALE_PENDING_AFTER: Duration = Duration::minutes(10);

impl DueQuery {
    pub fn at(now: OffsetDateTime) -> Self {
        Self {
            now,
            stale_pending_after: DEFAULT_STALE_PENDING_AFTER,
        }
    }

    /// Requested at or before this instant makes a `pending` record stale.
    pub fn stale_pending_cutoff(&self) -> OffsetDateTime {
        self.now - self.stale_pending_after
    }

    /// Whether the timer must act on `record` now.
    pub fn is_due(&self, record: &GrantRecord) -> bool {
        let reached = |at: Option<OffsetDateTime>| at.is_some_and(|at| at <= self.now);
        match record.state {
            GrantState::Active => reached(record.expires_at),
            GrantState::Revoking | GrantState::Failed => reached(record.next_attempt_at),
            GrantState::Pending => record.requested_at <= self.stale_pending_cutoff(),
            GrantState::Revoked => false,
        }
    }

    /// When the record became due (for ordering: oldest debt first).
    pub fn due_since(record: &GrantRecord) -> OffsetDateTime {
        match record.state {
            GrantState::Active => record.expires_at,
            GrantState::Revoking | GrantState::Failed => record.next_attempt_at,
            GrantState::Pending | GrantState::Revoked => None,
        }
        .unwrap_or(record.requested_at)
    }
}

/// A `list-grants` filter; every field set must match (an empty filter lists everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub principal: Option<Principal>,
    /// The configured workspace name.
    pub workspace: Option<String>,
    /// The securable the grant was requested on (not its parents).
    pub securable: Option<Securable>,
    pub state: Option<GrantState>,
}

impl ListFilter {
    /// Every record of `principal` in `workspace` (the configured workspace name).
    pub fn of_principal(workspace: &str, principal: &Principal) -> Self {
        Self {
            principal: Some(principal.clone()),
            workspace: Some(workspace.to_owned()),
            ..Self::default()
        }
    }

    pub fn matches(&self, record: &GrantRecord) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| *p == record.principal)
            && self
                .workspace
                .as_ref()
                .is_none_or(|w| *w == record.workspace.name)
            && self
                .securable
                .as_ref()
                .is_none_or(|s| *s == record.securable)
            && self.state.is_none_or(|s| s == record.state)
    }
}
