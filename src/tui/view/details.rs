//! The details pane: a file's local state, hashes and archived versions, or a
//! directory's counts by mark.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::widgets::{kv, pane};
use crate::engine::ArchiveState;
use crate::tui::app::{Phase, State};
use crate::tui::jobs::JobState;
use crate::tui::text::{self, count, human_bytes, time_ns};
use crate::tui::theme::Role;
use crate::tui::tree::{Class, JobMark, Mark};

/// Glacier bills deleting an archive within this many days of its upload.
pub const EARLY_DELETION_DAYS: i64 = 90;

pub fn details_pane(state: &State, frame: &mut Frame, area: Rect) {
    let block = pane(state, " Details ", false);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(id) = state
        .selected_node()
        .filter(|_| matches!(state.phase, Phase::Ready))
    else {
        return;
    };
    let t = &state.theme;
    let tree = &state.browse.tree;
    let node = tree.node(id);
    let mark = tree.mark(id);
    let key = tree.key(id);
    let mut lines = vec![Line::from(Span::styled(
        key.clone(),
        Style::new().add_modifier(Modifier::BOLD),
    ))];
    lines.push(Line::from(vec![
        Span::styled(format!("{:<10}", "status"), t.dim()),
        Span::styled(format!("{} {}", mark.symbol(), mark.label()), t.mark(mark)),
    ]));
    if let Some(reason) = tree.reason(id) {
        lines.push(kv(state, "reason", reason.to_string()));
    }
    if let Some(job) = state.jobs.of_node(id).and_then(|i| state.jobs.get(i))
        && let JobState::Failed(reason) = &job.state
    {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<10}", "upload"), t.dim()),
            Span::styled(format!("failed: {reason}"), t.fg(Role::Problem)),
        ]));
    }
    if let Some(r) = tree.rollup(id).filter(|_| tree.is_dir(id)) {
        lines.push(kv(state, "size", format!("{} local", human_bytes(r.bytes))));
        lines.push(kv(
            state,
            "pending",
            format!(
                "{} files, {}",
                count(r.pending().into()),
                human_bytes(r.pending_bytes)
            ),
        ));
        lines.push(Line::from(""));
        for m in Mark::ALL {
            let n = match m {
                Mark::New => r.count(Class::New),
                Mark::Changed => r.count(Class::Changed),
                Mark::UpToDate => r.count(Class::UpToDate),
                Mark::ArchivedOnly => r.count(Class::ArchivedOnly),
                Mark::Ignored => r.count(Class::Ignored),
                Mark::Unreadable => r.count(Class::Unreadable),
                Mark::Skipped => r.count(Class::Skipped),
                Mark::Queued => r.job(JobMark::Queued),
                Mark::Uploading => r.job(JobMark::Uploading),
                Mark::Failed => r.job(JobMark::Failed),
                Mark::Empty => 0,
            };
            if n > 0 {
                lines.push(Line::from(vec![
                    Span::styled(format!(" {} ", m.symbol()), t.mark(m)),
                    Span::raw(format!("{:<14}{:>10}", m.label(), count(n.into()))),
                ]));
            }
        }
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        return;
    }
    let archived_only = node.class == Class::ArchivedOnly;
    if archived_only {
        lines.push(kv(state, "local", "gone (archived only)"));
    } else if node.class != Class::Unreadable || node.size > 0 {
        lines.push(kv(
            state,
            "local",
            format!(
                "{} · modified {}",
                human_bytes(node.size),
                time_ns(node.mtime_ns)
            ),
        ));
    }
    let details = state.details.as_ref().filter(|d| d.node == id);
    let cached = details.and_then(|d| d.cached).filter(|c| {
        !archived_only && c.fingerprint.size == node.size && c.fingerprint.mtime_ns == node.mtime_ns
    });
    match cached {
        Some(c) => {
            for (label, value) in [
                ("SHA-1", hex::encode(c.hash.sha1)),
                ("tree hash", hex::encode(c.hash.tree_hash)),
            ] {
                if inner.width as usize >= 10 + value.len() {
                    lines.push(kv(state, label, value));
                } else {
                    lines.push(Line::from(Span::styled(label, t.dim())));
                    lines.push(Line::from(format!("  {value}")));
                }
            }
        }
        None if !archived_only && details.is_some() => {
            lines.push(kv(state, "SHA-1", "not read yet (hashed when uploaded)"));
        }
        None => {}
    }
    lines.push(Line::from(""));
    match details.map(|d| &d.versions) {
        None => lines.push(Line::from(Span::styled(
            "loading archived versions…",
            t.dim(),
        ))),
        Some(Err(e)) => lines.push(Line::from(Span::styled(
            format!("cannot read the catalog: {e}"),
            t.fg(Role::Problem),
        ))),
        Some(Ok(versions)) if versions.is_empty() => {
            lines.push(Line::from(Span::styled("never archived", t.dim())))
        }
        Some(Ok(versions)) => {
            lines.push(Line::from(Span::styled(
                format!("Archived versions ({})", versions.len()),
                Style::new().add_modifier(Modifier::BOLD),
            )));
            for v in versions.iter().rev() {
                let age_days = (state.clock.now_secs - v.uploaded_at).max(0) / 86_400;
                let state_style = match v.state {
                    ArchiveState::Current => t.fg(Role::Ok).add_modifier(Modifier::BOLD),
                    _ => t.dim(),
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<11}", v.state.as_str()), state_style),
                    Span::raw(format!(
                        "{}  {}  {}d old",
                        text::format_time(v.uploaded_at),
                        human_bytes(v.size),
                        age_days
                    )),
                ]));
                match v.pack {
                    // A packed file: the pack holding it, and its place there.
                    Some(slot) => {
                        lines.push(Line::from(vec![
                            Span::styled("  pack ", t.dim()),
                            Span::raw(format!("{} @{}", v.archive_id, slot.offset)),
                        ]));
                        lines.push(Line::from(Span::styled(
                            "  deleting it forgets it: its bytes stay in the pack until the pack's last file goes",
                            t.dim(),
                        )));
                    }
                    None => lines.push(Line::from(vec![
                        Span::styled("  id ", t.dim()),
                        Span::raw(v.archive_id.clone()),
                    ])),
                }
                let window_end = v.uploaded_at + EARLY_DELETION_DAYS * 86_400;
                let left = window_end - state.clock.now_secs;
                let window = if left > 0 {
                    Span::styled(
                        format!(
                            "  early deletion until {}, {}d left",
                            &text::format_time(window_end)[..10],
                            (left + 86_399) / 86_400
                        ),
                        t.fg(Role::Changed),
                    )
                } else {
                    Span::styled(
                        format!(
                            "  free to delete since {}",
                            &text::format_time(window_end)[..10]
                        ),
                        t.dim(),
                    )
                };
                lines.push(Line::from(window));
            }
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
