//! `firn delete` and `firn prune`: the plan first (each archive's size, age and
//! early-deletion charge), then a confirmation, then the deletion through the
//! engine (store first, catalog after).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::Output;
use super::progress::cancel_on_ctrl_c;
use super::prompt;
use super::snapshot::AfterRun;
use crate::backend::StoreSettings;
use crate::config::ResolvedSet;
use crate::cost::Prices;
use crate::engine::{
    ArchiveState, DeletionPlan, DeletionReport, Engine, Event, InterruptedDeletions, Progress,
    Selection,
};
use crate::fmt::{human_bytes, plural};
use crate::lock::SetLock;
use crate::model::now_secs;

/// What `firn delete` was asked to delete.
pub struct Request {
    pub paths: Vec<PathBuf>,
    pub archives: Vec<String>,
    pub all_versions: bool,
    /// Delete from this store (one the set used before) instead of its own.
    pub store: Option<String>,
}

/// How a deletion is confirmed.
#[derive(Clone, Copy)]
pub struct Confirm {
    pub yes: bool,
    pub dry_run: bool,
}

pub async fn run(
    set: &ResolvedSet,
    request: Request,
    confirm: Confirm,
    out: &Output,
) -> Result<ExitCode> {
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "delete")?;
    if let Some(store) = &request.store {
        return run_in_store(set, store, request.clone_selection(), confirm, out).await;
    }
    let engine = Engine::open(set).await?;
    let interrupted = engine.finish_interrupted_deletions().await?;
    let chosen = choose(&engine, &request).await?;
    let plan = engine.plan_deletion(chosen, now_secs());
    run_deletion(
        set,
        &engine,
        &engine,
        &plan,
        confirm,
        &interrupted,
        None,
        out,
    )
    .await
}

impl Request {
    fn clone_selection(&self) -> Request {
        Request {
            paths: self.paths.clone(),
            archives: self.archives.clone(),
            all_versions: self.all_versions,
            store: None,
        }
    }
}

/// The records `request` names (paths or archive ids).
async fn choose(engine: &Engine, request: &Request) -> Result<Vec<crate::engine::ArchiveRecord>> {
    let prefixes = engine.key_prefixes(&request.paths, &std::env::current_dir()?)?;
    let typed: Vec<String> = request
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let selection = Selection {
        prefixes,
        archives: request.archives.clone(),
        all_versions: request.all_versions,
    };
    engine.select_for_deletion(&selection, &typed).await
}

/// `firn delete --store OLD`: archives of the set in a store it used before
/// (after a migration), deleted from that store with its own early-deletion
/// charges. With no PATH or --archive, every version there that is not current
/// (what a migration left behind); current versions only there are kept. The
/// catalog snapshot goes to the set's own store, as always.
async fn run_in_store(
    set: &ResolvedSet,
    store: &str,
    request: Request,
    confirm: Confirm,
    out: &Output,
) -> Result<ExitCode> {
    let known: Vec<&StoreSettings> = set.previous_store.iter().chain([&set.store]).collect();
    let settings = StoreSettings::from_target(store, &known)?;
    settings.must_exist()?;
    let own = Engine::open(set).await?;
    let old_set = ResolvedSet {
        prices: Prices::defaults_for(settings.price_profile()),
        store: settings,
        ..set.clone()
    };
    let old = Engine::open(&old_set).await?;
    let none = InterruptedDeletions::default();
    let chosen = if request.paths.is_empty() && request.archives.is_empty() {
        let (left, current_only_there) = old.left_behind().await?;
        if current_only_there > 0 {
            out.line(format!(
                "kept: {} whose current version is only in {} (run `firn migrate` first)",
                plural(current_only_there, "file"),
                old.info().target
            ));
        }
        left
    } else {
        let mut chosen = choose(&old, &request).await?;
        chosen.retain(|r| old.holds(r));
        chosen
    };
    let plan = old.plan_deletion(chosen, now_secs());
    run_deletion(&old_set, &old, &own, &plan, confirm, &none, None, out).await
}

pub async fn prune(
    set: &ResolvedSet,
    include_early: bool,
    confirm: Confirm,
    out: &Output,
) -> Result<ExitCode> {
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "prune")?;
    let engine = Engine::open(set).await?;
    let interrupted = engine.finish_interrupted_deletions().await?;
    let prunable = engine.plan_prune(now_secs(), include_early).await?;
    run_deletion(
        set,
        &engine,
        &engine,
        &prunable.plan,
        confirm,
        &interrupted,
        Some(&prunable.skipped_early),
        out,
    )
    .await
}

/// Shows the plan, asks (or refuses without a terminal and without --yes),
/// deletes, reports. `skipped` is what a prune leaves for being early; `own` is
/// the engine of the set's own store, where the catalog snapshot goes.
#[allow(clippy::too_many_arguments)]
async fn run_deletion(
    set: &ResolvedSet,
    engine: &Engine,
    own: &Engine,
    plan: &DeletionPlan,
    confirm: Confirm,
    interrupted: &InterruptedDeletions,
    skipped: Option<&DeletionPlan>,
    out: &Output,
) -> Result<ExitCode> {
    let prices = &set.prices;
    let ask = !confirm.yes && !confirm.dry_run && !plan.is_empty();
    out.header(set);
    for key in &interrupted.finished {
        out.line(format!(
            "finished: deletion of {key} (interrupted by an earlier run)"
        ));
    }
    for warning in &interrupted.failed {
        out.line(format!("warning: {warning}"));
    }
    // The plan goes to stdout, or to stderr when stdout is JSON and we must ask.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if !out.json || (ask && terminal) {
        let mut sink: Box<dyn Write> = if out.json {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        print_plan(&mut sink, set, plan, prices, skipped)?;
        sink.flush()?;
    }
    let report = if plan.is_empty() || confirm.dry_run {
        DeletionReport::default()
    } else {
        if ask {
            let question = format!(
                "Delete {} ({}, early-deletion charge ≈ {})?",
                plural(plan.len() as u64, "archive"),
                human_bytes(plan.total_bytes),
                prices.format(plan.total_charge)
            );
            let hint = format!(
                "not deleting {} without confirmation; pass --yes to delete without asking",
                plural(plan.len() as u64, "archive")
            );
            if !prompt::confirm(&question, &hint, out.json)? {
                if out.json {
                    eprintln!("nothing deleted");
                } else {
                    println!("nothing deleted");
                }
                return Ok(ExitCode::SUCCESS);
            }
        }
        let cancel = cancel_on_ctrl_c("finishing the deletions in flight cleanly");
        let (progress, mut events) = Progress::channel(1024, cancel);
        // Deleting is explicit and cannot be undone: every archive gets its line.
        let quiet = out.json;
        let printer = tokio::spawn(async move {
            let mut names = std::collections::HashMap::new();
            while let Some(event) = events.recv().await {
                match event {
                    Event::Queued { id, key, bytes } => {
                        names.insert(id, (key, bytes));
                    }
                    Event::Done { id, archive_id } if !quiet => {
                        let (key, size) = names.get(&id).cloned().unwrap_or_default();
                        println!(
                            "deleted: {key} ({}, archive {archive_id})",
                            human_bytes(size)
                        );
                    }
                    Event::Failed { id, reason } if !quiet => {
                        let key = names.get(&id).map(|(k, _)| k.as_str()).unwrap_or("?");
                        println!("failed: {key}: {reason}");
                    }
                    _ => {}
                }
            }
        });
        let report = engine.delete_archives(plan, &progress).await;
        drop(progress);
        let _ = printer.await;
        report
    };
    let snapshot = if confirm.dry_run {
        AfterRun::default()
    } else {
        super::snapshot::after_run(own).await
    };
    let failed = !report.failed.is_empty() || report.cancelled > 0 || snapshot.failed();
    if out.json {
        out.document(&DeletionJson::new(
            set,
            plan,
            confirm.dry_run,
            (&report, &snapshot),
            interrupted,
            skipped,
        ))?;
    } else if confirm.dry_run {
        out.line("dry run: nothing deleted");
    } else if !plan.is_empty() {
        out.line(format!(
            "deleted {} ({}), early-deletion charge ≈ {}; {} failed{}",
            plural(report.deleted, "archive"),
            human_bytes(report.deleted_bytes),
            prices.format(report.charged),
            report.failed.len(),
            if report.cancelled > 0 {
                format!(", {} cancelled", report.cancelled)
            } else {
                String::new()
            }
        ));
    }
    snapshot.print(out);
    Ok(super::exit_code(failed))
}

fn print_plan(
    out: &mut dyn Write,
    set: &ResolvedSet,
    plan: &DeletionPlan,
    prices: &Prices,
    skipped: Option<&DeletionPlan>,
) -> Result<()> {
    if plan.is_empty() {
        match skipped {
            Some(_) => writeln!(out, "nothing to prune in set {}", set.id)?,
            None => writeln!(out, "nothing to delete in set {}", set.id)?,
        }
    } else {
        writeln!(
            out,
            "{} of set {} to delete:",
            plural(plan.len() as u64, "archive"),
            set.id
        )?;
        let charges: Vec<String> = plan
            .items
            .iter()
            .map(|i| prices.format(i.early_charge))
            .collect();
        let width = charges.iter().map(|c| c.len()).max().unwrap_or(0).max(14);
        writeln!(
            out,
            "  {:>10}  {:>6}  {:>width$}  {:<10}  path",
            "size", "age", "early-deletion", "state"
        )?;
        for (item, charge) in plan.items.iter().zip(&charges) {
            writeln!(
                out,
                "  {:>10}  {:>4} d  {charge:>width$}  {:<10}  {}",
                human_bytes(item.record.size),
                item.age_days(),
                item.record.state.as_str(),
                item.record.key
            )?;
        }
        let early = plan.early_count();
        writeln!(
            out,
            "total: {}, {}, early-deletion charge ≈ {}{}",
            plural(plan.len() as u64, "archive"),
            human_bytes(plan.total_bytes),
            prices.format(plan.total_charge),
            if early > 0 {
                format!(
                    " ({early} inside the {}-day minimum storage period)",
                    prices.minimum_storage_days
                )
            } else {
                String::new()
            }
        )?;
    }
    if let Some(skipped) = skipped.filter(|s| !s.is_empty()) {
        writeln!(
            out,
            "kept: {} ({}) inside the {}-day minimum storage period; --include-early deletes them too (early-deletion charge ≈ {})",
            plural(skipped.len() as u64, "superseded archive"),
            human_bytes(skipped.total_bytes),
            prices.minimum_storage_days,
            prices.format(skipped.total_charge)
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct DeletionItemJson<'a> {
    path: &'a str,
    archive_id: &'a str,
    state: ArchiveState,
    size: u64,
    uploaded_at: i64,
    age_days: i64,
    early: bool,
    early_deletion_charge: f64,
}

#[derive(Serialize)]
struct DeletionJson<'a> {
    set: &'a str,
    dry_run: bool,
    currency: &'a str,
    archives: Vec<DeletionItemJson<'a>>,
    total_archives: usize,
    total_bytes: u64,
    total_early_deletion_charge: f64,
    #[serde(flatten)]
    report: &'a DeletionReport,
    /// Interrupted deletions of an earlier run finished first.
    interrupted_finished: &'a [String],
    warnings: &'a [String],
    /// Prune only: superseded archives kept for being inside the minimum period.
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped_early: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped_early_bytes: Option<u64>,
    #[serde(flatten)]
    snapshot: &'a AfterRun,
}

impl<'a> DeletionJson<'a> {
    fn new(
        set: &'a ResolvedSet,
        plan: &'a DeletionPlan,
        dry_run: bool,
        (report, snapshot): (&'a DeletionReport, &'a AfterRun),
        interrupted: &'a InterruptedDeletions,
        skipped: Option<&DeletionPlan>,
    ) -> Self {
        DeletionJson {
            set: &set.id,
            dry_run,
            currency: &plan.currency,
            archives: plan
                .items
                .iter()
                .map(|i| DeletionItemJson {
                    path: &i.record.key,
                    archive_id: &i.record.archive_id,
                    state: i.record.state,
                    size: i.record.size,
                    uploaded_at: i.record.uploaded_at,
                    age_days: i.age_days(),
                    early: i.early,
                    early_deletion_charge: i.early_charge,
                })
                .collect(),
            total_archives: plan.len(),
            total_bytes: plan.total_bytes,
            total_early_deletion_charge: plan.total_charge,
            report,
            interrupted_finished: &interrupted.finished,
            warnings: &interrupted.failed,
            skipped_early: skipped.map(DeletionPlan::len),
            skipped_early_bytes: skipped.map(|s| s.total_bytes),
            snapshot,
        }
    }
}
