//! Remote backup benchmark: many small files to a remote store over a simulated
//! internet.
//!
//! `cargo bench --bench remote` builds a tree of 20,000 files (default;
//! `FIRN_BENCH_FILES`) of 0-4 KiB each (pseudo-random sizes and bytes, the same
//! every run) in 200 directories, and backs it up with the real `firn` binary
//! through a latency proxy (`tests/common/latency.rs`): an HTTP/1.1 proxy in front of the AWS stand-in that
//! holds every request for 80 ms (default; `FIRN_BENCH_LATENCY_MS`) before it
//! forwards it, a one-way delay added to every request/response exchange, and
//! counts the requests in flight. Connections are kept alive and served at once,
//! as many as firn opens; opening one costs no added delay (on the internet a TLS
//! handshake would cost round trips more).
//!
//! Per backend, (a) a Glacier vault with a DynamoDB catalog and (b) S3 (storage
//! class DEEP_ARCHIVE) with the SQLite catalog, two runs, each on a stand-in,
//! vault or bucket, table and data directory of its own:
//!
//! 1. "fixed concurrency 4": `firn backup --set s --json --concurrency 4`, with
//!    `requests_in_flight = 4` in the set (firn before its group commit: four
//!    files in flight whatever their size);
//! 2. "default": `firn backup --set s --json` with nothing overridden.
//!
//! Each run's wall time, files per second, the requests in flight at the proxy
//! (the most at once, and the mean over the run's wall time) and the requests it
//! took, with the two runs of a backend side by side; the PUT and POST requests
//! per 1,000 files (with packs, a few per pack rather than one per file), and
//! for S3's default run, those and the files/s next to issue 21's targets
//! (at most 10 per 1,000 files, at least 2,000 files/s). A run that does not upload
//! every file fails the benchmark; timings are only reported, never asserted.
//!
//! With `FIRN_BENCH_BASELINE=/path/to/an/older/firn`, each backend also gets a
//! run of that binary with its own defaults (e.g. a release build of the commit
//! before the group commit), so old and new are measured in the same run.
//!
//! Needs the AWS stand-in: `FAKECLOUD_BIN`, which `bash tests/run.sh` builds and
//! prints the export of.
//! Quick mode: `FIRN_BENCH_FILES=500 FIRN_BENCH_LATENCY_MS=80 cargo bench --bench remote`.

#[path = "../common/aws.rs"]
mod aws;
#[path = "../common/latency.rs"]
mod latency;
#[path = "shared.rs"]
mod shared;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws::{FakeCloud, aws_env};
use latency::{LatencyProxy, ProxyReport};
use shared::{XorShift, fmt_mb, fmt_secs, tail};

const FIRN: &str = env!("CARGO_BIN_EXE_firn");
/// Where cargo lets benches put scratch data when there is no /dev/shm.
const TARGET_TMPDIR: &str = env!("CARGO_TARGET_TMPDIR");

const DIRS: usize = 200;
const MAX_FILE: u64 = 4096;
const FIXED: usize = 4;
const S3_CLASS: &str = "DEEP_ARCHIVE";
/// The setting the fixed runs put in the set.
const IN_FLIGHT_KEY: &str = "requests_in_flight";
/// How often a long run reports what the proxy sees.
const PROGRESS_EVERY: Duration = Duration::from_secs(15);
const PREFIX: &str = "remote benchmark: ";
/// Issue 21's targets for S3 with packs (reported, not asserted).
const PUT_TARGET_PER_1000: f64 = 10.0;
const RATE_TARGET: f64 = 2000.0;

fn main() {
    quiet_failures();
    let files = env_u64_or_fail("FIRN_BENCH_FILES", 20_000).max(1) as usize;
    let latency = Duration::from_millis(env_u64_or_fail("FIRN_BENCH_LATENCY_MS", 80));
    check_standin();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let parent = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        PathBuf::from(TARGET_TMPDIR)
    };
    let scratch = tempfile::Builder::new()
        .prefix("firn-bench-remote-")
        .tempdir_in(&parent)
        .unwrap_or_else(|e| {
            fail(&format!(
                "cannot create a directory in {}: {e}",
                parent.display()
            ))
        });
    let base = scratch.path();
    let tree = base.join("tree");
    let dirs = DIRS.min(files);
    eprintln!(
        "building a tree of {files} files (0-{MAX_FILE} bytes) in {dirs} directories under {}",
        base.display()
    );
    let tree_bytes = build_tree(&tree, files, dirs);

    // An earlier build of firn to compare with in the same run, e.g. one built
    // from the commit before the group commit.
    let baseline = std::env::var_os("FIRN_BENCH_BASELINE").map(PathBuf::from);
    let mut modes = vec![Mode::Fixed, Mode::Default];
    if baseline.is_some() {
        modes.insert(0, Mode::Baseline);
    }
    let mut results = Vec::new();
    for backend in [Backend::Glacier, Backend::S3] {
        for &mode in &modes {
            let n = results.len();
            results.push(run_backup(
                backend,
                mode,
                &RunPlace {
                    dir: base.join(format!("run-{n}")),
                    tree: tree.clone(),
                    name: format!("firn-bench-{n}"),
                },
                files,
                latency,
                baseline.as_deref(),
            ));
        }
    }

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "firn remote benchmark: {files} files ({}, 0-{} KiB each) in {dirs} directories, {} ms added to every request ({cores} {})",
        fmt_mb(tree_bytes),
        MAX_FILE / 1024,
        latency.as_millis(),
        if cores == 1 { "core" } else { "cores" },
    );
    let _ = writeln!(
        out,
        "{:<26} {:<21} {:>6} {:>9} {:>8} {:>9} {:>6} {:>9} {:>8} {:>9}",
        "backend",
        "run",
        "files",
        "wall",
        "files/s",
        "in flight",
        "mean",
        "requests",
        "req/file",
        "PUT/1000"
    );
    for group in results.chunks(modes.len()) {
        for (i, r) in group.iter().enumerate() {
            let _ = writeln!(
                out,
                "{:<26} {:<21} {:>6} {:>9} {:>8.1} {:>9} {:>6.2} {:>9} {:>8.2} {:>9.2}",
                if i == 0 {
                    r.backend.label()
                } else {
                    String::new()
                },
                r.mode.label(),
                r.files,
                fmt_secs(r.wall),
                r.files_per_sec(),
                r.proxy.max,
                r.proxy.mean,
                r.proxy.requests,
                r.proxy.requests as f64 / r.files.max(1) as f64,
                r.puts_per_1000(),
            );
        }
        let rate = |mode: Mode| {
            group
                .iter()
                .find(|r| r.mode == mode)
                .map(RunResult::files_per_sec)
        };
        for (other, label) in [
            (Mode::Fixed, "default / fixed"),
            (Mode::Baseline, "default / baseline"),
        ] {
            if let (Some(default), Some(other)) = (rate(Mode::Default), rate(other)) {
                let _ = writeln!(
                    out,
                    "{:<26} {:<21} {:>6} {:>9} {:>7.2}x",
                    "",
                    label,
                    "",
                    "",
                    default / other.max(f64::MIN_POSITIVE),
                );
            }
        }
    }
    let _ = writeln!(out);
    for r in results
        .iter()
        .filter(|r| r.backend == Backend::S3 && r.mode == Mode::Default)
    {
        let (puts, rate) = (r.puts_per_1000(), r.files_per_sec());
        let _ = writeln!(
            out,
            "{}, default: {} PUT and {} POST requests for {} files: {puts:.2} per 1,000 files (target <= {PUT_TARGET_PER_1000}: {}); {rate:.0} files/s (target >= {RATE_TARGET}: {})",
            r.backend.label(),
            r.proxy.with_method("PUT"),
            r.proxy.with_method("POST"),
            r.files,
            if puts <= PUT_TARGET_PER_1000 {
                "met"
            } else {
                "NOT met"
            },
            if rate >= RATE_TARGET {
                "met"
            } else {
                "NOT met"
            },
        );
    }
    let _ = writeln!(
        out,
        "PUT/1000: PUT and POST requests (what S3 bills at the PUT rate; for Glacier + DynamoDB, the table's writes too) per 1,000 files"
    );
    let _ = writeln!(
        out,
        "in flight: requests at the proxy at once, the most and the mean over the run's wall time"
    );
    let _ = writeln!(
        out,
        "fixed runs: --concurrency {FIXED} and {IN_FLIGHT_KEY} = {FIXED} in the set"
    );
    let errors: u64 = results.iter().map(|r| r.proxy.errors).sum();
    if errors > 0 {
        let _ = writeln!(
            out,
            "proxy: {errors} exchanges failed (connections broken mid-request); firn retried them"
        );
    }
    let _ = out.flush();
}

// ---------------------------------------------------------------------------
// The runs

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Glacier,
    S3,
}

impl Backend {
    fn label(self) -> String {
        match self {
            Backend::Glacier => "glacier vault + dynamodb".into(),
            Backend::S3 => format!("s3 {S3_CLASS} + sqlite"),
        }
    }

    /// The store and catalog lines of set `s`, on vault, bucket or table `name`.
    fn config(self, name: &str) -> String {
        match self {
            Backend::Glacier => format!(
                "store = {{ kind = \"glacier\", vault = \"{name}\" }}\ncatalog = {{ kind = \"dynamodb\", table = \"{name}\" }}\n"
            ),
            Backend::S3 => format!(
                "store = {{ kind = \"s3\", bucket = \"{name}\", force_path_style = true, storage_class = \"{S3_CLASS}\" }}\n"
            ),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Fixed,
    Default,
    /// An earlier firn (`FIRN_BENCH_BASELINE`), with its own defaults.
    Baseline,
}

impl Mode {
    fn label(self) -> String {
        match self {
            Mode::Fixed => format!("fixed concurrency {FIXED}"),
            Mode::Default => "default".into(),
            Mode::Baseline => "baseline binary".into(),
        }
    }
}

struct RunPlace {
    dir: PathBuf,
    tree: PathBuf,
    /// Vault, bucket and table name.
    name: String,
}

struct RunResult {
    backend: Backend,
    mode: Mode,
    files: u64,
    wall: Duration,
    proxy: ProxyReport,
}

impl RunResult {
    fn files_per_sec(&self) -> f64 {
        self.files as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// PUT and POST requests (S3 bills both at the PUT rate) per 1,000 files.
    fn puts_per_1000(&self) -> f64 {
        let writes = self.proxy.with_method("PUT") + self.proxy.with_method("POST");
        writes as f64 * 1000.0 / self.files.max(1) as f64
    }
}

fn run_backup(
    backend: Backend,
    mode: Mode,
    place: &RunPlace,
    files: usize,
    latency: Duration,
    baseline: Option<&Path>,
) -> RunResult {
    let (data, config_home) = (place.dir.join("data"), place.dir.join("config"));
    for dir in [&data, &config_home.join("firn")] {
        fs::create_dir_all(dir)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", dir.display())));
    }
    let with_key = mode == Mode::Fixed;
    let write_config = || {
        let path = config_home.join("firn/config.toml");
        let mut text = format!(
            "[sets.s]\nroot = {:?}\nretention = \"keep\"\n{}",
            place.tree,
            backend.config(&place.name)
        );
        if with_key {
            text.push_str(&format!("{IN_FLIGHT_KEY} = {FIXED}\n"));
        }
        fs::write(&path, text)
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
    };
    write_config();

    eprintln!("{}, {}:", backend.label(), mode.label());
    let cloud = FakeCloud::start();
    let proxy = LatencyProxy::start(&cloud.endpoint, latency);
    let firn = |args: &[&str], endpoint: &str| {
        let binary = match (mode, baseline) {
            (Mode::Baseline, Some(path)) => path,
            _ => Path::new(FIRN),
        };
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .envs(aws_env(endpoint))
            .env("FIRN_DATA_DIR", &data)
            .env("XDG_CONFIG_HOME", &config_home)
            .env_remove("FIRN_CONFIG")
            .env_remove("FIRN_FAULT");
        cmd
    };
    let mut backup_args = vec!["backup", "--set", "s", "--json"];
    let fixed = FIXED.to_string();
    if mode == Mode::Fixed {
        backup_args.extend(["--concurrency", &fixed]);
    }

    // The stand-in itself creates the vault, bucket or table: no delay.
    let mut step = 0;
    let (finished, report) = loop {
        let (what, args, endpoint, watched) = if step == 0 {
            (
                "firn init",
                &["init", "--set", "s", "--yes"][..],
                &cloud.endpoint,
                None,
            )
        } else {
            eprintln!("  backing up {files} files through the proxy");
            proxy.reset();
            (
                "firn backup",
                &backup_args[..],
                &proxy.endpoint,
                Some(&proxy),
            )
        };
        let finished = run_firn(firn(args, endpoint), &place.dir, watched);
        finished.require_success(what);
        if step == 0 {
            step = 1;
            continue;
        }
        break (finished, proxy.report());
    };

    let line = finished
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let doc: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
        fail(&format!(
            "firn backup printed no JSON summary ({e}): {}",
            tail(&finished.stdout, 500)
        ))
    });
    let uploaded = doc["uploaded_files"].as_u64().unwrap_or(0);
    if uploaded != files as u64 {
        fail(&format!(
            "{}, {}: uploaded_files is {uploaded}, not {files}; failed: {}",
            backend.label(),
            mode.label(),
            tail(&doc["failed"].to_string(), 500)
        ));
    }
    eprintln!(
        "  {uploaded} files in {}: {:.1} files/s, {} requests, at most {} in flight ({:.2} on average)",
        fmt_secs(finished.wall),
        uploaded as f64 / finished.wall.as_secs_f64().max(1e-9),
        report.requests,
        report.max,
        report.mean
    );
    drop(proxy);
    drop(cloud);
    // The run's own tree of archives and catalog is not needed again.
    let _ = fs::remove_dir_all(&place.dir);
    RunResult {
        backend,
        mode,
        files: uploaded,
        wall: finished.wall,
        proxy: report,
    }
}

struct Finished {
    status: ExitStatus,
    wall: Duration,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn require_success(&self, what: &str) {
        if !self.status.success() {
            fail(&format!(
                "{what} failed ({}): {}{}",
                self.status,
                tail(&self.stdout, 500),
                tail(self.stderr.trim(), 1000)
            ));
        }
    }
}

/// Runs `cmd` to the end (its output in files under `dir`), and while it runs,
/// says every so often what `proxy` sees.
fn run_firn(mut cmd: Command, dir: &Path, proxy: Option<&LatencyProxy>) -> Finished {
    let (out_path, err_path) = (dir.join("firn.stdout"), dir.join("firn.stderr"));
    let create = |path: &Path| {
        fs::File::create(path)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", path.display())))
    };
    cmd.stdin(Stdio::null())
        .stdout(create(&out_path))
        .stderr(create(&err_path));
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start {FIRN}: {e}")));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send((status, Instant::now()));
    });
    let (status, ended) = loop {
        match rx.recv_timeout(PROGRESS_EVERY) {
            Ok((Ok(status), ended)) => break (status, ended),
            Ok((Err(e), _)) => fail(&format!("cannot wait for firn: {e}")),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(proxy) = proxy {
                    let seen = proxy.report();
                    eprintln!(
                        "  {:>5.0} s: {} requests, {} in flight",
                        started.elapsed().as_secs_f64(),
                        seen.requests,
                        seen.in_flight
                    );
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => fail("lost track of firn"),
        }
    };
    let read = |path: &Path| fs::read_to_string(path).unwrap_or_default();
    Finished {
        status,
        wall: ended - started,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

/// `files` files of 0-4 KiB, file `j` in directory `j % dirs`; directories two
/// levels deep (`dNN/sNN`, twenty in each). Returns the bytes written.
fn build_tree(tree: &Path, files: usize, dirs: usize) -> u64 {
    let paths: Vec<PathBuf> = (0..dirs)
        .map(|i| tree.join(format!("d{:02}/s{:02}", i / 20, i % 20)))
        .collect();
    for dir in &paths {
        fs::create_dir_all(dir)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", dir.display())));
    }
    let mut rng = XorShift::new(0x5eed_4e30_7e00);
    let mut content = vec![0u8; MAX_FILE as usize];
    let mut total = 0;
    for j in 0..files {
        let len = (rng.next() % (MAX_FILE + 1)) as usize;
        rng.fill(&mut content[..len]);
        let path = paths[j % dirs].join(format!("f{j:06}.bin"));
        fs::write(&path, &content[..len])
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
        total += len as u64;
    }
    total
}

// ---------------------------------------------------------------------------
// Helpers

/// The stand-in must be there before anything is built.
fn check_standin() {
    const HOW: &str = "run `bash tests/run.sh` once, which builds the AWS stand-in and prints the `export FAKECLOUD_BIN=...` line";
    match std::env::var_os("FAKECLOUD_BIN") {
        None => fail(&format!("FAKECLOUD_BIN is not set: {HOW}")),
        Some(path) if !Path::new(&path).is_file() => fail(&format!(
            "FAKECLOUD_BIN ({}) is not a file: {HOW}",
            Path::new(&path).display()
        )),
        Some(_) => {}
    }
}

/// Our own failures print as one line; anything else as usual.
fn quiet_failures() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        match info.payload().downcast_ref::<String>() {
            Some(message) if message.starts_with(PREFIX) => eprintln!("{message}"),
            _ => default(info),
        }
    }));
}

/// Gives up with one line. A panic (not `exit`) so the stand-in and proxy are
/// stopped and the scratch directory removed as the stack unwinds.
fn fail(message: &str) -> ! {
    panic!("{PREFIX}{message}");
}

fn env_u64_or_fail(name: &str, default: u64) -> u64 {
    shared::env_number(name, default).unwrap_or_else(|e| fail(&e))
}
