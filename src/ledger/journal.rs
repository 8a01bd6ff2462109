//! The Blob ledger's journal of records due soon: an empty blob `due-soon/<id>` for each record whose last
//! write made it due within [`HORIZON`]. Every sweep lists the prefix, which is strongly consistent, and
//! reads what it names, so a record the tag index has not caught up with (a one-minute grant just marked
//! active, a failed apply rescheduled, a revoked grant approved again) is still found when it is due.
//! Find Blobs by Tags reads an index that Azure Storage updates after the write: "It might take some time
//! before the blob index updates", under a second at low rates and up to 10 minutes in Microsoft's
//! example of 15,000–20,000 tag writes per second, and "There is no API to determine if index tags are
//! indexed" (Microsoft Learn, *Manage and find Azure Blob data with blob index tags*).
//!
//! Records due later than [`HORIZON`] after their last write are left to the tag index, which has that
//! long to catch up; so a record is found by the first sweep at or after it is due unless the index takes
//! longer than an hour. The exception is a record's create (an approval's first write, always `pending`):
//! journaling it would cost every approval a fourth storage request, for the case of a process that dies
//! before marking its grant `active` or `failed` while the index lags by more than the 10 minutes after
//! which such a record is due; that record is found once the index shows it.

use time::{Duration, OffsetDateTime};

use super::query::DEFAULT_STALE_PENDING_AFTER;
use super::{GrantId, GrantRecord, GrantState};

/// Where the journal's entries live.
pub const PREFIX: &str = "due-soon/";

/// A write that makes its record due within this long journals it. Six times the longest indexing delay
/// Microsoft describes; also the revoke timer's longest retry wait, so every failed revoke is journaled.
pub const HORIZON: Duration = Duration::hours(1);

/// The journal entry of the record `id`.
pub fn entry_name(id: GrantId) -> String {
    format!("{PREFIX}{id}")
}

/// The record a journal entry names.
pub fn id_of(name: &str) -> Option<GrantId> {
    name.strip_prefix(PREFIX)
        .and_then(|id| GrantId::parse(id).ok())
}

/// What the journal's rules read of a record: its state and its times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub state: GrantState,
    pub requested_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl From<&GrantRecord> for Timing {
    fn from(r: &GrantRecord) -> Self {
        Self {
            state: r.state,
            requested_at: r.requested_at,
            expires_at: r.expires_at,
            next_attempt_at: r.next_attempt_at,
        }
    }
}

/// When the revoke timer must act on a record (see [`super::DueQuery::is_due`], with the default stale
/// window for `pending` records); `None` for a revoked one.
pub fn due_at(record: Timing) -> Option<OffsetDateTime> {
    match record.state {
        GrantState::Active => record.expires_at,
        GrantState::Revoking | GrantState::Failed => record.next_attempt_at,
        GrantState::Pending => Some(record.requested_at + DEFAULT_STALE_PENDING_AFTER),
        GrantState::Revoked => None,
    }
}

/// Whether storing a record at `now` must journal it: it is due within [`HORIZON`], and the tag index
/// could be showing a state of it that no due query finds by then.
///
/// One write is exempt: marking `revoking` a grant that was due already (its expiry, or a `pending`
/// record's stale window, has passed). That is the revoke timer's own step for every grant it ends;
/// every state of that grant the index may still show is due, or was journaled when it was written (a
/// short grant's activation, a failure), and its entry stays until the grant is revoked.
pub fn needs_entry(record: Timing, now: OffsetDateTime) -> bool {
    let Some(due) = due_at(record) else {
        return false;
    };
    if due > now + HORIZON {
        return false;
    }
    let was_due = match record.expires_at {
        Some(expires_at) => expires_at <= now,
        None => record.requested_at + DEFAULT_STALE_PENDING_AFTER <= now,
    };
    !(record.state == GrantState::Revoking && was_due)
}

/// Whether a sweep at `now` keeps the entry of a record it read (`None`: the record is gone): while the
/// record is due within [`HORIZON`]. An entry is dropped once its record is revoked or due later (a
/// later write that made it due soon again journaled it again).
pub fn keep_entry(record: Option<Timing>, now: OffsetDateTime) -> bool {
    record
        .and_then(due_at)
        .is_some_and(|due| due <= now + HORIZON)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2025-03-01 12:00 UTC);

    fn timing(
        state: GrantState,
        expires_at: Option<OffsetDateTime>,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Timing {
        Timing {
            state,
            requested_at: NOW,
            expires_at,
            next_attempt_at,
        }
    }

    #[test]
    fn a_grant_shorter_than_the_horizon_is_journaled_when_it_becomes_active_and_a_long_one_is_not()
    {
        let short = timing(GrantState::Active, Some(NOW + Duration::minutes(1)), None);
        assert!(needs_entry(short, NOW));
        let long = timing(GrantState::Active, Some(NOW + Duration::days(7)), None);
        assert!(!needs_entry(long, NOW));
    }

    #[test]
    fn failures_and_reopens_are_journaled_and_the_timers_revoke_of_an_expired_grant_is_not() {
        let failed = timing(GrantState::Failed, None, Some(NOW + Duration::minutes(1)));
        assert!(needs_entry(failed, NOW), "a failed apply due in a minute");
        let backed_off = timing(
            GrantState::Failed,
            Some(NOW - Duration::days(1)),
            Some(NOW + Duration::hours(1)),
        );
        assert!(needs_entry(backed_off, NOW), "the longest retry wait");

        let later = NOW + Duration::minutes(5);
        let expired = timing(
            GrantState::Revoking,
            Some(NOW + Duration::minutes(1)),
            Some(later + Duration::minutes(1)),
        );
        assert!(!needs_entry(expired, later), "the timer's own step");
        let early = timing(
            GrantState::Revoking,
            Some(NOW + Duration::days(7)),
            Some(NOW + Duration::minutes(1)),
        );
        assert!(needs_entry(early, NOW), "an early revoke of a live grant");
        let undo = timing(GrantState::Revoking, None, Some(NOW + Duration::minutes(1)));
        assert!(
            needs_entry(undo, NOW),
            "the undo of an apply that failed just now"
        );

        let revoked = timing(GrantState::Revoked, Some(NOW), None);
        assert!(!needs_entry(revoked, later));
        let reopened = timing(GrantState::Pending, None, None);
        assert!(
            needs_entry(reopened, NOW),
            "the index may still say revoked"
        );
    }

    #[test]
    fn a_sweep_keeps_an_entry_while_its_record_is_due_soon_only() {
        let active = timing(GrantState::Active, Some(NOW + Duration::minutes(30)), None);
        assert!(keep_entry(Some(active), NOW));
        let renewed = timing(GrantState::Active, Some(NOW + Duration::days(20)), None);
        assert!(!keep_entry(Some(renewed), NOW), "renewed for weeks");
        assert!(!keep_entry(
            Some(timing(GrantState::Revoked, None, None)),
            NOW
        ));
        assert!(!keep_entry(None, NOW), "gone");
    }

    #[test]
    fn entry_names_name_their_record() {
        let id = GrantId::parse("cbeb4c79-1ec5-8f83-a245-e6c229af8aa4").unwrap();
        assert_eq!(
            entry_name(id),
            "due-soon/cbeb4c79-1ec5-8f83-a245-e6c229af8aa4"
        );
        assert_eq!(id_of(&entry_name(id)), Some(id));
        assert_eq!(id_of("by-principal/x/y/z"), None);
    }
}
