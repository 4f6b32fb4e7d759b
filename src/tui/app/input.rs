//! Keys and the mouse: who gets a key (the open dialog, the help overlay, the
//! search being typed, else the key map), and what each mapped action does,
//! one function per concern.

use crossterm::event::{KeyEvent, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::action::Effect;
use super::dialogs::{Answer, Dialog};
use super::state::{Focus, Phase, State};
use crate::engine::Orphan;
use crate::scan::ScanProgress;
use crate::tui::keys::{Key, KeyAction, Lookup};
use crate::tui::tree::ROOT;

impl State {
    pub(super) fn on_key(&mut self, event: KeyEvent) -> Vec<Effect> {
        if event.kind == KeyEventKind::Release {
            return Vec::new();
        }
        self.message = None;
        let key = Key::from_event(&event);
        if self.dialog.is_some() {
            return self.on_dialog_key(&key);
        }
        if let Some(scroll) = self.panes.help {
            self.panes.help = self.on_help_key(scroll, key);
            return Vec::new();
        }
        if self.browse.search.is_some() {
            self.browse.search_key(&key);
            return Vec::new();
        }
        let prefix = self.prefix.take();
        let lookup = match self.keys.lookup(prefix, key) {
            // Not a sequence after all: the key on its own.
            Lookup::None if prefix.is_some() => self.keys.lookup(None, key),
            other => other,
        };
        match lookup {
            Lookup::Action(action) => self.key_action(action),
            Lookup::Prefix => {
                self.prefix = Some(key);
                Vec::new()
            }
            Lookup::None => Vec::new(),
        }
    }

    /// The help overlay scrolls, or closes (None).
    fn on_help_key(&self, scroll: u16, key: Key) -> Option<u16> {
        use KeyAction as A;
        match self.keys.lookup(None, key) {
            Lookup::Action(A::Down) => Some(scroll.saturating_add(1)),
            Lookup::Action(A::Up) => Some(scroll.saturating_sub(1)),
            Lookup::Action(A::PageDown) => Some(scroll.saturating_add(10)),
            Lookup::Action(A::PageUp) => Some(scroll.saturating_sub(10)),
            Lookup::Action(A::Help | A::Back | A::Quit) => None,
            _ => Some(scroll),
        }
    }

    fn key_action(&mut self, action: KeyAction) -> Vec<Effect> {
        use KeyAction as A;
        match action {
            A::Up
            | A::Down
            | A::PageUp
            | A::PageDown
            | A::HalfPageUp
            | A::HalfPageDown
            | A::Top
            | A::Bottom => self.navigate(action),
            // In the jobs pane, Enter opens the job's file and `r` keeps meaning
            // "retry".
            A::Open | A::Retrieve if self.focus == Focus::Jobs => return self.jobs_action(action),
            A::FocusNext | A::CancelJob | A::RetryJob => return self.jobs_action(action),
            A::Collapse
            | A::Expand
            | A::ExpandAll
            | A::Open
            | A::Mark
            | A::ClearMarks
            | A::Search
            | A::SearchNext
            | A::SearchPrev
            | A::NextPending
            | A::PrevPending
            | A::Sort
            | A::View => self.browse_action(action),
            A::Upload
            | A::BackupAll
            | A::Retrieve
            | A::Delete
            | A::Prune
            | A::Cost
            | A::Reconcile
            | A::Migrate
            | A::History
            | A::Rescan => return self.work_action(action),
            A::ToggleDetails | A::ToggleLog | A::Help | A::Back | A::Quit => {
                self.window_action(action)
            }
            A::Bandwidth => self.ask_bandwidth(),
            // Read only in dialogs (the map's lookup for the panes never gives them).
            A::Confirm
            | A::Accept
            | A::Decline
            | A::NextTier
            | A::PrevTier
            | A::ClearText
            | A::NewInventory
            | A::Adopt
            | A::DeleteOrphans => {}
        }
        Vec::new()
    }

    /// Moving the selection of the focused pane.
    fn navigate(&mut self, action: KeyAction) {
        use KeyAction as A;
        let page = self.page();
        let delta = match action {
            A::Up => -1,
            A::Down => 1,
            A::PageUp => -page,
            A::PageDown => page,
            A::HalfPageUp => -(page / 2).max(1),
            A::HalfPageDown => (page / 2).max(1),
            A::Top => isize::MIN / 2,
            A::Bottom => isize::MAX / 2,
            _ => return,
        };
        self.move_by(delta);
    }

    /// The tree: opening, marking, searching, sorting, views.
    fn browse_action(&mut self, action: KeyAction) {
        use KeyAction as A;
        let browse = &mut self.browse;
        match action {
            A::Collapse => browse.collapse(),
            A::Expand => browse.expand(),
            A::ExpandAll => browse.expand_all(),
            A::Open => browse.toggle_open(),
            A::Mark => browse.toggle_mark(),
            A::ClearMarks => browse.tree.clear_marks(),
            A::Search => browse.start_search(),
            A::SearchNext | A::SearchPrev => {
                if let Err(message) = browse.search_again(action == A::SearchNext) {
                    self.message = Some(message);
                }
            }
            A::NextPending | A::PrevPending => {
                let found = browse.jump_pending(action == A::NextPending);
                if !found {
                    self.message = Some("nothing pending".into());
                }
            }
            A::Sort => browse.next_sort(),
            A::View => browse.next_view(),
            _ => {}
        }
    }

    /// Starting work, or asking about it first.
    fn work_action(&mut self, action: KeyAction) -> Vec<Effect> {
        use KeyAction as A;
        match action {
            A::Upload => return self.upload_targets(),
            A::BackupAll => self.ask_backup_all(),
            A::Retrieve => return self.ask_retrieval(),
            A::Delete => return self.plan_deletion(),
            A::Prune => {
                self.message = Some("looking for superseded versions…".into());
                return vec![Effect::PlanPrune];
            }
            A::Cost => {
                self.message = Some("adding up the archives…".into());
                return vec![Effect::LoadCost];
            }
            A::Reconcile => self.dialog = Some(Dialog::Reconciliation),
            A::History => {
                self.message = Some("reading the run history…".into());
                return vec![Effect::LoadHistory];
            }
            A::Migrate => return self.ask_migration(),
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
            _ => {}
        }
        Vec::new()
    }

    /// The jobs pane: focus, cancel, retry, jump to a job's file.
    fn jobs_action(&mut self, action: KeyAction) -> Vec<Effect> {
        use KeyAction as A;
        match action {
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
            A::Open => {
                if let Some(job) = self.jobs.selected_row().and_then(|row| self.jobs.get(row)) {
                    let node = job.node;
                    self.focus = Focus::Tree;
                    self.select_node(node);
                }
            }
            A::Retrieve => {
                if let Some(row) = self.target_job() {
                    return self.retry(row);
                }
            }
            A::CancelJob => self.cancel_job(),
            A::RetryJob => return self.retry_job(),
            _ => {}
        }
        Vec::new()
    }

    /// Panes, overlays, leaving.
    fn window_action(&mut self, action: KeyAction) {
        use KeyAction as A;
        match action {
            A::ToggleDetails => self.panes.details = !self.panes.details,
            A::ToggleLog => self.panes.log = !self.panes.log,
            A::Help => self.panes.help = Some(0),
            A::Back => {
                if self.focus == Focus::Jobs {
                    self.focus = Focus::Tree;
                } else if self.browse.tree.marked_count() > 0 {
                    self.browse.tree.clear_marks();
                }
            }
            A::Quit => self.ask_quit(),
            _ => {}
        }
    }

    /// A key while a dialog is open: what its choices make of it.
    fn on_dialog_key(&mut self, key: &Key) -> Vec<Effect> {
        let Some(dialog) = &mut self.dialog else {
            return Vec::new();
        };
        let reconciliation = self.set.reconciliation.as_deref();
        let Some(answer) = dialog.answer(&self.keys, key, reconciliation) else {
            return Vec::new();
        };
        match answer {
            Answer::NextTier | Answer::PrevTier | Answer::Type | Answer::ClearText => {
                let tiers: Vec<_> = self.set.tiers.iter().map(|(t, _)| *t).collect();
                dialog.edit(answer, key, &tiers);
                Vec::new()
            }
            Answer::Yes => {
                if let Some(why) = dialog.not_ready() {
                    self.message = Some(why.into());
                    return Vec::new();
                }
                match self.dialog.take() {
                    Some(dialog) => self.go_ahead(dialog),
                    None => Vec::new(),
                }
            }
            Answer::No => {
                self.dialog = None;
                Vec::new()
            }
            Answer::NewInventory => {
                self.dialog = None;
                self.message = Some("asking the store for an inventory…".into());
                vec![Effect::RunInventory]
            }
            Answer::Adopt => self.adopt_orphans(),
            Answer::DeleteOrphans => {
                let orphans = self.orphans();
                if !orphans.is_empty() {
                    self.dialog = Some(Dialog::ConfirmDeleteOrphans { orphans });
                }
                Vec::new()
            }
        }
    }

    /// A dialog answered yes: what it asked for.
    fn go_ahead(&mut self, dialog: Dialog) -> Vec<Effect> {
        match dialog {
            Dialog::ConfirmBackupAll { .. } => self.start_upload(&[ROOT]),
            Dialog::ConfirmQuit { .. } => {
                self.begin_quit();
                Vec::new()
            }
            Dialog::Retrieve {
                keys,
                tier,
                destination,
                ..
            } => {
                let items = self.current_versions(keys);
                self.start_retrieval(items, tier, destination.trim().to_string(), false)
            }
            Dialog::ConfirmOverwrite {
                keys,
                tier,
                destination,
            } => {
                let items = self.current_versions(keys);
                self.start_retrieval(items, tier, destination, true)
            }
            Dialog::ConfirmDelete { plan, .. } => self.start_deletion(plan),
            Dialog::ConfirmMigration { offer, tier } => self.start_migration(offer, tier),
            Dialog::ConfirmDeleteOrphans { orphans } => {
                self.message = Some("deleting orphans…".into());
                vec![Effect::DeleteOrphans(orphans)]
            }
            Dialog::Bandwidth {
                upload,
                download,
                field,
                ..
            } => self.apply_bandwidth(upload, download, field),
            Dialog::Cost(_)
            | Dialog::History(_)
            | Dialog::Reconciliation
            | Dialog::Error { .. } => Vec::new(),
        }
    }

    /// The orphans of the last reconciliation.
    fn orphans(&self) -> Vec<Orphan> {
        self.set
            .reconciliation
            .as_ref()
            .map(|r| r.orphans.clone())
            .unwrap_or_default()
    }

    /// Adopts the orphans whose description names a file.
    fn adopt_orphans(&mut self) -> Vec<Effect> {
        let mut adoptable = self.orphans();
        adoptable.retain(|o| o.refused.is_none());
        if adoptable.is_empty() {
            self.message = Some("no orphan has a description firn can adopt".into());
            return Vec::new();
        }
        self.dialog = None;
        self.message = Some("adopting orphans…".into());
        vec![Effect::AdoptOrphans(adoptable)]
    }

    pub(super) fn on_mouse(&mut self, event: MouseEvent) {
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
                if in_jobs {
                    self.jobs.move_by(delta);
                    self.focus = Focus::Jobs;
                } else if in_tree {
                    self.browse.move_by(delta);
                    self.focus = Focus::Tree;
                } else {
                    self.move_by(delta);
                }
            }
            MouseEventKind::Down(MouseButton::Left) => {
                if in_tree {
                    self.focus = Focus::Tree;
                    if let Some(row) = areas.tree_row_at(event.row) {
                        self.browse.click(row);
                    }
                } else if in_jobs {
                    self.focus = Focus::Jobs;
                    if let Some(row) = areas.job_row_at(event.row) {
                        let index = self.job_window(areas.job_rows()) + row;
                        if index < self.jobs.len() {
                            self.jobs.selected = index;
                        }
                    }
                }
            }
            _ => return,
        }
        self.dirty = true;
    }
}
