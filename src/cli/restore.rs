//! `firn restore`: archived files back onto disk, verified, through the store's
//! retrieval jobs (requested once, kept, and continued by the next run).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::output::Output;
use super::progress::{cancel_on_ctrl_c, watch};
use crate::config::ResolvedSet;
use crate::engine::{Engine, Progress, RestoreOptions, RestoreOutcome, Selection};
use crate::fmt::{duration, format_time, human_bytes, one_line, plural};
use crate::lock::SetLock;
use crate::model::{Tier, usage};

/// What `firn restore` was asked for.
pub struct Request {
    pub paths: Vec<PathBuf>,
    pub archives: Vec<String>,
    /// None: back into the set's root.
    pub destination: Option<PathBuf>,
    pub tier: Tier,
    pub overwrite: bool,
    pub wait: bool,
}

pub async fn run(set: &ResolvedSet, request: Request, out: &Output) -> Result<ExitCode> {
    let destination = request.destination.unwrap_or_else(|| set.root.clone());
    // One clear line for a destination that cannot be one, before any job is paid
    // for; it is created only once there is something to restore into it.
    check_destination(&destination)?;
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "restore")?;
    let engine = Engine::open(set).await?;
    engine.check_tier(request.tier)?;
    out.header(set);
    let prefixes = engine.key_prefixes(&request.paths, &std::env::current_dir()?)?;
    let selection = Selection {
        prefixes,
        archives: request.archives,
        all_versions: false,
    };
    let records = engine.select_for_restore(&selection).await?;
    if let Err(e) = std::fs::create_dir_all(&destination) {
        return Err(destination_error(&destination, &e));
    }

    let quote = engine.retrieval_quote(&records, request.tier);
    let when = match quote.wait {
        (_, 0) => "ready at once".to_string(),
        (from, to) => format!("ready in {}–{}", duration(from), duration(to)),
    };
    out.line(format!(
        "retrieving {} ({}) with the {} tier: {when}, estimated cost at most {}",
        plural(quote.files, "file"),
        human_bytes(quote.bytes),
        request.tier,
        quote.cost_text
    ));
    let cancel = cancel_on_ctrl_c(
        "stopping; the retrieval jobs and the ranges downloaded so far are kept, run the restore again to continue",
    );
    let (progress, events) = Progress::channel(1024, cancel);
    // Each file's outcome is printed below; the live line only shows the way there.
    let watcher = watch(events, Output::new(out.json, false), "restored");
    let options = RestoreOptions {
        destination,
        overwrite: request.overwrite,
        tier: request.tier,
        wait: request.wait,
    };
    let report = engine
        .restore(engine.number(records), &options, &progress)
        .await;
    drop(progress);
    let _ = watcher.await;

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
    let failed = !tally.failed.is_empty() || !tally.conflicts.is_empty() || tally.cancelled > 0;
    Ok(super::exit_code(failed))
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
