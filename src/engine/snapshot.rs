//! Catalog snapshots (invariant 10: losing the catalog loses nothing). After every
//! run that changed a set's catalog, and on demand, the whole catalog of the set
//! (every version, raw name bytes, paths of any length, states, upload and
//! supersession times) goes into the set's own store as one archive, verified like
//! any other, whose description marks it as a snapshot of that set. A rebuild
//! starts from the newest snapshot, adds what the store holds beyond it, and drops
//! what the store no longer holds.
//!
//! Format (version 2): gzip of JSON lines; the first line a header
//! `{"firn_catalog_snapshot": 2, "set", "created_ms", "records", "target"}`, then
//! one line per record (`k` key, `r` raw name bytes base64url, `s` size, `m` mtime
//! ns, `h` SHA-1 hex, `t` tree hash hex, `a` archive id, `g` target, `u` uploaded
//! at, `st` state, `o` host, `x` superseded at, `p` `[offset, length]` of a packed
//! file's bytes in the pack `a`). Version 1 is the same without `p`, and is read
//! as it is; a firn that reads only version 1 refuses version 2 rather than take
//! a packed file for a whole archive.
//!
//! Old snapshots are pruned: the newest [`SNAPSHOTS_KEPT`] stay, older ones go once
//! they are past the store's minimum storage period (deleting earlier is billed).

use std::io::{BufRead, Write};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog as _;
use std::collections::{HashMap, HashSet};

use super::inventory::{InventoryFetch, RebuildReport, Skipped, SnapshotUsed};
use super::owners::{Kind, Owners, Whose, kind_of};
use super::pack_index::IndexFetch;
use super::snapshot_packs::{LightIndex, MemberLine, PackEntry, PackLine, PackedRecords, gunzip};
use super::{Engine, Progress, RestoreOptions, RestoreOutcome};
use crate::catalog::{ArchiveRecord, ArchiveState, SnapshotRecord};
use crate::description::SnapshotDescription;
use crate::hash::ContentHasher;
use crate::model::ContentHash;
use crate::model::now_secs;

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
use crate::model::Tier;
use crate::store::{ArchiveListing, Inventory};

/// Snapshots kept whatever their age (older ones go once past the minimum period).
pub const SNAPSHOTS_KEPT: usize = 3;

#[derive(Serialize, Deserialize)]
struct Header {
    firn_catalog_snapshot: u32,
    set: String,
    created_ms: i64,
    records: u64,
    target: String,
}

#[derive(Serialize, Deserialize)]
struct Line {
    k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    s: u64,
    m: i64,
    h: String,
    t: String,
    a: String,
    g: String,
    u: i64,
    st: String,
    o: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<(u64, u64)>,
}

/// The newest snapshot format this firn reads (it reads every version up to
/// it): 3 where pack entries stand for packed records, else 2.
const SNAPSHOT_FORMAT: u32 = 3;
/// The format of a complete snapshot (every record whole).
const COMPLETE_FORMAT: u32 = 2;

/// The compressed snapshot of `records`.
#[cfg(test)]
pub fn encode(
    set_id: &str,
    target: &str,
    created_ms: i64,
    records: &[ArchiveRecord],
) -> Result<Vec<u8>> {
    let mut writer = SnapshotWriter::new(
        Vec::new(),
        COMPLETE_FORMAT,
        set_id,
        target,
        created_ms,
        records.len() as u64,
    )?;
    for record in records {
        writer.push(record)?;
    }
    Ok(writer.finish()?.0)
}

/// Writes a snapshot record by record (gzip JSON lines) and hashes the
/// compressed bytes as they go: nothing of the catalog is held in memory.
pub struct SnapshotWriter<W: Write> {
    // Buffered before compression: flate2 prepares its output buffer on every
    // write, which small JSON fragments would make slow.
    out: std::io::BufWriter<flate2::write::GzEncoder<Hashing<W>>>,
    records: u64,
}

/// A writer that hashes (SHA-1 and tree hash) what it passes on.
pub struct Hashing<W: Write> {
    inner: W,
    hasher: ContentHasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> SnapshotWriter<W> {
    /// Starts a snapshot in `format`; `records` is how many catalog records it
    /// stands for.
    pub fn new(
        inner: W,
        format: u32,
        set_id: &str,
        target: &str,
        created_ms: i64,
        records: u64,
    ) -> Result<Self> {
        let hashing = Hashing {
            inner,
            hasher: ContentHasher::new(),
        };
        let gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
        let mut out = std::io::BufWriter::with_capacity(256 << 10, gz);
        let header = Header {
            firn_catalog_snapshot: format,
            set: set_id.to_string(),
            created_ms,
            records,
            target: target.to_string(),
        };
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
        Ok(SnapshotWriter { out, records: 0 })
    }

    pub fn push(&mut self, r: &ArchiveRecord) -> Result<()> {
        let line = Line {
            k: r.key.clone(),
            r: r.raw.as_ref().map(|raw| URL_SAFE_NO_PAD.encode(raw)),
            s: r.size,
            m: r.mtime_ns,
            h: hex::encode(r.sha1),
            t: hex::encode(r.tree_hash),
            a: r.archive_id.clone(),
            g: r.target.clone(),
            u: r.uploaded_at,
            st: r.state.as_str().into(),
            o: r.host.clone(),
            x: r.superseded_at,
            p: r.pack.map(|slot| (slot.offset, slot.len)),
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.records += 1;
        Ok(())
    }

    /// One line of another kind (a pack's, a member's: see `snapshot_packs`).
    pub fn push_line<T: Serialize>(&mut self, line: &T) -> Result<()> {
        serde_json::to_writer(&mut self.out, line)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Finishes the gzip stream: the inner writer, the hash and size of the
    /// compressed bytes, and how many records were written whole.
    pub fn finish(self) -> Result<(W, ContentHash, u64)> {
        let gz = self
            .out
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write the snapshot: {}", e.error()))?;
        let hashing = gz.finish()?;
        Ok((hashing.inner, hashing.hasher.finish(), self.records))
    }
}

/// What a snapshot holds.
#[derive(Debug)]
pub struct Decoded {
    pub set: String,
    /// Unix ms.
    pub created_ms: i64,
    /// Where its packs are (the store it was written to).
    pub target: String,
    /// The records it holds whole.
    pub records: Vec<ArchiveRecord>,
    /// The packs whose indexes hold the rest (format 3).
    pub(super) packs: Vec<PackEntry>,
}

impl Decoded {
    /// How many catalog records it stands for.
    pub fn total(&self) -> u64 {
        self.records.len() as u64 + self.packs.iter().map(PackEntry::live_count).sum::<u64>()
    }
}

fn record_of(line: Line) -> Result<ArchiveRecord> {
    let digest = |text: &str| hex::decode(text).ok();
    Ok(ArchiveRecord {
        raw: match &line.r {
            Some(raw) => Some(URL_SAFE_NO_PAD.decode(raw).context("corrupt raw name")?),
            None => None,
        },
        key: line.k,
        size: line.s,
        mtime_ns: line.m,
        sha1: digest(&line.h)
            .and_then(|d| d.try_into().ok())
            .context("corrupt SHA-1 in snapshot")?,
        tree_hash: digest(&line.t)
            .and_then(|d| d.try_into().ok())
            .context("corrupt tree hash in snapshot")?,
        archive_id: line.a,
        target: line.g,
        uploaded_at: line.u,
        state: ArchiveState::parse(&line.st).context("corrupt state in snapshot")?,
        host: line.o,
        superseded_at: line.x,
        pack: line
            .p
            .map(|(offset, len)| crate::catalog::PackSlot { offset, len }),
    })
}

/// What a snapshot holds (formats 1, 2 and 3).
pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(bytes));
    let mut lines = reader.lines();
    let header: Header = serde_json::from_str(&lines.next().context("empty snapshot")??)
        .context("not a firn catalog snapshot")?;
    if header.firn_catalog_snapshot > SNAPSHOT_FORMAT || header.firn_catalog_snapshot == 0 {
        bail!(
            "catalog snapshot format {} is newer than this firn reads; update firn",
            header.firn_catalog_snapshot
        );
    }
    let with_packs = header.firn_catalog_snapshot >= 3;
    let mut records = Vec::with_capacity(header.records as usize);
    let mut packs: Vec<PackEntry> = Vec::new();
    let mut members: Vec<MemberLine> = Vec::new();
    for line in lines {
        let line = line?;
        // Each kind of line starts with its own first field.
        if with_packs && line.starts_with("{\"pack\":") {
            let line: PackLine = serde_json::from_str(&line).context("corrupt snapshot line")?;
            packs.push(PackEntry::from_line(line)?);
        } else if with_packs && line.starts_with("{\"in\":") {
            members.push(serde_json::from_str(&line).context("corrupt snapshot line")?);
        } else {
            let line: Line = serde_json::from_str(&line).context("corrupt snapshot line")?;
            records.push(record_of(line)?);
        }
    }
    let at: HashMap<String, usize> = packs
        .iter()
        .enumerate()
        .map(|(i, p)| (p.archive_id.clone(), i))
        .collect();
    for member in members {
        let Some(&i) = at.get(&member.pack) else {
            bail!(
                "corrupt snapshot: a line names pack {}, which it does not list",
                member.pack
            );
        };
        packs[i].diffs.insert(member.i, member.diff);
    }
    let decoded = Decoded {
        set: header.set,
        created_ms: header.created_ms,
        target: header.target,
        records,
        packs,
    };
    if decoded.total() != header.records {
        bail!(
            "the snapshot holds {} records, its header says {}",
            decoded.total(),
            header.records
        );
    }
    Ok(decoded)
}

/// What storing the catalog's snapshot at the end of a run did (invariant 10):
/// every job that may change the catalog ends with it, itself.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AfterRun {
    /// The snapshot stored (none when the catalog did not change).
    #[serde(rename = "catalog_snapshot", skip_serializing_if = "Option::is_none")]
    pub stored: Option<SnapshotReport>,
    /// Why the snapshot is not stored (the next run retries).
    #[serde(
        rename = "catalog_snapshot_error",
        skip_serializing_if = "Option::is_none"
    )]
    pub error: Option<String>,
}

impl AfterRun {
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// What a job reports: its own report, and what storing the catalog's snapshot
/// after it did.
#[derive(Debug, Clone, Default)]
pub struct Done<R> {
    pub report: R,
    pub after: AfterRun,
}

/// What writing a snapshot did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SnapshotReport {
    pub archive_id: String,
    pub records: u64,
    /// Compressed bytes stored.
    pub bytes: u64,
    pub seconds: f64,
    /// Older snapshots deleted, and those kept for their minimum storage period.
    pub pruned: u64,
    pub kept_early: u64,
    /// Packs whose own indexes hold their members' records (format 3: the
    /// embedded store), each named once instead.
    #[serde(skip_serializing_if = "is_zero")]
    pub packs: u64,
    /// Why the snapshot holds every record whole on a store whose packs'
    /// indexes could stand for them (a pack's index did not read, or did not
    /// hold what the catalog records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole_because: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The newest snapshot of `set_id` a store listing holds.
pub fn newest_in<'a>(
    listing: &'a [ArchiveListing],
    set_id: &str,
) -> Option<(&'a ArchiveListing, SnapshotDescription)> {
    listing
        .iter()
        .filter_map(|a| {
            let d = SnapshotDescription::decode(&a.description)?;
            d.is_of(set_id).then_some((a, d))
        })
        .max_by_key(|(a, d)| (d.created_ms, a.created_at))
}

/// How to rebuild a lost catalog.
#[derive(Debug, Clone, Copy)]
pub struct RebuildOptions {
    /// Wait for the store's jobs (inventory, snapshot retrieval) instead of
    /// returning [`RebuildOutcome::Waiting`].
    pub wait: bool,
    /// The tier the snapshot is retrieved with.
    pub tier: Tier,
    /// Start from the newest snapshot (else: archive descriptions alone).
    pub use_snapshot: bool,
    /// Also adopt archives of unknown owner (written before archives named their
    /// set, or by mt-aws-glacier): only right when no other set ever shared the
    /// store, or when the set's own claims were lost.
    pub adopt_unknown: bool,
}

/// What `firn catalog rebuild` found: a report, or a job the store has not finished.
#[derive(Debug)]
pub enum RebuildOutcome {
    Waiting {
        /// What is awaited: the inventory, or the snapshot's retrieval.
        what: &'static str,
        requested_at: i64,
        ready_at: Option<i64>,
    },
    Ready(RebuildReport),
}

/// The name a retrieved snapshot is written under in the set's state directory.
const SNAPSHOT_FILE: &str = "catalog-snapshot.gz";

/// Present in the set's state directory while a snapshot is owed.
pub(super) const SNAPSHOT_DUE: &str = "snapshot-due";

impl Engine {
    /// Rebuilds a lost catalog: from the newest snapshot of the set the store holds
    /// (retrieved with `tier`; on Glacier that takes a job, persisted and resumed
    /// by the next run), then from the descriptions of the archives stored after it,
    /// dropping what the store no longer holds. Without a snapshot: from the
    /// descriptions alone.
    ///
    /// Stores the rebuilt catalog's snapshot when it is done.
    pub async fn rebuild(&self, options: &RebuildOptions) -> Result<Done<RebuildOutcome>> {
        let outcome = self.rebuild_from_store(options).await?;
        let done = self.done(outcome).await;
        self.note(&done);
        Ok(done)
    }

    async fn rebuild_from_store(&self, options: &RebuildOptions) -> Result<RebuildOutcome> {
        let RebuildOptions {
            wait,
            tier,
            use_snapshot,
            adopt_unknown,
        } = *options;
        let inventory = match self.fetch_inventory(wait).await? {
            InventoryFetch::Waiting {
                requested_at,
                ready_at,
            } => {
                return Ok(RebuildOutcome::Waiting {
                    what: "the store's inventory",
                    requested_at,
                    ready_at,
                });
            }
            InventoryFetch::Ready(inventory) => inventory,
        };
        let snapshots_seen = inventory
            .archives
            .iter()
            .filter(|a| kind_of(a) == Kind::Snapshot)
            .count() as u64;
        let owners = Owners::of(&inventory.archives, &self.owner);
        let files_only = |archives: Vec<ArchiveListing>| Inventory {
            date: inventory.date,
            archives: archives
                .into_iter()
                .filter(|a| kind_of(a) == Kind::File)
                .collect(),
        };
        let newest = newest_in(&inventory.archives, &self.set_id).filter(|_| use_snapshot);
        let Some((listing, described)) = newest else {
            let files = files_only(inventory.archives.clone());
            let packs = self
                .packs_to_read(&files.archives, &owners, adopt_unknown)
                .await?;
            let indexes = match self.read_pack_indexes(&packs, tier, wait).await? {
                IndexFetch::Waiting {
                    requested_at,
                    ready_at,
                } => {
                    return Ok(RebuildOutcome::Waiting {
                        what: "the retrieval of the packs whose indexes name their files",
                        requested_at,
                        ready_at,
                    });
                }
                IndexFetch::Ready(indexes) => indexes,
            };
            let mut report = self
                .rebuild_catalog(&files, &owners, adopt_unknown, &indexes)
                .await?;
            report.archive_count = inventory.archives.len() as u64;
            report.snapshots_seen = snapshots_seen;
            return Ok(RebuildOutcome::Ready(report));
        };
        let listing = listing.clone();

        // The snapshot is retrieved like any archive: a job where the store needs
        // one (persisted, never requested twice), verified before it is read.
        let dir = self.state.dir().join("rebuild");
        let record = ArchiveRecord {
            key: SNAPSHOT_FILE.into(),
            raw: None,
            size: listing.size,
            mtime_ns: described.created_ms.saturating_mul(1_000_000),
            sha1: described.sha1,
            tree_hash: listing.tree_hash,
            archive_id: listing.archive_id.clone(),
            target: self.store.target(),
            uploaded_at: listing.created_at,
            state: ArchiveState::Current,
            host: self.host.clone(),
            superseded_at: None,
            pack: None,
        };
        let options = RestoreOptions {
            destination: dir.clone(),
            overwrite: true,
            tier,
            wait,
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let mut restored = self
            .retrieve(
                self.number(vec![record]),
                &options,
                &Progress::unwatched(cancel),
            )
            .await;
        match restored.results.pop().map(|r| r.outcome) {
            Some(Ok(RestoreOutcome::Waiting {
                requested_at,
                ready_at,
                ..
            })) => {
                return Ok(RebuildOutcome::Waiting {
                    what: "the retrieval of the catalog snapshot",
                    requested_at,
                    ready_at,
                });
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.context("cannot retrieve the catalog snapshot")),
            None => bail!("the catalog snapshot was not retrieved"),
        }
        let path = dir.join(SNAPSHOT_FILE);
        let bytes = tokio::fs::read(&path)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        let decoded = tokio::task::spawn_blocking(move || decode(&bytes))
            .await
            .context("snapshot task failed")??;
        let stands_for = decoded.total();
        let Decoded {
            set,
            created_ms,
            target: snapshot_target,
            mut records,
            packs: named,
        } = decoded;
        if set != self.set_id {
            let _ = tokio::fs::remove_file(&path).await;
            bail!(
                "the newest catalog snapshot in the store is of set {set:?}, not {:?}",
                self.set_id
            );
        }
        let in_snapshot: HashSet<String> = records
            .iter()
            .map(|r| r.archive_id.clone())
            .chain(named.iter().map(|p| p.archive_id.clone()))
            .collect();

        // What was stored after the snapshot is added from its description, or
        // a pack's from its index; what is older and not in the snapshot was
        // deleted since, or never recorded.
        const CLOCK_SLACK: i64 = 300;
        let (beyond, older): (Vec<ArchiveListing>, Vec<ArchiveListing>) = inventory
            .archives
            .iter()
            .filter(|a| !in_snapshot.contains(&a.archive_id))
            .filter(|a| kind_of(a) == Kind::File)
            .cloned()
            .partition(|a| a.created_at >= created_ms.div_euclid(1000) - CLOCK_SLACK);
        let beyond = files_only(beyond);
        // The packs stored after it are read before anything is imported: a
        // run that waits for them keeps the retrieved snapshot (the next one
        // finds it in place and retrieves nothing again).
        let mut packs = self
            .packs_to_read(&beyond.archives, &owners, adopt_unknown)
            .await?;
        // The packs the snapshot names hold the rest of its records in their
        // indexes: read at once where the store can (the only stores whose
        // snapshots name packs), else like any pack.
        let by_id: HashMap<&str, &ArchiveListing> = inventory
            .archives
            .iter()
            .map(|a| (a.archive_id.as_str(), a))
            .collect();
        let mut named_indexes: super::inventory::PackIndexes = HashMap::new();
        for entry in &named {
            let Some(listing) = by_id.get(entry.archive_id.as_str()) else {
                continue;
            };
            if self.store.reads_at_once() {
                let index = match self.index_at_once(&entry.archive_id).await {
                    Ok(gz) => tokio::task::block_in_place(|| crate::pack::decode_index(&gz)),
                    Err(e) => Err(e),
                };
                named_indexes.insert(
                    entry.archive_id.clone(),
                    index.map_err(|e| format!("{e:#}")),
                );
            } else {
                packs.push((*listing).clone());
            }
        }
        let mut indexes = match self.read_pack_indexes(&packs, tier, wait).await? {
            IndexFetch::Waiting {
                requested_at,
                ready_at,
                ..
            } => {
                return Ok(RebuildOutcome::Waiting {
                    what: "the retrieval of the packs stored after the catalog snapshot",
                    requested_at,
                    ready_at,
                });
            }
            IndexFetch::Ready(indexes) => indexes,
        };
        let _ = tokio::fs::remove_file(&path).await;
        indexes.extend(named_indexes);

        // A named pack's records, from its index and what the snapshot says
        // differs: only the members the catalog still held.
        let mut pack_gone = 0u64;
        let mut pack_skipped = Vec::new();
        for entry in &named {
            let why = match indexes.get(&entry.archive_id) {
                Some(Ok(index)) => match entry.expand(index, &self.owner, &snapshot_target) {
                    Ok(members) => {
                        records.extend(members);
                        continue;
                    }
                    Err(why) => why,
                },
                Some(Err(why)) => format!("its index cannot be read: {why}"),
                None if entry.uploaded_at < inventory.date => {
                    // Deleted after the snapshot, like a record's archive.
                    pack_gone += entry.live_count();
                    continue;
                }
                None => "the store's listing does not hold it yet".into(),
            };
            pack_skipped.push(Skipped {
                archive_id: entry.archive_id.clone(),
                key: None,
                reason: format!(
                    "a pack whose index holds {} of the catalog snapshot's records, not brought back: {why}",
                    entry.live_count()
                ),
                foreign: false,
            });
        }

        // What the store no longer holds was deleted after the snapshot: not
        // brought back (the listing's date bounds what it can tell).
        let listed: HashSet<&str> = inventory
            .archives
            .iter()
            .map(|a| a.archive_id.as_str())
            .collect();
        // A version is known by its archive, and a packed one by its place in
        // the pack too (the catalog may hold some of a pack's files and not
        // others).
        // (Empty files share their place: the key tells them apart.)
        let known: HashSet<(String, Option<(u64, String)>)> = self
            .catalog
            .records()
            .await?
            .into_iter()
            .map(|r| (r.archive_id, r.pack.map(|p| (p.offset, r.key))))
            .collect();
        let target = self.store.target();
        let mut used = SnapshotUsed {
            archive_id: listing.archive_id.clone(),
            created_at: created_ms.div_euclid(1000),
            records: stands_for,
            gone: pack_gone,
            ..SnapshotUsed::default()
        };
        let mut import = Vec::with_capacity(records.len());
        for record in records {
            let here = record.target.is_empty() || record.target == target;
            let gone = here
                && record.archive_id != crate::store::EMPTY_ARCHIVE_ID
                && !listed.contains(record.archive_id.as_str())
                && record.uploaded_at < inventory.date;
            if gone {
                used.gone += 1;
            } else if !known.contains(&(
                record.archive_id.clone(),
                record.pack.map(|p| (p.offset, record.key.clone())),
            )) {
                import.push(record);
            }
        }
        used.imported = import.len() as u64;
        self.catalog.import(&import).await?;
        // The snapshots themselves, so pruning goes on from here.
        for (snapshot, d) in inventory.archives.iter().filter_map(|a| {
            let d = SnapshotDescription::decode(&a.description)?;
            d.is_of(&self.set_id).then_some((a, d))
        }) {
            self.catalog
                .record_snapshot(&SnapshotRecord {
                    archive_id: snapshot.archive_id.clone(),
                    target: target.clone(),
                    created_ms: d.created_ms,
                    size: snapshot.size,
                    records: d.records,
                    sha1: d.sha1,
                    tree_hash: snapshot.tree_hash,
                })
                .await?;
        }

        // Then what was stored after the snapshot.
        let mut report = self
            .rebuild_catalog(&beyond, &owners, adopt_unknown, &indexes)
            .await?;
        // Merged means the catalog had records before this rebuild, not that the
        // snapshot's went in first.
        report.merged = !known.is_empty();
        report.archive_count = inventory.archives.len() as u64;
        report.snapshots_seen = snapshots_seen;
        // Only this set's: another set's archives are none of its business.
        for stray in older {
            match owners.whose(&stray) {
                Whose::Mine => {}
                Whose::Unknown if adopt_unknown => {}
                Whose::Other(_) => {
                    report.other_sets += 1;
                    continue;
                }
                Whose::Unknown => {
                    report.unknown_owner += 1;
                    continue;
                }
            }
            report.skipped.push(Skipped {
                archive_id: stray.archive_id,
                key: crate::description::decode(&stray.description)
                    .ok()
                    .and_then(|d| d.key),
                reason: "stored before the newest catalog snapshot but not in it (deleted since, or never recorded); `firn inventory` lists it as an orphan".into(),
                foreign: false,
            });
        }
        report.skipped.extend(pack_skipped);
        report.snapshot = Some(used);
        Ok(RebuildOutcome::Ready(report))
    }

    /// Whether a snapshot is due: the catalog changed since the last one (in this
    /// run, or in one that ended before storing it), or the store holds none of a
    /// catalog that has records (a set backed up by an older firn).
    pub async fn snapshot_due(&self) -> Result<bool> {
        if self.catalog.owes_snapshot() {
            return Ok(true);
        }
        let target = self.store.target();
        let stored = self
            .catalog
            .snapshots()
            .await?
            .iter()
            .any(|s| s.target.is_empty() || s.target == target);
        Ok(!stored && !self.catalog.current_summaries().await?.is_empty())
    }

    /// Ends a run that may have changed the catalog: stores a snapshot when one
    /// is due. Never fails the run by itself: a failure is reported, and leaves
    /// the snapshot due for the next run.
    pub(super) async fn after_run(&self) -> AfterRun {
        let stored = match self.snapshot_due().await {
            Ok(false) => Ok(None),
            Ok(true) => self.snapshot().await.map(Some),
            Err(e) => Err(e),
        };
        match stored {
            Ok(stored) => AfterRun {
                stored,
                error: None,
            },
            Err(e) => AfterRun {
                stored: None,
                error: Some(crate::fmt::one_line(&e)),
            },
        }
    }

    /// `report`, with the snapshot the run owes stored after it.
    pub(super) async fn done<R>(&self, report: R) -> Done<R> {
        Done {
            report,
            after: self.after_run().await,
        }
    }

    /// Stores a snapshot of the set's catalog in its store, records it, and prunes
    /// old ones.
    pub async fn snapshot(&self) -> Result<SnapshotReport> {
        self.write_snapshot()
            .await
            .context("the catalog snapshot was not stored (the next change, or `firn catalog snapshot`, retries)")
    }

    /// Uploads a snapshot file written by [`SnapshotWriter`], a part at a time.
    async fn send_snapshot(
        &self,
        file: &mut std::fs::File,
        created_ms: i64,
        count: u64,
        hash: &ContentHash,
    ) -> Result<crate::store::StoredArchive> {
        use std::io::{Read as _, Seek as _};
        let description =
            SnapshotDescription::new(&self.set_id, created_ms, count, hash.sha1).encode();
        let size = hash.size;
        file.seek(std::io::SeekFrom::Start(0))?;
        let mut upload = self.store.begin_upload(size, &description).await?;
        let part = self.store.part_size(size).max(1) as u64;
        let mut offset = 0u64;
        while offset < size {
            let len = part.min(size - offset);
            upload.reserve(len).await?;
            let mut buf = vec![0u8; len as usize];
            tokio::task::block_in_place(|| file.read_exact(&mut buf))
                .context("cannot read the snapshot file back")?;
            upload.send(offset, Bytes::from(buf)).await?;
            offset += len;
        }
        upload.complete(size, hash.tree_hash, &description).await
    }

    async fn write_snapshot(&self) -> Result<SnapshotReport> {
        let started = Instant::now();
        let seen = self.catalog.write_count();
        let created_ms = now_ms();
        // Written to a file in the set's state directory, then sent from it: the
        // catalog streams through; of a packed record only its place, mtime
        // and what differs are held (24 bytes) until its pack's index is read.
        let path = self.state.dir().join("catalog-snapshot.partial");
        let mut whole_because = None;
        let mut written = None;
        if self.store.reads_at_once() {
            match self.fill_snapshot(&path, created_ms, true).await? {
                Ok(filled) => written = Some(filled),
                Err(why) => whole_because = Some(why),
            }
        }
        let (file, hash, count, pack_entries) = match written {
            Some(filled) => filled,
            None => match self.fill_snapshot(&path, created_ms, false).await? {
                Ok(filled) => filled,
                Err(why) => bail!("cannot write the catalog snapshot: {why}"),
            },
        };
        let mut file = file;
        let sent = self
            .send_snapshot(&mut file, created_ms, count, &hash)
            .await;
        drop(file);
        let _ = std::fs::remove_file(&path);
        let stored = sent?;
        let size = hash.size;
        if stored.tree_hash != hash.tree_hash || stored.size != size {
            // Never record what the store did not confirm byte for byte.
            let _ = self.store.delete(&stored.archive_id).await;
            bail!(
                "the store reported tree hash {} for the catalog snapshot, computed {}; discarded",
                hex::encode(stored.tree_hash),
                hex::encode(hash.tree_hash)
            );
        }
        self.store.make_durable().await?;
        self.catalog
            .record_snapshot(&SnapshotRecord {
                archive_id: stored.archive_id.clone(),
                target: self.store.target(),
                created_ms,
                size,
                records: count,
                sha1: hash.sha1,
                tree_hash: hash.tree_hash,
            })
            .await?;
        self.catalog.snapshot_stored(seen);
        let (pruned, kept_early) = self.prune_snapshots(&stored.archive_id).await?;
        Ok(SnapshotReport {
            archive_id: stored.archive_id,
            records: count,
            bytes: size,
            seconds: started.elapsed().as_secs_f64(),
            pruned,
            kept_early,
            packs: pack_entries,
            whole_because,
        })
    }

    /// Writes the snapshot file at `path`: with `packs`, a pack entry stands
    /// for each pack's records (format 3, see `snapshot_packs`), else every
    /// record is whole (format 2). The file, its hash, the records it stands
    /// for and its pack entries; or why a pack's index cannot stand for its
    /// records (the snapshot is then written whole).
    async fn fill_snapshot(
        &self,
        path: &std::path::Path,
        created_ms: i64,
        packs: bool,
    ) -> Result<Result<(std::fs::File, ContentHash, u64, u64), String>> {
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let hint = self.catalog.record_count().await?;
        let target = self.store.target();
        let format = if packs {
            SNAPSHOT_FORMAT
        } else {
            COMPLETE_FORMAT
        };
        let mut writer = SnapshotWriter::new(
            std::io::BufWriter::new(file),
            format,
            &self.set_id,
            &target,
            created_ms,
            hint,
        )?;
        let mut packed = PackedRecords::default();
        self.catalog
            .for_each_record(&mut |record| {
                if packs && packed.take(&record, &target) {
                    return Ok(());
                }
                writer.push(&record)
            })
            .await?;
        let ids: Vec<String> = packed.pack_ids().map(str::to_owned).collect();
        for id in &ids {
            let lines = match self.index_at_once(id).await {
                Ok(gz) => tokio::task::block_in_place(|| {
                    let json = gunzip(&gz)?;
                    LightIndex::parse(&json, &self.owner)
                        .and_then(|index| packed.lines_of(id, &index))
                }),
                Err(e) => Err(e),
            };
            let (pack_line, member_lines) = match lines {
                Ok(lines) => lines,
                Err(e) => return Ok(Err(format!("pack {id}: {e:#}"))),
            };
            writer.push_line(&pack_line)?;
            for line in &member_lines {
                writer.push_line(line)?;
            }
        }
        let (file, hash, whole) = writer.finish()?;
        let count = whole + packed.count();
        if count != hint {
            bail!(
                "the catalog changed while its snapshot was written ({hint} records, then {count})"
            );
        }
        let file = file
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))?;
        Ok(Ok((file, hash, count, ids.len() as u64)))
    }

    /// Deletes snapshots beyond the newest [`SNAPSHOTS_KEPT`] that are past the
    /// minimum storage period; returns how many went and how many stay for now.
    async fn prune_snapshots(&self, newest: &str) -> Result<(u64, u64)> {
        let now = now_secs();
        let mut snapshots: Vec<SnapshotRecord> = self
            .catalog
            .snapshots()
            .await?
            .into_iter()
            .filter(|s| s.target.is_empty() || s.target == self.store.target())
            .collect();
        snapshots.sort_by_key(|s| std::cmp::Reverse(s.created_ms));
        let (mut pruned, mut kept_early) = (0, 0);
        for old in snapshots.iter().skip(SNAPSHOTS_KEPT) {
            if old.archive_id == newest {
                continue;
            }
            if self.prices.is_early(old.created_ms.div_euclid(1000), now) {
                kept_early += 1;
                continue;
            }
            self.store.delete(&old.archive_id).await?;
            self.catalog.remove_snapshot(&old.archive_id).await?;
            pruned += 1;
        }
        Ok((pruned, kept_early))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, raw: Option<&[u8]>, state: ArchiveState) -> ArchiveRecord {
        ArchiveRecord {
            key: key.into(),
            raw: raw.map(<[u8]>::to_vec),
            size: 7,
            mtime_ns: 1_700_000_000_123_456_789,
            sha1: [1; 20],
            tree_hash: [2; 32],
            archive_id: format!("id-{key}"),
            target: "local:/x".into(),
            uploaded_at: 1_700_000_000,
            state,
            host: "h".into(),
            superseded_at: (state != ArchiveState::Current).then_some(1_700_000_100),
            pack: None,
        }
    }

    #[test]
    fn snapshots_round_trip_every_field() {
        let long = "deep/".repeat(500) + "file";
        let records = vec![
            record("a.txt", None, ArchiveState::Current),
            record(
                "caf\\xE9.bin",
                Some(b"caf\xe9.bin"),
                ArchiveState::Superseded,
            ),
            record(&long, None, ArchiveState::Deleting),
        ];
        let bytes = encode("set", "local:/x", 42, &records).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!((back.set.as_str(), back.created_ms), ("set", 42));
        assert_eq!(back.records, records);
        assert!(back.packs.is_empty());
        assert!(decode(b"not gzip").is_err());
    }
}
