//! Backup: what a run does with each file status found (the plan), and the
//! uploads themselves.
//!
//! Order of every upload (invariants 1, 2 and 4 in the crate docs):
//! 1. journal the intent in local state;
//! 2. read the file once, hashing exactly the bytes sent to the store;
//! 3. refuse it if size, mtime or ctime moved while it was read;
//! 4. let the store confirm it and compare the store's tree hash with ours;
//! 5. journal the archive id, then record it in the catalog (conditionally on the
//!    current version this run saw), then close the journal;
//! 6. only then apply the retention policy to the version it superseded.
//!
//! A crash anywhere leaves either the old archive current, or the new one, and the
//! journal lets the next run find and account for an archive stored but not recorded.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Engine, Event, Progress, RecoveryReport, TaskId, fault_point};
use crate::catalog::{ArchiveRecord, ArchiveState, Catalog as _, Conflict};
use crate::description;
use crate::hash::{self, ContentHasher, ReadCounters};
use crate::model::now_secs;
use crate::model::{Entry, Fingerprint, Status};
use crate::status::StatusReport;

/// A file a backup may act on, as status saw it: the one description both front
/// ends give [`Engine::plan`], which alone decides what a backup does with it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The task id its upload will report under (None: the engine assigns one).
    pub id: Option<TaskId>,
    pub key: String,
    pub raw: Option<Box<[u8]>>,
    pub size: u64,
    pub mtime_ns: i64,
    /// New or changed: its content goes to the store.
    pub pending: bool,
    /// Up to date by content, but its mtime differs from the archived version's.
    pub mtime_moved: bool,
    /// Cancels this file alone (the job's progress token cancels all of them).
    pub cancel: Option<CancellationToken>,
}

impl Candidate {
    /// The candidate a status entry makes, if it is a local regular file.
    pub fn of(entry: &Entry) -> Option<Candidate> {
        let pending = entry.status.is_pending();
        if !pending && entry.status != Status::UpToDate {
            return None;
        }
        Some(Candidate {
            id: None,
            key: entry.key.clone(),
            raw: entry.raw.clone(),
            size: entry.fingerprint.size,
            mtime_ns: entry.fingerprint.mtime_ns,
            pending,
            mtime_moved: entry
                .archived
                .is_some_and(|a| a.mtime_ns != entry.fingerprint.mtime_ns),
            cancel: None,
        })
    }
}

/// One file to upload, with the id its progress events carry.
#[derive(Debug, Clone)]
pub struct UploadItem {
    pub id: TaskId,
    pub key: String,
    pub raw: Option<Box<[u8]>>,
    /// The size status saw (the upload re-reads the file's metadata itself).
    pub size: u64,
    /// Cancels this upload alone (the job's token cancels all of them).
    pub cancel: Option<CancellationToken>,
}

/// What a backup will do.
#[derive(Debug, Default)]
pub struct Plan {
    pub uploads: Vec<UploadItem>,
    /// Up-to-date files whose mtime moved: the catalog's mtime is updated instead.
    pub mtime_updates: Vec<(String, i64)>,
}

impl Plan {
    pub fn bytes(&self) -> u64 {
        self.uploads.iter().map(|u| u.size).sum()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FailedFile {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupSummary {
    pub uploaded_files: u64,
    pub uploaded_bytes: u64,
    pub mtimes_updated: u64,
    pub failed: Vec<FailedFile>,
    pub cancelled: u64,
    pub superseded_deleted: u64,
    pub superseded_kept: u64,
    pub recovered: u64,
    /// Deletions an interrupted run left, finished before this backup.
    pub deletions_finished: u64,
    pub orphans: Vec<String>,
    /// File content read by this process (status and backup together).
    pub files_read: u64,
    pub bytes_read: u64,
}

impl BackupSummary {
    /// Counts what the recovery before this backup found.
    pub fn add_recovery(&mut self, recovery: &RecoveryReport) {
        self.recovered = recovery.found() as u64;
        self.deletions_finished = recovery.deletions_finished.len() as u64;
        self.orphans = recovery.unresolved.clone();
    }

    /// Files that did not end backed up: the run reports failure (exit 1).
    pub fn has_failures(&self) -> bool {
        !self.failed.is_empty() || self.cancelled > 0
    }
}

/// One upload recorded in the catalog.
struct Uploaded {
    archive_id: String,
    /// The version it replaced was deleted at once by the retention policy.
    superseded_deleted: bool,
}

/// Why one upload did not end in a recorded archive.
#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Engine {
    /// What a backup does with each candidate, the one rule for both front ends:
    /// new and changed files are uploaded; an up-to-date file whose mtime moved
    /// only has its catalog mtime updated; nothing else is touched. Each upload
    /// gets a task id its progress events carry.
    pub fn plan(&self, candidates: impl IntoIterator<Item = Candidate>) -> Plan {
        let mut plan = Plan::default();
        let mut uploads = Vec::new();
        for candidate in candidates {
            if candidate.pending {
                uploads.push(candidate);
            } else if candidate.mtime_moved {
                plan.mtime_updates.push((candidate.key, candidate.mtime_ns));
            }
        }
        plan.uploads = uploads
            .into_iter()
            .map(|c| UploadItem {
                id: c.id.unwrap_or_else(|| self.task_ids.next()),
                key: c.key,
                raw: c.raw,
                size: c.size,
                cancel: c.cancel,
            })
            .collect();
        plan
    }

    /// The plan for everything a status report found to back up.
    pub fn plan_report(&self, report: &StatusReport) -> Plan {
        self.plan(report.entries.iter().filter_map(Candidate::of))
    }

    /// Runs one backup job: uploads `plan` (up to `concurrency` at once), then
    /// applies the retention policy to every superseded archive, and sums both up.
    /// Files not started when the job is cancelled are reported cancelled at once;
    /// only uploads in flight are awaited.
    pub async fn backup(self: &Arc<Self>, plan: Plan, progress: &Progress) -> BackupSummary {
        let mut summary = self.upload_all(plan, progress).await;
        if progress.is_cancelled() {
            // Stopping (Ctrl-C, quitting the UI): the sweep runs with the next backup.
            return summary;
        }
        match self.sweep_superseded().await {
            Ok(retention) => {
                summary.superseded_deleted += retention.deleted;
                summary.superseded_kept = retention.kept;
                for failure in retention.failed {
                    summary.failed.push(FailedFile {
                        path: "(retention)".into(),
                        reason: failure,
                    });
                }
            }
            Err(e) => summary.failed.push(FailedFile {
                path: "(retention)".into(),
                reason: format!("{e:#}"),
            }),
        }
        summary
    }

    async fn upload_all(self: &Arc<Self>, plan: Plan, progress: &Progress) -> BackupSummary {
        let reads_before = ReadCounters::now();
        let mut summary = BackupSummary::default();
        for (key, mtime_ns) in &plan.mtime_updates {
            match self.update_mtime(key, *mtime_ns).await {
                Ok(()) => summary.mtimes_updated += 1,
                Err(e) => summary.failed.push(FailedFile {
                    path: key.clone(),
                    reason: format!("cannot update mtime: {e:#}"),
                }),
            }
        }
        for item in &plan.uploads {
            let queued = Event::Queued {
                id: item.id,
                key: item.key.clone(),
                bytes: item.size,
            };
            progress.send(queued).await;
        }
        // Only `concurrency` tasks exist at a time, so memory does not grow with
        // the number of files to upload.
        let mut waiting = plan.uploads.into_iter();
        let mut tasks = JoinSet::new();
        loop {
            while tasks.len() < self.concurrency {
                let Some(item) = waiting.next() else {
                    break;
                };
                if progress.is_cancelled() || item.cancel.as_ref().is_some_and(|c| c.is_cancelled())
                {
                    summary.cancelled += 1;
                    progress.send(Event::Cancelled { id: item.id }).await;
                    continue;
                }
                let engine = Arc::clone(self);
                let progress = progress.clone();
                tasks.spawn(async move {
                    let id = item.id;
                    progress.send(Event::Started { id }).await;
                    let outcome = engine.upload(&item, &progress).await;
                    let event = match &outcome {
                        Ok(uploaded) => Event::Done {
                            id,
                            archive_id: uploaded.archive_id.clone(),
                        },
                        Err(UploadError::Cancelled) => Event::Cancelled { id },
                        Err(e) => Event::Failed {
                            id,
                            reason: format!("{e:#}"),
                        },
                    };
                    progress.send(event).await;
                    (item, outcome)
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            match joined {
                Ok((item, Ok(uploaded))) => {
                    summary.uploaded_files += 1;
                    summary.uploaded_bytes += item.size;
                    summary.superseded_deleted += u64::from(uploaded.superseded_deleted);
                }
                Ok((_, Err(UploadError::Cancelled))) => summary.cancelled += 1,
                Ok((item, Err(UploadError::Other(e)))) => summary.failed.push(FailedFile {
                    path: item.key,
                    reason: format!("{e:#}"),
                }),
                Err(join_error) => summary.failed.push(FailedFile {
                    path: "?".into(),
                    reason: format!("upload task failed: {join_error}"),
                }),
            }
        }
        summary.failed.sort_by(|a, b| a.path.cmp(&b.path));
        let reads = ReadCounters::now().since(reads_before);
        summary.files_read = reads.files_read;
        summary.bytes_read = reads.bytes_read;
        summary
    }

    async fn update_mtime(&self, key: &str, mtime_ns: i64) -> Result<()> {
        if let Some(current) = self.catalog.current(key).await? {
            self.catalog
                .update_mtime(key, &current.archive_id, mtime_ns)
                .await?;
        }
        Ok(())
    }

    async fn upload(
        &self,
        item: &UploadItem,
        progress: &Progress,
    ) -> Result<Uploaded, UploadError> {
        let id = item.id;
        let path = match &item.raw {
            Some(raw) => self
                .root
                .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(raw)),
            None => self.root.join(&item.key),
        };
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || -> std::io::Result<(std::fs::File, Fingerprint)> {
                let file = std::fs::File::open(&path)?;
                let fingerprint = Fingerprint::of(&file.metadata()?);
                Ok((file, fingerprint))
            })
            .await
            .context("open task failed")?
        };
        let (file, before) = opened.map_err(|e| {
            anyhow::anyhow!(
                "cannot read {}: {}",
                path.display(),
                crate::scan::describe_io_error(&e)
            )
        })?;
        hash::count_file_opened();

        let replaces = self.catalog.current(&item.key).await?;
        self.state
            .journal_begin(&item.key, item.raw.as_deref(), &before, now_secs())?;

        let (mut upload, already_stored) = self.open_upload(item, &before).await?;
        let part_size = self.store.part_size(before.size).max(1);
        let mut reader = Some((file, ContentHasher::new()));
        let mut offset = 0u64;
        let read_result: Result<(), UploadError> = async {
            loop {
                if progress.is_cancelled() || item.cancel.as_ref().is_some_and(|c| c.is_cancelled())
                {
                    return Err(UploadError::Cancelled);
                }
                // Read a part only once the store can take it: part buffers stay
                // within its memory budget (invariant 8).
                upload.reserve(part_size as u64).await?;
                let (mut file, mut hasher) = reader.take().context("reader lost")?;
                let (file, hasher, chunk) =
                    tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                        let mut buf = vec![0u8; part_size];
                        let n = hash::read_full(&mut file, &mut buf)?;
                        buf.truncate(n);
                        // The bytes hashed here are exactly the bytes sent below.
                        hasher.update(&buf);
                        Ok((file, hasher, Bytes::from(buf)))
                    })
                    .await
                    .context("read task failed")?
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let n = chunk.len() as u64;
                reader = Some((file, hasher));
                if n == 0 {
                    return Ok(());
                }
                // A part an interrupted run already delivered is sent again only
                // if its bytes differ from what the store holds.
                let delivered = already_stored.iter().any(|p| p.holds(offset, &chunk));
                if !delivered {
                    upload.send(offset, chunk).await?;
                }
                offset += n;
                progress.send(Event::Advanced { id, bytes: n }).await;
            }
        }
        .await;
        let (file, hasher) = match (read_result, reader) {
            (Ok(()), Some(reader)) => reader,
            (result, _) => {
                let error = result
                    .err()
                    .unwrap_or_else(|| anyhow::anyhow!("reader lost").into());
                // A resumable upload that failed on the network is picked up by the
                // next run; anything else is abandoned now.
                if matches!(error, UploadError::Cancelled) || upload.resume_token().is_none() {
                    let _ = upload.abort().await;
                    let _ = self.state.forget_multipart(&item.key);
                }
                let _ = self.state.journal_end(&item.key);
                return Err(error);
            }
        };
        let after = Fingerprint::of(&file.metadata().context("cannot stat file after reading")?);
        let content = hasher.finish();
        if !after.same_content_stamp(&before) || content.size != before.size {
            let _ = upload.abort().await;
            let _ = self.state.forget_multipart(&item.key);
            let _ = self.state.journal_end(&item.key);
            return Err(anyhow::anyhow!("{} changed while it was read (size, mtime or ctime moved); not recorded, it will be tried again next run", item.key).into());
        }

        let description = description::encode_within(
            &item.key,
            item.raw.as_deref(),
            content.size,
            before.mtime_ns,
            Some(&content.sha1),
            None,
            self.store.description_limit(),
        );
        let stored = upload
            .complete(content.size, content.tree_hash, &description)
            .await;
        // Completed or refused, this upload cannot be resumed any more.
        let _ = self.state.forget_multipart(&item.key);
        let stored = stored?;
        if stored.tree_hash != content.tree_hash || stored.size != content.size {
            // Never record what the store did not confirm byte for byte.
            let _ = self.store.delete(&stored.archive_id).await;
            let _ = self.state.journal_end(&item.key);
            return Err(anyhow::anyhow!(
                "store reported tree hash {} for {}, computed {}; archive discarded",
                hex::encode(stored.tree_hash),
                item.key,
                hex::encode(content.tree_hash)
            )
            .into());
        }
        fault_point("after-store");
        self.state
            .journal_stored(&item.key, &stored.archive_id, &content)?;

        let record = ArchiveRecord {
            key: item.key.clone(),
            raw: item.raw.as_ref().map(|r| r.to_vec()),
            size: content.size,
            mtime_ns: before.mtime_ns,
            sha1: content.sha1,
            tree_hash: content.tree_hash,
            archive_id: stored.archive_id.clone(),
            target: self.store.target(),
            uploaded_at: now_secs(),
            state: ArchiveState::Current,
            host: self.host.clone(),
            superseded_at: None,
        };
        if let Err(e) = self
            .catalog
            .record_upload(&record, replaces.as_ref().map(|r| r.archive_id.as_str()))
            .await
        {
            if e.downcast_ref::<Conflict>().is_some() {
                // Keep the archive accounted for; retention decides its fate.
                self.catalog.record_superseded(&record).await?;
                self.state.journal_end(&item.key)?;
            }
            return Err(e.into());
        }
        self.state.journal_end(&item.key)?;
        self.state
            .put_fingerprints(&[(item.key.clone(), before, content)])?;

        let mut superseded_deleted = false;
        if let Some(mut previous) = replaces {
            previous.state = ArchiveState::Superseded;
            previous.superseded_at = Some(record.uploaded_at);
            match self.apply_retention_to(&previous, now_secs()).await {
                Ok(deleted) => superseded_deleted = deleted,
                Err(e) => {
                    progress
                        .send(Event::Note(format!(
                            "retention of {} failed: {e:#}",
                            previous.archive_id
                        )))
                        .await;
                }
            }
        }
        Ok(Uploaded {
            archive_id: stored.archive_id,
            superseded_deleted,
        })
    }
}

impl Engine {
    /// Resumes this file's interrupted upload when the file is unchanged since it
    /// started; otherwise aborts that upload and begins a new one.
    async fn open_upload(
        &self,
        item: &UploadItem,
        before: &Fingerprint,
    ) -> Result<(Box<dyn crate::store::Upload>, Vec<crate::store::StoredPart>)> {
        if let Some(previous) = self.state.multipart(&item.key)? {
            let resumed = self
                .store
                .resume_upload(&previous.token, before.size)
                .await?;
            match resumed {
                Some((upload, parts)) if previous.fingerprint == *before => {
                    return Ok((upload, parts));
                }
                Some((upload, _)) => {
                    let _ = upload.abort().await;
                }
                None => {}
            }
            self.state.forget_multipart(&item.key)?;
        }
        // Glacier multipart takes the description up front: give it the SHA-1
        // when an earlier status already hashed this exact file.
        let known_sha1 = self
            .state
            .cached(&item.key)?
            .filter(|c| c.fingerprint == *before)
            .map(|c| c.hash.sha1);
        let description = description::encode_within(
            &item.key,
            item.raw.as_deref(),
            before.size,
            before.mtime_ns,
            known_sha1.as_ref(),
            None,
            self.store.description_limit(),
        );
        let upload = self.store.begin_upload(before.size, &description).await?;
        if let Some(token) = upload.resume_token() {
            self.state
                .put_multipart(&item.key, &token, before, now_secs())?;
        }
        Ok((upload, Vec::new()))
    }
}
