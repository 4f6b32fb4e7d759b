//! Drawing: `view(&State, &mut Frame)`. Reads the state, never changes it, and
//! builds only the rows that fit on screen.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

use super::app::{Dialog, Focus, Phase, State};
use super::jobs::{JobKind, JobState};
use super::keys::KeyAction;
use super::layout::{MIN_HEIGHT, MIN_WIDTH};
use super::text::{self, count, duration, fit, fit_left, human_bytes, time_ns};
use super::theme::Role;
use super::tree::{Class, JobMark, Mark, NodeId};
use crate::catalog::ArchiveState;

/// Glacier bills deleting an archive within this many days of its upload.
pub const EARLY_DELETION_DAYS: i64 = 90;

pub fn view(state: &State, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(state, frame, area);
        return;
    }
    let areas = state.areas(area);
    title_bar(state, frame, areas.title);
    tree_pane(state, frame, areas.tree);
    if let Some(rect) = areas.details {
        details_pane(state, frame, rect);
    }
    if let Some(rect) = areas.jobs {
        jobs_pane(state, frame, rect);
    }
    if let Some(rect) = areas.log {
        log_pane(state, frame, rect);
    }
    status_bar(state, frame, areas.status);
    if state.show_help {
        help_overlay(state, frame, area);
    }
    if let Some(dialog) = &state.dialog {
        dialog_box(state, dialog, frame, area);
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

fn pane<'a>(state: &State, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(state.theme.border(focused))
        .title(title)
}

fn title_bar(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let totals = state.tree.totals();
    let mut right = vec![
        Span::styled("view ", t.dim()),
        Span::raw(state.view.label()),
        Span::styled(" · sort ", t.dim()),
        Span::raw(state.sort.label()),
    ];
    if matches!(state.phase, Phase::Ready) {
        right.push(Span::styled(" · ", t.dim()));
        right.push(Span::styled(
            format!(
                "{} pending ({})",
                count(u64::from(totals.pending())),
                human_bytes(totals.pending_bytes)
            ),
            t.fg(Role::Changed),
        ));
    }
    if state.tree.marked_count() > 0 {
        right.push(Span::styled(" · ", t.dim()));
        right.push(Span::styled(
            format!("{} marked", state.tree.marked_count()),
            t.fg(Role::Marked),
        ));
    }
    // The last reconciliation, when it found something (I shows it).
    if let Some(r) = &state.reconciliation
        && r.problems() > 0
    {
        right.push(Span::styled(" · ", t.dim()));
        right.push(Span::styled(
            format!("inventory: {} to check", r.problems()),
            t.fg(Role::Problem),
        ));
    }
    right.push(Span::raw(" "));
    let right_w: usize = right.iter().map(|s| s.width()).sum();
    let left_room = (area.width as usize).saturating_sub(right_w + 1);
    let set = if state.set_id == state.root {
        String::new()
    } else {
        format!(" (set {})", state.set_id)
    };
    let left_text = fit_left(&format!("{}{set}", state.root), left_room.saturating_sub(7));
    let mut spans = vec![
        Span::styled(" firn ", t.fg(Role::Title).add_modifier(Modifier::BOLD)),
        Span::raw(left_text),
    ];
    let used: usize = spans.iter().map(|s| s.width()).sum();
    spans.push(Span::raw(
        " ".repeat((area.width as usize).saturating_sub(used + right_w)),
    ));
    spans.extend(right);
    frame.render_widget(Line::from(spans), area);
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

fn tree_pane(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let focused = state.focus == Focus::Tree && state.dialog.is_none();
    let title = match state.phase {
        Phase::Ready => format!(" Tree · {} entries ", count(state.tree.len() as u64)),
        _ => " Tree ".into(),
    };
    let block = pane(state, title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    match &state.phase {
        Phase::Scanning(progress) => {
            let spin = SPINNER[(state.clock_ms / 100) as usize % SPINNER.len()];
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
    if state.rows.is_empty() {
        let text = if state.tree.is_empty() {
            "The tree is empty and nothing is archived.".to_string()
        } else {
            format!(
                "Nothing in the {} view (v switches views).",
                state.view.label()
            )
        };
        frame.render_widget(Paragraph::new(Span::styled(text, t.dim())), inner);
        return;
    }
    let height = inner.height as usize;
    let offset = state.offset.min(state.rows.len().saturating_sub(1));
    let end = (offset + height).min(state.rows.len());
    for (i, &id) in state.rows[offset..end].iter().enumerate() {
        let selected = offset + i == state.selected;
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
    let Some(r) = state.tree.rollup(id) else {
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
            return state.tree.mark(id).label().to_string();
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
    let tree = &state.tree;
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

fn kv(state: &State, key: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{key:<10}"), state.theme.dim()),
        Span::raw(value.into()),
    ])
}

fn details_pane(state: &State, frame: &mut Frame, area: Rect) {
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
    let tree = &state.tree;
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
                let age_days = (state.now_secs - v.uploaded_at).max(0) / 86_400;
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
                lines.push(Line::from(vec![
                    Span::styled("  id ", t.dim()),
                    Span::raw(v.archive_id.clone()),
                ]));
                let window_end = v.uploaded_at + EARLY_DELETION_DAYS * 86_400;
                let left = window_end - state.now_secs;
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

/// A row's state as the jobs pane words it.
fn state_label(state: &JobState) -> &'static str {
    match state {
        JobState::Queued => "queued",
        JobState::AtStore { .. } => "at the store",
        JobState::Running => "uploading",
        JobState::Done => "done",
        JobState::Failed(_) => "failed",
        JobState::Cancelled => "cancelled",
    }
}

fn jobs_pane(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let focused = state.focus == Focus::Jobs && state.dialog.is_none();
    let totals = state.jobs.totals();
    let mut title = format!(
        " Jobs · {} running · {} queued · {} done",
        totals.running, totals.queued, totals.done
    );
    if totals.at_store > 0 {
        title.push_str(&format!(" · {} at the store", totals.at_store));
    }
    if totals.failed > 0 {
        title.push_str(&format!(" · {} failed", totals.failed));
    }
    if totals.cancelled > 0 {
        title.push_str(&format!(" · {} cancelled", totals.cancelled));
    }
    title.push(' ');
    let block = pane(state, title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    // Overall gauge.
    let ratio = if totals.bytes == 0 {
        if totals.active() == 0 { 1.0 } else { 0.0 }
    } else {
        totals.bytes_done as f64 / totals.bytes as f64
    };
    let rate = state.jobs.rate(state.clock_ms);
    let eta = state.jobs.eta_secs(state.clock_ms);
    let info = format!(
        " {:>3}%  {} / {}  {}  ETA {}",
        (ratio * 100.0).floor() as u64,
        human_bytes(totals.bytes_done),
        human_bytes(totals.bytes),
        text::rate(rate),
        if totals.active() == 0 {
            "–".into()
        } else {
            eta.map(duration).unwrap_or_else(|| "–".into())
        }
    );
    let bar_w = (inner.width as usize)
        .saturating_sub(info.len() + 1)
        .min(40);
    frame.render_widget(
        Line::from(vec![
            Span::styled("all ", t.dim()),
            Span::styled(text::bar(ratio, bar_w.saturating_sub(4)), t.fg(Role::Gauge)),
            Span::raw(info),
        ]),
        Rect::new(inner.x, inner.y, inner.width, 1),
    );
    let height = inner.height.saturating_sub(1) as usize;
    let offset = state.job_window(height);
    let end = (offset + height).min(state.jobs.len());
    let width = inner.width as usize;
    for (i, job) in state.jobs.slice(offset..end).enumerate() {
        let index = offset + i;
        let mark = match &job.state {
            JobState::Queued | JobState::AtStore { .. } => Mark::Queued,
            JobState::Running => Mark::Uploading,
            JobState::Done => Mark::UpToDate,
            JobState::Failed(_) => Mark::Failed,
            JobState::Cancelled => Mark::Ignored,
        };
        let rate = job.rate(state.clock_ms);
        let right = match (&job.state, job.kind) {
            (
                JobState::AtStore { ready_at },
                JobKind::Retrieve {
                    tier, started_at, ..
                },
            ) => retrieval_wait(state, *tier, *started_at, *ready_at),
            (JobState::Running, JobKind::Retrieve { .. }) => format!(
                " {:>4}%  {:>10} / {:<10} {:>11}  downloading",
                (job.ratio() * 100.0).floor() as u64,
                human_bytes(job.done.min(job.bytes)),
                human_bytes(job.bytes),
                text::rate(rate),
            ),
            (JobState::Failed(reason), _) => format!(" failed: {reason}"),
            (state_, JobKind::Delete) => format!(
                " {:>10}  {}",
                human_bytes(job.bytes),
                match state_ {
                    JobState::Running => "deleting",
                    JobState::Done => "deleted",
                    JobState::Cancelled => "cancelled",
                    _ => "to delete",
                }
            ),
            (JobState::Cancelled, _) => " cancelled".to_string(),
            (state_, _) => format!(
                " {:>4}%  {:>10} / {:<10} {:>11}  ETA {:>6}  {}",
                (job.ratio() * 100.0).floor() as u64,
                human_bytes(job.done.min(job.bytes)),
                human_bytes(job.bytes),
                text::rate(rate),
                job.eta_secs(state.clock_ms)
                    .map(duration)
                    .unwrap_or_else(|| "–".into()),
                if job.cancel_requested && !state_.is_finished() {
                    "cancelling"
                } else {
                    state_label(state_)
                }
            ),
        };
        let failed = matches!(job.state, JobState::Failed(_));
        let bar_cells = 12;
        // The key gets what the progress columns (about 64 cells) leave.
        let longest = state
            .jobs
            .slice(offset..end)
            .map(|j| text::width(&j.key))
            .max()
            .unwrap_or(0);
        let key_w = longest.clamp(12, width.saturating_sub(3 + bar_cells + 64).max(12));
        let key = fit_left(&job.key, key_w);
        let bar = if failed || job.state == JobState::Cancelled {
            " ".repeat(bar_cells)
        } else {
            text::bar(job.ratio(), bar_cells)
        };
        let mut line_text_w = 2 + key_w + 1 + bar_cells;
        let right = fit(&right, width.saturating_sub(line_text_w));
        line_text_w += text::width(&right);
        let selected = focused && index == state.job_selected;
        let spans = vec![
            Span::styled(format!("{} ", mark.symbol()), t.mark(mark)),
            Span::raw(format!("{key:<key_w$} ")),
            Span::styled(bar, t.fg(Role::Gauge)),
            Span::styled(
                right,
                if failed {
                    t.fg(Role::Problem)
                } else {
                    Style::new()
                },
            ),
            Span::raw(" ".repeat(width.saturating_sub(line_text_w))),
        ];
        let mut p = Paragraph::new(Line::from(spans));
        if selected {
            p = p.style(t.selection(true));
        }
        frame.render_widget(
            p,
            Rect::new(inner.x, inner.y + 1 + i as u16, inner.width, 1),
        );
    }
}

/// A retrieval job the store is working on: tier, age, the tier's usual window and
/// when its output stops being downloadable.
fn retrieval_wait(
    state: &State,
    tier: crate::model::Tier,
    started_at: i64,
    ready_at: Option<i64>,
) -> String {
    let (from, to) = tier_wait(state, tier);
    let age = (state.now_secs - started_at).max(0) as u64;
    let expected = match ready_at {
        Some(at) => format!("ready ~{}", text::format_time(at)),
        None => format!("expected {}–{}", duration(from), duration(to)),
    };
    let expires =
        ready_at.unwrap_or(started_at + from as i64) + crate::engine::JOB_OUTPUT_KEPT_SECS;
    format!(
        " {} · at the store {} · {expected} · output kept until {}",
        tier.as_str(),
        duration(age),
        text::format_time(expires)
    )
}

fn tier_wait(state: &State, tier: crate::model::Tier) -> (u64, u64) {
    use crate::model::Tier;
    state.retrieval_waits[match tier {
        Tier::Expedited => 0,
        Tier::Standard => 1,
        Tier::Bulk => 2,
    }]
}

/// One orphan: what its description names (or its id), size and age.
fn orphan_line(orphan: &crate::engine::Orphan) -> String {
    let name = orphan
        .description
        .as_ref()
        .and_then(|d| d.key.clone())
        .unwrap_or_else(|| format!("archive {}", fit(&orphan.archive_id, 16)));
    format!(
        "{name} · {} · stored {}{}",
        human_bytes(orphan.size),
        text::format_time(orphan.created_at),
        match &orphan.refused {
            Some(why) => format!(" · cannot adopt: {why}"),
            None => String::new(),
        }
    )
}

/// The reconciliation view's body and key line.
fn reconciliation_text(state: &State) -> (String, &'static str) {
    let Some(r) = &state.reconciliation else {
        return (
            "No inventory has been compared with the catalog yet.\nAn inventory lists every archive the store holds; Glacier takes hours to prepare one (the job is kept and reused for 24 hours).".into(),
            "n: request an inventory    esc: close",
        );
    };
    let mut body = format!(
        "Inventory of {}, compared {}.\n{} archives in the store, {} catalog records: {} match, {} too new to check.",
        text::format_time(r.inventory_date),
        text::format_time(r.checked_at),
        count(r.archive_count),
        count(r.record_count),
        count(r.matched),
        count(r.too_new)
    );
    if r.is_consistent() {
        body.push_str("\n\nEvery archive is accounted for.");
    }
    if !r.orphans.is_empty() {
        body.push_str(&format!(
            "\n\nOrphans (in the store, not in the catalog): {}",
            r.orphans.len()
        ));
        for orphan in r.orphans.iter().take(6) {
            body.push_str(&format!("\n{}", orphan_line(orphan)));
        }
        if r.orphans.len() > 6 {
            body.push_str(&format!("\n… and {} more", r.orphans.len() - 6));
        }
    }
    if !r.missing.is_empty() {
        body.push_str(&format!(
            "\n\nMissing (in the catalog, not in the store): {}",
            r.missing.len()
        ));
        for missing in r.missing.iter().take(4) {
            body.push_str(&format!(
                "\n{} · {} · {}",
                missing.key,
                human_bytes(missing.size),
                missing.state
            ));
        }
    }
    if !r.mismatched.is_empty() {
        body.push_str(&format!(
            "\n\nSize or tree hash differs: {}",
            r.mismatched.len()
        ));
        for m in r.mismatched.iter().take(4) {
            body.push_str(&format!(
                "\n{} · catalog {} · store {}",
                m.key,
                human_bytes(m.catalog_size),
                human_bytes(m.store_size)
            ));
        }
    }
    let keys = if r.orphans.is_empty() {
        "n: new inventory    esc: close"
    } else {
        "a: adopt  x: delete  n: new inventory  esc: close"
    };
    (body, keys)
}

fn log_pane(state: &State, frame: &mut Frame, area: Rect) {
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

/// Key hints for the status bar, from the key map, in order of importance.
pub fn hints(state: &State) -> Vec<(String, &'static str)> {
    use KeyAction as A;
    let actions: &[KeyAction] = match state.focus {
        Focus::Tree => &[
            A::Mark,
            A::Upload,
            A::BackupAll,
            A::Open,
            A::Search,
            A::NextPending,
            A::View,
            A::Sort,
            A::FocusNext,
            A::ToggleLog,
            A::Help,
            A::Quit,
        ],
        Focus::Jobs => &[
            A::CancelJob,
            A::RetryJob,
            A::Open,
            A::FocusNext,
            A::ToggleLog,
            A::Help,
            A::Quit,
        ],
    };
    actions
        .iter()
        .filter_map(|&a| state.keys.first(a).map(|b| (b.to_string(), a.hint())))
        .collect()
}

fn status_bar(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let width = area.width as usize;
    let line = if let Some(search) = &state.search {
        let mut spans = vec![
            Span::styled("/", t.fg(Role::Key)),
            Span::raw(search.query.clone()),
            Span::styled("▏", t.fg(Role::Key)),
        ];
        if !search.found {
            spans.push(Span::styled("  no match", t.fg(Role::Problem)));
        }
        spans.push(Span::styled(
            "  enter keep · esc cancel · ↑↓ other matches",
            t.dim(),
        ));
        Line::from(spans)
    } else if state.quitting {
        Line::from(Span::styled(
            format!(
                "Stopping: queued work dropped, waiting for {} in flight to finish cleanly…",
                crate::fmt::count(state.jobs.in_flight() as u64)
            ),
            t.fg(Role::Changed),
        ))
    } else {
        let mut spans = Vec::new();
        let mut used = 0;
        if let Some(message) = &state.message {
            let m = fit(message, width.saturating_sub(2));
            used += text::width(&m) + 2;
            spans.push(Span::styled(m, t.fg(Role::Changed)));
            spans.push(Span::raw("  "));
        }
        // Help and quit always show; the others as room allows, in order.
        let all = hints(state);
        let hint_w = |(key, hint): &(String, &str)| text::width(key) + 1 + hint.len() + 2;
        let tail = all.len().saturating_sub(2);
        let reserved: usize = all[tail..].iter().map(hint_w).sum();
        let mut shown = Vec::new();
        for hint in &all[..tail] {
            let w = hint_w(hint);
            if used + w + reserved > width {
                break;
            }
            used += w;
            shown.push(hint.clone());
        }
        shown.extend(all[tail..].iter().cloned());
        for (key, hint) in shown {
            spans.push(Span::styled(
                key,
                t.fg(Role::Key).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(format!(" {hint}  ")));
        }
        Line::from(spans)
    };
    frame.render_widget(line, area);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn help_overlay(state: &State, frame: &mut Frame, area: Rect) {
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
            .scroll((state.help_scroll, 0)),
        rect,
    );
}

fn dialog_box(state: &State, dialog: &Dialog, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let (title, body, keys, role) = match dialog {
        Dialog::ConfirmBackupAll { files, bytes } => (
            " Back up everything pending? ".to_string(),
            format!(
                "Upload {} ({}) that are new or changed.\nUploads run in the background; you can keep browsing.",
                crate::fmt::plural(*files, "file"),
                human_bytes(*bytes)
            ),
            "y / enter: back up    n / esc: cancel",
            Role::Changed,
        ),
        Dialog::ConfirmQuit { running } => (
            " Uploads are running ".to_string(),
            format!(
                "{} not finished. Quit anyway?\nThey are cancelled; firn waits for those in flight to stop cleanly, so nothing is left half-recorded.",
                crate::fmt::plural_with(*running as u64, "upload", "is", "are")
            ),
            "y / enter: cancel them and quit    n / esc: keep running",
            Role::Changed,
        ),
        Dialog::Retrieve {
            keys,
            bytes,
            tier,
            destination,
        } => {
            use crate::model::Tier;
            let mut body = format!(
                "Retrieve {} ({}) into:\n  {destination}▏\n\nTier:",
                crate::fmt::plural(keys.len() as u64, "file"),
                human_bytes(*bytes)
            );
            for option in [Tier::Expedited, Tier::Standard, Tier::Bulk] {
                let (from, to) = tier_wait(state, option);
                let requests = keys.len() as u64;
                body.push_str(&format!(
                    "\n{} {:<10} ready in {}–{}, ≈ {}",
                    if option == *tier { "●" } else { "○" },
                    option.as_str(),
                    duration(from),
                    duration(to),
                    state
                        .prices
                        .format(state.prices.retrieval_estimate(*bytes, requests, option))
                ));
            }
            body.push_str("\n\nFiles in place with other content are not replaced without asking; identical ones are skipped.");
            (
                " Retrieve archived files ".to_string(),
                body,
                "enter: request  tab: tier  type: folder  esc: cancel",
                Role::Changed,
            )
        }
        Dialog::ConfirmDelete { plan, note } => {
            let prices = &state.prices;
            let mut body = format!(
                "Delete {} ({}) from the store? This cannot be undone.",
                crate::fmt::plural(plan.items.len() as u64, "archive"),
                human_bytes(plan.total_bytes)
            );
            for item in plan.items.iter().take(8) {
                body.push_str(&format!(
                    "\n{} · {} · {} d{}",
                    item.record.key,
                    human_bytes(item.record.size),
                    item.age_days(),
                    if item.early {
                        format!(" · early ≈ {}", prices.format(item.early_charge))
                    } else {
                        String::new()
                    }
                ));
            }
            if plan.items.len() > 8 {
                body.push_str(&format!("\n… and {} more", plan.items.len() - 8));
            }
            body.push_str(&format!(
                "\n\nEarly-deletion charge ≈ {} ({} inside the {}-day minimum).",
                prices.format(plan.total_charge),
                plan.early_count(),
                prices.minimum_storage_days
            ));
            if let Some(note) = note {
                body.push_str(&format!("\n{note}"));
            }
            body.push_str("\nLocal files are not touched; one that still exists becomes new.");
            (
                " Delete archives? ".to_string(),
                body,
                "y: delete    n / esc: keep them",
                Role::Problem,
            )
        }
        Dialog::Cost(summary) => {
            let prices = &state.prices;
            let mut body = format!(
                "Current versions   {} archives, {}\nSuperseded         {} archives, {}\nStorage            ≈ {} per month\nEarly deletion     ≈ {} if the {} superseded archives inside the {}-day minimum were deleted now\n\nRetrieving every current file:",
                count(summary.current.archives),
                human_bytes(summary.current.bytes),
                count(summary.superseded.archives),
                human_bytes(summary.superseded.bytes),
                prices.format(summary.monthly_storage),
                prices.format(summary.pending_early_deletion),
                count(summary.early.archives),
                prices.minimum_storage_days,
            );
            for estimate in &summary.retrieval {
                let (from, to) = tier_wait(state, estimate.tier);
                body.push_str(&format!(
                    "\n{:<10} ≈ {}, ready in {}–{}",
                    estimate.tier.as_str(),
                    prices.format(estimate.cost),
                    duration(from),
                    duration(to)
                ));
            }
            (
                " Cost ".to_string(),
                body,
                "enter / esc: close",
                Role::Title,
            )
        }
        Dialog::Reconciliation => {
            let (body, keys) = reconciliation_text(state);
            (
                " Store inventory vs catalog ".to_string(),
                body,
                keys,
                Role::Title,
            )
        }
        Dialog::ConfirmDeleteOrphans { orphans } => {
            let bytes: u64 = orphans.iter().map(|o| o.size).sum();
            let mut body = format!(
                "Delete {} ({}) from the store? No catalog records them, so nothing else changes. This cannot be undone.",
                crate::fmt::plural(orphans.len() as u64, "orphan"),
                human_bytes(bytes)
            );
            for orphan in orphans.iter().take(6) {
                body.push_str(&format!("\n{}", orphan_line(orphan)));
            }
            if orphans.len() > 6 {
                body.push_str(&format!("\n… and {} more", orphans.len() - 6));
            }
            (
                " Delete orphans? ".to_string(),
                body,
                "y: delete    n / esc: keep them",
                Role::Problem,
            )
        }
        Dialog::ConfirmOverwrite {
            keys, destination, ..
        } => {
            let mut body = format!(
                "{} in {destination} with other content than the archive:",
                crate::fmt::plural_with(keys.len() as u64, "file", "exists", "exist")
            );
            for key in keys.iter().take(5) {
                body.push_str(&format!("\n  {key}"));
            }
            if keys.len() > 5 {
                body.push_str(&format!("\n  … and {} more", keys.len() - 5));
            }
            body.push_str("\n\nReplace them with the archived versions?");
            (
                " Overwrite local files? ".to_string(),
                body,
                "y: replace them    n / esc: keep the local files",
                Role::Problem,
            )
        }
        Dialog::Error { title, message } => (
            format!(" {title} "),
            message.clone(),
            "enter / esc: close",
            Role::Problem,
        ),
    };
    let width = 64.min(area.width.saturating_sub(4));
    let inner_w = width.saturating_sub(4) as usize;
    let wrapped: u16 = body
        .lines()
        .map(|l| (text::width(l).max(1).div_ceil(inner_w.max(1))) as u16)
        .sum();
    let rect = centered(area, width, wrapped + 5);
    frame.render_widget(Clear, rect);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(t.fg(role).add_modifier(Modifier::BOLD))
        .title(Span::styled(title, t.fg(role).add_modifier(Modifier::BOLD)));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [body_area, _, keys_area] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner.inner(ratatui::layout::Margin::new(1, 0)));
    frame.render_widget(Paragraph::new(body).wrap(Wrap { trim: true }), body_area);
    frame.render_widget(
        Line::from(Span::styled(keys, t.fg(Role::Key))).alignment(Alignment::Center),
        keys_area,
    );
}
