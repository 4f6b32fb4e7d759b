//! How a command speaks: words for people (quiet by default, a line per file with
//! `-v`), or one JSON document for scripts (`--json`, nothing else on stdout).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use serde::Serialize;

use crate::config::ResolvedSet;
use crate::engine::{AfterRun, SnapshotReport};
use crate::fmt::{human_bytes, plural};
use crate::limit::{Limiter, Schedule};

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub verbose: bool,
}

impl Output {
    pub fn new(json: bool, verbose: bool) -> Output {
        Output { json, verbose }
    }

    /// The first line of human output: which set and root the command works on.
    pub fn header(&self, set: &ResolvedSet) {
        self.line(set.describe());
    }

    /// The bandwidth limit a run works under, when there is one:
    /// `upload limit: 512 KiB/s until 19:00 (timetable 08:00,512KiB 19:00,4MiB 23:00,off)`.
    pub fn limit(&self, direction: &str, limiter: &Limiter) {
        if !limiter.may_limit() {
            return;
        }
        let mut text = format!(
            "{direction} limit: {}",
            limiter.now().describe(limiter.local_time())
        );
        let schedule = limiter.schedule();
        if let Schedule::Timetable(_) = schedule {
            text.push_str(&format!(" (timetable {schedule})"));
        }
        self.line(text);
    }

    /// A line for people (nothing under `--json`).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            emit(format_args!("{}", text.as_ref()));
        }
    }

    /// The one JSON document of a `--json` run.
    pub fn document(&self, doc: &impl Serialize) -> Result<()> {
        let mut out = std::io::stdout().lock();
        let written = serde_json::to_writer(&mut out, doc)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out));
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                STDOUT_GONE.store(true, Ordering::Relaxed);
                Ok(())
            }
            other => Ok(other?),
        }
    }

    /// What storing the catalog's snapshot after the job did, for people: a
    /// failure always, the snapshot with `-v`.
    pub fn after(&self, after: &AfterRun) {
        if let Some(error) = &after.error {
            self.line(format!("warning: {error}"));
        } else if let Some(stored) = &after.stored
            && self.verbose
        {
            self.line(describe_snapshot(stored));
        }
    }

    /// Whether a live progress display may animate (people watching a terminal).
    pub fn animates(&self) -> bool {
        !self.json && std::io::stderr().is_terminal()
    }
}

/// A stored snapshot, in one line for people.
pub fn describe_snapshot(stored: &SnapshotReport) -> String {
    let mut line = format!(
        "catalog snapshot: {} in {} stored as archive {} ({:.1} s)",
        plural(stored.records, "record"),
        human_bytes(stored.bytes),
        stored.archive_id,
        stored.seconds
    );
    if stored.pruned > 0 {
        line += &format!("; {} deleted", plural(stored.pruned, "older snapshot"));
    }
    if stored.kept_early > 0 {
        line += &format!(
            "; {} kept until their minimum storage period ends",
            plural(stored.kept_early, "older snapshot")
        );
    }
    line
}

/// Set once stdout's reader went away: nothing more is printed there.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Prints one line on stdout. When the reader has gone (`firn ls | head`,
/// a closed pipe), the rest of the output is dropped and the command goes on
/// to its end and its exit code: a backup piped into `head` must not stop
/// half way, and nothing panics. Other write errors (a full disk behind a
/// redirection) are said once on stderr.
pub fn emit(line: std::fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}") {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!(
                "firn: cannot write to standard output: {e}; the rest of the output is dropped"
            );
        }
    }
}
