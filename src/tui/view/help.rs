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
    push_actions(state, &mut lines, KeyAction::panes());
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
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "In dialogs",
        Style::new().add_modifier(Modifier::BOLD),
    )));
    push_actions(state, &mut lines, KeyAction::dialog_only());
    let rect = centered(area, 66, area.height.saturating_sub(2));
    frame.render_widget(Clear, rect);
    let block = pane(state, " Help · keys from your key map ", true)
        .title_bottom(Line::from(keys_hint(state)).right_aligned());
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((state.panes.help.unwrap_or(0), 0)),
        rect,
    );
}

/// One line per action: its keys, what it does.
fn push_actions(state: &State, lines: &mut Vec<Line<'static>>, actions: &[KeyAction]) {
    for &action in actions {
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
                state.theme.fg(Role::Key).add_modifier(Modifier::BOLD),
            ),
            Span::raw(action.describe()),
        ]));
    }
}

/// The overlay's own keys, from the key map: ` esc close · ↑↓ scroll `.
fn keys_hint(state: &State) -> String {
    let first = |action| {
        state
            .keys
            .first(action)
            .map(|b| b.to_string())
            .unwrap_or_default()
    };
    let close = [KeyAction::Back, KeyAction::Help, KeyAction::Quit]
        .into_iter()
        .map(first)
        .find(|k| !k.is_empty())
        .unwrap_or_default();
    let scroll = first(KeyAction::Up) + &first(KeyAction::Down);
    format!(" {close} close · {scroll} scroll ")
}
