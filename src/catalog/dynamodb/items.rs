//! How firn's records are written as DynamoDB items: sort keys (long keys hashed),
//! head items, version items, snapshot items.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

use crate::catalog::{ArchiveRecord, ArchiveState, CurrentSummary, SnapshotRecord};

/// Sort keys longer than this (bytes) are stored hashed.
pub(super) const MAX_SORT_KEY: usize = 1024;
pub(super) const LONG_PREFIX: &str = "#long/";

pub(super) type Item = HashMap<String, AttributeValue>;

/// One file's head item, decoded: its current version and the revision every
/// conditional write checks. Superseded versions are items of their own.
#[derive(Debug, Clone, Default)]
pub(super) struct Head {
    pub(super) key: String,
    pub(super) raw: Option<Vec<u8>>,
    pub(super) current: Option<ArchiveRecord>,
    /// Versions an older firn kept inside the head (`versions` list), moved out
    /// into items of their own by the next write of this head.
    pub(super) legacy: Vec<ArchiveRecord>,
    pub(super) revision: Option<u64>,
}

pub fn sort_key(key: &str) -> String {
    if key.len() <= MAX_SORT_KEY && !key.starts_with(LONG_PREFIX) {
        key.to_string()
    } else {
        hashed(key)
    }
}

pub(super) fn hashed(key: &str) -> String {
    format!(
        "{LONG_PREFIX}{}",
        hex::encode(Sha256::digest(key.as_bytes()))
    )
}

/// What separates a file's key from its versions' in their sort keys: keys never
/// hold `//` (no name is empty), so no head is taken for a version.
pub(super) const VERSION_MARK: &str = "//v/";

/// The sort-key prefix of every version item of `key`.
pub(super) fn version_prefix(key: &str) -> String {
    // Room for the mark and a 32-digit id after the prefix.
    let base =
        if key.len() + VERSION_MARK.len() + 32 <= MAX_SORT_KEY && !key.starts_with(LONG_PREFIX) {
            key.to_string()
        } else {
            hashed(key)
        };
    format!("{base}{VERSION_MARK}")
}

/// The sort key of one version item: its file's prefix and a hash of its archive id.
pub(super) fn version_key(key: &str, archive_id: &str) -> String {
    format!(
        "{}{}",
        version_prefix(key),
        hex::encode(&Sha256::digest(archive_id.as_bytes())[..16])
    )
}

pub(super) fn is_version_item(item: &Item) -> bool {
    get_s(item, "path").is_some_and(|p| p.contains(VERSION_MARK))
}

/// Snapshots of the catalog are items too, under a sort key no file's key has
/// (keys never begin with `/`).
pub(super) const SNAPSHOT_MARK: &str = "//snapshot/";

pub(super) fn is_snapshot_item(item: &Item) -> bool {
    get_s(item, "path").is_some_and(|p| p.starts_with(SNAPSHOT_MARK))
}

pub(super) fn snapshot_key(archive_id: &str) -> String {
    format!(
        "{SNAPSHOT_MARK}{}",
        hex::encode(&Sha256::digest(archive_id.as_bytes())[..16])
    )
}

pub(super) fn encode_snapshot(set_id: &str, snapshot: &SnapshotRecord) -> Item {
    let mut item = Item::new();
    item.insert("set_id".into(), s(set_id));
    item.insert("path".into(), s(snapshot_key(&snapshot.archive_id)));
    item.insert("archive_id".into(), s(&snapshot.archive_id));
    item.insert("target".into(), s(&snapshot.target));
    item.insert("created_ms".into(), n(snapshot.created_ms));
    item.insert("size".into(), n(snapshot.size));
    item.insert("records".into(), n(snapshot.records));
    item.insert("sha1".into(), s(hex::encode(snapshot.sha1)));
    item.insert("tree_hash".into(), s(hex::encode(snapshot.tree_hash)));
    item
}

pub(super) fn decode_snapshot(item: &Item) -> Option<SnapshotRecord> {
    Some(SnapshotRecord {
        archive_id: get_s(item, "archive_id")?,
        target: get_s(item, "target").unwrap_or_default(),
        created_ms: get_n(item, "created_ms")?,
        size: get_n(item, "size")?,
        records: get_n(item, "records")?,
        sha1: get_hex(item, "sha1")?,
        tree_hash: get_hex(item, "tree_hash")?,
    })
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub(super) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|t| t.parse().ok())
}

pub(super) fn get_hex<const N: usize>(item: &Item, name: &str) -> Option<[u8; N]> {
    hex::decode(get_s(item, name)?).ok()?.try_into().ok()
}

pub(super) fn get_raw(item: &Item) -> Option<Vec<u8>> {
    item.get("raw_path")
        .and_then(|v| v.as_b().ok())
        .map(|b| b.clone().into_inner())
}

pub(super) fn version_attributes(r: &ArchiveRecord, with_state: bool) -> Item {
    let mut m = Item::new();
    m.insert("archive_id".into(), s(&r.archive_id));
    m.insert("size".into(), n(r.size));
    m.insert("mtime_ns".into(), n(r.mtime_ns));
    m.insert("sha1".into(), s(hex::encode(r.sha1)));
    m.insert("tree_hash".into(), s(hex::encode(r.tree_hash)));
    m.insert("target".into(), s(&r.target));
    m.insert("uploaded_at".into(), n(r.uploaded_at));
    m.insert("host".into(), s(&r.host));
    if let Some(slot) = r.pack {
        m.insert("pack_offset".into(), n(slot.offset));
        m.insert("pack_len".into(), n(slot.len));
    }
    if with_state {
        m.insert("state".into(), s(r.state.as_str()));
        if let Some(at) = r.superseded_at {
            m.insert("superseded_at".into(), n(at));
        }
    }
    m
}

pub(super) fn version_from(
    m: &Item,
    key: &str,
    raw: &Option<Vec<u8>>,
    state: Option<ArchiveState>,
) -> Option<ArchiveRecord> {
    Some(ArchiveRecord {
        key: key.to_string(),
        raw: raw.clone(),
        size: get_n(m, "size")?,
        mtime_ns: get_n(m, "mtime_ns")?,
        sha1: get_hex(m, "sha1")?,
        tree_hash: get_hex(m, "tree_hash")?,
        archive_id: get_s(m, "archive_id")?,
        target: get_s(m, "target").unwrap_or_default(),
        uploaded_at: get_n(m, "uploaded_at").unwrap_or(0),
        state: state.or_else(|| ArchiveState::parse(&get_s(m, "state")?))?,
        host: get_s(m, "host").unwrap_or_default(),
        superseded_at: get_n(m, "superseded_at"),
        pack: match (get_n(m, "pack_offset"), get_n(m, "pack_len")) {
            (Some(offset), Some(len)) => Some(crate::catalog::PackSlot { offset, len }),
            _ => None,
        },
    })
}

/// The item of one superseded (or deleting) version.
pub(super) fn encode_version(set_id: &str, record: &ArchiveRecord) -> Item {
    let mut item = version_attributes(record, true);
    item.insert("set_id".into(), s(set_id));
    item.insert(
        "path".into(),
        s(version_key(&record.key, &record.archive_id)),
    );
    item.insert("full_path".into(), s(&record.key));
    if let Some(raw) = &record.raw {
        item.insert("raw_path".into(), AttributeValue::B(Blob::new(raw.clone())));
    }
    item
}

/// What status needs of a head's current version (None for a head without one,
/// or one missing an attribute).
pub(super) fn summary_of(item: &Item) -> Option<CurrentSummary> {
    Some(CurrentSummary {
        key: get_s(item, "full_path").or_else(|| get_s(item, "path"))?,
        raw: get_raw(item).map(Vec::into_boxed_slice),
        size: get_n(item, "size")?,
        mtime_ns: get_n(item, "mtime_ns")?,
        sha1: get_hex(item, "sha1")?,
        target: get_s(item, "target").unwrap_or_default(),
    })
}

pub(super) fn decode_version(item: &Item) -> Option<ArchiveRecord> {
    let key = get_s(item, "full_path")?;
    version_from(item, &key, &get_raw(item), None)
}

impl Head {
    pub(super) fn decode(item: &Item) -> Option<Head> {
        let key = get_s(item, "full_path").or_else(|| get_s(item, "path"))?;
        let raw = get_raw(item);
        let current = if item.contains_key("archive_id") {
            version_from(item, &key, &raw, Some(ArchiveState::Current))
        } else {
            None
        };
        let legacy = item
            .get("versions")
            .and_then(|v| v.as_l().ok())
            .map(|list| {
                list.iter()
                    .filter_map(|v| v.as_m().ok())
                    .filter_map(|m| version_from(m, &key, &raw, None))
                    .collect()
            })
            .unwrap_or_default();
        Some(Head {
            key,
            raw,
            current,
            legacy,
            revision: get_n(item, "revision"),
        })
    }

    /// The write that makes `record` this head's current version; the version it
    /// replaces (if any) becomes a superseded version item in the same transaction.
    pub(super) fn make_current(mut self, record: &ArchiveRecord) -> HeadWrite {
        let mut put_versions = Vec::new();
        if let Some(mut previous) = self.current.take() {
            previous.state = ArchiveState::Superseded;
            previous.superseded_at = Some(record.uploaded_at);
            put_versions.push(previous);
        }
        let mut current = record.clone();
        current.state = ArchiveState::Current;
        current.superseded_at = None;
        self.raw = record.raw.clone();
        self.current = Some(current);
        HeadWrite {
            head: self,
            put_versions,
            delete_versions: Vec::new(),
        }
    }

    /// The head as written: its current version (if any) and the next revision.
    pub(super) fn encode(&self, set_id: &str) -> Item {
        let mut item = self
            .current
            .as_ref()
            .map(|c| version_attributes(c, false))
            .unwrap_or_default();
        item.insert("set_id".into(), s(set_id));
        let sk = sort_key(&self.key);
        if sk != self.key {
            item.insert("full_path".into(), s(&self.key));
        }
        item.insert("path".into(), s(sk));
        if let Some(raw) = &self.raw {
            item.insert("raw_path".into(), AttributeValue::B(Blob::new(raw.clone())));
        }
        item.insert("revision".into(), n(self.revision.unwrap_or(0) + 1));
        item
    }
}

/// One write of a file's head: the head itself (or its removal) under the
/// condition that its revision is still the one read, together with version items
/// to put and to delete, all or nothing.
pub(super) struct HeadWrite {
    pub(super) head: Head,
    pub(super) put_versions: Vec<ArchiveRecord>,
    pub(super) delete_versions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_hashed_into_the_sort_key_limit() {
        let short = "photos/a.jpg";
        assert_eq!(sort_key(short), short);
        let long = "d/".repeat(600);
        let sk = sort_key(&long);
        assert!(sk.starts_with(LONG_PREFIX) && sk.len() < MAX_SORT_KEY);
        assert_ne!(sort_key(&(long.clone() + "x")), sk);
    }

    #[test]
    fn heads_and_version_items_round_trip_and_old_heads_are_read() {
        let record = ArchiveRecord {
            key: "a/b".into(),
            raw: Some(b"a/b\xff".to_vec()),
            size: 5,
            mtime_ns: -3,
            sha1: [1; 20],
            tree_hash: [2; 32],
            archive_id: "id1".into(),
            target: "glacier:us-east-1/v".into(),
            uploaded_at: 10,
            state: ArchiveState::Current,
            host: "h".into(),
            superseded_at: None,
            pack: None,
        };
        let mut old = record.clone();
        old.archive_id = "id0".into();
        old.state = ArchiveState::Superseded;
        old.superseded_at = Some(10);
        let head = Head {
            key: "a/b".into(),
            raw: record.raw.clone(),
            current: Some(record.clone()),
            legacy: Vec::new(),
            revision: Some(4),
        };
        let encoded = head.encode("set");
        assert_eq!(get_n::<u64>(&encoded, "revision"), Some(5));
        assert!(!is_version_item(&encoded));
        let decoded = Head::decode(&encoded).expect("decodes");
        assert_eq!(decoded.current, Some(record.clone()));
        let version = encode_version("set", &old);
        assert!(is_version_item(&version));
        assert!(get_s(&version, "path").unwrap().starts_with("a/b//v/"));
        assert_eq!(decode_version(&version), Some(old.clone()));
        // A head written by an older firn, its versions inside.
        let mut legacy = encoded.clone();
        legacy.insert(
            "versions".into(),
            AttributeValue::L(vec![AttributeValue::M(version_attributes(&old, true))]),
        );
        assert_eq!(Head::decode(&legacy).unwrap().legacy, vec![old]);
    }

    #[test]
    fn version_keys_fit_the_sort_key_limit() {
        let long = "d/".repeat(500);
        let sk = version_key(&long, &"x".repeat(200));
        assert!(sk.len() <= MAX_SORT_KEY, "{}", sk.len());
        assert!(sk.contains(VERSION_MARK));
        assert_ne!(version_key("a", "1"), version_key("a", "2"));
    }
}
