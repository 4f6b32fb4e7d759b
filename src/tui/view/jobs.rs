//! The jobs pane: an overall gauge, then one row per upload, retrieval,
//! deletion or migration copy with its progress, rate and ETA (or its wait at
//! the store).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::widgets::pane;
use crate::tui::app::{Focus, State};
use crate::tui::jobs::{JobKind, JobState};
use crate::tui::text::{self, count, duration, fit, fit_left, human_bytes};
use crate::tui::theme::Role;
use crate::tui::tree::Mark;

/// A row's state as the jobs pane words it.
fn state_label(state: &JobState, kind: &JobKind) -> &'static str {
    let migrating = matches!(kind, JobKind::Migrate { .. });
    match state {
        JobState::Queued => "queued",
        JobState::AtStore { .. } => "at the store",
        JobState::Running if migrating => "copying",
        JobState::Running => "uploading",
        JobState::Done if migrating => "copied",
        JobState::Done => "done",
        JobState::Failed(_) => "failed",
        JobState::Cancelled => "cancelled",
    }
}

pub fn jobs_pane(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let focused = state.focus == Focus::Jobs && state.dialog.is_none();
    let totals = state.jobs.totals();
    // Counts as the rest of the UI writes them (5,000).
    let n = |n: usize| count(n as u64);
    let mut title = format!(
        " Jobs · {} running · {} queued · {} done",
        n(totals.running),
        n(totals.queued),
        n(totals.done)
    );
    for (value, what) in [
        (totals.at_store, "at the store"),
        (totals.failed, "failed"),
        (totals.cancelled, "cancelled"),
    ] {
        if value > 0 {
            title.push_str(&format!(" · {} {what}", n(value)));
        }
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
    let rate = state.jobs.rate(state.clock.ms);
    let eta = state.jobs.eta_secs(state.clock.ms);
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
        let rate = job.rate(state.clock.ms);
        let right = match (&job.state, job.kind) {
            (
                JobState::AtStore { ready_at },
                JobKind::Retrieve {
                    tier, started_at, ..
                },
            ) => retrieval_wait(state, *tier, state.tier_wait(*tier), *started_at, *ready_at),
            (
                JobState::AtStore { ready_at },
                JobKind::Migrate {
                    tier,
                    wait,
                    started_at,
                },
            ) => retrieval_wait(state, *tier, *wait, *started_at, *ready_at),
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
                job.eta_secs(state.clock.ms)
                    .map(duration)
                    .unwrap_or_else(|| "–".into()),
                if job.cancel_requested && !state_.is_finished() {
                    "cancelling"
                } else {
                    state_label(state_, job.kind)
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
        let selected = focused && index == state.jobs.selected;
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

/// A retrieval job the store is working on: tier, age, the tier's usual window
/// (`wait`, seconds) and when its output stops being downloadable.
fn retrieval_wait(
    state: &State,
    tier: crate::model::Tier,
    (from, to): (u64, u64),
    started_at: i64,
    ready_at: Option<i64>,
) -> String {
    let age = (state.clock.now_secs - started_at).max(0) as u64;
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
