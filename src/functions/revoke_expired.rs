//! `revoke-expired` (timer, `%REVOKE_SCHEDULE%`): revoke what has expired, finish or undo anything left
//! half-done, retry failed revokes. The run's report goes back to the host in `Logs` and `ReturnValue`.

use std::time::Duration;

use serde::Serialize;

use crate::databricks::Deadline;
use crate::host::timer::TimerInfo;
use crate::ledger::LedgerError;
use crate::services::Services;
use crate::usecases::expire::sweep;

/// Time a run may spend; the host's `functionTimeout` (host.json) is five minutes.
pub const RUN_BUDGET: Duration = Duration::from_secs(240);

/// What one timer run did, returned to the host as `ReturnValue` and summarised in `Logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub past_due: bool,
    pub due: u64,
    pub revoked: u64,
    /// Stale half-done grants found applied and marked active.
    pub finished: u64,
    /// Privileges kept because another active grant still needs them.
    pub kept: u64,
    pub failed: u64,
    /// Due grants left for the next run because this run's time budget was spent.
    pub deferred: u64,
    pub databricks_calls: u64,
    pub alerts: Vec<String>,
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
            "due={} revoked={} finished={} kept={} failed={} deferred={} databricksCalls={}",
            self.due,
            self.revoked,
            self.finished,
            self.kept,
            self.failed,
            self.deferred,
            self.databricks_calls
        ));
        for id in &self.alerts {
            lines.push(format!("ALERT: the revoke of grant {id} keeps failing"));
        }
        lines.push(self.message.clone());
        lines
    }
}

/// Runs one sweep. A ledger that cannot be queried fails the run (the host records a failed invocation).
pub async fn run(timer: &TimerInfo, services: &Services) -> Result<RunReport, LedgerError> {
    let Ok(provisioning) = services.provisioning() else {
        return Ok(RunReport {
            past_due: timer.is_past_due,
            message: "provisioning is not configured (no Databricks settings): nothing to revoke"
                .into(),
            ..RunReport::default()
        });
    };
    let ctx = &provisioning.context;
    let calls_before = provisioning.clients.requests();
    let report = sweep(ctx, ctx.now(), Deadline::after(RUN_BUDGET)).await?;
    let databricks_calls = provisioning.clients.requests() - calls_before;
    let mut message = if report.due == 0 {
        "nothing was due".to_owned()
    } else {
        format!(
            "{} due: {} revoked, {} finished, {} failed",
            report.due, report.revoked, report.finished, report.failed
        )
    };
    if report.deferred > 0 {
        message.push_str(&format!(
            ", {} left for the next run (time budget spent)",
            report.deferred
        ));
    }
    Ok(RunReport {
        past_due: timer.is_past_due,
        due: report.due,
        revoked: report.revoked,
        finished: report.finished,
        kept: report.kept,
        failed: report.failed,
        deferred: report.deferred,
        databricks_calls,
        alerts: report.alerts,
        message,
    })
}
