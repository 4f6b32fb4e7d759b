//! Status: each local file compared with the catalog, and rolled up per directory.
//!
//! A file whose fingerprint (size, mtime, ctime, inode) matches the local cache is
//! not read. A file that is new, or whose size differs from its archived version, is
//! classified without reading it either. Only a file of unchanged size whose
//! fingerprint moved is hashed, on a pool of one thread per core.
//!
//! The scan (compact: one small record per entry), the cache and the catalog are
//! walked side by side in key order, and each entry is handed on as soon as it is
//! settled: nothing else is held per file (invariant 8), so a no-change status or
//! backup of 200,000 files fits in some 30 MB.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde::Serialize;

use crate::catalog::{Catalog, CurrentSummary};
use crate::hash::{self, HashError};
use crate::model::ContentHash;
use crate::model::Status;
use crate::model::{ArchivedSummary, Entry, Fingerprint};
use crate::scan::{Filter, ScanStream};
use crate::state::{FingerprintCursor, LocalState};

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
    /// Files whose current version is in the store the set uses (the whole
    /// tree's totals only, counted from the catalog: 0 per directory).
    pub archived_here: Tally,
    /// Files whose current version is only in another store: what a migration
    /// has still to copy (whole tree only).
    pub archived_elsewhere: Tally,
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

/// Compares scanned entries with the fingerprint cache and the catalog, and hands
/// each entry, with its status settled, to `visit` in key order (archived-only
/// ones included); returns the totals. Only archives held by `store_target` (the
/// store the set uses now) count; a file archived only elsewhere is
/// [`Status::OtherStore`].
///
/// The scan, the cache and the catalog are walked side by side in key order, and
/// nothing is kept per entry: a caller that wants the whole list keeps it. Only
/// entries waiting to be opened or hashed are held, a bounded window at a time.
pub async fn compute(
    root: &Path,
    scan: &mut ScanStream<'_>,
    filter: &Filter,
    state: &Arc<LocalState>,
    catalog: &dyn Catalog,
    store_target: &str,
    visit: &mut (dyn FnMut(&Entry) + Send),
) -> Result<Rollup> {
    let mut merge = Merge {
        root,
        scan,
        unreadable: Vec::new(),
        cache: state.fingerprints()?,
        state,
        filter,
        store_target,
        catalog: catalog.describe(),
        last_summary: String::new(),
        window: Vec::new(),
        work: Vec::new(),
        totals: Rollup::default(),
        visit,
        failed: None,
    };
    catalog
        .for_each_current(&mut |summary| merge.summary(summary))
        .await?;
    if merge.failed.is_none() {
        merge.settle_before(None);
    }
    if merge.failed.is_none() {
        merge.flush();
    }
    if merge.failed.is_none()
        && let Some(failure) = merge.scan.failure()
    {
        merge.failed = Some(anyhow::anyhow!(
            "the scan of {} stopped before its end ({failure}); nothing was compared past that point: run again",
            root.display()
        ));
    }
    match merge.failed {
        Some(e) => Err(e),
        None => Ok(merge.totals),
    }
}

/// Entries waiting for work are held in order until this many are, then the
/// work is done on the pool and the window handed on.
const WINDOW: usize = 4096;

/// The walk of [`compute`]: the scan as it goes, the cache cursor, and
/// the entries settled but not yet handed on.
struct Merge<'a, 'b> {
    root: &'a Path,
    scan: &'a mut ScanStream<'b>,
    /// Directories the scan could not read, that keys still to come may lie
    /// under (what an archived-only file there is, as far as firn can tell).
    unreadable: Vec<(String, Box<str>)>,
    cache: FingerprintCursor,
    state: &'a LocalState,
    filter: &'a Filter,
    store_target: &'a str,
    /// The catalog, for messages.
    catalog: String,
    /// The key of the last catalog summary (they must come in ascending order).
    last_summary: String,
    /// Settled entries held back (in order) because one before them waits for work.
    window: Vec<Entry>,
    /// What the entries of the window wait for (by index in the window).
    work: Vec<(usize, Work)>,
    totals: Rollup,
    visit: &'a mut (dyn FnMut(&Entry) + Send),
    failed: Option<anyhow::Error>,
}

impl Merge<'_, '_> {
    /// One catalog summary (they arrive in key order): settles the scanned
    /// entries before it, then its own file, or an archived-only entry.
    fn summary(&mut self, summary: CurrentSummary) {
        if self.failed.is_some() {
            return;
        }
        if !self.last_summary.is_empty() && summary.key <= self.last_summary {
            // Pairing files with records relies on this order: refuse rather than
            // call a file new or archived-only by mistake.
            self.failed = Some(anyhow::anyhow!(
                "{} listed {:?} after {:?}, out of key order, so firn cannot compare the tree with it; report this as a bug (with the catalog's records of both keys)",
                self.catalog,
                summary.key,
                self.last_summary
            ));
            return;
        }
        self.last_summary.clear();
        self.last_summary.push_str(&summary.key);
        self.settle_before(Some(&summary.key));
        if self.failed.is_some() {
            return;
        }
        if self.scan.peek().is_some_and(|next| next.key == summary.key)
            && let Some(entry) = self.scan.next_entry()
        {
            self.settle_scanned(entry, Some(&summary));
        } else {
            self.archived_only(summary);
        }
    }

    /// Settles the scanned entries with no catalog summary, up to `key` (all of
    /// them when None).
    fn settle_before(&mut self, key: Option<&str>) {
        while self.failed.is_none()
            && self
                .scan
                .peek()
                .is_some_and(|next| key.is_none_or(|key| next.key.as_str() < key))
        {
            let Some(entry) = self.scan.next_entry() else {
                break;
            };
            self.settle_scanned(entry, None);
        }
    }

    fn settle_scanned(&mut self, mut entry: Entry, summary: Option<&CurrentSummary>) {
        if let Status::Unreadable(reason) = &entry.status {
            self.unreadable.push((entry.key.clone(), reason.clone()));
        }
        if entry.status == Status::Local {
            match self.cache.seek(&entry.key) {
                Ok(Some(cached)) if cached.fingerprint == entry.fingerprint => {
                    entry.sha1 = Some(cached.hash.sha1);
                }
                Ok(_) => {}
                Err(e) => {
                    self.failed = Some(e.context(format!(
                        "cannot read the fingerprint cache in {} (check that the disk is healthy and the file readable, then run again)",
                        self.state.dir().join("state.sqlite").display()
                    )));
                    return;
                }
            }
        }
        if let Some(summary) = summary {
            // Records written before firn knew targets carry none: they are this store's.
            let here = summary.target.is_empty() || summary.target == self.store_target;
            self.count_placement(here, summary.size);
            if !here {
                // Nothing to compare with here: the file must go to this store.
                if entry.status == Status::Local {
                    entry.status = Status::OtherStore;
                }
            } else {
                entry.archived = Some(archived_of(summary));
            }
        }
        let work = classify(&mut entry);
        self.settled(entry, work);
    }

    /// Where a current version is, for the totals (`archived_here`/`_elsewhere`).
    fn count_placement(&mut self, here: bool, size: u64) {
        if here {
            self.totals.archived_here.add(size);
        } else {
            self.totals.archived_elsewhere.add(size);
        }
    }

    /// The reason a directory above `key` could not be read, if one could not.
    /// Keys come in order, so a directory whose contents (`dir/…`) all sort
    /// before `key` is forgotten: no key to come can be under it.
    fn unreadable_ancestor(&mut self, key: &str) -> Option<Box<str>> {
        if self.unreadable.len() > 64 {
            self.unreadable.retain(|(dir, _)| {
                let mut past_contents = dir.as_bytes().to_vec();
                past_contents.push(b'/' + 1);
                key.as_bytes() < past_contents.as_slice()
            });
        }
        self.unreadable.iter().find_map(|(dir, reason)| {
            let under = key.len() > dir.len()
                && key.starts_with(dir.as_str())
                && key.as_bytes()[dir.len()] == b'/';
            under.then(|| format!("inside unreadable directory {dir}: {reason}").into())
        })
    }

    fn archived_only(&mut self, summary: CurrentSummary) {
        let here = summary.target.is_empty() || summary.target == self.store_target;
        self.count_placement(here, summary.size);
        let status = if is_filtered(self.filter, &summary.key) {
            Status::Ignored { is_dir: false }
        } else if let Some(reason) = self.unreadable_ancestor(&summary.key) {
            // It may well still exist: firn just cannot see it.
            Status::Unreadable(reason)
        } else {
            Status::ArchivedOnly
        };
        let archived = archived_of(&summary);
        let entry = Entry {
            key: summary.key,
            raw: summary.raw,
            fingerprint: Fingerprint::default(),
            status,
            sha1: Some(summary.sha1),
            archived: Some(archived),
        };
        self.settled(entry, None);
    }

    /// Hands `entry` on, or holds it while it (or one before it) waits for work.
    fn settled(&mut self, entry: Entry, work: Option<Work>) {
        if work.is_none() && self.window.is_empty() {
            self.totals.add(&entry);
            (self.visit)(&entry);
            return;
        }
        if let Some(work) = work {
            self.work.push((self.window.len(), work));
        }
        self.window.push(entry);
        if self.window.len() >= WINDOW {
            self.flush();
        }
    }

    /// Does the window's work on the pool, records the hashes in the cache, and
    /// hands the window on in order.
    fn flush(&mut self) {
        let mut cache_rows = Vec::new();
        for (index, outcome) in run_pool(self.root, &self.window, &self.work) {
            let entry = &mut self.window[index];
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
        self.work.clear();
        if let Err(e) = self.state.put_fingerprints(&cache_rows)
            && self.failed.is_none()
        {
            self.failed = Some(e);
        }
        for entry in self.window.drain(..) {
            self.totals.add(&entry);
            (self.visit)(&entry);
        }
    }
}

fn archived_of(summary: &CurrentSummary) -> ArchivedSummary {
    ArchivedSummary {
        size: summary.size,
        mtime_ns: summary.mtime_ns,
        sha1: summary.sha1,
    }
}

/// Settles a local file's status from what is known of it without reading it,
/// or says what must be done first: open it (new files are not read by status),
/// or hash it (same size as its archive, fingerprint not in the cache).
fn classify(entry: &mut Entry) -> Option<Work> {
    if entry.status != Status::Local {
        return None;
    }
    match (entry.archived, entry.sha1) {
        (None, known) => {
            entry.status = Status::New;
            known.is_none().then_some(Work::Probe)
        }
        (Some(archived), known) if archived.size != entry.fingerprint.size => {
            entry.status = Status::Changed;
            known.is_none().then_some(Work::Probe)
        }
        (Some(archived), Some(sha1)) => {
            entry.status = content_status(sha1, &entry.fingerprint, &archived);
            None
        }
        (Some(_), None) => Some(Work::Hash),
    }
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

/// An archived key that is excluded by the filters now (itself or a directory above it).
fn is_filtered(filter: &Filter, key: &str) -> bool {
    filter.is_ignored_file(key)
        || key
            .match_indices('/')
            .any(|(i, _)| filter.is_ignored_dir(&key[..i]))
}

enum Work {
    /// Only check that the file can be opened (new files are not read by status).
    Probe,
    Hash,
}

enum Outcome {
    Readable,
    Hashed(ContentHash),
    ChangedWhileRead,
    Failed(String),
}

fn run_pool(root: &Path, entries: &[Entry], work: &[(usize, Work)]) -> Vec<(usize, Outcome)> {
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
                        (index, Work::Probe) => (index, probe(&entries[index].local_path(root))),
                        (index, Work::Hash) => {
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
