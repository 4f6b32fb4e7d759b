//! Headless front end: clap and one file per command. Every command works through
//! the engine (the only door to store, catalog and local state) and prints what
//! the engine reports, as words on a terminal or as `--json` for scripts.
//!
//! With no ROOT and no `--set`, a command works on the set whose root holds the
//! paths it names or the current directory (a configured set, or an ad-hoc set
//! used before), else on the only configured set, else (status, backup, the UI)
//! on the current directory itself.
//!
//! Exit codes: 0 all done; 1 some files failed (or could not be backed up), an
//! inventory found orphans, missing archives or mismatches, or a rebuild skipped
//! archives; 2 usage or configuration error; 3 the backup set is busy (another firn
//! holds it).

mod backup;
mod catalog;
mod cost;
mod delete;
mod hash;
mod init;
mod inventory;
mod jobs;
mod ls;
mod migrate;
mod output;
mod progress;
mod prompt;
mod restore;
mod snapshot;
mod status;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Overrides, ResolvedSet, RootUse};
use crate::engine::RebuildOptions;
use crate::fmt::one_line;
use crate::lock::Busy;
use crate::model::{Tier, UsageError, usage};
use output::Output;

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
    /// Say more: one line per file uploaded, restored or deleted.
    #[arg(short, long, global = true)]
    verbose: bool,
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
        /// The directory to compare (default: the set whose root holds the
        /// current directory, else the current directory).
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Print a JSON document with a per-file list instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Upload every new or changed file, then apply the retention policy.
    Backup {
        /// The directory to back up (default: the set whose root holds the
        /// current directory, else the current directory).
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
        /// Leave a DynamoDB catalog's point-in-time recovery as it is (by default
        /// init turns it on: the table is the only copy of the catalog).
        #[arg(long)]
        no_point_in_time_recovery: bool,
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
    /// Copy the set's archives from the store it used before (`previous_store`
    /// in the config, or --from) into the store it uses now: from unchanged local
    /// files where their SHA-1 matches, else through retrieval jobs (persisted:
    /// never requested or paid twice). Each copy is verified, then recorded as
    /// current (the old archive stays, superseded). Nothing is deleted. Shows
    /// the plan first; resumable after a kill.
    Migrate {
        /// The set's root directory.
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// The store to copy from, as firn names stores: glacier:REGION/VAULT,
        /// s3:REGION/BUCKET[/PREFIX] or local:/DIR (default: the set's
        /// previous_store).
        #[arg(long, value_name = "STORE")]
        from: Option<String>,
        /// Copy superseded versions too (default: the current version of each file).
        #[arg(long)]
        all_versions: bool,
        /// Retrieval tier for archives that cannot come from local files:
        /// expedited, standard or bulk (default: bulk, the cheapest; a migration
        /// is not urgent).
        #[arg(long, default_value_t = Tier::Bulk, value_parser = parse_tier)]
        tier: Tier,
        /// Show the plan (counts, bytes, local files vs retrievals, cost and wait
        /// per tier) and do nothing.
        #[arg(long)]
        dry_run: bool,
        /// Request paid retrievals without asking.
        #[arg(long)]
        yes: bool,
        /// Request the retrieval jobs and copy what is ready, without waiting for
        /// the rest (run again later: the jobs are kept).
        #[arg(long)]
        no_wait: bool,
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
        /// Paths to restore, as they were in the tree: absolute, or relative to the
        /// current directory inside the root (else to the root); a directory
        /// restores everything below it. None: the whole set.
        paths: Vec<PathBuf>,
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
        /// Retrieval tier: expedited, standard or bulk (the store's speed / price
        /// trade-off).
        #[arg(long, default_value_t = Tier::Standard, value_parser = parse_tier)]
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
        /// Paths to delete, as they were in the tree: absolute, or relative to the
        /// current directory inside the root (else to the root); a directory means
        /// everything below it.
        paths: Vec<PathBuf>,
        /// Delete this archive (an id from `firn ls --all`), whatever its file
        /// or state (repeatable).
        #[arg(long = "archive", value_name = "ID")]
        archives: Vec<String>,
        /// Also delete the superseded versions of the files PATH matches.
        #[arg(long)]
        all_versions: bool,
        /// Delete from a store the set used before (after `firn migrate`), named
        /// as firn names stores (glacier:REGION/VAULT, s3:REGION/BUCKET[/PREFIX],
        /// local:/DIR). With no PATH or --archive: every archive there that is not
        /// a current version (the copies' originals and old versions).
        #[arg(long, value_name = "STORE")]
        store: Option<String>,
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
    /// Compare the store's inventory with the catalog: orphans (this set's
    /// archives no record names), missing archives, size or tree-hash
    /// mismatches; other sets sharing the store are counted apart, never
    /// orphans. Exit 1 when it finds a problem. The inventory job is reused for
    /// 24 hours.
    Inventory {
        /// The set's root directory (it may no longer exist).
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Do not wait for an inventory job that is not ready; run again later.
        #[arg(long)]
        no_wait: bool,
        /// Request a new inventory instead of reusing the one taken in the last
        /// 24 hours (a vault's takes hours, and lags its archives by about a day).
        #[arg(long)]
        refresh: bool,
        #[arg(long)]
        json: bool,
        /// Record orphans whose description names a file under a safe path.
        #[arg(long, conflicts_with = "delete_orphans")]
        adopt_orphans: bool,
        /// Delete orphans from the store (cannot be undone; needs --yes). Never
        /// another set's archives; in a store shared with other sets, archives of
        /// unknown owner only when named with --archive.
        #[arg(long)]
        delete_orphans: bool,
        /// With --delete-orphans: delete only this archive (an orphan, or an
        /// unclaimed archive of a shared store, as the inventory lists them).
        #[arg(long = "archive", value_name = "ID", requires = "delete_orphans")]
        archives: Vec<String>,
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
    /// Recreate a lost catalog from the store: its newest catalog snapshot of the
    /// set, then the descriptions (firn's own, or mt-aws-glacier's mt2) of the
    /// set's archives stored after it (never another set's). Archives the catalog
    /// already records are left alone; archives the store no longer holds are not
    /// brought back.
    Rebuild {
        /// Accepted for scripts written for earlier versions: every rebuild reads
        /// the store's inventory.
        #[arg(long, hide = true)]
        from_inventory: bool,
        /// Ignore catalog snapshots: rebuild from archive descriptions alone.
        #[arg(long)]
        no_snapshot: bool,
        /// Also adopt archives of unknown owner (written by firn before archives
        /// named their set, or by mt-aws-glacier). Without it they are counted
        /// and left alone; use it only when no other set shares the store.
        #[arg(long)]
        adopt_unknown: bool,
        /// Retrieval tier for the snapshot where the store needs a job
        /// (expedited, standard or bulk).
        #[arg(long, default_value_t = Tier::Standard, value_parser = parse_tier)]
        tier: Tier,
        /// The set's root directory (it may no longer exist).
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// Do not wait for store jobs (the inventory, the snapshot's retrieval)
        /// that are not ready; run again later.
        #[arg(long)]
        no_wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Mark in the store, as this set's own, the archives its catalog names that
    /// were written before archives named their set: run it once in every set
    /// that shares a store with others (README: Sharing a store). Uploads one
    /// small claim per ~90 archives (vault) or ~180 (bucket); changes nothing
    /// else.
    Claim {
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
    /// Give up the records of archives another set names as its own (the last
    /// `firn inventory` lists them as disputed: an older firn's rebuild in a
    /// shared store adopted them). Nothing is deleted from the store; a file
    /// whose current version was one gets its newest own version back.
    Release {
        /// Release only this archive (default: every disputed one).
        #[arg(long = "archive", value_name = "ID")]
        archives: Vec<String>,
        /// The set's root directory (it may no longer exist).
        #[arg(long)]
        root: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        #[arg(long)]
        json: bool,
    },
    /// Store a snapshot of the catalog in the set's store now (every command that
    /// changes the catalog does so when it is done).
    Snapshot {
        #[command(flatten)]
        set: SetArgs,
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
    fn overrides(&self, root: Option<PathBuf>, paths: &[PathBuf]) -> Overrides {
        Overrides {
            config: self.config.clone(),
            set: self.set.clone(),
            root,
            paths: paths.to_vec(),
            patterns: self.patterns.clone(),
            ignore_patterns: self.ignore_patterns.clone(),
            follow_symlinks: self.follow_symlinks,
            store_dir: self.store_dir.clone(),
            catalog_db: self.catalog_db.clone(),
            retention: self.retention.clone(),
            concurrency: self.concurrency,
        }
    }

    /// The set this command means (see the module docs).
    fn resolve(&self, root: Option<PathBuf>, root_use: RootUse) -> Result<ResolvedSet> {
        config::resolve(&self.overrides(root, &[]), root_use)
    }

    /// The set the named paths belong to, unless --set or --root says.
    fn resolve_for(&self, root: Option<PathBuf>, paths: &[PathBuf]) -> Result<ResolvedSet> {
        config::resolve(&self.overrides(root, paths), RootUse::MayBeMissing)
    }
}

fn parse_tier(text: &str) -> Result<Tier, String> {
    text.parse()
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

async fn run(cli: Cli) -> Result<ExitCode> {
    let verbose = cli.verbose;
    let out = |json: bool| Output::new(json, verbose);
    let Some(command) = cli.command else {
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            return Err(UsageError(
                "the interactive interface needs a terminal; use `firn status ROOT` or `firn backup ROOT` in scripts (see --help)".into(),
            )
            .into());
        }
        let set = cli.set.resolve(cli.root, RootUse::MustExist)?;
        return crate::tui::run(&set, cli.set.config.as_deref()).await;
    };
    match command {
        Command::Status { root, set, json } => {
            let set = set.resolve(root, RootUse::MustExist)?;
            status::run(&set, &out(json)).await
        }
        Command::Backup {
            root,
            set,
            dry_run,
            json,
        } => {
            let set = set.resolve(root, RootUse::MustExist)?;
            backup::run(&set, dry_run, &out(json)).await
        }
        Command::Ls {
            root,
            set,
            all,
            json,
        } => {
            let set = set.resolve(root, RootUse::MayBeMissing)?;
            ls::run(&set, all, &out(json)).await
        }
        Command::Hash { files } => hash::run(&files),
        Command::Migrate {
            root,
            set,
            from,
            all_versions,
            tier,
            dry_run,
            yes,
            no_wait,
            json,
        } => {
            let set = set.resolve(root, RootUse::MayBeMissing)?;
            let request = migrate::Request {
                from,
                all_versions,
                tier,
                wait: !no_wait,
                dry_run,
                yes,
            };
            migrate::run(&set, request, &out(json)).await
        }
        Command::Init {
            root,
            set,
            yes,
            no_point_in_time_recovery,
        } => {
            let set = set.resolve(root, RootUse::MayBeMissing)?;
            init::run(&set, yes, !no_point_in_time_recovery).await
        }
        Command::Jobs { root, set, json } => {
            let set = set.resolve(root, RootUse::MayBeMissing)?;
            jobs::run(&set, &out(json)).await
        }
        Command::Restore {
            paths,
            archives,
            to,
            root,
            set,
            tier,
            overwrite,
            no_wait,
        } => {
            let set = set.resolve_for(root, &paths)?;
            let request = restore::Request {
                paths,
                archives,
                destination: to,
                tier,
                overwrite,
                wait: !no_wait,
            };
            restore::run(&set, request, &out(false)).await
        }
        Command::Delete {
            paths,
            archives,
            all_versions,
            store,
            root,
            set,
            yes,
            dry_run,
            json,
        } => {
            if paths.is_empty() && archives.is_empty() && store.is_none() {
                return Err(usage(
                    "name what to delete: PATH... (as in the tree), or --archive ID (see `firn ls --all`)",
                ));
            }
            let set = set.resolve_for(root, &paths)?;
            let request = delete::Request {
                paths,
                archives,
                all_versions,
                store,
            };
            let confirm = delete::Confirm { yes, dry_run };
            delete::run(&set, request, confirm, &out(json)).await
        }
        Command::Prune {
            root,
            set,
            include_early,
            yes,
            dry_run,
            json,
        } => {
            let set = set.resolve(root, RootUse::MayBeMissing)?;
            let confirm = delete::Confirm { yes, dry_run };
            delete::prune(&set, include_early, confirm, &out(json)).await
        }
        Command::Cost { root, set, json } => {
            let set = set.resolve(root, RootUse::MayBeMissing)?;
            cost::run(&set, &out(json)).await
        }
        Command::Inventory {
            root,
            set,
            no_wait,
            refresh,
            json,
            adopt_orphans,
            delete_orphans,
            archives,
            yes,
        } => {
            if delete_orphans && !yes {
                return Err(usage(
                    "--delete-orphans deletes archives from the store and cannot be undone; add --yes to confirm",
                ));
            }
            let action = if adopt_orphans {
                inventory::OrphanAction::Adopt
            } else if delete_orphans {
                inventory::OrphanAction::Delete { only: archives }
            } else {
                inventory::OrphanAction::None
            };
            let set = set.resolve(root, RootUse::MayBeMissing)?;
            let job = inventory::InventoryJob {
                wait: !no_wait,
                refresh,
            };
            inventory::run(&set, job, action, &out(json)).await
        }
        Command::Catalog {
            command:
                CatalogCommand::Rebuild {
                    from_inventory: _,
                    no_snapshot,
                    adopt_unknown,
                    tier,
                    root,
                    set,
                    no_wait,
                    json,
                },
        } => {
            let set = set.resolve(root, RootUse::MayBeMissing)?;
            let options = RebuildOptions {
                wait: !no_wait,
                tier,
                use_snapshot: !no_snapshot,
                adopt_unknown,
            };
            catalog::rebuild(&set, &options, &out(json)).await
        }
        Command::Catalog {
            command:
                CatalogCommand::Claim {
                    root,
                    set,
                    no_wait,
                    json,
                },
        } => {
            let set = set.resolve(root, RootUse::MayBeMissing)?;
            catalog::claim(&set, !no_wait, &out(json)).await
        }
        Command::Catalog {
            command:
                CatalogCommand::Release {
                    archives,
                    root,
                    set,
                    json,
                },
        } => {
            let set = set.resolve(root, RootUse::MayBeMissing)?;
            catalog::release(&set, &archives, &out(json)).await
        }
        Command::Catalog {
            command: CatalogCommand::Snapshot { set, json },
        } => {
            let set = set.resolve(None, RootUse::MayBeMissing)?;
            snapshot::run(&set, &out(json)).await
        }
    }
}

/// Exit status 1 when something failed, else 0.
fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
