//! Migration benchmark: `firn migrate` from one embedded store to another, next
//! to `cp -a` of the store directory, measured in the same run.
//!
//! `cargo bench --bench migrate` builds the foundation tree (default 200,000
//! files of 0-4 KiB, 200 a directory; `FIRN_BENCH_FILES` sets the count) under
//! /dev/shm when it has room, else under target/tmp, and then:
//!
//! 1. backs it up into embedded store A (setup, not measured);
//! 2. points the set at store B with A as its `previous_store`, and checks the
//!    dry run's plan: every file from its unchanged local file, no retrieval;
//! 3. times `firn migrate --set s --yes` (wall time and peak RSS);
//! 4. times `cp -a A A-copy`: the same store's bytes copied by the plainest tool;
//! 5. checks the result: `firn status` says every file is up to date in B and
//!    none is archived elsewhere only, and A holds no retrieval job.
//!
//! Timings are only reported, never asserted: machines are noisy. A migration
//! that fails, retrieves, or leaves a file behind fails the bench.
//! Quick mode for smoke tests: `FIRN_BENCH_FILES=2000`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "shared.rs"]
mod shared;
use shared::{FILES_PER_DIR, fmt_mb, fmt_secs, tail};

const FIRN: &str = env!("CARGO_BIN_EXE_firn");
/// Where cargo lets benches put scratch data: under `target/`, on real disk.
const TARGET_TMPDIR: &str = env!("CARGO_TARGET_TMPDIR");

fn main() {
    let files = shared::env_number("FIRN_BENCH_FILES", 200_000usize)
        .unwrap_or_else(|e| fail(&e))
        .max(1);
    let dirs = files.div_ceil(FILES_PER_DIR);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // The tree, store A, store B and A's copy: each about a page per file, plus
    // the catalog and the JSON of `firn status`.
    let bytes_needed = files as u64 * 4096 * 4 + (512 << 20);
    let inodes_needed = (files + dirs) as u64 * 4 + 10_000;
    let scratch = shared::scratch_dir(
        &["/dev/shm", TARGET_TMPDIR],
        bytes_needed,
        inodes_needed,
        "firn-bench-migrate-",
    )
    .unwrap_or_else(|e| fail(&e));
    let base = scratch.path();
    let tree = base.join("tree");
    let data = base.join("data");
    let store_a = base.join("store-a");
    let store_b = base.join("store-b");
    let store_copy = base.join("store-a-copy");
    let config = base.join("config.toml");
    fs::create_dir_all(&data)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", data.display())));

    eprintln!(
        "building a tree of {files} files in {dirs} directories under {}",
        base.display()
    );
    let started = Instant::now();
    shared::build_tree(&tree, files, dirs).unwrap_or_else(|e| fail(&e));
    eprintln!("  built in {}", fmt_secs(started.elapsed()));

    let firn = |args: &[&str]| {
        let mut cmd = Command::new(FIRN);
        cmd.args(args)
            .env("FIRN_DATA_DIR", &data)
            .env("FIRN_CONFIG", &config)
            .env("XDG_CONFIG_HOME", base.join("xdg-config"));
        cmd
    };

    // 1. The set's first backup, into store A.
    write_config(&config, &tree, &store_a, None);
    eprintln!("backing the tree up into store A (setup, not measured)");
    let backup = run(
        firn(&["backup", "--set", "s", "--json"]),
        base,
        "firn backup",
    );
    backup.require_success();
    let uploaded = last_json(&backup)["uploaded_files"].as_u64();
    eprintln!(
        "  {} files uploaded in {} ({} peak RSS)",
        opt(uploaded),
        fmt_secs(backup.wall),
        fmt_kib(backup.maxrss_kib)
    );
    if uploaded != Some(files as u64) {
        fail(&format!(
            "the backup uploaded {} files, not {files}",
            opt(uploaded)
        ));
    }
    let archives_a = count_files(&store_a.join("archives"));

    // 2. The set now uses store B; A is the store it used before.
    write_config(&config, &tree, &store_b, Some(&store_a));
    let dry = run(
        firn(&["migrate", "--set", "s", "--dry-run", "--json"]),
        base,
        "firn migrate --dry-run",
    );
    dry.require_success();
    let plan = &last_json(&dry)["plan"];
    let from_local = plan["from_local"]["files"].as_u64();
    let retrievals = plan["retrievals"]["files"].as_u64();
    eprintln!(
        "dry run in {}: {} from local files, {} to retrieve",
        fmt_secs(dry.wall),
        opt(from_local),
        opt(retrievals)
    );
    if from_local != Some(files as u64) || retrievals != Some(0) {
        fail(&format!(
            "the plan should copy all {files} files from the local files and retrieve none; it says:\n{plan:#}"
        ));
    }

    // 3. The migration, measured.
    eprintln!("timing firn migrate (store A to store B)");
    let migrate = run(
        firn(&["migrate", "--set", "s", "--yes", "--json"]),
        base,
        "firn migrate",
    );
    migrate.require_success();
    let document = last_json(&migrate);
    let report = &document["report"];
    let copied_local = report["from_local"]["files"].as_u64();
    let copied_bytes = report["from_local"]["bytes"].as_u64();
    let retrieved = report["retrieved"]["files"].as_u64();
    let jobs_requested = report["jobs_requested"].as_u64();
    let failed = report["failed"].as_array().map_or(0, Vec::len);
    eprintln!(
        "  {} in {} ({} peak RSS): {} from local files, {} retrieved, {} jobs requested, {failed} failed",
        fmt_bytes(copied_bytes),
        fmt_secs(migrate.wall),
        fmt_kib(migrate.maxrss_kib),
        opt(copied_local),
        opt(retrieved),
        opt(jobs_requested)
    );
    if copied_local != Some(files as u64)
        || retrieved != Some(0)
        || jobs_requested != Some(0)
        || failed != 0
    {
        fail(&format!(
            "the migration should copy all {files} files from the local files and request no retrieval; its report:\n{report:#}"
        ));
    }

    // 4. The reference: the same store directory copied by cp -a.
    eprintln!("timing cp -a of store A");
    let mut cp = Command::new("cp");
    cp.arg("-a").arg(&store_a).arg(&store_copy);
    let cp = run(cp, base, "cp -a");
    cp.require_success();
    eprintln!(
        "  {} ({} peak RSS)",
        fmt_secs(cp.wall),
        fmt_kib(cp.maxrss_kib)
    );

    // 5. Every file is in B, nothing is waiting on A, and A was asked for nothing.
    let status = run(
        firn(&["status", "--set", "s", "--json"]),
        base,
        "firn status --json",
    );
    status.require_success();
    let summary = &last_json(&status)["summary"];
    let up_to_date = summary["up_to_date"]["files"].as_u64();
    let elsewhere = summary["archived_elsewhere"]["files"].as_u64();
    let here = summary["archived_here"]["files"].as_u64();
    if up_to_date != Some(files as u64) || elsewhere != Some(0) {
        fail(&format!(
            "after the migration status should say all {files} files are up to date and none archived elsewhere only; its summary:\n{summary:#}"
        ));
    }
    let jobs = store_a.join("jobs");
    let job_files = if jobs.exists() { count_files(&jobs) } else { 0 };
    if job_files != 0 {
        fail(&format!(
            "store A holds {job_files} job files in {}: the migration requested retrievals",
            jobs.display()
        ));
    }
    let archives_b = count_files(&store_b.join("archives"));
    if archives_b < files as u64 {
        fail(&format!(
            "store B holds {archives_b} archives, fewer than the {files} files migrated"
        ));
    }

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "firn migrate benchmark ({cores} {})",
        if cores == 1 { "core" } else { "cores" }
    );
    row(&mut out, "measure", "firn", "reference", "ratio");
    row(
        &mut out,
        &format!("migrate local → local, {files} files"),
        &fmt_secs(migrate.wall),
        &format!("cp -a {}", fmt_secs(cp.wall)),
        &format!("{:.2}x", secs(migrate.wall) / secs(cp.wall)),
    );
    row(
        &mut out,
        "migrate peak RSS",
        &fmt_kib(migrate.maxrss_kib),
        &format!("cp -a {}", fmt_kib(cp.maxrss_kib)),
        &format!(
            "{:.1}x",
            migrate.maxrss_kib as f64 / cp.maxrss_kib.max(1) as f64
        ),
    );
    row(
        &mut out,
        "first backup into A (setup)",
        &fmt_secs(backup.wall),
        &format!("migrate {}", fmt_secs(migrate.wall)),
        &format!("{:.2}x", secs(backup.wall) / secs(migrate.wall)),
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "migrated: {} files, {} from unchanged local files, 0 retrieved, 0 jobs requested; dry-run plan in {}",
        opt(copied_local),
        fmt_bytes(copied_bytes),
        fmt_secs(dry.wall),
    );
    let _ = writeln!(
        out,
        "status after: {} up to date, {} archived here, 0 elsewhere only; store A: {archives_a} archive files, no jobs; store B: {archives_b} archive files",
        opt(up_to_date),
        opt(here),
    );
    let _ = writeln!(out, "stores and tree in {}", base.display());
    let _ = out.flush();
    drop(out);

    scratch
        .close()
        .unwrap_or_else(|e| fail(&format!("cannot remove the scratch directory: {e}")));
}

/// The config of set `s`: `root` backed up into `store`, migrating from `previous`.
fn write_config(config: &Path, root: &Path, store: &Path, previous: Option<&Path>) {
    let mut text = format!(
        "[sets.s]\nroot = {}\nretention = \"keep\"\nstore = {{ kind = \"local\", path = {} }}\n",
        toml_string(root),
        toml_string(store)
    );
    if let Some(previous) = previous {
        text.push_str(&format!(
            "previous_store = {{ kind = \"local\", path = {} }}\n",
            toml_string(previous)
        ));
    }
    fs::write(config, text)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", config.display())));
}

/// A path as a TOML basic string.
fn toml_string(path: &Path) -> String {
    let text = path
        .to_str()
        .unwrap_or_else(|| fail(&format!("{} is not UTF-8", path.display())));
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Regular files under `dir`, at any depth.
fn count_files(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count() as u64
}

// ---------------------------------------------------------------------------
// Running children

use shared::Run;

/// Runs `cmd` to its end, its output captured in files under `scratch`.
fn run(cmd: Command, scratch: &Path, what: &'static str) -> Run {
    shared::run_child(cmd, scratch, what, true).unwrap_or_else(|e| fail(&e))
}

/// The JSON document a `--json` run printed (the last non-empty line holds it).
fn last_json(run: &Run) -> serde_json::Value {
    let line = run
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| {
        fail(&format!(
            "{} printed no JSON document ({e}); stdout (tail):\n{}",
            run.what,
            tail(&run.stdout, 2000)
        ))
    })
}

// ---------------------------------------------------------------------------
// Formatting

fn row(out: &mut impl Write, measure: &str, firn: &str, reference: &str, ratio: &str) {
    let line = format!("{measure:<40} {firn:<11} {reference:<17} {ratio}");
    let _ = writeln!(out, "{}", line.trim_end());
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}

fn fmt_kib(kib: u64) -> String {
    fmt_mb(kib * 1024)
}

fn fmt_bytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "? bytes".to_string(), fmt_mb)
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_string(), |n| n.to_string())
}

/// Gives up with a message. A panic (not `exit`) so the scratch directory is
/// still removed as the stack unwinds.
fn fail(message: &str) -> ! {
    panic!("migrate bench: {message}");
}
