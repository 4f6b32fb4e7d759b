//! Content hashing: SHA-1 (the change detector the original script used) and the
//! Glacier SHA-256 tree hash (1 MiB leaves) computed in one read of the file.
//!
//! Every read of file content goes through [`ContentHasher`] users in this module or
//! the engine, and is counted in [`ReadCounters`], so tests and the `--json` summary
//! can prove that an unchanged tree is not read again.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::model::ContentHash;
use crate::model::Fingerprint;
use crate::model::TreeHash;
/// Glacier's tree-hash leaf size.
pub const LEAF_SIZE: usize = 1 << 20;

static FILES_READ: AtomicU64 = AtomicU64::new(0);
static BYTES_READ: AtomicU64 = AtomicU64::new(0);

/// How much file content this process has read so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadCounters {
    pub files_read: u64,
    pub bytes_read: u64,
}

impl ReadCounters {
    pub fn now() -> Self {
        ReadCounters {
            files_read: FILES_READ.load(Ordering::Relaxed),
            bytes_read: BYTES_READ.load(Ordering::Relaxed),
        }
    }

    pub fn since(self, earlier: ReadCounters) -> ReadCounters {
        ReadCounters {
            files_read: self.files_read - earlier.files_read,
            bytes_read: self.bytes_read - earlier.bytes_read,
        }
    }
}

pub(crate) fn count_file_opened() {
    FILES_READ.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn count_bytes_read(n: usize) {
    BYTES_READ.fetch_add(n as u64, Ordering::Relaxed);
}

/// Incremental Glacier tree hash. Keeps one pending node per tree level, so memory is
/// O(log n) whatever the file size. Folding the pending nodes from the right at the
/// end gives exactly Glacier's level-by-level pairing (an odd node is carried up).
#[derive(Clone, Default)]
pub struct TreeHasher {
    leaf: Sha256,
    leaf_filled: usize,
    any_leaf: bool,
    pending: Vec<(u32, TreeHash)>,
}

impl TreeHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (LEAF_SIZE - self.leaf_filled).min(data.len());
            self.leaf.update(&data[..take]);
            self.leaf_filled += take;
            self.any_leaf = true;
            data = &data[take..];
            if self.leaf_filled == LEAF_SIZE {
                self.close_leaf();
            }
        }
    }

    fn close_leaf(&mut self) {
        let leaf: TreeHash = std::mem::take(&mut self.leaf).finalize().into();
        self.leaf_filled = 0;
        self.push_node(0, leaf);
    }

    fn push_node(&mut self, mut level: u32, mut hash: TreeHash) {
        while let Some(&(top_level, top_hash)) = self.pending.last() {
            if top_level != level {
                break;
            }
            self.pending.pop();
            hash = combine(&top_hash, &hash);
            level += 1;
        }
        self.pending.push((level, hash));
    }

    pub fn finish(mut self) -> TreeHash {
        if self.leaf_filled > 0 {
            self.close_leaf();
        }
        if !self.any_leaf {
            // Glacier defines the tree hash of an empty archive as SHA-256 of nothing.
            return Sha256::digest([]).into();
        }
        let mut nodes = self.pending.into_iter().rev().map(|(_, h)| h);
        let mut acc = nodes.next().unwrap_or_else(|| Sha256::digest([]).into());
        for left in nodes {
            acc = combine(&left, &acc);
        }
        acc
    }
}

fn combine(left: &TreeHash, right: &TreeHash) -> TreeHash {
    let mut h = Sha256::new();
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Joins the tree hashes of consecutive ranges of `2^level` leaves each (the last
/// one may be shorter) into the tree hash of the whole, without re-reading the
/// bytes: a range aligned to a power-of-two number of MiB is one node of Glacier's
/// tree, which is why Glacier can return a checksum for such ranges.
pub struct RangeTreeJoiner {
    tree: TreeHasher,
    level: u32,
}

impl RangeTreeJoiner {
    /// `range_size` must be a power-of-two multiple of [`LEAF_SIZE`].
    pub fn new(range_size: u64) -> Self {
        let leaves = (range_size / LEAF_SIZE as u64).max(1);
        debug_assert!(leaves.is_power_of_two());
        RangeTreeJoiner {
            tree: TreeHasher::new(),
            level: leaves.trailing_zeros(),
        }
    }

    /// The tree hash of the next range.
    pub fn push(&mut self, range_tree_hash: TreeHash) {
        self.tree.any_leaf = true;
        self.tree.push_node(self.level, range_tree_hash);
    }

    pub fn finish(self) -> TreeHash {
        self.tree.finish()
    }
}

/// Tree hash of a whole in-memory buffer (stores use it to check what they received).
pub fn tree_hash_of(data: &[u8]) -> TreeHash {
    let mut h = TreeHasher::new();
    h.update(data);
    h.finish()
}

/// SHA-1 and tree hash of one stream of bytes, plus its length.
#[derive(Clone, Default)]
pub struct ContentHasher {
    sha1: Sha1,
    tree: TreeHasher,
    len: u64,
}

impl ContentHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.sha1.update(data);
        self.tree.update(data);
        self.len += data.len() as u64;
    }

    pub fn finish(self) -> ContentHash {
        ContentHash {
            size: self.len,
            sha1: self.sha1.finalize().into(),
            tree_hash: self.tree.finish(),
        }
    }
}

/// Why a file could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    #[error(
        "changed while it was read (size, mtime or ctime moved); it will be tried again next run"
    )]
    ChangedWhileRead,
}

/// Files at least this large are hashed with SHA-1 and the tree hash on two threads.
const PIPELINE_THRESHOLD: u64 = 8 << 20;
const BLOCK: usize = 4 << 20;

/// Opens `path`, checks it is still the file the scan saw, hashes its content and
/// checks again afterwards: a file whose size, mtime or ctime moved while it was
/// read is reported as [`HashError::ChangedWhileRead`], never hashed.
/// `progress` gets the byte count of each block read.
pub fn hash_file(
    path: &Path,
    seen: &Fingerprint,
    progress: &mut dyn FnMut(u64),
) -> Result<ContentHash, HashError> {
    let mut file = File::open(path)?;
    count_file_opened();
    let before = Fingerprint::of(&file.metadata()?);
    if !before.same_content_stamp(seen) {
        return Err(HashError::ChangedWhileRead);
    }
    let hash = if before.size >= PIPELINE_THRESHOLD {
        hash_on_two_threads(&mut file, progress)?
    } else {
        let mut hasher = ContentHasher::new();
        let mut buf = vec![0u8; (before.size as usize).clamp(1, BLOCK)];
        loop {
            let n = read_full(&mut file, &mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            progress(n as u64);
        }
        hasher.finish()
    };
    let after = Fingerprint::of(&file.metadata()?);
    if !after.same_content_stamp(&before) || hash.size != before.size {
        return Err(HashError::ChangedWhileRead);
    }
    Ok(hash)
}

/// Reads until `buf` is full or the file ends; counts what it read.
pub(crate) fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    count_bytes_read(filled);
    Ok(filled)
}

/// SHA-1 on the reading thread, the tree hash on a helper thread, blocks handed over
/// through a small ring of reusable buffers (memory stays at a few blocks).
fn hash_on_two_threads(file: &mut File, progress: &mut dyn FnMut(u64)) -> io::Result<ContentHash> {
    const IN_FLIGHT: usize = 3;
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
    for _ in 0..IN_FLIGHT {
        let _ = empty_tx.send(vec![0u8; BLOCK]);
    }
    std::thread::scope(|scope| {
        let tree_thread = scope.spawn(move || {
            let mut tree = TreeHasher::new();
            while let Ok((buf, n)) = full_rx.recv() {
                tree.update(&buf[..n]);
                if empty_tx.send(buf).is_err() {
                    break;
                }
            }
            tree
        });
        let mut sha1 = Sha1::new();
        let mut len = 0u64;
        let mut outcome = Ok(());
        while let Ok(mut buf) = empty_rx.recv() {
            match read_full(file, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    sha1.update(&buf[..n]);
                    len += n as u64;
                    progress(n as u64);
                    if full_tx.send((buf, n)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        drop(full_tx);
        let tree = tree_thread
            .join()
            .map_err(|_| io::Error::other("tree-hash thread panicked"))?;
        outcome?;
        Ok(ContentHash {
            size: len,
            sha1: sha1.finalize().into(),
            tree_hash: tree.finish(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_range_hashes_equal_the_whole_tree_hash() {
        let data: Vec<u8> = (0..(40u32 << 20) + 3)
            .map(|i| (i * 7 % 253) as u8)
            .collect();
        for range in [1u64 << 20, 4 << 20, 16 << 20] {
            for len in [
                1usize,
                1 << 20,
                (1 << 20) + 1,
                16 << 20,
                (16 << 20) + 1,
                33 << 20,
                data.len(),
            ] {
                let mut joiner = RangeTreeJoiner::new(range);
                for chunk in data[..len].chunks(range as usize) {
                    joiner.push(tree_hash_of(chunk));
                }
                assert_eq!(
                    joiner.finish(),
                    tree_hash_of(&data[..len]),
                    "range {range}, len {len}"
                );
            }
        }
        assert_eq!(RangeTreeJoiner::new(16 << 20).finish(), tree_hash_of(&[]));
    }

    /// Reference: Glacier's algorithm written the obvious way, level by level.
    fn reference_tree_hash(data: &[u8]) -> TreeHash {
        if data.is_empty() {
            return Sha256::digest([]).into();
        }
        let mut level: Vec<TreeHash> = data
            .chunks(LEAF_SIZE)
            .map(|c| Sha256::digest(c).into())
            .collect();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|pair| {
                    if pair.len() == 2 {
                        combine(&pair[0], &pair[1])
                    } else {
                        pair[0]
                    }
                })
                .collect();
        }
        level[0]
    }

    #[test]
    fn tree_hash_matches_reference_for_many_leaf_counts() {
        let data: Vec<u8> = (0..(9 * LEAF_SIZE + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        for len in [
            0,
            1,
            LEAF_SIZE - 1,
            LEAF_SIZE,
            LEAF_SIZE + 1,
            2 * LEAF_SIZE,
            3 * LEAF_SIZE + 7,
            5 * LEAF_SIZE,
            7 * LEAF_SIZE + 1,
            data.len(),
        ] {
            let mut h = TreeHasher::new();
            // Feed in uneven pieces to exercise leaf boundaries.
            for piece in data[..len].chunks(777_777) {
                h.update(piece);
            }
            assert_eq!(
                h.finish(),
                reference_tree_hash(&data[..len]),
                "length {len}"
            );
        }
    }

    #[test]
    fn known_vector_one_mebibyte_of_zeros() {
        // SHA-256 of 1 MiB of zero bytes: a single leaf is its own tree hash.
        let zeros = vec![0u8; LEAF_SIZE];
        assert_eq!(
            tree_hash_of(&zeros),
            <TreeHash>::from(Sha256::digest(&zeros))
        );
        assert_eq!(
            hex::encode(tree_hash_of(&zeros)),
            "30e14955ebf1352266dc2ff8067e68104607e750abb9d3b36582b8af909fcb58"
        );
    }

    #[test]
    fn two_thread_and_one_thread_hashes_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let data: Vec<u8> = (0..(PIPELINE_THRESHOLD as usize + 3 * BLOCK + 99))
            .map(|i| (i * 7 % 256) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let seen = Fingerprint::of(&std::fs::metadata(&path).unwrap());
        let mut total = 0;
        let hash = hash_file(&path, &seen, &mut |n| total += n).unwrap();
        let mut expected = ContentHasher::new();
        expected.update(&data);
        assert_eq!(hash, expected.finish());
        assert_eq!(total, data.len() as u64);
    }

    #[test]
    fn a_file_that_grows_while_read_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing");
        std::fs::write(&path, vec![1u8; 3 * BLOCK]).unwrap();
        let seen = Fingerprint::of(&std::fs::metadata(&path).unwrap());
        let mut appended = false;
        let result = hash_file(&path, &seen, &mut |_| {
            if !appended {
                appended = true;
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                f.write_all(b"more").unwrap();
            }
        });
        assert!(
            matches!(result, Err(HashError::ChangedWhileRead)),
            "{result:?}"
        );
    }
}
