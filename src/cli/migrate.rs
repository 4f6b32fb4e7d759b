//! `firn migrate`: copies a set's archives from the store it used before into the
//! store it uses now. The plan first (what comes from local files, what needs a
//! retrieval, and what each tier costs and takes), a confirmation when the
//! retrievals cost money, then the copies with a live line, then a summary.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::Output;
use super::progress::{cancel_on_ctrl_c, watch};
use super::prompt;
use super::set_args::{LimitArgs, SetAt, parse_tier};
use crate::backend::StoreSettings;
use crate::budget::MaxCost;
use crate::config::ResolvedSet;
use crate::engine::{
    AfterRun, Engine, MigrateOptions, MigrationPlan, MigrationReport, MigrationSource, Progress,
};
use crate::fmt::{duration, human_bytes, plural};
use crate::model::{Tier, usage};

/// Copy the set's archives from the store it used before (`previous_store`
/// in the config, or --from) into the store it uses now: from unchanged local
/// files where their SHA-1 matches, else through retrieval jobs (persisted:
/// never requested or paid twice). Each copy is verified, then recorded as
/// current (the old archive stays, superseded). Nothing is deleted. Shows
/// the plan first; resumable after a kill.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: SetAt,
    #[command(flatten)]
    limits: LimitArgs,
    /// The store to copy from, as firn names stores: glacier:REGION/VAULT,
    /// s3:REGION/BUCKET[/PREFIX] or local:/DIR (default: the set's
    /// previous_store).
    #[arg(long, value_name = "STORE")]
    from: Option<String>,
    /// Copy superseded versions too (default: the current version of each file).
    #[arg(long)]
    all_versions: bool,
    /// Retrieval tier for archives that cannot come from local files:
    /// expedited, standard or bulk (default: bulk, the cheapest; a migration
    /// is not urgent).
    #[arg(long, default_value_t = Tier::Bulk, value_parser = parse_tier)]
    tier: Tier,
    /// Show the plan (counts, bytes, local files vs retrievals, cost and wait
    /// per tier) and do nothing.
    #[arg(long)]
    dry_run: bool,
    /// Request paid retrievals without asking (a retrieval charge above the
    /// set's `confirm_above` is asked about even so, unless --max-cost allows it).
    #[arg(long)]
    yes: bool,
    /// Allow a retrieval charge up to AMOUNT (in the set's currency, e.g.
    /// 2.50) without asking, above the set's `confirm_above`.
    #[arg(long, value_name = "AMOUNT")]
    max_cost: Option<MaxCost>,
    /// Request the retrieval jobs and copy what is ready, without waiting for
    /// the rest (run again later: the jobs are kept).
    #[arg(long)]
    no_wait: bool,
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Shows what it would do and changes nothing (not recorded as a run).
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }
}

#[derive(Serialize)]
struct MigrateJson<'a> {
    set: &'a str,
    dry_run: bool,
    tier: Tier,
    plan: &'a MigrationPlan,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a MigrationReport>,
    #[serde(flatten)]
    after: &'a AfterRun,
}

pub async fn run(request: Args, verbose: bool) -> Result<ExitCode> {
    let set = &request.limits.apply(request.at.resolve()?);
    let out = &Output::new(request.json, verbose);
    let from = source_settings(set, request.from.as_deref())?;
    let limit = prompt::charge_limit(set, request.max_cost.as_ref())?;
    let opened = Engine::open_to_work(set, "migrate").await?;
    let engine = &opened.engine;
    let source = engine.open_source(&from).await?;
    source.check_tier(request.tier)?;
    out.header(set);
    if !request.dry_run {
        out.limit("upload", &engine.limits().up);
        out.limit("download", &engine.limits().down);
    }
    for line in opened.recovery.messages() {
        out.line(line);
    }
    let options = MigrateOptions {
        all_versions: request.all_versions,
        tier: request.tier,
        wait: !request.no_wait,
    };
    let plan = engine.plan_migration(&source, &options).await?;
    if !out.json {
        print_plan(out, engine, &source, &plan, request.tier);
    }
    let chosen_cost = plan
        .quotes
        .iter()
        .find(|q| q.tier == request.tier)
        .map_or(0.0, |q| q.cost);
    if request.dry_run || plan.is_empty() {
        if out.json {
            out.document(&MigrateJson {
                set: &set.id,
                dry_run: request.dry_run,
                tier: request.tier,
                plan: &plan,
                report: None,
                after: &AfterRun::default(),
            })?;
        } else if request.dry_run {
            out.line("dry run: nothing requested, nothing copied");
        } else {
            out.line(format!(
                "nothing to migrate: every archive asked for is in {} already",
                plan.destination
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let charge = prompt::Charge {
        what: "the retrieval charge",
        amount: chosen_cost,
        otherwise: "nothing requested, nothing copied",
    };
    let asked = prompt::confirm_charge(limit, &charge, set, out.json)?;
    if asked == Some(false) {
        out.line("nothing requested, nothing copied");
        return Ok(ExitCode::SUCCESS);
    }
    if chosen_cost > 0.0 && !request.yes && asked.is_none() {
        let cost_text = plan
            .quotes
            .iter()
            .find(|q| q.tier == request.tier)
            .map(|q| q.cost_text.clone())
            .unwrap_or_default();
        let question = format!(
            "Request {} ({}) from {} with the {} tier (≈ {cost_text}) and copy {} in all?",
            plural(
                plan.retrieval_requests.saturating_sub(plan.jobs_requested),
                "retrieval"
            ),
            human_bytes(plan.retrieval_bytes),
            plan.source,
            request.tier,
            plural(plan.retrievals.files + plan.from_local.files, "file"),
        );
        let hint = "not requesting paid retrievals without confirmation; pass --yes to go ahead (or --dry-run to see the plan)";
        if !prompt::confirm(&question, hint, out.json)? {
            out.line("nothing requested, nothing copied");
            return Ok(ExitCode::SUCCESS);
        }
    }

    let cancel = cancel_on_ctrl_c(
        "stopping; retrieval jobs and copies made so far are kept, run `firn migrate` again to continue",
    );
    let (progress, events) = Progress::channel(1024, cancel);
    let watcher = watch(events, *out, "copied");
    // Only the counters are kept for the summary; the plan's items go to the run.
    let summary = plan.summary();
    let done = engine.migrate(&source, plan, &options, &progress).await;
    let plan = summary;
    drop(progress);
    let _ = watcher.await;
    let (report, after) = (done.report, done.after);
    if out.json {
        out.document(&MigrateJson {
            set: &set.id,
            dry_run: false,
            tier: request.tier,
            plan: &plan,
            report: Some(&report),
            after: &after,
        })?;
    } else {
        for failed in &report.failed {
            out.line(format!("failed: {}: {}", failed.path, failed.reason));
        }
        let copied = report.from_local.files + report.retrieved.files;
        out.line(format!(
            "migration: {} copied into {} ({}; {} from local files, {} retrieved), {} waiting, {} failed{}{}",
            plural(copied, "archive"),
            plan.destination,
            human_bytes(report.from_local.bytes + report.retrieved.bytes),
            report.from_local.files,
            report.retrieved.files,
            report.waiting,
            report.failed.len(),
            if report.cancelled > 0 {
                format!(", {} cancelled", report.cancelled)
            } else {
                String::new()
            },
            if report.recorded_from_earlier_run > 0 {
                format!(
                    ", {} stored by an interrupted run recorded",
                    report.recorded_from_earlier_run
                )
            } else {
                String::new()
            }
        ));
        if report.waiting > 0 {
            out.line(format!(
                "{} waiting for their retrieval jobs (kept, never requested again): run `firn migrate` again later",
                plural(report.waiting, "archive")
            ));
        }
        out.line(format!(
            "nothing was deleted from {}: remove its archives later with `firn delete --store {}` (it shows the early-deletion charges first), or keep them",
            plan.source, plan.source
        ));
        out.after(&after);
    }
    Ok(super::exit_code(report.has_failures() || after.failed()))
}

/// The store to copy from: `--from`, else the set's `previous_store`.
fn source_settings(set: &ResolvedSet, from: Option<&str>) -> Result<StoreSettings> {
    let known: Vec<&StoreSettings> = set.previous_store.iter().collect();
    match (from, &set.previous_store) {
        (Some(text), _) => StoreSettings::from_target(text, &known),
        (None, Some(previous)) => Ok(previous.clone()),
        (None, None) => Err(usage(format!(
            "{} names no store to migrate from: add `previous_store = {{ kind = \"glacier\", vault = \"…\" }}` (the store it used before) to the set in the config, or pass --from STORE (as `firn status` names stores, e.g. glacier:us-east-1/photos)",
            set.describe()
        ))),
    }
}

fn print_plan(
    out: &Output,
    engine: &Engine,
    source: &MigrationSource,
    plan: &MigrationPlan,
    tier: Tier,
) {
    let info = engine.info();
    out.line(format!(
        "migrate from {} ({}) to {} ({})",
        plan.source,
        source.kind(),
        plan.destination,
        info.kind
    ));
    out.line(format!(
        "  from unchanged local files: {} ({}), no retrieval",
        plural(plan.from_local.files, "file"),
        human_bytes(plan.from_local.bytes)
    ));
    out.line(format!(
        "  to retrieve: {} ({}) in {} bringing back {}{}",
        plural(plan.retrievals.files, "file"),
        human_bytes(plan.retrievals.bytes),
        plural(plan.retrieval_requests, "retrieval"),
        human_bytes(plan.retrieval_bytes),
        if plan.jobs_requested > 0 {
            format!(
                ", {} requested by an earlier run (not paid again)",
                plan.jobs_requested
            )
        } else {
            String::new()
        }
    ));
    if plan.to_record > 0 {
        out.line(format!(
            "  stored by an interrupted run, to record: {}",
            plural(plan.to_record, "archive")
        ));
    }
    if plan.already_copied.files > 0 {
        out.line(format!(
            "  already copied: {} ({})",
            plural(plan.already_copied.files, "version"),
            human_bytes(plan.already_copied.bytes)
        ));
    }
    if plan.versions_left.files > 0 {
        out.line(format!(
            "  superseded versions left in {}: {} ({}); --all-versions copies them too",
            plan.source,
            plural(plan.versions_left.files, "version"),
            human_bytes(plan.versions_left.bytes)
        ));
    }
    if plan.retrievals.files > plan.jobs_requested {
        for quote in &plan.quotes {
            let wait = match quote.wait {
                (_, 0) => "ready at once".to_string(),
                (from, to) => format!("ready in {}–{}", duration(from), duration(to)),
            };
            out.line(format!(
                "  {} {:<9} {wait}, retrieval cost at most {}",
                if quote.tier == tier { "*" } else { " " },
                quote.tier.as_str(),
                quote.cost_text
            ));
        }
    }
}
