//! Configuration: a TOML file in the platform config dir naming backup sets, plus
//! flags that override it. Resolves everything one command needs for one set.
//!
//! ```toml
//! [defaults]
//! retention = "after-days 90"   # keep | delete | after-days N
//! concurrency = 4              # large files (over 1 MiB) uploaded at once
//! requests_in_flight = 32       # small files at once (default: 32 remote, 16 × cores local)
//! upload_limit = "08:00,512KiB 19:00,4MiB 23:00,off"   # or "4 MiB/s"; see `limit`
//! download_limit = "off"
//!
//! [sets.photos]
//! root = "/srv/photos"
//! patterns = ['\.(jpe?g|raw)$']        # include only these (optional)
//! ignore_patterns = ['(^|/)\.DS_Store$']
//! store = { kind = "local", path = "/mnt/external/firn-store" }
//! catalog = { kind = "sqlite", path = "/mnt/external/firn-catalog.sqlite" }
//!
//! [prices]                      # estimates (see `cost`); per set: [sets.NAME.prices]
//! storage_per_gb_month = 0.0036
//! ```
//!
//! Spending limits (see [`crate::budget`]), per set or in `[defaults]`:
//! `budget = "2 USD/month"`, `confirm_above = "1 USD"`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Deserialize;

use std::time::Duration;

use crate::backend::{CatalogSettings, StoreSettings};
use crate::budget::{Budget, parse_confirm_above};
use crate::cost::{PriceSettings, Prices};
use crate::history::{Hooks, SetRef};
use crate::limit::Schedule;
use crate::model::{Packing, Retention, usage};
use crate::scan::Filter;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub defaults: SetSettings,
    #[serde(default)]
    pub sets: BTreeMap<String, SetSettings>,
    /// Terminal UI settings (keys, colours), read by `tui::settings`.
    #[serde(default)]
    pub tui: Option<toml::Value>,
    /// Prices for cost estimates, for every set (a set's own `prices` overrides them).
    #[serde(default)]
    pub prices: Option<PriceSettings>,
}

/// Settings of one set; `[defaults]` uses the same shape (its `root` is ignored).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSettings {
    pub root: Option<PathBuf>,
    #[serde(default)]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub ignore_patterns: Vec<String>,
    pub follow_symlinks: Option<bool>,
    pub store: Option<StoreSettings>,
    /// The store this set used before `store` (`firn migrate` copies its
    /// archives into `store`).
    pub previous_store: Option<StoreSettings>,
    pub catalog: Option<CatalogSettings>,
    pub retention: Option<String>,
    pub concurrency: Option<usize>,
    /// Small files uploaded at once (a remote store is bound by each request's
    /// latency); lowered by itself while the store throttles.
    pub requests_in_flight: Option<usize>,
    /// Bytes per second to the store: a rate or a timetable (see `limit`).
    pub upload_limit: Option<String>,
    /// Bytes per second from the store (restores, migrations' retrievals).
    pub download_limit: Option<String>,
    /// This set's prices, field by field over the top-level `[prices]`.
    pub prices: Option<PriceSettings>,
    /// Shell command run after a run that exits 0, the run's summary (JSON) on
    /// its standard input (`""`: none, over `[defaults]`).
    pub on_success: Option<String>,
    /// Shell command run after a run that exits with any other code.
    pub on_failure: Option<String>,
    /// How long a hook may run before it is killed (`"60s"`, `"5m"`).
    pub hook_timeout: Option<String>,
    /// `firn status` shows the last backup in red once it is older than this
    /// (`"36h"`, `"8d"`; `"off"`: never).
    pub stale_after: Option<String>,
    /// A cap on the set's estimated monthly storage charge: `"2 USD/month"`
    /// (read as any TOML value, so a bare number gets a message of its own).
    pub budget: Option<toml::Value>,
    /// A charge of one run (retrieval, early deletion) above which firn asks
    /// even with `--yes`: `"1 USD"`.
    pub confirm_above: Option<toml::Value>,
    /// Small files go into packs (default true); false: one archive per file.
    pub pack_small_files: Option<bool>,
    /// Files up to this size go into packs: `"1 MiB"` (the default) or bytes.
    pub pack_threshold: Option<toml::Value>,
    /// About how big a pack grows: `"64 MiB"` (remote stores' default; the
    /// embedded store's is 16 MiB).
    pub pack_size: Option<toml::Value>,
}

/// Flags that override the config file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub set: Option<String>,
    pub root: Option<PathBuf>,
    /// Paths the command names (restore, delete): with no --set or --root, the
    /// set whose root holds them is the one meant.
    pub paths: Vec<PathBuf>,
    pub patterns: Vec<String>,
    pub ignore_patterns: Vec<String>,
    pub follow_symlinks: bool,
    pub store_dir: Option<PathBuf>,
    pub catalog_db: Option<PathBuf>,
    pub retention: Option<String>,
    pub concurrency: Option<usize>,
}

/// Everything one command needs to work on one backup set.
#[derive(Debug, Clone)]
pub struct ResolvedSet {
    /// The set's name in the config, or the root's absolute path for an ad-hoc set.
    pub id: String,
    pub root: PathBuf,
    pub filter: Filter,
    pub follow_symlinks: bool,
    pub store: StoreSettings,
    /// The store the set used before (`previous_store`), for `firn migrate`.
    pub previous_store: Option<StoreSettings>,
    pub catalog: CatalogSettings,
    pub retention: Retention,
    pub concurrency: usize,
    /// Small files uploaded at once; None: what suits the store.
    pub requests_in_flight: Option<usize>,
    /// How fast bytes may go to the store, and come from it.
    pub upload_limit: Schedule,
    pub download_limit: Schedule,
    /// Prices for cost estimates: the config's, else Glacier's list prices for a
    /// vault and none for the embedded local store.
    pub prices: Prices,
    /// The cap on the set's estimated monthly storage charge (`budget`).
    pub budget: Option<Budget>,
    /// A charge of one run above which firn asks even with `--yes` (`confirm_above`).
    pub confirm_above: Option<f64>,
    /// The config file the settings came from (named in messages that say what
    /// to change), when there is one.
    pub config_file: Option<PathBuf>,
    /// Local state of this set: fingerprint cache, journal, lock.
    pub state_dir: PathBuf,
    /// Whether the set was named in the config (else ad hoc, by its root).
    pub configured: bool,
    /// What runs after each run (`on_success`, `on_failure`).
    pub hooks: Hooks,
    /// The age past which the last backup is shown as stale (None: never).
    pub stale_after: Option<Duration>,
    /// Whether small files go into packs, up to what size, and how big packs grow.
    pub packing: Packing,
}

impl ResolvedSet {
    /// `set photos (/srv/photos)`, or `/home/me/docs (ad-hoc set)`: the line a
    /// command starts with, so it is plain which set it works on.
    pub fn describe(&self) -> String {
        if self.configured {
            format!("set {} ({})", self.id, self.root.display())
        } else {
            format!("{} (ad-hoc set)", self.root.display())
        }
    }

    /// Where this set's runs are recorded, and its hooks.
    pub fn history(&self) -> SetRef {
        SetRef {
            id: self.id.clone(),
            state_dir: self.state_dir.clone(),
            hooks: self.hooks.clone(),
        }
    }

    /// Writes down this set's id and root in its state directory, so a later
    /// command run from inside the root (with no ROOT or --set) finds it.
    pub fn remember(&self) -> Result<()> {
        let path = self.state_dir.join(SET_FILE);
        let record = KnownSetFile {
            id: self.id.clone(),
            root: self.root.clone(),
        };
        let text = serde_json::to_string(&record)?;
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(());
        }
        std::fs::create_dir_all(&self.state_dir)
            .map_err(|e| usage(format!("cannot create {}: {e}", self.state_dir.display())))?;
        let temporary = self.state_dir.join(format!("{SET_FILE}.tmp"));
        std::fs::write(&temporary, &text)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
        Ok(())
    }
}

/// The file in a set's state directory that names its id and root.
const SET_FILE: &str = "set.json";

#[derive(serde::Serialize, Deserialize)]
struct KnownSetFile {
    id: String,
    root: PathBuf,
}

/// A set firn knows: configured, or ad hoc and used on this machine before.
struct KnownSet {
    name: Option<String>,
    root: PathBuf,
}

impl KnownSet {
    fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({})", self.root.display()),
            None => self.root.display().to_string(),
        }
    }
}

/// Configured sets and ad-hoc sets remembered in firn's data directory.
fn known_sets(config: &ConfigFile) -> Result<Vec<KnownSet>> {
    let mut known: Vec<KnownSet> = config
        .sets
        .iter()
        .filter_map(|(name, settings)| {
            let root = settings.root.as_deref()?;
            Some(KnownSet {
                name: Some(name.clone()),
                root: std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
            })
        })
        .collect();
    let sets = data_dir()?.join("sets");
    if let Ok(dirs) = std::fs::read_dir(&sets) {
        for dir in dirs.flatten() {
            let Ok(text) = std::fs::read_to_string(dir.path().join(SET_FILE)) else {
                continue;
            };
            let Ok(record) = serde_json::from_str::<KnownSetFile>(&text) else {
                continue;
            };
            // A configured set's own state names it by name, not by root.
            if config.sets.contains_key(&record.id) {
                continue;
            }
            if record.id == record.root.to_string_lossy() {
                known.push(KnownSet {
                    name: None,
                    root: record.root,
                });
            }
        }
    }
    Ok(known)
}

/// The set a command means when it names none: the one whose root holds the
/// paths it was given, else the one whose root holds the current directory
/// (the innermost), else the only configured set.
fn locate(
    known: &[KnownSet],
    overrides: &Overrides,
    config: &ConfigFile,
) -> Result<Option<(Option<String>, SetSettings)>> {
    let cwd = current_dir()?;
    let holding = |path: &Path| -> Option<&KnownSet> {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| cwd.join(path));
        known
            .iter()
            .filter(|k| path.starts_with(&k.root))
            .max_by_key(|k| k.root.components().count())
    };
    let as_found = |set: &KnownSet| match &set.name {
        Some(name) => (
            Some(name.clone()),
            config.sets.get(name).cloned().unwrap_or_default(),
        ),
        None => (
            None,
            SetSettings {
                root: Some(set.root.clone()),
                ..SetSettings::default()
            },
        ),
    };
    let mut by_path: Option<&KnownSet> = None;
    for path in &overrides.paths {
        let absolute = cwd.join(path);
        if let Some(set) = holding(&absolute) {
            if by_path.is_some_and(|other| other.root != set.root) {
                bail!(usage(format!(
                    "the paths given belong to different backup sets ({} and {}); name one set at a time",
                    by_path.map(KnownSet::describe).unwrap_or_default(),
                    set.describe()
                )));
            }
            by_path = Some(set);
        } else if path.is_absolute() {
            return Err(usage(format!(
                "{} is in no backup set firn knows (known sets: {}); name the set with --set NAME or --root DIR",
                path.display(),
                describe_all(known)
            )));
        }
    }
    if let Some(set) = by_path.or_else(|| holding(&cwd)) {
        return Ok(Some(as_found(set)));
    }
    if config.sets.len() == 1 {
        return Ok(config
            .sets
            .iter()
            .next()
            .map(|(n, s)| (Some(n.clone()), s.clone())));
    }
    Ok(None)
}

fn describe_all(known: &[KnownSet]) -> String {
    if known.is_empty() {
        return "none yet".into();
    }
    known
        .iter()
        .map(KnownSet::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(|e| {
        usage(format!(
            "cannot tell the current directory: {e}; run firn from a directory that exists"
        ))
    })
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "firn")
}

/// `FIRN_DATA_DIR`, else the platform data dir (e.g. `~/.local/share/firn`).
pub fn data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FIRN_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    project_dirs()
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| usage("cannot find a home directory for firn's data; set FIRN_DATA_DIR"))
}

/// `--config`, else `FIRN_CONFIG`, else the platform config dir (`~/.config/firn/config.toml`).
pub fn config_path(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = flag {
        return Some(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("FIRN_CONFIG") {
        return Some(PathBuf::from(path));
    }
    project_dirs().map(|d| d.config_dir().join("config.toml"))
}

pub fn load(path: Option<&Path>, explicit: bool) -> Result<ConfigFile> {
    let Some(path) = path else {
        return Ok(ConfigFile::default());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            let detail = e.message().to_string();
            usage(format!(
                "invalid config file {}: {detail}; fix it or point --config elsewhere",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(ConfigFile::default())
        }
        Err(e) => Err(usage(format!(
            "cannot read config file {}: {e}",
            path.display()
        ))),
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    match std::fs::canonicalize(path) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(usage(format!(
            "backup root {} does not exist; check the path or the set's `root` in the config",
            path.display()
        ))),
        Err(e) => Err(usage(format!(
            "cannot resolve backup root {}: {e}",
            path.display()
        ))),
    }
}

/// Whether the command reads the tree (backup, status) or only the catalog and
/// store (ls, restore: the tree may be gone, which is why one restores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootUse {
    MustExist,
    MayBeMissing,
}

pub fn resolve(overrides: &Overrides, root_use: RootUse) -> Result<ResolvedSet> {
    let absolute = |path: &Path| -> Result<PathBuf> {
        match (absolute(path), root_use) {
            (Ok(p), _) => Ok(p),
            (Err(_), RootUse::MayBeMissing) => std::path::absolute(path)
                .map_err(|e| usage(format!("invalid path {}: {e}", path.display()))),
            (Err(e), RootUse::MustExist) => Err(e),
        }
    };
    let explicit_config = overrides.config.is_some() || std::env::var_os("FIRN_CONFIG").is_some();
    let config_file = config_path(overrides.config.as_deref());
    let config = load(config_file.as_deref(), explicit_config)?;
    let where_config = config_file
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the config file".into());

    let (name, settings) = if let Some(name) = &overrides.set {
        let settings = config.sets.get(name).cloned().ok_or_else(|| {
            let known: Vec<_> = config.sets.keys().cloned().collect();
            usage(format!(
                "no backup set named {name:?} in {where_config} (known: {}); add a [sets.{name}] table or drop --set",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ))
        })?;
        (Some(name.clone()), settings)
    } else if let Some(root) = &overrides.root {
        let root = absolute(root)?;
        let matching = config.sets.iter().find(|(_, s)| {
            s.root
                .as_deref()
                .and_then(|r| std::fs::canonicalize(r).ok())
                .as_deref()
                == Some(&root)
        });
        match matching {
            Some((name, settings)) => (Some(name.clone()), settings.clone()),
            None => (
                None,
                SetSettings {
                    root: Some(root),
                    ..SetSettings::default()
                },
            ),
        }
    } else {
        let known = known_sets(&config)?;
        match locate(&known, overrides, &config)? {
            Some(found) => found,
            None if root_use == RootUse::MustExist => {
                // As the original batch script did: the directory firn is started in.
                let cwd = current_dir()?;
                (
                    None,
                    SetSettings {
                        root: Some(cwd),
                        ..SetSettings::default()
                    },
                )
            }
            None => {
                let what = match overrides.paths.first() {
                    Some(path) => format!("{} is", path.display()),
                    None => "the current directory is".to_string(),
                };
                bail!(usage(format!(
                    "{what} in no backup set firn knows (known sets: {}); name the set with --set NAME or --root DIR, or run the command from inside its root",
                    describe_all(&known)
                )))
            }
        }
    };

    // A configured set is known by its name from here on: a run that fails
    // below (a root not mounted, a bad setting) is still recorded in it.
    if let Some(name) = &name
        && let Ok(data) = data_dir()
    {
        crate::history::note_set(SetRef {
            id: name.clone(),
            state_dir: state_dir_of(&data, name),
            hooks: hooks_of(&settings, &config.defaults).0,
        });
    }

    let root_setting = overrides
        .root
        .clone()
        .or(settings.root.clone())
        .ok_or_else(|| {
            usage(format!(
                "backup set {:?} has no `root` in {where_config}",
                name.as_deref().unwrap_or("?")
            ))
        })?;
    let root = absolute(&root_setting)?;
    if root_use == RootUse::MustExist && !root.is_dir() {
        bail!(usage(format!(
            "backup root {} is not a directory; point firn at the directory to back up",
            root.display()
        )));
    }
    let id = name
        .clone()
        .unwrap_or_else(|| root.to_string_lossy().into_owned());

    let defaults = &config.defaults;
    let mut patterns = settings.patterns.clone();
    patterns.extend(overrides.patterns.iter().cloned());
    let mut ignore_patterns = defaults.ignore_patterns.clone();
    ignore_patterns.extend(settings.ignore_patterns.iter().cloned());
    ignore_patterns.extend(overrides.ignore_patterns.iter().cloned());
    let filter = Filter::new(&patterns, &ignore_patterns).map_err(|e| usage(e.to_string()))?;

    let data = data_dir()?;
    let store = match &overrides.store_dir {
        Some(dir) => StoreSettings::local_dir(dir),
        None => settings
            .store
            .clone()
            .or(defaults.store.clone())
            .unwrap_or(StoreSettings::Local(Default::default())),
    }
    .with_defaults(&data);
    let previous_store = settings
        .previous_store
        .clone()
        .map(|previous| previous.with_defaults(&data));
    let catalog = match &overrides.catalog_db {
        Some(path) => CatalogSettings::sqlite_file(path),
        None => settings
            .catalog
            .clone()
            .or(defaults.catalog.clone())
            .unwrap_or(CatalogSettings::Sqlite(Default::default())),
    }
    .with_defaults(&data);
    let retention_text = overrides
        .retention
        .clone()
        .or(settings.retention.clone())
        .or(defaults.retention.clone());
    let retention = match retention_text {
        Some(text) => text.parse::<Retention>().map_err(usage)?,
        None => Retention::default(),
    };
    let concurrency = overrides
        .concurrency
        .or(settings.concurrency)
        .or(defaults.concurrency)
        .unwrap_or(4);
    if concurrency == 0 {
        bail!(usage("concurrency must be at least 1"));
    }
    let requests_in_flight = settings.requests_in_flight.or(defaults.requests_in_flight);
    if requests_in_flight == Some(0) {
        bail!(usage(format!(
            "requests_in_flight must be at least 1; fix it in {where_config}"
        )));
    }
    // A command's --upload-limit / --download-limit replace these afterwards.
    let limit = |set: &Option<String>, default: &Option<String>, key: &str| -> Result<Schedule> {
        match set.as_ref().or(default.as_ref()) {
            Some(text) => Schedule::parse(text)
                .map_err(|e| usage(format!("invalid {key} {text:?} in {where_config}: {e}"))),
            None => Ok(Schedule::default()),
        }
    };
    let upload_limit = limit(
        &settings.upload_limit,
        &defaults.upload_limit,
        "upload_limit",
    )?;
    let download_limit = limit(
        &settings.download_limit,
        &defaults.download_limit,
        "download_limit",
    )?;
    if config.defaults.prices.is_some() {
        bail!(usage(format!(
            "prices go in a top-level [prices] table (or [sets.NAME.prices]), not under [defaults]; move them in {where_config}"
        )));
    }
    let configured_prices = match (&config.prices, &settings.prices) {
        (None, None) => None,
        (top, set) => {
            let top = top.clone().unwrap_or_default();
            let merged = match set {
                Some(set) => set.clone().over(&top),
                None => top,
            };
            Some(
                merged
                    .resolve_over(Prices::gaps_for(store.price_profile()))
                    .map_err(|e| usage(format!("{e}; fix it in {where_config}")))?,
            )
        }
    };
    let prices = Prices::for_profile(store.price_profile(), configured_prices);
    let table = |from_set: bool| match (&name, from_set) {
        (Some(name), true) => format!("[sets.{name}]"),
        _ => "[defaults]".to_string(),
    };
    let budget = match (&settings.budget, &defaults.budget) {
        (Some(value), _) => Some((value, table(true))),
        (None, Some(value)) => Some((value, table(false))),
        (None, None) => None,
    }
    .map(|(value, table)| {
        limit_setting(value, |text| Budget::parse(text, &prices)).map_err(|why| {
            usage(format!(
                "budget = {value} in {table} of {where_config}: {why}; write it like budget = \"2 {}/month\"",
                prices.currency
            ))
        })
    })
    .transpose()?;
    let confirm_above = match (&settings.confirm_above, &defaults.confirm_above) {
        (Some(value), _) => Some((value, table(true))),
        (None, Some(value)) => Some((value, table(false))),
        (None, None) => None,
    }
    .map(|(value, table)| {
        limit_setting(value, |text| parse_confirm_above(text, &prices)).map_err(|why| {
            usage(format!(
                "confirm_above = {value} in {table} of {where_config}: {why}; write it like confirm_above = \"1 {}\"",
                prices.currency
            ))
        })
    })
    .transpose()?;
    let follow_symlinks = overrides.follow_symlinks
        || settings
            .follow_symlinks
            .or(defaults.follow_symlinks)
            .unwrap_or(false);

    let state_dir = state_dir_of(&data, &id);
    let hooks = match hooks_of(&settings, defaults) {
        (hooks, None) => hooks,
        (_, Some(e)) => bail!(usage(format!("{e}; fix it in {where_config}"))),
    };
    let stale_after = match settings
        .stale_after
        .as_ref()
        .or(defaults.stale_after.as_ref())
    {
        None => Some(DEFAULT_STALE_AFTER),
        Some(text) if matches!(text.trim(), "off" | "never") => None,
        Some(text) => Some(
            parse_duration(text)
                .map_err(|e| usage(format!("stale_after: {e}; fix it in {where_config}")))?,
        ),
    };
    let packing = resolve_packing(&settings, defaults, &where_config)?;
    let set = ResolvedSet {
        packing,
        id,
        root,
        filter,
        follow_symlinks,
        store,
        previous_store,
        catalog,
        retention,
        concurrency,
        requests_in_flight,
        upload_limit,
        download_limit,
        prices,
        budget,
        confirm_above,
        config_file,
        state_dir,
        configured: name.is_some(),
        hooks,
        stale_after,
    };
    crate::history::note_set(set.history());
    Ok(set)
}

/// `pack_small_files`, `pack_threshold` and `pack_size` of a set over `[defaults]`.
fn resolve_packing(
    settings: &SetSettings,
    defaults: &SetSettings,
    where_config: &str,
) -> Result<Packing> {
    let mut packing = Packing::default();
    if let Some(enabled) = settings.pack_small_files.or(defaults.pack_small_files) {
        packing.enabled = enabled;
    }
    let size = |value: Option<&toml::Value>, key: &str| -> Result<Option<u64>> {
        let Some(value) = value else { return Ok(None) };
        let parsed = match value {
            toml::Value::Integer(n) if *n > 0 => Some(*n as u64),
            toml::Value::String(text) => parse_size(text),
            _ => None,
        };
        match parsed {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(usage(format!(
                "invalid {key} {value} in {where_config}: write a size such as \"1 MiB\" or \"512KiB\", or a number of bytes"
            ))),
        }
    };
    let threshold_value = settings
        .pack_threshold
        .as_ref()
        .or(defaults.pack_threshold.as_ref());
    if let Some(threshold) = size(threshold_value, "pack_threshold")? {
        packing.threshold = threshold;
    }
    packing.size = size(
        settings.pack_size.as_ref().or(defaults.pack_size.as_ref()),
        "pack_size",
    )?;
    if let Some(pack_size) = packing.size
        && pack_size < packing.threshold
    {
        bail!(usage(format!(
            "pack_size ({}) is smaller than pack_threshold ({}): a pack must hold at least one file; fix it in {where_config}",
            crate::fmt::human_bytes(pack_size),
            crate::fmt::human_bytes(packing.threshold)
        )));
    }
    Ok(packing)
}

/// `1 MiB`, `512KiB`, `64M`, `100` (bytes); K, M and G are binary.
fn parse_size(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    let bytes = (value * scale as f64).round();
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64 / 2.0).then_some(bytes as u64)
}

/// `firn status` calls the last backup stale past this, unless `stale_after`
/// says (a nightly run, with a day's slack).
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(36 * 3600);

/// The local state directory of set `id` under the data directory `data`.
fn state_dir_of(data: &Path, id: &str) -> PathBuf {
    use sha1::Digest;
    let set_hash = hex::encode(sha1::Sha1::digest(id.as_bytes()));
    data.join("sets").join(&set_hash[..16])
}

/// A set's hooks: its own settings over `[defaults]` (an empty command is
/// none), and what is wrong with its `hook_timeout` (then the default one).
fn hooks_of(settings: &SetSettings, defaults: &SetSettings) -> (Hooks, Option<String>) {
    let command = |own: &Option<String>, default: &Option<String>| {
        own.as_ref()
            .or(default.as_ref())
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
    };
    let timeout = match settings
        .hook_timeout
        .as_ref()
        .or(defaults.hook_timeout.as_ref())
    {
        Some(text) => match parse_duration(text) {
            Ok(timeout) => (timeout, None),
            Err(e) => (
                crate::history::DEFAULT_HOOK_TIMEOUT,
                Some(format!("hook_timeout: {e}")),
            ),
        },
        None => (crate::history::DEFAULT_HOOK_TIMEOUT, None),
    };
    let (timeout, error) = timeout;
    let hooks = Hooks {
        on_success: command(&settings.on_success, &defaults.on_success),
        on_failure: command(&settings.on_failure, &defaults.on_failure),
        timeout,
    };
    (hooks, error)
}

/// A duration as the config writes it: a number and a unit, `s`, `m` (or
/// `min`), `h` or `d`: `"90s"`, `"30m"`, `"36h"`, `"8d"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_secs = match unit.trim() {
        "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if unit_secs > 0 && n > 0 => Ok(Duration::from_secs(n.saturating_mul(unit_secs))),
        _ => Err(format!(
            "{text:?} is not a duration: write a number and a unit, like \"90s\", \"30m\", \"36h\" or \"8d\""
        )),
    }
}

/// A spending limit's value: a string `parse` reads (a number alone names no
/// currency nor period, so it is refused with the reason).
fn limit_setting<T>(
    value: &toml::Value,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, String> {
    match value {
        toml::Value::String(text) => parse(text),
        _ => Err("it must be a string with an amount and a currency".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_config_writes_them() {
        for (text, secs) in [
            ("90s", 90),
            ("30m", 1800),
            ("30 min", 1800),
            ("36h", 36 * 3600),
            ("8d", 8 * 86_400),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for bad in ["", "36", "h", "0h", "-1h", "1.5h", "36 hrs"] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(e.contains("not a duration") && e.contains("36h"), "{e}");
        }
    }

    #[test]
    fn a_sets_hooks_go_over_the_defaults_and_an_empty_one_is_none() {
        let defaults = SetSettings {
            on_success: Some("echo ok".into()),
            on_failure: Some("mail me".into()),
            hook_timeout: Some("2m".into()),
            ..SetSettings::default()
        };
        let own = SetSettings {
            on_failure: Some("ntfy".into()),
            on_success: Some(" ".into()),
            ..SetSettings::default()
        };
        let (hooks, error) = hooks_of(&own, &defaults);
        assert_eq!(error, None);
        assert_eq!(hooks.on_success, None);
        assert_eq!(hooks.on_failure.as_deref(), Some("ntfy"));
        assert_eq!(hooks.timeout, Duration::from_secs(120));
        let bad = SetSettings {
            hook_timeout: Some("soon".into()),
            ..SetSettings::default()
        };
        // A bad timeout is an error, and the commands still run (with the
        // default timeout) after the run it fails.
        let (hooks, error) = hooks_of(&bad, &defaults);
        assert!(error.unwrap().contains("hook_timeout"));
        assert_eq!(hooks.on_failure.as_deref(), Some("mail me"));
        assert_eq!(hooks.timeout, crate::history::DEFAULT_HOOK_TIMEOUT);
    }
}
