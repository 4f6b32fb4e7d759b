//! `firn status`: the tree compared with the catalog, summed up per class, with
//! every problem named (or a JSON document with a per-file list), and when the
//! last backup finished (in red on a terminal past the set's `stale_after`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use base64::Engine as _;
use serde::Serialize;

use super::output::Output;
use super::set_args::SetArgs;
use crate::config::{ResolvedSet, RootUse};
use crate::engine::Engine;
use crate::fmt::{human_bytes, plural};
use crate::hash::ReadCounters;
use crate::history::{BackupAge, Backups};
use crate::model::{Entry, Fingerprint};
use crate::status::{Rollup, StatusReport, Tally};

/// Compare the tree with the catalog: new, changed, up to date, archived-only,
/// ignored, unreadable, skipped. Reads only files whose fingerprint moved.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The directory to compare (default: the set whose root holds the
    /// current directory, else the current directory).
    root: Option<PathBuf>,
    #[command(flatten)]
    set: SetArgs,
    /// Print a JSON document with a per-file list instead of the summary.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    let set = &args.set.resolve(args.root, RootUse::MustExist)?;
    let out = &Output::new(args.json, verbose);
    let engine = Engine::open(set).await?;
    let backups = crate::history::backups(&set.history())?;
    let now = crate::model::now_secs();
    let before = ReadCounters::now();
    if out.json {
        // Every file is listed, and the document opens with the totals: keep them all.
        let report = engine.status(&mut |_| {}).await?;
        let reads = ReadCounters::now().since(before);
        let mut doc = StatusJson::new(set, &report, reads);
        doc.last_backup = LastBackupJson::of(&backups, set, now);
        doc.failed_backups_since = backups.failed_since.len() as u64;
        out.document(&doc)?;
    } else {
        // Only totals and problems are printed: no entry is kept but a problem.
        let mut problems = Vec::new();
        let totals = engine
            .status_each(&mut |_| {}, &mut |entry| {
                if entry.status.is_problem() {
                    let reason = entry.status.reason().unwrap_or("");
                    problems.push((entry.key.clone(), reason.to_owned()));
                }
            })
            .await?;
        let target = engine.info().target;
        let mut stdout = std::io::stdout().lock();
        print_status(&mut stdout, set, &target, &totals, &problems)?;
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print_last_backup(&mut stdout, &backups, set, now, colour)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// When the last backup finished, and the backup runs that failed since: red
/// on a terminal (`colour`) when it is older than the set's `stale_after`, or
/// when none completed and some failed.
fn print_last_backup(
    out: &mut impl Write,
    backups: &Backups,
    set: &ResolvedSet,
    now: i64,
    colour: bool,
) -> Result<()> {
    use crate::fmt::{age, format_time};
    let age_of = backups.age(now, set.stale_after);
    let mut line = match (&backups.last, age_of) {
        (
            Some(last),
            Some(BackupAge {
                age_secs, stale, ..
            }),
        ) => {
            let mut line = format!(
                "last backup {} ago ({}",
                age(age_secs),
                format_time(last.finished_at_unix())
            );
            if last.failed > 0 {
                line += &format!(", {} failed", plural(last.failed, "file"));
            }
            line.push(')');
            if stale && let Some(limit) = set.stale_after {
                line += &format!(", older than stale_after ({})", age(limit.as_secs() as i64));
            }
            line
        }
        _ => "last backup: none recorded".to_string(),
    };
    if let Some(newest) = backups.failed_since.first() {
        let why = newest
            .error
            .clone()
            .or_else(|| newest.failures.first().cloned())
            .unwrap_or_else(|| newest.moved_words());
        line += &format!(
            "; since then {} did not complete, the last {} ago (exit {}): {why}",
            plural(backups.failed_since.len() as u64, "backup run"),
            age(now.saturating_sub(newest.started_at_unix)),
            newest.exit_code
        );
    }
    let alarming = age_of.is_some_and(|a| a.stale)
        || (backups.last.is_none() && !backups.failed_since.is_empty());
    if alarming && colour {
        line = format!("\x1b[31m{line}\x1b[0m");
    }
    writeln!(out, "{line}")?;
    Ok(())
}

/// The last backup as `firn status --json` gives it.
#[derive(Serialize)]
struct LastBackupJson {
    /// When it finished: RFC 3339 (UTC) and Unix seconds.
    finished_at: String,
    finished_at_unix: i64,
    age_secs: i64,
    /// Older than `stale_after`.
    stale: bool,
    stale_after_secs: Option<u64>,
    outcome: crate::history::Outcome,
    exit_code: u8,
    failed: u64,
}

impl LastBackupJson {
    fn of(backups: &Backups, set: &ResolvedSet, now: i64) -> Option<LastBackupJson> {
        let (last, age) = (backups.last.as_ref()?, backups.age(now, set.stale_after)?);
        Some(LastBackupJson {
            finished_at: crate::fmt::format_time_rfc3339(age.finished_at),
            finished_at_unix: age.finished_at,
            age_secs: age.age_secs,
            stale: age.stale,
            stale_after_secs: set.stale_after.map(|d| d.as_secs()),
            outcome: last.outcome,
            exit_code: last.exit_code,
            failed: last.failed,
        })
    }
}

/// The summary: files and bytes per class, what is pending, and each problem
/// (key and reason, in key order).
fn print_status(
    out: &mut impl Write,
    set: &ResolvedSet,
    store: &str,
    totals: &Rollup,
    problems: &[(String, String)],
) -> Result<()> {
    let t = totals;
    writeln!(out, "{}", set.describe())?;
    for (label, tally) in [
        ("new", t.new),
        ("changed", t.changed),
        ("up to date", t.up_to_date),
        ("in another store only", t.other_store),
        ("archived-only", t.archived_only),
        ("ignored", t.ignored),
        ("unreadable", t.unreadable),
        ("skipped", t.skipped),
    ] {
        if tally.files > 0 {
            writeln!(
                out,
                "  {label:<21} {:>9} {:>11}",
                plural(tally.files, "file"),
                human_bytes(tally.bytes)
            )?;
        }
    }
    if t.archived_elsewhere.files > 0 {
        // A migration under way (or not begun): how much is in the new store.
        let all = t.archived_here.files + t.archived_elsewhere.files;
        let all_bytes = t.archived_here.bytes + t.archived_elsewhere.bytes;
        writeln!(
            out,
            "in {store} (the store this set uses): {} of {} archived files ({} of {}, {}%); {} only in another store: `firn migrate` copies them",
            t.archived_here.files,
            all,
            human_bytes(t.archived_here.bytes),
            human_bytes(all_bytes),
            (t.archived_here.bytes * 100)
                .checked_div(all_bytes)
                .unwrap_or(0),
            plural(t.archived_elsewhere.files, "file"),
        )?;
    }
    let pending = t.pending();
    writeln!(
        out,
        "pending: {}, {}",
        plural(pending.files, "file"),
        human_bytes(pending.bytes)
    )?;
    if !problems.is_empty() {
        writeln!(out, "problems:")?;
        for (key, reason) in problems {
            writeln!(out, "  {key}: {reason}")?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct StatusJson<'a> {
    root: String,
    set: &'a str,
    /// The last backup that ran to its end (None: none recorded).
    last_backup: Option<LastBackupJson>,
    /// Backup runs since it that did not complete.
    failed_backups_since: u64,
    summary: SummaryJson,
    directories: Vec<DirJson>,
    files: FilesJson<'a>,
}

/// Every entry of the report, written out one by one as the document is (never
/// a second list of them all).
struct FilesJson<'a>(&'a [Entry]);

impl Serialize for FilesJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(FileJson::of))
    }
}

#[derive(Serialize)]
struct SummaryJson {
    #[serde(flatten)]
    totals: Rollup,
    pending: Tally,
    files_read: u64,
    bytes_read: u64,
}

#[derive(Serialize)]
struct DirJson {
    path: String,
    #[serde(flatten)]
    rollup: Rollup,
    pending: Tally,
}

#[derive(Serialize)]
struct FileJson<'a> {
    path: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtime_ns: Option<i64>,
    /// base64url of the original name bytes, when they differ from `path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_path: Option<String>,
}

impl<'a> FileJson<'a> {
    fn of(e: &'a Entry) -> Self {
        let local = e.fingerprint != Fingerprint::default();
        FileJson {
            path: &e.key,
            status: e.status.label(),
            reason: e.status.reason(),
            size: if local {
                e.fingerprint.size
            } else {
                e.archived.map_or(0, |a| a.size)
            },
            mtime_ns: if local {
                Some(e.fingerprint.mtime_ns)
            } else {
                e.archived.map(|a| a.mtime_ns)
            },
            raw_path: e
                .raw
                .as_ref()
                .map(|r| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r)),
        }
    }
}

impl<'a> StatusJson<'a> {
    fn new(set: &'a ResolvedSet, report: &'a StatusReport, reads: ReadCounters) -> Self {
        let files = FilesJson(&report.entries);
        let directories = report
            .directories(usize::MAX)
            .into_iter()
            .map(|(path, rollup)| DirJson {
                path,
                pending: rollup.pending(),
                rollup,
            })
            .collect();
        StatusJson {
            root: set.root.display().to_string(),
            set: &set.id,
            last_backup: None,
            failed_backups_since: 0,
            summary: SummaryJson {
                totals: report.totals,
                pending: report.totals.pending(),
                files_read: reads.files_read,
                bytes_read: reads.bytes_read,
            },
            directories,
            files,
        }
    }
}
