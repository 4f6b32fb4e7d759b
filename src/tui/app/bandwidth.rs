//! The run's bandwidth limits on screen: what is in force in each direction
//! (the title bar shows it, `↑ 512 KiB/s until 19:00`), and the dialog that
//! changes them for this run (`b`): a rate or a timetable per direction, or
//! nothing for the set's configured limit. The runtime reads the limiters and
//! hands what it read to the reducer ([`super::Action::Bandwidth`]); a change
//! goes back as [`super::Effect::SetLimits`], which every transfer in flight
//! follows at once.

use super::action::Effect;
use super::dialogs::Dialog;
use super::state::State;
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

/// What the dialog's field for `direction` starts with: the schedule set for
/// this run, else the configured one, else nothing.
fn field_text(shown: Option<&LimitShown>) -> String {
    match shown {
        Some(shown) if !shown.schedule.is_off() || shown.now.for_this_run => {
            shown.schedule.to_string()
        }
        _ => String::new(),
    }
}

/// What one field of the dialog asks for: None is the configured limit.
fn parse_field(text: &str, shown: Option<&LimitShown>) -> Result<Option<Schedule>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let schedule = Schedule::parse(text)?;
    Ok(match shown {
        Some(shown) if shown.configured == schedule => None,
        _ => Some(schedule),
    })
}

impl State {
    /// `b`: the dialog that sets this run's limits.
    pub(super) fn ask_bandwidth(&mut self) {
        self.dialog = Some(Dialog::Bandwidth {
            upload: field_text(self.bandwidth.get(Direction::Up)),
            download: field_text(self.bandwidth.get(Direction::Down)),
            field: Direction::Up,
            error: None,
        });
    }

    /// The dialog answered: both fields parsed, or the dialog kept open with
    /// what is wrong.
    pub(super) fn apply_bandwidth(
        &mut self,
        upload: String,
        download: String,
        field: Direction,
    ) -> Vec<Effect> {
        let up = parse_field(&upload, self.bandwidth.get(Direction::Up));
        let down = parse_field(&download, self.bandwidth.get(Direction::Down));
        match (up, down) {
            (Ok(up), Ok(down)) => {
                let say = |direction: Direction, chosen: &Option<Schedule>| match chosen {
                    Some(schedule) => format!("{} {schedule}", direction.name()),
                    None => format!("{} as configured", direction.name()),
                };
                self.message = Some(format!(
                    "limits for this run: {}, {}",
                    say(Direction::Up, &up),
                    say(Direction::Down, &down)
                ));
                vec![Effect::SetLimits { up, down }]
            }
            (up, down) => {
                let (wrong, error) = match (up, down) {
                    (Err(e), _) => (Direction::Up, e),
                    (_, Err(e)) => (Direction::Down, e),
                    _ => (field, String::new()),
                };
                self.dialog = Some(Dialog::Bandwidth {
                    upload,
                    download,
                    field: wrong,
                    error: Some(format!("{}: {error}", wrong.name())),
                });
                Vec::new()
            }
        }
    }
}
