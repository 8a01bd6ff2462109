//! Blob index tags written with each record, and the tag queries built on them.
//!
//! Tags let the timer and `list-grants` find records without listing the container. Their limits shape
//! the values: at most 10 tags, values up to 256 characters from `a-z A-Z 0-9 space + - . / : = _`.
//! Times are fixed-width UTC (`2025-01-31T08:00:00Z`) so string order is time order; principal,
//! workspace and securable names may hold any character, so they are stored as SHA-256 hex.
//! Tags only narrow a search: every hit is read and checked against the record's own content.

use std::collections::HashMap;

use time::OffsetDateTime;
use time::macros::format_description;

use super::ids::hash_hex;
use super::query::{DueQuery, ListFilter};
use super::record::{GrantRecord, GrantState};
use crate::domain::{Principal, Securable};

pub const RECORD: &str = "record";
pub const STATE: &str = "state";
pub const EXPIRES_AT: &str = "expiresAt";
pub const NEXT_ATTEMPT_AT: &str = "nextAttemptAt";
pub const REQUESTED_AT: &str = "requestedAt";
pub const PRINCIPAL: &str = "principal";
pub const WORKSPACE: &str = "workspace";
pub const SECURABLE: &str = "securable";

/// The tag of the doctor's throwaway probe blobs (never on a grant record).
pub const PROBE: &str = "probe";
pub const PROBE_VALUE: &str = "doctor";

/// The tag query that finds probe blobs.
pub fn probe_query() -> String {
    format!("\"{PROBE}\" = '{PROBE_VALUE}'")
}

/// Every record carries `record=grant1`, so an empty filter is still a tag query.
const RECORD_VALUE: &str = "grant1";

pub fn time_value(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    utc.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_else(|_| "0000-01-01T00:00:00Z".to_owned())
}

pub fn principal_value(principal: &Principal) -> String {
    hash_hex(&[principal.kind().as_str(), principal.uc_name()])
}

pub fn workspace_value(name: &str) -> String {
    hash_hex(&[name])
}

pub fn securable_value(securable: &Securable) -> String {
    hash_hex(&[securable.securable_type().as_str(), &securable.full_name()])
}

/// The tags stored with `record` (absent times are simply not tagged, so range queries skip them).
pub fn for_record(record: &GrantRecord) -> HashMap<String, String> {
    let mut tags = HashMap::from([
        (RECORD.to_owned(), RECORD_VALUE.to_owned()),
        (STATE.to_owned(), record.state.as_str().to_owned()),
        (REQUESTED_AT.to_owned(), time_value(record.requested_at)),
        (PRINCIPAL.to_owned(), principal_value(&record.principal)),
        (
            WORKSPACE.to_owned(),
            workspace_value(&record.workspace.name),
        ),
        (SECURABLE.to_owned(), securable_value(&record.securable)),
    ]);
    if let Some(at) = record.expires_at {
        tags.insert(EXPIRES_AT.to_owned(), time_value(at));
    }
    if let Some(at) = record.next_attempt_at {
        tags.insert(NEXT_ATTEMPT_AT.to_owned(), time_value(at));
    }
    tags
}

fn eq(key: &str, value: &str) -> String {
    // Values never contain a quote: they are state names, hex or timestamps.
    format!("\"{key}\"='{value}'")
}

fn at_or_before(key: &str, at: OffsetDateTime) -> String {
    format!("\"{key}\"<='{}'", time_value(at))
}

/// The tag queries whose union is every due record (the service has no `OR`, so one query per kind).
pub fn due_queries(query: &DueQuery) -> Vec<String> {
    let state = |s: GrantState| eq(STATE, s.as_str());
    vec![
        format!(
            "{} AND {}",
            state(GrantState::Active),
            at_or_before(EXPIRES_AT, query.now)
        ),
        format!(
            "{} AND {}",
            state(GrantState::Revoking),
            at_or_before(NEXT_ATTEMPT_AT, query.now)
        ),
        format!(
            "{} AND {}",
            state(GrantState::Failed),
            at_or_before(NEXT_ATTEMPT_AT, query.now)
        ),
        format!(
            "{} AND {}",
            state(GrantState::Pending),
            at_or_before(REQUESTED_AT, query.stale_pending_cutoff())
        ),
    ]
}

/// The tag query for a `list` filter.
pub fn list_query(filter: &ListFilter) -> String {
    let mut terms = vec![eq(RECORD, RECORD_VALUE)];
    if let Some(p) = &filter.principal {
        terms.push(eq(PRINCIPAL, &principal_value(p)));
    }
    if let Some(w) = &filter.workspace {
        terms.push(eq(WORKSPACE, &workspace_value(w)));
    }
    if let Some(s) = &filter.securable {
        terms.push(eq(SECURABLE, &securable_value(s)));
    }
    if let Some(s) = filter.state {
        terms.push(eq(STATE, s.as_str()));
    }
    terms.join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn allowed(c: char) -> bool {
        c.is_ascii_alphanumeric() || " +-./:=_".contains(c)
    }

    #[test]
    fn tag_times_are_fixed_width_utc_so_text_order_is_time_order() {
        assert_eq!(
            time_value(datetime!(2025-01-31 09:00:05 +01:00)),
            "2025-01-31T08:00:05Z"
        );
        assert!(
            time_value(datetime!(2025-01-31 08:00 UTC))
                < time_value(datetime!(2025-02-01 00:00 UTC))
        );
    }

    #[test]
    fn names_become_hashes_that_fit_the_tag_character_set() {
        let group = Principal::group("Finance & Ops (EU) ✓").unwrap();
        let value = principal_value(&group);
        assert_eq!(value.len(), 64);
        assert!(value.chars().all(allowed));
        assert_ne!(
            value,
            principal_value(&Principal::group("Finance").unwrap())
        );
    }

    #[test]
    fn the_due_queries_cover_each_due_kind_with_a_range() {
        let q = DueQuery::at(datetime!(2025-01-31 08:00 UTC));
        let queries = due_queries(&q);
        assert_eq!(
            queries[0],
            "\"state\"='active' AND \"expiresAt\"<='2025-01-31T08:00:00Z'"
        );
        assert!(queries[3].contains("\"requestedAt\"<='2025-01-31T07:50:00Z'"));
        assert_eq!(queries.len(), 4);
    }

    #[test]
    fn an_empty_filter_still_queries_the_record_tag() {
        assert_eq!(list_query(&ListFilter::default()), "\"record\"='grant1'");
        let filter = ListFilter {
            state: Some(GrantState::Active),
            ..ListFilter::default()
        };
        assert!(list_query(&filter).ends_with("AND \"state\"='active'"));
    }
}
