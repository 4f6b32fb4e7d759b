//! The terminal UI: `firn [ROOT]` with no subcommand.
//!
//! Shape (ratatui's template): [`app::State`] holds everything on screen,
//! [`app::update`] is the one reducer of [`app::Action`]s (keys, mouse, engine
//! events, background results) and returns [`app::Effect`]s for this runtime to
//! start as tasks, and [`view::view`] draws a frame from the state. The scan, the
//! hashing, the catalog look-ups and the uploads all run on background tasks, so
//! input and drawing never wait for them; a frame is drawn when something changed
//! (and on a tick only while something animates: the scan spinner, rates, ETAs).

pub mod app;
pub mod jobs;
pub mod keys;
pub mod layout;
pub mod settings;
pub mod text;
pub mod theme;
pub mod tree;
pub mod view;

use std::io::{Stdout, stdout};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event, EventStream};
use crossterm::execute;
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use app::{Action, Dialog, Effect, State, update};
pub use settings::Settings;
pub use tree::Tree;
pub use view::view;

use crate::config::ResolvedSet;
use crate::engine::{
    AfterRun, Done, Engine, Event as EngineEvent, FailedFile, InventoryOutcome, MigrateOptions,
    MigrationReport, OrphanAction, Progress, Reconciliation, RecordLookup, RestoreOptions,
    RestoreTally, TaskId,
};
use crate::history::{FrontEnd, Run, SetRef};
use crate::model::{Tier, now_secs};
use crate::scan::ScanProgress;
type Term = Terminal<CrosstermBackend<Stdout>>;

/// Opens the UI on one backup set and runs it until the user quits.
pub async fn run(set: &ResolvedSet, config_flag: Option<&Path>) -> Result<ExitCode> {
    let settings = Settings::load(config_flag)?;
    // The set's lock for the whole session, and what an interrupted run left
    // finished before anything shows as pending.
    let opened = match Engine::open_to_work(set, "tui").await {
        Ok(opened) => opened,
        // Another firn works on the set: say so and leave, as the CLI does.
        Err(e) if e.chain().any(|c| c.is::<crate::lock::Busy>()) => return Err(e),
        Err(e) => {
            // A missing vault or table, bad credentials, an unreachable endpoint:
            // say so in the interface the user opened, then exit as the CLI would.
            let message = crate::fmt::one_line(&e);
            show_fatal(set, settings, "Cannot open the backup set", &message).await?;
            return Err(e);
        }
    };
    let (engine, recovery) = (opened.engine, opened.recovery);

    let mut state = State::new(
        set.root.display().to_string(),
        set.id.clone(),
        settings.keys,
        settings.theme,
    );
    for line in recovery.messages() {
        state.log(line);
    }
    state.set.previous_store = set.previous_store.clone();
    state.set.stale_after = set.stale_after;
    state.set.budget = set.budget.clone();
    state.set.confirm_above = set.confirm_above;
    if let Some(config) = &set.config_file {
        state.set.config_file = config.display().to_string();
    }

    let mut terminal = init_terminal().context("cannot set up the terminal")?;
    let result = event_loop(&mut terminal, &mut state, engine, set.history()).await;
    restore_terminal();
    let _ = terminal.show_cursor();
    result
}

/// Shows one error dialog until a key is pressed, then gives the terminal back.
async fn show_fatal(
    set: &ResolvedSet,
    settings: Settings,
    title: &str,
    message: &str,
) -> Result<()> {
    let mut state = State::new(
        set.root.display().to_string(),
        set.id.clone(),
        settings.keys,
        settings.theme,
    );
    state.dialog = Some(Dialog::Error {
        title: title.to_string(),
        message: format!("{message}\n\nPress any key to quit."),
    });
    let mut terminal = init_terminal().context("cannot set up the terminal")?;
    let mut events = EventStream::new();
    let outcome = async {
        loop {
            let size = terminal.size()?;
            state.size = (size.width, size.height);
            terminal.draw(|frame| view(&state, frame))?;
            match events.next().await {
                Some(Ok(Event::Key(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    restore_terminal();
    let _ = terminal.show_cursor();
    outcome
}

/// Raw mode, alternate screen, mouse; a panic hook that undoes them first.
fn init_terminal() -> std::io::Result<Term> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        hook(info);
    }));
    crossterm::terminal::enable_raw_mode()?;
    execute!(stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    Terminal::new(CrosstermBackend::new(stdout()))
}

/// Puts the terminal back as it was (safe to call more than once).
pub fn restore_terminal() {
    let _ = execute!(
        stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = crossterm::terminal::disable_raw_mode();
}

/// Walks and compares on a background task; the tree is built off the UI too.
fn spawn_scan(engine: Arc<Engine>, tx: mpsc::UnboundedSender<Action>) {
    tokio::spawn(async move {
        let progress = tx.clone();
        let mut on_scan = move |p: ScanProgress| {
            let _ = progress.send(Action::ScanProgress(p));
        };
        let action = match engine.status(&mut on_scan).await {
            Ok(report) => {
                match tokio::task::spawn_blocking(move || Tree::from_report(report)).await {
                    Ok(tree) => Action::ScanDone(Ok(Box::new(tree))),
                    Err(e) => Action::ScanDone(Err(format!("building the tree failed: {e}"))),
                }
            }
            Err(e) => Action::ScanDone(Err(format!("{e:#}"))),
        };
        let _ = tx.send(action);
    });
}

struct Runtime {
    engine: Arc<Engine>,
    /// Where the jobs started here are recorded as runs.
    history: SetRef,
    tx: mpsc::UnboundedSender<Action>,
    /// One upload batch (or migration: it uploads too) at a time, so the set's
    /// concurrency limit holds.
    batches: Arc<tokio::sync::Mutex<()>>,
    cancel: CancellationToken,
}

impl Runtime {
    /// Runs `work` on a task of its own and hands its result to the reducer.
    fn spawn<F>(&self, work: impl FnOnce(Arc<Engine>, mpsc::UnboundedSender<Action>) -> F)
    where
        F: std::future::Future<Output = Action> + Send + 'static,
    {
        let work = work(Arc::clone(&self.engine), self.tx.clone());
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(work.await);
        });
    }

    /// Runs a job that changes the set on a task of its own, as a run of
    /// `command` in the set's history (its exit code the one `firn` would
    /// give the same outcome; no hook runs: the person is watching), and
    /// hands its result to the reducer.
    fn spawn_run<F>(
        &self,
        command: &'static str,
        work: impl FnOnce(Arc<Engine>, mpsc::UnboundedSender<Action>) -> F,
    ) where
        F: std::future::Future<Output = Action> + Send + 'static,
    {
        let run = Run::for_set(self.history.clone(), command, FrontEnd::Tui);
        let work = work(Arc::clone(&self.engine), self.tx.clone());
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let action = run.scope(work).await;
            let _ = tx.send(action);
            let recorded = tokio::task::spawn_blocking(move || run.finish_noted()).await;
            for warning in recorded.map(|r| r.warnings).unwrap_or_default() {
                let _ = tx.send(Action::Log(format!("warning: {warning}")));
            }
        });
    }

    /// The progress of one job: its events go to the reducer as they come, and
    /// `cancel` (or quitting) stops it.
    fn progress(&self, cancel: CancellationToken) -> (Progress, tokio::task::JoinHandle<()>) {
        let (progress, mut events) = Progress::channel(1024, cancel);
        let tx = self.tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if tx.send(Action::Engine(event)).is_err() {
                    break;
                }
            }
        });
        (progress, forward)
    }

    fn start(&self, effect: Effect) {
        match effect {
            Effect::Upload { batch, candidates } => {
                let lock = Arc::clone(&self.batches);
                let (progress, forward) = self.progress(self.cancel.child_token());
                self.spawn_run("upload", |engine, tx| async move {
                    let _turn = lock.lock().await;
                    let done = engine.backup(engine.plan(candidates), &progress).await;
                    drop(progress);
                    let _ = forward.await;
                    let summary = done.report;
                    log_after(&tx, Action::BatchDone { batch, summary }, done.after)
                });
            }
            Effect::Restore {
                batch,
                items,
                tier,
                destination,
                overwrite,
                cancel,
            } => {
                let (progress, forward) = self.progress(cancel);
                self.spawn_run("restore", |engine, tx| async move {
                    let tally =
                        restore_batch(&engine, items, tier, &destination, overwrite, &progress, &tx)
                            .await;
                    drop(progress);
                    let _ = forward.await;
                    Action::RestoreDone {
                        batch,
                        report: app::RestoreReport {
                            tally,
                            tier: Some(tier),
                            destination,
                        },
                    }
                });
            }
            Effect::QuoteRetrieval { keys } => self.spawn(|engine, _| async move {
                let lookups: Vec<RecordLookup> = keys
                    .iter()
                    .map(|key| RecordLookup {
                        key: Some(key.clone()),
                        archive_id: None,
                    })
                    .collect();
                let quoted = match engine.look_up(&lookups).await {
                    Ok(found) => {
                        let records: Vec<_> = found.into_iter().flatten().collect();
                        engine.retrieval_quote(&records, Tier::Standard).await
                    }
                    Err(e) => Err(e),
                };
                match quoted {
                    Ok(quote) => Action::RetrievalQuoted {
                        keys,
                        quote: Box::new(quote),
                    },
                    // The dialog keeps its estimate by file.
                    Err(e) => Action::Notice(format!("cannot work out the retrieval's plan: {e:#}")),
                }
            }),
            Effect::PlanDeletion { keys } => self.spawn(|engine, _| async move {
                let lookups: Vec<RecordLookup> = keys
                    .into_iter()
                    .map(|key| RecordLookup {
                        key: Some(key),
                        archive_id: None,
                    })
                    .collect();
                match engine.look_up(&lookups).await {
                    Ok(found) => {
                        let mut plan =
                            engine.plan_deletion(found.into_iter().flatten().collect(), now_secs());
                        // Packed files: forgotten (bytes kept in the pack) or
                        // deleted with their pack.
                        match engine.settle_packs(&mut plan).await {
                            Ok(()) => Action::DeletionPlanned { plan, note: None },
                            Err(e) => error("Cannot read the catalog", &e),
                        }
                    }
                    Err(e) => error("Cannot read the catalog", &e),
                }
            }),
            Effect::PlanPrune => self.spawn(|engine, _| async move {
                match engine.plan_prune(now_secs(), false).await {
                    Ok(prunable) => Action::DeletionPlanned {
                        note: prunable.kept_early(engine.prices()),
                        plan: prunable.plan,
                    },
                    Err(e) => error("Cannot read the catalog", &e),
                }
            }),
            Effect::Delete {
                batch,
                plan,
                cancel,
            } => {
                let (progress, forward) = self.progress(cancel);
                self.spawn_run("delete", |engine, tx| async move {
                    let done = engine.delete_archives(&plan, &progress).await;
                    drop(progress);
                    let _ = forward.await;
                    let report = done.report;
                    log_after(&tx, Action::DeleteDone { batch, report }, done.after)
                });
            }
            Effect::RunInventory => self.spawn_run("inventory", |engine, _| async move {
                match engine.inventory(false, false).await {
                    Ok(InventoryOutcome::Ready(r)) => Action::Reconciled {
                        reconciliation: Some(r),
                        show: true,
                    },
                    Ok(InventoryOutcome::Waiting {
                        requested_at,
                        ready_at,
                    }) => Action::Notice(format!(
                        "inventory job requested {}, ready {}: press I, then n, later (the job is reused)",
                        text::format_time(requested_at),
                        ready_at.map_or_else(
                            || "in a few hours".into(),
                            |at| format!("~{}", text::format_time(at))
                        )
                    )),
                    Err(e) => error("Cannot take an inventory", &e),
                }
            }),
            Effect::AdoptOrphans(orphans) => self.spawn_run("inventory", |engine, tx| async move {
                let chosen = Reconciliation {
                    orphans,
                    ..Reconciliation::default()
                };
                match engine.act_on_orphans(&OrphanAction::Adopt, &chosen).await {
                    Ok(done) => log_after(&tx, Action::OrphansActed(done.report), done.after),
                    Err(e) => error("Cannot adopt the orphans", &e),
                }
            }),
            Effect::DeleteOrphans(orphans) => self.spawn_run("inventory", |engine, tx| async move {
                let chosen = Reconciliation {
                    orphans,
                    ..Reconciliation::default()
                };
                let delete = OrphanAction::Delete { only: Vec::new() };
                match engine.act_on_orphans(&delete, &chosen).await {
                    Ok(done) => log_after(&tx, Action::OrphansActed(done.report), done.after),
                    Err(e) => error("Cannot delete the orphans", &e),
                }
            }),
            Effect::LoadHistory => {
                let set = self.history.clone();
                self.spawn(|_, _| async move {
                    let runs =
                        tokio::task::spawn_blocking(move || crate::history::runs(&set, 50)).await;
                    Action::HistoryLoaded(match runs {
                        Ok(Ok(runs)) => Ok(runs),
                        Ok(Err(e)) => Err(crate::fmt::one_line(&e)),
                        Err(e) => Err(e.to_string()),
                    })
                });
            }
            Effect::LoadMonthly => self.spawn(|engine, _| async move {
                match engine.cost_summary(now_secs()).await {
                    Ok(summary) => Action::MonthlyLoaded(summary.monthly_storage),
                    Err(e) => Action::Log(format!(
                        "cannot work out the monthly storage charge for the budget: {e:#}"
                    )),
                }
            }),
            Effect::LoadCost => self.spawn(|engine, _| async move {
                match engine.cost_summary(now_secs()).await {
                    Ok(summary) => Action::CostLoaded(Box::new(summary)),
                    Err(e) => error("Cannot read the catalog", &e),
                }
            }),
            Effect::LoadDetails { node, key } => self.spawn(|engine, _| async move {
                let (versions, cached) = match engine.file_details(&key).await {
                    Ok(details) => (Ok(details.versions), details.cached),
                    Err(e) => (Err(format!("{e:#}")), None),
                };
                Action::Details(Box::new(app::Details {
                    node,
                    key,
                    versions,
                    cached,
                }))
            }),
            Effect::Rescan => spawn_scan(Arc::clone(&self.engine), self.tx.clone()),
            Effect::PlanMigration { from } => self.spawn(|engine, _| async move {
                let planned = plan_migration(&engine, &from).await;
                Action::MigrationPlanned(planned.map_err(|e| crate::fmt::one_line(&e)))
            }),
            Effect::SetLimits { up, down } => {
                let limits = self.engine.limits();
                limits.up.set_for_this_run(up);
                limits.down.set_for_this_run(down);
                let _ = self.tx.send(Action::Bandwidth(bandwidth_of(&self.engine)));
            }
            Effect::Migrate {
                batch,
                source,
                plan,
                tier,
                cancel,
            } => {
                let lock = Arc::clone(&self.batches);
                let (progress, forward) = self.progress(cancel);
                self.spawn_run("migrate", |engine, tx| async move {
                    let _turn = lock.lock().await;
                    let options = migrate_options(tier);
                    let done = match Arc::try_unwrap(plan) {
                        Ok(plan) => engine.migrate(&source.0, plan, &options, &progress).await,
                        Err(_) => {
                            let done = Done {
                                report: MigrationReport {
                                    failed: vec![FailedFile {
                                        path: "(migration plan)".into(),
                                        reason: "the plan is still shown elsewhere: plan the migration again".into(),
                                    }],
                                    ..MigrationReport::default()
                                },
                                after: AfterRun::default(),
                            };
                            crate::history::note(&done, engine.prices());
                            done
                        }
                    };
                    drop(progress);
                    let _ = forward.await;
                    let report = done.report;
                    log_after(&tx, Action::MigrationDone { batch, report }, done.after)
                });
            }
        }
    }
}

/// The run's bandwidth limits as the engine's limiters hold them now.
fn bandwidth_of(engine: &Engine) -> app::Bandwidth {
    let shown = |limiter: &crate::limit::Limiter| app::LimitShown {
        now: limiter.now(),
        schedule: limiter.schedule(),
        configured: limiter.configured(),
        at: limiter.local_time(),
    };
    let limits = engine.limits();
    app::Bandwidth {
        up: Some(shown(&limits.up)),
        down: Some(shown(&limits.down)),
    }
}

/// What a migration from the TUI does: the current versions, waiting for the
/// retrieval jobs (the rows show them at the store), as `firn migrate`.
fn migrate_options(tier: Tier) -> MigrateOptions {
    MigrateOptions {
        all_versions: false,
        tier,
        wait: true,
    }
}

/// Opens the store the set used before and plans copying from it (the tier
/// does not change the plan: it quotes every tier).
async fn plan_migration(
    engine: &Engine,
    from: &crate::backend::StoreSettings,
) -> Result<app::MigrationOffer> {
    let source = engine.open_source(from).await?;
    let plan = engine
        .plan_migration(&source, &migrate_options(Tier::Bulk))
        .await?;
    Ok(app::MigrationOffer {
        source_kind: source.kind(),
        source: app::OpenedSource(Arc::new(source)),
        plan: Arc::new(plan),
    })
}

/// Hands `done` to the reducer, then says in the log what storing the
/// catalog's snapshot after the job did (invariant 10); a failure is a notice
/// (the next change retries).
fn log_after(tx: &mpsc::UnboundedSender<Action>, done: Action, after: AfterRun) -> Action {
    let _ = tx.send(done);
    match after {
        AfterRun {
            error: Some(error), ..
        } => Action::Notice(format!("warning: {error}")),
        AfterRun {
            stored: Some(stored),
            ..
        } => Action::Log(format!(
            "catalog snapshot stored: {} in {} (archive {})",
            crate::fmt::plural(stored.records, "record"),
            crate::fmt::human_bytes(stored.bytes),
            stored.archive_id
        )),
        AfterRun { .. } => Action::Tick,
    }
}

/// An error dialog; the error is the run's, when a run was under way.
fn error(title: &str, e: &anyhow::Error) -> Action {
    crate::history::note_error(e);
    Action::Error {
        title: title.into(),
        message: format!("{e:#}"),
    }
}

/// Runs one retrieval batch: files the catalog no longer has fail alone, the
/// rest are restored by the engine under the rows' task ids.
async fn restore_batch(
    engine: &Engine,
    items: Vec<(TaskId, app::RetrieveItem)>,
    tier: Tier,
    destination: &str,
    overwrite: bool,
    progress: &Progress,
    tx: &mpsc::UnboundedSender<Action>,
) -> RestoreTally {
    let wanted: Vec<RecordLookup> = items
        .iter()
        .map(|(_, item)| RecordLookup {
            key: Some(item.key.clone()),
            archive_id: item.archive_id.clone(),
        })
        .collect();
    let (found, unreadable) = match engine.look_up(&wanted).await {
        Ok(found) => (found, None),
        Err(e) => (vec![None; items.len()], Some(format!("{e:#}"))),
    };
    let mut tasks = Vec::new();
    let mut missing = Vec::new();
    for ((id, item), found) in items.into_iter().zip(found) {
        match found {
            Some(record) => tasks.push((id, record)),
            None => {
                let reason = unreadable
                    .clone()
                    .unwrap_or_else(|| "no longer in the catalog".into());
                let _ = tx.send(Action::Engine(EngineEvent::Failed {
                    id,
                    reason: reason.clone(),
                }));
                missing.push((item.key, reason));
            }
        }
    }
    let options = RestoreOptions {
        destination: PathBuf::from(destination),
        overwrite,
        tier,
        wait: true,
    };
    // What the restore learnt and recorded (an archive's SHA-1) is in the
    // catalog's snapshot the job stored; the batch's rows say the rest.
    let mut tally = engine
        .restore(tasks, &options, progress)
        .await
        .report
        .tally();
    tally.failed.extend(missing);
    tally
}

async fn event_loop(
    terminal: &mut Term,
    state: &mut State,
    engine: Arc<Engine>,
    history: SetRef,
) -> Result<ExitCode> {
    let started = Instant::now();
    let size = terminal.size()?;
    state.size = (size.width, size.height);
    let (tx, mut rx) = mpsc::unbounded_channel();
    // When the last backup finished, for the title bar.
    let set = history.clone();
    if let Ok(Ok(backups)) =
        tokio::task::spawn_blocking(move || crate::history::backups(&set)).await
    {
        let _ = tx.send(Action::BackupsLoaded(Box::new(backups)));
    }
    let runtime = Runtime {
        history,
        engine: Arc::clone(&engine),
        tx: tx.clone(),
        batches: Arc::new(tokio::sync::Mutex::new(())),
        cancel: CancellationToken::new(),
    };
    state.set.prices = engine.prices().clone();
    state.set.task_ids = engine.task_ids();
    state.set.tiers = engine.tiers();
    state.set.store = engine.info().kind;
    // The last reconciliation, for the title bar and the I view.
    if let Ok(Some(r)) = engine.last_reconciliation().await {
        let _ = tx.send(Action::Reconciled {
            reconciliation: Some(Box::new(r)),
            show: false,
        });
    }
    // Retrieval jobs an earlier run requested are picked up, not requested again.
    if let Ok(resumed) = engine.resumable_retrievals().await
        && !resumed.is_empty()
    {
        let _ = tx.send(Action::ResumeRetrievals(resumed));
    }
    let _ = tx.send(Action::Bandwidth(bandwidth_of(&engine)));
    // The budget's figure, for the title bar (the catalog is read off the UI).
    if engine.budget().is_some() {
        runtime.start(Effect::LoadMonthly);
    }
    spawn_scan(Arc::clone(&engine), tx.clone());
    let mut terminal_events = EventStream::new();
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigint = signal(SignalKind::interrupt())?;

    let clock = |state: &mut State| {
        state.set_clock(started.elapsed().as_millis() as u64, now_secs());
    };
    clock(state);
    let mut effects = update(state, Action::Tick);
    loop {
        for effect in effects.drain(..) {
            runtime.start(effect);
        }
        if state.should_quit() {
            break;
        }
        // Test hook (debug builds only, like FIRN_FAULT): panic once the tree is
        // shown, to check that the panic hook gives the terminal back.
        if cfg!(debug_assertions)
            && matches!(state.phase, app::Phase::Ready)
            && std::env::var_os("FIRN_TUI_PANIC").is_some()
        {
            panic!("injected panic (FIRN_TUI_PANIC)");
        }
        if state.dirty {
            terminal.draw(|frame| view(state, frame))?;
            state.dirty = false;
        }
        let tick = if matches!(state.phase, app::Phase::Scanning(_)) {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(500)
        };
        // A timetable moves on: wake then (at least every minute) to show it.
        let limit_change = state.bandwidth.secs_to_change();
        let limit_wake =
            Duration::from_secs(limit_change.map_or(60, |s| u64::from(s).clamp(1, 60)));
        let action = tokio::select! {
            event = terminal_events.next() => match event {
                Some(Ok(crossterm::event::Event::Key(key))) => Action::Key(key),
                Some(Ok(crossterm::event::Event::Mouse(mouse))) => Action::Mouse(mouse),
                Some(Ok(crossterm::event::Event::Resize(w, h))) => {
                    // Repaint everything: the old screen content is gone.
                    terminal.autoresize()?;
                    terminal.clear()?;
                    Action::Resize(w, h)
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e).context("cannot read terminal input"),
                None => Action::Terminate,
            },
            Some(action) = rx.recv() => action,
            _ = sigterm.recv() => Action::Terminate,
            _ = sighup.recv() => Action::Terminate,
            _ = sigint.recv() => Action::Terminate,
            _ = tokio::time::sleep(tick), if state.animating() => Action::Tick,
            _ = tokio::time::sleep(limit_wake), if limit_change.is_some() => Action::Tick,
        };
        clock(state);
        effects = update(state, action);
        // Take what else is waiting before drawing (one frame for a burst of events).
        for _ in 0..4096 {
            match rx.try_recv() {
                Ok(action) => effects.extend(update(state, action)),
                Err(_) => break,
            }
        }
        let bandwidth = bandwidth_of(&engine);
        if !bandwidth.shows_same(&state.bandwidth) {
            effects.extend(update(state, Action::Bandwidth(bandwidth)));
        }
    }
    runtime.cancel.cancel();
    Ok(ExitCode::SUCCESS)
}
