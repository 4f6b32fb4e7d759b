//! The catalog as the engine holds it: every call passes through, and writes are
//! counted and marked, so the engine knows whether the catalog changed since its
//! last snapshot (and one is due) without every workflow having to say so. The
//! mark is a file in the set's state directory, made before the first write, so
//! a run killed halfway still leaves the snapshot owed to the next run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use anyhow::Result;
use async_trait::async_trait;

use crate::catalog::{ArchiveRecord, ArchiveState, Catalog, CurrentSummary, SnapshotRecord};
use crate::model::Sha1Digest;

pub struct Tracked {
    inner: Arc<dyn Catalog>,
    /// Present while the catalog holds changes no snapshot has.
    marker: PathBuf,
    /// Writes since opened (never reset: a snapshot remembers the count it saw).
    writes: Mutex<Writes>,
}

#[derive(Default)]
struct Writes {
    count: u64,
    marked: bool,
}

impl Tracked {
    pub fn new(inner: Arc<dyn Catalog>, marker: PathBuf) -> Tracked {
        Tracked {
            inner,
            marker,
            writes: Mutex::new(Writes::default()),
        }
    }

    fn writes(&self) -> std::sync::MutexGuard<'_, Writes> {
        self.writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes so far (a snapshot notes it before reading the records).
    pub fn write_count(&self) -> u64 {
        self.writes().count
    }

    /// Whether changes are owed a snapshot: by this run, or by an earlier one that
    /// ended (or failed to snapshot) before storing it.
    pub fn owes_snapshot(&self) -> bool {
        self.writes().marked || self.marker.exists()
    }

    /// A snapshot holding every write up to `seen` is stored: clears the mark,
    /// unless more writes came in meanwhile.
    pub fn snapshot_stored(&self, seen: u64) {
        let mut writes = self.writes();
        if writes.count == seen {
            let _ = std::fs::remove_file(&self.marker);
            writes.marked = false;
        }
    }

    /// Before every write: count it, and make the mark first (best effort; the
    /// snapshot of this run is still due through `marked`).
    fn will_write(&self) {
        let mut writes = self.writes();
        writes.count += 1;
        if !writes.marked {
            writes.marked = true;
            let _ = std::fs::write(&self.marker, b"");
        }
    }
}

#[async_trait]
impl Catalog for Tracked {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }

    async fn current_summaries(&self) -> Result<Vec<CurrentSummary>> {
        self.inner.current_summaries().await
    }

    async fn for_each_current(&self, visit: &mut (dyn FnMut(CurrentSummary) + Send)) -> Result<()> {
        self.inner.for_each_current(visit).await
    }

    async fn records(&self) -> Result<Vec<ArchiveRecord>> {
        self.inner.records().await
    }

    async fn record_count(&self) -> Result<u64> {
        self.inner.record_count().await
    }

    async fn for_each_record(
        &self,
        visit: &mut (dyn FnMut(ArchiveRecord) -> Result<()> + Send),
    ) -> Result<()> {
        self.inner.for_each_record(visit).await
    }

    async fn superseded(&self) -> Result<Vec<ArchiveRecord>> {
        self.inner.superseded().await
    }

    async fn versions(&self, key: &str) -> Result<Vec<ArchiveRecord>> {
        self.inner.versions(key).await
    }

    async fn current(&self, key: &str) -> Result<Option<ArchiveRecord>> {
        self.inner.current(key).await
    }

    async fn current_many(
        &self,
        keys: &[&str],
    ) -> Result<std::collections::HashMap<String, ArchiveRecord>> {
        self.inner.current_many(keys).await
    }

    async fn record_upload(&self, record: &ArchiveRecord, replaces: Option<&str>) -> Result<()> {
        self.will_write();
        self.inner.record_upload(record, replaces).await
    }

    async fn record_uploads(
        &self,
        uploads: &[(ArchiveRecord, Option<String>)],
    ) -> Result<Vec<Result<()>>> {
        self.will_write();
        self.inner.record_uploads(uploads).await
    }

    async fn record_superseded(&self, record: &ArchiveRecord) -> Result<()> {
        self.will_write();
        self.inner.record_superseded(record).await
    }

    async fn update_mtime(&self, key: &str, archive_id: &str, mtime_ns: i64) -> Result<()> {
        self.will_write();
        self.inner.update_mtime(key, archive_id, mtime_ns).await
    }

    async fn fill_unknown_sha1(
        &self,
        key: &str,
        archive_id: &str,
        sha1: &Sha1Digest,
    ) -> Result<()> {
        self.will_write();
        self.inner.fill_unknown_sha1(key, archive_id, sha1).await
    }

    async fn set_state(&self, key: &str, archive_id: &str, state: ArchiveState) -> Result<()> {
        self.will_write();
        self.inner.set_state(key, archive_id, state).await
    }

    async fn remove(&self, key: &str, archive_id: &str) -> Result<()> {
        self.will_write();
        self.inner.remove(key, archive_id).await
    }

    async fn find_archive(&self, archive_id: &str) -> Result<Option<ArchiveRecord>> {
        self.inner.find_archive(archive_id).await
    }

    async fn import(&self, records: &[ArchiveRecord]) -> Result<()> {
        self.will_write();
        self.inner.import(records).await
    }

    async fn snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        self.inner.snapshots().await
    }

    async fn names_target(&self, target: &str) -> Result<bool> {
        self.inner.names_target(target).await
    }

    async fn record_snapshot(&self, snapshot: &SnapshotRecord) -> Result<()> {
        self.inner.record_snapshot(snapshot).await
    }

    async fn remove_snapshot(&self, archive_id: &str) -> Result<()> {
        self.inner.remove_snapshot(archive_id).await
    }
}
