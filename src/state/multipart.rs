//! Resumable uploads (Glacier and S3 multipart): the store's token and the
//! fingerprint of the file as it was when the upload started.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::LocalState;
use crate::model::Fingerprint;

/// A resumable upload (Glacier multipart) of the file as it was when it started.
#[derive(Debug, Clone)]
pub struct MultipartRecord {
    pub key: String,
    pub token: String,
    pub fingerprint: Fingerprint,
    pub started_at: i64,
}

impl LocalState {
    /// The keys with a resumable upload (looked up once per run, not per file).
    pub fn multipart_keys(&self) -> Result<std::collections::HashSet<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT key FROM multipart")?;
        let keys = stmt
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(keys)
    }

    pub fn multipart(&self, key: &str) -> Result<Option<MultipartRecord>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT key, token, size, mtime_ns, ctime_ns, inode, started_at FROM multipart WHERE key = ?1",
                [key],
                |row| {
                    Ok(MultipartRecord {
                        key: row.get(0)?,
                        token: row.get(1)?,
                        fingerprint: Fingerprint {
                            size: row.get::<_, i64>(2)? as u64,
                            mtime_ns: row.get(3)?,
                            ctime_ns: row.get(4)?,
                            inode: row.get::<_, i64>(5)? as u64,
                        },
                        started_at: row.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn multipart_tokens(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT token FROM multipart")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn put_multipart(&self, key: &str, token: &str, fp: &Fingerprint, now: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO multipart (key, token, size, mtime_ns, ctime_ns, inode, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![key, token, fp.size as i64, fp.mtime_ns, fp.ctime_ns, fp.inode as i64, now],
        )?;
        Ok(())
    }

    pub fn forget_multipart(&self, key: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM multipart WHERE key = ?1", [key])?;
        Ok(())
    }
}
