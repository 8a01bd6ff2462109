//! How long a grant lasts: an ISO 8601 duration of whole days, hours, minutes or weeks, bounded.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Shortest grant: shorter would expire before the revoke timer could act on it predictably.
pub const MIN_SECONDS: i64 = 60;
/// Hard ceiling whatever the policy says (policy maxima are lower): ten years.
pub const MAX_SECONDS: i64 = 10 * 366 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("is not an ISO 8601 duration such as P30D, PT8H or P2W")]
    NotIso8601,
    #[error("uses years or months, whose length varies; use days or weeks (P90D)")]
    CalendarUnits,
    #[error("must be at least one minute")]
    TooShort,
    #[error("must be at most ten years")]
    TooLong,
}

/// A bounded grant duration.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantDuration(time::Duration);

impl GrantDuration {
    pub fn parse(raw: &str) -> Result<Self, DurationError> {
        let raw = raw.trim();
        // The iso8601 crate is lenient about a missing 'P'; the contract is not.
        if !raw.starts_with('P') {
            return Err(DurationError::NotIso8601);
        }
        // The whole text must be the duration: `iso8601::duration` ignores what follows a valid prefix
        // (`P30D; x`, `P1W2D`), so the parser's leftovers are checked here.
        let parsed = match iso8601::parsers::parse_duration(raw.as_bytes()) {
            Ok(([], parsed)) => parsed,
            _ => return Err(DurationError::NotIso8601),
        };
        let seconds: i64 = match parsed {
            iso8601::Duration::Weeks(w) => i64::from(w) * 7 * 24 * 3600,
            iso8601::Duration::YMDHMS {
                year,
                month,
                day,
                hour,
                minute,
                second,
                millisecond,
            } => {
                if year != 0 || month != 0 {
                    return Err(DurationError::CalendarUnits);
                }
                if millisecond != 0 {
                    return Err(DurationError::TooShort);
                }
                i64::from(day) * 86_400
                    + i64::from(hour) * 3600
                    + i64::from(minute) * 60
                    + i64::from(second)
            }
        };
        Self::from_seconds(seconds)
    }

    pub fn from_seconds(seconds: i64) -> Result<Self, DurationError> {
        if seconds < MIN_SECONDS {
            return Err(DurationError::TooShort);
        }
        if seconds > MAX_SECONDS {
            return Err(DurationError::TooLong);
        }
        Ok(Self(time::Duration::seconds(seconds)))
    }

    pub fn days(days: i64) -> Result<Self, DurationError> {
        Self::from_seconds(days.saturating_mul(86_400))
    }

    pub fn as_duration(self) -> time::Duration {
        self.0
    }

    pub fn whole_seconds(self) -> i64 {
        self.0.whole_seconds()
    }
}

impl fmt::Display for GrantDuration {
    /// Canonical ISO 8601: `P30D`, `PT8H`, `P1DT2H30M`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.whole_seconds();
        let (days, rest) = (total / 86_400, total % 86_400);
        let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
        f.write_str("P")?;
        if days > 0 {
            write!(f, "{days}D")?;
        }
        if rest > 0 {
            f.write_str("T")?;
            if h > 0 {
                write!(f, "{h}H")?;
            }
            if m > 0 {
                write!(f, "{m}M")?;
            }
            if s > 0 {
                write!(f, "{s}S")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for GrantDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantDuration({self})")
    }
}

impl Serialize for GrantDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GrantDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_after_a_valid_duration_is_refused() {
        // Regression: the iso8601 crate accepted these as their valid prefix (P30D, P1W, P1D).
        for raw in [
            "P30D\u{0}",
            "P30D; DROP",
            "P1W2D",
            "P1D5H",
            "P30Dx",
            "PT8H PT8H",
        ] {
            assert_eq!(
                GrantDuration::parse(raw),
                Err(DurationError::NotIso8601),
                "{raw:?}"
            );
        }
        assert!(GrantDuration::parse(" P1DT12H ").is_ok());
    }

    #[test]
    fn days_hours_minutes_and_weeks_are_accepted() {
        assert_eq!(
            GrantDuration::parse("P30D").unwrap().whole_seconds(),
            30 * 86_400
        );
        assert_eq!(
            GrantDuration::parse("PT8H").unwrap().whole_seconds(),
            8 * 3600
        );
        assert_eq!(GrantDuration::parse("PT2M").unwrap().whole_seconds(), 120);
        assert_eq!(
            GrantDuration::parse("P2W").unwrap().whole_seconds(),
            14 * 86_400
        );
        assert_eq!(
            GrantDuration::parse("P1DT2H30M").unwrap().whole_seconds(),
            86_400 + 2 * 3600 + 1800
        );
    }

    #[test]
    fn durations_display_canonically() {
        for raw in ["P30D", "PT8H", "P1DT2H30M", "PT1M"] {
            assert_eq!(GrantDuration::parse(raw).unwrap().to_string(), raw);
        }
        assert_eq!(GrantDuration::parse("P1W").unwrap().to_string(), "P7D");
    }

    #[test]
    fn calendar_units_and_out_of_bounds_durations_are_refused() {
        assert_eq!(
            GrantDuration::parse("P1M"),
            Err(DurationError::CalendarUnits)
        );
        assert_eq!(
            GrantDuration::parse("P1Y"),
            Err(DurationError::CalendarUnits)
        );
        assert_eq!(GrantDuration::parse("PT30S"), Err(DurationError::TooShort));
        assert_eq!(GrantDuration::parse("PT0S"), Err(DurationError::TooShort));
        assert_eq!(GrantDuration::parse("P4000D"), Err(DurationError::TooLong));
    }

    #[test]
    fn text_that_is_not_a_duration_is_refused() {
        for raw in ["30", "30 days", "", "P", "1D", "-P1D", "P1.5D"] {
            assert!(GrantDuration::parse(raw).is_err(), "{raw:?}");
        }
    }
}
