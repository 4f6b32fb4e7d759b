//! `firn jobs`: the retrieval jobs the set waits on or has not downloaded yet.

use std::process::ExitCode;

use anyhow::Result;

use super::output::Output;
use super::set_args::SetAt;
use crate::engine::Engine;
use crate::fmt::{duration, format_time, human_bytes};
use crate::model::now_secs;

/// List the retrieval jobs this set is waiting on or has not downloaded yet:
/// tier, age, expected window, state and when the output expires.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: SetAt,
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    let set = &args.at.resolve()?;
    let out = &Output::new(args.json, verbose);
    let engine = Engine::open(set).await?;
    let mut jobs = engine.retrieval_jobs().await?;
    // A migration's jobs are the previous store's: asked there.
    let mut warning = None;
    if let Some(previous) = &set.previous_store
        && engine.has_migration_jobs()?
    {
        match engine.open_source(previous).await {
            Ok(source) => jobs.extend(engine.migration_jobs(&source).await?),
            Err(e) => {
                warning = Some(format!(
                    "cannot ask the previous store about the migration's jobs: {}",
                    crate::fmt::one_line(&e)
                ))
            }
        }
    }
    if let Some(warning) = &warning {
        eprintln!("firn: warning: {warning}");
    }
    if out.json {
        out.document(&jobs)?;
        return Ok(ExitCode::SUCCESS);
    }
    out.header(set);
    if jobs.is_empty() {
        out.line("no retrieval jobs pending");
        return Ok(ExitCode::SUCCESS);
    }
    let now = now_secs();
    for job in &jobs {
        out.line(format!(
            "{}  {}  {}  requested {} ago, expected within {}–{}, {}, output kept until {}  → {}",
            job.key,
            human_bytes(job.size),
            job.tier,
            duration((now - job.requested_at).max(0) as u64),
            duration(job.expected_from),
            duration(job.expected_to),
            job.state,
            format_time(job.expires_at),
            job.destination
        ));
    }
    Ok(ExitCode::SUCCESS)
}
