//! Taking up an interrupted migration: copies the new store holds but the
//! catalog does not record yet — journaled with their job, or (where the store
//! lists its archives) caught by a kill between the store's confirmation and the
//! journal, found by their self-describing record — are recorded instead of
//! being copied (and paid for) again.

use anyhow::{Result, bail};

use super::{MigrationReport, MigrationSource};
use crate::catalog::{ArchiveRecord, Catalog as _};
use crate::engine::RetrievalJobView;
use crate::engine::owners::{Owners, Whose};
use crate::engine::restore::{JobFacts, describe_job};
use crate::engine::{Engine, FailedFile};
use crate::model::{UNKNOWN_SHA1, UNKNOWN_TREE_HASH};
use crate::state::MigratedCopy;

impl Engine {
    /// Records the copies an interrupted run stored but did not record: the ones
    /// it journaled, and (where the new store can list its archives) the ones a
    /// kill caught between the store's confirmation and the journal, found by
    /// their self-describing record. Closes the entries the catalog has already.
    /// Returns the archives of the previous store whose copy is recorded now.
    pub(super) async fn record_journaled_copies(
        &self,
        report: &mut MigrationReport,
    ) -> std::collections::HashSet<String> {
        let mut recorded = std::collections::HashSet::new();
        let journaled = match self.state.migrations() {
            Ok(journaled) => journaled,
            Err(e) => {
                report.failed.push(FailedFile {
                    path: "(migration journal)".into(),
                    reason: format!("{e:#}"),
                });
                return recorded;
            }
        };
        // A job seen ready may have had its copy stored before the kill.
        let maybe_stored = journaled
            .iter()
            .any(|j| j.copy.is_none() && j.ready_at.is_some());
        let listing = if maybe_stored && self.store.can_list() {
            self.store.list().await.ok().flatten().map(|archives| {
                // Only this set's archives can be its copies.
                let owners = Owners::of(&archives, &self.owner);
                archives
                    .into_iter()
                    .filter(|a| owners.whose(a) == Whose::Mine)
                    .collect::<Vec<_>>()
            })
        } else {
            None
        };
        for entry in journaled {
            let result = async {
                let Some(original) = self.journaled_original(&entry).await? else {
                    if let Some(copy) = &entry.copy {
                        bail!(
                            "the catalog no longer has archive {} of {} (copied as {}; `firn inventory` adopts the copy)",
                            entry.archive_id,
                            entry.key,
                            copy.archive_id
                        );
                    }
                    // Deleted meanwhile: nothing to copy any more.
                    return self.state.forget_migration(&entry.archive_id);
                };
                let copy = match &entry.copy {
                    Some(copy) => Some(copy.clone()),
                    None if entry.ready_at.is_some() => match &listing {
                        Some(listing) => self.stray_copy(&original, listing).await?,
                        None => None,
                    },
                    None => None,
                };
                let Some(copy) = copy else {
                    // Not stored: the job is taken up again below.
                    return Ok(());
                };
                if self.catalog.find_archive(&copy.archive_id).await?.is_none() {
                    self.record_copy(&original, &copy).await?;
                    report.recorded_from_earlier_run += 1;
                }
                recorded.insert(entry.archive_id.clone());
                self.state.forget_migration(&entry.archive_id)
            }
            .await;
            if let Err(e) = result {
                report.failed.push(FailedFile {
                    path: entry.key.clone(),
                    reason: format!("{e:#}"),
                });
            }
        }
        recorded
    }

    /// The record a journal row copies: by its archive id, and for a packed
    /// file (a row keyed by the pack's id and the file's place in it) the
    /// version of its key at that place.
    async fn journaled_original(
        &self,
        entry: &crate::state::MigrationRecord,
    ) -> Result<Option<ArchiveRecord>> {
        if let Some(record) = self.catalog.find_archive(&entry.archive_id).await?
            && record.pack.is_none()
        {
            return Ok(Some(record));
        }
        Ok(self
            .catalog
            .versions(&entry.key)
            .await?
            .into_iter()
            .find(|record| super::journal_key(record) == entry.archive_id))
    }

    /// An archive of the new store that nothing records and whose description
    /// and checksum say it is a copy of `original`.
    async fn stray_copy(
        &self,
        original: &ArchiveRecord,
        listing: &[crate::store::ArchiveListing],
    ) -> Result<Option<MigratedCopy>> {
        for archive in listing {
            let Ok(description) = crate::description::decode(&archive.description) else {
                continue;
            };
            if description.key.as_deref() != Some(original.key.as_str())
                || description.mtime_ns != original.mtime_ns
            {
                continue;
            }
            let (size, tree_hash) = archive.content(description.size);
            let sha1 = description.sha1.unwrap_or(original.sha1);
            let same = size == original.size
                && (original.tree_hash == UNKNOWN_TREE_HASH || tree_hash == original.tree_hash)
                && (original.sha1 == UNKNOWN_SHA1 || sha1 == original.sha1)
                && (original.tree_hash != UNKNOWN_TREE_HASH || original.sha1 != UNKNOWN_SHA1);
            if !same
                || self
                    .catalog
                    .find_archive(&archive.archive_id)
                    .await?
                    .is_some()
            {
                continue;
            }
            return Ok(Some(MigratedCopy {
                archive_id: archive.archive_id.clone(),
                sha1,
                tree_hash,
            }));
        }
        Ok(None)
    }

    /// Whether a migration left retrieval jobs not copied yet.
    pub fn has_migration_jobs(&self) -> Result<bool> {
        Ok(self.state.migrations()?.iter().any(|j| j.job_id.is_some()))
    }

    /// The retrieval jobs a migration requested from `source` and has not
    /// copied yet, with the store's word on each (as `firn jobs` shows them).
    pub async fn migration_jobs(&self, source: &MigrationSource) -> Result<Vec<RetrievalJobView>> {
        let mut views = Vec::new();
        let target = source.target();
        // The files of one pack share its job: it is listed once.
        let mut seen = std::collections::HashSet::new();
        for mut job in self.state.migrations()? {
            let Some(job_id) = job.job_id.clone() else {
                continue;
            };
            if job.source != target || !seen.insert(job_id.clone()) {
                continue;
            }
            // A packed file's row names the pack and its place: the job is
            // the pack's.
            let archive_id = match self.journaled_original(&job).await {
                Ok(Some(original)) => original.archive_id,
                _ => job.archive_id.clone(),
            };
            let facts = JobFacts {
                key: &job.key,
                archive_id: &archive_id,
                job_id: &job_id,
                tier: job.tier,
                size: job.size,
                destination: format!("migration into {}", self.store.target()),
                requested_at: job.requested_at,
                ready_at: job.ready_at,
            };
            let (view, ready_at) = describe_job(source.store.as_ref(), facts).await;
            if ready_at != job.ready_at {
                job.ready_at = ready_at;
                self.state.put_migration(&job)?;
            }
            views.push(view);
        }
        Ok(views)
    }
}
