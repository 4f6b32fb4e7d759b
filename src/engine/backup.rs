//! Backup: what a run does with each file status found (the plan), the job that
//! runs it (the uploads, recorded by the group commit: engine/upload.rs and
//! engine/commit.rs) and the retention sweep after it, summed up in one report.
//!
//! A crash anywhere leaves either the old archive current, or the new one, and the
//! journal lets the next run find and account for an archive stored but not recorded.
//!
//! A set with a `budget` ([`crate::budget`]) backs up only what fits under it:
//! before anything is uploaded, the job works out the set's estimated monthly
//! storage charge (what `firn cost` shows: every archive it keeps in its store,
//! superseded versions and catalog snapshots included, overhead included) and
//! leaves out of the plan the uploads that would raise it above the cap
//! ([`crate::budget::Budget::fit`]: the smallest files first). What is left out
//! is never uploaded, so never recorded; the summary's `budget` says what and
//! why, and both front ends show it.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::planned::{PlanSpill, PlanStream};
use super::{AfterRun, Done, Engine, Event, Progress, RecoveryReport, TaskId};
use crate::budget::BudgetOutcome;
use crate::catalog::Catalog as _;
use crate::model::{Entry, Fingerprint, Status};

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
    /// The whole fingerprint status saw, when the front end has it (lets the
    /// backup journal its intent ahead, with many others in one write).
    pub fingerprint: Option<Fingerprint>,
    /// New or changed: its content goes to the store.
    pub pending: bool,
    /// Up to date by content, but its mtime differs from the archived version's.
    pub mtime_moved: bool,
    /// Cancels this file alone (the job's progress token cancels all of them).
    pub cancel: Option<CancellationToken>,
}

/// What a backup does with one file: the one rule every front end follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// New or changed: its content goes to the store.
    Upload,
    /// Up to date by content, its mtime moved: the catalog's mtime is updated.
    UpdateMtime,
    /// Nothing to do.
    Leave,
}

impl Take {
    /// What a backup does with a file that is `pending` (new or changed), or
    /// up to date with its `mtime_moved`.
    pub fn of(pending: bool, mtime_moved: bool) -> Take {
        if pending {
            Take::Upload
        } else if mtime_moved {
            Take::UpdateMtime
        } else {
            Take::Leave
        }
    }
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
            fingerprint: Some(entry.fingerprint),
            pending,
            mtime_moved: entry
                .archived
                .is_some_and(|a| a.mtime_ns != entry.fingerprint.mtime_ns),
            cancel: None,
        })
    }
}

pub use super::planned::{Expected, UploadItem};

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
    /// Files whose bytes were not what [`UploadItem::expect`] said: not stored
    /// (a migration retrieves their archives instead).
    #[serde(skip)]
    pub not_as_archived: Vec<UploadItem>,
    /// The set's budget: its monthly figures before and after, and the files
    /// left out because they did not fit (none: the set has no budget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetOutcome>,
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

    /// Files the budget left out (exit 5 when nothing failed).
    pub fn over_budget(&self) -> bool {
        self.budget.as_ref().is_some_and(BudgetOutcome::refused_any)
    }
}

/// A file the tree holds that a backup cannot take, as status found it.
#[derive(Debug, Clone, Serialize)]
pub struct FileProblem {
    /// The file failed (unreadable, changed while read…), rather than being
    /// skipped by design (a symlink, a special file).
    #[serde(skip)]
    pub is_failure: bool,
    pub path: String,
    pub status: &'static str,
    pub reason: String,
}

/// What a backup of the whole tree ([`Engine::back_up_tree`]) found and did.
#[derive(Debug, Default)]
pub struct TreeBackup {
    pub summary: BackupSummary,
    /// Files the tree holds that could not be backed up.
    pub problems: Vec<FileProblem>,
    /// Every file of the tree by status.
    pub totals: crate::status::Rollup,
    /// What was pending when the backup began (a dry run: what it would upload).
    pub pending_files: u64,
    pub pending_bytes: u64,
    /// A dry run: each file it would upload, and its size.
    pub would_upload: Vec<(String, u64)>,
}

impl TreeBackup {
    /// Files that did not end backed up, of the uploads or of the tree.
    pub fn has_failures(&self) -> bool {
        self.summary.has_failures() || self.problems.iter().any(|p| p.is_failure)
    }
}

impl Engine {
    /// `firn backup`: compares the whole tree with the catalog, uploads what is
    /// new or changed (see [`Engine::plan`]), applies the retention policy and
    /// stores the catalog's snapshot. A dry run uploads nothing and changes
    /// nothing. Only what the backup acts on and the problems are kept of the
    /// tree, not every entry: a run with nothing to upload needs no more memory
    /// than `firn status`.
    ///
    /// What it acts on is not held either: status writes each file's step to
    /// a spill file as it settles it, and the uploads read it back as a bounded
    /// stream ([`super::planned`]), each file queued (its `Queued` event) as it
    /// comes up, after an [`Event::Planned`] announcing them all. Held whole,
    /// as before: a dry run's list (it prints every file) and the plan of a set
    /// with a budget (what fits is chosen among all of them; budgets are meant
    /// for small sets).
    pub async fn back_up_tree(
        self: &Arc<Self>,
        dry_run: bool,
        progress: &Progress,
    ) -> Result<Done<TreeBackup>> {
        let reads_before = crate::hash::ReadCounters::now();
        let whole = dry_run || self.budget.is_some();
        let mut candidates = Vec::new();
        let mut spill = if whole {
            None
        } else {
            Some(PlanSpill::new(self.state.dir())?)
        };
        let mut problems = Vec::new();
        let totals = self
            .status_each(&mut |_| {}, &mut |entry| {
                // Decided before a candidate (and its key) is made: most files of
                // a run are up to date, and nothing is done with them.
                let mtime_moved = entry
                    .archived
                    .is_some_and(|a| a.mtime_ns != entry.fingerprint.mtime_ns);
                let take = Take::of(entry.status.is_pending(), mtime_moved);
                let local = entry.status.is_pending() || entry.status == Status::UpToDate;
                match &mut spill {
                    _ if take == Take::Leave || !local => {}
                    Some(spill) if take == Take::Upload => {
                        spill.upload(&entry.key, entry.raw.as_deref(), &entry.fingerprint)
                    }
                    Some(spill) => spill.update_mtime(&entry.key, entry.fingerprint.mtime_ns),
                    None => candidates.extend(Candidate::of(entry)),
                }
                if entry.status.is_problem() {
                    problems.push(FileProblem {
                        is_failure: entry.status.is_failure(),
                        path: entry.key.clone(),
                        status: entry.status.label(),
                        reason: entry.status.reason().unwrap_or("").to_owned(),
                    });
                }
            })
            .await?;
        let mut run = TreeBackup {
            problems,
            totals,
            ..TreeBackup::default()
        };
        let after = if let Some(spill) = spill {
            run.pending_files = spill.files;
            run.pending_bytes = spill.bytes;
            let (files, bytes) = (spill.files, spill.bytes);
            let stream = spill.into_stream(self.task_ids.clone())?;
            progress.send(Event::Planned { files, bytes }).await;
            let summary = self.upload_and_sweep(stream, progress).await;
            let done = self.done(summary).await;
            run.summary = done.report;
            done.after
        } else {
            let plan = self.plan(candidates);
            run.pending_files = plan.uploads.len() as u64;
            run.pending_bytes = plan.bytes();
            if dry_run {
                let costs = self.costs_for_budget().await?;
                let (plan, _, budget) = self.cut_to_budget(plan, costs.as_ref());
                run.summary.budget = budget;
                run.would_upload = plan
                    .uploads
                    .iter()
                    .map(|u| (u.key.clone(), u.size))
                    .collect();
                AfterRun::default()
            } else {
                let done = self.run_backup(plan, progress).await;
                run.summary = done.report;
                done.after
            }
        };
        let reads = crate::hash::ReadCounters::now().since(reads_before);
        run.summary.files_read = reads.files_read;
        run.summary.bytes_read = reads.bytes_read;
        let done = Done { report: run, after };
        self.note(&done);
        Ok(done)
    }

    /// What a backup does with each candidate, the one rule for both front ends
    /// ([`Take`]): new and changed files are uploaded; an up-to-date file whose
    /// mtime moved only has its catalog mtime updated; nothing else is touched.
    /// Each upload gets a task id its progress events carry.
    pub fn plan(&self, candidates: impl IntoIterator<Item = Candidate>) -> Plan {
        let mut plan = Plan::default();
        let mut uploads = Vec::new();
        for candidate in candidates {
            match Take::of(candidate.pending, candidate.mtime_moved) {
                Take::Upload => uploads.push(candidate),
                Take::UpdateMtime => plan.mtime_updates.push((candidate.key, candidate.mtime_ns)),
                Take::Leave => {}
            }
        }
        plan.uploads = uploads
            .into_iter()
            .map(|c| UploadItem {
                id: c.id.unwrap_or_else(|| self.task_ids.next()),
                key: c.key,
                raw: c.raw,
                size: c.size,
                fingerprint: c.fingerprint,
                cancel: c.cancel,
                expect: None,
            })
            .collect();
        plan
    }

    /// Runs one backup job: uploads `plan` (up to `concurrency` at once), then
    /// applies the retention policy to every superseded archive, sums both up,
    /// and stores the catalog's snapshot. Files not started when the job is
    /// cancelled are reported cancelled at once; only uploads in flight are
    /// awaited.
    ///
    /// With a budget, the uploads that do not fit are left out first (see the
    /// module docs) and reported `Cancelled` (a front end that showed them as
    /// queued settles them); the summary's `budget` says what was left out.
    pub async fn backup(self: &Arc<Self>, plan: Plan, progress: &Progress) -> Done<BackupSummary> {
        let done = self.run_backup(plan, progress).await;
        self.note(&done);
        done
    }

    /// [`Engine::backup`], not noted in the run's history (a job that runs it
    /// notes its own report).
    async fn run_backup(self: &Arc<Self>, plan: Plan, progress: &Progress) -> Done<BackupSummary> {
        let (plan, budget) = match self.costs_for_budget().await {
            Ok(costs) => {
                let (plan, refused, budget) = self.cut_to_budget(plan, costs.as_ref());
                for item in &refused {
                    progress.send(Event::Cancelled { id: item.id }).await;
                }
                (plan, budget)
            }
            Err(e) => {
                // Without the figure nothing can be said to fit: nothing goes.
                for item in &plan.uploads {
                    progress.send(Event::Cancelled { id: item.id }).await;
                }
                let summary = BackupSummary {
                    failed: vec![FailedFile {
                        path: "(budget)".into(),
                        reason: format!("{e:#}; nothing was uploaded"),
                    }],
                    ..BackupSummary::default()
                };
                return self.done(summary).await;
            }
        };
        let uploads = !plan.uploads.is_empty();
        let mut summary = self
            .upload_and_sweep(PlanStream::of(plan.uploads, plan.mtime_updates), progress)
            .await;
        if let Some(mut budget) = budget {
            // What the run stored (and retention deleted), as the catalog says
            // now; the planned figure if it cannot be read.
            if (uploads || summary.superseded_deleted > 0)
                && let Ok(now) = self.cost_summary(crate::model::now_secs()).await
            {
                budget.used = now.monthly_storage;
                budget.superseded_archives = now.superseded.archives;
            }
            summary.budget = Some(budget);
        }
        self.done(summary).await
    }

    /// What the set costs now, when it has a budget to keep under.
    async fn costs_for_budget(&self) -> Result<Option<crate::cost::CostSummary>> {
        if self.budget.is_none() {
            return Ok(None);
        }
        let costs = self.cost_summary(crate::model::now_secs()).await.context(
            "cannot work out the set's monthly storage charge to keep it within its budget",
        )?;
        Ok(Some(costs))
    }

    /// Cuts `plan` to the set's budget, given what the set `costs` now: the
    /// uploads that fit (in the plan's order), those left out, and the
    /// figures. No budget: the plan as it is.
    fn cut_to_budget(
        &self,
        mut plan: Plan,
        costs: Option<&crate::cost::CostSummary>,
    ) -> (Plan, Vec<UploadItem>, Option<BudgetOutcome>) {
        let (Some(budget), Some(costs)) = (&self.budget, costs) else {
            return (plan, Vec::new(), None);
        };
        let used = costs.monthly_storage;
        let sizes: Vec<u64> = plan.uploads.iter().map(|u| u.size).collect();
        // Packed files share their pack's per-archive overhead.
        let packs = self.packing.enabled.then(|| crate::budget::PackEstimate {
            threshold: self.packing.threshold,
            size: self
                .packing
                .size
                .unwrap_or_else(|| self.store.default_pack_size())
                .max(1),
        });
        let fits = budget.fit(used, &sizes, packs, &self.prices);
        let (mut kept, mut refused) = (Vec::new(), Vec::new());
        for (item, fits) in plan.uploads.into_iter().zip(fits) {
            if fits {
                kept.push(item);
            } else {
                refused.push(item);
            }
        }
        let monthly = |items: &[&UploadItem]| -> f64 {
            let sizes: Vec<u64> = items.iter().map(|u| u.size).collect();
            crate::budget::monthly_of_files(&sizes, packs, &self.prices)
        };
        let kept_monthly = monthly(&kept.iter().collect::<Vec<_>>());
        // What the refused files would add after the kept ones.
        let all_monthly = monthly(&kept.iter().chain(&refused).collect::<Vec<_>>());
        let outcome = BudgetOutcome {
            currency: budget.currency.clone(),
            limit: budget.per_month,
            used_before: used,
            used: used + kept_monthly,
            refused_files: refused.len() as u64,
            refused_bytes: refused.iter().map(|u| u.size).sum(),
            refused_monthly: (all_monthly - kept_monthly).max(0.0),
            refused: refused.iter().map(|u| u.key.clone()).collect(),
            superseded_archives: costs.superseded.archives,
        };
        plan.uploads = kept;
        (plan, refused, Some(outcome))
    }

    async fn upload_and_sweep(
        self: &Arc<Self>,
        plan: PlanStream,
        progress: &Progress,
    ) -> BackupSummary {
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

    pub(super) async fn update_mtime(&self, key: &str, mtime_ns: i64) -> Result<()> {
        if let Some(current) = self.catalog.current(key).await? {
            self.catalog
                .update_mtime(key, &current.archive_id, mtime_ns)
                .await?;
        }
        Ok(())
    }
}
