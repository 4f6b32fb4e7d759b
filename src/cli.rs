//! Headless front end: `firn status`, `firn backup`, `firn ls`, `firn restore`,
//! `firn delete`, `firn prune`, `firn cost`, `firn inventory`, `firn catalog rebuild`.
//!
//! Exit codes: 0 all done; 1 some files failed (or could not be backed up), an
//! inventory found orphans, missing archives or mismatches, or a rebuild skipped
//! archives; 2 usage or configuration error; 3 the backup set is busy (another firn
//! holds it).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use base64::Engine as _;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::ArchiveState;
use crate::config::{self, Overrides, ResolvedSet, RootUse, UsageError};
use crate::cost::Prices;
use crate::engine::{
    BackupSummary, DeletionPlan, DeletionReport, Engine, Event, InterruptedDeletions,
    InventoryFetch, InventoryOutcome, OrphanOutcome, OrphanResult, Plan, RebuildReport,
    Reconciliation, RecordLookup, RestoreOptions, RestoreOutcome,
};
use crate::hash::ReadCounters;
use crate::lock::{Busy, SetLock};
use crate::scan::{Entry, ScanOptions};
use crate::status::{Rollup, StatusReport};
use crate::store::Tier;

#[derive(Parser, Debug)]
#[command(
    name = "firn",
    version,
    about = "Keep a directory tree backed up, file by file, in cold storage"
)]
#[command(
    after_help = "Exit codes: 0 all done, 1 some files failed (or an inventory found problems, or a rebuild skipped archives), 2 usage or configuration error, 3 backup set busy."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command: open the terminal UI on this directory (or --set / a
    /// configured set).
    root: Option<PathBuf>,
    #[command(flatten)]
    set: SetArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compare the tree with the catalog: new, changed, up to date, archived-only,
    /// ignored, unreadable, skipped. Reads only files whose fingerprint moved.
    Status {
        /// The directory to compare (or use --set / a configured set).
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Print a JSON document with a per-file list instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Upload every new or changed file, then apply the retention policy.
    Backup {
        /// The directory to back up (or use --set / a configured set).
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Show what would be uploaded without uploading anything.
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as JSON (counters included).
        #[arg(long)]
        json: bool,
    },
    /// List the catalog: what is archived for the set.
    Ls {
        /// The set's root directory (it may no longer exist).
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Include superseded versions.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Create what a backup set needs: the Glacier vault and the DynamoDB table
    /// (on-demand billing, firn's key schema), or the embedded store's directories.
    /// Shows the plan and asks first.
    Init {
        /// The set's root directory.
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Create without asking (for scripts).
        #[arg(long)]
        yes: bool,
    },
    /// List the retrieval jobs this set is waiting on or has not downloaded yet:
    /// tier, age, expected window, state and when the output expires.
    Jobs {
        /// The set's root directory (it may no longer exist).
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        #[arg(long)]
        json: bool,
    },
    /// Print the SHA-1 and the Glacier SHA-256 tree hash of files (one read each).
    Hash {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Restore archived files (current versions) into a directory. Requests one
    /// retrieval job per archive (reusing jobs requested in the last 24 hours),
    /// waits for them, and downloads verified data.
    Restore {
        /// Paths relative to the root; a directory restores everything below it.
        /// None: the whole set.
        paths: Vec<String>,
        /// Restore this archive (any version, superseded ones included) instead of
        /// current versions by path (repeatable; see `firn ls --all`).
        #[arg(long = "archive", value_name = "ID")]
        archives: Vec<String>,
        /// Where to write the files (by relative path under it). Default: back
        /// into the set's root, where files with other content are kept unless
        /// --overwrite.
        #[arg(long)]
        to: Option<PathBuf>,
        /// The set's root directory (it may no longer exist).
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Retrieval tier (Glacier's speed / price trade-off).
        #[arg(long, value_enum, default_value_t = Tier::Standard)]
        tier: Tier,
        /// Replace existing files whose content differs.
        #[arg(long)]
        overwrite: bool,
        /// Do not wait for retrieval jobs that are not ready; run again later.
        #[arg(long)]
        no_wait: bool,
    },
    /// Delete archives from the store, then from the catalog: the current version
    /// of each PATH, or the archives named with --archive. Lists each archive's
    /// size, age and early-deletion charge and asks first.
    Delete {
        /// Paths relative to the root; a directory means everything below it.
        paths: Vec<String>,
        /// Delete this archive (an id from `firn ls --all`), whatever its file
        /// or state (repeatable).
        #[arg(long = "archive", value_name = "ID")]
        archives: Vec<String>,
        /// Also delete the superseded versions of the files PATH matches.
        #[arg(long)]
        all_versions: bool,
        /// The set's root directory (it may no longer exist).
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Delete without asking (for scripts).
        #[arg(long)]
        yes: bool,
        /// Show what would be deleted and what it would cost; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan and the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete superseded versions in bulk, skipping those still inside their
    /// minimum storage period (deleting them is billed) unless --include-early.
    Prune {
        /// The set's root directory (it may no longer exist).
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Also delete superseded archives inside their minimum storage period.
        #[arg(long)]
        include_early: bool,
        /// Delete without asking (for scripts).
        #[arg(long)]
        yes: bool,
        /// Show what would be deleted and what it would cost; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan and the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What the set's archives cost: bytes and counts, monthly storage, pending
    /// early-deletion charges, and what retrieving everything would cost per tier.
    Cost {
        /// The set's root directory (it may no longer exist).
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        #[arg(long)]
        json: bool,
    },
    /// Compare the store's inventory with the catalog: orphans (in the store, not
    /// in the catalog), missing archives, size or tree-hash mismatches. Exit 1 when
    /// it finds any. The inventory job is reused for 24 hours.
    Inventory {
        /// The set's root directory (it may no longer exist).
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Do not wait for an inventory job that is not ready; run again later.
        #[arg(long)]
        no_wait: bool,
        #[arg(long)]
        json: bool,
        /// Record orphans whose description names a file under a safe path.
        #[arg(long, conflicts_with = "delete_orphans")]
        adopt_orphans: bool,
        /// Delete orphans from the store (cannot be undone; needs --yes).
        #[arg(long)]
        delete_orphans: bool,
        /// Confirm --delete-orphans.
        #[arg(long)]
        yes: bool,
    },
    /// Work on the catalog itself.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
}

#[derive(Subcommand, Debug)]
enum CatalogCommand {
    /// Recreate a lost catalog from the store's inventory: every archive whose
    /// description (firn's own, or mt-aws-glacier's mt2) names a file under a safe
    /// path. Archives the catalog already records are left alone.
    Rebuild {
        /// Rebuild from the archive descriptions of an inventory (the only source).
        #[arg(long, required = true)]
        from_inventory: bool,
        /// The set's root directory (it may no longer exist).
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Do not wait for an inventory job that is not ready; run again later.
        #[arg(long)]
        no_wait: bool,
        #[arg(long)]
        json: bool,
    },
}

/// Which backup set, and overrides of its configuration.
#[derive(Args, Debug, Clone, Default)]
struct SetArgs {
    /// A backup set named in the config file.
    #[arg(long)]
    set: Option<String>,
    /// Config file (default: $FIRN_CONFIG, else the platform config dir's firn/config.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Only back up files whose path relative to the root matches this regular
    /// expression (case-insensitive, Unicode; repeatable).
    #[arg(long = "pattern", value_name = "REGEX")]
    patterns: Vec<String>,
    /// Ignore files and directories whose path relative to the root matches this
    /// regular expression (case-insensitive, Unicode; repeatable).
    #[arg(long = "ignore-pattern", value_name = "REGEX")]
    ignore_patterns: Vec<String>,
    /// Follow symbolic links (loops are detected and reported).
    #[arg(long)]
    follow_symlinks: bool,
    /// Directory of the embedded archive store (default: <data dir>/store).
    #[arg(long, value_name = "DIR")]
    store_dir: Option<PathBuf>,
    /// SQLite catalog file (default: <data dir>/catalog.sqlite).
    #[arg(long, value_name = "FILE")]
    catalog_db: Option<PathBuf>,
    /// What to do with superseded archives: keep, delete, or after-days N.
    #[arg(long, value_name = "POLICY")]
    retention: Option<String>,
    /// Uploads at once.
    #[arg(long)]
    concurrency: Option<usize>,
}

impl SetArgs {
    fn overrides(&self, root: Option<PathBuf>) -> Overrides {
        Overrides {
            config: self.config.clone(),
            set: self.set.clone(),
            root,
            patterns: self.patterns.clone(),
            ignore_patterns: self.ignore_patterns.clone(),
            follow_symlinks: self.follow_symlinks,
            store_dir: self.store_dir.clone(),
            catalog_db: self.catalog_db.clone(),
            retention: self.retention.clone(),
            concurrency: self.concurrency,
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
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("firn: {}", one_line(&e));
            if e.downcast_ref::<Busy>().is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// The whole error chain on one line, each cause once.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        None => {
            if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
                return Err(UsageError(
                    "the interactive interface needs a terminal; use `firn status ROOT` or `firn backup ROOT` in scripts (see --help)".into(),
                )
                .into());
            }
            let resolved = config::resolve(&cli.set.overrides(cli.root), RootUse::MustExist)?;
            crate::tui::run(&resolved, cli.set.config.as_deref()).await
        }
        Some(Command::Status { root, set, json }) => {
            let resolved = config::resolve(&set.overrides(root), RootUse::MustExist)?;
            status_command(&resolved, json).await
        }
        Some(Command::Backup {
            root,
            set,
            dry_run,
            json,
        }) => {
            let resolved = config::resolve(&set.overrides(root), RootUse::MustExist)?;
            backup_command(&resolved, dry_run, json).await
        }
        Some(Command::Ls {
            root,
            set,
            all,
            json,
        }) => {
            let resolved = config::resolve(&set.overrides(root), RootUse::MayBeMissing)?;
            ls_command(&resolved, all, json).await
        }
        Some(Command::Hash { files }) => hash_command(&files),
        Some(Command::Init { root, set, yes }) => {
            let resolved = config::resolve(&set.overrides(root), RootUse::MayBeMissing)?;
            init_command(&resolved, yes).await
        }
        Some(Command::Jobs { root, set, json }) => {
            let resolved = config::resolve(&set.overrides(root), RootUse::MayBeMissing)?;
            jobs_command(&resolved, json).await
        }
        Some(Command::Restore {
            paths,
            archives,
            to,
            root,
            set,
            tier,
            overwrite,
            no_wait,
        }) => {
            let resolved = config::resolve(&set.overrides(root), RootUse::MayBeMissing)?;
            let options = RestoreOptions {
                destination: to.unwrap_or_else(|| resolved.root.clone()),
                overwrite,
                tier,
                wait: !no_wait,
            };
            restore_command(&resolved, &paths, &archives, &options).await
        }
        Some(Command::Delete {
            paths,
            archives,
            all_versions,
            root,
            set,
            yes,
            dry_run,
            json,
        }) => {
            if paths.is_empty() && archives.is_empty() {
                return Err(UsageError(
                    "name what to delete: PATH... relative to the root, or --archive ID (see `firn ls --all`)".into(),
                )
                .into());
            }
            let resolved = config::resolve(&set.overrides(root), RootUse::MayBeMissing)?;
            let selection = Selection {
                paths,
                archives,
                all_versions,
            };
            let confirm = Confirm { yes, dry_run, json };
            delete_command(&resolved, &selection, confirm).await
        }
        Some(Command::Prune {
            root,
            set,
            include_early,
            yes,
            dry_run,
            json,
        }) => {
            let resolved = config::resolve(&set.overrides(root), RootUse::MayBeMissing)?;
            let confirm = Confirm { yes, dry_run, json };
            prune_command(&resolved, include_early, confirm).await
        }
        Some(Command::Cost { root, set, json }) => {
            let resolved = config::resolve(&set.overrides(root), RootUse::MayBeMissing)?;
            cost_command(&resolved, json).await
        }
        Some(Command::Inventory {
            root,
            set,
            no_wait,
            json,
            adopt_orphans,
            delete_orphans,
            yes,
        }) => {
            if delete_orphans && !yes {
                return Err(UsageError(
                    "--delete-orphans deletes archives from the store and cannot be undone; add --yes to confirm".into(),
                )
                .into());
            }
            let action = if adopt_orphans {
                OrphanAction::Adopt
            } else if delete_orphans {
                OrphanAction::Delete
            } else {
                OrphanAction::None
            };
            let resolved = config::resolve(&set.overrides(root), RootUse::MayBeMissing)?;
            inventory_command(&resolved, !no_wait, json, action).await
        }
        Some(Command::Catalog {
            command:
                CatalogCommand::Rebuild {
                    from_inventory: _,
                    root,
                    set,
                    no_wait,
                    json,
                },
        }) => {
            let resolved = config::resolve(&set.overrides(root), RootUse::MayBeMissing)?;
            rebuild_command(&resolved, !no_wait, json).await
        }
    }
}

fn scan_options(set: &ResolvedSet) -> ScanOptions {
    ScanOptions {
        filter: set.filter.clone(),
        follow_symlinks: set.follow_symlinks,
    }
}

async fn status_command(set: &ResolvedSet, json: bool) -> Result<ExitCode> {
    let engine = Engine::open(set).await?;
    let before = ReadCounters::now();
    let report = engine.status(&scan_options(set), &mut |_| {}).await?;
    let reads = ReadCounters::now().since(before);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &StatusJson::new(set, &report, reads))?;
        writeln!(out)?;
    } else {
        print_status(&mut out, set, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(out: &mut impl Write, set: &ResolvedSet, report: &StatusReport) -> Result<()> {
    let t = &report.totals;
    writeln!(out, "{} (set {})", set.root.display(), set.id)?;
    for (label, tally) in [
        ("new", t.new),
        ("changed", t.changed),
        ("up to date", t.up_to_date),
        ("archived-only", t.archived_only),
        ("ignored", t.ignored),
        ("unreadable", t.unreadable),
        ("skipped", t.skipped),
    ] {
        if tally.files > 0 {
            writeln!(
                out,
                "  {label:<14} {:>9} {:>11}",
                plural(tally.files, "file"),
                human_bytes(tally.bytes)
            )?;
        }
    }
    let pending = t.pending();
    writeln!(
        out,
        "pending: {}, {}",
        plural(pending.files, "file"),
        human_bytes(pending.bytes)
    )?;
    let problems: Vec<&Entry> = report
        .entries
        .iter()
        .filter(|e| e.status.is_problem())
        .collect();
    if !problems.is_empty() {
        writeln!(out, "problems:")?;
        for entry in problems {
            writeln!(
                out,
                "  {}: {}",
                entry.key,
                entry.status.reason().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct StatusJson<'a> {
    root: String,
    set: &'a str,
    summary: SummaryJson,
    directories: Vec<DirJson>,
    files: Vec<FileJson<'a>>,
}

#[derive(Serialize)]
struct SummaryJson {
    #[serde(flatten)]
    totals: Rollup,
    pending: crate::status::Tally,
    files_read: u64,
    bytes_read: u64,
}

#[derive(Serialize)]
struct DirJson {
    path: String,
    #[serde(flatten)]
    rollup: Rollup,
    pending: crate::status::Tally,
}

#[derive(Serialize)]
struct FileJson<'a> {
    path: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtime_ns: Option<i64>,
    /// base64url of the original name bytes, when they differ from `path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_path: Option<String>,
}

impl<'a> StatusJson<'a> {
    fn new(set: &'a ResolvedSet, report: &'a StatusReport, reads: ReadCounters) -> Self {
        let files = report
            .entries
            .iter()
            .map(|e| {
                let local = e.fingerprint != crate::scan::Fingerprint::default();
                FileJson {
                    path: &e.key,
                    status: e.status.label(),
                    reason: e.status.reason(),
                    size: if local {
                        e.fingerprint.size
                    } else {
                        e.archived.map_or(0, |a| a.size)
                    },
                    mtime_ns: if local {
                        Some(e.fingerprint.mtime_ns)
                    } else {
                        e.archived.map(|a| a.mtime_ns)
                    },
                    raw_path: e
                        .raw
                        .as_ref()
                        .map(|r| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r)),
                }
            })
            .collect();
        let directories = report
            .directories(usize::MAX)
            .into_iter()
            .map(|(path, rollup)| DirJson {
                path,
                pending: rollup.pending(),
                rollup,
            })
            .collect();
        StatusJson {
            root: set.root.display().to_string(),
            set: &set.id,
            summary: SummaryJson {
                totals: report.totals,
                pending: report.totals.pending(),
                files_read: reads.files_read,
                bytes_read: reads.bytes_read,
            },
            directories,
            files,
        }
    }
}

#[derive(Serialize)]
struct BackupJson<'a> {
    root: String,
    set: &'a str,
    dry_run: bool,
    pending_files: u64,
    pending_bytes: u64,
    #[serde(flatten)]
    summary: &'a BackupSummary,
    problems: Vec<FileProblem<'a>>,
}

#[derive(Serialize)]
struct FileProblem<'a> {
    #[serde(skip)]
    is_failure: bool,
    path: &'a str,
    status: &'static str,
    reason: &'a str,
}

async fn backup_command(set: &ResolvedSet, dry_run: bool, json: bool) -> Result<ExitCode> {
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "backup")?;
    let engine = Arc::new(Engine::open(set).await?);
    let reads_before = ReadCounters::now();
    let recovery = engine
        .recover()
        .await
        .context("cannot finish the interrupted run's uploads")?;
    let interactive = !json && std::io::stderr().is_terminal();
    if !json {
        for key in &recovery.adopted {
            println!("recovered: {key} (stored by an interrupted run, now recorded)");
        }
        for key in &recovery.superseded {
            println!(
                "recovered: {key} (stray archive of an older version, recorded as superseded)"
            );
        }
        for warning in &recovery.warnings {
            println!("warning: {warning}");
        }
        for key in &recovery.deletions_finished {
            println!("finished: deletion of {key} (interrupted by an earlier run)");
        }
        for id in &recovery.aborted_uploads {
            println!("aborted: abandoned upload {id}");
        }
        for key in &recovery.unresolved {
            println!(
                "unresolved: {key} (interrupted upload; run an inventory to find its archive)"
            );
        }
    }
    let report = engine.status(&scan_options(set), &mut |_| {}).await?;
    let plan = Plan::from_report(&report);
    let problems: Vec<FileProblem> = report
        .entries
        .iter()
        .filter(|e| e.status.is_problem())
        .map(|e| FileProblem {
            is_failure: e.status.is_failure(),
            path: &e.key,
            status: e.status.label(),
            reason: e.status.reason().unwrap_or(""),
        })
        .collect();
    let (pending_files, pending_bytes) = (plan.uploads.len() as u64, plan.bytes());

    let mut summary = if dry_run {
        if !json {
            for item in &plan.uploads {
                println!(
                    "would upload: {} ({})",
                    item.key,
                    human_bytes(item.fingerprint.size)
                );
            }
        }
        BackupSummary::default()
    } else {
        let (tx, rx) = mpsc::channel(1024);
        let cancel = cancel_on_ctrl_c("finishing the uploads in flight cleanly");
        let names: Vec<(String, u64)> = plan
            .uploads
            .iter()
            .map(|u| (u.key.clone(), u.fingerprint.size))
            .collect();
        let printer = tokio::spawn(print_progress(rx, names, pending_bytes, interactive, json));
        let mut summary = engine.backup(plan, tx, cancel).await;
        let _ = printer.await;
        match engine.sweep_superseded().await {
            Ok(retention) => {
                summary.superseded_deleted += retention.deleted;
                summary.superseded_kept = retention.kept;
                for failure in retention.failed {
                    summary.failed.push(crate::engine::FailedFile {
                        path: "(retention)".into(),
                        reason: failure,
                    });
                }
            }
            Err(e) => summary.failed.push(crate::engine::FailedFile {
                path: "(retention)".into(),
                reason: format!("{e:#}"),
            }),
        }
        summary
    };
    summary.recovered = recovery.found() as u64;
    summary.deletions_finished = recovery.deletions_finished.len() as u64;
    summary.orphans = recovery.unresolved.clone();
    let reads = ReadCounters::now().since(reads_before);
    summary.files_read = reads.files_read;
    summary.bytes_read = reads.bytes_read;

    let failed = !summary.failed.is_empty()
        || summary.cancelled > 0
        || problems.iter().any(|p| p.is_failure);
    if json {
        let doc = BackupJson {
            root: set.root.display().to_string(),
            set: &set.id,
            dry_run,
            pending_files,
            pending_bytes,
            summary: &summary,
            problems,
        };
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        for p in &problems {
            println!("not backed up: {}: {}", p.path, p.reason);
        }
        for f in &summary.failed {
            println!("failed: {}: {}", f.path, f.reason);
        }
        println!(
            "{}: {} uploaded ({}), {} failed, {} not backed up, {} mtimes updated, {} superseded archives deleted, {} kept",
            if dry_run { "dry run" } else { "backup" },
            plural(summary.uploaded_files, "file"),
            human_bytes(summary.uploaded_bytes),
            summary.failed.len(),
            report.totals.unreadable.files + report.totals.skipped.files,
            summary.mtimes_updated,
            summary.superseded_deleted,
            summary.superseded_kept,
        );
        if dry_run {
            println!(
                "would upload {}, {}",
                plural(pending_files, "file"),
                human_bytes(pending_bytes)
            );
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reduces engine events to a progress bar (terminal) or one line per file (pipes).
async fn print_progress(
    mut rx: mpsc::Receiver<Event>,
    names: Vec<(String, u64)>,
    total: u64,
    interactive: bool,
    quiet: bool,
) {
    let bar = interactive.then(|| {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let name = |id: u64| {
        names
            .get(id as usize)
            .map(|(n, _)| n.as_str())
            .unwrap_or("?")
    };
    while let Some(event) = rx.recv().await {
        match event {
            Event::Advanced { bytes, .. } => {
                if let Some(bar) = &bar {
                    bar.inc(bytes);
                }
            }
            Event::Started { id } => {
                if let Some(bar) = &bar {
                    bar.set_message(name(id).to_string());
                }
            }
            Event::Done { id, .. } if !quiet => {
                let size = names.get(id as usize).map_or(0, |(_, s)| *s);
                let line = format!("uploaded: {} ({})", name(id), human_bytes(size));
                match &bar {
                    Some(bar) => bar.println(line),
                    None => println!("{line}"),
                }
            }
            Event::Note(note) if !quiet => match &bar {
                Some(bar) => bar.println(note),
                None => println!("{note}"),
            },
            _ => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

async fn ls_command(set: &ResolvedSet, all: bool, json: bool) -> Result<ExitCode> {
    let engine = Engine::open(set).await?;
    let records: Vec<_> = engine
        .catalog
        .records()
        .await?
        .into_iter()
        .filter(|r| all || r.state == ArchiveState::Current)
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "path": r.key, "state": r.state, "size": r.size, "mtime_ns": r.mtime_ns,
                    "sha1": hex::encode(r.sha1), "tree_hash": hex::encode(r.tree_hash),
                    "archive_id": r.archive_id, "target": r.target, "uploaded_at": r.uploaded_at, "host": r.host,
                })
            })
            .collect();
        serde_json::to_writer(&mut out, &rows)?;
        writeln!(out)?;
    } else {
        for r in &records {
            writeln!(
                out,
                "{:<10} {:>11}  {}  {}  {}",
                r.state.as_str(),
                human_bytes(r.size),
                format_time(r.uploaded_at),
                r.archive_id,
                r.key
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn jobs_command(set: &ResolvedSet, json: bool) -> Result<ExitCode> {
    let engine = Engine::open(set).await?;
    let jobs = engine.retrieval_jobs().await?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &jobs)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        writeln!(out, "no retrieval jobs pending")?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = crate::store::local::now_secs();
    for job in &jobs {
        writeln!(
            out,
            "{}  {}  {}  requested {} ago, expected within {}–{}, {}, output kept until {}  → {}",
            job.key,
            human_bytes(job.size),
            job.tier,
            crate::tui::text::duration((now - job.requested_at).max(0) as u64),
            crate::tui::text::duration(job.expected_from),
            crate::tui::text::duration(job.expected_to),
            job.state,
            format_time(job.expires_at),
            job.destination
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn restore_command(
    set: &ResolvedSet,
    paths: &[String],
    archives: &[String],
    options: &RestoreOptions,
) -> Result<ExitCode> {
    // One clear line for a destination that cannot be one, before any job is paid for.
    if let Err(e) = std::fs::create_dir_all(&options.destination) {
        return Err(UsageError(format!(
            "cannot use {} as the destination: {e}; give a directory with --to",
            options.destination.display()
        ))
        .into());
    }
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "restore")?;
    let engine = Engine::open(set).await?;
    if !archives.is_empty() {
        if !paths.is_empty() {
            return Err(UsageError("give either paths or --archive IDs, not both".into()).into());
        }
        let lookups: Vec<RecordLookup> = archives
            .iter()
            .map(|id| RecordLookup {
                key: None,
                archive_id: Some(id.clone()),
            })
            .collect();
        let mut records = Vec::new();
        for (id, found) in archives.iter().zip(engine.look_up(&lookups).await?) {
            match found {
                Some(record) => records.push(record),
                None => {
                    return Err(UsageError(format!(
                        "the catalog has no archive {id}; see `firn ls --all`"
                    ))
                    .into());
                }
            }
        }
        return report_restore(&engine, set, records, options).await;
    }
    let prefixes: Vec<String> = paths.iter().map(|p| path_prefix(set, p)).collect();
    let wanted = |key: &str| prefixes.is_empty() || prefixes.iter().any(|p| is_under(key, p));
    let records: Vec<_> = engine
        .catalog
        .records()
        .await?
        .into_iter()
        .filter(|r| r.state == ArchiveState::Current && wanted(&r.key))
        .collect();
    if records.is_empty() {
        return Err(UsageError(format!(
            "nothing archived matches {}; see `firn ls`",
            if paths.is_empty() {
                "this set".into()
            } else {
                paths.join(", ")
            }
        ))
        .into());
    }
    report_restore(&engine, set, records, options).await
}

/// A token Ctrl-C cancels, saying what firn does about it.
fn cancel_on_ctrl_c(what: &'static str) -> CancellationToken {
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("firn: interrupted; {what}");
            stop.cancel();
        }
    });
    cancel
}

async fn report_restore(
    engine: &Engine,
    set: &ResolvedSet,
    records: Vec<crate::catalog::ArchiveRecord>,
    options: &RestoreOptions,
) -> Result<ExitCode> {
    // What it will cost, before anything is requested (jobs reused from an earlier
    // run and files already in place cost less).
    let bytes: u64 = records.iter().map(|r| r.size).sum();
    let requests = records.iter().filter(|r| r.size > 0).count() as u64;
    let (from, to) = engine.store.expected_wait(options.tier);
    let when = if to == 0 {
        "ready at once".to_string()
    } else {
        format!(
            "ready in {}–{}",
            crate::tui::text::duration(from),
            crate::tui::text::duration(to)
        )
    };
    println!(
        "retrieving {} ({}) with the {} tier: {when}, estimated cost at most {}",
        plural(records.len() as u64, "file"),
        human_bytes(bytes),
        options.tier.as_str(),
        set.prices
            .format(set.prices.retrieval_estimate(bytes, requests, options.tier))
    );
    let cancel = cancel_on_ctrl_c(
        "stopping; the retrieval jobs and the ranges downloaded so far are kept, run the restore again to continue",
    );
    let results = engine.restore_all(records, options, None, &cancel).await;
    let (mut failed, mut waiting) = (0, 0);
    for result in &results {
        let key = &result.record.key;
        match &result.outcome {
            Ok(RestoreOutcome::Restored {
                path,
                resumed_bytes,
            }) => {
                if *resumed_bytes > 0 {
                    println!(
                        "restored: {} (continued after {} already downloaded)",
                        path.display(),
                        human_bytes(*resumed_bytes)
                    )
                } else {
                    println!("restored: {}", path.display())
                }
            }
            Ok(RestoreOutcome::Identical { path }) => {
                println!("identical, skipped: {}", path.display())
            }
            Ok(RestoreOutcome::Waiting {
                requested_at,
                ready_at,
                ..
            }) => {
                waiting += 1;
                println!(
                    "waiting: {key} (retrieval job requested {}, ready {}); run again later",
                    format_time(*requested_at),
                    ready_at.map(format_time).unwrap_or_else(|| "later".into())
                )
            }
            Err(e) => {
                failed += 1;
                println!("failed: {key}: {}", one_line(e));
            }
        }
    }
    if waiting > 0 {
        println!(
            "{} waiting for the store; the jobs are kept (`firn jobs` lists them) and `firn restore` again downloads what is ready",
            plural(waiting, "file")
        );
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The catalog key prefix a PATH argument names: relative to the root (an
/// absolute path inside the root works too), `/`-separated, NFC like keys;
/// `.` is the whole set.
fn path_prefix(set: &ResolvedSet, path: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let as_path = std::path::Path::new(path);
    let relative = if as_path.is_absolute() {
        // The root is canonical; the argument may go through a symlink.
        let canonical = std::fs::canonicalize(as_path).ok();
        [Some(as_path), canonical.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|p| p.strip_prefix(&set.root).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_string())
    } else {
        path.to_string()
    };
    let mut prefix = relative.as_str();
    while let Some(rest) = prefix.strip_prefix("./") {
        prefix = rest;
    }
    let prefix = prefix.trim_end_matches('/');
    let prefix = if prefix == "." { "" } else { prefix };
    prefix.nfc().collect()
}

/// Whether `key` is `prefix` itself or below it (the empty prefix is everything).
fn is_under(key: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || key == prefix
        || (key.starts_with(prefix) && key.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// What `firn delete` was asked to delete.
struct Selection {
    paths: Vec<String>,
    archives: Vec<String>,
    all_versions: bool,
}

/// How a deletion is confirmed and reported.
#[derive(Clone, Copy)]
struct Confirm {
    yes: bool,
    dry_run: bool,
    json: bool,
}

async fn delete_command(
    set: &ResolvedSet,
    selection: &Selection,
    confirm: Confirm,
) -> Result<ExitCode> {
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "delete")?;
    let engine = Engine::open(set).await?;
    let interrupted = engine.finish_interrupted_deletions().await?;
    let records = engine.catalog.records().await?;
    let mut chosen = Vec::new();
    let mut problems = Vec::new();
    for path in &selection.paths {
        let prefix = path_prefix(set, path);
        let matching: Vec<_> = records
            .iter()
            .filter(|r| is_under(&r.key, &prefix))
            .collect();
        let wanted: Vec<_> = matching
            .iter()
            .filter(|r| selection.all_versions || r.state == ArchiveState::Current)
            .collect();
        if wanted.is_empty() {
            problems.push(if matching.is_empty() {
                format!("nothing archived matches {path:?}")
            } else {
                format!("{path:?} has only superseded versions (add --all-versions to delete them)")
            });
        }
        chosen.extend(wanted.into_iter().map(|r| (*r).clone()));
    }
    for id in &selection.archives {
        match records.iter().find(|r| &r.archive_id == id) {
            Some(record) => chosen.push(record.clone()),
            None => problems.push(format!(
                "archive {id} is not in the catalog of set {}",
                set.id
            )),
        }
    }
    if !problems.is_empty() {
        return Err(UsageError(format!(
            "{}; nothing deleted (see `firn ls --all`)",
            problems.join("; ")
        ))
        .into());
    }
    let plan = engine.plan_deletion(chosen, &set.prices, crate::store::local::now_secs());
    run_deletion(set, &engine, &plan, confirm, &interrupted, None).await
}

async fn prune_command(
    set: &ResolvedSet,
    include_early: bool,
    confirm: Confirm,
) -> Result<ExitCode> {
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "prune")?;
    let engine = Engine::open(set).await?;
    let interrupted = engine.finish_interrupted_deletions().await?;
    let now = crate::store::local::now_secs();
    let prunable = engine.prunable(&set.prices, now, include_early).await?;
    let skipped = engine.plan_deletion(prunable.skipped_early, &set.prices, now);
    let plan = engine.plan_deletion(prunable.records, &set.prices, now);
    run_deletion(set, &engine, &plan, confirm, &interrupted, Some(&skipped)).await
}

/// Shows the plan, asks (or refuses without a terminal and without --yes),
/// deletes, reports. `skipped` is what a prune leaves for being early.
async fn run_deletion(
    set: &ResolvedSet,
    engine: &Engine,
    plan: &DeletionPlan,
    confirm: Confirm,
    interrupted: &InterruptedDeletions,
    skipped: Option<&DeletionPlan>,
) -> Result<ExitCode> {
    let prices = &set.prices;
    let ask = !confirm.yes && !confirm.dry_run && !plan.is_empty();
    let terminal = std::io::stdin().is_terminal();
    if !confirm.json {
        for key in &interrupted.finished {
            println!("finished: deletion of {key} (interrupted by an earlier run)");
        }
        for warning in &interrupted.failed {
            println!("warning: {warning}");
        }
    }
    // The plan goes to stdout, or to stderr when stdout is JSON and we must ask.
    let show_plan = !confirm.json || (ask && terminal);
    if show_plan {
        let mut out: Box<dyn Write> = if confirm.json {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        print_plan(&mut out, set, plan, prices, skipped)?;
        out.flush()?;
    }
    let report = if plan.is_empty() || confirm.dry_run {
        DeletionReport::default()
    } else {
        if ask {
            if !terminal {
                return Err(UsageError(format!(
                    "not deleting {} without confirmation; pass --yes to delete without asking",
                    plural(plan.len() as u64, "archive")
                ))
                .into());
            }
            let question = format!(
                "Delete {} ({}, early-deletion charge ≈ {})? [y/N] ",
                plural(plan.len() as u64, "archive"),
                human_bytes(plan.total_bytes),
                prices.format(plan.total_charge)
            );
            if !ask_yes(&question, confirm.json)? {
                if confirm.json {
                    eprintln!("nothing deleted");
                } else {
                    println!("nothing deleted");
                }
                return Ok(ExitCode::SUCCESS);
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        let cancel = cancel_on_ctrl_c("finishing the deletions in flight cleanly");
        let names: Vec<(String, u64)> = plan
            .items
            .iter()
            .map(|i| (i.record.key.clone(), i.record.size))
            .collect();
        let quiet = confirm.json;
        let printer = tokio::spawn(async move {
            let mut rx = rx;
            while let Some(event) = rx.recv().await {
                if quiet {
                    continue;
                }
                let name = |id: u64| names.get(id as usize).cloned().unwrap_or_default();
                match event {
                    Event::Done { id, archive_id } => {
                        let (key, size) = name(id);
                        println!(
                            "deleted: {key} ({}, archive {archive_id})",
                            human_bytes(size)
                        );
                    }
                    Event::Failed { id, reason } => {
                        println!("failed: {}: {reason}", name(id).0);
                    }
                    _ => {}
                }
            }
        });
        let report = engine.delete_archives(plan, tx, cancel).await;
        let _ = printer.await;
        report
    };
    let failed = !report.failed.is_empty() || report.cancelled > 0;
    if confirm.json {
        let doc = DeletionJson::new(set, plan, confirm.dry_run, &report, interrupted, skipped);
        println!("{}", serde_json::to_string(&doc)?);
    } else if confirm.dry_run {
        println!("dry run: nothing deleted");
    } else if !plan.is_empty() {
        println!(
            "deleted {} ({}), early-deletion charge ≈ {}; {} failed{}",
            plural(report.deleted, "archive"),
            human_bytes(report.deleted_bytes),
            prices.format(report.charged),
            report.failed.len(),
            if report.cancelled > 0 {
                format!(", {} cancelled", report.cancelled)
            } else {
                String::new()
            }
        );
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Asks on the terminal; true for y / yes.
fn ask_yes(question: &str, on_stderr: bool) -> Result<bool> {
    if on_stderr {
        eprint!("{question}");
        std::io::stderr().flush()?;
    } else {
        print!("{question}");
        std::io::stdout().flush()?;
    }
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

fn print_plan(
    out: &mut dyn Write,
    set: &ResolvedSet,
    plan: &DeletionPlan,
    prices: &Prices,
    skipped: Option<&DeletionPlan>,
) -> Result<()> {
    if plan.is_empty() {
        match skipped {
            Some(_) => writeln!(out, "nothing to prune in set {}", set.id)?,
            None => writeln!(out, "nothing to delete in set {}", set.id)?,
        }
    } else {
        writeln!(
            out,
            "{} of set {} to delete:",
            plural(plan.len() as u64, "archive"),
            set.id
        )?;
        let charges: Vec<String> = plan
            .items
            .iter()
            .map(|i| prices.format(i.early_charge))
            .collect();
        let width = charges.iter().map(|c| c.len()).max().unwrap_or(0).max(14);
        writeln!(
            out,
            "  {:>10}  {:>6}  {:>width$}  {:<10}  path",
            "size", "age", "early-deletion", "state"
        )?;
        for (item, charge) in plan.items.iter().zip(&charges) {
            writeln!(
                out,
                "  {:>10}  {:>4} d  {charge:>width$}  {:<10}  {}",
                human_bytes(item.record.size),
                item.age_days(),
                item.record.state.as_str(),
                item.record.key
            )?;
        }
        let early = plan.early_count();
        writeln!(
            out,
            "total: {}, {}, early-deletion charge ≈ {}{}",
            plural(plan.len() as u64, "archive"),
            human_bytes(plan.total_bytes),
            prices.format(plan.total_charge),
            if early > 0 {
                format!(
                    " ({early} inside the {}-day minimum storage period)",
                    prices.minimum_storage_days
                )
            } else {
                String::new()
            }
        )?;
    }
    if let Some(skipped) = skipped.filter(|s| !s.is_empty()) {
        writeln!(
            out,
            "kept: {} ({}) inside the {}-day minimum storage period; --include-early deletes them too (early-deletion charge ≈ {})",
            plural(skipped.len() as u64, "superseded archive"),
            human_bytes(skipped.total_bytes),
            prices.minimum_storage_days,
            prices.format(skipped.total_charge)
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct DeletionItemJson<'a> {
    path: &'a str,
    archive_id: &'a str,
    state: ArchiveState,
    size: u64,
    uploaded_at: i64,
    age_days: i64,
    early: bool,
    early_deletion_charge: f64,
}

#[derive(Serialize)]
struct DeletionJson<'a> {
    set: &'a str,
    dry_run: bool,
    currency: &'a str,
    archives: Vec<DeletionItemJson<'a>>,
    total_archives: usize,
    total_bytes: u64,
    total_early_deletion_charge: f64,
    #[serde(flatten)]
    report: &'a DeletionReport,
    /// Interrupted deletions of an earlier run finished first.
    interrupted_finished: &'a [String],
    warnings: &'a [String],
    /// Prune only: superseded archives kept for being inside the minimum period.
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped_early: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped_early_bytes: Option<u64>,
}

impl<'a> DeletionJson<'a> {
    fn new(
        set: &'a ResolvedSet,
        plan: &'a DeletionPlan,
        dry_run: bool,
        report: &'a DeletionReport,
        interrupted: &'a InterruptedDeletions,
        skipped: Option<&DeletionPlan>,
    ) -> Self {
        DeletionJson {
            set: &set.id,
            dry_run,
            currency: &plan.currency,
            archives: plan
                .items
                .iter()
                .map(|i| DeletionItemJson {
                    path: &i.record.key,
                    archive_id: &i.record.archive_id,
                    state: i.record.state,
                    size: i.record.size,
                    uploaded_at: i.record.uploaded_at,
                    age_days: i.age_days(),
                    early: i.early,
                    early_deletion_charge: i.early_charge,
                })
                .collect(),
            total_archives: plan.len(),
            total_bytes: plan.total_bytes,
            total_early_deletion_charge: plan.total_charge,
            report,
            interrupted_finished: &interrupted.finished,
            warnings: &interrupted.failed,
            skipped_early: skipped.map(DeletionPlan::len),
            skipped_early_bytes: skipped.map(|s| s.total_bytes),
        }
    }
}

async fn cost_command(set: &ResolvedSet, json: bool) -> Result<ExitCode> {
    let engine = Engine::open(set).await?;
    let prices = &set.prices;
    let summary = engine
        .cost_summary(prices, crate::store::local::now_secs())
        .await?;
    let mut out = std::io::stdout().lock();
    if json {
        #[derive(Serialize)]
        struct CostJson<'a> {
            set: &'a str,
            target: String,
            #[serde(flatten)]
            summary: &'a crate::cost::CostSummary,
        }
        let doc = CostJson {
            set: &set.id,
            target: engine.store.target(),
            summary: &summary,
        };
        serde_json::to_writer(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let money = |amount: f64| prices.format(amount);
    writeln!(out, "set {} ({})", set.id, engine.store.target())?;
    writeln!(
        out,
        "archived: {}, {} (current: {}, {}; superseded: {}, {})",
        plural(summary.total.archives, "archive"),
        human_bytes(summary.total.bytes),
        plural(summary.current.archives, "archive"),
        human_bytes(summary.current.bytes),
        plural(summary.superseded.archives, "archive"),
        human_bytes(summary.superseded.bytes),
    )?;
    writeln!(
        out,
        "storage: ≈ {} per month",
        money(summary.monthly_storage)
    )?;
    if prices.minimum_storage_days > 0 {
        writeln!(
            out,
            "pending early-deletion charges: ≈ {} ({} inside the {}-day minimum storage period)",
            money(summary.pending_early_deletion),
            plural(summary.early.archives, "superseded archive"),
            prices.minimum_storage_days
        )?;
    }
    writeln!(
        out,
        "retrieving every current archive ({}, {}):",
        plural(summary.current.archives, "archive"),
        human_bytes(summary.current.bytes)
    )?;
    for estimate in &summary.retrieval {
        writeln!(
            out,
            "  {:<10} ≈ {}",
            estimate.tier.as_str(),
            money(estimate.cost)
        )?;
    }
    if matches!(set.store, config::StoreChoice::Local { .. }) && *prices == Prices::free() {
        writeln!(
            out,
            "the embedded local store has no charges; set a [prices] table in the config to estimate another store's"
        )?;
    } else {
        writeln!(
            out,
            "prices: {} per GB-month (GB = 2^30 bytes), {}-day minimum; estimates, not a bill",
            money(prices.storage_per_gb_month),
            prices.minimum_storage_days
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrphanAction {
    None,
    Adopt,
    Delete,
}

fn print_waiting(json: bool, what: &str, requested_at: i64, ready_at: Option<i64>) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({"outcome": "waiting", "requested_at": requested_at, "ready_at": ready_at})
        );
    } else {
        println!(
            "waiting: {what} (inventory job requested {}, ready {}); run again later",
            format_time(requested_at),
            ready_at
                .map(format_time)
                .unwrap_or_else(|| "in a few hours".into())
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct InventoryJson<'a> {
    outcome: &'static str,
    set: &'a str,
    #[serde(flatten)]
    reconciliation: &'a Reconciliation,
    actions: &'a [OrphanResult],
    /// Orphans, missing archives and mismatches the actions did not resolve.
    problems: usize,
}

async fn inventory_command(
    set: &ResolvedSet,
    wait: bool,
    json: bool,
    action: OrphanAction,
) -> Result<ExitCode> {
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "inventory")?;
    let engine = Engine::open(set).await?;
    let r = match engine.inventory(wait).await? {
        InventoryOutcome::Waiting {
            requested_at,
            ready_at,
        } => {
            print_waiting(json, "no reconciliation yet", requested_at, ready_at)?;
            return Ok(ExitCode::SUCCESS);
        }
        InventoryOutcome::Ready(r) => r,
    };
    let actions = match action {
        OrphanAction::None => Vec::new(),
        OrphanAction::Adopt => engine.adopt_orphans(&r.orphans).await?,
        OrphanAction::Delete => engine.delete_orphans(&r.orphans).await?,
    };
    let resolved = actions
        .iter()
        .filter(|a| {
            matches!(
                a.outcome,
                OrphanOutcome::AdoptedCurrent
                    | OrphanOutcome::AdoptedSuperseded
                    | OrphanOutcome::Deleted
                    | OrphanOutcome::AlreadyInCatalog
            )
        })
        .count();
    let problems = r.problems() - resolved;
    if json {
        let doc = InventoryJson {
            outcome: "ready",
            set: &set.id,
            reconciliation: &r,
            actions: &actions,
            problems,
        };
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        print_reconciliation(&mut std::io::stdout().lock(), set, &r, &actions, problems)?;
    }
    Ok(if problems > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_reconciliation(
    out: &mut impl Write,
    set: &ResolvedSet,
    r: &Reconciliation,
    actions: &[OrphanResult],
    problems: usize,
) -> Result<()> {
    writeln!(
        out,
        "inventory of {} (set {}): {}, checked against {}",
        format_time(r.inventory_date),
        set.id,
        plural(r.archive_count, "archive"),
        plural(r.record_count, "catalog record"),
    )?;
    let mut counts = vec![format!("{} matched", r.matched)];
    for (n, label) in [
        (r.too_new, "too new to check (uploaded after the inventory)"),
        (r.empty_sentinels, "empty files with nothing stored"),
        (r.other_store, "recorded in another store"),
        (r.deleted_since, "deleted since the inventory"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {label}"));
        }
    }
    writeln!(out, "  {}", counts.join(", "))?;
    for o in &r.orphans {
        let what = match (&o.description, &o.refused) {
            (Some(d), None) => d.key.clone().unwrap_or_default(),
            (Some(d), Some(why)) => format!(
                "{} (cannot be adopted: {why})",
                d.key.as_deref().unwrap_or("(no path)")
            ),
            (None, why) => format!("({})", why.as_deref().unwrap_or("no description")),
        };
        writeln!(
            out,
            "orphan: {} {} created {} {what}",
            o.archive_id,
            human_bytes(o.size),
            format_time(o.created_at),
        )?;
    }
    for m in &r.missing {
        writeln!(
            out,
            "missing: {} ({} version, archive {}, {}, uploaded {})",
            m.key,
            m.state,
            m.archive_id,
            human_bytes(m.size),
            format_time(m.uploaded_at)
        )?;
    }
    for m in &r.mismatched {
        writeln!(
            out,
            "mismatch: {} (archive {}): catalog {} bytes, tree hash {}; store {} bytes, tree hash {}",
            m.key,
            m.archive_id,
            m.catalog_size,
            m.catalog_tree_hash,
            m.store_size,
            m.store_tree_hash
        )?;
    }
    for a in actions {
        let key = a.key.as_deref().unwrap_or("(no path)");
        match &a.outcome {
            OrphanOutcome::AdoptedCurrent => writeln!(
                out,
                "adopted: {key} (archive {}) as the current version",
                a.archive_id
            )?,
            OrphanOutcome::AdoptedSuperseded => writeln!(
                out,
                "adopted: {key} (archive {}) as a superseded version",
                a.archive_id
            )?,
            OrphanOutcome::Deleted => writeln!(out, "deleted: archive {} ({key})", a.archive_id)?,
            OrphanOutcome::AlreadyInCatalog => writeln!(
                out,
                "already in the catalog: archive {} ({key})",
                a.archive_id
            )?,
            OrphanOutcome::Refused(why) => {
                writeln!(out, "refused: archive {} ({key}): {why}", a.archive_id)?
            }
            OrphanOutcome::Failed(why) => {
                writeln!(out, "failed: archive {} ({key}): {why}", a.archive_id)?
            }
        }
    }
    if problems == 0 {
        writeln!(out, "consistent: every archive is accounted for")?;
    } else {
        writeln!(
            out,
            "{}: {} orphaned, {} missing, {} mismatched{}",
            plural(problems as u64, "problem"),
            r.orphans.len(),
            r.missing.len(),
            r.mismatched.len(),
            if actions.is_empty() && !r.orphans.is_empty() {
                "; act on orphans with --adopt-orphans or --delete-orphans --yes"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct RebuildJson<'a> {
    outcome: &'static str,
    set: &'a str,
    #[serde(flatten)]
    report: &'a RebuildReport,
}

async fn rebuild_command(set: &ResolvedSet, wait: bool, json: bool) -> Result<ExitCode> {
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "catalog rebuild")?;
    let engine = Engine::open(set).await?;
    let inventory = match engine.fetch_inventory(wait).await? {
        InventoryFetch::Waiting {
            requested_at,
            ready_at,
        } => {
            print_waiting(json, "nothing rebuilt yet", requested_at, ready_at)?;
            return Ok(ExitCode::SUCCESS);
        }
        InventoryFetch::Ready(inventory) => inventory,
    };
    let report = engine.rebuild_catalog(&inventory).await?;
    if json {
        let doc = RebuildJson {
            outcome: "ready",
            set: &set.id,
            report: &report,
        };
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        for s in &report.skipped {
            println!(
                "skipped: archive {}{}: {}",
                s.archive_id,
                s.key
                    .as_deref()
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default(),
                s.reason
            );
        }
        if report.merged {
            println!(
                "merged: {} already had records of set {}; only archives it did not know were added",
                engine.catalog.describe(),
                set.id
            );
        }
        println!(
            "rebuilt from the inventory of {}: {} ({} current, {} superseded; {} without SHA-1), {} skipped, {} already in the catalog",
            format_time(report.inventory_date),
            plural(report.files, "file"),
            report.current,
            report.superseded,
            report.unknown_sha1,
            plural(report.skipped.len() as u64, "archive"),
            report.already_known
        );
    }
    Ok(if report.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn init_command(set: &ResolvedSet, yes: bool) -> Result<ExitCode> {
    use crate::config::{CatalogChoice, StoreChoice};
    let mut plan: Vec<String> = Vec::new();
    let mut create_vault = None;
    let mut create_table = None;
    match &set.store {
        StoreChoice::Local { dir, .. } => {
            if !dir.join("archives").is_dir() {
                plan.push(format!(
                    "create the embedded store directory {}",
                    dir.display()
                ));
            }
        }
        StoreChoice::Glacier(settings) => {
            let config = crate::aws::sdk_config(&settings.aws).await?;
            let client = aws_sdk_glacier::Client::new(&config);
            let region = config.region().map(|r| r.to_string()).unwrap_or_default();
            let what = format!("Glacier vault {:?} in {region}", settings.vault);
            match client
                .describe_vault()
                .account_id("-")
                .vault_name(&settings.vault)
                .send()
                .await
            {
                Ok(_) => println!("exists: {what}"),
                Err(e) if crate::aws::is_not_found(&e) => {
                    plan.push(format!("create {what}"));
                    create_vault = Some((client, settings.vault.clone(), what));
                }
                Err(e) => return Err(crate::aws::explain(&e, &what)),
            }
        }
    }
    match &set.catalog {
        CatalogChoice::Sqlite(path) => {
            if !path.exists() {
                plan.push(format!("create the embedded catalog {}", path.display()));
            }
        }
        CatalogChoice::Dynamodb(settings) => {
            let config = crate::aws::sdk_config(&settings.aws).await?;
            let client = aws_sdk_dynamodb::Client::new(&config);
            let region = config.region().map(|r| r.to_string()).unwrap_or_default();
            let what = format!("DynamoDB table {:?} in {region}", settings.table);
            match crate::catalog::dynamodb::table_schema_matches(&client, &settings.table).await? {
                Some(true) => println!("exists: {what}"),
                Some(false) => {
                    return Err(UsageError(format!(
                        "{what} exists with another key schema (firn needs partition key set_id and sort key path, both strings); name another table in the config"
                    ))
                    .into());
                }
                None => {
                    plan.push(format!("create {what} (on-demand billing; keys: set_id (S) partition, path (S) sort)"));
                    create_table = Some((client, settings.table.clone()));
                }
            }
        }
    }
    if plan.is_empty() {
        println!("nothing to create for set {}", set.id);
        return Ok(ExitCode::SUCCESS);
    }
    println!("firn init will:");
    for step in &plan {
        println!("  - {step}");
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(
                "not creating anything without confirmation; run again with --yes".into(),
            )
            .into());
        }
        print!("Create? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing created");
            return Ok(ExitCode::SUCCESS);
        }
    }
    if let Some((client, vault, what)) = create_vault {
        client
            .create_vault()
            .account_id("-")
            .vault_name(&vault)
            .send()
            .await
            .map_err(|e| crate::aws::explain(&e, &what))?;
        println!("created: {what}");
    }
    if let Some((client, table)) = create_table {
        crate::catalog::dynamodb::create_table(&client, &table).await?;
        crate::catalog::dynamodb::wait_until_active(&client, &table).await?;
        println!("created: DynamoDB table {table:?}");
    }
    // The embedded backend creates its files on first open.
    if matches!(set.store, StoreChoice::Local { .. })
        || matches!(set.catalog, CatalogChoice::Sqlite(_))
    {
        Engine::open(set).await?;
        println!("created: embedded store and catalog");
    }
    Ok(ExitCode::SUCCESS)
}

fn hash_command(files: &[PathBuf]) -> Result<ExitCode> {
    let mut failed = false;
    for path in files {
        let outcome = std::fs::metadata(path)
            .map_err(crate::hash::HashError::Io)
            .and_then(|meta| {
                crate::hash::hash_file(path, &crate::scan::Fingerprint::of(&meta), &mut |_| {})
            });
        match outcome {
            Ok(hash) => println!(
                "{}  {}  {}",
                hex::encode(hash.sha1),
                hex::encode(hash.tree_hash),
                path.display()
            ),
            Err(e) => {
                failed = true;
                eprintln!("firn: {}: {e}", path.display());
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC.
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Inverse of days_from_civil (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}
