//! The one backend factory: a set's store and catalog settings (plain data read
//! from the config) become a [`Store`] and a [`Catalog`], or a provisioning plan
//! for `firn init`. Adding a backend means a variant here and the backend's own
//! file under `store/` or `catalog/`; nothing else names a concrete backend.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use serde::Deserialize;

use crate::catalog::Catalog;
use crate::catalog::dynamodb::{self, DynamoSettings};
use crate::catalog::sqlite::{self, SqliteSettings};
use crate::cost::PriceProfile;
use crate::limit::Limits;
use crate::provision::Readiness;
use crate::store::Store;
use crate::store::glacier::{self, GlacierSettings};
use crate::store::local::{self, LocalSettings};
use crate::store::s3::{self, S3Settings};

/// Where a set's archives go: `store = { kind = "…", … }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoreSettings {
    /// A directory of archive files (default: `<data dir>/store`).
    Local(LocalSettings),
    /// An Amazon Glacier vault (for accounts that had vaults before 2025-12-15).
    Glacier(GlacierSettings),
    /// An S3 bucket with a storage class (DEEP_ARCHIVE by default).
    S3(S3Settings),
}

/// Where a set's catalog lives: `catalog = { kind = "…", … }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CatalogSettings {
    /// An SQLite file (default: `<data dir>/catalog.sqlite`).
    Sqlite(SqliteSettings),
    /// An Amazon DynamoDB table.
    Dynamodb(DynamoSettings),
}

impl StoreSettings {
    /// The embedded store in `dir`.
    pub fn local_dir(dir: &Path) -> StoreSettings {
        StoreSettings::Local(LocalSettings {
            path: Some(dir.to_path_buf()),
            retrieval_delay_secs: None,
        })
    }

    /// Fills what defaults to a place in firn's data directory.
    pub fn with_defaults(self, data_dir: &Path) -> StoreSettings {
        match self {
            StoreSettings::Local(mut settings) => {
                settings.path.get_or_insert_with(|| data_dir.join("store"));
                StoreSettings::Local(settings)
            }
            other => other,
        }
    }

    /// The store a target names, as firn prints and records them:
    /// `local:/dir` (or a bare directory), `glacier:REGION/VAULT`,
    /// `s3:REGION/BUCKET[/PREFIX]`. Where one of `known` (the set's own settings)
    /// names the same vault or bucket, its settings (endpoint, profile…) are used.
    pub fn from_target(text: &str, known: &[&StoreSettings]) -> Result<StoreSettings> {
        let bad = || {
            crate::model::usage(format!(
                "cannot tell which store {text:?} is: name it as local:/DIR, glacier:REGION/VAULT or s3:REGION/BUCKET[/PREFIX] (as `firn status` prints it)"
            ))
        };
        let parsed = match text.split_once(':') {
            Some(("glacier", rest)) => {
                let (region, vault) = rest.split_once('/').ok_or_else(bad)?;
                if region.is_empty() || vault.is_empty() || vault.contains('/') {
                    return Err(bad());
                }
                StoreSettings::Glacier(GlacierSettings {
                    vault: vault.into(),
                    region: Some(region.into()),
                    ..GlacierSettings::default()
                })
            }
            Some(("s3", rest)) => {
                let mut pieces = rest.splitn(3, '/');
                let (Some(region), Some(bucket)) = (pieces.next(), pieces.next()) else {
                    return Err(bad());
                };
                if region.is_empty() || bucket.is_empty() {
                    return Err(bad());
                }
                // The target names the prefix exactly: none is the bucket's top.
                let prefix = pieces
                    .next()
                    .map(|p| p.trim_end_matches('/'))
                    .filter(|p| !p.is_empty())
                    .map(|p| format!("{p}/"));
                StoreSettings::S3(S3Settings {
                    bucket: bucket.into(),
                    prefix: Some(prefix.unwrap_or_default()),
                    region: Some(region.into()),
                    ..S3Settings::default()
                })
            }
            Some(("local", dir)) if !dir.is_empty() => StoreSettings::local_dir(Path::new(dir)),
            _ if text.starts_with('/') || text.starts_with('.') => {
                StoreSettings::local_dir(Path::new(text))
            }
            _ => return Err(bad()),
        };
        let same = |a: &StoreSettings, b: &StoreSettings| match (a, b) {
            (StoreSettings::Glacier(a), StoreSettings::Glacier(b)) => a.vault == b.vault,
            (StoreSettings::S3(a), StoreSettings::S3(b)) => a.bucket == b.bucket,
            (StoreSettings::Local(a), StoreSettings::Local(b)) => a.path == b.path,
            _ => false,
        };
        Ok(match known.iter().find(|k| same(k, &parsed)) {
            // The known bucket's settings (endpoint, profile…), under the prefix
            // the target names.
            Some(StoreSettings::S3(known)) => {
                let StoreSettings::S3(parsed) = parsed else {
                    return Err(bad());
                };
                StoreSettings::S3(S3Settings {
                    prefix: parsed.prefix,
                    ..known.clone()
                })
            }
            Some(known) => (*known).clone(),
            None => parsed,
        })
    }

    /// Refuses an embedded store whose directory does not exist, before
    /// anything opens (and so creates) it: the store a set used before must be
    /// there already (remote stores are checked when opened).
    pub fn must_exist(&self) -> Result<()> {
        if let StoreSettings::Local(settings) = self {
            let dir = local_dir(settings);
            if !dir.join("archives").is_dir() {
                return Err(crate::model::usage(format!(
                    "{} holds no embedded store (no archives/ directory in it); name the directory of the store the set used before",
                    dir.display()
                )));
            }
        }
        Ok(())
    }

    /// The embedded store, which needs no account and costs nothing.
    pub fn is_embedded(&self) -> bool {
        matches!(self, StoreSettings::Local(_))
    }

    /// Which default prices apply when the config names none.
    pub fn price_profile(&self) -> PriceProfile {
        match self {
            StoreSettings::Local(_) => PriceProfile::Free,
            StoreSettings::Glacier(_) => PriceProfile::GlacierVault,
            StoreSettings::S3(settings) => PriceProfile::S3(settings.class()),
        }
    }
}

impl CatalogSettings {
    pub fn sqlite_file(path: &Path) -> CatalogSettings {
        CatalogSettings::Sqlite(SqliteSettings {
            path: Some(path.to_path_buf()),
        })
    }

    pub fn with_defaults(self, data_dir: &Path) -> CatalogSettings {
        match self {
            CatalogSettings::Sqlite(mut settings) => {
                settings
                    .path
                    .get_or_insert_with(|| data_dir.join("catalog.sqlite"));
                CatalogSettings::Sqlite(settings)
            }
            other => other,
        }
    }
}

/// Opens the store and catalog a set names, and checks both answer (a missing
/// vault or table, bad credentials or an unreachable endpoint is one clear line
/// now rather than a failure per file later).
pub async fn open(
    store: &StoreSettings,
    catalog: &CatalogSettings,
    set_id: &str,
    limits: &Limits,
) -> Result<(Arc<dyn Store>, Arc<dyn Catalog>)> {
    let catalog = open_catalog(catalog, set_id).await?;
    let store = open_store(store, set_id, catalog.as_ref(), limits).await?;
    catalog.check().await?;
    Ok((store, catalog))
}

async fn open_catalog(catalog: &CatalogSettings, set_id: &str) -> Result<Arc<dyn Catalog>> {
    Ok(match catalog {
        CatalogSettings::Sqlite(settings) => {
            Arc::new(sqlite::SqliteCatalog::open(&sqlite_path(settings), set_id)?)
        }
        CatalogSettings::Dynamodb(settings) => {
            Arc::new(dynamodb::DynamoCatalog::connect(settings, set_id).await?)
        }
    })
}

/// Opens one store of the set `set_id` (whose catalog is `catalog`) and checks
/// it answers (also the store a migration copies from). An S3 store whose
/// settings name no prefix is given the set's own (see `settle_s3_prefix`).
/// Its transfers go under `limits`, the run's bandwidth limits (one pair of
/// limiters per run, shared by every store it opens).
pub async fn open_store(
    settings: &StoreSettings,
    set_id: &str,
    catalog: &dyn Catalog,
    limits: &Limits,
) -> Result<Arc<dyn Store>> {
    let limits = limits.clone();
    let store: Arc<dyn Store> = match settings {
        StoreSettings::Local(settings) => Arc::new(
            local::LocalStore::open(
                &local_dir(settings),
                settings.retrieval_delay_secs.unwrap_or(0),
            )?
            .with_limits(limits),
        ),
        StoreSettings::Glacier(settings) => Arc::new(
            glacier::GlacierStore::connect(settings)
                .await?
                .with_limits(limits),
        ),
        StoreSettings::S3(settings) => {
            let mut store = s3::S3Store::connect(settings).await?.with_limits(limits);
            if settings.prefix.is_none() {
                store.check().await?;
                settle_s3_prefix(&mut store, set_id, Some(catalog)).await?;
            }
            Arc::new(store)
        }
    };
    store.check().await?;
    Ok(store)
}

/// Where the objects of a set whose S3 settings name no prefix go. Sets get
/// their own prefix (the set's name, see [`s3::set_prefix`]) so several sets
/// can share a bucket; a set that kept its objects at the top of the bucket
/// before sets had prefixes stays there: its catalog names the bucket without a
/// prefix, or (the catalog lost) the top of the bucket holds its catalog
/// snapshots.
async fn settle_s3_prefix(
    store: &mut s3::S3Store,
    set_id: &str,
    catalog: Option<&dyn Catalog>,
) -> Result<()> {
    store.use_prefix("");
    let top = store.target();
    store.use_prefix(&s3::set_prefix(set_id));
    let own = store.target();
    let (names_top, names_own) = match catalog {
        Some(catalog) => (
            catalog.names_target(&top).await?,
            catalog.names_target(&own).await?,
        ),
        None => (false, false),
    };
    if names_top || (!names_own && store.has_top_level_snapshots_of(set_id).await?) {
        store.use_prefix("");
    }
    Ok(())
}

/// What `firn init` may do beyond creating what is missing.
#[derive(Debug, Clone, Copy)]
pub struct ProvisionOptions {
    /// Turn on a DynamoDB catalog's point-in-time recovery.
    pub point_in_time_recovery: bool,
}

/// What `firn init` would create for these settings, and what already exists.
/// An S3 prefix another set's objects are under is refused (sets sharing a
/// bucket each keep to their own prefix).
pub async fn provisioning(
    store: &StoreSettings,
    catalog: &CatalogSettings,
    set_id: &str,
    options: ProvisionOptions,
) -> Result<Provisioning> {
    let mut notes = Vec::new();
    let store = match store {
        StoreSettings::Local(settings) => local::readiness(&local_dir(settings)),
        StoreSettings::Glacier(settings) => glacier::readiness(settings).await?,
        StoreSettings::S3(settings) => {
            let readiness = s3::readiness(settings).await?;
            if let Readiness::Exists(_) = readiness {
                notes.push(check_s3_prefix(settings, catalog, set_id).await?);
            } else {
                let prefix = settings
                    .prefix
                    .clone()
                    .unwrap_or_else(|| s3::set_prefix(set_id));
                notes.push(format!(
                    "objects of set {set_id} go under s3://{}/{prefix}",
                    settings.bucket
                ));
            }
            readiness
        }
    };
    let catalog = match catalog {
        CatalogSettings::Sqlite(settings) => vec![sqlite::readiness(&sqlite_path(settings))],
        CatalogSettings::Dynamodb(settings) => {
            dynamodb::readiness(settings, options.point_in_time_recovery).await?
        }
    };
    let mut plan = Provisioning {
        notes,
        ..Provisioning::default()
    };
    for readiness in std::iter::once(store).chain(catalog) {
        match readiness {
            Readiness::Exists(what) => plan.existing.push(what),
            Readiness::Missing { plan: step, create } => plan.steps.push((step, create)),
        }
    }
    Ok(plan)
}

/// Where the objects of `set_id` go in an existing bucket, or a usage error when
/// another set's objects are under that prefix already.
async fn check_s3_prefix(
    settings: &S3Settings,
    catalog: &CatalogSettings,
    set_id: &str,
) -> Result<String> {
    let mut store = s3::S3Store::connect(settings).await?;
    // A catalog not created yet (a DynamoDB table init is about to make) names
    // nothing.
    let catalog = match open_catalog(catalog, set_id).await {
        Ok(catalog) if catalog.check().await.is_ok() => Some(catalog),
        _ => None,
    };
    if settings.prefix.is_none() {
        settle_s3_prefix(&mut store, set_id, catalog.as_deref()).await?;
    }
    let location = store.location();
    let at_top = location.ends_with(&format!("{}/", settings.bucket));
    let (owners, unnamed) = store.owners_under_prefix(1000).await?;
    let mine = crate::description::owner_of(set_id);
    let others: Vec<String> = owners
        .iter()
        .filter(|(owner, _)| **owner != mine)
        .map(|(owner, n)| format!("{n} of set {owner}"))
        .collect();
    // The top of a bucket is where every set kept its objects before sets had
    // prefixes: sharing it is what those sets do, safely (each archive names
    // its set).
    if !others.is_empty() && !at_top {
        return Err(crate::model::usage(format!(
            "{location} already holds objects of another set ({}); give set {set_id} its own prefix: `prefix = \"{}\"` in its store settings",
            others.join(", "),
            s3::set_prefix(&format!("{set_id}-{}", &mine[..4]))
        )));
    }
    // The set's own objects, which its catalog does not know: the set on a new
    // machine (rebuild first), or another set of the same name (which would
    // take them for its orphans).
    let known = match &catalog {
        Some(catalog) => catalog.names_target(&store.target()).await?,
        None => false,
    };
    if owners.get(&mine).is_some_and(|n| *n > 0) && !known && !at_top {
        return Err(crate::model::usage(format!(
            "{location} already holds objects of a set named {set_id} that its catalog does not know: on a new machine run `firn catalog rebuild --set {set_id}` first; if it is another set, give this one another name"
        )));
    }
    let mut note = format!("objects of set {set_id} go under {location}");
    if unnamed > 0 && !at_top {
        note.push_str(&format!(
            " (it holds {} written before objects named their set: if another set wrote them, give this set another prefix)",
            crate::fmt::plural(unnamed, "object")
        ));
    }
    Ok(note)
}

/// The plan `firn init` shows, then runs once accepted.
#[derive(Default)]
pub struct Provisioning {
    /// Resources that exist already, described.
    pub existing: Vec<String>,
    /// What else a person should know first (where a set's objects go).
    pub notes: Vec<String>,
    steps: Vec<(
        String,
        futures_util::future::BoxFuture<'static, Result<String>>,
    )>,
}

impl Provisioning {
    /// What will be created, a line per resource.
    pub fn steps(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|(step, _)| step.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Creates everything in order; returns a line per resource created.
    pub async fn apply(self) -> Result<Vec<String>> {
        let mut created = Vec::new();
        for (_, create) in self.steps {
            created.push(create.await?);
        }
        Ok(created)
    }
}

fn local_dir(settings: &LocalSettings) -> std::path::PathBuf {
    // with_defaults always fills it; a bare relative default keeps a bug visible.
    settings.path.clone().unwrap_or_else(|| "store".into())
}

fn sqlite_path(settings: &SqliteSettings) -> std::path::PathBuf {
    settings
        .path
        .clone()
        .unwrap_or_else(|| "catalog.sqlite".into())
}
