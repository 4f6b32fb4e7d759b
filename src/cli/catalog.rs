//! `firn catalog rebuild`: a lost catalog recreated from the store: its newest
//! catalog snapshot, then the descriptions of the archives stored after it.
//! `firn catalog claim`: the set's archives from before descriptions named their
//! set, claimed in the store as its own.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;

use super::output::Output;
use super::set_args::{SetAt, parse_tier};
use crate::engine::{
    AfterRun, ClaimOutcome, ClaimReport, Engine, RebuildOptions, RebuildOutcome, RebuildReport,
    ReleaseReport,
};
use crate::fmt::{format_time, plural};
use crate::model::Tier;

/// Work on the catalog itself.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

impl Args {
    /// The command's full name (`catalog rebuild`…), as its runs are recorded.
    pub fn name(&self) -> &'static str {
        match self.command {
            Command::Rebuild(_) => "catalog rebuild",
            Command::Claim(_) => "catalog claim",
            Command::Release(_) => "catalog release",
            Command::Snapshot(_) => "catalog snapshot",
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    Rebuild(RebuildArgs),
    Claim(ClaimArgs),
    Release(ReleaseArgs),
    Snapshot(super::snapshot::Args),
}

/// Recreate a lost catalog from the store: its newest catalog snapshot of the
/// set, then the descriptions (firn's own, or mt-aws-glacier's mt2) of the
/// set's archives stored after it (never another set's). Archives the catalog
/// already records are left alone; archives the store no longer holds are not
/// brought back.
#[derive(clap::Args, Debug)]
struct RebuildArgs {
    /// Accepted for scripts written for earlier versions: every rebuild reads
    /// the store's inventory.
    #[arg(long, hide = true)]
    from_inventory: bool,
    /// Ignore catalog snapshots: rebuild from archive descriptions alone.
    #[arg(long)]
    no_snapshot: bool,
    /// Also adopt archives of unknown owner (written by firn before archives
    /// named their set, or by mt-aws-glacier). Without it they are counted
    /// and left alone; use it only when no other set shares the store.
    #[arg(long)]
    adopt_unknown: bool,
    /// Retrieval tier for the snapshot where the store needs a job
    /// (expedited, standard or bulk).
    #[arg(long, default_value_t = Tier::Standard, value_parser = parse_tier)]
    tier: Tier,
    #[command(flatten)]
    at: SetAt,
    /// Do not wait for store jobs (the inventory, the snapshot's retrieval)
    /// that are not ready; run again later.
    #[arg(long)]
    no_wait: bool,
    #[arg(long)]
    json: bool,
}

/// Mark in the store, as this set's own, the archives its catalog names that
/// were written before archives named their set: run it once in every set
/// that shares a store with others (README: Sharing a store). Uploads one
/// small claim per ~90 archives (vault) or ~180 (bucket); changes nothing
/// else.
#[derive(clap::Args, Debug)]
struct ClaimArgs {
    #[command(flatten)]
    at: SetAt,
    /// Do not wait for an inventory job that is not ready; run again later.
    #[arg(long)]
    no_wait: bool,
    #[arg(long)]
    json: bool,
}

/// Give up the records of archives another set names as its own (the last
/// `firn inventory` lists them as disputed: an older firn's rebuild in a
/// shared store adopted them). Nothing is deleted from the store; a file
/// whose current version was one gets its newest own version back.
#[derive(clap::Args, Debug)]
struct ReleaseArgs {
    /// Release only this archive (default: every disputed one).
    #[arg(long = "archive", value_name = "ID")]
    archives: Vec<String>,
    #[command(flatten)]
    at: SetAt,
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    match args.command {
        Command::Rebuild(args) => rebuild(args, verbose).await,
        Command::Claim(args) => claim(args, verbose).await,
        Command::Release(args) => release(args, verbose).await,
        Command::Snapshot(args) => super::snapshot::run(args, verbose).await,
    }
}

#[derive(Serialize)]
struct RebuildJson<'a> {
    outcome: &'static str,
    set: &'a str,
    #[serde(flatten)]
    report: &'a RebuildReport,
    #[serde(flatten)]
    after: &'a AfterRun,
}

async fn rebuild(args: RebuildArgs, verbose: bool) -> Result<ExitCode> {
    let set = &args.at.resolve()?;
    let out = &Output::new(args.json, verbose);
    let options = &RebuildOptions {
        wait: !args.no_wait,
        tier: args.tier,
        use_snapshot: !args.no_snapshot,
        adopt_unknown: args.adopt_unknown,
    };
    let json = out.json;
    let opened = Engine::open_to_work(set, "catalog rebuild").await?;
    let engine = &opened.engine;
    engine.check_tier(options.tier)?;
    let done = engine.rebuild(options).await?;
    let after = done.after;
    let report = match done.report {
        RebuildOutcome::Waiting {
            what,
            requested_at,
            ready_at,
        } => {
            super::inventory::print_waiting(
                json,
                what,
                "nothing rebuilt yet",
                requested_at,
                ready_at,
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        RebuildOutcome::Ready(report) => report,
    };
    if json {
        let doc = RebuildJson {
            outcome: "ready",
            set: &set.id,
            report: &report,
            after: &after,
        };
        out.document(&doc)?;
    } else {
        out.header(set);
        for line in opened.recovery.messages() {
            out.line(line);
        }
        for s in &report.skipped {
            outln!(
                "skipped: archive {}{}: {}",
                s.archive_id,
                s.key
                    .as_deref()
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default(),
                s.reason
            );
        }
        if report.merged {
            outln!(
                "merged: {} already had records of set {}; only archives it did not know were added",
                engine.info().catalog,
                set.id
            );
        }
        if let Some(used) = &report.snapshot {
            outln!(
                "from the catalog snapshot of {}: {} ({} added, {} whose archive the store no longer holds left out)",
                format_time(used.created_at),
                plural(used.records, "record"),
                used.imported,
                used.gone
            );
        } else if report.snapshots_seen > 0 && !options.use_snapshot {
            outln!(
                "catalog snapshots ignored (--no-snapshot): rebuilt from archive descriptions alone"
            );
        }
        if report.other_sets > 0 {
            outln!(
                "left alone: {} of other sets sharing this store",
                plural(report.other_sets, "archive")
            );
        }
        if report.unknown_owner > 0 {
            outln!(
                "not adopted: {} of unknown owner (written before archives named their set, or by mt-aws-glacier); if no other set ever shared this store, run again with --adopt-unknown",
                plural(report.unknown_owner, "archive")
            );
        }
        outln!(
            "{} the inventory of {}: {} ({} current, {} superseded; {} without SHA-1), {} skipped, {} already in the catalog",
            if report.snapshot.is_some() {
                "stored after it, from"
            } else {
                "rebuilt from"
            },
            format_time(report.inventory_date),
            plural(report.files, "file"),
            report.current,
            report.superseded,
            report.unknown_sha1,
            plural(report.skipped.len() as u64, "archive"),
            report.already_known
        );
    }
    out.after(&after);
    Ok(super::exit_code(
        !report.skipped.is_empty() || report.unknown_owner > 0 || after.failed(),
    ))
}

#[derive(Serialize)]
struct ClaimJson<'a> {
    outcome: &'static str,
    set: &'a str,
    #[serde(flatten)]
    report: &'a ClaimReport,
}

async fn claim(args: ClaimArgs, verbose: bool) -> Result<ExitCode> {
    let set = &args.at.resolve()?;
    let out = &Output::new(args.json, verbose);
    let json = out.json;
    let opened = Engine::open_to_work(set, "catalog claim").await?;
    let report = match opened.engine.claim(!args.no_wait).await? {
        ClaimOutcome::Waiting {
            requested_at,
            ready_at,
        } => {
            super::inventory::print_waiting(
                json,
                "inventory job",
                "nothing claimed yet",
                requested_at,
                ready_at,
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        ClaimOutcome::Ready(report) => report,
    };
    if json {
        out.document(&ClaimJson {
            outcome: "ready",
            set: &set.id,
            report: &report,
        })?;
    } else {
        out.header(set);
        for d in &report.others {
            outln!(
                "not claimed: {} (archive {}): set {} names it as its own",
                d.key,
                d.archive_id,
                d.owner
            );
        }
        outln!(
            "claimed: {} in {} (inventory of {}); {} this set's already, {} another set's, {} not in the inventory",
            plural(report.claimed, "archive"),
            plural(report.claim_archives, "claim"),
            format_time(report.inventory_date),
            report.already_mine,
            report.others.len(),
            report.not_listed
        );
    }
    Ok(super::exit_code(!report.others.is_empty()))
}

#[derive(Serialize)]
struct ReleaseJson<'a> {
    set: &'a str,
    #[serde(flatten)]
    report: &'a ReleaseReport,
    #[serde(flatten)]
    after: &'a AfterRun,
}

async fn release(args: ReleaseArgs, verbose: bool) -> Result<ExitCode> {
    let set = &args.at.resolve()?;
    let out = &Output::new(args.json, verbose);
    let opened = Engine::open_to_work(set, "catalog release").await?;
    let done = opened.engine.release(&args.archives).await?;
    let (report, after) = (done.report, done.after);
    if out.json {
        out.document(&ReleaseJson {
            set: &set.id,
            report: &report,
            after: &after,
        })?;
    } else {
        out.header(set);
        for id in &report.not_disputed {
            outln!("not released: archive {id} (the last inventory found no other set naming it)");
        }
        for d in &report.released {
            outln!(
                "released: {} (archive {}, {}) to set {}",
                d.key,
                d.archive_id,
                d.state,
                d.owner
            );
        }
        for key in &report.current_again {
            outln!("current again: {key} (its newest own version)");
        }
        outln!(
            "released {}; nothing was deleted from the store",
            plural(report.released.len() as u64, "record")
        );
        out.after(&after);
    }
    Ok(super::exit_code(
        !report.not_disputed.is_empty() || after.failed(),
    ))
}
