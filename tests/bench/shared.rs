//! What the benchmarks share: deterministic data (the foundation tree of many
//! small files), scratch space with room for it, reaping a child for its wall
//! time and peak RSS, and formatting. Each bench includes it with
//! `#[path = "shared.rs"] mod shared;` and uses what it needs.
#![allow(dead_code)]

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The foundation tree's shape (issue 12's): 200 files a directory...
pub const FILES_PER_DIR: usize = 200;
/// ...each of 0 to this many bytes: a server's many small files.
pub const MAX_SMALL_FILE: usize = 4096;

/// xorshift64*: fast, deterministic sizes and filler bytes.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let word = self.next().to_le_bytes();
            rest.copy_from_slice(&word[..rest.len()]);
        }
    }
}

/// `files` files of 0-4 KiB (about 400 MB at 200,000) spread over `dirs`
/// directories. The first 20 directories sit at the top; each later one is
/// nested under an earlier one (ten children each), so the tree is three levels
/// deep at 1,000 directories. The same seed every time: every bench that builds
/// it builds the same tree.
pub fn build_tree(tree: &Path, files: usize, dirs: usize) -> Result<(), String> {
    build_tree_of(tree, files, dirs, MAX_SMALL_FILE).map(|_| ())
}

/// [`build_tree`] with files of 0 to `max_file` bytes (at most
/// [`MAX_SMALL_FILE`]); returns the bytes written.
pub fn build_tree_of(
    tree: &Path,
    files: usize,
    dirs: usize,
    max_file: usize,
) -> Result<u64, String> {
    let max_file = max_file.min(MAX_SMALL_FILE);
    let mut paths: Vec<PathBuf> = Vec::with_capacity(dirs);
    for i in 0..dirs {
        let parent = if i < 20 {
            tree.to_path_buf()
        } else {
            paths[(i - 20) / 10].clone()
        };
        let dir = parent.join(format!("d{i:04}"));
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        paths.push(dir);
    }
    let mut rng = XorShift::new(0x5eed_f12e);
    let mut content = [0u8; MAX_SMALL_FILE];
    let mut total = 0;
    for j in 0..files {
        let len = (rng.next() % (max_file as u64 + 1)) as usize;
        rng.fill(&mut content[..len]);
        let path = paths[j % dirs].join(format!("f{j:06}.dat"));
        fs::write(&path, &content[..len])
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        total += len as u64;
    }
    Ok(total)
}

/// A temporary directory in the first of `preferred` with `bytes` and `inodes`
/// free, else the system temp dir.
pub fn scratch_dir(
    preferred: &[&str],
    bytes: u64,
    inodes: u64,
    prefix: &str,
) -> Result<tempfile::TempDir, String> {
    for dir in preferred {
        let path = Path::new(dir);
        if !path.is_dir() && fs::create_dir_all(path).is_err() {
            continue;
        }
        match free_space(path) {
            Some((free_bytes, free_inodes)) if free_bytes >= bytes && free_inodes >= inodes => {
                match tempfile::Builder::new().prefix(prefix).tempdir_in(path) {
                    Ok(t) => return Ok(t),
                    Err(e) => eprintln!("cannot use {dir} ({e}); trying elsewhere"),
                }
            }
            Some((free_bytes, free_inodes)) => eprintln!(
                "{dir} has too little room ({} MiB and {free_inodes} inodes free, {} MiB and {inodes} wanted); trying elsewhere",
                free_bytes >> 20,
                bytes >> 20
            ),
            None => {}
        }
    }
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))
}

/// Free bytes and inodes available to us on the file system holding `path`.
pub fn free_space(path: &Path) -> Option<(u64, u64)> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and st is valid for writes.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let free_inodes = if st.f_files == 0 {
        u64::MAX
    } else {
        st.f_favail as u64
    };
    Some((st.f_bavail as u64 * st.f_frsize as u64, free_inodes))
}

/// What reaping a child measured.
pub struct Reaped {
    pub wall: Duration,
    /// Peak resident set of the child, KiB (Linux `ru_maxrss`).
    pub maxrss_kib: u64,
    pub status: ExitStatus,
}

/// Waits for `child` with `wait4`, for its wall time since `started` and its
/// peak RSS (which `Child::wait` does not report).
pub fn reap(child: Child, started: Instant) -> std::io::Result<Reaped> {
    let pid = child.id() as libc::pid_t;
    let mut raw_status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; both pointers are valid for writes.
        let rc = unsafe { libc::wait4(pid, &mut raw_status, 0, &mut rusage) };
        if rc == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let wall = started.elapsed();
    // Reaped by wait4; dropping `Child` neither waits nor kills.
    drop(child);
    use std::os::unix::process::ExitStatusExt;
    Ok(Reaped {
        wall,
        maxrss_kib: u64::try_from(rusage.ru_maxrss).unwrap_or(0),
        status: ExitStatus::from_raw(raw_status),
    })
}

/// A number from the environment, or `default` when unset.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a whole number, not {v:?}")),
        Err(_) => Ok(default),
    }
}

/// The last `max` bytes of `text` (on a character boundary).
pub fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

pub fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 0.1 {
        format!("{s:.3} s")
    } else {
        format!("{s:.2} s")
    }
}

pub fn fmt_mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// A child run to its end: wall time, peak RSS and what it printed.
pub struct Run {
    pub what: &'static str,
    pub wall: Duration,
    /// Peak resident set of the child, KiB (Linux `ru_maxrss`).
    pub maxrss_kib: u64,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the child's output when it failed (a panic, not `exit`, so
    /// the bench's scratch directory is still removed as the stack unwinds).
    pub fn require_success(&self) {
        if !self.status.success() {
            panic!(
                "{} failed ({}); stderr:\n{}\nstdout (tail):\n{}",
                self.what,
                self.status,
                tail(&self.stderr, 4000).trim_end(),
                tail(&self.stdout, 2000)
            );
        }
    }
}

/// Spawns `cmd` and reaps it with `wait4`, for its wall time and peak RSS.
/// Output goes to files under `scratch` rather than pipes, so nothing can block
/// the child; stdout is kept only when `keep_stdout`.
pub fn run_child(
    mut cmd: Command,
    scratch: &Path,
    what: &'static str,
    keep_stdout: bool,
) -> Result<Run, String> {
    let out_path = scratch.join("child.stdout");
    let err_path = scratch.join("child.stderr");
    let create = |path: &Path| {
        fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
    };
    let stdout = if keep_stdout {
        Stdio::from(create(&out_path)?)
    } else {
        Stdio::null()
    };
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(create(&err_path)?);
    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let reaped = reap(child, started).map_err(|e| format!("wait4 on {what}: {e}"))?;
    let read = |path: &Path| {
        fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let run = Run {
        what,
        wall: reaped.wall,
        maxrss_kib: reaped.maxrss_kib,
        status: reaped.status,
        stdout: if keep_stdout {
            read(&out_path)
        } else {
            String::new()
        },
        stderr: read(&err_path),
    };
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&err_path);
    Ok(run)
}
