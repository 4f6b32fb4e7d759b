//! `firn prune`: superseded versions deleted in bulk, the plan first (each
//! archive's size, age and early-deletion charge), then a confirmation, then the
//! deletion through the engine, as `firn delete` does.

use std::process::ExitCode;

use anyhow::Result;

use super::delete::{Confirm, Deletion, run_deletion};
use super::output::Output;
use super::set_args::SetAt;
use crate::engine::Engine;
use crate::model::now_secs;

/// Delete superseded versions in bulk, skipping those still inside their
/// minimum storage period (deleting them is billed) unless --include-early.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: SetAt,
    /// Also delete superseded archives inside their minimum storage period.
    #[arg(long)]
    include_early: bool,
    #[command(flatten)]
    confirm: Confirm,
}

impl Args {
    /// Shows what it would do and changes nothing (not recorded as a run).
    pub fn dry_run(&self) -> bool {
        self.confirm.dry_run
    }
}

pub async fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    let set = &args.at.resolve()?;
    let out = &Output::new(args.confirm.json, verbose);
    let opened = Engine::open_to_work(set, "prune").await?;
    let engine = &opened.engine;
    let prunable = engine.plan_prune(now_secs(), args.include_early).await?;
    let deletion = Deletion {
        set,
        from: engine,
        own: engine,
        recovery: &opened.recovery,
        prune: Some(&prunable),
    };
    run_deletion(&deletion, &prunable.plan, &args.confirm, out).await
}
