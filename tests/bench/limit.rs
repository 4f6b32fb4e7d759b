//! Bandwidth-limit benchmark: a first backup under `upload_limit` to S3 on the
//! AWS stand-in over a simulated internet, and the same backup without a limit
//! for reference.
//!
//! `cargo bench --bench limit` builds a tree of 200 MiB (default;
//! `FIRN_BENCH_MIB`): half of it small files (4 KiB to 1 MiB, each one
//! PutObject), half files of 40 MiB (multipart: parts of 16, 16 and 8 MiB),
//! the same bytes every run. It backs the tree up with the real `firn` binary
//! through the latency proxy (`tests/common/latency.rs`: 80 ms added to every
//! request, default `FIRN_BENCH_LATENCY_MS`), which counts the request body
//! bytes as they arrive. Two runs, each on a stand-in, bucket and data
//! directory of its own:
//!
//! 1. "no limit": `firn backup --set s --json`;
//! 2. "upload_limit = \"8 MiB/s\"" in the set (default; `FIRN_BENCH_LIMIT_MIB`).
//!
//! For each: the wall time, and on the wire the file bytes over the time from
//! the first body byte to the last byte of the files (the catalog snapshot
//! that follows is left out), their rate, and under the limit the ratio of
//! that rate to the limit; the rate in 5-second windows (lowest and highest,
//! the first and last windows left out) shows how even it is. Figures are
//! printed, never asserted; a run that does not upload every file fails.
//!
//! Needs the AWS stand-in: `FAKECLOUD_BIN` (`bash tests/run.sh` builds it and
//! prints the export). Quick: `FIRN_BENCH_MIB=40 cargo bench --bench limit`.

#[path = "../common/aws.rs"]
mod aws;
#[path = "../common/latency.rs"]
mod latency;
#[path = "shared.rs"]
mod shared;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aws::{FakeCloud, aws_env};
use latency::LatencyProxy;
use shared::{XorShift, fmt_secs, run_child, tail};

const FIRN: &str = env!("CARGO_BIN_EXE_firn");
const MIB: u64 = 1 << 20;
/// Files of this size go multipart (S3's single_upload_max is 16 MiB).
const LARGE: u64 = 40 * MIB;
/// Small files: 4 KiB to this.
const SMALL_MAX: u64 = MIB;
const WINDOW: Duration = Duration::from_secs(5);

fn main() {
    let total_mib = env_or_fail("FIRN_BENCH_MIB", 200).max(2);
    let latency = Duration::from_millis(env_or_fail("FIRN_BENCH_LATENCY_MS", 80));
    let limit_mib = env_or_fail("FIRN_BENCH_LIMIT_MIB", 8).max(1);
    check_standin();
    let parent = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
    };
    let scratch = tempfile::Builder::new()
        .prefix("firn-bench-limit-")
        .tempdir_in(&parent)
        .unwrap_or_else(|e| panic!("cannot create a directory in {}: {e}", parent.display()));
    let tree = scratch.path().join("tree");
    let (files, small, large, bytes) = build_tree(&tree, total_mib * MIB);
    eprintln!(
        "tree: {files} files, {small} small (4 KiB-1 MiB) and {large} of 40 MiB, {:.1} MiB, under {}",
        bytes as f64 / MIB as f64,
        tree.display()
    );

    let limit = format!("{limit_mib} MiB/s");
    let runs = [
        ("no limit".to_string(), None),
        (format!("upload_limit = {limit:?}"), Some(limit.as_str())),
    ];
    let mut results = Vec::new();
    for (n, (label, limit)) in runs.into_iter().enumerate() {
        eprintln!("{label}:");
        let dir = scratch.path().join(format!("run-{n}"));
        let result = run(&dir, &tree, limit, latency, files, bytes);
        eprintln!(
            "  {} in {}: {:.2} MiB/s on the wire; first body byte {} after the start, files' last byte {} before the end (the last body byte {} before it)",
            fmt_mib(bytes),
            fmt_secs(result.span),
            result.rate() / MIB as f64,
            fmt_secs(result.first),
            fmt_secs(result.wall.saturating_sub(result.first + result.span)),
            fmt_secs(result.wall.saturating_sub(result.last)),
        );
        results.push((label, result));
    }

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "firn bandwidth-limit benchmark: {files} files ({small} small of 4 KiB-1 MiB, {large} of 40 MiB in 16 MiB parts), {}, to S3 (DEEP_ARCHIVE) on the stand-in, {} ms added to every request ({} cores)",
        fmt_mib(bytes),
        latency.as_millis(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let _ = writeln!(
        out,
        "{:<26} {:>9} {:>9} {:>10} {:>9} {:>10} {:>8} {:>17}",
        "run", "wall", "before", "on wire", "after", "MiB/s", "/ limit", "5 s windows MiB/s"
    );
    for (label, r) in &results {
        let ratio = if label.starts_with("upload_limit") {
            format!("{:.3}", r.rate() / (limit_mib * MIB) as f64)
        } else {
            "-".into()
        };
        let windows = match r.windows {
            Some((low, high)) => format!("{:.2}-{:.2}", low / MIB as f64, high / MIB as f64),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<26} {:>9} {:>9} {:>10} {:>9} {:>10.2} {:>8} {:>17}",
            label,
            fmt_secs(r.wall),
            fmt_secs(r.first),
            fmt_secs(r.span),
            fmt_secs(r.wall.saturating_sub(r.first + r.span)),
            r.rate() / MIB as f64,
            ratio,
            windows
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "on wire: from the first request body byte at the proxy to the last byte of the files (the catalog snapshot after them left out); MiB/s: the files' bytes over that time"
    );
    let _ = writeln!(
        out,
        "before: from the start of `firn backup` to the first body byte; after: from the files' last byte to its exit (completions, the group commit, the catalog snapshot)"
    );
    let _ = out.flush();
}

struct RunResult {
    wall: Duration,
    /// From the proxy's reset (just before the backup starts) to the first
    /// body byte, and to the last.
    first: Duration,
    last: Duration,
    /// First body byte to the last byte of the files.
    span: Duration,
    bytes: u64,
    /// Lowest and highest rate of the whole 5-second windows but the first
    /// and the last.
    windows: Option<(f64, f64)>,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.bytes as f64 / self.span.as_secs_f64().max(1e-9)
    }
}

fn run(
    dir: &Path,
    tree: &Path,
    limit: Option<&str>,
    latency: Duration,
    files: usize,
    bytes: u64,
) -> RunResult {
    let (data, config_home) = (dir.join("data"), dir.join("config"));
    for d in [&data, &config_home.join("firn")] {
        fs::create_dir_all(d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
    }
    let mut config = format!(
        "[sets.s]\nroot = {tree:?}\nretention = \"keep\"\nstore = {{ kind = \"s3\", bucket = \"bench\", force_path_style = true, storage_class = \"DEEP_ARCHIVE\" }}\n"
    );
    if let Some(limit) = limit {
        config.push_str(&format!("upload_limit = {limit:?}\n"));
    }
    fs::write(config_home.join("firn/config.toml"), config).expect("write the config");
    let cloud = FakeCloud::start();
    let proxy = LatencyProxy::start(&cloud.endpoint, latency);
    let firn = |args: &[&str], endpoint: &str| {
        let mut cmd = Command::new(FIRN);
        cmd.args(args)
            .envs(aws_env(endpoint))
            .env("FIRN_DATA_DIR", &data)
            .env("XDG_CONFIG_HOME", &config_home)
            .env_remove("FIRN_CONFIG")
            .env_remove("FIRN_FAULT");
        cmd
    };
    let init = run_child(
        firn(&["init", "--set", "s", "--yes"], &cloud.endpoint),
        dir,
        "firn init",
        true,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    init.require_success();
    proxy.reset();
    let backup = run_child(
        firn(&["backup", "--set", "s", "--json"], &proxy.endpoint),
        dir,
        "firn backup",
        true,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    backup.require_success();
    let line = backup
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let doc: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}): {}", tail(&backup.stdout, 500)));
    let uploaded = doc["uploaded_files"].as_u64().unwrap_or(0);
    if uploaded != files as u64 {
        panic!(
            "uploaded_files is {uploaded}, not {files}; failed: {}",
            tail(&doc["failed"].to_string(), 500)
        );
    }
    let timeline = proxy.body_timeline();
    let first = timeline.first().map_or(Duration::ZERO, |(t, _)| *t);
    let files_done = timeline
        .iter()
        .find(|(_, n)| *n >= bytes)
        .map_or_else(|| timeline.last().map_or(first, |(t, _)| *t), |(t, _)| *t);
    // Whole windows from the first byte, the first and last left out.
    let at = |t: Duration| {
        timeline
            .iter()
            .take_while(|(when, _)| *when <= t)
            .last()
            .map_or(0, |(_, n)| *n)
    };
    let mut rates = Vec::new();
    let mut start = first + WINDOW;
    while start + 2 * WINDOW <= files_done {
        let n = at(start + WINDOW) - at(start);
        rates.push(n as f64 / WINDOW.as_secs_f64());
        start += WINDOW;
    }
    let windows = (!rates.is_empty()).then(|| {
        (
            rates.iter().cloned().fold(f64::MAX, f64::min),
            rates.iter().cloned().fold(0.0, f64::max),
        )
    });
    drop(proxy);
    drop(cloud);
    let _ = fs::remove_dir_all(dir);
    RunResult {
        wall: backup.wall,
        first,
        last: timeline.last().map_or(first, |(t, _)| *t),
        span: files_done.saturating_sub(first),
        bytes,
        windows,
    }
}

/// Half small files, half 40 MiB files, `target` bytes in all (about): returns
/// the number of files, small and large, and their bytes.
fn build_tree(tree: &Path, target: u64) -> (usize, usize, usize, u64) {
    let mut rng = XorShift::new(0x11_3175);
    let large = ((target / 2) / LARGE).max(1) as usize;
    let mut content = vec![0u8; LARGE as usize];
    let mut total = 0;
    for i in 0..large {
        let dir = tree.join("videos");
        fs::create_dir_all(&dir).expect("create tree");
        rng.fill(&mut content);
        fs::write(dir.join(format!("v{i:03}.mov")), &content).expect("write file");
        total += LARGE;
    }
    let mut small = 0;
    while total < target {
        let len = (4096 + rng.next() % (SMALL_MAX - 4096 + 1)).min(target - total);
        let dir = tree.join(format!("photos/{:02}", small / 100));
        fs::create_dir_all(&dir).expect("create tree");
        rng.fill(&mut content[..len as usize]);
        fs::write(
            dir.join(format!("p{small:05}.jpg")),
            &content[..len as usize],
        )
        .expect("write file");
        total += len;
        small += 1;
    }
    (large + small, small, large, total)
}

fn fmt_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

fn check_standin() {
    const HOW: &str = "run `bash tests/run.sh` once, which builds the AWS stand-in and prints the `export FAKECLOUD_BIN=...` line";
    match std::env::var_os("FAKECLOUD_BIN") {
        None => panic!("FAKECLOUD_BIN is not set: {HOW}"),
        Some(path) if !Path::new(&path).is_file() => panic!(
            "FAKECLOUD_BIN ({}) is not a file: {HOW}",
            Path::new(&path).display()
        ),
        Some(_) => {}
    }
}

fn env_or_fail(name: &str, default: u64) -> u64 {
    shared::env_number(name, default).unwrap_or_else(|e| panic!("{e}"))
}
