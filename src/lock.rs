//! One firn process per backup set: an advisory lock on a file in the set's state
//! directory, holding a line that names the holder for the refusal message.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result};

/// Another process holds the set; exits with status 3.
#[derive(Debug, thiserror::Error)]
#[error("backup set {set:?} is busy: {holder}; wait for it to finish (or stop it) and run again")]
pub struct Busy {
    pub set: String,
    pub holder: String,
}

/// Held for as long as it lives; the OS releases it if the process dies.
pub struct SetLock {
    _file: File,
}

impl SetLock {
    pub fn acquire(state_dir: &Path, set_id: &str, command: &str) -> Result<SetLock> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create {}", state_dir.display()))?;
        let path = state_dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "another firn process holds it".to_string()
                } else {
                    holder.to_string()
                };
                return Err(Busy {
                    set: set_id.to_string(),
                    holder,
                }
                .into());
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        let started = crate::model::now_secs();
        let line = format!(
            "firn {command} (pid {}) on {} since {}",
            std::process::id(),
            hostname(),
            crate::fmt::format_time(started)
        );
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(line.as_bytes())?;
        file.flush()?;
        Ok(SetLock { _file: file })
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
