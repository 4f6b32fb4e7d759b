//! The TUI's state and its one reducer: `update(&mut State, Action) -> Vec<Effect>`.
//! No terminal and no I/O here: the runtime (`mod.rs`) turns terminal events,
//! engine events and background results into actions, and effects into tasks.

use std::collections::VecDeque;

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use tokio_util::sync::CancellationToken;

use super::jobs::{JobKind, JobState, Jobs, NewJob, NodeChange};
use super::keys::{Key, KeyAction, KeyMap, Lookup};
use super::layout::{self, Areas};
use super::theme::Theme;
use super::tree::{Class, JobMark, NodeId, ROOT, SortBy, Tree, View};
use crate::cost::{CostSummary, Prices};
use crate::engine::{
    ArchiveRecord, BackupSummary, CachedHash, Candidate, DeletionPlan, DeletionReport, Event,
    Orphan, OrphanOutcome, OrphanResult, Reconciliation, RestoreTally, TaskId, TaskIds,
};
use crate::fmt::plural;
use crate::model::Tier;
use crate::scan::ScanProgress;
/// What the details pane shows for one file (loaded in the background).
#[derive(Debug, Clone)]
pub struct Details {
    pub node: NodeId,
    pub key: String,
    pub versions: Result<Vec<ArchiveRecord>, String>,
    pub cached: Option<CachedHash>,
}

#[derive(Debug, Clone)]
pub enum Phase {
    Scanning(ScanProgress),
    Ready,
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Dialog {
    ConfirmBackupAll {
        files: u64,
        bytes: u64,
    },
    /// Choose the tier and the destination of a retrieval.
    Retrieve {
        keys: Vec<String>,
        bytes: u64,
        tier: Tier,
        destination: String,
    },
    /// Archives about to be deleted, with their ages and early-deletion charges.
    ConfirmDelete {
        plan: DeletionPlan,
        /// What the plan left out and why (a prune's early archives).
        note: Option<String>,
    },
    /// What the set's archives cost.
    Cost(Box<CostSummary>),
    /// The last comparison of the store's inventory with the catalog, and what
    /// can be done about its orphans.
    Reconciliation,
    /// Delete the orphans from the store?
    ConfirmDeleteOrphans {
        orphans: Vec<Orphan>,
    },
    /// Files a retrieval found in place with other content: replace them?
    ConfirmOverwrite {
        keys: Vec<String>,
        tier: Tier,
        destination: String,
    },
    ConfirmQuit {
        running: usize,
    },
    Error {
        title: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Tree,
    Jobs,
}

#[derive(Debug, Clone)]
pub struct Search {
    pub query: String,
    /// Where the selection was when the search began (Esc goes back there).
    pub origin: Option<NodeId>,
    pub found: bool,
}

#[derive(Debug)]
pub enum Action {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// Time passed (rates, ETAs, spinners).
    Tick,
    ScanProgress(ScanProgress),
    ScanDone(Result<Box<Tree>, String>),
    /// Progress of a running job (the engine's task ids name the rows).
    Engine(Event),
    /// A backup batch ended (its retention sweep included).
    BatchDone {
        batch: u32,
        summary: BackupSummary,
    },
    /// A retrieval batch ended.
    RestoreDone {
        batch: u32,
        report: RestoreReport,
    },
    /// Retrieval jobs an earlier run left (local state), to pick up again.
    ResumeRetrievals(Vec<RetrievalGroup>),
    /// A deletion plan is ready to be confirmed.
    DeletionPlanned {
        plan: DeletionPlan,
        note: Option<String>,
    },
    DeleteDone {
        batch: u32,
        report: DeletionReport,
    },
    CostLoaded(Box<CostSummary>),
    /// The last reconciliation (at start, or a new one).
    Reconciled {
        reconciliation: Option<Box<Reconciliation>>,
        /// Open the view (the user asked for it).
        show: bool,
    },
    /// What adopting or deleting orphans did.
    OrphansActed(Vec<OrphanResult>),
    /// A line for the status bar (and the log).
    Notice(String),
    Details(Box<Details>),
    Log(String),
    Error {
        title: String,
        message: String,
    },
    /// SIGTERM / SIGHUP: stop cleanly without asking.
    Terminate,
}

/// What a retrieval batch did.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    /// Counted by the engine; files in place with other content were not touched
    /// (the user decides).
    pub tally: RestoreTally,
    pub tier: Option<Tier>,
    pub destination: String,
}

/// Persisted retrieval jobs with one destination and tier.
pub use crate::engine::ResumableRetrievals as RetrievalGroup;

/// One file to retrieve: its current version, or a given archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveItem {
    pub key: String,
    pub archive_id: Option<String>,
}

/// Work for the runtime.
#[derive(Debug)]
pub enum Effect {
    /// Plan deleting the current archives of these files (ages, charges).
    PlanDeletion {
        keys: Vec<String>,
    },
    /// Plan deleting superseded archives past their minimum storage period.
    PlanPrune,
    Delete {
        batch: u32,
        plan: DeletionPlan,
        cancel: CancellationToken,
    },
    LoadCost,
    /// Request (or reuse) an inventory job and compare it when it is ready.
    RunInventory,
    AdoptOrphans(Vec<Orphan>),
    DeleteOrphans(Vec<Orphan>),
    Restore {
        batch: u32,
        /// Each file with the task id its row reports under.
        items: Vec<(TaskId, RetrieveItem)>,
        tier: Tier,
        destination: String,
        overwrite: bool,
        /// Shared by the batch's jobs: cancelling one stops the batch (its jobs
        /// stay at the store and are picked up next time).
        cancel: CancellationToken,
    },
    /// Back up these files (the engine plans: upload or only update an mtime).
    Upload {
        batch: u32,
        candidates: Vec<Candidate>,
    },
    LoadDetails {
        node: NodeId,
        key: String,
    },
    Rescan,
}

pub const LOG_LINES: usize = 500;

pub struct State {
    pub root: String,
    pub set_id: String,
    pub keys: KeyMap,
    pub theme: Theme,
    pub phase: Phase,
    pub tree: Tree,
    /// The rows of the tree pane (expanded, filtered, sorted), rebuilt on change.
    pub rows: Vec<NodeId>,
    rows_dirty: bool,
    pub selected: usize,
    pub offset: usize,
    pub view: View,
    pub sort: SortBy,
    pub search: Option<Search>,
    pub last_search: String,
    pub focus: Focus,
    pub jobs: Jobs,
    pub job_selected: usize,
    pub job_offset: usize,
    pub show_details: bool,
    pub show_log: bool,
    pub show_help: bool,
    pub help_scroll: u16,
    pub dialog: Option<Dialog>,
    pub log: VecDeque<(i64, String)>,
    pub details: Option<Details>,
    details_requested: Option<NodeId>,
    /// A one-line message in the status bar until the next key.
    pub message: Option<String>,
    pub size: (u16, u16),
    /// The store's usual retrieval times per tier (expedited, standard, bulk),
    /// seconds from request to ready.
    pub retrieval_waits: [(u64, u64); 3],
    /// The set's prices, for the estimates dialogs show.
    pub prices: Prices,
    /// The last comparison of the store's inventory with the catalog.
    pub reconciliation: Option<Box<Reconciliation>>,
    prefix: Option<Key>,
    /// Milliseconds since the UI started, and the wall clock (unix seconds).
    pub clock_ms: u64,
    pub now_secs: i64,
    pub quitting: bool,
    pub should_quit: bool,
    /// Where task ids come from: the engine's allocator once the runtime sets it.
    pub task_ids: TaskIds,
    /// Something changed since the last frame.
    pub dirty: bool,
}

impl State {
    pub fn new(root: String, set_id: String, keys: KeyMap, theme: Theme) -> State {
        State {
            root,
            set_id,
            keys,
            theme,
            phase: Phase::Scanning(ScanProgress::default()),
            tree: Tree::new(),
            rows: Vec::new(),
            rows_dirty: false,
            selected: 0,
            offset: 0,
            view: View::All,
            sort: SortBy::Name,
            search: None,
            last_search: String::new(),
            focus: Focus::Tree,
            jobs: Jobs::default(),
            job_selected: 0,
            job_offset: 0,
            show_details: true,
            show_log: false,
            show_help: false,
            help_scroll: 0,
            dialog: None,
            log: VecDeque::new(),
            details: None,
            details_requested: None,
            message: None,
            size: (80, 24),
            retrieval_waits: [(0, 0); 3],
            prices: Prices::free(),
            reconciliation: None,
            prefix: None,
            clock_ms: 0,
            now_secs: 0,
            quitting: false,
            should_quit: false,
            task_ids: TaskIds::default(),
            dirty: true,
        }
    }

    /// Installs a scanned tree (tests use this directly).
    pub fn set_tree(&mut self, tree: Tree) {
        let keep = self.selected_node().map(|id| self.tree.key(id));
        self.tree = tree;
        // Jobs outlive a rescan: point them at the new tree's nodes (ROOT when the
        // file is gone, which retry skips).
        let tree = &self.tree;
        self.jobs.relink(|key| tree.find(key), ROOT);
        self.phase = Phase::Ready;
        self.rows_dirty = true;
        self.details = None;
        self.details_requested = None;
        self.refresh();
        if let Some(key) = keep
            && let Some(id) = self.tree.find(&key)
        {
            self.select_node(id);
        }
    }

    /// The tree's shape changed outside `update` (tests, benchmarks): rebuild rows.
    pub fn tree_changed(&mut self) {
        self.rows_dirty = true;
        self.refresh();
    }

    pub fn set_clock(&mut self, clock_ms: u64, now_secs: i64) {
        self.clock_ms = clock_ms;
        self.now_secs = now_secs;
    }

    pub fn selected_node(&self) -> Option<NodeId> {
        self.rows.get(self.selected).copied()
    }

    pub fn log(&mut self, line: impl Into<String>) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back((self.now_secs, line.into()));
    }

    /// Something moves on screen without input: the runtime ticks while this holds.
    pub fn animating(&self) -> bool {
        matches!(self.phase, Phase::Scanning(_)) || self.jobs.active() > 0
    }

    /// Which optional panes are open (what the layout depends on).
    pub fn open_panes(&self) -> layout::Open {
        let jobs_shown = !self.jobs.is_empty() || self.focus == Focus::Jobs;
        layout::Open {
            jobs: jobs_shown.then_some(self.jobs.len()),
            details: self.show_details,
            log: self.show_log,
        }
    }

    /// Where each pane goes on a screen of `area`.
    pub fn areas(&self, area: Rect) -> Areas {
        layout::layout(area, self.open_panes())
    }

    /// Where each pane goes on the terminal.
    fn screen(&self) -> Areas {
        self.areas(Rect::new(0, 0, self.size.0, self.size.1))
    }

    fn tree_height(&self) -> usize {
        self.screen().tree_rows()
    }

    fn jobs_height(&self) -> usize {
        self.screen().job_rows()
    }

    /// The store's usual wait for a retrieval of `tier`: (from, to) seconds.
    pub fn tier_wait(&self, tier: Tier) -> (u64, u64) {
        self.retrieval_waits[match tier {
            Tier::Expedited => 0,
            Tier::Standard => 1,
            Tier::Bulk => 2,
        }]
    }

    /// The first job row shown in a pane of `height` rows: follows the work
    /// unless the pane has focus.
    pub fn job_window(&self, height: usize) -> usize {
        let n = self.jobs.len();
        if height == 0 || n <= height {
            return 0;
        }
        if self.focus == Focus::Jobs {
            return self.job_offset.min(n - height);
        }
        let first_active = self
            .jobs
            .iter()
            .position(|j| !j.state.is_finished())
            .unwrap_or(n);
        first_active.saturating_sub(1).min(n - height)
    }

    /// Rebuilds the rows if their shape changed; keeps the selected node selected.
    fn refresh(&mut self) {
        if self.rows_dirty {
            let keep = self.selected_node();
            self.rows = self.tree.flatten(self.view, self.sort);
            self.rows_dirty = false;
            if let Some(node) = keep
                && let Some(index) = self.rows.iter().position(|&r| r == node)
            {
                self.selected = index;
            }
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        let height = self.tree_height().max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.offset = self.offset.min(self.rows.len().saturating_sub(height));
        let jobs = self.jobs.len();
        self.job_selected = self.job_selected.min(jobs.saturating_sub(1));
        let jh = self.jobs_height().max(1);
        if self.job_selected < self.job_offset {
            self.job_offset = self.job_selected;
        } else if self.job_selected >= self.job_offset + jh {
            self.job_offset = self.job_selected + 1 - jh;
        }
    }

    fn select_node(&mut self, id: NodeId) {
        self.tree.reveal(id);
        self.rows_dirty = true;
        self.refresh();
        if let Some(index) = self.rows.iter().position(|&r| r == id) {
            self.selected = index;
        } else if self.view != View::All {
            // Filtered out of this view: show everything so the jump lands.
            self.view = View::All;
            self.rows_dirty = true;
            self.refresh();
            if let Some(index) = self.rows.iter().position(|&r| r == id) {
                self.selected = index;
            }
        }
        self.refresh();
    }

    fn move_by(&mut self, delta: isize) {
        match self.focus {
            Focus::Tree => {
                let last = self.rows.len().saturating_sub(1) as isize;
                self.selected = (self.selected as isize + delta).clamp(0, last.max(0)) as usize;
            }
            Focus::Jobs => {
                let last = self.jobs.len().saturating_sub(1) as isize;
                self.job_selected =
                    (self.job_selected as isize + delta).clamp(0, last.max(0)) as usize;
            }
        }
    }

    fn page(&self) -> isize {
        match self.focus {
            Focus::Tree => self.tree_height().max(1) as isize,
            Focus::Jobs => self.jobs_height().max(1) as isize,
        }
    }

    /// Files a batch would upload from `targets`, and mtime-only updates.
    fn collect(&self, targets: &[NodeId]) -> (Vec<NodeId>, Vec<NodeId>) {
        let mut files = Vec::new();
        for &target in targets {
            self.tree.files_under(target, &mut files);
        }
        files.sort_unstable();
        files.dedup();
        let mut uploads = Vec::new();
        let mut mtimes = Vec::new();
        for id in files {
            let node = self.tree.node(id);
            if node.class.is_pending() && matches!(node.job, JobMark::None | JobMark::Failed) {
                uploads.push(id);
            } else if node.class == Class::UpToDate
                && node.job == JobMark::None
                && self.tree.mtime_moved(id)
            {
                mtimes.push(id);
            }
        }
        (uploads, mtimes)
    }

    fn start_upload(&mut self, targets: &[NodeId]) -> Vec<Effect> {
        let (uploads, mtimes) = self.collect(targets);
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
            let class = self.tree.node(node_id).class;
            self.tree.set_state(node_id, class, JobMark::Queued);
        }
        for &node_id in &mtimes {
            let mut candidate = self.candidate(node_id, None);
            candidate.id = None;
            candidates.push(candidate);
            self.tree.set_uploaded(node_id);
        }
        let bytes: u64 = jobs.iter().map(|j| j.bytes).sum();
        let batch = self.jobs.add_batch(JobKind::Upload, jobs);
        self.log(format!(
            "queued {} ({}){}",
            plural(uploads.len() as u64, "file"),
            super::text::human_bytes(bytes),
            if mtimes.is_empty() {
                String::new()
            } else {
                format!(", {} mtime updates", mtimes.len())
            }
        ));
        self.tree.clear_marks();
        self.after_tree_change();
        vec![Effect::Upload { batch, candidates }]
    }

    /// What the engine's plan needs to know of a file node (with a task id for
    /// its upload from the engine's allocator).
    fn candidate(&self, node_id: NodeId, cancel: Option<CancellationToken>) -> Candidate {
        let node = self.tree.node(node_id);
        Candidate {
            id: Some(self.task_ids.next()),
            key: self.tree.key(node_id),
            raw: self.tree.raw(node_id).map(Box::from),
            size: node.size,
            mtime_ns: node.mtime_ns,
            pending: node.class.is_pending(),
            mtime_moved: self.tree.mtime_moved(node_id),
            cancel,
        }
    }

    /// Files under `targets` that have an archived version to retrieve.
    fn archived_under(&self, targets: &[NodeId]) -> Vec<NodeId> {
        let mut files = Vec::new();
        for &target in targets {
            self.tree.files_under(target, &mut files);
        }
        files.sort_unstable();
        files.dedup();
        files.retain(|&id| {
            matches!(
                self.tree.node(id).class,
                Class::Changed | Class::UpToDate | Class::ArchivedOnly
            )
        });
        files
    }

    fn ask_retrieval(&mut self, targets: &[NodeId]) {
        let files = self.archived_under(targets);
        if files.is_empty() {
            self.message = Some("nothing archived there to retrieve".into());
            return;
        }
        let bytes = files.iter().map(|&id| self.tree.node(id).size).sum();
        self.dialog = Some(Dialog::Retrieve {
            keys: files.iter().map(|&id| self.tree.key(id)).collect(),
            bytes,
            tier: Tier::Standard,
            destination: self.root.clone(),
        });
    }

    /// The current versions of `keys` to retrieve, with the sizes the tree shows.
    fn current_versions(&self, keys: Vec<String>) -> Vec<(RetrieveItem, u64)> {
        keys.into_iter()
            .map(|key| {
                let size = self.tree.find(&key).map_or(0, |id| self.tree.node(id).size);
                let item = RetrieveItem {
                    key,
                    archive_id: None,
                };
                (item, size)
            })
            .collect()
    }

    /// Opens a retrieval batch in the jobs pane and asks the runtime to run it.
    fn start_retrieval(
        &mut self,
        items: Vec<(RetrieveItem, u64)>,
        tier: Tier,
        destination: String,
        overwrite: bool,
    ) -> Vec<Effect> {
        let cancel = CancellationToken::new();
        let items: Vec<(TaskId, RetrieveItem, u64)> = items
            .into_iter()
            .map(|(item, size)| (self.task_ids.next(), item, size))
            .collect();
        let jobs = items
            .iter()
            .map(|(id, item, size)| NewJob {
                id: *id,
                node: self.tree.find(&item.key).unwrap_or(ROOT),
                key: item.key.clone(),
                bytes: *size,
                cancel: cancel.clone(),
            })
            .collect();
        let kind = JobKind::Retrieve {
            tier,
            destination: destination.clone(),
            started_at: self.now_secs,
        };
        let batch = self.jobs.add_batch(kind, jobs);
        self.log(format!(
            "retrieving {} ({} tier) into {destination}",
            plural(items.len() as u64, "file"),
            tier.as_str()
        ));
        self.tree.clear_marks();
        vec![Effect::Restore {
            batch,
            items: items.into_iter().map(|(id, item, _)| (id, item)).collect(),
            tier,
            destination,
            overwrite,
            cancel,
        }]
    }

    /// Keys typed into the retrieval dialog: tier with Tab / arrows, the
    /// destination as text, Enter to go, Esc to cancel.
    fn on_retrieve_dialog(&mut self, key: &Key) -> Vec<Effect> {
        let Some(Dialog::Retrieve {
            keys,
            bytes,
            tier,
            destination,
        }) = self.dialog.as_mut()
        else {
            return Vec::new();
        };
        const TIERS: [Tier; 3] = [Tier::Expedited, Tier::Standard, Tier::Bulk];
        let index = TIERS.iter().position(|t| t == tier).unwrap_or(1);
        match key.code {
            KeyCode::Esc => self.dialog = None,
            KeyCode::Tab | KeyCode::Right | KeyCode::Down => *tier = TIERS[(index + 1) % 3],
            KeyCode::BackTab | KeyCode::Left | KeyCode::Up => *tier = TIERS[(index + 2) % 3],
            KeyCode::Backspace => {
                destination.pop();
            }
            KeyCode::Char('u') if key.mods.contains(KeyModifiers::CONTROL) => destination.clear(),
            KeyCode::Char(c) if !key.mods.contains(KeyModifiers::CONTROL) => destination.push(c),
            KeyCode::Enter => {
                let destination = destination.trim().to_string();
                if destination.is_empty() {
                    self.message = Some("type the directory to restore into".into());
                    return Vec::new();
                }
                let (tier, keys) = (*tier, std::mem::take(keys));
                let _ = bytes;
                self.dialog = None;
                let items = self.current_versions(keys);
                return self.start_retrieval(items, tier, destination, false);
            }
            _ => {}
        }
        Vec::new()
    }

    /// Opens a deletion batch in the jobs pane and asks the runtime to run it.
    fn start_deletion(&mut self, plan: DeletionPlan) -> Vec<Effect> {
        let cancel = CancellationToken::new();
        let jobs = plan
            .items
            .iter()
            .map(|item| NewJob {
                id: item.id,
                node: self.tree.find(&item.record.key).unwrap_or(ROOT),
                key: item.record.key.clone(),
                bytes: item.record.size,
                cancel: cancel.clone(),
            })
            .collect();
        let batch = self.jobs.add_batch(JobKind::Delete, jobs);
        self.log(format!(
            "deleting {} ({})",
            plural(plan.items.len() as u64, "archive"),
            super::text::human_bytes(plan.total_bytes)
        ));
        self.tree.clear_marks();
        vec![Effect::Delete {
            batch,
            plan,
            cancel,
        }]
    }

    fn delete_done(&mut self, batch: u32, report: DeletionReport) -> Vec<Effect> {
        for change in self.jobs.finish_batch(batch, self.clock_ms) {
            self.apply_change(change);
        }
        self.log(format!(
            "deletion finished: {} deleted ({}), {} failed, {} cancelled; early-deletion charge ≈ {}",
            plural(report.deleted, "archive"),
            super::text::human_bytes(report.deleted_bytes),
            report.failed.len(),
            report.cancelled,
            self.prices.format(report.charged)
        ));
        for failed in &report.failed {
            self.log(format!(
                "deletion failed: {} ({}): {}",
                failed.path, failed.archive_id, failed.reason
            ));
        }
        if self.quitting && self.jobs.running_batches == 0 {
            self.should_quit = true;
        }
        // Deleted current versions make their files new (or gone): look again.
        if report.deleted > 0 && self.jobs.running_batches == 0 && !self.quitting {
            return vec![Effect::Rescan];
        }
        Vec::new()
    }

    /// What `u`, `r` and `d` act on: the marked entries, else the selection. None
    /// (with a message) while the tree is still being scanned.
    fn targets(&mut self) -> Option<Vec<NodeId>> {
        if !matches!(self.phase, Phase::Ready) {
            self.message = Some("wait for the scan to finish".into());
            return None;
        }
        Some(if self.tree.marked_count() > 0 {
            self.tree.marked()
        } else {
            self.selected_node().into_iter().collect()
        })
    }

    /// In the reconciliation view: `n` a new inventory, `a` adopt the orphans
    /// whose description names a file, `x` delete orphans (asks), Esc closes.
    fn on_reconciliation_key(&mut self, key: &Key) -> Vec<Effect> {
        let orphans: Vec<Orphan> = self
            .reconciliation
            .as_ref()
            .map(|r| r.orphans.clone())
            .unwrap_or_default();
        match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => self.dialog = None,
            KeyCode::Char('n') => {
                self.dialog = None;
                self.message = Some("asking the store for an inventory…".into());
                return vec![Effect::RunInventory];
            }
            KeyCode::Char('a') => {
                let adoptable: Vec<Orphan> = orphans
                    .into_iter()
                    .filter(|o| o.refused.is_none())
                    .collect();
                if adoptable.is_empty() {
                    self.message = Some("no orphan has a description firn can adopt".into());
                } else {
                    self.dialog = None;
                    self.message = Some("adopting orphans…".into());
                    return vec![Effect::AdoptOrphans(adoptable)];
                }
            }
            KeyCode::Char('x') if !orphans.is_empty() => {
                self.dialog = Some(Dialog::ConfirmDeleteOrphans { orphans });
            }
            _ => {}
        }
        Vec::new()
    }

    fn orphans_acted(&mut self, results: Vec<OrphanResult>) -> Vec<Effect> {
        let mut adopted = 0;
        let mut done = std::collections::HashSet::new();
        for result in &results {
            let name = result.key.as_deref().unwrap_or(&result.archive_id);
            match &result.outcome {
                OrphanOutcome::AdoptedCurrent | OrphanOutcome::AdoptedSuperseded => {
                    adopted += 1;
                    done.insert(result.archive_id.clone());
                    self.log(format!("adopted orphan {} as {name}", result.archive_id));
                }
                OrphanOutcome::Deleted => {
                    done.insert(result.archive_id.clone());
                    self.log(format!("deleted orphan {} ({name})", result.archive_id));
                }
                OrphanOutcome::AlreadyInCatalog => {
                    done.insert(result.archive_id.clone());
                    self.log(format!(
                        "orphan {} ({name}) is in the catalog by now",
                        result.archive_id
                    ));
                }
                OrphanOutcome::Refused(why) | OrphanOutcome::Failed(why) => {
                    self.log(format!("orphan {} ({name}): {why}", result.archive_id))
                }
            }
        }
        if let Some(r) = self.reconciliation.as_mut() {
            r.orphans.retain(|o| !done.contains(&o.archive_id));
        }
        self.message = Some(format!(
            "{} of {} dealt with (details in the log, L)",
            done.len(),
            plural(results.len() as u64, "orphan")
        ));
        // Adopted archives are files the catalog now knows: look again.
        if adopted > 0 && self.jobs.running_batches == 0 {
            return vec![Effect::Rescan];
        }
        Vec::new()
    }

    fn after_tree_change(&mut self) {
        self.tree.invalidate_order(self.sort);
        if self.view != View::All || self.sort != SortBy::Name {
            self.rows_dirty = true;
        }
    }

    fn retry(&mut self, indices: Vec<usize>) -> Vec<Effect> {
        // A failed retrieval runs again with its tier and destination (the job
        // the store already has is reused).
        let (retrievals, indices): (Vec<usize>, Vec<usize>) = indices
            .into_iter()
            .partition(|&i| self.jobs.job(i).is_retrieval());
        let mut effects = Vec::new();
        for i in retrievals {
            let job = self.jobs.job(i);
            if !matches!(job.state, JobState::Failed(_) | JobState::Cancelled) {
                continue;
            }
            if let JobKind::Retrieve {
                tier, destination, ..
            } = job.kind.clone()
            {
                let job = self.jobs.job(i);
                let item = RetrieveItem {
                    key: job.key.clone(),
                    archive_id: job.archive_id.clone(),
                };
                let size = job.bytes;
                effects.extend(self.start_retrieval(vec![(item, size)], tier, destination, false));
            }
        }
        if indices.is_empty() && !effects.is_empty() {
            return effects;
        }
        let indices: Vec<usize> = indices
            .into_iter()
            .filter(|&i| {
                let job = self.jobs.job(i);
                job.node != ROOT
                    && matches!(job.state, JobState::Failed(_) | JobState::Cancelled)
                    && self.tree.node(job.node).class.is_pending()
                    && matches!(
                        self.tree.node(job.node).job,
                        JobMark::None | JobMark::Failed
                    )
            })
            .collect();
        if indices.is_empty() {
            self.message =
                Some("only a failed or cancelled upload of a pending file can be retried".into());
            return Vec::new();
        }
        let rows: Vec<(usize, TaskId)> = indices
            .iter()
            .map(|&row| (row, self.task_ids.next()))
            .collect();
        let batch = self.jobs.retry_batch(&rows);
        let mut candidates = Vec::new();
        for &(row, id) in &rows {
            let job = self.jobs.job(row);
            let (node_id, cancel) = (job.node, job.cancel.clone());
            let mut candidate = self.candidate(node_id, Some(cancel));
            candidate.id = Some(id);
            candidates.push(candidate);
            let class = self.tree.node(node_id).class;
            self.tree.set_state(node_id, class, JobMark::Queued);
        }
        self.log(format!(
            "retrying {}",
            plural(indices.len() as u64, "upload")
        ));
        self.after_tree_change();
        vec![Effect::Upload { batch, candidates }]
    }

    /// The job the cancel / retry keys act on.
    fn target_job(&self) -> Option<usize> {
        match self.focus {
            Focus::Jobs => (!self.jobs.is_empty()).then_some(self.job_selected),
            Focus::Tree => self.selected_node().and_then(|n| self.jobs.of_node(n)),
        }
    }

    fn begin_quit(&mut self) {
        self.dialog = None;
        if self.jobs.running_batches == 0 {
            self.should_quit = true;
            return;
        }
        if !self.quitting {
            self.quitting = true;
            for change in self.jobs.cancel_all(self.clock_ms) {
                self.apply_change(change);
            }
            self.log("quitting: cancelled the queued work; waiting for what is in flight to stop");
        }
    }

    fn apply_change(&mut self, change: NodeChange) {
        match change {
            NodeChange::Started(node) => {
                let class = self.tree.node(node).class;
                self.tree.set_state(node, class, JobMark::Uploading);
            }
            NodeChange::Done(node) => {
                self.tree.set_uploaded(node);
                if self.details_requested == Some(node) {
                    self.details_requested = None;
                }
            }
            NodeChange::Failed(node, reason) => {
                let class = self.tree.node(node).class;
                self.tree.set_state(node, class, JobMark::Failed);
                let key = self.tree.key(node);
                self.log(format!("failed: {key}: {reason}"));
            }
            NodeChange::Cancelled(node) => {
                let class = self.tree.node(node).class;
                self.tree.set_state(node, class, JobMark::None);
            }
            NodeChange::Note(note) => self.log(note),
        }
        self.after_tree_change();
    }

    fn key_action(&mut self, action: KeyAction) -> Vec<Effect> {
        use KeyAction as A;
        match action {
            A::Up => self.move_by(-1),
            A::Down => self.move_by(1),
            A::PageUp => self.move_by(-self.page()),
            A::PageDown => self.move_by(self.page()),
            A::HalfPageUp => self.move_by(-(self.page() / 2).max(1)),
            A::HalfPageDown => self.move_by((self.page() / 2).max(1)),
            A::Top => self.move_by(isize::MIN / 2),
            A::Bottom => self.move_by(isize::MAX / 2),
            A::Collapse => {
                if let Some(id) = self.selected_node() {
                    if self.tree.is_expanded(id) {
                        self.tree.set_expanded(id, false);
                        self.rows_dirty = true;
                    } else {
                        let parent = self.tree.node(id).parent;
                        if parent != ROOT {
                            self.select_node(parent);
                        }
                    }
                }
            }
            A::Expand => {
                if let Some(id) = self.selected_node()
                    && self.tree.is_dir(id)
                {
                    if self.tree.is_expanded(id) {
                        self.move_by(1);
                    } else {
                        self.tree.set_expanded(id, true);
                        self.rows_dirty = true;
                    }
                }
            }
            A::Open => match self.focus {
                Focus::Tree => {
                    if let Some(id) = self.selected_node()
                        && self.tree.is_dir(id)
                    {
                        let expanded = self.tree.is_expanded(id);
                        self.tree.set_expanded(id, !expanded);
                        self.rows_dirty = true;
                    }
                }
                Focus::Jobs => {
                    if let Some(job) = self.jobs.get(self.job_selected) {
                        let node = job.node;
                        self.focus = Focus::Tree;
                        self.select_node(node);
                    }
                }
            },
            A::Mark => {
                if let Some(id) = self.selected_node() {
                    self.tree.toggle_mark(id);
                    self.move_by(1);
                }
            }
            A::ClearMarks => self.tree.clear_marks(),
            A::Upload => {
                let Some(targets) = self.targets() else {
                    return Vec::new();
                };
                return self.start_upload(&targets);
            }
            A::Delete => {
                let Some(targets) = self.targets() else {
                    return Vec::new();
                };
                let files = self.archived_under(&targets);
                if files.is_empty() {
                    self.message = Some("nothing archived there to delete".into());
                    return Vec::new();
                }
                self.message = Some("working out what the deletion costs…".into());
                let keys = files.iter().map(|&id| self.tree.key(id)).collect();
                return vec![Effect::PlanDeletion { keys }];
            }
            A::Prune => {
                self.message = Some("looking for superseded versions…".into());
                return vec![Effect::PlanPrune];
            }
            A::Cost => {
                self.message = Some("adding up the archives…".into());
                return vec![Effect::LoadCost];
            }
            A::Reconcile => self.dialog = Some(Dialog::Reconciliation),
            // In the jobs pane, `r` keeps meaning "retry".
            A::Retrieve if self.focus == Focus::Jobs => {
                if let Some(index) = self.target_job() {
                    return self.retry(vec![index]);
                }
            }
            A::Retrieve => {
                let Some(targets) = self.targets() else {
                    return Vec::new();
                };
                self.ask_retrieval(&targets);
            }
            A::BackupAll => {
                if !matches!(self.phase, Phase::Ready) {
                    self.message = Some("wait for the scan to finish".into());
                    return Vec::new();
                }
                let (uploads, mtimes) = self.collect(&[ROOT]);
                if uploads.is_empty() && mtimes.is_empty() {
                    self.message = Some("nothing pending: every file is up to date".into());
                } else {
                    let bytes = uploads.iter().map(|&id| self.tree.node(id).size).sum();
                    self.dialog = Some(Dialog::ConfirmBackupAll {
                        files: uploads.len() as u64,
                        bytes,
                    });
                }
            }
            A::Search => {
                self.search = Some(Search {
                    query: String::new(),
                    origin: self.selected_node(),
                    found: true,
                });
            }
            A::SearchNext | A::SearchPrev => {
                let query = self.last_search.clone();
                if query.is_empty() {
                    self.message = Some("no search yet: press / to search".into());
                } else {
                    let from = self.selected_node().unwrap_or(ROOT);
                    match self.tree.search(from, &query, action == A::SearchNext) {
                        Some(id) => self.select_node(id),
                        None => self.message = Some(format!("no name contains {query:?}")),
                    }
                }
            }
            A::NextPending | A::PrevPending => {
                let from = self.selected_node().unwrap_or(ROOT);
                match self.tree.next_pending(from, action == A::NextPending) {
                    Some(id) => self.select_node(id),
                    None => self.message = Some("nothing pending".into()),
                }
            }
            A::Sort => {
                self.sort = self.sort.next();
                self.rows_dirty = true;
            }
            A::View => {
                self.view = self.view.next();
                self.rows_dirty = true;
            }
            A::FocusNext => {
                self.focus = match self.focus {
                    Focus::Tree if !self.jobs.is_empty() => Focus::Jobs,
                    Focus::Tree => {
                        self.message = Some("no uploads yet".into());
                        Focus::Tree
                    }
                    Focus::Jobs => Focus::Tree,
                };
            }
            A::CancelJob => match self.target_job().and_then(|row| self.jobs.cancel(row)) {
                Some(key) => self.log(format!("cancelling {key}")),
                None => self.message = Some("no running or queued upload selected".into()),
            },
            A::RetryJob => match self.target_job() {
                Some(i) => return self.retry(vec![i]),
                None => self.message = Some("no failed upload selected".into()),
            },
            A::ToggleDetails => self.show_details = !self.show_details,
            A::ToggleLog => self.show_log = !self.show_log,
            A::Rescan => {
                if self.jobs.running_batches > 0 {
                    self.message = Some("uploads are running: rescan when they finish".into());
                } else if matches!(self.phase, Phase::Scanning(_)) {
                    self.message = Some("already scanning".into());
                } else {
                    self.phase = Phase::Scanning(ScanProgress::default());
                    return vec![Effect::Rescan];
                }
            }
            A::Help => {
                self.show_help = true;
                self.help_scroll = 0;
            }
            A::Back => {
                if self.focus == Focus::Jobs {
                    self.focus = Focus::Tree;
                } else if self.tree.marked_count() > 0 {
                    self.tree.clear_marks();
                }
            }
            A::Quit => {
                let running = self.jobs.active();
                if running > 0 && !self.quitting {
                    self.dialog = Some(Dialog::ConfirmQuit { running });
                } else {
                    self.begin_quit();
                }
            }
        }
        Vec::new()
    }

    fn on_key(&mut self, event: KeyEvent) -> Vec<Effect> {
        if event.kind == KeyEventKind::Release {
            return Vec::new();
        }
        self.message = None;
        let key = Key::from_event(&event);
        if let Some(dialog) = self.dialog.clone() {
            let yes = matches!(
                key.code,
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter
            );
            let no = matches!(
                key.code,
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q')
            );
            match dialog {
                Dialog::Retrieve { .. } => return self.on_retrieve_dialog(&key),
                Dialog::ConfirmOverwrite {
                    keys,
                    tier,
                    destination,
                } if yes => {
                    self.dialog = None;
                    let items = self.current_versions(keys);
                    return self.start_retrieval(items, tier, destination, true);
                }
                Dialog::ConfirmDelete { plan, .. } if key.code == KeyCode::Char('y') => {
                    // Only an explicit `y`: Enter is too easy to press by habit here.
                    self.dialog = None;
                    return self.start_deletion(plan);
                }
                Dialog::ConfirmDelete { .. } if key.code == KeyCode::Enter => {}
                Dialog::Cost(_) if yes || no => self.dialog = None,
                Dialog::Reconciliation => return self.on_reconciliation_key(&key),
                Dialog::ConfirmDeleteOrphans { orphans } if key.code == KeyCode::Char('y') => {
                    self.dialog = None;
                    self.message = Some("deleting orphans…".into());
                    return vec![Effect::DeleteOrphans(orphans)];
                }
                Dialog::ConfirmDeleteOrphans { .. } if key.code == KeyCode::Enter => {}
                Dialog::Error { .. } if yes || no => self.dialog = None,
                Dialog::ConfirmBackupAll { .. } if yes => {
                    self.dialog = None;
                    return self.start_upload(&[ROOT]);
                }
                Dialog::ConfirmQuit { .. } if yes => self.begin_quit(),
                _ if no => self.dialog = None,
                _ => {}
            }
            return Vec::new();
        }
        if self.show_help {
            match self.keys.lookup(None, key) {
                Lookup::Action(KeyAction::Down) => {
                    self.help_scroll = self.help_scroll.saturating_add(1)
                }
                Lookup::Action(KeyAction::Up) => {
                    self.help_scroll = self.help_scroll.saturating_sub(1)
                }
                Lookup::Action(KeyAction::PageDown) => {
                    self.help_scroll = self.help_scroll.saturating_add(10)
                }
                Lookup::Action(KeyAction::PageUp) => {
                    self.help_scroll = self.help_scroll.saturating_sub(10)
                }
                Lookup::Action(KeyAction::Help | KeyAction::Back | KeyAction::Quit) => {
                    self.show_help = false
                }
                _ => {}
            }
            return Vec::new();
        }
        if let Some(search) = &mut self.search {
            let ctrl = key.mods.contains(crossterm::event::KeyModifiers::CONTROL);
            match key.code {
                KeyCode::Esc => {
                    let origin = search.origin;
                    self.search = None;
                    if let Some(origin) = origin {
                        self.select_node(origin);
                    }
                    return Vec::new();
                }
                KeyCode::Enter => {
                    self.last_search = search.query.clone();
                    self.search = None;
                    return Vec::new();
                }
                KeyCode::Backspace => {
                    search.query.pop();
                }
                KeyCode::Char('c') if ctrl => {
                    self.search = None;
                    return Vec::new();
                }
                KeyCode::Char(c) if !ctrl => search.query.push(c),
                KeyCode::Down | KeyCode::Up => {
                    let forward = key.code == KeyCode::Down;
                    let query = search.query.clone();
                    let from = self.selected_node().unwrap_or(ROOT);
                    if let Some(id) = self.tree.search(from, &query, forward) {
                        self.select_node(id);
                    }
                    return Vec::new();
                }
                _ => return Vec::new(),
            }
            // Incremental: the first match at or after where the search began.
            let query = search.query.clone();
            let origin = search.origin.unwrap_or(ROOT);
            let start = if origin == ROOT { ROOT } else { origin - 1 };
            let found = self.tree.search(start, &query, true);
            if let Some(search) = &mut self.search {
                search.found = found.is_some() || query.is_empty();
            }
            self.last_search = query;
            match found {
                Some(id) => self.select_node(id),
                None if self.last_search.is_empty() => {
                    if let Some(origin) = self.search.as_ref().and_then(|s| s.origin) {
                        self.select_node(origin);
                    }
                }
                None => {}
            }
            return Vec::new();
        }
        let prefix = self.prefix.take();
        match self.keys.lookup(prefix, key) {
            Lookup::Action(action) => self.key_action(action),
            Lookup::Prefix => {
                self.prefix = Some(key);
                Vec::new()
            }
            Lookup::None if prefix.is_some() => {
                // Not a sequence after all: treat the key on its own.
                match self.keys.lookup(None, key) {
                    Lookup::Action(action) => self.key_action(action),
                    Lookup::Prefix => {
                        self.prefix = Some(key);
                        Vec::new()
                    }
                    Lookup::None => Vec::new(),
                }
            }
            Lookup::None => Vec::new(),
        }
    }

    fn on_mouse(&mut self, event: MouseEvent) {
        let areas = self.screen();
        let at = Position::new(event.column, event.row);
        let in_jobs = areas.in_jobs(at);
        let in_tree = areas.in_tree(at);
        match event.kind {
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let delta = if event.kind == MouseEventKind::ScrollDown {
                    3
                } else {
                    -3
                };
                let focus = self.focus;
                if in_jobs {
                    self.focus = Focus::Jobs;
                } else if in_tree {
                    self.focus = Focus::Tree;
                }
                self.move_by(delta);
                if !in_jobs && !in_tree {
                    self.focus = focus;
                }
            }
            MouseEventKind::Down(MouseButton::Left) => {
                if in_tree {
                    self.focus = Focus::Tree;
                    if let Some(row) = areas.tree_row_at(event.row) {
                        let index = self.offset + row;
                        if index < self.rows.len() {
                            if index == self.selected
                                && let Some(id) = self.selected_node()
                                && self.tree.is_dir(id)
                            {
                                let expanded = self.tree.is_expanded(id);
                                self.tree.set_expanded(id, !expanded);
                                self.rows_dirty = true;
                            }
                            self.selected = index;
                        }
                    }
                } else if in_jobs {
                    self.focus = Focus::Jobs;
                    if let Some(row) = areas.job_row_at(event.row) {
                        let index = self.job_window(areas.job_rows()) + row;
                        if index < self.jobs.len() {
                            self.job_selected = index;
                        }
                    }
                }
            }
            _ => return,
        }
        self.dirty = true;
    }
}

impl State {
    fn restore_done(&mut self, batch: u32, report: RestoreReport) -> Vec<Effect> {
        for change in self.jobs.finish_batch(batch, self.clock_ms) {
            self.apply_change(change);
        }
        let RestoreReport {
            tally: report,
            tier,
            destination,
        } = report;
        let mut line = format!(
            "retrieval finished: {} restored, {} identical, {} waiting, {} failed",
            report.restored,
            report.identical,
            report.waiting,
            report.failed.len()
        );
        if !report.conflicts.is_empty() {
            line.push_str(&format!(
                ", {} in place with other content",
                report.conflicts.len()
            ));
        }
        self.log(line);
        for (key, reason) in &report.failed {
            self.log(format!("retrieval failed: {key}: {reason}"));
        }
        if report.waiting > 0 {
            self.log(format!(
                "{} still at the store: the jobs are kept and picked up when firn starts again",
                plural(report.waiting, "file")
            ));
        }
        let into_root = destination.trim_end_matches('/') == self.root.trim_end_matches('/');
        if !report.conflicts.is_empty()
            && let Some(tier) = tier
        {
            self.dialog = Some(Dialog::ConfirmOverwrite {
                keys: report.conflicts,
                tier,
                destination,
            });
        }
        if self.quitting && self.jobs.running_batches == 0 {
            self.should_quit = true;
        }
        // Files restored into the tree itself change their status: look again.
        if into_root && report.restored > 0 && self.jobs.running_batches == 0 {
            return vec![Effect::Rescan];
        }
        Vec::new()
    }
}

/// The one reducer.
pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    state.dirty = true;
    let mut effects = match action {
        Action::Key(key) => state.on_key(key),
        Action::Mouse(mouse) => {
            state.on_mouse(mouse);
            Vec::new()
        }
        Action::Resize(w, h) => {
            state.size = (w, h);
            Vec::new()
        }
        Action::Tick => Vec::new(),
        Action::ScanProgress(progress) => {
            if let Phase::Scanning(p) = &mut state.phase {
                *p = progress;
            }
            Vec::new()
        }
        Action::ScanDone(Ok(tree)) => {
            let totals = *tree.totals();
            state.set_tree(*tree);
            state.log(format!(
                "scanned: {} entries, {} pending ({})",
                super::text::count(state.tree.len() as u64),
                super::text::count(u64::from(totals.pending())),
                super::text::human_bytes(totals.pending_bytes)
            ));
            Vec::new()
        }
        Action::ScanDone(Err(message)) => {
            state.phase = Phase::Failed;
            state.log(format!("scan failed: {message}"));
            state.dialog = Some(Dialog::Error {
                title: "Cannot scan the tree".into(),
                message,
            });
            Vec::new()
        }
        Action::Engine(event) => {
            if let Some(change) = state.jobs.apply(event, state.clock_ms) {
                state.apply_change(change);
            }
            Vec::new()
        }
        Action::BatchDone { batch, summary } => {
            for change in state.jobs.finish_batch(batch, state.clock_ms) {
                state.apply_change(change);
            }
            let mut line = format!(
                "batch finished: {} uploaded ({}), {} failed, {} cancelled",
                plural(summary.uploaded_files, "file"),
                super::text::human_bytes(summary.uploaded_bytes),
                summary.failed.len(),
                summary.cancelled
            );
            if summary.mtimes_updated > 0 {
                line.push_str(&format!(", {} mtimes updated", summary.mtimes_updated));
            }
            if summary.superseded_deleted > 0 {
                line.push_str(&format!(
                    "; retention deleted {}",
                    plural(summary.superseded_deleted, "superseded archive")
                ));
            }
            state.log(line);
            for failure in &summary.failed {
                state.log(format!("failed: {}: {}", failure.path, failure.reason));
            }
            if state.quitting && state.jobs.running_batches == 0 {
                state.should_quit = true;
            }
            Vec::new()
        }
        Action::RestoreDone { batch, report } => state.restore_done(batch, report),
        Action::DeletionPlanned { plan, note } => {
            state.message = None;
            if plan.is_empty() {
                state.message = Some(note.unwrap_or_else(|| "nothing to delete".into()));
            } else {
                state.dialog = Some(Dialog::ConfirmDelete { plan, note });
            }
            Vec::new()
        }
        Action::DeleteDone { batch, report } => state.delete_done(batch, report),
        Action::Reconciled {
            reconciliation,
            show,
        } => {
            state.message = None;
            state.reconciliation = reconciliation;
            if show {
                state.dialog = Some(Dialog::Reconciliation);
            }
            Vec::new()
        }
        Action::OrphansActed(results) => state.orphans_acted(results),
        Action::Notice(line) => {
            state.log(line.clone());
            state.message = Some(line);
            Vec::new()
        }
        Action::CostLoaded(summary) => {
            state.message = None;
            state.dialog = Some(Dialog::Cost(summary));
            Vec::new()
        }
        Action::ResumeRetrievals(groups) => {
            let mut effects = Vec::new();
            for group in groups {
                state.log(format!(
                    "picking up {} requested by an earlier run",
                    plural(group.items.len() as u64, "retrieval job")
                ));
                let items = group
                    .items
                    .into_iter()
                    .map(|(key, archive_id, size)| {
                        (
                            RetrieveItem {
                                key,
                                archive_id: Some(archive_id),
                            },
                            size,
                        )
                    })
                    .collect();
                effects.extend(state.start_retrieval(items, group.tier, group.destination, false));
            }
            effects
        }
        Action::Details(details) => {
            if state.selected_node() == Some(details.node) {
                state.details = Some(*details);
            }
            Vec::new()
        }
        Action::Log(line) => {
            state.log(line);
            Vec::new()
        }
        Action::Error { title, message } => {
            state.log(format!("{title}: {message}"));
            state.dialog = Some(Dialog::Error { title, message });
            Vec::new()
        }
        Action::Terminate => {
            state.begin_quit();
            Vec::new()
        }
    };
    state.refresh();
    // The details pane follows the selection.
    if let Some(node) = state.selected_node()
        && state.details_requested != Some(node)
    {
        state.details_requested = Some(node);
        if !state.tree.is_dir(node) {
            effects.push(Effect::LoadDetails {
                node,
                key: state.tree.key(node),
            });
        }
    }
    effects
}
