//! The fingerprint cache: each file's hashes as of its size, mtime, ctime and
//! inode, so an unchanged file is not read again (invariant 11); and numbers
//! kept between runs.

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::{Context, Result};
use rusqlite::{OptionalExtension, params};

use super::{LocalState, blob};
use crate::model::{ContentHash, Fingerprint};

/// A cached fingerprint and the content hash it was computed for.
#[derive(Debug, Clone, Copy)]
pub struct CachedHash {
    pub fingerprint: Fingerprint,
    pub hash: ContentHash,
}

/// Column `index` of `row` as N bytes (None when NULL, not a blob, or another length).
fn blob_at<const N: usize>(row: &rusqlite::Row<'_>, index: usize) -> Result<Option<[u8; N]>> {
    Ok(row
        .get_ref(index)?
        .as_blob_or_null()
        .ok()
        .flatten()
        .and_then(|b| b.try_into().ok()))
}

impl LocalState {
    /// A reader of the cache in ascending key order (see [`FingerprintCursor`]),
    /// reading ahead on a thread of its own.
    pub fn fingerprints(self: &Arc<Self>) -> Result<FingerprintCursor> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let state = Arc::clone(self);
        std::thread::Builder::new()
            .name("firn-fingerprints".into())
            .spawn(move || {
                let mut last = None;
                loop {
                    let batch = state.fingerprint_batch(&mut last);
                    let more = batch.as_ref().is_ok_and(|(_, more)| *more);
                    // Stops when the cursor is dropped (the receiver with it).
                    if tx.send(batch.map(|(rows, _)| rows)).is_err() || !more {
                        break;
                    }
                }
            })
            .context(
                "cannot start a thread to read the fingerprint cache (out of memory or threads?)",
            )?;
        Ok(FingerprintCursor {
            rx,
            batch: VecDeque::new(),
            done: false,
        })
    }

    /// The next rows of the cache after `last` (all from the start when None), in
    /// key order, and whether more may follow; moves `last` past them.
    fn fingerprint_batch(
        &self,
        last: &mut Option<String>,
    ) -> Result<(VecDeque<(String, CachedHash)>, bool)> {
        const COLUMNS: &str = "key, size, mtime_ns, ctime_ns, inode, sha1, tree_hash";
        let conn = self.conn();
        let mut stmt = match last {
            None => conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM fingerprint ORDER BY key LIMIT ?1"
            ))?,
            Some(_) => conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM fingerprint WHERE key > ?2 ORDER BY key LIMIT ?1"
            ))?,
        };
        let limit = FINGERPRINT_BATCH as i64;
        let mut rows = match last.as_deref() {
            None => stmt.query(params![limit])?,
            Some(after) => stmt.query(params![limit, after])?,
        };
        let mut batch = VecDeque::with_capacity(FINGERPRINT_BATCH);
        let (mut read, mut last_skipped) = (0, None);
        while let Some(row) = rows.next()? {
            read += 1;
            let key: String = row.get(0)?;
            let size: i64 = row.get(1)?;
            // Read in place: no allocation per row for the two digests.
            let hashes = (blob_at::<20>(row, 5)?, blob_at::<32>(row, 6)?);
            if let (Some(sha1), Some(tree_hash)) = hashes {
                let cached = CachedHash {
                    fingerprint: Fingerprint {
                        size: size as u64,
                        mtime_ns: row.get(2)?,
                        ctime_ns: row.get(3)?,
                        inode: row.get::<_, i64>(4)? as u64,
                    },
                    hash: ContentHash {
                        size: size as u64,
                        sha1,
                        tree_hash,
                    },
                };
                batch.push_back((key, cached));
                last_skipped = None;
            } else {
                // A damaged row: passed over, as if not cached.
                last_skipped = Some(key);
            }
        }
        if read > 0 {
            *last = last_skipped.or_else(|| batch.back().map(|(key, _)| key.clone()));
        }
        Ok((batch, read == FINGERPRINT_BATCH))
    }

    pub fn cached(&self, key: &str) -> Result<Option<CachedHash>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT size, mtime_ns, ctime_ns, inode, sha1, tree_hash FROM fingerprint WHERE key = ?1",
        )?;
        let row = stmt
            .query_row([key], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            })
            .optional()?;
        Ok(
            row.and_then(|(size, mtime_ns, ctime_ns, inode, sha1, tree)| {
                Some(CachedHash {
                    fingerprint: Fingerprint {
                        size: size as u64,
                        mtime_ns,
                        ctime_ns,
                        inode: inode as u64,
                    },
                    hash: ContentHash {
                        size: size as u64,
                        sha1: blob::<20>(sha1)?,
                        tree_hash: blob::<32>(tree)?,
                    },
                })
            }),
        )
    }

    pub fn put_fingerprints(&self, items: &[(String, Fingerprint, ContentHash)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.finish_uploads(&[], items)
    }

    /// A number remembered between runs (e.g. how many entries the last scan saw).
    pub fn number(&self, name: &str) -> Result<Option<i64>> {
        let conn = self.conn();
        Ok(conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [name], |row| {
                row.get(0)
            })
            .optional()?)
    }

    pub fn set_number(&self, name: &str, value: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![name, value],
        )?;
        Ok(())
    }
}

/// Reads the fingerprint cache in ascending key order, a batch of rows at a time,
/// on a thread that reads the next batch while this one is looked through: status
/// walks it beside the tree without holding the whole cache, and without a
/// statement left open between batches (the cache is written meanwhile).
pub struct FingerprintCursor {
    rx: std::sync::mpsc::Receiver<Result<VecDeque<(String, CachedHash)>>>,
    batch: VecDeque<(String, CachedHash)>,
    done: bool,
}

/// Rows per batch: a few hundred KB at most (two in hand, one read ahead).
const FINGERPRINT_BATCH: usize = 2048;

impl FingerprintCursor {
    /// The cached fingerprint and hashes of `key`. Keys must be asked for in
    /// ascending order: the rows before `key` are passed over for good.
    pub fn seek(&mut self, key: &str) -> Result<Option<CachedHash>> {
        loop {
            while let Some((front, _)) = self.batch.front() {
                match front.as_str().cmp(key) {
                    std::cmp::Ordering::Less => {
                        self.batch.pop_front();
                    }
                    std::cmp::Ordering::Equal => {
                        return Ok(self.batch.pop_front().map(|(_, cached)| cached));
                    }
                    std::cmp::Ordering::Greater => return Ok(None),
                }
            }
            if self.done {
                return Ok(None);
            }
            match self.rx.recv() {
                Ok(batch) => self.batch = batch?,
                // The reader ended after the last batch.
                Err(_) => self.done = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize) -> (String, Fingerprint, ContentHash) {
        let fingerprint = Fingerprint {
            size: i as u64,
            mtime_ns: i as i64,
            ctime_ns: i as i64,
            inode: i as u64,
        };
        let hash = ContentHash {
            size: i as u64,
            sha1: [(i % 251) as u8; 20],
            tree_hash: [0; 32],
        };
        (format!("d/{i:06}"), fingerprint, hash)
    }

    #[test]
    fn the_cursor_finds_every_cached_key_across_batches_and_passes_over_damaged_rows() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(LocalState::open(&dir.path().join("state.sqlite")).unwrap());
        let total = FINGERPRINT_BATCH * 2 + 7;
        let rows: Vec<_> = (0..total).filter(|i| i % 3 != 1).map(row).collect();
        state.put_fingerprints(&rows).unwrap();
        // A damaged row on a batch boundary and one inside: as if not cached.
        for i in [FINGERPRINT_BATCH - 1, 5] {
            state
                .conn()
                .execute(
                    "UPDATE fingerprint SET sha1 = x'00' WHERE key = ?1",
                    [row(i).0],
                )
                .unwrap();
        }
        let mut cursor = state.fingerprints().unwrap();
        for i in 0..total + 3 {
            let found = cursor.seek(&row(i).0).unwrap();
            let expected = i < total && i % 3 != 1 && i != 5 && i != FINGERPRINT_BATCH - 1;
            assert_eq!(found.is_some(), expected, "key {i}");
            if let Some(cached) = found {
                assert_eq!(cached.fingerprint, row(i).1);
                assert_eq!(cached.hash.sha1, row(i).2.sha1);
            }
        }
        // Keys skipped over are not found again, and the end stays the end.
        assert!(cursor.seek("e").unwrap().is_none());
    }
}
