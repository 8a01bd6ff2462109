//! The timer trigger's payload, parsed leniently: the host sometimes sends it as a JSON-encoded string,
//! `ScheduleStatus` may be null, and times may lack an offset or be `0001-01-01…` (never run).

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// What the host told us about this timer run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerInfo {
    /// The run was due earlier (the app was down, or this is the catch-up run at start-up).
    pub is_past_due: bool,
    pub last: Option<OffsetDateTime>,
    pub next: Option<OffsetDateTime>,
    pub last_updated: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the timer payload is not an object with IsPastDue: {0}")]
pub struct TimerPayloadError(String);

impl TimerInfo {
    /// Parses `Data.<binding>`; an absent `IsPastDue` counts as not past due, unreadable times as unknown.
    pub fn from_binding(value: &Value) -> Result<Self, TimerPayloadError> {
        let value = match value {
            Value::String(s) => serde_json::from_str::<Value>(s)
                .map_err(|e| TimerPayloadError(format!("string payload is not JSON: {e}")))?,
            other => other.clone(),
        };
        let Value::Object(obj) = value else {
            return Err(TimerPayloadError(format!("got {value}")));
        };
        let is_past_due = match obj.get("IsPastDue") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(other) => return Err(TimerPayloadError(format!("IsPastDue is {other}"))),
        };
        let status = obj.get("ScheduleStatus").and_then(Value::as_object);
        let time_of = |key: &str| {
            status
                .and_then(|s| s.get(key))
                .and_then(Value::as_str)
                .and_then(parse_lenient_time)
        };
        Ok(Self {
            is_past_due,
            last: time_of("Last"),
            next: time_of("Next"),
            last_updated: time_of("LastUpdated"),
        })
    }
}

/// RFC 3339, or the same without an offset (taken as UTC, which is what the host means on Linux);
/// the year-1 placeholder means "never".
pub fn parse_lenient_time(raw: &str) -> Option<OffsetDateTime> {
    let raw = raw.trim();
    let parsed = OffsetDateTime::parse(raw, &Rfc3339).ok().or_else(|| {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        PrimitiveDateTime::parse(raw, &format)
            .ok()
            .map(|t| t.assume_offset(UtcOffset::UTC))
    })?;
    (parsed.year() > 1).then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_time_without_an_offset_is_taken_as_utc() {
        let t = parse_lenient_time("2026-11-23T10:05:00.1234567").unwrap();
        assert_eq!(t.offset(), UtcOffset::UTC);
        assert_eq!(t.hour(), 10);
        assert_eq!(
            parse_lenient_time("2026-11-23T10:05:00+01:00")
                .unwrap()
                .hour(),
            10
        );
    }

    #[test]
    fn the_year_one_placeholder_means_never() {
        assert_eq!(parse_lenient_time("0001-01-01T00:00:00"), None);
        assert_eq!(parse_lenient_time("0001-01-01T00:00:00+00:00"), None);
        assert_eq!(parse_lenient_time("yesterday"), None);
    }

    #[test]
    fn a_payload_that_is_not_an_object_is_refused() {
        assert!(TimerInfo::from_binding(&json!(42)).is_err());
        assert!(TimerInfo::from_binding(&json!("not json")).is_err());
        assert!(TimerInfo::from_binding(&json!({"IsPastDue": 3})).is_err());
    }
}
