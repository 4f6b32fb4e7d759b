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
use crate::cost::Prices;
use crate::engine::{
    Engine, Event as EngineEvent, ExistsWithOtherContent, InventoryOutcome, Plan, RecordLookup,
    RestoreOptions, RestoreOutcome,
};
use crate::lock::SetLock;
use crate::scan::{ScanOptions, ScanProgress};
use crate::store::Tier;

type Term = Terminal<CrosstermBackend<Stdout>>;

/// Opens the UI on one backup set and runs it until the user quits.
pub async fn run(set: &ResolvedSet, config_flag: Option<&Path>) -> Result<ExitCode> {
    let settings = Settings::load(config_flag)?;
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "tui")?;
    let engine = match Engine::open(set).await {
        Ok(engine) => Arc::new(engine),
        Err(e) => {
            // A missing vault or table, bad credentials, an unreachable endpoint:
            // say so in the interface the user opened, then exit as the CLI would.
            let message = crate::cli::one_line(&e);
            show_fatal(set, settings, "Cannot open the backup set", &message).await?;
            return Err(e);
        }
    };
    // Finish what an interrupted run left before showing anything as pending.
    let recovery = engine
        .recover()
        .await
        .context("cannot finish the interrupted run's uploads")?;

    let mut state = State::new(
        set.root.display().to_string(),
        set.id.clone(),
        settings.keys,
        settings.theme,
    );
    for key in &recovery.adopted {
        state.log(format!(
            "recovered: {key} (stored by an interrupted run, now recorded)"
        ));
    }
    for key in &recovery.unresolved {
        state.log(format!(
            "unresolved: {key} (interrupted upload; run an inventory)"
        ));
    }

    let mut terminal = init_terminal().context("cannot set up the terminal")?;
    let result = event_loop(&mut terminal, &mut state, engine, set).await;
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

fn scan_options(set: &ResolvedSet) -> ScanOptions {
    ScanOptions {
        filter: set.filter.clone(),
        follow_symlinks: set.follow_symlinks,
    }
}

/// Walks and compares on a background task; the tree is built off the UI too.
fn spawn_scan(engine: Arc<Engine>, options: ScanOptions, tx: mpsc::UnboundedSender<Action>) {
    tokio::spawn(async move {
        let progress = tx.clone();
        let mut on_scan = move |p: ScanProgress| {
            let _ = progress.send(Action::ScanProgress(p));
        };
        let action = match engine.status(&options, &mut on_scan).await {
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
    options: ScanOptions,
    tx: mpsc::UnboundedSender<Action>,
    /// One upload batch at a time, so the set's concurrency limit holds.
    batches: Arc<tokio::sync::Mutex<()>>,
    cancel: CancellationToken,
    prices: Prices,
}

impl Runtime {
    fn start(&self, effect: Effect) {
        match effect {
            Effect::Upload {
                batch,
                items,
                mtime_updates,
            } => {
                let engine = Arc::clone(&self.engine);
                let tx = self.tx.clone();
                let lock = Arc::clone(&self.batches);
                let cancel = self.cancel.child_token();
                tokio::spawn(async move {
                    let _turn = lock.lock().await;
                    let (events_tx, forward) = forward_events(batch, &tx, |event| event);
                    let plan = Plan {
                        uploads: items,
                        mtime_updates,
                    };
                    let summary = engine.backup(plan, events_tx, cancel).await;
                    let _ = forward.await;
                    let retention = engine
                        .sweep_superseded()
                        .await
                        .map_err(|e| format!("{e:#}"));
                    let _ = tx.send(Action::BatchDone {
                        batch,
                        summary,
                        retention,
                    });
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
                let engine = Arc::clone(&self.engine);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let report = restore_batch(
                        &engine,
                        batch,
                        items,
                        tier,
                        destination,
                        overwrite,
                        &tx,
                        cancel,
                    )
                    .await;
                    let _ = tx.send(Action::RestoreDone { batch, report });
                });
            }
            Effect::PlanDeletion { keys } => {
                let engine = Arc::clone(&self.engine);
                let (tx, prices) = (self.tx.clone(), self.prices.clone());
                tokio::spawn(async move {
                    let lookups: Vec<RecordLookup> = keys
                        .into_iter()
                        .map(|key| RecordLookup {
                            key: Some(key),
                            archive_id: None,
                        })
                        .collect();
                    let records = match engine.look_up(&lookups).await {
                        Ok(found) => found.into_iter().flatten().collect(),
                        Err(e) => {
                            let _ = tx.send(Action::Error {
                                title: "Cannot read the catalog".into(),
                                message: format!("{e:#}"),
                            });
                            return;
                        }
                    };
                    let plan = engine.plan_deletion(records, &prices, now_secs());
                    let _ = tx.send(Action::DeletionPlanned { plan, note: None });
                });
            }
            Effect::PlanPrune => {
                let engine = Arc::clone(&self.engine);
                let (tx, prices) = (self.tx.clone(), self.prices.clone());
                tokio::spawn(async move {
                    let now = now_secs();
                    let action = match engine.prunable(&prices, now, false).await {
                        Ok(prunable) => {
                            let note = (!prunable.skipped_early.is_empty()).then(|| {
                                format!(
                                    "{} still inside the minimum storage period {} kept (`firn prune --include-early` deletes them too).",
                                    app::plural(prunable.skipped_early.len() as u64, "superseded archive"),
                                    if prunable.skipped_early.len() == 1 { "is" } else { "are" }
                                )
                            });
                            let plan = engine.plan_deletion(prunable.records, &prices, now);
                            Action::DeletionPlanned { plan, note }
                        }
                        Err(e) => Action::Error {
                            title: "Cannot read the catalog".into(),
                            message: format!("{e:#}"),
                        },
                    };
                    let _ = tx.send(action);
                });
            }
            Effect::Delete {
                batch,
                plan,
                cancel,
            } => {
                let engine = Arc::clone(&self.engine);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let (events_tx, forward) = forward_events(batch, &tx, |event| event);
                    let report = engine.delete_archives(&plan, events_tx, cancel).await;
                    let _ = forward.await;
                    let _ = tx.send(Action::DeleteDone { batch, report });
                });
            }
            Effect::RunInventory => {
                let engine = Arc::clone(&self.engine);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let action = match engine.inventory(false).await {
                        Ok(InventoryOutcome::Ready(r)) => Action::Reconciled {
                            reconciliation: Some(Box::new(r)),
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
                        Err(e) => Action::Error {
                            title: "Cannot take an inventory".into(),
                            message: format!("{e:#}"),
                        },
                    };
                    let _ = tx.send(action);
                });
            }
            Effect::AdoptOrphans(orphans) => {
                let engine = Arc::clone(&self.engine);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = engine.adopt_orphans(&orphans).await;
                    let _ = tx.send(orphan_action(result, "Cannot adopt the orphans"));
                });
            }
            Effect::DeleteOrphans(orphans) => {
                let engine = Arc::clone(&self.engine);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = engine.delete_orphans(&orphans).await;
                    let _ = tx.send(orphan_action(result, "Cannot delete the orphans"));
                });
            }
            Effect::LoadCost => {
                let engine = Arc::clone(&self.engine);
                let (tx, prices) = (self.tx.clone(), self.prices.clone());
                tokio::spawn(async move {
                    let action = match engine.cost_summary(&prices, now_secs()).await {
                        Ok(summary) => Action::CostLoaded(Box::new(summary)),
                        Err(e) => Action::Error {
                            title: "Cannot read the catalog".into(),
                            message: format!("{e:#}"),
                        },
                    };
                    let _ = tx.send(action);
                });
            }
            Effect::LoadDetails { node, key } => {
                let engine = Arc::clone(&self.engine);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let versions = engine
                        .catalog
                        .versions(&key)
                        .await
                        .map_err(|e| format!("{e:#}"));
                    let state = Arc::clone(&engine.state);
                    let lookup = key.clone();
                    let cached = tokio::task::spawn_blocking(move || state.cached(&lookup))
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                        .flatten();
                    let _ = tx.send(Action::Details(Box::new(app::Details {
                        node,
                        key,
                        versions,
                        cached,
                    })));
                });
            }
            Effect::Rescan => {
                spawn_scan(
                    Arc::clone(&self.engine),
                    self.options.clone(),
                    self.tx.clone(),
                );
            }
        }
    }
}

/// A channel for one batch's engine events and the task that hands them to the
/// UI (through `map`) until the engine drops its sender.
fn forward_events(
    batch: u32,
    tx: &mpsc::UnboundedSender<Action>,
    map: impl Fn(EngineEvent) -> EngineEvent + Send + 'static,
) -> (mpsc::Sender<EngineEvent>, tokio::task::JoinHandle<()>) {
    let (events_tx, mut events_rx) = mpsc::channel(1024);
    let tx = tx.clone();
    let forward = tokio::spawn(async move {
        while let Some(event) = events_rx.recv().await {
            if tx
                .send(Action::Engine {
                    batch,
                    event: map(event),
                })
                .is_err()
            {
                break;
            }
        }
    });
    (events_tx, forward)
}

/// Runs one retrieval batch, forwarding its progress to the UI.
#[allow(clippy::too_many_arguments)]
async fn restore_batch(
    engine: &Engine,
    batch: u32,
    items: Vec<app::RetrieveItem>,
    tier: Tier,
    destination: String,
    overwrite: bool,
    tx: &mpsc::UnboundedSender<Action>,
    cancel: CancellationToken,
) -> app::RestoreReport {
    let mut report = app::RestoreReport {
        tier: Some(tier),
        destination: destination.clone(),
        ..Default::default()
    };
    // Look every file up first; one the catalog no longer has fails alone.
    let wanted: Vec<RecordLookup> = items
        .iter()
        .map(|item| RecordLookup {
            key: Some(item.key.clone()),
            archive_id: item.archive_id.clone(),
        })
        .collect();
    let (found, unreadable) = match engine.look_up(&wanted).await {
        Ok(found) => (found, None),
        Err(e) => (vec![None; items.len()], Some(format!("{e:#}"))),
    };
    let mut records = Vec::new();
    let mut lookups = Vec::new();
    for (item, found) in items.iter().zip(found) {
        lookups.push(found.is_some());
        match found {
            Some(record) => records.push(record),
            None => report.failed.push((
                item.key.clone(),
                unreadable
                    .clone()
                    .unwrap_or_else(|| "no longer in the catalog".into()),
            )),
        }
    }
    // Task ids are positions in `items`; the engine numbers the records it gets.
    let positions: Vec<usize> = lookups
        .iter()
        .enumerate()
        .filter_map(|(i, found)| found.then_some(i))
        .collect();
    for (i, found) in lookups.iter().enumerate() {
        if !found {
            let _ = tx.send(Action::Engine {
                batch,
                event: EngineEvent::Failed {
                    id: i as u64,
                    reason: "no longer in the catalog".into(),
                },
            });
        }
    }
    let (events_tx, forward) = forward_events(batch, tx, move |event| renumber(event, &positions));
    let options = RestoreOptions {
        destination: PathBuf::from(&destination),
        overwrite,
        tier,
        wait: true,
    };
    let results = engine
        .restore_all(records, &options, Some(&events_tx), &cancel)
        .await;
    drop(events_tx);
    let _ = forward.await;
    for result in results {
        match result.outcome {
            Ok(RestoreOutcome::Restored { .. }) => report.restored += 1,
            Ok(RestoreOutcome::Identical { .. }) => report.identical += 1,
            Ok(RestoreOutcome::Waiting { .. }) => report.waiting += 1,
            Err(e) if e.downcast_ref::<ExistsWithOtherContent>().is_some() => {
                report.conflicts.push(result.record.key)
            }
            Err(e) => report
                .failed
                .push((result.record.key, crate::cli::one_line(&e))),
        }
    }
    report
}

/// Maps an engine task id (position among the records found) back to the
/// position in the batch.
fn renumber(event: EngineEvent, positions: &[usize]) -> EngineEvent {
    let map = |id: u64| positions.get(id as usize).map_or(id, |&p| p as u64);
    match event {
        EngineEvent::Queued { id, key, bytes } => EngineEvent::Queued {
            id: map(id),
            key,
            bytes,
        },
        EngineEvent::Started { id } => EngineEvent::Started { id: map(id) },
        EngineEvent::Advanced { id, bytes } => EngineEvent::Advanced { id: map(id), bytes },
        EngineEvent::Done { id, archive_id } => EngineEvent::Done {
            id: map(id),
            archive_id,
        },
        EngineEvent::Failed { id, reason } => EngineEvent::Failed {
            id: map(id),
            reason,
        },
        EngineEvent::Waiting { id, ready_at } => EngineEvent::Waiting {
            id: map(id),
            ready_at,
        },
        EngineEvent::Note(note) => EngineEvent::Note(note),
    }
}

fn orphan_action(result: Result<Vec<crate::engine::OrphanResult>>, title: &str) -> Action {
    match result {
        Ok(results) => Action::OrphansActed(results),
        Err(e) => Action::Error {
            title: title.into(),
            message: format!("{e:#}"),
        },
    }
}

/// Retrieval jobs an earlier run left, grouped by destination and tier.
fn pending_retrievals(engine: &Engine) -> Vec<app::RetrievalGroup> {
    let Ok(jobs) = engine.state.retrievals() else {
        return Vec::new();
    };
    let mut groups: Vec<app::RetrievalGroup> = Vec::new();
    for job in jobs {
        if job.key.is_empty() || job.destination.is_empty() {
            continue;
        }
        let tier = Tier::from_saved(&job.tier);
        let destination = String::from_utf8_lossy(&job.destination).into_owned();
        let item = (job.key, job.archive_id, job.size);
        match groups
            .iter_mut()
            .find(|g| g.destination == destination && g.tier == tier)
        {
            Some(group) => group.items.push(item),
            None => groups.push(app::RetrievalGroup {
                destination,
                tier,
                items: vec![item],
            }),
        }
    }
    groups
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn event_loop(
    terminal: &mut Term,
    state: &mut State,
    engine: Arc<Engine>,
    set: &ResolvedSet,
) -> Result<ExitCode> {
    let started = Instant::now();
    let size = terminal.size()?;
    state.size = (size.width, size.height);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let runtime = Runtime {
        engine: Arc::clone(&engine),
        options: scan_options(set),
        tx: tx.clone(),
        batches: Arc::new(tokio::sync::Mutex::new(())),
        cancel: CancellationToken::new(),
        prices: set.prices.clone(),
    };
    state.prices = set.prices.clone();
    state.retrieval_waits =
        [Tier::Expedited, Tier::Standard, Tier::Bulk].map(|tier| engine.store.expected_wait(tier));
    // The last reconciliation, for the title bar and the I view.
    if let Ok(Some(r)) = engine.last_reconciliation() {
        let _ = tx.send(Action::Reconciled {
            reconciliation: Some(Box::new(r)),
            show: false,
        });
    }
    // Retrieval jobs an earlier run requested are picked up, not requested again.
    let resumed = pending_retrievals(&engine);
    if !resumed.is_empty() {
        let _ = tx.send(Action::ResumeRetrievals(resumed));
    }
    spawn_scan(engine, runtime.options.clone(), tx.clone());
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
        if state.should_quit {
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
    }
    runtime.cancel.cancel();
    Ok(ExitCode::SUCCESS)
}
