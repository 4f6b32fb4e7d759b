//! Uploads: many files in flight, each read once and hashed as it is sent, then
//! handed to the group commit ([`super::commit`]).
//!
//! Per file (invariants 1, 2 and 4 in the crate docs):
//! 1. its intent is journaled in local state — ahead, many in one write, where the
//!    store can list archives for recovery; one by one where it cannot (Glacier);
//! 2. it is read once, hashing exactly the bytes sent to the store;
//! 3. it is refused if size, mtime or ctime moved while it was read;
//! 4. the store confirms it and its tree hash is compared with ours.
//!
//! Then the commit makes the batch durable, journals the archive ids, records the
//! batch in the catalog and closes the journal. The catalog's current versions
//! (the baseline each record is conditional on) are read ahead too, a chunk at a
//! time, so a small file costs one store request and no catalog round trip.
//!
//! How many at once: small files (up to [`SMALL_FILE`]) up to the request budget
//! (`requests_in_flight`, lowered on throttling and raised again slowly: AIMD);
//! larger ones up to `concurrency`, whose part buffers the store's memory budget
//! bounds.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::backup::{BackupSummary, FailedFile, UploadItem};
use super::commit::{Commit, Sent};
use super::planned::{PLANNED_AHEAD, PlanStream, Step};
use super::{Engine, Event, Progress};
use crate::catalog::{ArchiveRecord, Catalog as _};
use crate::description::Description;
use crate::hash::{self, ContentHasher, ReadCounters};
use crate::model::Fingerprint;
use crate::model::now_secs;

/// Files up to this size go many at once (one request each on a remote store).
pub const SMALL_FILE: u64 = 1 << 20;

/// How many small files are opened and read in one blocking call.
const BUNDLE_FILES: usize = 8;

/// How many files are prepared together: baselines read, intents journaled.
const PREPARE_CHUNK: usize = 256;

/// A file ready to start: the catalog's current version when it was prepared.
struct Ready {
    item: UploadItem,
    replaces: Option<ArchiveRecord>,
    /// Its intent is in the journal already (written with its chunk).
    journaled: bool,
}

/// A chunk being prepared: its files ready to start, or the error that stopped it.
type PreparedChunk = JoinHandle<Result<Vec<Ready>, (Vec<UploadItem>, anyhow::Error)>>;

/// Why one upload did not reach the commit.
#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("cancelled")]
    Cancelled,
    /// Not the bytes [`UploadItem::expect`] named; nothing was stored.
    #[error("not the archived content")]
    NotAsArchived,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The number of small uploads allowed in flight: halved when the store
/// throttles, one more after each window of completions without throttling.
struct InFlightLimit {
    current: usize,
    max: usize,
    throttles_seen: u64,
    since_change: usize,
}

impl InFlightLimit {
    fn new(max: usize) -> InFlightLimit {
        InFlightLimit {
            current: max,
            max,
            throttles_seen: crate::aws::throttle_signals(),
            since_change: 0,
        }
    }

    fn on_completion(&mut self) {
        let throttles = crate::aws::throttle_signals();
        if throttles > self.throttles_seen {
            self.throttles_seen = throttles;
            self.current = (self.current / 2).max(1);
            self.since_change = 0;
            return;
        }
        self.since_change += 1;
        if self.since_change >= self.current && self.current < self.max {
            self.current += 1;
            self.since_change = 0;
        }
    }
}

impl Engine {
    /// Uploads a plan as it comes (a bounded stream: [`super::planned`]):
    /// updates the mtimes it names, queues each upload as it comes up (its
    /// `Queued` event), sends small files to packs and the others one by one,
    /// prepares chunks ahead, keeps the right number of uploads in flight, and
    /// feeds what the store confirmed to the group commit. Only a bounded
    /// window of the plan is held at any time. Files not started when the job
    /// is cancelled are reported cancelled at once; only uploads in flight are
    /// awaited.
    pub(super) async fn upload_all(
        self: &Arc<Self>,
        plan: PlanStream,
        progress: &Progress,
    ) -> BackupSummary {
        let reads_before = ReadCounters::now();
        let mut summary = BackupSummary::default();
        // Keys with a resumable upload, read once (None: look each file up).
        let resumable = self.state.multipart_keys().ok().map(Arc::new);

        let (commits, received) = mpsc::channel(super::commit::BATCH_FILES * 2);
        let committer = {
            let engine = Arc::clone(self);
            let progress = progress.clone();
            tokio::spawn(async move { engine.commit_all(received, &progress).await })
        };

        // Small files go into packs, side by side with the larger ones.
        let (to_packs, packed) = mpsc::channel(PLANNED_AHEAD);
        let (to_alone, alone) = mpsc::channel(PLANNED_AHEAD);
        let router = {
            let engine = Arc::clone(self);
            let progress = progress.clone();
            tokio::spawn(async move { engine.route(plan, to_packs, to_alone, &progress).await })
        };
        let packer = {
            let engine = Arc::clone(self);
            let progress = progress.clone();
            let commits = commits.clone();
            tokio::spawn(async move { engine.upload_packs(packed, commits, &progress).await })
        };

        let mut chunks = Chunks::new(alone);
        let mut next_chunk = chunks.next().await.map(|c| self.prepare(c));
        let mut queue: VecDeque<Ready> = VecDeque::new();
        let mut limit = InFlightLimit::new(self.requests_in_flight.max(1));
        let mut large_in_flight = 0usize;
        let mut files_in_flight = 0usize;
        let mut tasks = JoinSet::new();
        let mut bundles = std::collections::HashMap::new();
        loop {
            if progress.is_cancelled() && (!queue.is_empty() || next_chunk.is_some()) {
                self.cancel_waiting(
                    &mut summary,
                    &commits,
                    progress,
                    &mut queue,
                    &mut next_chunk,
                    &mut chunks,
                )
                .await;
            }
            while files_in_flight < limit.current.max(1) {
                if queue.is_empty() {
                    let Some(handle) = next_chunk.take() else {
                        break;
                    };
                    // Prepare the chunk after this one while this one uploads.
                    next_chunk = chunks.next().await.map(|c| self.prepare(c));
                    match handle.await {
                        Ok(Ok(ready)) => queue.extend(ready),
                        Ok(Err((items, e))) => {
                            for item in items {
                                self.fail(&mut summary, &commits, progress, item, &e).await;
                            }
                        }
                        Err(join_error) => summary.failed.push(FailedFile {
                            path: "?".into(),
                            reason: format!("upload preparation failed: {join_error}"),
                        }),
                    }
                    continue;
                }
                let Some(front) = queue.front() else { break };
                let cancelled = progress.is_cancelled()
                    || front.item.cancel.as_ref().is_some_and(|c| c.is_cancelled());
                let large = front.item.size > SMALL_FILE;
                if !cancelled && large && large_in_flight >= self.concurrency {
                    break;
                }
                let Some(ready) = queue.pop_front() else {
                    break;
                };
                if cancelled {
                    summary.cancelled += 1;
                    progress.send(Event::Cancelled { id: ready.item.id }).await;
                    if ready.journaled {
                        let _ = commits.send(Commit::End(ready.item.key)).await;
                    }
                    continue;
                }
                large_in_flight += usize::from(large);
                // Small files go in bundles, read together.
                let mut bundle = vec![ready];
                while !large
                    && bundle.len() < BUNDLE_FILES
                    && files_in_flight + bundle.len() < limit.current
                    && queue.front().is_some_and(|next| {
                        next.item.size <= SMALL_FILE
                            && !next.item.cancel.as_ref().is_some_and(|c| c.is_cancelled())
                    })
                {
                    bundle.extend(queue.pop_front());
                }
                files_in_flight += bundle.len();
                let engine = Arc::clone(self);
                let progress = progress.clone();
                let resumable = resumable.clone();
                let size = bundle.len();
                let task = tasks.spawn(async move {
                    engine
                        .send_bundle(bundle, resumable.as_deref(), &progress)
                        .await
                });
                bundles.insert(task.id(), (size, large));
            }
            let Some(joined) = tasks.join_next_with_id().await else {
                if queue.is_empty() && next_chunk.is_none() {
                    break;
                }
                continue;
            };
            // What the bundle held is free again, whatever became of it.
            let task_id = match &joined {
                Ok((id, _)) => *id,
                Err(join_error) => join_error.id(),
            };
            if let Some((size, large)) = bundles.remove(&task_id) {
                files_in_flight -= size;
                large_in_flight -= usize::from(large);
            }
            match joined {
                Ok((_, outcomes)) => {
                    for (item, outcome) in outcomes {
                        limit.on_completion();
                        match outcome {
                            Ok(sent) => {
                                // Done is reported once the batch is recorded.
                                let _ = commits.send(Commit::Sent(Box::new(sent))).await;
                            }
                            Err(UploadError::Cancelled) => {
                                summary.cancelled += 1;
                                progress.send(Event::Cancelled { id: item.id }).await;
                                let _ = commits.send(Commit::End(item.key)).await;
                            }
                            Err(UploadError::NotAsArchived) => {
                                let _ = commits.send(Commit::End(item.key.clone())).await;
                                summary.not_as_archived.push(item);
                            }
                            Err(UploadError::Other(e)) => {
                                self.fail(&mut summary, &commits, progress, item, &e).await;
                            }
                        }
                    }
                }
                Err(join_error) => summary.failed.push(FailedFile {
                    path: "?".into(),
                    reason: format!("upload task failed: {join_error}"),
                }),
            }
        }
        match packer.await {
            Ok(tally) => {
                summary.cancelled += tally.cancelled;
                summary.failed.extend(tally.failed);
                summary.not_as_archived.extend(tally.not_as_archived);
            }
            Err(join_error) => summary.failed.push(FailedFile {
                path: "?".into(),
                reason: format!("pack task failed: {join_error}"),
            }),
        }
        match router.await {
            Ok(routed) => {
                summary.mtimes_updated += routed.mtimes_updated;
                summary.cancelled += routed.cancelled;
                summary.failed.extend(routed.failed);
            }
            Err(join_error) => summary.failed.push(FailedFile {
                path: "(plan)".into(),
                reason: format!("plan task failed: {join_error}"),
            }),
        }
        drop(commits);
        match committer.await {
            Ok(committed) => {
                summary.uploaded_files += committed.uploaded_files;
                summary.uploaded_bytes += committed.uploaded_bytes;
                summary.superseded_deleted += committed.superseded_deleted;
                summary.failed.extend(committed.failed);
            }
            Err(join_error) => summary.failed.push(FailedFile {
                path: "?".into(),
                reason: format!("commit task failed: {join_error}"),
            }),
        }
        summary.failed.sort_by(|a, b| a.path.cmp(&b.path));
        let reads = ReadCounters::now().since(reads_before);
        summary.files_read = reads.files_read;
        summary.bytes_read = reads.bytes_read;
        summary
    }

    /// Cancelling: every file not started is reported cancelled at once (the
    /// intents journaled ahead are closed); nothing more is prepared.
    async fn cancel_waiting(
        &self,
        summary: &mut BackupSummary,
        commits: &mpsc::Sender<Commit>,
        progress: &Progress,
        queue: &mut VecDeque<Ready>,
        next_chunk: &mut Option<PreparedChunk>,
        chunks: &mut Chunks,
    ) {
        if let Some(handle) = next_chunk.take() {
            match handle.await {
                Ok(Ok(ready)) => queue.extend(ready),
                Ok(Err((items, _))) => queue.extend(items.into_iter().map(|item| Ready {
                    item,
                    replaces: None,
                    journaled: false,
                })),
                Err(_) => {}
            }
        }
        for ready in queue.drain(..) {
            summary.cancelled += 1;
            progress.send(Event::Cancelled { id: ready.item.id }).await;
            if ready.journaled {
                let _ = commits.send(Commit::End(ready.item.key)).await;
            }
        }
        // What was routed here before the router saw the cancellation (it
        // settles the rest of the plan itself).
        while let Some(chunk) = chunks.next().await {
            for item in chunk {
                summary.cancelled += 1;
                progress.send(Event::Cancelled { id: item.id }).await;
            }
        }
    }

    async fn fail(
        &self,
        summary: &mut BackupSummary,
        commits: &mpsc::Sender<Commit>,
        progress: &Progress,
        item: UploadItem,
        error: &anyhow::Error,
    ) {
        let reason = format!("{error:#}");
        progress
            .send(Event::Failed {
                id: item.id,
                reason: reason.clone(),
            })
            .await;
        let _ = commits.send(Commit::End(item.key.clone())).await;
        summary.failed.push(FailedFile {
            path: item.key,
            reason,
        });
    }

    /// Reads the catalog's current versions of a chunk and, where the store can
    /// list archives for recovery, journals their intents: one query and one
    /// transaction for the chunk, off the dispatcher.
    fn prepare(self: &Arc<Self>, items: Vec<UploadItem>) -> PreparedChunk {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
            let mut current = match engine.catalog.current_many(&keys).await {
                Ok(current) => current,
                Err(e) => return Err((items, e)),
            };
            let ahead = engine.store.can_list();
            if ahead {
                let intents: Vec<_> = items
                    .iter()
                    .filter_map(|i| Some((i.key.as_str(), i.raw.as_deref(), i.fingerprint?)))
                    .collect();
                let state = Arc::clone(&engine.state);
                let now = now_secs();
                if let Err(e) =
                    tokio::task::block_in_place(|| state.journal_begin_many(&intents, now))
                {
                    return Err((items, e));
                }
            }
            Ok(items
                .into_iter()
                .map(|item| Ready {
                    replaces: current.remove(&item.key),
                    journaled: ahead && item.fingerprint.is_some(),
                    item,
                })
                .collect())
        })
    }

    /// A bundle of files to the store: small ones opened and read together in one
    /// blocking call (a thread hop per bundle, not per file), then sent at once.
    async fn send_bundle(
        &self,
        bundle: Vec<Ready>,
        resumable: Option<&HashSet<String>>,
        progress: &Progress,
    ) -> Vec<(UploadItem, Result<Sent, UploadError>)> {
        for ready in &bundle {
            progress.send(Event::Started { id: ready.item.id }).await;
        }
        let paths: Vec<std::path::PathBuf> = bundle.iter().map(|r| self.path_of(&r.item)).collect();
        let opened = {
            let paths = paths.clone();
            tokio::task::spawn_blocking(move || {
                paths
                    .iter()
                    .map(|path| open_and_read_small(path))
                    .collect::<Vec<_>>()
            })
            .await
        };
        let opened = match opened {
            Ok(opened) => opened,
            Err(join_error) => {
                let reason = format!("open task failed: {join_error}");
                return bundle
                    .into_iter()
                    .map(|r| (r.item, Err(anyhow::anyhow!("{reason}").into())))
                    .collect();
            }
        };
        let sends = bundle
            .iter()
            .zip(paths)
            .zip(opened)
            .map(|((ready, path), opened)| {
                self.send_opened(ready, path, opened, resumable, progress)
            });
        let outcomes = futures_util::future::join_all(sends).await;
        bundle
            .into_iter()
            .zip(outcomes)
            .map(|(ready, outcome)| (ready.item, outcome))
            .collect()
    }

    pub(super) fn path_of(&self, item: &UploadItem) -> std::path::PathBuf {
        match &item.raw {
            Some(raw) => self
                .root
                .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(raw)),
            None => self.root.join(&item.key),
        }
    }

    /// One opened file to the store, up to the store's confirmation (the commit
    /// records it).
    async fn send_opened(
        &self,
        ready: &Ready,
        path: std::path::PathBuf,
        opened: std::io::Result<(std::fs::File, Fingerprint, Option<SmallRead>)>,
        resumable: Option<&HashSet<String>>,
        progress: &Progress,
    ) -> Result<Sent, UploadError> {
        let item = &ready.item;
        let id = item.id;
        let (file, before, small) = opened.map_err(|e| {
            anyhow::anyhow!(
                "cannot read {}: {}",
                path.display(),
                crate::scan::describe_io_error(&e)
            )
        })?;
        hash::count_file_opened();
        if !ready.journaled || item.fingerprint != Some(before) {
            // Not journaled ahead, or changed since status saw it: the intent names
            // the file as it is now, so recovery can tell whether it still matches.
            self.state
                .journal_begin(&item.key, item.raw.as_deref(), &before, now_secs())?;
        }

        let could_resume = resumable.is_none_or(|keys| keys.contains(&item.key));
        let (mut upload, already_stored) = self.open_upload(item, &before, could_resume).await?;
        let part_size = self.store.part_size(before.size).max(1) as u64;
        let mut small_after = None;
        let mut prefetched = None;
        let mut reader = match small {
            Some(read) => {
                small_after = read.after;
                prefetched = Some((read.chunk, read.wanted));
                Some((file, read.hasher))
            }
            None => Some((file, ContentHasher::new())),
        };
        let mut offset = 0u64;
        let read_result: Result<(), UploadError> = async {
            loop {
                if progress.is_cancelled() || item.cancel.as_ref().is_some_and(|c| c.is_cancelled())
                {
                    return Err(UploadError::Cancelled);
                }
                let (chunk, want) = if let Some((chunk, wanted)) = prefetched.take() {
                    // A small file, read and hashed when it was opened (its buffer is
                    // bounded by SMALL_FILE × requests in flight).
                    upload.reserve(chunk.len() as u64).await?;
                    (chunk, wanted)
                } else {
                    // A buffer no larger than the file (one byte more shows it grew):
                    // a small file does not cost a part-sized allocation.
                    let want = part_size.min(before.size.saturating_sub(offset) + 1);
                    // Read a part only once the store can take it: part buffers stay
                    // within its memory budget (invariant 8).
                    upload.reserve(want).await?;
                    let (mut file, mut hasher) = reader.take().context("reader lost")?;
                    let (file, hasher, chunk) =
                        tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                            let mut buf = vec![0u8; want as usize];
                            let n = hash::read_full(&mut file, &mut buf)?;
                            buf.truncate(n);
                            // The bytes hashed here are exactly the bytes sent below.
                            hasher.update(&buf);
                            Ok((file, hasher, Bytes::from(buf)))
                        })
                        .await
                        .context("read task failed")?
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    reader = Some((file, hasher));
                    (chunk, want)
                };
                let n = chunk.len() as u64;
                if n == 0 {
                    return Ok(());
                }
                // A part an interrupted run already delivered is sent again only
                // if its bytes differ from what the store holds.
                let delivered = already_stored.iter().any(|p| p.holds(offset, &chunk));
                if !delivered {
                    upload.send(offset, chunk).await?;
                }
                offset += n;
                progress.send(Event::Advanced { id, bytes: n }).await;
                if n < want {
                    return Ok(());
                }
            }
        }
        .await;
        let (file, hasher) = match (read_result, reader) {
            (Ok(()), Some(reader)) => reader,
            (result, _) => {
                let error = result
                    .err()
                    .unwrap_or_else(|| anyhow::anyhow!("reader lost").into());
                // A resumable upload that failed on the network is picked up by the
                // next run; anything else is abandoned now.
                if matches!(error, UploadError::Cancelled) || upload.resume_token().is_none() {
                    let _ = upload.abort().await;
                    let _ = self.state.forget_multipart(&item.key);
                }
                return Err(error);
            }
        };
        let after = match small_after {
            Some(after) => after,
            None => Fingerprint::of(&file.metadata().context("cannot stat file after reading")?),
        };
        let content = hasher.finish();
        if !after.same_content_stamp(&before) || content.size != before.size {
            let _ = upload.abort().await;
            let _ = self.state.forget_multipart(&item.key);
            return Err(anyhow::anyhow!("{} changed while it was read (size, mtime or ctime moved); not recorded, it will be tried again next run", item.key).into());
        }
        if item
            .expect
            .is_some_and(|expected| !expected.matches(&content))
        {
            // A migration's copy must be the archived version, byte for byte.
            let _ = upload.abort().await;
            let _ = self.state.forget_multipart(&item.key);
            return Err(UploadError::NotAsArchived);
        }

        let description = Description::of_file(
            &item.key,
            item.raw.as_deref(),
            content.size,
            before.mtime_ns,
            Some(&content.sha1),
            &self.owner,
        )
        .encode(self.store.description_limit());
        let resume_token = upload.resume_token();
        let stored = upload
            .complete(content.size, content.tree_hash, &description)
            .await;
        if resume_token.is_some() {
            // Completed or refused, this upload cannot be resumed any more.
            let _ = self.state.forget_multipart(&item.key);
        }
        let stored = stored?;
        if stored.tree_hash != content.tree_hash || stored.size != content.size {
            // Never record what the store did not confirm byte for byte.
            let _ = self.store.delete(&stored.archive_id).await;
            return Err(anyhow::anyhow!(
                "store reported tree hash {} for {}, computed {}; archive discarded",
                hex::encode(stored.tree_hash),
                item.key,
                hex::encode(content.tree_hash)
            )
            .into());
        }
        Ok(Sent {
            item: item.clone(),
            before,
            content,
            archive_id: stored.archive_id,
            stored_at: stored.created_at,
            replaces: ready.replaces.clone(),
            pack: None,
        })
    }

    /// Resumes this file's interrupted upload when the file is unchanged since it
    /// started; otherwise aborts that upload and begins a new one.
    async fn open_upload(
        &self,
        item: &UploadItem,
        before: &Fingerprint,
        could_resume: bool,
    ) -> Result<(Box<dyn crate::store::Upload>, Vec<crate::store::StoredPart>)> {
        if could_resume && let Some(previous) = self.state.multipart(&item.key)? {
            let resumed = self
                .store
                .resume_upload(&previous.token, before.size)
                .await?;
            match resumed {
                Some((upload, parts)) if previous.fingerprint == *before => {
                    return Ok((upload, parts));
                }
                Some((upload, _)) => {
                    let _ = upload.abort().await;
                }
                None => {}
            }
            self.state.forget_multipart(&item.key)?;
        }
        // Glacier multipart takes the description up front: give it the SHA-1
        // when an earlier status already hashed this exact file.
        let known_sha1 = if self.store.needs_description_up_front(before.size) {
            self.state
                .cached(&item.key)?
                .filter(|c| c.fingerprint == *before)
                .map(|c| c.hash.sha1)
        } else {
            None
        };
        let description = Description::of_file(
            &item.key,
            item.raw.as_deref(),
            before.size,
            before.mtime_ns,
            known_sha1.as_ref(),
            &self.owner,
        )
        .encode(self.store.description_limit());
        let upload = self.store.begin_upload(before.size, &description).await?;
        if let Some(token) = upload.resume_token() {
            self.state
                .put_multipart(&item.key, &token, before, now_secs())?;
        }
        Ok((upload, Vec::new()))
    }
}

/// A small file read whole (and hashed) in the call that opened it.
struct SmallRead {
    chunk: Bytes,
    hasher: ContentHasher,
    /// How much was asked for: reading less means the end was reached.
    wanted: u64,
    /// The file's fingerprint right after the read, when the end was reached.
    after: Option<Fingerprint>,
}

/// Opens a file and takes its fingerprint; a small one is also read whole, hashed
/// and stat'ed again in the same blocking call (one thread hop, not three).
fn open_and_read_small(
    path: &std::path::Path,
) -> std::io::Result<(std::fs::File, Fingerprint, Option<SmallRead>)> {
    let mut file = std::fs::File::open(path)?;
    let before = Fingerprint::of(&file.metadata()?);
    if before.size > SMALL_FILE {
        return Ok((file, before, None));
    }
    // One byte more than the file shows it grew.
    let wanted = (before.size + 1).min(SMALL_FILE);
    let mut buf = vec![0u8; wanted as usize];
    let n = hash::read_full(&mut file, &mut buf)?;
    buf.truncate(n);
    // The bytes hashed here are exactly the bytes sent.
    let mut hasher = ContentHasher::new();
    hasher.update(&buf);
    let after = if (n as u64) < wanted {
        Some(Fingerprint::of(&file.metadata()?))
    } else {
        None
    };
    Ok((
        file,
        before,
        Some(SmallRead {
            chunk: Bytes::from(buf),
            hasher,
            wanted,
            after,
        }),
    ))
}

/// The uploads not packed, [`PREPARE_CHUNK`] at most at a time: as many as
/// have come (a chunk does not wait to fill while uploads could start).
struct Chunks {
    items: mpsc::Receiver<UploadItem>,
}

impl Chunks {
    fn new(items: mpsc::Receiver<UploadItem>) -> Chunks {
        Chunks { items }
    }

    async fn next(&mut self) -> Option<Vec<UploadItem>> {
        let first = self.items.recv().await?;
        let mut chunk = vec![first];
        while chunk.len() < PREPARE_CHUNK {
            match self.items.try_recv() {
                Ok(item) => chunk.push(item),
                Err(_) => break,
            }
        }
        Some(chunk)
    }
}

/// What became of a plan's steps that the router settled itself.
#[derive(Default)]
struct Routed {
    mtimes_updated: u64,
    cancelled: u64,
    failed: Vec<FailedFile>,
}

impl Engine {
    /// Takes the plan's steps as they come: updates mtimes, queues each upload
    /// (its `Queued` event) and hands it to the packs or to the uploads one by
    /// one. Once the job is cancelled, the rest of the plan is queued and
    /// cancelled here (a front end that shows the files sees each settled).
    async fn route(
        &self,
        mut plan: PlanStream,
        to_packs: mpsc::Sender<UploadItem>,
        to_alone: mpsc::Sender<UploadItem>,
        progress: &Progress,
    ) -> Routed {
        let mut routed = Routed::default();
        while let Some(step) = plan.steps.recv().await {
            let item = match step {
                Step::UpdateMtime(key, mtime_ns) => {
                    match self.update_mtime(&key, mtime_ns).await {
                        Ok(()) => routed.mtimes_updated += 1,
                        Err(e) => routed.failed.push(FailedFile {
                            path: key,
                            reason: format!("cannot update mtime: {e:#}"),
                        }),
                    }
                    continue;
                }
                Step::Upload(item) => item,
            };
            let queued = Event::Queued {
                id: item.id,
                key: item.key.clone(),
                bytes: item.size,
            };
            progress.send(queued).await;
            if progress.is_cancelled() {
                routed.cancelled += 1;
                progress.send(Event::Cancelled { id: item.id }).await;
                continue;
            }
            let to = if self.packing.takes(item.size) {
                &to_packs
            } else {
                &to_alone
            };
            if let Err(mpsc::error::SendError(item)) = to.send(item).await {
                // Its uploader stopped (it cannot, short of a panic it reports).
                routed.cancelled += 1;
                progress.send(Event::Cancelled { id: item.id }).await;
            }
        }
        match plan.feeder.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => routed.failed.push(FailedFile {
                path: "(plan)".into(),
                reason: format!("{e:#}; the files after it were not backed up this run"),
            }),
            Err(join_error) => routed.failed.push(FailedFile {
                path: "(plan)".into(),
                reason: format!("plan task failed: {join_error}"),
            }),
        }
        routed
    }
}
