//! What happens to a superseded archive: kept, deleted at once, or deleted once it
//! is older than N days (Glacier bills deletion within 90 days of upload).
//! Applied only after the successor is recorded.

use std::fmt;
use std::str::FromStr;

use anyhow::Result;
use serde::Serialize;

use super::Engine;
use crate::catalog::{ArchiveRecord, ArchiveState};
use crate::store::local::now_secs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Keep,
    Delete,
    AfterDays(u32),
}

impl Default for Retention {
    fn default() -> Self {
        Retention::AfterDays(90)
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::Keep => f.write_str("keep"),
            Retention::Delete => f.write_str("delete"),
            Retention::AfterDays(days) => write!(f, "after-days {days}"),
        }
    }
}

impl FromStr for Retention {
    type Err = String;

    /// `keep`, `delete`, or `after-days N` (also `after-days=N`, `after-days:N`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "keep" => return Ok(Retention::Keep),
            "delete" => return Ok(Retention::Delete),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("after-days") {
            let days = rest.trim_start_matches([' ', '=', ':']).trim();
            if let Ok(days) = days.parse::<u32>() {
                return Ok(Retention::AfterDays(days));
            }
        }
        Err(format!(
            "invalid retention {s:?}: use `keep`, `delete` or `after-days N` (for example `after-days 90`)"
        ))
    }
}

impl Retention {
    /// Whether a superseded archive uploaded at `uploaded_at` is due for deletion.
    pub fn is_due(self, uploaded_at: i64, now: i64) -> bool {
        match self {
            Retention::Keep => false,
            Retention::Delete => true,
            Retention::AfterDays(days) => {
                now.saturating_sub(uploaded_at) >= i64::from(days) * 86_400
            }
        }
    }
}

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
        if record.state == ArchiveState::Current || !self.retention.is_due(record.uploaded_at, now)
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
        for record in self.catalog.records().await? {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies() {
        assert_eq!("keep".parse(), Ok(Retention::Keep));
        assert_eq!("delete".parse(), Ok(Retention::Delete));
        assert_eq!("after-days 30".parse(), Ok(Retention::AfterDays(30)));
        assert_eq!("after-days=7".parse(), Ok(Retention::AfterDays(7)));
        assert!("sometimes".parse::<Retention>().is_err());
    }

    #[test]
    fn after_days_counts_from_upload() {
        let day = 86_400;
        assert!(!Retention::AfterDays(90).is_due(0, 89 * day));
        assert!(Retention::AfterDays(90).is_due(0, 90 * day));
        assert!(!Retention::Keep.is_due(0, 1000 * day));
        assert!(Retention::Delete.is_due(0, 0));
    }
}
