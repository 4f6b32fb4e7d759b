//! Keys and the mouse: who gets a key (the open dialog, the help overlay, the
//! search being typed, else the key map), and what each mapped action does,
//! one function per concern.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Position;

use super::action::Effect;
use super::dialogs::Dialog;
use super::state::{Focus, Phase, State};
use crate::engine::Orphan;
use crate::model::Tier;
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
            | A::Rescan => return self.work_action(action),
            A::ToggleDetails | A::ToggleLog | A::Help | A::Back | A::Quit => {
                self.window_action(action)
            }
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
            A::Retrieve => self.ask_retrieval(),
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

    fn on_dialog_key(&mut self, key: &Key) -> Vec<Effect> {
        let Some(dialog) = self.dialog.clone() else {
            return Vec::new();
        };
        let yes = matches!(
            key.code,
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter
        );
        let no = matches!(
            key.code,
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q')
        );
        match dialog {
            Dialog::Retrieve { .. } => return self.on_retrieve_dialog(key),
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
            Dialog::Reconciliation => return self.on_reconciliation_key(key),
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
        Vec::new()
    }

    /// Keys typed into the retrieval dialog: tier with Tab / arrows, the
    /// destination as text, Enter to go, Esc to cancel.
    fn on_retrieve_dialog(&mut self, key: &Key) -> Vec<Effect> {
        let Some(Dialog::Retrieve {
            keys,
            tier,
            destination,
            ..
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
                self.dialog = None;
                let items = self.current_versions(keys);
                return self.start_retrieval(items, tier, destination, false);
            }
            _ => {}
        }
        Vec::new()
    }

    /// In the reconciliation view: `n` a new inventory, `a` adopt the orphans
    /// whose description names a file, `x` delete orphans (asks), Esc closes.
    fn on_reconciliation_key(&mut self, key: &Key) -> Vec<Effect> {
        let orphans: Vec<Orphan> = self
            .set
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
