//! Archive descriptions: a self-describing, versioned record stored with every archive
//! so a catalog can be rebuilt from the store's inventory alone, and so every set
//! sharing a store can tell its own archives from the others' (invariant 12 in
//! the crate docs).
//!
//! firn's format, version 2: `"firn2 " + owner + " " + base64url_nopad(json)`, where
//! the owner is the set's short id ([`owner_of`]: 16 hex digits of the SHA-1 of the
//! set id) and json is
//! `{"p": key, "r": raw path bytes (base64url, only when they differ from the key),
//!   "s": size, "m": mtime in ns, "h": SHA-1 hex (absent when not known yet),
//!   "t": SHA-256 tree hash hex (S3 only: Glacier reports its own)}`. Glacier allows
//! 1024 printable ASCII characters, S3 metadata 2 KB; when a path is too long to fit,
//! `"p"` and `"r"` are dropped and `"k"` holds the SHA-1 of the key instead (the
//! catalog and its snapshots still have the path). The owner stands outside the
//! base64 so it costs 17 characters, not 23, of the room for the path.
//!
//! Version 1 (`"firn1 " + base64url_nopad(json)`, the same json) was written before
//! archives named their set; it is read with the owner unknown, as are
//! mt-aws-glacier's `mt2` descriptions (`"mt2 " + base64url_nopad(json {"filename",
//! "mtime": "YYYYMMDDTHHMMSSZ"})`), read so vaults written by that tool can be
//! adopted.
//!
//! Two more kinds of archive describe the set rather than a file: catalog
//! snapshots (`firn-catalog1`, see [`SnapshotDescription`]) and ownership claims
//! (`firn-claim1`, see [`ClaimDescription`]) by which a set marks as its own the
//! version-1 archives its catalog names.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::model::{Sha1Digest, TreeHash};
/// Glacier's limit on an archive description.
pub const MAX_LEN: usize = 1024;
const FIRN1_PREFIX: &str = "firn1 ";
const FIRN2_PREFIX: &str = "firn2 ";
const SNAPSHOT_PREFIX: &str = "firn-catalog1 ";
const CLAIM_PREFIX: &str = "firn-claim1 ";
/// Hex digits of a set's short id in descriptions.
pub const OWNER_LEN: usize = 16;
const MT2_PREFIX: &str = "mt2 ";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// None when the path did not fit (firn) — the catalog is then the only record.
    pub key: Option<String>,
    pub raw: Option<Vec<u8>>,
    pub size: Option<u64>,
    pub mtime_ns: i64,
    pub sha1: Option<Sha1Digest>,
    /// The tree hash, when the store keeps it in the record (S3).
    pub tree_hash: Option<TreeHash>,
    /// The short id of the set that wrote it ([`owner_of`]); None: unknown
    /// (firn1, mt2).
    pub owner: Option<String>,
    pub format: Format,
    /// Set when the archive is a pack of small files (see `pack`): it then
    /// describes no one file (`key` is None) but says where its index is.
    pub pack: Option<PackFacts>,
}

/// What a pack's description says of it: how many files it holds and where
/// its index is, so the index can be read (a range) without the whole pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackFacts {
    pub members: u64,
    pub index_offset: u64,
    pub index_len: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Firn1,
    Firn2,
    MtAwsGlacier2,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Firn1 => "firn1",
            Format::Firn2 => "firn2",
            Format::MtAwsGlacier2 => "mt2",
        }
    }
}

/// The short id of a set as its archives name it: the first [`OWNER_LEN`] hex
/// digits of the SHA-1 of its id (what [`set_hash`] gives in full).
pub fn owner_of(set_id: &str) -> String {
    set_hash(set_id)[..OWNER_LEN].to_string()
}

/// The short id of the set a description names — a file's `firn2` record, a
/// catalog snapshot or a claim — read without decoding the rest of a file's
/// record (a listing of a whole vault asks this of every archive).
pub fn named_owner(text: &str) -> Option<String> {
    let in_clear = |prefix: &str| {
        let owner = text.strip_prefix(prefix)?.get(..OWNER_LEN)?;
        is_owner(owner).then(|| owner.to_string())
    };
    if text.starts_with(FIRN2_PREFIX) {
        return in_clear(FIRN2_PREFIX);
    }
    if text.starts_with(CLAIM_PREFIX) {
        return in_clear(CLAIM_PREFIX);
    }
    SnapshotDescription::decode(text).map(|s| s.owner().to_string())
}

fn is_owner(text: &str) -> bool {
    text.len() == OWNER_LEN && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Serialize, Deserialize)]
struct FirnRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<String>,
    s: u64,
    m: i64,
    /// Absent when the archive's description had to be written before its content
    /// was hashed (a Glacier multipart upload of a file not hashed before).
    #[serde(skip_serializing_if = "Option::is_none")]
    h: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    /// A pack: members, index offset, index length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pk: Option<(u64, u64, u64)>,
}

#[derive(Deserialize)]
struct Mt2Record {
    filename: String,
    mtime: String,
}

impl Description {
    /// The record of a file version written by the set whose short id is `owner`.
    pub fn of_file(
        key: &str,
        raw: Option<&[u8]>,
        size: u64,
        mtime_ns: i64,
        sha1: Option<&Sha1Digest>,
        owner: &str,
    ) -> Description {
        Description {
            key: Some(key.to_owned()),
            raw: raw.map(<[u8]>::to_vec),
            size: Some(size),
            mtime_ns,
            sha1: sha1.copied(),
            tree_hash: None,
            owner: Some(owner.to_owned()),
            format: Format::Firn2,
            pack: None,
        }
    }

    /// The record of a pack of small files of the set `owner`: its size and
    /// SHA-1, and where its index is. It names no file (the index does).
    pub fn of_pack(size: u64, sha1: &Sha1Digest, owner: &str, facts: PackFacts) -> Description {
        Description {
            key: None,
            raw: None,
            size: Some(size),
            mtime_ns: 0,
            sha1: Some(*sha1),
            tree_hash: None,
            owner: Some(owner.to_owned()),
            format: Format::Firn2,
            pack: Some(facts),
        }
    }

    /// The description within `limit` characters: firn2 with its owner (firn1
    /// when the owner is unknown, as firn wrote before sets were named). A path
    /// too long to fit is replaced by its hash.
    pub fn encode(&self, limit: usize) -> String {
        let full = FirnRecord {
            p: self.key.clone(),
            r: self.raw.as_ref().map(|r| URL_SAFE_NO_PAD.encode(r)),
            k: None,
            s: self.size.unwrap_or(0),
            m: self.mtime_ns,
            h: self.sha1.map(hex::encode),
            t: self.tree_hash.map(hex::encode),
            pk: self.pack.map(|p| (p.members, p.index_offset, p.index_len)),
        };
        let owner = self.owner.as_deref().filter(|o| is_owner(o));
        let text = wrap(&full, owner);
        if text.len() <= limit || self.key.is_none() {
            return text;
        }
        let short = FirnRecord {
            p: None,
            r: None,
            k: self
                .key
                .as_ref()
                .map(|key| hex::encode(Sha1::digest(key.as_bytes()))),
            ..full
        };
        wrap(&short, owner)
    }
}

fn wrap(record: &FirnRecord, owner: Option<&str>) -> String {
    let json = URL_SAFE_NO_PAD.encode(serde_json::to_vec(record).unwrap_or_default());
    match owner {
        Some(owner) => format!("{FIRN2_PREFIX}{owner} {json}"),
        None => format!("{FIRN1_PREFIX}{json}"),
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not a firn or mt-aws-glacier description")]
    Unknown,
    #[error("malformed {0} description")]
    Malformed(&'static str),
}

pub fn decode(text: &str) -> Result<Description, DecodeError> {
    if let Some(rest) = text.strip_prefix(FIRN2_PREFIX) {
        let malformed = DecodeError::Malformed("firn2");
        let (owner, body) = rest.split_once(' ').ok_or(malformed.clone())?;
        if !is_owner(owner) {
            return Err(malformed);
        }
        return decode_firn(body, Some(owner), Format::Firn2);
    }
    if let Some(body) = text.strip_prefix(FIRN1_PREFIX) {
        return decode_firn(body, None, Format::Firn1);
    }
    if let Some(body) = text.strip_prefix(MT2_PREFIX) {
        let body = body.trim();
        // mt-aws-glacier writes without padding; accept padded input too.
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .or_else(|_| URL_SAFE.decode(body))
            .map_err(|_| DecodeError::Malformed("mt2"))?;
        let rec: Mt2Record =
            serde_json::from_slice(&json).map_err(|_| DecodeError::Malformed("mt2"))?;
        let mtime = parse_mt2_time(&rec.mtime).ok_or(DecodeError::Malformed("mt2"))?;
        let (key, raw) = crate::pathkey::relative_key(std::path::Path::new(&rec.filename));
        return Ok(Description {
            key: Some(key),
            raw,
            size: None,
            mtime_ns: mtime * 1_000_000_000,
            sha1: None,
            tree_hash: None,
            owner: None,
            format: Format::MtAwsGlacier2,
            pack: None,
        });
    }
    Err(DecodeError::Unknown)
}

/// The base64url JSON of a firn1 or firn2 description.
fn decode_firn(
    body: &str,
    owner: Option<&str>,
    format: Format,
) -> Result<Description, DecodeError> {
    let malformed = DecodeError::Malformed(format.as_str());
    let json = URL_SAFE_NO_PAD
        .decode(body.trim())
        .map_err(|_| malformed.clone())?;
    let rec: FirnRecord = serde_json::from_slice(&json).map_err(|_| malformed.clone())?;
    let sha1 = decode_hex(rec.h.as_deref()).ok_or(malformed.clone())?;
    let tree_hash = decode_hex(rec.t.as_deref()).ok_or(malformed.clone())?;
    let raw = match rec.r {
        Some(r) => Some(URL_SAFE_NO_PAD.decode(r).map_err(|_| malformed)?),
        None => None,
    };
    Ok(Description {
        key: rec.p,
        raw,
        size: Some(rec.s),
        mtime_ns: rec.m,
        sha1,
        tree_hash,
        owner: owner.map(str::to_owned),
        format,
        pack: rec.pk.map(|(members, index_offset, index_len)| PackFacts {
            members,
            index_offset,
            index_len,
        }),
    })
}

/// An optional hex digest of N bytes (None when present but not one).
fn decode_hex<const N: usize>(text: Option<&str>) -> Option<Option<[u8; N]>> {
    match text {
        Some(h) => hex::decode(h)
            .ok()
            .and_then(|v| v.try_into().ok())
            .map(Some),
        None => Some(None),
    }
}

/// The description of a catalog snapshot: which set it is of, when it was taken,
/// how many records it holds and the SHA-1 of its bytes. A set id too long to fit
/// is replaced by its SHA-1 (`set_hash` always holds that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDescription {
    pub set: Option<String>,
    pub set_hash: String,
    /// Unix milliseconds: which snapshot is newest, even within one second.
    pub created_ms: i64,
    pub records: u64,
    pub sha1: Sha1Digest,
}

#[derive(Serialize, Deserialize)]
struct SnapshotJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    k: String,
    t: i64,
    n: u64,
    h: String,
}

/// The SHA-1 of a set id, as a snapshot's description names a set.
pub fn set_hash(set_id: &str) -> String {
    hex::encode(Sha1::digest(set_id.as_bytes()))
}

impl SnapshotDescription {
    pub fn new(set_id: &str, created_ms: i64, records: u64, sha1: Sha1Digest) -> Self {
        SnapshotDescription {
            set: Some(set_id.to_string()),
            set_hash: set_hash(set_id),
            created_ms,
            records,
            sha1,
        }
    }

    /// `firn-catalog1 ` + base64url of its JSON, within Glacier's 1,024 characters.
    pub fn encode(&self) -> String {
        let mut json = SnapshotJson {
            s: self.set.clone(),
            k: self.set_hash.clone(),
            t: self.created_ms,
            n: self.records,
            h: hex::encode(self.sha1),
        };
        let wrap = |json: &SnapshotJson| {
            format!(
                "{SNAPSHOT_PREFIX}{}",
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap_or_default())
            )
        };
        let text = wrap(&json);
        if text.len() <= MAX_LEN {
            return text;
        }
        json.s = None;
        wrap(&json)
    }

    /// The snapshot description in `text`, or None for any other description.
    pub fn decode(text: &str) -> Option<SnapshotDescription> {
        let body = text.strip_prefix(SNAPSHOT_PREFIX)?;
        let json: SnapshotJson =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body.trim()).ok()?).ok()?;
        Some(SnapshotDescription {
            set: json.s,
            set_hash: json.k,
            created_ms: json.t,
            records: json.n,
            sha1: hex::decode(&json.h).ok()?.try_into().ok()?,
        })
    }

    /// Whether this is a snapshot of `set_id`.
    pub fn is_of(&self, set_id: &str) -> bool {
        self.set_hash == set_hash(set_id)
    }

    /// The short id of the set it is a snapshot of (see [`owner_of`]).
    pub fn owner(&self) -> &str {
        self.set_hash.get(..OWNER_LEN).unwrap_or(&self.set_hash)
    }
}

/// A claim: a set's statement, stored in the store, that the archives it lists
/// are its own — how a set marks the version-1 archives (written before
/// descriptions named their set) that its catalog names, so that a store shared
/// with other sets stays safe without uploading anything again.
///
/// `"firn-claim1 " + owner + " " + base64url_nopad(the first 8 bytes of the SHA-1
/// of each archive id, one after another)`: the listing alone says whose each
/// claimed archive is, so no set has to retrieve another's claim to read it. The
/// claim's body lists the archive ids in full, a line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimDescription {
    pub owner: String,
    pub archives: Vec<ClaimedId>,
}

/// The short form of an archive id a claim lists (see [`claimed_id`]).
pub type ClaimedId = [u8; 8];

/// The short form of `archive_id` in a claim.
pub fn claimed_id(archive_id: &str) -> ClaimedId {
    let digest = Sha1::digest(archive_id.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

impl ClaimDescription {
    /// How many archives one claim can list within `limit` characters.
    pub fn capacity(limit: usize) -> usize {
        let room = limit.saturating_sub(CLAIM_PREFIX.len() + OWNER_LEN + 1);
        // base64 without padding: 4 characters per 3 bytes, rounded up.
        (room * 3 / 4) / 8
    }

    pub fn encode(&self) -> String {
        let bytes: Vec<u8> = self.archives.iter().flatten().copied().collect();
        format!(
            "{CLAIM_PREFIX}{} {}",
            self.owner,
            URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// The claim in `text`, or None for any other description.
    pub fn decode(text: &str) -> Option<ClaimDescription> {
        let (owner, body) = text.strip_prefix(CLAIM_PREFIX)?.split_once(' ')?;
        if !is_owner(owner) {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(body.trim()).ok()?;
        if bytes.len() % 8 != 0 {
            return None;
        }
        Some(ClaimDescription {
            owner: owner.to_string(),
            archives: bytes
                .chunks_exact(8)
                .filter_map(|c| c.try_into().ok())
                .collect(),
        })
    }
}

/// `YYYYMMDDTHHMMSSZ` → Unix seconds.
fn parse_mt2_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| s.get(range)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Howard Hinnant's days-from-civil: proleptic Gregorian date → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "0123456789abcdef";

    fn file(key: &str, raw: Option<&[u8]>, sha1: Option<&Sha1Digest>) -> Description {
        Description::of_file(key, raw, 42, 1_700_000_000_123_456_789, sha1, OWNER)
    }

    #[test]
    fn firn_description_round_trips_names_its_set_and_is_printable_ascii() {
        let raw = b"dir/bad\xffname".to_vec();
        let text = file("dir/bad\\xFFname", Some(&raw), Some(&[7u8; 20])).encode(MAX_LEN);
        assert!(text.len() <= MAX_LEN && text.bytes().all(|b| (0x20..0x7f).contains(&b)));
        assert!(text.starts_with("firn2 0123456789abcdef "), "{text}");
        let d = decode(&text).unwrap();
        assert_eq!(d.key.as_deref(), Some("dir/bad\\xFFname"));
        assert_eq!(d.raw, Some(raw));
        assert_eq!(
            (d.size, d.mtime_ns, d.sha1),
            (Some(42), 1_700_000_000_123_456_789, Some([7u8; 20]))
        );
        assert_eq!((d.owner.as_deref(), d.format), (Some(OWNER), Format::Firn2));
    }

    #[test]
    fn firn1_reads_with_its_owner_unknown() {
        let mut legacy = file("a.txt", None, Some(&[1; 20]));
        legacy.owner = None;
        let text = legacy.encode(MAX_LEN);
        assert!(text.starts_with("firn1 "), "{text}");
        let d = decode(&text).unwrap();
        assert_eq!((d.owner, d.format), (None, Format::Firn1));
        assert_eq!(d.key.as_deref(), Some("a.txt"));
        assert_eq!(
            decode("firn2 nothex!!!!!!!!!! e30"),
            Err(DecodeError::Malformed("firn2"))
        );
        assert_eq!(owner_of("photos").len(), OWNER_LEN);
        assert_eq!(named_owner(&text), None);
        let own = file("a.txt", None, None).encode(MAX_LEN);
        assert_eq!(named_owner(&own).as_deref(), Some(OWNER));
        let snapshot = SnapshotDescription::new("photos", 1, 1, [0; 20]).encode();
        assert_eq!(named_owner(&snapshot), Some(owner_of("photos")));
        assert_ne!(owner_of("photos"), owner_of("photos2"));
    }

    #[test]
    fn the_owner_leaves_room_for_every_path_firn1_held_but_thirteen_bytes() {
        // The longest key each format keeps in full within Glacier's limit.
        let longest = |owner: Option<&str>| {
            (1..MAX_LEN)
                .take_while(|&n| {
                    let mut d = file(&"p".repeat(n), None, Some(&[9; 20]));
                    d.size = Some(u64::MAX);
                    d.mtime_ns = i64::MIN;
                    d.owner = owner.map(str::to_owned);
                    decode(&d.encode(MAX_LEN)).unwrap().key.is_some()
                })
                .last()
                .unwrap()
        };
        let (v1, v2) = (longest(None), longest(Some(OWNER)));
        assert!(v1 - v2 <= 13, "firn1 {v1} bytes, firn2 {v2}");
        assert!(v2 >= 640, "{v2}");
    }

    #[test]
    fn s3_records_carry_the_tree_hash_within_their_limit() {
        let mut d = file("a", None, Some(&[1; 20]));
        d.tree_hash = Some([2; 32]);
        let back = decode(&d.encode(2000)).unwrap();
        assert_eq!((back.sha1, back.tree_hash), (Some([1; 20]), Some([2; 32])));
        let mut long = file(&("y/".repeat(1100) + "file"), None, None);
        long.tree_hash = Some([2; 32]);
        let text = long.encode(2000);
        assert!(text.len() <= 2000);
        let back = decode(&text).unwrap();
        assert_eq!((back.key, back.owner.as_deref()), (None, Some(OWNER)));
        let medium = "z/".repeat(600);
        let text = file(&medium, None, None).encode(2000);
        assert_eq!(decode(&text).unwrap().key.as_deref(), Some(medium.as_str()));
    }

    #[test]
    fn snapshot_descriptions_round_trip_and_name_their_set() {
        let d = SnapshotDescription::new("photos", 1_800_000_000, 200_000, [3; 20]);
        let text = d.encode();
        assert!(text.starts_with("firn-catalog1 "));
        assert_eq!(SnapshotDescription::decode(&text), Some(d.clone()));
        assert!(d.is_of("photos") && !d.is_of("other"));
        assert_eq!(d.owner(), owner_of("photos"));
        assert_eq!(
            decode(&text),
            Err(DecodeError::Unknown),
            "not a file's record"
        );
        let long = "/srv/".to_string() + &"very-long-root/".repeat(80);
        let text = SnapshotDescription::new(&long, 1, 2, [4; 20]).encode();
        assert!(text.len() <= MAX_LEN);
        let back = SnapshotDescription::decode(&text).unwrap();
        assert_eq!(back.set, None);
        assert!(back.is_of(&long));
    }

    #[test]
    fn claims_list_their_archives_within_the_limit() {
        let ids: Vec<String> = (0..500).map(|i| format!("archive-{i}")).collect();
        let per_claim = ClaimDescription::capacity(MAX_LEN);
        assert!(per_claim >= 90, "{per_claim}");
        let claim = ClaimDescription {
            owner: OWNER.into(),
            archives: ids[..per_claim].iter().map(|id| claimed_id(id)).collect(),
        };
        let text = claim.encode();
        assert!(text.len() <= MAX_LEN, "{}", text.len());
        assert_eq!(ClaimDescription::decode(&text), Some(claim));
        assert_eq!(
            decode(&text),
            Err(DecodeError::Unknown),
            "not a file's record"
        );
        assert_eq!(SnapshotDescription::decode(&text), None);
        assert_ne!(claimed_id("a"), claimed_id("b"));
    }

    #[test]
    fn an_overlong_path_still_fits() {
        let key = "x/".repeat(600) + "file";
        let text = file(&key, None, Some(&[0u8; 20])).encode(MAX_LEN);
        assert!(text.len() <= MAX_LEN);
        let back = decode(&text).unwrap();
        assert_eq!((back.key, back.owner.as_deref()), (None, Some(OWNER)));
    }

    #[test]
    fn reads_mt_aws_glacier_mt2() {
        // As mt-aws-glacier writes it: base64url without padding of its JSON.
        let json = r#"{"mtime":"20130327T133716Z","filename":"photos/2013/a b.jpg"}"#;
        let text = format!("mt2 {}", URL_SAFE_NO_PAD.encode(json));
        let d = decode(&text).unwrap();
        assert_eq!(d.key.as_deref(), Some("photos/2013/a b.jpg"));
        assert_eq!(d.mtime_ns, 1_364_391_436 * 1_000_000_000);
        assert_eq!((d.format, d.owner), (Format::MtAwsGlacier2, None));
    }

    #[test]
    fn junk_is_refused() {
        assert_eq!(decode("hello"), Err(DecodeError::Unknown));
        assert_eq!(decode("firn1 !!!"), Err(DecodeError::Malformed("firn1")));
    }
}
