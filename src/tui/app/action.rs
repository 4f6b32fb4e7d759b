//! What goes into the reducer ([`Action`]: keys, mouse, engine events,
//! background results) and what comes out ([`Effect`]: work for the runtime).

use std::sync::Arc;

use crossterm::event::{KeyEvent, MouseEvent};
use tokio_util::sync::CancellationToken;

use crate::backend::StoreSettings;
use crate::cost::CostSummary;
use crate::engine::{
    ArchiveRecord, BackupSummary, CachedHash, Candidate, DeletionPlan, DeletionReport, Event,
    MigrationPlan, MigrationReport, MigrationSource, Orphan, OrphanResult, Reconciliation,
    RestoreTally, RetrievalQuote, TaskId,
};
use crate::history::{Backups, RunSummary};
use crate::limit::Schedule;
use crate::model::Tier;
use crate::scan::ScanProgress;
use crate::tui::tree::{NodeId, Tree};

/// What the details pane shows for one file (loaded in the background).
#[derive(Debug, Clone)]
pub struct Details {
    pub node: NodeId,
    pub key: String,
    pub versions: Result<Vec<ArchiveRecord>, String>,
    pub cached: Option<CachedHash>,
}

#[derive(Debug)]
pub enum Action {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// Time passed (rates, ETAs, spinners).
    Tick,
    ScanProgress(ScanProgress),
    ScanDone(Result<Box<Tree>, String>),
    /// Progress of a running job (the engine's task ids name the rows).
    Engine(Event),
    /// A backup batch ended (its retention sweep included).
    BatchDone {
        batch: u32,
        summary: BackupSummary,
    },
    /// A retrieval batch ended.
    RestoreDone {
        batch: u32,
        report: RestoreReport,
    },
    /// Retrieval jobs an earlier run left (local state), to pick up again.
    ResumeRetrievals(Vec<RetrievalGroup>),
    /// The plan of a retrieval the dialog asks about.
    RetrievalQuoted {
        keys: Vec<String>,
        quote: Box<RetrievalQuote>,
    },
    /// A deletion plan is ready to be confirmed.
    DeletionPlanned {
        plan: DeletionPlan,
        note: Option<String>,
    },
    DeleteDone {
        batch: u32,
        report: DeletionReport,
    },
    CostLoaded(Box<CostSummary>),
    /// The set's last runs, newest first (or why they cannot be read).
    HistoryLoaded(Result<Vec<RunSummary>, String>),
    /// The set's last backup and the backup runs that failed since (at start).
    BackupsLoaded(Box<Backups>),
    /// The set's estimated monthly storage charge (for its budget).
    MonthlyLoaded(f64),
    /// The last reconciliation (at start, or a new one).
    Reconciled {
        reconciliation: Option<Box<Reconciliation>>,
        /// Open the view (the user asked for it).
        show: bool,
    },
    /// What adopting or deleting orphans did.
    OrphansActed(Vec<OrphanResult>),
    /// The previous store was opened and a migration from it planned (or why
    /// not, in one line).
    MigrationPlanned(Result<MigrationOffer, String>),
    /// A migration ended.
    MigrationDone {
        batch: u32,
        report: MigrationReport,
    },
    /// A line for the status bar (and the log).
    Notice(String),
    Details(Box<Details>),
    Log(String),
    Error {
        title: String,
        message: String,
    },
    /// The run's bandwidth limits as the runtime read them (at start, after a
    /// change, and when a timetable moves on).
    Bandwidth(super::Bandwidth),
    /// SIGTERM / SIGHUP: stop cleanly without asking.
    Terminate,
}

/// What a retrieval batch did.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    /// Counted by the engine; files in place with other content were not touched
    /// (the user decides).
    pub tally: RestoreTally,
    pub tier: Option<Tier>,
    pub destination: String,
}

/// The store a set used before, opened by the runtime: the migration dialog
/// carries it to the effect that copies from it (compared by identity).
#[derive(Clone)]
pub struct OpenedSource(pub Arc<MigrationSource>);

impl std::fmt::Debug for OpenedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OpenedSource")
            .field(&self.0.target())
            .finish()
    }
}

impl PartialEq for OpenedSource {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A planned migration, waiting for the user's yes. The plan (an item per
/// archive) is shared, never copied: the effect that runs it takes it back.
#[derive(Debug, Clone)]
pub struct MigrationOffer {
    pub source: OpenedSource,
    /// What kind of store the previous one is, for people (`Glacier vault`…).
    pub source_kind: String,
    pub plan: Arc<MigrationPlan>,
}

impl PartialEq for MigrationOffer {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && Arc::ptr_eq(&self.plan, &other.plan)
    }
}

/// Persisted retrieval jobs with one destination and tier.
pub use crate::engine::ResumableRetrievals as RetrievalGroup;

/// One file to retrieve: its current version, or a given archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveItem {
    pub key: String,
    pub archive_id: Option<String>,
}

/// Work for the runtime.
#[derive(Debug)]
pub enum Effect {
    /// Work out what retrieving the current versions of these files takes
    /// (archives, packs, bytes, each tier's cost and wait).
    QuoteRetrieval {
        keys: Vec<String>,
    },
    /// Plan deleting the current archives of these files (ages, charges).
    PlanDeletion {
        keys: Vec<String>,
    },
    /// Plan deleting superseded archives past their minimum storage period.
    PlanPrune,
    Delete {
        batch: u32,
        plan: DeletionPlan,
        cancel: CancellationToken,
    },
    LoadCost,
    /// Read the set's last runs.
    LoadHistory,
    /// Work out the set's estimated monthly storage charge (its budget's figure).
    LoadMonthly,
    /// Request (or reuse) an inventory job and compare it when it is ready.
    RunInventory,
    AdoptOrphans(Vec<Orphan>),
    DeleteOrphans(Vec<Orphan>),
    Restore {
        batch: u32,
        /// Each file with the task id its row reports under.
        items: Vec<(TaskId, RetrieveItem)>,
        tier: Tier,
        destination: String,
        overwrite: bool,
        /// Shared by the batch's jobs: cancelling one stops the batch (its jobs
        /// stay at the store and are picked up next time).
        cancel: CancellationToken,
    },
    /// Back up these files (the engine plans: upload or only update an mtime).
    Upload {
        batch: u32,
        candidates: Vec<Candidate>,
    },
    LoadDetails {
        node: NodeId,
        key: String,
    },
    Rescan,
    /// Open the store the set used before and plan copying its archives.
    PlanMigration {
        from: StoreSettings,
    },
    /// Copy the archives of a confirmed migration plan (its rows report under
    /// the plan's task ids).
    Migrate {
        batch: u32,
        source: OpenedSource,
        /// Held by nothing else once the dialog is answered.
        plan: Arc<MigrationPlan>,
        tier: Tier,
        /// Shared by the batch's rows: cancelling one stops the migration
        /// (copies made and jobs requested are kept).
        cancel: CancellationToken,
    },
    /// This run's bandwidth limits from now on (None: the set's configured one).
    SetLimits {
        up: Option<Schedule>,
        down: Option<Schedule>,
    },
}
