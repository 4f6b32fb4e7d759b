//! Restore: archived versions back onto disk through the store's retrieval jobs.
//!
//! invariant 5 in the crate docs: the data goes to a temporary file inside the destination,
//! is verified (tree hash, then SHA-1) before it is renamed into place, never lands
//! outside the destination, and never replaces an existing file without consent.
//!
//! A restore of many files requests every job first (one per archive, persisted in
//! local state so a restart picks them up instead of paying for new ones), then
//! polls them with backoff and downloads each as it becomes ready. Downloads go in
//! ranges of a power-of-two number of MiB, which are nodes of Glacier's tree: each
//! range is checked against the checksum the store sends for it, and the range
//! hashes join into the whole archive's tree hash without a second pass. The
//! temporary file survives an interruption, so a rerun continues where it stopped.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use serde::Serialize;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::progress::Cancelled;
use super::{Done, Engine, Event, Progress, TaskId, fault_point};
use crate::catalog::ArchiveRecord;
use crate::catalog::Catalog as _;
use crate::hash::{RangeTreeJoiner, tree_hash_of};
use crate::model::Tier;
use crate::model::now_secs;
use crate::model::{TreeHash, UNKNOWN_SHA1, UNKNOWN_TREE_HASH};
use crate::pathkey::safe_relative_path;
use crate::state::RetrievalRecord;
use crate::store::JobState;

use super::retrieval::{JOB_OUTPUT_KEPT_SECS, Poll, job_usable};
const RANGE_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub destination: PathBuf,
    pub overwrite: bool,
    pub tier: Tier,
    /// Wait for jobs that are not ready yet (otherwise report and return).
    pub wait: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum RestoreOutcome {
    Restored {
        path: PathBuf,
        /// Bytes a previous, interrupted run had already downloaded.
        resumed_bytes: u64,
    },
    Identical {
        path: PathBuf,
    },
    Waiting {
        job_id: String,
        requested_at: i64,
        /// When the store expects the job to be ready, if it says.
        ready_at: Option<i64>,
    },
}

/// A file is in the way with other content, and the restore may not replace it.
#[derive(Debug, thiserror::Error)]
#[error("{} exists with other content; pass --overwrite to replace it", path.display())]
pub struct ExistsWithOtherContent {
    pub path: PathBuf,
}

/// One file of a restore and what became of it.
pub struct RestoreResult {
    pub record: ArchiveRecord,
    pub outcome: Result<RestoreOutcome>,
}

/// What a restore did, file by file, in the order asked.
pub struct RestoreReport {
    pub results: Vec<RestoreResult>,
    /// The tier asked for, and the retrieval jobs this run requested (jobs an
    /// earlier run requested are reused, not paid for again): how many, and
    /// the bytes they retrieve.
    pub tier: Tier,
    pub jobs_requested: u64,
    pub bytes_requested: u64,
}

/// A restore counted up, as both front ends report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreTally {
    pub restored: u64,
    pub identical: u64,
    /// Waiting for the store (jobs kept for the next run).
    pub waiting: u64,
    pub cancelled: u64,
    /// Files in the way with other content (kept; replace with consent).
    pub conflicts: Vec<String>,
    /// Key and one-line reason.
    pub failed: Vec<(String, String)>,
}

impl RestoreReport {
    pub fn tally(&self) -> RestoreTally {
        let mut tally = RestoreTally::default();
        for result in &self.results {
            let key = result.record.key.clone();
            match &result.outcome {
                Ok(RestoreOutcome::Restored { .. }) => tally.restored += 1,
                Ok(RestoreOutcome::Identical { .. }) => tally.identical += 1,
                Ok(RestoreOutcome::Waiting { .. }) => tally.waiting += 1,
                Err(e) if e.is::<Cancelled>() => tally.cancelled += 1,
                Err(e) if e.is::<ExistsWithOtherContent>() => tally.conflicts.push(key),
                Err(e) => tally.failed.push((key, crate::fmt::one_line(e))),
            }
        }
        tally
    }
}

/// Retrieval jobs a restore requested (each is billed), counted from the
/// files advanced at once: a pack's job brings back the whole pack.
#[derive(Default)]
struct Requested {
    jobs: AtomicU64,
    bytes: AtomicU64,
    packs: PackSizes,
}

impl Requested {
    fn count(&self, new: bool, record: &ArchiveRecord) {
        if new {
            self.jobs.fetch_add(1, Ordering::Relaxed);
            self.bytes
                .fetch_add(retrieval_bytes(record, &self.packs), Ordering::Relaxed);
        }
    }
}

/// A file whose bytes have to come from the store.
struct Pending {
    index: usize,
    id: TaskId,
    target: PathBuf,
    parent: PathBuf,
    job: RetrievalRecord,
}

/// The name of the temporary file of one archive's download: stable, so a rerun
/// finds and continues it.
pub fn partial_name(archive_id: &str) -> String {
    let digest = Sha256::digest(archive_id.as_bytes());
    format!(".firn-restore-{}.partial", hex::encode(&digest[..8]))
}

/// A persisted retrieval job as the jobs pane and `firn jobs` show it.
#[derive(Debug, Clone, Serialize)]
pub struct RetrievalJobView {
    pub key: String,
    pub archive_id: String,
    pub job_id: String,
    pub tier: String,
    pub size: u64,
    pub destination: String,
    pub requested_at: i64,
    /// The store's usual completion window for the tier, seconds after the request.
    pub expected_from: u64,
    pub expected_to: u64,
    /// `ready`, `in-progress`, `failed: ...`, `expired`, or `unknown: ...` when the
    /// store could not be asked.
    pub state: String,
    /// When the output stops being downloadable (24 hours after it was ready; before
    /// that, the earliest it could be).
    pub expires_at: i64,
}

/// Retrieval jobs an earlier run requested for one destination and tier, to be
/// picked up (never requested again) when a front end starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumableRetrievals {
    pub destination: String,
    pub tier: Tier,
    /// Key, archive id, size.
    pub items: Vec<(String, String, u64)>,
}

/// What a retrieval will take before anything is requested: how many
/// retrievals (one per archive holding a file alone, one per pack however many
/// of its files are asked for), the bytes they bring back (a pack is retrieved
/// whole), and what each tier the store offers costs and how long it waits.
/// Jobs reused from an earlier run and files already in place make it cost less.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalQuote {
    /// The tier asked for (`wait`, `cost` and `to_request_cost` are its figures).
    pub tier: Tier,
    pub files: u64,
    /// The files' own bytes.
    pub bytes: u64,
    /// Archives that hold one file each (empty files need no retrieval)...
    pub archives: u64,
    /// ...and their bytes.
    pub archive_bytes: u64,
    /// Packs that hold the packed files asked for: one retrieval each...
    pub packs: u64,
    /// ...of this many of the files...
    pub packed_files: u64,
    /// ...retrieving these bytes: each pack whole, as far as its catalog
    /// records reach (the end of its last recorded member; its index and
    /// trailer, a small fraction, are not counted).
    pub pack_bytes: u64,
    /// The tier's usual wait, seconds (from, to); (0, 0) when ready at once.
    pub wait: (u64, u64),
    /// Upper bound, in the set's currency.
    pub cost: f64,
    /// The cost as text, with its currency.
    pub cost_text: String,
    /// Retrievals (archives or packs) whose job an earlier run requested and the
    /// store still keeps: reused, not paid again.
    pub already_requested: u64,
    /// What this run would pay: the retrievals still to request (what
    /// `confirm_above` is compared with).
    pub to_request_cost: f64,
    /// Every tier the store offers, fastest first, with the same retrievals.
    pub tiers: Vec<TierEstimate>,
}

impl RetrievalQuote {
    /// Retrieval requests: one per archive and one per pack.
    pub fn requests(&self) -> u64 {
        self.archives + self.packs
    }

    /// The bytes the retrievals bring back (and are billed for).
    pub fn retrieved_bytes(&self) -> u64 {
        self.archive_bytes + self.pack_bytes
    }
}

/// One tier of a [`RetrievalQuote`].
#[derive(Debug, Clone, PartialEq)]
pub struct TierEstimate {
    pub tier: Tier,
    /// Usual wait, seconds (from, to).
    pub wait: (u64, u64),
    /// Every retrieval of the quote at this tier.
    pub cost: f64,
    /// The retrievals no earlier job covers.
    pub to_request_cost: f64,
}

/// The bytes retrieving each pack brings back, as far as the catalog knows:
/// the end of its last recorded member.
pub(super) type PackSizes = std::collections::HashMap<String, u64>;

impl Engine {
    /// What retrieving `records` with `tier` will cost and how long it usually
    /// takes: one retrieval per archive and per pack (never per packed file),
    /// a pack's whole bytes, every tier the store offers.
    pub async fn retrieval_quote(
        &self,
        records: &[ArchiveRecord],
        tier: Tier,
    ) -> Result<RetrievalQuote> {
        let sizes = self.pack_sizes(records).await?;
        // Jobs kept in local state are reused while the store keeps their
        // output (unreadable state: every job counts as new, the dearer side).
        let now = now_secs();
        let requested: std::collections::HashSet<String> = self
            .state
            .retrievals()
            .unwrap_or_default()
            .into_iter()
            .filter(|job| job_usable(job.requested_at, job.ready_at, now))
            .map(|job| job.archive_id)
            .collect();
        let mut quote = RetrievalQuote {
            tier,
            files: records.len() as u64,
            bytes: records.iter().map(|r| r.size).sum(),
            archives: 0,
            archive_bytes: 0,
            packs: 0,
            packed_files: 0,
            pack_bytes: 0,
            wait: self.store.expected_wait(tier),
            cost: 0.0,
            cost_text: String::new(),
            already_requested: 0,
            to_request_cost: 0.0,
            tiers: Vec::new(),
        };
        let (mut new_bytes, mut new_requests) = (0, 0);
        let mut packs_seen = std::collections::HashSet::new();
        for record in records.iter().filter(|r| r.size > 0) {
            let bytes = if record.is_packed() {
                quote.packed_files += 1;
                if !packs_seen.insert(record.archive_id.as_str()) {
                    continue;
                }
                let bytes = retrieval_bytes(record, &sizes);
                quote.packs += 1;
                quote.pack_bytes += bytes;
                bytes
            } else {
                quote.archives += 1;
                quote.archive_bytes += record.size;
                record.size
            };
            if requested.contains(&record.archive_id) {
                quote.already_requested += 1;
            } else {
                new_bytes += bytes;
                new_requests += 1;
            }
        }
        let (bytes, requests) = (quote.retrieved_bytes(), quote.requests());
        quote.tiers = self
            .store
            .tiers()
            .into_iter()
            .map(|tier| TierEstimate {
                tier,
                wait: self.store.expected_wait(tier),
                cost: self.prices.retrieval_estimate(bytes, requests, tier),
                to_request_cost: self
                    .prices
                    .retrieval_estimate(new_bytes, new_requests, tier),
            })
            .collect();
        quote.cost = self.prices.retrieval_estimate(bytes, requests, tier);
        quote.cost_text = self.prices.format(quote.cost);
        quote.to_request_cost = self
            .prices
            .retrieval_estimate(new_bytes, new_requests, tier);
        Ok(quote)
    }

    /// The bytes each pack among `records` brings back when retrieved: the end
    /// of its last member the catalog records (members not asked for
    /// included), read in one pass over the catalog. Empty without packs.
    pub(super) async fn pack_sizes(&self, records: &[ArchiveRecord]) -> Result<PackSizes> {
        let mut sizes: PackSizes = records
            .iter()
            .filter_map(|r| {
                r.pack
                    .map(|slot| (r.archive_id.clone(), slot.offset + slot.len))
            })
            .fold(PackSizes::new(), |mut sizes, (id, end)| {
                let size = sizes.entry(id).or_default();
                *size = (*size).max(end);
                sizes
            });
        if sizes.is_empty() {
            return Ok(sizes);
        }
        self.catalog
            .for_each_record(&mut |r| {
                if let (Some(slot), Some(size)) = (r.pack, sizes.get_mut(&r.archive_id)) {
                    *size = (*size).max(slot.offset + slot.len);
                }
                Ok(())
            })
            .await
            .context("cannot read the catalog to size the packs to retrieve")?;
        Ok(sizes)
    }

    /// Retrieval jobs an earlier run left, grouped by destination and tier.
    pub async fn resumable_retrievals(&self) -> Result<Vec<ResumableRetrievals>> {
        let state = std::sync::Arc::clone(&self.state);
        let jobs = tokio::task::spawn_blocking(move || state.retrievals())
            .await
            .context("local state task failed")??;
        let mut groups: Vec<ResumableRetrievals> = Vec::new();
        for job in jobs {
            if job.key.is_empty() || job.destination.is_empty() {
                continue;
            }
            let tier = job.tier;
            let destination = String::from_utf8_lossy(&job.destination).into_owned();
            let item = (job.key, job.archive_id, job.size);
            match groups
                .iter_mut()
                .find(|g| g.destination == destination && g.tier == tier)
            {
                Some(group) => group.items.push(item),
                None => groups.push(ResumableRetrievals {
                    destination,
                    tier,
                    items: vec![item],
                }),
            }
        }
        Ok(groups)
    }

    /// Every retrieval job this set is waiting on or has not downloaded yet, with
    /// the store's word on each.
    pub async fn retrieval_jobs(&self) -> Result<Vec<RetrievalJobView>> {
        let mut views = Vec::new();
        for mut job in self.state.retrievals()? {
            let facts = JobFacts {
                key: &job.key,
                archive_id: &job.archive_id,
                job_id: &job.job_id,
                tier: job.tier,
                size: job.size,
                destination: String::from_utf8_lossy(&job.destination).into_owned(),
                requested_at: job.requested_at,
                ready_at: job.ready_at,
            };
            let (view, ready_at) = describe_job(self.store.as_ref(), facts).await;
            if ready_at != job.ready_at {
                job.ready_at = ready_at;
                self.state.put_retrieval(&job)?;
            }
            views.push(view);
        }
        Ok(views)
    }

    /// `firn restore`: restores archived versions under `options.destination`,
    /// each by its relative path: requests (or reuses) one retrieval job per
    /// archive, polls them with backoff, and downloads each as it becomes ready.
    /// Results come back in the order of `records`; one file failing does not
    /// stop the others. A restore that learnt an archive's SHA-1 records it, and
    /// the catalog's snapshot is stored then.
    pub async fn restore(
        &self,
        tasks: Vec<(TaskId, ArchiveRecord)>,
        options: &RestoreOptions,
        progress: &Progress,
    ) -> Done<RestoreReport> {
        let report = self.retrieve(tasks, options, progress).await;
        let done = self.done(report).await;
        self.note(&done);
        done
    }

    /// What [`Engine::restore`] does, without the snapshot after it (a rebuild
    /// retrieves its catalog snapshot so).
    pub(super) async fn retrieve(
        &self,
        tasks: Vec<(TaskId, ArchiveRecord)>,
        options: &RestoreOptions,
        progress: &Progress,
    ) -> RestoreReport {
        let (ids, records): (Vec<TaskId>, Vec<ArchiveRecord>) = tasks.into_iter().unzip();
        let id_of = |index: usize| ids[index];
        let emit = |event: Event| progress.send(event);
        let mut outcomes: Vec<Option<Result<RestoreOutcome>>> =
            records.iter().map(|_| None).collect();
        let mut pending = Vec::new();
        // Unreadable, the packs are counted by the files asked for (less).
        let requested = Requested {
            packs: self.pack_sizes(&records).await.unwrap_or_default(),
            ..Requested::default()
        };
        for (index, record) in records.iter().enumerate() {
            emit(Event::Queued {
                id: id_of(index),
                key: record.key.clone(),
                bytes: record.size,
            })
            .await;
            match self.prepare_restore(record, options) {
                Ok(Prepared::Done(outcome)) => outcomes[index] = Some(Ok(outcome)),
                Ok(Prepared::Fetch { target, parent }) if record.size == 0 => {
                    // Nothing to retrieve: an empty file needs no job.
                    outcomes[index] = Some(
                        self.download(
                            id_of(index),
                            record,
                            None,
                            &parent,
                            &target,
                            options,
                            progress,
                        )
                        .await
                        .map(|resumed_bytes| RestoreOutcome::Restored {
                            path: target,
                            resumed_bytes,
                        }),
                    );
                }
                Ok(Prepared::Fetch { target, parent }) => {
                    match self.job_for(record, options).await {
                        Ok((job, new)) => {
                            requested.count(new, record);
                            pending.push(Pending {
                                index,
                                id: id_of(index),
                                target,
                                parent,
                                job,
                            })
                        }
                        Err(e) => outcomes[index] = Some(Err(e)),
                    }
                }
                Err(e) => outcomes[index] = Some(Err(e)),
            }
        }

        let mut poll = Poll::for_wait(self.store.expected_wait(options.tier).0);
        while !pending.is_empty() {
            // Up to `concurrency` jobs asked about (and downloaded, when ready) at
            // once: each download holds one range (16 MiB) in memory.
            let steps: Vec<_> = pending
                .into_iter()
                .map(|item| {
                    let record = &records[item.index];
                    self.advance(item, record, options, progress, &requested)
                })
                .collect();
            let steps: Vec<Step> = futures_util::stream::iter(steps)
                .buffer_unordered(self.concurrency.max(1))
                .collect()
                .await;
            let mut still = Vec::new();
            for step in steps {
                match step {
                    Step::Pending(item) => still.push(item),
                    Step::Finished(index, outcome) => outcomes[index] = Some(outcome),
                }
            }
            still.sort_by_key(|item| item.index);
            pending = still;
            if pending.is_empty() {
                break;
            }
            poll.pause(Some(progress)).await;
        }

        // The jobs of packs whose every file asked for is restored.
        let mut pack_jobs_done: std::collections::HashMap<&str, bool> =
            std::collections::HashMap::new();
        for (record, outcome) in records.iter().zip(&outcomes) {
            if record.is_packed() {
                let restored = matches!(outcome, Some(Ok(RestoreOutcome::Restored { .. })));
                let all = pack_jobs_done.entry(&record.archive_id).or_insert(true);
                *all &= restored || matches!(outcome, Some(Ok(RestoreOutcome::Identical { .. })));
            }
        }
        for (archive_id, done) in pack_jobs_done {
            if done {
                let _ = self.state.forget_retrieval(archive_id);
            }
        }
        let mut results = Vec::with_capacity(records.len());
        for (index, (record, outcome)) in records.into_iter().zip(outcomes).enumerate() {
            let outcome = outcome.unwrap_or_else(|| Err(anyhow::anyhow!("not attempted")));
            let id = id_of(index);
            match &outcome {
                Ok(RestoreOutcome::Waiting { .. }) => {}
                Ok(_) => {
                    emit(Event::Done {
                        id,
                        archive_id: record.archive_id.clone(),
                    })
                    .await
                }
                Err(e) if e.is::<Cancelled>() => emit(Event::Cancelled { id }).await,
                Err(e) => {
                    emit(Event::Failed {
                        id,
                        reason: format!("{e:#}"),
                    })
                    .await
                }
            }
            results.push(RestoreResult { record, outcome });
        }
        RestoreReport {
            results,
            tier: options.tier,
            jobs_requested: requested.jobs.load(Ordering::Relaxed),
            bytes_requested: requested.bytes.load(Ordering::Relaxed),
        }
    }

    /// Asks the store about one file's job and downloads it when it is ready.
    async fn advance(
        &self,
        mut item: Pending,
        record: &ArchiveRecord,
        options: &RestoreOptions,
        progress: &Progress,
        requested: &Requested,
    ) -> Step {
        let id = item.id;
        let finished = |outcome| Step::Finished(item.index, outcome);
        if progress.is_cancelled() {
            return finished(Err(Cancelled.into()));
        }
        match self.store.job_state(&item.job.job_id).await {
            Ok(JobState::Ready { .. }) => {
                if item.job.ready_at.is_none() {
                    item.job.ready_at = Some(now_secs());
                    let _ = self.state.put_retrieval(&item.job);
                }
                progress.send(Event::Started { id }).await;
                let result = self
                    .download(
                        id,
                        record,
                        Some(&item.job.job_id),
                        &item.parent,
                        &item.target,
                        options,
                        progress,
                    )
                    .await;
                // A pack's job serves its other files too: it is forgotten
                // once all of them are restored (see `retrieve`).
                if result.is_ok()
                    && !record.is_packed()
                    && let Err(e) = self.state.forget_retrieval(&record.archive_id)
                {
                    return finished(Err(e));
                }
                let target = item.target.clone();
                finished(result.map(|resumed_bytes| RestoreOutcome::Restored {
                    path: target,
                    resumed_bytes,
                }))
            }
            Ok(JobState::Gone) => {
                // Expired or unknown to the store: this is the one case that pays
                // for a new job.
                let _ = self.state.forget_retrieval(&record.archive_id);
                match self.job_for(record, options).await {
                    Ok((job, new)) => {
                        requested.count(new, record);
                        item.job = job;
                        Step::Pending(item)
                    }
                    Err(e) => finished(Err(e)),
                }
            }
            Ok(JobState::Failed(reason)) => {
                let _ = self.state.forget_retrieval(&record.archive_id);
                finished(Err(anyhow::anyhow!(
                    "the store's retrieval job for {} failed: {reason}; run the restore again to request a new one",
                    record.key
                )))
            }
            Ok(JobState::InProgress { ready_at }) => {
                if options.wait {
                    progress.send(Event::Waiting { id, ready_at }).await;
                    Step::Pending(item)
                } else {
                    finished(Ok(RestoreOutcome::Waiting {
                        job_id: item.job.job_id.clone(),
                        requested_at: item.job.requested_at,
                        ready_at,
                    }))
                }
            }
            Err(e) => finished(Err(e.context(format!(
                "cannot ask about the retrieval job of {} (it is kept; run again)",
                record.key
            )))),
        }
    }

    /// Where the file goes, and whether it is already there.
    fn prepare_restore(
        &self,
        record: &ArchiveRecord,
        options: &RestoreOptions,
    ) -> Result<Prepared> {
        if !self.holds(record) {
            bail!(
                "{} is archived in store {}, not in {} (the store this set uses); name that store (--store-dir, or the set's `store` in the config) to restore from it",
                record.key,
                record.target,
                self.store.target()
            );
        }
        let relative = safe_relative_path(&record.key, record.raw.as_deref()).map_err(|why| {
            anyhow::anyhow!(
                "refusing to restore {:?}: {why}; nothing was written",
                record.key
            )
        })?;
        let target = options.destination.join(&relative);
        let parent = prepare_parent(&options.destination, &relative)?;
        match fs::symlink_metadata(&target) {
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_file() => {
                bail!(
                    "{} exists and is not a regular file; move it away first",
                    target.display()
                )
            }
            Ok(_) => {
                if same_content(&target, record)? {
                    return Ok(Prepared::Done(RestoreOutcome::Identical { path: target }));
                }
                if !options.overwrite {
                    return Err(ExistsWithOtherContent { path: target }.into());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot inspect {}", target.display()));
            }
        }
        Ok(Prepared::Fetch { target, parent })
    }

    /// The retrieval job of this archive: the persisted one while the store keeps
    /// its output, else a new one (persisted before anything else happens).
    async fn job_for(
        &self,
        record: &ArchiveRecord,
        options: &RestoreOptions,
    ) -> Result<(RetrievalRecord, bool)> {
        use std::os::unix::ffi::OsStrExt;
        let destination = options.destination.as_os_str().as_bytes().to_vec();
        if let Some(mut job) = self.state.retrieval(&record.archive_id)?
            && job_usable(job.requested_at, job.ready_at, now_secs())
        {
            if job.destination != destination || job.key != record.key {
                job.destination = destination;
                job.key = record.key.clone();
                job.size = record.size;
                self.state.put_retrieval(&job)?;
            }
            return Ok((job, false));
        }
        let job_id = self
            .store
            .request_retrieval(&record.archive_id, options.tier)
            .await
            .with_context(|| format!("cannot request the retrieval of {}", record.key))?;
        let job = RetrievalRecord {
            archive_id: record.archive_id.clone(),
            job_id,
            tier: options.tier,
            requested_at: now_secs(),
            key: record.key.clone(),
            destination,
            size: record.size,
            ready_at: None,
        };
        self.state.put_retrieval(&job)?;
        Ok((job, true))
    }

    /// Downloads one archive into its temporary file (continuing a previous run's),
    /// verifies it and renames it into place. Returns the bytes an earlier run had
    /// already downloaded. A verification failure removes the temporary file and
    /// keeps the job, so running again downloads it afresh.
    #[allow(clippy::too_many_arguments)]
    async fn download(
        &self,
        id: TaskId,
        record: &ArchiveRecord,
        job_id: Option<&str>,
        parent: &Path,
        target: &Path,
        options: &RestoreOptions,
        progress: &Progress,
    ) -> Result<u64> {
        // A pack's files each have a temporary file of their own.
        let temp = match record.pack {
            Some(slot) => parent.join(partial_name(&format!(
                "{}@{}",
                record.archive_id, slot.offset
            ))),
            None => parent.join(partial_name(&record.archive_id)),
        };
        if fs::symlink_metadata(&temp).is_ok_and(|m| !m.is_file()) {
            bail!(
                "{} is in the way and is not a file; remove it",
                temp.display()
            );
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        let mut sha1 = Sha1::new();
        let range = self.store.download_range(record.size);
        let mut joiner = RangeTreeJoiner::new(range);
        let resumed = resume_partial(&mut file, &temp, record.size, range, &mut sha1, &mut joiner)?;
        if resumed > 0 {
            progress.send(Event::Advanced { id, bytes: resumed }).await;
        }

        let mut offset = resumed;
        while offset < record.size {
            if progress.is_cancelled() {
                // The temporary file stays: the next run continues it.
                return Err(Cancelled.into());
            }
            let len = range.min(record.size - offset);
            let Some(job_id) = job_id else {
                bail!("no retrieval job for {}", record.key);
            };
            let (data, range_hash, sha1_after) =
                fetch_range(self.store.as_ref(), record, job_id, offset, len, &sha1).await?;
            sha1 = sha1_after;
            joiner.push(range_hash);
            // Off the async threads: a 16 MiB write can take a while.
            let (returned, written) = tokio::task::spawn_blocking(move || {
                let written = file.write_all(&data);
                (file, written)
            })
            .await
            .context("the writing task failed")?;
            file = returned;
            written.with_context(|| format!("cannot write {}", temp.display()))?;
            offset += len;
            progress.send(Event::Advanced { id, bytes: len }).await;
            fault_point("during-download");
        }

        let tree_hash = joiner.finish();
        let sha1: [u8; 20] = sha1.finalize().into();
        // A record rebuilt without its tree hash is verified by its SHA-1 and by the
        // store's checksum of every piece.
        let mismatch = if record.tree_hash != UNKNOWN_TREE_HASH && tree_hash != record.tree_hash {
            Some(format!(
                "tree hash {}, the catalog says {}",
                hex::encode(tree_hash),
                hex::encode(record.tree_hash)
            ))
        } else if record.sha1 != UNKNOWN_SHA1 && sha1 != record.sha1 {
            Some(format!(
                "SHA-1 {}, the catalog says {}",
                hex::encode(sha1),
                hex::encode(record.sha1)
            ))
        } else {
            None
        };
        if let Some(mismatch) = mismatch {
            drop(file);
            let _ = fs::remove_file(&temp);
            bail!(
                "the data retrieved for {} has {mismatch}; it was discarded and nothing was written. The retrieval job is kept: run the restore again to download it again",
                record.key
            );
        }
        let finish = || -> Result<()> {
            let mtime = std::time::UNIX_EPOCH + Duration::from_nanos(record.mtime_ns.max(0) as u64);
            file.set_modified(mtime).context("cannot set the mtime")?;
            file.sync_all().context("cannot fsync the restored file")?;
            if !options.overwrite && fs::symlink_metadata(target).is_ok() {
                bail!(
                    "{} appeared while restoring; pass --overwrite to replace it",
                    target.display()
                );
            }
            fs::rename(&temp, target).with_context(|| {
                format!("cannot move the restored file to {}", target.display())
            })?;
            File::open(parent).and_then(|d| d.sync_all()).ok();
            Ok(())
        };
        let result = finish();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result?;
        if record.sha1 == UNKNOWN_SHA1 {
            // The tree hash vouched for these bytes: their SHA-1 is now known too.
            // Best effort: the file is restored either way, and status falls back
            // to size and mtime while the SHA-1 stays unknown.
            let _ = self
                .catalog
                .fill_unknown_sha1(&record.key, &record.archive_id, &sha1)
                .await;
        }
        Ok(resumed)
    }
}

/// One range of a job's output from `store` with its tree hash, checked against
/// the checksum the store sends; a range that fails the check is fetched again.
/// Returns the bytes, their tree hash, and `sha1` advanced over them.
pub(super) async fn fetch_range(
    store: &dyn crate::store::Store,
    record: &ArchiveRecord,
    job_id: &str,
    offset: u64,
    len: u64,
    sha1: &Sha1,
) -> Result<(bytes::Bytes, TreeHash, Sha1)> {
    {
        let mut last_error = None;
        for attempt in 0..RANGE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            }
            // A packed file is a range of its pack's output.
            let base = record.pack.map_or(0, |slot| slot.offset);
            let output = match store.read_job_output(job_id, base + offset, len).await {
                Ok(output) => output,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            if output.data.len() as u64 != len {
                last_error = Some(anyhow::anyhow!(
                    "the store sent {} bytes for the range at offset {offset}, expected {len}",
                    output.data.len()
                ));
                continue;
            }
            let (data, before) = (output.data.clone(), sha1.clone());
            let (range_hash, after) =
                tokio::task::spawn_blocking(move || hash_range(&data, before))
                    .await
                    .context("the hashing task failed")?;
            // The store's checksums are of the pack's ranges, not of a packed
            // file's: the file is verified by its own hashes at the end, and a
            // range that is the whole file by its own tree hash now (so bytes
            // corrupted in transit are fetched again, as an archive's are).
            let whole_member = record.pack.is_some()
                && offset == 0
                && len == record.size
                && record.tree_hash != UNKNOWN_TREE_HASH;
            if whole_member {
                if range_hash == record.tree_hash {
                    return Ok((output.data, range_hash, after));
                }
                last_error = Some(anyhow::anyhow!(
                    "{} arrived with tree hash {}, its own is {} (corrupted in transit)",
                    record.key,
                    hex::encode(range_hash),
                    hex::encode(record.tree_hash)
                ));
                continue;
            }
            let checksum = output.checksum.filter(|_| record.pack.is_none());
            match checksum {
                // Verified on its own.
                Some(sum) if sum == range_hash => return Ok((output.data, range_hash, after)),
                // No checksum for this range, or the whole archive's (some servers
                // send that for every range): the whole is verified at the end.
                None => return Ok((output.data, range_hash, after)),
                Some(sum) if sum == record.tree_hash => {
                    return Ok((output.data, range_hash, after));
                }
                Some(sum) => {
                    last_error = Some(anyhow::anyhow!(
                        "the range at offset {offset} arrived with tree hash {}, the store sent {} (corrupted in transit)",
                        hex::encode(range_hash),
                        hex::encode(sum)
                    ));
                }
            }
        }
        let e = last_error.unwrap_or_else(|| anyhow::anyhow!("no attempt made"));
        Err(e.context(format!(
            "cannot download {} (the retrieval job and the bytes so far are kept; run again to continue)",
            record.key
        )))
    }
}

/// What local state knows of one persisted retrieval job (a restore's or a
/// migration's), for [`describe_job`].
pub(super) struct JobFacts<'a> {
    pub key: &'a str,
    pub archive_id: &'a str,
    pub job_id: &'a str,
    pub tier: Tier,
    pub size: u64,
    /// Where its output goes, for people.
    pub destination: String,
    pub requested_at: i64,
    pub ready_at: Option<i64>,
}

/// The bytes retrieving `record`'s archive brings back: its pack's (as far as
/// `sizes` knows it), else its own.
fn retrieval_bytes(record: &ArchiveRecord, sizes: &PackSizes) -> u64 {
    match record.pack {
        Some(slot) => sizes
            .get(&record.archive_id)
            .copied()
            .unwrap_or(slot.offset + slot.len),
        None => record.size,
    }
}

/// Asks `store` about one job (a failure to ask is a state, not an error) and
/// says it as `firn jobs` shows it; also returns when the output was first seen
/// ready (now, if this is the first time), for the caller to keep.
pub(super) async fn describe_job(
    store: &dyn crate::store::Store,
    facts: JobFacts<'_>,
) -> (RetrievalJobView, Option<i64>) {
    let (expected_from, expected_to) = store.expected_wait(facts.tier);
    let mut ready_at = facts.ready_at;
    let mut store_expiry = None;
    let state = match store.job_state(facts.job_id).await {
        Ok(JobState::Ready { expires_at }) => {
            store_expiry = expires_at;
            ready_at.get_or_insert_with(now_secs);
            "ready".to_string()
        }
        Ok(JobState::InProgress { .. }) => "in-progress".into(),
        Ok(JobState::Failed(reason)) => format!("failed: {reason}"),
        Ok(JobState::Gone) => "expired".into(),
        Err(e) => format!("unknown: {}", crate::fmt::one_line(&e)),
    };
    // The store's word (S3: the restored copy's expiry), else Glacier's 24 h.
    let expires_at = store_expiry.unwrap_or(
        ready_at.unwrap_or(facts.requested_at + expected_from as i64) + JOB_OUTPUT_KEPT_SECS,
    );
    let view = RetrievalJobView {
        key: facts.key.to_owned(),
        archive_id: facts.archive_id.to_owned(),
        job_id: facts.job_id.to_owned(),
        tier: facts.tier.as_str().to_owned(),
        size: facts.size,
        destination: facts.destination,
        requested_at: facts.requested_at,
        expected_from,
        expected_to,
        state,
        expires_at,
    };
    (view, ready_at)
}

/// The tree hash of one range and `sha1` advanced over it, the two computed side
/// by side (each is a full pass over 16 MiB).
fn hash_range(data: &[u8], mut sha1: Sha1) -> (TreeHash, Sha1) {
    std::thread::scope(|scope| {
        let tree = scope.spawn(|| tree_hash_of(data));
        sha1.update(data);
        match tree.join() {
            Ok(tree) => (tree, sha1),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Where one file's restore stands after a round of polling.
enum Step {
    Pending(Pending),
    Finished(usize, Result<RestoreOutcome>),
}

enum Prepared {
    Done(RestoreOutcome),
    Fetch { target: PathBuf, parent: PathBuf },
}

/// Hashes the whole ranges an interrupted run left in the temporary file and drops
/// anything after them; returns how many bytes are kept. A corrupt leftover is
/// caught by the final verification like any other byte.
fn resume_partial(
    file: &mut File,
    temp: &Path,
    size: u64,
    range: u64,
    sha1: &mut Sha1,
    joiner: &mut RangeTreeJoiner,
) -> Result<u64> {
    let existing = file
        .metadata()
        .with_context(|| format!("cannot inspect {}", temp.display()))?
        .len();
    let keep = existing.min(size) / range * range;
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; range as usize];
    let mut done = 0;
    while done < keep {
        file.read_exact(&mut buf)
            .with_context(|| format!("cannot read {}", temp.display()))?;
        sha1.update(&buf);
        joiner.push(tree_hash_of(&buf));
        done += range;
    }
    file.set_len(keep)
        .with_context(|| format!("cannot truncate {}", temp.display()))?;
    file.seek(SeekFrom::Start(keep))?;
    Ok(keep)
}

/// Creates the directories from the destination down to the file's parent, refusing
/// to pass through a symlink (which could lead outside the destination).
fn prepare_parent(destination: &Path, relative: &Path) -> Result<PathBuf> {
    fs::create_dir_all(destination)
        .with_context(|| format!("cannot create destination {}", destination.display()))?;
    let mut dir = destination.to_path_buf();
    let components: Vec<_> = relative.components().collect();
    for component in &components[..components.len().saturating_sub(1)] {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                bail!(
                    "refusing to restore through symbolic link {}; nothing was written there",
                    dir.display()
                )
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!("{} exists and is not a directory", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", dir.display())),
        }
    }
    Ok(dir)
}

fn same_content(path: &Path, record: &ArchiveRecord) -> Result<bool> {
    let meta = fs::metadata(path)?;
    if meta.len() != record.size {
        return Ok(false);
    }
    let fingerprint = crate::model::Fingerprint::of(&meta);
    match crate::hash::hash_file(path, &fingerprint, &mut |_| {}) {
        Ok(hash) => Ok(hash.tree_hash == record.tree_hash
            && (record.sha1 == UNKNOWN_SHA1 || hash.sha1 == record.sha1)),
        Err(_) => Ok(false),
    }
}
