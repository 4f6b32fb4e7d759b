//! Catalog: what is archived, per backup set. One trait, interchangeable
//! implementations (SQLite, the embedded default; DynamoDB).

pub mod dynamodb;
pub mod sqlite;

use anyhow::Result;
use async_trait::async_trait;
use serde::Serialize;

use crate::model::{Sha1Digest, TreeHash};
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveState {
    Current,
    Superseded,
    Deleting,
}

impl ArchiveState {
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveState::Current => "current",
            ArchiveState::Superseded => "superseded",
            ArchiveState::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "current" => Some(ArchiveState::Current),
            "superseded" => Some(ArchiveState::Superseded),
            "deleting" => Some(ArchiveState::Deleting),
            _ => None,
        }
    }
}

/// One archived version of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRecord {
    pub key: String,
    /// Original bytes of the relative path when they differ from the key.
    pub raw: Option<Vec<u8>>,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha1: Sha1Digest,
    pub tree_hash: TreeHash,
    pub archive_id: String,
    /// Which store holds it, e.g. `local:/mnt/disk/firn-store`.
    pub target: String,
    /// Unix seconds.
    pub uploaded_at: i64,
    pub state: ArchiveState,
    pub host: String,
    /// Unix seconds; set when a newer version became current.
    pub superseded_at: Option<i64>,
    /// Where in its pack the bytes are, when `archive_id` is a pack of small
    /// files (see `pack`); None: the archive holds this file alone.
    pub pack: Option<PackSlot>,
}

/// A packed file's bytes: `len` bytes at `offset` of the pack archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PackSlot {
    pub offset: u64,
    pub len: u64,
}

impl ArchiveRecord {
    /// Whether this version's bytes share an archive (a pack) with others.
    pub fn is_packed(&self) -> bool {
        self.pack.is_some()
    }
}

/// A snapshot of the catalog kept in the store (see `engine::snapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub archive_id: String,
    /// Which store holds it.
    pub target: String,
    /// Unix milliseconds (snapshots follow each other within a second).
    pub created_ms: i64,
    /// Bytes of the compressed snapshot.
    pub size: u64,
    /// How many catalog records it holds.
    pub records: u64,
    pub sha1: Sha1Digest,
    pub tree_hash: TreeHash,
}

/// What status needs of the current version of each file (kept small: one per file).
#[derive(Debug, Clone)]
pub struct CurrentSummary {
    pub key: String,
    pub raw: Option<Box<[u8]>>,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha1: Sha1Digest,
    /// Which store holds it (see [`ArchiveRecord::target`]).
    pub target: String,
}

/// Another writer changed the entry since it was read (optimistic concurrency).
#[derive(Debug, thiserror::Error)]
#[error(
    "catalog conflict on {key}: expected current archive {expected:?}, found {found:?} (another host or run wrote this entry); run again to re-evaluate"
)]
pub struct Conflict {
    pub key: String,
    pub expected: Option<String>,
    pub found: Option<String>,
}

impl Conflict {
    /// Ok when the catalog's current archive of `key` is the one this run saw
    /// (`expected`), else the Conflict that says so.
    pub fn check(key: &str, expected: Option<&str>, found: Option<String>) -> Result<()> {
        if found.as_deref() == expected {
            return Ok(());
        }
        Err(Conflict {
            key: key.to_string(),
            expected: expected.map(str::to_owned),
            found,
        }
        .into())
    }
}

#[async_trait]
pub trait Catalog: Send + Sync {
    /// Human-readable location, for messages.
    fn describe(&self) -> String;

    /// Fails with one clear line when the catalog is missing or unreachable.
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    /// The current version of every file in the set, sorted by key.
    async fn current_summaries(&self) -> Result<Vec<CurrentSummary>>;

    /// Visits the current version of every file in ascending key order, without
    /// holding them all (the embedded catalog streams them from SQLite).
    async fn for_each_current(&self, visit: &mut (dyn FnMut(CurrentSummary) + Send)) -> Result<()> {
        for summary in self.current_summaries().await? {
            visit(summary);
        }
        Ok(())
    }

    /// Every record of the set (all states), sorted by key then upload time.
    async fn records(&self) -> Result<Vec<ArchiveRecord>>;

    /// How many records the set has (all states).
    async fn record_count(&self) -> Result<u64> {
        Ok(self.records().await?.len() as u64)
    }

    /// Visits every record of the set as [`Catalog::records`] lists them, without
    /// holding them all (the embedded catalog streams them from SQLite). Stops
    /// at the first error `visit` returns.
    async fn for_each_record(
        &self,
        visit: &mut (dyn FnMut(ArchiveRecord) -> Result<()> + Send),
    ) -> Result<()> {
        for record in self.records().await? {
            visit(record)?;
        }
        Ok(())
    }

    /// Every record of the set that is not current (superseded, or being
    /// deleted), sorted by key then upload time: what the retention sweep looks
    /// at, without loading the current version of every file.
    async fn superseded(&self) -> Result<Vec<ArchiveRecord>> {
        let mut records = self.records().await?;
        records.retain(|r| r.state != ArchiveState::Current);
        Ok(records)
    }

    /// Every record of one key, oldest first.
    async fn versions(&self, key: &str) -> Result<Vec<ArchiveRecord>>;

    /// The current version of one key, if any.
    async fn current(&self, key: &str) -> Result<Option<ArchiveRecord>> {
        Ok(self
            .versions(key)
            .await?
            .into_iter()
            .find(|r| r.state == ArchiveState::Current))
    }

    /// The current version of each of `keys` that has one, read together (one
    /// query, or DynamoDB batches of 100) instead of a request per file.
    async fn current_many(
        &self,
        keys: &[&str],
    ) -> Result<std::collections::HashMap<String, ArchiveRecord>> {
        let mut out = std::collections::HashMap::new();
        for key in keys {
            if let Some(record) = self.current(key).await? {
                out.insert((*key).to_owned(), record);
            }
        }
        Ok(out)
    }

    /// Records a confirmed upload as the current version of its key. `replaces` is
    /// the archive id this run saw as current (None for a new file); if the catalog
    /// disagrees, nothing is written and a [`Conflict`] is returned. The replaced
    /// version becomes superseded in the same atomic write.
    async fn record_upload(&self, record: &ArchiveRecord, replaces: Option<&str>) -> Result<()>;

    /// Records many confirmed uploads at once (each `(record, replaces)` as
    /// [`Catalog::record_upload`] would): one transaction where the backend has
    /// them, each item checked on its own, so a [`Conflict`] fails only its item.
    /// The outer error is the batch failing as a whole (nothing of it written).
    async fn record_uploads(
        &self,
        uploads: &[(ArchiveRecord, Option<String>)],
    ) -> Result<Vec<Result<()>>> {
        let mut out = Vec::with_capacity(uploads.len());
        for (record, replaces) in uploads {
            out.push(self.record_upload(record, replaces.as_deref()).await);
        }
        Ok(out)
    }

    /// Records an archive that is not current (a stray adopted as a superseded version).
    async fn record_superseded(&self, record: &ArchiveRecord) -> Result<()>;

    async fn update_mtime(&self, key: &str, archive_id: &str, mtime_ns: i64) -> Result<()>;

    /// Records the SHA-1 of an archive whose SHA-1 was unknown (rebuilt from an
    /// inventory), once a restore verified its bytes by tree hash. A known SHA-1
    /// is never replaced.
    async fn fill_unknown_sha1(&self, key: &str, archive_id: &str, sha1: &Sha1Digest)
    -> Result<()>;

    async fn set_state(&self, key: &str, archive_id: &str, state: ArchiveState) -> Result<()>;

    /// Forgets one archive (after the store confirmed its deletion).
    async fn remove(&self, key: &str, archive_id: &str) -> Result<()>;

    async fn find_archive(&self, archive_id: &str) -> Result<Option<ArchiveRecord>>;

    /// Writes many records at once (a rebuilt or copied catalog), in batches.
    async fn import(&self, records: &[ArchiveRecord]) -> Result<()>;

    /// The snapshots of this catalog kept in the store, oldest first.
    async fn snapshots(&self) -> Result<Vec<SnapshotRecord>>;

    /// Whether the set's snapshots or records name the store `target`: every
    /// snapshot is looked at, and records as far as a quick look goes (SQLite:
    /// all of them; DynamoDB: the first items), which tells where a set's
    /// archives live without loading the set.
    async fn names_target(&self, target: &str) -> Result<bool> {
        if self.snapshots().await?.iter().any(|s| s.target == target) {
            return Ok(true);
        }
        Ok(self.records().await?.iter().any(|r| r.target == target))
    }

    async fn record_snapshot(&self, snapshot: &SnapshotRecord) -> Result<()>;

    /// Forgets one snapshot (after the store confirmed its deletion).
    async fn remove_snapshot(&self, archive_id: &str) -> Result<()>;
}
