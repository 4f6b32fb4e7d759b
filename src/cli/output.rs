//! How a command speaks: words for people (quiet by default, a line per file with
//! `-v`), or one JSON document for scripts (`--json`, nothing else on stdout).

use std::io::{IsTerminal, Write};

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
            println!("{}", text.as_ref());
        }
    }

    /// The one JSON document of a `--json` run.
    pub fn document(&self, doc: &impl Serialize) -> Result<()> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, doc)?;
        writeln!(out)?;
        Ok(())
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
