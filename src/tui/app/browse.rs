//! The browse concern: the tree, the rows the tree pane shows (expanded,
//! filtered by the view, sorted), the selection and its scroll, the search and
//! the marks. Knows nothing of jobs, dialogs or the screen: the state passes in
//! how many rows fit.

use crossterm::event::{KeyCode, KeyModifiers};

use crate::tui::keys::Key;
use crate::tui::tree::{NodeId, ROOT, SortBy, Tree, View};

/// The incremental search being typed.
#[derive(Debug, Clone)]
pub struct Search {
    pub query: String,
    /// Where the selection was when the search began (Esc goes back there).
    pub origin: Option<NodeId>,
    pub found: bool,
}

#[derive(Debug)]
pub struct Browse {
    pub tree: Tree,
    /// The rows of the tree pane (expanded, filtered, sorted), rebuilt on change.
    pub rows: Vec<NodeId>,
    rows_dirty: bool,
    /// The selected row, and the first row shown.
    pub selected: usize,
    pub offset: usize,
    pub view: View,
    pub sort: SortBy,
    pub search: Option<Search>,
    /// The last query (n / N search again).
    pub last_search: String,
}

impl Default for Browse {
    fn default() -> Self {
        Browse {
            tree: Tree::new(),
            rows: Vec::new(),
            rows_dirty: false,
            selected: 0,
            offset: 0,
            view: View::All,
            sort: SortBy::Name,
            search: None,
            last_search: String::new(),
        }
    }
}

impl Browse {
    pub fn selected_node(&self) -> Option<NodeId> {
        self.rows.get(self.selected).copied()
    }

    /// The rows' shape changed (a directory opened, another view or sort): they
    /// are rebuilt before they are next used.
    pub fn reshape(&mut self) {
        self.rows_dirty = true;
    }

    /// Rebuilds the rows if their shape changed; keeps the selected node selected.
    fn rebuild(&mut self) {
        if !self.rows_dirty {
            return;
        }
        let keep = self.selected_node();
        self.rows = self.tree.flatten(self.view, self.sort);
        self.rows_dirty = false;
        if let Some(node) = keep
            && let Some(index) = self.rows.iter().position(|&r| r == node)
        {
            self.selected = index;
        }
    }

    /// Rebuilds what changed and keeps the selection on a row, inside a window
    /// of `height` rows.
    pub fn refresh(&mut self, height: usize) {
        self.rebuild();
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        let height = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.offset = self.offset.min(self.rows.len().saturating_sub(height));
    }

    /// Puts a new tree in place (a scan ended), keeping the selected file selected.
    pub fn replace_tree(&mut self, tree: Tree) {
        let keep = self.selected_node().map(|id| self.tree.key(id));
        self.tree = tree;
        self.reshape();
        self.rebuild();
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        if let Some(key) = keep
            && let Some(id) = self.tree.find(&key)
        {
            self.select_node(id);
        }
    }

    /// Selects `id`, opening the directories above it; a node the view filters
    /// out switches to the view of everything so the jump lands.
    pub fn select_node(&mut self, id: NodeId) {
        self.tree.reveal(id);
        self.reshape();
        self.rebuild();
        if let Some(index) = self.rows.iter().position(|&r| r == id) {
            self.selected = index;
        } else if self.view != View::All {
            self.view = View::All;
            self.reshape();
            self.rebuild();
            if let Some(index) = self.rows.iter().position(|&r| r == id) {
                self.selected = index;
            }
        }
    }

    pub fn move_by(&mut self, delta: isize) {
        let last = self.rows.len().saturating_sub(1) as isize;
        self.selected = (self.selected as isize + delta).clamp(0, last.max(0)) as usize;
    }

    /// Statuses or sizes changed: sorted orders and filtered views are stale.
    pub fn after_tree_change(&mut self) {
        self.tree.invalidate_order(self.sort);
        if self.view != View::All || self.sort != SortBy::Name {
            self.reshape();
        }
    }

    /// Opens or closes the selected directory.
    pub fn toggle_open(&mut self) {
        if let Some(id) = self.selected_node()
            && self.tree.is_dir(id)
        {
            let expanded = self.tree.is_expanded(id);
            self.tree.set_expanded(id, !expanded);
            self.reshape();
        }
    }

    /// Closes the selected directory, or goes to its parent.
    pub fn collapse(&mut self) {
        if let Some(id) = self.selected_node() {
            if self.tree.is_expanded(id) {
                self.tree.set_expanded(id, false);
                self.reshape();
            } else {
                let parent = self.tree.node(id).parent;
                if parent != ROOT {
                    self.select_node(parent);
                }
            }
        }
    }

    /// Opens the selected directory, or steps into it when it is open.
    pub fn expand(&mut self) {
        if let Some(id) = self.selected_node()
            && self.tree.is_dir(id)
        {
            if self.tree.is_expanded(id) {
                self.move_by(1);
            } else {
                self.tree.set_expanded(id, true);
                self.reshape();
            }
        }
    }

    /// Opens the selected directory and every directory below it (on a file:
    /// its directory's).
    pub fn expand_all(&mut self) {
        if let Some(id) = self.selected_node() {
            let dir = if self.tree.is_dir(id) {
                id
            } else {
                self.tree.node(id).parent
            };
            self.tree.expand_all(dir);
            self.reshape();
        }
    }

    /// Marks (or unmarks) the selection and moves to the next row.
    pub fn toggle_mark(&mut self) {
        if let Some(id) = self.selected_node() {
            self.tree.toggle_mark(id);
            self.move_by(1);
        }
    }

    /// A click on the `row`-th row shown: selects it; a second click on a
    /// directory opens or closes it.
    pub fn click(&mut self, row: usize) {
        let index = self.offset + row;
        if index >= self.rows.len() {
            return;
        }
        if index == self.selected {
            self.toggle_open();
        }
        self.selected = index;
    }

    pub fn next_sort(&mut self) {
        self.sort = self.sort.next();
        self.reshape();
    }

    pub fn next_view(&mut self) {
        self.view = self.view.next();
        self.reshape();
    }

    /// What upload, retrieve and delete act on: the marked entries, else the
    /// selection.
    pub fn targets(&self) -> Vec<NodeId> {
        if self.tree.marked_count() > 0 {
            self.tree.marked()
        } else {
            self.selected_node().into_iter().collect()
        }
    }

    /// Jumps to the next (or previous) pending file; false when there is none.
    pub fn jump_pending(&mut self, forward: bool) -> bool {
        let from = self.selected_node().unwrap_or(ROOT);
        match self.tree.next_pending(from, forward) {
            Some(id) => {
                self.select_node(id);
                true
            }
            None => false,
        }
    }

    pub fn start_search(&mut self) {
        self.search = Some(Search {
            query: String::new(),
            origin: self.selected_node(),
            found: true,
        });
    }

    /// The last query again, forward or back; the message to show when there
    /// is nothing to find.
    pub fn search_again(&mut self, forward: bool) -> Result<(), String> {
        let query = self.last_search.clone();
        if query.is_empty() {
            return Err("no search yet: press / to search".into());
        }
        let from = self.selected_node().unwrap_or(ROOT);
        match self.tree.search(from, &query, forward) {
            Some(id) => {
                self.select_node(id);
                Ok(())
            }
            None => Err(format!("no name contains {query:?}")),
        }
    }

    /// A key while the search is typed: edits the query and moves the selection
    /// to the first match at or after where the search began.
    pub fn search_key(&mut self, key: &Key) {
        let Some(search) = &mut self.search else {
            return;
        };
        let ctrl = key.mods.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => {
                let origin = search.origin;
                self.search = None;
                if let Some(origin) = origin {
                    self.select_node(origin);
                }
                return;
            }
            KeyCode::Enter => {
                self.last_search = search.query.clone();
                self.search = None;
                return;
            }
            KeyCode::Backspace => {
                search.query.pop();
            }
            KeyCode::Char('c') if ctrl => {
                self.search = None;
                return;
            }
            KeyCode::Char(c) if !ctrl => search.query.push(c),
            KeyCode::Down | KeyCode::Up => {
                let forward = key.code == KeyCode::Down;
                let query = search.query.clone();
                let from = self.selected_node().unwrap_or(ROOT);
                if let Some(id) = self.tree.search(from, &query, forward) {
                    self.select_node(id);
                }
                return;
            }
            _ => return,
        }
        let query = search.query.clone();
        let origin = search.origin.unwrap_or(ROOT);
        let start = if origin == ROOT { ROOT } else { origin - 1 };
        let found = self.tree.search(start, &query, true);
        if let Some(search) = &mut self.search {
            search.found = found.is_some() || query.is_empty();
        }
        self.last_search = query;
        match found {
            Some(id) => self.select_node(id),
            None if self.last_search.is_empty() => {
                if let Some(origin) = self.search.as_ref().and_then(|s| s.origin) {
                    self.select_node(origin);
                }
            }
            None => {}
        }
    }
}
