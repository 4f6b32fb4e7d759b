//! The journal of uploads in flight: an upload is noted before it starts, its
//! archive once the store holds it durably, and the entry closes once the
//! catalog records it; a run that stops between leaves the entry for the next
//! one to resolve (invariants 1 to 3).

use anyhow::Result;
use rusqlite::params;

use super::{LocalState, blob};
use crate::model::{ContentHash, Fingerprint, Sha1Digest, TreeHash};

/// An upload that was started but whose catalog record was not yet confirmed.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub key: String,
    pub raw: Option<Vec<u8>>,
    pub fingerprint: Fingerprint,
    pub started_at: i64,
    /// Set once the store confirmed the archive.
    pub archive_id: Option<String>,
    pub hash: Option<ContentHash>,
}

/// An archive the store holds durably, for [`LocalState::journal_stored_many`].
pub struct JournalStored<'a> {
    pub key: &'a str,
    pub archive_id: &'a str,
    pub hash: &'a ContentHash,
    pub fingerprint: &'a Fingerprint,
}

impl LocalState {
    pub fn journal_begin(
        &self,
        key: &str,
        raw: Option<&[u8]>,
        fp: &Fingerprint,
        now: i64,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO upload_journal (key, raw, size, mtime_ns, ctime_ns, inode, started_at, archive_id, sha1, tree_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL, NULL)",
            params![key, raw, fp.size as i64, fp.mtime_ns, fp.ctime_ns, fp.inode as i64, now],
        )?;
        Ok(())
    }

    /// Notes the intent to upload many files in one transaction (a run that may
    /// note intents ahead of sending: its store can list archives for recovery).
    pub fn journal_begin_many(
        &self,
        items: &[(&str, Option<&[u8]>, Fingerprint)],
        now: i64,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO upload_journal (key, raw, size, mtime_ns, ctime_ns, inode, started_at, archive_id, sha1, tree_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL, NULL)",
            )?;
            for (key, raw, fp) in items {
                stmt.execute(params![
                    key,
                    raw,
                    fp.size as i64,
                    fp.mtime_ns,
                    fp.ctime_ns,
                    fp.inode as i64,
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Notes a batch of archives the store holds durably, each with the file's
    /// fingerprint as it was read, in one transaction.
    pub fn journal_stored_many(&self, items: &[JournalStored<'_>]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE upload_journal SET archive_id = ?2, sha1 = ?3, tree_hash = ?4,
                 size = ?5, mtime_ns = ?6, ctime_ns = ?7, inode = ?8 WHERE key = ?1",
            )?;
            for item in items {
                let fp = item.fingerprint;
                stmt.execute(params![
                    item.key,
                    item.archive_id,
                    &item.hash.sha1[..],
                    &item.hash.tree_hash[..],
                    fp.size as i64,
                    fp.mtime_ns,
                    fp.ctime_ns,
                    fp.inode as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Closes the journal entries of `ended` and caches the fingerprints of the
    /// files recorded, in one transaction.
    pub fn finish_uploads(
        &self,
        ended: &[&str],
        recorded: &[(String, Fingerprint, ContentHash)],
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            // Packed files never have an entry: with none open (a first backup of
            // small files), no statement per file.
            let open: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM upload_journal)")?
                .query_row([], |row| row.get(0))?;
            if open {
                let mut end = tx.prepare_cached("DELETE FROM upload_journal WHERE key = ?1")?;
                for key in ended {
                    end.execute([key])?;
                }
            }
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO fingerprint (key, size, mtime_ns, ctime_ns, inode, sha1, tree_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (key, fp, hash) in recorded {
                put.execute(params![
                    key,
                    fp.size as i64,
                    fp.mtime_ns,
                    fp.ctime_ns,
                    fp.inode as i64,
                    &hash.sha1[..],
                    &hash.tree_hash[..]
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn journal_end(&self, key: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM upload_journal WHERE key = ?1", [key])?;
        Ok(())
    }

    pub fn journal(&self) -> Result<Vec<JournalEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT key, raw, size, mtime_ns, ctime_ns, inode, started_at, archive_id, sha1, tree_hash
             FROM upload_journal ORDER BY key",
        )?;
        let rows = stmt.query_map([], |row| {
            let size: i64 = row.get(2)?;
            let sha1: Option<Sha1Digest> = blob::<20>(row.get(8)?);
            let tree: Option<TreeHash> = blob::<32>(row.get(9)?);
            Ok(JournalEntry {
                key: row.get(0)?,
                raw: row.get(1)?,
                fingerprint: Fingerprint {
                    size: size as u64,
                    mtime_ns: row.get(3)?,
                    ctime_ns: row.get(4)?,
                    inode: row.get::<_, i64>(5)? as u64,
                },
                started_at: row.get(6)?,
                archive_id: row.get(7)?,
                hash: sha1.zip(tree).map(|(sha1, tree_hash)| ContentHash {
                    size: size as u64,
                    sha1,
                    tree_hash,
                }),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
