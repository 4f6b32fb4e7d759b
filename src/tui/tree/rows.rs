//! The rows on screen: which nodes a view shows, directories' children in
//! sort order, the flat list of expanded rows, and moving through the tree in
//! key order (next pending file, search).

use super::{Class, JobMark, NO_DIR, Node, NodeId, OWN_CLASS, ROOT, SortBy, Tree, View};

impl Tree {
    /// Whether a node belongs in `view`.
    pub fn shows(&self, id: NodeId, view: View) -> bool {
        if view == View::All {
            return true;
        }
        let node = &self.nodes[id as usize];
        if node.dir != NO_DIR && node.flags & OWN_CLASS == 0 {
            let r = &self.dirs[node.dir as usize].rollup;
            return match view {
                View::All => true,
                View::Pending => {
                    r.pending() + r.job(JobMark::Queued) + r.job(JobMark::Uploading) > 0
                }
                View::ArchivedOnly => r.count(Class::ArchivedOnly) > 0,
                View::Problems => r.problems() > 0,
            };
        }
        match view {
            View::All => true,
            View::Pending => node.class.is_pending() || node.job != JobMark::None,
            View::ArchivedOnly => node.class == Class::ArchivedOnly,
            View::Problems => {
                matches!(node.class, Class::Unreadable | Class::Skipped)
                    || node.job == JobMark::Failed
            }
        }
    }

    fn sort_dir(&mut self, dir: u32, sort: SortBy) {
        if self.dirs[dir as usize].sorted == Some(sort) {
            return;
        }
        let mut children = std::mem::take(&mut self.dirs[dir as usize].children);
        {
            let this = &*self;
            let size = |id: NodeId| match this.rollup(id) {
                Some(r) => r.bytes,
                None => this.nodes[id as usize].size,
            };
            let mtime = |id: NodeId| match this.rollup(id) {
                Some(r) => r.mtime_ns,
                None => this.nodes[id as usize].mtime_ns,
            };
            let name = |id: NodeId| &*this.nodes[id as usize].name;
            children.sort_by(|&a, &b| {
                let dirs_first = this.is_dir(b).cmp(&this.is_dir(a));
                let by = match sort {
                    SortBy::Name => std::cmp::Ordering::Equal,
                    SortBy::Size => size(b).cmp(&size(a)),
                    SortBy::Mtime => mtime(b).cmp(&mtime(a)),
                    SortBy::Status => this.mark(a).rank().cmp(&this.mark(b).rank()),
                };
                dirs_first.then(by).then_with(|| name(a).cmp(name(b)))
            });
        }
        let d = &mut self.dirs[dir as usize];
        d.children = children;
        d.sorted = Some(sort);
    }

    /// Forgets every directory's order (after statuses or sizes changed).
    pub fn invalidate_order(&mut self, sort: SortBy) {
        if sort != SortBy::Name {
            for dir in &mut self.dirs {
                dir.sorted = None;
            }
        }
    }

    /// The rows on screen: expanded directories' children in `sort` order, filtered
    /// by `view`, depth first.
    pub fn flatten(&mut self, view: View, sort: SortBy) -> Vec<NodeId> {
        let mut rows = Vec::new();
        let mut stack: Vec<(NodeId, usize)> = vec![(ROOT, 0)];
        self.sort_dir(0, sort);
        while let Some((dir_node, index)) = stack.pop() {
            let dir = self.nodes[dir_node as usize].dir as usize;
            let Some(&child) = self.dirs[dir].children.get(index) else {
                continue;
            };
            stack.push((dir_node, index + 1));
            if !self.shows(child, view) {
                continue;
            }
            rows.push(child);
            let child_dir = self.nodes[child as usize].dir;
            if child_dir != NO_DIR && self.dirs[child_dir as usize].expanded {
                self.sort_dir(child_dir, sort);
                stack.push((child, 0));
            }
        }
        rows
    }

    /// Expands every directory above `id` so it can be shown.
    pub fn reveal(&mut self, id: NodeId) {
        let mut at = self.nodes[id as usize].parent;
        while at != ROOT {
            self.set_expanded(at, true);
            at = self.nodes[at as usize].parent;
        }
    }

    /// The next node after `from` in key order (wrapping) that satisfies `wanted`.
    pub fn find_next(
        &self,
        from: NodeId,
        forward: bool,
        wanted: impl Fn(NodeId, &Node) -> bool,
    ) -> Option<NodeId> {
        let n = self.nodes.len() as u64;
        if n <= 1 {
            return None;
        }
        let count = n - 1;
        let start = u64::from(from.max(1)) - 1;
        for step in 1..=count {
            let index = if forward {
                (start + step) % count
            } else {
                (start + count - step % count) % count
            };
            let id = (index + 1) as NodeId;
            if wanted(id, &self.nodes[id as usize]) {
                return Some(id);
            }
        }
        None
    }

    /// Next file that is new or changed and not being uploaded.
    pub fn next_pending(&self, from: NodeId, forward: bool) -> Option<NodeId> {
        self.find_next(from, forward, |_, node| {
            node.dir == NO_DIR && node.class.is_pending() && node.job == JobMark::None
        })
    }

    /// Next node whose name contains `query` (case-insensitive).
    pub fn search(&self, from: NodeId, query: &str, forward: bool) -> Option<NodeId> {
        if query.is_empty() {
            return None;
        }
        if query.is_ascii() {
            let q = query.as_bytes();
            self.find_next(from, forward, |_, node| {
                node.name
                    .as_bytes()
                    .windows(q.len())
                    .any(|w| w.eq_ignore_ascii_case(q))
            })
        } else {
            let q = query.to_lowercase();
            self.find_next(from, forward, |_, node| {
                node.name.to_lowercase().contains(&q)
            })
        }
    }
}
