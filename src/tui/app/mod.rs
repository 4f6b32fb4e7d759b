//! The TUI's state and its one reducer: `update(&mut State, Action) -> Vec<Effect>`.
//! No terminal and no I/O here: the runtime (`tui/mod.rs`) turns terminal events,
//! engine events and background results into actions, and effects into tasks.
//!
//! The state is composed by concern ([`state`]): the browse state
//! ([`browse`]: tree, rows, selection, search, marks), the jobs
//! (`tui::jobs`), the open dialog ([`dialogs`]); [`input`] routes keys and the
//! mouse, [`work`] starts work and [`done`] takes in what finished.

mod action;
mod bandwidth;
mod browse;
mod dialogs;
mod done;
mod input;
mod migrate;
mod set_limits;
mod state;
mod work;

pub use action::{
    Action, Details, Effect, MigrationOffer, OpenedSource, RestoreReport, RetrievalGroup,
    RetrieveItem,
};
pub use bandwidth::{Bandwidth, Direction, LimitShown};
pub use browse::{Browse, Search};
pub use dialogs::{Answer, Choice, Dialog, Keys};
pub use migrate::{default_tier, migrate_key};
pub use state::{Clock, Focus, LOG_LINES, Panes, Phase, SetInfo, State};

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
        Action::ScanDone(result) => {
            state.scan_done(result);
            Vec::new()
        }
        Action::Engine(event) => {
            if let Some(change) = state.jobs.apply(event, state.clock.ms) {
                state.apply_change(change);
            }
            Vec::new()
        }
        Action::BatchDone { batch, summary } => {
            state.batch_done(batch, summary);
            Vec::new()
        }
        Action::RestoreDone { batch, report } => state.restore_done(batch, report),
        Action::ResumeRetrievals(groups) => state.resume_retrievals(groups),
        Action::RetrievalQuoted { keys, quote } => {
            state.retrieval_quoted(&keys, quote);
            Vec::new()
        }
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
        Action::MonthlyLoaded(monthly) => {
            state.set.monthly = Some(monthly);
            Vec::new()
        }
        Action::CostLoaded(summary) => {
            state.message = None;
            state.set.monthly = Some(summary.monthly_storage);
            state.dialog = Some(Dialog::Cost(summary));
            Vec::new()
        }
        Action::HistoryLoaded(runs) => {
            state.message = None;
            state.dialog = Some(match runs {
                Ok(runs) => Dialog::History(runs),
                Err(message) => Dialog::Error {
                    title: "Cannot read the run history".into(),
                    message,
                },
            });
            Vec::new()
        }
        Action::BackupsLoaded(backups) => {
            state.set.backups = Some(*backups);
            Vec::new()
        }
        Action::Reconciled {
            reconciliation,
            show,
        } => {
            state.message = None;
            state.set.reconciliation = reconciliation;
            if show {
                state.dialog = Some(Dialog::Reconciliation);
            }
            Vec::new()
        }
        Action::OrphansActed(results) => state.orphans_acted(results),
        Action::MigrationPlanned(planned) => {
            state.migration_planned(planned);
            Vec::new()
        }
        Action::MigrationDone { batch, report } => state.migration_done(batch, report),
        Action::Notice(line) => {
            state.log(line.clone());
            state.message = Some(line);
            Vec::new()
        }
        Action::Details(details) => {
            state.details_loaded(*details);
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
        Action::Bandwidth(bandwidth) => {
            state.bandwidth = bandwidth;
            Vec::new()
        }
        Action::Terminate => {
            state.begin_quit();
            Vec::new()
        }
    };
    state.refresh();
    effects.extend(state.follow_selection());
    effects
}
