//! `doctor` (HTTP GET, operators): runs the deployment's checks with the settings the app is serving
//! with and answers every check as JSON (`{"ok": false, "checks": [{name, ok, detail, fix}]}`). The
//! answer is 200 whatever the checks found: the body says what failed; only a refused caller gets 401.

use std::time::Duration;

use axum::Json;

use crate::doctor::{Check, Doctor, Report};
use crate::error::ApiError;
use crate::functions::http::{Accepted, Doctor as DoctorFunction};
use crate::functions::{AuthLevel, FUNCTIONS, Trigger};
use crate::services::Services;

/// The longest one check may wait: several run one after another within the host's HTTP timeout.
const CHECK_BUDGET: Duration = Duration::from_secs(10);

/// The doctor over the parts `services` serves with.
pub fn doctor(services: &Services) -> Doctor<'_> {
    Doctor {
        server: &services.server,
        auth: &services.auth,
        extra: vec![host_key_check()],
        databricks: services.databricks(),
        workspaces: &services.workspaces,
        governed: &services.governed_catalogs,
        sharing: services
            .provisioning()
            .is_ok_and(|p| p.context.policy.provisioning().may_share()),
        ledger: services.ledger.as_ref(),
        graph: services.graph.as_deref(),
        secrets: Some(&services.secrets),
        budget: services.time_budget.min(CHECK_BUDGET),
    }
}

/// `host_key`: which lock the Functions host puts in front of each HTTP function (the `authLevel` of its
/// `function.json`, kept equal to [`FUNCTIONS`] by a test), and what stands in for the host key where
/// there is none. Always passes: it states the deployment's shape and advises the Entra setting it relies
/// on, which the doctor cannot read.
pub fn host_key_check() -> Check {
    let (mut keyed, mut open) = (Vec::new(), Vec::new());
    for spec in FUNCTIONS {
        if let Trigger::Http { auth_level, .. } = spec.trigger {
            match auth_level {
                AuthLevel::Function => keyed.push(spec.name),
                AuthLevel::Anonymous => open.push(spec.name),
            }
        }
    }
    Check::pass(
        "host_key",
        format!(
            "the Functions host checks the function key (x-functions-key) before uc-access on {}; {} are anonymous at the host (the Power Automate connector reaches them with a person's Entra token only), so there uc-access's own token check and Entra's issuing rules are the locks",
            keyed.join(", "),
            open.join(", ")
        ),
    )
    .advise(
        "set Assignment required on uc-access's enterprise application, so Entra issues tokens for uc-access only to the people and applications assigned one of its app roles:          that is the second, independent lock of the anonymous functions (docs/authentication.md, The host key)",
    )
}

/// Every check; the settings were loaded when `services` were built.
pub async fn run(services: &Services) -> Report {
    doctor(services).run(Check::settings(Ok(()))).await
}

/// Prints a report on standard output (as text, or as the JSON `GET /api/doctor` answers); the exit code
/// says whether every check passed.
pub fn print(report: &Report, json: bool) -> anyhow::Result<std::process::ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{report}");
    }
    Ok(if report.ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

pub async fn handle(accepted: Accepted<DoctorFunction>) -> Result<Json<Report>, ApiError> {
    let services = &accepted.services;
    let report = run(services).await;
    for check in report.checks.iter().filter(|c| !c.ok) {
        tracing::warn!(event = "doctor.failed", check = %check.name, detail = %check.detail, "doctor check failed");
    }
    Ok(Json(report))
}
