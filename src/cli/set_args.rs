//! The arguments every command takes to say which set it works on, and
//! overrides of that set's configuration (flattened into each command's own).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::config::{self, Overrides, ResolvedSet, RootUse};
use crate::limit::Schedule;
use crate::model::Tier;

/// Which backup set, and overrides of its configuration.
#[derive(Args, Debug, Clone, Default)]
pub struct SetArgs {
    /// A backup set named in the config file.
    #[arg(long)]
    set: Option<String>,
    /// Config file (default: $FIRN_CONFIG, else the platform config dir's firn/config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
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
    pub fn resolve(&self, root: Option<PathBuf>, root_use: RootUse) -> Result<ResolvedSet> {
        config::resolve(&self.overrides(root, &[]), root_use)
    }

    /// The set the named paths belong to, unless --set or --root says.
    pub fn resolve_for(&self, root: Option<PathBuf>, paths: &[PathBuf]) -> Result<ResolvedSet> {
        config::resolve(&self.overrides(root, paths), RootUse::MayBeMissing)
    }
}

/// Bandwidth limits for this run (commands that move archive bytes: backup,
/// migrate, restore, the UI), over the set's `upload_limit` / `download_limit`.
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Send to the store at most this fast: a rate ("4 MiB/s", "512KiB", "off")
    /// or a timetable in local time ("08:00,512KiB 19:00,4MiB 23:00,off").
    /// Default: the set's upload_limit.
    #[arg(long, value_name = "LIMIT", value_parser = parse_limit)]
    upload_limit: Option<Schedule>,
    /// Read from the store at most this fast (restores, a migration's
    /// retrievals), as --upload-limit. Default: the set's download_limit.
    #[arg(long, value_name = "LIMIT", value_parser = parse_limit)]
    download_limit: Option<Schedule>,
}

impl LimitArgs {
    /// The set with the limits these flags give.
    pub fn apply(&self, mut set: ResolvedSet) -> ResolvedSet {
        if let Some(limit) = &self.upload_limit {
            set.upload_limit = limit.clone();
        }
        if let Some(limit) = &self.download_limit {
            set.download_limit = limit.clone();
        }
        set
    }
}

/// A bandwidth limit as a flag gives it (a bad one is a usage error, exit 2).
fn parse_limit(text: &str) -> Result<Schedule, String> {
    Schedule::parse(text)
}

/// A retrieval tier as a flag gives it.
pub fn parse_tier(text: &str) -> Result<Tier, String> {
    text.parse()
}

/// Which set a command works on when it may run without its tree (the set's
/// tree may be gone: that is when one restores): `--root` or the set's flags.
#[derive(Args, Debug, Clone, Default)]
pub struct SetAt {
    /// The set's root directory (it may no longer exist).
    #[arg(long)]
    pub root: Option<PathBuf>,
    #[command(flatten)]
    pub set: SetArgs,
}

impl SetAt {
    /// The set meant (see the CLI's module docs).
    pub fn resolve(&self) -> Result<ResolvedSet> {
        self.set.resolve(self.root.clone(), RootUse::MayBeMissing)
    }

    /// The set the named paths belong to, unless --set or --root says.
    pub fn resolve_for(&self, paths: &[PathBuf]) -> Result<ResolvedSet> {
        self.set.resolve_for(self.root.clone(), paths)
    }
}
