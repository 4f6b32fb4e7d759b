//! The bodies of uploads: a whole archive sent in one request ([`WholeBody`]),
//! and parts in flight of one multipart upload (Glacier's and S3's alike): at most
//! `max_in_flight` per upload, and their bytes within a memory budget every
//! upload of the store shares (invariant 8: part buffers ≤ part size × parts in
//! flight). A caller reserves room before it reads a part, so a part is never
//! read only to wait in memory for a slot.

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

const MIB: u64 = 1 << 20;

pub struct PartSlots<T> {
    tasks: JoinSet<Result<T>>,
    max_in_flight: usize,
    /// One permit per MiB of part data in flight.
    memory: Arc<Semaphore>,
    budget_mib: u32,
    reserved: Option<OwnedSemaphorePermit>,
}

impl<T: Send + 'static> PartSlots<T> {
    pub fn new(max_in_flight: usize, memory: Arc<Semaphore>, budget: u64) -> Self {
        PartSlots {
            tasks: JoinSet::new(),
            max_in_flight: max_in_flight.max(1),
            memory,
            budget_mib: (budget / MIB).max(1) as u32,
            reserved: None,
        }
    }

    /// The memory budget of a store, as the semaphore its uploads share.
    pub fn budget(budget: u64) -> Arc<Semaphore> {
        Arc::new(Semaphore::new((budget / MIB).max(1) as usize))
    }

    /// Waits until one more part of `len` bytes fits (a slot of this upload and
    /// its bytes in the shared budget) and holds that room for the next
    /// [`PartSlots::spawn`]. Returns what parts finished meanwhile.
    pub async fn reserve(&mut self, len: u64) -> Result<Vec<T>> {
        let mut finished = Vec::new();
        while self.tasks.len() >= self.max_in_flight {
            if let Some(done) = self.next().await {
                finished.push(done?);
            }
        }
        if self.reserved.is_none() {
            let mib = len.div_ceil(MIB).clamp(1, u64::from(self.budget_mib)) as u32;
            let permit = Arc::clone(&self.memory)
                .acquire_many_owned(mib)
                .await
                .context("memory budget closed")?;
            self.reserved = Some(permit);
        }
        Ok(finished)
    }

    /// Sends one part of `len` bytes (`send` holds its room until it ends).
    /// Returns what parts finished while waiting for room.
    pub async fn spawn(
        &mut self,
        len: u64,
        send: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<Vec<T>> {
        let finished = self.reserve(len).await?;
        let permit = self.reserved.take();
        self.tasks.spawn(async move {
            let _room = permit;
            send.await
        });
        Ok(finished)
    }

    /// The next part to finish, None when none is in flight.
    pub async fn next(&mut self) -> Option<Result<T>> {
        let joined = self.tasks.join_next().await?;
        Some(joined.context("part upload task failed").and_then(|r| r))
    }

    /// Every part still in flight, in the order they finish.
    pub async fn drain(&mut self) -> Result<Vec<T>> {
        let mut finished = Vec::new();
        while let Some(done) = self.next().await {
            finished.push(done?);
        }
        Ok(finished)
    }

    pub async fn abort(&mut self) {
        self.reserved = None;
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// An archive sent in one request: the parts the engine hands over, in order,
/// gathered into one body (only small archives take this path).
pub struct WholeBody(Vec<u8>);

impl WholeBody {
    pub fn with_capacity(size: u64) -> WholeBody {
        WholeBody(Vec::with_capacity(size as usize))
    }

    /// A body already complete (Glacier's placeholder of an empty file).
    pub fn holding(bytes: &[u8]) -> WholeBody {
        WholeBody(bytes.to_vec())
    }

    pub fn push(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        if offset != self.0.len() as u64 {
            anyhow::bail!("part at offset {offset} sent out of order");
        }
        self.0.extend_from_slice(data);
        Ok(())
    }

    /// The whole body, which must be `size` bytes.
    pub fn finish(self, size: u64) -> Result<bytes::Bytes> {
        if size != self.0.len() as u64 {
            anyhow::bail!(
                "upload size mismatch: {size} declared, {} sent",
                self.0.len()
            );
        }
        Ok(bytes::Bytes::from(self.0))
    }
}
