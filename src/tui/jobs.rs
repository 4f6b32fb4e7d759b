//! Jobs as the jobs pane shows them: the engine's [`TaskTable`] (the one reducer of
//! engine events, shared with the CLI's progress display) plus what only the UI
//! needs per row: the kind of job, the tree node it moves, its cancel token.

use std::ops::Deref;

use tokio_util::sync::CancellationToken;

use super::tree::NodeId;
pub use crate::engine::{Change, TaskState as JobState, Totals};
use crate::engine::{Event, Task, TaskId, TaskTable};
use crate::model::Tier;

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    Upload,
    /// Retrieve an archive from the store into `destination`.
    Retrieve {
        tier: Tier,
        destination: String,
        /// Unix seconds the batch started (its job is requested then, or was
        /// requested by an earlier run; the engine knows which).
        started_at: i64,
    },
    /// Delete an archive from the store (then from the catalog).
    Delete,
    /// Copy an archive from the store the set used before into the one it uses
    /// now: from the unchanged local file, else through a retrieval job of
    /// `tier` (requested when the batch started, or by an earlier run).
    Migrate {
        tier: Tier,
        /// The previous store's usual wait for `tier`: seconds (from, to).
        wait: (u64, u64),
        started_at: i64,
    },
}

/// What the UI keeps per row besides the engine's task.
#[derive(Debug, Clone)]
struct Row {
    kind: JobKind,
    node: NodeId,
    cancel: CancellationToken,
    cancel_requested: bool,
}

/// One row of the jobs pane: the engine's task (through `Deref`) and the UI's part.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    task: &'a Task,
    pub kind: &'a JobKind,
    pub node: NodeId,
    pub cancel: &'a CancellationToken,
    pub cancel_requested: bool,
}

impl Deref for Job<'_> {
    type Target = Task;

    fn deref(&self) -> &Task {
        self.task
    }
}

impl Job<'_> {
    pub fn is_retrieval(&self) -> bool {
        matches!(self.kind, JobKind::Retrieve { .. })
    }

    pub fn is_migration(&self) -> bool {
        matches!(self.kind, JobKind::Migrate { .. })
    }
}

/// A new row: the task id the engine will report it under, and the UI's part.
pub struct NewJob {
    pub id: TaskId,
    pub node: NodeId,
    pub key: String,
    pub bytes: u64,
    pub cancel: CancellationToken,
}

/// What a reduced event did, with the tree node it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeChange {
    Started(NodeId),
    Done(NodeId),
    Failed(NodeId, String),
    Cancelled(NodeId),
    Note(String),
}

#[derive(Debug, Default)]
pub struct Jobs {
    table: TaskTable,
    rows: Vec<Row>,
    /// The rows of each batch (one engine job: an upload, a retrieval, a
    /// deletion, a migration).
    batches: Vec<Vec<usize>>,
    /// Batches whose run has not ended.
    pub running_batches: usize,
    /// The selected row of the pane, and its first row shown while it has focus.
    pub selected: usize,
    offset: usize,
}

impl Jobs {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn get(&self, row: usize) -> Option<Job<'_>> {
        let task = self.table.task(row)?;
        let info = self.rows.get(row)?;
        Some(Job {
            task,
            kind: &info.kind,
            node: info.node,
            cancel: &info.cancel,
            cancel_requested: info.cancel_requested,
        })
    }

    /// The row `row` (which must exist).
    pub fn job(&self, row: usize) -> Job<'_> {
        self.get(row).unwrap_or_else(|| panic!("no job row {row}"))
    }

    pub fn iter(&self) -> impl Iterator<Item = Job<'_>> {
        (0..self.rows.len()).filter_map(|row| self.get(row))
    }

    /// Rows `range` of the pane.
    pub fn slice(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = Job<'_>> {
        range.filter_map(|row| self.get(row))
    }

    /// The row the cancel, retry and open keys act on in the pane.
    pub fn selected_row(&self) -> Option<usize> {
        (!self.is_empty()).then_some(self.selected)
    }

    pub fn move_by(&mut self, delta: isize) {
        let last = self.len().saturating_sub(1) as isize;
        self.selected = (self.selected as isize + delta).clamp(0, last.max(0)) as usize;
    }

    /// Keeps the selection on a row, inside a window of `height` rows.
    pub fn scroll(&mut self, height: usize) {
        self.selected = self.selected.min(self.len().saturating_sub(1));
        let height = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
    }

    /// The first row shown in a pane of `height` rows: where the selection
    /// scrolled to while the pane has focus, else following the work (the first
    /// unfinished row, one finished row above it).
    pub fn window(&self, height: usize, focused: bool) -> usize {
        let n = self.len();
        if height == 0 || n <= height {
            return 0;
        }
        if focused {
            return self.offset.min(n - height);
        }
        let first_active = self
            .iter()
            .position(|j| !j.state.is_finished())
            .unwrap_or(n);
        first_active.saturating_sub(1).min(n - height)
    }

    /// Opens a batch of new jobs of one kind; returns the batch number.
    pub fn add_batch(&mut self, kind: JobKind, jobs: Vec<NewJob>) -> u32 {
        let mut rows = Vec::with_capacity(jobs.len());
        for job in jobs {
            let row = self.table.add(job.id, job.key, job.bytes);
            rows.push(row);
            self.rows.push(Row {
                kind: kind.clone(),
                node: job.node,
                cancel: job.cancel,
                cancel_requested: false,
            });
        }
        self.batches.push(rows);
        self.running_batches += 1;
        (self.batches.len() - 1) as u32
    }

    /// Puts finished rows back in a new batch under fresh ids (a retry).
    pub fn retry_batch(&mut self, rows: &[(usize, TaskId)]) -> u32 {
        for &(row, id) in rows {
            self.table.requeue(row, id);
            if let Some(info) = self.rows.get_mut(row) {
                info.cancel = CancellationToken::new();
                info.cancel_requested = false;
            }
        }
        self.batches
            .push(rows.iter().map(|&(row, _)| row).collect());
        self.running_batches += 1;
        (self.batches.len() - 1) as u32
    }

    pub fn batch_rows(&self, batch: u32) -> &[usize] {
        self.batches
            .get(batch as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Reduces one engine event; returns what it did to a tree-tracking row.
    /// Rows are added with their batch ([`Jobs::add_batch`]): a task the pane
    /// does not know is ignored, so the table and the rows never part.
    pub fn apply(&mut self, event: Event, now_ms: u64) -> Option<NodeChange> {
        if let Event::Queued { id, .. } = &event
            && self.table.row_of(*id).is_none()
        {
            return None;
        }
        let change = self.table.apply(event, now_ms)?;
        self.node_change(change)
    }

    fn node_change(&self, change: Change) -> Option<NodeChange> {
        let row = match &change {
            Change::Note(note) => return Some(NodeChange::Note(note.clone())),
            Change::Started(row)
            | Change::Done(row)
            | Change::Failed(row, _)
            | Change::Cancelled(row) => *row,
        };
        let info = self.rows.get(row)?;
        // Only uploads move the tree's marks; a retrieval's failure is reported
        // when its batch ends.
        if info.kind != JobKind::Upload {
            return None;
        }
        let node = info.node;
        Some(match change {
            Change::Started(_) => NodeChange::Started(node),
            Change::Done(_) => NodeChange::Done(node),
            Change::Failed(_, reason) => NodeChange::Failed(node, reason),
            Change::Cancelled(_) => NodeChange::Cancelled(node),
            Change::Note(note) => NodeChange::Note(note),
        })
    }

    /// A batch's run ended: anything it left unfinished was cancelled (when its
    /// token was) or failed without a word.
    pub fn finish_batch(&mut self, batch: u32, now_ms: u64) -> Vec<NodeChange> {
        self.running_batches = self.running_batches.saturating_sub(1);
        let mut changes = Vec::new();
        for row in self.batch_rows(batch).to_vec() {
            let cancelled = self.rows[row].cancel.is_cancelled();
            if let Some(change) = self.table.settle_row(row, cancelled, now_ms)
                && let Some(change) = self.node_change(change)
            {
                changes.push(change);
            }
        }
        changes
    }

    pub fn totals(&self) -> Totals {
        self.table.totals()
    }

    /// Jobs not finished.
    pub fn active(&self) -> usize {
        self.table.totals().active()
    }

    /// Uploads, retrievals and deletions moving bytes right now (what quitting
    /// waits for; queued work is dropped at once).
    pub fn in_flight(&self) -> usize {
        self.table.totals().running
    }

    /// Overall bytes per second over the current busy stretch.
    pub fn rate(&self, now_ms: u64) -> Option<f64> {
        self.table.rate(now_ms)
    }

    /// Seconds until every unfinished job is done at the current pace.
    pub fn eta_secs(&self, now_ms: u64) -> Option<u64> {
        self.table.eta_secs(now_ms)
    }

    /// The job of a tree node, latest first.
    pub fn of_node(&self, node: NodeId) -> Option<usize> {
        self.rows.iter().rposition(|r| r.node == node)
    }

    /// Points every row at its file's node in a new tree (`find` by key; a file
    /// no longer there gets `missing`).
    pub fn relink(&mut self, find: impl Fn(&str) -> Option<NodeId>, missing: NodeId) {
        for (row, info) in self.rows.iter_mut().enumerate() {
            if let Some(task) = self.table.task(row) {
                info.node = find(&task.key).unwrap_or(missing);
            }
        }
    }

    /// Cancels one unfinished job (its batch's token when the batch shares one).
    /// Returns its key.
    pub fn cancel(&mut self, row: usize) -> Option<String> {
        let task = self.table.task(row)?;
        if task.state.is_finished() {
            return None;
        }
        let info = self.rows.get_mut(row)?;
        info.cancel_requested = true;
        info.cancel.cancel();
        Some(task.key.clone())
    }

    /// Quitting: every unfinished job is cancelled, and the ones that have not
    /// started are settled at once (only those in flight are awaited).
    pub fn cancel_all(&mut self, now_ms: u64) -> Vec<NodeChange> {
        let mut changes = Vec::new();
        for row in 0..self.rows.len() {
            let Some(state) = self.table.task(row).map(|t| t.state.clone()) else {
                continue;
            };
            if state.is_finished() {
                continue;
            }
            let info = &mut self.rows[row];
            info.cancel_requested = true;
            info.cancel.cancel();
            if state == JobState::Queued
                && let Some(change) = self.table.settle_row(row, true, now_ms)
                && let Some(change) = self.node_change(change)
            {
                changes.push(change);
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_job(id: TaskId, node: NodeId, key: &str, bytes: u64) -> NewJob {
        NewJob {
            id,
            node,
            key: key.into(),
            bytes,
            cancel: CancellationToken::new(),
        }
    }

    #[test]
    fn reduces_events_to_rows_and_tree_changes() {
        let mut jobs = Jobs::default();
        let batch = jobs.add_batch(
            JobKind::Upload,
            vec![new_job(10, 1, "a", 100), new_job(11, 2, "b", 50)],
        );
        assert_eq!(
            jobs.apply(Event::Started { id: 10 }, 0),
            Some(NodeChange::Started(1))
        );
        jobs.apply(Event::Advanced { id: 10, bytes: 50 }, 1000);
        assert_eq!(jobs.job(0).rate(1000), Some(50.0));
        assert_eq!(
            jobs.apply(
                Event::Failed {
                    id: 11,
                    reason: "boom".into()
                },
                1000
            ),
            Some(NodeChange::Failed(2, "boom".into()))
        );
        jobs.apply(
            Event::Done {
                id: 10,
                archive_id: "x".into(),
            },
            2000,
        );
        let t = jobs.totals();
        assert_eq!((t.done, t.failed, t.bytes_done), (1, 1, 100));
        assert!(jobs.finish_batch(batch, 2000).is_empty());
        assert_eq!(jobs.running_batches, 0);
    }

    #[test]
    fn a_task_no_batch_announced_adds_no_row() {
        let mut jobs = Jobs::default();
        let stray = Event::Queued {
            id: 99,
            key: "stray".into(),
            bytes: 5,
        };
        assert_eq!(jobs.apply(stray, 0), None);
        assert!(jobs.is_empty());
        // A batch added afterwards still lines its rows up with its tasks.
        jobs.add_batch(JobKind::Upload, vec![new_job(1, 7, "a", 10)]);
        assert_eq!(jobs.job(0).key, "a");
        assert_eq!(jobs.job(0).node, 7);
        assert_eq!(jobs.totals().files(), 1);
    }

    #[test]
    fn quitting_settles_queued_rows_at_once() {
        let mut jobs = Jobs::default();
        let many: Vec<NewJob> = (0..10_000)
            .map(|n| new_job(n, n as NodeId + 1, &format!("f{n}"), 1))
            .collect();
        jobs.add_batch(JobKind::Upload, many);
        jobs.apply(Event::Started { id: 0 }, 0);
        let changes = jobs.cancel_all(5);
        assert_eq!(changes.len(), 9_999, "every queued row settled");
        assert_eq!(jobs.in_flight(), 1, "only the running upload is awaited");
        assert_eq!(jobs.active(), 1);
    }
}
