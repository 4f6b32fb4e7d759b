//! The title bar (root, view, sort, what is pending) and the status bar (a
//! message, the search being typed, or key hints from the key map).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::tui::app::{Direction, Focus, Phase, State};
use crate::tui::keys::KeyAction;
use crate::tui::text::{self, count, fit, fit_left, human_bytes};
use crate::tui::theme::Role;

pub fn title_bar(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let totals = state.browse.tree.totals();
    let mut right = Vec::new();
    // The bandwidth limits in force, where there are any.
    for direction in [Direction::Up, Direction::Down] {
        if let Some(shown) = state.bandwidth.get(direction)
            && (shown.limited() || shown.now.for_this_run)
        {
            right.push(Span::styled(
                format!("{} {}", direction.arrow(), shown.describe()),
                t.fg(Role::Queued),
            ));
            right.push(Span::styled(" · ", t.dim()));
        }
    }
    if !state.set.store.is_empty() {
        right.push(Span::raw(state.set.store.clone()));
        right.push(Span::styled(" · ", t.dim()));
    }
    right.extend([
        Span::styled("view ", t.dim()),
        Span::raw(state.browse.view.label()),
        Span::styled(" · sort ", t.dim()),
        Span::raw(state.browse.sort.label()),
    ]);
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
    // How much of the budget the set's storage uses (a warning from 90%).
    if let Some((text, share)) = state.set.budget_text() {
        let style = if share >= 1.0 {
            t.fg(Role::Problem)
        } else if share >= 0.9 {
            t.fg(Role::Changed)
        } else {
            ratatui::style::Style::default()
        };
        right.push(Span::styled(" · ", t.dim()));
        right.push(Span::styled(text, style));
    }
    if state.browse.tree.marked_count() > 0 {
        right.push(Span::styled(" · ", t.dim()));
        right.push(Span::styled(
            format!("{} marked", state.browse.tree.marked_count()),
            t.fg(Role::Marked),
        ));
    }
    // When the last backup finished (red once it is stale, or when none
    // completed and some failed).
    if let Some(backups) = &state.set.backups {
        right.push(Span::styled(" · ", t.dim()));
        right.push(
            match backups.age(state.clock.now_secs, state.set.stale_after) {
                Some(age) => Span::styled(
                    format!("last backup {} ago", crate::fmt::age(age.age_secs)),
                    if age.stale {
                        t.fg(Role::Problem)
                    } else {
                        t.dim()
                    },
                ),
                None if !backups.failed_since.is_empty() => {
                    Span::styled("no backup completed", t.fg(Role::Problem))
                }
                None => Span::styled("no backup recorded", t.dim()),
            },
        );
    }
    // The last reconciliation, when it found something (I shows it).
    if let Some(r) = &state.set.reconciliation
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
    let set = if state.set.id == state.set.root {
        String::new()
    } else {
        format!(" (set {})", state.set.id)
    };
    let left_text = fit_left(
        &format!("{}{set}", state.set.root),
        left_room.saturating_sub(7),
    );
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

pub fn status_bar(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let width = area.width as usize;
    let line = if let Some(search) = &state.browse.search {
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
    } else if state.quitting() {
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
