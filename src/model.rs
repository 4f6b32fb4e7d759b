//! The vocabulary every layer shares: digests, fingerprints, entries and their
//! statuses, retention policies, retrieval tiers, the usage error. It imports
//! nothing from the rest of firn, so everything can depend on it and it on nothing
//! (the flow in the crate docs runs one way).

use std::fmt;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub type Sha1Digest = [u8; 20];
pub type TreeHash = [u8; 32];

/// The SHA-1 of an archive whose description did not carry one (a Glacier multipart
/// upload of a file not hashed before it started, or an mt-aws-glacier archive)
/// and that was recorded from an inventory: the tree hash still verifies its bytes.
pub const UNKNOWN_SHA1: Sha1Digest = [0; 20];

/// The tree hash of an archive whose record did not carry one (an S3 multipart
/// object whose tags were lost, rebuilt from a listing): a restore then verifies
/// its SHA-1 and the store's own checksums instead.
pub const UNKNOWN_TREE_HASH: TreeHash = [0; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentHash {
    pub size: u64,
    pub sha1: Sha1Digest,
    pub tree_hash: TreeHash,
}

/// What says whether a file may have changed: restic's size + mtime + ctime + inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
}

impl Fingerprint {
    pub fn of(meta: &Metadata) -> Self {
        Fingerprint {
            size: meta.size(),
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
            ctime_ns: meta
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec()),
            inode: meta.ino(),
        }
    }

    /// Size, mtime and ctime agree: the content cannot have been rewritten in between
    /// (the inode is left out because the same open file is compared).
    pub fn same_content_stamp(&self, other: &Fingerprint) -> bool {
        self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.ctime_ns == other.ctime_ns
    }
}

/// Why an entry is not backed up although it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Symlink,
    SymlinkLoop,
    Fifo,
    Socket,
    Device,
    /// Two names that normalize to one key: both are refused rather than merged.
    NameCollision,
}

impl SkipReason {
    pub fn describe(&self) -> &'static str {
        match self {
            SkipReason::Symlink => {
                "symbolic link (not followed; pass --follow-symlinks to back up its target)"
            }
            SkipReason::SymlinkLoop => "symbolic link loop",
            SkipReason::Fifo => "named pipe (fifo)",
            SkipReason::Socket => "socket",
            SkipReason::Device => "device file",
            SkipReason::NameCollision => {
                "name collision: another name in this directory normalizes (NFC) to the same key; rename one of them"
            }
        }
    }
}

/// One path under the root (or, after status, one archived-only key). Scan fills
/// key, raw bytes, fingerprint and a first status; status completes the comparison
/// in place, so the tree costs one of these per entry and nothing more.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    /// Original bytes of the relative path when they differ from `key`.
    pub raw: Option<Box<[u8]>>,
    /// Zero for anything that is not a local regular file.
    pub fingerprint: Fingerprint,
    pub status: Status,
    /// Known content SHA-1 of the local file (from the cache or hashed this run).
    pub sha1: Option<Sha1Digest>,
    /// Size and mtime of the current archived version, if any.
    pub archived: Option<ArchivedSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchivedSummary {
    pub size: u64,
    pub mtime_ns: i64,
    pub sha1: Sha1Digest,
}

impl Entry {
    pub fn new(
        key: String,
        raw: Option<Vec<u8>>,
        fingerprint: Fingerprint,
        status: Status,
    ) -> Self {
        Entry {
            key,
            raw: raw.map(Vec::into_boxed_slice),
            fingerprint,
            status,
            sha1: None,
            archived: None,
        }
    }

    /// The path of this entry on disk under `root`.
    pub fn local_path(&self, root: &Path) -> PathBuf {
        match &self.raw {
            Some(raw) => {
                root.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(raw))
            }
            None => root.join(&self.key),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A local regular file not compared yet (scan's output).
    Local,
    New,
    Changed,
    UpToDate,
    /// Archived, but only in a store the set no longer uses: not safe here, so a
    /// backup uploads it to the store in use (invariant 9).
    OtherStore,
    ArchivedOnly,
    Ignored {
        is_dir: bool,
    },
    Unreadable(Box<str>),
    Skipped(SkipReason),
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Local => "local",
            Status::New => "new",
            Status::Changed => "changed",
            Status::UpToDate => "up-to-date",
            Status::OtherStore => "other-store",
            Status::ArchivedOnly => "archived-only",
            Status::Ignored { .. } => "ignored",
            Status::Unreadable(_) => "unreadable",
            Status::Skipped(_) => "skipped",
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(self, Status::New | Status::Changed | Status::OtherStore)
    }

    pub fn is_problem(&self) -> bool {
        matches!(self, Status::Unreadable(_) | Status::Skipped(_))
    }

    /// A file that exists and should be backed up but cannot be: the run reports
    /// failure (exit 1). Symlinks and special files are skipped by design instead.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Status::Unreadable(_) | Status::Skipped(SkipReason::NameCollision)
        )
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Status::Unreadable(reason) => Some(reason),
            Status::Skipped(reason) => Some(reason.describe()),
            Status::OtherStore => Some(
                "archived only in another store, not in the one this set uses; a backup uploads it here",
            ),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Keep,
    Delete,
    AfterDays(u32),
}

impl Default for Retention {
    fn default() -> Self {
        Retention::AfterDays(90)
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::Keep => f.write_str("keep"),
            Retention::Delete => f.write_str("delete"),
            Retention::AfterDays(days) => write!(f, "after-days {days}"),
        }
    }
}

impl FromStr for Retention {
    type Err = String;

    /// `keep`, `delete`, or `after-days N` (also `after-days=N`, `after-days:N`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "keep" => return Ok(Retention::Keep),
            "delete" => return Ok(Retention::Delete),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("after-days") {
            let days = rest.trim_start_matches([' ', '=', ':']).trim();
            if let Ok(days) = days.parse::<u32>() {
                return Ok(Retention::AfterDays(days));
            }
        }
        Err(format!(
            "invalid retention {s:?}: use `keep`, `delete` or `after-days N` (for example `after-days 90`)"
        ))
    }
}

impl Retention {
    /// Whether a superseded archive uploaded at `uploaded_at` is due for deletion.
    pub fn is_due(self, uploaded_at: i64, now: i64) -> bool {
        match self {
            Retention::Keep => false,
            Retention::Delete => true,
            Retention::AfterDays(days) => {
                now.saturating_sub(uploaded_at) >= i64::from(days) * 86_400
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Expedited,
    Standard,
    Bulk,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("invalid tier {s:?}: use expedited, standard or bulk"))
    }
}

impl Tier {
    /// Fastest first.
    pub const ALL: [Tier; 3] = [Tier::Expedited, Tier::Standard, Tier::Bulk];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Expedited => "expedited",
            Tier::Standard => "standard",
            Tier::Bulk => "bulk",
        }
    }

    /// The tier a job was saved with ([`Tier::as_str`]); Standard for anything
    /// else (jobs saved by an older firn).
    pub fn from_saved(name: &str) -> Tier {
        match name {
            "expedited" => Tier::Expedited,
            "bulk" => Tier::Bulk,
            _ => Tier::Standard,
        }
    }
}

/// Whether and how a backup puts small files into packs (see `pack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packing {
    /// `pack_small_files`: false keeps one archive per file.
    pub enabled: bool,
    /// `pack_threshold`: files up to this many bytes go into packs.
    pub threshold: u64,
    /// `pack_size`: about how many bytes a pack holds; None: what suits the
    /// store (`Store::default_pack_size`).
    pub size: Option<u64>,
}

impl Default for Packing {
    fn default() -> Self {
        Packing {
            enabled: true,
            threshold: 1 << 20,
            size: None,
        }
    }
}

impl Packing {
    /// One archive per file, as firn did before packs.
    pub fn off() -> Packing {
        Packing {
            enabled: false,
            ..Packing::default()
        }
    }

    /// Whether a file of `size` bytes goes into a pack.
    pub fn takes(&self, size: u64) -> bool {
        self.enabled && size <= self.threshold
    }
}

/// A problem with what the user asked for; exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies() {
        assert_eq!("keep".parse(), Ok(Retention::Keep));
        assert_eq!("delete".parse(), Ok(Retention::Delete));
        assert_eq!("after-days 30".parse(), Ok(Retention::AfterDays(30)));
        assert_eq!("after-days=7".parse(), Ok(Retention::AfterDays(7)));
        assert!("sometimes".parse::<Retention>().is_err());
    }

    #[test]
    fn after_days_counts_from_upload() {
        let day = 86_400;
        assert!(!Retention::AfterDays(90).is_due(0, 89 * day));
        assert!(Retention::AfterDays(90).is_due(0, 90 * day));
        assert!(!Retention::Keep.is_due(0, 1000 * day));
        assert!(Retention::Delete.is_due(0, 0));
    }
}
