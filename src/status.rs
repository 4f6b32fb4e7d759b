//! Status: each local file compared with the catalog, and rolled up per directory.
//!
//! A file whose fingerprint (size, mtime, ctime, inode) matches the local cache is
//! not read. A file that is new, or whose size differs from its archived version, is
//! classified without reading it either. Only a file of unchanged size whose
//! fingerprint moved is hashed, on a pool of one thread per core.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use serde::Serialize;

use crate::catalog::{Catalog, CurrentSummary};
use crate::hash::{self, HashError};
use crate::model::ContentHash;
use crate::model::Status;
use crate::model::{ArchivedSummary, Entry, Fingerprint};
use crate::scan::Filter;
use crate::state::LocalState;

/// Files and bytes in one status class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// Counts per status, for the whole tree or one directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Rollup {
    pub new: Tally,
    pub changed: Tally,
    pub up_to_date: Tally,
    /// Archived only in a store the set no longer uses (pending here).
    pub other_store: Tally,
    pub archived_only: Tally,
    pub ignored: Tally,
    pub unreadable: Tally,
    pub skipped: Tally,
}

impl Rollup {
    pub fn add(&mut self, entry: &Entry) {
        let size = entry.fingerprint.size;
        match entry.status {
            Status::New => self.new.add(size),
            Status::Changed => self.changed.add(size),
            Status::UpToDate => self.up_to_date.add(size),
            Status::OtherStore => self.other_store.add(size),
            Status::ArchivedOnly => self.archived_only.add(entry.archived.map_or(0, |a| a.size)),
            Status::Ignored { .. } => self.ignored.add(size),
            Status::Unreadable(_) => self.unreadable.add(0),
            Status::Skipped(_) => self.skipped.add(0),
            Status::Local => {}
        }
    }

    pub fn pending(&self) -> Tally {
        Tally {
            files: self.new.files + self.changed.files + self.other_store.files,
            bytes: self.new.bytes + self.changed.bytes + self.other_store.bytes,
        }
    }
}

pub struct StatusReport {
    /// Every entry, sorted by key, archived-only ones included.
    pub entries: Vec<Entry>,
    pub totals: Rollup,
}

impl StatusReport {
    /// Roll-ups per directory down to `max_depth` levels (1 = top-level directories).
    pub fn directories(&self, max_depth: usize) -> BTreeMap<String, Rollup> {
        let mut dirs: BTreeMap<String, Rollup> = BTreeMap::new();
        for entry in &self.entries {
            let mut end = 0;
            for (depth, (i, _)) in entry.key.match_indices('/').enumerate() {
                if depth >= max_depth {
                    break;
                }
                end = i;
                dirs.entry(entry.key[..end].to_owned())
                    .or_default()
                    .add(entry);
            }
            let _ = end;
        }
        dirs
    }
}

/// Compares scanned entries with the fingerprint cache and the catalog. Only
/// archives held by `store_target` (the store the set uses now) count; a file
/// archived only elsewhere is [`Status::OtherStore`].
pub async fn compute(
    root: &Path,
    mut entries: Vec<Entry>,
    filter: &Filter,
    state: &LocalState,
    catalog: &dyn Catalog,
    store_target: &str,
) -> Result<StatusReport> {
    attach_cached_hashes(&mut entries, state)?;
    let mut archived_only = Vec::new();
    let mut cursor = 0;
    catalog
        .for_each_current(&mut |summary| {
            attach_summary(
                &mut entries,
                &mut cursor,
                summary,
                filter,
                store_target,
                &mut archived_only,
            )
        })
        .await?;
    let mut work = Vec::new();
    for (index, entry) in entries.iter_mut().enumerate() {
        if entry.status != Status::Local {
            continue;
        }
        match (entry.archived, entry.sha1) {
            (None, known) => {
                entry.status = Status::New;
                if known.is_none() {
                    work.push(Work::Probe(index));
                }
            }
            (Some(archived), known) if archived.size != entry.fingerprint.size => {
                entry.status = Status::Changed;
                if known.is_none() {
                    work.push(Work::Probe(index));
                }
            }
            (Some(archived), Some(sha1)) => {
                entry.status = content_status(sha1, &entry.fingerprint, &archived)
            }
            (Some(_), None) => work.push(Work::Hash(index)),
        }
    }
    let mut cache_rows = Vec::new();
    for (index, outcome) in run_pool(root, &entries, &work) {
        let entry = &mut entries[index];
        match outcome {
            Outcome::Readable => {}
            Outcome::Hashed(hash) => {
                entry.sha1 = Some(hash.sha1);
                if let Some(archived) = &entry.archived {
                    entry.status = content_status(hash.sha1, &entry.fingerprint, archived);
                }
                cache_rows.push((entry.key.clone(), entry.fingerprint, hash));
            }
            Outcome::ChangedWhileRead => entry.status = Status::Changed,
            Outcome::Failed(reason) => entry.status = Status::Unreadable(reason.into()),
        }
    }
    state.put_fingerprints(&cache_rows)?;
    drop(cache_rows);
    entries.extend(archived_only);
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    let mut totals = Rollup::default();
    for entry in &entries {
        totals.add(entry);
    }
    Ok(StatusReport { entries, totals })
}

fn attach_cached_hashes(entries: &mut [Entry], state: &LocalState) -> Result<()> {
    let mut i = 0;
    state.for_each_fingerprint(|key, cached| {
        while i < entries.len() && entries[i].key.as_str() < key {
            i += 1;
        }
        if let Some(entry) = entries.get_mut(i)
            && entry.key == key
            && entry.status == Status::Local
            && entry.fingerprint == cached.fingerprint
        {
            entry.sha1 = Some(cached.hash.sha1);
        }
    })
}

/// Identical content is up to date even when the mtime moved (backup then
/// updates the catalog's mtime instead of uploading).
/// An archive recorded without a SHA-1 (rebuilt from an inventory) is compared by
/// size and mtime, as mt-aws-glacier does.
fn content_status(
    local_sha1: crate::model::Sha1Digest,
    local: &Fingerprint,
    archived: &ArchivedSummary,
) -> Status {
    let unknown_matches = archived.sha1 == crate::model::UNKNOWN_SHA1
        && archived.size == local.size
        && archived.mtime_ns == local.mtime_ns;
    if local_sha1 == archived.sha1 || unknown_matches {
        Status::UpToDate
    } else {
        Status::Changed
    }
}

/// Pairs one catalog summary (they arrive in key order) with its local file, or
/// records it as archived-only.
fn attach_summary(
    entries: &mut [Entry],
    cursor: &mut usize,
    summary: CurrentSummary,
    filter: &Filter,
    store_target: &str,
    archived_only: &mut Vec<Entry>,
) {
    while *cursor < entries.len() && entries[*cursor].key < summary.key {
        *cursor += 1;
    }
    let archived = ArchivedSummary {
        size: summary.size,
        mtime_ns: summary.mtime_ns,
        sha1: summary.sha1,
    };
    // Records written before firn knew targets carry none: they are this store's.
    let here = summary.target.is_empty() || summary.target == store_target;
    match entries.get_mut(*cursor) {
        Some(entry) if entry.key == summary.key && !here => {
            // Nothing to compare with here: the file must go to this store.
            if entry.status == Status::Local {
                entry.status = Status::OtherStore;
            }
        }
        Some(entry) if entry.key == summary.key => entry.archived = Some(archived),
        _ => {
            let status = if is_filtered(filter, &summary.key) {
                Status::Ignored { is_dir: false }
            } else if let Some(reason) = unreadable_ancestor(entries, &summary.key) {
                // It may well still exist: firn just cannot see it.
                Status::Unreadable(reason)
            } else {
                Status::ArchivedOnly
            };
            archived_only.push(Entry {
                key: summary.key,
                raw: summary.raw,
                fingerprint: Fingerprint::default(),
                status,
                sha1: Some(summary.sha1),
                archived: Some(archived),
            });
        }
    }
}

/// The reason a directory above `key` could not be read, if one could not.
fn unreadable_ancestor(entries: &[Entry], key: &str) -> Option<Box<str>> {
    key.match_indices('/').find_map(|(i, _)| {
        let found = entries
            .binary_search_by(|e| e.key.as_str().cmp(&key[..i]))
            .ok()?;
        match &entries[found].status {
            Status::Unreadable(reason) => {
                Some(format!("inside unreadable directory {}: {reason}", &key[..i]).into())
            }
            _ => None,
        }
    })
}

/// An archived key that is excluded by the filters now (itself or a directory above it).
fn is_filtered(filter: &Filter, key: &str) -> bool {
    filter.is_ignored_file(key)
        || key
            .match_indices('/')
            .any(|(i, _)| filter.is_ignored_dir(&key[..i]))
}

enum Work {
    /// Only check that the file can be opened (new files are not read by status).
    Probe(usize),
    Hash(usize),
}

enum Outcome {
    Readable,
    Hashed(ContentHash),
    ChangedWhileRead,
    Failed(String),
}

fn run_pool(root: &Path, entries: &[Entry], work: &[Work]) -> Vec<(usize, Outcome)> {
    if work.is_empty() {
        return Vec::new();
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(work.len());
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(work.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = work.get(n) else { break };
                    let (index, outcome) = match *item {
                        Work::Probe(index) => (index, probe(&entries[index].local_path(root))),
                        Work::Hash(index) => {
                            let entry = &entries[index];
                            let outcome = match hash::hash_file(
                                &entry.local_path(root),
                                &entry.fingerprint,
                                &mut |_| {},
                            ) {
                                Ok(hash) => Outcome::Hashed(hash),
                                Err(HashError::ChangedWhileRead) => Outcome::ChangedWhileRead,
                                Err(HashError::Io(e)) => {
                                    Outcome::Failed(crate::scan::describe_io_error(&e))
                                }
                            };
                            (index, outcome)
                        }
                    };
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((index, outcome));
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn probe(path: &Path) -> Outcome {
    match std::fs::File::open(path) {
        Ok(_) => Outcome::Readable,
        Err(e) => Outcome::Failed(crate::scan::describe_io_error(&e)),
    }
}
