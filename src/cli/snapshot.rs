//! `firn catalog snapshot`, and the snapshot every command that changed the
//! catalog stores when it is done (invariant 10: losing the catalog loses nothing).

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::Output;
use crate::config::ResolvedSet;
use crate::engine::{Engine, SnapshotReport};
use crate::fmt::{human_bytes, one_line, plural};
use crate::lock::SetLock;

/// What storing the catalog's snapshot after a run did, as a command reports it.
#[derive(Debug, Default, Serialize)]
pub struct AfterRun {
    /// The snapshot stored (none when the catalog did not change).
    #[serde(rename = "catalog_snapshot", skip_serializing_if = "Option::is_none")]
    pub stored: Option<SnapshotReport>,
    /// Why the snapshot is not stored (the next run retries).
    #[serde(
        rename = "catalog_snapshot_error",
        skip_serializing_if = "Option::is_none"
    )]
    pub error: Option<String>,
}

impl AfterRun {
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Its line for people: the failure always, the snapshot with `-v`.
    pub fn print(&self, out: &Output) {
        if let Some(error) = &self.error {
            out.line(format!("warning: {error}"));
        } else if let Some(stored) = &self.stored
            && out.verbose
        {
            out.line(describe(stored));
        }
    }
}

/// Stores a snapshot of the catalog when the run changed it (or one is owed).
/// Never fails the command by itself: the error is reported, the work stays done.
pub async fn after_run(engine: &Engine) -> AfterRun {
    match engine.snapshot_if_due().await {
        Ok(stored) => AfterRun {
            stored,
            error: None,
        },
        Err(e) => AfterRun {
            stored: None,
            error: Some(one_line(&e)),
        },
    }
}

fn describe(stored: &SnapshotReport) -> String {
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

#[derive(Serialize)]
struct SnapshotJson<'a> {
    set: &'a str,
    #[serde(flatten)]
    stored: &'a SnapshotReport,
}

/// `firn catalog snapshot`: stores one now, whether or not the catalog changed.
pub async fn run(set: &ResolvedSet, out: &Output) -> Result<ExitCode> {
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "catalog snapshot")?;
    let engine = Engine::open(set).await?;
    let stored = engine.snapshot().await?;
    if out.json {
        out.document(&SnapshotJson {
            set: &set.id,
            stored: &stored,
        })?;
    } else {
        out.header(set);
        out.line(describe(&stored));
    }
    Ok(ExitCode::SUCCESS)
}
