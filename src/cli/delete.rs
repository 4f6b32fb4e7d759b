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
use super::set_args::SetAt;
use crate::backend::StoreSettings;
use crate::budget::MaxCost;
use crate::config::ResolvedSet;
use crate::cost::Prices;
use crate::engine::{
    AfterRun, ArchiveState, DeletionPlan, DeletionReport, Engine, Event, Opened, PackFate,
    Progress, Prunable, RecoveryReport, Selection,
};
use crate::fmt::{human_bytes, plural};
use crate::model::{now_secs, usage};

/// Delete archives from the store, then from the catalog: the current version
/// of each PATH, or the archives named with --archive. Lists each archive's
/// size, age and early-deletion charge and asks first.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Paths to delete, as they were in the tree: absolute, or relative to the
    /// current directory inside the root (else to the root); a directory means
    /// everything below it.
    paths: Vec<PathBuf>,
    /// Delete this archive (an id from `firn ls --all`), whatever its file
    /// or state (repeatable).
    #[arg(long = "archive", value_name = "ID")]
    archives: Vec<String>,
    /// Also delete the superseded versions of the files PATH matches.
    #[arg(long)]
    all_versions: bool,
    /// Delete from a store the set used before (after `firn migrate`), named
    /// as firn names stores (glacier:REGION/VAULT, s3:REGION/BUCKET[/PREFIX],
    /// local:/DIR). With no PATH or --archive: every archive there that is not
    /// a current version (the copies' originals and old versions).
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
    #[command(flatten)]
    at: SetAt,
    #[command(flatten)]
    confirm: Confirm,
}

impl Args {
    /// Shows what it would do and changes nothing (not recorded as a run).
    pub fn dry_run(&self) -> bool {
        self.confirm.dry_run
    }
}

/// How a deletion is confirmed (delete and prune alike).
#[derive(clap::Args, Debug, Clone)]
pub struct Confirm {
    /// Delete without asking (for scripts). An early-deletion charge above the
    /// set's `confirm_above` is asked about even so, unless --max-cost allows it.
    #[arg(long)]
    pub yes: bool,
    /// Allow an early-deletion charge up to AMOUNT (in the set's currency, e.g.
    /// 2.50) without asking, above the set's `confirm_above`.
    #[arg(long, value_name = "AMOUNT")]
    pub max_cost: Option<MaxCost>,
    /// Show what would be deleted and what it would cost; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the plan and the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    if args.paths.is_empty() && args.archives.is_empty() && args.store.is_none() {
        return Err(usage(
            "name what to delete: PATH... (as in the tree), or --archive ID (see `firn ls --all`)",
        ));
    }
    let set = &args.at.resolve_for(&args.paths)?;
    let out = &Output::new(args.confirm.json, verbose);
    let opened = Engine::open_to_work(set, "delete").await?;
    if let Some(store) = &args.store {
        return run_in_store(set, &opened, store, &args, out).await;
    }
    let engine = &opened.engine;
    let chosen = choose(engine, &args).await?;
    let mut plan = engine.plan_deletion(chosen, now_secs());
    engine.settle_packs(&mut plan).await?;
    let deletion = Deletion {
        set,
        from: engine,
        own: engine,
        recovery: &opened.recovery,
        prune: None,
    };
    run_deletion(&deletion, &plan, &args.confirm, out).await
}

/// Where a deletion happens and what comes with it: `from` is the engine of the
/// store the archives are in, `own` that of the set's own store (where the
/// catalog's snapshot goes), `prune` what a prune planned (and leaves for being early).
pub(super) struct Deletion<'a> {
    pub set: &'a ResolvedSet,
    pub from: &'a Engine,
    pub own: &'a Engine,
    pub recovery: &'a RecoveryReport,
    pub prune: Option<&'a Prunable>,
}

/// The records `request` names (paths or archive ids).
async fn choose(engine: &Engine, request: &Args) -> Result<Vec<crate::engine::ArchiveRecord>> {
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
    opened: &Opened,
    store: &str,
    request: &Args,
    out: &Output,
) -> Result<ExitCode> {
    let known: Vec<&StoreSettings> = set.previous_store.iter().chain([&set.store]).collect();
    let settings = StoreSettings::from_target(store, &known)?;
    settings.must_exist()?;
    let old_set = ResolvedSet {
        prices: Prices::defaults_for(settings.price_profile()),
        store: settings,
        ..set.clone()
    };
    // The set on its old store, under the lock `opened` holds.
    let old = Engine::open(&old_set).await?;
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
        let mut chosen = choose(&old, request).await?;
        chosen.retain(|r| old.holds(r));
        chosen
    };
    let mut plan = old.plan_deletion(chosen, now_secs());
    old.settle_packs(&mut plan).await?;
    let deletion = Deletion {
        set: &old_set,
        from: &old,
        own: &opened.engine,
        recovery: &opened.recovery,
        prune: None,
    };
    run_deletion(&deletion, &plan, &request.confirm, out).await
}

/// Shows the plan, asks (or refuses without a terminal and without --yes),
/// deletes, reports.
pub(super) async fn run_deletion(
    deletion: &Deletion<'_>,
    plan: &DeletionPlan,
    confirm: &Confirm,
    out: &Output,
) -> Result<ExitCode> {
    let Deletion {
        set,
        from,
        own,
        recovery,
        prune,
    } = *deletion;
    let prices = &set.prices;
    let limit = prompt::charge_limit(set, confirm.max_cost.as_ref())?;
    let mut ask = !confirm.yes && !confirm.dry_run && !plan.is_empty();
    out.header(set);
    for line in recovery.messages() {
        out.line(line);
    }
    // The plan goes to stdout, or to stderr when stdout is JSON and we must ask.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let over_limit = !confirm.dry_run && !plan.is_empty() && limit.must_ask(plan.total_charge);
    if !out.json || ((ask || over_limit) && terminal) {
        let mut sink: Box<dyn Write> = if out.json {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        print_plan(&mut sink, set, plan, prices, prune)?;
        sink.flush()?;
    }
    let done = if plan.is_empty() || confirm.dry_run {
        crate::engine::Done::<DeletionReport>::default()
    } else {
        let charge = prompt::Charge {
            what: "the early-deletion charge",
            amount: plan.total_charge,
            otherwise: "nothing deleted",
        };
        match prompt::confirm_charge(limit, &charge, set, out.json)? {
            // Asked about the charge: that was the question.
            Some(true) => ask = false,
            Some(false) => {
                if out.json {
                    eprintln!("nothing deleted");
                } else {
                    outln!("nothing deleted");
                }
                return Ok(ExitCode::SUCCESS);
            }
            None => {}
        }
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
                    outln!("nothing deleted");
                }
                return Ok(ExitCode::SUCCESS);
            }
        }
        let cancel = cancel_on_ctrl_c("finishing the deletions in flight cleanly");
        let (progress, mut events) = Progress::channel(1024, cancel);
        // Deleting is explicit and cannot be undone: every archive gets its line.
        let quiet = out.json;
        // A packed file's line says what became of its pack: printed from
        // the report once the run is over.
        let packed: std::collections::HashSet<crate::engine::TaskId> = plan
            .items
            .iter()
            .filter(|i| i.record.is_packed())
            .map(|i| i.id)
            .collect();
        let printer = tokio::spawn(async move {
            let mut names = std::collections::HashMap::new();
            while let Some(event) = events.recv().await {
                match event {
                    Event::Queued { id, key, bytes } => {
                        names.insert(id, (key, bytes));
                    }
                    Event::Done { id, archive_id } if !quiet && !packed.contains(&id) => {
                        let (key, size) = names.get(&id).cloned().unwrap_or_default();
                        outln!(
                            "deleted: {key} ({}, archive {archive_id})",
                            human_bytes(size)
                        );
                    }
                    Event::Failed { id, reason } if !quiet => {
                        let key = names.get(&id).map(|(k, _)| k.as_str()).unwrap_or("?");
                        outln!("failed: {key}: {reason}");
                    }
                    _ => {}
                }
            }
        });
        let done = if std::ptr::eq(from, own) {
            own.delete_archives(plan, &progress).await
        } else {
            own.delete_archives_in(from, plan, &progress).await
        };
        drop(progress);
        let _ = printer.await;
        done
    };
    let (report, after) = (done.report, done.after);
    let failed = !report.failed.is_empty() || report.cancelled > 0 || after.failed();
    if out.json {
        out.document(&DeletionJson::new(
            set,
            plan,
            confirm.dry_run,
            (&report, &after),
            recovery,
            prune.map(|p| &p.skipped_early),
        ))?;
    } else if confirm.dry_run {
        out.line("dry run: nothing deleted");
    } else if !plan.is_empty() {
        for line in report.pack_lines() {
            out.line(line);
        }
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
    out.after(&after);
    Ok(super::exit_code(failed))
}

fn print_plan(
    out: &mut dyn Write,
    set: &ResolvedSet,
    plan: &DeletionPlan,
    prices: &Prices,
    prune: Option<&Prunable>,
) -> Result<()> {
    if plan.is_empty() {
        match prune {
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
            let pack = match (item.pack, item.record.pack) {
                (Some(PackFate::Kept), Some(slot)) => format!(
                    "  (in pack {} @{}: forgotten, its bytes stay there until the pack's last file goes)",
                    item.record.archive_id, slot.offset
                ),
                (Some(PackFate::Deleted), _) => format!(
                    "  (last file of pack {}: the pack is deleted)",
                    item.record.archive_id
                ),
                _ => String::new(),
            };
            writeln!(
                out,
                "  {:>10}  {:>4} d  {charge:>width$}  {:<10}  {}{pack}",
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
    let (kept, kept_bytes) = plan.kept_in_packs();
    if kept > 0 {
        writeln!(
            out,
            "{} ({}) only forgotten: their bytes stay in packs other files keep, billed until each pack's last file goes; no early-deletion charge for them now",
            plural(kept, "packed file"),
            human_bytes(kept_bytes)
        )?;
    }
    let packs = plan.packs_deleted();
    if packs > 0 {
        writeln!(
            out,
            "{} deleted with {} last files",
            plural(packs as u64, "pack"),
            if packs == 1 { "its" } else { "their" }
        )?;
    }
    if let Some(kept) = prune.and_then(|p| p.kept_early(prices)) {
        writeln!(out, "{kept}")?;
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
    /// A packed file: its place in pack `archive_id`, and whether the pack
    /// goes with it ("deleted") or keeps its bytes ("kept").
    #[serde(skip_serializing_if = "Option::is_none")]
    pack_offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pack: Option<PackFate>,
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
    after: &'a AfterRun,
}

impl<'a> DeletionJson<'a> {
    fn new(
        set: &'a ResolvedSet,
        plan: &'a DeletionPlan,
        dry_run: bool,
        (report, after): (&'a DeletionReport, &'a AfterRun),
        recovery: &'a RecoveryReport,
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
                    pack_offset: i.record.pack.map(|slot| slot.offset),
                    pack: i.pack,
                })
                .collect(),
            total_archives: plan.len(),
            total_bytes: plan.total_bytes,
            total_early_deletion_charge: plan.total_charge,
            report,
            interrupted_finished: &recovery.deletions_finished,
            warnings: &recovery.warnings,
            skipped_early: skipped.map(DeletionPlan::len),
            skipped_early_bytes: skipped.map(|s| s.total_bytes),
            after,
        }
    }
}
