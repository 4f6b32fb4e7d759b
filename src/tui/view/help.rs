//! The help overlay: every action with its keys, from the key map, and what
//! the marks mean.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::widgets::{centered, pane};
use crate::tui::app::State;
use crate::tui::keys::KeyAction;
use crate::tui::text::fit;
use crate::tui::theme::Role;
use crate::tui::tree::Mark;

pub fn help_overlay(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let mut lines = Vec::new();
    for action in KeyAction::ALL {
        let keys: Vec<String> = state
            .keys
            .keys(action)
            .iter()
            .map(|b| b.to_string())
            .collect();
        if keys.is_empty() {
            continue;
        }
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:<18}", fit(&keys.join(" "), 17)),
                t.fg(Role::Key).add_modifier(Modifier::BOLD),
            ),
            Span::raw(action.describe()),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Marks",
        Style::new().add_modifier(Modifier::BOLD),
    )));
    for m in Mark::ALL {
        lines.push(Line::from(vec![
            Span::styled(format!("  {}  ", m.symbol()), t.mark(m)),
            Span::raw(m.label()),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled("  *  ", t.fg(Role::Marked)),
        Span::raw("marked for upload"),
    ]));
    let rect = centered(area, 66, area.height.saturating_sub(2));
    frame.render_widget(Clear, rect);
    let block = pane(state, " Help · keys from your key map ", true)
        .title_bottom(Line::from(" esc close · ↑↓ scroll ").right_aligned());
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((state.panes.help.unwrap_or(0), 0)),
        rect,
    );
}
