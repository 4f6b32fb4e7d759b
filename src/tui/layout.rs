//! Where each pane goes. Shared by drawing and by the reducer (paging, mouse
//! hit-testing), so both agree on the geometry; it knows nothing of the state:
//! the caller says which panes are open.

use ratatui::layout::{Constraint, Layout, Position, Rect};

/// Smaller than this, the UI shows a message instead of panes.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// Which of the optional panes are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// The jobs pane, with how many rows it lists.
    pub jobs: Option<usize>,
    pub details: bool,
    pub log: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub title: Rect,
    pub tree: Rect,
    pub details: Option<Rect>,
    pub jobs: Option<Rect>,
    pub log: Option<Rect>,
    pub status: Rect,
}

/// Where each pane goes in `area`.
pub fn layout(area: Rect, open: Open) -> Areas {
    let jobs_h = match open.jobs {
        None => 0,
        Some(rows) => (rows.min(u16::MAX as usize) as u16)
            .saturating_add(3)
            .clamp(5, (area.height / 3).max(5)),
    };
    let log_h = if open.log {
        (area.height / 5).clamp(4, 10)
    } else {
        0
    };
    let [title, main, jobs, log, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(jobs_h),
        Constraint::Length(log_h),
        Constraint::Length(1),
    ])
    .areas(area);
    let (tree, details) = if !open.details {
        (main, None)
    } else if main.width >= 100 {
        let [tree, details] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(main);
        (tree, Some(details))
    } else {
        let [tree, details] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(9)]).areas(main);
        (tree, Some(details))
    };
    Areas {
        title,
        tree,
        details,
        jobs: (jobs_h > 0).then_some(jobs),
        log: (log_h > 0).then_some(log),
        status,
    }
}

impl Areas {
    /// Tree rows that fit inside the tree pane's border.
    pub fn tree_rows(&self) -> usize {
        self.tree.height.saturating_sub(2) as usize
    }

    /// Job rows that fit in the jobs pane: inside its border, below the
    /// overall gauge.
    pub fn job_rows(&self) -> usize {
        self.jobs.map_or(0, |r| r.height.saturating_sub(3) as usize)
    }

    pub fn in_tree(&self, at: Position) -> bool {
        self.tree.contains(at)
    }

    pub fn in_jobs(&self, at: Position) -> bool {
        self.jobs.is_some_and(|r| r.contains(at))
    }

    /// The tree row (counted from the pane's first) at screen row `y`.
    pub fn tree_row_at(&self, y: u16) -> Option<usize> {
        let first = self.tree.y + 1;
        (y >= first && y < self.tree.bottom().saturating_sub(1)).then(|| (y - first) as usize)
    }

    /// The job row (counted from the pane's first) at screen row `y`.
    pub fn job_row_at(&self, y: u16) -> Option<usize> {
        let jobs = self.jobs?;
        let first = jobs.y + 2;
        (y >= first && y < jobs.bottom().saturating_sub(1)).then(|| (y - first) as usize)
    }
}
