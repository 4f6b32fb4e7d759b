//! Upload and retrieval jobs as the jobs pane shows them. Engine events are reduced into this
//! state in one place ([`Jobs::apply`]), yazi style; rates and ETAs are derived
//! from the bytes and the clock (milliseconds since the UI started).

use tokio_util::sync::CancellationToken;

use super::tree::NodeId;
use crate::engine::Event;
use crate::store::Tier;

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for its batch to start (the engine has not queued it yet).
    Waiting,
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

impl JobState {
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed(_) | JobState::Cancelled
        )
    }

    pub fn label(&self) -> &'static str {
        match self {
            JobState::Waiting | JobState::Queued => "queued",
            JobState::AtStore { .. } => "at the store",
            JobState::Running => "uploading",
            JobState::Done => "done",
            JobState::Failed(_) => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub kind: JobKind,
    pub node: NodeId,
    pub key: String,
    pub bytes: u64,
    pub done: u64,
    pub state: JobState,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub cancel: CancellationToken,
    pub cancel_requested: bool,
    pub archive_id: Option<String>,
}

impl Job {
    /// Upload jobs move the tree's marks; retrievals write elsewhere and leave
    /// them alone.
    pub fn tracks_tree(&self) -> bool {
        self.kind == JobKind::Upload
    }

    pub fn is_retrieval(&self) -> bool {
        matches!(self.kind, JobKind::Retrieve { .. })
    }

    /// Bytes per second since it started.
    pub fn rate(&self, now_ms: u64) -> Option<f64> {
        let started = self.started_ms?;
        let end = self.finished_ms.unwrap_or(now_ms);
        let elapsed = end.saturating_sub(started);
        (elapsed >= 200 && self.done > 0).then(|| self.done as f64 * 1000.0 / elapsed as f64)
    }

    pub fn eta_secs(&self, now_ms: u64) -> Option<u64> {
        if self.state != JobState::Running {
            return None;
        }
        let rate = self.rate(now_ms)?;
        Some(((self.bytes.saturating_sub(self.done)) as f64 / rate).ceil() as u64)
    }

    pub fn ratio(&self) -> f64 {
        if self.state == JobState::Done || self.bytes == 0 {
            return if self.state == JobState::Done {
                1.0
            } else {
                0.0
            };
        }
        (self.done as f64 / self.bytes as f64).min(1.0)
    }
}

/// What a reduced event did to one job, for the tree to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Started(NodeId),
    Done(NodeId),
    Failed(NodeId, String),
    Cancelled(NodeId),
    Note(String),
}

#[derive(Debug, Default)]
pub struct Jobs {
    pub jobs: Vec<Job>,
    /// Per batch (one `Engine::backup` call): the job of each engine task id.
    batches: Vec<Vec<usize>>,
    /// Batches whose run has not ended.
    pub running_batches: usize,
    /// When the current busy stretch began, and bytes sent since (overall rate).
    busy_since_ms: Option<u64>,
    busy_bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub waiting: usize,
    /// Retrievals the store has not finished.
    pub at_store: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub bytes: u64,
    pub bytes_done: u64,
}

impl Jobs {
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Opens a batch of new upload jobs; returns the batch number.
    pub fn add_batch(&mut self, items: Vec<(NodeId, String, u64, CancellationToken)>) -> u32 {
        self.add_batch_of(JobKind::Upload, items)
    }

    /// Opens a batch of new jobs of one kind; returns the batch number.
    pub fn add_batch_of(
        &mut self,
        kind: JobKind,
        items: Vec<(NodeId, String, u64, CancellationToken)>,
    ) -> u32 {
        let mut ids = Vec::with_capacity(items.len());
        for (node, key, bytes, cancel) in items {
            ids.push(self.jobs.len());
            self.jobs.push(Job {
                kind: kind.clone(),
                node,
                key,
                bytes,
                done: 0,
                state: JobState::Waiting,
                started_ms: None,
                finished_ms: None,
                cancel,
                cancel_requested: false,
                archive_id: None,
            });
        }
        self.batches.push(ids);
        self.running_batches += 1;
        (self.batches.len() - 1) as u32
    }

    /// Puts finished jobs back in a new batch (a retry).
    pub fn retry_batch(&mut self, jobs: &[usize]) -> u32 {
        for &index in jobs {
            let job = &mut self.jobs[index];
            job.done = 0;
            job.state = JobState::Waiting;
            job.started_ms = None;
            job.finished_ms = None;
            job.cancel = CancellationToken::new();
            job.cancel_requested = false;
        }
        self.batches.push(jobs.to_vec());
        self.running_batches += 1;
        (self.batches.len() - 1) as u32
    }

    pub fn batch_jobs(&self, batch: u32) -> &[usize] {
        self.batches
            .get(batch as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn job_mut(&mut self, batch: u32, id: u64) -> Option<(usize, &mut Job)> {
        let index = *self.batches.get(batch as usize)?.get(id as usize)?;
        Some((index, &mut self.jobs[index]))
    }

    /// Reduces one engine event.
    pub fn apply(&mut self, batch: u32, event: Event, now_ms: u64) -> Option<Change> {
        match event {
            Event::Note(note) => Some(Change::Note(note)),
            Event::Queued { id, bytes, .. } => {
                let (_, job) = self.job_mut(batch, id)?;
                job.bytes = bytes;
                if job.state == JobState::Waiting {
                    job.state = JobState::Queued;
                }
                None
            }
            Event::Started { id } => {
                if self.busy_since_ms.is_none() {
                    self.busy_since_ms = Some(now_ms);
                    self.busy_bytes = 0;
                }
                let (_, job) = self.job_mut(batch, id)?;
                job.state = JobState::Running;
                job.started_ms = Some(now_ms);
                job.tracks_tree().then_some(Change::Started(job.node))
            }
            Event::Advanced { id, bytes } => {
                self.busy_bytes += bytes;
                let (_, job) = self.job_mut(batch, id)?;
                job.done += bytes;
                None
            }
            Event::Done { id, archive_id } => {
                let (_, job) = self.job_mut(batch, id)?;
                job.state = JobState::Done;
                job.done = job.bytes;
                job.finished_ms = Some(now_ms);
                job.archive_id = Some(archive_id);
                let (node, tracks) = (job.node, job.tracks_tree());
                self.settle();
                tracks.then_some(Change::Done(node))
            }
            Event::Waiting { id, ready_at } => {
                let (_, job) = self.job_mut(batch, id)?;
                job.state = JobState::AtStore { ready_at };
                None
            }
            Event::Failed { id, reason } => {
                let (_, job) = self.job_mut(batch, id)?;
                job.finished_ms = Some(now_ms);
                let (node, tracks) = (job.node, job.tracks_tree());
                let change = if reason == "cancelled" || job.cancel.is_cancelled() {
                    job.state = JobState::Cancelled;
                    Change::Cancelled(node)
                } else {
                    job.state = JobState::Failed(reason.clone());
                    Change::Failed(node, reason)
                };
                self.settle();
                // A retrieval's failure is reported when its batch ends.
                tracks.then_some(change)
            }
        }
    }

    /// A batch's run ended: anything it left unfinished failed without a word.
    pub fn finish_batch(&mut self, batch: u32, now_ms: u64) -> Vec<Change> {
        self.running_batches = self.running_batches.saturating_sub(1);
        let mut changes = Vec::new();
        for index in self.batch_jobs(batch).to_vec() {
            let job = &mut self.jobs[index];
            if !job.state.is_finished() {
                job.finished_ms = Some(now_ms);
                let change = if job.cancel.is_cancelled() {
                    job.state = JobState::Cancelled;
                    Change::Cancelled(job.node)
                } else {
                    let reason = "the task ended without a result".to_string();
                    job.state = JobState::Failed(reason.clone());
                    Change::Failed(job.node, reason)
                };
                if job.tracks_tree() {
                    changes.push(change);
                }
            }
        }
        self.settle();
        changes
    }

    fn settle(&mut self) {
        if self.jobs.iter().all(|j| j.state.is_finished()) {
            self.busy_since_ms = None;
        }
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for job in &self.jobs {
            match job.state {
                JobState::Waiting | JobState::Queued => t.waiting += 1,
                JobState::AtStore { .. } => t.at_store += 1,
                JobState::Running => t.running += 1,
                JobState::Done => t.done += 1,
                JobState::Failed(_) => t.failed += 1,
                JobState::Cancelled => t.cancelled += 1,
            }
            if job.state != JobState::Cancelled {
                t.bytes += job.bytes;
                t.bytes_done += if job.state == JobState::Done {
                    job.bytes
                } else {
                    job.done
                };
            }
        }
        t
    }

    pub fn active(&self) -> usize {
        self.jobs.iter().filter(|j| !j.state.is_finished()).count()
    }

    /// Overall bytes per second over the current busy stretch.
    pub fn rate(&self, now_ms: u64) -> Option<f64> {
        let since = self.busy_since_ms?;
        let elapsed = now_ms.saturating_sub(since);
        (elapsed >= 200 && self.busy_bytes > 0)
            .then(|| self.busy_bytes as f64 * 1000.0 / elapsed as f64)
    }

    /// The job of a tree node, latest first.
    pub fn of_node(&self, node: NodeId) -> Option<usize> {
        self.jobs.iter().rposition(|j| j.node == node)
    }

    /// Cancels every unfinished job (quitting).
    pub fn cancel_all(&mut self) {
        for job in &mut self.jobs {
            if !job.state.is_finished() {
                job.cancel_requested = true;
                job.cancel.cancel();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_events() {
        let mut jobs = Jobs::default();
        let batch = jobs.add_batch(vec![
            (1, "a".into(), 100, CancellationToken::new()),
            (2, "b".into(), 50, CancellationToken::new()),
        ]);
        jobs.apply(
            batch,
            Event::Queued {
                id: 0,
                key: "a".into(),
                bytes: 100,
            },
            0,
        );
        assert_eq!(
            jobs.apply(batch, Event::Started { id: 0 }, 0),
            Some(Change::Started(1))
        );
        jobs.apply(batch, Event::Advanced { id: 0, bytes: 50 }, 1000);
        assert_eq!(jobs.jobs[0].rate(1000), Some(50.0));
        assert_eq!(jobs.jobs[0].eta_secs(1000), Some(1));
        assert_eq!(
            jobs.apply(
                batch,
                Event::Failed {
                    id: 1,
                    reason: "boom".into()
                },
                1000
            ),
            Some(Change::Failed(2, "boom".into()))
        );
        jobs.apply(
            batch,
            Event::Done {
                id: 0,
                archive_id: "x".into(),
            },
            2000,
        );
        let t = jobs.totals();
        assert_eq!((t.done, t.failed, t.bytes_done), (1, 1, 100));
        assert!(jobs.finish_batch(batch, 2000).is_empty());
        assert_eq!(jobs.running_batches, 0);
    }
}
