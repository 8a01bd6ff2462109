//! The grant ledger: one record per approval, stored where every instance of the app sees it (Azure Blob
//! Storage) or, for a local run, in a folder. Records are created before Unity Catalog changes and are
//! the timer's only source for what to revoke.

mod blob;
mod error;
mod ids;
mod journal;
mod local;
mod query;
mod record;
mod settings;
mod tags;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

pub use blob::{BlobLedger, BlobLedgerOptions};
pub use error::{LedgerError, ROLE_NEEDED};
pub use ids::{GrantId, IdempotencyKey, KeyError, MAX_KEY_LEN, hash_hex};
pub use local::LocalLedger;
pub use query::{DEFAULT_STALE_PENDING_AFTER, DueQuery, ListFilter};
pub use record::{
    DIRECT_SCHEMA_VERSION, Delivery, EventKind, GrantEvent, GrantRecord, GrantState,
    MAX_APPROVAL_IDS, MAX_DETAIL_CHARS, NewGrant, SCHEMA_VERSION, SHARING_SCHEMA_VERSION,
    SecurableChange, ShareGrant, TransitionError, VENDED_CREDENTIAL_LIFETIME, WorkspaceRef,
};
pub use settings::{
    BlobSettings, DEFAULT_CONTAINER, DEFAULT_LEDGER_DIR, LedgerBackend, LedgerSettings,
};

use crate::domain::Principal;

/// The due records of one group, in brief: what the revoke timer needs to split a large run into parts
/// that share no securable, without holding every due record at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueGroup {
    /// Grants in different groups touch no common securable: the workspace host and the catalog.
    pub workspace: String,
    pub catalog: String,
    /// The group's due records, oldest debt first.
    pub ids: Vec<GrantId>,
    /// When its oldest record became due.
    pub since: OffsetDateTime,
}

/// Collects due records into [`DueGroup`]s, keeping only their ids (16 bytes and a time each), by
/// workspace host and then catalog.
#[derive(Debug, Default)]
pub struct DueGroups {
    groups: HashMap<String, HashMap<String, DueIds>>,
}

/// A group's due records as they are found: when each became due, and its id.
type DueIds = Vec<(OffsetDateTime, GrantId)>;

impl DueGroups {
    pub fn add(&mut self, record: &GrantRecord) {
        let host = &record.workspace.host;
        let catalog = record.securable.catalog_name().as_str();
        let due = (DueQuery::due_since(record), record.id);
        // Looked up by reference first: the names are copied once per group, not once per record.
        match self.groups.get_mut(host).and_then(|c| c.get_mut(catalog)) {
            Some(ids) => ids.push(due),
            None => self
                .groups
                .entry(host.clone())
                .or_default()
                .entry(catalog.to_owned())
                .or_default()
                .push(due),
        }
    }

    /// The groups, oldest debt first (by their oldest record), each record oldest first.
    pub fn finish(self) -> Vec<DueGroup> {
        let mut groups: Vec<DueGroup> = self
            .groups
            .into_iter()
            .flat_map(|(workspace, by_catalog)| {
                by_catalog.into_iter().map(move |(catalog, mut entries)| {
                    entries.sort_unstable();
                    DueGroup {
                        since: entries[0].0,
                        ids: entries.into_iter().map(|(_, id)| id).collect(),
                        workspace: workspace.clone(),
                        catalog,
                    }
                })
            })
            .collect();
        groups.sort_by(|a, b| {
            (a.since, &a.workspace, &a.catalog).cmp(&(b.since, &b.workspace, &b.catalog))
        });
        groups
    }
}

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

    /// [`LedgerStore::find_due`] in brief, grouped by workspace and catalog, oldest debt first. Backends
    /// that can should answer without holding every due record in memory at once.
    async fn find_due_groups(&self, query: &DueQuery) -> Result<Vec<DueGroup>, LedgerError> {
        let mut groups = DueGroups::default();
        for v in self.find_due(query).await? {
            groups.add(&v.record);
        }
        Ok(groups.finish())
    }

    /// [`LedgerStore::get`] for many ids, each answered on its own (same order). Backends may read them
    /// together (one file task, or several requests in flight).
    async fn get_many(&self, ids: &[GrantId]) -> Vec<Result<Versioned<GrantRecord>, LedgerError>> {
        let mut results = Vec::with_capacity(ids.len());
        for id in ids {
            results.push(self.get(*id).await);
        }
        results
    }

    /// [`LedgerStore::update`] for many records, each answered on its own (same order). Backends may
    /// make the batch durable together (one flush instead of one per record); each record still
    /// changes only if it is at its expected version.
    async fn update_many(
        &self,
        batch: Vec<Versioned<GrantRecord>>,
    ) -> Vec<Result<Versioned<GrantRecord>, LedgerError>> {
        let mut results = Vec::with_capacity(batch.len());
        for current in &batch {
            results.push(self.update(current).await);
        }
        results
    }

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
        Ok(self
            .list(&ListFilter::of_principal(workspace, principal))
            .await?
            .into_iter()
            .filter(|v| v.record.state.keeps_access())
            .collect())
    }

    /// Every grant of `principal` in `workspace` that is not revoked (`pending`, `active`, `revoking`,
    /// `failed`): what uc-access's records claim of what the principal holds, which planning must tell
    /// apart from what the principal holds of its own. Backends answer from a strongly consistent
    /// source where they have one, so a grant recorded a moment ago is not missed.
    async fn unrevoked_for_principal(
        &self,
        workspace: &str,
        principal: &Principal,
    ) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        Ok(self
            .list(&ListFilter::of_principal(workspace, principal))
            .await?
            .into_iter()
            .filter(|v| v.record.state != GrantState::Revoked)
            .collect())
    }

    /// [`LedgerStore::active_for_principal`] without the grants in `except` (ones the caller already
    /// holds, such as those the sweep is ending), in no particular order. By default they are read and
    /// dropped; a backend that can leave them out before reading them does.
    async fn active_for_principal_except(
        &self,
        workspace: &str,
        principal: &Principal,
        except: &BTreeSet<GrantId>,
    ) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        Ok(self
            .active_for_principal(workspace, principal)
            .await?
            .into_iter()
            .filter(|v| !except.contains(&v.record.id))
            .collect())
    }

    /// The live grants (`pending` or `active`) of any of `principals` in `workspace` on a securable in one
    /// of `catalogs`, except the grants in `except`: what the revoke planner must keep access for when
    /// the `except` grants end (grants in other catalogs share no securable with them). By default the
    /// principals are looked up [`PRINCIPAL_CONCURRENCY`] at a time with
    /// [`LedgerStore::active_for_principal_except`]; backends that must read every record to answer (the local
    /// folder) read them once for all principals instead.
    async fn live_grants_sharing(
        &self,
        workspace: &str,
        catalogs: &BTreeSet<String>,
        principals: &BTreeSet<Principal>,
        except: &BTreeSet<GrantId>,
    ) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        let answers: Vec<Vec<Versioned<GrantRecord>>> = futures::stream::iter(principals.clone())
            .map(|principal| async move {
                Ok::<_, LedgerError>(
                    self.active_for_principal_except(workspace, &principal, except)
                        .await?
                        .into_iter()
                        .filter(|v| catalogs.contains(v.record.securable.catalog_name().as_str()))
                        .collect(),
                )
            })
            .buffer_unordered(PRINCIPAL_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(answers.into_iter().flatten().collect())
    }
}

/// How many principals' grants [`LedgerStore::live_grants_sharing`] looks up at once by default (a Blob
/// lookup has several reads in flight itself).
pub const PRINCIPAL_CONCURRENCY: usize = 4;

/// Opens the ledger the settings describe (the Blob backend with the app's managed identity in Azure).
/// The Blob backend sends over `http` (the process's one client, [`crate::outbound`]).
pub fn open(
    settings: &LedgerSettings,
    http: &reqwest::Client,
) -> Result<Arc<dyn LedgerStore>, LedgerError> {
    Ok(match &settings.backend {
        LedgerBackend::Local { dir } => Arc::new(LocalLedger::new(dir)),
        LedgerBackend::Blob(blob) => Arc::new(BlobLedger::from_settings(blob, http)?),
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
