//! Retrieval jobs of restores, one per archive, kept so no rerun requests (and
//! pays for) another while the store still keeps the job's output.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::LocalState;
use crate::model::Tier;

/// A retrieval job requested for one archive, kept so a restart picks it up again
/// instead of requesting (and paying for) another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievalRecord {
    pub archive_id: String,
    pub job_id: String,
    pub tier: Tier,
    pub requested_at: i64,
    /// The file it restores and the directory it restores under (empty for jobs
    /// from older versions).
    pub key: String,
    pub destination: Vec<u8>,
    pub size: u64,
    /// When the store first said the output was ready (its 24-hour window starts).
    pub ready_at: Option<i64>,
}

/// A restore's rows of the one table of retrieval jobs (see `schema.rs`).
const RETRIEVAL_COLUMNS: &str =
    "archive_id, job_id, tier, requested_at, key, destination, size, ready_at";

fn retrieval_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RetrievalRecord> {
    Ok(RetrievalRecord {
        archive_id: row.get(0)?,
        job_id: row.get(1)?,
        tier: Tier::from_saved(&row.get::<_, String>(2)?),
        requested_at: row.get(3)?,
        key: row.get(4)?,
        destination: row.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
        size: row.get::<_, i64>(6)? as u64,
        ready_at: row.get(7)?,
    })
}

impl LocalState {
    pub fn retrieval(&self, archive_id: &str) -> Result<Option<RetrievalRecord>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {RETRIEVAL_COLUMNS} FROM retrieval_job
                     WHERE archive_id = ?1 AND purpose = 'restore'"
                ),
                [archive_id],
                retrieval_row,
            )
            .optional()?)
    }

    /// Every retrieval job not yet downloaded, oldest first.
    pub fn retrievals(&self) -> Result<Vec<RetrievalRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {RETRIEVAL_COLUMNS} FROM retrieval_job WHERE purpose = 'restore'
             ORDER BY requested_at, key"
        ))?;
        let rows = stmt.query_map([], retrieval_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn put_retrieval(&self, record: &RetrievalRecord) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO retrieval_job (archive_id, purpose, job_id, tier,
                    requested_at, key, destination, size, ready_at)
             VALUES (?1, 'restore', ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.archive_id,
                record.job_id,
                record.tier.as_str(),
                record.requested_at,
                record.key,
                record.destination,
                record.size as i64,
                record.ready_at
            ],
        )?;
        Ok(())
    }

    pub fn forget_retrieval(&self, archive_id: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM retrieval_job WHERE archive_id = ?1 AND purpose = 'restore'",
            [archive_id],
        )?;
        Ok(())
    }
}
