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
                StoreSettings::S3(S3Settings {
                    bucket: bucket.into(),
                    prefix: pieces
                        .next()
                        .map(|p| format!("{}/", p.trim_end_matches('/'))),
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
            (StoreSettings::S3(a), StoreSettings::S3(b)) => {
                a.bucket == b.bucket
                    && a.prefix.as_deref().unwrap_or("").trim_end_matches('/')
                        == b.prefix.as_deref().unwrap_or("").trim_end_matches('/')
            }
            (StoreSettings::Local(a), StoreSettings::Local(b)) => a.path == b.path,
            _ => false,
        };
        Ok(known
            .iter()
            .find(|k| same(k, &parsed))
            .map(|k| (*k).clone())
            .unwrap_or(parsed))
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
) -> Result<(Arc<dyn Store>, Arc<dyn Catalog>)> {
    let catalog: Arc<dyn Catalog> = match catalog {
        CatalogSettings::Sqlite(settings) => {
            Arc::new(sqlite::SqliteCatalog::open(&sqlite_path(settings), set_id)?)
        }
        CatalogSettings::Dynamodb(settings) => {
            Arc::new(dynamodb::DynamoCatalog::connect(settings, set_id).await?)
        }
    };
    let store = open_store(store).await?;
    catalog.check().await?;
    Ok((store, catalog))
}

/// Opens one store and checks it answers (also the store a migration copies
/// from).
pub async fn open_store(settings: &StoreSettings) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match settings {
        StoreSettings::Local(settings) => Arc::new(local::LocalStore::open(
            &local_dir(settings),
            settings.retrieval_delay_secs.unwrap_or(0),
        )?),
        StoreSettings::Glacier(settings) => {
            Arc::new(glacier::GlacierStore::connect(settings).await?)
        }
        StoreSettings::S3(settings) => Arc::new(s3::S3Store::connect(settings).await?),
    };
    store.check().await?;
    Ok(store)
}

/// What `firn init` may do beyond creating what is missing.
#[derive(Debug, Clone, Copy)]
pub struct ProvisionOptions {
    /// Turn on a DynamoDB catalog's point-in-time recovery.
    pub point_in_time_recovery: bool,
}

/// What `firn init` would create for these settings, and what already exists.
pub async fn provisioning(
    store: &StoreSettings,
    catalog: &CatalogSettings,
    options: ProvisionOptions,
) -> Result<Provisioning> {
    let store = match store {
        StoreSettings::Local(settings) => local::readiness(&local_dir(settings)),
        StoreSettings::Glacier(settings) => glacier::readiness(settings).await?,
        StoreSettings::S3(settings) => s3::readiness(settings).await?,
    };
    let catalog = match catalog {
        CatalogSettings::Sqlite(settings) => vec![sqlite::readiness(&sqlite_path(settings))],
        CatalogSettings::Dynamodb(settings) => {
            dynamodb::readiness(settings, options.point_in_time_recovery).await?
        }
    };
    let mut plan = Provisioning::default();
    for readiness in std::iter::once(store).chain(catalog) {
        match readiness {
            Readiness::Exists(what) => plan.existing.push(what),
            Readiness::Missing { plan: step, create } => plan.steps.push((step, create)),
        }
    }
    Ok(plan)
}

/// The plan `firn init` shows, then runs once accepted.
#[derive(Default)]
pub struct Provisioning {
    /// Resources that exist already, described.
    pub existing: Vec<String>,
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
