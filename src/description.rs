//! Archive descriptions: a self-describing, versioned record stored with every archive
//! so a catalog can be rebuilt from the store's inventory alone.
//!
//! firn's format (version 1): `"firn1 " + base64url_nopad(json)` where json is
//! `{"p": key, "r": raw path bytes (base64url, only when they differ from the key),
//!   "s": size, "m": mtime in ns, "h": SHA-1 hex (absent when not known yet),
//!   "t": SHA-256 tree hash hex (S3 only: Glacier reports its own)}`. Glacier allows
//! 1024 printable ASCII characters, S3 metadata 2 KB; when a path is too long to fit,
//! `"p"` is dropped and `"k"` holds the SHA-1 of the key instead (the catalog still
//! has the path).
//!
//! mt-aws-glacier's `mt2` descriptions (`"mt2 " + base64url_nopad(json {"filename",
//! "mtime": "YYYYMMDDTHHMMSSZ"})`) are read so vaults written by that tool can be adopted.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::model::{Sha1Digest, TreeHash};
/// Glacier's limit on an archive description.
pub const MAX_LEN: usize = 1024;
const FIRN_PREFIX: &str = "firn1 ";
const SNAPSHOT_PREFIX: &str = "firn-catalog1 ";
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
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Firn1,
    MtAwsGlacier2,
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
}

#[derive(Deserialize)]
struct Mt2Record {
    filename: String,
    mtime: String,
}

/// The description of an archive for Glacier (at most [`MAX_LEN`] characters).
pub fn encode(
    key: &str,
    raw: Option<&[u8]>,
    size: u64,
    mtime_ns: i64,
    sha1: Option<&Sha1Digest>,
) -> String {
    encode_within(key, raw, size, mtime_ns, sha1, None, MAX_LEN)
}

/// The description within `limit` characters, with the tree hash when given.
pub fn encode_within(
    key: &str,
    raw: Option<&[u8]>,
    size: u64,
    mtime_ns: i64,
    sha1: Option<&Sha1Digest>,
    tree_hash: Option<&TreeHash>,
    limit: usize,
) -> String {
    let full = FirnRecord {
        p: Some(key.to_owned()),
        r: raw.map(|r| URL_SAFE_NO_PAD.encode(r)),
        k: None,
        s: size,
        m: mtime_ns,
        h: sha1.map(hex::encode),
        t: tree_hash.map(hex::encode),
    };
    let text = wrap(&full);
    if text.len() <= limit {
        return text;
    }
    let short = FirnRecord {
        p: None,
        r: None,
        k: Some(hex::encode(Sha1::digest(key.as_bytes()))),
        ..full
    };
    wrap(&short)
}

fn wrap(record: &FirnRecord) -> String {
    let json = serde_json::to_vec(record).unwrap_or_default();
    format!("{FIRN_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not a firn or mt-aws-glacier description")]
    Unknown,
    #[error("malformed {0} description")]
    Malformed(&'static str),
}

pub fn decode(text: &str) -> Result<Description, DecodeError> {
    if let Some(body) = text.strip_prefix(FIRN_PREFIX) {
        let json = URL_SAFE_NO_PAD
            .decode(body.trim())
            .map_err(|_| DecodeError::Malformed("firn1"))?;
        let rec: FirnRecord =
            serde_json::from_slice(&json).map_err(|_| DecodeError::Malformed("firn1"))?;
        let sha1 = decode_hex(rec.h.as_deref())?;
        let tree_hash = decode_hex(rec.t.as_deref())?;
        let raw = match rec.r {
            Some(r) => Some(
                URL_SAFE_NO_PAD
                    .decode(r)
                    .map_err(|_| DecodeError::Malformed("firn1"))?,
            ),
            None => None,
        };
        return Ok(Description {
            key: rec.p,
            raw,
            size: Some(rec.s),
            mtime_ns: rec.m,
            sha1,
            tree_hash,
            format: Format::Firn1,
        });
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
            format: Format::MtAwsGlacier2,
        });
    }
    Err(DecodeError::Unknown)
}

/// An optional hex digest of N bytes.
fn decode_hex<const N: usize>(text: Option<&str>) -> Result<Option<[u8; N]>, DecodeError> {
    match text {
        Some(h) => hex::decode(h)
            .ok()
            .and_then(|v| v.try_into().ok())
            .map(Some)
            .ok_or(DecodeError::Malformed("firn1")),
        None => Ok(None),
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

    #[test]
    fn firn_description_round_trips_and_is_printable_ascii() {
        let raw = b"dir/bad\xffname".to_vec();
        let text = encode(
            "dir/bad\\xFFname",
            Some(&raw),
            42,
            1_700_000_000_123_456_789,
            Some(&[7u8; 20]),
        );
        assert!(text.len() <= MAX_LEN && text.bytes().all(|b| (0x20..0x7f).contains(&b)));
        let d = decode(&text).unwrap();
        assert_eq!(d.key.as_deref(), Some("dir/bad\\xFFname"));
        assert_eq!(d.raw, Some(raw));
        assert_eq!(
            (d.size, d.mtime_ns, d.sha1),
            (Some(42), 1_700_000_000_123_456_789, Some([7u8; 20]))
        );
    }

    #[test]
    fn s3_records_carry_the_tree_hash_within_their_limit() {
        let text = encode_within("a", None, 3, 4, Some(&[1; 20]), Some(&[2; 32]), 2000);
        let d = decode(&text).unwrap();
        assert_eq!((d.sha1, d.tree_hash), (Some([1; 20]), Some([2; 32])));
        let key = "y/".repeat(1100) + "file";
        let text = encode_within(&key, None, 1, 2, None, Some(&[2; 32]), 2000);
        assert!(text.len() <= 2000);
        assert_eq!(decode(&text).unwrap().key, None);
        let medium = "z/".repeat(600);
        let text = encode_within(&medium, None, 1, 2, None, None, 2000);
        assert_eq!(decode(&text).unwrap().key.as_deref(), Some(medium.as_str()));
    }

    #[test]
    fn snapshot_descriptions_round_trip_and_name_their_set() {
        let d = SnapshotDescription::new("photos", 1_800_000_000, 200_000, [3; 20]);
        let text = d.encode();
        assert!(text.starts_with("firn-catalog1 "));
        assert_eq!(SnapshotDescription::decode(&text), Some(d.clone()));
        assert!(d.is_of("photos") && !d.is_of("other"));
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
    fn an_overlong_path_still_fits() {
        let key = "x/".repeat(600) + "file";
        let text = encode(&key, None, 1, 2, Some(&[0u8; 20]));
        assert!(text.len() <= MAX_LEN);
        assert_eq!(decode(&text).unwrap().key, None);
    }

    #[test]
    fn reads_mt_aws_glacier_mt2() {
        // As mt-aws-glacier writes it: base64url without padding of its JSON.
        let json = r#"{"mtime":"20130327T133716Z","filename":"photos/2013/a b.jpg"}"#;
        let text = format!("mt2 {}", URL_SAFE_NO_PAD.encode(json));
        let d = decode(&text).unwrap();
        assert_eq!(d.key.as_deref(), Some("photos/2013/a b.jpg"));
        assert_eq!(d.mtime_ns, 1_364_391_436 * 1_000_000_000);
        assert_eq!(d.format, Format::MtAwsGlacier2);
    }

    #[test]
    fn junk_is_refused() {
        assert_eq!(decode("hello"), Err(DecodeError::Unknown));
        assert_eq!(decode("firn1 !!!"), Err(DecodeError::Malformed("firn1")));
    }
}
