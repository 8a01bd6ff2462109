//! The revoke timer's schedule (`REVOKE_SCHEDULE`): NCRONTAB with seconds, as the Functions host reads it
//! (`0 */5 * * * *` = every five minutes). In Azure the host runs the timer; the local run runs it itself
//! on the same schedule. Checked at start so a typo fails fast instead of silently never revoking.

use std::str::FromStr;
use std::time::Duration;

use super::{Env, SettingsError};

pub const REVOKE_SCHEDULE: &str = "REVOKE_SCHEDULE";
/// What deployments use unless told otherwise: every five minutes.
pub const DEFAULT_SCHEDULE: &str = "0 */5 * * * *";

#[derive(Debug, Clone)]
pub struct RevokeSchedule {
    expression: String,
    schedule: cron::Schedule,
}

impl RevokeSchedule {
    pub fn parse(expression: &str) -> Result<Self, String> {
        let fields = expression.split_whitespace().count();
        if fields != 6 {
            return Err(format!(
                "{expression:?} has {fields} fields; NCRONTAB needs six (second minute hour day month weekday), e.g. {DEFAULT_SCHEDULE:?}"
            ));
        }
        let schedule = cron::Schedule::from_str(expression)
            .map_err(|e| format!("{expression:?} is not a valid NCRONTAB expression: {e}"))?;
        Ok(Self {
            expression: expression.to_owned(),
            schedule,
        })
    }

    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        Self::parse(env.get(REVOKE_SCHEDULE).unwrap_or(DEFAULT_SCHEDULE))
            .map_err(|e| SettingsError::new(REVOKE_SCHEDULE, e))
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Time from now until the next occurrence (UTC, as the host on Linux).
    pub fn until_next(&self) -> Duration {
        let now = chrono::Utc::now();
        self.schedule
            .after(&now)
            .next()
            .and_then(|next| (next - now).to_std().ok())
            .unwrap_or(Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_field_ncrontab_expressions_are_accepted() {
        let s = RevokeSchedule::parse("*/15 * * * * *").unwrap();
        assert!(s.until_next() <= Duration::from_secs(15));
        assert!(RevokeSchedule::parse(DEFAULT_SCHEDULE).is_ok());
    }

    #[test]
    fn five_field_unix_cron_and_nonsense_are_refused_with_the_key() {
        let err = RevokeSchedule::from_env(&Env::from_pairs([(REVOKE_SCHEDULE, "*/5 * * * *")]))
            .unwrap_err();
        assert_eq!(err.key, REVOKE_SCHEDULE);
        assert!(err.problem.contains("six"), "{err}");
        assert!(RevokeSchedule::parse("0 */5 * * * nope").is_err());
    }
}
