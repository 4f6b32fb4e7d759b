//! Drawing: `view(&State, &mut Frame)`. Reads the state, never changes it, and
//! builds only the rows that fit on screen. One file per pane; where the panes
//! go is `tui::layout`'s, shared with the reducer.

mod details;
mod dialogs;
mod help;
mod jobs;
mod log;
mod status;
mod tree;
mod widgets;

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub use details::EARLY_DELETION_DAYS;
pub use status::hints;

use crate::tui::app::State;
use crate::tui::keys::KeyAction;
use crate::tui::layout::{MIN_HEIGHT, MIN_WIDTH};
use crate::tui::theme::Role;

pub fn view(state: &State, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(state, frame, area);
        return;
    }
    let areas = state.areas(area);
    status::title_bar(state, frame, areas.title);
    tree::tree_pane(state, frame, areas.tree);
    if let Some(rect) = areas.details {
        details::details_pane(state, frame, rect);
    }
    if let Some(rect) = areas.jobs {
        jobs::jobs_pane(state, frame, rect);
    }
    if let Some(rect) = areas.log {
        log::log_pane(state, frame, rect);
    }
    status::status_bar(state, frame, areas.status);
    if state.panes.help.is_some() {
        help::help_overlay(state, frame, area);
    }
    if let Some(dialog) = &state.dialog {
        dialogs::dialog_box(state, dialog, frame, area);
    }
}

fn too_small(state: &State, frame: &mut Frame, area: Rect) {
    let quit = state
        .keys
        .first(KeyAction::Quit)
        .map(|b| b.to_string())
        .unwrap_or_else(|| "q".into());
    let lines = vec![
        Line::from(Span::styled(
            "Terminal too small",
            state.theme.fg(Role::Problem),
        )),
        Line::from(format!(
            "{}×{}; firn needs at least {MIN_WIDTH}×{MIN_HEIGHT}.",
            area.width, area.height
        )),
        Line::from(format!("Enlarge the window, or press {quit} to quit.")),
    ];
    let top = area.height.saturating_sub(lines.len() as u16) / 2;
    let rect = Rect::new(area.x, area.y + top, area.width, area.height - top);
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        rect,
    );
}
