//! A migration's copies in progress, one row per archive of the previous store,
//! in the one table of retrieval jobs (see `schema.rs`).

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::{LocalState, blob};
use crate::model::{Sha1Digest, Tier, TreeHash};

/// One archive a migration is copying out of the set's previous store: the
/// retrieval job it requested (kept, so no rerun pays for another), and once the
/// new store holds the copy durably, the copy (recorded by the next run when
/// this one stops before the catalog has it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRecord {
    /// The archive in the previous store.
    pub archive_id: String,
    /// The previous store's target.
    pub source: String,
    pub key: String,
    pub size: u64,
    pub job_id: Option<String>,
    pub tier: Tier,
    pub requested_at: i64,
    /// When the store first said the job's output was ready.
    pub ready_at: Option<i64>,
    pub copy: Option<MigratedCopy>,
}

/// The copy a migration stored in the new store, with the hashes of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigratedCopy {
    pub archive_id: String,
    pub sha1: Sha1Digest,
    pub tree_hash: TreeHash,
}

const MIGRATION_COLUMNS: &str = "archive_id, source, key, size, job_id, tier, requested_at, ready_at, copy_id, copy_sha1, copy_tree_hash";

fn migration_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MigrationRecord> {
    let copy_id: Option<String> = row.get(8)?;
    let sha1 = blob::<20>(row.get(9)?);
    let tree_hash = blob::<32>(row.get(10)?);
    Ok(MigrationRecord {
        archive_id: row.get(0)?,
        source: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
        key: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        job_id: row.get(4)?,
        tier: Tier::from_saved(&row.get::<_, String>(5)?),
        requested_at: row.get(6)?,
        ready_at: row.get(7)?,
        copy: match (copy_id, sha1, tree_hash) {
            (Some(archive_id), Some(sha1), Some(tree_hash)) => Some(MigratedCopy {
                archive_id,
                sha1,
                tree_hash,
            }),
            _ => None,
        },
    })
}

impl LocalState {
    pub fn migration(&self, archive_id: &str) -> Result<Option<MigrationRecord>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {MIGRATION_COLUMNS} FROM retrieval_job
                     WHERE archive_id = ?1 AND purpose = 'migrate'"
                ),
                [archive_id],
                migration_row,
            )
            .optional()?)
    }

    /// Every copy in progress, in key order.
    pub fn migrations(&self) -> Result<Vec<MigrationRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {MIGRATION_COLUMNS} FROM retrieval_job WHERE purpose = 'migrate'
             ORDER BY key, archive_id"
        ))?;
        let rows = stmt.query_map([], migration_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn put_migration(&self, record: &MigrationRecord) -> Result<()> {
        self.put_migrations(&[record])
    }

    /// Saves many rows in one transaction (a batch of copies journaled).
    pub fn put_migrations(&self, records: &[&MigrationRecord]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO retrieval_job (purpose, {MIGRATION_COLUMNS})
                 VALUES ('migrate', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))?;
            for record in records {
                let copy = record.copy.as_ref();
                stmt.execute(params![
                    record.archive_id,
                    record.source,
                    record.key,
                    record.size as i64,
                    record.job_id,
                    record.tier.as_str(),
                    record.requested_at,
                    record.ready_at,
                    copy.map(|c| c.archive_id.as_str()),
                    copy.map(|c| c.sha1.to_vec()),
                    copy.map(|c| c.tree_hash.to_vec()),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets many rows in one transaction (a batch of copies recorded).
    pub fn forget_migrations(&self, archive_ids: &[&str]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "DELETE FROM retrieval_job WHERE archive_id = ?1 AND purpose = 'migrate'",
            )?;
            for id in archive_ids {
                stmt.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn forget_migration(&self, archive_id: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM retrieval_job WHERE archive_id = ?1 AND purpose = 'migrate'",
            [archive_id],
        )?;
        Ok(())
    }
}
