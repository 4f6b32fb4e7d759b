//! One progress model for every job (uploads, retrievals, deletions): the engine
//! assigns each task a stable id and reports small typed [`Event`]s on one channel;
//! [`TaskTable`] is the one reducer from events to what a person watches (per-task
//! and overall bytes, files done of total, rates, an ETA). The CLI's progress
//! display and the TUI's jobs pane both read a `TaskTable`.
//!
//! Every job takes a [`Progress`]: where its events go and the token that cancels
//! it, in one shape.

use std::collections::HashMap;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A job stopped because it was cancelled (not a failure of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// Unique within one [`super::Engine`]: ids are never reused, so events from two
/// jobs running at once never collide.
pub type TaskId = u64;

/// The engine's allocator of task ids. A front end that shows a job before the
/// engine runs it (the TUI adds rows when the user confirms) takes ids from the
/// same allocator, or reads the ones the engine gave a plan
/// ([`super::MigrationPlan::tasks`]), so every id names one task however many
/// jobs run at once.
#[derive(Debug, Clone, Default)]
pub struct TaskIds(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl TaskIds {
    /// A fresh id.
    pub fn next(&self) -> TaskId {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Progress of background work, small typed deltas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A task joins its job's queue (`bytes`: what it will move).
    Queued {
        id: TaskId,
        key: String,
        bytes: u64,
    },
    Started {
        id: TaskId,
    },
    Advanced {
        id: TaskId,
        bytes: u64,
    },
    Done {
        id: TaskId,
        archive_id: String,
    },
    Failed {
        id: TaskId,
        reason: String,
    },
    /// Stopped before it finished because its job (or the task alone) was cancelled.
    Cancelled {
        id: TaskId,
    },
    /// A retrieval job is not ready yet (the store's estimate, when it gives one).
    Waiting {
        id: TaskId,
        ready_at: Option<i64>,
    },
    /// Something worth telling the user that is not a task (recovery, retention).
    Note(String),
    /// Tasks a job will queue later: a streamed plan queues its files as they
    /// come up (a bounded window ahead of the uploads), and announces how many
    /// there are and their bytes first, so totals and the ETA cover the whole
    /// job from the start. Each later `Queued` takes one file off it.
    Planned {
        files: u64,
        bytes: u64,
    },
}

impl Event {
    pub fn task(&self) -> Option<TaskId> {
        match self {
            Event::Queued { id, .. }
            | Event::Started { id }
            | Event::Advanced { id, .. }
            | Event::Done { id, .. }
            | Event::Failed { id, .. }
            | Event::Cancelled { id }
            | Event::Waiting { id, .. } => Some(*id),
            Event::Note(_) | Event::Planned { .. } => None,
        }
    }
}

/// Where a job's events go and what cancels it: the one shape every engine job
/// takes. Cloning shares both.
#[derive(Debug, Clone)]
pub struct Progress {
    events: Option<mpsc::Sender<Event>>,
    cancel: CancellationToken,
}

impl Progress {
    pub fn new(events: mpsc::Sender<Event>, cancel: CancellationToken) -> Progress {
        Progress {
            events: Some(events),
            cancel,
        }
    }

    /// No one watches; only cancellation matters.
    pub fn unwatched(cancel: CancellationToken) -> Progress {
        Progress {
            events: None,
            cancel,
        }
    }

    /// A channel of `capacity` events and the progress that feeds it.
    pub fn channel(
        capacity: usize,
        cancel: CancellationToken,
    ) -> (Progress, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Progress::new(tx, cancel), rx)
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    pub(crate) async fn send(&self, event: Event) {
        if let Some(events) = &self.events {
            // A watcher that went away (the UI quit) does not stop the work.
            let _ = events.send(event).await;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Queued,
    /// A retrieval job the store has not finished (its estimate, if it gave one).
    AtStore {
        ready_at: Option<i64>,
    },
    Running,
    Done,
    Failed(String),
    Cancelled,
}

impl TaskState {
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            TaskState::Done | TaskState::Failed(_) | TaskState::Cancelled
        )
    }

    fn slot(&self) -> usize {
        match self {
            TaskState::Queued => 0,
            TaskState::AtStore { .. } => 1,
            TaskState::Running => 2,
            TaskState::Done => 3,
            TaskState::Failed(_) => 4,
            TaskState::Cancelled => 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Task {
    pub id: TaskId,
    pub key: String,
    pub bytes: u64,
    pub done: u64,
    pub state: TaskState,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
}

impl Task {
    /// Bytes per second since it started.
    pub fn rate(&self, now_ms: u64) -> Option<f64> {
        let started = self.started_ms?;
        let end = self.finished_ms.unwrap_or(now_ms);
        let elapsed = end.saturating_sub(started);
        (elapsed >= 200 && self.done > 0).then(|| self.done as f64 * 1000.0 / elapsed as f64)
    }

    pub fn eta_secs(&self, now_ms: u64) -> Option<u64> {
        if self.state != TaskState::Running {
            return None;
        }
        let rate = self.rate(now_ms)?;
        Some((self.bytes.saturating_sub(self.done) as f64 / rate).ceil() as u64)
    }

    /// How far it is, 0 to 1.
    pub fn ratio(&self) -> f64 {
        match self.state {
            TaskState::Done => 1.0,
            _ if self.bytes == 0 => 0.0,
            _ => (self.done as f64 / self.bytes as f64).min(1.0),
        }
    }
}

/// Counts of tasks per state and bytes, kept as events arrive (never recounted,
/// so a table of 200,000 tasks reduces each event in constant time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub queued: usize,
    /// Retrievals the store has not finished.
    pub at_store: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    pub cancelled: usize,
    /// Bytes of every task not cancelled, and of those, bytes moved.
    pub bytes: u64,
    pub bytes_done: u64,
}

impl Totals {
    pub fn files(&self) -> usize {
        self.queued + self.at_store + self.running + self.done + self.failed + self.cancelled
    }

    /// Tasks not finished.
    pub fn active(&self) -> usize {
        self.queued + self.at_store + self.running
    }

    fn count(&mut self, state: &TaskState, delta: isize) {
        let slot = match state.slot() {
            0 => &mut self.queued,
            1 => &mut self.at_store,
            2 => &mut self.running,
            3 => &mut self.done,
            4 => &mut self.failed,
            _ => &mut self.cancelled,
        };
        *slot = slot.saturating_add_signed(delta);
    }
}

/// What one reduced event did, for a front end that follows tasks elsewhere (the
/// TUI's tree marks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Started(usize),
    Done(usize),
    Failed(usize, String),
    Cancelled(usize),
    Note(String),
}

/// The one reducer of engine events. Tasks keep their position (a row) for the
/// table's life; a retried task gets a new id and keeps its row.
///
/// A [`TaskTable::forgetting`] table (the CLI's) forgets a row once its task is
/// settled (done, failed, cancelled) — on the next event, so the row a
/// [`Change`] names can still be read — and reuses it: it holds only the tasks
/// queued or in flight, whatever the job's size, while its totals, rate and ETA
/// count every task.
#[derive(Debug, Default)]
pub struct TaskTable {
    tasks: Vec<Task>,
    rows: HashMap<TaskId, usize>,
    totals: Totals,
    /// Forget settled rows ([`TaskTable::forgetting`]).
    forget: bool,
    /// Rows settled by the last event, forgotten at the next one.
    settled: Vec<usize>,
    /// Forgotten rows, to reuse.
    free: Vec<usize>,
    /// Announced by [`Event::Planned`] and not queued yet (counted in the
    /// totals as queued): files and bytes.
    announced: (u64, u64),
    /// The current busy stretch: when it began, bytes and files finished since.
    busy_since_ms: Option<u64>,
    busy_bytes: u64,
    busy_files: u64,
}

impl TaskTable {
    /// A table that forgets each row once its task is settled (see the type's docs).
    pub fn forgetting() -> TaskTable {
        TaskTable {
            forget: true,
            ..TaskTable::default()
        }
    }

    /// Rows held now (a forgetting table: the tasks not settled, give or take
    /// the last event's).
    pub fn held(&self) -> usize {
        self.rows.len()
    }

    /// Forgets the rows settled before this event (a forgetting table only).
    fn forget_settled(&mut self) {
        for row in self.settled.drain(..) {
            let task = &mut self.tasks[row];
            if self.rows.get(&task.id) == Some(&row) {
                self.rows.remove(&task.id);
            }
            task.key = String::new();
            self.free.push(row);
        }
    }

    fn settled_row(&mut self, row: usize) {
        if self.forget {
            self.settled.push(row);
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    pub fn task(&self, row: usize) -> Option<&Task> {
        self.tasks.get(row)
    }

    pub fn row_of(&self, id: TaskId) -> Option<usize> {
        self.rows.get(&id).copied()
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Adds a queued task (or returns its row when the id is known already).
    pub fn add(&mut self, id: TaskId, key: String, bytes: u64) -> usize {
        if let Some(&row) = self.rows.get(&id) {
            return row;
        }
        self.forget_settled();
        let task = Task {
            id,
            key,
            bytes,
            done: 0,
            state: TaskState::Queued,
            started_ms: None,
            finished_ms: None,
        };
        let row = match self.free.pop() {
            Some(row) => {
                self.tasks[row] = task;
                row
            }
            None => {
                self.tasks.push(task);
                self.tasks.len() - 1
            }
        };
        self.rows.insert(id, row);
        if self.announced.0 > 0 {
            // Counted as queued when it was announced: its own bytes replace its
            // share of the announced ones.
            let share = bytes.min(self.announced.1);
            self.announced.0 -= 1;
            self.announced.1 -= share;
            self.totals.bytes = self.totals.bytes - share + bytes;
            if self.announced.0 == 0 {
                self.totals.bytes -= std::mem::take(&mut self.announced.1);
            }
        } else {
            self.totals.queued += 1;
            self.totals.bytes += bytes;
        }
        row
    }

    /// Puts a finished row back in the queue under a new id (a retry).
    pub fn requeue(&mut self, row: usize, id: TaskId) {
        let Some(task) = self.tasks.get(row) else {
            return;
        };
        let (old_id, old_state) = (task.id, task.state.clone());
        self.rows.remove(&old_id);
        self.rows.insert(id, row);
        self.set_state(row, TaskState::Queued);
        let task = &mut self.tasks[row];
        if old_state == TaskState::Cancelled {
            self.totals.bytes += task.bytes;
        } else {
            self.totals.bytes_done = self.totals.bytes_done.saturating_sub(task.done);
        }
        task.id = id;
        task.done = 0;
        task.started_ms = None;
        task.finished_ms = None;
    }

    fn set_state(&mut self, row: usize, state: TaskState) {
        let task = &mut self.tasks[row];
        self.totals.count(&task.state, -1);
        self.totals.count(&state, 1);
        if state == TaskState::Cancelled && task.state != TaskState::Cancelled {
            // A cancelled task no longer counts towards what is to be moved.
            self.totals.bytes = self.totals.bytes.saturating_sub(task.bytes);
            self.totals.bytes_done = self.totals.bytes_done.saturating_sub(task.done);
        }
        task.state = state;
    }

    /// Reduces one event; events of unknown tasks are ignored (returns None).
    pub fn apply(&mut self, event: Event, now_ms: u64) -> Option<Change> {
        self.forget_settled();
        let row = match &event {
            Event::Note(note) => return Some(Change::Note(note.clone())),
            Event::Planned { files, bytes } => {
                self.announced.0 += files;
                self.announced.1 += bytes;
                self.totals.queued += *files as usize;
                self.totals.bytes += bytes;
                return None;
            }
            Event::Queued { id, key, bytes } => {
                let row = self.add(*id, key.clone(), *bytes);
                // A task announced before its size was known takes the engine's.
                let task = &mut self.tasks[row];
                if task.bytes != *bytes && task.state == TaskState::Queued {
                    self.totals.bytes = self.totals.bytes - task.bytes + bytes;
                    task.bytes = *bytes;
                }
                return None;
            }
            other => self.row_of(other.task()?)?,
        };
        if self.tasks[row].state.is_finished() {
            // A late event for a task already settled (cancelled on quit, say).
            return None;
        }
        match event {
            Event::Started { .. } => {
                if self.busy_since_ms.is_none() {
                    self.busy_since_ms = Some(now_ms);
                    self.busy_bytes = 0;
                    self.busy_files = 0;
                }
                self.set_state(row, TaskState::Running);
                self.tasks[row].started_ms = Some(now_ms);
                Some(Change::Started(row))
            }
            Event::Advanced { bytes, .. } => {
                self.busy_bytes += bytes;
                self.totals.bytes_done += bytes;
                self.tasks[row].done += bytes;
                None
            }
            Event::Waiting { ready_at, .. } => {
                self.set_state(row, TaskState::AtStore { ready_at });
                None
            }
            Event::Done { .. } => {
                let task = &mut self.tasks[row];
                let rest = task.bytes.saturating_sub(task.done);
                task.done = task.bytes;
                task.finished_ms = Some(now_ms);
                self.totals.bytes_done += rest;
                self.busy_files += 1;
                self.set_state(row, TaskState::Done);
                self.settle();
                self.settled_row(row);
                Some(Change::Done(row))
            }
            Event::Failed { reason, .. } => {
                self.tasks[row].finished_ms = Some(now_ms);
                self.set_state(row, TaskState::Failed(reason.clone()));
                self.settle();
                self.settled_row(row);
                Some(Change::Failed(row, reason))
            }
            Event::Cancelled { .. } => {
                self.tasks[row].finished_ms = Some(now_ms);
                self.set_state(row, TaskState::Cancelled);
                self.settle();
                self.settled_row(row);
                Some(Change::Cancelled(row))
            }
            Event::Queued { .. } | Event::Note(_) | Event::Planned { .. } => None,
        }
    }

    /// Settles a row its job left unfinished (the job ended without a word for it):
    /// cancelled when `cancelled`, else failed.
    pub fn settle_row(&mut self, row: usize, cancelled: bool, now_ms: u64) -> Option<Change> {
        if self.tasks.get(row)?.state.is_finished() {
            return None;
        }
        self.tasks[row].finished_ms = Some(now_ms);
        let change = if cancelled {
            self.set_state(row, TaskState::Cancelled);
            Change::Cancelled(row)
        } else {
            let reason = "the task ended without a result".to_string();
            self.set_state(row, TaskState::Failed(reason.clone()));
            Change::Failed(row, reason)
        };
        self.settle();
        self.settled_row(row);
        Some(change)
    }

    fn settle(&mut self) {
        if self.totals.active() == 0 {
            self.busy_since_ms = None;
        }
    }

    /// Overall bytes per second over the current busy stretch.
    pub fn rate(&self, now_ms: u64) -> Option<f64> {
        let since = self.busy_since_ms?;
        let elapsed = now_ms.saturating_sub(since);
        (elapsed >= 200 && self.busy_bytes > 0)
            .then(|| self.busy_bytes as f64 * 1000.0 / elapsed as f64)
    }

    /// Files finished per second over the current busy stretch.
    pub fn file_rate(&self, now_ms: u64) -> Option<f64> {
        let since = self.busy_since_ms?;
        let elapsed = now_ms.saturating_sub(since);
        (elapsed >= 200 && self.busy_files > 0)
            .then(|| self.busy_files as f64 * 1000.0 / elapsed as f64)
    }

    /// Seconds until every unfinished task is done at the current pace. Many
    /// small files cost time per file, not per byte, so the estimate is the
    /// larger of what the bytes left and the files left take at their rates.
    pub fn eta_secs(&self, now_ms: u64) -> Option<u64> {
        let totals = self.totals;
        if totals.active() == 0 {
            return Some(0);
        }
        let files_left = (totals.queued + totals.running) as f64;
        if files_left == 0.0 {
            // Only retrievals at the store are left: the store's window says more.
            return None;
        }
        let bytes_left = totals.bytes.saturating_sub(totals.bytes_done) as f64;
        let by_bytes = self.rate(now_ms).map(|rate| bytes_left / rate);
        let by_files = self.file_rate(now_ms).map(|rate| files_left / rate);
        let secs = match (by_bytes, by_files) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => return None,
        };
        Some(secs.ceil() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_events_into_rows_and_totals() {
        let mut table = TaskTable::default();
        table.apply(
            Event::Queued {
                id: 7,
                key: "a".into(),
                bytes: 100,
            },
            0,
        );
        table.apply(
            Event::Queued {
                id: 9,
                key: "b".into(),
                bytes: 50,
            },
            0,
        );
        assert_eq!(
            table.apply(Event::Started { id: 7 }, 0),
            Some(Change::Started(0))
        );
        table.apply(Event::Advanced { id: 7, bytes: 50 }, 1000);
        assert_eq!(table.task(0).unwrap().rate(1000), Some(50.0));
        assert_eq!(table.task(0).unwrap().eta_secs(1000), Some(1));
        assert_eq!(
            table.apply(
                Event::Failed {
                    id: 9,
                    reason: "boom".into()
                },
                1000
            ),
            Some(Change::Failed(1, "boom".into()))
        );
        table.apply(
            Event::Done {
                id: 7,
                archive_id: "x".into(),
            },
            2000,
        );
        let t = table.totals();
        assert_eq!((t.done, t.failed, t.bytes_done, t.active()), (1, 1, 100, 0));
        // Events for ids nobody queued are ignored.
        assert_eq!(table.apply(Event::Started { id: 99 }, 0), None);
    }

    #[test]
    fn eta_counts_files_left_when_they_dominate() {
        let mut table = TaskTable::default();
        // One big file done in 1 s, then 100 tiny ones queued.
        table.add(0, "big".into(), 1_000_000);
        for id in 1..=100 {
            table.add(id, format!("small{id}"), 10);
        }
        table.apply(Event::Started { id: 0 }, 0);
        table.apply(
            Event::Advanced {
                id: 0,
                bytes: 1_000_000,
            },
            1000,
        );
        table.apply(
            Event::Done {
                id: 0,
                archive_id: "x".into(),
            },
            1000,
        );
        // Bytes alone say "done in a moment"; one file a second says 100 s.
        assert_eq!(table.eta_secs(1000), Some(100));
    }

    #[test]
    fn cancelled_and_retried_rows_keep_totals_right() {
        let mut table = TaskTable::default();
        table.add(1, "a".into(), 10);
        table.add(2, "b".into(), 20);
        table.apply(Event::Cancelled { id: 2 }, 5);
        let t = table.totals();
        assert_eq!((t.cancelled, t.bytes, t.active()), (1, 10, 1));
        table.requeue(1, 3);
        assert_eq!(table.row_of(3), Some(1));
        assert_eq!(table.row_of(2), None);
        let t = table.totals();
        assert_eq!((t.queued, t.cancelled, t.bytes), (2, 0, 30));
        assert_eq!(table.settle_row(0, true, 9), Some(Change::Cancelled(0)));
        assert_eq!(table.settle_row(0, true, 9), None);
    }

    #[test]
    fn a_forgetting_table_holds_only_unsettled_rows_and_keeps_totals() {
        let mut table = TaskTable::forgetting();
        table.apply(
            Event::Planned {
                files: 1000,
                bytes: 10_000,
            },
            0,
        );
        let t = table.totals();
        assert_eq!((t.queued, t.bytes, t.files()), (1000, 10_000, 1000));
        let mut most_held = 0;
        for id in 0..1000u64 {
            let queued = Event::Queued {
                id,
                key: format!("file{id}"),
                bytes: 10,
            };
            assert_eq!(table.apply(queued, id), None);
            table.apply(Event::Started { id }, id);
            let change = if id % 10 == 9 {
                table.apply(
                    Event::Failed {
                        id,
                        reason: "boom".into(),
                    },
                    id + 1,
                )
            } else {
                table.apply(
                    Event::Done {
                        id,
                        archive_id: String::new(),
                    },
                    id + 1,
                )
            };
            // The row a change names can still be read (the CLI prints its key).
            let row = match change {
                Some(Change::Done(row) | Change::Failed(row, _)) => row,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(
                table.task(row).map(|t| t.key.clone()),
                Some(format!("file{id}"))
            );
            most_held = most_held.max(table.held()).max(table.len());
        }
        assert!(most_held <= 2, "held {most_held} rows");
        let t = table.totals();
        assert_eq!(
            (
                t.done,
                t.failed,
                t.queued,
                t.active(),
                t.bytes,
                t.bytes_done
            ),
            (900, 100, 0, 0, 10_000, 9_000)
        );
        // A late event for a forgotten task is ignored.
        assert_eq!(table.apply(Event::Cancelled { id: 3 }, 2000), None);
        assert_eq!(table.totals(), t);
    }

    #[test]
    fn announced_files_count_towards_the_eta_until_queued() {
        let mut table = TaskTable::forgetting();
        table.apply(
            Event::Planned {
                files: 11,
                bytes: 110,
            },
            0,
        );
        table.apply(
            Event::Queued {
                id: 0,
                key: "a".into(),
                bytes: 10,
            },
            0,
        );
        table.apply(Event::Started { id: 0 }, 0);
        table.apply(Event::Advanced { id: 0, bytes: 10 }, 1000);
        table.apply(
            Event::Done {
                id: 0,
                archive_id: String::new(),
            },
            1000,
        );
        // One file a second, ten announced files left.
        assert_eq!(table.eta_secs(1000), Some(10));
        let t = table.totals();
        assert_eq!((t.done, t.queued, t.bytes, t.bytes_done), (1, 10, 110, 10));
        // A queued file's bytes were part of the announcement.
        table.apply(
            Event::Queued {
                id: 1,
                key: "b".into(),
                bytes: 50,
            },
            1000,
        );
        assert_eq!(table.totals().bytes, 110);
        table.apply(Event::Cancelled { id: 1 }, 1000);
        let t = table.totals();
        assert_eq!((t.cancelled, t.queued, t.bytes), (1, 9, 60));
    }
}
