//! `revoke-expired` (timer): revoke what has expired, finish or undo anything left half-done.
//!
//! The grant ledger is not part of this build yet, so a run has nothing it could act on; it says so
//! truthfully in its report instead of pretending to have checked anything.

use serde::Serialize;

use crate::host::timer::TimerInfo;

/// What one timer run did, returned to the host as `ReturnValue` and summarised in `Logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub past_due: bool,
    pub due: u64,
    pub revoked: u64,
    pub kept: u64,
    pub failed: u64,
    pub databricks_calls: u64,
    pub message: String,
}

impl RunReport {
    /// One line per fact, for the host's invocation log.
    pub fn log_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.past_due {
            lines.push("this run was past due (the app was down or just started)".to_owned());
        }
        lines.push(format!(
            "due={} revoked={} kept={} failed={} databricksCalls={}",
            self.due, self.revoked, self.kept, self.failed, self.databricks_calls
        ));
        lines.push(self.message.clone());
        lines
    }
}

/// Runs one sweep.
pub async fn run(timer: &TimerInfo) -> RunReport {
    RunReport {
        past_due: timer.is_past_due,
        message:
            "no grant ledger is configured in this build, so there is nothing recorded to revoke"
                .to_owned(),
        ..RunReport::default()
    }
}
