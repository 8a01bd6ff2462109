//! The answer to an approval: small, flat, stable JSON that a Purview workflow's Parse JSON step and a
//! Power Automate flow can read (scalars only, except the exact calls of a dry run).

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::databricks::{grant_calls, share_step_call};
use crate::domain::{PrincipalKind, ProvisioningMode};
use crate::ledger::{SecurableChange, ShareGrant};
use crate::planning::share::ShareStep;
use crate::usecases::provision::{Outcome, Status};
use crate::usecases::share::ShareOutcome;

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
    /// `direct` or `delta-sharing`.
    pub provisioning: &'static str,
    /// Delta Sharing: the share holding the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    /// Delta Sharing: the one-time link where the requester downloads the credential. Absent when the
    /// recipient already downloaded it (it then reads the new table with the credential it has).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_url: Option<String>,
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

/// What a sharing grant did, from its record, in the `added` style.
fn describe_sharing(sharing: &ShareGrant, table: &str) -> String {
    let mut done = Vec::new();
    if sharing.created_recipient {
        done.push(format!("recipient {}", sharing.recipient));
    }
    if sharing.created_share {
        done.push(format!("share {}", sharing.share));
    }
    if sharing.added_table {
        done.push(format!("table {table} in share {}", sharing.share));
    }
    if sharing.granted_select {
        done.push(format!(
            "SELECT on share {} to recipient {}",
            sharing.share, sharing.recipient
        ));
    }
    done.join("; ")
}

fn describe_steps(steps: &[ShareStep], s: &ShareOutcome) -> String {
    let table = s.table.full_name();
    steps
        .iter()
        .map(|step| match step {
            ShareStep::CreateRecipient => format!("recipient {}", s.recipient),
            ShareStep::RotateToken => format!(
                "a new activation link for recipient {} (an unused earlier one stops working)",
                s.recipient
            ),
            ShareStep::ExtendToken => format!("token expiry of recipient {}", s.recipient),
            ShareStep::CreateShare => format!("share {}", s.share),
            ShareStep::AddTable => format!("table {table} in share {}", s.share),
            ShareStep::GrantSelect => {
                format!("SELECT on share {} to recipient {}", s.share, s.recipient)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The answer for a grant provisioned through Delta Sharing.
fn sharing_answer(o: Outcome, s: ShareOutcome) -> Answer {
    let privileges = o
        .decision
        .privileges
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let table = s.table.full_name();
    let expires_at = o.record.as_ref().and_then(|r| r.expires_at);
    let until = expires_at.map(rfc3339).unwrap_or_default();
    let added = match (&o.record, o.status) {
        (_, Status::Planned) => describe_steps(&s.steps, &s),
        (Some(r), _) => r
            .sharing
            .as_ref()
            .map(|sh| describe_sharing(sh, &table))
            .unwrap_or_default(),
        (None, _) => String::new(),
    };
    let link_note = match (&s.activation_url, s.activated) {
        (Some(_), _) => {
            " Send the activation link to the requester: it downloads the credential once."
        }
        (None, true) => {
            " The recipient already downloaded its credential and reads this table with it."
        }
        (None, false) => {
            " No unused activation link was found; an operator can rotate the recipient's token to issue one."
        }
    };
    let message = match o.status {
        Status::Granted => format!(
            "Shared {table} with Delta Sharing recipient {} (share {}) until {until}.{link_note}",
            s.recipient, s.share
        ),
        Status::AlreadyGranted => format!(
            "Recipient {} already had {table} through share {}; recorded until {until}.{link_note}",
            s.recipient, s.share
        ),
        Status::Extended => format!(
            "Extended recipient {}'s access to {table} (share {}) until {until}.{link_note}",
            s.recipient, s.share
        ),
        Status::Planned if added.is_empty() => {
            "Dry run: the recipient already has this table through its share; nothing would change."
                .to_owned()
        }
        Status::Planned => format!("Dry run: would create or change {added}. Nothing was changed."),
    };
    let calls = (o.status == Status::Planned).then(|| {
        s.steps
            .iter()
            .map(|step| share_step_call(*step, &s.recipient, &s.share, &table))
            .collect()
    });
    Answer {
        status: o.status.as_str(),
        grant_id: o.record.as_ref().map(|r| r.id.to_string()),
        principal: s.recipient.clone(),
        principal_kind: PrincipalKind::Recipient.as_str(),
        workspace: o.workspace.clone(),
        securable_type: s.table.securable_type().as_str(),
        securable: table,
        privileges,
        added,
        already_held: String::new(),
        expires_at: expires_at.map(rfc3339),
        message,
        calls,
        provisioning: ProvisioningMode::DeltaSharing.as_str(),
        share: Some(s.share),
        activation_url: s.activation_url,
    }
}

impl From<Outcome> for Answer {
    fn from(mut o: Outcome) -> Self {
        if let Some(s) = o.sharing.take() {
            return sharing_answer(o, s);
        }
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
        let plan_calls = o.plan.as_ref().map(|p| grant_calls(&p.changes, &principal));
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
            provisioning: ProvisioningMode::Direct.as_str(),
            share: None,
            activation_url: None,
        }
    }
}

/// Provisions a parsed request and answers it: shared by `purview-callback` and `grant-access`.
pub async fn provision_and_answer(
    services: &crate::services::Services,
    caller: &crate::auth::Caller,
    request: &crate::domain::AccessRequest,
) -> Result<axum::Json<Answer>, crate::error::ApiError> {
    let provisioning = services.provisioning()?;
    let deadline = crate::databricks::Deadline::after(services.time_budget);
    let outcome =
        crate::usecases::provision::provision(&provisioning.context, request, deadline).await?;
    let answer = Answer::from(outcome);
    tracing::info!(
        event = "grant.answered",
        source = request.source.as_str(),
        caller = caller.kind(),
        status = answer.status,
        provisioning = answer.provisioning,
        grant_id = answer.grant_id.as_deref().unwrap_or(""),
        principal = %answer.principal,
        securable = %answer.securable,
        "access request answered"
    );
    Ok(axum::Json(answer))
}
