//! `firn catalog rebuild`: a lost catalog recreated from the store's inventory.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::Output;
use crate::config::ResolvedSet;
use crate::engine::{Engine, InventoryFetch, RebuildReport};
use crate::fmt::{format_time, plural};
use crate::lock::SetLock;

#[derive(Serialize)]
struct RebuildJson<'a> {
    outcome: &'static str,
    set: &'a str,
    #[serde(flatten)]
    report: &'a RebuildReport,
}

pub async fn rebuild(set: &ResolvedSet, wait: bool, out: &Output) -> Result<ExitCode> {
    let json = out.json;
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "catalog rebuild")?;
    let engine = Engine::open(set).await?;
    let inventory = match engine.fetch_inventory(wait).await? {
        InventoryFetch::Waiting {
            requested_at,
            ready_at,
        } => {
            super::inventory::print_waiting(json, "nothing rebuilt yet", requested_at, ready_at)?;
            return Ok(ExitCode::SUCCESS);
        }
        InventoryFetch::Ready(inventory) => inventory,
    };
    let report = engine.rebuild_catalog(&inventory).await?;
    if json {
        let doc = RebuildJson {
            outcome: "ready",
            set: &set.id,
            report: &report,
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
        println!(
            "rebuilt from the inventory of {}: {} ({} current, {} superseded; {} without SHA-1), {} skipped, {} already in the catalog",
            format_time(report.inventory_date),
            plural(report.files, "file"),
            report.current,
            report.superseded,
            report.unknown_sha1,
            plural(report.skipped.len() as u64, "archive"),
            report.already_known
        );
    }
    Ok(super::exit_code(!report.skipped.is_empty()))
}
