//! Whole-screen snapshots of the terminal UI (ratatui TestBackend + insta), at
//! fixed sizes, with a fixed root path and clock so nothing varies between runs.

mod common;
mod tui_common;

use crossterm::event::KeyCode;
use firn::catalog::{ArchiveRecord, ArchiveState};
use firn::engine::Event;
use firn::model::ContentHash;
use firn::model::Fingerprint;
use firn::scan::ScanProgress;
use firn::state::CachedHash;
use firn::tui::app::{Action, Details, Effect, Phase, State, update};
use firn::tui::keys::KeyMap;
use firn::tui::theme::Theme;
use firn::tui::tree::Tree;
use tui_common::*;

fn mixed_state() -> State {
    let mut state = state(Tree::from_entries(mixed_entries()), 120, 30);
    // Open docs/ and photos/ with its 2024/ directory.
    for name in ["docs", "photos", "photos/2024"] {
        let id = state.browse.tree.find(name).unwrap();
        state.browse.tree.set_expanded(id, true);
    }
    state.set_tree(state.browse.tree.clone());
    state
}

#[test]
fn scan_in_progress() {
    let mut state = State::new(
        "/srv/backup".into(),
        "photos".into(),
        KeyMap::default(),
        Theme::default(),
    );
    state.set_clock(300, NOW);
    update(&mut state, Action::Resize(100, 20));
    update(
        &mut state,
        Action::ScanProgress(ScanProgress {
            entries: 12_288,
            files: 11_902,
            bytes: 48_318_382_080,
        }),
    );
    assert!(matches!(state.phase, Phase::Scanning(_)));
    insta::assert_snapshot!(render(&state));
}

#[test]
fn mixed_status_tree_with_rollups() {
    let state = mixed_state();
    let screen = render(&state);
    // Roll-ups count what is below, and the marks read without colour.
    assert!(line_with(&screen, "photos/").contains("3 pending 36.0 MiB"));
    assert!(line_with(&screen, "2023/").contains("1 archived-only"));
    assert!(line_with(&screen, "sunset.jpg").contains("~"));
    assert!(line_with(&screen, "dunes.jpg").contains("+"));
    assert!(line_with(&screen, "beach.jpg").contains("="));
    assert!(line_with(&screen, "private").contains("!"));
    insta::assert_snapshot!(screen);
}

fn record(archive: &str, days_ago: i64, size: u64, state: ArchiveState) -> ArchiveRecord {
    ArchiveRecord {
        size,
        mtime_ns: (NOW - days_ago * DAY - 3600) * 1_000_000_000,
        target: "local:/mnt/store".into(),
        state,
        host: "nas".into(),
        ..common::sample_record("photos/2024/sunset.jpg", archive, NOW - days_ago * DAY)
    }
}

#[test]
fn details_of_a_file_with_superseded_versions() {
    let mut state = mixed_state();
    let id = state.browse.tree.find("photos/2024/sunset.jpg").unwrap();
    while state.selected_node() != Some(id) {
        key(&mut state, KeyCode::Down);
    }
    let node = state.browse.tree.node(id).clone();
    let details = Details {
        node: id,
        key: "photos/2024/sunset.jpg".into(),
        versions: Ok(vec![
            record("8d1f0c2a9b7e4f11", 400, 6 * MIB, ArchiveState::Superseded),
            record(
                "3b9e77a0c4d2e815",
                120,
                6 * MIB + 4096,
                ArchiveState::Superseded,
            ),
            record(
                "f02c5d19aa6b3e70",
                30,
                6 * MIB + 8192,
                ArchiveState::Current,
            ),
        ]),
        cached: Some(CachedHash {
            fingerprint: Fingerprint {
                size: node.size,
                mtime_ns: node.mtime_ns,
                ctime_ns: 0,
                inode: 0,
            },
            hash: ContentHash {
                size: node.size,
                sha1: [0xab; 20],
                tree_hash: [0xcd; 32],
            },
        }),
    };
    update(&mut state, Action::Details(Box::new(details)));
    let screen = render(&state);
    assert!(screen.contains("Archived versions (3)"));
    assert!(
        screen.contains("60d left"),
        "30-day-old current version: 60 days of early deletion left"
    );
    assert!(
        screen.contains("free to delete since"),
        "the 400-day-old version is past the window"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn jobs_pane_mid_upload_with_a_failed_task() {
    let mut state = mixed_state();
    // Mark photos/ and upload it: three pending files become three jobs.
    let photos = state.browse.tree.find("photos").unwrap();
    while state.selected_node() != Some(photos) {
        key(&mut state, KeyCode::Down);
    }
    keys(&mut state, " ");
    let effects = keys(&mut state, "u");
    let Some(Effect::Upload {
        candidates: items, ..
    }) = effects
        .into_iter()
        .find(|e| matches!(e, Effect::Upload { .. }))
    else {
        panic!("u started no upload");
    };
    let mut keys_sent: Vec<_> = items.iter().map(|i| i.key.as_str()).collect();
    keys_sent.sort();
    assert_eq!(
        keys_sent,
        [
            "photos/2024/dunes.jpg",
            "photos/2024/sunset.jpg",
            "photos/2025/jan.raw"
        ]
    );
    let index = |key: &str| items.iter().find(|i| i.key == key).unwrap().id.unwrap();
    let (dunes, sunset, jan) = (
        index("photos/2024/dunes.jpg"),
        index("photos/2024/sunset.jpg"),
        index("photos/2025/jan.raw"),
    );
    let at = |state: &mut State, ms: u64, event: Event| {
        state.set_clock(ms, NOW);
        update(state, Action::Engine(event));
    };
    for item in &items {
        at(
            &mut state,
            10_000,
            Event::Queued {
                id: item.id.unwrap(),
                key: item.key.clone(),
                bytes: item.size,
            },
        );
    }
    at(&mut state, 10_000, Event::Started { id: jan });
    at(&mut state, 10_000, Event::Started { id: dunes });
    at(
        &mut state,
        10_500,
        Event::Failed {
            id: dunes,
            reason: "cannot read /srv/backup/photos/2024/dunes.jpg: permission denied".into(),
        },
    );
    at(
        &mut state,
        14_000,
        Event::Advanced {
            id: jan,
            bytes: 16 * MIB,
        },
    );
    state.set_clock(14_000, NOW);
    update(&mut state, Action::Tick);
    let screen = render(&state);
    assert!(line_with(&screen, "photos/2025/jan.raw").contains("66%"));
    assert!(line_with(&screen, "photos/2025/jan.raw").contains("4.0 MiB/s"));
    assert!(line_with(&screen, "photos/2024/dunes.jpg").contains("failed: cannot read"));
    assert!(line_with(&screen, "photos/2024/sunset.jpg").contains("queued"));
    let _ = sunset;
    insta::assert_snapshot!(screen);
}

#[test]
fn help_overlay() {
    let mut state = mixed_state();
    update(&mut state, Action::Resize(100, 45));
    keys(&mut state, "?");
    assert!(state.panes.help.is_some());
    insta::assert_snapshot!(render(&state));
}

#[test]
fn error_dialog() {
    let mut state = State::new(
        "/srv/backup".into(),
        "/srv/backup".into(),
        KeyMap::default(),
        Theme::default(),
    );
    state.set_clock(0, NOW);
    update(&mut state, Action::Resize(100, 20));
    update(
        &mut state,
        Action::ScanDone(Err(
            "cannot read backup root /srv/backup: permission denied (check the file's owner and mode)"
                .into(),
        )),
    );
    let screen = render(&state);
    assert!(screen.contains("Cannot scan the tree"));
    insta::assert_snapshot!(screen);
    key(&mut state, KeyCode::Esc);
    assert!(state.dialog.is_none(), "esc closes the dialog");
}

#[test]
fn terminal_too_small() {
    let mut state = mixed_state();
    update(&mut state, Action::Resize(40, 10));
    let screen = render(&state);
    assert!(screen.contains("Terminal too small"));
    insta::assert_snapshot!(screen);
    // And back to a usable size: the panes come back.
    update(&mut state, Action::Resize(120, 30));
    assert!(render(&state).contains("photos/"));
}

#[test]
fn confirm_backup_all() {
    let mut state = mixed_state();
    keys(&mut state, "U");
    let screen = render(&state);
    assert!(screen.contains("Upload 5 files (38.0 MiB)"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn retrieval_dialog_and_a_job_at_the_store() {
    let mut state = mixed_state();
    state.set.tiers = vec![
        (firn::model::Tier::Expedited, (60, 300)),
        (firn::model::Tier::Standard, (3 * 3600, 5 * 3600)),
        (firn::model::Tier::Bulk, (5 * 3600, 12 * 3600)),
    ];
    state.set.prices = firn::cost::Prices::default();
    // Mark the archived-only file and retrieve it.
    let lost = state.browse.tree.find("photos/2023/lost.jpg").unwrap();
    state.browse.tree.toggle_mark(lost);
    let effects = keys(&mut state, "r");
    let asked = vec!["photos/2023/lost.jpg".to_string()];
    assert!(
        matches!(effects.as_slice(), [Effect::QuoteRetrieval { keys }] if *keys == asked),
        "the engine is asked for the plan: {effects:?}"
    );
    let dialog = render(&state);
    assert!(dialog.contains("Retrieve 1 file (3.0 MiB)"), "{dialog}");
    assert!(
        dialog.contains("working out the archives and packs"),
        "{dialog}"
    );
    // The engine's plan: the file is in a 16 MiB pack, retrieved whole.
    let prices = state.set.prices.clone();
    let tiers: Vec<firn::engine::TierEstimate> = state
        .set
        .tiers
        .iter()
        .map(|&(tier, wait)| {
            let cost = prices.retrieval_estimate(16 << 20, 1, tier);
            firn::engine::TierEstimate {
                tier,
                wait,
                cost,
                to_request_cost: cost,
            }
        })
        .collect();
    let standard = tiers[1].clone();
    let quote = firn::engine::RetrievalQuote {
        tier: standard.tier,
        files: 1,
        bytes: 3 << 20,
        archives: 0,
        archive_bytes: 0,
        packs: 1,
        packed_files: 1,
        pack_bytes: 16 << 20,
        wait: standard.wait,
        cost: standard.cost,
        cost_text: prices.format(standard.cost),
        already_requested: 0,
        to_request_cost: standard.cost,
        tiers,
    };
    update(
        &mut state,
        Action::RetrievalQuoted {
            keys: asked,
            quote: Box::new(quote),
        },
    );
    let dialog = render(&state);
    assert!(
        dialog.contains("1 pack (for 1 file): 16.0 MiB retrieved."),
        "{dialog}"
    );
    insta::assert_snapshot!("retrieval_dialog", dialog);

    let effects = key(&mut state, KeyCode::Enter);
    let Some(Effect::Restore { .. }) = effects.into_iter().next() else {
        panic!("no restore effect");
    };
    state.set_clock(10_000 + 600_000, NOW + 600);
    for event in [
        Event::Queued {
            id: 0,
            key: "photos/2023/lost.jpg".into(),
            bytes: 3 << 20,
        },
        Event::Waiting {
            id: 0,
            ready_at: None,
        },
    ] {
        update(&mut state, Action::Engine(event));
    }
    let screen = render(&state);
    assert!(
        screen.contains("standard · at the store 10m00s"),
        "{screen}"
    );
    insta::assert_snapshot!("retrieval_at_the_store", screen);
}

#[test]
fn migration_dialog() {
    use firn::cost::{PriceProfile, Prices};
    use firn::engine::TierQuote;
    use firn::model::Tier;
    use firn::status::Tally;
    // A real plan (of nothing), dressed as a Glacier vault's migration into S3
    // so the screen does not depend on temporary paths.
    let mut m = planned_migration(&[], &[], 0);
    let mut offer = m.take_offer();
    offer.source_kind = "Glacier vault".into();
    let plan = std::sync::Arc::get_mut(&mut offer.plan).unwrap();
    plan.source = "glacier:us-east-1/photos".into();
    plan.destination = "s3:eu-west-1/firn-photos".into();
    plan.from_local = Tally {
        files: 11_902,
        bytes: 48_318_382_080,
    };
    plan.retrievals = Tally {
        files: 431,
        bytes: 3_221_225_472,
    };
    plan.jobs_requested = 31;
    plan.versions_left = Tally {
        files: 87,
        bytes: 734_003_200,
    };
    let prices = Prices::defaults_for(PriceProfile::GlacierVault);
    plan.quotes = [
        (Tier::Expedited, (60, 5 * 60)),
        (Tier::Standard, (3 * 3600, 5 * 3600)),
        (Tier::Bulk, (5 * 3600, 12 * 3600)),
    ]
    .into_iter()
    .map(|(tier, wait)| {
        let cost = prices.retrieval_estimate(2_147_483_648, 400, tier);
        TierQuote {
            tier,
            wait,
            cost,
            cost_text: prices.format(cost),
        }
    })
    .collect();
    let mut state = mixed_state();
    state.set.store = "S3 DEEP_ARCHIVE".into();
    state.set.previous_store = Some(m.previous.clone());
    let effects = keys(&mut state, "C");
    assert!(matches!(effects[..], [Effect::PlanMigration { .. }, ..]));
    update(&mut state, Action::MigrationPlanned(Ok(offer)));
    let dialog = render(&state);
    assert!(
        dialog.contains("Copy 12,333 archives (48.0 GiB)"),
        "{dialog}"
    );
    assert!(dialog.contains("● bulk"), "bulk by default: {dialog}");
    insta::assert_snapshot!(dialog);
}

#[test]
fn reconciliation_of_a_shared_store() {
    use firn::engine::{DescribedFile, Orphan, OtherSet, Reconciliation};
    let mut state = mixed_state();
    let unclaimed = Orphan {
        archive_id: "b0a1".into(),
        size: 2 << 20,
        tree_hash: "00".into(),
        created_at: NOW - 400 * 86_400,
        description_text: "firn1 …".into(),
        description: Some(DescribedFile {
            format: "firn1".into(),
            owner: None,
            key: Some("photos/2023/beach.jpg".into()),
            raw_path: None,
            size: Some(2 << 20),
            mtime_ns: 0,
            sha1: None,
        }),
        refused: None,
        pack: None,
    };
    let reconciliation = Reconciliation {
        inventory_date: NOW - 86_400,
        checked_at: NOW,
        archive_count: 905,
        record_count: 300,
        matched: 300,
        snapshots: 2,
        other_sets: vec![
            OtherSet {
                owner: "e9d71f5ee7c92d6d".into(),
                name: Some("laptop".into()),
                archives: 402,
            },
            OtherSet {
                owner: "3c363836cf4e1666".into(),
                name: None,
                archives: 200,
            },
        ],
        unclaimed: vec![unclaimed],
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
        screen.contains("602 archives of 2 other sets sharing this store"),
        "{screen}"
    );
    assert!(screen.contains("Unclaimed"), "{screen}");
    insta::assert_snapshot!(screen);
    // Nothing of it is an orphan of this set: x has nothing to delete.
    keys(&mut state, "x");
    assert!(
        !matches!(
            state.dialog,
            Some(firn::tui::app::Dialog::ConfirmDeleteOrphans { .. })
        ),
        "unclaimed archives are not offered for deletion"
    );
}

/// A run as the history keeps it, `hours_ago` before the snapshots' clock.
fn run_summary(
    command: &str,
    front_end: firn::history::FrontEnd,
    hours_ago: i64,
    code: u8,
) -> firn::history::RunSummary {
    let started = NOW - hours_ago * 3600;
    firn::history::RunSummary {
        firn_version: "0.1.0".into(),
        host: "nas".into(),
        set: "/srv/backup".into(),
        command: command.into(),
        front_end,
        started_at: firn::fmt::format_time_rfc3339(started),
        started_at_unix: started,
        duration_secs: 754.0,
        outcome: firn::history::Outcome::of_code(code),
        exit_code: code,
        error: None,
        uploaded: Default::default(),
        restored: Default::default(),
        deleted: Default::default(),
        copied: Default::default(),
        failed: 0,
        failures: Vec::new(),
        cancelled: 0,
        waiting: 0,
        cost_estimate: 0.0,
        currency: "USD".into(),
        requests: Default::default(),
        hook: None,
    }
}

#[test]
fn a_stale_last_backup_in_the_title_bar_and_the_last_runs() {
    use firn::history::{Backups, FrontEnd, Moved, RunSummary};
    use firn::tui::theme::Role;
    let mut state = mixed_state();
    state.set.stale_after = Some(std::time::Duration::from_secs(36 * 3600));
    let backup = RunSummary {
        uploaded: Moved {
            count: 3,
            bytes: 5 * MIB,
        },
        ..run_summary("backup", FrontEnd::Cli, 40, 0)
    };
    let failed = RunSummary {
        error: Some("cannot reach the store s3:eu-west-1/photos".into()),
        duration_secs: 3.0,
        ..run_summary("backup", FrontEnd::Cli, 16, 4)
    };
    update(
        &mut state,
        Action::BackupsLoaded(Box::new(Backups {
            last: Some(backup.clone()),
            failed_since: vec![failed.clone()],
        })),
    );
    let screen = render(&state);
    let title = screen.lines().next().unwrap();
    // 40 h before the clock, plus the 754 s it ran: 39.8 h ago.
    assert!(title.contains("last backup 40 h ago"), "{title}");
    // Older than stale_after: drawn in the problem colour.
    let buf = buffer(&state);
    let at = title.find("last backup").unwrap();
    let x = title[..at].chars().count() as u16;
    let problem = state.theme.fg(Role::Problem).fg;
    assert_eq!(Some(buf[(x, 0)].fg), problem);

    let effects = keys(&mut state, "H");
    assert!(
        matches!(effects.as_slice(), [Effect::LoadHistory]),
        "{effects:?}"
    );
    let upload = RunSummary {
        uploaded: Moved {
            count: 12,
            bytes: 38 * MIB,
        },
        failed: 1,
        failures: vec!["docs/taxes-2024.pdf: changed while it was read".into()],
        ..run_summary("upload", FrontEnd::Tui, 1, 1)
    };
    update(
        &mut state,
        Action::HistoryLoaded(Ok(vec![upload, failed, backup])),
    );
    let screen = render(&state);
    assert!(screen.contains("Last runs"), "{screen}");
    for words in [
        "upload (ui)",
        "1 failed: docs/taxes-2024.pdf",
        "exit 4",
        "uploaded 3 files",
    ] {
        assert!(screen.contains(words), "{words}:\n{screen}");
    }
    insta::assert_snapshot!(screen);
    key(&mut state, KeyCode::Esc);
    assert!(state.dialog.is_none(), "esc closes it");
}
