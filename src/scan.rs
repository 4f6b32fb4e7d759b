//! Scan: walk the root and describe every entry by key and metadata, without reading
//! any file content.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use regex::{RegexSet, RegexSetBuilder};
use walkdir::WalkDir;

use crate::model::Entry;
use crate::model::Fingerprint;
use crate::model::SkipReason;
use crate::model::Status;
use crate::pathkey;
/// Include / ignore expressions, matched case-insensitively (Unicode) against the key.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<RegexSet>,
    ignore: Option<RegexSet>,
}

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error(
        "invalid {flag} expression {pattern:?}: {reason}; fix the expression (Rust regex syntax)"
    )]
    Invalid {
        flag: &'static str,
        pattern: String,
        reason: String,
    },
}

impl Filter {
    pub fn new(include: &[String], ignore: &[String]) -> Result<Self, FilterError> {
        Ok(Filter {
            include: build_set(include, "--pattern")?,
            ignore: build_set(ignore, "--ignore-pattern")?,
        })
    }

    pub fn is_ignored_dir(&self, key: &str) -> bool {
        self.ignore.as_ref().is_some_and(|set| set.is_match(key))
    }

    pub fn is_ignored_file(&self, key: &str) -> bool {
        self.is_ignored_dir(key) || self.include.as_ref().is_some_and(|set| !set.is_match(key))
    }
}

fn build_set(patterns: &[String], flag: &'static str) -> Result<Option<RegexSet>, FilterError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    // Compile one by one first so the error names the expression at fault.
    for pattern in patterns {
        if let Err(e) = regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .unicode(true)
            .build()
        {
            let reason = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("invalid")
                .trim()
                .to_string();
            return Err(FilterError::Invalid {
                flag,
                pattern: pattern.clone(),
                reason,
            });
        }
    }
    RegexSetBuilder::new(patterns)
        .case_insensitive(true)
        .unicode(true)
        .build()
        .map(Some)
        .map_err(|e| FilterError::Invalid {
            flag,
            pattern: patterns.join(" "),
            reason: e.to_string(),
        })
}

#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub filter: Filter,
    pub follow_symlinks: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ScanProgress {
    pub entries: u64,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("backup root {0} does not exist; check the path or the set's `root` in the config")]
    MissingRoot(PathBuf),
    #[error("backup root {0} is not a directory; point firn at the directory to back up")]
    NotADirectory(PathBuf),
    #[error("cannot read backup root {path}: {source}")]
    UnreadableRoot {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The entries of one scan, held compactly until status has compared them: one
/// 48-byte record per entry plus its key's bytes in one shared string, where a
/// `Vec<Entry>` costs some 200 bytes per entry (invariant 8). What few entries
/// carry besides (raw name bytes, a status other than [`Status::Local`]) sits in
/// a side list.
#[derive(Debug, Default)]
pub struct Scanned {
    keys: String,
    items: Vec<Item>,
    extras: Vec<Extra>,
}

#[derive(Debug, Clone, Copy)]
struct Item {
    key_at: usize,
    key_len: u32,
    /// Index into `extras`, or [`NO_EXTRA`].
    extra: u32,
    fingerprint: Fingerprint,
}

#[derive(Debug)]
struct Extra {
    raw: Option<Box<[u8]>>,
    status: Status,
}

const NO_EXTRA: u32 = u32::MAX;
static LOCAL: Status = Status::Local;

impl Scanned {
    fn with_capacity(entries: usize) -> Scanned {
        Scanned {
            keys: String::new(),
            items: Vec::with_capacity(entries),
            extras: Vec::new(),
        }
    }

    fn push(&mut self, key: &str, raw: Option<Vec<u8>>, fingerprint: Fingerprint, status: Status) {
        let extra = if raw.is_some() || status != Status::Local {
            self.extras.push(Extra {
                raw: raw.map(Vec::into_boxed_slice),
                status,
            });
            (self.extras.len() - 1) as u32
        } else {
            NO_EXTRA
        };
        self.items.push(Item {
            key_at: self.keys.len(),
            key_len: key.len() as u32,
            extra,
            fingerprint,
        });
        self.keys.push_str(key);
    }

    /// Moves every entry of `other` here (`other` is left empty, its buffers kept).
    fn append(&mut self, other: &mut Scanned) {
        let (key_base, extra_base) = (self.keys.len(), self.extras.len() as u32);
        self.keys.push_str(&other.keys);
        self.items.extend(other.items.iter().map(|item| Item {
            key_at: item.key_at + key_base,
            extra: if item.extra == NO_EXTRA {
                NO_EXTRA
            } else {
                item.extra + extra_base
            },
            ..*item
        }));
        self.extras.append(&mut other.extras);
        other.keys.clear();
        other.items.clear();
    }

    fn key_of(&self, item: &Item) -> &str {
        &self.keys[item.key_at..item.key_at + item.key_len as usize]
    }

    fn sort(&mut self) {
        let keys = &self.keys;
        self.items
            .sort_unstable_by(|a, b| key_in(keys, a).cmp(key_in(keys, b)));
    }

    /// Marks every entry whose key another entry has too (two names that
    /// normalize alike): both are refused rather than merged.
    fn mark_collisions(&mut self) {
        let mut i = 0;
        while i < self.items.len() {
            let mut j = i + 1;
            while j < self.items.len() && self.key(j) == self.key(i) {
                j += 1;
            }
            if j - i > 1 {
                for n in i..j {
                    let raw = self.raw(n).map(Box::from);
                    self.extras.push(Extra {
                        raw,
                        status: Status::Skipped(SkipReason::NameCollision),
                    });
                    let item = &mut self.items[n];
                    item.extra = (self.extras.len() - 1) as u32;
                    item.fingerprint = Fingerprint::default();
                }
            }
            i = j;
        }
    }

    fn shrink_to_fit(&mut self) {
        self.keys.shrink_to_fit();
        self.items.shrink_to_fit();
        self.extras.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn key(&self, index: usize) -> &str {
        self.key_of(&self.items[index])
    }

    pub fn fingerprint(&self, index: usize) -> Fingerprint {
        self.items[index].fingerprint
    }

    pub fn status(&self, index: usize) -> &Status {
        self.extra(index).map_or(&LOCAL, |e| &e.status)
    }

    pub fn raw(&self, index: usize) -> Option<&[u8]> {
        self.extra(index).and_then(|e| e.raw.as_deref())
    }

    fn extra(&self, index: usize) -> Option<&Extra> {
        let extra = self.items[index].extra;
        (extra != NO_EXTRA).then(|| &self.extras[extra as usize])
    }

    /// The index of an entry of key `key`, if any.
    pub fn find(&self, key: &str) -> Option<usize> {
        self.items
            .binary_search_by(|item| self.key_of(item).cmp(key))
            .ok()
    }

    /// Entry `index` as an [`Entry`] (scan's view: nothing compared yet).
    pub fn entry(&self, index: usize) -> Entry {
        Entry::new(
            self.key(index).to_owned(),
            self.raw(index).map(<[u8]>::to_vec),
            self.fingerprint(index),
            self.status(index).clone(),
        )
    }
}

fn key_in<'k>(keys: &'k str, item: &Item) -> &'k str {
    &keys[item.key_at..item.key_at + item.key_len as usize]
}

/// Walks `root` and returns its entries sorted by key, name collisions marked.
pub fn scan(
    root: &Path,
    options: &ScanOptions,
    on_progress: &mut dyn FnMut(ScanProgress),
) -> Result<Scanned, ScanError> {
    scan_with_hint(root, options, 0, on_progress)
}

/// Like [`scan`], with the number of entries expected (the last scan's), so the
/// entry list is allocated once instead of grown by doubling.
pub fn scan_with_hint(
    root: &Path,
    options: &ScanOptions,
    capacity_hint: usize,
    on_progress: &mut dyn FnMut(ScanProgress),
) -> Result<Scanned, ScanError> {
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ScanError::MissingRoot(root.to_path_buf()));
        }
        Err(e) => {
            return Err(ScanError::UnreadableRoot {
                path: root.to_path_buf(),
                source: e,
            });
        }
        Ok(meta) if !meta.is_dir() => return Err(ScanError::NotADirectory(root.to_path_buf())),
        Ok(_) => {}
    }
    let mut entries = if options.follow_symlinks {
        // Loop detection needs walkdir's view of every ancestor: one thread.
        walk_sequential(root, options, capacity_hint, on_progress)?
    } else {
        walk_parallel(root, options, capacity_hint, on_progress)?
    };
    entries.sort();
    entries.mark_collisions();
    entries.shrink_to_fit();
    Ok(entries)
}

fn walk_sequential(
    root: &Path,
    options: &ScanOptions,
    capacity_hint: usize,
    on_progress: &mut dyn FnMut(ScanProgress),
) -> Result<Scanned, ScanError> {
    let mut entries = Scanned::with_capacity(capacity_hint);
    let mut progress = ScanProgress::default();
    let mut walker = WalkDir::new(root)
        .follow_links(options.follow_symlinks)
        .min_depth(1)
        .into_iter();
    while let Some(next) = walker.next() {
        progress.entries += 1;
        if progress.entries % 4096 == 0 {
            on_progress(progress);
        }
        let entry = match next {
            Ok(entry) => entry,
            Err(err) => {
                if err.depth() == 0 {
                    let source = err
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("walk failed"));
                    return Err(ScanError::UnreadableRoot {
                        path: root.to_path_buf(),
                        source,
                    });
                }
                let Some(path) = err.path().map(Path::to_path_buf) else {
                    continue;
                };
                let (key, raw) = key_of(root, &path);
                let status = if err.loop_ancestor().is_some() {
                    Status::Skipped(SkipReason::SymlinkLoop)
                } else {
                    let reason = err
                        .io_error()
                        .map(describe_io_error)
                        .unwrap_or_else(|| err.to_string());
                    Status::Unreadable(reason.into())
                };
                entries.push(&key, raw, Fingerprint::default(), status);
                continue;
            }
        };
        let (key, raw) = key_of(root, entry.path());
        let file_type = entry.file_type();
        let mut fingerprint = Fingerprint::default();
        let status = if file_type.is_dir() {
            if options.filter.is_ignored_dir(&key) {
                walker.skip_current_dir();
                Status::Ignored { is_dir: true }
            } else {
                continue;
            }
        } else {
            let metadata = || {
                entry.metadata().map_err(|err| {
                    err.io_error()
                        .map(describe_io_error)
                        .unwrap_or_else(|| err.to_string())
                })
            };
            let (status, found) = classify(file_type, metadata, &key, &options.filter);
            if status == Status::Local {
                progress.files += 1;
                progress.bytes += found.size;
            }
            fingerprint = found;
            status
        };
        entries.push(&key, raw, fingerprint, status);
    }
    on_progress(progress);
    Ok(entries)
}

/// Walks without following symlinks on every core: directories are shared out
/// through a queue, each listed by walkdir one level deep, and entries are handed
/// to one list (allocated once from the hint) in batches.
fn walk_parallel(
    root: &Path,
    options: &ScanOptions,
    capacity_hint: usize,
    on_progress: &mut dyn FnMut(ScanProgress),
) -> Result<Scanned, ScanError> {
    struct Queue {
        /// Directory on disk, its key, whether any name on its path differs from the key.
        dirs: Vec<(PathBuf, String, bool)>,
        busy: usize,
        failed: Option<ScanError>,
    }
    let queue = Mutex::new(Queue {
        dirs: vec![(root.to_path_buf(), String::new(), false)],
        busy: 0,
        failed: None,
    });
    let wake = Condvar::new();
    let all = Mutex::new(Scanned::with_capacity(capacity_hint));
    let (entries_seen, files_seen, bytes_seen) =
        (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);

    let work = |report: &mut dyn FnMut(ScanProgress)| {
        let mut batch = Scanned::with_capacity(BATCH);
        loop {
            let job = {
                let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if q.failed.is_some() {
                        break None;
                    }
                    if let Some(job) = q.dirs.pop() {
                        q.busy += 1;
                        break Some(job);
                    }
                    if q.busy == 0 {
                        break None;
                    }
                    q = wake.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            let Some((dir, dir_key, dir_differs)) = job else {
                break;
            };
            let mut subdirs = Vec::new();
            let before = batch.len();
            let outcome = list_dir(
                &dir,
                &dir_key,
                dir_differs,
                root,
                options,
                &mut batch,
                &mut subdirs,
                &files_seen,
                &bytes_seen,
            );
            let listed = (batch.len() - before) as u64;
            let total = entries_seen.fetch_add(listed, Ordering::Relaxed) + listed;
            if batch.len() >= BATCH {
                all.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .append(&mut batch);
            }
            let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
            q.busy -= 1;
            match outcome {
                Err(e) => q.failed = Some(e),
                Ok(()) => q.dirs.extend(subdirs),
            }
            drop(q);
            wake.notify_all();
            report(ScanProgress {
                entries: total,
                files: files_seen.load(Ordering::Relaxed),
                bytes: bytes_seen.load(Ordering::Relaxed),
            });
        }
        all.lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&mut batch);
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|| work(&mut |_| {}));
        }
        let mut last = 0;
        work(&mut |p: ScanProgress| {
            if p.entries >= last + 4096 {
                last = p.entries;
                on_progress(p);
            }
        });
    });
    if let Some(e) = queue.into_inner().unwrap_or_else(|p| p.into_inner()).failed {
        return Err(e);
    }
    on_progress(ScanProgress {
        entries: entries_seen.load(Ordering::Relaxed),
        files: files_seen.load(Ordering::Relaxed),
        bytes: bytes_seen.load(Ordering::Relaxed),
    });
    Ok(all.into_inner().unwrap_or_else(|p| p.into_inner()))
}

const BATCH: usize = 512;

/// Lists one directory, one level: entries go to `out`, subdirectories to
/// `subdirs`. Only the root failing to open is an error; anything else is an
/// entry that says what went wrong. Each entry is looked at relative to the open
/// directory (statx on its name, not its whole path), as `find` does.
#[allow(clippy::too_many_arguments)]
fn list_dir(
    dir: &Path,
    dir_key: &str,
    dir_differs: bool,
    root: &Path,
    options: &ScanOptions,
    out: &mut Scanned,
    subdirs: &mut Vec<(PathBuf, String, bool)>,
    files_seen: &AtomicU64,
    bytes_seen: &AtomicU64,
) -> Result<(), ScanError> {
    let unreadable = |out: &mut Scanned, err: std::io::Error| {
        if dir_key.is_empty() {
            return Err(ScanError::UnreadableRoot {
                path: root.to_path_buf(),
                source: err,
            });
        }
        let raw = dir_differs.then(|| relative_bytes(root, dir));
        out.push(
            dir_key,
            raw,
            Fingerprint::default(),
            Status::Unreadable(describe_io_error(&err).into()),
        );
        Ok(())
    };
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(err) => return unreadable(out, err),
    };
    for next in listing {
        let entry = match next {
            Ok(entry) => entry,
            Err(err) => return unreadable(out, err),
        };
        let file_name = entry.file_name();
        let (name, name_differs) = pathkey::name_key(&file_name);
        let key = pathkey::join(dir_key, &name);
        let differs = dir_differs || name_differs;
        let raw = || differs.then(|| relative_bytes(root, &entry.path()));
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(err) => {
                let status = Status::Unreadable(describe_io_error(&err).into());
                out.push(&key, raw(), Fingerprint::default(), status);
                continue;
            }
        };
        let mut fingerprint = Fingerprint::default();
        let status = if file_type.is_dir() {
            if options.filter.is_ignored_dir(&key) {
                Status::Ignored { is_dir: true }
            } else {
                subdirs.push((entry.path(), key, differs));
                continue;
            }
        } else {
            let metadata = || entry.metadata().map_err(|e| describe_io_error(&e));
            let (status, found) = classify(file_type, metadata, &key, &options.filter);
            if status == Status::Local {
                files_seen.fetch_add(1, Ordering::Relaxed);
                bytes_seen.fetch_add(found.size, Ordering::Relaxed);
            }
            fingerprint = found;
            status
        };
        out.push(&key, raw(), fingerprint, status);
    }
    Ok(())
}

/// What a non-directory entry is: a file to compare (with its fingerprint), an
/// ignored file, or something skipped or unreadable. `metadata` is its own (a
/// symlink's, never its target's), or why it cannot be had.
fn classify(
    file_type: std::fs::FileType,
    metadata: impl FnOnce() -> Result<std::fs::Metadata, String>,
    key: &str,
    filter: &Filter,
) -> (Status, Fingerprint) {
    let skipped = if file_type.is_symlink() {
        Some(SkipReason::Symlink)
    } else if file_type.is_fifo() {
        Some(SkipReason::Fifo)
    } else if file_type.is_socket() {
        Some(SkipReason::Socket)
    } else if file_type.is_block_device() || file_type.is_char_device() {
        Some(SkipReason::Device)
    } else {
        None
    };
    if let Some(reason) = skipped {
        return (Status::Skipped(reason), Fingerprint::default());
    }
    match metadata() {
        Ok(meta) if filter.is_ignored_file(key) => {
            (Status::Ignored { is_dir: false }, Fingerprint::of(&meta))
        }
        Ok(meta) => (Status::Local, Fingerprint::of(&meta)),
        Err(reason) => (Status::Unreadable(reason.into()), Fingerprint::default()),
    }
}

fn relative_bytes(root: &Path, path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.strip_prefix(root)
        .unwrap_or(path)
        .as_os_str()
        .as_bytes()
        .to_vec()
}

fn key_of(root: &Path, path: &Path) -> (String, Option<Vec<u8>>) {
    let relative = path.strip_prefix(root).unwrap_or(path);
    pathkey::relative_key(relative)
}

pub fn describe_io_error(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (check the file's owner and mode)".to_string()
        }
        _ => err.to_string(),
    }
}
