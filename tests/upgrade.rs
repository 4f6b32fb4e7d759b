//! Upgrades from firn 0.1. tests/fixtures/firn1-state.tar.gz holds what the 0.1
//! binary wrote (tests/fixtures/make-state-fixtures.sh): two sets' local state
//! and an SQLite catalog with every kind of row it writes, and one set's
//! DynamoDB items, in its layout and in the older in-head layout. Each opens in
//! this firn, is migrated once (its schema version set) and loses nothing; firn
//! runs on it; a file a newer firn wrote is refused and left as it is.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use rusqlite::Connection;
use rusqlite::types::Value;
use sha1::Digest as _;

use common::aws::{FakeCloud, aws_env, sdk_config};
use common::{assert_exit, last_json, one_line_error};
use firn::catalog::dynamodb::{DynamoCatalog, DynamoSettings, create_table, wait_until_active};
use firn::catalog::sqlite::SqliteCatalog;
use firn::catalog::{ArchiveRecord, ArchiveState, Catalog};
use firn::model::{Fingerprint, Tier};
use firn::state::{DeletionIntent, InventoryJob, LocalState, MigratedCopy, MigrationRecord};

/// Where the generator made the fixture: its catalogs and jobs name the stores
/// and restore destinations by their paths under it.
const FIXTURE_ROOT: &str = "/tmp/firn1-state-fixture";

fn fixture_archive() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/firn1-state.tar.gz")
}

fn untar(into: &Path) {
    let untar = Command::new("tar")
        .arg("xzf")
        .arg(fixture_archive())
        .arg("-C")
        .arg(into)
        .status()
        .expect("run tar");
    assert!(untar.success(), "unpack the fixture");
}

/// The fixture unpacked in a temporary directory, for tests that read its files
/// only (no path inside them needs to hold).
struct Unpacked {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn unpacked() -> Unpacked {
    let dir = tempfile::tempdir().expect("temporary directory");
    untar(dir.path());
    Unpacked {
        root: dir.path().join("firn1-state-fixture"),
        _dir: dir,
    }
}

/// The fixture unpacked where it was made, for runs of firn on it; one test at a
/// time on this machine holds the place (a lock beside it), and it is removed
/// when the test ends.
struct InPlace {
    _lock: std::fs::File,
}

fn in_place() -> InPlace {
    let lock = std::fs::File::create(format!("{FIXTURE_ROOT}.lock")).expect("lock file");
    // SAFETY: flock on a file descriptor this function owns; released on drop.
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(locked, 0, "lock {FIXTURE_ROOT}.lock");
    let _ = std::fs::remove_dir_all(FIXTURE_ROOT);
    untar(Path::new("/tmp"));
    InPlace { _lock: lock }
}

impl Drop for InPlace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(FIXTURE_ROOT);
    }
}

/// A configured set's state directory under the fixture's data directory.
fn state_db(root: &Path, set: &str) -> PathBuf {
    let hash = hex::encode(sha1::Sha1::digest(set.as_bytes()));
    root.join("data/sets")
        .join(&hash[..16])
        .join("state.sqlite")
}

fn catalog_db(root: &Path) -> PathBuf {
    root.join("data/catalog.sqlite")
}

fn user_version(path: &Path) -> u32 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

/// One row by column name.
#[derive(Debug, Clone, PartialEq)]
struct Row(BTreeMap<String, Value>);

impl Row {
    fn get(&self, column: &str) -> &Value {
        self.0
            .get(column)
            .unwrap_or_else(|| panic!("no column {column} in {self:?}"))
    }
    fn text(&self, column: &str) -> String {
        self.opt_text(column)
            .unwrap_or_else(|| panic!("{column} is NULL"))
    }
    fn opt_text(&self, column: &str) -> Option<String> {
        match self.get(column) {
            Value::Text(t) => Some(t.clone()),
            Value::Null => None,
            v => panic!("{column} is not text: {v:?}"),
        }
    }
    fn int(&self, column: &str) -> i64 {
        self.opt_int(column)
            .unwrap_or_else(|| panic!("{column} is NULL"))
    }
    fn opt_int(&self, column: &str) -> Option<i64> {
        match self.get(column) {
            Value::Integer(i) => Some(*i),
            Value::Null => None,
            v => panic!("{column} is not an integer: {v:?}"),
        }
    }
    fn opt_blob(&self, column: &str) -> Option<Vec<u8>> {
        match self.get(column) {
            Value::Blob(b) => Some(b.clone()),
            Value::Null => None,
            v => panic!("{column} is not a blob: {v:?}"),
        }
    }
    fn blob<const N: usize>(&self, column: &str) -> [u8; N] {
        self.opt_blob(column)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_else(|| panic!("{column} is not {N} bytes"))
    }
}

/// Every table of the file and its rows in order, read through SQLite alone.
fn dump(path: &Path) -> BTreeMap<String, Vec<Row>> {
    let conn = Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut out = BTreeMap::new();
    for table in tables {
        let stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
        let order = (1..=names.len())
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        drop(stmt);
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
            .unwrap();
        let rows = stmt
            .query_map([], |row| {
                let mut map = BTreeMap::new();
                for (i, name) in names.iter().enumerate() {
                    map.insert(name.clone(), row.get::<_, Value>(i)?);
                }
                Ok(Row(map))
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        out.insert(table, rows);
    }
    out
}

/// What firn 0.1's rows are in the newest schema: the rows of `retrieval` (a
/// restore's jobs) and of `migration` (a migration's) are rows of the one
/// `retrieval_job` table of version 2, by purpose, in the order `dump` gives;
/// the run history of version 3 and the pack journal of version 4 are empty
/// (firn 0.1 kept neither); every other table as it was.
fn in_newest_schema(mut v0: BTreeMap<String, Vec<Row>>) -> BTreeMap<String, Vec<Row>> {
    let mut jobs = Vec::new();
    for (table, purpose) in [("retrieval", "restore"), ("migration", "migrate")] {
        for row in v0.remove(table).unwrap_or_default() {
            let column = |name: &str| row.0.get(name).cloned().unwrap_or(Value::Null);
            let mut job = BTreeMap::new();
            for name in [
                "archive_id",
                "job_id",
                "tier",
                "requested_at",
                "ready_at",
                "key",
                "size",
                "destination",
                "source",
                "copy_id",
                "copy_sha1",
                "copy_tree_hash",
            ] {
                job.insert(name.to_string(), column(name));
            }
            job.insert("purpose".into(), Value::Text(purpose.into()));
            jobs.push(Row(job));
        }
    }
    jobs.sort_by_key(|r| (r.text("archive_id"), r.text("purpose")));
    v0.insert("retrieval_job".into(), jobs);
    v0.insert("run".into(), Vec::new());
    v0.insert("pack_journal".into(), Vec::new());
    v0
}

/// What firn 0.1's catalog rows are in the newest catalog schema: every
/// record as it was, archived alone (schema 2's pack slot NULL: firn 0.1
/// made no packs); every other table as it was.
fn in_newest_catalog_schema(mut v0: BTreeMap<String, Vec<Row>>) -> BTreeMap<String, Vec<Row>> {
    if let Some(rows) = v0.get_mut("archive") {
        for row in rows {
            for column in ["pack_offset", "pack_len"] {
                assert!(!row.0.contains_key(column), "firn 0.1 had no {column}");
                row.0.insert(column.into(), Value::Null);
            }
        }
    }
    v0
}

/// The jobs of one purpose (`restore`, `migrate`) the file keeps.
fn jobs_of(path: &Path, purpose: &str) -> Vec<Row> {
    dump(path)
        .remove("retrieval_job")
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.text("purpose") == purpose)
        .collect()
}

/// The file's schema (tables and indexes), each statement with its spacing made
/// plain, so a migrated file and a fresh one compare.
fn schema_of(path: &Path) -> Vec<(String, String)> {
    let conn = Connection::open(path).unwrap();
    conn.prepare(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .unwrap()
    .query_map([], |row| {
        let sql: String = row.get(1)?;
        let plain = sql
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("( ", "(")
            .replace(" )", ")");
        Ok((row.get(0)?, plain))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

fn fingerprint(row: &Row) -> Fingerprint {
    Fingerprint {
        size: row.int("size") as u64,
        mtime_ns: row.int("mtime_ns"),
        ctime_ns: row.int("ctime_ns"),
        inode: row.int("inode") as u64,
    }
}

/// Reads every row of a set's local state through LocalState's public API and
/// checks it against the rows SQLite read before the upgrade.
fn reads_back(state: &std::sync::Arc<LocalState>, before: &BTreeMap<String, Vec<Row>>) {
    let mut cursor = state.fingerprints().unwrap();
    for row in &before["fingerprint"] {
        let key = row.text("key");
        let cached = state.cached(&key).unwrap().expect("cached");
        assert_eq!(cached.fingerprint, fingerprint(row), "{key}");
        assert_eq!(
            (cached.hash.sha1, cached.hash.tree_hash),
            (row.blob("sha1"), row.blob("tree_hash")),
            "{key}"
        );
        let seen = cursor.seek(&key).unwrap().expect("the cursor finds it");
        assert_eq!(seen.fingerprint, cached.fingerprint);
    }
    for row in &before["meta"] {
        assert_eq!(
            state.number(&row.text("key")).unwrap(),
            Some(row.int("value"))
        );
    }

    let journal = state.journal().unwrap();
    assert_eq!(journal.len(), before["upload_journal"].len());
    for (entry, row) in journal.iter().zip(&before["upload_journal"]) {
        assert_eq!(entry.key, row.text("key"));
        assert_eq!(entry.raw, row.opt_blob("raw"));
        assert_eq!(entry.fingerprint, fingerprint(row));
        assert_eq!(entry.started_at, row.int("started_at"));
        assert_eq!(entry.archive_id, row.opt_text("archive_id"));
        let hashes = entry.hash.map(|h| (h.sha1.to_vec(), h.tree_hash.to_vec()));
        assert_eq!(
            hashes,
            row.opt_blob("sha1").zip(row.opt_blob("tree_hash")),
            "{}",
            entry.key
        );
    }

    let mut tokens = Vec::new();
    for row in &before["multipart"] {
        let upload = state.multipart(&row.text("key")).unwrap().expect("kept");
        assert_eq!(upload.token, row.text("token"));
        assert_eq!(upload.fingerprint, fingerprint(row));
        assert_eq!(upload.started_at, row.int("started_at"));
        tokens.push(upload.token);
    }
    let mut listed = state.multipart_tokens().unwrap();
    listed.sort();
    tokens.sort();
    assert_eq!(listed, tokens);

    let mut retrievals = state.retrievals().unwrap();
    retrievals.sort_by(|a, b| a.archive_id.cmp(&b.archive_id));
    let expected: Vec<_> = before["retrieval"]
        .iter()
        .map(|row| firn::state::RetrievalRecord {
            archive_id: row.text("archive_id"),
            job_id: row.text("job_id"),
            tier: Tier::from_saved(&row.text("tier")),
            requested_at: row.int("requested_at"),
            key: row.text("key"),
            destination: row.opt_blob("destination").unwrap(),
            size: row.int("size") as u64,
            ready_at: row.opt_int("ready_at"),
        })
        .collect();
    assert_eq!(retrievals, expected);
    for record in &expected {
        assert_eq!(
            state.retrieval(&record.archive_id).unwrap().as_ref(),
            Some(record)
        );
    }

    let mut migrations = state.migrations().unwrap();
    migrations.sort_by(|a, b| a.archive_id.cmp(&b.archive_id));
    let expected: Vec<_> = before["migration"]
        .iter()
        .map(|row| MigrationRecord {
            archive_id: row.text("archive_id"),
            source: row.text("source"),
            key: row.text("key"),
            size: row.int("size") as u64,
            job_id: row.opt_text("job_id"),
            tier: Tier::from_saved(&row.text("tier")),
            requested_at: row.int("requested_at"),
            ready_at: row.opt_int("ready_at"),
            copy: row.opt_text("copy_id").map(|archive_id| MigratedCopy {
                archive_id,
                sha1: row.blob("copy_sha1"),
                tree_hash: row.blob("copy_tree_hash"),
            }),
        })
        .collect();
    assert_eq!(migrations, expected);

    let deletions: Vec<_> = before["deletion_journal"]
        .iter()
        .map(|row| DeletionIntent {
            archive_id: row.text("archive_id"),
            key: row.text("key"),
            started_at: row.int("started_at"),
        })
        .collect();
    assert_eq!(state.deletions().unwrap(), deletions);

    let job = before["inventory_job"].first().map(|row| InventoryJob {
        job_id: row.text("job_id"),
        requested_at: row.int("requested_at"),
    });
    assert_eq!(state.inventory_job().unwrap(), job);
    for row in &before["report"] {
        assert_eq!(
            state.report(&row.text("name")).unwrap(),
            Some(row.text("body"))
        );
    }
    let deleted: std::collections::HashMap<String, i64> = before["deleted_archive"]
        .iter()
        .map(|row| (row.text("archive_id"), row.int("deleted_at")))
        .collect();
    assert_eq!(state.deleted_archives().unwrap(), deleted);
}

#[test]
fn firn_0_1s_local_state_is_upgraded_and_keeps_every_row() {
    let fixture = unpacked();
    // What each set's state holds: s every kind of row but a multipart upload
    // (the embedded store has none), g one in flight on Glacier.
    let kinds: [(&str, &[&str]); 2] = [
        (
            "s",
            &[
                "fingerprint",
                "upload_journal",
                "meta",
                "retrieval",
                "deletion_journal",
                "inventory_job",
                "report",
                "deleted_archive",
                "migration",
            ],
        ),
        (
            "g",
            &[
                "fingerprint",
                "upload_journal",
                "multipart",
                "meta",
                "deleted_archive",
            ],
        ),
    ];
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = fresh_dir.path().join("state.sqlite");
    drop(LocalState::open(&fresh).unwrap());
    assert_eq!(user_version(&fresh), firn::state::SCHEMA_VERSION);

    for (set, kinds) in kinds {
        let path = state_db(&fixture.root, set);
        assert_eq!(user_version(&path), 0, "firn 0.1 kept no schema version");
        let before = dump(&path);
        for kind in kinds {
            assert!(
                !before[*kind].is_empty(),
                "set {set}'s fixture has {kind} rows"
            );
        }
        let state = std::sync::Arc::new(LocalState::open(&path).unwrap());
        reads_back(&state, &before);
        drop(state);
        const { assert!(firn::state::SCHEMA_VERSION > 0) };
        assert_eq!(
            user_version(&path),
            firn::state::SCHEMA_VERSION,
            "set {set}"
        );
        let upgraded = in_newest_schema(before.clone());
        assert_eq!(dump(&path), upgraded, "set {set}: every row as it was");
        assert_eq!(schema_of(&path), schema_of(&fresh), "set {set}");
        // Opened again: as it was.
        drop(LocalState::open(&path).unwrap());
        assert_eq!(dump(&path), upgraded, "set {set}");
    }
}

fn archive_record(row: &Row) -> ArchiveRecord {
    ArchiveRecord {
        key: row.text("key"),
        raw: row.opt_blob("raw_path"),
        size: row.int("size") as u64,
        mtime_ns: row.int("mtime_ns"),
        sha1: row.blob("sha1"),
        tree_hash: row.blob("tree_hash"),
        archive_id: row.text("archive_id"),
        target: row.text("target"),
        uploaded_at: row.int("uploaded_at"),
        state: ArchiveState::parse(&row.text("state")).unwrap(),
        host: row.text("host"),
        superseded_at: row.opt_int("superseded_at"),
        pack: None,
    }
}

fn by_key_and_id(records: &mut [ArchiveRecord]) {
    records.sort_by(|a, b| (&a.key, &a.archive_id).cmp(&(&b.key, &b.archive_id)));
}

#[test]
fn firn_0_1s_sqlite_catalog_is_upgraded_and_keeps_every_record() {
    let fixture = unpacked();
    let path = catalog_db(&fixture.root);
    assert_eq!(user_version(&path), 0, "firn 0.1 kept no schema version");
    let before = dump(&path);
    let rows = &before["archive"];
    for state in ["current", "superseded"] {
        assert!(rows.iter().any(|r| r.text("state") == state), "{state}");
    }
    assert!(
        rows.iter().any(|r| r.opt_blob("raw_path").is_some()),
        "a name that is not UTF-8"
    );
    assert!(!before["snapshot"].is_empty(), "catalog snapshots");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let catalog = SqliteCatalog::open(&path, "s").unwrap();
    let mut records = rt.block_on(catalog.records()).unwrap();
    assert!(rows.iter().all(|r| r.text("set_id") == "s"), "one set");
    let mut expected: Vec<_> = rows.iter().map(archive_record).collect();
    by_key_and_id(&mut records);
    by_key_and_id(&mut expected);
    assert_eq!(records, expected);
    let snapshots = rt.block_on(catalog.snapshots()).unwrap();
    let mut ids: Vec<_> = snapshots.iter().map(|s| s.archive_id.clone()).collect();
    ids.sort();
    let expected_ids: Vec<_> = before["snapshot"]
        .iter()
        .map(|r| r.text("archive_id"))
        .collect();
    assert_eq!(ids, expected_ids);
    drop(catalog);

    const { assert!(firn::catalog::sqlite::SCHEMA_VERSION > 0) };
    assert_eq!(user_version(&path), firn::catalog::sqlite::SCHEMA_VERSION);
    let upgraded = in_newest_catalog_schema(before.clone());
    assert_eq!(dump(&path), upgraded, "every row as it was");
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = fresh_dir.path().join("catalog.sqlite");
    drop(SqliteCatalog::open(&fresh, "s").unwrap());
    assert_eq!(user_version(&fresh), firn::catalog::sqlite::SCHEMA_VERSION);
    assert_eq!(schema_of(&path), schema_of(&fresh));

    // A catalog from before the index of versions that are not current gets it.
    let older = unpacked();
    let path = catalog_db(&older.root);
    Connection::open(&path)
        .unwrap()
        .execute_batch("DROP INDEX archive_not_current")
        .unwrap();
    drop(SqliteCatalog::open(&path, "s").unwrap());
    assert_eq!(schema_of(&path), schema_of(&fresh));
    assert_eq!(dump(&path), upgraded);
}

/// firn run on the fixture in place, as firn 0.1 ran it.
fn firn(args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firn"))
        .env("FIRN_DATA_DIR", Path::new(FIXTURE_ROOT).join("data"))
        .env("XDG_CONFIG_HOME", Path::new(FIXTURE_ROOT).join("config"))
        .env_remove("FIRN_CONFIG")
        .env_remove("FIRN_FAULT")
        .args(args)
        .output()
        .expect("run firn")
}

fn ok(args: &[&str]) -> Output {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let out = firn(&args);
    assert_exit(&out, 0);
    out
}

/// `ls --all --json` rows in one order (key, upload time, archive id).
fn listing(doc: serde_json::Value) -> Vec<serde_json::Value> {
    let mut rows = doc.as_array().expect("a list").clone();
    // firn 0.1 knew no packs: each of its archives held one file, which `ls
    // --json` now says with `"pack": null`.
    for row in &mut rows {
        if let Some(fields) = row.as_object_mut() {
            fields.entry("pack").or_insert(serde_json::Value::Null);
        }
    }
    rows.sort_by_key(|r| {
        (
            r["path"].as_str().unwrap_or_default().to_string(),
            r["uploaded_at"].as_i64(),
            r["archive_id"].as_str().unwrap_or_default().to_string(),
        )
    });
    rows
}

fn expected_listing(root: &Path, set: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(root.join(format!("expected/{set}-ls.json"))).unwrap();
    listing(serde_json::from_str(&text).unwrap())
}

#[test]
fn firn_runs_on_what_firn_0_1_left_and_finishes_its_work() {
    let _place = in_place();
    let root = Path::new(FIXTURE_ROOT);
    // Jobs the embedded stores are asked for from now on are ready at once.
    let config = root.join("config/firn/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("retrieval_delay_secs = 3", "retrieval_delay_secs = 0"),
    )
    .unwrap();
    let state = state_db(root, "s");
    let catalog = catalog_db(root);
    let before = dump(&state);

    // The catalog lists what firn 0.1 listed.
    let doc = last_json(&ok(&["ls", "--set", "s", "--all", "--json"]));
    assert_eq!(listing(doc), expected_listing(root, "s"));
    assert_eq!(
        user_version(&catalog),
        firn::catalog::sqlite::SCHEMA_VERSION
    );
    assert_eq!(user_version(&state), firn::state::SCHEMA_VERSION);

    // The jobs it left, the restores' and the migration's, with their tiers.
    let doc = last_json(&ok(&["jobs", "--set", "s", "--json"]));
    let jobs: BTreeSet<(String, String)> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["archive_id"].as_str().unwrap().into(),
                j["tier"].as_str().unwrap().into(),
            )
        })
        .collect();
    let left: BTreeSet<(String, String)> = before["retrieval"]
        .iter()
        .chain(&before["migration"])
        .map(|row| (row.text("archive_id"), row.text("tier")))
        .collect();
    assert_eq!(jobs, left);
    assert!(left.iter().any(|(_, tier)| tier == "expedited"), "{left:?}");

    // The restores it asked for and did not wait for complete.
    let restored = root.join("s/restored");
    let tree = root.join("s/tree");
    let out = firn(&[
        OsStr::new("restore"),
        OsStr::new("--set"),
        OsStr::new("s"),
        OsStr::new("--to"),
        restored.as_os_str(),
        tree.join("keep/a.txt").as_os_str(),
        tree.join(OsStr::from_bytes(b"names/caf\xe9.txt"))
            .as_os_str(),
    ]);
    assert_exit(&out, 0);
    // Opening the set for a job finishes what the kills left first: the upload
    // the killed backup stored, and the deletion killed between store and
    // catalog.
    let said = common::stdout(&out);
    assert_eq!(said.matches("recovered: ").count(), 1, "{said}");
    assert_eq!(said.matches("finished: deletion of ").count(), 1, "{said}");
    assert_eq!(
        std::fs::read_to_string(restored.join("keep/a.txt")).unwrap(),
        "a, second version\n"
    );
    assert_eq!(
        std::fs::read(restored.join(OsStr::from_bytes(b"names/caf\xe9.txt"))).unwrap(),
        b"a name in Latin-1, not UTF-8\n"
    );
    assert!(jobs_of(&state, "restore").is_empty(), "the jobs are done");

    // Nothing is left for the backup to finish.
    let doc = last_json(&ok(&["backup", "--set", "s", "--json"]));
    assert_eq!(
        (
            doc["recovered"].as_u64(),
            doc["deletions_finished"].as_u64()
        ),
        (Some(0), Some(0)),
        "{doc}"
    );
    let after = dump(&state);
    assert!(after["upload_journal"].is_empty() && after["deletion_journal"].is_empty());
    let records = dump(&catalog).remove("archive").unwrap();
    // The archive the killed backup stored is accounted for (kept superseded:
    // the unpacked file's inode and ctime are not the ones journaled, so it is
    // not taken as the file's current version), and the file's current
    // version has the content it journaled.
    let journaled = &before["upload_journal"][0];
    let key = journaled.text("key");
    assert!(
        records
            .iter()
            .any(|r| r.text("key") == key && r.text("archive_id") == journaled.text("archive_id")),
        "the journaled upload is recorded"
    );
    let current = records
        .iter()
        .find(|r| r.text("key") == key && r.text("state") == "current")
        .expect("a current version");
    assert_eq!(current.opt_blob("sha1"), journaled.opt_blob("sha1"));
    let deleted = before["deletion_journal"][0].text("archive_id");
    assert!(
        !records.iter().any(|r| r.text("archive_id") == deleted),
        "the deletion is finished"
    );

    // The migration records the copies it journaled and copies what its
    // waiting job retrieves.
    let doc = last_json(&ok(&[
        "migrate",
        "--set",
        "s",
        "--yes",
        "--all-versions",
        "--json",
    ]));
    let copies: Vec<&Row> = before["migration"]
        .iter()
        .filter(|r| r.opt_text("copy_id").is_some())
        .collect();
    assert!(!copies.is_empty() && copies.len() < before["migration"].len());
    let report = &doc["report"];
    assert_eq!(
        report["recorded_from_earlier_run"].as_u64(),
        Some(copies.len() as u64),
        "{doc}"
    );
    assert_eq!(report["retrieved"]["files"].as_u64(), Some(1), "{doc}");
    assert_eq!(report["failed"].as_array().map(Vec::len), Some(0), "{doc}");
    assert!(jobs_of(&state, "migrate").is_empty());

    // The upgraded state keeps the run history: the restore, the backup and
    // the migration above, newest first (the reads, ls and jobs, are not runs).
    let doc = last_json(&ok(&["log", "--set", "s", "--json"]));
    let runs: Vec<(&str, u64)> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap(),
                r["exit_code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [("migrate", 0), ("backup", 0), ("restore", 0)],
        "{doc}"
    );
    assert_eq!(doc["runs"][2]["restored"]["count"], 2, "{doc}");

    let records = dump(&catalog).remove("archive").unwrap();
    for copy in copies {
        assert!(
            records
                .iter()
                .any(|r| r.text("archive_id") == copy.text("copy_id")
                    && r.text("key") == copy.text("key")
                    && r.text("target") == format!("local:{FIXTURE_ROOT}/store")),
            "the copy of {} is recorded",
            copy.text("key")
        );
    }
}

/// `path` with `end` after its name (`-wal`, `-shm`).
fn beside(path: &Path, end: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(end);
    PathBuf::from(name)
}

/// The database, its -wal and -shm files: for each, whether it is there, a
/// hash of its bytes and its modification time.
fn look(path: &Path) -> Vec<Option<(u64, std::time::SystemTime)>> {
    use std::hash::{Hash, Hasher};
    [
        path.to_path_buf(),
        beside(path, "-wal"),
        beside(path, "-shm"),
    ]
    .iter()
    .map(|file| {
        let bytes = std::fs::read(file).ok()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        Some((
            hasher.finish(),
            std::fs::metadata(file).ok()?.modified().ok()?,
        ))
    })
    .collect()
}

/// Gives the file at `path` schema version `version`, as a newer firn would:
/// closed cleanly, or (`killed`) with a change still in its WAL, not yet
/// checkpointed into the file.
fn written_by_newer_firn(path: &Path, version: u32, killed: bool) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
    if !killed {
        return;
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    conn.execute_batch("CREATE TABLE from_the_future (x); INSERT INTO from_the_future VALUES (1)")
        .unwrap();
    // The files as a kill now would leave them (closing checkpoints the WAL).
    let kept = [path.to_path_buf(), beside(path, "-wal")].map(|file| {
        let copy = beside(&file, ".kept");
        std::fs::copy(&file, &copy).unwrap();
        (copy, file)
    });
    drop(conn);
    for (copy, file) in kept {
        std::fs::rename(copy, file).unwrap();
    }
    let _ = std::fs::remove_file(beside(path, "-shm"));
}

#[test]
fn files_a_newer_firn_wrote_are_refused_in_one_line_and_left_as_they_are() {
    let _place = in_place();
    let root = Path::new(FIXTURE_ROOT);
    for killed in [false, true] {
        for (path, newer, args) in [
            (
                state_db(root, "s"),
                firn::state::SCHEMA_VERSION + 1,
                ["jobs", "--set", "s", "--json"],
            ),
            (
                catalog_db(root),
                firn::catalog::sqlite::SCHEMA_VERSION + 1,
                ["ls", "--set", "s", "--all"],
            ),
        ] {
            let original = user_version(&path);
            written_by_newer_firn(&path, newer, killed);
            let before = look(&path);
            assert_eq!(
                (before[1].is_some(), before[2].is_some()),
                (killed, false),
                "a WAL only when killed"
            );
            // A later modification time would show even in the same second.
            std::thread::sleep(std::time::Duration::from_millis(20));
            let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
            let line = one_line_error(&firn(&args));
            for part in [
                path.display().to_string(),
                format!("schema version {newer}"),
                "newer firn".into(),
            ] {
                assert!(line.contains(&part), "{part:?} in {line}");
            }
            assert!(
                look(&path) == before,
                "{} (killed: {killed}) or its -wal or -shm changed",
                path.display()
            );
            // As firn 0.1 left it again, for the next file's turn.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("DROP TABLE IF EXISTS from_the_future")
                .unwrap();
            conn.pragma_update(None, "user_version", original).unwrap();
        }
    }
}

/// An item in the AWS JSON attribute-value format, as `aws dynamodb scan` gives it.
fn item(json: &serde_json::Value) -> std::collections::HashMap<String, AttributeValue> {
    json.as_object()
        .expect("an item")
        .iter()
        .map(|(name, value)| (name.clone(), attribute(value)))
        .collect()
}

fn attribute(json: &serde_json::Value) -> AttributeValue {
    let (kind, value) = json
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("a typed value");
    match kind.as_str() {
        "S" => AttributeValue::S(value.as_str().unwrap().into()),
        "N" => AttributeValue::N(value.as_str().unwrap().into()),
        "B" => AttributeValue::B(Blob::new(
            base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap())
                .unwrap(),
        )),
        "L" => AttributeValue::L(value.as_array().unwrap().iter().map(attribute).collect()),
        "M" => AttributeValue::M(item(value)),
        other => panic!("firn writes no {other} attribute"),
    }
}

/// A table on the stand-in holding the items of `file` (a fixture's JSON).
async fn load_table(cloud: &FakeCloud, table: &str, file: &Path) -> usize {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&cloud.endpoint).await);
    create_table(&client, table).await.expect("create table");
    wait_until_active(&client, table).await.expect("active");
    let items: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    for json in &items {
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item(json)))
            .send()
            .await
            .unwrap();
    }
    items.len()
}

async fn connect(cloud: &FakeCloud, table: &str) -> DynamoCatalog {
    let settings = DynamoSettings {
        table: table.into(),
        region: Some("us-east-1".into()),
        profile: None,
        endpoint_url: Some(cloud.endpoint.clone()),
    };
    DynamoCatalog::connect(&settings, "g")
        .await
        .expect("connect")
}

/// A record as `firn ls --json` shows it.
fn listed(r: &ArchiveRecord) -> serde_json::Value {
    serde_json::json!({
        "path": r.key, "state": r.state.as_str(), "size": r.size, "mtime_ns": r.mtime_ns,
        "sha1": hex::encode(r.sha1), "tree_hash": hex::encode(r.tree_hash),
        "archive_id": r.archive_id, "target": r.target, "uploaded_at": r.uploaded_at, "host": r.host,
    })
}

/// Raw items of set g whose head still keeps versions inside (the older layout).
async fn heads_with_versions(cloud: &FakeCloud, table: &str) -> Vec<String> {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&cloud.endpoint).await);
    let out = client.scan().table_name(table).send().await.unwrap();
    out.items()
        .iter()
        .filter(|i| i.contains_key("versions"))
        .map(|i| i["path"].as_s().unwrap().clone())
        .collect()
}

#[test]
fn firn_0_1s_dynamodb_items_read_back_in_either_layout_and_a_legacy_head_moves_its_versions_out() {
    let fixture = unpacked();
    let expected = expected_listing(&fixture.root, "g");
    let cloud = FakeCloud::start();
    for (k, v) in aws_env(&cloud.endpoint) {
        // SAFETY: nextest runs each test in its own process, before any other thread reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sb = common::Sandbox::new();
    for layout in ["current", "legacy"] {
        let table = format!("firn-{layout}");
        let file = fixture.root.join(format!("dynamodb-{layout}.json"));
        rt.block_on(load_table(&cloud, &table, &file));
        let catalog = rt.block_on(connect(&cloud, &table));

        // Through the catalog: every record and version, raw names kept.
        let records = rt.block_on(catalog.records()).unwrap();
        assert_eq!(
            listing(records.iter().map(listed).collect()),
            expected,
            "{layout}"
        );
        let raw = records
            .iter()
            .find(|r| r.key == "caf\\xE9.txt")
            .expect("the Latin-1 name");
        assert_eq!(raw.raw.as_deref(), Some(&b"caf\xe9.txt"[..]));
        let keys: BTreeSet<&str> = records.iter().map(|r| r.key.as_str()).collect();
        for key in &keys {
            let mut versions: Vec<_> = rt.block_on(catalog.versions(key)).unwrap();
            let mut listed_here: Vec<_> =
                records.iter().filter(|r| r.key == *key).cloned().collect();
            by_key_and_id(&mut versions);
            by_key_and_id(&mut listed_here);
            assert_eq!(versions, listed_here, "{layout}: versions of {key}");
        }
        assert_eq!(
            rt.block_on(catalog.snapshots()).unwrap().len(),
            4,
            "{layout}"
        );

        // Through the binary: ls lists the same.
        sb.write_config_text(&format!(
            "[sets.g]\nroot = {:?}\nstore = {{ kind = \"local\", path = {:?} }}\ncatalog = {{ kind = \"dynamodb\", table = \"{table}\", endpoint_url = \"{}\" }}\n",
            sb.tree(),
            sb.store_dir(),
            cloud.endpoint
        ));
        let mut cmd = sb.command();
        cmd.args(["ls", "--set", "g", "--all", "--json"]);
        for (k, v) in aws_env(&cloud.endpoint) {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_exit(&out, 0);
        assert_eq!(listing(last_json(&out)), expected, "{layout}");
    }

    // Writes to heads of the older layout move their versions out into items
    // of their own, and lose none.
    let catalog = rt.block_on(connect(&cloud, "firn-legacy"));
    let before = rt.block_on(catalog.records()).unwrap();
    assert_eq!(
        rt.block_on(heads_with_versions(&cloud, "firn-legacy"))
            .len(),
        4
    );
    let current_of = |key: &str| {
        before
            .iter()
            .find(|r| r.key == key && r.state == ArchiveState::Current)
            .cloned()
    };
    let doc = current_of("doc.txt").expect("doc.txt's current version");
    assert!(
        current_of("dropped.txt").is_none(),
        "a head without a current version"
    );
    let long: Vec<String> = before
        .iter()
        .filter(|r| r.key.len() > 900 && r.state == ArchiveState::Current)
        .map(|r| r.key.clone())
        .collect();
    assert_eq!(long.len(), 2, "the long keys, one hashed");
    let new = |key: &str, id: &str| ArchiveRecord {
        archive_id: id.into(),
        uploaded_at: 1_900_000_000,
        ..common::sample_record(key, id, 0)
    };
    rt.block_on(async {
        catalog
            .record_upload(&new("doc.txt", "doc-v4"), Some(&doc.archive_id))
            .await
            .unwrap();
        catalog
            .record_upload(&new("dropped.txt", "dropped-v3"), None)
            .await
            .unwrap();
        for key in &long {
            let id = current_of(key).unwrap().archive_id;
            catalog.update_mtime(key, &id, 42).await.unwrap();
        }
    });
    assert!(
        rt.block_on(heads_with_versions(&cloud, "firn-legacy"))
            .is_empty()
    );
    let after = rt.block_on(catalog.records()).unwrap();
    let mut expect: Vec<ArchiveRecord> = before
        .iter()
        .cloned()
        .map(|mut r| {
            if r.archive_id == doc.archive_id {
                r.state = ArchiveState::Superseded;
                r.superseded_at = Some(1_900_000_000);
            }
            if long.contains(&r.key) && r.state == ArchiveState::Current {
                r.mtime_ns = 42;
            }
            r
        })
        .collect();
    expect.push(new("doc.txt", "doc-v4"));
    expect.push(new("dropped.txt", "dropped-v3"));
    let mut after = after;
    by_key_and_id(&mut after);
    by_key_and_id(&mut expect);
    assert_eq!(after, expect);
    for key in ["doc.txt", "dropped.txt"] {
        let versions = rt.block_on(catalog.versions(key)).unwrap();
        assert_eq!(
            versions.len(),
            expect.iter().filter(|r| r.key == key).count(),
            "{key}"
        );
    }
}
