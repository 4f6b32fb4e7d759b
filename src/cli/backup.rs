//! `firn backup`: finish what an interrupted run left, compare, upload what is new
//! or changed, apply the retention policy, and sum it all up in one summary.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;

use super::output::Output;
use super::progress::{cancel_on_ctrl_c, watch};
use super::snapshot::AfterRun;
use crate::config::ResolvedSet;
use crate::engine::{BackupSummary, Candidate, Engine, Progress};
use crate::fmt::{human_bytes, plural};
use crate::hash::ReadCounters;
use crate::lock::SetLock;
use crate::model::Status;

#[derive(Serialize)]
struct BackupJson<'a> {
    root: String,
    set: &'a str,
    dry_run: bool,
    pending_files: u64,
    pending_bytes: u64,
    #[serde(flatten)]
    summary: &'a BackupSummary,
    problems: Vec<FileProblem>,
    #[serde(flatten)]
    snapshot: &'a AfterRun,
}

#[derive(Serialize)]
struct FileProblem {
    #[serde(skip)]
    is_failure: bool,
    path: String,
    status: &'static str,
    reason: String,
}

pub async fn run(set: &ResolvedSet, dry_run: bool, out: &Output) -> Result<ExitCode> {
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "backup")?;
    let engine = Arc::new(Engine::open(set).await?);
    out.header(set);
    let reads_before = ReadCounters::now();
    let recovery = engine
        .recover()
        .await
        .context("cannot finish the interrupted run's uploads")?;
    for line in recovery.messages() {
        out.line(line);
    }
    // Only what the backup acts on and the problems are kept, not every entry: a
    // run with nothing to upload needs no more memory than `firn status`.
    let mut candidates = Vec::new();
    let mut problems = Vec::new();
    let totals = engine
        .status_each(&mut |_| {}, &mut |entry| {
            // Checked before a candidate (and its key) is made: most files of a
            // run are up to date, and nothing is done with them.
            let acted_on = entry.status.is_pending()
                || (entry.status == Status::UpToDate
                    && entry
                        .archived
                        .is_some_and(|a| a.mtime_ns != entry.fingerprint.mtime_ns));
            if acted_on && let Some(candidate) = Candidate::of(entry) {
                candidates.push(candidate);
            }
            if entry.status.is_problem() {
                problems.push(FileProblem {
                    is_failure: entry.status.is_failure(),
                    path: entry.key.clone(),
                    status: entry.status.label(),
                    reason: entry.status.reason().unwrap_or("").to_owned(),
                });
            }
        })
        .await?;
    let plan = engine.plan(candidates);
    let (pending_files, pending_bytes) = (plan.uploads.len() as u64, plan.bytes());

    let mut summary = if dry_run {
        for item in &plan.uploads {
            out.line(format!(
                "would upload: {} ({})",
                item.key,
                human_bytes(item.size)
            ));
        }
        BackupSummary::default()
    } else {
        let cancel = cancel_on_ctrl_c("finishing the uploads in flight cleanly");
        let (progress, events) = Progress::channel(1024, cancel);
        let watcher = watch(events, *out, "uploaded");
        let summary = engine.backup(plan, &progress).await;
        drop(progress);
        let _ = watcher.await;
        summary
    };
    summary.add_recovery(&recovery);
    let reads = ReadCounters::now().since(reads_before);
    summary.files_read = reads.files_read;
    summary.bytes_read = reads.bytes_read;

    let snapshot = if dry_run {
        AfterRun::default()
    } else {
        super::snapshot::after_run(&engine).await
    };
    let failed =
        summary.has_failures() || problems.iter().any(|p| p.is_failure) || snapshot.failed();
    if out.json {
        out.document(&BackupJson {
            root: set.root.display().to_string(),
            set: &set.id,
            dry_run,
            pending_files,
            pending_bytes,
            summary: &summary,
            problems,
            snapshot: &snapshot,
        })?;
    } else {
        for p in &problems {
            out.line(format!("not backed up: {}: {}", p.path, p.reason));
        }
        for f in &summary.failed {
            out.line(format!("failed: {}: {}", f.path, f.reason));
        }
        out.line(format!(
            "{}: {} uploaded ({}), {} failed, {} not backed up, {} mtimes updated, {} superseded archives deleted, {} kept{}",
            if dry_run { "dry run" } else { "backup" },
            plural(summary.uploaded_files, "file"),
            human_bytes(summary.uploaded_bytes),
            summary.failed.len(),
            totals.unreadable.files + totals.skipped.files,
            summary.mtimes_updated,
            summary.superseded_deleted,
            summary.superseded_kept,
            if summary.cancelled > 0 {
                format!(", {} cancelled", summary.cancelled)
            } else {
                String::new()
            }
        ));
        if dry_run {
            out.line(format!(
                "would upload {}, {}",
                plural(pending_files, "file"),
                human_bytes(pending_bytes)
            ));
        }
        snapshot.print(out);
    }
    Ok(super::exit_code(failed))
}
