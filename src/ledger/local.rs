//! The ledger in a local folder: the embedded default for a laptop or CI. One JSON file per record,
//! written atomically; the version is a hash of the file's bytes.
//!
//! For a single process only: a lock per record (striped by id) serialises the updates of one record
//! inside the process, but two processes (or scaled-out app instances) updating one folder could
//! overwrite each other's changes. Creation is safe even then, because it publishes the file with a
//! hard link, which fails if the name exists.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Mutex, MutexGuard};

use super::ids::hash_bytes_hex;
use crate::domain::Principal;
use std::collections::BTreeSet;

use super::{
    DueGroup, DueGroups, DueQuery, GrantId, GrantRecord, LedgerError, LedgerStore, ListFilter,
    Versioned, sort_due, sort_listed,
};

/// How many locks guard the records' read-compare-write. Ids are hashes, so records spread evenly; 64
/// makes two concurrent callbacks' updates share a lock rarely, and a batch takes each lock once.
const STRIPES: usize = 64;

#[derive(Debug, Clone)]
pub struct LocalLedger {
    dir: Arc<PathBuf>,
    /// One is held across a record's read-compare-write, so two updates of one record in this process
    /// cannot both pass the check; updates of different records mostly take different locks and do not
    /// wait for each other (a process-wide lock queued every callback's ledger writes behind one another).
    stripes: Arc<[Mutex<()>]>,
}

impl LocalLedger {
    /// A ledger in `dir` (created at first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Arc::new(dir.into()),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    fn stripe_of(id: GrantId) -> usize {
        // The id is the SHA-256 of the idempotency key (ids.rs): its low bits are as good as any hash.
        (id.as_uuid().as_u128() % STRIPES as u128) as usize
    }

    /// The lock of `id`'s record.
    async fn lock_record(&self, id: GrantId) -> MutexGuard<'_, ()> {
        self.stripes[Self::stripe_of(id)].lock().await
    }

    /// The locks of all of `ids`' records, taken in ascending order (as every caller takes them, so two
    /// batches cannot each hold a lock the other waits for).
    async fn lock_records(&self, ids: impl Iterator<Item = GrantId>) -> Vec<MutexGuard<'_, ()>> {
        let wanted: BTreeSet<usize> = ids.map(Self::stripe_of).collect();
        let mut guards = Vec::with_capacity(wanted.len());
        for i in wanted {
            guards.push(self.stripes[i].lock().await);
        }
        guards
    }

    fn path(&self, id: GrantId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Runs blocking file work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Path) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let dir = Arc::clone(&self.dir);
        tokio::task::spawn_blocking(move || work(&dir))
            .await
            .map_err(|e| LedgerError::Other {
                message: format!("ledger file task failed: {e}"),
            })?
    }

    async fn scan(
        &self,
        keep: impl Fn(&GrantRecord) -> bool + Send + 'static,
    ) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        self.scan_map(move |v| keep(&v.record).then_some(v)).await
    }

    /// Reads every record once, keeping only what `map` makes of it (one record in memory at a time).
    async fn scan_map<T: Send + 'static>(
        &self,
        map: impl Fn(Versioned<GrantRecord>) -> Option<T> + Send + 'static,
    ) -> Result<Vec<T>, LedgerError> {
        self.scan_prefiltered(|_| true, map).await
    }

    /// [`LocalLedger::scan_map`], skipping without parsing every file whose bytes `may_match` rules out.
    /// `may_match` must never rule out a file that `map` would keep.
    async fn scan_prefiltered<T: Send + 'static>(
        &self,
        may_match: impl Fn(&[u8]) -> bool + Send + 'static,
        map: impl Fn(Versioned<GrantRecord>) -> Option<T> + Send + 'static,
    ) -> Result<Vec<T>, LedgerError> {
        self.blocking(move |dir| {
            let mut found = Vec::new();
            for_each_record(dir, may_match, |v| found.extend(map(v)))?;
            Ok(found)
        })
        .await
    }
}

/// Calls `each` with every record in `dir` whose bytes `may_match` does not rule out, one at a time.
fn for_each_record(
    dir: &Path,
    may_match: impl Fn(&[u8]) -> bool,
    mut each: impl FnMut(Versioned<GrantRecord>),
) -> Result<(), LedgerError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(dir, &e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, &e))?.path();
        if path.extension().is_some_and(|ext| ext == "json")
            && let Some(bytes) = read_bytes(&path)?
            && may_match(&bytes)
        {
            each(parse_record(&path, &bytes)?);
        }
    }
    Ok(())
}

fn io_error(path: &Path, e: &std::io::Error) -> LedgerError {
    let message = format!("{}: {e}", path.display());
    match e.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            LedgerError::Forbidden { message }
        }
        _ => LedgerError::Unavailable { message },
    }
}

fn version_of(bytes: &[u8]) -> String {
    // Any change of content changes the version; 32 hex digits are plenty to tell versions apart.
    hash_bytes_hex(bytes)[..32].to_owned()
}

fn read_file(path: &Path) -> Result<Option<Versioned<GrantRecord>>, LedgerError> {
    match read_bytes(path)? {
        Some(bytes) => parse_record(path, &bytes).map(Some),
        None => Ok(None),
    }
}

fn read_bytes(path: &Path) -> Result<Option<Vec<u8>>, LedgerError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, &e)),
    }
}

/// Whether a stored record's bytes may name a securable in one of `catalogs`: every securable's JSON
/// `fullName` starts with `"<catalog>` followed by `.` or `"`. Names JSON would escape are not
/// pre-filtered (the record is parsed).
fn may_name_catalog(bytes: &[u8], catalogs: &BTreeSet<String>) -> bool {
    catalogs.iter().any(|catalog| {
        if catalog.contains(['"', '\\']) || !catalog.is_ascii() {
            return true;
        }
        let quoted = format!("\"{catalog}");
        memchr::memmem::find_iter(bytes, quoted.as_bytes())
            .any(|at| matches!(bytes.get(at + quoted.len()), Some(b'.' | b'"')))
    })
}

fn parse_record(path: &Path, bytes: &[u8]) -> Result<Versioned<GrantRecord>, LedgerError> {
    let corrupt = |reason: String| LedgerError::Corrupt {
        name: path.display().to_string(),
        reason,
    };
    let record: GrantRecord = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    record.check_integrity().map_err(corrupt)?;
    Ok(Versioned {
        record,
        version: version_of(bytes),
    })
}

/// Writes `bytes` to a fresh temporary file beside `path`, synced, and returns its path.
fn write_temp(dir: &Path, bytes: &[u8]) -> Result<PathBuf, LedgerError> {
    write_temp_with(dir, bytes, true)
}

/// [`write_temp`], leaving the flush to the caller when `sync` is false (a batch flushes once).
fn write_temp_with(dir: &Path, bytes: &[u8], sync: bool) -> Result<PathBuf, LedgerError> {
    let temp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
    };
    // The folder is made when a write finds it missing (the first one, or after someone removed it), not
    // checked before every write: that was a path walk per write, 2 % of the app's CPU per approval.
    let mut file = match open() {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
            open()
        }
        opened => opened,
    }
    .map_err(|e| io_error(&temp, &e))?;
    file.write_all(bytes)
        .and_then(|()| if sync { file.sync_all() } else { Ok(()) })
        .map_err(|e| io_error(&temp, &e))?;
    Ok(temp)
}

/// Makes everything written so far under `dir` durable in one step. On Linux that is `syncfs(2)` on the
/// folder's file system: one journal commit for a whole batch, where a flush per file costs a few
/// milliseconds each (measured in BENCHMARKS.md). Elsewhere each file of the batch is flushed.
fn flush_batch(dir: &Path, files: &[PathBuf]) -> Result<(), LedgerError> {
    #[cfg(target_os = "linux")]
    {
        let _ = files;
        let folder = std::fs::File::open(dir).map_err(|e| io_error(dir, &e))?;
        rustix::fs::syncfs(&folder).map_err(|e| io_error(dir, &e.into()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        for path in files {
            std::fs::File::open(path)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_error(path, &e))?;
        }
        Ok(())
    }
}

fn serialize(record: &GrantRecord) -> Result<Vec<u8>, LedgerError> {
    record
        .check_integrity()
        .map_err(|reason| LedgerError::Other {
            message: format!("refusing to store grant {}: {reason}", record.id),
        })?;
    serde_json::to_vec_pretty(record).map_err(|e| LedgerError::Other {
        message: format!("cannot serialize grant {}: {e}", record.id),
    })
}

#[async_trait]
impl LedgerStore for LocalLedger {
    async fn create(&self, record: GrantRecord) -> Result<Versioned<GrantRecord>, LedgerError> {
        let bytes = serialize(&record)?;
        let path = self.path(record.id);
        // No lock: the hard link below is the create-if-absent, and an update needs the record to exist.
        self.blocking(move |dir| {
            let temp = write_temp(dir, &bytes)?;
            // A hard link publishes the complete file under its name, or fails if the name is taken:
            // create-if-absent that cannot leave a half-written record behind.
            let linked = std::fs::hard_link(&temp, &path);
            let _ = std::fs::remove_file(&temp);
            match linked {
                Ok(()) => Ok(Versioned {
                    version: version_of(&bytes),
                    record,
                }),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    Err(LedgerError::AlreadyExists { id: record.id })
                }
                Err(e) => Err(io_error(&path, &e)),
            }
        })
        .await
    }

    async fn get(&self, id: GrantId) -> Result<Versioned<GrantRecord>, LedgerError> {
        let path = self.path(id);
        self.blocking(move |_| read_file(&path))
            .await?
            .ok_or_else(|| LedgerError::no_record(id))
    }

    async fn update(
        &self,
        current: &Versioned<GrantRecord>,
    ) -> Result<Versioned<GrantRecord>, LedgerError> {
        let record = current.record.clone();
        let expected = current.version.clone();
        let bytes = serialize(&record)?;
        let path = self.path(record.id);
        let _guard = self.lock_record(record.id).await;
        self.blocking(move |dir| {
            match read_bytes(&path)? {
                Some(stored) if version_of(&stored) == expected => {}
                _ => return Err(LedgerError::Conflict { id: record.id }),
            }
            let temp = write_temp(dir, &bytes)?;
            std::fs::rename(&temp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                io_error(&path, &e)
            })?;
            Ok(Versioned {
                version: version_of(&bytes),
                record,
            })
        })
        .await
    }

    /// The batch's record locks and one flush for the whole batch: every record is checked against its
    /// version and written beside its final name, the batch is flushed, then each is renamed into place.
    /// A crash leaves each record either old or new, never torn.
    async fn update_many(
        &self,
        batch: Vec<Versioned<GrantRecord>>,
    ) -> Vec<Result<Versioned<GrantRecord>, LedgerError>> {
        let n = batch.len();
        let _guards = self.lock_records(batch.iter().map(|v| v.record.id)).await;
        let done = self
            .blocking(move |dir| {
                let mut results: Vec<Option<Result<Versioned<GrantRecord>, LedgerError>>> =
                    (0..n).map(|_| None).collect();
                let mut staged = Vec::new();
                for (i, current) in batch.into_iter().enumerate() {
                    let record = current.record;
                    let path = dir.join(format!("{}.json", record.id));
                    let staged_one = serialize(&record).and_then(|bytes| {
                        // The version is the hash of the stored bytes: no need to parse them.
                        match read_bytes(&path)? {
                            Some(stored) if version_of(&stored) == current.version => {}
                            _ => return Err(LedgerError::Conflict { id: record.id }),
                        }
                        let temp = write_temp_with(dir, &bytes, false)?;
                        Ok((temp, version_of(&bytes)))
                    });
                    match staged_one {
                        Ok((temp, version)) => staged.push((i, temp, path, version, record)),
                        Err(e) => results[i] = Some(Err(e)),
                    }
                }
                let temps: Vec<PathBuf> = staged.iter().map(|s| s.1.clone()).collect();
                if let Err(e) = flush_batch(dir, &temps) {
                    for (i, temp, ..) in staged {
                        let _ = std::fs::remove_file(&temp);
                        results[i] = Some(Err(e.clone()));
                    }
                    return Ok(results);
                }
                for (i, temp, path, version, record) in staged {
                    results[i] = Some(match std::fs::rename(&temp, &path) {
                        Ok(()) => Ok(Versioned { record, version }),
                        Err(e) => {
                            let _ = std::fs::remove_file(&temp);
                            Err(io_error(&path, &e))
                        }
                    });
                }
                // The renames are not flushed here: a crash that loses them leaves each record at its
                // previous state, which the timer redoes (revokes are idempotent), and the next batch's
                // flush makes them durable.
                Ok(results)
            })
            .await;
        match done {
            Ok(results) => results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| {
                        Err(LedgerError::Other {
                            message: "ledger batch lost a record".into(),
                        })
                    })
                })
                .collect(),
            Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
        }
    }

    /// One pass over the folder keeping only each due record's id, catalog and due time.
    async fn find_due_groups(&self, query: &DueQuery) -> Result<Vec<DueGroup>, LedgerError> {
        let query = *query;
        self.blocking(move |dir| {
            let mut groups = DueGroups::default();
            for_each_record(
                dir,
                |_| true,
                |v| {
                    if query.is_due(&v.record) {
                        groups.add(&v.record);
                    }
                },
            )?;
            Ok(groups.finish())
        })
        .await
    }

    /// One file task for the whole batch.
    async fn get_many(&self, ids: &[GrantId]) -> Vec<Result<Versioned<GrantRecord>, LedgerError>> {
        let paths: Vec<(GrantId, PathBuf)> = ids.iter().map(|id| (*id, self.path(*id))).collect();
        let n = paths.len();
        let read = self
            .blocking(move |_| {
                Ok(paths
                    .into_iter()
                    .map(|(id, path)| read_file(&path)?.ok_or_else(|| LedgerError::no_record(id)))
                    .collect::<Vec<_>>())
            })
            .await;
        match read {
            Ok(results) => results,
            Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
        }
    }

    async fn live_grants_sharing(
        &self,
        workspace: &str,
        catalogs: &BTreeSet<String>,
        principals: &BTreeSet<Principal>,
        except: &BTreeSet<GrantId>,
    ) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        let workspace = workspace.to_owned();
        let (catalogs, principals, except) = (catalogs.clone(), principals.clone(), except.clone());
        let wanted = catalogs.clone();
        // Only records naming one of the catalogs are parsed: a sweep asks this once per catalog.
        self.scan_prefiltered(
            move |bytes| may_name_catalog(bytes, &wanted),
            move |v| {
                let r = &v.record;
                (r.state.keeps_access()
                    && r.workspace.name == workspace
                    && !except.contains(&r.id)
                    && catalogs.contains(r.securable.catalog_name().as_str())
                    && principals.contains(&r.principal))
                .then_some(v)
            },
        )
        .await
    }

    /// Reads every record: a local ledger is small, and this keeps the folder free of index files.
    async fn probe(&self) -> Result<String, LedgerError> {
        self.blocking(|dir| {
            // A hidden name that is not `*.json`, so a scan never reads it as a record.
            let temp = write_temp(dir, b"{\"probe\":true}")?;
            std::fs::remove_file(&temp).map_err(|e| io_error(&temp, &e))?;
            Ok(format!(
                "wrote and deleted a probe file in {}",
                dir.display()
            ))
        })
        .await
    }

    async fn find_due(&self, query: &DueQuery) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        let query = *query;
        let mut due = self.scan(move |r| query.is_due(r)).await?;
        sort_due(&mut due);
        Ok(due)
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        let filter = filter.clone();
        let mut found = self.scan(move |r| filter.matches(r)).await?;
        sort_listed(&mut found);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_prefilter_keeps_every_record_naming_the_catalog_and_skips_others() {
        let catalogs = BTreeSet::from(["c3".to_owned()]);
        let table = br#"{"securable":{"type":"table","fullName":"c3.s1.t2"}}"#;
        let catalog = br#"{"securable":{"type":"catalog","fullName":"c3"}}"#;
        let other = br#"{"id":"c3a1-0000","securable":{"type":"table","fullName":"c33.s1.t2"}}"#;
        assert!(may_name_catalog(table, &catalogs));
        assert!(may_name_catalog(catalog, &catalogs));
        assert!(!may_name_catalog(other, &catalogs));
        // A name JSON would escape is never ruled out.
        let odd = BTreeSet::from(["we\"ird".to_owned()]);
        assert!(may_name_catalog(other, &odd));
    }
}
