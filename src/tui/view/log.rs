//! The log pane: the latest lines, newest at the bottom.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::widgets::pane;
use crate::tui::app::State;
use crate::tui::text::{self, fit};

pub fn log_pane(state: &State, frame: &mut Frame, area: Rect) {
    let block = pane(state, " Log ", false);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let n = inner.height as usize;
    let skip = state.log.len().saturating_sub(n);
    let lines: Vec<Line> = state
        .log
        .iter()
        .skip(skip)
        .map(|(at, line)| {
            Line::from(vec![
                Span::styled(
                    format!("{} ", &text::format_time(*at)[11..]),
                    state.theme.dim(),
                ),
                Span::raw(fit(line, (inner.width as usize).saturating_sub(6))),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
