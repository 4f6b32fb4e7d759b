//! The tree the terminal UI shows: an arena of nodes (dua-cli / broot style).
//!
//! Every node is one `Node` in a `Vec`, addressed by a `u32` id, with a parent link
//! and its own name (never a full path). Directories keep their children and a
//! roll-up (counts per status, bytes pending) that is updated along the parent chain
//! whenever a file is inserted or changes status, so nothing is ever recounted.
//! The rows on screen are a flat list of the expanded, filtered nodes, rebuilt only
//! when the shape changes (expand, collapse, sort, view); a frame reads only the
//! rows it shows.

use std::collections::HashMap;

mod marks;
mod rows;

use marks::class_mark;
pub use marks::{CLASSES, Class, JobMark, Mark, Rollup, SortBy, View};

use crate::model::{Entry, Status};
use crate::status::StatusReport;

pub type NodeId = u32;
pub const ROOT: NodeId = 0;
const NO_DIR: u32 = u32::MAX;

const MARKED: u8 = 1;
/// An up-to-date file whose mtime moved: a backup updates the catalog's mtime.
const MTIME_MOVED: u8 = 2;
/// A directory that is itself ignored or unreadable (its class counts, not a roll-up).
const OWN_CLASS: u8 = 4;

/// One file or directory. Kept small: a 1,000,000-entry tree is held in memory.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: Box<str>,
    /// Local size (archived size for archived-only entries).
    pub size: u64,
    /// Local mtime (archived mtime for archived-only entries).
    pub mtime_ns: i64,
    pub parent: NodeId,
    dir: u32,
    pub class: Class,
    pub job: JobMark,
    flags: u8,
}

#[derive(Debug, Clone, Default)]
struct Dir {
    children: Vec<NodeId>,
    rollup: Rollup,
    expanded: bool,
    /// The order `children` is sorted in, if any.
    sorted: Option<SortBy>,
}

/// Rarely present details: original name bytes, and why an entry is a problem.
#[derive(Debug, Clone, Default)]
struct Extra {
    raw: Option<Box<[u8]>>,
    reason: Option<Box<str>>,
}

#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
    dirs: Vec<Dir>,
    extra: HashMap<NodeId, Extra>,
    /// The directories leading to the last insert (input arrives sorted by key).
    cursor: Vec<NodeId>,
    marked: u32,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Tree {
    pub fn new() -> Tree {
        let root = Node {
            name: "".into(),
            size: 0,
            mtime_ns: 0,
            parent: ROOT,
            dir: 0,
            class: Class::UpToDate,
            job: JobMark::None,
            flags: 0,
        };
        Tree {
            nodes: vec![root],
            dirs: vec![Dir {
                expanded: true,
                ..Dir::default()
            }],
            extra: HashMap::new(),
            cursor: vec![ROOT],
            marked: 0,
        }
    }

    pub fn from_report(report: StatusReport) -> Tree {
        Tree::from_entries(report.entries)
    }

    /// Builds the tree from entries (sorted by key is fastest; any order works).
    pub fn from_entries(entries: impl IntoIterator<Item = Entry>) -> Tree {
        let mut tree = Tree::new();
        for entry in entries {
            tree.insert(entry);
        }
        tree.finish();
        tree
    }

    /// Releases spare capacity once everything is inserted.
    pub fn finish(&mut self) {
        self.nodes.shrink_to_fit();
        self.dirs.shrink_to_fit();
        for dir in &mut self.dirs {
            dir.children.shrink_to_fit();
        }
        self.cursor = vec![ROOT];
    }

    pub fn len(&self) -> usize {
        self.nodes.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub fn is_dir(&self, id: NodeId) -> bool {
        self.nodes[id as usize].dir != NO_DIR
    }

    pub fn rollup(&self, id: NodeId) -> Option<&Rollup> {
        let dir = self.nodes[id as usize].dir;
        (dir != NO_DIR).then(|| &self.dirs[dir as usize].rollup)
    }

    pub fn totals(&self) -> &Rollup {
        &self.dirs[0].rollup
    }

    pub fn children(&self, id: NodeId) -> &[NodeId] {
        let dir = self.nodes[id as usize].dir;
        if dir == NO_DIR {
            &[]
        } else {
            &self.dirs[dir as usize].children
        }
    }

    pub fn is_expanded(&self, id: NodeId) -> bool {
        let dir = self.nodes[id as usize].dir;
        dir != NO_DIR && self.dirs[dir as usize].expanded
    }

    pub fn set_expanded(&mut self, id: NodeId, expanded: bool) {
        let dir = self.nodes[id as usize].dir;
        if dir != NO_DIR {
            self.dirs[dir as usize].expanded = expanded || id == ROOT;
        }
    }

    /// Opens `id` and every directory below it.
    pub fn expand_all(&mut self, id: NodeId) {
        let mut stack = vec![id];
        while let Some(dir) = stack.pop() {
            if self.is_dir(dir) {
                self.set_expanded(dir, true);
                stack.extend_from_slice(self.children(dir));
            }
        }
    }

    pub fn raw(&self, id: NodeId) -> Option<&[u8]> {
        self.extra.get(&id).and_then(|e| e.raw.as_deref())
    }

    pub fn reason(&self, id: NodeId) -> Option<&str> {
        self.extra.get(&id).and_then(|e| e.reason.as_deref())
    }

    pub fn mtime_moved(&self, id: NodeId) -> bool {
        self.nodes[id as usize].flags & MTIME_MOVED != 0
    }

    pub fn depth(&self, mut id: NodeId) -> usize {
        let mut depth: usize = 0;
        while id != ROOT {
            id = self.nodes[id as usize].parent;
            depth += 1;
        }
        depth.saturating_sub(1)
    }

    /// The key ('/'-separated path relative to the root) of a node.
    pub fn key(&self, id: NodeId) -> String {
        let mut parts = Vec::new();
        let mut at = id;
        while at != ROOT {
            parts.push(&*self.nodes[at as usize].name);
            at = self.nodes[at as usize].parent;
        }
        parts.reverse();
        parts.join("/")
    }

    /// The node of a key, if the tree holds it.
    pub fn find(&self, key: &str) -> Option<NodeId> {
        let mut at = ROOT;
        for part in key.split('/') {
            at = *self
                .children(at)
                .iter()
                .find(|&&c| &*self.nodes[c as usize].name == part)?;
        }
        Some(at)
    }

    /// The mark a row shows for this node.
    pub fn mark(&self, id: NodeId) -> Mark {
        let node = &self.nodes[id as usize];
        if node.dir != NO_DIR && node.flags & OWN_CLASS == 0 {
            return self.dirs[node.dir as usize].rollup.mark();
        }
        match node.job {
            JobMark::Queued => Mark::Queued,
            JobMark::Uploading => Mark::Uploading,
            JobMark::Failed => Mark::Failed,
            JobMark::None => class_mark(node.class),
        }
    }

    fn push_node(&mut self, node: Node) -> NodeId {
        let id = u32::try_from(self.nodes.len()).expect("tree holds fewer than 2^32 entries");
        self.nodes.push(node);
        id
    }

    fn make_dir(&mut self, id: NodeId) -> u32 {
        let node = &mut self.nodes[id as usize];
        if node.dir == NO_DIR {
            node.dir = u32::try_from(self.dirs.len()).expect("fewer than 2^32 directories");
            self.dirs.push(Dir::default());
        }
        node.dir
    }

    fn add_child(&mut self, parent: NodeId, name: &str, size: u64, mtime_ns: i64) -> NodeId {
        let id = self.push_node(Node {
            name: name.into(),
            size,
            mtime_ns,
            parent,
            dir: NO_DIR,
            class: Class::UpToDate,
            job: JobMark::None,
            flags: 0,
        });
        let dir = self.make_dir(parent);
        let dir = &mut self.dirs[dir as usize];
        dir.children.push(id);
        dir.sorted = None;
        id
    }

    /// The child directory `name` of `parent`, created if missing.
    fn child_dir(&mut self, parent: NodeId, name: &str) -> NodeId {
        let existing = self.children(parent).iter().rev().copied().find(|&c| {
            let node = &self.nodes[c as usize];
            &*node.name == name && (node.dir != NO_DIR || node.class == Class::Unreadable)
        });
        let id = match existing {
            Some(id) => id,
            None => self.add_child(parent, name, 0, 0),
        };
        if self.nodes[id as usize].dir == NO_DIR {
            if self.nodes[id as usize].class == Class::Unreadable && existing.is_some() {
                // An unreadable directory that turns out to hold archived entries.
                self.nodes[id as usize].flags |= OWN_CLASS;
            }
            self.make_dir(id);
        }
        id
    }

    /// Adds one entry (its key's directories are created as needed).
    pub fn insert(&mut self, entry: Entry) -> NodeId {
        let Entry {
            key,
            raw,
            fingerprint,
            status,
            archived,
            ..
        } = entry;
        let mut parts = key.split('/');
        let Some(leaf) = parts.next_back() else {
            return ROOT;
        };
        let mut depth = 0;
        for part in parts {
            depth += 1;
            let reuse = self
                .cursor
                .get(depth)
                .copied()
                .filter(|&c| &*self.nodes[c as usize].name == part);
            if reuse.is_none() {
                self.cursor.truncate(depth);
                let parent = self.cursor[depth - 1];
                let id = self.child_dir(parent, part);
                self.cursor.push(id);
            }
        }
        self.cursor.truncate(depth + 1);
        let parent = self.cursor[depth];
        let class = Class::of(&status);
        let local = fingerprint != crate::model::Fingerprint::default();
        let (size, mtime_ns) = match (local, archived) {
            (false, Some(a)) => (a.size, a.mtime_ns),
            _ => (fingerprint.size, fingerprint.mtime_ns),
        };
        let id = self.add_child(parent, leaf, size, mtime_ns);
        let node = &mut self.nodes[id as usize];
        node.class = class;
        if class == Class::UpToDate && archived.is_some_and(|a| a.mtime_ns != fingerprint.mtime_ns)
        {
            node.flags |= MTIME_MOVED;
        }
        if matches!(status, Status::Ignored { is_dir: true }) {
            node.flags |= OWN_CLASS;
            self.make_dir(id);
        }
        let reason = status.reason().map(Box::<str>::from);
        if raw.is_some() || reason.is_some() {
            self.extra.insert(id, Extra { raw, reason });
        }
        self.account(id, 1);
        id
    }

    /// Adds (`sign` 1) or removes (-1) one node's contribution to its ancestors.
    fn account(&mut self, id: NodeId, sign: i64) {
        let node = &self.nodes[id as usize];
        let (class, job, size, mtime_ns) = (node.class, node.job, node.size, node.mtime_ns);
        let local = !matches!(class, Class::ArchivedOnly);
        let mut at = node.parent;
        loop {
            let dir = self.nodes[at as usize].dir;
            let rollup = &mut self.dirs[dir as usize].rollup;
            let apply = |v: &mut u32| *v = (*v as i64 + sign).max(0) as u32;
            apply(&mut rollup.counts[class as usize]);
            if job != JobMark::None {
                apply(&mut rollup.jobs[job as usize - 1]);
            }
            let bytes: fn(&mut u64, u64) = if sign > 0 {
                |v: &mut u64, b: u64| *v += b
            } else {
                |v: &mut u64, b: u64| *v = v.saturating_sub(b)
            };
            if local {
                bytes(&mut rollup.bytes, size);
            }
            if class.is_pending() {
                bytes(&mut rollup.pending_bytes, size);
            }
            if sign > 0 && local {
                rollup.mtime_ns = rollup.mtime_ns.max(mtime_ns);
            }
            if at == ROOT {
                break;
            }
            at = self.nodes[at as usize].parent;
        }
    }

    /// Changes a file's class and job mark, keeping every roll-up above it right.
    pub fn set_state(&mut self, id: NodeId, class: Class, job: JobMark) {
        let node = &self.nodes[id as usize];
        if id == ROOT || (node.class == class && node.job == job) {
            return;
        }
        self.account(id, -1);
        let node = &mut self.nodes[id as usize];
        node.class = class;
        node.job = job;
        if class != Class::UpToDate {
            node.flags &= !MTIME_MOVED;
        }
        self.account(id, 1);
    }

    /// Marks the file as uploaded and recorded.
    pub fn set_uploaded(&mut self, id: NodeId) {
        self.nodes[id as usize].flags &= !MTIME_MOVED;
        self.set_state(id, Class::UpToDate, JobMark::None);
    }

    pub fn is_marked(&self, id: NodeId) -> bool {
        self.nodes[id as usize].flags & MARKED != 0
    }

    /// Marked itself or inside a marked directory.
    pub fn is_marked_within(&self, mut id: NodeId) -> bool {
        loop {
            if self.is_marked(id) {
                return true;
            }
            if id == ROOT {
                return false;
            }
            id = self.nodes[id as usize].parent;
        }
    }

    pub fn toggle_mark(&mut self, id: NodeId) {
        if id == ROOT {
            return;
        }
        let node = &mut self.nodes[id as usize];
        node.flags ^= MARKED;
        if node.flags & MARKED != 0 {
            self.marked += 1;
        } else {
            self.marked -= 1;
        }
    }

    pub fn marked_count(&self) -> u32 {
        self.marked
    }

    pub fn marked(&self) -> Vec<NodeId> {
        if self.marked == 0 {
            return Vec::new();
        }
        (1..self.nodes.len() as NodeId)
            .filter(|&id| self.is_marked(id))
            .collect()
    }

    pub fn clear_marks(&mut self) {
        if self.marked == 0 {
            return;
        }
        for node in &mut self.nodes {
            node.flags &= !MARKED;
        }
        self.marked = 0;
    }

    /// Every file at or below `id`, depth first.
    pub fn files_under(&self, id: NodeId, out: &mut Vec<NodeId>) {
        let mut stack = vec![id];
        while let Some(at) = stack.pop() {
            let node = &self.nodes[at as usize];
            if node.dir == NO_DIR {
                out.push(at);
            } else {
                stack.extend(self.dirs[node.dir as usize].children.iter().rev());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArchivedSummary, Fingerprint};
    fn entry(key: &str, size: u64, status: Status) -> Entry {
        Entry {
            key: key.into(),
            raw: None,
            fingerprint: Fingerprint {
                size,
                mtime_ns: 1,
                ctime_ns: 1,
                inode: 1,
            },
            status,
            sha1: None,
            archived: None,
        }
    }

    #[test]
    fn rollups_follow_inserts_and_changes() {
        let mut tree = Tree::from_entries([
            entry("a/b/c.txt", 10, Status::New),
            entry("a/b/d.txt", 5, Status::Changed),
            entry("a/e.txt", 7, Status::UpToDate),
            entry("f.txt", 3, Status::New),
        ]);
        let a = tree.find("a").unwrap();
        let b = tree.find("a/b").unwrap();
        assert_eq!(tree.rollup(a).unwrap().pending(), 2);
        assert_eq!(tree.rollup(a).unwrap().pending_bytes, 15);
        assert_eq!(tree.totals().pending_bytes, 18);
        assert_eq!(tree.rollup(b).unwrap().mark(), Mark::Changed);
        let c = tree.find("a/b/c.txt").unwrap();
        tree.set_state(c, Class::New, JobMark::Uploading);
        assert_eq!(tree.mark(a), Mark::Uploading);
        tree.set_uploaded(c);
        assert_eq!(tree.rollup(a).unwrap().pending(), 1);
        assert_eq!(tree.rollup(a).unwrap().pending_bytes, 5);
        assert_eq!(tree.rollup(a).unwrap().job(JobMark::Uploading), 0);
        assert_eq!(tree.key(c), "a/b/c.txt");
    }

    #[test]
    fn flatten_shows_expanded_and_filtered_rows() {
        let mut tree = Tree::from_entries([
            entry("a/x", 1, Status::UpToDate),
            entry("a/y", 1, Status::New),
            entry("b/z", 1, Status::UpToDate),
            Entry {
                archived: Some(ArchivedSummary {
                    size: 4,
                    mtime_ns: 2,
                    sha1: [0; 20],
                }),
                fingerprint: Fingerprint::default(),
                ..entry("gone", 0, Status::ArchivedOnly)
            },
        ]);
        assert_eq!(tree.flatten(View::All, SortBy::Name).len(), 3);
        let a = tree.find("a").unwrap();
        tree.set_expanded(a, true);
        let rows = tree.flatten(View::All, SortBy::Name);
        let names: Vec<_> = rows.iter().map(|&r| &*tree.node(r).name).collect();
        assert_eq!(names, ["a", "x", "y", "b", "gone"]);
        let rows = tree.flatten(View::Pending, SortBy::Name);
        let names: Vec<_> = rows.iter().map(|&r| &*tree.node(r).name).collect();
        assert_eq!(names, ["a", "y"]);
        let rows = tree.flatten(View::ArchivedOnly, SortBy::Name);
        assert_eq!(rows.len(), 1);
        assert_eq!(tree.node(rows[0]).size, 4);
    }

    #[test]
    fn unsorted_input_still_merges_directories() {
        let tree = Tree::from_entries([
            entry("a/x", 1, Status::New),
            entry("b/y", 1, Status::New),
            entry("a/z", 1, Status::New),
        ]);
        assert_eq!(tree.children(ROOT).len(), 2);
        assert_eq!(tree.children(tree.find("a").unwrap()).len(), 2);
    }
}
