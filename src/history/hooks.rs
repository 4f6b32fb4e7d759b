//! Running a hook: `sh -c COMMAND` with the run's summary (JSON) on its
//! standard input and a few `FIRN_*` variables, in a process group of its own
//! so that a hook still running at its timeout is killed with everything it
//! started. Its standard output is thrown away (firn's own stdout may be a
//! `--json` document); the end of its standard error says why it failed.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Bytes of a hook's standard error kept (its end).
const STDERR_KEPT: usize = 4096;
/// How often a running hook is looked at.
const POLL: Duration = Duration::from_millis(20);

/// What a hook did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookReport {
    /// `on_success` or `on_failure`.
    pub name: String,
    pub command: String,
    /// It ran and exited 0.
    pub ok: bool,
    /// Its exit code, when it exited (not killed, not started).
    pub exit_code: Option<i32>,
    /// Why it failed, in one line (None when it did not).
    pub error: Option<String>,
    pub seconds: f64,
}

impl HookReport {
    /// The line people read when it failed.
    pub fn failure_line(&self) -> Option<String> {
        let error = self.error.as_deref()?;
        Some(format!(
            "warning: the {} hook failed: {error} (the run's own exit code stands)",
            self.name
        ))
    }
}

/// Runs `command` with `input` on its standard input and `env` set, for at
/// most `timeout`.
pub(super) fn run(
    name: &str,
    command: &str,
    input: &[u8],
    env: &[(&str, String)],
    timeout: Duration,
) -> HookReport {
    let started = Instant::now();
    let (exit_code, error) = match execute(command, input, env, timeout) {
        Ok((status, _)) if status.success() => (Some(0), None),
        Ok((status, stderr)) => {
            let why = match status.code() {
                Some(code) => format!("it exited with status {code}"),
                None => {
                    use std::os::unix::process::ExitStatusExt as _;
                    format!(
                        "it was killed by signal {}",
                        status.signal().unwrap_or_default()
                    )
                }
            };
            let said = last_line(&stderr);
            let error = if said.is_empty() {
                why
            } else {
                format!("{why}: {said}")
            };
            (status.code(), Some(error))
        }
        Err(error) => (None, Some(error)),
    };
    HookReport {
        name: name.to_string(),
        command: command.to_string(),
        ok: error.is_none(),
        exit_code,
        error,
        seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    }
}

/// The hook's exit status and the end of its standard error, or why it did
/// not run to its end.
fn execute(
    command: &str,
    input: &[u8],
    env: &[(&str, String)],
    timeout: Duration,
) -> Result<(ExitStatus, Vec<u8>), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    // Fed and read on threads of their own: a hook that reads nothing, or
    // writes much, never blocks firn; neither thread is waited for past the
    // hook's end (something it left running may hold the pipes).
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        std::thread::spawn(move || {
            // A hook that does not read its input closes the pipe: not a failure.
            let _ = stdin.write_all(&input);
        });
    }
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    if let Some(mut pipe) = child.stderr.take() {
        let kept = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > 2 * STDERR_KEPT {
                    let cut = kept.len() - STDERR_KEPT;
                    kept.drain(..cut);
                }
            }
            let _ = done_tx.send(());
        });
    }
    let deadline = started_plus(timeout);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                kill_group(&mut child);
                return Err(format!(
                    "it was still running after {} and was killed (hook_timeout)",
                    crate::fmt::duration(timeout.as_secs())
                ));
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                kill_group(&mut child);
                return Err(format!("cannot wait for it: {e}"));
            }
        }
    };
    // What it wrote last, once its pipe is closed (briefly, if something it
    // started still holds it).
    let _ = done_rx.recv_timeout(Duration::from_millis(200));
    let kept = stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok((status, kept))
}

fn started_plus(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Kills the hook's process group (the shell and whatever it started), then
/// reaps the shell.
fn kill_group(child: &mut std::process::Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill only sends a signal; the group is the one the hook leads.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last non-empty line of `bytes`, trimmed, at most 300 characters.
fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(&'static str, String)> {
        vec![("FIRN_OUTCOME", "failed".to_string())]
    }

    #[test]
    fn a_hook_reads_its_input_and_its_variables() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let command = format!("cat > {0:?}; echo \"$FIRN_OUTCOME\" >> {0:?}", out);
        let report = run(
            "on_failure",
            &command,
            b"{\"a\":1}\n",
            &env(),
            Duration::from_secs(10),
        );
        assert!(report.ok, "{report:?}");
        assert_eq!((report.exit_code, report.failure_line()), (Some(0), None));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"a\":1}\nfailed\n"
        );
    }

    #[test]
    fn a_failing_hook_says_why_in_one_line() {
        let report = run(
            "on_failure",
            "echo starting >&2; echo 'no route to host' >&2; exit 7",
            b"{}",
            &env(),
            Duration::from_secs(10),
        );
        assert!(!report.ok);
        assert_eq!(report.exit_code, Some(7));
        let line = report.failure_line().unwrap();
        assert!(
            line.contains("on_failure hook failed")
                && line.contains("status 7")
                && line.contains("no route to host")
                && !line.contains('\n'),
            "{line}"
        );
        let missing = run(
            "on_success",
            "no-such-command-firn",
            b"{}",
            &env(),
            Duration::from_secs(10),
        );
        assert_eq!(missing.exit_code, Some(127));
        assert!(missing.error.unwrap().contains("not found"));
    }

    #[test]
    fn a_hook_that_does_not_read_its_input_is_not_a_failure() {
        let big = vec![b'x'; 1 << 20];
        let report = run(
            "on_success",
            "exit 0",
            &big,
            &env(),
            Duration::from_secs(10),
        );
        assert!(report.ok, "{report:?}");
    }

    /// Whether process `pid` runs (a zombie waiting to be reaped does not).
    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z')),
            Err(_) => false,
        }
    }

    #[test]
    fn a_hanging_hook_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let command = format!("sleep 30 & echo $! > {pid_file:?}; wait");
        let started = Instant::now();
        let report = run(
            "on_failure",
            &command,
            b"{}",
            &env(),
            Duration::from_millis(500),
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!report.ok);
        assert_eq!(report.exit_code, None);
        assert!(
            report.error.as_deref().unwrap().contains("killed"),
            "{report:?}"
        );
        // The sleep it started is gone too.
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) {
            assert!(Instant::now() < deadline, "the hook's child outlived it");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
