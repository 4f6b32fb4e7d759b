//! The TUI's bandwidth limits, without a terminal: the title bar shows the
//! limit in force and until when, `b` opens the dialog that changes this run's
//! limits, a bad limit keeps it open saying what is wrong, and what it answers
//! is what the limiters then hold.

mod common;
mod tui_common;

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use firn::limit::{Limiter, LocalTime, Rate, Schedule};
use firn::tui::app::{Action, Bandwidth, Dialog, Direction, Effect, LimitShown, State, update};
use firn::tui::tree::Tree;
use tui_common::*;

fn shown(limiter: &Limiter) -> LimitShown {
    LimitShown {
        now: limiter.now(),
        schedule: limiter.schedule(),
        configured: limiter.configured(),
        at: limiter.local_time(),
    }
}

/// What the runtime hands the reducer: both limiters as they are now.
fn read(up: &Limiter, down: &Limiter) -> Action {
    Action::Bandwidth(Bandwidth {
        up: Some(shown(up)),
        down: Some(shown(down)),
    })
}

/// Limiters on a clock that says Wednesday 12:00.
fn limiter(schedule: &str) -> Arc<Limiter> {
    Limiter::with_clock(
        Schedule::parse(schedule).unwrap(),
        Arc::new(|| LocalTime::new(2, 12, 0, 0)),
    )
}

fn ui() -> State {
    state(Tree::from_entries(mixed_entries()), 140, 30)
}

fn title(state: &State) -> String {
    render(state).lines().next().unwrap_or_default().to_string()
}

/// Applies what the dialog answered to the limiters, as the runtime does.
fn apply(
    effects: Vec<Effect>,
    up: &Limiter,
    down: &Limiter,
) -> (Option<Schedule>, Option<Schedule>) {
    let mut set = None;
    for effect in effects {
        if let Effect::SetLimits { up: u, down: d } = effect {
            up.set_for_this_run(u.clone());
            down.set_for_this_run(d.clone());
            set = Some((u, d));
        }
    }
    set.expect("a SetLimits effect")
}

#[test]
fn the_title_bar_shows_the_limit_in_force_and_until_when() {
    let mut state = ui();
    let (up, down) = (limiter("08:00,512KiB 19:00,4MiB 23:00,off"), limiter("off"));
    // Nothing shown while nothing is limited.
    update(&mut state, read(&limiter("off"), &down));
    assert!(!title(&state).contains('↑'), "{}", title(&state));
    update(&mut state, read(&up, &down));
    let bar = title(&state);
    assert!(bar.contains("↑ 512 KiB/s until 19:00"), "{bar}");
    assert!(!bar.contains('↓'), "{bar}");
    update(&mut state, read(&up, &limiter("2MiB")));
    assert!(title(&state).contains("↓ 2 MiB/s"), "{}", title(&state));
}

#[test]
fn the_dialog_changes_this_runs_limits_and_the_title_follows() {
    let mut state = ui();
    let (up, down) = (limiter("08:00,512KiB 19:00,4MiB 23:00,off"), limiter("off"));
    update(&mut state, read(&up, &down));
    keys(&mut state, "b");
    // Prefilled with the timetable in force; download empty (as configured).
    match &state.dialog {
        Some(Dialog::Bandwidth {
            upload,
            download,
            field,
            error,
        }) => {
            assert_eq!(upload, "08:00,512KiB 19:00,4MiB 23:00,off");
            assert_eq!(download, "");
            assert_eq!(*field, Direction::Up);
            assert_eq!(*error, None);
        }
        other => panic!("no bandwidth dialog: {other:?}"),
    }
    let screen = render(&state);
    assert!(screen.contains("Bandwidth for this run"), "{screen}");
    assert!(
        screen.contains("↑ upload: now 512 KiB/s until 19:00"),
        "{screen}"
    );
    assert!(
        screen.contains("› 08:00,512KiB 19:00,4MiB 23:00,off▏"),
        "{screen}"
    );
    assert!(screen.contains("· (as configured)"), "{screen}");
    assert!(screen.contains("enter: apply"), "{screen}");
    assert!(screen.contains("esc: cancel"), "{screen}");
    // Clear the field (ctrl-u), type a rate; Tab to download and type another.
    update(
        &mut state,
        Action::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
    );
    keys(&mut state, "2 MiB/s");
    key(&mut state, KeyCode::Tab);
    keys(&mut state, "1MiB");
    let effects = key(&mut state, KeyCode::Enter);
    assert!(state.dialog.is_none());
    let (u, d) = apply(effects, &up, &down);
    assert_eq!(u, Some(Schedule::Constant(Rate::PerSecond(2 << 20))));
    assert_eq!(d, Some(Schedule::Constant(Rate::PerSecond(1 << 20))));
    assert_eq!(up.now().rate, Rate::PerSecond(2 << 20));
    update(&mut state, read(&up, &down));
    let bar = title(&state);
    assert!(bar.contains("↑ 2 MiB/s (this run)"), "{bar}");
    assert!(bar.contains("↓ 1 MiB/s (this run)"), "{bar}");

    // Emptied, a field goes back to the set's own limit.
    keys(&mut state, "b");
    update(
        &mut state,
        Action::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
    );
    let effects = key(&mut state, KeyCode::Enter);
    let (u, d) = apply(effects, &up, &down);
    assert_eq!(u, None);
    assert_eq!(d, Some(Schedule::Constant(Rate::PerSecond(1 << 20))));
    update(&mut state, read(&up, &down));
    assert!(
        title(&state).contains("↑ 512 KiB/s until 19:00"),
        "{}",
        title(&state)
    );
}

#[test]
fn a_bad_limit_keeps_the_dialog_open_and_names_the_token() {
    let mut state = ui();
    let (up, down) = (limiter("off"), limiter("off"));
    update(&mut state, read(&up, &down));
    keys(&mut state, "b");
    keys(&mut state, "08:00,1MiB 19:00");
    let effects = key(&mut state, KeyCode::Enter);
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::SetLimits { .. })),
        "{effects:?}"
    );
    let Some(Dialog::Bandwidth {
        error: Some(error), ..
    }) = &state.dialog
    else {
        panic!("the dialog stays open: {:?}", state.dialog);
    };
    assert!(error.contains("\"19:00\""), "{error}");
    let screen = render(&state);
    assert!(screen.contains("19:00\" in the timetable"), "{screen}");
    // Typing again clears the error; Esc leaves everything as it was.
    keys(&mut state, ",4MiB");
    assert!(matches!(
        state.dialog,
        Some(Dialog::Bandwidth { error: None, .. })
    ));
    key(&mut state, KeyCode::Esc);
    assert!(state.dialog.is_none());
    assert!(!up.may_limit());
}

#[test]
fn the_key_is_in_the_help() {
    let mut state = ui();
    update(&mut state, Action::Resize(100, 80));
    keys(&mut state, "?");
    let screen = render(&state);
    assert!(
        line_with(&screen, "bandwidth limits for this run").contains('b'),
        "{screen}"
    );
}

/// The real binary in a terminal: the launch flag's limit in the title bar,
/// and a change from the dialog that an upload in flight follows at once.
#[test]
fn a_limit_changed_in_a_real_terminal_applies_to_the_upload_in_flight() {
    use common::Sandbox;
    use common::pty::Pty;
    use std::time::Duration;

    let sandbox = Sandbox::in_memory();
    // 4 MiB at 64 KiB/s would take a minute.
    sandbox.write("big.bin", common::pattern(4 << 20, 3));
    let mut cmd = sandbox.command();
    cmd.arg(sandbox.tree())
        .args(["--upload-limit", "64KiB"])
        .env("TERM", "xterm-256color");
    let mut pty = Pty::spawn(cmd, 40, 120);
    pty.wait_for("the limit in the title bar", Duration::from_secs(30), |s| {
        s.contains("big.bin") && s.lines().next().is_some_and(|l| l.contains("↑ 64 KiB/s"))
    });
    pty.send("u");
    pty.wait_for("the upload under way", Duration::from_secs(10), |s| {
        s.contains("Jobs")
    });
    // b, clear the field, off, Enter.
    pty.send("b");
    pty.wait_for("the dialog", Duration::from_secs(5), |s| {
        s.contains("Bandwidth for this run")
    });
    pty.send("\u{15}off\r");
    let screen = pty.wait_for("the new limit", Duration::from_secs(5), |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.contains("↑ off (this run)"))
    });
    assert!(!screen.contains("Bandwidth for this run"), "{screen}");
    pty.wait_for("the upload done", Duration::from_secs(20), |s| {
        s.lines()
            .find(|l| l.contains("big.bin"))
            .is_some_and(|l| l.contains('='))
    });
    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    pty.assert_restored();
}
