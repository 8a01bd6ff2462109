//! Ledger failures, classified so callers know whether retrying can help.

use super::ids::GrantId;

/// The built-in Azure role the app's identity needs on the ledger container (or account). Storage Blob
/// Data Contributor is not enough: it lacks the `blobs/tags/write` and `blobs/filter/action` data
/// actions that writing index tags and finding blobs by tags need; Data Owner (`blobs/*`) has them, and
/// its `containers/*` covers creating the container at first use.
pub const ROLE_NEEDED: &str = "Storage Blob Data Owner";

#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("no grant record {what}")]
    NotFound { what: String },

    /// A record with the same idempotency key exists (a duplicate delivery won the race or came first).
    #[error("a grant record for this idempotency key already exists (grant {id})")]
    AlreadyExists { id: GrantId },

    /// The record changed since it was read.
    #[error("grant record {id} was changed by someone else since it was read")]
    Conflict { id: GrantId },

    /// The store did not answer usefully right now (throttled, 5xx, timeout, connection, token service).
    #[error("ledger storage unavailable: {message}")]
    Unavailable { message: String },

    /// The identity may not do this; the message names the role it needs.
    #[error("ledger storage refused access: {message}")]
    Forbidden { message: String },

    /// A stored record cannot be read as a grant record.
    #[error("grant record {name} is unreadable: {reason}")]
    Corrupt { name: String, reason: String },

    #[error("ledger error: {message}")]
    Other { message: String },
}

impl LedgerError {
    /// Whether trying again later (for `Conflict`: after reading the record again) can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Conflict { .. })
    }

    /// No record has this id.
    pub(crate) fn no_record(id: GrantId) -> Self {
        Self::NotFound {
            what: format!("with id {id}"),
        }
    }

    pub(crate) fn forbidden(detail: impl std::fmt::Display) -> Self {
        Self::Forbidden {
            message: format!(
                "{detail}; grant the app's managed identity the {ROLE_NEEDED} role on the ledger \
                 container (Storage Blob Data Contributor cannot write or query blob index tags)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_and_conflict_are_worth_retrying() {
        let id = GrantId::for_key(&super::super::IdempotencyKey::parse("k").unwrap());
        assert!(
            LedgerError::Unavailable {
                message: "503".into()
            }
            .is_retryable()
        );
        assert!(LedgerError::Conflict { id }.is_retryable());
        assert!(!LedgerError::AlreadyExists { id }.is_retryable());
        assert!(!LedgerError::forbidden("403").is_retryable());
        assert!(!LedgerError::NotFound { what: "x".into() }.is_retryable());
    }

    #[test]
    fn a_forbidden_error_names_the_role_to_grant() {
        let message =
            LedgerError::forbidden("HTTP 403 AuthorizationPermissionMismatch").to_string();
        assert!(message.contains("Storage Blob Data Owner"), "{message}");
        assert!(
            message.contains("AuthorizationPermissionMismatch"),
            "{message}"
        );
    }
}
