//! Reading packs' indexes back from the store, for a rebuild (invariant 10: a
//! pack describes itself, so losing the catalog loses none of its files).
//!
//! A pack is read like any archive: through a retrieval job (Glacier and the
//! S3 archive classes: hours; the embedded store: at once), one per pack,
//! persisted in local state before anything else happens and reused by the
//! next run while the store keeps its output (a rebuild that returned
//! "waiting" never pays for it twice). Only the index's range is downloaded:
//! where the pack's description says it is (`pk`), else where the pack's
//! trailer says (its last 24 bytes). The index is gzip: its checksum catches a
//! damaged read, and every member's own SHA-1 and tree hash are verified when
//! it is restored.
//!
//! The jobs are kept once read: the restore that usually follows a rebuild
//! needs the same packs, and takes up their jobs instead of paying again.

use std::collections::HashMap;

use anyhow::{Context, Result};

use super::Engine;
use super::retrieval::{Poll, job_usable};
use crate::description;
use crate::model::{Tier, now_secs};
use crate::pack::{self, Index, TRAILER_LEN};
use crate::state::RetrievalRecord;
use crate::store::{ArchiveListing, JobState};

/// What reading packs' indexes found.
pub(super) enum IndexFetch {
    /// Some packs' jobs are not ready (and the run does not wait).
    Waiting {
        requested_at: i64,
        ready_at: Option<i64>,
    },
    /// Each pack's index (by archive id), or why it could not be read.
    Ready(HashMap<String, Result<Index, String>>),
}

/// The key a pack's job is listed under while its index is read.
fn job_key(archive_id: &str) -> String {
    format!("(index of pack {archive_id})")
}

impl Engine {
    /// The indexes of `packs` (pack archives the listing shows), each read
    /// through a retrieval job with `tier`; waiting for the jobs when `wait`,
    /// else [`IndexFetch::Waiting`] until every one is ready.
    pub(super) async fn read_pack_indexes(
        &self,
        packs: &[ArchiveListing],
        tier: Tier,
        wait: bool,
    ) -> Result<IndexFetch> {
        let mut out = HashMap::new();
        if packs.is_empty() {
            return Ok(IndexFetch::Ready(out));
        }
        let mut jobs: Vec<RetrievalRecord> = Vec::with_capacity(packs.len());
        for listing in packs {
            jobs.push(self.pack_job(listing, tier).await?);
        }
        let mut poll = Poll::for_wait(self.store.expected_wait(tier).0);
        // Every job is ready (or failed) before any index is read: a run that
        // returns "waiting" has read nothing, and the next takes up every job.
        loop {
            let mut waiting = 0;
            let mut requested_at = i64::MAX;
            let mut ready_at: Option<i64> = None;
            for (listing, job) in packs.iter().zip(jobs.iter_mut()) {
                if out.contains_key(&listing.archive_id) {
                    continue;
                }
                match self.store.job_state(&job.job_id).await? {
                    JobState::Ready { .. } => {
                        if job.ready_at.is_none() {
                            job.ready_at = Some(now_secs());
                            self.state.put_retrieval(job)?;
                        }
                    }
                    JobState::Gone => {
                        // Expired or unknown to the store: the one case that
                        // pays for a new job.
                        self.state.forget_retrieval(&listing.archive_id)?;
                        *job = self.pack_job(listing, tier).await?;
                        waiting += 1;
                        requested_at = requested_at.min(job.requested_at);
                    }
                    JobState::Failed(reason) => {
                        self.state.forget_retrieval(&listing.archive_id)?;
                        out.insert(
                            listing.archive_id.clone(),
                            Err(format!(
                                "the store's retrieval of the pack failed: {reason}; rebuild again to request a new one"
                            )),
                        );
                    }
                    JobState::InProgress { ready_at: at } => {
                        waiting += 1;
                        requested_at = requested_at.min(job.requested_at);
                        ready_at = ready_at.max(at);
                    }
                }
            }
            if waiting == 0 {
                break;
            }
            if !wait {
                return Ok(IndexFetch::Waiting {
                    requested_at,
                    ready_at,
                });
            }
            poll.pause(None).await;
        }
        for (listing, job) in packs.iter().zip(&jobs) {
            if out.contains_key(&listing.archive_id) {
                continue;
            }
            let index = self
                .read_index(listing, &job.job_id)
                .await
                .map_err(|e| format!("{e:#}"));
            out.insert(listing.archive_id.clone(), index);
        }
        Ok(IndexFetch::Ready(out))
    }

    /// The retrieval job of a pack: the persisted one while the store keeps
    /// its output, else a new one, persisted before anything else happens.
    async fn pack_job(&self, listing: &ArchiveListing, tier: Tier) -> Result<RetrievalRecord> {
        if let Some(job) = self.state.retrieval(&listing.archive_id)?
            && job_usable(job.requested_at, job.ready_at, now_secs())
        {
            return Ok(job);
        }
        let job_id = self
            .store
            .request_retrieval(&listing.archive_id, tier)
            .await
            .with_context(|| {
                format!(
                    "cannot request the retrieval of pack {} (to read its index)",
                    listing.archive_id
                )
            })?;
        let job = RetrievalRecord {
            archive_id: listing.archive_id.clone(),
            job_id,
            tier,
            requested_at: now_secs(),
            key: job_key(&listing.archive_id),
            destination: Vec::new(),
            size: listing.size,
            ready_at: None,
        };
        self.state.put_retrieval(&job)?;
        Ok(job)
    }

    /// A pack's index from its ready job: the range its description names, or
    /// (when that is missing or does not read) the one its trailer names.
    async fn read_index(&self, listing: &ArchiveListing, job_id: &str) -> Result<Index> {
        let size = listing.size;
        let facts = description::decode(&listing.description)
            .ok()
            .and_then(|d| d.pack)
            .filter(|f| {
                f.index_offset
                    .checked_add(f.index_len)
                    .and_then(|end| end.checked_add(TRAILER_LEN))
                    == Some(size)
            });
        if let Some(facts) = facts
            && let Ok(index) = self
                .read_index_range(job_id, facts.index_offset, facts.index_len)
                .await
        {
            return Ok(index);
        }
        if size < TRAILER_LEN {
            anyhow::bail!("not a firn pack (shorter than its trailer)");
        }
        let trailer = self
            .read_range(job_id, size - TRAILER_LEN, TRAILER_LEN)
            .await?;
        let (offset, len) = pack::read_trailer(&trailer)?;
        if offset
            .checked_add(len)
            .is_none_or(|end| end > size - TRAILER_LEN)
        {
            anyhow::bail!("the pack's trailer points outside it");
        }
        self.read_index_range(job_id, offset, len).await
    }

    async fn read_index_range(&self, job_id: &str, offset: u64, len: u64) -> Result<Index> {
        let bytes = self.read_range(job_id, offset, len).await?;
        tokio::task::spawn_blocking(move || pack::decode_index(&bytes))
            .await
            .context("the index reading task failed")?
    }

    /// `len` bytes at `offset` of a job's output (tried three times).
    async fn read_range(&self, job_id: &str, offset: u64, len: u64) -> Result<bytes::Bytes> {
        let mut last = None;
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(500 << attempt)).await;
            }
            match self.store.read_job_output(job_id, offset, len).await {
                Ok(out) if out.data.len() as u64 == len => return Ok(out.data),
                Ok(out) => {
                    last = Some(anyhow::anyhow!(
                        "the store sent {} bytes of the pack at offset {offset}, expected {len}",
                        out.data.len()
                    ))
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
            .context("cannot read the pack's index"))
    }
}
