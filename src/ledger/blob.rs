//! The ledger in Azure Blob Storage (`azure_storage_blob` 1.x): one JSON blob per record with its index
//! tags set in the same upload, `If-None-Match: *` to create, `If-Match` to update, find-by-tags to query.
//!
//! Caveat kept in mind by callers: the service updates the tag index asynchronously (usually within
//! seconds), so a query may miss a record written a moment ago. Records are always read back and
//! checked, so a stale tag can hide a record briefly but never return a wrong one; what a stale tag must
//! not hide is found through blobs listed by name prefix, which is strongly consistent: each principal's
//! markers (its live grants) and the journal of records due soon ([`super::journal`]).

use std::collections::BTreeSet;
use std::fmt;
use std::num::NonZero;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::Bytes;
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, Etag, StatusCode, Transport, Url};
use azure_storage_blob::models::BlobContainerClientListBlobsOptions;
use azure_storage_blob::models::{
    BlobClientDeleteOptions, BlobClientDownloadOptions, BlobClientUploadOptions,
};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use super::settings::BlobSettings;
use super::{
    DueGroup, DueGroups, DueQuery, GrantId, GrantRecord, GrantState, LedgerError, LedgerStore,
    ListFilter, Versioned, journal, sort_due, sort_listed, tags,
};
use crate::domain::Principal;

/// How many records are read (after a tag query) or written (a batch) at once.
const READ_CONCURRENCY: usize = 16;

/// Transfers per upload or download. Records are a few kB, far below the SDK's 4 MiB partition, so each
/// is one request whatever this says; but left unset, the SDK works out a default from
/// `std::thread::available_parallelism()` on every call, which on Linux reads the cgroup files under
/// `/proc` and `/sys` each time: 11 % of the app's CPU per approval in a `perf` profile (BENCHMARKS.md).
const ONE_TRANSFER: NonZero<usize> = NonZero::new(1).expect("one is not zero");

fn upload_options() -> BlobClientUploadOptions<'static> {
    BlobClientUploadOptions {
        parallel: Some(ONE_TRANSFER),
        ..BlobClientUploadOptions::default()
    }
}

fn json_upload_options() -> BlobClientUploadOptions<'static> {
    BlobClientUploadOptions {
        blob_content_type: Some("application/json".to_owned()),
        ..upload_options()
    }
}

/// Construction options that tests (and special networks) need; production uses the defaults.
#[derive(Debug, Default, Clone)]
pub struct BlobLedgerOptions {
    /// The HTTP transport (a client trusting a test certificate, a proxy…); default: the SDK's.
    pub transport: Option<Transport>,
}

pub struct BlobLedger {
    container: BlobContainerClient,
    ready: OnceCell<()>,
}

impl fmt::Debug for BlobLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobLedger")
            .field("container_url", &self.container.url().as_str())
            .finish()
    }
}

impl BlobLedger {
    /// A ledger in `container` of the account at `account_url` (`https://<acct>.blob.core.windows.net`,
    /// or Azurite's `https://127.0.0.1:<port>/devstoreaccount1`), authenticated by `credential`.
    pub fn new(
        account_url: &Url,
        container: &str,
        credential: Arc<dyn TokenCredential>,
        options: BlobLedgerOptions,
    ) -> Result<Self, LedgerError> {
        let mut url = account_url.clone();
        url.path_segments_mut()
            .map_err(|()| LedgerError::Other {
                message: format!(
                    "{account_url} cannot be a storage account URL (setting LEDGER_BLOB_ACCOUNT_URL)"
                ),
            })?
            .pop_if_empty()
            .push(container);
        let client_options = BlobContainerClientOptions {
            client_options: ClientOptions {
                transport: options.transport,
                ..ClientOptions::default()
            },
            ..BlobContainerClientOptions::default()
        };
        let container = BlobContainerClient::new(url, Some(credential), Some(client_options))
            .map_err(|e| LedgerError::Other {
                message: format!(
                    "cannot build the ledger client (settings LEDGER_BLOB_ACCOUNT_URL, LEDGER_CONTAINER): {e}"
                ),
            })?;
        Ok(Self {
            container,
            ready: OnceCell::new(),
        })
    }

    /// The ledger the settings describe, authenticated as the app's managed identity; the client and
    /// its credential send over `http` (the process's one client, [`crate::outbound`]).
    pub fn from_settings(
        settings: &BlobSettings,
        http: &reqwest::Client,
    ) -> Result<Self, LedgerError> {
        let credential = crate::outbound::managed_identity(
            settings.managed_identity_client_id.clone(),
            http,
        )
        .map_err(|e| LedgerError::Other {
                message: format!(
                    "cannot set up the managed identity credential (setting ARM_CLIENT_ID / AZURE_CLIENT_ID): {e}"
                ),
            })?;
        Self::new(
            &settings.account_url,
            &settings.container,
            credential,
            BlobLedgerOptions {
                transport: Some(crate::outbound::azure_transport(http)),
            },
        )
    }

    /// The ids the tag index finds for the principal joined with those its markers name, each read unless
    /// it is in `except`, keeping the records whose state `keep` accepts.
    async fn for_principal(
        &self,
        workspace: &str,
        principal: &Principal,
        except: &BTreeSet<GrantId>,
        keep: impl Fn(GrantState) -> bool,
    ) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        self.ensure_container().await?;
        let filter = ListFilter::of_principal(workspace, principal);
        let (query, prefix) = (
            tags::list_query(&filter),
            Self::principal_prefix(workspace, principal),
        );
        let (tagged, marked) =
            futures::try_join!(self.find_names(&query), self.marked_ids(&prefix))?;
        // A name that is not a record's (none should match the query) is read all the same.
        let names: BTreeSet<String> = tagged
            .into_iter()
            .filter(|name| id_of(name).is_none_or(|id| !except.contains(&id)))
            .chain(
                marked
                    .into_iter()
                    .filter(|id| !except.contains(id))
                    .map(Self::blob_name),
            )
            .collect();
        let read: Vec<Option<Versioned<GrantRecord>>> = futures::stream::iter(names)
            .map(|name| async move { self.read(&name).await })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(read
            .into_iter()
            .flatten()
            .filter(|v| filter.matches(&v.record) && keep(v.record.state))
            .collect())
    }

    fn blob_name(id: GrantId) -> String {
        format!("grants/{id}.json")
    }

    /// Where the markers of one principal's grants in one workspace live. Listing a name prefix is
    /// strongly consistent; find-by-tags reads an index that Azure updates after the write, so a grant
    /// created a moment ago may be missing from a tag query. The revoke timer must never miss a live
    /// sibling grant (it would remove a `USE_*` privilege the sibling still needs), so it reads these.
    fn principal_prefix(workspace: &str, principal: &Principal) -> String {
        format!(
            "by-principal/{}/{}/",
            tags::workspace_value(workspace),
            tags::principal_value(principal)
        )
    }

    fn marker_name(record: &GrantRecord) -> String {
        format!(
            "{}{}",
            Self::principal_prefix(&record.workspace.name, &record.principal),
            record.id
        )
    }

    /// An empty blob without tags naming the record (written before the record itself).
    async fn put_marker(&self, record: &GrantRecord) -> Result<(), LedgerError> {
        let blob = self.container.blob_client(&Self::marker_name(record));
        blob.upload(Bytes::new().into(), Some(upload_options()))
            .await
            .map(|_| ())
            .map_err(storage_error)
    }

    /// Drops the marker of a revoked record (best effort: a stale marker only costs a read).
    async fn drop_marker(&self, record: &GrantRecord) {
        let name = Self::marker_name(record);
        if let Err(e) = self.container.blob_client(&name).delete(None).await
            && e.http_status() != Some(StatusCode::NotFound)
        {
            tracing::debug!(marker = %name, error = %e, "could not delete a principal marker");
        }
    }

    /// The names of the blobs under `prefix` (a listing by name: strongly consistent).
    async fn names_under(&self, prefix: &str) -> Result<Vec<String>, LedgerError> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: Some(prefix.to_owned()),
            ..Default::default()
        };
        self.container
            .list_blobs(Some(options))
            .map_err(storage_error)?
            .map_err(storage_error)
            .try_filter_map(|item| async move { Ok(item.name) })
            .try_collect()
            .await
    }

    /// The grant ids the principal markers under `prefix` name.
    async fn marked_ids(&self, prefix: &str) -> Result<Vec<GrantId>, LedgerError> {
        Ok(self
            .names_under(prefix)
            .await?
            .iter()
            .filter_map(|n| n.strip_prefix(prefix))
            .filter_map(|id| GrantId::parse(id).ok())
            .collect())
    }

    /// Journals `record` as due soon, if its write at `now` must ([`journal::needs_entry`]). Written before
    /// the record, as the marker is: a record is never stored due soon without its entry, and an entry
    /// whose record write then failed names a record that is not due, which the next sweep drops.
    async fn journal_if_due_soon(
        &self,
        record: &GrantRecord,
        now: OffsetDateTime,
    ) -> Result<(), LedgerError> {
        if !journal::needs_entry(record.into(), now) {
            return Ok(());
        }
        let blob = self.container.blob_client(&journal::entry_name(record.id));
        blob.upload(Bytes::new().into(), Some(upload_options()))
            .await
            .map(|_| ())
            .map_err(storage_error)
    }

    /// Calls `each` with every record the journal names that is due for `query` and not in `skip` (found
    /// through the tag index already), and drops the entries of records no longer due soon (best effort:
    /// a stale entry only costs a read at the next sweep).
    async fn journaled_due(
        &self,
        query: &DueQuery,
        skip: &std::collections::HashSet<GrantId>,
        mut each: impl FnMut(Versioned<GrantRecord>),
    ) -> Result<(), LedgerError> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: Some(journal::PREFIX.to_owned()),
            ..Default::default()
        };
        let entries: Vec<(GrantId, Option<Etag>)> = self
            .container
            .list_blobs(Some(options))
            .map_err(storage_error)?
            .map_err(storage_error)
            .try_filter_map(|item| async move {
                let id = item.name.as_deref().and_then(journal::id_of);
                Ok(id.map(|id| (id, item.properties.and_then(|p| p.etag))))
            })
            .try_collect()
            .await?;
        let mut reads =
            futures::stream::iter(entries.into_iter().filter(|(id, _)| !skip.contains(id)))
                .map(|(id, etag)| async move { (id, etag, self.read(&Self::blob_name(id)).await) })
                .buffer_unordered(READ_CONCURRENCY);
        let mut stale = Vec::new();
        while let Some((id, etag, read)) = reads.next().await {
            let found = read?;
            match found {
                Some(v) if query.is_due(&v.record) => each(v),
                found
                    if journal::keep_entry(
                        found.as_ref().map(|v| (&v.record).into()),
                        query.now,
                    ) => {}
                _ => stale.push((id, etag)),
            }
        }
        drop(reads);
        futures::stream::iter(stale)
            .for_each_concurrent(READ_CONCURRENCY, |(id, etag)| async move {
                self.drop_journal_entry(id, etag).await;
            })
            .await;
        Ok(())
    }

    /// Deletes the journal entry of `id` if it is still the one listed (`etag`): an entry written again
    /// since (the grant approved again) stays.
    async fn drop_journal_entry(&self, id: GrantId, etag: Option<Etag>) {
        let name = journal::entry_name(id);
        let options = BlobClientDeleteOptions {
            if_match: etag,
            ..Default::default()
        };
        if let Err(e) = self
            .container
            .blob_client(&name)
            .delete(Some(options))
            .await
            && !matches!(
                e.http_status(),
                Some(StatusCode::NotFound | StatusCode::PreconditionFailed)
            )
        {
            tracing::debug!(entry = %name, error = %e, "could not delete a journal entry");
        }
    }

    /// The names of the blobs a tag query finds.
    async fn find_names(&self, expression: &str) -> Result<Vec<String>, LedgerError> {
        self.container
            .find_blobs_by_tags(expression, None)
            .map_err(storage_error)?
            .map_err(storage_error)
            .try_filter_map(|item| async move { Ok(item.name) })
            .try_collect()
            .await
    }

    /// Creates the container at first use if it is missing (the role's `containers/*` allows it),
    /// tolerating a concurrent creator.
    async fn ensure_container(&self) -> Result<(), LedgerError> {
        self.ready
            .get_or_try_init(|| async {
                if self.container.exists().await.map_err(storage_error)? {
                    return Ok(());
                }
                match self.container.create(None).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(()),
                    Err(e) => Err(storage_error(e)),
                }
            })
            .await
            .copied()
    }

    async fn read(&self, name: &str) -> Result<Option<Versioned<GrantRecord>>, LedgerError> {
        let blob = self.container.blob_client(name);
        let options = BlobClientDownloadOptions {
            parallel: Some(ONE_TRANSFER),
            ..BlobClientDownloadOptions::default()
        };
        let downloaded = match blob.download(Some(options)).await {
            Ok(d) => d,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(None),
            Err(e) => return Err(storage_error(e)),
        };
        let version = downloaded
            .properties
            .etag
            .as_ref()
            .map(ToString::to_string)
            .ok_or_else(|| LedgerError::Corrupt {
                name: name.to_owned(),
                reason: "the service answered without an ETag".to_owned(),
            })?;
        let body = downloaded.body.collect().await.map_err(storage_error)?;
        let record = parse(name, &body)?;
        Ok(Some(Versioned { record, version }))
    }

    async fn write(
        &self,
        record: &GrantRecord,
        condition: Condition,
    ) -> Result<Versioned<GrantRecord>, LedgerError> {
        self.ensure_container().await?;
        record
            .check_integrity()
            .map_err(|reason| LedgerError::Other {
                message: format!("refusing to store grant {}: {reason}", record.id),
            })?;
        let body = serde_json::to_vec(record).map_err(|e| LedgerError::Other {
            message: format!("cannot serialize grant {}: {e}", record.id),
        })?;
        let mut options = json_upload_options().with_tags(tags::for_record(record));
        match &condition {
            Condition::Absent => options = options.if_not_exists(),
            Condition::Matches(etag) => options.if_match = Some(etag.as_str().into()),
        }
        let blob = self.container.blob_client(&Self::blob_name(record.id));
        match blob.upload(Bytes::from(body).into(), Some(options)).await {
            Ok(uploaded) => Ok(Versioned {
                record: record.clone(),
                version: uploaded.etag.map(|e| e.to_string()).ok_or_else(|| {
                    LedgerError::Other {
                        message: "the service stored the record but answered without an ETag"
                            .to_owned(),
                    }
                })?,
            }),
            // Azure answers an existing blob under `If-None-Match: *` with 409 BlobAlreadyExists
            // (Azurite too); 412 is also possible. Both mean a duplicate won.
            Err(e) if matches!(condition, Condition::Absent) && is_precondition(&e) => {
                Err(LedgerError::AlreadyExists { id: record.id })
            }
            Err(e) if matches!(condition, Condition::Matches(_)) && is_precondition(&e) => {
                Err(LedgerError::Conflict { id: record.id })
            }
            Err(e) => Err(storage_error(e)),
        }
    }

    /// Reads every blob a tag query finds, skipping ones deleted in between.
    async fn query(&self, expression: &str) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        let mut found = Vec::new();
        self.query_each(expression, |v| found.push(v)).await?;
        Ok(found)
    }

    /// Calls `each` with every record a tag query finds as it is read (at most [`READ_CONCURRENCY`]
    /// records held at once), skipping ones deleted in between.
    async fn query_each(
        &self,
        expression: &str,
        mut each: impl FnMut(Versioned<GrantRecord>),
    ) -> Result<(), LedgerError> {
        self.ensure_container().await?;
        let names = self.find_names(expression).await?;
        let mut reads = futures::stream::iter(names)
            .map(|name| async move { self.read(&name).await })
            .buffer_unordered(READ_CONCURRENCY);
        while let Some(read) = reads.next().await {
            if let Some(v) = read? {
                each(v);
            }
        }
        Ok(())
    }
}

enum Condition {
    Absent,
    Matches(String),
}

/// The id of the record stored under `name` (`grants/<id>.json`), if it is a record's name.
fn id_of(name: &str) -> Option<GrantId> {
    name.strip_prefix("grants/")
        .and_then(|rest| rest.strip_suffix(".json"))
        .and_then(|id| GrantId::parse(id).ok())
}

fn parse(name: &str, body: &[u8]) -> Result<GrantRecord, LedgerError> {
    let corrupt = |reason: String| LedgerError::Corrupt {
        name: name.to_owned(),
        reason,
    };
    let record: GrantRecord = serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))?;
    record.check_integrity().map_err(corrupt)?;
    Ok(record)
}

fn is_precondition(e: &azure_core::Error) -> bool {
    matches!(
        e.http_status(),
        Some(StatusCode::Conflict | StatusCode::PreconditionFailed)
    )
}

/// Classifies an SDK error. The SDK has already retried what its retry policy retries.
fn storage_error(e: azure_core::Error) -> LedgerError {
    match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            let code = error_code.as_deref().unwrap_or("no error code");
            let detail = format!("HTTP {} {code}", u16::from(*status));
            match u16::from(*status) {
                401 | 403 => LedgerError::forbidden(detail),
                404 => LedgerError::NotFound { what: detail },
                408 | 429 | 500..=599 => LedgerError::Unavailable { message: detail },
                _ => LedgerError::Other { message: detail },
            }
        }
        ErrorKind::Connection | ErrorKind::Io | ErrorKind::Credential => LedgerError::Unavailable {
            message: e.to_string(),
        },
        ErrorKind::DataConversion | ErrorKind::Other => LedgerError::Other {
            message: e.to_string(),
        },
    }
}

#[async_trait]
impl LedgerStore for BlobLedger {
    async fn create(&self, record: GrantRecord) -> Result<Versioned<GrantRecord>, LedgerError> {
        self.ensure_container().await?;
        // Marker first: a record is never findable by tags before its marker exists. A marker left by
        // a create that then failed for another reason names an absent record: harmless.
        self.put_marker(&record).await?;
        // Not journaled: approvals create their records `pending` (see `journal` for why and what it
        // costs); the writes that follow are.
        match self.write(&record, Condition::Absent).await {
            Err(LedgerError::AlreadyExists { id }) => {
                // The key names a record already. The marker just written is that record's own if it is
                // this principal's in this workspace (a repeated delivery); otherwise the key was reused
                // for another request, which is refused, and the marker would name someone else's
                // grant: it goes, so a refused create leaves nothing behind. One read, on this path only.
                if let Ok(Some(stored)) = self.read(&Self::blob_name(id)).await
                    && Self::marker_name(&stored.record) != Self::marker_name(&record)
                {
                    self.drop_marker(&record).await;
                }
                Err(LedgerError::AlreadyExists { id })
            }
            written => written,
        }
    }

    async fn get(&self, id: GrantId) -> Result<Versioned<GrantRecord>, LedgerError> {
        self.ensure_container().await?;
        self.read(&Self::blob_name(id))
            .await?
            .ok_or_else(|| LedgerError::no_record(id))
    }

    async fn update(
        &self,
        current: &Versioned<GrantRecord>,
    ) -> Result<Versioned<GrantRecord>, LedgerError> {
        // Only a reopen writes `pending` over a stored record: the grant was revoked, its marker deleted,
        // and it is live again. The marker comes back first, as at creation.
        if current.record.state == GrantState::Pending {
            self.put_marker(&current.record).await?;
        }
        self.journal_if_due_soon(&current.record, OffsetDateTime::now_utc())
            .await?;
        let stored = self
            .write(&current.record, Condition::Matches(current.version.clone()))
            .await?;
        if stored.record.state == GrantState::Revoked {
            self.drop_marker(&stored.record).await;
        }
        Ok(stored)
    }

    /// Each write is its own HTTP request: they go out [`READ_CONCURRENCY`] at a time (each still
    /// conditional on its ETag), answered in the batch's order.
    /// Several reads in flight, keeping only each due record's brief: a backlog of any size is never
    /// held in memory whole.
    async fn find_due_groups(&self, query: &DueQuery) -> Result<Vec<DueGroup>, LedgerError> {
        // A record that changed state between two queries can be found twice: count it once.
        let mut seen = std::collections::HashSet::new();
        let mut groups = DueGroups::default();
        for expression in tags::due_queries(query) {
            self.query_each(&expression, |found| {
                if query.is_due(&found.record) && seen.insert(found.record.id) {
                    groups.add(&found.record);
                }
            })
            .await?;
        }
        // What the tag index has not caught up with.
        self.journaled_due(query, &seen, |found| groups.add(&found.record))
            .await?;
        Ok(groups.finish())
    }

    async fn get_many(&self, ids: &[GrantId]) -> Vec<Result<Versioned<GrantRecord>, LedgerError>> {
        futures::stream::iter(ids.iter().copied())
            .map(|id| async move { self.get(id).await })
            .buffered(READ_CONCURRENCY)
            .collect()
            .await
    }

    async fn update_many(
        &self,
        batch: Vec<Versioned<GrantRecord>>,
    ) -> Vec<Result<Versioned<GrantRecord>, LedgerError>> {
        futures::stream::iter(batch)
            .map(|current| async move { self.update(&current).await })
            .buffered(READ_CONCURRENCY)
            .collect()
            .await
    }

    /// The tag query (which covers records written before markers existed) joined with the principal's
    /// markers (which cover records the tag index has not caught up with).
    async fn active_for_principal(
        &self,
        workspace: &str,
        principal: &Principal,
    ) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        let mut live = self
            .active_for_principal_except(workspace, principal, &BTreeSet::new())
            .await?;
        sort_listed(&mut live);
        Ok(live)
    }

    /// The ids the tag index finds joined with those the principal's markers name (listed together), each
    /// read unless it is in `except`: the sweep, which looks its principals up twice with the grants it is
    /// ending in `except`, does not download those again only to drop them (two reads per revoked grant).
    async fn active_for_principal_except(
        &self,
        workspace: &str,
        principal: &Principal,
        except: &BTreeSet<GrantId>,
    ) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        self.for_principal(workspace, principal, except, GrantState::keeps_access)
            .await
    }

    /// The same lookup, keeping every state but `revoked` (revoked records drop their marker; the tag
    /// query finds the older ones).
    async fn unrevoked_for_principal(
        &self,
        workspace: &str,
        principal: &Principal,
    ) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        self.for_principal(workspace, principal, &BTreeSet::new(), |s| {
            s != GrantState::Revoked
        })
        .await
    }
    async fn probe(&self) -> Result<String, LedgerError> {
        self.ensure_container().await?;
        let name = format!("probes/doctor-{}.json", uuid::Uuid::new_v4());
        let blob = self.container.blob_client(&name);
        let options = json_upload_options()
            .with_tags(std::collections::HashMap::from([(
                tags::PROBE.to_owned(),
                tags::PROBE_VALUE.to_owned(),
            )]))
            .if_not_exists();
        blob.upload(
            Bytes::from_static(b"{\"probe\":true}").into(),
            Some(options),
        )
        .await
        .map_err(storage_error)?;
        // The tag index lags writes, so the probe need not be found yet: the query only has to be
        // allowed (`blobs/filter/action`), which the first page proves.
        let query = match self
            .container
            .find_blobs_by_tags(&tags::probe_query(), None)
        {
            Ok(pager) => std::pin::pin!(pager).next().await.transpose().map(|_| ()),
            Err(e) => Err(e),
        }
        .map_err(storage_error);
        // Removed even when the query failed, so a refused query leaves no probe behind.
        let deleted = blob.delete(None).await.map_err(storage_error);
        query?;
        deleted?;
        Ok(format!(
            "wrote {name} with index tags, ran a tag query and deleted it in {}",
            self.container.url()
        ))
    }

    async fn find_due(&self, query: &DueQuery) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        // Keyed by id: a record that changed state between two queries can be found twice.
        let mut due = std::collections::BTreeMap::new();
        for expression in tags::due_queries(query) {
            for found in self.query(&expression).await? {
                if query.is_due(&found.record) {
                    due.insert(found.record.id, found);
                }
            }
        }
        let seen = due.keys().copied().collect();
        self.journaled_due(query, &seen, |found| {
            due.insert(found.record.id, found);
        })
        .await?;
        let mut due: Vec<_> = due.into_values().collect();
        sort_due(&mut due);
        Ok(due)
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        let mut found: Vec<_> = self
            .query(&tags::list_query(filter))
            .await?
            .into_iter()
            .filter(|v| filter.matches(&v.record))
            .collect();
        sort_listed(&mut found);
        Ok(found)
    }
}
