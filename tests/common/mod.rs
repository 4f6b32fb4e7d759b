//! A sandbox per test: a tree to back up, firn's data dir and config dir, all in
//! one temporary directory, and helpers to run the real binary against them.
#![allow(dead_code)]

pub mod aws;
pub mod aws_sandbox;
pub mod catalog_contract;
pub mod latency;
pub mod pty;
pub mod scenarios;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox::new_in(std::env::temp_dir())
    }

    /// /dev/shm when it exists: the embedded store fsyncs every archive, which is
    /// free on tmpfs and slow on a shared disk.
    pub fn in_memory() -> Sandbox {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            Sandbox::new_in(shm.to_path_buf())
        } else {
            Sandbox::new()
        }
    }

    fn new_in(parent: PathBuf) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("firn-test-")
            .tempdir_in(parent)
            .expect("create sandbox");
        std::fs::create_dir_all(dir.path().join("tree")).expect("create tree");
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn tree(&self) -> PathBuf {
        self.dir.path().join("tree")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.data().join("store")
    }

    pub fn catalog_db(&self) -> PathBuf {
        self.data().join("catalog.sqlite")
    }

    /// The config file firn reads (`$XDG_CONFIG_HOME/firn/config.toml`).
    pub fn config_path(&self) -> PathBuf {
        self.path().join("config/firn/config.toml")
    }

    /// Writes `text` as the whole config file firn reads.
    pub fn write_config_text(&self, text: &str) -> PathBuf {
        let config = self.config_path();
        std::fs::create_dir_all(config.parent().expect("config dir")).expect("create config dir");
        std::fs::write(&config, text).expect("write config");
        config
    }

    /// Writes a config with one set, `s`, rooted at the tree; `set_body` is the
    /// rest of its table (`retention = …`, `store = { … }`, `catalog = { … }`),
    /// one setting a line.
    pub fn write_config(&self, set_body: &str) -> PathBuf {
        self.write_config_text(&format!("[sets.s]\nroot = {:?}\n{set_body}", self.tree()))
    }

    /// Replaces `from` with `to` in the config file (which must contain it).
    pub fn edit_config(&self, from: &str, to: &str) {
        let config = self.config_path();
        let text = std::fs::read_to_string(&config).expect("read config");
        assert!(text.contains(from), "{from:?} not in the config: {text}");
        std::fs::write(&config, text.replace(from, to)).expect("write config");
    }

    /// Retrieval jobs the embedded store holds (none before the first).
    pub fn job_files(&self) -> usize {
        std::fs::read_dir(self.store_dir().join("jobs"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The ad-hoc set rooted at the tree: its id (the canonical root) and the
    /// directory of its local state (lock, state database).
    pub fn adhoc_set(&self) -> (String, PathBuf) {
        use sha1::Digest;
        let root = std::fs::canonicalize(self.tree()).expect("canonical tree");
        let set_id = root.to_string_lossy().into_owned();
        let dir = self
            .data()
            .join("sets")
            .join(&hex::encode(sha1::Sha1::digest(set_id.as_bytes()))[..16]);
        (set_id, dir)
    }

    /// Writes a file under the tree (path given as raw bytes, so any name works).
    pub fn write(&self, relative: impl AsRef<[u8]>, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.tree().join(OsStr::from_bytes(relative.as_ref()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, content).expect("write file");
        path
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firn"));
        cmd.env("FIRN_DATA_DIR", self.data())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env_remove("FIRN_CONFIG")
            .env_remove("FIRN_FAULT")
            .env_remove("FIRN_FAULT_SKIP");
        cmd
    }

    pub fn firn<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command().args(args).output().expect("run firn")
    }

    /// Runs firn and parses the last line of stdout as JSON.
    pub fn firn_json<I, S>(&self, args: I) -> (Option<i32>, serde_json::Value)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.firn(args);
        (out.status.code(), last_json(&out))
    }

    pub fn status_json(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = vec![
            "status".to_string(),
            self.tree().display().to_string(),
            "--json".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let (code, value) = self.firn_json(&args);
        assert_eq!(code, Some(0), "status failed: {value}");
        value
    }

    pub fn backup_json(&self, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
        let mut args = vec![
            "backup".to_string(),
            self.tree().display().to_string(),
            "--json".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.firn_json(&args)
    }

    /// `firn backup --set s --json` (with `extra`), which must succeed: its summary.
    pub fn back_up_set(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["backup", "--set", "s", "--json"];
        args.extend(extra);
        let (code, doc) = self.firn_json(&args);
        assert_eq!(code, Some(0), "{doc}");
        doc
    }

    /// Catalog records of the set (`firn ls --all --json`).
    pub fn records(&self) -> Vec<serde_json::Value> {
        let root = self.tree().display().to_string();
        let (code, value) = self.firn_json(["ls", "--root", root.as_str(), "--all", "--json"]);
        assert_eq!(code, Some(0));
        value.as_array().cloned().unwrap_or_default()
    }

    /// Archives of files in the embedded store (catalog snapshots left out).
    pub fn store_archives(&self) -> Vec<String> {
        self.embedded_archives(false)
    }

    /// Catalog snapshots in the embedded store.
    pub fn store_snapshots(&self) -> Vec<String> {
        self.embedded_archives(true)
    }

    fn embedded_archives(&self, snapshots: bool) -> Vec<String> {
        let mut out = Vec::new();
        let archives = self.store_dir().join("archives");
        for shard in std::fs::read_dir(&archives).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if is_snapshot_archive(&file.path()) == snapshots {
                    out.push(file.file_name().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }
}

/// Whether an embedded store's archive file is a catalog snapshot: its trailer
/// (the file's end) carries the snapshot description.
fn is_snapshot_archive(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(SNAPSHOT_MARK.len())
        .any(|w| w == SNAPSHOT_MARK)
}

/// How a catalog snapshot's description starts.
pub const SNAPSHOT_MARK: &[u8] = b"firn-catalog1 ";

/// status of one path in a `firn status --json` document.
pub fn status_of<'a>(doc: &'a serde_json::Value, path: &str) -> &'a str {
    doc["files"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["path"] == path))
        .and_then(|f| f["status"].as_str())
        .unwrap_or_else(|| panic!("{path} not in status output: {doc}"))
}

/// The last line of a run's stdout, parsed as JSON.
pub fn last_json(out: &Output) -> serde_json::Value {
    let text = stdout(out);
    let last = text
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output; stderr: {}", stderr(out)));
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {last}\nstderr: {}", stderr(out)))
}

/// The run exited with `code` (what it printed shown when not).
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}{}",
        stdout(out),
        stderr(out)
    );
}

/// A refusal: exit 2 with one line on stderr, not a panic. Returns the line.
pub fn one_line_error(out: &Output) -> String {
    one_line_failure(out, 2)
}

/// A command that ended with `code` and one line on stderr, not a panic.
/// Returns the line.
pub fn one_line_failure(out: &Output, code: i32) -> String {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit {code} expected: {}{err}",
        stdout(out)
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// `len` pseudo-random bytes (xorshift), a different run for each `seed`: no
/// two ranges alike, so a part or range out of place is noticed.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut x = 2 * seed as u32 + 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The one catalog record builder: fixed content, current, uploaded at
/// `uploaded_at`. A test sets what it varies with struct update syntax:
/// `ArchiveRecord { size: 0, ..sample_record("k", "a", 1) }`.
pub fn sample_record(
    key: &str,
    archive_id: &str,
    uploaded_at: i64,
) -> firn::catalog::ArchiveRecord {
    firn::catalog::ArchiveRecord {
        key: key.into(),
        raw: None,
        size: 1,
        mtime_ns: 0,
        sha1: [1; 20],
        tree_hash: [2; 32],
        archive_id: archive_id.into(),
        target: "test:/x".into(),
        uploaded_at,
        state: firn::catalog::ArchiveState::Current,
        host: "h".into(),
        superseded_at: None,
        pack: None,
    }
}

impl Sandbox {
    /// A command that runs firn without root's power to ignore file permissions:
    /// as root, a copy of the binary run as `nobody` (65534) through `setpriv` on
    /// a sandbox it is then given (call this after the files it needs exist);
    /// otherwise the usual command.
    pub fn unprivileged_command(&self) -> Command {
        if !is_root() {
            return self.command();
        }
        use std::os::unix::fs::PermissionsExt;
        let bin = self.path().join("firn");
        std::fs::copy(env!("CARGO_BIN_EXE_firn"), &bin).expect("copy firn");
        std::fs::set_permissions(self.path(), std::fs::Permissions::from_mode(0o755))
            .expect("open the sandbox to nobody");
        let chown = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(self.path())
            .status()
            .expect("run chown");
        assert!(chown.success(), "chown the sandbox");
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .env("FIRN_DATA_DIR", self.data())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("HOME", self.path())
            .env_remove("FIRN_CONFIG")
            .env_remove("FIRN_FAULT")
            .env_remove("FIRN_FAULT_SKIP");
        cmd
    }
}
