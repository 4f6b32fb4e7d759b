//! The CLI's view of a running job: engine events reduced by the engine's
//! [`TaskTable`] (the same reducer as the TUI's jobs pane) into one live line on a
//! terminal (files done of total, bytes, rate, an ETA that counts per-file cost),
//! a line per finished file with `-v`, and nothing animated when nobody watches
//! (cron, pipes).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::output::Output;
use crate::engine::{Change, Event, TaskTable};
use crate::fmt::{count, duration, human_bytes};

/// How often the live line is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// Watches a job's events until the engine drops its sender; returns the table.
/// `verb` names what happened to a finished file (`uploaded`, `restored`, …).
pub fn watch(
    mut events: mpsc::Receiver<Event>,
    out: Output,
    verb: &'static str,
) -> JoinHandle<TaskTable> {
    tokio::spawn(async move {
        let started = Instant::now();
        let now_ms = || started.elapsed().as_millis() as u64;
        let bar = out.animates().then(live_line);
        let print = |line: String| match &bar {
            Some(bar) => bar.println(line),
            None => outln!("{line}"),
        };
        // Settled rows are forgotten: a run of millions of files holds only
        // those in flight (the totals still count every one).
        let mut table = TaskTable::forgetting();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { break };
                    if let Event::Note(note) = &event {
                        if !out.json {
                            print(note.clone());
                        }
                        continue;
                    }
                    if let Some(Change::Done(row)) = table.apply(event, now_ms())
                        && out.verbose
                        && !out.json
                        && let Some(task) = table.task(row)
                    {
                        print(format!("{verb}: {} ({})", task.key, human_bytes(task.bytes)));
                    }
                }
                _ = tick.tick() => {
                    if let Some(bar) = &bar {
                        draw(bar, &table, now_ms());
                    }
                }
            }
        }
        if let Some(bar) = bar {
            // The last frame shows the run complete before the line gives way to
            // the summary (a short run may not have reached its next tick).
            draw(&bar, &table, now_ms());
            bar.finish_and_clear();
        }
        table
    })
}

fn live_line() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:24} {msg}") {
        bar.set_style(style);
    }
    bar
}

fn draw(bar: &indicatif::ProgressBar, table: &TaskTable, now_ms: u64) {
    let totals = table.totals();
    bar.set_length(totals.bytes.max(1));
    bar.set_position(totals.bytes_done.min(totals.bytes));
    bar.set_message(status_line(table, now_ms));
}

/// `1,204/20,000 files  45.2 MiB/786.0 MiB  3.1 MiB/s  ETA 1m20s`. The total
/// counts every file of the job, queued or announced ahead (a backup announces
/// its whole plan before it queues files as they come up: [`Event::Planned`]).
pub fn status_line(table: &TaskTable, now_ms: u64) -> String {
    let t = table.totals();
    let finished = t.done + t.failed;
    let mut line = format!(
        "{}/{} files  {}/{}",
        count(finished as u64),
        count((t.files() - t.cancelled) as u64),
        human_bytes(t.bytes_done),
        human_bytes(t.bytes)
    );
    if let Some(rate) = table.rate(now_ms) {
        line.push_str(&format!("  {}/s", human_bytes(rate as u64)));
    }
    if t.at_store > 0 {
        line.push_str(&format!(
            "  {} waiting for the store",
            count(t.at_store as u64)
        ));
    }
    if let Some(eta) = table.eta_secs(now_ms).filter(|_| t.active() > 0) {
        line.push_str(&format!("  ETA {}", duration(eta)));
    }
    if t.failed > 0 {
        line.push_str(&format!("  {} failed", count(t.failed as u64)));
    }
    line
}

/// A token Ctrl-C cancels, saying what firn does about it.
pub fn cancel_on_ctrl_c(what: &'static str) -> CancellationToken {
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("firn: interrupted; {what}");
            stop.cancel();
        }
    });
    cancel
}
