//! The journal of packs in flight: a pack is noted with its members before it
//! is sent, its archive once the store holds it durably, and the entry closes
//! once the catalog records every member. A run that stops between leaves the
//! entry for the next one to resolve: record the members of a stored pack, or
//! find the pack in the store's listing by its SHA-1, or drop the entry (its
//! files, never recorded, are simply backed up again). One row per pack, not
//! per file: journaling 200,000 small files costs a few writes.

use anyhow::{Context as _, Result};
use rusqlite::{OptionalExtension as _, params};
use serde::Deserialize;

use super::LocalState;
use crate::model::{ContentHash, Fingerprint, Sha1Digest, TreeHash};

/// One file of a pack as it was read, and where its bytes are in the pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedFile {
    pub key: String,
    pub raw: Option<Vec<u8>>,
    /// The file as it was read (size, mtime, ctime, inode).
    pub fingerprint: Fingerprint,
    pub hash: ContentHash,
    pub offset: u64,
}

/// A pack sent (or being sent) whose members the catalog may not hold yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackIntent {
    /// The SHA-1 of the whole pack, which its description carries.
    pub sha1: Sha1Digest,
    pub size: u64,
    pub started_at: i64,
    /// Set once the store holds the pack durably.
    pub archive_id: Option<String>,
    /// When the store took it (Unix seconds), with `archive_id`.
    pub stored_at: Option<i64>,
    pub members: Vec<PackedFile>,
}

/// What a journal row's `members` holds: [`MEMBERS_BINARY`] then each member
/// as key length (u32 LE) and bytes, raw name length (u32 LE, `u32::MAX` when
/// there is none) and bytes, size, mtime ns, ctime ns, inode, offset (8 bytes LE
/// each), SHA-1 (20 bytes) and tree hash (32 bytes): some 130 bytes a file, and
/// no text to format. A row an older firn wrote holds JSON text instead (read
/// by [`decode_members_json`]).
const MEMBERS_BINARY: u8 = 1;

fn encode_members(members: &[PackedFile]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        1 + members
            .iter()
            .map(|m| 100 + m.key.len() + m.raw.as_ref().map_or(0, Vec::len))
            .sum::<usize>(),
    );
    out.push(MEMBERS_BINARY);
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    for m in members {
        bytes(&mut out, m.key.as_bytes());
        match &m.raw {
            Some(raw) => bytes(&mut out, raw),
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
        out.extend_from_slice(&m.fingerprint.size.to_le_bytes());
        out.extend_from_slice(&m.fingerprint.mtime_ns.to_le_bytes());
        out.extend_from_slice(&m.fingerprint.ctime_ns.to_le_bytes());
        out.extend_from_slice(&m.fingerprint.inode.to_le_bytes());
        out.extend_from_slice(&m.offset.to_le_bytes());
        out.extend_from_slice(&m.hash.sha1);
        out.extend_from_slice(&m.hash.tree_hash);
    }
    out
}

/// Reads what [`encode_members`] wrote.
fn decode_members(blob: &[u8]) -> Result<Vec<PackedFile>> {
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
        if rest.len() < n {
            anyhow::bail!("corrupt pack journal (a member is cut short)");
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head)
    }
    fn word<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N]> {
        Ok(take(rest, N)?.try_into().unwrap_or([0; N]))
    }
    let Some((&MEMBERS_BINARY, mut rest)) = blob.split_first() else {
        anyhow::bail!("corrupt pack journal (unknown member encoding)");
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let key_len = u32::from_le_bytes(word(&mut rest)?) as usize;
        let key = String::from_utf8(take(&mut rest, key_len)?.to_vec())
            .context("corrupt key in the pack journal")?;
        let raw = match u32::from_le_bytes(word(&mut rest)?) {
            u32::MAX => None,
            len => Some(take(&mut rest, len as usize)?.to_vec()),
        };
        let size = u64::from_le_bytes(word(&mut rest)?);
        let mtime_ns = i64::from_le_bytes(word(&mut rest)?);
        let ctime_ns = i64::from_le_bytes(word(&mut rest)?);
        let inode = u64::from_le_bytes(word(&mut rest)?);
        let offset = u64::from_le_bytes(word(&mut rest)?);
        let sha1: Sha1Digest = word(&mut rest)?;
        let tree_hash: TreeHash = word(&mut rest)?;
        out.push(PackedFile {
            key,
            raw,
            fingerprint: Fingerprint {
                size,
                mtime_ns,
                ctime_ns,
                inode,
            },
            hash: ContentHash {
                size,
                sha1,
                tree_hash,
            },
            offset,
        });
    }
    Ok(out)
}

/// The JSON text an older firn journaled members as (still read, so a run it
/// left is recovered).
#[derive(Deserialize)]
struct MemberJson {
    k: String,
    #[serde(default)]
    r: Option<String>,
    s: u64,
    m: i64,
    c: i64,
    i: u64,
    h: String,
    t: String,
    o: u64,
}

fn decode_members_json(text: &str) -> Result<Vec<PackedFile>> {
    use base64::Engine as _;
    let json: Vec<MemberJson> = serde_json::from_str(text).context("corrupt pack journal")?;
    json.into_iter()
        .map(|m| {
            let sha1: Sha1Digest = hex::decode(&m.h)
                .ok()
                .and_then(|d| d.try_into().ok())
                .context("corrupt SHA-1 in the pack journal")?;
            let tree_hash: TreeHash = hex::decode(&m.t)
                .ok()
                .and_then(|d| d.try_into().ok())
                .context("corrupt tree hash in the pack journal")?;
            Ok(PackedFile {
                raw: match m.r {
                    Some(r) => Some(
                        base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(r)
                            .context("corrupt raw name in the pack journal")?,
                    ),
                    None => None,
                },
                key: m.k,
                fingerprint: Fingerprint {
                    size: m.s,
                    mtime_ns: m.m,
                    ctime_ns: m.c,
                    inode: m.i,
                },
                hash: ContentHash {
                    size: m.s,
                    sha1,
                    tree_hash,
                },
                offset: m.o,
            })
        })
        .collect()
}

impl LocalState {
    /// Notes a pack and its members before anything of it is sent.
    pub fn pack_begin(&self, intent: &PackIntent) -> Result<()> {
        let members = encode_members(&intent.members);
        self.conn().execute(
            "INSERT OR REPLACE INTO pack_journal (sha1, size, started_at, archive_id, stored_at, members)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                hex::encode(intent.sha1),
                intent.size as i64,
                intent.started_at,
                intent.archive_id,
                intent.stored_at,
                members
            ],
        )?;
        Ok(())
    }

    /// Notes the archives of packs the store now holds durably (one transaction).
    pub fn packs_stored(&self, stored: &[(Sha1Digest, &str, i64)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE pack_journal SET archive_id = ?2, stored_at = ?3 WHERE sha1 = ?1",
            )?;
            for (sha1, archive_id, at) in stored {
                update.execute(params![hex::encode(sha1), archive_id, at])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Closes the entries of packs whose members the catalog recorded (or that
    /// will never be recorded).
    pub fn packs_end(&self, packs: &[Sha1Digest]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut end = tx.prepare_cached("DELETE FROM pack_journal WHERE sha1 = ?1")?;
            for sha1 in packs {
                end.execute([hex::encode(sha1)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Packs an interrupted run left, oldest first.
    pub fn pack_journal(&self) -> Result<Vec<PackIntent>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT sha1, size, started_at, archive_id, stored_at, members FROM pack_journal
             ORDER BY started_at, sha1",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<i64>>(4)?,
                row.get::<_, rusqlite::types::Value>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (sha1, size, started_at, archive_id, stored_at, members) = row?;
            out.push(PackIntent {
                sha1: hex::decode(&sha1)
                    .ok()
                    .and_then(|d| d.try_into().ok())
                    .context("corrupt pack SHA-1 in the pack journal")?,
                size: size as u64,
                started_at,
                archive_id,
                stored_at,
                members: match members {
                    rusqlite::types::Value::Blob(blob) => decode_members(&blob)?,
                    rusqlite::types::Value::Text(text) => decode_members_json(&text)?,
                    _ => anyhow::bail!("corrupt pack journal (members neither bytes nor JSON)"),
                },
            });
        }
        Ok(out)
    }

    /// Whether the journal holds the pack with this SHA-1.
    pub fn pack_journaled(&self, sha1: &Sha1Digest) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM pack_journal WHERE sha1 = ?1",
                [hex::encode(sha1)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(key: &str, raw: Option<Vec<u8>>, offset: u64) -> PackedFile {
        PackedFile {
            key: key.into(),
            raw,
            fingerprint: Fingerprint {
                size: 3,
                mtime_ns: -1_700_000_000_123_456_789,
                ctime_ns: 1_700_000_001_000_000_007,
                inode: u64::MAX - 1,
            },
            hash: ContentHash {
                size: 3,
                sha1: [7; 20],
                tree_hash: [9; 32],
            },
            offset,
        }
    }

    #[test]
    fn members_read_back_as_written_and_a_cut_entry_is_refused() {
        let members = vec![
            member("a/b.txt", None, 0),
            member("odd", Some(vec![0xff, b'o']), 3),
            member("", Some(Vec::new()), 6),
        ];
        let blob = encode_members(&members);
        assert_eq!(decode_members(&blob).unwrap(), members);
        assert!(decode_members(&encode_members(&[])).unwrap().is_empty());
        let e = decode_members(&blob[..blob.len() - 1]).unwrap_err();
        assert!(format!("{e:#}").contains("corrupt pack journal"), "{e:#}");
        assert!(decode_members(b"").is_err());
    }

    #[test]
    fn members_an_older_firn_journaled_as_json_are_still_read() {
        let text = format!(
            r#"[{{"k":"odd","r":"_28","s":3,"m":-5,"c":6,"i":7,"h":"{}","t":"{}","o":12}}]"#,
            "07".repeat(20),
            "09".repeat(32)
        );
        let read = decode_members_json(&text).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].key, "odd");
        assert_eq!(read[0].raw.as_deref(), Some(&[0xff, b'o'][..]));
        assert_eq!(read[0].fingerprint.mtime_ns, -5);
        assert_eq!(read[0].fingerprint.inode, 7);
        assert_eq!(read[0].hash.sha1, [7; 20]);
        assert_eq!(read[0].hash.tree_hash, [9; 32]);
        assert_eq!(read[0].offset, 12);
    }
}
