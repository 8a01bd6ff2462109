//! An access request after parsing: who asks, for whom, on what, which privileges for how long, who
//! approved it. Every part is a validated domain value; policy decides on it without I/O.

use serde::Serialize;

use super::duration::GrantDuration;
use super::object_id::{ApplicationId, EntraObjectId};
use super::principal_query::PrincipalQuery;
use super::privilege::PrivilegeSet;
use super::provisioning::ProvisioningMode;
use super::securable::Securable;
use super::workspace::WorkspaceRef;

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestSource {
    /// A Purview workflow's HTTP action after approval.
    PurviewCallback,
    /// An operator or the Power Automate connector, authorised by an app role.
    GrantAccess,
}

impl RequestSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PurviewCallback => "purview-callback",
            Self::GrantAccess => "grant-access",
        }
    }
}

/// The approval's outcome as the workflow reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome", content = "raw")]
pub enum ApprovalOutcome {
    Approved,
    /// Anything else (`Rejected`, `Canceled`, a typo), kept verbatim for the denial message.
    NotApproved(String),
}

impl ApprovalOutcome {
    /// `Approved` in any case counts; everything else does not.
    pub fn parse(raw: &str) -> Self {
        if raw.trim().eq_ignore_ascii_case("approved") {
            Self::Approved
        } else {
            Self::NotApproved(raw.trim().to_owned())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub outcome: ApprovalOutcome,
    /// Entra object ids of the approvers (for `grant-access`: the operator who called).
    pub approvers: Vec<EntraObjectId>,
    /// The approval's (or the workflow run's) own identity, when the workflow can send one: it tells a
    /// re-delivery of this approval from a new approval of the same request (see
    /// docs/callback-contract.md, "Re-deliveries").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestKey>,
    /// For `grant-access`: how the calling operator signed in, from its token. `None` for Purview
    /// approvals (the approvers are only object ids) and wherever the caller is not known; the
    /// self-approval checks then assume nothing about what kind of identity an approver is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
}

/// How the operator who called `grant-access` signed in. With its object id (the approver) this is all
/// the token says about who the operator is: a person is never a service principal, and an application
/// is known by its application id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Operator {
    /// A person with a delegated token, through the client application `via` (e.g. the connector).
    Person { via: ApplicationId },
    /// An application calling as itself (client credentials).
    Application { app_id: ApplicationId },
}

/// A caller-supplied idempotency key: printable ASCII, bounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RequestKey(String);

/// Longest idempotency key accepted.
pub const MAX_REQUEST_KEY_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestKeyError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_REQUEST_KEY_LEN} characters")]
    TooLong,
    #[error("may hold only printable ASCII characters")]
    NotPrintable,
}

impl RequestKey {
    pub fn parse(raw: &str) -> Result<Self, RequestKeyError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(RequestKeyError::Empty);
        }
        if raw.len() > MAX_REQUEST_KEY_LEN {
            return Err(RequestKeyError::TooLong);
        }
        if !raw.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(RequestKeyError::NotPrintable);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A parsed, not yet decided, access request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessRequest {
    /// Who asked (Purview's `Workflow.Requestor`; for `grant-access`, the calling operator).
    pub requester: EntraObjectId,
    /// For a request made on someone else's behalf: who gets access.
    pub target: Option<EntraObjectId>,
    /// The principal to grant to, as a lookup (the target, else the requester, or named directly).
    pub grantee: PrincipalQuery,
    pub workspace: WorkspaceRef,
    pub securable: Securable,
    /// Privileges asked for; `None` takes the policy's default for the securable type.
    pub privileges: Option<PrivilegeSet>,
    /// Duration asked for; `None` takes the policy's default.
    pub duration: Option<GrantDuration>,
    pub approval: Approval,
    pub idempotency_key: Option<RequestKey>,
    /// Plan only: answer the exact calls and change nothing.
    pub dry_run: bool,
    pub source: RequestSource,
    /// The provisioning mode the caller asked for; `None` lets policy choose. Policy decides whether a
    /// request may choose at all.
    pub provisioning: Option<ProvisioningMode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_approved_in_any_case_counts_as_approved() {
        assert_eq!(
            ApprovalOutcome::parse(" APPROVED "),
            ApprovalOutcome::Approved
        );
        assert_eq!(
            ApprovalOutcome::parse("Rejected"),
            ApprovalOutcome::NotApproved("Rejected".into())
        );
        assert!(matches!(
            ApprovalOutcome::parse(""),
            ApprovalOutcome::NotApproved(_)
        ));
    }

    #[test]
    fn request_keys_are_bounded_printable_ascii() {
        assert!(RequestKey::parse("run-42/approval-1").is_ok());
        assert_eq!(RequestKey::parse(" "), Err(RequestKeyError::Empty));
        assert_eq!(
            RequestKey::parse(&"k".repeat(201)),
            Err(RequestKeyError::TooLong)
        );
        assert_eq!(
            RequestKey::parse("a\u{7}b"),
            Err(RequestKeyError::NotPrintable)
        );
        assert_eq!(
            RequestKey::parse("ключ"),
            Err(RequestKeyError::NotPrintable)
        );
    }
}
