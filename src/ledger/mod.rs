//! The grant ledger: one record per approval, stored where every instance of the app sees it (Azure Blob
//! Storage) or, for a local run, in a folder. Records are created before Unity Catalog changes and are
//! the timer's only source for what to revoke.

mod blob;
mod error;
mod ids;
mod local;
mod query;
mod record;
mod settings;
mod tags;

use std::sync::Arc;

use async_trait::async_trait;

pub use blob::{BlobLedger, BlobLedgerOptions};
pub use error::{LedgerError, ROLE_NEEDED};
pub use ids::{GrantId, IdempotencyKey, KeyError, MAX_KEY_LEN, hash_hex};
pub use local::LocalLedger;
pub use query::{DEFAULT_STALE_PENDING_AFTER, DueQuery, ListFilter};
pub use record::{
    DIRECT_SCHEMA_VERSION, EventKind, GrantEvent, GrantRecord, GrantState, MAX_DETAIL_CHARS,
    NewGrant, SCHEMA_VERSION, SHARING_SCHEMA_VERSION, SecurableChange, ShareGrant, TransitionError,
    VENDED_CREDENTIAL_LIFETIME, WorkspaceRef,
};
pub use settings::{
    BlobSettings, DEFAULT_CONTAINER, DEFAULT_LEDGER_DIR, LedgerBackend, LedgerSettings,
};

use crate::domain::Principal;

/// A record with the version it was read at; `update` only succeeds if the stored record still has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub record: T,
    /// Opaque: a blob ETag, or a content hash for the local folder.
    pub version: String,
}

/// Where grant records live. Object-safe: the app holds an `Arc<dyn LedgerStore>`.
#[async_trait]
pub trait LedgerStore: Send + Sync + std::fmt::Debug {
    /// Stores a new record unless one with its idempotency key exists. Of concurrent duplicates exactly
    /// one wins; the others get [`LedgerError::AlreadyExists`] and can read the winner with
    /// [`LedgerStore::get_by_key`].
    async fn create(&self, record: GrantRecord) -> Result<Versioned<GrantRecord>, LedgerError>;

    /// The record with this id ([`LedgerError::NotFound`] if none).
    async fn get(&self, id: GrantId) -> Result<Versioned<GrantRecord>, LedgerError>;

    /// The record for this idempotency key. The id derives from the key, so this is one read.
    async fn get_by_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Versioned<GrantRecord>, LedgerError> {
        self.get(GrantId::for_key(key)).await
    }

    /// Replaces the record if it is still at `current.version`, else [`LedgerError::Conflict`]
    /// (someone else changed it: read again, re-decide, retry).
    async fn update(
        &self,
        current: &Versioned<GrantRecord>,
    ) -> Result<Versioned<GrantRecord>, LedgerError>;

    /// Records the revoke timer must act on (see [`DueQuery::is_due`]), oldest debt first, found
    /// without reading every record where the backend allows it.
    async fn find_due(&self, query: &DueQuery) -> Result<Vec<Versioned<GrantRecord>>, LedgerError>;

    /// Records matching every field set in `filter`, newest request first.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<Versioned<GrantRecord>>, LedgerError>;

    /// Writes a throwaway probe beside the records (with index tags where the backend has them), proves
    /// it can be found and removes it again: what the doctor runs to show the identity may do everything
    /// the ledger needs. Grant records are never touched. Answers what was done, for the report.
    async fn probe(&self) -> Result<String, LedgerError>;

    /// Every grant of `principal` in `workspace` whose privileges are meant to stay in place
    /// (`pending` or `active`): the revoke planner keeps the parent `USE_*` privileges they need.
    async fn active_for_principal(
        &self,
        workspace: &str,
        principal: &Principal,
    ) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        let filter = ListFilter {
            principal: Some(principal.clone()),
            workspace: Some(workspace.to_owned()),
            ..ListFilter::default()
        };
        Ok(self
            .list(&filter)
            .await?
            .into_iter()
            .filter(|v| v.record.state.keeps_access())
            .collect())
    }
}

/// Opens the ledger the settings describe (the Blob backend with the app's managed identity in Azure).
pub fn open(settings: &LedgerSettings) -> Result<Arc<dyn LedgerStore>, LedgerError> {
    Ok(match &settings.backend {
        LedgerBackend::Local { dir } => Arc::new(LocalLedger::new(dir)),
        LedgerBackend::Blob(blob) => Arc::new(BlobLedger::from_settings(blob)?),
    })
}

/// Sorts query results deterministically: by `key` ascending, then id.
fn sort_by<K: Ord>(records: &mut [Versioned<GrantRecord>], key: impl Fn(&GrantRecord) -> K) {
    records.sort_by(|a, b| {
        key(&a.record)
            .cmp(&key(&b.record))
            .then(a.record.id.cmp(&b.record.id))
    });
}

/// Orders `find_due` answers, oldest debt first.
fn sort_due(records: &mut [Versioned<GrantRecord>]) {
    sort_by(records, DueQuery::due_since);
}

/// Orders `list` answers, newest request first.
fn sort_listed(records: &mut [Versioned<GrantRecord>]) {
    sort_by(records, |r| std::cmp::Reverse(r.requested_at));
}
