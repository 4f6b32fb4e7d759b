//! Catalog snapshot benchmark: firn next to a reference tool, measured in the same run.
//!
//! `cargo bench --bench catalog` fills the SQLite catalog of an embedded set with
//! 200,000 records (default; `FIRN_BENCH_RECORDS`): paths like a storage server's,
//! Glacier-length archive ids (138 characters), random digests, every fifth file
//! with a superseded version. The records name a Glacier vault, so the rebuild
//! keeps them as they are without the embedded store holding 200,000 archives.
//! Then, each run timed with its peak RSS:
//!
//! 1. `firn catalog snapshot` (read every record, gzip JSON lines, hash, store in
//!    the embedded store with fsync) against `gzip -1` of the catalog's SQLite file
//!    (the same records, compressed as fast), with both sizes;
//! 2. `firn catalog rebuild` from that snapshot into an empty catalog (inventory,
//!    retrieval, verify, decode, import, and the new snapshot it then stores)
//!    against `gunzip` of the gzip'd database.
//!
//! Timings are only reported, never asserted: machines are noisy.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[path = "shared.rs"]
mod shared;
use shared::fmt_mb;

use firn::catalog::sqlite::SqliteCatalog;
use firn::catalog::{ArchiveRecord, ArchiveState, Catalog};

const FIRN: &str = env!("CARGO_BIN_EXE_firn");
const TARGET_TMPDIR: &str = env!("CARGO_TARGET_TMPDIR");
const RUNS: usize = 3;

fn main() {
    let records = std::env::var("FIRN_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000usize)
        .max(1);
    let base = PathBuf::from(TARGET_TMPDIR).join("catalog-bench");
    let _ = fs::remove_dir_all(&base);
    let (tree, data, config) = (base.join("tree"), base.join("data"), base.join("config"));
    for dir in [&tree, &data, &config.join("firn")] {
        fs::create_dir_all(dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    }
    fs::write(
        config.join("firn/config.toml"),
        format!(
            "[sets.s]\nroot = {tree:?}\nretention = \"keep\"\nstore = {{ kind = \"local\", retrieval_delay_secs = 0 }}\n"
        ),
    )
    .unwrap_or_else(|e| fail(&format!("cannot write the config: {e}")));
    let catalog_db = data.join("catalog.sqlite");

    eprintln!("filling the catalog with {records} records");
    let started = Instant::now();
    fill(&catalog_db, records);
    eprintln!("  filled in {:.1} s", started.elapsed().as_secs_f64());
    let db_bytes = fs::metadata(&catalog_db).map_or(0, |m| m.len());

    let firn = |args: &[&str]| {
        let mut cmd = Command::new(FIRN);
        cmd.args(args)
            .env("FIRN_DATA_DIR", &data)
            .env("XDG_CONFIG_HOME", &config)
            .env_remove("FIRN_CONFIG");
        cmd
    };

    let mut snapshot = Vec::new();
    let mut gzip = Vec::new();
    let mut snapshot_bytes = 0;
    let gz = base.join("catalog.sqlite.gz");
    for _ in 0..RUNS {
        let run = measure(
            firn(&["catalog", "snapshot", "--set", "s", "--json"]),
            &base,
        );
        run.require_success("firn catalog snapshot");
        snapshot_bytes = json_u64(&run.stdout, "bytes").unwrap_or(0);
        snapshot.push(run);
        let mut cmd = Command::new("gzip");
        cmd.arg("-1").arg("-c").arg(&catalog_db);
        let run = measure_to(cmd, &base, Some(&gz));
        run.require_success("gzip -1");
        gzip.push(run);
    }
    let gz_bytes = fs::metadata(&gz).map_or(0, |m| m.len());

    let mut rebuild = Vec::new();
    let mut gunzip = Vec::new();
    for _ in 0..RUNS {
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{suffix}", catalog_db.display()));
        }
        let _ = fs::remove_dir_all(data.join("sets"));
        let run = measure(firn(&["catalog", "rebuild", "--set", "s", "--json"]), &base);
        run.require_success("firn catalog rebuild");
        let imported = json_u64(&run.stdout, "imported").unwrap_or(0);
        if imported != records as u64 {
            fail(&format!(
                "the rebuild imported {imported} of {records} records"
            ));
        }
        rebuild.push(run);
        let mut cmd = Command::new("gunzip");
        cmd.arg("-c").arg(&gz);
        let run = measure_to(cmd, &base, None);
        run.require_success("gunzip");
        gunzip.push(run);
    }

    println!();
    println!("firn catalog benchmark ({records} records; medians of {RUNS} runs)");
    println!(
        "{:<34} {:>22} {:>26} {:>8}",
        "measure", "firn", "reference", "ratio"
    );
    let (s, g) = (median(&snapshot), median(&gzip));
    println!(
        "{:<34} {:>22} {:>26} {:>7.2}x",
        "snapshot: time",
        fmt_secs(s.0),
        format!("gzip -1 of the db {}", fmt_secs(g.0)),
        s.0.as_secs_f64() / g.0.as_secs_f64()
    );
    println!(
        "{:<34} {:>22} {:>26} {:>7.2}x",
        "snapshot: size",
        fmt_mb(snapshot_bytes),
        format!("gzip'd db {} (db {})", fmt_mb(gz_bytes), fmt_mb(db_bytes)),
        snapshot_bytes as f64 / gz_bytes.max(1) as f64
    );
    println!(
        "{:<34} {:>22} {:>26}",
        "snapshot: peak RSS",
        fmt_mb(s.1 * 1024),
        fmt_mb(g.1 * 1024)
    );
    let (r, u) = (median(&rebuild), median(&gunzip));
    println!(
        "{:<34} {:>22} {:>26} {:>7.2}x",
        "rebuild from the snapshot: time",
        fmt_secs(r.0),
        format!("gunzip of the db {}", fmt_secs(u.0)),
        r.0.as_secs_f64() / u.0.as_secs_f64()
    );
    println!(
        "{:<34} {:>22} {:>26}",
        "rebuild: peak RSS",
        fmt_mb(r.1 * 1024),
        fmt_mb(u.1 * 1024)
    );
}

/// `records` records of set `s`: one current version per file, and a superseded
/// one for every fifth.
fn fill(catalog_db: &Path, records: usize) {
    let catalog = SqliteCatalog::open(catalog_db, "s")
        .unwrap_or_else(|e| fail(&format!("cannot open the catalog: {e:#}")));
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut batch = Vec::with_capacity(10_000);
    let mut written = 0;
    let mut file = 0usize;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| fail(&format!("no runtime: {e}")));
    while written < records {
        let key = format!(
            "srv/vm-images/host{:02}/disk{:03}/chunk-{file:07}.img",
            file % 37,
            file % 211
        );
        let versions = if file.is_multiple_of(5) { 2 } else { 1 };
        for v in 0..versions {
            if written == records {
                break;
            }
            let mut digest = || {
                let mut out = [0u8; 32];
                for chunk in out.chunks_mut(8) {
                    chunk.copy_from_slice(&next().to_le_bytes()[..chunk.len()]);
                }
                out
            };
            let tree_hash = digest();
            let sha1: [u8; 20] = digest()[..20].try_into().unwrap_or([0; 20]);
            let id: String = (0..138)
                .map(|i| {
                    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
                        [((next() >> (i % 8)) % 64) as usize] as char
                })
                .collect();
            let current = v == versions - 1;
            batch.push(ArchiveRecord {
                key: key.clone(),
                raw: None,
                size: next() % (64 << 20),
                mtime_ns: 1_700_000_000_000_000_000 + (next() % 1_000_000_000_000_000) as i64,
                sha1,
                tree_hash,
                archive_id: id,
                target: "glacier:us-east-1:bench-vault".into(),
                uploaded_at: 1_700_000_000 + file as i64 + v as i64,
                state: if current {
                    ArchiveState::Current
                } else {
                    ArchiveState::Superseded
                },
                host: "storage-server".into(),
                superseded_at: (!current).then_some(1_700_000_001 + file as i64),
                pack: None,
            });
            written += 1;
        }
        file += 1;
        if batch.len() >= 10_000 || written == records {
            runtime
                .block_on(catalog.import(&batch))
                .unwrap_or_else(|e| fail(&format!("cannot import: {e:#}")));
            batch.clear();
        }
    }
}

struct Run {
    wall: Duration,
    maxrss_kib: u64,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn require_success(&self, what: &str) {
        if !self.status.success() {
            fail(&format!(
                "{what} failed ({}): {}{}",
                self.status, self.stdout, self.stderr
            ));
        }
    }
}

fn measure(cmd: Command, scratch: &Path) -> Run {
    measure_to(cmd, scratch, Some(&scratch.join("child.stdout")))
}

/// Runs `cmd` (stdout to `stdout_to`, else discarded), reaping it with `wait4`
/// for its wall time and peak RSS.
fn measure_to(mut cmd: Command, scratch: &Path, stdout_to: Option<&Path>) -> Run {
    let err_path = scratch.join("child.stderr");
    let open = |path: &Path| {
        fs::File::create(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())))
    };
    cmd.stdin(Stdio::null())
        .stdout(stdout_to.map_or_else(Stdio::null, |p| Stdio::from(open(p))))
        .stderr(open(&err_path));
    let started = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start {cmd:?}: {e}")));
    let reaped = shared::reap(child, started).unwrap_or_else(|e| fail(&format!("wait4: {e}")));
    let read = |path: &Path| fs::read_to_string(path).unwrap_or_default();
    Run {
        wall: reaped.wall,
        maxrss_kib: reaped.maxrss_kib,
        status: reaped.status,
        stdout: match stdout_to {
            Some(p) if p.extension().is_none_or(|e| e != "gz") => read(p),
            _ => String::new(),
        },
        stderr: read(&err_path),
    }
}

/// Median wall time and median peak RSS (KiB).
fn median(runs: &[Run]) -> (Duration, u64) {
    let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    let mut rss: Vec<u64> = runs.iter().map(|r| r.maxrss_kib).collect();
    walls.sort();
    rss.sort();
    (walls[walls.len() / 2], rss[rss.len() / 2])
}

/// The number after `"key":` in the last JSON line of `text`.
fn json_u64(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let doc: serde_json::Value = serde_json::from_str(line).ok()?;
    doc.get(key)
        .or_else(|| doc.get("snapshot").and_then(|s| s.get(key)))
        .and_then(serde_json::Value::as_u64)
}

fn fmt_secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn fail(message: &str) -> ! {
    eprintln!("catalog benchmark: {message}");
    std::process::exit(1);
}
