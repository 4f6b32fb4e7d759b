//! The journal of packs in flight: a pack is noted with its members before it
//! is sent, its archive once the store holds it durably, and the entry closes
//! once the catalog records every member. A run that stops between leaves the
//! entry for the next one to resolve: record the members of a stored pack, or
//! find the pack in the store's listing by its SHA-1, or drop the entry (its
//! files, never recorded, are simply backed up again). One row per pack, not
//! per file: journaling 200,000 small files costs a few writes.

use anyhow::{Context as _, Result};
use rusqlite::{OptionalExtension as _, params};
use serde::{Deserialize, Serialize};

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

#[derive(Serialize, Deserialize)]
struct MemberJson {
    k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    s: u64,
    m: i64,
    c: i64,
    i: u64,
    h: String,
    t: String,
    o: u64,
}

fn encode_members(members: &[PackedFile]) -> Result<String> {
    use base64::Engine as _;
    let json: Vec<MemberJson> = members
        .iter()
        .map(|m| MemberJson {
            k: m.key.clone(),
            r: m.raw
                .as_ref()
                .map(|r| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r)),
            s: m.fingerprint.size,
            m: m.fingerprint.mtime_ns,
            c: m.fingerprint.ctime_ns,
            i: m.fingerprint.inode,
            h: hex::encode(m.hash.sha1),
            t: hex::encode(m.hash.tree_hash),
            o: m.offset,
        })
        .collect();
    Ok(serde_json::to_string(&json)?)
}

fn decode_members(text: &str) -> Result<Vec<PackedFile>> {
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
        let members = encode_members(&intent.members)?;
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
                row.get::<_, String>(5)?,
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
                members: decode_members(&members)?,
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
