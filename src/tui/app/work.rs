//! Starting work: the rows a batch adds to the jobs pane, the marks it moves in
//! the tree, and the effect that asks the runtime to run it (uploads, retrievals,
//! deletions, retries), and quitting, which cancels it.

use tokio_util::sync::CancellationToken;

use super::action::{Effect, RetrieveItem};
use super::dialogs::Dialog;
use super::state::{Focus, Migration, State};
use crate::engine::{Candidate, DeletionPlan, RetrievalQuote, Take, TaskId};
use crate::fmt::plural;
use crate::model::Tier;
use crate::tui::jobs::{JobKind, JobState, NewJob, NodeChange};
use crate::tui::text::human_bytes;
use crate::tui::tree::{Class, JobMark, NodeId, ROOT, Tree};

/// Files a batch would upload from `targets`, and mtime-only updates: what the
/// engine's rule ([`Take`]) takes, of the files no job of this session holds.
fn collect(tree: &Tree, targets: &[NodeId]) -> (Vec<NodeId>, Vec<NodeId>) {
    let mut uploads = Vec::new();
    let mut mtimes = Vec::new();
    for id in files_under(tree, targets) {
        let node = tree.node(id);
        let mtime_moved = node.class == Class::UpToDate && tree.mtime_moved(id);
        match Take::of(node.class.is_pending(), mtime_moved) {
            Take::Upload if matches!(node.job, JobMark::None | JobMark::Failed) => uploads.push(id),
            Take::UpdateMtime if node.job == JobMark::None => mtimes.push(id),
            _ => {}
        }
    }
    (uploads, mtimes)
}

/// Every file at or under `targets`, once each.
fn files_under(tree: &Tree, targets: &[NodeId]) -> Vec<NodeId> {
    let mut files = Vec::new();
    for &target in targets {
        tree.files_under(target, &mut files);
    }
    files.sort_unstable();
    files.dedup();
    files
}

/// Files under `targets` that have an archived version to retrieve or delete.
fn archived_under(tree: &Tree, targets: &[NodeId]) -> Vec<NodeId> {
    let mut files = files_under(tree, targets);
    files.retain(|&id| {
        matches!(
            tree.node(id).class,
            Class::Changed | Class::UpToDate | Class::ArchivedOnly
        )
    });
    files
}

impl State {
    /// `u`: uploads what is pending under the marked entries or the selection.
    pub(super) fn upload_targets(&mut self) -> Vec<Effect> {
        if !self.ready() {
            return Vec::new();
        }
        let targets = self.browse.targets();
        self.start_upload(&targets)
    }

    /// `U`: asks before backing up everything pending.
    pub(super) fn ask_backup_all(&mut self) {
        if !self.ready() {
            return;
        }
        let tree = &self.browse.tree;
        let (uploads, mtimes) = collect(tree, &[ROOT]);
        if uploads.is_empty() && mtimes.is_empty() {
            self.message = Some("nothing pending: every file is up to date".into());
        } else {
            let bytes = uploads.iter().map(|&id| tree.node(id).size).sum();
            self.dialog = Some(Dialog::ConfirmBackupAll {
                files: uploads.len() as u64,
                bytes,
            });
        }
    }

    pub(super) fn start_upload(&mut self, targets: &[NodeId]) -> Vec<Effect> {
        let (uploads, mtimes) = collect(&self.browse.tree, targets);
        if uploads.is_empty() && mtimes.is_empty() {
            self.message = Some("nothing to upload there: no new or changed files".into());
            return Vec::new();
        }
        let mut candidates = Vec::with_capacity(uploads.len() + mtimes.len());
        let mut jobs = Vec::with_capacity(uploads.len());
        for &node_id in &uploads {
            let cancel = CancellationToken::new();
            let candidate = self.candidate(node_id, Some(cancel.clone()));
            jobs.push(NewJob {
                id: candidate.id.unwrap_or_default(),
                node: node_id,
                key: candidate.key.clone(),
                bytes: candidate.size,
                cancel,
            });
            candidates.push(candidate);
            self.set_job_mark(node_id, JobMark::Queued);
        }
        for &node_id in &mtimes {
            let mut candidate = self.candidate(node_id, None);
            candidate.id = None;
            candidates.push(candidate);
            self.browse.tree.set_uploaded(node_id);
        }
        let bytes: u64 = jobs.iter().map(|j| j.bytes).sum();
        let batch = self.jobs.add_batch(JobKind::Upload, jobs);
        self.log(format!(
            "queued {} ({}){}",
            plural(uploads.len() as u64, "file"),
            human_bytes(bytes),
            if mtimes.is_empty() {
                String::new()
            } else {
                format!(", {} mtime updates", mtimes.len())
            }
        ));
        if matches!(self.migration, Migration::Running { .. }) {
            // One upload batch at a time (the set's concurrency limit): a
            // migration uploads too, and may wait hours for a retrieval tier.
            self.message = Some(
                "queued behind the running migration (x on one of its rows stops it; copies and jobs are kept)"
                    .into(),
            );
        }
        self.browse.tree.clear_marks();
        self.browse.after_tree_change();
        vec![Effect::Upload { batch, candidates }]
    }

    fn set_job_mark(&mut self, node: NodeId, job: JobMark) {
        let class = self.browse.tree.node(node).class;
        self.browse.tree.set_state(node, class, job);
    }

    /// What the engine's plan needs to know of a file node (with a task id for
    /// its upload from the engine's allocator).
    fn candidate(&self, node_id: NodeId, cancel: Option<CancellationToken>) -> Candidate {
        let tree = &self.browse.tree;
        let node = tree.node(node_id);
        Candidate {
            id: Some(self.set.task_ids.next()),
            key: tree.key(node_id),
            raw: tree.raw(node_id).map(Box::from),
            size: node.size,
            mtime_ns: node.mtime_ns,
            fingerprint: None,
            pending: node.class.is_pending(),
            mtime_moved: tree.mtime_moved(node_id),
            cancel,
        }
    }

    /// `r`: asks the tier and destination for what is archived under the
    /// marked entries or the selection.
    /// The dialog opens at once with an estimate by file; the engine's plan
    /// (one retrieval per archive and per pack, a pack's whole bytes) replaces
    /// it when it comes ([`Effect::QuoteRetrieval`]).
    pub(super) fn ask_retrieval(&mut self) -> Vec<Effect> {
        if !self.ready() {
            return Vec::new();
        }
        let tree = &self.browse.tree;
        let files = archived_under(tree, &self.browse.targets());
        if files.is_empty() {
            self.message = Some("nothing archived there to retrieve".into());
            return Vec::new();
        }
        let bytes = files.iter().map(|&id| tree.node(id).size).sum();
        let keys: Vec<String> = files.iter().map(|&id| tree.key(id)).collect();
        self.dialog = Some(Dialog::Retrieve {
            keys: keys.clone(),
            bytes,
            tier: Tier::Standard,
            destination: self.set.root.clone(),
            quote: None,
        });
        vec![Effect::QuoteRetrieval { keys }]
    }

    /// The engine's plan of a retrieval, for the dialog still asking about
    /// the same files (one closed or reopened meanwhile keeps its own).
    pub(super) fn retrieval_quoted(&mut self, for_keys: &[String], plan: Box<RetrievalQuote>) {
        if let Some(Dialog::Retrieve { keys, quote, .. }) = &mut self.dialog
            && keys.as_slice() == for_keys
        {
            *quote = Some(plan);
        }
    }

    /// `d`: asks the runtime what deleting the current archives under the
    /// marked entries or the selection would cost.
    pub(super) fn plan_deletion(&mut self) -> Vec<Effect> {
        if !self.ready() {
            return Vec::new();
        }
        let tree = &self.browse.tree;
        let files = archived_under(tree, &self.browse.targets());
        if files.is_empty() {
            self.message = Some("nothing archived there to delete".into());
            return Vec::new();
        }
        let keys = files.iter().map(|&id| tree.key(id)).collect();
        self.message = Some("working out what the deletion costs…".into());
        vec![Effect::PlanDeletion { keys }]
    }

    /// The current versions of `keys` to retrieve, with the sizes the tree shows.
    pub(super) fn current_versions(&self, keys: Vec<String>) -> Vec<(RetrieveItem, u64)> {
        let tree = &self.browse.tree;
        keys.into_iter()
            .map(|key| {
                let size = tree.find(&key).map_or(0, |id| tree.node(id).size);
                let item = RetrieveItem {
                    key,
                    archive_id: None,
                };
                (item, size)
            })
            .collect()
    }

    /// Opens a retrieval batch in the jobs pane and asks the runtime to run it.
    pub(super) fn start_retrieval(
        &mut self,
        items: Vec<(RetrieveItem, u64)>,
        tier: Tier,
        destination: String,
        overwrite: bool,
    ) -> Vec<Effect> {
        let cancel = CancellationToken::new();
        let items: Vec<(TaskId, RetrieveItem, u64)> = items
            .into_iter()
            .map(|(item, size)| (self.set.task_ids.next(), item, size))
            .collect();
        let jobs = items
            .iter()
            .map(|(id, item, size)| NewJob {
                id: *id,
                node: self.browse.tree.find(&item.key).unwrap_or(ROOT),
                key: item.key.clone(),
                bytes: *size,
                cancel: cancel.clone(),
            })
            .collect();
        let kind = JobKind::Retrieve {
            tier,
            destination: destination.clone(),
            started_at: self.clock.now_secs,
        };
        let batch = self.jobs.add_batch(kind, jobs);
        self.log(format!(
            "retrieving {} ({} tier) into {destination}",
            plural(items.len() as u64, "file"),
            tier.as_str()
        ));
        self.browse.tree.clear_marks();
        vec![Effect::Restore {
            batch,
            items: items.into_iter().map(|(id, item, _)| (id, item)).collect(),
            tier,
            destination,
            overwrite,
            cancel,
        }]
    }

    /// Opens a deletion batch in the jobs pane and asks the runtime to run it.
    pub(super) fn start_deletion(&mut self, plan: DeletionPlan) -> Vec<Effect> {
        let cancel = CancellationToken::new();
        let jobs = plan
            .items
            .iter()
            .map(|item| NewJob {
                id: item.id,
                node: self.browse.tree.find(&item.record.key).unwrap_or(ROOT),
                key: item.record.key.clone(),
                bytes: item.record.size,
                cancel: cancel.clone(),
            })
            .collect();
        let batch = self.jobs.add_batch(JobKind::Delete, jobs);
        self.log(format!(
            "deleting {} ({})",
            plural(plan.items.len() as u64, "archive"),
            human_bytes(plan.total_bytes)
        ));
        self.browse.tree.clear_marks();
        vec![Effect::Delete {
            batch,
            plan,
            cancel,
        }]
    }

    /// The job the cancel / retry keys act on: the selected row of the jobs
    /// pane, or the selected file's latest job.
    pub(super) fn target_job(&self) -> Option<usize> {
        match self.focus {
            Focus::Jobs => self.jobs.selected_row(),
            Focus::Tree => self.selected_node().and_then(|n| self.jobs.of_node(n)),
        }
    }

    pub(super) fn cancel_job(&mut self) {
        match self.target_job().and_then(|row| self.jobs.cancel(row)) {
            Some(key) => self.log(format!("cancelling {key}")),
            None => self.message = Some("no running or queued upload selected".into()),
        }
    }

    pub(super) fn retry_job(&mut self) -> Vec<Effect> {
        match self.target_job() {
            Some(row) => self.retry(row),
            None => {
                self.message = Some("no failed upload selected".into());
                Vec::new()
            }
        }
    }

    /// Runs a failed or cancelled job again: a retrieval with its tier and
    /// destination (the job the store already has is reused), an upload if its
    /// file is still pending.
    pub(super) fn retry(&mut self, row: usize) -> Vec<Effect> {
        let job = self.jobs.job(row);
        let retryable = matches!(job.state, JobState::Failed(_) | JobState::Cancelled);
        if job.is_migration() {
            // The plan decides how each archive is copied: a new one picks up
            // what is left (copies and jobs are kept).
            self.message = Some(format!(
                "press {} to run the migration again: it copies what is left",
                super::migrate::migrate_key(&self.keys)
            ));
            return Vec::new();
        }
        if retryable
            && let JobKind::Retrieve {
                tier, destination, ..
            } = job.kind.clone()
        {
            // By key: a failed or cancelled retrieval has no archive of its own
            // recorded in the job.
            let item = RetrieveItem {
                key: job.key.clone(),
                archive_id: None,
            };
            let size = job.bytes;
            return self.start_retrieval(vec![(item, size)], tier, destination, false);
        }
        let node = self.browse.tree.node(job.node);
        if job.is_retrieval()
            || job.node == ROOT
            || !retryable
            || !node.class.is_pending()
            || !matches!(node.job, JobMark::None | JobMark::Failed)
        {
            self.message =
                Some("only a failed or cancelled upload of a pending file can be retried".into());
            return Vec::new();
        }
        let (node_id, cancel) = (job.node, job.cancel.clone());
        let candidate = self.candidate(node_id, Some(cancel));
        let batch = self
            .jobs
            .retry_batch(&[(row, candidate.id.unwrap_or_default())]);
        self.set_job_mark(node_id, JobMark::Queued);
        self.log(format!("retrying {}", plural(1, "upload")));
        self.browse.after_tree_change();
        vec![Effect::Upload {
            batch,
            candidates: vec![candidate],
        }]
    }

    /// `q`: asks first while jobs are unfinished.
    pub(super) fn ask_quit(&mut self) {
        let running = self.jobs.active();
        if running > 0 && !self.quitting() {
            self.dialog = Some(Dialog::ConfirmQuit { running });
        } else {
            self.begin_quit();
        }
    }

    /// Quits at once when nothing runs; else cancels every job, settles the
    /// queued ones at once and waits for what is in flight.
    pub(super) fn begin_quit(&mut self) {
        self.dialog = None;
        if self.request_exit() {
            for change in self.jobs.cancel_all(self.clock.ms) {
                self.apply_change(change);
            }
            self.log("quitting: cancelled the queued work; waiting for what is in flight to stop");
        }
    }

    /// What a reduced engine event did to a tree-tracking row, in the tree.
    pub(super) fn apply_change(&mut self, change: NodeChange) {
        match change {
            NodeChange::Started(node) => self.set_job_mark(node, JobMark::Uploading),
            NodeChange::Done(node) => {
                self.browse.tree.set_uploaded(node);
                self.details_changed(node);
            }
            NodeChange::Failed(node, reason) => {
                self.set_job_mark(node, JobMark::Failed);
                let key = self.browse.tree.key(node);
                self.log(format!("failed: {key}: {reason}"));
            }
            NodeChange::Cancelled(node) => self.set_job_mark(node, JobMark::None),
            NodeChange::Note(note) => self.log(note),
        }
        self.browse.after_tree_change();
    }
}
