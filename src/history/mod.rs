//! A set's run history, and the hooks that tell someone how a run went.
//!
//! Every run that works on a set — a command that changes it (`backup`,
//! `restore`, `migrate`, `delete`, `prune`, `inventory`, `catalog …`), and each
//! job the terminal UI starts (uploads, retrievals, deletions, inventories,
//! migrations) — leaves one [`RunSummary`] in the set's local state (table
//! `run`, `src/state/history.rs`): when it started, how long it took, what it
//! moved, what failed, what it cost (an estimate), its exit code and outcome.
//! `firn log` lists them, `firn status` says when the last backup finished,
//! the terminal UI shows the last ones.
//!
//! How a run is followed: a front end opens a [`Run`] and does its work inside
//! [`Run::scope`]. Whatever happens in that scope tells the run about itself:
//! the config says which set it is for as soon as it knows ([`note_set`]), so
//! a run that fails later — its root missing, the set busy, the store
//! unreachable — is still recorded in that set; each engine job notes its
//! report ([`note`], through [`Summarize`], one implementation per report,
//! beside the engine's reports). [`Run::finish`] takes the run's exit code,
//! writes the summary, and [`Recorded::notify`] runs the set's hook
//! (`on_success` for exit 0, `on_failure` for any other code) with the summary
//! as JSON on its standard input. Outside a run's scope the notes do nothing
//! (the engine's tests, read-only commands).
//!
//! This module and the engine are the only ones that touch local state; this
//! one touches only the `run` table.

mod hooks;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::cost::Prices;
pub use crate::exit::Outcome;
use crate::fmt::one_line;
use crate::state::{LocalState, RUNS_KEPT, RunRow};
use crate::store::RequestCount;
pub use hooks::HookReport;

/// The command whose runs are the set's backups (`firn status`'s "last backup").
pub const BACKUP: &str = "backup";
/// Failure messages a summary keeps (`failed` counts them all).
pub const FAILURES_KEPT: usize = 5;
/// Characters kept of each failure message.
const FAILURE_CHARS: usize = 300;
/// How long a hook may run before it is killed, unless `hook_timeout` says.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(60);
/// The set's local state, in its state directory.
const STATE_FILE: &str = "state.sqlite";

/// The commands run after a run: shell command lines (`sh -c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    /// After a run that exits 0.
    pub on_success: Option<String>,
    /// After a run that exits with any other code (problems, usage, busy,
    /// failed).
    pub on_failure: Option<String>,
    /// A hook still running after this long is killed (with what it started).
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            on_success: None,
            on_failure: None,
            timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

/// The set a run is recorded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetRef {
    /// The set's id (its name in the config, or an ad-hoc set's root).
    pub id: String,
    /// Its local state directory.
    pub state_dir: PathBuf,
    pub hooks: Hooks,
}

/// Which front end ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrontEnd {
    Cli,
    Tui,
}

/// How many, and how many bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub count: u64,
    pub bytes: u64,
}

impl Moved {
    pub fn add(&mut self, count: u64, bytes: u64) {
        self.count += count;
        self.bytes += bytes;
    }
}

/// The requests a run sent to the store that its provider bills per request
/// (counted where they are sent: `store::requests`; retries included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Requests {
    /// Upload requests: S3's PUT, COPY and POST class (PutObject; a multipart
    /// upload's create, each part, complete and tagging), a vault's uploads;
    /// catalog snapshots included.
    pub upload: u64,
    /// What they are charged at the set's `upload_per_1000_requests` (part of
    /// the run's `cost_estimate`).
    pub upload_cost: f64,
    /// Retrieval requests (S3 RestoreObject, a vault's InitiateJob): their
    /// charge is the retrievals' estimate, not counted again.
    pub retrieval: u64,
}

/// What a run's jobs reported, added up: [`Summarize`] adds each report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Files uploaded (a backup, the terminal UI's uploads).
    pub uploaded: Moved,
    /// Files restored.
    pub restored: Moved,
    /// Archives deleted from the store (by request, prune, retention, orphans).
    pub deleted: Moved,
    /// Archives copied into the store in use (a migration).
    pub copied: Moved,
    /// Things that failed or need a look (files, archives, an inventory's
    /// findings), and the first [`FAILURES_KEPT`] of them in words.
    pub failed: u64,
    pub failures: Vec<String>,
    /// Not done because the run was stopped.
    pub cancelled: u64,
    /// Waiting for the store (retrieval or inventory jobs kept for the next run).
    pub waiting: u64,
    /// Estimated charges of what the run did (upload requests, retrievals
    /// requested, early deletions), in `currency`.
    pub cost: f64,
    /// The billed requests it sent.
    pub requests: Requests,
    pub currency: Option<String>,
    /// The run needs a look: it exits 1 (the same rule as the command's).
    pub problems: bool,
}

impl Tally {
    /// One thing that failed or needs a look.
    pub fn fail(&mut self, what: impl Into<String>) {
        self.fail_many(1, what);
    }

    /// `count` things that failed, said in one message.
    pub fn fail_many(&mut self, count: u64, what: impl Into<String>) {
        self.fail_with(count, [what.into()]);
    }

    /// `count` things that failed, said in `lines` (as many as are kept).
    pub fn fail_with(&mut self, count: u64, lines: impl IntoIterator<Item = String>) {
        if count == 0 {
            return;
        }
        self.failed += count;
        self.problems = true;
        for what in lines {
            if self.failures.len() >= FAILURES_KEPT {
                break;
            }
            let mut line: String = what
                .replace('\n', " ")
                .chars()
                .take(FAILURE_CHARS)
                .collect();
            if line.len() < what.len() {
                line.push('…');
            }
            self.failures.push(line);
        }
    }

    /// Requests the run sent to the store: upload requests are charged at
    /// `prices`; retrieval requests are in the retrievals' own charge.
    pub fn sent(&mut self, count: RequestCount, prices: &Prices) {
        let upload_cost = prices.upload_requests(count.upload);
        self.requests.upload += count.upload;
        self.requests.retrieval += count.retrieval;
        if upload_cost.is_finite() && upload_cost > 0.0 {
            self.requests.upload_cost += upload_cost;
        }
        self.charge(upload_cost, prices);
    }

    /// An estimated charge at `prices`.
    pub fn charge(&mut self, amount: f64, prices: &Prices) {
        if amount.is_finite() && amount > 0.0 {
            self.cost += amount;
        }
        self.currency.get_or_insert_with(|| prices.currency.clone());
    }
}

/// What a job's report adds to its run's summary.
pub trait Summarize {
    fn summarize(&self, prices: &Prices, tally: &mut Tally);
}

/// One run, as `firn log --json` prints it and a hook reads it on its
/// standard input (the field names are stable; README lists them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub firn_version: String,
    pub host: String,
    pub set: String,
    /// `backup`, `restore`, `catalog rebuild`…; the terminal UI's jobs:
    /// `upload`, `restore`, `delete`, `inventory`, `migrate`.
    pub command: String,
    pub front_end: FrontEnd,
    /// When it started: RFC 3339, UTC, and Unix seconds.
    pub started_at: String,
    pub started_at_unix: i64,
    pub duration_secs: f64,
    pub outcome: Outcome,
    pub exit_code: u8,
    /// What ended the run, when it did not finish (one line).
    pub error: Option<String>,
    pub uploaded: Moved,
    pub restored: Moved,
    pub deleted: Moved,
    pub copied: Moved,
    pub failed: u64,
    pub failures: Vec<String>,
    pub cancelled: u64,
    pub waiting: u64,
    pub cost_estimate: f64,
    pub currency: String,
    /// The billed requests the run sent to the store (none in runs recorded
    /// before firn counted them).
    #[serde(default)]
    pub requests: Requests,
    /// What the hook did (not on the hook's own standard input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<HookReport>,
}

impl RunSummary {
    /// Unix seconds it ended.
    pub fn finished_at_unix(&self) -> i64 {
        self.started_at_unix + self.duration_secs.round() as i64
    }

    /// A backup that ran to its end: exit 0, or 1 (some files failed, the
    /// rest is archived) with nothing cancelled.
    pub fn is_completed_backup(&self) -> bool {
        self.command == BACKUP
            && matches!(self.outcome, Outcome::Ok | Outcome::Problems)
            && self.cancelled == 0
    }

    /// The run in one line for people, as `firn log` and the terminal UI show
    /// it: `2025-01-31 03:00  backup  ok  exit 0  12s  uploaded 3 files (1.2 MiB)`.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{}  {:<16} {:<8} exit {}  {:>6}  {}",
            crate::fmt::format_time(self.started_at_unix),
            match self.front_end {
                FrontEnd::Cli => self.command.clone(),
                FrontEnd::Tui => format!("{} (ui)", self.command),
            },
            self.outcome.as_str(),
            self.exit_code,
            crate::fmt::duration(self.duration_secs.round() as u64),
            self.moved_words()
        );
        if self.cost_estimate > 0.0 {
            text += &format!(
                "; ≈ {}",
                crate::cost::format_money(self.cost_estimate, &self.currency)
            );
        }
        if let Some(hook) = self.hook.as_ref().filter(|h| !h.ok) {
            text += &format!("; {} hook failed", hook.name);
        }
        text
    }

    /// What it did, in a few words for people: `uploaded 3 files (1.2 MiB)`.
    pub fn moved_words(&self) -> String {
        use crate::fmt::{human_bytes, plural};
        let mut parts = Vec::new();
        for (verb, noun, moved) in [
            ("uploaded", "file", self.uploaded),
            ("restored", "file", self.restored),
            ("deleted", "archive", self.deleted),
            ("copied", "archive", self.copied),
        ] {
            if moved.count > 0 {
                parts.push(format!(
                    "{verb} {} ({})",
                    plural(moved.count, noun),
                    human_bytes(moved.bytes)
                ));
            }
        }
        if self.waiting > 0 {
            parts.push(format!("{} waiting", self.waiting));
        }
        if self.cancelled > 0 {
            parts.push(format!("{} cancelled", self.cancelled));
        }
        if self.failed > 0 {
            let first = self
                .failures
                .first()
                .map_or(String::new(), |f| format!(": {f}"));
            parts.push(format!("{} failed{first}", self.failed));
        } else if let Some(error) = &self.error {
            parts.push(error.clone());
        }
        if parts.is_empty() {
            "nothing to do".into()
        } else {
            parts.join(", ")
        }
    }
}

/// What a run's scope has learnt so far.
#[derive(Debug, Default)]
struct Current {
    set: Option<SetRef>,
    tally: Tally,
    /// The first error a job ended with (one line, exit code), for a front end
    /// that does not hand the run's own error to [`Run::finish`].
    error: Option<(String, u8)>,
}

tokio::task_local! {
    static CURRENT: Arc<Mutex<Current>>;
}

fn with_current(f: impl FnOnce(&mut Current)) {
    let _ = CURRENT.try_with(|current| {
        let mut current = current.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut current)
    });
}

/// The run under way is for `set` (the config calls this once it knows).
pub fn note_set(set: SetRef) {
    with_current(|current| current.set = Some(set));
}

/// Adds a job's report to the run under way (the engine's jobs call this).
pub fn note(report: &dyn Summarize, prices: &Prices) {
    with_current(|current| report.summarize(prices, &mut current.tally));
}

/// A job of the run under way ended in `e` (the terminal UI, whose jobs'
/// errors end in a dialog rather than in the run's result).
pub fn note_error(e: &anyhow::Error) {
    with_current(|current| {
        if current.error.is_none() {
            current.error = Some((one_line(e), crate::exit::code_of(e)));
        }
    });
}

/// A run being followed, from its start to its exit code.
pub struct Run {
    command: String,
    front_end: FrontEnd,
    started_unix: i64,
    started: Instant,
    current: Arc<Mutex<Current>>,
}

impl Run {
    /// A run of `command`; the set it is for is noted while it runs.
    pub fn begin(command: &str, front_end: FrontEnd) -> Run {
        Run {
            command: command.to_string(),
            front_end,
            started_unix: crate::model::now_secs(),
            started: Instant::now(),
            current: Arc::default(),
        }
    }

    /// A run of `command` on a set known from the start (the terminal UI's jobs).
    pub fn for_set(set: SetRef, command: &str, front_end: FrontEnd) -> Run {
        let run = Run::begin(command, front_end);
        run.lock().set = Some(set);
        run
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `work` as this run: what it notes is this run's.
    pub async fn scope<F: Future>(&self, work: F) -> F::Output {
        CURRENT.scope(Arc::clone(&self.current), work).await
    }

    /// The run ended with exit code `code` (and `error`, when it failed):
    /// its summary, recorded in its set's history when a set was noted.
    pub fn finish(self, code: u8, error: Option<&anyhow::Error>) -> Recorded {
        let error = error.map(one_line);
        self.record(code, error)
    }

    /// The run ended; its exit code is what its jobs noted (an error's kind,
    /// else 1 when something needs a look, else 0), the code the CLI would
    /// give the same outcome.
    pub fn finish_noted(self) -> Recorded {
        let noted = self.lock().error.clone();
        let (code, error) = match noted {
            Some((line, code)) => (code, Some(line)),
            None => (
                crate::exit::code_of_finished(self.lock().tally.problems),
                None,
            ),
        };
        self.record(code, error)
    }

    fn record(self, code: u8, error: Option<String>) -> Recorded {
        let duration = self.started.elapsed();
        let (set, tally) = {
            let mut current = self.lock();
            (current.set.take(), std::mem::take(&mut current.tally))
        };
        let Some(set) = set else {
            return Recorded::default();
        };
        let summary = RunSummary {
            firn_version: env!("CARGO_PKG_VERSION").to_string(),
            host: crate::lock::hostname(),
            set: set.id.clone(),
            command: self.command,
            front_end: self.front_end,
            started_at: crate::fmt::format_time_rfc3339(self.started_unix),
            started_at_unix: self.started_unix,
            duration_secs: (duration.as_secs_f64() * 1000.0).round() / 1000.0,
            outcome: Outcome::of_code(code),
            exit_code: code,
            error,
            uploaded: tally.uploaded,
            restored: tally.restored,
            deleted: tally.deleted,
            copied: tally.copied,
            failed: tally.failed,
            failures: tally.failures,
            cancelled: tally.cancelled,
            waiting: tally.waiting,
            cost_estimate: (tally.cost * 1e6).round() / 1e6,
            currency: tally.currency.unwrap_or_else(|| "USD".into()),
            requests: Requests {
                upload_cost: (tally.requests.upload_cost * 1e6).round() / 1e6,
                ..tally.requests
            },
            hook: None,
        };
        let mut recorded = Recorded {
            summary: Some(summary),
            set: Some(set),
            id: None,
            warnings: Vec::new(),
        };
        match recorded.write() {
            Ok(id) => recorded.id = Some(id),
            Err(e) => recorded.warnings.push(format!(
                "this run is not in the set's history: {}",
                one_line(&e)
            )),
        }
        recorded
    }
}

/// A run once it ended: its summary (None when no set was known), written in
/// the set's history.
#[derive(Debug, Default)]
pub struct Recorded {
    pub summary: Option<RunSummary>,
    set: Option<SetRef>,
    /// Its row in the history.
    id: Option<i64>,
    /// What went wrong keeping it (one line each, for people).
    pub warnings: Vec<String>,
}

impl Recorded {
    fn state(&self) -> Result<Option<LocalState>> {
        match &self.set {
            Some(set) => Ok(Some(LocalState::open(&set.state_dir.join(STATE_FILE))?)),
            None => Ok(None),
        }
    }

    fn write(&self) -> Result<i64> {
        let (Some(summary), Some(state)) = (&self.summary, self.state()?) else {
            anyhow::bail!("no set");
        };
        state.add_run(&RunRow {
            id: 0,
            command: summary.command.clone(),
            started_at: summary.started_at_unix,
            duration_ms: (summary.duration_secs * 1000.0).round() as i64,
            exit_code: summary.exit_code,
            outcome: summary.outcome.as_str().to_string(),
            summary: serde_json::to_string(summary)?,
        })
    }

    /// Runs the set's hook for this run's outcome, `on_success` after exit 0
    /// and `on_failure` after any other code, with the summary as JSON on its
    /// standard input, and records what it did. Returns one line for people
    /// when the hook failed (it never changes the run's own exit code).
    pub fn notify(&mut self) -> Option<String> {
        let (summary, set) = (self.summary.as_mut()?, self.set.as_ref()?);
        let (name, command) = if summary.exit_code == crate::exit::OK {
            ("on_success", set.hooks.on_success.as_deref()?)
        } else {
            ("on_failure", set.hooks.on_failure.as_deref()?)
        };
        let mut input = match serde_json::to_vec(&*summary) {
            Ok(input) => input,
            Err(e) => return Some(format!("{name} hook not run: {e}")),
        };
        input.push(b'\n');
        let env = [
            ("FIRN_HOOK", name.to_string()),
            ("FIRN_SET", summary.set.clone()),
            ("FIRN_COMMAND", summary.command.clone()),
            ("FIRN_OUTCOME", summary.outcome.as_str().to_string()),
            ("FIRN_EXIT_CODE", summary.exit_code.to_string()),
        ];
        let report = hooks::run(name, command, &input, &env, set.hooks.timeout);
        let line = report.failure_line();
        summary.hook = Some(report);
        if let (Some(id), Ok(text)) = (self.id, serde_json::to_string(&*summary))
            && let Err(e) = self
                .state()
                .and_then(|state| state.map_or(Ok(()), |s| s.update_run_summary(id, &text)))
        {
            self.warnings.push(format!(
                "the hook's outcome is not in the set's history: {}",
                one_line(&e)
            ));
        }
        line
    }
}

/// The local state of the set whose state directory is `state_dir`, if it
/// has any yet (reading the history creates nothing).
fn existing_state(state_dir: &Path) -> Result<Option<LocalState>> {
    let path = state_dir.join(STATE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(LocalState::open(&path)?))
}

/// A row's summary; a row whose JSON cannot be read is said so, from its columns.
fn summary_of(row: RunRow, set: &str) -> RunSummary {
    serde_json::from_str(&row.summary).unwrap_or_else(|e| RunSummary {
        firn_version: String::new(),
        host: String::new(),
        set: set.to_string(),
        command: row.command,
        front_end: FrontEnd::Cli,
        started_at: crate::fmt::format_time_rfc3339(row.started_at),
        started_at_unix: row.started_at,
        duration_secs: row.duration_ms as f64 / 1000.0,
        outcome: Outcome::of_code(row.exit_code),
        exit_code: row.exit_code,
        error: Some(format!("the summary of this run cannot be read: {e}")),
        uploaded: Moved::default(),
        restored: Moved::default(),
        deleted: Moved::default(),
        copied: Moved::default(),
        failed: 0,
        failures: Vec::new(),
        cancelled: 0,
        waiting: 0,
        cost_estimate: 0.0,
        currency: String::new(),
        requests: Requests::default(),
        hook: None,
    })
}

/// The newest `limit` runs of a set (`set` is its id), newest first.
pub fn runs(set: &SetRef, limit: usize) -> Result<Vec<RunSummary>> {
    let Some(state) = existing_state(&set.state_dir)? else {
        return Ok(Vec::new());
    };
    Ok(state
        .runs(limit)?
        .into_iter()
        .map(|row| summary_of(row, &set.id))
        .collect())
}

/// The set's backups as `firn status` tells them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backups {
    /// The last backup that ran to its end ([`RunSummary::is_completed_backup`]).
    pub last: Option<RunSummary>,
    /// The backup runs after it that did not, newest first.
    pub failed_since: Vec<RunSummary>,
}

/// The set's last completed backup, and the backup runs that failed since.
pub fn backups(set: &SetRef) -> Result<Backups> {
    let Some(state) = existing_state(&set.state_dir)? else {
        return Ok(Backups::default());
    };
    let mut backups = Backups::default();
    for row in state.runs_of(BACKUP, RUNS_KEPT as usize)? {
        let summary = summary_of(row, &set.id);
        if summary.is_completed_backup() {
            backups.last = Some(summary);
            break;
        }
        backups.failed_since.push(summary);
    }
    Ok(backups)
}

/// How old a set's last backup is, against the age it should not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BackupAge {
    /// When the last completed backup finished (Unix seconds).
    pub finished_at: i64,
    pub age_secs: i64,
    /// Past the set's `stale_after`.
    pub stale: bool,
}

impl Backups {
    /// The newest backup run, whatever its outcome (its requests were sent
    /// either way).
    pub fn newest(&self) -> Option<&RunSummary> {
        self.failed_since.first().or(self.last.as_ref())
    }

    /// The last backup's age at `now`, stale past `stale_after` (None: never).
    pub fn age(&self, now: i64, stale_after: Option<Duration>) -> Option<BackupAge> {
        let last = self.last.as_ref()?;
        let finished_at = last.finished_at_unix();
        let age_secs = now.saturating_sub(finished_at).max(0);
        Some(BackupAge {
            finished_at,
            age_secs,
            stale: stale_after.is_some_and(|limit| age_secs as u64 > limit.as_secs()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Uploads(u64, bool);

    impl Summarize for Uploads {
        fn summarize(&self, prices: &Prices, tally: &mut Tally) {
            tally.uploaded.add(self.0, self.0 * 10);
            tally.charge(0.5, prices);
            if self.1 {
                tally.fail("a.txt: unreadable");
            }
        }
    }

    fn set(dir: &Path) -> SetRef {
        SetRef {
            id: "s".into(),
            state_dir: dir.join("sets/s"),
            hooks: Hooks::default(),
        }
    }

    #[tokio::test]
    async fn what_a_run_notes_in_its_scope_is_its_summary_and_nothing_leaks_outside() {
        let dir = tempfile::tempdir().unwrap();
        let run = Run::begin("backup", FrontEnd::Cli);
        let prices = Prices::default();
        run.scope(async {
            note_set(set(dir.path()));
            note(&Uploads(2, false), &prices);
            note(&Uploads(3, true), &prices);
        })
        .await;
        // Outside any run: nothing happens, nothing fails.
        note(&Uploads(100, true), &prices);
        let recorded = run.finish_noted();
        assert!(recorded.warnings.is_empty(), "{:?}", recorded.warnings);
        let summary = recorded.summary.clone().unwrap();
        assert_eq!(
            summary.uploaded,
            Moved {
                count: 5,
                bytes: 50
            }
        );
        assert_eq!((summary.failed, summary.failures.len()), (1, 1));
        assert_eq!((summary.exit_code, summary.outcome), (1, Outcome::Problems));
        assert_eq!(
            (summary.cost_estimate, summary.currency.as_str()),
            (1.0, "USD")
        );
        assert_eq!(summary.set, "s");
        let read = runs(&set(dir.path()), 10).unwrap();
        assert_eq!(read, vec![summary]);
    }

    #[tokio::test]
    async fn a_run_with_no_set_known_is_not_recorded() {
        let run = Run::begin("backup", FrontEnd::Cli);
        run.scope(async {}).await;
        let recorded = run.finish(2, Some(&crate::model::usage("bad config")));
        assert!(recorded.summary.is_none() && recorded.warnings.is_empty());
    }

    #[test]
    fn failures_keep_their_count_and_the_first_few_words() {
        let mut tally = Tally::default();
        for i in 0..8 {
            tally.fail(format!("file {i}\nbroken"));
        }
        tally.fail_many(10, "10 orphans");
        tally.fail_many(0, "nothing");
        assert_eq!(tally.failed, 18);
        assert_eq!(tally.failures.len(), FAILURES_KEPT);
        assert_eq!(tally.failures[0], "file 0 broken");
        tally.fail("x".repeat(1000));
        assert!(tally.problems);
        let mut long = Tally::default();
        long.fail("é".repeat(400));
        assert_eq!(long.failures[0].chars().count(), FAILURE_CHARS + 1);
    }

    #[test]
    fn the_last_completed_backup_and_the_failures_since() {
        let dir = tempfile::tempdir().unwrap();
        let set = set(dir.path());
        assert_eq!(backups(&set).unwrap(), Backups::default());
        assert!(!set.state_dir.exists(), "reading created nothing");
        let state = LocalState::open(&set.state_dir.join(STATE_FILE)).unwrap();
        let add = |command: &str, at: i64, code: u8, cancelled: u64| {
            let summary = RunSummary {
                firn_version: "0".into(),
                host: "h".into(),
                set: "s".into(),
                command: command.into(),
                front_end: FrontEnd::Cli,
                started_at: crate::fmt::format_time_rfc3339(at),
                started_at_unix: at,
                duration_secs: 60.0,
                outcome: Outcome::of_code(code),
                exit_code: code,
                error: None,
                uploaded: Moved::default(),
                restored: Moved::default(),
                deleted: Moved::default(),
                copied: Moved::default(),
                failed: 0,
                failures: Vec::new(),
                cancelled,
                waiting: 0,
                cost_estimate: 0.0,
                currency: "USD".into(),
                requests: Requests::default(),
                hook: None,
            };
            state
                .add_run(&RunRow {
                    id: 0,
                    command: command.into(),
                    started_at: at,
                    duration_ms: 60_000,
                    exit_code: code,
                    outcome: summary.outcome.as_str().into(),
                    summary: serde_json::to_string(&summary).unwrap(),
                })
                .unwrap();
        };
        add("backup", 1000, 0, 0);
        add("backup", 2000, 1, 0);
        add("backup", 3000, 1, 2); // stopped: not a completed backup
        add("restore", 3500, 0, 0);
        add("backup", 4000, 4, 0);
        add("backup", 5000, 3, 0);
        let found = backups(&set).unwrap();
        let last = found.last.clone().unwrap();
        assert_eq!((last.started_at_unix, last.exit_code), (2000, 1));
        let since: Vec<_> = found.failed_since.iter().map(|s| s.exit_code).collect();
        assert_eq!(since, vec![3, 4, 1]);
        let hour = Duration::from_secs(3600);
        let age = found.age(2060 + 7200, Some(hour)).unwrap();
        assert_eq!(
            (age.finished_at, age.age_secs, age.stale),
            (2060, 7200, true)
        );
        assert!(!found.age(2060 + 7200, None).unwrap().stale);
        assert!(!found.age(2060 + 3600, Some(hour)).unwrap().stale);
    }
}
