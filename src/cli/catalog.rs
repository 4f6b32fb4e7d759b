//! `firn catalog rebuild`: a lost catalog recreated from the store: its newest
//! catalog snapshot, then the descriptions of the archives stored after it.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::Output;
use super::snapshot::AfterRun;
use crate::config::ResolvedSet;
use crate::engine::{Engine, RebuildOptions, RebuildOutcome, RebuildReport};
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
        !report.skipped.is_empty() || snapshot.failed(),
    ))
}
