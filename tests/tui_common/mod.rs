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
