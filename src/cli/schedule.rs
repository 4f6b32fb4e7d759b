//! `firn schedule`: back a set up every night, unattended. Writes a systemd
//! timer and service for the set and enables the timer (the person's manager,
//! or the machine's as root or with `--system`), or prints the crontab line
//! where systemd does not run (and with `--cron`); `--remove` takes it away
//! again. It shows what it will write and asks first on a terminal; `--yes`
//! goes ahead, `--dry-run` only shows. The unit text, the crontab line and the
//! files and `systemctl` calls are the library's (`crate::schedule`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use super::prompt;
use crate::config::{self, Overrides, RootUse};
use crate::model::usage;
use crate::schedule::{
    self, Change, InstallPlan, Job, RemovalPlan, Scope, TimeOfDay, cron_removal, default_unit_dir,
    delay_text, sh_quote, systemd_running,
};

const DEFAULT_AT: &str = "02:30";
const DEFAULT_DELAY: &str = "30m";

/// Back a set up every night from a systemd timer (or cron), or remove that.
///
/// Writes firn-backup-SET.service and .timer and enables the timer; where
/// systemd is not running, prints the crontab line instead. A run that finds
/// the set busy (exit code 3: the last run is still going) counts as success.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The directory whose set to schedule (default: as for `firn backup`).
    root: Option<PathBuf>,
    /// A backup set named in the config file.
    #[arg(long)]
    set: Option<String>,
    /// Config file (default: $FIRN_CONFIG, else the platform config dir's
    /// firn/config.toml); the scheduled run reads the same one.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Time of day to start, HH:MM (local time).
    #[arg(long, value_name = "HH:MM", default_value = DEFAULT_AT, value_parser = parse_at)]
    at: TimeOfDay,
    /// Start up to this much later, chosen at random each night: 30m, 1h,
    /// 90s (a bare number is minutes; 0: on the minute).
    #[arg(long, value_name = "DELAY", default_value = DEFAULT_DELAY, value_parser = schedule::parse_delay)]
    random_delay: u64,
    /// A timer of your own user's systemd (the default unless run as root).
    #[arg(long, conflicts_with = "system")]
    user: bool,
    /// A timer of the machine's systemd, run as root (the default as root).
    #[arg(long)]
    system: bool,
    /// Print the crontab line (and how to install it) instead of writing units.
    #[arg(long, conflicts_with = "dir")]
    cron: bool,
    /// Write (or remove) the units in DIR and run no systemctl.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Show what would be written and run, and do nothing.
    #[arg(long)]
    dry_run: bool,
    /// Remove the set's schedule: disable and stop the timer, delete both units.
    #[arg(long)]
    remove: bool,
    /// Write and enable without asking (needed without a terminal).
    #[arg(long)]
    yes: bool,
}

fn parse_at(text: &str) -> Result<TimeOfDay, String> {
    text.parse()
}

/// Where the schedule goes.
enum Target {
    /// Units in a directory; `manage`: and systemctl runs.
    Units { dir: PathBuf, manage: bool },
    /// A crontab line; `fallback`: because systemd is not running here.
    Cron { fallback: bool },
}

pub fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    let scope = if args.system {
        Scope::System
    } else if args.user || !is_root() {
        Scope::User
    } else {
        Scope::System
    };
    let target = if args.cron {
        Target::Cron { fallback: false }
    } else if let Some(dir) = &args.dir {
        Target::Units {
            dir: std::path::absolute(dir)
                .map_err(|e| usage(format!("invalid --dir {}: {e}", dir.display())))?,
            manage: false,
        }
    } else if systemd_running() {
        Target::Units {
            dir: default_unit_dir(scope)?,
            manage: true,
        }
    } else {
        Target::Cron { fallback: true }
    };
    if args.remove {
        remove(&args, scope, target, verbose)
    } else {
        install(&args, scope, target, verbose)
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// This binary's absolute path. Linux names a binary replaced while it runs
/// (an upgrade) `PATH (deleted)`: the timer should run the new one at PATH.
fn own_path() -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| usage(format!("cannot find the firn binary's own path: {e}")))?;
    if let Some(replaced) = exe.to_str().and_then(|s| s.strip_suffix(" (deleted)"))
        && Path::new(replaced).is_file()
    {
        return Ok(PathBuf::from(replaced));
    }
    Ok(exe)
}

fn overrides(args: &Args) -> Overrides {
    Overrides {
        config: args.config.clone(),
        set: args.set.clone(),
        root: args.root.clone(),
        ..Overrides::default()
    }
}

fn job(args: &Args, scope: Scope) -> Result<(Job, String)> {
    let set = config::resolve(&overrides(args), RootUse::MustExist)?;
    let firn = own_path()?;
    // The config this set came from, by absolute path, so the timer reads it
    // whoever runs it and from wherever.
    let config = config::config_path(args.config.as_deref())
        .filter(|path| path.is_file())
        .map(|path| std::fs::canonicalize(&path).unwrap_or(path));
    let data_dir = std::env::var_os("FIRN_DATA_DIR")
        .map(PathBuf::from)
        .map(|dir| std::path::absolute(&dir).unwrap_or(dir));
    let job = Job {
        set_id: set.id.clone(),
        configured: set.configured,
        root: set.root.clone(),
        firn,
        config,
        data_dir,
        at: args.at,
        random_delay: args.random_delay,
        scope,
    };
    Ok((job, set.describe()))
}

fn when(job: &Job) -> String {
    if job.random_delay == 0 {
        format!("every night at {}", job.at)
    } else {
        format!(
            "every night at {}, up to {} later",
            job.at,
            delay_text(job.random_delay)
        )
    }
}

fn install(args: &Args, scope: Scope, target: Target, verbose: bool) -> Result<ExitCode> {
    let (job, described) = job(args, scope)?;
    let (dir, manage) = match target {
        Target::Units { dir, manage } => (dir, manage),
        Target::Cron { fallback } => {
            let line = job.cron_line()?;
            if fallback || verbose {
                if fallback {
                    eprintln!(
                        "systemd is not running here: this crontab line runs {} {}",
                        described,
                        when(&job)
                    );
                }
                eprintln!(
                    "install it: (crontab -l 2>/dev/null; {}) | crontab -",
                    again(args, &job, "--cron")
                );
                eprintln!("remove it:  {}", cron_removal(&job.unit_name()));
            }
            outln!("{line}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let plan = schedule::plan_install(&job, &dir, manage)?;
    if args.dry_run {
        outln!("{described}: {}", when(&job));
        show_install(&plan, "would");
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        let hint = format!(
            "pass --yes to write {} and {}{} (--dry-run shows them)",
            plan.files[0].0.name,
            plan.files[1].0.name,
            if manage {
                format!(" in {} and enable the timer", dir.display())
            } else {
                format!(" in {}", dir.display())
            }
        );
        if !std::io::stdin().is_terminal() {
            return Err(usage(format!(
                "cannot ask for confirmation without a terminal; {hint}"
            )));
        }
        outln!("{described}: {}", when(&job));
        show_install(&plan, "will");
        let question = if manage {
            "Write these and enable the timer?"
        } else {
            "Write these?"
        };
        if !prompt::confirm(question, &hint, false)? {
            outln!("nothing written");
            return Ok(ExitCode::SUCCESS);
        }
    } else if verbose {
        show_install(&plan, "will");
    }
    let done = schedule::install(&plan)?;
    let mut wrote: Vec<String> = done
        .written
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    if wrote.is_empty() {
        wrote.push("nothing (the units were up to date)".into());
    }
    outln!("{described}: wrote {}", wrote.join(" and "));
    let timer = format!("{}.timer", plan.unit_name);
    let ctl = match scope {
        Scope::User => "systemctl --user",
        Scope::System => "systemctl",
    };
    if manage {
        outln!("enabled {timer}: {}", when(&job));
        outln!(
            "see it: {ctl} list-timers {timer}; its runs: {} -u {}.service",
            match scope {
                Scope::User => "journalctl --user",
                Scope::System => "journalctl",
            },
            plan.unit_name
        );
        if scope == Scope::User
            && let Some(user) = std::env::var_os("USER").or_else(|| std::env::var_os("LOGNAME"))
            && !Path::new("/var/lib/systemd/linger").join(&user).exists()
        {
            outln!(
                "note: a user's timers run only while {0} is logged in; `loginctl enable-linger {0}` runs them at night too",
                user.to_string_lossy()
            );
        }
    } else {
        outln!(
            "not enabled (--dir): to use them, copy them to {} and run `{ctl} daemon-reload && {ctl} enable --now {timer}`",
            default_unit_dir(scope)
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "the systemd unit directory".into())
        );
    }
    outln!("remove it: {}", again(args, &job, "--remove"));
    Ok(ExitCode::SUCCESS)
}

/// This command again for the same set, with `extra`: for the hints printed.
fn again(args: &Args, job: &Job, extra: &str) -> String {
    let mut words = vec![
        sh_quote(&job.firn.to_string_lossy()),
        "schedule".to_string(),
    ];
    if let Some(set) = &args.set {
        words.push(format!("--set {}", sh_quote(set)));
    } else if job.configured {
        words.push(format!("--set {}", sh_quote(&job.set_id)));
    } else {
        words.push(sh_quote(&job.root.to_string_lossy()));
    }
    if let Some(config) = &args.config {
        words.push(format!("--config {}", sh_quote(&config.to_string_lossy())));
    }
    if extra == "--cron" {
        if job.at.to_string() != DEFAULT_AT {
            words.push(format!("--at {}", job.at));
        }
        if Ok(job.random_delay) != schedule::parse_delay(DEFAULT_DELAY) {
            words.push(format!("--random-delay {}", delay_text(job.random_delay)));
        }
    }
    if let Some(dir) = &args.dir {
        words.push(format!("--dir {}", sh_quote(&dir.to_string_lossy())));
    }
    if args.user {
        words.push("--user".into());
    }
    if args.system {
        words.push("--system".into());
    }
    words.push(extra.to_string());
    words.join(" ")
}

fn show_install(plan: &InstallPlan, tense: &str) {
    for (unit, change) in &plan.files {
        let path = plan.dir.join(&unit.name);
        match change {
            Change::Unchanged => outln!("{} (unchanged):", path.display()),
            Change::Create => outln!("{tense} write {}:", path.display()),
            Change::Replace => outln!("{tense} replace {}:", path.display()),
        }
        for line in unit.text.lines() {
            outln!("    {line}");
        }
    }
    for command in &plan.commands {
        outln!("{tense} run: {}", command.join(" "));
    }
}

fn show_removal(plan: &RemovalPlan, tense: &str) {
    for command in &plan.commands {
        outln!("{tense} run: {}", command.join(" "));
    }
    for path in &plan.files {
        outln!("{tense} delete {}", path.display());
    }
    for command in &plan.after {
        outln!("{tense} run: {}", command.join(" "));
    }
}

fn remove(args: &Args, scope: Scope, target: Target, verbose: bool) -> Result<ExitCode> {
    // The set's name is enough: its config may be gone already.
    let (set_id, described) = match &args.set {
        Some(name) => (name.clone(), format!("set {name}")),
        None => {
            let set = config::resolve(&overrides(args), RootUse::MayBeMissing)?;
            (set.id.clone(), set.describe())
        }
    };
    let unit_name = schedule::unit_name(&set_id);
    let (dir, manage) = match target {
        Target::Units { dir, manage } => (dir, manage),
        Target::Cron { fallback } => {
            if fallback || verbose {
                eprintln!(
                    "{}this command takes {described}'s line out of the crontab:",
                    if fallback {
                        "systemd is not running here: "
                    } else {
                        ""
                    }
                );
            }
            outln!("{}", cron_removal(&unit_name));
            return Ok(ExitCode::SUCCESS);
        }
    };
    let plan = schedule::plan_removal(&unit_name, &dir, scope, manage)?;
    if plan.files.is_empty() {
        outln!(
            "{described}: no schedule in {} ({unit_name}.timer); nothing to remove",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        show_removal(&plan, "would");
        return Ok(ExitCode::SUCCESS);
    }
    if verbose {
        show_removal(&plan, "will");
    }
    let done = schedule::remove(&plan)?;
    outln!(
        "{described}: schedule removed ({})",
        done.deleted
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    Ok(ExitCode::SUCCESS)
}
