//! The pack entries of a catalog snapshot on a store that reads its archives at
//! once (the embedded store, [`crate::store::Store::reads_at_once`]).
//!
//! Every pack carries an index of its members (key, raw name, size, mtime,
//! SHA-1, tree hash, offset; see [`crate::pack`]). Where reading that index is
//! a local read of a few KB, repeating each member's record in the snapshot
//! would store every file's two digests twice; so a snapshot in format 3 names
//! each pack once instead:
//!
//! ```text
//!  {"pack": archive id, "n": members its index holds, "u": uploaded at,
//!   "o": host, "live": [ordinals] | "dead": [ordinals]}
//!  {"in": archive id, "i": ordinal, "m": mtime ns, "st": state,
//!   "x": superseded at, "u": uploaded at, "o": host}
//! ```
//!
//! A member is known by its ordinal in its pack's index (empty files share an
//! offset). `live` lists the members the catalog still records when not all
//! are, or `dead` those it no longer does (whichever is shorter; neither: all
//! are), so a member deleted while its pack lives stays deleted after a
//! rebuild. An `in` line says what differs for one member from what its
//! pack's index and line say (a member is current, uploaded when its pack's
//! line says, by its host, with the mtime its index holds): an mtime a later
//! backup updated, a superseded or deleting state and its time. What the
//! catalog can never change of a packed version (key, raw name, size,
//! digests, place) is left to the index.
//!
//! The snapshot is written against each pack's index, read at once: when one
//! cannot be read, or does not hold a member the catalog records there, the
//! snapshot is written complete instead (every record, as remote stores'
//! always are: there, reading every pack's index for a rebuild would cost a
//! retrieval per pack and hours).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::Engine;
use crate::catalog::{ArchiveRecord, ArchiveState, PackSlot};
use crate::pack::{self, TRAILER_LEN};

/// A pack's line.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PackLine {
    pub pack: String,
    pub n: u64,
    pub u: i64,
    pub o: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead: Option<Vec<u32>>,
}

/// What differs for one member from its index and its pack's line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct MemberDiff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub st: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o: Option<String>,
}

impl MemberDiff {
    fn is_empty(&self) -> bool {
        *self == MemberDiff::default()
    }
}

/// A member's line.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct MemberLine {
    #[serde(rename = "in")]
    pub pack: String,
    pub i: u32,
    #[serde(flatten)]
    pub diff: MemberDiff,
}

/// Which members of a pack the catalog records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Live {
    All,
    Only(Vec<u32>),
    AllBut(Vec<u32>),
}

/// A pack as a snapshot names it: enough, with its index, to give back the
/// record of every member the catalog held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PackEntry {
    pub archive_id: String,
    pub members: u64,
    pub uploaded_at: i64,
    pub host: String,
    pub live: Live,
    pub diffs: HashMap<u32, MemberDiff>,
}

impl PackEntry {
    pub fn from_line(line: PackLine) -> Result<PackEntry> {
        let live = match (line.live, line.dead) {
            (None, None) => Live::All,
            (Some(live), None) => Live::Only(live),
            (None, Some(dead)) => Live::AllBut(dead),
            (Some(_), Some(_)) => bail!("corrupt snapshot: pack {} lists both", line.pack),
        };
        Ok(PackEntry {
            archive_id: line.pack,
            members: line.n,
            uploaded_at: line.u,
            host: line.o,
            live,
            diffs: HashMap::new(),
        })
    }

    /// How many records it stands for.
    pub fn live_count(&self) -> u64 {
        match &self.live {
            Live::All => self.members,
            Live::Only(live) => live.len() as u64,
            Live::AllBut(dead) => self.members.saturating_sub(dead.len() as u64),
        }
    }

    /// The records of its live members, from the pack's index, or why they
    /// cannot be given back.
    pub fn expand(
        &self,
        index: &pack::Index,
        owner: &str,
        target: &str,
    ) -> Result<Vec<ArchiveRecord>, String> {
        if index.owner != owner {
            return Err(format!(
                "the pack's index names another set ({}), not this one",
                index.owner
            ));
        }
        let n = index.members.len();
        if n as u64 != self.members {
            return Err(format!(
                "the pack's index holds {n} members, the catalog snapshot says {}",
                self.members
            ));
        }
        let mut live = match &self.live {
            Live::All => vec![true; n],
            Live::Only(_) => vec![false; n],
            Live::AllBut(_) => vec![true; n],
        };
        match &self.live {
            Live::All => {}
            Live::Only(list) | Live::AllBut(list) => {
                let value = matches!(self.live, Live::Only(_));
                for &i in list {
                    let slot = live
                        .get_mut(i as usize)
                        .ok_or_else(|| format!("the catalog snapshot names member {i} of {n}"))?;
                    *slot = value;
                }
            }
        }
        let mut out = Vec::with_capacity(self.live_count() as usize);
        for (i, member) in index.members.iter().enumerate() {
            if !live[i] {
                continue;
            }
            let diff = self.diffs.get(&(i as u32));
            let state = match diff.and_then(|d| d.st.as_deref()) {
                Some(st) => ArchiveState::parse(st)
                    .ok_or_else(|| format!("corrupt state {st:?} in the catalog snapshot"))?,
                None => ArchiveState::Current,
            };
            out.push(ArchiveRecord {
                key: member.key.clone(),
                raw: member.raw.clone(),
                size: member.size,
                mtime_ns: diff.and_then(|d| d.m).unwrap_or(member.mtime_ns),
                sha1: member.sha1,
                tree_hash: member.tree_hash,
                archive_id: self.archive_id.clone(),
                target: target.to_owned(),
                uploaded_at: diff.and_then(|d| d.u).unwrap_or(self.uploaded_at),
                state,
                host: diff
                    .and_then(|d| d.o.clone())
                    .unwrap_or_else(|| self.host.clone()),
                superseded_at: diff.and_then(|d| d.x),
                pack: Some(PackSlot {
                    offset: member.offset,
                    len: member.size,
                }),
            });
        }
        Ok(out)
    }
}

/// A packed record the snapshot leaves to its pack's index, held until the
/// index is read (24 bytes, and more only for an empty file or a difference).
struct Seen {
    offset: u64,
    mtime_ns: i64,
    extra: Option<Box<Extra>>,
}

struct Extra {
    /// An empty file's key: empty files share their offset.
    empty_key: Option<String>,
    diff: MemberDiff,
}

/// One pack's records while the catalog streams by.
struct Held {
    uploaded_at: i64,
    host: String,
    seen: Vec<Seen>,
}

/// The packed records of a catalog, by pack, while a snapshot is written.
#[derive(Default)]
pub(super) struct PackedRecords {
    packs: BTreeMap<String, Held>,
    count: u64,
}

impl PackedRecords {
    /// Takes `record` when it is a member of a pack of this store (`target`)
    /// its pack's line can stand for; false: it goes into the snapshot whole.
    pub fn take(&mut self, record: &ArchiveRecord, target: &str) -> bool {
        let Some(slot) = record.pack else {
            return false;
        };
        if record.target != target {
            return false;
        }
        let held = match self.packs.get_mut(&record.archive_id) {
            Some(held) => held,
            None => self
                .packs
                .entry(record.archive_id.clone())
                .or_insert_with(|| Held {
                    uploaded_at: record.uploaded_at,
                    host: record.host.clone(),
                    seen: Vec::new(),
                }),
        };
        let diff = MemberDiff {
            m: None,
            st: (record.state != ArchiveState::Current).then(|| record.state.as_str().to_owned()),
            x: record.superseded_at,
            u: (record.uploaded_at != held.uploaded_at).then_some(record.uploaded_at),
            o: (record.host != held.host).then(|| record.host.clone()),
        };
        let empty_key = (slot.len == 0).then(|| record.key.clone());
        let extra =
            (empty_key.is_some() || !diff.is_empty()).then(|| Box::new(Extra { empty_key, diff }));
        held.seen.push(Seen {
            offset: slot.offset,
            mtime_ns: record.mtime_ns,
            extra,
        });
        self.count += 1;
        true
    }

    /// How many records were taken.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn pack_ids(&self) -> impl Iterator<Item = &str> {
        self.packs.keys().map(String::as_str)
    }

    /// The lines of pack `archive_id` against its index (the pack's line, then
    /// one per member that differs), or why its index does not fit what the
    /// catalog records.
    pub fn lines_of(
        &mut self,
        archive_id: &str,
        index: &LightIndex<'_>,
    ) -> Result<(PackLine, Vec<MemberLine>)> {
        let held = self
            .packs
            .remove(archive_id)
            .context("a pack the catalog did not name")?;
        let mut by_offset: HashMap<u64, u32> = HashMap::new();
        let mut empty: HashMap<(u64, &str), u32> = HashMap::new();
        for (i, m) in index.members.iter().enumerate() {
            if m.s == 0 {
                empty.insert((m.o, m.k.as_ref()), i as u32);
            } else {
                by_offset.insert(m.o, i as u32);
            }
        }
        let n = index.members.len();
        let mut live = vec![false; n];
        let mut diffs = Vec::new();
        for seen in held.seen {
            let empty_key = seen.extra.as_ref().and_then(|e| e.empty_key.as_deref());
            let found = match empty_key {
                Some(key) => empty.get(&(seen.offset, key)),
                None => by_offset.get(&seen.offset),
            };
            let Some(&i) = found else {
                bail!(
                    "its index holds no member at offset {} the catalog records",
                    seen.offset
                );
            };
            if std::mem::replace(&mut live[i as usize], true) {
                bail!("the catalog records its member {i} twice");
            }
            let mut diff = seen.extra.map(|e| e.diff).unwrap_or_default();
            if seen.mtime_ns != index.members[i as usize].m {
                diff.m = Some(seen.mtime_ns);
            }
            if !diff.is_empty() {
                diffs.push(MemberLine {
                    pack: archive_id.to_owned(),
                    i,
                    diff,
                });
            }
        }
        diffs.sort_by_key(|d| d.i);
        let listed = |value: bool| -> Vec<u32> {
            (0..n as u32)
                .filter(|&i| live[i as usize] == value)
                .collect()
        };
        let alive = live.iter().filter(|l| **l).count();
        let (live, dead) = if alive == n {
            (None, None)
        } else if alive <= n - alive {
            (Some(listed(true)), None)
        } else {
            (None, Some(listed(false)))
        };
        Ok((
            PackLine {
                pack: archive_id.to_owned(),
                n: n as u64,
                u: held.uploaded_at,
                o: held.host,
                live,
                dead,
            },
            diffs,
        ))
    }
}

/// What a snapshot needs of a pack's index: each member's offset, size, mtime,
/// and key (parsed without copying; needed only for empty files).
#[derive(Deserialize)]
pub(super) struct LightIndex<'a> {
    firn_pack: u32,
    set: String,
    #[serde(borrow)]
    members: Vec<LightMember<'a>>,
}

#[derive(Deserialize)]
struct LightMember<'a> {
    #[serde(borrow)]
    k: Cow<'a, str>,
    s: u64,
    m: i64,
    o: u64,
}

impl<'a> LightIndex<'a> {
    /// The index in `json` (a pack's index, uncompressed), when it is one this
    /// firn reads and of set `owner`.
    pub fn parse(json: &'a [u8], owner: &str) -> Result<LightIndex<'a>> {
        let index: LightIndex<'a> =
            serde_json::from_slice(json).context("a pack's index is corrupt (not its JSON)")?;
        if index.firn_pack == 0 || index.firn_pack > pack::FORMAT {
            bail!("pack format {} is not one this firn reads", index.firn_pack);
        }
        if index.set != owner {
            bail!("its index names another set ({})", index.set);
        }
        Ok(index)
    }
}

/// A pack's index, uncompressed.
pub(super) fn gunzip(gz: &[u8]) -> Result<Vec<u8>> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut json)
        .context("a pack's index is corrupt (not gzip)")?;
    Ok(json)
}

impl Engine {
    /// The (compressed) index of pack `archive_id`, read at once (the store
    /// [`reads_at_once`](crate::store::Store::reads_at_once)): where its
    /// trailer says.
    pub(super) async fn index_at_once(&self, archive_id: &str) -> Result<bytes::Bytes> {
        let (size, _) = self.store.read_at_once(archive_id, 0, 0).await?;
        if size < TRAILER_LEN {
            bail!("not a firn pack (shorter than its trailer)");
        }
        let (_, trailer) = self
            .store
            .read_at_once(archive_id, size - TRAILER_LEN, TRAILER_LEN)
            .await?;
        let (offset, len) = pack::read_trailer(&trailer)?;
        if offset
            .checked_add(len)
            .is_none_or(|end| end > size - TRAILER_LEN)
        {
            bail!("the pack's trailer points outside it");
        }
        let (_, gz) = self.store.read_at_once(archive_id, offset, len).await?;
        if gz.len() as u64 != len {
            bail!("the store gave {} bytes of the index, not {len}", gz.len());
        }
        Ok(gz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::{Builder, Member, index_of};

    const OWNER: &str = "0123456789abcdef";
    const TARGET: &str = "local:/store";

    fn member(key: &str, size: u64, day: i64) -> Member {
        Member {
            key: key.into(),
            raw: None,
            size,
            mtime_ns: 1_700_000_000_000_000_000 + day * 86_400_000_000_000,
            sha1: [size as u8; 20],
            tree_hash: [size as u8 + 1; 32],
            offset: 0,
        }
    }

    /// A pack of five members, two of them empty (at the same offset), and
    /// the catalog records of its members as a backup writes them.
    fn pack() -> (pack::Index, Vec<u8>, Vec<ArchiveRecord>) {
        let mut builder = Builder::new(64);
        for (i, (key, data)) in [
            ("a", &b"abc"[..]),
            ("empty-1", b""),
            ("empty-2", b""),
            ("d", b"de"),
            ("e", b"f"),
        ]
        .iter()
        .enumerate()
        {
            builder.push(member(key, data.len() as u64, i as i64), data);
        }
        let sealed = builder.seal(OWNER, "host").unwrap();
        let index = index_of(&sealed.bytes).unwrap();
        let at = sealed.facts.index_offset as usize;
        let gz = sealed.bytes[at..at + sealed.facts.index_len as usize].to_vec();
        let records = PackEntry {
            archive_id: "pack".into(),
            members: 5,
            uploaded_at: 1_700_000_000,
            host: "host".into(),
            live: Live::All,
            diffs: HashMap::new(),
        }
        .expand(&index, OWNER, TARGET)
        .unwrap();
        (index, gz, records)
    }

    /// The pack's line and its members' lines for `records`, decoded back.
    fn round_trip(gz: &[u8], records: &[ArchiveRecord]) -> PackEntry {
        let mut packed = PackedRecords::default();
        for r in records {
            assert!(packed.take(r, TARGET));
        }
        let json = gunzip(gz).unwrap();
        let light = LightIndex::parse(&json, OWNER).unwrap();
        let (line, members) = packed.lines_of("pack", &light).unwrap();
        let line: PackLine = serde_json::from_str(&serde_json::to_string(&line).unwrap()).unwrap();
        let mut entry = PackEntry::from_line(line).unwrap();
        for m in members {
            let m: MemberLine = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            entry.diffs.insert(m.i, m.diff);
        }
        entry
    }

    #[test]
    fn a_pack_entry_gives_back_every_live_record_as_it_was() {
        let (index, gz, mut records) = pack();
        // Member "d" is deleted, so is the second empty file; "a" had its mtime
        // updated and is superseded; "e" was recorded later by another host.
        records.retain(|r| r.key != "d" && r.key != "empty-2");
        let a = records.iter_mut().find(|r| r.key == "a").unwrap();
        a.mtime_ns += 7;
        a.state = ArchiveState::Superseded;
        a.superseded_at = Some(1_700_000_100);
        let e = records.iter_mut().find(|r| r.key == "e").unwrap();
        e.uploaded_at += 3;
        e.host = "other".into();
        let entry = round_trip(&gz, &records);
        assert_eq!(entry.live_count(), 3);
        assert_eq!(entry.diffs.len(), 2, "{:?}", entry.diffs);
        let back = entry.expand(&index, OWNER, TARGET).unwrap();
        assert_eq!(back, records);
    }

    #[test]
    fn a_whole_live_pack_is_one_line_and_its_dead_are_listed_when_fewer() {
        let (index, gz, records) = pack();
        let entry = round_trip(&gz, &records);
        assert_eq!(entry.live, Live::All);
        assert!(entry.diffs.is_empty());
        let some: Vec<ArchiveRecord> = records
            .iter()
            .filter(|r| r.key != "empty-1")
            .cloned()
            .collect();
        let entry = round_trip(&gz, &some);
        assert_eq!(entry.live, Live::AllBut(vec![1]));
        assert_eq!(entry.expand(&index, OWNER, TARGET).unwrap(), some);
        let one: Vec<ArchiveRecord> = records
            .iter()
            .filter(|r| r.key == "empty-2")
            .cloned()
            .collect();
        let entry = round_trip(&gz, &one);
        assert_eq!(entry.live, Live::Only(vec![2]));
        assert_eq!(entry.expand(&index, OWNER, TARGET).unwrap(), one);
    }

    #[test]
    fn an_index_that_does_not_hold_a_recorded_member_is_refused() {
        let (index, gz, mut records) = pack();
        records[0].pack = Some(PackSlot {
            offset: 999,
            len: 3,
        });
        let mut packed = PackedRecords::default();
        for r in &records {
            packed.take(r, TARGET);
        }
        let json = gunzip(&gz).unwrap();
        let light = LightIndex::parse(&json, OWNER).unwrap();
        assert!(packed.lines_of("pack", &light).is_err());
        assert!(LightIndex::parse(&json, "another-set").is_err());
        let mut entry = round_trip(&gz, &records[1..]);
        entry.members = 6;
        assert!(entry.expand(&index, OWNER, TARGET).is_err());
    }
}
