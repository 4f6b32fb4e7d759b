//! Migration: a set's archives copied from the store it used before (a Glacier
//! vault, an old disk) into the store it uses now, verified and resumable.
//!
//! Each current archive of the previous store (and, when asked, each superseded
//! one) gets a copy in the new store:
//! - from the local file when it is unchanged (same size and mtime, and a cached
//!   SHA-1 that is the record's, when one is cached): uploaded through the backup's
//!   own uploads and group commit, and stored only if the bytes read hash to the
//!   record's SHA-1 and tree hash ([`super::backup::Expected`]); no retrieval, no
//!   fee, no wait;
//! - otherwise through a retrieval job of the previous store, persisted in local
//!   state before anything else happens (a rerun reuses it: never requested, never
//!   paid twice), its output streamed range by range into the new store, each
//!   range checked against the store's checksum and the whole against the
//!   record's tree hash and SHA-1 before the copy is completed.
//!
//! A copy is recorded as the current version (the previous store's archive
//! becomes superseded: the history is kept) or, for an older version, as a
//! superseded version beside the original. The migration never deletes from the
//! previous store: early deletion is billed; `firn delete`/retention do it later.
//!
//! Crash safety follows the uploads' order, a batch of copies at a time
//! (`migrate/commit.rs`): the copies are made durable, their ids journaled with
//! their jobs, then recorded, then the journal rows closed; a rerun records a
//! journaled copy, or one the new store lists with the original's description,
//! instead of copying again (`migrate/resume.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use serde::Serialize;
use sha1::{Digest as _, Sha1};

use super::backup::{Expected, FailedFile, UploadItem};
use super::progress::Cancelled;
use super::restore::fetch_range;
use super::retrieval::{Poll, job_usable};
use super::{Done, Engine, Event, Progress, TaskId, fault_point};
use crate::catalog::{ArchiveRecord, ArchiveState, Catalog as _};
use crate::cost::Prices;
use crate::hash::RangeTreeJoiner;
use crate::model::{Fingerprint, Tier, UNKNOWN_SHA1, UNKNOWN_TREE_HASH, now_secs};
use crate::state::{MigratedCopy, MigrationRecord};
use crate::status::Tally;
use crate::store::{JobState, Store};

mod commit;
mod resume;
mod tasks;
pub use tasks::MigrationTask;

/// Copies made durable, journaled and recorded together.
const COPY_BATCH: usize = 256;

/// The store a set used before, opened: what a migration copies from.
pub struct MigrationSource {
    store: Arc<dyn Store>,
    /// List prices of that kind of store (retrievals are billed by it).
    prices: Prices,
}

impl MigrationSource {
    pub fn target(&self) -> String {
        self.store.target()
    }

    pub fn kind(&self) -> String {
        self.store.kind()
    }

    /// The retrieval tiers the store offers.
    pub fn tiers(&self) -> Vec<Tier> {
        self.store.tiers()
    }

    /// Refuses a tier the store does not offer, before anything is requested.
    pub fn check_tier(&self, tier: Tier) -> Result<()> {
        super::offers_tier(self.store.as_ref(), tier)
    }
}

#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Copy superseded versions too (else only the current version of each file).
    pub all_versions: bool,
    /// Retrieval tier for archives that cannot come from the local files.
    pub tier: Tier,
    /// Wait for retrieval jobs (else request them, copy what is ready and return).
    pub wait: bool,
}

/// What one tier would cost and take for the retrievals of a migration.
#[derive(Debug, Clone, Serialize)]
pub struct TierQuote {
    pub tier: Tier,
    /// The store's usual wait, seconds (from, to).
    pub wait: (u64, u64),
    pub cost: f64,
    pub cost_text: String,
}

/// What a migration will do, before anything is requested or sent. It holds
/// one small item per archive to copy ([`MigrationPlan::summary`] is the
/// counters alone, to keep for the report while the plan itself is run).
#[derive(Debug, Serialize)]
pub struct MigrationPlan {
    /// Where the archives are (the previous store) and where they go.
    pub source: String,
    pub destination: String,
    /// Archives to copy from the unchanged local files.
    pub from_local: Tally,
    /// Archives to retrieve from the previous store.
    pub retrievals: Tally,
    /// The archives of the previous store those retrievals read (a pack
    /// counted once, however many of its files are copied): one job each.
    pub retrieval_requests: u64,
    /// The bytes those retrievals bring back (and are billed for): a pack's
    /// whole, as far as its catalog records reach, however few of its files
    /// are copied.
    pub retrieval_bytes: u64,
    /// Of those archives, how many have a retrieval job requested already
    /// (paid for).
    pub jobs_requested: u64,
    /// Copies stored by an interrupted run, to be recorded.
    pub to_record: u64,
    /// Archives of the previous store already copied (the versions asked for).
    pub already_copied: Tally,
    /// Superseded versions left in the previous store (without --all-versions).
    pub versions_left: Tally,
    /// Each tier of the previous store: the cost and wait of the retrievals
    /// still to request.
    pub quotes: Vec<TierQuote>,
    /// Uploads from the local files (task ids assigned).
    #[serde(skip)]
    local: Vec<UploadItem>,
    /// Retrievals, each with the id of its task (allocated when planned).
    #[serde(skip)]
    retrieve: Vec<(TaskId, ArchiveRecord)>,
}

impl MigrationPlan {
    pub fn is_empty(&self) -> bool {
        self.from_local.files == 0 && self.retrievals.files == 0 && self.to_record == 0
    }

    /// The plan's counters without its items.
    pub fn summary(&self) -> MigrationPlan {
        MigrationPlan {
            source: self.source.clone(),
            destination: self.destination.clone(),
            from_local: self.from_local,
            retrievals: self.retrievals,
            retrieval_requests: self.retrieval_requests,
            retrieval_bytes: self.retrieval_bytes,
            jobs_requested: self.jobs_requested,
            to_record: self.to_record,
            already_copied: self.already_copied,
            versions_left: self.versions_left,
            quotes: self.quotes.clone(),
            local: Vec::new(),
            retrieve: Vec::new(),
        }
    }
}

/// What a migration did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrationReport {
    /// Copies made from local files, and from retrievals.
    pub from_local: Tally,
    pub retrieved: Tally,
    /// Copies an interrupted run stored, recorded now.
    pub recorded_from_earlier_run: u64,
    /// Retrieval jobs requested by this run (each billed once).
    pub jobs_requested: u64,
    /// What those retrievals cost, estimated at the previous store's prices.
    pub retrieval_cost: f64,
    /// Archives whose job is not ready yet (kept; run again).
    pub waiting: u64,
    pub cancelled: u64,
    pub failed: Vec<FailedFile>,
}

impl MigrationReport {
    pub fn has_failures(&self) -> bool {
        !self.failed.is_empty() || self.cancelled > 0
    }
}

/// Where one retrieval stands.
struct Retrieval {
    id: TaskId,
    record: ArchiveRecord,
    job: MigrationRecord,
}

enum Step {
    /// The copy is in the new store (verified), to be committed with its batch.
    Stored(Retrieval),
    Failed(Retrieval, anyhow::Error),
}

/// The journal rows of an archive's files (one job for them all), and whether
/// the job was requested now.
type ArchiveJob = (Vec<MigrationRecord>, bool);

/// The files copied out of one archive of the previous store, with their tasks.
type Members = Vec<(TaskId, ArchiveRecord)>;

/// The key of a file's row in the migration journal: its archive id, and for a
/// packed file its place in the pack too (the members of a pack share the
/// pack's job, each with its own row and copy).
pub(super) fn journal_key(record: &ArchiveRecord) -> String {
    match record.pack {
        Some(slot) => format!("{}@{}", record.archive_id, slot.offset),
        None => record.archive_id.clone(),
    }
}

impl Engine {
    /// Opens the store this set used before (it must answer now).
    pub async fn open_source(
        &self,
        settings: &crate::backend::StoreSettings,
    ) -> Result<MigrationSource> {
        settings.must_exist()?;
        let store =
            crate::backend::open_store(settings, &self.set_id, self.catalog.as_ref(), &self.limits)
                .await?;
        if store.target() == self.store.target() {
            bail!(crate::model::usage(format!(
                "{} is the store this set uses already; name the store it used before (`previous_store` in the config, or --from)",
                store.target()
            )));
        }
        Ok(MigrationSource {
            store,
            prices: Prices::defaults_for(settings.price_profile()),
        })
    }

    /// What migrating from `source` will do: which archives come from unchanged
    /// local files, which need a retrieval, and what those cost per tier.
    pub async fn plan_migration(
        &self,
        source: &MigrationSource,
        options: &MigrateOptions,
    ) -> Result<MigrationPlan> {
        let source_target = source.store.target();
        let here = self.store.target();
        let journaled = self.state.migrations()?;
        let mut plan = MigrationPlan {
            source: source_target.clone(),
            destination: here.clone(),
            from_local: Tally::default(),
            retrievals: Tally::default(),
            retrieval_requests: 0,
            retrieval_bytes: 0,
            jobs_requested: 0,
            to_record: journaled.iter().filter(|j| j.copy.is_some()).count() as u64,
            already_copied: Tally::default(),
            versions_left: Tally::default(),
            quotes: Vec::new(),
            local: Vec::new(),
            retrieve: Vec::new(),
        };
        let copying: std::collections::HashSet<&str> = journaled
            .iter()
            .filter(|j| j.copy.is_some())
            .map(|j| j.archive_id.as_str())
            .collect();
        // Records come in key order, a key's versions together: each key is
        // settled on its own, nothing is held for the whole set but the plan.
        let mut group: Vec<ArchiveRecord> = Vec::new();
        let mut cache = self.state.fingerprints()?;
        let mut settle = |group: &mut Vec<ArchiveRecord>, plan: &mut MigrationPlan| -> Result<()> {
            let copies: Vec<(crate::model::TreeHash, i64)> = group
                .iter()
                .filter(|r| r.target == here)
                .map(|r| (r.tree_hash, r.mtime_ns))
                .collect();
            for record in group.drain(..) {
                let from_source = record.target == source_target || record.target.is_empty();
                if !from_source || record.state == ArchiveState::Deleting {
                    continue;
                }
                if copying.contains(journal_key(&record).as_str()) {
                    continue;
                }
                let current = record.state == ArchiveState::Current;
                if !current && copies.contains(&(record.tree_hash, record.mtime_ns)) {
                    plan.already_copied.files += 1;
                    plan.already_copied.bytes += record.size;
                    continue;
                }
                if !current && !options.all_versions {
                    plan.versions_left.files += 1;
                    plan.versions_left.bytes += record.size;
                    continue;
                }
                let local = if current {
                    self.unchanged_local(&record, &mut cache)?
                } else {
                    None
                };
                match local {
                    Some(fingerprint) => {
                        plan.from_local.files += 1;
                        plan.from_local.bytes += record.size;
                        plan.local.push(UploadItem {
                            id: self.task_ids.next(),
                            expect: Some(Expected {
                                sha1: record.sha1,
                                tree_hash: record.tree_hash,
                            }),
                            key: record.key,
                            raw: record.raw.map(Vec::into_boxed_slice),
                            size: fingerprint.size,
                            fingerprint: Some(fingerprint),
                            cancel: None,
                        });
                    }
                    None => {
                        plan.retrievals.files += 1;
                        plan.retrievals.bytes += record.size;
                        plan.retrieve.push((self.task_ids.next(), record));
                    }
                }
            }
            Ok(())
        };
        self.catalog
            .for_each_record(&mut |record| {
                if group.first().is_some_and(|first| first.key != record.key) {
                    settle(&mut group, &mut plan)?;
                }
                group.push(record);
                Ok(())
            })
            .await?;
        settle(&mut group, &mut plan)?;

        // Jobs an earlier run requested are paid for already. One job per
        // archive of the previous store: a pack's members share one.
        let now = now_secs();
        let requested: std::collections::HashSet<&str> = journaled
            .iter()
            .filter(|j| j.job_id.is_some() && job_usable(j.requested_at, j.ready_at, now))
            .map(|j| j.archive_id.as_str())
            .collect();
        let packed: Vec<ArchiveRecord> = plan
            .retrieve
            .iter()
            .filter(|(_, r)| r.is_packed())
            .map(|(_, r)| r.clone())
            .collect();
        let pack_sizes = self.pack_sizes(&packed).await?;
        drop(packed);
        let mut archives: BTreeMap<&str, (bool, u64)> = BTreeMap::new();
        for (_, record) in &plan.retrieve {
            let entry = archives.entry(record.archive_id.as_str()).or_default();
            entry.0 |= requested.contains(journal_key(record).as_str());
            // A pack is retrieved whole, once.
            entry.1 = match pack_sizes.get(&record.archive_id) {
                Some(&pack) if record.is_packed() => pack,
                _ => entry.1 + record.size,
            };
        }
        plan.retrieval_requests = archives.len() as u64;
        plan.retrieval_bytes = archives.values().map(|(_, bytes)| bytes).sum();
        let mut to_request = Tally::default();
        for (requested, bytes) in archives.into_values() {
            if requested {
                plan.jobs_requested += 1;
            } else if bytes > 0 {
                to_request.files += 1;
                to_request.bytes += bytes;
            }
        }
        plan.quotes = source
            .store
            .tiers()
            .into_iter()
            .map(|tier| {
                let cost =
                    source
                        .prices
                        .retrieval_estimate(to_request.bytes, to_request.files, tier);
                TierQuote {
                    tier,
                    wait: source.store.expected_wait(tier),
                    cost,
                    cost_text: source.prices.format(cost),
                }
            })
            .collect();
        Ok(plan)
    }

    /// The local file of `record` when it is unchanged: same size and mtime, and
    /// (when the cache knows its content) the record's SHA-1.
    fn unchanged_local(
        &self,
        record: &ArchiveRecord,
        cache: &mut crate::state::FingerprintCursor,
    ) -> Result<Option<Fingerprint>> {
        let expected = Expected {
            sha1: record.sha1,
            tree_hash: record.tree_hash,
        };
        if !expected.is_checkable() {
            return Ok(None);
        }
        let Ok(relative) = crate::pathkey::safe_relative_path(&record.key, record.raw.as_deref())
        else {
            return Ok(None);
        };
        let Ok(meta) = std::fs::symlink_metadata(self.root.join(relative)) else {
            return Ok(None);
        };
        if !meta.is_file() {
            return Ok(None);
        }
        let fingerprint = Fingerprint::of(&meta);
        if fingerprint.size != record.size || fingerprint.mtime_ns != record.mtime_ns {
            return Ok(None);
        }
        if let Some(cached) = cache.seek(&record.key)?
            && cached.fingerprint == fingerprint
            && record.sha1 != UNKNOWN_SHA1
            && cached.hash.sha1 != record.sha1
        {
            return Ok(None);
        }
        Ok(Some(fingerprint))
    }

    /// Runs a migration planned by [`Engine::plan_migration`]: records what an
    /// interrupted run stored, uploads from the unchanged local files, then
    /// retrieves the rest (files whose bytes turned out not to be the archived
    /// ones join the retrievals). Nothing is deleted from either store. Each
    /// archive's events carry the task id the plan gave it
    /// ([`MigrationPlan::tasks`]).
    pub async fn migrate(
        self: &Arc<Self>,
        source: &MigrationSource,
        plan: MigrationPlan,
        options: &MigrateOptions,
        progress: &Progress,
    ) -> Done<MigrationReport> {
        let report = self.copy_archives(source, plan, options, progress).await;
        let done = self.done(report).await;
        self.note(&done);
        done
    }

    async fn copy_archives(
        self: &Arc<Self>,
        source: &MigrationSource,
        plan: MigrationPlan,
        options: &MigrateOptions,
        progress: &Progress,
    ) -> MigrationReport {
        let mut report = MigrationReport::default();
        let recorded = self.record_journaled_copies(&mut report).await;

        let MigrationPlan {
            local, retrieve, ..
        } = plan;
        // Copies an interrupted run stored are recorded now: done already.
        let (recorded_now, mut retrieve): (Vec<_>, Vec<_>) = retrieve
            .into_iter()
            .partition(|(_, record)| recorded.contains(&journal_key(record)));
        for (id, record) in recorded_now {
            let (key, bytes) = (record.key, record.size);
            progress.send(Event::Queued { id, key, bytes }).await;
            let archive_id = String::new();
            progress.send(Event::Done { id, archive_id }).await;
        }
        for (id, record) in &retrieve {
            progress
                .send(Event::Queued {
                    id: *id,
                    key: record.key.clone(),
                    bytes: record.size,
                })
                .await;
        }

        let uploads = local;
        if !uploads.is_empty() {
            let plan = super::Plan {
                uploads,
                mtime_updates: Vec::new(),
            };
            let summary = self
                .upload_all(
                    super::planned::PlanStream::of(plan.uploads, plan.mtime_updates),
                    progress,
                )
                .await;
            report.from_local = Tally {
                files: summary.uploaded_files,
                bytes: summary.uploaded_bytes,
            };
            report.cancelled += summary.cancelled;
            report.failed.extend(summary.failed);
            let source_target = source.store.target();
            for item in summary.not_as_archived {
                // Same size and mtime, other bytes: the archive itself is copied.
                match self.catalog.current(&item.key).await {
                    Ok(Some(record))
                        if record.target == source_target || record.target.is_empty() =>
                    {
                        retrieve.push((item.id, record));
                    }
                    Ok(_) => {
                        let changed = anyhow::anyhow!(
                            "{} is no longer current in {source_target} (a newer version was recorded meanwhile); nothing to copy",
                            item.key
                        );
                        fail(progress, &mut report, item.id, &item.key, changed).await;
                    }
                    Err(e) => fail(progress, &mut report, item.id, &item.key, e).await,
                }
            }
        }
        if progress.is_cancelled() {
            for (id, _) in &retrieve {
                progress.send(Event::Cancelled { id: *id }).await;
            }
            report.cancelled += retrieve.len() as u64;
            return report;
        }
        self.copy_retrieved(source, retrieve, options, progress, &mut report)
            .await;
        report.failed.sort_by(|a, b| a.path.cmp(&b.path));
        report
    }

    /// Requests (or reuses) a job per archive of the previous store — one per
    /// pack, however many of its members are copied — polls them with backoff,
    /// and copies each file as its job's output becomes ready.
    async fn copy_retrieved(
        &self,
        source: &MigrationSource,
        retrieve: Vec<(TaskId, ArchiveRecord)>,
        options: &MigrateOptions,
        progress: &Progress,
        report: &mut MigrationReport,
    ) {
        let known: HashMap<String, MigrationRecord> = self
            .state
            .migrations()
            .unwrap_or_default()
            .into_iter()
            .map(|j| (j.archive_id.clone(), j))
            .collect();
        // The members of one pack share its archive id, and its job.
        let mut groups: BTreeMap<String, Vec<(TaskId, ArchiveRecord)>> = BTreeMap::new();
        for (id, record) in retrieve {
            groups
                .entry(record.archive_id.clone())
                .or_default()
                .push((id, record));
        }
        // Jobs are requested many at once: each is one small request.
        let known = &known;
        let requested: Vec<(Members, Result<ArchiveJob>)> =
            futures_util::stream::iter(groups.into_values().map(|members| async move {
                if progress.is_cancelled() {
                    return (members, Err(Cancelled.into()));
                }
                let jobs = self
                    .archive_job(source, known, &members, options.tier)
                    .await;
                (members, jobs)
            }))
            .buffer_unordered(self.requests_in_flight.max(1))
            .collect()
            .await;
        let mut pending = Vec::new();
        for (members, jobs) in requested {
            match jobs {
                Ok((jobs, new)) => {
                    if new {
                        report.jobs_requested += 1;
                        let bytes = members.iter().map(|(_, r)| r.size).sum();
                        report.retrieval_cost +=
                            source.prices.retrieval_estimate(bytes, 1, options.tier);
                    }
                    for ((id, record), job) in members.into_iter().zip(jobs) {
                        pending.push(Retrieval { id, record, job });
                    }
                }
                Err(e) if e.is::<Cancelled>() => {
                    for (id, _) in members {
                        report.cancelled += 1;
                        progress.send(Event::Cancelled { id }).await;
                    }
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    for (id, record) in members {
                        let e = anyhow::anyhow!("{reason}");
                        fail(progress, report, id, &record.key, e).await;
                    }
                }
            }
        }
        pending.sort_by(|a, b| a.record.key.cmp(&b.record.key));
        fault_point("migrate-requested");

        let mut poll = Poll::for_wait(source.store.expected_wait(options.tier).0);
        while !pending.is_empty() {
            let (ready, still) = self
                .sort_by_job(source, pending, options, progress, report)
                .await;
            let mut items = ready.into_iter();
            loop {
                // A batch at a time: its copies made durable, journaled and
                // recorded together (one sync, one transaction each).
                let batch: Vec<Retrieval> = items.by_ref().take(COPY_BATCH).collect();
                if batch.is_empty() {
                    break;
                }
                let mut stored = Vec::new();
                for step in self.copy_batch(source, batch, progress).await {
                    match step {
                        Step::Stored(item) => stored.push(item),
                        Step::Failed(item, e) if e.is::<Cancelled>() => {
                            report.cancelled += 1;
                            progress.send(Event::Cancelled { id: item.id }).await;
                        }
                        Step::Failed(item, e) => {
                            fail(progress, report, item.id, &item.record.key, e).await;
                        }
                    }
                }
                self.commit_copies(stored, progress, report).await;
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            poll.pause(Some(progress)).await;
        }
    }

    /// One round of asking the store about jobs, each job once however many
    /// files wait on it: returns the files whose job's output is ready, and
    /// the ones to ask about again. A job gone unused is requested again once
    /// for all its files; a failed one fails its files (their rows forgotten).
    async fn sort_by_job(
        &self,
        source: &MigrationSource,
        pending: Vec<Retrieval>,
        options: &MigrateOptions,
        progress: &Progress,
        report: &mut MigrationReport,
    ) -> (Vec<Retrieval>, Vec<Retrieval>) {
        let (mut ready, mut still) = (Vec::new(), Vec::new());
        if progress.is_cancelled() {
            for item in pending {
                report.cancelled += 1;
                progress.send(Event::Cancelled { id: item.id }).await;
            }
            return (ready, still);
        }
        let job_ids: BTreeSet<String> = pending
            .iter()
            .filter_map(|item| item.job.job_id.clone())
            .collect();
        let states: HashMap<String, Result<JobState, String>> =
            futures_util::stream::iter(job_ids.into_iter().map(|job_id| async move {
                let state = source
                    .store
                    .job_state(&job_id)
                    .await
                    .map_err(|e| format!("{e:#}"));
                (job_id, state)
            }))
            .buffer_unordered(self.requests_in_flight.max(1))
            .collect()
            .await;
        let mut renew: BTreeMap<String, Vec<Retrieval>> = BTreeMap::new();
        let mut seen_ready = Vec::new();
        for mut item in pending {
            let state = match &item.job.job_id {
                None => Ok(JobState::Ready { expires_at: None }),
                Some(job_id) => states
                    .get(job_id)
                    .cloned()
                    .unwrap_or_else(|| Err("not asked".into())),
            };
            match state {
                Ok(JobState::Ready { .. }) => {
                    if item.job.ready_at.is_none() {
                        item.job.ready_at = Some(now_secs());
                        seen_ready.push(item.job.clone());
                    }
                    ready.push(item);
                }
                Ok(JobState::InProgress { ready_at }) => {
                    progress
                        .send(Event::Waiting {
                            id: item.id,
                            ready_at,
                        })
                        .await;
                    if options.wait {
                        still.push(item);
                    } else {
                        report.waiting += 1;
                    }
                }
                // Expired unused: the one case that pays for another job.
                Ok(JobState::Gone) => renew
                    .entry(item.record.archive_id.clone())
                    .or_default()
                    .push(item),
                Ok(JobState::Failed(reason)) => {
                    let _ = self.state.forget_migration(&item.job.archive_id);
                    let key = item.record.key.clone();
                    let e = anyhow::anyhow!(
                        "the previous store's retrieval job for {key} failed: {reason}; run the migration again to request a new one"
                    );
                    fail(progress, report, item.id, &key, e).await;
                }
                Err(reason) => {
                    let key = item.record.key.clone();
                    let e = anyhow::anyhow!(
                        "cannot ask about the retrieval job of {key} (it is kept; run again): {reason}"
                    );
                    fail(progress, report, item.id, &key, e).await;
                }
            }
        }
        if !seen_ready.is_empty() {
            let rows: Vec<&MigrationRecord> = seen_ready.iter().collect();
            let _ = self.state.put_migrations(&rows);
        }
        let none = HashMap::new();
        for (_, items) in renew {
            let keys: Vec<&str> = items.iter().map(|i| i.job.archive_id.as_str()).collect();
            let _ = self.state.forget_migrations(&keys);
            let members: Vec<(TaskId, ArchiveRecord)> = items
                .into_iter()
                .map(|item| (item.id, item.record))
                .collect();
            match self
                .archive_job(source, &none, &members, options.tier)
                .await
            {
                Ok((jobs, new)) => {
                    report.jobs_requested += u64::from(new);
                    for ((id, record), job) in members.into_iter().zip(jobs) {
                        still.push(Retrieval { id, record, job });
                    }
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    for (id, record) in members {
                        let e = anyhow::anyhow!("{reason}");
                        fail(progress, report, id, &record.key, e).await;
                    }
                }
            }
        }
        (ready, still)
    }

    /// Copies a batch of files whose job output is ready. Small files many at
    /// once (each a request or two); large ones up to `concurrency`, each
    /// holding a range and a part in memory.
    async fn copy_batch(
        &self,
        source: &MigrationSource,
        batch: Vec<Retrieval>,
        progress: &Progress,
    ) -> Vec<Step> {
        let (small, large): (Vec<Retrieval>, Vec<Retrieval>) = batch
            .into_iter()
            .partition(|item| item.record.size <= super::upload::SMALL_FILE);
        let small = futures_util::stream::iter(
            small
                .into_iter()
                .map(|item| self.copy_one(source, item, progress)),
        )
        .buffer_unordered(self.requests_in_flight.max(1))
        .collect::<Vec<Step>>();
        let large = futures_util::stream::iter(
            large
                .into_iter()
                .map(|item| self.copy_one(source, item, progress)),
        )
        .buffer_unordered(self.concurrency.max(1))
        .collect::<Vec<Step>>();
        let (mut steps, large) = tokio::join!(small, large);
        steps.extend(large);
        steps
    }

    /// The job of one archive of the previous store (a pack's, shared by the
    /// members copied from it): one a row of `known` holds while its output is
    /// kept, else a new one. Every member gets its own row (its copy is its
    /// own), all with the job, persisted together before anything else
    /// happens. Returns the rows in the members' order, and whether the job is
    /// new. Empty files need none.
    async fn archive_job(
        &self,
        source: &MigrationSource,
        known: &HashMap<String, MigrationRecord>,
        members: &[(TaskId, ArchiveRecord)],
        tier: Tier,
    ) -> Result<ArchiveJob> {
        let now = now_secs();
        let Some((_, first)) = members.first() else {
            return Ok((Vec::new(), false));
        };
        let reuse = members
            .iter()
            .filter_map(|(_, record)| known.get(&journal_key(record)))
            .find(|job| job.job_id.is_some() && job_usable(job.requested_at, job.ready_at, now));
        let needs_job = members.iter().any(|(_, record)| record.size > 0);
        let (job_id, tier, requested_at, ready_at, new) = match reuse {
            Some(job) => (
                job.job_id.clone(),
                job.tier,
                job.requested_at,
                job.ready_at,
                false,
            ),
            None if needs_job => {
                let job_id = source
                    .store
                    .request_retrieval(&first.archive_id, tier)
                    .await
                    .with_context(|| {
                        let what = if first.pack.is_some() {
                            format!("the pack holding {}", first.key)
                        } else {
                            first.key.clone()
                        };
                        format!(
                            "cannot request the retrieval of {what} from {}",
                            source.store.target()
                        )
                    })?;
                (Some(job_id), tier, now, None, true)
            }
            None => (None, tier, now, None, false),
        };
        let rows: Vec<MigrationRecord> = members
            .iter()
            .map(|(_, record)| MigrationRecord {
                archive_id: journal_key(record),
                source: source.store.target(),
                key: record.key.clone(),
                size: record.size,
                job_id: job_id.clone(),
                tier,
                requested_at,
                ready_at,
                copy: None,
            })
            .collect();
        let refs: Vec<&MigrationRecord> = rows.iter().collect();
        self.state.put_migrations(&refs)?;
        Ok((rows, new))
    }

    /// Copies one file whose job output is ready.
    async fn copy_one(
        &self,
        source: &MigrationSource,
        mut item: Retrieval,
        progress: &Progress,
    ) -> Step {
        if progress.is_cancelled() {
            return Step::Failed(item, Cancelled.into());
        }
        progress.send(Event::Started { id: item.id }).await;
        match self.store_copy(source, &mut item, progress).await {
            Ok(()) => Step::Stored(item),
            Err(e) => Step::Failed(item, e),
        }
    }

    /// Streams one job's output into the new store and verifies it; the copy
    /// (in `item.job.copy`) is made durable and recorded with its batch.
    async fn store_copy(
        &self,
        source: &MigrationSource,
        item: &mut Retrieval,
        progress: &Progress,
    ) -> Result<()> {
        let record = &item.record;
        let description = crate::description::Description::of_file(
            &record.key,
            record.raw.as_deref(),
            record.size,
            record.mtime_ns,
            (record.sha1 != UNKNOWN_SHA1).then_some(&record.sha1),
            &self.owner,
        )
        .encode(self.store.description_limit());
        let mut upload = self.store.begin_upload(record.size, &description).await?;
        let sent = self
            .stream_job_output(source, item, upload.as_mut(), progress)
            .await;
        let (sha1, tree_hash) = match sent {
            Ok(hashes) => hashes,
            Err(e) => {
                let _ = upload.abort().await;
                return Err(e);
            }
        };
        let record = &item.record;
        let mismatch = if record.tree_hash != UNKNOWN_TREE_HASH && tree_hash != record.tree_hash {
            Some("tree hash")
        } else if record.sha1 != UNKNOWN_SHA1 && sha1 != record.sha1 {
            Some("SHA-1")
        } else {
            None
        };
        if let Some(which) = mismatch {
            let _ = upload.abort().await;
            bail!(
                "the bytes retrieved for {} do not have the {which} the catalog records; nothing was stored (the job is kept: run again to download it again)",
                record.key
            );
        }
        let stored = upload
            .complete(record.size, tree_hash, &description)
            .await?;
        if stored.tree_hash != tree_hash || stored.size != record.size {
            let _ = self.store.delete(&stored.archive_id).await;
            bail!(
                "the new store reported tree hash {} for {}, computed {}; the copy was discarded",
                hex::encode(stored.tree_hash),
                record.key,
                hex::encode(tree_hash)
            );
        }
        fault_point("migrate-stored");
        item.job.copy = Some(MigratedCopy {
            archive_id: stored.archive_id,
            sha1,
            tree_hash,
        });
        Ok(())
    }

    /// Reads a job's output range by range (each checked against the store's
    /// checksum) and sends it on in the new store's part size; returns the SHA-1
    /// and tree hash of every byte sent.
    async fn stream_job_output(
        &self,
        source: &MigrationSource,
        item: &Retrieval,
        upload: &mut dyn crate::store::Upload,
        progress: &Progress,
    ) -> Result<(crate::model::Sha1Digest, crate::model::TreeHash)> {
        let record = &item.record;
        let range = source.store.download_range(record.size);
        let part = self.store.part_size(record.size).max(1) as u64;
        let mut joiner = RangeTreeJoiner::new(range);
        let mut sha1 = Sha1::new();
        let mut pending = BytesMut::new();
        let mut sent = 0u64;
        let mut offset = 0u64;
        while offset < record.size {
            if progress.is_cancelled() {
                return Err(Cancelled.into());
            }
            let len = range.min(record.size - offset);
            let Some(job_id) = item.job.job_id.as_deref() else {
                bail!("no retrieval job for {}", record.key);
            };
            let (data, range_hash, after) =
                fetch_range(source.store.as_ref(), record, job_id, offset, len, &sha1).await?;
            sha1 = after;
            joiner.push(range_hash);
            offset += len;
            pending.extend_from_slice(&data);
            while pending.len() as u64 >= part {
                let chunk = pending.split_to(part as usize).freeze();
                let n = chunk.len() as u64;
                send_part(upload, sent, chunk).await?;
                sent += n;
                progress
                    .send(Event::Advanced {
                        id: item.id,
                        bytes: n,
                    })
                    .await;
            }
        }
        if !pending.is_empty() {
            let n = pending.len() as u64;
            send_part(upload, sent, pending.freeze()).await?;
            progress
                .send(Event::Advanced {
                    id: item.id,
                    bytes: n,
                })
                .await;
        }
        Ok((sha1.finalize().into(), joiner.finish()))
    }
}

/// One part to the new store, once its memory budget can take it.
async fn send_part(upload: &mut dyn crate::store::Upload, at: u64, data: Bytes) -> Result<()> {
    upload.reserve(data.len() as u64).await?;
    upload.send(at, data).await
}

async fn fail(
    progress: &Progress,
    report: &mut MigrationReport,
    id: TaskId,
    key: &str,
    e: anyhow::Error,
) {
    let reason = format!("{e:#}");
    progress
        .send(Event::Failed {
            id,
            reason: reason.clone(),
        })
        .await;
    report.failed.push(FailedFile {
        path: key.to_string(),
        reason,
    });
}
