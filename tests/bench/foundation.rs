//! Foundation benchmark: firn next to a reference tool, measured in the same run.
//!
//! `cargo bench --bench foundation` builds its own data and prints one table:
//!
//! 1. `firn status` on an unchanged tree of many small files (default 200,000)
//!    against `find -printf '%s %T@ %i\n'`, which stats the same files;
//!    plus firn's peak RSS, the read counters of `firn status --json`, and the
//!    time and peak RSS of a `firn backup` with nothing to upload.
//! 2. `firn hash` of one large file (default 1 GiB) against `openssl sha1` plus
//!    `openssl sha256`, the two digests firn computes in one read.
//! 3. `firn restore` of that file from the embedded store (download in verified
//!    ranges, SHA-1 and tree hash, fsync, rename) against `dd conv=fsync` of the
//!    stored archive plus `openssl sha1` and `sha256` of the copy (the same bytes
//!    moved, as durably, and the same digests); plus the restore's peak RSS.
//!
//! 4. The first `firn backup` of that tree (the embedded store, small files in
//!    packs, the default) on a real disk (the scratch directory is under the
//!    target directory, else /var/tmp; its filesystem is printed, and a tmpfs is
//!    flagged), against, in the same run: `restic backup` to a new local
//!    repository on the same filesystem, `tar cf` of the tree plus `sync`,
//!    `firn backup` with `pack_small_files = false` (one archive per file), and
//!    the floor of reading and hashing every file (`xargs -P2 sha1sum`); plus
//!    its peak RSS and the store's disk usage next to the tree's bytes (`du
//!    --apparent-size`). The tree is the status tree with files of 0-805 bytes
//!    (about 80 MB at 200,000 files: photos' sidecars, mail, source code).
//!    restic comes from Debian's packages (`apt-get install restic`); when it
//!    cannot be had the row says so.
//!
//! Timings are only reported, never asserted: machines are noisy.
//! Quick mode for smoke tests: `FIRN_BENCH_FILES=2000 FIRN_BENCH_HASH_MIB=64`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "shared.rs"]
mod shared;
use shared::{FILES_PER_DIR, XorShift, fmt_mb};

const FIRN: &str = env!("CARGO_BIN_EXE_firn");
/// Where cargo lets benches put scratch data: under `target/`, on real disk.
const TARGET_TMPDIR: &str = env!("CARGO_TARGET_TMPDIR");

const RUNS: usize = 3;
const BLOCK: usize = 8 << 20;

const STATUS_TARGET_RATIO: f64 = 1.5;
/// Status and a backup with nothing to upload keep no record per file.
const RSS_TARGET_MB: f64 = 40.0;
const HASH_TARGET_RATIO: f64 = 1.1;
const RESTORE_TARGET_RATIO: f64 = 1.2;
/// One 16 MiB download range per file in flight, plus the runtime.
const RESTORE_RSS_TARGET_MB: f64 = 100.0;
/// Issue 21's targets for the first backup with packs.
const RESTIC_TARGET_RATIO: f64 = 0.5;
const TAR_TARGET_RATIO: f64 = 2.0;
/// The store's disk usage over the files' bytes.
const STORE_TARGET_RATIO: f64 = 1.2;
const BACKUP_RSS_TARGET_MB: f64 = 100.0;
/// The first-backup tree's files are 0 to this many bytes.
const FIRST_BACKUP_MAX_FILE: usize = 805;

fn main() {
    let files = env_usize("FIRN_BENCH_FILES", 200_000).max(1);
    let hash_mib = env_usize("FIRN_BENCH_HASH_MIB", 1024).max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let status = bench_status(files);
    let hash = bench_hash(hash_mib);
    let restore = bench_restore(hash_mib);

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "firn foundation benchmark ({cores} {})",
        if cores == 1 { "core" } else { "cores" }
    );
    row(
        &mut out,
        "measure",
        "firn",
        "reference",
        "ratio",
        "target",
        "",
    );
    let ratio = secs(status.firn) / secs(status.find);
    row(
        &mut out,
        &format!("status, {files} files, no change"),
        &fmt_secs(status.firn),
        &format!("find {}", fmt_secs(status.find)),
        &format!("{ratio:.2}x"),
        &format!("<= {STATUS_TARGET_RATIO}x"),
        verdict(ratio <= STATUS_TARGET_RATIO),
    );
    let rss_mb = status.peak_rss_kib as f64 * 1024.0 / 1e6;
    row(
        &mut out,
        "status peak RSS",
        &format!("{rss_mb:.1} MB"),
        "-",
        "-",
        &format!("<= {RSS_TARGET_MB} MB"),
        verdict(rss_mb <= RSS_TARGET_MB),
    );
    let ratio = secs(status.backup_unchanged) / secs(status.find);
    row(
        &mut out,
        "backup, no change",
        &fmt_secs(status.backup_unchanged),
        &format!("find {}", fmt_secs(status.find)),
        &format!("{ratio:.2}x"),
        "-",
        "",
    );
    let status_rss_mb = status.peak_rss_kib as f64 * 1024.0 / 1e6;
    let rss_mb = status.backup_peak_rss_kib as f64 * 1024.0 / 1e6;
    row(
        &mut out,
        "backup, no change, peak RSS",
        &format!("{rss_mb:.1} MB"),
        &format!("status {status_rss_mb:.1} MB"),
        &format!("{:.2}x", rss_mb / status_rss_mb),
        &format!("<= {RSS_TARGET_MB} MB"),
        verdict(rss_mb <= RSS_TARGET_MB),
    );
    let reference = secs(hash.sha1) + secs(hash.sha256);
    let ratio = secs(hash.firn) / reference;
    row(
        &mut out,
        &format!("sha1 + tree hash, {}", fmt_mib(hash_mib)),
        &fmt_secs(hash.firn),
        &format!("openssl {}", fmt_secs(Duration::from_secs_f64(reference))),
        &format!("{ratio:.2}x"),
        &format!("<= {HASH_TARGET_RATIO}x"),
        verdict(ratio <= HASH_TARGET_RATIO),
    );
    let reference = secs(restore.cp) + secs(restore.sha1) + secs(restore.sha256);
    let ratio = secs(restore.firn) / reference;
    row(
        &mut out,
        &format!("restore, {}", fmt_mib(hash_mib)),
        &fmt_secs(restore.firn),
        &format!(
            "dd+openssl {}",
            fmt_secs(Duration::from_secs_f64(reference))
        ),
        &format!("{ratio:.2}x"),
        &format!("<= {RESTORE_TARGET_RATIO}x"),
        verdict(ratio <= RESTORE_TARGET_RATIO),
    );
    let rss_mb = restore.peak_rss_kib as f64 * 1024.0 / 1e6;
    row(
        &mut out,
        "restore peak RSS",
        &format!("{rss_mb:.1} MB"),
        "-",
        "-",
        &format!("<= {RESTORE_RSS_TARGET_MB} MB"),
        verdict(rss_mb <= RESTORE_RSS_TARGET_MB),
    );
    let first = &status.first;
    let backup_label = format!("first backup, {files} files, packs");
    match first.restic {
        Some(restic) => {
            let ratio = secs(status.backup) / secs(restic);
            row(
                &mut out,
                &backup_label,
                &fmt_secs(status.backup),
                &format!("restic {}", fmt_secs(restic)),
                &format!("{ratio:.2}x"),
                &format!("<= {RESTIC_TARGET_RATIO}x"),
                verdict(ratio <= RESTIC_TARGET_RATIO),
            );
        }
        None => row(
            &mut out,
            &backup_label,
            &fmt_secs(status.backup),
            "restic: not installed",
            "-",
            &format!("<= {RESTIC_TARGET_RATIO}x"),
            "(apt-get install restic)",
        ),
    }
    let ratio = secs(status.backup) / secs(first.tar);
    row(
        &mut out,
        "first backup vs tar cf + sync",
        &fmt_secs(status.backup),
        &format!("tar+sync {}", fmt_secs(first.tar)),
        &format!("{ratio:.2}x"),
        &format!("<= {TAR_TARGET_RATIO}x"),
        verdict(ratio <= TAR_TARGET_RATIO),
    );
    let ratio = secs(status.backup) / secs(first.unpacked);
    row(
        &mut out,
        "first backup vs one archive per file",
        &fmt_secs(status.backup),
        &format!("unpacked {}", fmt_secs(first.unpacked)),
        &format!("{ratio:.2}x"),
        "-",
        "",
    );
    row(
        &mut out,
        "first backup vs hashing floor",
        &fmt_secs(status.backup),
        &format!("sha1sum -P2 {}", fmt_secs(first.floor)),
        &format!("{:.2}x", secs(status.backup) / secs(first.floor)),
        "-",
        "",
    );
    let ratio = first.store_bytes as f64 / first.tree_apparent.max(1) as f64;
    row(
        &mut out,
        "store disk usage vs the files' bytes",
        &fmt_mb(first.store_bytes),
        &format!("du -b {}", fmt_mb(first.tree_apparent)),
        &format!("{ratio:.2}x"),
        &format!("<= {STORE_TARGET_RATIO}x"),
        verdict(ratio <= STORE_TARGET_RATIO),
    );
    let rss_mb = first.peak_rss_kib as f64 * 1024.0 / 1e6;
    row(
        &mut out,
        "first backup peak RSS",
        &format!("{rss_mb:.1} MB"),
        &first.restic_rss_kib.map_or("-".into(), |k| {
            format!("restic {:.1} MB", k as f64 * 1024.0 / 1e6)
        }),
        "-",
        &format!("<= {BACKUP_RSS_TARGET_MB} MB"),
        verdict(rss_mb <= BACKUP_RSS_TARGET_MB),
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "first backup: {} files uploaded in {} ({}, filesystem {})",
        status
            .uploaded_files
            .map_or_else(|| "?".to_string(), |n| n.to_string()),
        fmt_secs(status.backup),
        status.tree_location.display(),
        first.filesystem,
    );
    let _ = writeln!(
        out,
        "first backup tree: {} in files of 0-{FIRST_BACKUP_MAX_FILE} bytes, {} on disk; firn's store {} on disk ({} with its catalog and local state)",
        fmt_mb(first.tree_apparent),
        fmt_mb(first.tree_disk),
        fmt_mb(first.store_bytes),
        fmt_mb(first.data_bytes),
    );
    let _ = writeln!(
        out,
        "one archive per file (pack_small_files = false): {} files in {}, {:.1} MB peak RSS, store {} on disk",
        opt(first.unpacked_files),
        fmt_secs(first.unpacked),
        first.unpacked_rss_kib as f64 * 1024.0 / 1e6,
        fmt_mb(first.unpacked_store_bytes),
    );
    if let Some(bytes) = first.restic_repo_bytes {
        let _ = writeln!(out, "restic repository: {} on disk", fmt_mb(bytes));
    }
    let _ = writeln!(
        out,
        "status --json, unchanged tree: files_read {}, bytes_read {} (expected 0 and 0){}",
        opt(status.files_read),
        opt(status.bytes_read),
        if status.files_read == Some(0) && status.bytes_read == Some(0) {
            ""
        } else {
            "  <-- UNEXPECTED"
        },
    );
    let _ = writeln!(
        out,
        "openssl: sha1 {}, sha256 {} (best of {RUNS} each); firn hash file on {}",
        fmt_secs(hash.sha1),
        fmt_secs(hash.sha256),
        hash.location.display(),
    );
    if hash.sha1_matches {
        let _ = writeln!(
            out,
            "sha1 check: firn and openssl agree ({})",
            hash.firn_sha1
        );
    } else {
        let _ = writeln!(out, "!!!!!!!! SHA-1 MISMATCH !!!!!!!!");
        let _ = writeln!(out, "!!! firn hash:    {}", hash.firn_sha1);
        let _ = writeln!(out, "!!! openssl sha1: {}", hash.openssl_sha1);
    }
    let _ = out.flush();
}

// ---------------------------------------------------------------------------
// 1. status on an unchanged tree

struct StatusResult {
    firn: Duration,
    find: Duration,
    peak_rss_kib: u64,
    backup: Duration,
    /// A backup of the unchanged tree: nothing to upload.
    backup_unchanged: Duration,
    backup_peak_rss_kib: u64,
    uploaded_files: Option<u64>,
    files_read: Option<u64>,
    bytes_read: Option<u64>,
    tree_location: PathBuf,
    first: FirstBackup,
}

/// The references for the first backup, measured in the same run.
struct FirstBackup {
    peak_rss_kib: u64,
    restic: Option<Duration>,
    restic_rss_kib: Option<u64>,
    restic_repo_bytes: Option<u64>,
    /// `tar cf` of the tree into a file beside it, then `sync`.
    tar: Duration,
    /// `firn backup` with `pack_small_files = false`.
    unpacked: Duration,
    unpacked_rss_kib: u64,
    unpacked_files: Option<u64>,
    unpacked_store_bytes: u64,
    /// `find | xargs -P2 sha1sum`: reading and hashing every file, nothing more.
    floor: Duration,
    /// Disk usage of the store with packs, and of firn's whole data directory.
    store_bytes: u64,
    data_bytes: u64,
    /// `du --apparent-size` and `du` of the tree.
    tree_apparent: u64,
    tree_disk: u64,
    /// The filesystem the tree and stores are on, as `stat -f` and /proc/mounts say.
    filesystem: String,
}

/// restic, installed from Debian's packages when missing (None when it cannot be).
fn restic_available() -> bool {
    let found = || {
        Command::new("restic")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found() {
        return true;
    }
    eprintln!("restic is not installed: trying apt-get install restic");
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-q", "restic"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    found()
}

/// The references of the first backup, each after firn's with packs (the
/// tree is in the page cache for all; each starts with nothing dirty):
/// firn with one archive per file, restic's first backup into a new
/// repository under `base`, and `tar cf` + `sync`.
fn first_backup_references(tree: &Path, base: &Path, packed: &Packed) -> FirstBackup {
    // firn with one archive per file, in a data directory of its own.
    let (data, config) = (base.join("data-unpacked"), base.join("config-unpacked"));
    fs::create_dir_all(config.join("firn"))
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", config.display())));
    fs::write(
        config.join("firn/config.toml"),
        "[defaults]\npack_small_files = false\n",
    )
    .unwrap_or_else(|e| fail(&format!("cannot write the unpacked config: {e}")));
    let mut cmd = Command::new(FIRN);
    cmd.args(["backup", "--json"])
        .arg(tree)
        .env("FIRN_DATA_DIR", &data)
        .env("XDG_CONFIG_HOME", &config)
        .env_remove("FIRN_CONFIG");
    eprintln!("firn backup with pack_small_files = false (one archive per file)");
    let unpacked = run(cmd, base, "firn backup (unpacked)");
    unpacked.require_success();
    let unpacked_files = json_u64(&unpacked.stdout, "uploaded_files");
    let unpacked_store_bytes = du(&data.join("store"), false);
    eprintln!(
        "  {} files in {}, store {} on disk",
        opt(unpacked_files),
        fmt_secs(unpacked.wall),
        fmt_mb(unpacked_store_bytes)
    );
    let _ = fs::remove_dir_all(&data);
    sync();

    let (mut restic, mut restic_rss_kib, mut restic_repo_bytes) = (None, None, None);
    if restic_available() {
        let repo = base.join("restic-repo");
        let restic_cmd = |args: &[&str]| {
            let mut cmd = Command::new("restic");
            cmd.args(args)
                .arg("--repo")
                .arg(&repo)
                .arg("--cache-dir")
                .arg(base.join("restic-cache"))
                .env("RESTIC_PASSWORD", "firn-benchmark");
            cmd
        };
        run_quiet(restic_cmd(&["init"]), base, "restic init").require_success();
        sync();
        let mut backup = restic_cmd(&["backup", "--quiet"]);
        backup.arg(tree);
        eprintln!("restic backup of the same tree");
        let run = run_quiet(backup, base, "restic backup");
        run.require_success();
        eprintln!("  {}", fmt_secs(run.wall));
        restic = Some(run.wall);
        restic_rss_kib = Some(run.maxrss_kib);
        restic_repo_bytes = Some(du(&repo, false));
        let _ = fs::remove_dir_all(&repo);
        let _ = fs::remove_dir_all(base.join("restic-cache"));
        sync();
    }

    eprintln!("tar cf of the same tree + sync");
    let mut tar = Command::new("sh");
    tar.arg("-c")
        .arg("tar cf \"$1\" -C \"$2\" \"$3\" && sync")
        .arg("sh")
        .arg(base.join("tree.tar"))
        .arg(tree.parent().unwrap_or(base))
        .arg(tree.file_name().unwrap_or_default());
    let tar = run_quiet(tar, base, "tar cf + sync");
    tar.require_success();
    eprintln!("  {}", fmt_secs(tar.wall));
    let _ = fs::remove_file(base.join("tree.tar"));
    sync();

    FirstBackup {
        peak_rss_kib: packed.peak_rss_kib,
        restic,
        restic_rss_kib,
        restic_repo_bytes,
        tar: tar.wall,
        unpacked: unpacked.wall,
        unpacked_rss_kib: unpacked.maxrss_kib,
        unpacked_files,
        unpacked_store_bytes,
        floor: packed.floor,
        store_bytes: packed.store_bytes,
        data_bytes: packed.data_bytes,
        tree_apparent: packed.tree_apparent,
        tree_disk: packed.tree_disk,
        filesystem: packed.filesystem.clone(),
    }
}

/// What the first backup with packs measured, for the references beside it.
struct Packed {
    peak_rss_kib: u64,
    floor: Duration,
    store_bytes: u64,
    data_bytes: u64,
    tree_apparent: u64,
    tree_disk: u64,
    filesystem: String,
}

/// Flushes every dirty page, so one measurement does not pay for another's writes.
fn sync() {
    let _ = Command::new("sync").status();
}

/// `du -s` of `path` in bytes (its disk usage, or with `apparent` its bytes).
fn du(path: &Path, apparent: bool) -> u64 {
    let mut cmd = Command::new("du");
    cmd.args(["-s", "-B1"]);
    if apparent {
        cmd.arg("--apparent-size");
    }
    let out = cmd
        .arg(path)
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run du: {e}")));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| fail(&format!("du printed nothing for {}", path.display())))
}

/// The filesystem holding `path`: `stat -f`'s type and the /proc/mounts entry
/// (device, type, mount point) of the longest mount point above it.
fn filesystem_of(path: &Path) -> String {
    let stat = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mount = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            real.starts_with(point)
                .then(|| (point.len(), format!("{device} {kind} on {point}")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "not in /proc/mounts".to_string(), |(_, m)| m);
    let warning = if stat == "tmpfs" || mount.contains(" tmpfs ") {
        "  <-- tmpfs, NOT a disk"
    } else {
        ""
    };
    format!("stat -f: {stat}; {mount}{warning}")
}

fn bench_status(files: usize) -> StatusResult {
    let dirs = files.div_ceil(FILES_PER_DIR);
    // Tree plus one stored archive per file (the unpacked run), each at least a
    // page, plus packs, restic's repository, the tar file and catalogs.
    let bytes_needed = files as u64 * 4096 * 3 + (1 << 30);
    let inodes_needed = (files + dirs) as u64 * 3;
    // A real disk: what a first backup pays for is writing to one.
    let scratch = scratch_dir(
        &[TARGET_TMPDIR, "/var/tmp"],
        bytes_needed,
        inodes_needed,
        "firn-bench-status-",
    );
    let base = scratch.path();
    let tree = base.join("tree");
    let data = base.join("data");
    let config = base.join("config");
    for dir in [&data, &config] {
        fs::create_dir_all(dir)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", dir.display())));
    }

    eprintln!(
        "building a tree of {files} files in {dirs} directories under {}",
        base.display()
    );
    let started = Instant::now();
    shared::build_tree_of(&tree, files, dirs, FIRST_BACKUP_MAX_FILE).unwrap_or_else(|e| fail(&e));
    sync();
    eprintln!("  built and synced in {}", fmt_secs(started.elapsed()));
    let filesystem = filesystem_of(base);
    eprintln!("  filesystem: {filesystem}");
    // Reading and hashing every file: the floor, and the page cache filled for
    // every backup after it.
    let mut floor = Command::new("sh");
    floor
        .arg("-c")
        .arg("find \"$1\" -type f -print0 | xargs -0 -P2 -n 1000 sha1sum > /dev/null")
        .arg("sh")
        .arg(&tree);
    let floor = run_quiet(floor, base, "find | xargs -P2 sha1sum");
    floor.require_success();

    let firn = |args: &[&str]| {
        let mut cmd = Command::new(FIRN);
        cmd.args(args).arg(&tree);
        cmd.env("FIRN_DATA_DIR", &data)
            .env("XDG_CONFIG_HOME", &config)
            .env_remove("FIRN_CONFIG");
        cmd
    };

    eprintln!("first backup (populates the catalog)");
    let backup = run(firn(&["backup", "--json"]), base, "firn backup");
    backup.require_success();
    let last_line = backup
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let uploaded_files = json_u64(last_line, "uploaded_files");
    eprintln!(
        "  {} files uploaded in {}",
        opt(uploaded_files),
        fmt_secs(backup.wall)
    );
    if uploaded_files != Some(files as u64) {
        eprintln!("  warning: expected {files} uploaded files; last line of output: {last_line}");
    }
    sync();
    let packed = Packed {
        peak_rss_kib: backup.maxrss_kib,
        floor: floor.wall,
        store_bytes: du(&data.join("store"), false),
        data_bytes: du(&data, false),
        tree_apparent: du(&tree, true),
        tree_disk: du(&tree, false),
        filesystem,
    };
    let first = first_backup_references(&tree, base, &packed);

    eprintln!("timing firn status vs find, best of {RUNS}");
    let (mut best_firn, mut best_find, mut peak_rss_kib) = (Duration::MAX, Duration::MAX, 0);
    for i in 0..RUNS {
        let status = run_quiet(firn(&["status"]), base, "firn status");
        status.require_success();
        let mut find = Command::new("find");
        find.arg(&tree).args(["-printf", "%s %T@ %i\n"]);
        let find = run_quiet(find, base, "find");
        find.require_success();
        eprintln!(
            "  run {}: firn {} ({:.1} MB peak RSS), find {}",
            i + 1,
            fmt_secs(status.wall),
            status.maxrss_kib as f64 * 1024.0 / 1e6,
            fmt_secs(find.wall)
        );
        best_firn = best_firn.min(status.wall);
        best_find = best_find.min(find.wall);
        peak_rss_kib = peak_rss_kib.max(status.maxrss_kib);
    }

    eprintln!("timing firn backup with nothing to upload, best of {RUNS}");
    let (mut best_backup, mut backup_peak_rss_kib) = (Duration::MAX, 0);
    for i in 0..RUNS {
        let unchanged = run(firn(&["backup", "--json"]), base, "firn backup");
        unchanged.require_success();
        let uploaded = json_u64(&unchanged.stdout, "uploaded_files");
        let read = json_u64(&unchanged.stdout, "files_read");
        eprintln!(
            "  run {}: firn {} ({:.1} MB peak RSS, {} files uploaded, {} read)",
            i + 1,
            fmt_secs(unchanged.wall),
            unchanged.maxrss_kib as f64 * 1024.0 / 1e6,
            opt(uploaded),
            opt(read)
        );
        if uploaded != Some(0) || read != Some(0) {
            eprintln!("  warning: expected nothing uploaded and nothing read on an unchanged tree");
        }
        best_backup = best_backup.min(unchanged.wall);
        backup_peak_rss_kib = backup_peak_rss_kib.max(unchanged.maxrss_kib);
    }

    let json = run(firn(&["status", "--json"]), base, "firn status --json");
    json.require_success();
    let files_read = json_u64(&json.stdout, "files_read");
    let bytes_read = json_u64(&json.stdout, "bytes_read");

    StatusResult {
        firn: best_firn,
        find: best_find,
        peak_rss_kib,
        backup: backup.wall,
        backup_unchanged: best_backup,
        backup_peak_rss_kib,
        uploaded_files,
        files_read,
        bytes_read,
        tree_location: base.to_path_buf(),
        first,
    }
}

// ---------------------------------------------------------------------------
// 2. hashing one large file

struct HashResult {
    firn: Duration,
    sha1: Duration,
    sha256: Duration,
    firn_sha1: String,
    openssl_sha1: String,
    sha1_matches: bool,
    location: PathBuf,
}

fn bench_hash(mib: usize) -> HashResult {
    let bytes = mib as u64 * (1 << 20);
    let scratch = scratch_dir(&[TARGET_TMPDIR], bytes + (64 << 20), 16, "firn-bench-hash-");
    let base = scratch.path();
    let file = base.join("random.bin");

    eprintln!(
        "writing a {} file of pseudo-random bytes to {}",
        fmt_mib(mib),
        file.display()
    );
    let started = Instant::now();
    write_random_file(&file, bytes);
    eprintln!("  written and synced in {}", fmt_secs(started.elapsed()));
    warm_cache(&file);

    eprintln!("timing firn hash vs openssl sha1 + sha256, best of {RUNS}");
    let (mut firn, mut sha1, mut sha256) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let (mut firn_sha1, mut openssl_sha1) = (String::new(), String::new());
    for i in 0..RUNS {
        let mut cmd = Command::new(FIRN);
        cmd.arg("hash").arg(&file);
        let f = run(cmd, base, "firn hash");
        f.require_success();
        firn_sha1 = f
            .stdout
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();

        let mut cmd = Command::new("openssl");
        cmd.arg("sha1").arg(&file);
        let s1 = run(cmd, base, "openssl sha1");
        s1.require_success();
        openssl_sha1 = openssl_digest(&s1.stdout);

        let mut cmd = Command::new("openssl");
        cmd.arg("sha256").arg(&file);
        let s256 = run(cmd, base, "openssl sha256");
        s256.require_success();

        eprintln!(
            "  run {}: firn {}, openssl sha1 {}, openssl sha256 {}",
            i + 1,
            fmt_secs(f.wall),
            fmt_secs(s1.wall),
            fmt_secs(s256.wall)
        );
        firn = firn.min(f.wall);
        sha1 = sha1.min(s1.wall);
        sha256 = sha256.min(s256.wall);
    }
    let sha1_matches = !firn_sha1.is_empty() && firn_sha1 == openssl_sha1;
    if !sha1_matches {
        eprintln!("!!! SHA-1 MISMATCH: firn {firn_sha1:?}, openssl {openssl_sha1:?}");
    }
    HashResult {
        firn,
        sha1,
        sha256,
        firn_sha1,
        openssl_sha1,
        sha1_matches,
        location: base.to_path_buf(),
    }
}

// ---------------------------------------------------------------------------
// 3. restore of one large file from the embedded store

struct RestoreResult {
    firn: Duration,
    cp: Duration,
    sha1: Duration,
    sha256: Duration,
    peak_rss_kib: u64,
}

fn bench_restore(mib: usize) -> RestoreResult {
    let bytes = mib as u64 * (1 << 20);
    let scratch = scratch_dir(
        &[TARGET_TMPDIR],
        3 * bytes + (64 << 20),
        64,
        "firn-bench-restore-",
    );
    let base = scratch.path();
    let tree = base.join("tree");
    let data = base.join("data");
    fs::create_dir_all(&tree).unwrap_or_else(|e| fail(&format!("cannot create tree: {e}")));
    let file = tree.join("disk.img");
    eprintln!(
        "backing up a {} file for the restore benchmark",
        fmt_mib(mib)
    );
    write_random_file(&file, bytes);
    let firn = |args: &[&str]| {
        let mut cmd = Command::new(FIRN);
        cmd.args(args)
            .env("FIRN_DATA_DIR", &data)
            .env("XDG_CONFIG_HOME", base.join("config"))
            .env_remove("FIRN_CONFIG");
        cmd
    };
    let tree_arg = tree.display().to_string();
    run_quiet(firn(&["backup", &tree_arg]), base, "firn backup").require_success();
    // The file's archive: the largest in the store (the backup also stored a
    // small catalog snapshot beside it).
    let archive = walkdir::WalkDir::new(data.join("store/archives"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .max_by_key(|e| e.metadata().map_or(0, |m| m.len()))
        .map(|e| e.into_path())
        .unwrap_or_else(|| fail("the backup stored no archive"));
    warm_cache(&archive);

    eprintln!("timing firn restore vs dd conv=fsync + openssl sha1 + sha256, best of {RUNS}");
    let mut best = RestoreResult {
        firn: Duration::MAX,
        cp: Duration::MAX,
        sha1: Duration::MAX,
        sha256: Duration::MAX,
        peak_rss_kib: 0,
    };
    for i in 0..RUNS {
        let out = base.join(format!("restored-{i}"));
        let to = out.display().to_string();
        let f = run_quiet(
            firn(&["restore", "--root", &tree_arg, "--to", &to]),
            base,
            "firn restore",
        );
        f.require_success();
        // dd with conv=fsync: the copy is on disk when it returns, as a restored
        // file is.
        let copy = base.join(format!("copy-{i}"));
        let mut cmd = Command::new("dd");
        cmd.arg(format!("if={}", archive.display()))
            .arg(format!("of={}", copy.display()))
            .args(["bs=16M", "conv=fsync", "status=none"]);
        let c = run_quiet(cmd, base, "dd");
        c.require_success();
        let mut cmd = Command::new("openssl");
        cmd.arg("sha1").arg(&copy);
        let s1 = run_quiet(cmd, base, "openssl sha1");
        s1.require_success();
        let mut cmd = Command::new("openssl");
        cmd.arg("sha256").arg(&copy);
        let s256 = run_quiet(cmd, base, "openssl sha256");
        s256.require_success();
        eprintln!(
            "  run {}: firn {} ({} MB peak), dd {}, openssl sha1 {}, sha256 {}",
            i + 1,
            fmt_secs(f.wall),
            f.maxrss_kib / 1000,
            fmt_secs(c.wall),
            fmt_secs(s1.wall),
            fmt_secs(s256.wall)
        );
        best.firn = best.firn.min(f.wall);
        best.cp = best.cp.min(c.wall);
        best.sha1 = best.sha1.min(s1.wall);
        best.sha256 = best.sha256.min(s256.wall);
        best.peak_rss_kib = best.peak_rss_kib.max(f.maxrss_kib);
        let _ = fs::remove_dir_all(&out);
        let _ = fs::remove_file(&copy);
    }
    best
}

fn write_random_file(path: &Path, bytes: u64) {
    let mut file = File::create(path)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", path.display())));
    let mut rng = XorShift::new(0x00c0_ffee_1234_5678);
    let mut buf = vec![0u8; BLOCK];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        rng.fill(&mut buf[..n]);
        file.write_all(&buf[..n])
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
        left -= n as u64;
    }
    // Flush to disk now so background writeback does not disturb the timings.
    file.sync_all()
        .unwrap_or_else(|e| fail(&format!("cannot fsync {}: {e}", path.display())));
}

fn warm_cache(path: &Path) {
    let mut file =
        File::open(path).unwrap_or_else(|e| fail(&format!("cannot open {}: {e}", path.display())));
    let mut buf = vec![0u8; BLOCK];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => fail(&format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// `SHA1(path)= hex` (or `SHA1(path)=hex`): the hex digest, lower case.
fn openssl_digest(stdout: &str) -> String {
    let line = stdout.lines().next().unwrap_or("");
    line.rsplit_once('=')
        .map_or("", |(_, hex)| hex.trim())
        .to_ascii_lowercase()
}

// ---------------------------------------------------------------------------
// Running children

use shared::Run;

/// Runs `cmd` with stdout and stderr captured in files under `scratch`.
fn run(cmd: Command, scratch: &Path, what: &'static str) -> Run {
    shared::run_child(cmd, scratch, what, true).unwrap_or_else(|e| fail(&e))
}

/// Runs `cmd` with stdout to /dev/null (stderr captured for error reports).
fn run_quiet(cmd: Command, scratch: &Path, what: &'static str) -> Run {
    shared::run_child(cmd, scratch, what, false).unwrap_or_else(|e| fail(&e))
}

// ---------------------------------------------------------------------------
// Helpers

/// A temporary directory in the first of `preferred` with room, else the system temp dir.
fn scratch_dir(preferred: &[&str], bytes: u64, inodes: u64, prefix: &str) -> tempfile::TempDir {
    shared::scratch_dir(preferred, bytes, inodes, prefix).unwrap_or_else(|e| fail(&e))
}

/// The first `"key": <unsigned integer>` in a JSON text (enough for firn's flat counters).
fn json_u64(text: &str, key: &str) -> Option<u64> {
    let needle = format!("\"{key}\"");
    let at = text.find(&needle)? + needle.len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn env_usize(name: &str, default: usize) -> usize {
    shared::env_number(name, default).unwrap_or_else(|e| fail(&e))
}

fn row(
    out: &mut impl Write,
    measure: &str,
    firn: &str,
    reference: &str,
    ratio: &str,
    target: &str,
    verdict: &str,
) {
    let line = format!("{measure:<36} {firn:<11} {reference:<14} {ratio:<7} {target:<7} {verdict}");
    let _ = writeln!(out, "{}", line.trim_end());
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 0.1 {
        format!("{s:.3} s")
    } else {
        format!("{s:.2} s")
    }
}

fn fmt_mib(mib: usize) -> String {
    if mib.is_multiple_of(1024) {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_string(), |n| n.to_string())
}

/// Gives up with a message. A panic (not `exit`) so the temporary directories
/// are still removed as the stack unwinds.
fn fail(message: &str) -> ! {
    panic!("foundation bench: {message}");
}
