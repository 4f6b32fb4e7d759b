//! Local state of one backup set (SQLite in the platform data dir): the fingerprint
//! cache, the journal of uploads in flight, the journal of deletions in flight,
//! retrieval jobs, the pending inventory job, the last reconciliation report and
//! the archives this host deleted lately.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::model::Fingerprint;
use crate::model::{ContentHash, Sha1Digest, TreeHash};
pub struct LocalState {
    conn: Mutex<Connection>,
    /// The directory the state lives in (the set's state directory).
    dir: std::path::PathBuf,
}

/// A cached fingerprint and the content hash it was computed for.
#[derive(Debug, Clone, Copy)]
pub struct CachedHash {
    pub fingerprint: Fingerprint,
    pub hash: ContentHash,
}

/// An upload that was started but whose catalog record was not yet confirmed.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub key: String,
    pub raw: Option<Vec<u8>>,
    pub fingerprint: Fingerprint,
    pub started_at: i64,
    /// Set once the store confirmed the archive.
    pub archive_id: Option<String>,
    pub hash: Option<ContentHash>,
}

/// An archive the store holds durably, for [`LocalState::journal_stored_many`].
pub struct JournalStored<'a> {
    pub key: &'a str,
    pub archive_id: &'a str,
    pub hash: &'a ContentHash,
    pub fingerprint: &'a Fingerprint,
}

/// A resumable upload (Glacier multipart) of the file as it was when it started.
#[derive(Debug, Clone)]
pub struct MultipartRecord {
    pub key: String,
    pub token: String,
    pub fingerprint: Fingerprint,
    pub started_at: i64,
}

/// A deletion asked of the store whose catalog record may still be there: the
/// next run deletes it from the store again (idempotent) and from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionIntent {
    pub archive_id: String,
    pub key: String,
    pub started_at: i64,
}

/// A retrieval job requested for one archive, kept so a restart picks it up again
/// instead of requesting (and paying for) another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievalRecord {
    pub archive_id: String,
    pub job_id: String,
    pub tier: String,
    pub requested_at: i64,
    /// The file it restores and the directory it restores under (empty for jobs
    /// from older versions).
    pub key: String,
    pub destination: Vec<u8>,
    pub size: u64,
    /// When the store first said the output was ready (its 24-hour window starts).
    pub ready_at: Option<i64>,
}

const RETRIEVAL_COLUMNS: &str =
    "archive_id, job_id, tier, requested_at, key, destination, size, ready_at";

fn retrieval_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RetrievalRecord> {
    Ok(RetrievalRecord {
        archive_id: row.get(0)?,
        job_id: row.get(1)?,
        tier: row.get(2)?,
        requested_at: row.get(3)?,
        key: row.get(4)?,
        destination: row.get(5)?,
        size: row.get::<_, i64>(6)? as u64,
        ready_at: row.get(7)?,
    })
}

pub(crate) fn open_db(path: &Path) -> Result<Connection> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    let conn = Connection::open(path)
        .with_context(|| format!("cannot open database {}", path.display()))?;
    // WAL keeps readers (a second `firn status`) from blocking a running backup.
    conn.pragma_update(None, "journal_mode", "WAL")
        .with_context(|| {
            format!(
                "cannot use database {} (is it an SQLite file on a writable disk?)",
                path.display()
            )
        })?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(conn)
}

/// Upgrades a table created by an older firn in place.
fn add_missing_columns(conn: &Connection, table: &str, columns: &[(&str, &str)]) -> Result<()> {
    let existing: Vec<String> = conn
        .prepare(&format!("PRAGMA table_info({table})"))?
        .query_map([], |row| row.get(1))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, decl) in columns {
        if !existing.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {name} {decl}"))?;
        }
    }
    Ok(())
}

fn blob<const N: usize>(v: Option<Vec<u8>>) -> Option<[u8; N]> {
    v.and_then(|b| b.try_into().ok())
}

/// Column `index` of `row` as N bytes (None when NULL, not a blob, or another length).
fn blob_at<const N: usize>(row: &rusqlite::Row<'_>, index: usize) -> Result<Option<[u8; N]>> {
    Ok(row
        .get_ref(index)?
        .as_blob_or_null()
        .ok()
        .flatten()
        .and_then(|b| b.try_into().ok()))
}

impl LocalState {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = open_db(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS fingerprint (
                key TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
                sha1 BLOB NOT NULL, tree_hash BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS upload_journal (
                key TEXT PRIMARY KEY, raw BLOB, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, started_at INTEGER NOT NULL,
                archive_id TEXT, sha1 BLOB, tree_hash BLOB);
             CREATE TABLE IF NOT EXISTS multipart (
                key TEXT PRIMARY KEY, token TEXT NOT NULL, size INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
                started_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS retrieval (
                archive_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, tier TEXT NOT NULL,
                requested_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS deletion_journal (
                archive_id TEXT PRIMARY KEY, key TEXT NOT NULL, started_at INTEGER NOT NULL);",
        )
        .with_context(|| format!("cannot initialise local state {}", path.display()))?;
        add_missing_columns(
            &conn,
            "retrieval",
            &[
                ("key", "TEXT NOT NULL DEFAULT ''"),
                ("destination", "BLOB NOT NULL DEFAULT x''"),
                ("size", "INTEGER NOT NULL DEFAULT 0"),
                ("ready_at", "INTEGER"),
            ],
        )
        .with_context(|| format!("cannot upgrade local state {}", path.display()))?;
        conn.execute_batch(INVENTORY_SCHEMA)
            .with_context(|| format!("cannot initialise local state {}", path.display()))?;
        conn.execute_batch(MIGRATION_SCHEMA)
            .with_context(|| format!("cannot initialise local state {}", path.display()))?;
        Ok(LocalState {
            conn: Mutex::new(conn),
            dir: path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| std::path::PathBuf::from(".")),
        })
    }

    /// The set's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A reader of the cache in ascending key order (see [`FingerprintCursor`]),
    /// reading ahead on a thread of its own.
    pub fn fingerprints(self: &Arc<Self>) -> Result<FingerprintCursor> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let state = Arc::clone(self);
        std::thread::Builder::new()
            .name("firn-fingerprints".into())
            .spawn(move || {
                let mut last = None;
                loop {
                    let batch = state.fingerprint_batch(&mut last);
                    let more = batch.as_ref().is_ok_and(|(_, more)| *more);
                    // Stops when the cursor is dropped (the receiver with it).
                    if tx.send(batch.map(|(rows, _)| rows)).is_err() || !more {
                        break;
                    }
                }
            })
            .context(
                "cannot start a thread to read the fingerprint cache (out of memory or threads?)",
            )?;
        Ok(FingerprintCursor {
            rx,
            batch: std::collections::VecDeque::new(),
            done: false,
        })
    }

    /// The next rows of the cache after `last` (all from the start when None), in
    /// key order, and whether more may follow; moves `last` past them.
    fn fingerprint_batch(
        &self,
        last: &mut Option<String>,
    ) -> Result<(std::collections::VecDeque<(String, CachedHash)>, bool)> {
        const COLUMNS: &str = "key, size, mtime_ns, ctime_ns, inode, sha1, tree_hash";
        let conn = self.conn();
        let mut stmt = match last {
            None => conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM fingerprint ORDER BY key LIMIT ?1"
            ))?,
            Some(_) => conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM fingerprint WHERE key > ?2 ORDER BY key LIMIT ?1"
            ))?,
        };
        let limit = FINGERPRINT_BATCH as i64;
        let mut rows = match last.as_deref() {
            None => stmt.query(params![limit])?,
            Some(after) => stmt.query(params![limit, after])?,
        };
        let mut batch = std::collections::VecDeque::with_capacity(FINGERPRINT_BATCH);
        let (mut read, mut last_skipped) = (0, None);
        while let Some(row) = rows.next()? {
            read += 1;
            let key: String = row.get(0)?;
            let size: i64 = row.get(1)?;
            // Read in place: no allocation per row for the two digests.
            let hashes = (blob_at::<20>(row, 5)?, blob_at::<32>(row, 6)?);
            if let (Some(sha1), Some(tree_hash)) = hashes {
                let cached = CachedHash {
                    fingerprint: Fingerprint {
                        size: size as u64,
                        mtime_ns: row.get(2)?,
                        ctime_ns: row.get(3)?,
                        inode: row.get::<_, i64>(4)? as u64,
                    },
                    hash: ContentHash {
                        size: size as u64,
                        sha1,
                        tree_hash,
                    },
                };
                batch.push_back((key, cached));
                last_skipped = None;
            } else {
                // A damaged row: passed over, as if not cached.
                last_skipped = Some(key);
            }
        }
        if read > 0 {
            *last = last_skipped.or_else(|| batch.back().map(|(key, _)| key.clone()));
        }
        Ok((batch, read == FINGERPRINT_BATCH))
    }

    pub fn cached(&self, key: &str) -> Result<Option<CachedHash>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT size, mtime_ns, ctime_ns, inode, sha1, tree_hash FROM fingerprint WHERE key = ?1",
        )?;
        let row = stmt
            .query_row([key], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            })
            .optional()?;
        Ok(
            row.and_then(|(size, mtime_ns, ctime_ns, inode, sha1, tree)| {
                Some(CachedHash {
                    fingerprint: Fingerprint {
                        size: size as u64,
                        mtime_ns,
                        ctime_ns,
                        inode: inode as u64,
                    },
                    hash: ContentHash {
                        size: size as u64,
                        sha1: blob::<20>(sha1)?,
                        tree_hash: blob::<32>(tree)?,
                    },
                })
            }),
        )
    }

    pub fn put_fingerprints(&self, items: &[(String, Fingerprint, ContentHash)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.finish_uploads(&[], items)
    }

    /// A number remembered between runs (e.g. how many entries the last scan saw).
    pub fn number(&self, name: &str) -> Result<Option<i64>> {
        let conn = self.conn();
        Ok(conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [name], |row| {
                row.get(0)
            })
            .optional()?)
    }

    pub fn set_number(&self, name: &str, value: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![name, value],
        )?;
        Ok(())
    }

    pub fn forget_fingerprint(&self, key: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM fingerprint WHERE key = ?1", [key])?;
        Ok(())
    }

    pub fn journal_begin(
        &self,
        key: &str,
        raw: Option<&[u8]>,
        fp: &Fingerprint,
        now: i64,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO upload_journal (key, raw, size, mtime_ns, ctime_ns, inode, started_at, archive_id, sha1, tree_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL, NULL)",
            params![key, raw, fp.size as i64, fp.mtime_ns, fp.ctime_ns, fp.inode as i64, now],
        )?;
        Ok(())
    }

    /// Notes the intent to upload many files in one transaction (a run that may
    /// note intents ahead of sending: its store can list archives for recovery).
    pub fn journal_begin_many(
        &self,
        items: &[(&str, Option<&[u8]>, Fingerprint)],
        now: i64,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO upload_journal (key, raw, size, mtime_ns, ctime_ns, inode, started_at, archive_id, sha1, tree_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL, NULL)",
            )?;
            for (key, raw, fp) in items {
                stmt.execute(params![
                    key,
                    raw,
                    fp.size as i64,
                    fp.mtime_ns,
                    fp.ctime_ns,
                    fp.inode as i64,
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Notes a batch of archives the store holds durably, each with the file's
    /// fingerprint as it was read, in one transaction.
    pub fn journal_stored_many(&self, items: &[JournalStored<'_>]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE upload_journal SET archive_id = ?2, sha1 = ?3, tree_hash = ?4,
                 size = ?5, mtime_ns = ?6, ctime_ns = ?7, inode = ?8 WHERE key = ?1",
            )?;
            for item in items {
                let fp = item.fingerprint;
                stmt.execute(params![
                    item.key,
                    item.archive_id,
                    &item.hash.sha1[..],
                    &item.hash.tree_hash[..],
                    fp.size as i64,
                    fp.mtime_ns,
                    fp.ctime_ns,
                    fp.inode as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Closes the journal entries of `ended` and caches the fingerprints of the
    /// files recorded, in one transaction.
    pub fn finish_uploads(
        &self,
        ended: &[&str],
        recorded: &[(String, Fingerprint, ContentHash)],
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut end = tx.prepare_cached("DELETE FROM upload_journal WHERE key = ?1")?;
            for key in ended {
                end.execute([key])?;
            }
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO fingerprint (key, size, mtime_ns, ctime_ns, inode, sha1, tree_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (key, fp, hash) in recorded {
                put.execute(params![
                    key,
                    fp.size as i64,
                    fp.mtime_ns,
                    fp.ctime_ns,
                    fp.inode as i64,
                    &hash.sha1[..],
                    &hash.tree_hash[..]
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The keys with a resumable upload (looked up once per run, not per file).
    pub fn multipart_keys(&self) -> Result<std::collections::HashSet<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT key FROM multipart")?;
        let keys = stmt
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(keys)
    }

    pub fn journal_stored(&self, key: &str, archive_id: &str, hash: &ContentHash) -> Result<()> {
        self.conn().execute(
            "UPDATE upload_journal SET archive_id = ?2, sha1 = ?3, tree_hash = ?4 WHERE key = ?1",
            params![key, archive_id, &hash.sha1[..], &hash.tree_hash[..]],
        )?;
        Ok(())
    }

    pub fn journal_end(&self, key: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM upload_journal WHERE key = ?1", [key])?;
        Ok(())
    }

    pub fn journal(&self) -> Result<Vec<JournalEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT key, raw, size, mtime_ns, ctime_ns, inode, started_at, archive_id, sha1, tree_hash
             FROM upload_journal ORDER BY key",
        )?;
        let rows = stmt.query_map([], |row| {
            let size: i64 = row.get(2)?;
            let sha1: Option<Sha1Digest> = blob::<20>(row.get(8)?);
            let tree: Option<TreeHash> = blob::<32>(row.get(9)?);
            Ok(JournalEntry {
                key: row.get(0)?,
                raw: row.get(1)?,
                fingerprint: Fingerprint {
                    size: size as u64,
                    mtime_ns: row.get(3)?,
                    ctime_ns: row.get(4)?,
                    inode: row.get::<_, i64>(5)? as u64,
                },
                started_at: row.get(6)?,
                archive_id: row.get(7)?,
                hash: sha1.zip(tree).map(|(sha1, tree_hash)| ContentHash {
                    size: size as u64,
                    sha1,
                    tree_hash,
                }),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn multipart(&self, key: &str) -> Result<Option<MultipartRecord>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT key, token, size, mtime_ns, ctime_ns, inode, started_at FROM multipart WHERE key = ?1",
                [key],
                |row| {
                    Ok(MultipartRecord {
                        key: row.get(0)?,
                        token: row.get(1)?,
                        fingerprint: Fingerprint {
                            size: row.get::<_, i64>(2)? as u64,
                            mtime_ns: row.get(3)?,
                            ctime_ns: row.get(4)?,
                            inode: row.get::<_, i64>(5)? as u64,
                        },
                        started_at: row.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn multipart_tokens(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT token FROM multipart")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn put_multipart(&self, key: &str, token: &str, fp: &Fingerprint, now: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO multipart (key, token, size, mtime_ns, ctime_ns, inode, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![key, token, fp.size as i64, fp.mtime_ns, fp.ctime_ns, fp.inode as i64, now],
        )?;
        Ok(())
    }

    pub fn forget_multipart(&self, key: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM multipart WHERE key = ?1", [key])?;
        Ok(())
    }

    pub fn retrieval(&self, archive_id: &str) -> Result<Option<RetrievalRecord>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("SELECT {RETRIEVAL_COLUMNS} FROM retrieval WHERE archive_id = ?1"),
                [archive_id],
                retrieval_row,
            )
            .optional()?)
    }

    /// Every retrieval job not yet downloaded, oldest first.
    pub fn retrievals(&self) -> Result<Vec<RetrievalRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {RETRIEVAL_COLUMNS} FROM retrieval ORDER BY requested_at, key"
        ))?;
        let rows = stmt.query_map([], retrieval_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn put_retrieval(&self, record: &RetrievalRecord) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO retrieval (archive_id, job_id, tier, requested_at, key, destination, size, ready_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.archive_id,
                record.job_id,
                record.tier,
                record.requested_at,
                record.key,
                record.destination,
                record.size as i64,
                record.ready_at
            ],
        )?;
        Ok(())
    }

    pub fn forget_retrieval(&self, archive_id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM retrieval WHERE archive_id = ?1", [archive_id])?;
        Ok(())
    }

    /// Journals a deletion before the store is asked (see [`DeletionIntent`]).
    pub fn deletion_begin(&self, archive_id: &str, key: &str, now: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO deletion_journal (archive_id, key, started_at) VALUES (?1, ?2, ?3)",
            params![archive_id, key, now],
        )?;
        Ok(())
    }

    pub fn deletion_end(&self, archive_id: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM deletion_journal WHERE archive_id = ?1",
            [archive_id],
        )?;
        Ok(())
    }

    /// Deletions an interrupted run left, oldest first.
    pub fn deletions(&self) -> Result<Vec<DeletionIntent>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT archive_id, key, started_at FROM deletion_journal ORDER BY started_at, archive_id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(DeletionIntent {
                archive_id: row.get(0)?,
                key: row.get(1)?,
                started_at: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Reads the fingerprint cache in ascending key order, a batch of rows at a time,
/// on a thread that reads the next batch while this one is looked through: status
/// walks it beside the tree without holding the whole cache, and without a
/// statement left open between batches (the cache is written meanwhile).
pub struct FingerprintCursor {
    rx: std::sync::mpsc::Receiver<Result<std::collections::VecDeque<(String, CachedHash)>>>,
    batch: std::collections::VecDeque<(String, CachedHash)>,
    done: bool,
}

/// Rows per batch: a few hundred KB at most (two in hand, one read ahead).
const FINGERPRINT_BATCH: usize = 2048;

impl FingerprintCursor {
    /// The cached fingerprint and hashes of `key`. Keys must be asked for in
    /// ascending order: the rows before `key` are passed over for good.
    pub fn seek(&mut self, key: &str) -> Result<Option<CachedHash>> {
        loop {
            while let Some((front, _)) = self.batch.front() {
                match front.as_str().cmp(key) {
                    std::cmp::Ordering::Less => {
                        self.batch.pop_front();
                    }
                    std::cmp::Ordering::Equal => {
                        return Ok(self.batch.pop_front().map(|(_, cached)| cached));
                    }
                    std::cmp::Ordering::Greater => return Ok(None),
                }
            }
            if self.done {
                return Ok(None);
            }
            match self.rx.recv() {
                Ok(batch) => self.batch = batch?,
                // The reader ended after the last batch.
                Err(_) => self.done = true,
            }
        }
    }
}

/// Inventory jobs, saved reports, and archives this host deleted (an inventory
/// taken before a deletion still lists the archive).
const INVENTORY_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS inventory_job (
        id INTEGER PRIMARY KEY CHECK (id = 1), job_id TEXT NOT NULL,
        requested_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS report (
        name TEXT PRIMARY KEY, body TEXT NOT NULL, saved_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS deleted_archive (
        archive_id TEXT PRIMARY KEY, deleted_at INTEGER NOT NULL);";

/// The inventory job this set is waiting for (or read last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryJob {
    pub job_id: String,
    pub requested_at: i64,
}

impl LocalState {
    pub fn inventory_job(&self) -> Result<Option<InventoryJob>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT job_id, requested_at FROM inventory_job WHERE id = 1",
                [],
                |row| {
                    Ok(InventoryJob {
                        job_id: row.get(0)?,
                        requested_at: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn put_inventory_job(&self, job: &InventoryJob) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO inventory_job (id, job_id, requested_at) VALUES (1, ?1, ?2)",
            params![job.job_id, job.requested_at],
        )?;
        Ok(())
    }

    pub fn forget_inventory_job(&self) -> Result<()> {
        self.conn().execute("DELETE FROM inventory_job", [])?;
        Ok(())
    }

    /// Saves a report (JSON) under a name, replacing the previous one.
    pub fn put_report(&self, name: &str, body: &str, now: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO report (name, body, saved_at) VALUES (?1, ?2, ?3)",
            params![name, body, now],
        )?;
        Ok(())
    }

    pub fn report(&self, name: &str) -> Result<Option<String>> {
        let conn = self.conn();
        Ok(conn
            .query_row("SELECT body FROM report WHERE name = ?1", [name], |row| {
                row.get(0)
            })
            .optional()?)
    }

    /// Remembers that this host deleted an archive from the store, so an inventory
    /// taken before the deletion does not report it as an orphan. Entries older
    /// than 30 days are dropped (inventories are at most a few days old).
    pub fn remember_deleted(&self, archive_id: &str, now: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR REPLACE INTO deleted_archive (archive_id, deleted_at) VALUES (?1, ?2)",
            params![archive_id, now],
        )?;
        conn.execute(
            "DELETE FROM deleted_archive WHERE deleted_at < ?1",
            [now - 30 * 86_400],
        )?;
        Ok(())
    }

    /// Archives this host deleted, with when.
    pub fn deleted_archives(&self) -> Result<std::collections::HashMap<String, i64>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT archive_id, deleted_at FROM deleted_archive")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize) -> (String, Fingerprint, ContentHash) {
        let fingerprint = Fingerprint {
            size: i as u64,
            mtime_ns: i as i64,
            ctime_ns: i as i64,
            inode: i as u64,
        };
        let hash = ContentHash {
            size: i as u64,
            sha1: [(i % 251) as u8; 20],
            tree_hash: [0; 32],
        };
        (format!("d/{i:06}"), fingerprint, hash)
    }

    #[test]
    fn the_cursor_finds_every_cached_key_across_batches_and_passes_over_damaged_rows() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(LocalState::open(&dir.path().join("state.sqlite")).unwrap());
        let total = FINGERPRINT_BATCH * 2 + 7;
        let rows: Vec<_> = (0..total).filter(|i| i % 3 != 1).map(row).collect();
        state.put_fingerprints(&rows).unwrap();
        // A damaged row on a batch boundary and one inside: as if not cached.
        for i in [FINGERPRINT_BATCH - 1, 5] {
            state
                .conn()
                .execute(
                    "UPDATE fingerprint SET sha1 = x'00' WHERE key = ?1",
                    [row(i).0],
                )
                .unwrap();
        }
        let mut cursor = state.fingerprints().unwrap();
        for i in 0..total + 3 {
            let found = cursor.seek(&row(i).0).unwrap();
            let expected = i < total && i % 3 != 1 && i != 5 && i != FINGERPRINT_BATCH - 1;
            assert_eq!(found.is_some(), expected, "key {i}");
            if let Some(cached) = found {
                assert_eq!(cached.fingerprint, row(i).1);
                assert_eq!(cached.hash.sha1, row(i).2.sha1);
            }
        }
        // Keys skipped over are not found again, and the end stays the end.
        assert!(cursor.seek("e").unwrap().is_none());
    }
}

/// A migration's copies in progress, one row per archive of the previous store.
const MIGRATION_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS migration (
        archive_id TEXT PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL,
        size INTEGER NOT NULL, job_id TEXT, tier TEXT NOT NULL,
        requested_at INTEGER NOT NULL, ready_at INTEGER,
        copy_id TEXT, copy_sha1 BLOB, copy_tree_hash BLOB);";

/// One archive a migration is copying out of the set's previous store: the
/// retrieval job it requested (kept, so no rerun pays for another), and once the
/// new store holds the copy durably, the copy (recorded by the next run when
/// this one stops before the catalog has it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRecord {
    /// The archive in the previous store.
    pub archive_id: String,
    /// The previous store's target.
    pub source: String,
    pub key: String,
    pub size: u64,
    pub job_id: Option<String>,
    pub tier: String,
    pub requested_at: i64,
    /// When the store first said the job's output was ready.
    pub ready_at: Option<i64>,
    pub copy: Option<MigratedCopy>,
}

/// The copy a migration stored in the new store, with the hashes of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigratedCopy {
    pub archive_id: String,
    pub sha1: Sha1Digest,
    pub tree_hash: TreeHash,
}

const MIGRATION_COLUMNS: &str = "archive_id, source, key, size, job_id, tier, requested_at, ready_at, copy_id, copy_sha1, copy_tree_hash";

fn migration_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MigrationRecord> {
    let copy_id: Option<String> = row.get(8)?;
    let sha1 = blob::<20>(row.get(9)?);
    let tree_hash = blob::<32>(row.get(10)?);
    Ok(MigrationRecord {
        archive_id: row.get(0)?,
        source: row.get(1)?,
        key: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        job_id: row.get(4)?,
        tier: row.get(5)?,
        requested_at: row.get(6)?,
        ready_at: row.get(7)?,
        copy: match (copy_id, sha1, tree_hash) {
            (Some(archive_id), Some(sha1), Some(tree_hash)) => Some(MigratedCopy {
                archive_id,
                sha1,
                tree_hash,
            }),
            _ => None,
        },
    })
}

impl LocalState {
    pub fn migration(&self, archive_id: &str) -> Result<Option<MigrationRecord>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("SELECT {MIGRATION_COLUMNS} FROM migration WHERE archive_id = ?1"),
                [archive_id],
                migration_row,
            )
            .optional()?)
    }

    /// Every copy in progress, in key order.
    pub fn migrations(&self) -> Result<Vec<MigrationRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {MIGRATION_COLUMNS} FROM migration ORDER BY key, archive_id"
        ))?;
        let rows = stmt.query_map([], migration_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn put_migration(&self, record: &MigrationRecord) -> Result<()> {
        self.put_migrations(&[record])
    }

    /// Saves many rows in one transaction (a batch of copies journaled).
    pub fn put_migrations(&self, records: &[&MigrationRecord]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO migration ({MIGRATION_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))?;
            for record in records {
                let copy = record.copy.as_ref();
                stmt.execute(params![
                    record.archive_id,
                    record.source,
                    record.key,
                    record.size as i64,
                    record.job_id,
                    record.tier,
                    record.requested_at,
                    record.ready_at,
                    copy.map(|c| c.archive_id.as_str()),
                    copy.map(|c| c.sha1.to_vec()),
                    copy.map(|c| c.tree_hash.to_vec()),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets many rows in one transaction (a batch of copies recorded).
    pub fn forget_migrations(&self, archive_ids: &[&str]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM migration WHERE archive_id = ?1")?;
            for id in archive_ids {
                stmt.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn forget_migration(&self, archive_id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM migration WHERE archive_id = ?1", [archive_id])?;
        Ok(())
    }
}
