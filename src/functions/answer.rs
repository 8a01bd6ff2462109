//! The answer to an approval: small, flat, stable JSON that a Purview workflow's Parse JSON step and a
//! Power Automate flow can read (scalars only, except the exact calls of a dry run).

use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::databricks::encode_segment;
use crate::ledger::SecurableChange;
use crate::planning::grant::PlannedChange;
use crate::usecases::provision::{Outcome, Status};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    /// `granted`, `already_granted`, `extended` or `planned` (errors answer `denied` or `error`).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    pub principal: String,
    pub principal_kind: &'static str,
    pub workspace: String,
    pub securable: String,
    pub securable_type: &'static str,
    /// The privileges the approval covers, comma-separated (`SELECT`).
    pub privileges: String,
    /// What this approval added, `PRIVILEGE on type name` separated by `; ` (empty when nothing).
    pub added: String,
    /// What the principal already held that the approval needed.
    pub already_held: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub message: String,
    /// Dry runs only: the exact calls that would be made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<Vec<Value>>,
}

/// Whole seconds: workflows show these times to people.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn describe(changes: &[SecurableChange]) -> String {
    changes
        .iter()
        .flat_map(|c| {
            c.privileges
                .iter()
                .map(move |p| format!("{p} on {}", c.securable))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The exact `PATCH` calls a plan would make.
pub fn calls(changes: &[PlannedChange], principal: &str) -> Vec<Value> {
    changes
        .iter()
        .map(|c| {
            json!({
                "method": "PATCH",
                "path": format!(
                    "/api/2.1/unity-catalog/permissions/{}/{}",
                    c.securable.securable_type(),
                    encode_segment(&c.securable.full_name())
                ),
                "body": {"changes": [{
                    "principal": principal,
                    "add": c.add.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                }]},
            })
        })
        .collect()
}

impl From<Outcome> for Answer {
    fn from(o: Outcome) -> Self {
        let principal = o.principal.principal.uc_name().to_owned();
        let (securable, workspace, added, expires_at, grant_id) = match &o.record {
            Some(r) => (
                r.securable.clone(),
                r.workspace.name.clone(),
                describe(&r.added),
                r.expires_at,
                Some(r.id.to_string()),
            ),
            None => (
                o.plan
                    .as_ref()
                    .map(|p| p.target.clone())
                    .unwrap_or_else(|| unreachable!("an outcome has a record or a plan")),
                o.workspace.clone(),
                String::new(),
                None,
                None,
            ),
        };
        let privileges = o
            .decision
            .privileges
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let plan_calls = o.plan.as_ref().map(|p| calls(&p.changes, &principal));
        let would_add = o
            .plan
            .as_ref()
            .map(|p| describe(&p.changes.iter().map(Into::into).collect::<Vec<_>>()))
            .unwrap_or_default();
        let until = expires_at.map(rfc3339).unwrap_or_default();
        let message = match o.status {
            Status::Granted => {
                format!("Granted {privileges} on {securable} to {principal} until {until}.")
            }
            Status::AlreadyGranted => format!(
                "{principal} already had {privileges} on {securable}; recorded until {until}."
            ),
            Status::Extended => {
                format!("Extended {principal}'s {privileges} on {securable} until {until}.")
            }
            Status::Planned if would_add.is_empty() => {
                format!("Dry run: {principal} already holds everything; nothing would change.")
            }
            Status::Planned => format!("Dry run: would add {would_add}. Nothing was changed."),
        };
        Self {
            status: o.status.as_str(),
            grant_id,
            principal,
            principal_kind: o.principal.principal.kind().as_str(),
            workspace,
            securable_type: securable.securable_type().as_str(),
            securable: securable.full_name(),
            privileges,
            added: if o.status == Status::Planned {
                would_add
            } else {
                added
            },
            already_held: describe(&o.already_held),
            expires_at: expires_at.map(rfc3339),
            message,
            calls: plan_calls,
        }
    }
}

/// Provisions a parsed request and answers it: shared by `purview-callback` and `grant-access`.
pub async fn provision_and_answer(
    services: &crate::app::Services,
    caller: &crate::auth::Caller,
    request: &crate::domain::AccessRequest,
) -> Result<axum::Json<Answer>, crate::error::ApiError> {
    let provisioning = services.provisioning()?;
    let deadline = crate::databricks::Deadline::after(services.time_budget);
    let outcome = crate::usecases::provision::provision(&provisioning.context, request, deadline)
        .await
        .map_err(|e| super::errors::provision_error(&e))?;
    let answer = Answer::from(outcome);
    tracing::info!(
        event = "grant.answered",
        source = request.source.as_str(),
        caller = caller.kind(),
        status = answer.status,
        grant_id = answer.grant_id.as_deref().unwrap_or(""),
        principal = %answer.principal,
        securable = %answer.securable,
        "access request answered"
    );
    Ok(axum::Json(answer))
}
