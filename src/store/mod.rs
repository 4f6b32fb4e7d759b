//! Store: where archive bytes live. One trait, interchangeable implementations
//! (a local directory by default; Glacier vaults later). Retrieval always goes
//! through jobs, as Glacier's does, so the restore flow is the same everywhere.

pub mod glacier;
pub mod local;

use anyhow::Result;
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::hash::TreeHash;

/// What the store reports once it holds an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArchive {
    pub archive_id: String,
    /// The tree hash the store computed over the bytes it received.
    pub tree_hash: TreeHash,
    pub size: u64,
}

/// One archive as the store lists it (an inventory line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveListing {
    pub archive_id: String,
    pub size: u64,
    pub tree_hash: TreeHash,
    pub description: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Expedited,
    Standard,
    Bulk,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Expedited => "expedited",
            Tier::Standard => "standard",
            Tier::Bulk => "bulk",
        }
    }
}

/// One range of a retrieval job's output.
#[derive(Debug, Clone)]
pub struct JobOutput {
    pub data: Bytes,
    /// The tree hash the store reports for this range (Glacier sends one for ranges
    /// aligned to a power-of-two number of MiB, or running to the end). Some servers
    /// report the whole archive's tree hash instead; the caller tells them apart.
    pub checksum: Option<TreeHash>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    InProgress {
        ready_at: Option<i64>,
    },
    Ready,
    Failed(String),
    /// The job is unknown or its output expired: request a new one.
    Gone,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Where archives go, recorded with each archive, e.g. `local:/mnt/disk/store`.
    fn target(&self) -> String;

    /// Fails with one clear line when the store is missing or unreachable.
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    /// The size of the pieces an upload of `archive_size` bytes is sent in.
    fn part_size(&self, archive_size: u64) -> usize;

    /// Starts an upload. `description` is the best record known before reading
    /// (a store that needs it up front, like Glacier multipart, uses this one;
    /// others take the final one given to [`Upload::complete`]).
    async fn begin_upload(&self, size: u64, description: &str) -> Result<Box<dyn Upload>>;

    /// Reopens an upload an earlier run started (its [`Upload::resume_token`]):
    /// the upload and the parts the store already holds. None when the store no
    /// longer knows it (expired or aborted).
    async fn resume_upload(
        &self,
        _token: &str,
        _size: u64,
    ) -> Result<Option<(Box<dyn Upload>, Vec<StoredPart>)>> {
        Ok(None)
    }

    /// Aborts uploads in progress that nothing will resume (tokens in `keep` are
    /// resumed by this set and left alone). Returns what it aborted.
    async fn abort_abandoned(&self, _keep: &[String]) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn delete(&self, archive_id: &str) -> Result<()>;

    /// Every archive the store holds, or None when it can only tell through an
    /// inventory job (Glacier).
    async fn list(&self) -> Result<Option<Vec<ArchiveListing>>>;

    async fn request_retrieval(&self, archive_id: &str, tier: Tier) -> Result<String>;

    async fn job_state(&self, job_id: &str) -> Result<JobState>;

    async fn read_job_output(&self, job_id: &str, offset: u64, len: u64) -> Result<JobOutput>;

    /// How long a retrieval job of this tier usually takes, in seconds (from, to).
    fn expected_wait(&self, tier: Tier) -> (u64, u64);
}

/// An upload in progress. Parts are sent in order; the caller hashes exactly the
/// bytes it sends.
/// A part an interrupted upload already delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub offset: u64,
    pub len: u64,
    pub tree_hash: TreeHash,
}

#[async_trait]
pub trait Upload: Send {
    /// What identifies this upload to a later run, for uploads that survive a
    /// crash (Glacier multipart). None for uploads that cannot be resumed.
    fn resume_token(&self) -> Option<String> {
        None
    }

    async fn send(&mut self, offset: u64, data: Bytes) -> Result<()>;

    /// Finishes the upload. `description` is the archive's self-describing record
    /// (known in full only once the content is hashed). The returned tree hash is the
    /// store's own; the caller compares it with the one it computed before recording
    /// anything.
    async fn complete(
        self: Box<Self>,
        size: u64,
        tree_hash: TreeHash,
        description: &str,
    ) -> Result<StoredArchive>;

    async fn abort(self: Box<Self>) -> Result<()>;
}
