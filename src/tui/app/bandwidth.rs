//! The run's bandwidth limits on screen: what is in force in each direction
//! (the title bar shows it, `↑ 512 KiB/s until 19:00`). The runtime reads the
//! limiters and hands what it read to the reducer
//! ([`super::Action::Bandwidth`]); the dialog that changes them is
//! `set_limits`'s.

use crate::limit::{LimitNow, LocalTime, Schedule};

/// Upload or download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::Up => "↑",
            Direction::Down => "↓",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Up => "upload",
            Direction::Down => "download",
        }
    }

    pub fn other(self) -> Direction {
        match self {
            Direction::Up => Direction::Down,
            Direction::Down => Direction::Up,
        }
    }
}

/// One direction's limit as the runtime last read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitShown {
    pub now: LimitNow,
    /// The schedule in force (set for this run, else configured).
    pub schedule: Schedule,
    /// The set's own (config or flag).
    pub configured: Schedule,
    /// The local time it was read at (what "until" is relative to).
    pub at: LocalTime,
}

impl LimitShown {
    /// Whether anything is limited in this direction.
    pub fn limited(&self) -> bool {
        !self.schedule.is_off()
    }

    /// `512 KiB/s until 19:00`, `2 MiB/s (this run)`.
    pub fn describe(&self) -> String {
        self.now.describe(self.at)
    }
}

/// Both directions (None until the runtime has read them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bandwidth {
    pub up: Option<LimitShown>,
    pub down: Option<LimitShown>,
}

impl Bandwidth {
    pub fn get(&self, direction: Direction) -> Option<&LimitShown> {
        match direction {
            Direction::Up => self.up.as_ref(),
            Direction::Down => self.down.as_ref(),
        }
    }

    /// Whether this shows what `other` shows (the moment each was read at, and
    /// the seconds counting down to a change, aside).
    pub fn shows_same(&self, other: &Bandwidth) -> bool {
        let key = |l: &Option<LimitShown>| {
            l.as_ref().map(|l| {
                (
                    l.now.rate,
                    l.now.until,
                    l.now.for_this_run,
                    l.schedule.clone(),
                    l.configured.clone(),
                )
            })
        };
        key(&self.up) == key(&other.up) && key(&self.down) == key(&other.down)
    }

    /// Seconds until a timetable changes a rate (the runtime wakes then).
    pub fn secs_to_change(&self) -> Option<u32> {
        [&self.up, &self.down]
            .into_iter()
            .flatten()
            .filter_map(|l| l.now.secs_to_change)
            .min()
    }
}
