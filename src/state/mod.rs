//! Local state of one backup set: one SQLite file, `state.sqlite` in the set's
//! state directory, one file here per concern it keeps:
//!
//! - `schema.rs`: the tables, declared once, with the schema version
//!   (`PRAGMA user_version`) and the steps from older versions (opened through
//!   [`crate::db`], which refuses a file a newer firn wrote);
//! - `fingerprints.rs`: the fingerprint cache (and numbers kept between runs);
//! - `journal.rs`: the journal of uploads in flight;
//! - `packs.rs`: the journal of packs of small files in flight;
//! - `multipart.rs`: resumable (multipart) uploads;
//! - `retrievals.rs`: retrieval jobs requested for restores;
//! - `migrations.rs`: a migration's jobs and copies in progress;
//! - `deletions.rs`: the journal of deletions in flight, and the archives this
//!   host deleted lately;
//! - `inventory.rs`: the pending inventory job and the saved reports;
//! - `history.rs`: the run history (a row per run; what a run's summary
//!   holds is the library's `history` module's).
//!
//! Each is an `impl LocalState` block over the one connection.

mod deletions;
mod fingerprints;
mod history;
mod inventory;
mod journal;
mod migrations;
mod multipart;
mod packs;
mod retrievals;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::Result;
use rusqlite::Connection;

pub use deletions::DeletionIntent;
pub use fingerprints::{CachedHash, FingerprintCursor};
pub use history::{RUNS_KEPT, RunRow};
pub use inventory::InventoryJob;
pub use journal::{JournalEntry, JournalStored};
pub use migrations::{MigratedCopy, MigrationRecord};
pub use multipart::MultipartRecord;
pub use packs::{PackIntent, PackedFile};
pub use retrievals::RetrievalRecord;
pub use schema::VERSION as SCHEMA_VERSION;

pub struct LocalState {
    conn: Mutex<Connection>,
    /// The directory the state lives in (the set's state directory).
    dir: PathBuf,
}

impl LocalState {
    /// Opens the set's state at `path` (creating it), upgraded to this firn's
    /// schema; a file a newer firn wrote is refused, and left as it is.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = crate::db::open(path, &schema::SCHEMA)?;
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

/// A column of N bytes (None when NULL or of another length: a damaged row).
fn blob<const N: usize>(v: Option<Vec<u8>>) -> Option<[u8; N]> {
    v.and_then(|b| b.try_into().ok())
}
