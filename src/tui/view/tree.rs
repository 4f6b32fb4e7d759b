//! The tree pane: the scan's progress, then the visible rows with marks,
//! roll-ups, sizes and times.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::widgets::pane;
use crate::tui::app::{Focus, Phase, State};
use crate::tui::text::{self, count, fit, human_bytes, time_ns};
use crate::tui::theme::Role;
use crate::tui::tree::{Class, JobMark, Mark, NodeId};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

pub fn tree_pane(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let focused = state.focus == Focus::Tree && state.dialog.is_none();
    let title = match state.phase {
        Phase::Ready => format!(" Tree · {} entries ", count(state.browse.tree.len() as u64)),
        _ => " Tree ".into(),
    };
    let block = pane(state, title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    match &state.phase {
        Phase::Scanning(progress) => {
            let spin = SPINNER[(state.clock.ms / 100) as usize % SPINNER.len()];
            let lines = vec![
                Line::from(vec![
                    Span::styled(format!("{spin} "), t.fg(Role::Uploading)),
                    Span::raw("Scanning and comparing with the catalog…"),
                ]),
                Line::from(""),
                Line::from(format!(
                    "  {} entries · {} files · {}",
                    count(progress.entries),
                    count(progress.files),
                    human_bytes(progress.bytes)
                )),
                Line::from(""),
                Line::from(Span::styled(
                    "  Files whose fingerprint moved are hashed after the walk.",
                    t.dim(),
                )),
            ];
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
            return;
        }
        Phase::Failed => {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    "The scan failed; see the log (L).",
                    t.fg(Role::Problem),
                )),
                inner,
            );
            return;
        }
        Phase::Ready => {}
    }
    if state.browse.rows.is_empty() {
        let text = if state.browse.tree.is_empty() {
            "The tree is empty and nothing is archived.".to_string()
        } else {
            format!(
                "Nothing in the {} view (v switches views).",
                state.browse.view.label()
            )
        };
        frame.render_widget(Paragraph::new(Span::styled(text, t.dim())), inner);
        return;
    }
    let height = inner.height as usize;
    let offset = state
        .browse
        .offset
        .min(state.browse.rows.len().saturating_sub(1));
    let end = (offset + height).min(state.browse.rows.len());
    for (i, &id) in state.browse.rows[offset..end].iter().enumerate() {
        let selected = offset + i == state.browse.selected;
        let line = tree_row(state, id, inner.width as usize, selected && focused);
        let rect = Rect::new(inner.x, inner.y + i as u16, inner.width, 1);
        let mut paragraph = Paragraph::new(line);
        if selected {
            paragraph = paragraph.style(t.selection(focused));
        }
        frame.render_widget(paragraph, rect);
    }
}

/// Directory summary: `3 pending 1.2 MiB · 2 archived-only · 1 problem`.
fn dir_summary(state: &State, id: NodeId) -> String {
    let Some(r) = state.browse.tree.rollup(id) else {
        return String::new();
    };
    let mut parts = Vec::new();
    let uploading = r.job(JobMark::Uploading) + r.job(JobMark::Queued);
    if uploading > 0 {
        parts.push(format!("{uploading} uploading"));
    }
    if r.pending() > 0 {
        parts.push(format!(
            "{} pending {}",
            count(r.pending().into()),
            human_bytes(r.pending_bytes)
        ));
    }
    if r.count(Class::ArchivedOnly) > 0 {
        parts.push(format!(
            "{} archived-only",
            count(r.count(Class::ArchivedOnly).into())
        ));
    }
    if r.problems() > 0 {
        parts.push(format!(
            "{} problem{}",
            r.problems(),
            if r.problems() == 1 { "" } else { "s" }
        ));
    }
    if parts.is_empty() {
        let n = r.entries();
        if n == 0 {
            return state.browse.tree.mark(id).label().to_string();
        }
        if r.count(Class::UpToDate) == n && n > 0 {
            parts.push(format!("{} up to date", count(n.into())));
        } else {
            parts.push(format!("{} entries", count(n.into())));
        }
    }
    parts.join(" · ")
}

fn tree_row(state: &State, id: NodeId, width: usize, focused_selection: bool) -> Line<'static> {
    let t = &state.theme;
    let tree = &state.browse.tree;
    let node = tree.node(id);
    let mark = tree.mark(id);
    let is_dir = tree.is_dir(id);
    let depth = tree.depth(id);
    let marked = tree.is_marked_within(id);
    let (size, mtime) = match tree.rollup(id) {
        Some(r) if is_dir => (r.bytes, r.mtime_ns),
        _ => (node.size, node.mtime_ns),
    };
    let size_text = if is_dir && size == 0 {
        String::new()
    } else {
        human_bytes(size)
    };
    let mtime_text = if mtime == 0 {
        String::new()
    } else {
        time_ns(mtime)
    };
    let right = format!(" {size_text:>10}  {mtime_text:<16}");
    let arrow = if is_dir {
        if tree.is_expanded(id) { "▾ " } else { "▸ " }
    } else {
        "  "
    };
    let indent = "  ".repeat(depth.min(20));
    let name = if is_dir {
        format!("{}/", node.name)
    } else {
        node.name.to_string()
    };
    let lead = 3 + indent.len() + 2;
    let room = width.saturating_sub(lead + right.len());
    let mut name = fit(&name, room);
    let mut summary = String::new();
    let name_w = text::width(&name);
    if is_dir {
        let free = room.saturating_sub(name_w + 2);
        if free > 4 {
            summary = fit(&dir_summary(state, id), free);
        }
    } else if let Some(reason) = tree.reason(id)
        && matches!(mark, Mark::Unreadable | Mark::Skipped)
    {
        let free = room.saturating_sub(name_w + 2);
        if free > 4 {
            summary = fit(reason, free);
        }
    }
    let used = lead
        + name_w
        + if summary.is_empty() {
            0
        } else {
            2 + text::width(&summary)
        };
    let pad = width.saturating_sub(used + right.len());
    if width < lead + right.len() {
        name = fit(&name, width.saturating_sub(lead));
    }
    let mark_style = if focused_selection {
        Style::new()
    } else {
        t.mark(mark)
    };
    let mut spans = vec![
        Span::styled(
            if marked { "*" } else { " " },
            if focused_selection {
                Style::new()
            } else {
                t.fg(Role::Marked)
            },
        ),
        Span::styled(mark.symbol().to_string(), mark_style),
        Span::raw(" "),
        Span::raw(indent),
        Span::styled(arrow, t.dim()),
        Span::styled(
            name,
            if is_dir {
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            },
        ),
    ];
    if !summary.is_empty() {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            summary,
            if focused_selection {
                Style::new()
            } else {
                t.dim()
            },
        ));
    }
    if width >= used + right.len() {
        spans.push(Span::raw(" ".repeat(pad)));
        spans.push(Span::raw(right));
    }
    Line::from(spans)
}
