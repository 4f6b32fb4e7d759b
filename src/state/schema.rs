//! The local state's tables, declared once, and how a file of an older firn
//! comes to hold them.
//!
//! Versions (`PRAGMA user_version`):
//! - 0: written before versions were kept (firn 0.1 and earlier). Any table may
//!   be missing (each came with the feature that needed it), and `retrieval`
//!   may lack the columns `key`, `destination`, `size` and `ready_at`. Tiers are
//!   free text, read as [`Tier::from_saved`](crate::model::Tier::from_saved) reads them.
//! - 1: every table; a retrieval's or a migration's tier is one of
//!   `expedited`, `standard`, `bulk` (a CHECK constraint: the names
//!   [`Tier::as_str`](crate::model::Tier::as_str) gives, so the file still reads plainly in `sqlite3`).
//! - 2: one table, `retrieval_job`, for the retrieval jobs of restores and of
//!   migrations (a row per archive and purpose), where version 1 had
//!   `retrieval` and `migration`: one retrieval machine, one table.
//! - 3: `run`, the set's run history (a row per command or terminal UI job
//!   that worked on the set: its command, start, duration, exit code and
//!   outcome, and its summary as JSON); nothing else changes.
//! - 4: `pack_journal`, the packs of small files sent and not yet recorded
//!   (each with its members, and its archive once the store holds it);
//!   nothing else changes.
//!
//! A later version that changes a table declares the new table beside the old
//! one (`RETRIEVAL_V2`), lists it in [`TABLES`], and adds a step; the steps
//! keep naming the tables they were written against.

use rusqlite::Transaction;

use crate::db::{Schema, Step, has_column, has_table};

/// The newest schema version.
pub const VERSION: u32 = 4;

pub(super) const SCHEMA: Schema = Schema {
    what: "local state",
    version: VERSION,
    create,
    steps: STEPS,
};

const STEPS: &[Step] = &[
    from_unversioned,
    one_retrieval_table,
    run_history,
    pack_journal,
];
const _: () = assert!(STEPS.len() == VERSION as usize, "one step per version");

/// Fingerprint cache: the hashes of each file as of its size, mtime, ctime, inode.
const FINGERPRINT: &str = "CREATE TABLE IF NOT EXISTS fingerprint (
    key TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
    sha1 BLOB NOT NULL, tree_hash BLOB NOT NULL) WITHOUT ROWID";

/// Uploads started and not yet recorded (the archive once the store holds it).
const UPLOAD_JOURNAL: &str = "CREATE TABLE IF NOT EXISTS upload_journal (
    key TEXT PRIMARY KEY, raw BLOB, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, started_at INTEGER NOT NULL,
    archive_id TEXT, sha1 BLOB, tree_hash BLOB)";

/// Resumable uploads, with the fingerprint of the file they send.
const MULTIPART: &str = "CREATE TABLE IF NOT EXISTS multipart (
    key TEXT PRIMARY KEY, token TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
    started_at INTEGER NOT NULL)";

/// Numbers kept between runs.
const META: &str = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)";

/// Retrieval jobs of restores, one per archive.
const RETRIEVAL_V1: &str = "CREATE TABLE IF NOT EXISTS retrieval (
    archive_id TEXT PRIMARY KEY, job_id TEXT NOT NULL,
    tier TEXT NOT NULL CHECK (tier IN ('expedited', 'standard', 'bulk')),
    requested_at INTEGER NOT NULL, key TEXT NOT NULL DEFAULT '',
    destination BLOB NOT NULL DEFAULT x'', size INTEGER NOT NULL DEFAULT 0, ready_at INTEGER)";

/// Deletions asked of the store whose catalog record may still be there.
const DELETION_JOURNAL: &str = "CREATE TABLE IF NOT EXISTS deletion_journal (
    archive_id TEXT PRIMARY KEY, key TEXT NOT NULL, started_at INTEGER NOT NULL)";

/// The inventory job waited for (one at most).
const INVENTORY_JOB: &str = "CREATE TABLE IF NOT EXISTS inventory_job (
    id INTEGER PRIMARY KEY CHECK (id = 1), job_id TEXT NOT NULL,
    requested_at INTEGER NOT NULL)";

/// Reports kept by name (the last reconciliation).
const REPORT: &str = "CREATE TABLE IF NOT EXISTS report (
    name TEXT PRIMARY KEY, body TEXT NOT NULL, saved_at INTEGER NOT NULL)";

/// Archives this host deleted (an inventory taken before still lists them).
const DELETED_ARCHIVE: &str = "CREATE TABLE IF NOT EXISTS deleted_archive (
    archive_id TEXT PRIMARY KEY, deleted_at INTEGER NOT NULL)";

/// A migration's copies in progress, one row per archive of the previous store.
const MIGRATION_V1: &str = "CREATE TABLE IF NOT EXISTS migration (
    archive_id TEXT PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL,
    size INTEGER NOT NULL, job_id TEXT,
    tier TEXT NOT NULL CHECK (tier IN ('expedited', 'standard', 'bulk')),
    requested_at INTEGER NOT NULL, ready_at INTEGER,
    copy_id TEXT, copy_sha1 BLOB, copy_tree_hash BLOB)";

/// Retrieval jobs, one per archive and purpose: a restore's (`destination`,
/// the directory it restores under) and a migration's (`source`, the store it
/// copies out of; `job_id` none for an empty file; the copy once the new store
/// holds it, until the catalog records it).
const RETRIEVAL_JOB_V2: &str = "CREATE TABLE IF NOT EXISTS retrieval_job (
    archive_id TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('restore', 'migrate')),
    job_id TEXT,
    tier TEXT NOT NULL CHECK (tier IN ('expedited', 'standard', 'bulk')),
    requested_at INTEGER NOT NULL, ready_at INTEGER,
    key TEXT NOT NULL, size INTEGER NOT NULL,
    destination BLOB, source TEXT,
    copy_id TEXT, copy_sha1 BLOB, copy_tree_hash BLOB,
    PRIMARY KEY (archive_id, purpose),
    CHECK (purpose = 'migrate' OR job_id IS NOT NULL))";

/// The set's run history: a row per run (a command, a terminal UI job), newest
/// last; `summary` is the run's JSON summary as `firn log --json` prints it,
/// the other columns what queries select on. `outcome` is the exit code's
/// word.
const RUN_V3: &str = "CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY,
    command TEXT NOT NULL, started_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
    exit_code INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'problems', 'usage', 'busy', 'failed')),
    summary TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS run_by_command ON run (command, id)";

/// Packs of small files begun and not yet recorded: `sha1` (hex) names the
/// pack (its description carries it, so recovery finds it in a listing),
/// `members` holds each file as it was read, and where it is in the pack
/// (bytes, see `state::packs`; JSON text when an older firn wrote it),
/// `archive_id` is set once the store holds it.
const PACK_JOURNAL_V4: &str = "CREATE TABLE IF NOT EXISTS pack_journal (
    sha1 TEXT PRIMARY KEY, size INTEGER NOT NULL, started_at INTEGER NOT NULL,
    archive_id TEXT, stored_at INTEGER, members TEXT NOT NULL)";

/// Every table of the newest version.
const TABLES: &[&str] = &[
    FINGERPRINT,
    UPLOAD_JOURNAL,
    MULTIPART,
    META,
    RETRIEVAL_JOB_V2,
    DELETION_JOURNAL,
    INVENTORY_JOB,
    REPORT,
    DELETED_ARCHIVE,
    RUN_V3,
    PACK_JOURNAL_V4,
];

fn create(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    TABLES.iter().try_for_each(|table| tx.execute_batch(table))
}

/// A version 0 tier as version 1 keeps it: what [`Tier::from_saved`](crate::model::Tier::from_saved) read it
/// as (anything unknown was Standard).
const TYPED_TIER: &str = "CASE WHEN tier IN ('expedited', 'bulk') THEN tier ELSE 'standard' END";

/// Version 0 to 1: the tables a file lacks are created; `retrieval` and
/// `migration` are made again with a typed tier, their rows copied over (the
/// columns an old `retrieval` lacks get their defaults).
fn from_unversioned(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for table in [
        FINGERPRINT,
        UPLOAD_JOURNAL,
        MULTIPART,
        META,
        DELETION_JOURNAL,
        INVENTORY_JOB,
        REPORT,
        DELETED_ARCHIVE,
    ] {
        tx.execute_batch(table)?;
    }
    if has_table(tx, "retrieval")? {
        let mut columns = Vec::new();
        for (name, default) in [
            ("key", "''"),
            ("destination", "x''"),
            ("size", "0"),
            ("ready_at", "NULL"),
        ] {
            columns.push(if has_column(tx, "retrieval", name)? {
                name
            } else {
                default
            });
        }
        tx.execute_batch(&format!(
            "ALTER TABLE retrieval RENAME TO retrieval_v0;
             {RETRIEVAL_V1};
             INSERT INTO retrieval (archive_id, job_id, tier, requested_at, key, destination, size, ready_at)
                SELECT archive_id, job_id, {TYPED_TIER}, requested_at, {columns} FROM retrieval_v0;
             DROP TABLE retrieval_v0;",
            columns = columns.join(", "),
        ))?;
    } else {
        tx.execute_batch(RETRIEVAL_V1)?;
    }
    if has_table(tx, "migration")? {
        tx.execute_batch(&format!(
            "ALTER TABLE migration RENAME TO migration_v0;
             {MIGRATION_V1};
             INSERT INTO migration (archive_id, source, key, size, job_id, tier, requested_at,
                    ready_at, copy_id, copy_sha1, copy_tree_hash)
                SELECT archive_id, source, key, size, job_id, {TYPED_TIER}, requested_at,
                    ready_at, copy_id, copy_sha1, copy_tree_hash FROM migration_v0;
             DROP TABLE migration_v0;"
        ))?;
    } else {
        tx.execute_batch(MIGRATION_V1)?;
    }
    Ok(())
}

/// Version 1 to 2: restores' and migrations' jobs move into one table.
fn one_retrieval_table(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "{RETRIEVAL_JOB_V2};
         INSERT INTO retrieval_job (archive_id, purpose, job_id, tier, requested_at, ready_at,
                key, size, destination)
            SELECT archive_id, 'restore', job_id, tier, requested_at, ready_at, key, size,
                destination FROM retrieval;
         INSERT INTO retrieval_job (archive_id, purpose, job_id, tier, requested_at, ready_at,
                key, size, source, copy_id, copy_sha1, copy_tree_hash)
            SELECT archive_id, 'migrate', job_id, tier, requested_at, ready_at, key, size,
                source, copy_id, copy_sha1, copy_tree_hash FROM migration;
         DROP TABLE retrieval;
         DROP TABLE migration;"
    ))
}

/// Version 2 to 3: the run history, empty.
fn run_history(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(RUN_V3)
}

/// Version 3 to 4: the pack journal, empty.
fn pack_journal(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(PACK_JOURNAL_V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tier;

    /// A retrieval table from before it had `key`, `destination`, `size` and
    /// `ready_at`, and firn 0.1's migration table: tiers in free text. (The
    /// fixture of tests/upgrade.rs holds what firn 0.1 itself wrote.)
    const OLD: &str = "
        CREATE TABLE retrieval (
            archive_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, tier TEXT NOT NULL,
            requested_at INTEGER NOT NULL);
        CREATE TABLE migration (
            archive_id TEXT PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL,
            size INTEGER NOT NULL, job_id TEXT, tier TEXT NOT NULL,
            requested_at INTEGER NOT NULL, ready_at INTEGER,
            copy_id TEXT, copy_sha1 BLOB, copy_tree_hash BLOB);";

    /// Each table's columns: name, type, NOT NULL, default, primary key.
    fn columns(
        conn: &rusqlite::Connection,
    ) -> Vec<(String, String, String, bool, Option<String>, i64)> {
        conn.prepare(
            "SELECT m.name, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk
             FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' ORDER BY m.name, p.cid",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    #[test]
    fn an_older_file_gets_every_table_typed_tiers_as_firn_read_them_and_retrieval_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(OLD).unwrap();
        let tiers = ["expedited", "standard", "bulk", "Bulk", "", "glacial"];
        for (i, tier) in tiers.iter().enumerate() {
            old.execute(
                "INSERT INTO retrieval VALUES (?1, 'job', ?2, 7)",
                rusqlite::params![format!("a{i}"), tier],
            )
            .unwrap();
            old.execute(
                "INSERT INTO migration (archive_id, source, key, size, tier, requested_at)
                 VALUES (?1, 'local:/old', 'k', 1, ?2, 7)",
                rusqlite::params![format!("a{i}"), tier],
            )
            .unwrap();
        }
        drop(old);

        let state = super::super::LocalState::open(&path).unwrap();
        for (i, tier) in tiers.iter().enumerate() {
            let id = format!("a{i}");
            let saved = Tier::from_saved(tier).as_str();
            let retrieval = state.retrieval(&id).unwrap().unwrap();
            assert_eq!(retrieval.tier.as_str(), saved, "{tier:?}");
            assert_eq!(
                (retrieval.key.as_str(), retrieval.size, retrieval.ready_at),
                ("", 0, None)
            );
            assert!(retrieval.destination.is_empty());
            assert_eq!(state.migration(&id).unwrap().unwrap().tier.as_str(), saved);
        }
        let version: u32 = state
            .conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        // Every table of a fresh file, column for column.
        let fresh = dir.path().join("fresh.sqlite");
        drop(super::super::LocalState::open(&fresh).unwrap());
        assert_eq!(
            columns(&state.conn()),
            columns(&rusqlite::Connection::open(&fresh).unwrap())
        );
        // The constraint holds: no tier outside the three.
        let bad = state.conn().execute(
            "UPDATE retrieval_job SET tier = 'glacial' WHERE archive_id = 'a0'",
            [],
        );
        assert!(bad.is_err());
    }

    /// Every table's rows, in order, as SQLite holds them.
    fn rows(conn: &rusqlite::Connection) -> Vec<(String, Vec<Vec<rusqlite::types::Value>>)> {
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        tables
            .into_iter()
            .map(|table| {
                let mut stmt = conn
                    .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
                    .unwrap();
                let n = stmt.column_count();
                let rows = stmt
                    .query_map([], |r| (0..n).map(|i| r.get(i)).collect())
                    .unwrap()
                    .collect::<rusqlite::Result<_>>()
                    .unwrap();
                (table, rows)
            })
            .collect()
    }

    #[test]
    fn a_version_2_file_gains_an_empty_run_history_and_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        // A file as firn wrote it at version 2, with a row in every table.
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        from_unversioned(&tx).unwrap();
        one_retrieval_table(&tx).unwrap();
        tx.execute_batch(
            "INSERT INTO fingerprint VALUES ('a.txt', 1, 2, 3, 4, x'01', x'02');
             INSERT INTO upload_journal VALUES ('b.txt', x'62', 5, 6, 7, 8, 9, 'arch', x'03', x'04');
             INSERT INTO multipart VALUES ('c.bin', 'token', 10, 11, 12, 13, 14);
             INSERT INTO meta VALUES ('scan_entries', 15);
             INSERT INTO retrieval_job (archive_id, purpose, job_id, tier, requested_at, key, size, destination)
                VALUES ('r1', 'restore', 'job', 'bulk', 16, 'd.txt', 17, x'2f74');
             INSERT INTO retrieval_job (archive_id, purpose, tier, requested_at, key, size, source)
                VALUES ('m1', 'migrate', 'standard', 18, 'e.txt', 0, 'local:/old');
             INSERT INTO deletion_journal VALUES ('del', 'f.txt', 19);
             INSERT INTO inventory_job VALUES (1, 'inv', 20);
             INSERT INTO report VALUES ('reconciliation', '{}', 21);
             INSERT INTO deleted_archive VALUES ('gone', 22);
             PRAGMA user_version = 2;",
        )
        .unwrap();
        tx.commit().unwrap();
        let before = rows(&conn);
        assert!(
            before.iter().all(|(_, rows)| !rows.is_empty()),
            "{before:?}"
        );
        assert!(
            before
                .iter()
                .all(|(table, _)| table != "run" && table != "pack_journal")
        );
        drop(conn);

        let state = super::super::LocalState::open(&path).unwrap();
        let version: u32 = state
            .conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        let mut after = rows(&state.conn());
        // Version 3's run history and version 4's pack journal, both empty.
        for table in ["run", "pack_journal"] {
            let at = after
                .iter()
                .position(|(t, _)| t == table)
                .unwrap_or_else(|| panic!("a {table} table"));
            assert!(after.remove(at).1.is_empty(), "{table}");
        }
        assert_eq!(after, before, "every row as it was");
        let fresh = dir.path().join("fresh.sqlite");
        drop(super::super::LocalState::open(&fresh).unwrap());
        assert_eq!(
            columns(&state.conn()),
            columns(&rusqlite::Connection::open(&fresh).unwrap())
        );
        assert!(state.runs(1).unwrap().is_empty());
    }
}
