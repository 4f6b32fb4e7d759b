//! `firn ls`: what the catalog holds for the set, current versions (or all).

use std::process::ExitCode;

use anyhow::Result;

use super::output::Output;
use super::set_args::SetAt;
use crate::engine::Engine;
use crate::fmt::{format_time, human_bytes};

/// List the catalog: what is archived for the set.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: SetAt,
    /// Include superseded versions.
    #[arg(long)]
    all: bool,
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    let set = &args.at.resolve()?;
    let out = &Output::new(args.json, verbose);
    let engine = Engine::open(set).await?;
    let records = engine.records(args.all).await?;
    if out.json {
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "path": r.key, "state": r.state, "size": r.size, "mtime_ns": r.mtime_ns,
                    "sha1": hex::encode(r.sha1), "tree_hash": hex::encode(r.tree_hash),
                    "archive_id": r.archive_id, "target": r.target, "uploaded_at": r.uploaded_at, "host": r.host,
                    // A packed file: its place in the pack `archive_id` names.
                    "pack": r.pack.map(|slot| serde_json::json!({"offset": slot.offset, "len": slot.len})),
                })
            })
            .collect();
        out.document(&rows)?;
    } else {
        out.header(set);
        out.line(format!("store: {}", engine.info().target));
        for r in &records {
            // Archives in another store (one the set used before) say which.
            let elsewhere = if engine.holds(r) {
                String::new()
            } else {
                format!("  (in {})", r.target)
            };
            // A packed file names its pack and its place there.
            let archive = match r.pack {
                Some(slot) => format!("pack {} @{}", r.archive_id, slot.offset),
                None => r.archive_id.clone(),
            };
            out.line(format!(
                "{:<10} {:>11}  {}  {archive}  {}{elsewhere}",
                r.state.as_str(),
                human_bytes(r.size),
                format_time(r.uploaded_at),
                r.key
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
