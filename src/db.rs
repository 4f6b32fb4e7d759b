//! The SQLite files firn keeps (a set's local state, the embedded catalog):
//! opening one, its schema version (`PRAGMA user_version`) and the forward
//! migration from any version this firn knows to the newest, in one transaction.
//!
//! A file written by a newer firn is refused before SQLite touches it: its
//! version is read from the file's header, so not even the journal mode is
//! switched, and no `-wal` or `-shm` file appears beside it.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, Transaction};

/// One migration step: from version `i` to `i + 1` for `steps[i]`.
pub type Step = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// What a versioned file holds and how it comes to hold the newest schema.
pub struct Schema {
    /// What the file is, for messages ("local state", "catalog").
    pub what: &'static str,
    /// The newest version, the one this firn writes.
    pub version: u32,
    /// Creates the newest schema in an empty file.
    pub create: Step,
    /// `steps[i]` migrates a file of version `i` to `i + 1`; version 0 is a
    /// file written before versions were kept (firn 0.1 and earlier).
    pub steps: &'static [Step],
}

/// The header every SQLite database file starts with.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// Where the header keeps `PRAGMA user_version` (4 bytes, big-endian).
const USER_VERSION_AT: usize = 60;

/// Opens (creating it when missing) the database at `path` and brings it to the
/// newest version of `schema`. A file newer than `schema` is refused untouched.
pub fn open(path: &Path, schema: &Schema) -> Result<Connection> {
    if let Some(found) = header_version(path)? {
        refuse_newer(path, schema, found)?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    let mut conn = Connection::open(path)
        .with_context(|| format!("cannot open database {}", path.display()))?;
    let unusable = || {
        format!(
            "cannot use database {} (is it an SQLite file on a writable disk?)",
            path.display()
        )
    };
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .with_context(unusable)?;
    // The header can be older than the file: a change still in the WAL.
    let found = user_version(&conn).with_context(unusable)?;
    refuse_newer(path, schema, found)?;
    // WAL keeps readers (a second `firn status`) from blocking a running backup.
    conn.pragma_update(None, "journal_mode", "WAL")
        .with_context(unusable)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .with_context(unusable)?;
    if found != schema.version {
        migrate(&mut conn, path, schema, found)?;
    }
    Ok(conn)
}

/// The schema version in the header of the SQLite file at `path`; None when
/// there is no file yet, or it is empty or not an SQLite file (opening it says
/// what is wrong).
fn header_version(path: &Path) -> Result<Option<u32>> {
    let mut header = [0u8; USER_VERSION_AT + 4];
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    match file.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    if &header[..MAGIC.len()] != MAGIC {
        return Ok(None);
    }
    let at = &header[USER_VERSION_AT..];
    Ok(Some(u32::from_be_bytes([at[0], at[1], at[2], at[3]])))
}

fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

fn refuse_newer(path: &Path, schema: &Schema, found: u32) -> Result<()> {
    if found > schema.version {
        // What needs changing is the firn in use: a usage error, not a failure.
        bail!(crate::model::usage(format!(
            "{} {} is schema version {found}, written by a newer firn than this one (which reads \
             versions up to {}): run it with a firn at least as new as the one that wrote it; \
             the file was left unchanged",
            schema.what,
            path.display(),
            schema.version
        )));
    }
    Ok(())
}

/// Brings the file from version `found` to `schema.version` in one
/// transaction: all of it or none.
fn migrate(conn: &mut Connection, path: &Path, schema: &Schema, found: u32) -> Result<()> {
    let upgrade = || {
        format!(
            "cannot upgrade {} {} from schema version {found} to {}; it was left as it was \
             (is the disk full or read-only?)",
            schema.what,
            path.display(),
            schema.version
        )
    };
    // Immediate: another firn opening the same file (the catalog is shared by
    // sets) waits here, then finds the file upgraded.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .with_context(upgrade)?;
    let now = user_version(&tx).with_context(upgrade)?;
    refuse_newer(path, schema, now)?;
    if now < schema.version {
        apply(&tx, schema, now).with_context(upgrade)?;
        tx.pragma_update(None, "user_version", schema.version)
            .with_context(upgrade)?;
    }
    tx.commit().with_context(upgrade)
}

/// The newest schema made from nothing, or the steps from version `from`.
fn apply(tx: &Transaction<'_>, schema: &Schema, from: u32) -> Result<()> {
    let empty: bool = tx.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM sqlite_master)",
        [],
        |row| row.get(0),
    )?;
    if empty {
        return Ok((schema.create)(tx)?);
    }
    let Some(steps) = schema.steps.get(from as usize..) else {
        bail!("no step from schema version {from}");
    };
    for step in steps {
        step(tx)?;
    }
    Ok(())
}

/// Whether `table` has a column `column` (a file of an older firn may lack one).
pub fn has_column(tx: &Transaction<'_>, table: &str, column: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        [table, column],
        |row| row.get(0),
    )
}

/// Whether the file has a table `table`.
pub fn has_table(tx: &Transaction<'_>, table: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [table],
        |row| row.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_a(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch("CREATE TABLE a (x); INSERT INTO a VALUES ('from step 1')")
    }

    fn table_b(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch("CREATE TABLE b (y)")
    }

    fn failing(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch("INSERT INTO a VALUES ('half done'); SELECT * FROM no_such_table")
    }

    fn fresh(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch("CREATE TABLE fresh (z)")
    }

    const TWO: Schema = Schema {
        what: "test file",
        version: 2,
        create: fresh,
        steps: &[table_a, table_b],
    };

    fn version_and_tables(path: &Path) -> (u32, Vec<String>) {
        let conn = Connection::open(path).unwrap();
        let tables = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        (user_version(&conn).unwrap(), tables)
    }

    /// A file written before versions were kept, with a table in it.
    fn unversioned(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("old.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE old (w)")
            .unwrap();
        path
    }

    #[test]
    fn a_fresh_file_is_made_at_the_newest_version_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/new.sqlite");
        drop(open(&path, &TWO).unwrap());
        assert_eq!(version_and_tables(&path), (2, vec!["fresh".to_string()]));
    }

    #[test]
    fn an_old_file_takes_each_step_from_its_version_once() {
        let dir = tempfile::tempdir().unwrap();
        // Unversioned, with something in it: every step runs.
        let path = unversioned(dir.path());
        drop(open(&path, &TWO).unwrap());
        assert_eq!(
            version_and_tables(&path),
            (2, vec!["a".into(), "b".into(), "old".into()])
        );
        // At the newest version: no step runs again.
        drop(open(&path, &TWO).unwrap());
        let conn = Connection::open(&path).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        // Version 1: only the second step.
        let path = dir.path().join("one.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE a (x); PRAGMA user_version = 1")
            .unwrap();
        drop(conn);
        drop(open(&path, &TWO).unwrap());
        assert_eq!(version_and_tables(&path), (2, vec!["a".into(), "b".into()]));
    }

    #[test]
    fn a_step_that_fails_leaves_the_file_at_its_version_with_nothing_half_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = unversioned(dir.path());
        let broken = Schema {
            steps: &[table_a, failing],
            ..TWO
        };
        let e = open(&path, &broken).expect_err("the step fails");
        let line = crate::fmt::one_line(&e);
        assert!(
            line.contains("cannot upgrade test file") && line.contains("no such table"),
            "{line}"
        );
        assert_eq!(version_and_tables(&path), (0, vec!["old".to_string()]));
    }

    /// The files in `dir`, each with a hash of its bytes and its modification time.
    fn files(dir: &Path) -> Vec<(std::ffi::OsString, u64, std::time::SystemTime)> {
        use std::hash::{Hash, Hasher};
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(e.path()).unwrap().hash(&mut hasher);
                let modified = e.metadata().unwrap().modified().unwrap();
                (e.file_name(), hasher.finish(), modified)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_newer_file_is_refused_in_one_line_and_left_unchanged_with_its_wal() {
        let dir = tempfile::tempdir().unwrap();
        let written = dir.path().join("written.sqlite");
        let conn = Connection::open(&written).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE future (v); PRAGMA user_version = 3")
            .unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        conn.execute_batch("INSERT INTO future VALUES ('only in the WAL')")
            .unwrap();
        // As a newer firn killed now would leave it: a WAL not checkpointed.
        let left = tempfile::tempdir().unwrap();
        let path = left.path().join("newer.sqlite");
        std::fs::copy(&written, &path).unwrap();
        std::fs::copy(
            dir.path().join("written.sqlite-wal"),
            left.path().join("newer.sqlite-wal"),
        )
        .unwrap();
        drop(conn);
        let before = files(left.path());

        let e = open(&path, &TWO).expect_err("refused");
        let line = crate::fmt::one_line(&e);
        assert!(!line.contains('\n'));
        assert!(
            line.contains(&path.display().to_string())
                && line.contains("schema version 3")
                && line.contains("newer firn")
                && line.contains("up to 2"),
            "{line}"
        );
        // Not read by SQLite: no WAL replayed into it, no -shm made beside it.
        assert_eq!(files(left.path()), before);
    }

    #[test]
    fn what_is_not_an_sqlite_file_is_one_line_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        std::fs::write(&path, "not a database, and longer than an SQLite header is: 0123456789012345678901234567890123456789").unwrap();
        let e = open(&path, &TWO).expect_err("refused");
        let line = crate::fmt::one_line(&e);
        assert!(line.contains("is it an SQLite file"), "{line}");
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("not a database")
        );
    }
}
