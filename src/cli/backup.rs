//! `firn backup`: the engine's backup of the whole tree (it finishes what an
//! interrupted run left, compares, uploads what is new or changed, applies the
//! retention policy and stores the catalog's snapshot), shown live and summed up
//! in one summary. A set with a `budget` gets what the engine left out for it
//! said in one line, and exit status 5.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::Output;
use super::progress::{cancel_on_ctrl_c, watch};
use super::set_args::{LimitArgs, SetArgs};
use crate::config::RootUse;
use crate::engine::{AfterRun, BackupSummary, Engine, FileProblem, Progress};
use crate::fmt::{count, human_bytes, plural};

/// Upload every new or changed file, then apply the retention policy.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The directory to back up (default: the set whose root holds the
    /// current directory, else the current directory).
    root: Option<PathBuf>,
    #[command(flatten)]
    set: SetArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Show what would be uploaded without uploading anything.
    #[arg(long)]
    dry_run: bool,
    /// Print the summary as JSON (counters included).
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Shows what it would do and changes nothing (not recorded as a run).
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }
}

#[derive(Serialize)]
struct BackupJson<'a> {
    root: String,
    set: &'a str,
    dry_run: bool,
    pending_files: u64,
    pending_bytes: u64,
    #[serde(flatten)]
    summary: &'a BackupSummary,
    problems: &'a [FileProblem],
    #[serde(flatten)]
    after: &'a AfterRun,
}

pub async fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    let set = &args
        .limits
        .apply(args.set.resolve(args.root, RootUse::MustExist)?);
    let out = &Output::new(args.json, verbose);
    let dry_run = args.dry_run;
    let opened = Engine::open_to_work(set, "backup").await?;
    out.header(set);
    if !dry_run {
        out.limit("upload", &opened.engine.limits().up);
    }
    for line in opened.recovery.messages() {
        out.line(line);
    }
    let cancel = cancel_on_ctrl_c("finishing the uploads in flight cleanly");
    let (progress, events) = Progress::channel(1024, cancel);
    let watcher = watch(events, *out, "uploaded");
    let done = opened.engine.back_up_tree(dry_run, &progress).await;
    drop(progress);
    let _ = watcher.await;
    let done = done?;
    let mut run = done.report;
    run.summary.add_recovery(&opened.recovery);
    let failed = run.has_failures() || done.after.failed();
    let code = if failed {
        super::exit::PROBLEMS
    } else if run.summary.over_budget() {
        super::exit::BUDGET
    } else {
        super::exit::OK
    };
    if out.json {
        out.document(&BackupJson {
            root: set.root.display().to_string(),
            set: &set.id,
            dry_run,
            pending_files: run.pending_files,
            pending_bytes: run.pending_bytes,
            summary: &run.summary,
            problems: &run.problems,
            after: &done.after,
        })?;
        return Ok(ExitCode::from(code));
    }
    for (key, size) in &run.would_upload {
        out.line(format!("would upload: {key} ({})", human_bytes(*size)));
    }
    for p in &run.problems {
        out.line(format!("not backed up: {}: {}", p.path, p.reason));
    }
    let summary = &run.summary;
    for f in &summary.failed {
        out.line(format!("failed: {}: {}", f.path, f.reason));
    }
    let mut tail = String::new();
    if summary.cancelled > 0 {
        tail.push_str(&format!(", {} cancelled", summary.cancelled));
    }
    if let Some(budget) = summary.budget.as_ref().filter(|b| b.refused_any()) {
        tail.push_str(&format!(
            ", {} left out for the budget",
            count(budget.refused_files)
        ));
    }
    out.line(format!(
        "{}: {} uploaded ({}), {} failed, {} not backed up, {} mtimes updated, {} superseded archives deleted, {} kept{tail}",
        if dry_run { "dry run" } else { "backup" },
        plural(summary.uploaded_files, "file"),
        human_bytes(summary.uploaded_bytes),
        summary.failed.len(),
        run.totals.unreadable.files + run.totals.skipped.files,
        summary.mtimes_updated,
        summary.superseded_deleted,
        summary.superseded_kept,
    ));
    if dry_run {
        // What a real run would upload: the pending files, less what the
        // budget leaves out.
        out.line(format!(
            "would upload {}, {}",
            plural(run.would_upload.len() as u64, "file"),
            human_bytes(run.would_upload.iter().map(|(_, size)| size).sum())
        ));
    }
    if let Some(budget) = &summary.budget {
        let config = set
            .config_file
            .as_deref()
            .map_or_else(|| "the config file".into(), |p| p.display().to_string());
        if out.verbose {
            for key in &budget.refused {
                out.line(format!("left out for the budget: {key}"));
            }
        }
        match budget.refusal(&config) {
            Some(refusal) if dry_run => out.line(format!("dry run: {refusal}")),
            Some(refusal) => out.line(refusal),
            None if out.verbose => out.line(budget.used_line()),
            None => {}
        }
    }
    out.after(&done.after);
    Ok(ExitCode::from(code))
}
