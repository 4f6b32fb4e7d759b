//! `firn catalog snapshot`, and how every command shows the catalog snapshot
//! its job stored when it was done (invariant 10: losing the catalog loses
//! nothing).

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::{Output, describe_snapshot};
use super::set_args::SetArgs;
use crate::config::RootUse;
use crate::engine::{Engine, SnapshotReport};

/// Store a snapshot of the catalog in the set's store now (every command that
/// changes the catalog does so when it is done).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    set: SetArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct SnapshotJson<'a> {
    set: &'a str,
    #[serde(flatten)]
    stored: &'a SnapshotReport,
}

/// `firn catalog snapshot`: stores one now, whether or not the catalog changed.
pub async fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    let set = &args.set.resolve(None, RootUse::MayBeMissing)?;
    let out = &Output::new(args.json, verbose);
    let opened = Engine::open_to_work(set, "catalog snapshot").await?;
    let stored = opened.engine.snapshot().await?;
    if out.json {
        out.document(&SnapshotJson {
            set: &set.id,
            stored: &stored,
        })?;
    } else {
        out.header(set);
        for line in opened.recovery.messages() {
            out.line(line);
        }
        out.line(describe_snapshot(&stored));
    }
    Ok(ExitCode::SUCCESS)
}
