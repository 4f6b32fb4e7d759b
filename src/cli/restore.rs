//! `firn restore`: archived files back onto disk, verified, through the store's
//! retrieval jobs (requested once, kept, and continued by the next run).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::output::Output;
use super::progress::{cancel_on_ctrl_c, watch};
use super::prompt;
use super::set_args::{LimitArgs, SetAt, parse_tier};
use crate::budget::MaxCost;
use crate::config::ResolvedSet;
use crate::engine::{Engine, Progress, RestoreOptions, RestoreOutcome, RetrievalQuote, Selection};
use crate::fmt::{duration, format_time, human_bytes, one_line, plural};
use crate::model::{Tier, usage};

/// Restore archived files (current versions) into a directory. Requests one
/// retrieval job per archive (reusing jobs requested in the last 24 hours),
/// waits for them, and downloads verified data.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Paths to restore, as they were in the tree: absolute, or relative to the
    /// current directory inside the root (else to the root); a directory
    /// restores everything below it. None: the whole set.
    paths: Vec<PathBuf>,
    /// Restore this archive (any version, superseded ones included) instead of
    /// current versions by path (repeatable; see `firn ls --all`).
    #[arg(long = "archive", value_name = "ID")]
    archives: Vec<String>,
    /// Where to write the files (by relative path under it). Default: back
    /// into the set's root, where files with other content are kept unless
    /// --overwrite.
    #[arg(long)]
    to: Option<PathBuf>,
    #[command(flatten)]
    at: SetAt,
    #[command(flatten)]
    limits: LimitArgs,
    /// Retrieval tier: expedited, standard or bulk (the store's speed / price
    /// trade-off).
    #[arg(long, default_value_t = Tier::Standard, value_parser = parse_tier)]
    tier: Tier,
    /// Replace existing files whose content differs.
    #[arg(long)]
    overwrite: bool,
    /// Do not wait for retrieval jobs that are not ready; run again later.
    #[arg(long)]
    no_wait: bool,
    /// Show the plan (files, archives and packs to retrieve, their bytes, each
    /// tier's wait and cost) and stop: nothing is requested or written.
    #[arg(long)]
    dry_run: bool,
    /// Allow a retrieval charge up to AMOUNT (in the set's currency, e.g.
    /// 2.50) without asking, above the set's `confirm_above`.
    #[arg(long, value_name = "AMOUNT")]
    max_cost: Option<MaxCost>,
}

pub async fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    let set = &args.limits.apply(args.at.resolve_for(&args.paths)?);
    let out = &Output::new(false, verbose);
    let destination = args.to.unwrap_or_else(|| set.root.clone());
    // One clear line for a destination that cannot be one, before any job is paid
    // for; it is created only once there is something to restore into it.
    check_destination(&destination)?;
    let limit = prompt::charge_limit(set, args.max_cost.as_ref())?;
    let opened = Engine::open_to_work(set, "restore").await?;
    let engine = &opened.engine;
    engine.check_tier(args.tier)?;
    out.header(set);
    out.limit("download", &engine.limits().down);
    for line in opened.recovery.messages() {
        out.line(line);
    }
    let prefixes = engine.key_prefixes(&args.paths, &std::env::current_dir()?)?;
    let selection = Selection {
        prefixes,
        archives: args.archives,
        all_versions: false,
    };
    let records = engine.select_for_restore(&selection).await?;

    let quote = engine.retrieval_quote(&records, args.tier).await?;
    for line in plan_lines(&quote, set, args.dry_run) {
        out.line(line);
    }
    if args.dry_run {
        if limit.must_ask(quote.to_request_cost) {
            out.line(format!(
                "the retrieval charge ≈ {} is over confirm_above = {}: a restore asks first (--max-cost {} allows it)",
                set.prices.format(quote.to_request_cost),
                set.prices.format(limit.confirm_above.unwrap_or_default()),
                crate::budget::max_cost_for(quote.to_request_cost)
            ));
        }
        out.line("dry run: nothing requested, nothing restored");
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(e) = std::fs::create_dir_all(&destination) {
        return Err(destination_error(&destination, &e));
    }
    let charge = prompt::Charge {
        what: "the retrieval charge",
        amount: quote.to_request_cost,
        otherwise: "nothing requested",
    };
    if prompt::confirm_charge(limit, &charge, set, false)? == Some(false) {
        out.line("nothing requested, nothing restored");
        return Ok(ExitCode::SUCCESS);
    }
    let cancel = cancel_on_ctrl_c(
        "stopping; the retrieval jobs and the ranges downloaded so far are kept, run the restore again to continue",
    );
    let (progress, events) = Progress::channel(1024, cancel);
    // Each file's outcome is printed below; the live line only shows the way there.
    let watcher = watch(events, Output::new(out.json, false), "restored");
    let options = RestoreOptions {
        destination,
        overwrite: args.overwrite,
        tier: args.tier,
        wait: !args.no_wait,
    };
    let done = engine
        .restore(engine.number(records), &options, &progress)
        .await;
    drop(progress);
    let _ = watcher.await;
    let report = done.report;

    for result in &report.results {
        let key = &result.record.key;
        match &result.outcome {
            Ok(RestoreOutcome::Restored {
                path,
                resumed_bytes,
            }) if *resumed_bytes > 0 => out.line(format!(
                "restored: {} (continued after {} already downloaded)",
                path.display(),
                human_bytes(*resumed_bytes)
            )),
            Ok(RestoreOutcome::Restored { path, .. }) => {
                out.line(format!("restored: {}", path.display()))
            }
            Ok(RestoreOutcome::Identical { path }) => {
                out.line(format!("identical, skipped: {}", path.display()))
            }
            Ok(RestoreOutcome::Waiting {
                requested_at,
                ready_at,
                ..
            }) => out.line(format!(
                "waiting: {key} (retrieval job requested {}, ready {}); run again later",
                format_time(*requested_at),
                ready_at.map(format_time).unwrap_or_else(|| "later".into())
            )),
            Err(e) => out.line(format!("failed: {key}: {}", one_line(e))),
        }
    }
    let tally = report.tally();
    if tally.waiting > 0 {
        out.line(format!(
            "{} waiting for the store; the jobs are kept (`firn jobs` lists them) and `firn restore` again downloads what is ready",
            plural(tally.waiting, "file")
        ));
    }
    out.after(&done.after);
    let failed = !tally.failed.is_empty()
        || !tally.conflicts.is_empty()
        || tally.cancelled > 0
        || done.after.failed();
    Ok(super::exit_code(failed))
}

/// What a restore will retrieve and pay, before anything is requested: the
/// files, the archives and packs holding them (one retrieval each, a pack
/// retrieved whole), and the chosen tier's wait and cost; every tier the store
/// offers with `all_tiers` (a dry run).
fn plan_lines(quote: &RetrievalQuote, set: &ResolvedSet, all_tiers: bool) -> Vec<String> {
    let wait = |(from, to): (u64, u64)| match to {
        0 => "ready at once".to_string(),
        _ => format!("ready in {}–{}", duration(from), duration(to)),
    };
    let mut held = Vec::new();
    if quote.archives > 0 {
        held.push(format!(
            "{} ({})",
            plural(quote.archives, "archive"),
            human_bytes(quote.archive_bytes)
        ));
    }
    if quote.packs > 0 {
        held.push(format!(
            "{} of {} ({} retrieved whole)",
            plural(quote.packs, "pack"),
            plural(quote.packed_files, "packed file"),
            human_bytes(quote.pack_bytes)
        ));
    }
    let held = match held.len() {
        0 => "nothing to retrieve".to_string(),
        _ => format!(
            "{}: {}, {}",
            held.join(" and "),
            plural(quote.requests(), "retrieval"),
            human_bytes(quote.retrieved_bytes())
        ),
    };
    let mut lines = vec![format!(
        "retrieving {} ({}) from {held}",
        plural(quote.files, "file"),
        human_bytes(quote.bytes),
    )];
    if all_tiers {
        for tier in &quote.tiers {
            lines.push(format!(
                "{} {:<10} {}, estimated cost at most {}",
                if tier.tier == quote.tier { "*" } else { " " },
                tier.tier.as_str(),
                wait(tier.wait),
                set.prices.format(tier.cost)
            ));
        }
    } else {
        lines.push(format!(
            "{} tier: {}, estimated cost at most {}",
            quote.tier,
            wait(quote.wait),
            quote.cost_text
        ));
    }
    if quote.already_requested > 0 {
        lines.push(format!(
            "{} requested by an earlier run, not paid again; this run's retrievals ≈ {}",
            plural(quote.already_requested, "retrieval job"),
            set.prices.format(quote.to_request_cost)
        ));
    }
    lines
}

/// A destination that is a directory, or can become one: its nearest existing
/// ancestor is a directory.
fn check_destination(destination: &std::path::Path) -> Result<()> {
    for existing in destination.ancestors() {
        match std::fs::metadata(existing) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => {
                let e = std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", existing.display()),
                );
                return Err(destination_error(destination, &e));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(destination_error(destination, &e)),
        }
    }
    Ok(())
}

fn destination_error(destination: &std::path::Path, e: &std::io::Error) -> anyhow::Error {
    usage(format!(
        "cannot use {} as the destination: {e}; give a directory with --to",
        destination.display()
    ))
}
