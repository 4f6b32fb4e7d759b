//! `firn catalog rebuild`: a lost catalog recreated from the store: its newest
//! catalog snapshot, then the descriptions of the archives stored after it.
//! `firn catalog claim`: the set's archives from before descriptions named their
//! set, claimed in the store as its own.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::Output;
use super::snapshot::AfterRun;
use crate::config::ResolvedSet;
use crate::engine::{
    ClaimOutcome, ClaimReport, Engine, RebuildOptions, RebuildOutcome, RebuildReport, ReleaseReport,
};
use crate::fmt::{format_time, plural};
use crate::lock::SetLock;

#[derive(Serialize)]
struct RebuildJson<'a> {
    outcome: &'static str,
    set: &'a str,
    #[serde(flatten)]
    report: &'a RebuildReport,
    #[serde(flatten)]
    snapshot: &'a AfterRun,
}

pub async fn rebuild(
    set: &ResolvedSet,
    options: &RebuildOptions,
    out: &Output,
) -> Result<ExitCode> {
    let json = out.json;
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "catalog rebuild")?;
    let engine = Engine::open(set).await?;
    engine.check_tier(options.tier)?;
    let report = match engine.rebuild(options).await? {
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
    let snapshot = super::snapshot::after_run(&engine).await;
    if json {
        let doc = RebuildJson {
            outcome: "ready",
            set: &set.id,
            report: &report,
            snapshot: &snapshot,
        };
        out.document(&doc)?;
    } else {
        out.header(set);
        for s in &report.skipped {
            println!(
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
            println!(
                "merged: {} already had records of set {}; only archives it did not know were added",
                engine.info().catalog,
                set.id
            );
        }
        if let Some(used) = &report.snapshot {
            println!(
                "from the catalog snapshot of {}: {} ({} added, {} whose archive the store no longer holds left out)",
                format_time(used.created_at),
                plural(used.records, "record"),
                used.imported,
                used.gone
            );
        } else if report.snapshots_seen > 0 && !options.use_snapshot {
            println!(
                "catalog snapshots ignored (--no-snapshot): rebuilt from archive descriptions alone"
            );
        }
        if report.other_sets > 0 {
            println!(
                "left alone: {} of other sets sharing this store",
                plural(report.other_sets, "archive")
            );
        }
        if report.unknown_owner > 0 {
            println!(
                "not adopted: {} of unknown owner (written before archives named their set, or by mt-aws-glacier); if no other set ever shared this store, run again with --adopt-unknown",
                plural(report.unknown_owner, "archive")
            );
        }
        println!(
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
    snapshot.print(out);
    Ok(super::exit_code(
        !report.skipped.is_empty() || report.unknown_owner > 0 || snapshot.failed(),
    ))
}

#[derive(Serialize)]
struct ClaimJson<'a> {
    outcome: &'static str,
    set: &'a str,
    #[serde(flatten)]
    report: &'a ClaimReport,
}

pub async fn claim(set: &ResolvedSet, wait: bool, out: &Output) -> Result<ExitCode> {
    let json = out.json;
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "catalog claim")?;
    let engine = Engine::open(set).await?;
    let report = match engine.claim(wait).await? {
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
            println!(
                "not claimed: {} (archive {}): set {} names it as its own",
                d.key, d.archive_id, d.owner
            );
        }
        println!(
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
    snapshot: &'a AfterRun,
}

pub async fn release(set: &ResolvedSet, archives: &[String], out: &Output) -> Result<ExitCode> {
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "catalog release")?;
    let engine = Engine::open(set).await?;
    let report = engine.release(archives).await?;
    let snapshot = super::snapshot::after_run(&engine).await;
    if out.json {
        out.document(&ReleaseJson {
            set: &set.id,
            report: &report,
            snapshot: &snapshot,
        })?;
    } else {
        out.header(set);
        for id in &report.not_disputed {
            println!(
                "not released: archive {id} (the last inventory found no other set naming it)"
            );
        }
        for d in &report.released {
            println!(
                "released: {} (archive {}, {}) to set {}",
                d.key, d.archive_id, d.state, d.owner
            );
        }
        for key in &report.current_again {
            println!("current again: {key} (its newest own version)");
        }
        println!(
            "released {}; nothing was deleted from the store",
            plural(report.released.len() as u64, "record")
        );
        snapshot.print(out);
    }
    Ok(super::exit_code(
        !report.not_disputed.is_empty() || snapshot.failed(),
    ))
}
