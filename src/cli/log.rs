//! `firn log`: the set's run history, newest first — one line per run, or one
//! JSON document. Reads only the set's local state: it works with the store
//! unreachable or the tree gone.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::Output;
use super::set_args::SetAt;
use crate::history::{self, RunSummary};

/// List the set's last runs (backups, restores, migrations, deletions,
/// prunes, inventories, catalog commands; the terminal UI's jobs), newest
/// first: when, what, the outcome and exit code, how long, what moved, what
/// failed, the estimated cost.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: SetAt,
    /// How many runs to show.
    #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 20)]
    count: usize,
    /// Print the runs as one JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct LogJson<'a> {
    set: &'a str,
    runs: &'a [RunSummary],
}

pub fn run(args: Args) -> Result<ExitCode> {
    let set = &args.at.resolve()?;
    let out = &Output::new(args.json, false);
    let runs = history::runs(&set.history(), args.count)?;
    if out.json {
        out.document(&LogJson {
            set: &set.id,
            runs: &runs,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    out.header(set);
    if runs.is_empty() {
        out.line("no runs recorded yet");
    }
    for run in &runs {
        out.line(run.describe());
    }
    Ok(ExitCode::SUCCESS)
}
