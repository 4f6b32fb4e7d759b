//! Group commit: what the store confirmed is recorded a batch at a time, in the
//! order of invariants 1 and 3 in the crate docs, for the whole batch at once:
//!
//! 1. the store makes the batch durable (a local directory: one filesystem sync
//!    for the batch, not one per file);
//! 2. local state journals every archive id and the file as it was read (one
//!    transaction);
//! 3. the catalog records the batch (one transaction, or DynamoDB transactions of
//!    up to 100 writes), each record conditional on the version its upload saw, a
//!    conflict failing only its own file;
//! 4. local state closes the journal entries and caches the fingerprints (one
//!    transaction);
//! 5. only then is each file reported done and the version it superseded handed
//!    to the retention policy.
//!
//! A batch closes at [`BATCH_FILES`] files (with packs: and [`BATCH_PACKS`]
//! packs), [`BATCH_BYTES`] bytes, [`BATCH_AFTER`] after its first file (so a
//! slow trickle is still recorded promptly) and at the end of the run. A crash
//! at any point leaves archives either not durable (and never recorded), or
//! durable and found by the next run's recovery (through the journal, or the
//! store's listing), or recorded.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backup::{FailedFile, UploadItem};
use super::{Engine, Event, Progress, fault_point};
use crate::catalog::{ArchiveRecord, ArchiveState, Catalog as _, Conflict};
use crate::model::{ContentHash, Fingerprint, now_secs};
use crate::state::JournalStored;

/// A batch closes at this many files…
pub const BATCH_FILES: usize = 256;
/// …or this many bytes…
pub const BATCH_BYTES: u64 = 64 << 20;
/// …or this long after its first file arrived.
pub const BATCH_AFTER: Duration = Duration::from_secs(1);
/// A batch of packs closes at [`BATCH_FILES`] files only once it holds this
/// many packs: a pack of 4,096 small files alone would otherwise be a batch,
/// and each batch costs two filesystem syncs and four transactions (a first
/// backup of 200,000 small files: 25 batches instead of 49). Two, not more:
/// a batch holds every member's record until it is recorded.
pub const BATCH_PACKS: usize = 2;

/// An upload the store confirmed, waiting for its batch to be recorded.
pub struct Sent {
    pub item: UploadItem,
    /// The file as it was read.
    pub before: Fingerprint,
    pub content: ContentHash,
    pub archive_id: String,
    /// When the store took it (Unix seconds): the upload time recorded.
    pub stored_at: i64,
    /// The current version its upload saw (the record is conditional on it).
    pub replaces: Option<ArchiveRecord>,
    /// Where its bytes are, when `archive_id` is a pack.
    pub pack: Option<PackPlace>,
}

/// A packed file's pack (by the SHA-1 its journal entry has) and place in it.
#[derive(Debug, Clone, Copy)]
pub struct PackPlace {
    pub sha1: crate::model::Sha1Digest,
    pub slot: crate::catalog::PackSlot,
}

/// What the uploads hand to the commit.
pub enum Commit {
    Sent(Box<Sent>),
    /// Every member of a pack the store confirmed: recorded in one batch.
    Pack(Vec<Sent>),
    /// A file that will not be recorded (failed, cancelled): its journal entry
    /// is closed with the next batch.
    End(String),
}

/// What the commit recorded, and what it could not.
#[derive(Debug, Default)]
pub struct Committed {
    pub uploaded_files: u64,
    pub uploaded_bytes: u64,
    pub superseded_deleted: u64,
    pub failed: Vec<FailedFile>,
}

#[derive(Default)]
struct Batch {
    sent: Vec<Sent>,
    ended: Vec<String>,
    bytes: u64,
    /// Packs in `sent`, and the files of `sent` that are not in one.
    packs: usize,
    loose: usize,
    opened: Option<Instant>,
}

impl Batch {
    fn add(&mut self, commit: Commit) {
        self.opened.get_or_insert_with(Instant::now);
        match commit {
            Commit::Sent(sent) => {
                self.bytes += sent.content.size;
                self.loose += 1;
                self.sent.push(*sent);
            }
            Commit::Pack(members) => {
                self.bytes += members.iter().map(|m| m.content.size).sum::<u64>();
                self.packs += 1;
                self.sent.extend(members);
            }
            Commit::End(key) => self.ended.push(key),
        }
    }

    fn is_full(&self) -> bool {
        let files = self.sent.len() + self.ended.len();
        self.bytes >= BATCH_BYTES
            || self.loose + self.ended.len() >= BATCH_FILES
            || (files >= BATCH_FILES && self.packs >= BATCH_PACKS)
    }
}

impl Engine {
    /// Records everything `received` brings, a batch at a time, until the
    /// uploads are over (the channel closes).
    pub(super) async fn commit_all(
        &self,
        mut received: mpsc::Receiver<Commit>,
        progress: &Progress,
    ) -> Committed {
        let mut committed = Committed::default();
        let mut batch = Batch::default();
        loop {
            let next = match batch.opened {
                None => received.recv().await,
                Some(opened) => {
                    match tokio::time::timeout_at(opened + BATCH_AFTER, received.recv()).await {
                        Ok(next) => next,
                        Err(_elapsed) => {
                            self.commit(std::mem::take(&mut batch), progress, &mut committed)
                                .await;
                            continue;
                        }
                    }
                }
            };
            match next {
                Some(commit) => {
                    batch.add(commit);
                    if batch.is_full() {
                        self.commit(std::mem::take(&mut batch), progress, &mut committed)
                            .await;
                    }
                }
                None => {
                    self.commit(batch, progress, &mut committed).await;
                    return committed;
                }
            }
        }
    }

    async fn commit(&self, batch: Batch, progress: &Progress, committed: &mut Committed) {
        let Batch {
            mut sent,
            mut ended,
            ..
        } = batch;
        let mut recorded: Vec<Sent> = Vec::new();
        // Packs whose journal entries close with this batch: every member is
        // recorded (or refused on its own, as an unpacked file would be).
        let mut packs_done: Vec<crate::model::Sha1Digest> = Vec::new();
        if !sent.is_empty() {
            let packs_in_batch: Vec<_> = {
                let mut sha1s: Vec<_> =
                    sent.iter().filter_map(|s| s.pack.map(|p| p.sha1)).collect();
                sha1s.sort_unstable();
                sha1s.dedup();
                sha1s
            };
            match self.record_batch(&mut sent, &mut ended).await {
                Ok(outcome) => {
                    packs_done = packs_in_batch;
                    recorded = outcome.recorded;
                    // Refused on its own (a conflict), or left in the journal for
                    // the next run's recovery to record.
                    for (refused, e) in outcome.refused {
                        fail(progress, committed, &refused.item, format!("{e:#}")).await;
                    }
                }
                Err(e) => {
                    // The journal keeps what may be durable in the store: the next
                    // run's recovery finds it.
                    for failed in sent {
                        fail(progress, committed, &failed.item, format!("{e:#}")).await;
                    }
                }
            }
        }
        fault_point("batch-recorded");
        let fingerprints: Vec<(String, Fingerprint, ContentHash)> = recorded
            .iter()
            .map(|s| (s.item.key.clone(), s.before, s.content))
            .collect();
        ended.extend(recorded.iter().map(|s| s.item.key.clone()));
        let ended: Vec<&str> = ended.iter().map(String::as_str).collect();
        if let Err(e) = self.state.finish_uploads(&ended, &fingerprints) {
            // Recorded all the same; the next run's recovery closes the entries.
            progress
                .send(Event::Note(format!(
                    "cannot close the upload journal: {e:#}"
                )))
                .await;
        }
        if !packs_done.is_empty() {
            fault_point("packs-recorded");
            if let Err(e) = self.state.packs_end(&packs_done) {
                progress
                    .send(Event::Note(format!("cannot close the pack journal: {e:#}")))
                    .await;
            }
        }
        for sent in recorded {
            committed.uploaded_files += 1;
            committed.uploaded_bytes += sent.content.size;
            progress
                .send(Event::Done {
                    id: sent.item.id,
                    archive_id: sent.archive_id.clone(),
                })
                .await;
            let Some(mut previous) = sent.replaces else {
                continue;
            };
            previous.state = ArchiveState::Superseded;
            // The new version's upload time (its record's `uploaded_at`).
            previous.superseded_at = Some(sent.stored_at);
            match self.apply_retention_to(&previous, now_secs()).await {
                Ok(deleted) => committed.superseded_deleted += u64::from(deleted),
                Err(e) => {
                    progress
                        .send(Event::Note(format!(
                            "retention of {} failed: {e:#}",
                            previous.archive_id
                        )))
                        .await;
                }
            }
        }
    }

    /// Steps 1–3 for a batch. An error fails the whole batch (`sent` untouched);
    /// otherwise every upload is either recorded or refused on its own.
    async fn record_batch(
        &self,
        sent: &mut Vec<Sent>,
        ended: &mut Vec<String>,
    ) -> anyhow::Result<BatchOutcome> {
        fault_point("batch-sent");
        self.store.make_durable().await?;
        fault_point("after-store");
        let mut packs: Vec<(crate::model::Sha1Digest, &str, i64)> = Vec::new();
        for s in sent.iter() {
            if let Some(place) = s.pack
                && !packs.iter().any(|(sha1, _, _)| *sha1 == place.sha1)
            {
                packs.push((place.sha1, &s.archive_id, s.stored_at));
            }
        }
        if !packs.is_empty() {
            self.state.packs_stored(&packs)?;
        }
        let stored: Vec<JournalStored<'_>> = sent
            .iter()
            .filter(|s| s.pack.is_none())
            .map(|s| JournalStored {
                key: &s.item.key,
                archive_id: &s.archive_id,
                hash: &s.content,
                fingerprint: &s.before,
            })
            .collect();
        self.state.journal_stored_many(&stored)?;
        fault_point("batch-journaled");
        let target = self.store.target();
        let uploads: Vec<(ArchiveRecord, Option<String>)> = sent
            .iter()
            .map(|s| {
                let record = ArchiveRecord {
                    key: s.item.key.clone(),
                    raw: s.item.raw.as_ref().map(|r| r.to_vec()),
                    size: s.content.size,
                    mtime_ns: s.before.mtime_ns,
                    sha1: s.content.sha1,
                    tree_hash: s.content.tree_hash,
                    archive_id: s.archive_id.clone(),
                    target: target.clone(),
                    uploaded_at: s.stored_at,
                    state: ArchiveState::Current,
                    host: self.host.clone(),
                    superseded_at: None,
                    pack: s.pack.map(|p| p.slot),
                };
                (record, s.replaces.as_ref().map(|r| r.archive_id.clone()))
            })
            .collect();
        let results = self.catalog.record_uploads(&uploads).await?;
        let mut outcome = BatchOutcome::default();
        for ((s, (record, _)), result) in sent.drain(..).zip(uploads).zip(results) {
            match result {
                Ok(()) => outcome.recorded.push(s),
                Err(e) => {
                    if e.downcast_ref::<Conflict>().is_some()
                        && self.catalog.record_superseded(&record).await.is_ok()
                    {
                        // Accounted for as a superseded version; retention decides
                        // its fate.
                        ended.push(s.item.key.clone());
                    }
                    outcome.refused.push((s, e));
                }
            }
        }
        Ok(outcome)
    }
}

#[derive(Default)]
struct BatchOutcome {
    recorded: Vec<Sent>,
    refused: Vec<(Sent, anyhow::Error)>,
}

async fn fail(progress: &Progress, committed: &mut Committed, item: &UploadItem, reason: String) {
    progress
        .send(Event::Failed {
            id: item.id,
            reason: reason.clone(),
        })
        .await;
    committed.failed.push(FailedFile {
        path: item.key.clone(),
        reason,
    });
}
