//! What happens to a superseded archive: kept, deleted at once, or deleted once it
//! is older than N days (Glacier bills deletion within 90 days of upload).
//! Applied only after the successor is recorded.

use anyhow::Result;
use serde::Serialize;

use super::Engine;
use crate::catalog::Catalog as _;
use crate::catalog::{ArchiveRecord, ArchiveState};
use crate::model::now_secs;
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionReport {
    pub deleted: u64,
    pub kept: u64,
    pub failed: Vec<String>,
}

impl Engine {
    /// Applies the policy to one superseded archive; returns whether it was deleted.
    pub(super) async fn apply_retention_to(
        &self,
        record: &ArchiveRecord,
        now: i64,
    ) -> Result<bool> {
        if record.state == ArchiveState::Current
            || !self.retention.is_due(record.uploaded_at, now)
            || !self.holds(record)
        {
            return Ok(false);
        }
        self.delete_archive(record).await?;
        Ok(true)
    }

    /// Applies the policy to every superseded archive of the set. Records an older
    /// firn left `deleting` (it marked the catalog before asking the store) are
    /// deleted whatever the policy; deletions are journaled in local state now
    /// (see `delete.rs`).
    pub async fn sweep_superseded(&self) -> Result<RetentionReport> {
        let now = now_secs();
        let mut report = RetentionReport::default();
        // Only the versions that are not current: at one record per file, loading
        // every current version too would cost more memory than the whole status.
        for record in self.catalog.superseded().await? {
            // Another store's archives are not this store's to delete.
            if !self.holds(&record) {
                if record.state != ArchiveState::Current {
                    report.kept += 1;
                }
                continue;
            }
            let due = match record.state {
                ArchiveState::Current => continue,
                ArchiveState::Deleting => true,
                ArchiveState::Superseded => self.retention.is_due(record.uploaded_at, now),
            };
            if !due {
                report.kept += 1;
                continue;
            }
            match self.delete_archive(&record).await {
                Ok(()) => report.deleted += 1,
                Err(e) => report
                    .failed
                    .push(format!("{} ({}): {e:#}", record.key, record.archive_id)),
            }
        }
        Ok(report)
    }
}
