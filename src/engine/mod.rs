//! The backup engine: background tasks that move bytes between the tree, the store
//! and the catalog, reporting typed progress events on one channel. No terminal code.
//!
//! Jobs own their whole run (invariant 13 of the design): a front end opens the
//! set with [`Engine::open_to_work`] (the set's lock, held while the engine
//! lives, and the recovery of what an interrupted run left), builds a request,
//! asks the person what needs asking, and calls one job per intent — backup
//! ([`Engine::back_up_tree`], or [`Engine::backup`] of a plan), restore, delete,
//! prune, migrate, inventory, catalog rebuild, claim, release, snapshot. Each
//! job reports typed [`Event`]s under engine-assigned task ids while it runs,
//! and returns its report with what storing the catalog's snapshot after it did
//! ([`Done`]). Looking at a set (status, ls, cost, jobs) opens it with
//! [`Engine::open`], without the lock.
//!
//! One module per workflow: backup (plan and uploads; the order every upload
//! follows is in its docs), restore, delete, migrate, inventory, claim,
//! snapshot (and rebuild), recover; `owners` reads whose each stored archive is.

mod backup;
mod claim;
mod commit;
mod delete;
mod inventory;
mod migrate;
mod owners;
mod pack;
mod pack_index;
mod planned;
mod progress;
mod recover;
mod restore;
mod retention;
mod retrieval;
mod select;
mod snapshot;
mod snapshot_packs;
mod summaries;
mod tracked;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use serde::Serialize;

pub use backup::{
    BackupSummary, Candidate, Expected, FailedFile, FileProblem, Plan, Take, TreeBackup, UploadItem,
};
pub use claim::{ClaimOutcome, ClaimReport, ReleaseReport};
pub use delete::{
    DeletionItem, DeletionOutcome, DeletionPlan, DeletionReport, FailedDeletion,
    InterruptedDeletions, Outcome, PackFate, Prunable,
};
pub use inventory::{
    DescribedFile, Disputed, INVENTORY_REUSE_SECS, InventoryFetch, InventoryOutcome,
    InventoryRequest, InventoryRun, Mismatch, Missing, Orphan, OrphanAction, OrphanOutcome,
    OrphanPack, OrphanResult, OtherSet, PartlyRecordedPack, RebuildReport, Reconciliation, Skipped,
    SnapshotUsed,
};
pub use migrate::{
    MigrateOptions, MigrationPlan, MigrationReport, MigrationSource, MigrationTask, TierQuote,
};
pub use pack::PACK_FILES_MAX;
pub use progress::{
    Cancelled, Change, Event, Progress, Task, TaskId, TaskIds, TaskState, TaskTable, Totals,
};
pub use recover::RecoveryReport;
pub use restore::{
    ExistsWithOtherContent, RestoreOptions, RestoreOutcome, RestoreReport, RestoreResult,
    RestoreTally, ResumableRetrievals, RetrievalJobView, RetrievalQuote, TierEstimate,
    partial_name,
};
pub use retention::RetentionReport;
pub use retrieval::JOB_OUTPUT_KEPT_SECS;
pub use select::{Selection, is_under};
pub use snapshot::{
    AfterRun, Done, RebuildOptions, RebuildOutcome, SNAPSHOTS_KEPT, SnapshotReport,
};

use crate::catalog::Catalog;
pub use crate::catalog::{ArchiveRecord, ArchiveState};
use crate::config::ResolvedSet;
use crate::cost::Prices;
use crate::limit::Limits;
use crate::model::Retention;
use crate::model::Tier;
use crate::scan::ScanOptions;
pub use crate::state::CachedHash;
use crate::state::LocalState;
use crate::status::{Rollup, StatusReport};
use crate::store::Store;
/// Everything the engine works with for one backup set. Front ends reach the
/// store, the catalog and the local state only through its operations.
pub struct Engine {
    root: PathBuf,
    scan: ScanOptions,
    set_id: String,
    /// The set's short id, as its archives name it (invariant 12 in the crate docs).
    owner: String,
    state: Arc<LocalState>,
    catalog: Arc<tracked::Tracked>,
    store: Arc<dyn Store>,
    host: String,
    retention: Retention,
    concurrency: usize,
    /// Small uploads in flight at most (large ones: `concurrency`).
    requests_in_flight: usize,
    prices: Prices,
    /// The cap on the set's estimated monthly storage charge a backup keeps under.
    budget: Option<crate::budget::Budget>,
    task_ids: TaskIds,
    /// The set's lock, held while this engine lives, when it was opened for a
    /// run that changes the set ([`Engine::open_to_work`]).
    _lock: Option<crate::lock::SetLock>,
    /// Archives the last inventory found another set naming too (archive id →
    /// that set), never deleted: read from local state when the first deletion
    /// asks, replaced by each inventory.
    disputed: std::sync::Mutex<Option<Arc<std::collections::HashMap<String, String>>>>,
    /// The run's bandwidth limits: the stores it opens send and read under them.
    limits: Limits,
    /// Whether small files go into packs, and how (see `pack`).
    packing: crate::model::Packing,
    /// How many versions this set records in each pack, read once when a
    /// packed version is first deleted (see `delete`).
    pack_versions: tokio::sync::Mutex<Option<std::collections::HashMap<String, u64>>>,
    /// The store's billed requests when the last job was noted in the run's
    /// history (see `summaries`).
    requests_noted: std::sync::Mutex<crate::store::RequestCount>,
}

/// What an engine is made of, for [`Engine::from_parts`] (tests put a store with
/// injected faults here; everything else goes through [`Engine::open`]).
pub struct Parts {
    pub root: PathBuf,
    pub set_id: String,
    pub state: Arc<LocalState>,
    pub catalog: Arc<dyn Catalog>,
    pub store: Arc<dyn Store>,
    pub host: String,
    pub retention: Retention,
    pub concurrency: usize,
    /// Small uploads in flight at most; None: what suits the store.
    pub requests_in_flight: Option<usize>,
    pub prices: Prices,
}

/// A file's archived versions and what the local cache knows of its content
/// (the TUI's details pane).
#[derive(Debug, Clone)]
pub struct FileDetails {
    /// Oldest first.
    pub versions: Vec<ArchiveRecord>,
    pub cached: Option<CachedHash>,
}

/// Refuses a tier `store` does not offer, before anything is requested from it.
fn offers_tier(store: &dyn Store, tier: Tier) -> Result<()> {
    let offered = store.tiers();
    if offered.contains(&tier) {
        return Ok(());
    }
    let names: Vec<&str> = offered.iter().map(|t| t.as_str()).collect();
    Err(crate::model::usage(format!(
        "the {tier} tier does not exist for {}: choose --tier {}",
        store.target(),
        names.join(" or ")
    )))
}

/// A set opened for a run that changes it ([`Engine::open_to_work`]).
pub struct Opened {
    pub engine: Arc<Engine>,
    /// What finishing the interrupted run found and did.
    pub recovery: RecoveryReport,
}

/// What a front end shows about the set it opened.
#[derive(Debug, Clone, Serialize)]
pub struct SetInfo {
    pub id: String,
    pub root: PathBuf,
    /// Where archives go, e.g. `local:/mnt/disk/store` or `glacier:us-east-1/photos`.
    pub target: String,
    /// What kind of store, for people: `embedded store`, `S3 DEEP_ARCHIVE`…
    pub kind: String,
    /// Where the catalog is.
    pub catalog: String,
}

/// A catalog record asked for by the front ends: the current version of `key`,
/// or the archive `archive_id` (of `key`, when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLookup {
    pub key: Option<String>,
    pub archive_id: Option<String>,
}

/// Past this many lookups, one load of the whole set (a paginated Query on
/// DynamoDB) is cheaper than one request per file.
const LOOKUPS_PER_FILE_MAX: usize = 32;

impl Engine {
    /// The records `lookups` ask for, in order (None for what the catalog does not
    /// have): one request per file for a few files named by key, else the whole
    /// set read once, never one full read per archive id.
    pub async fn look_up(&self, lookups: &[RecordLookup]) -> Result<Vec<Option<ArchiveRecord>>> {
        let wants = |lookup: &RecordLookup, record: &ArchiveRecord| match &lookup.archive_id {
            Some(id) => record.archive_id == *id,
            None => record.state == ArchiveState::Current,
        };
        if lookups.len() <= LOOKUPS_PER_FILE_MAX && lookups.iter().all(|l| l.key.is_some()) {
            let mut found = Vec::with_capacity(lookups.len());
            for lookup in lookups {
                let key = lookup.key.as_deref().unwrap_or_default();
                let versions = self.catalog.versions(key).await?;
                found.push(versions.into_iter().find(|r| wants(lookup, r)));
            }
            return Ok(found);
        }
        let records = self.catalog.records().await?;
        let mut by_id: std::collections::HashMap<&str, &ArchiveRecord> =
            std::collections::HashMap::with_capacity(records.len());
        let mut current: std::collections::HashMap<&str, &ArchiveRecord> =
            std::collections::HashMap::new();
        for record in &records {
            by_id.insert(record.archive_id.as_str(), record);
            if record.state == ArchiveState::Current {
                current.insert(record.key.as_str(), record);
            }
        }
        Ok(lookups
            .iter()
            .map(|lookup| {
                let record = match (&lookup.archive_id, &lookup.key) {
                    (Some(id), _) => by_id.get(id.as_str()),
                    (None, Some(key)) => current.get(key.as_str()),
                    (None, None) => None,
                };
                record
                    .filter(|r| lookup.key.as_ref().is_none_or(|k| *k == r.key))
                    .map(|r| (*r).clone())
            })
            .collect())
    }

    /// Opens the store, catalog and local state a resolved set names (the one
    /// backend factory builds them) and checks the store and catalog answer: to
    /// look at the set (status, ls, cost, jobs). A run that changes it opens it
    /// with [`Engine::open_to_work`].
    pub async fn open(set: &ResolvedSet) -> Result<Engine> {
        let state = LocalState::open(&set.state_dir.join("state.sqlite"))?;
        set.remember()?;
        let limits = Limits::new(set.upload_limit.clone(), set.download_limit.clone());
        let (store, catalog) =
            crate::backend::open(&set.store, &set.catalog, &set.id, &limits).await?;
        Ok(Engine::from_parts(Parts {
            root: set.root.clone(),
            set_id: set.id.clone(),
            state: Arc::new(state),
            catalog,
            store,
            host: crate::lock::hostname(),
            retention: set.retention,
            concurrency: set.concurrency,
            requests_in_flight: set.requests_in_flight,
            prices: set.prices.clone(),
        })
        .with_scan(ScanOptions {
            filter: set.filter.clone(),
            follow_symlinks: set.follow_symlinks,
        })
        .with_limits(limits)
        .with_budget(set.budget.clone())
        .with_packing(set.packing))
    }

    /// Opens a set for a run that changes it (a backup, restore, deletion,
    /// migration, inventory, rebuild… or a terminal UI session): takes the
    /// set's lock for as long as the engine lives (another firn holding it is
    /// [`crate::lock::Busy`]), opens the store and the catalog, and finishes
    /// what an interrupted run left (see [`RecoveryReport`]) before anything
    /// else. Each job then stores the catalog's snapshot itself when it is done
    /// ([`Done`]).
    pub async fn open_to_work(set: &ResolvedSet, command: &str) -> Result<Opened> {
        let lock = crate::lock::SetLock::acquire(&set.state_dir, &set.id, command)?;
        let mut engine = Engine::open(set).await?;
        engine._lock = Some(lock);
        let recovery = engine
            .recover()
            .await
            .context("cannot finish the interrupted run's uploads")?;
        Ok(Opened {
            engine: Arc::new(engine),
            recovery,
        })
    }

    /// What `firn init` would create for a set, and what exists already (nothing
    /// is created until [`crate::backend::Provisioning::apply`]).
    pub async fn provisioning(
        set: &ResolvedSet,
        options: crate::backend::ProvisionOptions,
    ) -> Result<crate::backend::Provisioning> {
        crate::backend::provisioning(&set.store, &set.catalog, &set.id, options).await
    }

    /// An engine over given parts (tests wrap a store with injected faults).
    pub fn from_parts(parts: Parts) -> Engine {
        let requests_in_flight = parts
            .requests_in_flight
            .unwrap_or_else(|| parts.store.default_requests_in_flight())
            .max(1);
        let snapshot_due = parts.state.dir().join(snapshot::SNAPSHOT_DUE);
        let requests_noted = std::sync::Mutex::new(parts.store.requests());
        Engine {
            root: parts.root,
            owner: crate::description::owner_of(&parts.set_id),
            set_id: parts.set_id,
            state: parts.state,
            catalog: Arc::new(tracked::Tracked::new(parts.catalog, snapshot_due)),
            store: parts.store,
            host: parts.host,
            retention: parts.retention,
            concurrency: parts.concurrency.max(1),
            requests_in_flight,
            prices: parts.prices,
            budget: None,
            scan: ScanOptions::default(),
            task_ids: TaskIds::default(),
            disputed: std::sync::Mutex::new(None),
            _lock: None,
            limits: Limits::none(),
            packing: crate::model::Packing::default(),
            pack_versions: tokio::sync::Mutex::new(None),
            requests_noted,
        }
    }

    /// What to scan (filter, symlinks); the default scans everything.
    pub fn with_scan(mut self, scan: ScanOptions) -> Engine {
        self.scan = scan;
        self
    }

    /// Whether and how small files go into packs (the default: packs of
    /// files up to 1 MiB, the store's pack size).
    pub fn with_packing(mut self, packing: crate::model::Packing) -> Engine {
        self.packing = packing;
        self
    }

    /// The bandwidth limits this engine's stores were opened under (a store
    /// given to [`Engine::from_parts`] must have been opened under the same).
    pub fn with_limits(mut self, limits: Limits) -> Engine {
        self.limits = limits;
        self
    }

    /// The run's bandwidth limits: what is in force, and a change for this run
    /// (the TUI's), which every transfer in flight follows at once.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The cap a backup keeps the set's estimated monthly storage charge under
    /// (none: no cap).
    pub fn with_budget(mut self, budget: Option<crate::budget::Budget>) -> Engine {
        self.budget = budget;
        self
    }

    /// The set's budget, if it has one.
    pub fn budget(&self) -> Option<&crate::budget::Budget> {
        self.budget.as_ref()
    }

    pub fn info(&self) -> SetInfo {
        SetInfo {
            id: self.set_id.clone(),
            root: self.root.clone(),
            target: self.store.target(),
            kind: self.store.kind(),
            catalog: self.catalog.describe(),
        }
    }

    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    pub fn prices(&self) -> &Prices {
        &self.prices
    }

    /// The store's usual wait for a retrieval job of each tier it offers, in
    /// seconds (from, to), fastest first.
    pub fn tiers(&self) -> Vec<(Tier, (u64, u64))> {
        self.store
            .tiers()
            .into_iter()
            .map(|tier| (tier, self.store.expected_wait(tier)))
            .collect()
    }

    /// Refuses a tier the store does not offer, before anything is requested.
    pub fn check_tier(&self, tier: Tier) -> Result<()> {
        offers_tier(self.store.as_ref(), tier)
    }

    /// Whether the store this set uses holds `record` (records written before
    /// firn knew targets carry none and are taken as this store's).
    pub fn holds(&self, record: &ArchiveRecord) -> bool {
        record.target.is_empty() || record.target == self.store.target()
    }

    /// A file's versions and cached hashes (the cache is read off the async threads).
    pub async fn file_details(&self, key: &str) -> Result<FileDetails> {
        let versions = self.catalog.versions(key).await?;
        let (state, key) = (Arc::clone(&self.state), key.to_string());
        let cached = tokio::task::spawn_blocking(move || state.cached(&key))
            .await
            .context("local state task failed")??;
        Ok(FileDetails { versions, cached })
    }

    /// The allocator every task id of this engine comes from.
    pub fn task_ids(&self) -> TaskIds {
        self.task_ids.clone()
    }

    /// Gives each record a fresh task id (for [`Engine::restore`]).
    pub fn number<T>(&self, items: Vec<T>) -> Vec<(TaskId, T)> {
        items
            .into_iter()
            .map(|item| (self.task_ids.next(), item))
            .collect()
    }

    /// Scans the root and compares it with the catalog: every entry, in key order
    /// (what the terminal UI and `firn status --json` show).
    pub async fn status(
        &self,
        on_scan: &mut (dyn FnMut(crate::scan::ScanProgress) + Send),
    ) -> Result<StatusReport> {
        let state = Arc::clone(&self.state);
        let last = tokio::task::spawn_blocking(move || state.number("scan_entries"))
            .await
            .context("scan task failed")??
            .unwrap_or(0)
            .max(0) as usize;
        // Room for some growth and a few archived-only entries, so a few new
        // files do not double the allocation.
        let mut entries = Vec::with_capacity(last + last / 16 + 64);
        let totals = self
            .status_each(on_scan, &mut |entry| entries.push(entry.clone()))
            .await?;
        Ok(StatusReport { entries, totals })
    }

    /// Like [`Engine::status`], handing each entry to `visit` (in key order)
    /// instead of keeping them all: what a front end that needs only some of them
    /// (the problems, what to back up) calls. The scan is compared as it goes,
    /// so memory does not grow with the tree.
    pub async fn status_each(
        &self,
        on_scan: &mut (dyn FnMut(crate::scan::ScanProgress) + Send),
        visit: &mut (dyn FnMut(&crate::model::Entry) + Send),
    ) -> Result<Rollup> {
        let mut scan = crate::scan::ScanStream::start(&self.root, &self.scan, on_scan)?;
        let totals = crate::status::compute(
            &self.root,
            &mut scan,
            &self.scan.filter,
            &self.state,
            self.catalog.as_ref(),
            &self.store.target(),
            visit,
        )
        .await?;
        self.state
            .set_number("scan_entries", scan.handed() as i64)?;
        Ok(totals)
    }
}

/// Test hook: `FIRN_FAULT=<point>` aborts the process at that point, as a crash or
/// kill -9 would; with `FIRN_FAULT_SKIP=<n>`, at its n+1th pass (a later pack, a
/// later batch). Only in debug builds (the test suite), never in release.
fn fault_point(point: &str) {
    static PASSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if cfg!(debug_assertions) && std::env::var("FIRN_FAULT").is_ok_and(|v| v == point) {
        let skip: usize = std::env::var("FIRN_FAULT_SKIP")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if PASSED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < skip {
            return;
        }
        eprintln!("firn: injected crash at {point}");
        std::process::abort();
    }
}
