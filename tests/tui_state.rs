//! The TUI's reducer without a terminal: keys, marks, uploads, jobs, quitting.

mod common;
mod tui_common;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use firn::engine::{BackupSummary, Event};
use firn::tui::app::{Action, Dialog, Effect, Focus, State, update};
use firn::tui::jobs::JobState;
use firn::tui::settings::Settings;
use firn::tui::theme::Theme;
use firn::tui::tree::{JobMark, Mark, SortBy, Tree, View};
use ratatui::style::Color;
use tui_common::*;

fn mixed() -> State {
    state(Tree::from_entries(mixed_entries()), 120, 30)
}

fn select(state: &mut State, key_path: &str) {
    let id = state.browse.tree.find(key_path).unwrap();
    state.browse.tree.reveal(id);
    state.set_tree(state.browse.tree.clone());
    key(state, KeyCode::Home);
    let mut guard = 0;
    while state.selected_node() != Some(id) {
        key(state, KeyCode::Down);
        guard += 1;
        assert!(guard < 100, "cannot reach {key_path}");
    }
}

fn upload_effect(effects: Vec<Effect>) -> (u32, Vec<String>) {
    for effect in effects {
        if let Effect::Upload { batch, candidates } = effect {
            let uploads = candidates.into_iter().filter(|c| c.pending);
            return (batch, uploads.map(|c| c.key).collect());
        }
    }
    panic!("no upload effect");
}

/// The mixed tree, with the keys and colours of a config file's `[tui]` table.
fn mixed_with_config(config: &str) -> State {
    let settings = Settings::from_toml(config, Theme::default()).unwrap();
    let mut state = mixed();
    state.keys = settings.keys;
    state.theme = settings.theme;
    state
}

fn names(state: &State) -> Vec<String> {
    state
        .browse
        .rows
        .iter()
        .map(|&id| state.browse.tree.key(id))
        .collect()
}

#[test]
fn marking_a_directory_uploads_only_its_pending_files() {
    let mut state = mixed();
    select(&mut state, "docs");
    keys(&mut state, " ");
    assert_eq!(state.browse.tree.marked_count(), 1);
    let (_, mut items) = upload_effect(keys(&mut state, "u"));
    items.sort();
    assert_eq!(items, ["docs/taxes-2024.pdf"]);
    let id = state.browse.tree.find("docs/taxes-2024.pdf").unwrap();
    assert_eq!(state.browse.tree.node(id).job, JobMark::Queued);
    assert_eq!(
        state
            .browse
            .tree
            .mark(state.browse.tree.find("docs").unwrap()),
        Mark::Queued
    );
    assert_eq!(
        state.browse.tree.marked_count(),
        0,
        "marks are cleared once queued"
    );
    // Queuing again does not duplicate the job.
    select(&mut state, "docs");
    let effects = keys(&mut state, "u");
    assert!(!effects.iter().any(|e| matches!(e, Effect::Upload { .. })));
    assert_eq!(state.jobs.len(), 1);
}

#[test]
fn upload_without_marks_takes_the_selection() {
    let mut state = mixed();
    select(&mut state, "notes.txt");
    let (_, items) = upload_effect(keys(&mut state, "u"));
    assert_eq!(items, ["notes.txt"]);
}

#[test]
fn backup_all_confirms_with_count_and_bytes() {
    let mut state = mixed();
    assert!(
        keys(&mut state, "U").is_empty(),
        "nothing starts before confirmation"
    );
    assert_eq!(
        state.dialog,
        Some(Dialog::ConfirmBackupAll {
            files: 5,
            bytes: 38 * MIB + 1200
        })
    );
    let (_, items) = upload_effect(keys(&mut state, "y"));
    assert_eq!(items.len(), 5);
    assert_eq!(state.browse.tree.totals().job(JobMark::Queued), 5);
    // n cancels.
    let mut state = mixed();
    keys(&mut state, "U");
    assert!(keys(&mut state, "n").is_empty());
    assert!(state.dialog.is_none());
}

#[test]
fn engine_events_drive_jobs_and_tree() {
    let mut state = mixed();
    select(&mut state, "photos");
    keys(&mut state, " ");
    let (batch, items) = upload_effect(keys(&mut state, "u"));
    let id_of = |k: &str| items.iter().position(|i| i == k).unwrap() as u64;
    let ev = |state: &mut State, event| update(state, Action::Engine(event));
    ev(
        &mut state,
        Event::Started {
            id: id_of("photos/2025/jan.raw"),
        },
    );
    let jan = state.browse.tree.find("photos/2025/jan.raw").unwrap();
    assert_eq!(state.browse.tree.node(jan).job, JobMark::Uploading);
    ev(
        &mut state,
        Event::Done {
            id: id_of("photos/2025/jan.raw"),
            archive_id: "a1".into(),
        },
    );
    assert_eq!(state.browse.tree.mark(jan), Mark::UpToDate);
    ev(
        &mut state,
        Event::Failed {
            id: id_of("photos/2024/dunes.jpg"),
            reason: "boom".into(),
        },
    );
    let dunes = state.browse.tree.find("photos/2024/dunes.jpg").unwrap();
    assert_eq!(state.browse.tree.mark(dunes), Mark::Failed);
    let photos = state.browse.tree.find("photos").unwrap();
    assert_eq!(state.browse.tree.rollup(photos).unwrap().pending(), 2);
    assert_eq!(
        state.browse.tree.rollup(photos).unwrap().pending_bytes,
        12 * MIB
    );
    // Retry the failed job from the jobs pane.
    key(&mut state, KeyCode::Tab);
    assert_eq!(state.focus, Focus::Jobs);
    let failed = state
        .jobs
        .iter()
        .position(|j| matches!(j.state, JobState::Failed(_)))
        .unwrap();
    while state.jobs.selected != failed {
        let code = if state.jobs.selected < failed {
            KeyCode::Down
        } else {
            KeyCode::Up
        };
        key(&mut state, code);
    }
    let (retry_batch, retried) = upload_effect(keys(&mut state, "r"));
    assert_eq!(retried, ["photos/2024/dunes.jpg"]);
    assert_ne!(retry_batch, batch);
    assert_eq!(state.browse.tree.node(dunes).job, JobMark::Queued);
    // Cancel the still-queued sunset.jpg.
    let sunset = state
        .jobs
        .iter()
        .position(|j| j.key.ends_with("sunset.jpg"))
        .unwrap();
    while state.jobs.selected != sunset {
        let code = if state.jobs.selected < sunset {
            KeyCode::Down
        } else {
            KeyCode::Up
        };
        key(&mut state, code);
    }
    keys(&mut state, "x");
    assert!(state.jobs.job(sunset).cancel.is_cancelled());
    ev(
        &mut state,
        Event::Cancelled {
            id: id_of("photos/2024/sunset.jpg"),
        },
    );
    assert_eq!(state.jobs.job(sunset).state, JobState::Cancelled);
    let node = state.browse.tree.find("photos/2024/sunset.jpg").unwrap();
    assert_eq!(
        state.browse.tree.mark(node),
        Mark::Changed,
        "a cancelled upload leaves the file pending"
    );
}

#[test]
fn quitting_with_uploads_asks_cancels_and_waits() {
    let mut state = mixed();
    select(&mut state, "notes.txt");
    let (batch, _) = upload_effect(keys(&mut state, "u"));
    update(&mut state, Action::Engine(Event::Started { id: 0 }));
    keys(&mut state, "q");
    assert!(matches!(
        state.dialog,
        Some(Dialog::ConfirmQuit { running: 1 })
    ));
    keys(&mut state, "n");
    assert!(!state.quitting() && !state.should_quit());
    keys(&mut state, "q");
    keys(&mut state, "y");
    assert!(state.quitting());
    assert!(state.jobs.job(0).cancel.is_cancelled());
    assert!(!state.should_quit(), "waits for the task in flight");
    update(&mut state, Action::Engine(Event::Cancelled { id: 0 }));
    assert!(!state.should_quit(), "waits for the batch to end");
    update(
        &mut state,
        Action::BatchDone {
            batch,
            summary: BackupSummary::default(),
        },
    );
    assert!(state.should_quit());
    // With nothing running, q quits at once; SIGTERM never asks.
    let mut state = mixed();
    keys(&mut state, "q");
    assert!(state.should_quit());
    let mut state = mixed();
    select(&mut state, "notes.txt");
    keys(&mut state, "u");
    update(&mut state, Action::Terminate);
    assert!(state.quitting() && state.dialog.is_none());
}

#[test]
fn navigation_keys() {
    let mut state = mixed();
    let top = names(&state);
    assert_eq!(
        top,
        ["cache", "docs", "photos", "notes.txt"],
        "directories first, by name"
    );
    keys(&mut state, "G");
    assert_eq!(state.browse.selected, 3);
    keys(&mut state, "gg");
    assert_eq!(state.browse.selected, 0);
    key(&mut state, KeyCode::End);
    key(&mut state, KeyCode::Home);
    assert_eq!(state.browse.selected, 0);
    keys(&mut state, "jl");
    assert_eq!(names(&state)[2], "docs/letter.odt", "l expands docs");
    keys(&mut state, "l");
    assert_eq!(
        state.selected_node(),
        state.browse.tree.find("docs/letter.odt"),
        "l again enters it"
    );
    keys(&mut state, "h");
    assert_eq!(
        state.selected_node(),
        state.browse.tree.find("docs"),
        "h goes to the parent"
    );
    keys(&mut state, "h");
    assert_eq!(names(&state).len(), 4, "h collapses");
    key(&mut state, KeyCode::Enter);
    assert_eq!(names(&state).len(), 7, "enter toggles");
    key(&mut state, KeyCode::PageDown);
    assert_eq!(state.browse.selected, 6);
}

#[test]
fn star_opens_a_directory_and_everything_below_it() {
    let mut state = mixed();
    select(&mut state, "photos");
    keys(&mut state, "*");
    let rows = names(&state);
    for shown in [
        "photos/2023/lost.jpg",
        "photos/2024/beach.jpg",
        "photos/2025/jan.raw",
    ] {
        assert!(rows.iter().any(|r| r == shown), "{shown} shown: {rows:?}");
    }
    assert!(
        !rows.iter().any(|r| r.starts_with("docs/")),
        "a sibling stays closed: {rows:?}"
    );
    assert_eq!(state.selected_node(), state.browse.tree.find("photos"));
    // On a file, its directory is the one opened.
    keys(&mut state, "h");
    select(&mut state, "notes.txt");
    let before = names(&state).len();
    keys(&mut state, "*");
    assert!(names(&state).len() > before, "the root's directories open");
    // The vim preset's zR does the same.
    let mut vim = mixed();
    vim.keys = firn::tui::keys::KeyMap::vim();
    select(&mut vim, "photos");
    keys(&mut vim, "zR");
    assert!(names(&vim).iter().any(|r| r == "photos/2024/sunset.jpg"));
}

#[test]
fn search_and_jump_to_pending() {
    let mut state = mixed();
    keys(&mut state, "/sun");
    assert_eq!(
        state.selected_node(),
        state.browse.tree.find("photos/2024/sunset.jpg"),
        "expands to the match"
    );
    key(&mut state, KeyCode::Enter);
    assert!(state.browse.search.is_none());
    keys(&mut state, "/zzz");
    assert!(!state.browse.search.as_ref().unwrap().found);
    key(&mut state, KeyCode::Esc);
    assert_eq!(
        state.selected_node(),
        state.browse.tree.find("photos/2024/sunset.jpg")
    );
    keys(&mut state, "/JAN");
    assert_eq!(
        state.selected_node(),
        state.browse.tree.find("photos/2025/jan.raw"),
        "case-insensitive"
    );
    key(&mut state, KeyCode::Enter);
    keys(&mut state, "gg]");
    assert_eq!(
        state.selected_node(),
        state.browse.tree.find("docs/taxes-2024.pdf")
    );
    keys(&mut state, "]");
    assert_eq!(state.selected_node(), state.browse.tree.find("notes.txt"));
    keys(&mut state, "]");
    assert_eq!(
        state.selected_node(),
        state.browse.tree.find("photos/2024/dunes.jpg")
    );
    keys(&mut state, "[");
    assert_eq!(state.selected_node(), state.browse.tree.find("notes.txt"));
}

#[test]
fn sort_and_views() {
    let mut state = mixed();
    let photos = state.browse.tree.find("photos").unwrap();
    state.browse.tree.set_expanded(photos, true);
    state.set_tree(state.browse.tree.clone());
    keys(&mut state, "s");
    assert_eq!(state.browse.sort, SortBy::Size);
    let rows = names(&state);
    let p = rows.iter().position(|r| r == "photos").unwrap();
    assert_eq!(rows[p + 1], "photos/2025", "24 MiB before 18 MiB");
    keys(&mut state, "v");
    assert_eq!(state.browse.view, View::Pending);
    assert!(
        names(&state)
            .iter()
            .all(|n| !n.contains("lost") && !n.contains("cache"))
    );
    keys(&mut state, "v");
    assert_eq!(state.browse.view, View::ArchivedOnly);
    assert_eq!(names(&state), ["photos", "photos/2023"]);
    keys(&mut state, "v");
    assert_eq!(state.browse.view, View::Problems);
    let rows = names(&state);
    assert!(rows.contains(&"photos/latest".to_string()) && rows.contains(&"docs".to_string()));
}

#[test]
fn details_follow_the_selection() {
    let mut state = mixed();
    let effects = keys(&mut state, "G");
    let loads: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::LoadDetails { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(loads, ["notes.txt"]);
    assert!(
        keys(&mut state, "G").is_empty(),
        "no reload for the same row"
    );
}

#[test]
fn mouse_wheel_and_click() {
    let mut state = mixed();
    let photos = state.browse.tree.find("photos").unwrap();
    state.browse.tree.set_expanded(photos, true);
    state.set_tree(state.browse.tree.clone());
    let mouse = |kind, column, row| MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    // Row 0 is the title, row 1 the tree's top border, row 2 the first row.
    update(
        &mut state,
        Action::Mouse(mouse(MouseEventKind::Down(MouseButton::Left), 10, 5)),
    );
    assert_eq!(state.browse.selected, 3);
    update(
        &mut state,
        Action::Mouse(mouse(MouseEventKind::ScrollDown, 10, 5)),
    );
    assert_eq!(state.browse.selected, 6);
    update(
        &mut state,
        Action::Mouse(mouse(MouseEventKind::ScrollUp, 10, 5)),
    );
    assert_eq!(state.browse.selected, 3);
}

#[test]
fn keys_and_colours_from_the_config_file() {
    let mut state = mixed_with_config(
        "[sets.a]\nroot = \"/x\"\n[tui]\nkeys_preset = \"vim\"\n[tui.keys]\nupload = [\"ctrl-u\"]\nhalf_page_up = []\nmark = [\"m\"]\n[tui.colors]\nnew = \"#ff8800\"\n",
    );
    select(&mut state, "notes.txt");
    assert!(keys(&mut state, "u").is_empty(), "u is no longer bound");
    keys(&mut state, "k");
    keys(&mut state, "m");
    assert_eq!(state.browse.tree.marked_count(), 1);
    let effects = update(
        &mut state,
        Action::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
    );
    upload_effect(effects);
    let screen = render(&state);
    let status = screen.lines().last().unwrap();
    assert!(
        status.contains("m mark") && status.contains("ctrl-u upload"),
        "hints follow the map: {status}"
    );
    // The vim preset's ctrl-f pages down.
    update(
        &mut state,
        Action::Key(KeyEvent::new(KeyCode::Char('f'), KeyModifiers::CONTROL)),
    );
    assert_eq!(state.browse.selected, state.browse.rows.len() - 1);
    // The remapped colour is used for new files.
    let buf = buffer(&state);
    let has = buf
        .content()
        .iter()
        .any(|c| c.fg == Color::Rgb(0xff, 0x88, 0x00));
    assert!(has, "the configured colour for `new` is drawn");
}

#[test]
fn no_color_draws_no_colour_but_keeps_the_marks() {
    let mut state = mixed();
    state.theme = Theme::no_color();
    let buf = buffer(&state);
    assert!(
        buf.content()
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "NO_COLOR: no colour at all"
    );
    let screen = render(&state);
    assert!(line_with(&screen, "notes.txt").contains("+"));
    // And with colour, marks are coloured by role.
    let mut state = mixed();
    state.theme = Theme::default();
    let buf = buffer(&state);
    assert!(buf.content().iter().any(|c| c.fg == Color::Green));
}

#[test]
fn every_action_is_in_the_help_and_the_status_bar_fits() {
    let mut state = mixed();
    update(&mut state, Action::Resize(100, 70));
    keys(&mut state, "?");
    let screen = render(&state);
    for action in firn::tui::keys::KeyAction::ALL {
        assert!(
            screen.contains(action.describe()),
            "help lacks {}",
            action.describe()
        );
    }
    keys(&mut state, "?");
    assert!(state.panes.help.is_none());
    for width in [60u16, 80, 100, 200] {
        update(&mut state, Action::Resize(width, 20));
        let screen = render(&state);
        let status = screen.lines().last().unwrap();
        assert!(status.contains("help") || width < 80, "{status}");
    }
}

#[test]
fn resize_redraws_at_every_size() {
    let mut state = mixed();
    select(&mut state, "photos/2024/sunset.jpg");
    for (w, h) in [
        (200, 60),
        (60, 15),
        (59, 15),
        (60, 14),
        (1, 1),
        (80, 24),
        (99, 40),
        (100, 40),
    ] {
        update(&mut state, Action::Resize(w, h));
        let screen = render(&state);
        if w < 60 || h < 15 {
            assert!(screen.contains("small") || w < 20, "{w}x{h}\n{screen}");
        } else {
            assert!(
                screen.contains("sunset.jpg"),
                "selection kept visible at {w}x{h}\n{screen}"
            );
        }
    }
}

fn restore_effect(effects: Vec<Effect>) -> (u32, Vec<String>, firn::model::Tier, String, bool) {
    for effect in effects {
        if let Effect::Restore {
            batch,
            items,
            tier,
            destination,
            overwrite,
            ..
        } = effect
        {
            let keys = items.into_iter().map(|(_, i)| i.key).collect();
            return (batch, keys, tier, destination, overwrite);
        }
    }
    panic!("no restore effect");
}

#[test]
fn retrieval_asks_tier_and_destination_then_confirms_overwrites() {
    use firn::model::Tier;
    use firn::tui::app::RestoreReport;
    let mut state = mixed();
    state.set.tiers = vec![
        (Tier::Expedited, (60, 300)),
        (Tier::Standard, (3 * 3600, 5 * 3600)),
        (Tier::Bulk, (5 * 3600, 12 * 3600)),
    ];
    // A directory with new, changed, up-to-date and archived-only files: only the
    // archived ones are offered.
    select(&mut state, "photos");
    keys(&mut state, "r");
    let Some(Dialog::Retrieve {
        keys: offered,
        tier,
        destination,
        ..
    }) = state.dialog.clone()
    else {
        panic!("no retrieval dialog: {:?}", state.dialog);
    };
    assert_eq!(
        offered,
        [
            "photos/2023/lost.jpg",
            "photos/2024/beach.jpg",
            "photos/2024/sunset.jpg"
        ]
    );
    assert_eq!(tier, Tier::Standard);
    assert_eq!(destination, "/srv/backup");
    let screen = render(&state);
    assert!(
        screen.contains("● standard   ready in 3h00m–5h00m"),
        "{screen}"
    );
    // Tab picks the next tier; typing replaces the destination.
    key(&mut state, KeyCode::Tab);
    update(
        &mut state,
        Action::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
    );
    keys(&mut state, "/restore here");
    let (batch, items, tier, destination, overwrite) =
        restore_effect(key(&mut state, KeyCode::Enter));
    assert_eq!(items.len(), 3);
    assert_eq!(tier, Tier::Bulk);
    assert_eq!(destination, "/restore here");
    assert!(!overwrite);
    assert!(state.dialog.is_none());
    assert_eq!(state.jobs.len(), 3);
    assert!(state.jobs.iter().all(|j| j.is_retrieval()));

    // The store has not finished: the pane says so, with tier and window.
    update(
        &mut state,
        Action::Engine(Event::Waiting {
            id: 0,
            ready_at: None,
        }),
    );
    assert_eq!(
        state.jobs.job(0).state,
        JobState::AtStore { ready_at: None }
    );
    let screen = render(&state);
    assert!(
        screen.contains("bulk · at the store"),
        "the jobs pane shows the retrieval: {screen}"
    );
    // Retrievals do not touch the tree's upload marks.
    let lost = state.browse.tree.find("photos/2023/lost.jpg").unwrap();
    update(&mut state, Action::Engine(Event::Started { id: 0 }));
    assert_eq!(state.browse.tree.node(lost).job, JobMark::None);

    // Two files were in place with other content: the user is asked.
    let effects = update(
        &mut state,
        Action::RestoreDone {
            batch,
            report: RestoreReport {
                tally: firn::engine::RestoreTally {
                    restored: 1,
                    conflicts: vec![
                        "photos/2024/beach.jpg".into(),
                        "photos/2024/sunset.jpg".into(),
                    ],
                    ..Default::default()
                },
                tier: Some(Tier::Bulk),
                destination: "/restore here".into(),
            },
        },
    );
    assert!(
        effects.iter().all(|e| !matches!(e, Effect::Rescan)),
        "not the root"
    );
    assert!(matches!(
        state.dialog,
        Some(Dialog::ConfirmOverwrite { .. })
    ));
    assert!(render(&state).contains("Replace them with the archived versions?"));
    assert!(
        key(&mut state, KeyCode::Enter).is_empty() && keys(&mut state, "Y").is_empty(),
        "overwriting takes the explicit confirm key only"
    );
    let (_, items, tier, _, overwrite) = restore_effect(keys(&mut state, "y"));
    assert_eq!(items, ["photos/2024/beach.jpg", "photos/2024/sunset.jpg"]);
    assert_eq!(tier, Tier::Bulk);
    assert!(overwrite, "only after the explicit yes");
}

#[test]
fn retrieval_of_nothing_archived_says_so_and_jobs_from_a_previous_run_resume() {
    use firn::tui::app::RetrievalGroup;
    let mut state = mixed();
    select(&mut state, "notes.txt");
    keys(&mut state, "r");
    assert!(state.dialog.is_none());
    assert_eq!(
        state.message.as_deref(),
        Some("nothing archived there to retrieve")
    );
    let effects = update(
        &mut state,
        Action::ResumeRetrievals(vec![RetrievalGroup {
            destination: "/srv/backup".into(),
            tier: firn::model::Tier::Expedited,
            items: vec![("photos/2023/lost.jpg".into(), "abc123".into(), 3 << 20)],
        }]),
    );
    let Some(Effect::Restore {
        items, overwrite, ..
    }) = effects.into_iter().next()
    else {
        panic!("no restore effect");
    };
    assert_eq!(items[0].1.archive_id.as_deref(), Some("abc123"));
    assert!(!overwrite);
    assert_eq!(
        state.jobs.job(0).node,
        state.browse.tree.find("photos/2023/lost.jpg").unwrap()
    );
}

#[test]
fn deletion_shows_ages_and_charges_and_needs_an_explicit_y() {
    use firn::cost::Prices;
    use firn::engine::DeletionReport;
    let mut state = mixed();
    state.set.prices = Prices::default();
    select(&mut state, "photos/2024");
    let effects = keys(&mut state, "d");
    let Some(Effect::PlanDeletion { keys: planned }) = effects.into_iter().next() else {
        panic!("no deletion plan asked for");
    };
    // Only files with an archive: beach (up to date) and sunset (changed).
    assert_eq!(planned, ["photos/2024/beach.jpg", "photos/2024/sunset.jpg"]);
    let records = vec![
        archive("photos/2024/beach.jpg", 6 << 20, 200),
        archive("photos/2024/sunset.jpg", 7 << 20, 10),
    ];
    let plan =
        firn::engine::DeletionPlan::new(records, &state.set.prices, NOW, &state.set.task_ids);
    let expected_charge = state
        .set
        .prices
        .early_deletion_charge(7 << 20, NOW - 10 * DAY, NOW);
    assert!(expected_charge > 0.0);
    update(&mut state, Action::DeletionPlanned { plan, note: None });
    let screen = render(&state);
    assert!(screen.contains("Delete 2 archives (13.0 MiB)"), "{screen}");
    assert!(
        screen.contains(&format!(
            "early ≈ {}",
            state.set.prices.format(expected_charge)
        )),
        "the early archive's charge: {screen}"
    );
    assert!(screen.contains("(1 inside the 90-day"), "{screen}");
    // Enter is not consent here.
    assert!(key(&mut state, KeyCode::Enter).is_empty());
    assert!(matches!(state.dialog, Some(Dialog::ConfirmDelete { .. })));
    let effects = keys(&mut state, "y");
    let Some(Effect::Delete { batch, plan, .. }) = effects.into_iter().next() else {
        panic!("no delete effect");
    };
    assert_eq!(plan.items.len(), 2);
    assert_eq!(state.jobs.len(), 2);
    let effects = update(
        &mut state,
        Action::DeleteDone {
            batch,
            report: DeletionReport {
                deleted: 2,
                deleted_bytes: 13 << 20,
                charged: expected_charge,
                ..Default::default()
            },
        },
    );
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Rescan)),
        "the tree is compared again"
    );
}

#[test]
fn the_cost_view_adds_up_the_archives() {
    use firn::cost::{CostSummary, Prices};
    let mut state = mixed();
    state.set.prices = Prices::default();
    state.set.tiers = vec![
        (firn::model::Tier::Expedited, (60, 300)),
        (firn::model::Tier::Standard, (3 * 3600, 5 * 3600)),
        (firn::model::Tier::Bulk, (5 * 3600, 12 * 3600)),
    ];
    let effects = keys(&mut state, "$");
    assert!(matches!(effects.as_slice(), [Effect::LoadCost]));
    let mut old = archive("a", 1 << 30, 30);
    old.state = firn::catalog::ArchiveState::Superseded;
    let records = [archive("a", 2 << 30, 1), old];
    let summary = CostSummary::of(records.iter(), &state.set.prices, NOW);
    update(&mut state, Action::CostLoaded(Box::new(summary.clone())));
    let screen = render(&state);
    assert!(
        screen.contains("Current versions   1 archives, 2.0 GiB"),
        "{screen}"
    );
    assert!(
        screen.contains(&format!(
            "≈ {} per month",
            state.set.prices.format(3.0 * 0.0036)
        )),
        "{screen}"
    );
    assert!(
        screen.contains(&state.set.prices.format(summary.pending_early_deletion)),
        "{screen}"
    );
    keys(&mut state, "q");
    assert!(state.dialog.is_none());
}

#[test]
fn the_reconciliation_view_acts_on_orphans() {
    use firn::engine::{Orphan, OrphanOutcome, OrphanResult, Reconciliation};
    let mut state = mixed();
    let orphan = |id: &str, refused: Option<&str>| Orphan {
        archive_id: id.into(),
        size: 42,
        tree_hash: "00".into(),
        created_at: NOW - DAY,
        description_text: "firn1 ...".into(),
        description: None,
        refused: refused.map(str::to_string),
        pack: None,
    };
    keys(&mut state, "I");
    assert!(render(&state).contains("No inventory has been compared"));
    assert!(matches!(
        keys(&mut state, "n").as_slice(),
        [Effect::RunInventory]
    ));
    let reconciliation = Reconciliation {
        inventory_date: NOW - DAY,
        checked_at: NOW,
        archive_count: 3,
        record_count: 1,
        matched: 1,
        orphans: vec![orphan("good", None), orphan("foreign", Some("not firn's"))],
        ..Default::default()
    };
    update(
        &mut state,
        Action::Reconciled {
            reconciliation: Some(Box::new(reconciliation)),
            show: true,
        },
    );
    let screen = render(&state);
    assert!(
        screen.contains("Orphans (in the store, not in the catalog): 2"),
        "{screen}"
    );
    assert!(screen.contains("adopt: not firn's"), "{screen}");
    assert!(
        screen.contains("inventory: 2 to check"),
        "title bar: {screen}"
    );
    // a adopts only what can be adopted.
    let effects = keys(&mut state, "a");
    let Some(Effect::AdoptOrphans(adopting)) = effects.into_iter().next() else {
        panic!("no adopt effect");
    };
    assert_eq!(adopting.len(), 1);
    assert_eq!(adopting[0].archive_id, "good");
    let effects = update(
        &mut state,
        Action::OrphansActed(vec![OrphanResult {
            archive_id: "good".into(),
            key: Some("photos/new.jpg".into()),
            outcome: OrphanOutcome::AdoptedCurrent,
        }]),
    );
    assert!(effects.iter().any(|e| matches!(e, Effect::Rescan)));
    assert_eq!(state.set.reconciliation.as_ref().unwrap().orphans.len(), 1);
    // x deletes, after an explicit y.
    keys(&mut state, "I");
    keys(&mut state, "x");
    assert!(matches!(
        state.dialog,
        Some(Dialog::ConfirmDeleteOrphans { .. })
    ));
    assert!(key(&mut state, KeyCode::Enter).is_empty());
    let effects = keys(&mut state, "y");
    assert!(matches!(effects.as_slice(), [Effect::DeleteOrphans(o)] if o.len() == 1));
}

#[test]
fn dialogs_read_their_keys_and_hints_from_the_key_map() {
    use firn::cost::Prices;
    use firn::tui::keys::KeyMap;
    let mut state = mixed_with_config("[tui.keys]\nconfirm = [\"o\"]\ndecline = [\"N\"]\n");
    state.set.prices = Prices::default();
    // A destructive question: the remapped confirm key, and only it.
    select(&mut state, "photos/2024");
    keys(&mut state, "d");
    let records = vec![archive("photos/2024/beach.jpg", 6 << 20, 200)];
    let plan =
        firn::engine::DeletionPlan::new(records, &state.set.prices, NOW, &state.set.task_ids);
    update(&mut state, Action::DeletionPlanned { plan, note: None });
    let screen = render(&state);
    assert!(
        screen.contains("o: delete    N / esc: keep them"),
        "the hint shows the remapped keys:\n{screen}"
    );
    assert!(!screen.contains("y: delete"), "{screen}");
    for old in ["y", "n"] {
        assert!(keys(&mut state, old).is_empty(), "{old} is no longer bound");
        assert!(matches!(state.dialog, Some(Dialog::ConfirmDelete { .. })));
    }
    assert!(key(&mut state, KeyCode::Enter).is_empty(), "never Enter");
    let effects = keys(&mut state, "o");
    assert!(
        matches!(effects.as_slice(), [Effect::Delete { .. }]),
        "o confirms: {effects:?}"
    );
    assert!(state.dialog.is_none());

    // A question that destroys nothing: confirm or Enter, and the hint says so.
    keys(&mut state, "U");
    assert!(render(&state).contains("o / enter: back up    N / esc: cancel"));
    keys(&mut state, "N");
    assert!(state.dialog.is_none(), "the remapped decline key closes it");

    // The vim preset keeps the default dialog keys.
    let vim = KeyMap::vim();
    let default = KeyMap::default();
    for action in firn::tui::keys::KeyAction::dialog_only() {
        assert_eq!(
            vim.keys(*action),
            default.keys(*action),
            "{}",
            action.name()
        );
    }
}

#[test]
fn the_quit_question_counts_the_unfinished_uploads() {
    let entries: Vec<_> = (0..5_000)
        .map(|n| local(&format!("many/{n:05}.txt"), 10, 1, firn::model::Status::New))
        .collect();
    let mut state = state(Tree::from_entries(entries), 120, 30);
    keys(&mut state, "U");
    let (_, items) = upload_effect(keys(&mut state, "y"));
    assert_eq!(items.len(), 5_000);
    keys(&mut state, "q");
    assert!(matches!(
        state.dialog,
        Some(Dialog::ConfirmQuit { running: 5_000 })
    ));
    let screen = render(&state);
    assert!(
        screen.contains("5,000 uploads are not finished. Quit anyway?"),
        "{screen}"
    );
    keys(&mut state, "n");
    // One left: the singular.
    let last = state.jobs.len() - 1;
    for row in 0..last {
        let id = state.jobs.job(row).id;
        update(&mut state, Action::Engine(Event::Cancelled { id }));
    }
    keys(&mut state, "q");
    assert!(render(&state).contains("1 upload is not finished."));
}

#[test]
fn the_retrieval_dialog_offers_only_the_tiers_the_store_has() {
    use firn::model::Tier;
    let mut state = mixed();
    // An S3 DEEP_ARCHIVE store: no expedited retrieval.
    state.set.store = "S3 DEEP_ARCHIVE".into();
    state.set.tiers = vec![
        (Tier::Standard, (9 * 3600, 12 * 3600)),
        (Tier::Bulk, (12 * 3600, 48 * 3600)),
    ];
    select(&mut state, "photos");
    keys(&mut state, "r");
    let screen = render(&state);
    assert!(
        screen.contains("S3 DEEP_ARCHIVE"),
        "the title names the store: {screen}"
    );
    assert!(
        screen.contains("standard") && screen.contains("bulk"),
        "{screen}"
    );
    assert!(!screen.contains("expedited"), "{screen}");
    let tier = |state: &State| match &state.dialog {
        Some(Dialog::Retrieve { tier, .. }) => *tier,
        other => panic!("{other:?}"),
    };
    assert_eq!(tier(&state), Tier::Standard);
    key(&mut state, KeyCode::Tab);
    assert_eq!(tier(&state), Tier::Bulk);
    key(&mut state, KeyCode::Tab);
    assert_eq!(
        tier(&state),
        Tier::Standard,
        "wraps around without expedited"
    );
}

/// The migration the effect asks for, started on a thread of its own (as the
/// runtime would): its events arrive on the receiver, its report at the join.
fn run_migration(
    m: &Migrating,
    effect: Effect,
) -> (
    u32,
    tokio::sync::mpsc::Receiver<Event>,
    std::thread::JoinHandle<firn::engine::MigrationReport>,
) {
    let Effect::Migrate {
        batch,
        source,
        plan,
        tier,
        cancel,
    } = effect
    else {
        panic!("not a migration: {effect:?}");
    };
    let (progress, events) = firn::engine::Progress::channel(4096, cancel);
    let engine = std::sync::Arc::clone(&m.engine);
    let run = std::thread::spawn(move || {
        let options = firn::engine::MigrateOptions {
            all_versions: false,
            tier,
            wait: true,
        };
        let plan = std::sync::Arc::try_unwrap(plan).expect("nothing else holds the plan");
        block_on(engine.migrate(&source.0, plan, &options, &progress)).report
    });
    (batch, events, run)
}

/// The next engine event, waiting up to `secs` (None: the run ended).
fn next_event(events: &mut tokio::sync::mpsc::Receiver<Event>, secs: u64) -> Option<Event> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match events.try_recv() {
            Ok(event) => return Some(event),
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return None,
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no engine event for {secs} s"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

fn migration_tier(state: &State) -> firn::model::Tier {
    match &state.dialog {
        Some(Dialog::ConfirmMigration { tier, .. }) => *tier,
        other => panic!("no migration dialog: {other:?}"),
    }
}

fn migrate_effect(effects: Vec<Effect>) -> Effect {
    effects
        .into_iter()
        .find(|e| matches!(e, Effect::Migrate { .. }))
        .expect("a migration effect")
}

fn job_keys(state: &State) -> Vec<String> {
    state.jobs.iter().map(|j| j.key.clone()).collect()
}

#[test]
fn a_migration_is_planned_in_the_background_confirmed_and_run_as_one_batch() {
    use firn::model::Tier;
    let mut m = planned_migration(
        &[("docs/a.txt", "alpha\n")],
        &[("old/gone.txt", "archived, then deleted here\n")],
        1,
    );
    let mut state = state(m.scan(), 120, 40);
    let a = state.browse.tree.find("docs/a.txt").unwrap();
    assert_eq!(
        state.browse.tree.mark(a),
        Mark::New,
        "only in the previous store: pending here"
    );

    // Without a previous store: one message that says how to name one.
    assert!(keys(&mut state, "C").is_empty());
    match &state.dialog {
        Some(Dialog::Error { title, message }) => {
            assert_eq!(title, "No previous store");
            assert!(message.contains("previous_store = { kind = "), "{message}");
        }
        other => panic!("{other:?}"),
    }
    key(&mut state, KeyCode::Esc);
    assert!(state.dialog.is_none());

    // With one: the runtime opens it and plans; the UI does not wait.
    state.set.previous_store = Some(m.previous.clone());
    let effects = keys(&mut state, "C");
    assert!(
        matches!(effects.as_slice(), [Effect::PlanMigration { from }, ..] if *from == m.previous),
        "{effects:?}"
    );
    assert!(state.dialog.is_none());
    assert!(
        keys(&mut state, "C").is_empty(),
        "one plan at a time: {:?}",
        state.message
    );

    // The plan arrives: from where to where, how many from local files, how
    // many to retrieve, each tier's wait and cost, bulk chosen.
    let (source, destination) = (m.plan().source.clone(), m.plan().destination.clone());
    let planned: Vec<u64> = m.plan().tasks().iter().map(|t| t.id).collect();
    update(&mut state, Action::MigrationPlanned(Ok(m.take_offer())));
    let screen = render(&state);
    for needle in [
        "Migrate archives?",
        "Copy 2 archives (34 B)",
        "(embedded store)",
        "From unchanged local files  1 (6 B), no retrieval",
        "To retrieve                 1 (28 B)",
        "● bulk",
        "y / enter: copy",
    ] {
        assert!(screen.contains(needle), "no {needle:?}:\n{screen}");
    }
    assert!(
        screen.contains(&format!("from  {source} (embedded store)")),
        "names the previous store:\n{screen}"
    );
    assert!(
        screen.contains(&format!("into  {destination}")),
        "and the one it copies into:\n{screen}"
    );
    assert_eq!(migration_tier(&state), Tier::Bulk);
    // Its keys are the migration context's (the key map checks those for
    // conflicts).
    let dialog = state.dialog.as_ref().unwrap();
    for choice in dialog.choices(None) {
        if let firn::tui::app::Keys::Map { actions, .. } = choice.keys {
            for action in actions {
                assert!(dialog.context().actions().contains(action), "{action:?}");
            }
        }
    }
    key(&mut state, KeyCode::Tab);
    assert_eq!(migration_tier(&state), Tier::Expedited, "wraps around");
    assert!(render(&state).contains("● expedited"));
    key(&mut state, KeyCode::Left);
    assert_eq!(migration_tier(&state), Tier::Bulk);

    // Yes: one batch, a row per archive under the ids the engine will use.
    let effect = migrate_effect(keys(&mut state, "y"));
    assert!(state.dialog.is_none());
    assert_eq!(job_keys(&state), ["docs/a.txt", "old/gone.txt"]);
    let ids: Vec<u64> = state.jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, planned);
    assert!(state.jobs.iter().all(|j| j.state == JobState::Queued));
    assert!(keys(&mut state, "C").is_empty(), "one migration at a time");
    assert!(state.message.as_deref().unwrap().contains("running"));

    // The real run: its events move those rows (and add none).
    let (batch, mut events, run) = run_migration(&m, effect);
    let (mut saw_copying, mut saw_waiting) = (false, false);
    while let Some(event) = next_event(&mut events, 30) {
        update(&mut state, Action::Engine(event));
        assert_eq!(state.jobs.len(), 2);
        for job in state.jobs.iter() {
            saw_copying |= job.state == JobState::Running;
            if matches!(job.state, JobState::AtStore { .. }) && !saw_waiting {
                saw_waiting = true;
                let screen = render(&state);
                let row = line_with(&screen, "old/gone.txt");
                assert!(row.contains("bulk · at the store"), "{row}");
            }
        }
    }
    let report = run.join().unwrap();
    assert!(saw_copying && saw_waiting);
    assert_eq!((report.from_local.files, report.retrieved.files), (1, 1));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(state.jobs.iter().all(|j| j.state == JobState::Done));
    let screen = render(&state);
    assert!(
        line_with(&screen, "docs/a.txt").contains("copied"),
        "{screen}"
    );

    // The end: the log says what was copied and the tree is compared again.
    let effects = update(&mut state, Action::MigrationDone { batch, report });
    assert!(effects.iter().any(|e| matches!(e, Effect::Rescan)));
    assert_eq!(state.jobs.running_batches, 0);
    let log: Vec<&str> = state.log.iter().map(|(_, l)| l.as_str()).collect();
    let finished = log
        .iter()
        .find(|l| l.starts_with("migration finished:"))
        .unwrap_or_else(|| panic!("{log:#?}"));
    assert!(
        finished.starts_with(&format!(
            "migration finished: 2 archives copied into {destination} (34 B; 1 from local files, 1 retrieved), 0 waiting, 0 failed"
        )),
        "{finished}"
    );
    update(&mut state, Action::ScanDone(Ok(Box::new(m.scan()))));
    let a = state.browse.tree.find("docs/a.txt").unwrap();
    assert_eq!(state.browse.tree.mark(a), Mark::UpToDate);
    let gone = state.browse.tree.find("old/gone.txt").unwrap();
    assert_eq!(state.browse.tree.mark(gone), Mark::ArchivedOnly);
    // Planned again: nothing left to copy.
    keys(&mut state, "C");
    let again = block_on(async {
        let source = m.engine.open_source(&m.previous).await.unwrap();
        let options = firn::engine::MigrateOptions {
            all_versions: false,
            tier: Tier::Bulk,
            wait: true,
        };
        m.engine.plan_migration(&source, &options).await.unwrap()
    });
    assert!(again.is_empty());
}

#[test]
fn quitting_during_a_migration_cancels_it_and_waits_for_its_end() {
    // The retrieval would be ready in an hour.
    let mut m = planned_migration(&[("a.txt", "alpha\n")], &[("gone.txt", "gone\n")], 3600);
    let mut state = state(m.scan(), 120, 40);
    state.set.previous_store = Some(m.previous.clone());
    keys(&mut state, "C");
    update(&mut state, Action::MigrationPlanned(Ok(m.take_offer())));
    let effect = migrate_effect(keys(&mut state, "y"));
    let cancel = match &effect {
        Effect::Migrate { cancel, .. } => cancel.clone(),
        _ => unreachable!(),
    };
    let (batch, mut events, run) = run_migration(&m, effect);
    // Wait for the local copy to be done and the retrieval to wait at the store.
    while !(state.jobs.job(0).state == JobState::Done
        && matches!(state.jobs.job(1).state, JobState::AtStore { .. }))
    {
        let event = next_event(&mut events, 30).expect("the run ended early");
        update(&mut state, Action::Engine(event));
    }
    // A migration row is not retried as an upload.
    key(&mut state, KeyCode::Tab);
    key(&mut state, KeyCode::End);
    assert!(keys(&mut state, "R").is_empty());
    assert!(state.message.as_deref().unwrap().contains("press C"));

    keys(&mut state, "q");
    assert!(matches!(
        state.dialog,
        Some(Dialog::ConfirmQuit { running: 1 })
    ));
    keys(&mut state, "y");
    assert!(cancel.is_cancelled(), "quitting cancels the migration");
    assert!(!state.should_quit(), "waits for it to stop");
    let started = std::time::Instant::now();
    while let Some(event) = next_event(&mut events, 10) {
        update(&mut state, Action::Engine(event));
    }
    let report = run.join().unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "stopping took {:?}",
        started.elapsed()
    );
    assert_eq!(
        (
            report.from_local.files,
            report.retrieved.files,
            report.cancelled
        ),
        (1, 0, 1)
    );
    assert_eq!(state.jobs.job(1).state, JobState::Cancelled);
    let effects = update(&mut state, Action::MigrationDone { batch, report });
    assert!(state.should_quit());
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Rescan)),
        "no rescan while quitting"
    );
    let log: Vec<&str> = state.log.iter().map(|(_, l)| l.as_str()).collect();
    assert!(
        log.iter()
            .any(|l| l.contains("1 cancelled")
                && l.starts_with("migration finished: 1 archive copied")),
        "{log:#?}"
    );
    assert!(log.iter().any(|l| l.contains("press C again")), "{log:#?}");
}
