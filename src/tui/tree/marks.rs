//! What a node is and how it shows: the status class, the job mark, the one
//! mark a row shows, a directory's roll-up, and the views and sort orders of
//! the rows.

use crate::model::Status;

/// What status said about one entry, compressed to a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Class {
    New = 0,
    Changed = 1,
    UpToDate = 2,
    ArchivedOnly = 3,
    Ignored = 4,
    Unreadable = 5,
    Skipped = 6,
}

pub const CLASSES: usize = 7;

impl Class {
    pub fn of(status: &Status) -> Class {
        match status {
            Status::New | Status::Local | Status::OtherStore => Class::New,
            Status::Changed => Class::Changed,
            Status::UpToDate => Class::UpToDate,
            Status::ArchivedOnly => Class::ArchivedOnly,
            Status::Ignored { .. } => Class::Ignored,
            Status::Unreadable(_) => Class::Unreadable,
            Status::Skipped(_) => Class::Skipped,
        }
    }

    pub fn is_pending(self) -> bool {
        matches!(self, Class::New | Class::Changed)
    }
}

/// Where an entry stands with the background uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum JobMark {
    None = 0,
    Queued = 1,
    Uploading = 2,
    Failed = 3,
}

/// The mark a row shows: one symbol each, readable without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mark {
    New,
    Changed,
    UpToDate,
    ArchivedOnly,
    Ignored,
    Unreadable,
    Skipped,
    Queued,
    Uploading,
    Failed,
    Empty,
}

impl Mark {
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::New => "+",
            Mark::Changed => "~",
            Mark::UpToDate => "=",
            Mark::ArchivedOnly => "-",
            Mark::Ignored => ".",
            Mark::Unreadable | Mark::Failed => "!",
            Mark::Skipped => "?",
            Mark::Queued => "…",
            Mark::Uploading => "↑",
            Mark::Empty => " ",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Mark::New => "new",
            Mark::Changed => "changed",
            Mark::UpToDate => "up to date",
            Mark::ArchivedOnly => "archived-only",
            Mark::Ignored => "ignored",
            Mark::Unreadable => "unreadable",
            Mark::Skipped => "skipped",
            Mark::Queued => "queued",
            Mark::Uploading => "uploading",
            Mark::Failed => "failed",
            Mark::Empty => "empty",
        }
    }

    /// Sort rank for "sort by status": what needs attention first.
    pub(super) fn rank(self) -> u8 {
        match self {
            Mark::Failed => 0,
            Mark::Unreadable => 1,
            Mark::Uploading => 2,
            Mark::Queued => 3,
            Mark::Changed => 4,
            Mark::New => 5,
            Mark::Skipped => 6,
            Mark::ArchivedOnly => 7,
            Mark::UpToDate => 8,
            Mark::Ignored => 9,
            Mark::Empty => 10,
        }
    }

    pub const ALL: [Mark; 10] = [
        Mark::New,
        Mark::Changed,
        Mark::UpToDate,
        Mark::ArchivedOnly,
        Mark::Ignored,
        Mark::Unreadable,
        Mark::Skipped,
        Mark::Queued,
        Mark::Uploading,
        Mark::Failed,
    ];
}

pub(super) fn class_mark(class: Class) -> Mark {
    match class {
        Class::New => Mark::New,
        Class::Changed => Mark::Changed,
        Class::UpToDate => Mark::UpToDate,
        Class::ArchivedOnly => Mark::ArchivedOnly,
        Class::Ignored => Mark::Ignored,
        Class::Unreadable => Mark::Unreadable,
        Class::Skipped => Mark::Skipped,
    }
}

/// Counts below one directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Entries per [`Class`].
    pub counts: [u32; CLASSES],
    /// Entries queued, uploading, failed (index = `JobMark as usize - 1`).
    pub jobs: [u32; 3],
    /// Bytes of local files.
    pub bytes: u64,
    /// Bytes of new and changed files.
    pub pending_bytes: u64,
    /// Newest mtime below.
    pub mtime_ns: i64,
}

impl Rollup {
    pub fn count(&self, class: Class) -> u32 {
        self.counts[class as usize]
    }

    pub fn pending(&self) -> u32 {
        self.count(Class::New) + self.count(Class::Changed)
    }

    pub fn problems(&self) -> u32 {
        self.count(Class::Unreadable) + self.count(Class::Skipped) + self.job(JobMark::Failed)
    }

    pub fn job(&self, job: JobMark) -> u32 {
        match job {
            JobMark::None => 0,
            other => self.jobs[other as usize - 1],
        }
    }

    pub fn entries(&self) -> u32 {
        self.counts.iter().sum()
    }

    /// The most urgent mark below.
    pub fn mark(&self) -> Mark {
        if self.job(JobMark::Uploading) > 0 {
            Mark::Uploading
        } else if self.job(JobMark::Queued) > 0 {
            Mark::Queued
        } else if self.job(JobMark::Failed) > 0 {
            Mark::Failed
        } else if self.count(Class::Unreadable) > 0 {
            Mark::Unreadable
        } else if self.count(Class::Changed) > 0 {
            Mark::Changed
        } else if self.count(Class::New) > 0 {
            Mark::New
        } else if self.count(Class::ArchivedOnly) > 0 {
            Mark::ArchivedOnly
        } else if self.count(Class::UpToDate) > 0 {
            Mark::UpToDate
        } else if self.count(Class::Skipped) > 0 {
            Mark::Skipped
        } else if self.count(Class::Ignored) > 0 {
            Mark::Ignored
        } else {
            Mark::Empty
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    Name,
    Size,
    Mtime,
    Status,
}

impl SortBy {
    pub fn next(self) -> SortBy {
        match self {
            SortBy::Name => SortBy::Size,
            SortBy::Size => SortBy::Mtime,
            SortBy::Mtime => SortBy::Status,
            SortBy::Status => SortBy::Name,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortBy::Name => "name",
            SortBy::Size => "size",
            SortBy::Mtime => "mtime",
            SortBy::Status => "status",
        }
    }
}

/// Which entries the tree shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    All,
    Pending,
    ArchivedOnly,
    Problems,
}

impl View {
    pub fn next(self) -> View {
        match self {
            View::All => View::Pending,
            View::Pending => View::ArchivedOnly,
            View::ArchivedOnly => View::Problems,
            View::Problems => View::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            View::All => "all",
            View::Pending => "pending",
            View::ArchivedOnly => "archived-only",
            View::Problems => "problems",
        }
    }
}
