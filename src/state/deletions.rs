//! Deletions in flight (journaled before the store is asked, closed once the
//! catalog forgets the archive), and the archives this host deleted lately.

use anyhow::Result;
use rusqlite::params;

use super::LocalState;

/// A deletion asked of the store whose catalog record may still be there: the
/// next run deletes it from the store again (idempotent) and from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionIntent {
    pub archive_id: String,
    pub key: String,
    pub started_at: i64,
}

impl LocalState {
    /// Journals a deletion before the store is asked (see [`DeletionIntent`]).
    pub fn deletion_begin(&self, archive_id: &str, key: &str, now: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO deletion_journal (archive_id, key, started_at) VALUES (?1, ?2, ?3)",
            params![archive_id, key, now],
        )?;
        Ok(())
    }

    pub fn deletion_end(&self, archive_id: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM deletion_journal WHERE archive_id = ?1",
            [archive_id],
        )?;
        Ok(())
    }

    /// Deletions an interrupted run left, oldest first.
    pub fn deletions(&self) -> Result<Vec<DeletionIntent>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT archive_id, key, started_at FROM deletion_journal ORDER BY started_at, archive_id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(DeletionIntent {
                archive_id: row.get(0)?,
                key: row.get(1)?,
                started_at: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Remembers that this host deleted an archive from the store, so an inventory
    /// taken before the deletion does not report it as an orphan. Entries older
    /// than 30 days are dropped (inventories are at most a few days old).
    pub fn remember_deleted(&self, archive_id: &str, now: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR REPLACE INTO deleted_archive (archive_id, deleted_at) VALUES (?1, ?2)",
            params![archive_id, now],
        )?;
        conn.execute(
            "DELETE FROM deleted_archive WHERE deleted_at < ?1",
            [now - 30 * 86_400],
        )?;
        Ok(())
    }

    /// Archives this host deleted, with when.
    pub fn deleted_archives(&self) -> Result<std::collections::HashMap<String, i64>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT archive_id, deleted_at FROM deleted_archive")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
