//! Embedded catalog: one SQLite file that can hold many backup sets.
//!
//! Schema versions (`PRAGMA user_version`, see [`crate::db`]):
//! - 0: written before versions were kept (firn 0.1 and earlier): the tables
//!   below, perhaps without the later indexes (`archive_not_current`).
//! - 1: the tables and indexes below. Version 0 becomes 1 by creating what it
//!   lacks; its rows stay as they are.
//! - 2: `archive.pack_offset` and `archive.pack_len`: where a packed file's
//!   bytes are in its pack (NULL for a file archived alone, as every row of
//!   version 1 is).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Result;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{
    ArchiveRecord, ArchiveState, Catalog, Conflict, CurrentSummary, PackSlot, SnapshotRecord,
};
use crate::db::{Schema, Step};
use crate::model::{Sha1Digest, UNKNOWN_SHA1};

/// The newest schema version.
pub const SCHEMA_VERSION: u32 = 2;

const SCHEMA: Schema = Schema {
    what: "catalog",
    version: SCHEMA_VERSION,
    create: create_v2,
    steps: STEPS,
};

const STEPS: &[Step] = &[create_v1, add_pack_slots];
const _: () = assert!(
    STEPS.len() == SCHEMA_VERSION as usize,
    "one step per version"
);

/// Version 1, made from nothing or from version 0 (whose tables it keeps).
fn create_v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS archive (
            set_id TEXT NOT NULL, key TEXT NOT NULL, archive_id TEXT NOT NULL,
            raw_path BLOB, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
            sha1 BLOB NOT NULL, tree_hash BLOB NOT NULL, target TEXT NOT NULL,
            uploaded_at INTEGER NOT NULL, state TEXT NOT NULL, host TEXT NOT NULL,
            superseded_at INTEGER,
            PRIMARY KEY (set_id, key, archive_id));
         CREATE TABLE IF NOT EXISTS snapshot (
            set_id TEXT NOT NULL, archive_id TEXT NOT NULL, target TEXT NOT NULL,
            created_ms INTEGER NOT NULL, size INTEGER NOT NULL, records INTEGER NOT NULL,
            sha1 BLOB NOT NULL, tree_hash BLOB NOT NULL,
            PRIMARY KEY (set_id, archive_id));
         CREATE UNIQUE INDEX IF NOT EXISTS archive_one_current ON archive (set_id, key) WHERE state = 'current';
         CREATE INDEX IF NOT EXISTS archive_by_id ON archive (archive_id);
         -- The retention sweep's versions (few), without a pass over every current one.
         CREATE INDEX IF NOT EXISTS archive_not_current ON archive (set_id, key, uploaded_at)
            WHERE state != 'current';",
    )
}
/// Version 2 from nothing.
fn create_v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    create_v1(tx)?;
    add_pack_slots(tx)
}

/// Version 1 to 2: a packed file's place in its pack.
fn add_pack_slots(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE archive ADD COLUMN pack_offset INTEGER;
         ALTER TABLE archive ADD COLUMN pack_len INTEGER;",
    )
}

/// `catalog = { kind = "sqlite", path = "…" }` in a set's config; the path
/// defaults to `<data dir>/catalog.sqlite`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteSettings {
    pub path: Option<std::path::PathBuf>,
}

pub struct SqliteCatalog {
    path: PathBuf,
    set_id: String,
    conn: Mutex<Connection>,
}

const COLUMNS: &str = "key, raw_path, size, mtime_ns, sha1, tree_hash, archive_id, target, uploaded_at, state, host, superseded_at, pack_offset, pack_len";

impl SqliteCatalog {
    /// Records one upload inside `tx`: the outer error fails the transaction, the
    /// inner one (a [`Conflict`]) only this upload, which then writes nothing.
    fn record_in(
        tx: &rusqlite::Transaction<'_>,
        set_id: &str,
        record: &ArchiveRecord,
        replaces: Option<&str>,
    ) -> Result<Result<()>> {
        // Cached statements: a batch records thousands of uploads in one
        // transaction. The check costs no lookup when it passes: the version
        // this upload saw is superseded only while it is current, and the
        // unique index on current versions refuses a second one; the current
        // version is looked up only to name it in a conflict.
        let current = |tx: &rusqlite::Transaction<'_>| -> rusqlite::Result<Option<String>> {
            tx.prepare_cached(
                "SELECT archive_id FROM archive WHERE set_id = ?1 AND key = ?2 AND state = 'current'",
            )?
            .query_row(params![set_id, record.key], |row| row.get(0))
            .optional()
        };
        if let Some(previous) = replaces {
            let superseded = tx
                .prepare_cached(
                    "UPDATE archive SET state = 'superseded', superseded_at = ?4
                     WHERE set_id = ?1 AND key = ?2 AND archive_id = ?3 AND state = 'current'",
                )?
                .execute(params![set_id, record.key, previous, record.uploaded_at])?;
            if superseded == 0 {
                let found = current(tx)?;
                if let Err(conflict) = Conflict::check(&record.key, replaces, found) {
                    return Ok(Err(conflict));
                }
            }
        }
        let mut current_record = record.clone();
        current_record.state = ArchiveState::Current;
        current_record.superseded_at = None;
        match Self::insert(tx, set_id, &current_record) {
            Ok(_) => Ok(Ok(())),
            Err(e)
                if replaces.is_none()
                    && e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
            {
                // Another current version (a run recorded one meanwhile): the
                // failed statement wrote nothing, the transaction goes on. (With
                // a version superseded above, any failure fails the transaction.)
                match Conflict::check(&record.key, replaces, current(tx)?) {
                    Err(conflict) => Ok(Err(conflict)),
                    Ok(()) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the catalog at `path` (creating it), upgraded to this firn's
    /// schema; a file a newer firn wrote is refused, and left as it is.
    pub fn open(path: &Path, set_id: &str) -> Result<Self> {
        let conn = crate::db::open(path, &SCHEMA)?;
        // synchronous=FULL: a recorded archive must survive a power cut, or the
        // archive would look orphaned.
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(SqliteCatalog {
            path: path.to_path_buf(),
            set_id: set_id.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn query_records(
        &self,
        sql_tail: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<ArchiveRecord>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM archive WHERE {sql_tail}"))?;
        let rows = stmt.query_map(args, record_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn insert(conn: &Connection, set_id: &str, r: &ArchiveRecord) -> rusqlite::Result<usize> {
        conn.prepare_cached(&format!("INSERT INTO archive (set_id, {COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"))?
            .execute(params![
                set_id,
                r.key,
                r.raw,
                r.size as i64,
                r.mtime_ns,
                &r.sha1[..],
                &r.tree_hash[..],
                r.archive_id,
                r.target,
                r.uploaded_at,
                r.state.as_str(),
                r.host,
                r.superseded_at,
                r.pack.map(|p| p.offset as i64),
                r.pack.map(|p| p.len as i64)
            ])
    }
}

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<ArchiveRecord> {
    let bad = |i: usize| {
        rusqlite::Error::InvalidColumnType(i, "blob length".into(), rusqlite::types::Type::Blob)
    };
    let sha1: Vec<u8> = row.get(4)?;
    let tree: Vec<u8> = row.get(5)?;
    let state: String = row.get(9)?;
    Ok(ArchiveRecord {
        key: row.get(0)?,
        raw: row.get(1)?,
        size: row.get::<_, i64>(2)? as u64,
        mtime_ns: row.get(3)?,
        sha1: sha1.try_into().map_err(|_| bad(4))?,
        tree_hash: tree.try_into().map_err(|_| bad(5))?,
        archive_id: row.get(6)?,
        target: row.get(7)?,
        uploaded_at: row.get(8)?,
        state: ArchiveState::parse(&state).ok_or_else(|| bad(9))?,
        host: row.get(10)?,
        superseded_at: row.get(11)?,
        pack: match (
            row.get::<_, Option<i64>>(12)?,
            row.get::<_, Option<i64>>(13)?,
        ) {
            (Some(offset), Some(len)) => Some(PackSlot {
                offset: offset as u64,
                len: len as u64,
            }),
            _ => None,
        },
    })
}

#[async_trait]
impl Catalog for SqliteCatalog {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn current_summaries(&self) -> Result<Vec<CurrentSummary>> {
        let mut out = Vec::new();
        self.for_each_current(&mut |summary| out.push(summary))
            .await?;
        Ok(out)
    }

    async fn for_each_current(&self, visit: &mut (dyn FnMut(CurrentSummary) + Send)) -> Result<()> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key, raw_path, size, mtime_ns, sha1, target FROM archive
             WHERE set_id = ?1 AND state = 'current' ORDER BY key",
        )?;
        let mut rows = stmt.query([&self.set_id])?;
        while let Some(row) = rows.next()? {
            // Read in place: no allocation per file for the digest.
            let Some(sha1) = row
                .get_ref(4)?
                .as_blob()
                .ok()
                .and_then(|b| <[u8; 20]>::try_from(b).ok())
            else {
                continue;
            };
            visit(CurrentSummary {
                key: row.get(0)?,
                raw: row.get::<_, Option<Vec<u8>>>(1)?.map(Vec::into_boxed_slice),
                size: row.get::<_, i64>(2)? as u64,
                mtime_ns: row.get(3)?,
                sha1,
                target: row.get(5)?,
            });
        }
        Ok(())
    }

    async fn records(&self) -> Result<Vec<ArchiveRecord>> {
        self.query_records("set_id = ?1 ORDER BY key, uploaded_at", &[&self.set_id])
    }

    async fn record_count(&self) -> Result<u64> {
        let count: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM archive WHERE set_id = ?1",
            [&self.set_id],
            |row| row.get(0),
        )?;
        Ok(count as u64)
    }

    async fn for_each_record(
        &self,
        visit: &mut (dyn FnMut(ArchiveRecord) -> Result<()> + Send),
    ) -> Result<()> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM archive WHERE set_id = ?1 ORDER BY key, uploaded_at"
        ))?;
        let mut rows = stmt.query([&self.set_id])?;
        while let Some(row) = rows.next()? {
            visit(record_from_row(row)?)?;
        }
        Ok(())
    }

    async fn superseded(&self) -> Result<Vec<ArchiveRecord>> {
        self.query_records(
            "set_id = ?1 AND state != 'current' ORDER BY key, uploaded_at",
            &[&self.set_id],
        )
    }

    async fn versions(&self, key: &str) -> Result<Vec<ArchiveRecord>> {
        self.query_records(
            "set_id = ?1 AND key = ?2 ORDER BY uploaded_at",
            &[&self.set_id, &key],
        )
    }

    async fn current_many(
        &self,
        keys: &[&str],
    ) -> Result<std::collections::HashMap<String, ArchiveRecord>> {
        let mut conn = self.conn();
        // One read transaction for the chunk, not one (and its locks) per key.
        let tx = conn.transaction()?;
        let mut out = std::collections::HashMap::with_capacity(keys.len());
        {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM archive WHERE set_id = ?1 AND key = ?2 AND state = 'current'"
            ))?;
            for key in keys {
                let mut rows = stmt.query_map(params![self.set_id, key], record_from_row)?;
                if let Some(record) = rows.next().transpose()? {
                    out.insert((*key).to_owned(), record);
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    async fn record_upload(&self, record: &ArchiveRecord, replaces: Option<&str>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Self::record_in(&tx, &self.set_id, record, replaces)??;
        tx.commit()?;
        Ok(())
    }

    async fn record_uploads(
        &self,
        uploads: &[(ArchiveRecord, Option<String>)],
    ) -> Result<Vec<Result<()>>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(uploads.len());
        for (record, replaces) in uploads {
            out.push(Self::record_in(
                &tx,
                &self.set_id,
                record,
                replaces.as_deref(),
            )?);
        }
        tx.commit()?;
        Ok(out)
    }

    async fn record_superseded(&self, record: &ArchiveRecord) -> Result<()> {
        let mut r = record.clone();
        r.state = ArchiveState::Superseded;
        Self::insert(&self.conn(), &self.set_id, &r)?;
        Ok(())
    }

    async fn update_mtime(&self, key: &str, archive_id: &str, mtime_ns: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE archive SET mtime_ns = ?4 WHERE set_id = ?1 AND key = ?2 AND archive_id = ?3",
            params![self.set_id, key, archive_id, mtime_ns],
        )?;
        Ok(())
    }

    async fn fill_unknown_sha1(
        &self,
        key: &str,
        archive_id: &str,
        sha1: &Sha1Digest,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE archive SET sha1 = ?4 WHERE set_id = ?1 AND key = ?2 AND archive_id = ?3 AND sha1 = ?5",
            params![self.set_id, key, archive_id, &sha1[..], &UNKNOWN_SHA1[..]],
        )?;
        Ok(())
    }

    async fn set_state(&self, key: &str, archive_id: &str, state: ArchiveState) -> Result<()> {
        self.conn().execute(
            "UPDATE archive SET state = ?4 WHERE set_id = ?1 AND key = ?2 AND archive_id = ?3",
            params![self.set_id, key, archive_id, state.as_str()],
        )?;
        Ok(())
    }

    async fn remove(&self, key: &str, archive_id: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM archive WHERE set_id = ?1 AND key = ?2 AND archive_id = ?3",
            params![self.set_id, key, archive_id],
        )?;
        Ok(())
    }

    async fn import(&self, records: &[ArchiveRecord]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for record in records {
            Self::insert(&tx, &self.set_id, record)?;
        }
        tx.commit()?;
        Ok(())
    }

    async fn find_archive(&self, archive_id: &str) -> Result<Option<ArchiveRecord>> {
        Ok(self
            .query_records(
                "set_id = ?1 AND archive_id = ?2",
                &[&self.set_id, &archive_id],
            )?
            .into_iter()
            .next())
    }

    async fn names_target(&self, target: &str) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS(SELECT 1 FROM archive WHERE set_id = ?1 AND target = ?2)
                 OR EXISTS(SELECT 1 FROM snapshot WHERE set_id = ?1 AND target = ?2)",
            params![self.set_id, target],
            |row| row.get(0),
        )?)
    }

    async fn snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT archive_id, target, created_ms, size, records, sha1, tree_hash FROM snapshot
             WHERE set_id = ?1 ORDER BY created_ms, archive_id",
        )?;
        let rows = stmt.query_map([&self.set_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Vec<u8>>(5)?,
                row.get::<_, Vec<u8>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (archive_id, target, created_ms, size, records, sha1, tree_hash) = row?;
            let (Ok(sha1), Ok(tree_hash)) = (sha1.try_into(), tree_hash.try_into()) else {
                continue;
            };
            out.push(SnapshotRecord {
                archive_id,
                target,
                created_ms,
                size: size as u64,
                records: records as u64,
                sha1,
                tree_hash,
            });
        }
        Ok(out)
    }

    async fn record_snapshot(&self, snapshot: &SnapshotRecord) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO snapshot (set_id, archive_id, target, created_ms, size, records, sha1, tree_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                self.set_id,
                snapshot.archive_id,
                snapshot.target,
                snapshot.created_ms,
                snapshot.size as i64,
                snapshot.records as i64,
                &snapshot.sha1[..],
                &snapshot.tree_hash[..]
            ],
        )?;
        Ok(())
    }

    async fn remove_snapshot(&self, archive_id: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM snapshot WHERE set_id = ?1 AND archive_id = ?2",
            params![self.set_id, archive_id],
        )?;
        Ok(())
    }
}

/// Whether the embedded catalog exists at `path`, for `firn init`.
pub fn readiness(path: &std::path::Path) -> crate::provision::Readiness {
    use crate::provision::Readiness;
    let what = format!("embedded catalog {}", path.display());
    if path.exists() {
        return Readiness::Exists(what);
    }
    let path = path.to_path_buf();
    Readiness::Missing {
        plan: format!("create the embedded catalog {}", path.display()),
        create: Box::pin(async move {
            SqliteCatalog::open(&path, "")?;
            Ok(format!("created: {what}"))
        }),
    }
}
