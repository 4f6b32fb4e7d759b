//! Everything on screen, composed by concern: the set being shown, the browse
//! state (tree, rows, selection, search), the jobs, the open dialog, which
//! panes are open, the log.

use std::collections::VecDeque;

use ratatui::layout::Rect;

use super::action::{Details, Effect};
use super::bandwidth::Bandwidth;
use super::browse::Browse;
use super::dialogs::Dialog;
use crate::backend::StoreSettings;
use crate::budget::Budget;
use crate::cost::Prices;
use crate::engine::{Reconciliation, TaskIds};
use crate::history::Backups;
use crate::model::Tier;
use crate::scan::ScanProgress;
use crate::tui::jobs::Jobs;
use crate::tui::keys::{Key, KeyMap};
use crate::tui::layout::{self, Areas};
use crate::tui::theme::Theme;
use crate::tui::tree::{NodeId, ROOT, Tree};

pub const LOG_LINES: usize = 500;

#[derive(Debug, Clone)]
pub enum Phase {
    Scanning(ScanProgress),
    Ready,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Tree,
    Jobs,
}

/// The backup set on screen and what firn knows of it besides the tree.
#[derive(Debug)]
pub struct SetInfo {
    pub root: String,
    pub id: String,
    /// What kind of store the set uses (`S3 DEEP_ARCHIVE`, `Glacier vault`…);
    /// empty until the runtime says.
    pub store: String,
    /// The retrieval tiers the store offers, fastest first, each with its usual
    /// wait: seconds (from, to) from request to ready.
    pub tiers: Vec<(Tier, (u64, u64))>,
    /// The set's prices, for the estimates dialogs show.
    pub prices: Prices,
    /// The last comparison of the store's inventory with the catalog.
    pub reconciliation: Option<Box<Reconciliation>>,
    /// Where task ids come from: the engine's allocator once the runtime sets it.
    pub task_ids: TaskIds,
    /// The store the set used before (`previous_store` in the config), which a
    /// migration copies from.
    pub previous_store: Option<StoreSettings>,
    /// The last backup and the backup runs that failed since, once read.
    pub backups: Option<Backups>,
    /// The age past which the last backup shows as stale (None: never).
    pub stale_after: Option<std::time::Duration>,
    /// The set's cap on its estimated monthly storage charge (`budget`).
    pub budget: Option<Budget>,
    /// The set's estimated monthly storage charge, once the engine said (at
    /// start, after each batch, in the cost view).
    pub monthly: Option<f64>,
    /// A charge of one run above which the dialogs say so (`confirm_above`).
    pub confirm_above: Option<f64>,
    /// The config file, named where a message says what to change in it.
    pub config_file: String,
}

impl SetInfo {
    /// `budget 1.97/2.00 USD/mo` once the figure is known, with how much of
    /// the budget is used (1.0: all of it).
    pub fn budget_text(&self) -> Option<(String, f64)> {
        let (budget, used) = (self.budget.as_ref()?, self.monthly?);
        let share = if budget.per_month > 0.0 {
            used / budget.per_month
        } else if used > 0.0 {
            f64::INFINITY
        } else {
            1.0
        };
        Some((budget.short_text(used), share))
    }

    /// ` — over confirm_above (1.00 USD)` when `charge` is above it: the
    /// dialogs that show a charge say so (they always ask anyway).
    pub fn over_confirm_above(&self, charge: f64) -> Option<String> {
        let limit = crate::budget::ChargeLimit {
            confirm_above: self.confirm_above,
            max_cost: None,
        };
        limit.over(charge).then(|| {
            format!(
                "over confirm_above ({})",
                self.prices.format(self.confirm_above.unwrap_or_default())
            )
        })
    }
}

/// Which optional panes and overlays are open.
#[derive(Debug, Clone, Copy)]
pub struct Panes {
    pub details: bool,
    pub log: bool,
    /// The help overlay, with how far it is scrolled.
    pub help: Option<u16>,
}

/// Milliseconds since the UI started (rates, spinners), and the wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    pub ms: u64,
    /// Unix seconds.
    pub now_secs: i64,
}

/// Where quitting stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Running,
    /// Queued work was dropped; waiting for what is in flight to stop.
    Stopping,
    Now,
}

/// Where a migration stands (one at a time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Migration {
    Idle,
    /// The previous store is being opened and the plan worked out.
    Planning,
    /// Copying, from the store `from` into `into` (targets).
    Running {
        from: String,
        into: String,
    },
}

pub struct State {
    pub set: SetInfo,
    pub keys: KeyMap,
    pub theme: Theme,
    pub phase: Phase,
    pub browse: Browse,
    pub jobs: Jobs,
    pub focus: Focus,
    pub dialog: Option<Dialog>,
    pub panes: Panes,
    /// The selected file's details, once loaded.
    pub details: Option<Details>,
    details_requested: Option<NodeId>,
    pub log: VecDeque<(i64, String)>,
    /// A one-line message in the status bar until the next key.
    pub message: Option<String>,
    pub size: (u16, u16),
    pub clock: Clock,
    exit: Exit,
    /// The first key of a two-key sequence (`gg`).
    pub(super) prefix: Option<Key>,
    /// Where a migration stands (one at a time).
    pub(super) migration: Migration,
    /// The run's bandwidth limits, as the runtime last read them.
    pub bandwidth: Bandwidth,
    /// Something changed since the last frame.
    pub dirty: bool,
}

impl State {
    pub fn new(root: String, set_id: String, keys: KeyMap, theme: Theme) -> State {
        State {
            set: SetInfo {
                root,
                id: set_id,
                store: String::new(),
                tiers: Tier::ALL.iter().map(|&t| (t, (0, 0))).collect(),
                prices: Prices::free(),
                reconciliation: None,
                task_ids: TaskIds::default(),
                previous_store: None,
                backups: None,
                stale_after: None,
                budget: None,
                monthly: None,
                confirm_above: None,
                config_file: "the config file".into(),
            },
            keys,
            theme,
            phase: Phase::Scanning(ScanProgress::default()),
            browse: Browse::default(),
            jobs: Jobs::default(),
            focus: Focus::Tree,
            dialog: None,
            panes: Panes {
                details: true,
                log: false,
                help: None,
            },
            details: None,
            details_requested: None,
            log: VecDeque::new(),
            message: None,
            size: (80, 24),
            clock: Clock::default(),
            exit: Exit::Running,
            prefix: None,
            migration: Migration::Idle,
            bandwidth: Bandwidth::default(),
            dirty: true,
        }
    }

    /// Installs a scanned tree (tests use this directly).
    pub fn set_tree(&mut self, tree: Tree) {
        // Jobs outlive a rescan: point them at the new tree's nodes (ROOT when the
        // file is gone, which retry skips).
        self.jobs.relink(|key| tree.find(key), ROOT);
        self.browse.replace_tree(tree);
        self.phase = Phase::Ready;
        self.details = None;
        self.details_requested = None;
        self.refresh();
    }

    pub fn set_clock(&mut self, clock_ms: u64, now_secs: i64) {
        self.clock = Clock {
            ms: clock_ms,
            now_secs,
        };
    }

    pub fn selected_node(&self) -> Option<NodeId> {
        self.browse.selected_node()
    }

    pub fn log(&mut self, line: impl Into<String>) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back((self.clock.now_secs, line.into()));
    }

    /// Something moves on screen without input: the runtime ticks while this holds.
    pub fn animating(&self) -> bool {
        matches!(self.phase, Phase::Scanning(_)) || self.jobs.active() > 0
    }

    /// Quitting was asked for: queued work is dropped, in-flight work awaited.
    pub fn quitting(&self) -> bool {
        self.exit != Exit::Running
    }

    /// Nothing is left to wait for: the runtime ends.
    pub fn should_quit(&self) -> bool {
        self.exit == Exit::Now
    }

    /// Quits now if no batch runs, else starts stopping (once).
    pub(super) fn request_exit(&mut self) -> bool {
        if self.jobs.running_batches == 0 {
            self.exit = Exit::Now;
            return false;
        }
        let first = self.exit == Exit::Running;
        self.exit = Exit::Stopping;
        first
    }

    /// A batch ended: when stopping and it was the last, quit.
    pub(super) fn batch_ended(&mut self) {
        if self.exit == Exit::Stopping && self.jobs.running_batches == 0 {
            self.exit = Exit::Now;
        }
    }

    /// The scan is running or failed: say so and refuse.
    pub(super) fn ready(&mut self) -> bool {
        let ready = matches!(self.phase, Phase::Ready);
        if !ready {
            self.message = Some("wait for the scan to finish".into());
        }
        ready
    }

    /// Which optional panes are open (what the layout depends on).
    pub fn open_panes(&self) -> layout::Open {
        let jobs_shown = !self.jobs.is_empty() || self.focus == Focus::Jobs;
        layout::Open {
            jobs: jobs_shown.then_some(self.jobs.len()),
            details: self.panes.details,
            log: self.panes.log,
        }
    }

    /// Where each pane goes on a screen of `area`.
    pub fn areas(&self, area: Rect) -> Areas {
        layout::layout(area, self.open_panes())
    }

    /// Where each pane goes on the terminal.
    pub(super) fn screen(&self) -> Areas {
        self.areas(Rect::new(0, 0, self.size.0, self.size.1))
    }

    /// The first job row shown in a pane of `height` rows.
    pub fn job_window(&self, height: usize) -> usize {
        self.jobs.window(height, self.focus == Focus::Jobs)
    }

    /// The store's usual wait for a retrieval of `tier`: (from, to) seconds.
    pub fn tier_wait(&self, tier: Tier) -> (u64, u64) {
        self.set
            .tiers
            .iter()
            .find(|(t, _)| *t == tier)
            .map_or((0, 0), |(_, wait)| *wait)
    }

    /// The tiers the store offers, fastest first.
    pub fn offered_tiers(&self) -> Vec<Tier> {
        self.set.tiers.iter().map(|(t, _)| *t).collect()
    }

    /// Rebuilds the rows if their shape changed and keeps both selections on
    /// screen.
    pub(super) fn refresh(&mut self) {
        let areas = self.screen();
        self.browse.refresh(areas.tree_rows());
        self.jobs.scroll(areas.job_rows());
    }

    /// The rows a page key moves by in the focused pane.
    pub(super) fn page(&self) -> isize {
        let areas = self.screen();
        let rows = match self.focus {
            Focus::Tree => areas.tree_rows(),
            Focus::Jobs => areas.job_rows(),
        };
        rows.max(1) as isize
    }

    pub(super) fn move_by(&mut self, delta: isize) {
        match self.focus {
            Focus::Tree => self.browse.move_by(delta),
            Focus::Jobs => self.jobs.move_by(delta),
        }
    }

    /// Selects `id` in the tree (opening what is above it).
    pub(super) fn select_node(&mut self, id: NodeId) {
        self.browse.select_node(id);
        self.refresh();
    }

    /// A file's upload finished: its details (hashes, versions) are stale.
    pub(super) fn details_changed(&mut self, node: NodeId) {
        if self.details_requested == Some(node) {
            self.details_requested = None;
        }
    }

    /// Loaded details arrive: kept if their file is still selected.
    pub(super) fn details_loaded(&mut self, details: Details) {
        if self.selected_node() == Some(details.node) {
            self.details = Some(details);
        }
    }

    /// The details pane follows the selection: asks for a newly selected file's.
    pub(super) fn follow_selection(&mut self) -> Option<Effect> {
        let node = self.selected_node()?;
        if self.details_requested == Some(node) {
            return None;
        }
        self.details_requested = Some(node);
        (!self.browse.tree.is_dir(node)).then(|| Effect::LoadDetails {
            node,
            key: self.browse.tree.key(node),
        })
    }
}
