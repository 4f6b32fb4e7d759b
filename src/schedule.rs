//! Running a set's backup every night, unattended: the systemd timer and
//! service `firn schedule` writes, enables and removes, or the crontab line it
//! prints where systemd does not run. The unit text and the cron line are made
//! here, and the files written and `systemctl` run here; `cli/schedule.rs`
//! shows the plan, asks, and prints what was done. Nothing here prints.
//!
//! A scheduled run never overlaps the one before: the set's lock refuses a
//! second process with exit code 3 ("busy"), which both forms count as success
//! (`SuccessExitStatus=3` in the service; the cron line turns a status of 3
//! into 0 and keeps any other), so a long first backup still running at the
//! next night's start is not a failure. systemd also never starts a oneshot
//! service that is still active.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use anyhow::Result;
use sha1::Digest;

use crate::model::usage;

/// The first line of every unit file firn writes: removal and rewriting touch
/// only files that carry it.
pub const MARKER: &str =
    "# Written by `firn schedule`; `firn schedule --remove` (same set) removes it.";

/// Whose systemd manager runs the timer: the person's (`systemctl --user`) or
/// the machine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    User,
    System,
}

impl Scope {
    /// A `systemctl` command line, with `--user` for the person's manager.
    fn systemctl(self, args: &[&str]) -> Vec<String> {
        let user: &[&str] = match self {
            Scope::User => &["--user"],
            Scope::System => &[],
        };
        ["systemctl"]
            .iter()
            .chain(user)
            .chain(args)
            .map(|s| s.to_string())
            .collect()
    }
}

/// A time of day, `HH:MM` (24-hour clock, local time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
}

impl FromStr for TimeOfDay {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a time of day; write HH:MM, e.g. 02:30");
        let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(h) || m.len() != 2 || !digits(m) {
            return Err(bad());
        }
        let hour: u8 = h.parse().map_err(|_| bad())?;
        let minute: u8 = m.parse().map_err(|_| bad())?;
        if hour > 23 || minute > 59 {
            return Err(bad());
        }
        Ok(TimeOfDay { hour, minute })
    }
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// The longest random delay accepted: a night.
pub const MAX_DELAY_SECS: u64 = 12 * 3600;

/// A delay as a flag gives it, in seconds: `30m`, `30min`, `1h`, `90s`, or a
/// bare number of minutes; `0` for none.
pub fn parse_delay(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad =
        || format!("{text:?} is not a delay; write e.g. 30m, 1h, 90s (a bare number is minutes)");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "m" | "min" => 60,
        "s" | "sec" => 1,
        "h" => 3600,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(scale).ok_or_else(bad)?;
    if secs > MAX_DELAY_SECS {
        return Err(format!(
            "{text:?} is longer than 12 hours; a night's delay is at most 12h"
        ));
    }
    Ok(secs)
}

/// A delay in systemd's notation and in words: `30min`, `90s`, `2h`.
pub fn delay_text(secs: u64) -> String {
    if secs.is_multiple_of(3600) && secs > 0 {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}min", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// One set's nightly backup: what runs, when, and in whose manager.
#[derive(Debug, Clone)]
pub struct Job {
    /// The set's name in the config, or its root for an ad-hoc set.
    pub set_id: String,
    /// Whether the set is named in the config (`backup --set NAME`), else ad
    /// hoc (`backup ROOT`).
    pub configured: bool,
    pub root: PathBuf,
    /// The firn binary, by absolute path (cron and systemd have their own PATH).
    pub firn: PathBuf,
    /// The config file this set was read from, passed as `--config` so the
    /// timer reads the same one whoever and wherever it runs.
    pub config: Option<PathBuf>,
    /// `FIRN_DATA_DIR` when the person set it, so the timer finds the same
    /// local state.
    pub data_dir: Option<PathBuf>,
    pub at: TimeOfDay,
    /// Up to this many seconds later than `at`, chosen at random each night.
    pub random_delay: u64,
    pub scope: Scope,
}

/// One unit file: its name (`firn-backup-photos.timer`) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    pub name: String,
    pub text: String,
}

impl Job {
    /// The units' name without suffix: `firn-backup-` and the set's name when
    /// it is made of letters, digits, `-` and `_` only; else a slug of it and
    /// 8 hex digits of its SHA-1, so distinct sets never share a name.
    pub fn unit_name(&self) -> String {
        unit_name(&self.set_id)
    }

    /// The command the timer runs: firn by absolute path, `backup` and the set.
    pub fn argv(&self) -> Result<Vec<String>> {
        let mut argv = vec![utf8(&self.firn, "the firn binary's path")?, "backup".into()];
        if self.configured {
            if self.set_id.starts_with('-') {
                argv.push(format!("--set={}", self.set_id));
            } else {
                argv.push("--set".into());
                argv.push(self.set_id.clone());
            }
        } else {
            argv.push(utf8(&self.root, "the set's root")?);
        }
        if let Some(config) = &self.config {
            argv.push("--config".into());
            argv.push(utf8(config, "the config file's path")?);
        }
        Ok(argv)
    }

    fn what(&self) -> String {
        if self.configured {
            format!("set {}", printable(&self.set_id))
        } else {
            format!("ad-hoc set {}", printable(&self.set_id))
        }
    }

    /// The service: one backup of the set, a oneshot run at low priority.
    pub fn service(&self) -> Result<UnitFile> {
        let mut t = String::new();
        let _ = writeln!(t, "{MARKER}");
        let _ = writeln!(t, "[Unit]");
        let _ = writeln!(t, "Description=firn backup ({})", specifiers(&self.what()));
        if self.scope == Scope::System {
            // A remote store needs the network; the embedded one does not mind.
            let _ = writeln!(t, "Wants=network-online.target");
            let _ = writeln!(t, "After=network-online.target");
        }
        let _ = writeln!(t);
        let _ = writeln!(t, "[Service]");
        let _ = writeln!(t, "Type=oneshot");
        let argv = self.argv()?;
        let exec: Vec<String> = argv.iter().map(|a| exec_quote(a)).collect();
        let _ = writeln!(t, "ExecStart={}", exec.join(" "));
        if let Some(dir) = &self.data_dir {
            let value = format!("FIRN_DATA_DIR={}", utf8(dir, "FIRN_DATA_DIR")?);
            let _ = writeln!(t, "Environment={}", env_quote(&value));
        }
        let _ = writeln!(
            t,
            "# 3: the set is busy (the last run is still going): not a failure."
        );
        let _ = writeln!(t, "SuccessExitStatus=3");
        let _ = writeln!(
            t,
            "# Stopped as Ctrl-C stops it: the uploads in flight finish and are recorded."
        );
        let _ = writeln!(t, "KillSignal=SIGINT");
        let _ = writeln!(t, "TimeoutStopSec=10min");
        let _ = writeln!(t, "Nice=10");
        let _ = writeln!(t, "IOSchedulingClass=idle");
        Ok(UnitFile {
            name: format!("{}.service", self.unit_name()),
            text: t,
        })
    }

    /// The timer: every day at `at`, up to `random_delay` later, and at boot
    /// when the machine was off at that time (`Persistent=true`).
    pub fn timer(&self) -> UnitFile {
        let mut t = String::new();
        let _ = writeln!(t, "{MARKER}");
        let _ = writeln!(t, "[Unit]");
        let _ = writeln!(
            t,
            "Description=firn nightly backup ({})",
            specifiers(&self.what())
        );
        let _ = writeln!(t);
        let _ = writeln!(t, "[Timer]");
        let _ = writeln!(t, "OnCalendar=*-*-* {}:00", self.at);
        if self.random_delay > 0 {
            let _ = writeln!(t, "RandomizedDelaySec={}", delay_text(self.random_delay));
        }
        let _ = writeln!(t, "Persistent=true");
        let _ = writeln!(t);
        let _ = writeln!(t, "[Install]");
        let _ = writeln!(t, "WantedBy=timers.target");
        UnitFile {
            name: format!("{}.timer", self.unit_name()),
            text: t,
        }
    }

    /// Both units, the service first.
    pub fn units(&self) -> Result<Vec<UnitFile>> {
        Ok(vec![self.service()?, self.timer()])
    }

    /// The crontab line: five time fields, then a command for /bin/sh that
    /// sleeps a random part of the delay, runs the backup, counts exit 3
    /// (busy) as success, and ends in a comment naming the units' name, which
    /// [`cron_removal`] finds it by. `%`, which cron turns into a newline, is
    /// written `\%`.
    pub fn cron_line(&self) -> Result<String> {
        let mut command = String::new();
        if self.random_delay > 0 {
            // POSIX sh has no $RANDOM: two random bytes scaled to 0..=delay,
            // without `%` (cron's newline).
            let _ = write!(
                command,
                "sleep $(( $(od -An -N2 -tu2 /dev/urandom) * {} / 65536 )); ",
                self.random_delay + 1
            );
        }
        if let Some(dir) = &self.data_dir {
            let _ = write!(
                command,
                "FIRN_DATA_DIR={} ",
                sh_quote(&utf8(dir, "FIRN_DATA_DIR")?)
            );
        }
        let argv = self.argv()?;
        for arg in &argv {
            if arg.chars().any(|c| c.is_control()) {
                return Err(usage(format!(
                    "{arg:?} holds a control character, which a crontab line cannot carry; rename it or use systemd (--dir)"
                )));
            }
        }
        let words: Vec<String> = argv.iter().map(|a| sh_quote(a)).collect();
        let _ = write!(
            command,
            "{} || {{ s=$?; [ $s -eq 3 ] || exit $s; }}",
            words.join(" ")
        );
        Ok(format!(
            "{} {} * * * {} {}",
            self.at.minute,
            self.at.hour,
            command.replace('%', "\\%"),
            cron_tag(&self.unit_name())
        ))
    }
}

/// The comment that ends a set's crontab line.
pub fn cron_tag(unit_name: &str) -> String {
    format!("# {unit_name}")
}

/// A shell command that takes the set's line out of the crontab (and leaves
/// every other line as it was).
pub fn cron_removal(unit_name: &str) -> String {
    format!(
        "crontab -l | grep -v -e ' {}$' | crontab -",
        cron_tag(unit_name)
    )
}

/// See [`Job::unit_name`].
pub fn unit_name(set_id: &str) -> String {
    let plain = !set_id.is_empty()
        && set_id.len() <= 64
        && set_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        return format!("firn-backup-{set_id}");
    }
    let mut slug = String::new();
    for c in set_id.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 48 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let hash = hex::encode(sha1::Sha1::digest(set_id.as_bytes()));
    if slug.is_empty() {
        format!("firn-backup-{}", &hash[..8])
    } else {
        format!("firn-backup-{slug}-{}", &hash[..8])
    }
}

fn utf8(path: &Path, what: &str) -> Result<String> {
    path.to_str().map(str::to_string).ok_or_else(|| {
        usage(format!(
            "{what} {} is not UTF-8, which a unit file or crontab cannot hold; move or rename it",
            path.display()
        ))
    })
}

/// Control characters shown as `?`, for descriptions and comments.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `%` doubled: systemd expands `%x` specifiers in most settings.
fn specifiers(text: &str) -> String {
    text.replace('%', "%%")
}

/// Escapes for a double-quoted systemd word: `\`, `"`, control characters.
fn c_escape(text: &str, dollars: bool) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' if dollars => out.push_str("$$"),
            c if c.is_control() && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn is_plain_word(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.,:+=@-".contains(&b))
}

/// One word of an `ExecStart=` line, quoted as systemd reads it (`%` and `$`
/// doubled: systemd expands specifiers and variables there).
pub fn exec_quote(word: &str) -> String {
    if is_plain_word(word) {
        word.to_string()
    } else {
        format!("\"{}\"", c_escape(word, true))
    }
}

/// An `Environment=` assignment, quoted (no `$` expansion there).
fn env_quote(assignment: &str) -> String {
    format!("\"{}\"", c_escape(assignment, false))
}

/// One word for /bin/sh.
pub fn sh_quote(word: &str) -> String {
    if is_plain_word(word) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Where units go by default: `$XDG_CONFIG_HOME/systemd/user` (else
/// `~/.config/systemd/user`) for the person's manager, `/etc/systemd/system`
/// for the machine's.
pub fn default_unit_dir(scope: Scope) -> Result<PathBuf> {
    match scope {
        Scope::System => Ok(PathBuf::from("/etc/systemd/system")),
        Scope::User => {
            let config = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
                .ok_or_else(|| {
                    usage(
                        "cannot find the user's systemd directory: HOME is not set; give --dir DIR",
                    )
                })?;
            Ok(config.join("systemd/user"))
        }
    }
}

/// Whether systemd is the init system running here (what `sd_booted` checks).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// What happens to one unit file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    Replace,
    Unchanged,
}

/// Everything `install` will do, for the person to see first.
#[derive(Debug, Clone)]
pub struct InstallPlan {
    pub dir: PathBuf,
    pub unit_name: String,
    pub files: Vec<(UnitFile, Change)>,
    /// `systemctl` command lines, in order (none with `--dir`).
    pub commands: Vec<Vec<String>>,
    pub scope: Scope,
}

/// Plans writing the job's units into `dir` and, when `manage`, enabling the
/// timer. A file in the way that firn did not write is refused.
pub fn plan_install(job: &Job, dir: &Path, manage: bool) -> Result<InstallPlan> {
    let mut files = Vec::new();
    let mut existed = false;
    for unit in job.units()? {
        let path = dir.join(&unit.name);
        let change = match read_existing(&path)? {
            None => Change::Create,
            Some(old) if old == unit.text => Change::Unchanged,
            Some(_) => Change::Replace,
        };
        existed |= change != Change::Create;
        files.push((unit, change));
    }
    let name = job.unit_name();
    let timer = format!("{name}.timer");
    let mut commands = Vec::new();
    if manage {
        let ctl = |args: &[&str]| job.scope.systemctl(args);
        commands.push(ctl(&["daemon-reload"]));
        commands.push(ctl(&["enable", "--now", &timer]));
        if existed {
            // A changed time takes effect now, not after the next trigger.
            commands.push(ctl(&["restart", &timer]));
        }
    }
    Ok(InstallPlan {
        dir: dir.to_path_buf(),
        unit_name: name,
        files,
        commands,
        scope: job.scope,
    })
}

/// The file's text if it exists; a file without firn's marker is refused.
fn read_existing(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.starts_with(MARKER) => Ok(Some(text)),
        Ok(_) => Err(usage(format!(
            "{} exists and was not written by firn schedule; move it away or give --dir DIR",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(usage(format!("cannot read {}: {e}", path.display()))),
    }
}

/// What `install` did.
#[derive(Debug, Clone, Default)]
pub struct Installed {
    pub written: Vec<PathBuf>,
    pub unchanged: Vec<PathBuf>,
    pub commands_run: Vec<String>,
}

/// Writes the plan's files (each to a temporary file, then renamed) and runs its
/// commands. When a command fails, the files are put back as they were (and the
/// manager reloaded), and the error names the command and the fix.
pub fn install(plan: &InstallPlan) -> Result<Installed> {
    std::fs::create_dir_all(&plan.dir)
        .map_err(|e| usage(format!("cannot create {}: {e}", plan.dir.display())))?;
    let mut done = Installed::default();
    let mut undo: Vec<(PathBuf, Option<String>)> = Vec::new();
    for (unit, change) in &plan.files {
        let path = plan.dir.join(&unit.name);
        if *change == Change::Unchanged {
            done.unchanged.push(path);
            continue;
        }
        let old = read_existing(&path)?;
        if let Err(e) = write_atomically(&path, &unit.text) {
            restore(&undo);
            return Err(e);
        }
        undo.push((path.clone(), old));
        done.written.push(path);
    }
    let mut reload: Option<&Vec<String>> = None;
    for command in &plan.commands {
        if let Err(e) = run(command) {
            restore(&undo);
            if let Some(reload) = reload {
                let _ = run(reload);
            }
            return Err(usage(format!(
                "{e}; {} (nothing was left installed)",
                fix(plan.scope)
            )));
        }
        if command.last().is_some_and(|c| c == "daemon-reload") {
            reload = Some(command);
        }
        done.commands_run.push(command.join(" "));
    }
    Ok(done)
}

fn fix(scope: Scope) -> &'static str {
    match scope {
        Scope::User => {
            "run it in a login session of this user (the user's systemd must be running), or as root with --system, or use --cron"
        }
        Scope::System => "run it as root (sudo), or use --user or --cron",
    }
}

/// Puts files back as they were before `install` wrote them.
fn restore(undo: &[(PathBuf, Option<String>)]) {
    for (path, old) in undo.iter().rev() {
        let _ = match old {
            Some(text) => write_atomically(path, text),
            None => std::fs::remove_file(path).map_err(Into::into),
        };
    }
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.firn-tmp"));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        usage(format!(
            "cannot write {}: {e}; run as a user who may write there, or give --dir DIR",
            path.display()
        ))
    })
}

/// Runs a command and fails with its last line of error output.
fn run(argv: &[String]) -> Result<()> {
    let shown = argv.join(" ");
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| usage(format!("cannot run {shown}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| format!("{}", out.status));
    Err(usage(format!("{shown} failed: {why}")))
}

/// Everything `remove` will do.
#[derive(Debug, Clone)]
pub struct RemovalPlan {
    pub dir: PathBuf,
    pub unit_name: String,
    /// The set's unit files found in `dir` (firn's own: others are refused).
    pub files: Vec<PathBuf>,
    /// `systemctl` command lines run before the files are deleted.
    pub commands: Vec<Vec<String>>,
    /// And after (the manager's reload).
    pub after: Vec<Vec<String>>,
    pub scope: Scope,
}

/// Plans removing the units named `unit_name` from `dir` and, when `manage`,
/// stopping and disabling them first.
pub fn plan_removal(
    unit_name: &str,
    dir: &Path,
    scope: Scope,
    manage: bool,
) -> Result<RemovalPlan> {
    let mut files = Vec::new();
    for suffix in ["timer", "service"] {
        let path = dir.join(format!("{unit_name}.{suffix}"));
        if read_existing(&path)?.is_some() {
            files.push(path);
        }
    }
    let mut commands = Vec::new();
    let mut after = Vec::new();
    if manage && !files.is_empty() {
        let (timer, service) = (format!("{unit_name}.timer"), format!("{unit_name}.service"));
        commands.push(scope.systemctl(&["disable", "--now", &timer]));
        // A run in progress stops as Ctrl-C stops it (KillSignal=SIGINT).
        commands.push(scope.systemctl(&["stop", &service]));
        after.push(scope.systemctl(&["daemon-reload"]));
    }
    Ok(RemovalPlan {
        dir: dir.to_path_buf(),
        unit_name: unit_name.to_string(),
        files,
        commands,
        after,
        scope,
    })
}

/// What `remove` did.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    pub deleted: Vec<PathBuf>,
    pub commands_run: Vec<String>,
}

/// Stops and disables the timer, deletes the files, reloads the manager and
/// forgets the units' failed state. A failing `systemctl` before anything is
/// deleted leaves everything as it was.
pub fn remove(plan: &RemovalPlan) -> Result<Removed> {
    let mut done = Removed::default();
    for command in &plan.commands {
        run(command).map_err(|e| {
            usage(format!(
                "{e}; {}, or delete {} yourself",
                fix(plan.scope),
                plan.files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ))
        })?;
        done.commands_run.push(command.join(" "));
    }
    for path in &plan.files {
        std::fs::remove_file(path)
            .map_err(|e| usage(format!("cannot delete {}: {e}", path.display())))?;
        done.deleted.push(path.clone());
    }
    for command in &plan.after {
        run(command).map_err(|e| usage(format!("{e}; the units are deleted: run it again")))?;
        done.commands_run.push(command.join(" "));
    }
    if !plan.after.is_empty() {
        // Only a unit that failed is remembered after its file is gone.
        let reset = plan.scope.systemctl(&[
            "reset-failed",
            &format!("{}.service", plan.unit_name),
            &format!("{}.timer", plan.unit_name),
        ]);
        if run(&reset).is_ok() {
            done.commands_run.push(reset.join(" "));
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(set_id: &str, configured: bool) -> Job {
        Job {
            set_id: set_id.into(),
            configured,
            root: PathBuf::from("/srv/photos"),
            firn: PathBuf::from("/usr/local/bin/firn"),
            config: Some(PathBuf::from("/etc/firn/config.toml")),
            data_dir: None,
            at: TimeOfDay {
                hour: 2,
                minute: 30,
            },
            random_delay: 1800,
            scope: Scope::System,
        }
    }

    #[test]
    fn times_of_day() {
        assert_eq!(
            "02:30".parse(),
            Ok(TimeOfDay {
                hour: 2,
                minute: 30
            })
        );
        assert_eq!("2:05".parse(), Ok(TimeOfDay { hour: 2, minute: 5 }));
        assert_eq!(
            "23:59".parse::<TimeOfDay>().map(|t| t.to_string()),
            Ok("23:59".into())
        );
        for bad in [
            "24:00", "12:60", "12", "1:5", "-1:00", "ab:cd", "12:30:00", "",
        ] {
            assert!(bad.parse::<TimeOfDay>().is_err(), "{bad}");
        }
    }

    #[test]
    fn delays() {
        assert_eq!(parse_delay("30"), Ok(1800));
        assert_eq!(parse_delay("30m"), Ok(1800));
        assert_eq!(parse_delay("30min"), Ok(1800));
        assert_eq!(parse_delay("1h"), Ok(3600));
        assert_eq!(parse_delay("90s"), Ok(90));
        assert_eq!(parse_delay("0"), Ok(0));
        for bad in ["", "m", "1d", "-5", "13h", "1.5h"] {
            assert!(parse_delay(bad).is_err(), "{bad}");
        }
        assert_eq!(delay_text(1800), "30min");
        assert_eq!(delay_text(7200), "2h");
        assert_eq!(delay_text(90), "90s");
    }

    #[test]
    fn unit_names_are_the_set_name_when_plain_else_a_slug_and_a_hash() {
        assert_eq!(unit_name("photos"), "firn-backup-photos");
        assert_eq!(unit_name("my_set-2"), "firn-backup-my_set-2");
        let adhoc = unit_name("/srv/photos");
        assert!(adhoc.starts_with("firn-backup-srv-photos-"), "{adhoc}");
        assert_eq!(adhoc.len(), "firn-backup-srv-photos-".len() + 8);
        // Names that slug alike stay apart.
        assert_ne!(unit_name("a b"), unit_name("a/b"));
        assert_ne!(unit_name("a b"), unit_name("a-b"));
        let odd = unit_name("ñ % \"x\"\n");
        assert!(
            odd.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{odd}"
        );
        assert!(unit_name(&"x".repeat(300)).len() < 80);
    }

    #[test]
    fn the_service_runs_the_set_by_absolute_path_and_counts_busy_as_success() {
        let service = job("photos", true).service().unwrap();
        assert_eq!(service.name, "firn-backup-photos.service");
        assert!(service.text.starts_with(MARKER));
        assert!(
            service.text.contains(
                "\nExecStart=/usr/local/bin/firn backup --set photos --config /etc/firn/config.toml\n"
            ),
            "{}",
            service.text
        );
        assert!(service.text.contains("\nSuccessExitStatus=3\n"));
        assert!(service.text.contains("\nType=oneshot\n"));
        let adhoc = job("/srv/photos", false).service().unwrap();
        assert!(
            adhoc
                .text
                .contains("ExecStart=/usr/local/bin/firn backup /srv/photos --config")
        );
    }

    #[test]
    fn exec_words_are_quoted_as_systemd_reads_them() {
        assert_eq!(exec_quote("photos"), "photos");
        assert_eq!(exec_quote("a b"), "\"a b\"");
        assert_eq!(exec_quote("100%"), "\"100%%\"");
        assert_eq!(exec_quote("$HOME"), "\"$$HOME\"");
        assert_eq!(exec_quote("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
        assert_eq!(exec_quote("a\nb"), "\"a\\x0ab\"");
        assert_eq!(exec_quote(";"), "\";\"");
        assert_eq!(exec_quote(""), "\"\"");
    }

    #[test]
    fn the_timer_fires_nightly_with_a_random_delay_and_catches_up() {
        let timer = job("photos", true).timer();
        assert_eq!(timer.name, "firn-backup-photos.timer");
        for line in [
            "OnCalendar=*-*-* 02:30:00",
            "RandomizedDelaySec=30min",
            "Persistent=true",
            "WantedBy=timers.target",
        ] {
            assert!(
                timer.text.lines().any(|l| l == line),
                "{line}: {}",
                timer.text
            );
        }
        let mut no_delay = job("photos", true);
        no_delay.random_delay = 0;
        assert!(!no_delay.timer().text.contains("RandomizedDelaySec"));
    }

    #[test]
    fn the_cron_line_has_five_time_fields_and_escapes_percent() {
        let mut j = job("100% \"raw\" it's", true);
        j.data_dir = Some(PathBuf::from("/var/lib/firn data"));
        let line = j.cron_line().unwrap();
        let fields: Vec<&str> = line.splitn(6, ' ').collect();
        assert_eq!(&fields[..5], ["30", "2", "*", "*", "*"], "{line}");
        assert!(line.contains("'100\\% \"raw\" it'\\''s'"), "{line}");
        assert!(!line.replace("\\%", "").contains('%'), "{line}");
        assert!(line.contains("FIRN_DATA_DIR='/var/lib/firn data' /usr/local/bin/firn backup"));
        assert!(line.contains("* 1801 / 65536"), "{line}");
        assert!(
            line.contains(" || { s=$?; [ $s -eq 3 ] || exit $s; } # firn-backup-"),
            "{line}"
        );
        let mut control = job("a\nb", true);
        control.random_delay = 0;
        assert!(control.cron_line().is_err());
    }

    #[test]
    fn the_user_scope_waits_for_no_network_target() {
        let mut j = job("photos", true);
        j.scope = Scope::User;
        assert!(!j.service().unwrap().text.contains("network-online"));
        j.scope = Scope::System;
        assert!(
            j.service()
                .unwrap()
                .text
                .contains("After=network-online.target")
        );
    }

    #[test]
    fn a_unit_firn_did_not_write_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let j = job("photos", true);
        std::fs::write(dir.path().join("firn-backup-photos.timer"), "[Timer]\n").unwrap();
        let err = plan_install(&j, dir.path(), false).unwrap_err();
        assert!(err.to_string().contains("not written by firn"), "{err}");
        let err = plan_removal(&j.unit_name(), dir.path(), Scope::System, false).unwrap_err();
        assert!(err.to_string().contains("not written by firn"), "{err}");
    }

    #[test]
    fn install_then_remove_without_a_manager() {
        let dir = tempfile::tempdir().unwrap();
        let j = job("photos", true);
        let plan = plan_install(&j, dir.path(), false).unwrap();
        assert!(plan.commands.is_empty());
        assert!(plan.files.iter().all(|(_, c)| *c == Change::Create));
        let done = install(&plan).unwrap();
        assert_eq!(done.written.len(), 2);
        let again = plan_install(&j, dir.path(), true).unwrap();
        assert!(again.files.iter().all(|(_, c)| *c == Change::Unchanged));
        assert_eq!(again.commands.last().unwrap()[1], "restart");
        let removal = plan_removal(&j.unit_name(), dir.path(), Scope::System, false).unwrap();
        assert_eq!(removal.files.len(), 2);
        remove(&removal).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_failed_command_puts_the_files_back() {
        let dir = tempfile::tempdir().unwrap();
        let j = job("photos", true);
        let mut plan = plan_install(&j, dir.path(), false).unwrap();
        plan.commands = vec![vec!["false".into()]];
        let err = install(&plan).unwrap_err();
        assert!(err.to_string().contains("false failed"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
