//! Headless front end: clap and one file per command, each owning its arguments.
//! Every command works through the engine (the only door to store, catalog and
//! local state): it builds a request, asks the person where a question is due,
//! shows the job's progress and prints its report, as words on a terminal or as
//! `--json` for scripts. Locking, recovery and the catalog's snapshot are the
//! engine's: a command never runs a workflow step of its own.
//!
//! With no ROOT and no `--set`, a command works on the set whose root holds the
//! paths it names or the current directory (a configured set, or an ad-hoc set
//! used before), else on the only configured set, else (status, backup, the UI)
//! on the current directory itself.
//!
//! Exit codes, by kind (see [`exit`]): 0 all done; 1 done, but something needs a
//! look (files failed, an inventory or rebuild found problems); 2 usage or
//! configuration error (nothing was done); 3 the set is busy; 4 the store, the
//! catalog or the network failed (try again later); 5 a spending limit held
//! the run back (a backup left out what would exceed the set's `budget`, or a
//! charge above `confirm_above` was neither confirmed nor allowed by `--max-cost`).
//!
//! A command that changes a set is a run: [`main`] follows it from start to
//! exit code ([`crate::history::Run`]), records it in the set's history — a run
//! that ended busy, or failed before the engine opened the set, included — and
//! runs the set's hook. Here, once, not in each command.

/// `println!` for what a command prints on stdout: a reader that went away
/// (`firn ls | head`) ends the printing, never the command (see
/// [`output::emit`]).
macro_rules! outln {
    () => {
        $crate::cli::output::emit(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::emit(format_args!($($arg)*))
    };
}

mod backup;
mod catalog;
mod completions;
mod cost;
mod delete;
mod hash;
mod init;
mod inventory;
mod jobs;
mod log;
mod ls;
mod man;
mod migrate;
mod output;
mod progress;
mod prompt;
mod prune;
mod restore;
mod schedule;
mod set_args;
mod snapshot;
mod status;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

use crate::config::RootUse;
use crate::fmt::one_line;
use crate::history::{FrontEnd, Run};
use crate::model::UsageError;
use set_args::{LimitArgs, SetArgs};

/// The exit codes, one per kind of outcome (the library's: the terminal UI and
/// the run history say the same).
pub use crate::exit;

const EXIT_CODES: &str = "Exit codes: 0 all done; 1 done, but files failed or an inventory or rebuild found problems; 2 usage or configuration error (nothing done); 3 backup set busy; 4 the store, catalog or network failed (run again later); 5 over a spending limit: the backup left out what exceeds the set's budget, or a charge above confirm_above was not confirmed (raise the limit, or --max-cost).";

#[derive(Parser, Debug)]
#[command(
    name = "firn",
    version,
    about = "Keep a directory tree backed up, file by file, in cold storage"
)]
#[command(after_help = EXIT_CODES)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Say more: one line per file uploaded, restored or deleted.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// With no command: open the terminal UI on this directory (or --set / a
    /// configured set).
    root: Option<PathBuf>,
    #[command(flatten)]
    set: SetArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    Status(status::Args),
    Backup(backup::Args),
    Ls(ls::Args),
    Init(init::Args),
    Jobs(jobs::Args),
    Migrate(migrate::Args),
    Hash(hash::Args),
    Restore(restore::Args),
    Delete(delete::Args),
    Prune(prune::Args),
    Cost(cost::Args),
    Inventory(inventory::Args),
    Catalog(catalog::Args),
    Log(log::Args),
    Schedule(schedule::Args),
    Completions(completions::Args),
    Man(man::Args),
}
impl Command {
    /// The name a run of this command is recorded under in its set's history:
    /// the commands that change a set (a dry run changes nothing, and is not).
    fn recorded_as(&self) -> Option<&'static str> {
        match self {
            Command::Backup(args) => (!args.dry_run()).then_some("backup"),
            Command::Restore(_) => Some("restore"),
            Command::Migrate(args) => (!args.dry_run()).then_some("migrate"),
            Command::Delete(args) => (!args.dry_run()).then_some("delete"),
            Command::Prune(args) => (!args.dry_run()).then_some("prune"),
            Command::Inventory(_) => Some("inventory"),
            Command::Catalog(args) => Some(args.name()),
            Command::Status(_)
            | Command::Ls(_)
            | Command::Init(_)
            | Command::Jobs(_)
            | Command::Hash(_)
            | Command::Cost(_)
            | Command::Log(_)
            | Command::Schedule(_)
            | Command::Completions(_)
            | Command::Man(_) => None,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("firn: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let recorded = cli.command.as_ref().and_then(Command::recorded_as);
    let Some(name) = recorded else {
        return match runtime.block_on(run(cli)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("firn: {}", one_line(&e));
                ExitCode::from(exit::code_of(&e))
            }
        };
    };
    // A run: what it does is noted as it goes (the set it is for, each job's
    // report), then recorded with its exit code, then the set's hook runs.
    let followed = Run::begin(name, FrontEnd::Cli);
    let result = runtime.block_on(followed.scope(run(cli)));
    let code = match &result {
        Ok(code) => number_of(*code),
        Err(e) => {
            eprintln!("firn: {}", one_line(e));
            exit::code_of(e)
        }
    };
    let mut recorded = followed.finish(code, result.as_ref().err());
    if let Some(line) = recorded.notify() {
        eprintln!("firn: {line}");
    }
    // A run that failed said why already; that its history cannot be kept
    // either is most often the same cause (a local state a newer firn wrote).
    if result.is_ok() {
        for warning in &recorded.warnings {
            eprintln!("firn: warning: {warning}");
        }
    }
    ExitCode::from(code)
}

/// An exit code as its number (std's `ExitCode` does not say it; firn's are
/// the few of [`exit`]).
fn number_of(code: ExitCode) -> u8 {
    (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .unwrap_or(exit::FAILED)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let verbose = cli.verbose;
    let Some(command) = cli.command else {
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            return Err(UsageError(
                "the interactive interface needs a terminal; use `firn status ROOT` or `firn backup ROOT` in scripts (see --help)".into(),
            )
            .into());
        }
        let set = cli
            .limits
            .apply(cli.set.resolve(cli.root, RootUse::MustExist)?);
        return crate::tui::run(&set, cli.set.config.as_deref()).await;
    };
    match command {
        Command::Status(args) => status::run(args, verbose).await,
        Command::Backup(args) => backup::run(args, verbose).await,
        Command::Ls(args) => ls::run(args, verbose).await,
        Command::Init(args) => init::run(args).await,
        Command::Jobs(args) => jobs::run(args, verbose).await,
        Command::Migrate(args) => migrate::run(args, verbose).await,
        Command::Hash(args) => hash::run(args),
        Command::Restore(args) => restore::run(args, verbose).await,
        Command::Delete(args) => delete::run(args, verbose).await,
        Command::Prune(args) => prune::run(args, verbose).await,
        Command::Cost(args) => cost::run(args, verbose).await,
        Command::Inventory(args) => inventory::run(args, verbose).await,
        Command::Catalog(args) => catalog::run(args, verbose).await,
        Command::Log(args) => log::run(args),
        Command::Schedule(args) => schedule::run(args, verbose),
        Command::Completions(args) => completions::run(args, Cli::command()),
        Command::Man(args) => man::run(args, Cli::command(), verbose),
    }
}

/// Exit status 1 when something needs a look, else 0.
fn exit_code(problems: bool) -> ExitCode {
    ExitCode::from(if problems { exit::PROBLEMS } else { exit::OK })
}
