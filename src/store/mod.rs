//! Store: where archive bytes live. One trait, interchangeable implementations
//! (a local directory by default; Glacier vaults; S3 buckets). Retrieval always
//! goes through jobs, as Glacier's does, so the restore flow is the same
//! everywhere. A store may be shared by several sets: each archive's description
//! names its set (see `description`), and a store never acts on another set's
//! uploads.

pub mod glacier;
pub mod local;
pub mod parts;
pub mod requests;
pub mod s3;

use anyhow::Result;
use async_trait::async_trait;
use bytes::Bytes;

use crate::hash::tree_hash_of;

use crate::model::Tier;
use crate::model::TreeHash;
pub use requests::RequestCount;
/// What the store reports once it holds an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArchive {
    pub archive_id: String,
    /// The tree hash the store computed over the bytes it received.
    pub tree_hash: TreeHash,
    pub size: u64,
    /// Unix seconds: when the store took it (the embedded store's own record of
    /// it, which its listing reports too; the moment of confirmation elsewhere).
    /// The catalog records it as the upload time.
    pub created_at: i64,
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

/// Every archive a store held at one moment, as an inventory job reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// Unix seconds: the moment the listing reflects (Glacier's lags about a day).
    pub date: i64,
    pub archives: Vec<ArchiveListing>,
}

/// 16 MiB: a power-of-two number of MiB, so every range is a node of the tree hash.
pub const DOWNLOAD_RANGE: u64 = 16 << 20;

/// The archive id older firn versions recorded for a 0-byte file on a store that
/// refuses empty archives: nothing is stored under it, so it is never missing.
pub const EMPTY_ARCHIVE_ID: &str = "firn-empty-archive";

/// What a 0-byte file is stored as where empty archives are refused (Glacier): one
/// 0x00 byte, whose description says `s: 0`. The catalog records size 0 and the
/// tree hash of empty content.
pub const EMPTY_PLACEHOLDER: &[u8] = &[0];

/// The tree hash of [`EMPTY_PLACEHOLDER`].
pub fn placeholder_tree_hash() -> TreeHash {
    tree_hash_of(EMPTY_PLACEHOLDER)
}

impl ArchiveListing {
    /// Whether this archive is the placeholder of an empty file, given the size its
    /// description declares.
    pub fn is_empty_placeholder(&self, described_size: Option<u64>) -> bool {
        described_size == Some(0)
            && self.size == EMPTY_PLACEHOLDER.len() as u64
            && self.tree_hash == placeholder_tree_hash()
    }

    /// Size and tree hash of the file content this archive holds: a placeholder
    /// holds an empty file.
    pub fn content(&self, described_size: Option<u64>) -> (u64, TreeHash) {
        if self.is_empty_placeholder(described_size) {
            (0, tree_hash_of(&[]))
        } else {
            (self.size, self.tree_hash)
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
    /// The output can be downloaded (until `expires_at`, when the store says).
    Ready {
        expires_at: Option<i64>,
    },
    Failed(String),
    /// The job is unknown or its output expired: request a new one.
    Gone,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Where archives go, recorded with each archive, e.g. `local:/mnt/disk/store`.
    fn target(&self) -> String;

    /// What kind of store this is, for people (`embedded store`, `S3 DEEP_ARCHIVE`).
    fn kind(&self) -> String;

    /// The requests this store sent so far that its provider bills per
    /// request (see `requests`): none for the embedded store.
    fn requests(&self) -> RequestCount {
        RequestCount::default()
    }

    /// Fails with one clear line when the store is missing or unreachable.
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    /// How long an archive's self-describing record may be (Glacier: 1,024
    /// characters; S3 metadata: 2 KB).
    fn description_limit(&self) -> usize {
        crate::description::MAX_LEN
    }

    /// The size of the pieces an upload of `archive_size` bytes is sent in.
    fn part_size(&self, archive_size: u64) -> usize;

    /// Whether [`Store::begin_upload`] of `size` bytes uses its description (Glacier
    /// multipart takes it up front); others take the one given to
    /// [`Upload::complete`], so the caller need not look for a better one first.
    fn needs_description_up_front(&self, _size: u64) -> bool {
        false
    }

    /// Whether the store can list its archives at once ([`Store::list`] returns
    /// Some): recovery then finds an interrupted upload's archive by its
    /// description, so a run may note its intents ahead, many in one write.
    fn can_list(&self) -> bool {
        true
    }

    /// How many small uploads may be in flight at once by default: a remote
    /// store is bound by each request's latency, so many.
    fn default_requests_in_flight(&self) -> usize {
        32
    }

    /// About how big a pack of small files grows when the set does not say
    /// (`pack_size`): 64 MiB for remote stores, where every archive is billed
    /// a request to put and to restore, and a pack is retrieved whole.
    fn default_pack_size(&self) -> u64 {
        64 << 20
    }

    /// Makes every archive completed since the last call durable. Remote stores
    /// hold an archive durably once [`Upload::complete`] returns (a no-op here); a
    /// local directory syncs a whole batch in one pass instead of once per file.
    /// Nothing may be recorded of an archive before this returns.
    async fn make_durable(&self) -> Result<()> {
        Ok(())
    }

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

    /// Aborts uploads in progress of the set whose short id is `owner` that
    /// nothing will resume (tokens in `keep` are resumed by this set and left
    /// alone). Only uploads that name this set are touched: another set sharing
    /// the store resumes its own, and one that names no set (begun before
    /// uploads did) may be any set's. (An embedded store's upload in progress is
    /// its writer's temporary file, removed after a day without a write.)
    /// Returns what it aborted.
    async fn abort_abandoned(&self, _keep: &[String], _owner: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn delete(&self, archive_id: &str) -> Result<()>;

    /// Every archive the store holds, or None when it can only tell through an
    /// inventory job (Glacier).
    async fn list(&self) -> Result<Option<Vec<ArchiveListing>>>;

    async fn request_retrieval(&self, archive_id: &str, tier: Tier) -> Result<String>;

    async fn job_state(&self, job_id: &str) -> Result<JobState>;

    /// Whether [`Store::read_at_once`] reads an archive's bytes: no retrieval
    /// job, no fee, no wait (the embedded store: a file on a local disk). A
    /// catalog snapshot then leaves what packs' own indexes hold to them (see
    /// `engine::snapshot`); elsewhere reading every pack's index would cost a
    /// retrieval per pack and hours, so snapshots stay complete.
    fn reads_at_once(&self) -> bool {
        false
    }

    /// Where [`Store::reads_at_once`]: the archive's size, and its bytes from
    /// `offset` (at most `len`; none past its end).
    async fn read_at_once(
        &self,
        archive_id: &str,
        _offset: u64,
        _len: u64,
    ) -> Result<(u64, Bytes)> {
        anyhow::bail!(
            "the store {} reads archive {archive_id} only through a retrieval job",
            self.target()
        )
    }

    async fn read_job_output(&self, job_id: &str, offset: u64, len: u64) -> Result<JobOutput>;

    /// How long a retrieval job of this tier usually takes, in seconds (from, to).
    fn expected_wait(&self, tier: Tier) -> (u64, u64);

    /// The retrieval tiers this store offers for its archives (S3 Deep Archive
    /// has no Expedited).
    fn tiers(&self) -> Vec<Tier> {
        Tier::ALL.to_vec()
    }

    /// The size of the pieces a retrieval of an archive of `archive_size` bytes is
    /// downloaded in: a power-of-two number of MiB (a node of the tree hash), each
    /// verified on its own when the store keeps a checksum for it.
    fn download_range(&self, _archive_size: u64) -> u64 {
        DOWNLOAD_RANGE
    }

    /// Requests a listing of every archive (Glacier: an inventory-retrieval job,
    /// hours). Returns a job id whose progress [`Store::job_state`] reports.
    async fn request_inventory(&self) -> Result<String> {
        anyhow::bail!("the store {} cannot take an inventory", self.target())
    }

    /// The listing of a ready inventory job.
    async fn read_inventory(&self, _job_id: &str) -> Result<Inventory> {
        anyhow::bail!("the store {} cannot take an inventory", self.target())
    }
}

/// A part an interrupted upload already delivered, and how to tell whether bytes
/// read again now are the bytes the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub offset: u64,
    pub len: u64,
    pub check: PartCheck,
}

/// The checksum a store keeps of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartCheck {
    /// Glacier's SHA-256 tree hash.
    TreeHash(TreeHash),
    /// S3's CRC32C.
    Crc32c(u32),
    /// S3's ETag of a part sent with Content-MD5.
    Md5([u8; 16]),
}

impl StoredPart {
    /// Whether `data`, read at `offset`, is exactly this part.
    pub fn holds(&self, offset: u64, data: &[u8]) -> bool {
        self.offset == offset
            && self.len == data.len() as u64
            && match self.check {
                PartCheck::TreeHash(hash) => tree_hash_of(data) == hash,
                PartCheck::Crc32c(crc) => crc32c::crc32c(data) == crc,
                PartCheck::Md5(digest) => {
                    use md5::Digest as _;
                    <[u8; 16]>::from(md5::Md5::digest(data)) == digest
                }
            }
    }
}

#[async_trait]
pub trait Upload: Send {
    /// What identifies this upload to a later run, for uploads that survive a
    /// crash (Glacier multipart). None for uploads that cannot be resumed.
    fn resume_token(&self) -> Option<String> {
        None
    }

    /// Waits until the store can take a part of `len` bytes at once (its memory
    /// budget), so the caller reads the part only then.
    async fn reserve(&mut self, _len: u64) -> Result<()> {
        Ok(())
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
