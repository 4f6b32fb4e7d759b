//! Synthetic trees and a terminal-free harness for the TUI tests (which declare
//! `mod common;` too, for its record builder).
#![allow(dead_code)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use firn::model::Status;
use firn::model::{ArchivedSummary, Entry, Fingerprint, SkipReason};
use firn::tui::app::{Action, Effect, State, update};
use firn::tui::keys::KeyMap;
use firn::tui::theme::Theme;
use firn::tui::tree::Tree;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// 2025-03-01 12:00 UTC: the clock every snapshot sees.
pub const NOW: i64 = 1_740_830_400;
pub const DAY: i64 = 86_400;
pub const MIB: u64 = 1 << 20;

pub fn local(key: &str, size: u64, days_ago: i64, status: Status) -> Entry {
    let mtime = (NOW - days_ago * DAY) * 1_000_000_000;
    Entry {
        key: key.into(),
        raw: None,
        fingerprint: Fingerprint {
            size,
            mtime_ns: mtime,
            ctime_ns: mtime,
            inode: 1,
        },
        status,
        sha1: None,
        archived: None,
    }
}

pub fn archived_only(key: &str, size: u64, days_ago: i64) -> Entry {
    Entry {
        key: key.into(),
        raw: None,
        fingerprint: Fingerprint::default(),
        status: Status::ArchivedOnly,
        sha1: Some([7; 20]),
        archived: Some(ArchivedSummary {
            size,
            mtime_ns: (NOW - days_ago * DAY) * 1_000_000_000,
            sha1: [7; 20],
        }),
    }
}

/// Every status at least once, in three directory levels.
pub fn mixed_entries() -> Vec<Entry> {
    let mut entries = vec![
        local("cache", 0, 0, Status::Ignored { is_dir: true }),
        local("docs/letter.odt", 48 * 1024, 30, Status::UpToDate),
        local("docs/taxes-2024.pdf", 2 * MIB, 3, Status::Changed),
        Entry {
            fingerprint: Fingerprint::default(),
            ..local(
                "docs/private",
                0,
                0,
                Status::Unreadable("permission denied (check the file's owner and mode)".into()),
            )
        },
        local("notes.txt", 1200, 1, Status::New),
        local("photos/2024/beach.jpg", 6 * MIB, 200, Status::UpToDate),
        local("photos/2024/dunes.jpg", 5 * MIB, 2, Status::New),
        local("photos/2024/sunset.jpg", 7 * MIB, 1, Status::Changed),
        archived_only("photos/2023/lost.jpg", 3 * MIB, 400),
        local("photos/2025/jan.raw", 24 * MIB, 20, Status::New),
        local(
            "photos/thumbs.db",
            4096,
            5,
            Status::Ignored { is_dir: false },
        ),
        Entry {
            fingerprint: Fingerprint::default(),
            ..local("photos/latest", 0, 0, Status::Skipped(SkipReason::Symlink))
        },
    ];
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    entries
}

pub fn state(tree: Tree, width: u16, height: u16) -> State {
    let mut state = State::new(
        "/srv/backup".into(),
        "/srv/backup".into(),
        KeyMap::default(),
        Theme::default(),
    );
    state.set_clock(10_000, NOW);
    update(&mut state, Action::Resize(width, height));
    state.set_tree(tree);
    state
}

pub fn key(state: &mut State, code: KeyCode) -> Vec<Effect> {
    update(state, Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

pub fn keys(state: &mut State, text: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in text.chars() {
        effects.extend(key(state, KeyCode::Char(c)));
    }
    effects
}

pub fn render(state: &State) -> String {
    let (w, h) = state.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| firn::tui::view(state, f)).unwrap();
    terminal.backend().to_string()
}

pub fn buffer(state: &State) -> ratatui::buffer::Buffer {
    let (w, h) = state.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| firn::tui::view(state, f)).unwrap();
    terminal.backend().buffer().clone()
}

/// The screen line holding `needle`.
pub fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line contains {needle:?}:\n{screen}"))
}

/// A current archive of `key` uploaded `days_ago` days before [`NOW`].
pub fn archive(key: &str, size: u64, days_ago: i64) -> firn::catalog::ArchiveRecord {
    firn::catalog::ArchiveRecord {
        size,
        mtime_ns: (NOW - days_ago * DAY) * 1_000_000_000,
        sha1: [7; 20],
        tree_hash: [8; 32],
        target: "glacier:photos".into(),
        host: "nas".into(),
        ..crate::common::sample_record(key, &format!("archive-of-{key}"), NOW - days_ago * DAY)
    }
}

/// A migration planned for real: files backed up into an embedded store `a`,
/// then the set switched to store `b` with `a` as its previous store. The
/// engine uses `b`; `tree` is what it scans.
pub struct Migrating {
    /// Holds the tree, both stores, the catalog and the local state.
    pub dir: tempfile::TempDir,
    pub engine: std::sync::Arc<firn::engine::Engine>,
    /// `previous_store` as the config would name it.
    pub previous: firn::backend::StoreSettings,
    /// The planned migration, until a test hands it to the UI.
    pub offer: Option<firn::tui::app::MigrationOffer>,
}

impl Migrating {
    /// The planned migration, as the runtime hands it over (once: the plan is
    /// never copied).
    pub fn take_offer(&mut self) -> firn::tui::app::MigrationOffer {
        self.offer.take().expect("the offer was taken already")
    }

    /// The plan, while the test still holds it.
    pub fn plan(&self) -> &firn::engine::MigrationPlan {
        &self.offer.as_ref().expect("the offer was taken").plan
    }

    pub fn tree(&self) -> std::path::PathBuf {
        self.dir.path().join("tree")
    }

    /// The tree as the TUI shows it after a scan.
    pub fn scan(&self) -> Tree {
        let report = block_on(self.engine.status(&mut |_| {})).unwrap();
        Tree::from_report(report)
    }
}

/// Runs a future to its end on a runtime of its own (the TUI tests are sync;
/// the engine's scan blocks in place, which needs worker threads).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Backs up `kept` and `gone` (key, content) into store `a`, deletes the `gone`
/// files, switches to store `b` and plans the migration from `a`: the kept
/// files are copied from the local files, the gone ones retrieved (ready
/// `delay_secs` after they are requested).
pub fn planned_migration(
    kept: &[(&str, &str)],
    gone: &[(&str, &str)],
    delay_secs: u64,
) -> Migrating {
    use firn::backend::StoreSettings;
    use firn::catalog::sqlite::SqliteCatalog;
    use firn::engine::{Engine, MigrateOptions, Parts, Progress};
    use firn::store::local::{LocalSettings, LocalStore};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for (key, content) in kept.iter().chain(gone) {
        let path = tree.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    std::fs::create_dir_all(&tree).unwrap();
    let state = Arc::new(firn::state::LocalState::open(&dir.path().join("state.sqlite")).unwrap());
    let catalog: Arc<dyn firn::catalog::Catalog> =
        Arc::new(SqliteCatalog::open(&dir.path().join("catalog.sqlite"), "set").unwrap());
    let engine = |store: &str| {
        let store = LocalStore::open(&dir.path().join(store), 0).unwrap();
        Arc::new(Engine::from_parts(Parts {
            root: tree.clone(),
            set_id: "set".into(),
            state: Arc::clone(&state),
            catalog: Arc::clone(&catalog),
            store: Arc::new(store),
            host: "test-host".into(),
            retention: firn::model::Retention::Keep,
            concurrency: 2,
            requests_in_flight: Some(2),
            prices: firn::cost::Prices::free(),
        }))
    };
    let previous = StoreSettings::Local(LocalSettings {
        path: Some(dir.path().join("a")),
        retrieval_delay_secs: Some(delay_secs),
    });
    let (engine, offer) = block_on(async {
        let old = engine("a");
        let report = old.status(&mut |_| {}).await.unwrap();
        let plan = old.plan(
            report
                .entries
                .iter()
                .filter_map(firn::engine::Candidate::of),
        );
        let summary = old
            .backup(plan, &Progress::unwatched(Default::default()))
            .await
            .report;
        assert_eq!(summary.uploaded_files as usize, kept.len() + gone.len());
        for (key, _) in gone {
            std::fs::remove_file(tree.join(key)).unwrap();
        }
        let new = engine("b");
        let source = new.open_source(&previous).await.unwrap();
        let options = MigrateOptions {
            all_versions: false,
            tier: firn::model::Tier::Bulk,
            wait: true,
        };
        let plan = new.plan_migration(&source, &options).await.unwrap();
        let offer = firn::tui::app::MigrationOffer {
            source_kind: source.kind(),
            source: firn::tui::app::OpenedSource(Arc::new(source)),
            plan: Arc::new(plan),
        };
        (new, offer)
    });
    Migrating {
        dir,
        engine,
        previous,
        offer: Some(offer),
    }
}
