//! The inventory job this set waits for, and reports saved by name (the last
//! reconciliation).

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::LocalState;

/// The inventory job this set is waiting for (or read last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryJob {
    pub job_id: String,
    pub requested_at: i64,
}

impl LocalState {
    pub fn inventory_job(&self) -> Result<Option<InventoryJob>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT job_id, requested_at FROM inventory_job WHERE id = 1",
                [],
                |row| {
                    Ok(InventoryJob {
                        job_id: row.get(0)?,
                        requested_at: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn put_inventory_job(&self, job: &InventoryJob) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO inventory_job (id, job_id, requested_at) VALUES (1, ?1, ?2)",
            params![job.job_id, job.requested_at],
        )?;
        Ok(())
    }

    pub fn forget_inventory_job(&self) -> Result<()> {
        self.conn().execute("DELETE FROM inventory_job", [])?;
        Ok(())
    }

    /// Saves a report (JSON) under a name, replacing the previous one.
    pub fn put_report(&self, name: &str, body: &str, now: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO report (name, body, saved_at) VALUES (?1, ?2, ?3)",
            params![name, body, now],
        )?;
        Ok(())
    }

    pub fn report(&self, name: &str) -> Result<Option<String>> {
        let conn = self.conn();
        Ok(conn
            .query_row("SELECT body FROM report WHERE name = ?1", [name], |row| {
                row.get(0)
            })
            .optional()?)
    }
}
