//! Scan: walk the root and describe every entry by key and metadata, without reading
//! any file content.

use std::collections::VecDeque;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};

use regex::{RegexSet, RegexSetBuilder};

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
    #[error("cannot start the scan thread: {0}; free some memory or processes and run again")]
    Thread(std::io::Error),
}

/// The scan as it goes: every entry of the tree in key order, each handed on as
/// soon as the walk has it, so nothing is held per file for the whole run
/// (invariant 8: a first backup of 2,000,000 files holds a few directories'
/// listings, not 2,000,000 entries).
///
/// The walk runs on a thread of its own, a directory at a time, and hands its
/// entries over in batches; the consumer (status, comparing them with the
/// catalog as they come) works in parallel with it.
///
/// Key order is the bytes of the keys: a directory's entries come in the order
/// of their names, except that a directory's contents (`a/…`) sort as if its
/// name ended in `/`, after a sibling `a-b` or `a.txt` and before `a0`.
/// Entries whose names normalize to the same key (NFC and NFD spellings of one
/// name) are all refused as [`SkipReason::NameCollision`] rather than merged;
/// directories whose names collide are walked as one.
pub struct ScanStream<'p> {
    batches: Receiver<Batch>,
    batch: VecDeque<Entry>,
    walker: Option<std::thread::JoinHandle<()>>,
    /// The walk said it was done (a closed channel without it is a failed walk).
    finished: bool,
    failed: Option<String>,
    handed: u64,
    on_progress: &'p mut (dyn FnMut(ScanProgress) + Send),
}

/// What the walk thread hands over: entries in key order, and its tallies so far.
struct Batch {
    entries: Vec<Entry>,
    progress: ScanProgress,
    last: bool,
}

/// Entries handed over at once (small enough that the walk never runs far ahead).
const BATCH: usize = 1024;
/// Batches the walk may have waiting before it waits for the consumer.
const BATCHES_AHEAD: usize = 8;

impl<'p> ScanStream<'p> {
    /// Starts walking `root`; fails at once when the root itself cannot be read.
    pub fn start(
        root: &Path,
        options: &ScanOptions,
        on_progress: &'p mut (dyn FnMut(ScanProgress) + Send),
    ) -> Result<ScanStream<'p>, ScanError> {
        let meta = match std::fs::metadata(root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ScanError::MissingRoot(root.to_path_buf()));
            }
            Err(e) => {
                return Err(ScanError::UnreadableRoot {
                    path: root.to_path_buf(),
                    source: e,
                });
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(ScanError::NotADirectory(root.to_path_buf()));
            }
            Ok(meta) => meta,
        };
        let (sender, batches) = std::sync::mpsc::sync_channel(BATCHES_AHEAD);
        let walker = Walker {
            root: root.to_path_buf(),
            options: options.clone(),
            out: Vec::with_capacity(BATCH),
            sender,
            progress: ScanProgress::default(),
        };
        let top = DirGroup {
            key: String::new(),
            paths: vec![DirPath {
                path: root.to_path_buf(),
                differs: false,
                id: (meta.dev(), meta.ino()),
            }],
        };
        // The root's own listing is read here, so an unreadable root is an error
        // rather than an entry.
        let listing = walker.list(&top, &[]);
        if let Some(source) = listing.failures.into_iter().next().map(|(_, e)| e) {
            return Err(ScanError::UnreadableRoot {
                path: root.to_path_buf(),
                source,
            });
        }
        let ids = vec![top.paths[0].id];
        let walker = std::thread::Builder::new()
            .name("firn-scan".into())
            .spawn(move || walker.walk(listing.children, ids))
            .map_err(ScanError::Thread)?;
        Ok(ScanStream {
            batches,
            batch: VecDeque::new(),
            walker: Some(walker),
            finished: false,
            failed: None,
            handed: 0,
            on_progress,
        })
    }

    /// The next entry, without taking it.
    pub fn peek(&mut self) -> Option<&Entry> {
        self.refill();
        self.batch.front()
    }

    /// Takes the next entry.
    pub fn next_entry(&mut self) -> Option<Entry> {
        self.refill();
        let entry = self.batch.pop_front()?;
        self.handed += 1;
        Some(entry)
    }

    /// Entries taken so far.
    pub fn handed(&self) -> u64 {
        self.handed
    }

    /// Why the walk stopped before the end of the tree, if it did: then the
    /// entries handed on are not the whole tree.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    fn refill(&mut self) {
        while self.batch.is_empty() && !self.finished && self.failed.is_none() {
            match self.batches.recv() {
                Ok(batch) => {
                    (self.on_progress)(batch.progress);
                    self.batch.extend(batch.entries);
                    self.finished = batch.last;
                }
                Err(_) => {
                    let panic = self.walker.take().map(|walker| walker.join().is_err());
                    self.failed = Some(if panic == Some(true) {
                        "the scan thread panicked".into()
                    } else {
                        "the scan thread stopped early".into()
                    });
                }
            }
        }
    }
}

impl Drop for ScanStream<'_> {
    fn drop(&mut self) {
        // Closing the channel stops a walk still under way at its next batch.
        let (_, closed) = std::sync::mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.batches, closed));
        if let Some(walker) = self.walker.take() {
            let _ = walker.join();
        }
    }
}

/// Directories of one key: usually one, two or more when their names normalize
/// alike (they are walked as one; their entries of equal keys collide).
struct DirGroup {
    key: String,
    paths: Vec<DirPath>,
}

struct DirPath {
    path: PathBuf,
    /// Some name on the path differs from its key (entries below carry raw bytes).
    differs: bool,
    /// Device and inode, to catch a symlink that leads back up the tree.
    id: (u64, u64),
}

/// One child of a directory as listed: an entry, or a directory to walk.
enum Child {
    Entry(Entry),
    Dir(DirGroup),
}

impl Child {
    fn key(&self) -> &str {
        match self {
            Child::Entry(entry) => &entry.key,
            Child::Dir(group) => &group.key,
        }
    }
}

/// A directory group's children, sorted by key and collisions marked, and
/// the entries of the directories that could not be read.
struct Listing {
    children: Vec<Child>,
    failures: Vec<(Entry, std::io::Error)>,
}

/// A directory listed and waiting for its turn (its key followed by `/`).
struct Pending {
    key: String,
    children: Vec<Child>,
    ids: Vec<(u64, u64)>,
}

/// One directory being handed on: its children left, and the directories
/// among them listed already but waiting for their turn (a stack: the one on
/// top comes first).
struct Frame {
    children: std::iter::Peekable<std::vec::IntoIter<Child>>,
    pending: Vec<Pending>,
    ids: Vec<(u64, u64)>,
}

impl Frame {
    fn new(children: Vec<Child>, ids: Vec<(u64, u64)>) -> Frame {
        Frame {
            children: children.into_iter().peekable(),
            pending: Vec::new(),
            ids,
        }
    }
}

struct Walker {
    root: PathBuf,
    options: ScanOptions,
    out: Vec<Entry>,
    sender: SyncSender<Batch>,
    progress: ScanProgress,
}

/// The consumer went away: the walk stops.
struct Stopped;

impl Walker {
    fn walk(mut self, top: Vec<Child>, ids: Vec<(u64, u64)>) {
        if self.walk_from(top, ids).is_ok() {
            let batch = Batch {
                entries: std::mem::take(&mut self.out),
                progress: self.progress,
                last: true,
            };
            let _ = self.sender.send(batch);
        }
    }

    /// Depth first, each directory's children in key order. A directory is
    /// listed when its name comes up, so one that cannot be read is an entry in
    /// its name's place; its children are handed on once the siblings that sort
    /// between its name and its name + `/` (`a-b`, `a.txt` after a directory
    /// `a`) have been.
    fn walk_from(&mut self, top: Vec<Child>, ids: Vec<(u64, u64)>) -> Result<(), Stopped> {
        let mut stack = vec![Frame::new(top, ids)];
        while let Some(frame) = stack.last_mut() {
            let next_key = frame.children.peek().map(Child::key);
            if let Some(pending) = frame.pending.last()
                && next_key.is_none_or(|next| !comes_before_contents(next, &pending.key))
            {
                let Some(pending) = frame.pending.pop() else {
                    continue;
                };
                stack.push(Frame::new(pending.children, pending.ids));
                continue;
            }
            let Some(child) = frame.children.next() else {
                stack.pop();
                continue;
            };
            match child {
                Child::Entry(entry) => self.emit(entry)?,
                Child::Dir(group) => {
                    let ancestors: Vec<(u64, u64)> = if self.options.follow_symlinks {
                        stack.iter().flat_map(|f| f.ids.iter().copied()).collect()
                    } else {
                        Vec::new()
                    };
                    let listing = self.list(&group, &ancestors);
                    for (entry, _) in listing.failures {
                        self.emit(entry)?;
                    }
                    if !listing.children.is_empty()
                        && let Some(frame) = stack.last_mut()
                    {
                        frame.pending.push(Pending {
                            key: group.key,
                            ids: group.paths.iter().map(|p| p.id).collect(),
                            children: listing.children,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn emit(&mut self, entry: Entry) -> Result<(), Stopped> {
        self.progress.entries += 1;
        if entry.status == Status::Local {
            self.progress.files += 1;
            self.progress.bytes += entry.fingerprint.size;
        }
        self.out.push(entry);
        if self.out.len() >= BATCH {
            let batch = Batch {
                entries: std::mem::replace(&mut self.out, Vec::with_capacity(BATCH)),
                progress: self.progress,
                last: false,
            };
            self.sender.send(batch).map_err(|_| Stopped)?;
        }
        Ok(())
    }

    /// Lists every directory of `group` one level deep. Anything wrong with an
    /// entry is that entry's status; a directory that cannot be read is a
    /// failure (an entry of its own, in its name's place). Each entry is looked
    /// at relative to the open directory (statx on its name, not its whole
    /// path), as `find` does.
    fn list(&self, group: &DirGroup, ancestors: &[(u64, u64)]) -> Listing {
        let mut children = Vec::new();
        let mut failures = Vec::new();
        for dir in &group.paths {
            let failed = |err: std::io::Error| {
                let raw = dir.differs.then(|| relative_bytes(&self.root, &dir.path));
                let status = Status::Unreadable(describe_io_error(&err).into());
                (
                    Entry::new(group.key.clone(), raw, Fingerprint::default(), status),
                    err,
                )
            };
            // Listed whole before any of it is used: a directory that fails
            // halfway is one failure, not half its entries.
            let mut listed = Vec::new();
            let outcome = std::fs::read_dir(&dir.path).and_then(|listing| {
                for next in listing {
                    listed.push(self.child(group, dir, next?, ancestors));
                }
                Ok(())
            });
            match outcome {
                Ok(()) => children.append(&mut listed),
                Err(err) => failures.push(failed(err)),
            }
        }
        // Equal keys side by side (entries before a directory of the same key).
        children.sort_by(|a, b| {
            a.key()
                .cmp(b.key())
                .then_with(|| matches!(a, Child::Dir(_)).cmp(&matches!(b, Child::Dir(_))))
        });
        Listing {
            children: merge_collisions(children),
            failures,
        }
    }

    fn child(
        &self,
        group: &DirGroup,
        dir: &DirPath,
        entry: std::fs::DirEntry,
        ancestors: &[(u64, u64)],
    ) -> Child {
        let file_name = entry.file_name();
        let (name, name_differs) = pathkey::name_key(&file_name);
        let key = pathkey::join(&group.key, &name);
        let differs = dir.differs || name_differs;
        let raw = || differs.then(|| relative_bytes(&self.root, &entry.path()));
        let unreadable = |key: String, err: &std::io::Error| {
            let status = Status::Unreadable(describe_io_error(err).into());
            Child::Entry(Entry::new(key, raw(), Fingerprint::default(), status))
        };
        let mut file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(err) => return unreadable(key, &err),
        };
        // Following symlinks, a link is what it points at (a dangling one is
        // unreadable).
        let mut followed = None;
        if self.options.follow_symlinks && file_type.is_symlink() {
            match std::fs::metadata(entry.path()) {
                Ok(meta) => {
                    file_type = meta.file_type();
                    followed = Some(meta);
                }
                Err(err) => return unreadable(key, &err),
            }
        }
        if file_type.is_dir() {
            if self.options.filter.is_ignored_dir(&key) {
                let status = Status::Ignored { is_dir: true };
                return Child::Entry(Entry::new(key, raw(), Fingerprint::default(), status));
            }
            // Without following links no directory can lead back up: no id needed.
            let id = match followed {
                Some(meta) => (meta.dev(), meta.ino()),
                None if self.options.follow_symlinks => match entry.metadata() {
                    Ok(meta) => (meta.dev(), meta.ino()),
                    Err(err) => return unreadable(key, &err),
                },
                None => (0, 0),
            };
            if self.options.follow_symlinks
                && (ancestors.contains(&id) || group.paths.iter().any(|p| p.id == id))
            {
                let status = Status::Skipped(SkipReason::SymlinkLoop);
                return Child::Entry(Entry::new(key, raw(), Fingerprint::default(), status));
            }
            return Child::Dir(DirGroup {
                key,
                paths: vec![DirPath {
                    path: entry.path(),
                    differs,
                    id,
                }],
            });
        }
        let metadata = || match followed {
            Some(meta) => Ok(meta),
            None => entry.metadata().map_err(|e| describe_io_error(&e)),
        };
        let (status, fingerprint) = classify(file_type, metadata, &key, &self.options.filter);
        Child::Entry(Entry::new(key, raw(), fingerprint, status))
    }
}

/// Whether the key `next`, a sibling after the directory `dir` in name order,
/// comes before the directory's contents (`dir/…`): it is `dir` itself, or
/// `dir` followed by a byte below `/` (`a-b`, `a.txt` after `a`).
fn comes_before_contents(next: &str, dir: &str) -> bool {
    next == dir
        || (next.starts_with(dir) && next.as_bytes().get(dir.len()).is_some_and(|&b| b < b'/'))
}

/// Children sorted by key, with those of equal keys settled: directories
/// become one group, entries are all refused as a name collision.
fn merge_collisions(sorted: Vec<Child>) -> Vec<Child> {
    let mut out: Vec<Child> = Vec::with_capacity(sorted.len());
    let mut colliding = false;
    for child in sorted {
        match (out.last_mut(), child) {
            (Some(Child::Dir(last)), Child::Dir(group)) if last.key == group.key => {
                last.paths.extend(group.paths);
            }
            (Some(Child::Entry(last)), Child::Entry(mut entry)) if last.key == entry.key => {
                if !colliding {
                    refuse_collision(last);
                    colliding = true;
                }
                refuse_collision(&mut entry);
                out.push(Child::Entry(entry));
            }
            (_, child) => {
                colliding = false;
                out.push(child);
            }
        }
    }
    out
}

fn refuse_collision(entry: &mut Entry) {
    entry.status = Status::Skipped(SkipReason::NameCollision);
    entry.fingerprint = Fingerprint::default();
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

pub fn describe_io_error(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (check the file's owner and mode)".to_string()
        }
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn keys_of(root: &Path, options: &ScanOptions) -> Vec<(String, Status)> {
        let mut on_progress = |_: ScanProgress| {};
        let mut stream = ScanStream::start(root, options, &mut on_progress).unwrap();
        let mut keys = Vec::new();
        while let Some(entry) = stream.next_entry() {
            keys.push((entry.key, entry.status));
        }
        assert_eq!(stream.failure(), None);
        keys
    }

    fn write(root: &Path, relative: &[u8]) {
        let path = root.join(std::ffi::OsStr::from_bytes(relative));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn entries_come_in_byte_order_of_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Directory `a` sorts after `a-b` and `a.txt` (its contents are `a/…`)
        // and before `a0`; nested the same way below it.
        for name in [
            &b"a/x0"[..],
            b"a/x-y/1",
            b"a/x.txt",
            b"a/x/z",
            b"a-b",
            b"a.txt",
            b"a0",
            b"a-b.d/q",
            b"b",
            b"\xffraw",
        ] {
            write(root, name);
        }
        std::fs::create_dir(root.join("empty")).unwrap();
        let keys: Vec<String> = keys_of(root, &ScanOptions::default())
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "handed on in key order");
        assert_eq!(keys.len(), 10, "{keys:?}");
        assert!(keys.contains(&"a/x-y/1".to_string()) && keys.contains(&"a/x/z".to_string()));
    }

    #[test]
    fn colliding_names_are_refused_and_colliding_directories_walked_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Cafe\u{301}.txt".as_bytes());
        write(root, "Caf\u{e9}.txt".as_bytes());
        write(root, "Cafe\u{301}/same".as_bytes());
        write(root, "Caf\u{e9}/same".as_bytes());
        write(root, "Caf\u{e9}/only-nfc".as_bytes());
        write(root, "Cafe\u{301}/only-nfd".as_bytes());
        let found = keys_of(root, &ScanOptions::default());
        let collided = Status::Skipped(SkipReason::NameCollision);
        let expect = vec![
            ("Caf\u{e9}.txt".to_string(), collided.clone()),
            ("Caf\u{e9}.txt".to_string(), collided.clone()),
            ("Caf\u{e9}/only-nfc".to_string(), Status::Local),
            ("Caf\u{e9}/only-nfd".to_string(), Status::Local),
            ("Caf\u{e9}/same".to_string(), collided.clone()),
            ("Caf\u{e9}/same".to_string(), collided),
        ];
        assert_eq!(found, expect);
    }

    #[test]
    fn ignored_directories_and_symlink_loops_are_entries_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, b"cache/big");
        write(root, b"keep/file");
        std::os::unix::fs::symlink("..", root.join("keep/up")).unwrap();
        let options = ScanOptions {
            filter: Filter::new(&[], &["^cache$".to_string()]).unwrap(),
            follow_symlinks: true,
        };
        let found = keys_of(root, &options);
        assert_eq!(
            found,
            vec![
                ("cache".to_string(), Status::Ignored { is_dir: true }),
                ("keep/file".to_string(), Status::Local),
                (
                    "keep/up".to_string(),
                    Status::Skipped(SkipReason::SymlinkLoop)
                ),
            ]
        );
        let plain = keys_of(root, &ScanOptions::default());
        assert_eq!(
            plain[2],
            ("keep/up".to_string(), Status::Skipped(SkipReason::Symlink))
        );
    }
}
