//! The dialog that changes this run's bandwidth limits (`b`): a rate or a
//! timetable per direction, or nothing for the set's configured limit. Its
//! answer goes to the runtime as [`Effect::SetLimits`], which every transfer in
//! flight follows at once.

use super::action::Effect;
use super::bandwidth::{Direction, LimitShown};
use super::dialogs::Dialog;
use super::state::State;
use crate::limit::Schedule;

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
