//! Inventory and reconciliation (invariant 3 in the crate docs: every archive in the store is
//! accounted for), acting on orphans, and rebuilding a lost catalog from the archive
//! descriptions an inventory lists.
//!
//! - An inventory is a store job (Glacier: hours). The job is kept in local state and
//!   reused while younger than 24 hours (Glacier keeps job output that long and
//!   refreshes a vault's inventory about daily); a job the store forgot is requested
//!   again.
//! - Reconciliation compares the inventory with every catalog record of the set
//!   (current and superseded): orphans (in the store, not in the catalog), missing
//!   (in the catalog, not in the store), and size or tree-hash mismatches. Records
//!   uploaded at or after the inventory date are "too new to check", not missing.
//! - A 0-byte file on Glacier is a 1-byte placeholder whose description says `s: 0`:
//!   it holds empty content. Records with the old sentinel id `firn-empty-archive`
//!   have nothing stored and are never missing.
//! - Paths read from descriptions are untrusted: a key that is absolute, has empty,
//!   `.` or `..` components or a NUL, or whose raw bytes name another path, is never
//!   imported.
//! - A store may be shared by several sets (invariant 12 in the crate docs,
//!   `owners.rs`): another set's archives are counted by set, never orphans; in a shared store an
//!   archive of unknown owner is "unclaimed", neither adopted nor deleted unless a
//!   person names it; a rebuild adopts only this set's archives (those of unknown
//!   owner only when asked).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::{Result, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::owners::{Kind, Owners, Whose, kind_of};
use super::pack_index::IndexFetch;
use super::retrieval::Poll;
use super::{AfterRun, Done, Engine};
use crate::catalog::Catalog as _;
use crate::catalog::{ArchiveRecord, ArchiveState};
use crate::description::{self, DecodeError};
use crate::model::UNKNOWN_SHA1;
use crate::model::now_secs;
use crate::pathkey;
use crate::state::InventoryJob;
use crate::store::{ArchiveListing, EMPTY_ARCHIVE_ID, Inventory, JobState};

/// An inventory job younger than this is reused rather than requested again.
pub const INVENTORY_REUSE_SECS: i64 = 24 * 3600;
const RECONCILIATION_REPORT: &str = "reconciliation";
/// How [`Reconciliation::disputed_archives`] marks a file (not an archive).
pub(super) const DISPUTED_KEY: &str = "key:";

/// An inventory, or the job it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryFetch {
    Waiting {
        requested_at: i64,
        ready_at: Option<i64>,
    },
    Ready(Inventory),
}

/// What to do with the orphans an inventory finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrphanAction {
    None,
    /// Record every orphan whose description names a file under a safe path.
    Adopt,
    /// Delete every orphan of this set, or only the archives named (which may
    /// be unclaimed archives of a shared store, see [`Reconciliation::named`]).
    Delete {
        only: Vec<String>,
    },
}

/// `firn inventory`, as asked.
#[derive(Debug, Clone)]
pub struct InventoryRequest {
    /// Wait for an inventory job that is not ready.
    pub wait: bool,
    /// A new inventory, not the one taken in the last 24 hours.
    pub refresh: bool,
    pub action: OrphanAction,
}

/// What [`Engine::inventory_job`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryRun {
    Waiting {
        requested_at: i64,
        ready_at: Option<i64>,
    },
    Ready {
        reconciliation: Box<Reconciliation>,
        actions: Vec<OrphanResult>,
        /// The reconciliation's problems the actions did not resolve.
        problems: usize,
    },
}

/// What [`Engine::inventory`] found: a reconciliation, or a job still running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryOutcome {
    Waiting {
        requested_at: i64,
        ready_at: Option<i64>,
    },
    Ready(Box<Reconciliation>),
}

/// The store's inventory compared with the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// Unix seconds: the moment the inventory reflects.
    pub inventory_date: i64,
    /// Unix seconds: when the comparison was made.
    pub checked_at: i64,
    /// Archives the inventory lists.
    pub archive_count: u64,
    /// Catalog records compared (current, superseded and being deleted).
    pub record_count: u64,
    /// Records whose archive the inventory lists with the same size and tree hash.
    pub matched: u64,
    /// Records uploaded at or after the inventory date: not checked yet.
    pub too_new: u64,
    /// Empty files recorded with the old sentinel id (nothing stored).
    pub empty_sentinels: u64,
    /// Records that name another store than this one (not expected in its inventory).
    pub other_store: u64,
    /// Archives the inventory lists that this host deleted after it was taken.
    pub deleted_since: u64,
    /// Catalog snapshots of this set: accounted for, never orphans.
    #[serde(default)]
    pub snapshots: u64,
    /// Ownership claims of this set (`firn catalog claim`): accounted for.
    #[serde(default)]
    pub claims: u64,
    /// Archives of the other sets that share the store (their files, snapshots
    /// and claims), a line per set: never orphans of this one.
    #[serde(default)]
    pub other_sets: Vec<OtherSet>,
    pub orphans: Vec<Orphan>,
    /// Archives of unknown owner (written before archives named their set) that
    /// this catalog does not record, in a store shared with other sets: they may
    /// be another set's, so they are neither adopted nor deleted unless named.
    /// Each set claims its own with `firn catalog claim`.
    #[serde(default)]
    pub unclaimed: Vec<Orphan>,
    pub missing: Vec<Missing>,
    pub mismatched: Vec<Mismatch>,
    /// Records of this set whose archive another set's description or claim
    /// names as that set's.
    #[serde(default)]
    pub disputed: Vec<Disputed>,
    /// Packs of this set that hold more files than the catalog records in
    /// them: the others were deleted (a pack keeps their bytes until its last
    /// file goes) or their records were lost (`firn catalog rebuild` adds
    /// them back from the pack's index). Not a problem by itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partly_recorded_packs: Vec<PartlyRecordedPack>,
}

/// A pack the catalog records only some files of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartlyRecordedPack {
    pub archive_id: String,
    /// Files it holds, as its description says.
    pub files: u64,
    /// Of those, recorded in the catalog.
    pub recorded: u64,
    /// Unix seconds.
    pub created_at: i64,
}

/// How many archives of another set the store holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherSet {
    /// The set's short id, as its archives name it.
    pub owner: String,
    /// The set's name, when one of its catalog snapshots in the store gives it.
    pub name: Option<String>,
    pub archives: u64,
}

/// A record of this set whose archive another set says is its own (an older
/// firn's rebuild in a shared store adopted it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disputed {
    pub key: String,
    pub archive_id: String,
    /// The other set's short id.
    pub owner: String,
    /// `current` or `superseded` in this set's catalog.
    #[serde(default)]
    pub state: String,
}

impl Reconciliation {
    /// Orphans, unclaimed archives, missing archives, mismatches and disputed
    /// records together.
    pub fn problems(&self) -> usize {
        self.orphans.len()
            + self.unclaimed.len()
            + self.missing.len()
            + self.mismatched.len()
            + self.disputed.len()
    }

    /// What deletions must leave alone while records are disputed: each
    /// disputed archive (→ the other set naming it), and each file whose current
    /// version is one (→ that set), whose older versions are this set's own
    /// only copies.
    pub fn disputed_archives(&self) -> HashMap<String, String> {
        let mut out: HashMap<String, String> = self
            .disputed
            .iter()
            .map(|d| (d.archive_id.clone(), d.owner.clone()))
            .collect();
        for d in self.disputed.iter().filter(|d| d.state == "current") {
            out.insert(format!("{DISPUTED_KEY}{}", d.key), d.owner.clone());
        }
        out
    }

    /// Archives of other sets, all together.
    pub fn other_set_archives(&self) -> u64 {
        self.other_sets.iter().map(|o| o.archives).sum()
    }

    /// The orphans and unclaimed archives named by `archive_ids`, and a refusal
    /// for each id that is neither (`firn inventory --delete-orphans --archive`).
    pub fn named(&self, archive_ids: &[String]) -> (Vec<Orphan>, Vec<OrphanResult>) {
        let mut found = Vec::new();
        let mut refused = Vec::new();
        for id in archive_ids {
            match self
                .orphans
                .iter()
                .chain(&self.unclaimed)
                .find(|o| &o.archive_id == id)
            {
                Some(orphan) => found.push(orphan.clone()),
                None => refused.push(OrphanResult {
                    archive_id: id.clone(),
                    key: None,
                    outcome: OrphanOutcome::Refused(
                        "not an orphan or unclaimed archive in this inventory (recorded by this set, another set's, or not in the store)".into(),
                    ),
                }),
            }
        }
        (found, refused)
    }

    pub fn is_consistent(&self) -> bool {
        self.problems() == 0
    }
}

/// An archive in the store that no catalog record names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphan {
    pub archive_id: String,
    /// Bytes stored (a placeholder of an empty file is 1).
    pub size: u64,
    /// Hex.
    pub tree_hash: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The archive's description as stored.
    pub description_text: String,
    /// What the description says, when it is firn's or mt-aws-glacier's.
    pub description: Option<DescribedFile>,
    /// Why adopting it would be refused; None when it can be adopted.
    pub refused: Option<String>,
    /// Set when it is a pack of small files of this set (none of which the
    /// catalog records): adopting it records every file its index names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<OrphanPack>,
}

/// What an orphan pack holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanPack {
    /// Files it holds, as its description says.
    pub files: u64,
    /// Their paths, when the index was read with the inventory (stores that
    /// retrieve at once); empty otherwise (adopting reads it).
    #[serde(default)]
    pub paths: Vec<String>,
}

/// A file as an archive description names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedFile {
    /// `firn2`, `firn1` or `mt2`.
    pub format: String,
    /// The short id of the set that wrote it (firn2); None: unknown.
    #[serde(default)]
    pub owner: Option<String>,
    /// None when the path did not fit in the description (firn1 `k`).
    pub key: Option<String>,
    /// base64url (no padding) of the path's bytes, when they differ from the key.
    pub raw_path: Option<String>,
    /// The file's size (mt2 descriptions do not say).
    pub size: Option<u64>,
    pub mtime_ns: i64,
    /// Hex, when the description carries it.
    pub sha1: Option<String>,
}

/// A catalog record whose archive the inventory does not list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    pub key: String,
    pub archive_id: String,
    pub size: u64,
    pub uploaded_at: i64,
    /// `current` or `superseded`.
    pub state: String,
}

/// A catalog record whose archive the store holds with another size or tree hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    pub key: String,
    pub archive_id: String,
    pub catalog_size: u64,
    pub catalog_tree_hash: String,
    pub store_size: u64,
    pub store_tree_hash: String,
}

/// What happened to one orphan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanResult {
    pub archive_id: String,
    pub key: Option<String>,
    pub outcome: OrphanOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "result", content = "reason")]
pub enum OrphanOutcome {
    /// Recorded as the current version of its file (it had none).
    AdoptedCurrent,
    /// Recorded as an older version of a file that has a current one.
    AdoptedSuperseded,
    /// Deleted from the store.
    Deleted,
    /// The catalog records it by now: nothing to do.
    AlreadyInCatalog,
    /// Not acted on, and why (foreign description, unsafe path, ...).
    Refused(String),
    /// The action failed (network, catalog conflict, ...).
    Failed(String),
}

/// What a rebuild from archive descriptions did (see [`Engine::rebuild`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuildReport {
    pub inventory_date: i64,
    /// Archives the inventory lists.
    pub archive_count: u64,
    /// The catalog already held records of this set: only archives it did not
    /// know were added.
    pub merged: bool,
    /// Archives the catalog already recorded (left as they were).
    pub already_known: u64,
    /// Files (keys) that got at least one record.
    pub files: u64,
    /// File archives of other sets sharing the store: left alone.
    #[serde(default)]
    pub other_sets: u64,
    /// File archives of unknown owner (written before archives named their set,
    /// or by mt-aws-glacier) not adopted: `adopt_unknown` was not given.
    #[serde(default)]
    pub unknown_owner: u64,
    /// Records added as current versions.
    pub current: u64,
    /// Records added as superseded versions.
    pub superseded: u64,
    /// Records added without a SHA-1 (description without one: Glacier multipart
    /// uploads of files not hashed before, every mt2 archive). Status compares them
    /// by size and mtime; the tree hash still verifies their bytes.
    pub unknown_sha1: u64,
    /// Archives not imported, and why.
    pub skipped: Vec<Skipped>,
    /// The catalog snapshot the rebuild started from, when the store held one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotUsed>,
    /// Catalog snapshots the store holds (of this set or another), not files.
    pub snapshots_seen: u64,
}

/// What a rebuild took from the newest catalog snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotUsed {
    pub archive_id: String,
    pub created_at: i64,
    /// Records the snapshot held.
    pub records: u64,
    /// Of those, imported (the rest the catalog already had, or the store no
    /// longer holds).
    pub imported: u64,
    /// Records whose archive the store no longer holds (deleted after the
    /// snapshot was taken): not brought back.
    pub gone: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub archive_id: String,
    /// The key the description names, when it names one.
    pub key: Option<String>,
    pub reason: String,
    /// Not a firn or mt-aws-glacier description (another tool's archive).
    pub foreign: bool,
}

/// Why an archive cannot be recorded from its description.
struct Refusal {
    reason: String,
    key: Option<String>,
    foreign: bool,
}

fn describe(listing: &ArchiveListing) -> Option<DescribedFile> {
    let desc = description::decode(&listing.description).ok()?;
    Some(DescribedFile {
        format: desc.format.as_str().into(),
        owner: desc.owner,
        key: desc.key,
        raw_path: desc
            .raw
            .map(|r| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r)),
        size: desc.size,
        mtime_ns: desc.mtime_ns,
        sha1: desc.sha1.map(hex::encode),
    })
}

/// The catalog record an archive's description supports (state current), or why
/// there is none. `mine` is the short id of the set asking: an archive another
/// set wrote is never its record.
fn record_from(
    listing: &ArchiveListing,
    target: &str,
    host: &str,
    mine: &str,
) -> Result<ArchiveRecord, Refusal> {
    let desc = description::decode(&listing.description).map_err(|e| Refusal {
        reason: match e {
            DecodeError::Unknown => {
                "not a firn or mt-aws-glacier description (another tool's archive)".into()
            }
            DecodeError::Malformed(format) => format!("malformed {format} description"),
        },
        key: None,
        foreign: matches!(e, DecodeError::Unknown),
    })?;
    if desc.pack.is_some() {
        return Err(Refusal {
            reason: "a pack of small files: its files are recorded from its index".into(),
            key: None,
            foreign: false,
        });
    }
    let Some(key) = desc.key.clone() else {
        return Err(Refusal {
            reason: "its description holds only a hash of the path (too long to fit); only the lost catalog knew the path".into(),
            key: None,
            foreign: false,
        });
    };
    let refuse = |reason: String| Refusal {
        reason,
        key: Some(key.clone()),
        foreign: false,
    };
    if let Some(owner) = desc.owner.as_deref().filter(|o| *o != mine) {
        return Err(refuse(format!(
            "written by another set sharing this store ({owner})"
        )));
    }
    if let Err(why) = pathkey::safe_key(&key, desc.raw.as_deref()) {
        return Err(refuse(format!("unsafe path: {why}")));
    }
    let (size, tree_hash) = listing.content(desc.size);
    if let Some(described) = desc.size
        && described != size
    {
        return Err(refuse(format!(
            "its description says {described} bytes, the store holds {}",
            listing.size
        )));
    }
    Ok(ArchiveRecord {
        key,
        raw: desc.raw,
        size,
        mtime_ns: desc.mtime_ns,
        sha1: desc.sha1.unwrap_or(UNKNOWN_SHA1),
        tree_hash,
        archive_id: listing.archive_id.clone(),
        target: target.to_owned(),
        uploaded_at: listing.created_at,
        state: ArchiveState::Current,
        host: host.to_owned(),
        superseded_at: None,
        pack: None,
    })
}

/// The indexes a rebuild read (see `pack_index.rs`), by pack archive id: an
/// index, or why it could not be read.
pub(super) type PackIndexes = HashMap<String, Result<crate::pack::Index, String>>;

/// What a listing line says of a pack (None: not a pack).
pub(super) fn pack_facts(listing: &ArchiveListing) -> Option<crate::description::PackFacts> {
    description::decode(&listing.description)
        .ok()
        .and_then(|d| d.pack)
}

/// The packed versions a catalog records: by pack, the offsets of its members.
pub(super) struct PackSlots(HashMap<String, HashSet<u64>>);

impl PackSlots {
    pub(super) fn of(records: &[ArchiveRecord]) -> PackSlots {
        let mut slots: HashMap<String, HashSet<u64>> = HashMap::new();
        for r in records {
            if let Some(slot) = r.pack {
                slots
                    .entry(r.archive_id.clone())
                    .or_default()
                    .insert(slot.offset);
            }
        }
        PackSlots(slots)
    }

    /// How many members of pack `archive_id` are recorded.
    pub(super) fn recorded(&self, archive_id: &str) -> u64 {
        self.0.get(archive_id).map_or(0, |s| s.len() as u64)
    }

    /// Whether every one of the pack's `members` is recorded: its index need
    /// not be read.
    pub(super) fn all_known(&self, archive_id: &str, members: u64) -> bool {
        self.recorded(archive_id) >= members
    }

    /// Whether this packed version is recorded (same pack, same place).
    pub(super) fn has(&self, record: &ArchiveRecord) -> bool {
        record.pack.is_some_and(|slot| {
            self.0
                .get(&record.archive_id)
                .is_some_and(|s| s.contains(&slot.offset))
        })
    }
}

/// Whether a record naming the store `recorded` belongs to the store `here`.
/// Records of a relocated embedded store still name it by its old directory:
/// an embedded store named by a directory that holds none any more is this one
/// moved; one whose directory still holds a store is another (a set moved
/// from one disk to another keeps its old versions there).
fn same_store(recorded: &str, here: &str, moved: &mut HashMap<String, bool>) -> bool {
    if recorded == here {
        return true;
    }
    let (Some(old), true) = (recorded.strip_prefix("local:"), here.starts_with("local:")) else {
        return false;
    };
    *moved
        .entry(recorded.to_string())
        .or_insert_with(|| !std::path::Path::new(old).join("archives").is_dir())
}

impl Orphan {
    fn from_listing(listing: &ArchiveListing, target: &str, host: &str, mine: &str) -> Orphan {
        Orphan {
            archive_id: listing.archive_id.clone(),
            size: listing.size,
            tree_hash: hex::encode(listing.tree_hash),
            created_at: listing.created_at,
            description_text: listing.description.clone(),
            description: describe(listing),
            refused: record_from(listing, target, host, mine)
                .err()
                .map(|r| r.reason),
            pack: None,
        }
    }

    /// An orphan pack (see [`OrphanPack`]): adoptable when it is this set's
    /// and its index, if read, reads.
    fn of_pack(
        listing: &ArchiveListing,
        facts: crate::description::PackFacts,
        index: Option<&Result<crate::pack::Index, String>>,
        mine: &str,
    ) -> Orphan {
        let owner = description::named_owner(&listing.description);
        let refused = match (owner.as_deref(), index) {
            (Some(owner), _) if owner != mine => Some(format!(
                "a pack written by another set sharing this store ({owner})"
            )),
            (None, _) => Some("a pack that names no set".into()),
            (_, Some(Err(why))) => Some(format!("a pack whose index cannot be read: {why}")),
            _ => None,
        };
        Orphan {
            archive_id: listing.archive_id.clone(),
            size: listing.size,
            tree_hash: hex::encode(listing.tree_hash),
            created_at: listing.created_at,
            description_text: listing.description.clone(),
            description: describe(listing),
            refused,
            pack: Some(OrphanPack {
                files: facts.members,
                paths: match index {
                    Some(Ok(index)) => index.members.iter().map(|m| m.key.clone()).collect(),
                    _ => Vec::new(),
                },
            }),
        }
    }

    /// The set that wrote it, when its description says so.
    fn owner(&self) -> Option<&str> {
        self.description.as_ref().and_then(|d| d.owner.as_deref())
    }

    /// The inventory line this orphan came from.
    fn listing(&self) -> Option<ArchiveListing> {
        Some(ArchiveListing {
            archive_id: self.archive_id.clone(),
            size: self.size,
            tree_hash: hex::decode(&self.tree_hash).ok()?.try_into().ok()?,
            description: self.description_text.clone(),
            created_at: self.created_at,
        })
    }

    fn key(&self) -> Option<String> {
        self.description.as_ref().and_then(|d| d.key.clone())
    }
}

impl Engine {
    /// The store's inventory: reuses the job this set requested in the last 24
    /// hours, requests one otherwise (or when the store forgot it), and polls it
    /// with backoff (200 ms doubling to 60 s) when `wait`.
    pub async fn fetch_inventory(&self, wait: bool) -> Result<InventoryFetch> {
        let now = now_secs();
        let mut job = self
            .state
            .inventory_job()?
            .filter(|j| now - j.requested_at < INVENTORY_REUSE_SECS);
        let mut fresh = false;
        // An inventory is one job, asked about up to once a minute.
        let mut poll = Poll::capped(Duration::from_secs(60));
        loop {
            let current = match job.take() {
                Some(j) => j,
                None => {
                    let job_id = self.store.request_inventory().await?;
                    let j = InventoryJob {
                        job_id,
                        requested_at: now_secs(),
                    };
                    self.state.put_inventory_job(&j)?;
                    fresh = true;
                    j
                }
            };
            match self.store.job_state(&current.job_id).await? {
                JobState::Ready { .. } => {
                    return Ok(InventoryFetch::Ready(
                        self.store.read_inventory(&current.job_id).await?,
                    ));
                }
                JobState::Gone if !fresh => self.state.forget_inventory_job()?,
                JobState::Gone => {
                    self.state.forget_inventory_job()?;
                    bail!(
                        "the store {} forgot the inventory job {} it was just given; run again",
                        self.store.target(),
                        current.job_id
                    );
                }
                JobState::Failed(reason) => {
                    self.state.forget_inventory_job()?;
                    bail!(
                        "the inventory job of {} failed: {reason}; run again to request a new one",
                        self.store.target()
                    );
                }
                JobState::InProgress { ready_at } => {
                    if !wait {
                        return Ok(InventoryFetch::Waiting {
                            requested_at: current.requested_at,
                            ready_at,
                        });
                    }
                    poll.pause(None).await;
                    job = Some(current);
                }
            }
        }
    }

    /// Fetches the inventory (see [`Engine::fetch_inventory`]; with `refresh`, a
    /// new one rather than the one taken in the last 24 hours) and reconciles it
    /// with the catalog; the result is saved for [`Engine::last_reconciliation`].
    pub async fn inventory(&self, wait: bool, refresh: bool) -> Result<InventoryOutcome> {
        let outcome = self.take_inventory(wait, refresh).await?;
        self.note(&outcome);
        Ok(outcome)
    }

    /// [`Engine::inventory`], not noted in the run's history.
    async fn take_inventory(&self, wait: bool, refresh: bool) -> Result<InventoryOutcome> {
        if refresh {
            self.state.forget_inventory_job()?;
        }
        Ok(match self.fetch_inventory(wait).await? {
            InventoryFetch::Waiting {
                requested_at,
                ready_at,
            } => InventoryOutcome::Waiting {
                requested_at,
                ready_at,
            },
            InventoryFetch::Ready(inventory) => {
                let reconciliation = self.reconcile(&inventory).await?;
                self.save_reconciliation(&reconciliation)?;
                InventoryOutcome::Ready(Box::new(reconciliation))
            }
        })
    }

    /// `firn inventory`: the store's inventory reconciled with the catalog (see
    /// [`Engine::inventory`]), then the orphans acted on as asked; the catalog's
    /// snapshot is stored when that changed it.
    pub async fn inventory_job(&self, request: InventoryRequest) -> Result<Done<InventoryRun>> {
        let r = match self.take_inventory(request.wait, request.refresh).await? {
            InventoryOutcome::Waiting {
                requested_at,
                ready_at,
            } => {
                let done = Done {
                    report: InventoryRun::Waiting {
                        requested_at,
                        ready_at,
                    },
                    after: AfterRun::default(),
                };
                self.note(&done);
                return Ok(done);
            }
            InventoryOutcome::Ready(r) => r,
        };
        let done = self.orphans_acted_on(&request.action, &r).await?;
        // Only what the reconciliation counted as a problem is resolved by acting.
        let resolved = done
            .report
            .iter()
            .filter(|a| {
                matches!(
                    a.outcome,
                    OrphanOutcome::AdoptedCurrent
                        | OrphanOutcome::AdoptedSuperseded
                        | OrphanOutcome::Deleted
                        | OrphanOutcome::AlreadyInCatalog
                ) && r
                    .orphans
                    .iter()
                    .chain(&r.unclaimed)
                    .any(|o| o.archive_id == a.archive_id)
            })
            .count();
        let problems = r.problems() - resolved;
        let done = Done {
            report: InventoryRun::Ready {
                reconciliation: r,
                actions: done.report,
                problems,
            },
            after: done.after,
        };
        self.note(&done);
        Ok(done)
    }

    /// Acts on the orphans of `reconciliation` as `action` says (adopting, or
    /// deleting them, or the archives named), then stores the catalog's
    /// snapshot if that changed it.
    pub async fn act_on_orphans(
        &self,
        action: &OrphanAction,
        reconciliation: &Reconciliation,
    ) -> Result<Done<Vec<OrphanResult>>> {
        let done = self.orphans_acted_on(action, reconciliation).await?;
        self.note(&super::summaries::OrphansDone(&done));
        Ok(done)
    }

    /// [`Engine::act_on_orphans`], not noted in the run's history.
    async fn orphans_acted_on(
        &self,
        action: &OrphanAction,
        reconciliation: &Reconciliation,
    ) -> Result<Done<Vec<OrphanResult>>> {
        let results = match action {
            OrphanAction::None => return Ok(Done::default()),
            OrphanAction::Adopt => self.adopt_orphans(&reconciliation.orphans).await?,
            OrphanAction::Delete { only } if only.is_empty() => {
                self.delete_orphans(&reconciliation.orphans).await?
            }
            OrphanAction::Delete { only } => {
                let (named, mut refused) = reconciliation.named(only);
                let mut results = self.delete_orphans(&named).await?;
                results.append(&mut refused);
                results
            }
        };
        Ok(self.done(results).await)
    }

    /// Keeps `reconciliation` as the last one (what deletions consult).
    pub(super) fn save_reconciliation(&self, reconciliation: &Reconciliation) -> Result<()> {
        if let Ok(mut disputed) = self.disputed.lock() {
            *disputed = Some(std::sync::Arc::new(reconciliation.disputed_archives()));
        }
        self.state.put_report(
            RECONCILIATION_REPORT,
            &serde_json::to_string(reconciliation)?,
            reconciliation.checked_at,
        )
    }

    /// The reconciliation [`Engine::inventory`] saved last (None before the first,
    /// or when it was written by an incompatible version).
    pub async fn last_reconciliation(&self) -> Result<Option<Reconciliation>> {
        let state = std::sync::Arc::clone(&self.state);
        let body = tokio::task::spawn_blocking(move || state.report(RECONCILIATION_REPORT))
            .await
            .map_err(|e| anyhow::anyhow!("local state task failed: {e}"))??;
        Ok(body.and_then(|body| serde_json::from_str(&body).ok()))
    }

    /// Compares an inventory with every catalog record of the set.
    pub async fn reconcile(&self, inventory: &Inventory) -> Result<Reconciliation> {
        let records = self.catalog.records().await?;
        let deleted = self.state.deleted_archives()?;
        let target = self.store.target();
        let owners = Owners::of(&inventory.archives, &self.owner);
        let listed: HashMap<&str, &ArchiveListing> = inventory
            .archives
            .iter()
            .map(|a| (a.archive_id.as_str(), a))
            .collect();
        let mut report = Reconciliation {
            inventory_date: inventory.date,
            checked_at: now_secs(),
            archive_count: inventory.archives.len() as u64,
            record_count: records.len() as u64,
            ..Reconciliation::default()
        };
        let mut known: HashSet<&str> = HashSet::with_capacity(records.len());
        let mut moved = HashMap::new();
        for record in &records {
            known.insert(record.archive_id.as_str());
            if record.archive_id == EMPTY_ARCHIVE_ID {
                report.empty_sentinels += 1;
                continue;
            }
            match listed.get(record.archive_id.as_str()) {
                Some(listing) => {
                    // Another set's by its description or its claim, or claimed
                    // by another set as well as this one.
                    let others = owners.claimed_by_others(&record.archive_id);
                    let owner = match owners.whose(listing) {
                        Whose::Other(owner) => Some(owner),
                        _ if !others.is_empty() => Some(others.join(",")),
                        _ => None,
                    };
                    if let Some(owner) = owner {
                        report.disputed.push(Disputed {
                            key: record.key.clone(),
                            archive_id: record.archive_id.clone(),
                            owner,
                            state: record.state.as_str().into(),
                        });
                    }
                    // A placeholder holds empty content: by its description, or by
                    // the catalog when the description is unreadable.
                    let described = description::decode(&listing.description)
                        .ok()
                        .and_then(|d| d.size)
                        .or((record.size == 0).then_some(0));
                    let (size, tree_hash) = listing.content(described);
                    let unknown = tree_hash == crate::model::UNKNOWN_TREE_HASH
                        || record.tree_hash == crate::model::UNKNOWN_TREE_HASH;
                    // A packed file is a range of its pack: the pack must hold
                    // that range (its bytes are checked when restored).
                    let fits_pack = record.pack.is_some_and(|slot| {
                        slot.len == record.size
                            && slot.offset.saturating_add(slot.len) <= listing.size
                    });
                    if fits_pack
                        || (record.pack.is_none()
                            && size == record.size
                            && (unknown || tree_hash == record.tree_hash))
                    {
                        report.matched += 1;
                    } else {
                        report.mismatched.push(Mismatch {
                            key: record.key.clone(),
                            archive_id: record.archive_id.clone(),
                            catalog_size: record.size,
                            catalog_tree_hash: hex::encode(record.tree_hash),
                            store_size: listing.size,
                            store_tree_hash: hex::encode(listing.tree_hash),
                        });
                    }
                }
                None if !same_store(&record.target, &target, &mut moved) => report.other_store += 1,
                // Its deletion is under way: absence is what it is waiting for.
                None if record.state == ArchiveState::Deleting => {}
                None if record.uploaded_at >= inventory.date => report.too_new += 1,
                None => report.missing.push(Missing {
                    key: record.key.clone(),
                    archive_id: record.archive_id.clone(),
                    size: record.size,
                    uploaded_at: record.uploaded_at,
                    state: record.state.as_str().into(),
                }),
            }
        }
        // The packs of this set none of whose files the catalog records: their
        // indexes name those files where the store retrieves at once (else
        // adopting them reads them).
        let orphan_packs: Vec<ArchiveListing> = inventory
            .archives
            .iter()
            .filter(|a| !known.contains(a.archive_id.as_str()))
            .filter(|a| pack_facts(a).is_some() && owners.whose(a) == Whose::Mine)
            .cloned()
            .collect();
        let pack_indexes = if !orphan_packs.is_empty()
            && self.store.expected_wait(crate::model::Tier::Standard).1 == 0
        {
            match self
                .read_pack_indexes(&orphan_packs, crate::model::Tier::Standard, false)
                .await?
            {
                IndexFetch::Ready(indexes) => indexes,
                IndexFetch::Waiting { .. } => PackIndexes::new(),
            }
        } else {
            PackIndexes::new()
        };
        let slots = PackSlots::of(&records);
        let mut others: BTreeMap<String, u64> = BTreeMap::new();
        for listing in &inventory.archives {
            if known.contains(listing.archive_id.as_str()) {
                if let Some(facts) = pack_facts(listing)
                    && !slots.all_known(&listing.archive_id, facts.members)
                {
                    report.partly_recorded_packs.push(PartlyRecordedPack {
                        archive_id: listing.archive_id.clone(),
                        files: facts.members,
                        recorded: slots.recorded(&listing.archive_id),
                        created_at: listing.created_at,
                    });
                }
                continue;
            }
            let whose = owners.whose(listing);
            if let Whose::Other(owner) = whose {
                *others.entry(owner).or_default() += 1;
                continue;
            }
            match kind_of(listing) {
                Kind::Snapshot => {
                    report.snapshots += 1;
                    continue;
                }
                Kind::Claim => {
                    report.claims += 1;
                    continue;
                }
                Kind::File => {}
            }
            if deleted
                .get(&listing.archive_id)
                .is_some_and(|&at| at >= inventory.date)
            {
                report.deleted_since += 1;
                continue;
            }
            let orphan = match pack_facts(listing) {
                Some(facts) => Orphan::of_pack(
                    listing,
                    facts,
                    pack_indexes.get(&listing.archive_id),
                    &self.owner,
                ),
                None => Orphan::from_listing(listing, &target, &self.host, &self.owner),
            };
            if whose == Whose::Unknown && owners.shared() {
                report.unclaimed.push(orphan);
            } else {
                report.orphans.push(orphan);
            }
        }
        report.other_sets = others
            .into_iter()
            .map(|(owner, archives)| OtherSet {
                name: owners.name_of(&owner).map(str::to_owned),
                owner,
                archives,
            })
            .collect();
        report
            .other_sets
            .sort_by(|a, b| (&a.name, &a.owner).cmp(&(&b.name, &b.owner)));
        report.orphans.sort_by_key(|o| (o.key(), o.created_at));
        report.unclaimed.sort_by_key(|o| (o.key(), o.created_at));
        report.missing.sort_by(|a, b| a.key.cmp(&b.key));
        report.mismatched.sort_by(|a, b| a.key.cmp(&b.key));
        report.disputed.sort_by(|a, b| a.key.cmp(&b.key));
        report
            .partly_recorded_packs
            .sort_by_key(|p| (p.created_at, p.archive_id.clone()));
        Ok(report)
    }

    /// Records orphans whose description names a file (firn1 or mt2) under a safe
    /// path: as the current version of a file that has none (the newest orphan of
    /// a file first), else as a superseded version. Results are in input order.
    pub(super) async fn adopt_orphans(&self, orphans: &[Orphan]) -> Result<Vec<OrphanResult>> {
        let records = self.catalog.records().await?;
        let mut known: HashSet<String> = records.iter().map(|r| r.archive_id.clone()).collect();
        let mut has_current: HashSet<String> = records
            .iter()
            .filter(|r| r.state == ArchiveState::Current)
            .map(|r| r.key.clone())
            .collect();
        drop(records);
        let target = self.store.target();
        // Orphan packs are adopted from their indexes, read first (through
        // their retrieval jobs; not waited for).
        let packs: Vec<ArchiveListing> = orphans
            .iter()
            .filter(|o| o.pack.is_some() && o.refused.is_none())
            .filter(|o| !known.contains(&o.archive_id))
            .filter_map(|o| o.listing())
            .collect();
        let indexes = match self
            .read_pack_indexes(&packs, crate::model::Tier::Standard, false)
            .await?
        {
            IndexFetch::Ready(indexes) => indexes,
            IndexFetch::Waiting { .. } => PackIndexes::new(),
        };
        let mut order: Vec<usize> = (0..orphans.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(orphans[i].created_at));
        let mut results: Vec<Option<OrphanResult>> = vec![None; orphans.len()];
        for i in order {
            let orphan = &orphans[i];
            let outcome = if known.contains(&orphan.archive_id) {
                (orphan.key(), OrphanOutcome::AlreadyInCatalog)
            } else if orphan.pack.is_some() {
                let outcome = self
                    .adopt_pack(orphan, &indexes, &target, &mut has_current)
                    .await;
                if matches!(
                    outcome.1,
                    OrphanOutcome::AdoptedCurrent | OrphanOutcome::AdoptedSuperseded
                ) {
                    known.insert(orphan.archive_id.clone());
                }
                outcome
            } else {
                match orphan.listing() {
                    None => (
                        orphan.key(),
                        OrphanOutcome::Refused(format!("bad tree hash {:?}", orphan.tree_hash)),
                    ),
                    Some(listing) => {
                        match record_from(&listing, &target, &self.host, &self.owner) {
                            Err(refusal) => (refusal.key, OrphanOutcome::Refused(refusal.reason)),
                            Ok(mut record) => {
                                let key = Some(record.key.clone());
                                let adopted = if has_current.contains(&record.key) {
                                    record.state = ArchiveState::Superseded;
                                    record.superseded_at = Some(now_secs());
                                    self.catalog
                                        .record_superseded(&record)
                                        .await
                                        .map(|()| OrphanOutcome::AdoptedSuperseded)
                                } else {
                                    self.catalog
                                        .record_upload(&record, None)
                                        .await
                                        .map(|()| OrphanOutcome::AdoptedCurrent)
                                };
                                match adopted {
                                    Ok(outcome) => {
                                        known.insert(record.archive_id.clone());
                                        has_current.insert(record.key.clone());
                                        (key, outcome)
                                    }
                                    Err(e) => (key, OrphanOutcome::Failed(format!("{e:#}"))),
                                }
                            }
                        }
                    }
                }
            };
            results[i] = Some(OrphanResult {
                archive_id: orphan.archive_id.clone(),
                key: outcome.0,
                outcome: outcome.1,
            });
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Records every file of an orphan pack from its index (read by
    /// [`Engine::adopt_orphans`]): as the current version of a file that has
    /// none, else as a superseded one. The path named is the first file's.
    async fn adopt_pack(
        &self,
        orphan: &Orphan,
        indexes: &PackIndexes,
        target: &str,
        has_current: &mut HashSet<String>,
    ) -> (Option<String>, OrphanOutcome) {
        if let Some(why) = &orphan.refused {
            return (None, OrphanOutcome::Refused(why.clone()));
        }
        let Some(listing) = orphan.listing() else {
            return (
                None,
                OrphanOutcome::Refused(format!("bad tree hash {:?}", orphan.tree_hash)),
            );
        };
        let Some(index) = indexes.get(&orphan.archive_id) else {
            return (
                None,
                OrphanOutcome::Refused(
                    "its index is being retrieved (a job of the store); adopt it again once the retrieval is ready".into(),
                ),
            );
        };
        let (mut current, mut first, mut problems) = (false, None, Vec::new());
        for member in self.members_of(&listing, Some(index), target) {
            let mut record = match member {
                Ok(record) => record,
                Err(skipped) => {
                    problems.push(format!(
                        "{}: {}",
                        skipped.key.as_deref().unwrap_or("the pack"),
                        skipped.reason
                    ));
                    continue;
                }
            };
            first.get_or_insert_with(|| record.key.clone());
            let adopted = if has_current.contains(&record.key) {
                record.state = ArchiveState::Superseded;
                record.superseded_at = Some(now_secs());
                self.catalog.record_superseded(&record).await
            } else {
                current = true;
                self.catalog.record_upload(&record, None).await
            };
            match adopted {
                Ok(()) => {
                    has_current.insert(record.key.clone());
                }
                Err(e) => problems.push(format!("{}: {e:#}", record.key)),
            }
        }
        let outcome = if !problems.is_empty() {
            OrphanOutcome::Failed(format!(
                "{} of the pack's files not recorded: {}",
                problems.len(),
                problems.join("; ")
            ))
        } else if current {
            OrphanOutcome::AdoptedCurrent
        } else {
            OrphanOutcome::AdoptedSuperseded
        };
        (first, outcome)
    }

    /// The archive ids the catalog records (any version, any store).
    pub(super) async fn known_archive_ids(&self) -> Result<HashSet<String>> {
        Ok(self
            .catalog
            .records()
            .await?
            .into_iter()
            .map(|r| r.archive_id)
            .collect())
    }

    /// Deletes orphans from the store (and unclaimed archives a person named,
    /// see [`Reconciliation::named`]). An archive the catalog records by now, or
    /// whose description names another set, is refused, never deleted. Results
    /// are in input order.
    pub(super) async fn delete_orphans(&self, orphans: &[Orphan]) -> Result<Vec<OrphanResult>> {
        let known = self.known_archive_ids().await?;
        let mut results = Vec::with_capacity(orphans.len());
        for orphan in orphans {
            let outcome = if known.contains(&orphan.archive_id) {
                OrphanOutcome::Refused(
                    "the catalog records this archive: it is no orphan any more".into(),
                )
            } else if let Some(owner) = orphan.owner().filter(|o| *o != self.owner) {
                OrphanOutcome::Refused(format!(
                    "written by another set sharing this store ({owner}); only that set deletes it"
                ))
            } else if orphan.archive_id == EMPTY_ARCHIVE_ID {
                OrphanOutcome::Refused("not an archive".into())
            } else {
                match self.store.delete(&orphan.archive_id).await {
                    Ok(()) => {
                        self.state
                            .remember_deleted(&orphan.archive_id, now_secs())?;
                        OrphanOutcome::Deleted
                    }
                    Err(e) => OrphanOutcome::Failed(format!("{e:#}")),
                }
            };
            results.push(OrphanResult {
                archive_id: orphan.archive_id.clone(),
                key: orphan.key(),
                outcome,
            });
        }
        Ok(results)
    }

    /// The packs of this set (or of unknown owner, when `adopt_unknown`) in
    /// `archives` whose members the catalog does not all record: the ones a
    /// rebuild reads the index of. Another set's pack is never read.
    pub(super) async fn packs_to_read(
        &self,
        archives: &[ArchiveListing],
        owners: &Owners,
        adopt_unknown: bool,
    ) -> Result<Vec<ArchiveListing>> {
        let slots = PackSlots::of(&self.catalog.records().await?);
        Ok(archives
            .iter()
            .filter(|a| pack_facts(a).is_some_and(|f| !slots.all_known(&a.archive_id, f.members)))
            .filter(|a| match owners.whose(a) {
                Whose::Mine => true,
                Whose::Unknown => adopt_unknown,
                Whose::Other(_) => false,
            })
            .cloned()
            .collect())
    }

    /// The records of a pack's members (state current), from its index, or
    /// why each cannot be one: an index another set wrote is none of this
    /// set's; a member with an unsafe path or outside the pack is skipped.
    fn members_of(
        &self,
        listing: &ArchiveListing,
        index: Option<&Result<crate::pack::Index, String>>,
        target: &str,
    ) -> Vec<Result<ArchiveRecord, Skipped>> {
        let skip = |key: Option<String>, reason: String| Skipped {
            archive_id: listing.archive_id.clone(),
            key,
            reason,
            foreign: false,
        };
        let index = match index {
            Some(Ok(index)) => index,
            Some(Err(why)) => {
                return vec![Err(skip(
                    None,
                    format!("a pack whose index cannot be read: {why}"),
                ))];
            }
            None => {
                return vec![Err(skip(None, "a pack whose index was not read".into()))];
            }
        };
        if index.owner != self.owner {
            return vec![Err(skip(
                None,
                format!(
                    "a pack whose index names another set ({}), though its description names this one",
                    index.owner
                ),
            ))];
        }
        // Members' bytes lie before the index and trailer.
        let end = listing.size.saturating_sub(crate::pack::TRAILER_LEN);
        let host = if index.host.is_empty() {
            self.host.clone()
        } else {
            index.host.clone()
        };
        index
            .members
            .iter()
            .map(|m| {
                if let Err(why) = pathkey::safe_key(&m.key, m.raw.as_deref()) {
                    return Err(skip(Some(m.key.clone()), format!("unsafe path: {why}")));
                }
                if m.offset.checked_add(m.size).is_none_or(|e| e > end) {
                    return Err(skip(
                        Some(m.key.clone()),
                        format!(
                            "its index places it at {}+{} bytes, outside the pack's {} bytes",
                            m.offset, m.size, listing.size
                        ),
                    ));
                }
                Ok(ArchiveRecord {
                    key: m.key.clone(),
                    raw: m.raw.clone(),
                    size: m.size,
                    mtime_ns: m.mtime_ns,
                    sha1: m.sha1,
                    tree_hash: m.tree_hash,
                    archive_id: listing.archive_id.clone(),
                    target: target.to_owned(),
                    uploaded_at: listing.created_at,
                    state: ArchiveState::Current,
                    host: host.clone(),
                    superseded_at: None,
                    pack: Some(crate::catalog::PackSlot {
                        offset: m.offset,
                        len: m.size,
                    }),
                })
            })
            .collect()
    }

    /// Recreates the catalog of this set from an inventory's archive descriptions
    /// (firn2, firn1 and mt2). Only this set's archives are taken (`owners` reads
    /// them off the whole listing): another set's are counted and left alone,
    /// and those of unknown owner are counted and left alone unless
    /// `adopt_unknown`. Per file, the archive created last is current and the
    /// others superseded (at their successor's creation). Archives the catalog
    /// already records are left alone (a merge); for a file the catalog knows, a
    /// newer archive becomes current and older ones are added as superseded.
    /// Archives whose description is foreign, holds only a path hash, names an
    /// unsafe path or disagrees with the stored size are skipped and listed.
    pub(super) async fn rebuild_catalog(
        &self,
        inventory: &Inventory,
        owners: &Owners,
        adopt_unknown: bool,
        indexes: &PackIndexes,
    ) -> Result<RebuildReport> {
        let existing = self.catalog.records().await?;
        let target = self.store.target();
        let mut report = RebuildReport {
            inventory_date: inventory.date,
            archive_count: inventory.archives.len() as u64,
            merged: !existing.is_empty(),
            ..RebuildReport::default()
        };
        let known: HashSet<&str> = existing.iter().map(|r| r.archive_id.as_str()).collect();
        let slots = PackSlots::of(&existing);
        let mut by_key: BTreeMap<String, Vec<ArchiveRecord>> = BTreeMap::new();
        for listing in &inventory.archives {
            let facts = pack_facts(listing);
            if facts.is_none() && known.contains(listing.archive_id.as_str()) {
                report.already_known += 1;
                continue;
            }
            if let Some(facts) = facts
                && slots.all_known(&listing.archive_id, facts.members)
            {
                report.already_known += facts.members;
                continue;
            }
            match owners.whose(listing) {
                Whose::Mine => {}
                Whose::Other(_) => {
                    report.other_sets += 1;
                    continue;
                }
                Whose::Unknown if !adopt_unknown => {
                    report.unknown_owner += 1;
                    continue;
                }
                Whose::Unknown => {}
            }
            if facts.is_some() {
                // A pack: its members, from its index.
                let members = self.members_of(listing, indexes.get(&listing.archive_id), &target);
                for member in members {
                    match member {
                        Ok(record) if slots.has(&record) => report.already_known += 1,
                        Ok(record) => by_key.entry(record.key.clone()).or_default().push(record),
                        Err(skipped) => report.skipped.push(skipped),
                    }
                }
                continue;
            }
            match record_from(listing, &target, &self.host, &self.owner) {
                Ok(record) => by_key.entry(record.key.clone()).or_default().push(record),
                Err(refusal) => report.skipped.push(Skipped {
                    archive_id: listing.archive_id.clone(),
                    key: refusal.key,
                    reason: refusal.reason,
                    foreign: refusal.foreign,
                }),
            }
        }
        let mut existing_by_key: HashMap<&str, Vec<&ArchiveRecord>> = HashMap::new();
        for record in &existing {
            existing_by_key
                .entry(record.key.as_str())
                .or_default()
                .push(record);
        }
        let now = now_secs();
        let mut batch = Vec::new();
        for (key, mut group) in by_key {
            group.sort_by(|a, b| {
                (a.uploaded_at, &a.archive_id, a.pack.map(|p| p.offset)).cmp(&(
                    b.uploaded_at,
                    &b.archive_id,
                    b.pack.map(|p| p.offset),
                ))
            });
            report.files += 1;
            report.unknown_sha1 += group.iter().filter(|r| r.sha1 == UNKNOWN_SHA1).count() as u64;
            let current = existing_by_key
                .get(key.as_str())
                .and_then(|v| v.iter().find(|r| r.state == ArchiveState::Current).copied());
            let known_key = existing_by_key.contains_key(key.as_str());
            // The newest archive found becomes current unless the catalog has a
            // newer current version.
            let promote = match current {
                Some(c) => group.last().is_some_and(|r| r.uploaded_at > c.uploaded_at),
                None => true,
            };
            let successor_of_last = match (promote, current) {
                (false, Some(c)) => c.uploaded_at,
                _ => now,
            };
            let newest = if promote { group.pop() } else { None };
            let older: Vec<ArchiveRecord> = (0..group.len())
                .map(|i| {
                    let mut r = group[i].clone();
                    r.state = ArchiveState::Superseded;
                    r.superseded_at = Some(match (group.get(i + 1), &newest) {
                        (Some(next), _) => next.uploaded_at,
                        (None, Some(newest)) => newest.uploaded_at,
                        (None, None) => successor_of_last,
                    });
                    r
                })
                .collect();
            report.superseded += older.len() as u64;
            report.current += u64::from(newest.is_some());
            if known_key {
                // Another record of this file exists: conditional writes, one by one.
                if let Some(newest) = &newest {
                    self.catalog
                        .record_upload(newest, current.map(|c| c.archive_id.as_str()))
                        .await?;
                }
                for r in &older {
                    self.catalog.record_superseded(r).await?;
                }
            } else {
                batch.extend(older);
                batch.extend(newest);
            }
        }
        self.catalog.import(&batch).await?;
        Ok(report)
    }
}
