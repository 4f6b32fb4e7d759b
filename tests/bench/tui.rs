//! `cargo bench --bench tui`: the terminal UI at 1,000,000 entries.
//!
//! Builds a synthetic tree in memory (no disk: 100 directories × 100
//! subdirectories × 100 files, every status present), then prints
//! - the peak RSS of the process holding it (target ≤ 250 MB),
//! - the median time to build and render one 200×60 frame (target ≤ 5 ms), with
//!   every directory collapsed and with all 1,010,100 rows expanded while paging
//!   through the middle of the tree,
//! - how long expanding everything (rebuilding the rows) takes, for reference.

use std::time::{Duration, Instant};

use firn::model::Status;
use firn::model::{ArchivedSummary, Entry, Fingerprint, SkipReason};
use firn::tui::app::{Action, State, update};
use firn::tui::keys::KeyMap;
use firn::tui::theme::Theme;
use firn::tui::tree::Tree;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const FRAME_TARGET_MS: f64 = 5.0;
const RSS_TARGET_MB: f64 = 250.0;

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn entry(key: String, n: u64) -> Entry {
    let mtime = 1_700_000_000_000_000_000 + (n as i64) * 1_000_000_007;
    let fingerprint = Fingerprint {
        size: 1000 + (n * 7919) % 5_000_000,
        mtime_ns: mtime,
        ctime_ns: mtime,
        inode: n,
    };
    let summary = ArchivedSummary {
        size: fingerprint.size,
        mtime_ns: mtime,
        sha1: [0; 20],
    };
    let (status, fingerprint, archived) = match n % 20 {
        0..=11 => (Status::UpToDate, fingerprint, Some(summary)),
        12..=14 => (Status::New, fingerprint, None),
        15 | 16 => (Status::Changed, fingerprint, Some(summary)),
        17 => (Status::ArchivedOnly, Fingerprint::default(), Some(summary)),
        18 => (Status::Ignored { is_dir: false }, fingerprint, None),
        _ if n % 40 == 19 => (
            Status::Unreadable("permission denied".into()),
            Fingerprint::default(),
            None,
        ),
        _ => (
            Status::Skipped(SkipReason::Symlink),
            Fingerprint::default(),
            None,
        ),
    };
    Entry {
        key,
        raw: None,
        fingerprint,
        status,
        sha1: None,
        archived,
    }
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let rss_before = vm_hwm_kb();
    let started = Instant::now();
    let mut tree = Tree::new();
    let mut n = 0u64;
    for d in 0..100 {
        for s in 0..100 {
            for f in 0..100 {
                tree.insert(entry(format!("dir{d:03}/sub{s:03}/IMG_{f:05}.jpg"), n));
                n += 1;
            }
        }
    }
    tree.finish();
    let built = started.elapsed();
    let rss_after = vm_hwm_kb();
    println!(
        "tree: {} entries ({} nodes with directories) built in {:.0} ms",
        n,
        tree.len(),
        built.as_secs_f64() * 1000.0
    );
    println!(
        "peak RSS holding the tree: {:.1} MB (target ≤ {RSS_TARGET_MB:.0} MB; {:.1} MB before building; ≈{} bytes per entry)",
        rss_after as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        (rss_after - rss_before) * 1024 / n
    );

    let (w, h) = (200u16, 60u16);
    let mut state = State::new(
        "/srv/bench".into(),
        "bench".into(),
        KeyMap::default(),
        Theme::default(),
    );
    update(&mut state, Action::Resize(w, h));
    state.set_tree(tree);
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();

    let frames = 200;
    let mut collapsed = Vec::new();
    for _ in 0..frames {
        let t = Instant::now();
        terminal.draw(|f| firn::tui::view(&state, f)).unwrap();
        collapsed.push(t.elapsed());
    }

    let t = Instant::now();
    let ids: Vec<_> = (1..=state.browse.tree.len() as u32)
        .filter(|&id| state.browse.tree.is_dir(id))
        .collect();
    for id in ids {
        state.browse.tree.set_expanded(id, true);
    }
    // What a key that opens directories does: the rows are rebuilt once, when
    // the key's update ends.
    state.browse.reshape();
    update(&mut state, Action::Tick);
    let expand_all = t.elapsed();
    println!(
        "expanding every directory: {} rows rebuilt in {:.0} ms (on that key press only)",
        state.browse.rows.len(),
        expand_all.as_secs_f64() * 1000.0
    );

    // Page through the middle of the fully expanded tree: key press + frame.
    state.browse.selected = state.browse.rows.len() / 2;
    update(&mut state, Action::Tick);
    let mut paging = Vec::new();
    for i in 0..frames {
        let t = Instant::now();
        let code = if i % 2 == 0 {
            crossterm::event::KeyCode::PageDown
        } else {
            crossterm::event::KeyCode::Down
        };
        update(
            &mut state,
            Action::Key(crossterm::event::KeyEvent::new(
                code,
                crossterm::event::KeyModifiers::NONE,
            )),
        );
        terminal.draw(|f| firn::tui::view(&state, f)).unwrap();
        paging.push(t.elapsed());
    }
    let collapsed_ms = median(collapsed);
    let paging_ms = median(paging);
    println!(
        "frame {w}x{h}, all collapsed: median {collapsed_ms:.2} ms (target ≤ {FRAME_TARGET_MS} ms)"
    );
    println!(
        "frame {w}x{h}, 1,010,100 rows expanded, key press + frame: median {paging_ms:.2} ms (target ≤ {FRAME_TARGET_MS} ms)"
    );
    println!("peak RSS at the end: {:.1} MB", vm_hwm_kb() as f64 / 1024.0);
}
