//! Fault scenarios written once and shared by the store tests: a run killed once
//! the fault proxy saw enough of some request, and a run measured for its peak
//! memory.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::aws::{Action, FaultProxy, RequestInfo};
use super::aws_sandbox::AwsSandbox;

/// Waits until `proxy` has seen `n` requests that `which` picks, then SIGKILLs
/// `child` and returns how it ended.
pub fn kill_once_seen(
    mut child: Child,
    proxy: &FaultProxy,
    n: usize,
    which: fn(&RequestInfo) -> bool,
    what: &str,
) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.count(which) < n {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} never started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap")
}

/// Starts `firn backup --set s` through a proxy in front of the sandbox's server
/// that holds each part upload (`is_part`: Glacier's or S3's) back a little, and
/// SIGKILLs it once `parts` of them have reached the proxy.
pub fn kill_backup_after_parts(a: &AwsSandbox, parts: usize, is_part: fn(&RequestInfo) -> bool) {
    let proxy = FaultProxy::start(a.endpoint(), move |r: &RequestInfo| {
        if is_part(r) {
            std::thread::sleep(Duration::from_millis(150));
        }
        Action::Forward
    });
    let child = a
        .command(&proxy.endpoint)
        .args(["backup", "--set", "s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the backup");
    kill_once_seen(child, &proxy, parts, is_part, "the upload");
    // Let a part already forwarded land before anyone looks at the server.
    std::thread::sleep(Duration::from_millis(500));
}

/// Runs `cmd` and returns its exit status and peak RSS in KiB (from wait4's rusage).
// The child is reaped by wait4 itself, which std's Child cannot see.
#[allow(clippy::zombie_processes)]
pub fn run_measuring_rss(mut cmd: Command) -> (ExitStatus, i64) {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the run");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid);
    (ExitStatus::from_raw(status), usage.ru_maxrss)
}
