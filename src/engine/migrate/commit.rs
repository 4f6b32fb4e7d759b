//! Recording a batch of retrieved copies, in the uploads' order (invariant 1):
//! the new store makes the batch durable, local state journals each copy with
//! its job (one transaction), the catalog records the batch (the current
//! versions in one write, each conditional on its original), the journal rows
//! close (one transaction), and only then is each copy reported done. A kill
//! before the journal leaves the jobs (the next run copies again, or finds the
//! copies by their description); after it, the next run records the copies.

use anyhow::Result;

use super::{MigrationReport, Retrieval, fail};
use crate::catalog::{ArchiveRecord, ArchiveState, Catalog as _, Conflict};
use crate::engine::{Engine, Event, Progress, fault_point};
use crate::model::now_secs;
use crate::state::{MigratedCopy, MigrationRecord};

impl Engine {
    /// Commits the copies a batch stored (see the module docs).
    pub(super) async fn commit_copies(
        &self,
        stored: Vec<Retrieval>,
        progress: &Progress,
        report: &mut MigrationReport,
    ) {
        if stored.is_empty() {
            return;
        }
        if let Err(e) = self.journal_copies(&stored).await {
            // Not durable, or not journaled: the jobs are kept, and the next run
            // copies again (or finds what is durable by its description).
            let reason = format!("{e:#}");
            for item in stored {
                let e = anyhow::anyhow!("{reason}");
                fail(progress, report, item.id, &item.record.key, e).await;
            }
            return;
        }
        fault_point("migrate-journaled");
        let recorded = self.record_copies(&stored).await;
        fault_point("migrate-recorded");
        let mut closed: Vec<&str> = Vec::with_capacity(stored.len());
        let mut done = Vec::with_capacity(stored.len());
        for (item, result) in stored.iter().zip(recorded) {
            match result {
                Ok(()) => {
                    closed.push(&item.job.archive_id);
                    done.push(item);
                }
                // The journal keeps the copy: the next run records it.
                Err(e) => fail(progress, report, item.id, &item.record.key, e).await,
            }
        }
        if let Err(e) = self.state.forget_migrations(&closed) {
            // Recorded all the same; the next run sees the catalog has them.
            progress
                .send(Event::Note(format!(
                    "cannot close the migration journal: {e:#}"
                )))
                .await;
        }
        for item in done {
            report.retrieved.files += 1;
            report.retrieved.bytes += item.record.size;
            let archive_id = item
                .job
                .copy
                .as_ref()
                .map(|c| c.archive_id.clone())
                .unwrap_or_default();
            progress
                .send(Event::Done {
                    id: item.id,
                    archive_id,
                })
                .await;
        }
    }

    /// Steps 1 and 2: the batch durable in the new store, then journaled.
    async fn journal_copies(&self, stored: &[Retrieval]) -> Result<()> {
        self.store.make_durable().await?;
        let rows: Vec<&MigrationRecord> = stored.iter().map(|item| &item.job).collect();
        self.state.put_migrations(&rows)
    }

    /// Step 3: every copy recorded (the current versions' in one write), a
    /// result per copy in order.
    async fn record_copies(&self, stored: &[Retrieval]) -> Vec<Result<()>> {
        let mut results: Vec<Option<Result<()>>> = stored.iter().map(|_| None).collect();
        let mut uploads = Vec::new();
        let mut at = Vec::new();
        for (i, item) in stored.iter().enumerate() {
            let Some(copy) = &item.job.copy else {
                results[i] = Some(Err(anyhow::anyhow!(
                    "no copy of {} was stored",
                    item.record.key
                )));
                continue;
            };
            let record = self.copy_record(&item.record, copy);
            if item.record.state == ArchiveState::Current {
                uploads.push((record, Some(item.record.archive_id.clone())));
                at.push(i);
            } else {
                results[i] = Some(self.catalog.record_superseded(&record).await);
            }
        }
        if !uploads.is_empty() {
            match self.catalog.record_uploads(&uploads).await {
                Ok(outcomes) => {
                    for ((i, outcome), (record, _)) in at.into_iter().zip(outcomes).zip(uploads) {
                        results[i] = Some(match outcome {
                            Ok(()) => Ok(()),
                            Err(e) if e.downcast_ref::<Conflict>().is_some() => {
                                self.record_as_older(record).await
                            }
                            Err(e) => Err(e),
                        });
                    }
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    for i in at {
                        results[i] = Some(Err(anyhow::anyhow!("{reason}")));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("not recorded"))))
            .collect()
    }

    /// Records one copy (what an interrupted run stored): the current version's
    /// copy replaces it as current (the original becomes superseded, the
    /// history kept); an older version's copy is recorded beside it.
    pub(super) async fn record_copy(
        &self,
        original: &ArchiveRecord,
        copy: &MigratedCopy,
    ) -> Result<()> {
        let record = self.copy_record(original, copy);
        if original.state != ArchiveState::Current {
            return self.catalog.record_superseded(&record).await;
        }
        match self
            .catalog
            .record_upload(&record, Some(&original.archive_id))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.downcast_ref::<Conflict>().is_some() => self.record_as_older(record).await,
            Err(e) => Err(e),
        }
    }

    /// The record of a copy in the new store: the original's file, the copy's
    /// archive and hashes, the original's state.
    fn copy_record(&self, original: &ArchiveRecord, copy: &MigratedCopy) -> ArchiveRecord {
        ArchiveRecord {
            key: original.key.clone(),
            raw: original.raw.clone(),
            size: original.size,
            mtime_ns: original.mtime_ns,
            sha1: copy.sha1,
            tree_hash: copy.tree_hash,
            archive_id: copy.archive_id.clone(),
            target: self.store.target(),
            uploaded_at: now_secs(),
            state: original.state,
            host: self.host.clone(),
            superseded_at: original.superseded_at,
            pack: None,
        }
    }

    /// A newer version was recorded meanwhile: the copy is an older one.
    async fn record_as_older(&self, record: ArchiveRecord) -> Result<()> {
        let superseded = ArchiveRecord {
            state: ArchiveState::Superseded,
            superseded_at: Some(now_secs()),
            ..record
        };
        self.catalog.record_superseded(&superseded).await
    }
}
