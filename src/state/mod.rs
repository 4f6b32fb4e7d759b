//! Local state of one backup set: one SQLite file, `state.sqlite` in the set's
//! state directory, one file here per concern it keeps:
//!
//! - `fingerprints.rs`: the fingerprint cache (and numbers kept between runs);
//! - `journal.rs`: the journal of uploads in flight;
//! - `multipart.rs`: resumable (multipart) uploads;
//! - `retrievals.rs`: retrieval jobs requested for restores;
//! - `migrations.rs`: a migration's jobs and copies in progress;
//! - `deletions.rs`: the journal of deletions in flight, and the archives this
//!   host deleted lately;
//! - `inventory.rs`: the pending inventory job and the saved reports.
//!
//! Each is an `impl LocalState` block over the one connection.

mod deletions;
mod fingerprints;
mod inventory;
mod journal;
mod migrations;
mod multipart;
mod retrievals;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result};
use rusqlite::Connection;

pub use deletions::DeletionIntent;
pub use fingerprints::{CachedHash, FingerprintCursor};
pub use inventory::InventoryJob;
pub use journal::{JournalEntry, JournalStored};
pub use migrations::{MigratedCopy, MigrationRecord};
pub use multipart::MultipartRecord;
pub use retrievals::RetrievalRecord;

pub struct LocalState {
    conn: Mutex<Connection>,
    /// The directory the state lives in (the set's state directory).
    dir: PathBuf,
}

/// Inventory jobs, saved reports, and archives this host deleted (an inventory
/// taken before a deletion still lists the archive).
const INVENTORY_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS inventory_job (
        id INTEGER PRIMARY KEY CHECK (id = 1), job_id TEXT NOT NULL,
        requested_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS report (
        name TEXT PRIMARY KEY, body TEXT NOT NULL, saved_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS deleted_archive (
        archive_id TEXT PRIMARY KEY, deleted_at INTEGER NOT NULL);";

/// A migration's copies in progress, one row per archive of the previous store.
const MIGRATION_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS migration (
        archive_id TEXT PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL,
        size INTEGER NOT NULL, job_id TEXT, tier TEXT NOT NULL,
        requested_at INTEGER NOT NULL, ready_at INTEGER,
        copy_id TEXT, copy_sha1 BLOB, copy_tree_hash BLOB);";

impl LocalState {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = open_db(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS fingerprint (
                key TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
                sha1 BLOB NOT NULL, tree_hash BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS upload_journal (
                key TEXT PRIMARY KEY, raw BLOB, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, started_at INTEGER NOT NULL,
                archive_id TEXT, sha1 BLOB, tree_hash BLOB);
             CREATE TABLE IF NOT EXISTS multipart (
                key TEXT PRIMARY KEY, token TEXT NOT NULL, size INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
                started_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS retrieval (
                archive_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, tier TEXT NOT NULL,
                requested_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS deletion_journal (
                archive_id TEXT PRIMARY KEY, key TEXT NOT NULL, started_at INTEGER NOT NULL);",
        )
        .with_context(|| format!("cannot initialise local state {}", path.display()))?;
        add_missing_columns(
            &conn,
            "retrieval",
            &[
                ("key", "TEXT NOT NULL DEFAULT ''"),
                ("destination", "BLOB NOT NULL DEFAULT x''"),
                ("size", "INTEGER NOT NULL DEFAULT 0"),
                ("ready_at", "INTEGER"),
            ],
        )
        .with_context(|| format!("cannot upgrade local state {}", path.display()))?;
        conn.execute_batch(INVENTORY_SCHEMA)
            .with_context(|| format!("cannot initialise local state {}", path.display()))?;
        conn.execute_batch(MIGRATION_SCHEMA)
            .with_context(|| format!("cannot initialise local state {}", path.display()))?;
        Ok(LocalState {
            conn: Mutex::new(conn),
            dir: path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        })
    }

    /// The set's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) fn open_db(path: &Path) -> Result<Connection> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    let conn = Connection::open(path)
        .with_context(|| format!("cannot open database {}", path.display()))?;
    // WAL keeps readers (a second `firn status`) from blocking a running backup.
    conn.pragma_update(None, "journal_mode", "WAL")
        .with_context(|| {
            format!(
                "cannot use database {} (is it an SQLite file on a writable disk?)",
                path.display()
            )
        })?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(conn)
}

/// Upgrades a table created by an older firn in place.
fn add_missing_columns(conn: &Connection, table: &str, columns: &[(&str, &str)]) -> Result<()> {
    let existing: Vec<String> = conn
        .prepare(&format!("PRAGMA table_info({table})"))?
        .query_map([], |row| row.get(1))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, decl) in columns {
        if !existing.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {name} {decl}"))?;
        }
    }
    Ok(())
}

/// A column of N bytes (None when NULL or of another length: a damaged row).
fn blob<const N: usize>(v: Option<Vec<u8>>) -> Option<[u8; N]> {
    v.and_then(|b| b.try_into().ok())
}
