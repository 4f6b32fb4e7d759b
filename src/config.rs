//! Configuration: a TOML file in the platform config dir naming backup sets, plus
//! flags that override it. Resolves everything one command needs for one set.
//!
//! ```toml
//! [defaults]
//! retention = "after-days 90"   # keep | delete | after-days N
//! concurrency = 4
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::aws::AwsSettings;
use crate::catalog::dynamodb::DynamoSettings;
use crate::cost::{PriceSettings, Prices};
use crate::engine::Retention;
use crate::scan::Filter;
use crate::store::glacier::GlacierSettings;

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
    pub store: Option<StoreConfig>,
    pub catalog: Option<CatalogConfig>,
    pub retention: Option<String>,
    pub concurrency: Option<usize>,
    /// This set's prices, field by field over the top-level `[prices]`.
    pub prices: Option<PriceSettings>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// A directory of archive files (default: `<data dir>/store`).
    Local {
        path: Option<PathBuf>,
        retrieval_delay_secs: Option<u64>,
    },
    /// An Amazon Glacier vault.
    Glacier {
        vault: String,
        region: Option<String>,
        profile: Option<String>,
        endpoint_url: Option<String>,
        single_upload_max: Option<u64>,
        part_memory_budget: Option<u64>,
        part_concurrency: Option<usize>,
        abandoned_after_hours: Option<u64>,
    },
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum CatalogConfig {
    /// An SQLite file (default: `<data dir>/catalog.sqlite`).
    Sqlite { path: Option<PathBuf> },
    /// An Amazon DynamoDB table.
    Dynamodb {
        table: String,
        region: Option<String>,
        profile: Option<String>,
        endpoint_url: Option<String>,
    },
}

/// The store a set uses, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    Local {
        dir: PathBuf,
        retrieval_delay_secs: u64,
    },
    Glacier(GlacierSettings),
}

/// The catalog a set uses, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogChoice {
    Sqlite(PathBuf),
    Dynamodb(DynamoSettings),
}

/// Flags that override the config file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub set: Option<String>,
    pub root: Option<PathBuf>,
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
    pub store: StoreChoice,
    pub catalog: CatalogChoice,
    pub retention: Retention,
    pub concurrency: usize,
    /// Prices for cost estimates: the config's, else Glacier's list prices for a
    /// vault and none for the embedded local store.
    pub prices: Prices,
    /// Local state of this set: fingerprint cache, journal, lock.
    pub state_dir: PathBuf,
}

/// A problem with what the user asked for; exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
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
        match config.sets.len() {
            1 => config
                .sets
                .iter()
                .next()
                .map(|(n, s)| (Some(n.clone()), s.clone()))
                .unwrap_or_default(),
            0 => bail!(usage(format!(
                "name a directory to back up (firn backup ROOT) or configure a set in {where_config}"
            ))),
            _ => bail!(usage(format!(
                "several backup sets are configured ({}); choose one with --set NAME",
                config.sets.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    };

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
    let store = match (
        &overrides.store_dir,
        settings.store.clone().or(defaults.store.clone()),
    ) {
        (Some(dir), _) => StoreChoice::Local {
            dir: dir.clone(),
            retrieval_delay_secs: 0,
        },
        (None, None) => StoreChoice::Local {
            dir: data.join("store"),
            retrieval_delay_secs: 0,
        },
        (
            None,
            Some(StoreConfig::Local {
                path,
                retrieval_delay_secs,
            }),
        ) => StoreChoice::Local {
            dir: path.unwrap_or_else(|| data.join("store")),
            retrieval_delay_secs: retrieval_delay_secs.unwrap_or(0),
        },
        (
            None,
            Some(StoreConfig::Glacier {
                vault,
                region,
                profile,
                endpoint_url,
                single_upload_max,
                part_memory_budget,
                part_concurrency,
                abandoned_after_hours,
            }),
        ) => StoreChoice::Glacier(GlacierSettings {
            vault,
            aws: AwsSettings {
                region,
                profile,
                endpoint_url,
            },
            single_upload_max,
            part_memory_budget,
            part_concurrency,
            abandoned_after_hours,
        }),
    };
    let catalog = match (
        &overrides.catalog_db,
        settings.catalog.clone().or(defaults.catalog.clone()),
    ) {
        (Some(path), _) => CatalogChoice::Sqlite(path.clone()),
        (None, None) => CatalogChoice::Sqlite(data.join("catalog.sqlite")),
        (None, Some(CatalogConfig::Sqlite { path })) => {
            CatalogChoice::Sqlite(path.unwrap_or_else(|| data.join("catalog.sqlite")))
        }
        (
            None,
            Some(CatalogConfig::Dynamodb {
                table,
                region,
                profile,
                endpoint_url,
            }),
        ) => CatalogChoice::Dynamodb(DynamoSettings {
            table,
            aws: AwsSettings {
                region,
                profile,
                endpoint_url,
            },
        }),
    };
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
                    .resolve()
                    .map_err(|e| usage(format!("{e}; fix it in {where_config}")))?,
            )
        }
    };
    let prices = Prices::for_store(&store, configured_prices);
    let follow_symlinks = overrides.follow_symlinks
        || settings
            .follow_symlinks
            .or(defaults.follow_symlinks)
            .unwrap_or(false);

    use sha1::Digest;
    let set_hash = hex::encode(sha1::Sha1::digest(id.as_bytes()));
    let state_dir = data.join("sets").join(&set_hash[..16]);
    Ok(ResolvedSet {
        id,
        root,
        filter,
        follow_symlinks,
        store,
        catalog,
        retention,
        concurrency,
        prices,
        state_dir,
    })
}
