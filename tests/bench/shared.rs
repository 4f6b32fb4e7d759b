//! What the benchmarks share: deterministic data, reaping a child for its wall
//! time and peak RSS, and formatting. Each bench includes it with
//! `#[path = "shared.rs"] mod shared;` and uses what it needs.
#![allow(dead_code)]

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

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
