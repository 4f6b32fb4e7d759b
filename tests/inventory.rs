//! Inventory, reconciliation and catalog rebuild on the embedded default backend:
//! the real binary, archives crafted through the library's `LocalStore` where a
//! test needs what firn itself would never write (orphans, foreign or hostile
//! descriptions), and catalog rows edited through SQLite.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use bytes::Bytes;
use common::{Sandbox, assert_exit, one_line_error, stderr, stdout};
use firn::catalog::{ArchiveRecord, ArchiveState, Catalog};
use firn::hash::{ContentHasher, tree_hash_of};
use firn::store::Store;
use firn::store::local::LocalStore;

/// A sandbox whose set `s` uses the embedded store (retrievals ready at once) and
/// catalog, keeping superseded versions.
fn sandbox() -> Sandbox {
    let sb = Sandbox::in_memory();
    sb.write_config(
        "retention = \"keep\"\nstore = { kind = \"local\", retrieval_delay_secs = 0 }\n",
    );
    sb
}

/// The runtime firn runs its jobs on (multi-threaded: a job reads files off
/// the async threads).
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Stores `content` under `description` straight through the library, as another
/// run, host or tool could have; returns the archive id.
fn put_archive(sb: &Sandbox, content: &[u8], description: &str) -> String {
    rt().block_on(async {
        let store = LocalStore::open(&sb.store_dir(), 0).unwrap();
        let mut upload = store
            .begin_upload(content.len() as u64, description)
            .await
            .unwrap();
        if !content.is_empty() {
            upload
                .send(0, Bytes::copy_from_slice(content))
                .await
                .unwrap();
        }
        let stored = upload
            .complete(content.len() as u64, tree_hash_of(content), description)
            .await
            .unwrap();
        store.make_durable().await.unwrap();
        stored.archive_id
    })
}

/// A firn1 description of `content` at `key` (raw bytes when given): what firn
/// wrote before descriptions named their set.
fn firn1(key: &str, raw: Option<&[u8]>, content: &[u8], mtime_ns: i64) -> String {
    let mut hasher = ContentHasher::new();
    hasher.update(content);
    let hash = hasher.finish();
    let description = firn::description::Description {
        owner: None,
        ..firn::description::Description::of_file(
            key,
            raw,
            content.len() as u64,
            mtime_ns,
            Some(&hash.sha1),
            "",
        )
    };
    description.encode(firn::description::MAX_LEN)
}

fn mt2(filename: &str, mtime: &str) -> String {
    let json = serde_json::json!({"filename": filename, "mtime": mtime}).to_string();
    format!(
        "mt2 {}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    )
}

fn firn(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    sb.firn(args)
}

/// Runs firn with `--json` and parses the last line.
fn json(sb: &Sandbox, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    sb.firn_json(all)
}

/// Runs firn with `--json`, which must succeed, and parses the last line.
fn ok_json(sb: &Sandbox, args: &[&str]) -> serde_json::Value {
    let (code, doc) = json(sb, args);
    assert_eq!(code, Some(0), "{doc}");
    doc
}

fn records(sb: &Sandbox) -> Vec<serde_json::Value> {
    ok_json(sb, &["ls", "--set", "s", "--all"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn archive_of(sb: &Sandbox, key: &str) -> String {
    records(sb)
        .iter()
        .find(|r| r["path"] == key)
        .and_then(|r| r["archive_id"].as_str())
        .unwrap_or_else(|| panic!("{key} not recorded"))
        .to_string()
}

fn archive_file(sb: &Sandbox, archive_id: &str) -> PathBuf {
    sb.store_dir()
        .join("archives")
        .join(&archive_id[..2])
        .join(archive_id)
}

fn catalog_sql(sb: &Sandbox, sql: &str) {
    let conn = rusqlite::Connection::open(sb.catalog_db()).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn ids(list: &serde_json::Value, field: &str) -> Vec<String> {
    let mut out: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[field].as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

/// Every path under `dir` (raw bytes, relative) whose name contains `needle`.
fn names_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .as_bytes()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        })
        .map(|e| e.path().to_path_buf())
        .collect()
}

#[test]
fn reconciliation_reports_orphans_missing_archives_and_mismatches() {
    let sb = sandbox();
    // One archive per file: the point is one file's own archive gone from the
    // store and another's holding other bytes (sizes and tree hashes of whole
    // archives); packs are reconciled by their members' places.
    sb.edit_config(
        "retention = \"keep\"",
        "retention = \"keep\"\npack_small_files = false",
    );
    for name in ["a.txt", "b.txt", "c.txt", "d.txt"] {
        sb.write(name, format!("content of {name}"));
    }
    sb.back_up_set(&[]);
    // Orphans: a firn archive nothing records, and another tool's archive.
    let stray = put_archive(&sb, b"stray", &firn1("stray.txt", None, b"stray", 7));
    let foreign = put_archive(&sb, b"foreign", "another tool's archive");
    // Missing: b.txt's archive file is gone from the store.
    std::fs::remove_file(archive_file(&sb, &archive_of(&sb, "b.txt"))).unwrap();
    // Mismatch: the catalog's size and tree hash of c.txt disagree with the store.
    // All of it backed up an hour ago (a record as new as the inventory is not
    // expected in it yet).
    catalog_sql(
        &sb,
        "UPDATE archive SET size = size + 1, tree_hash = zeroblob(32) WHERE key = 'c.txt';
         UPDATE archive SET uploaded_at = uploaded_at - 3600;",
    );
    // An empty file recorded the old way (nothing stored) is never missing.
    rt().block_on(async {
        let catalog = firn::catalog::sqlite::SqliteCatalog::open(&sb.catalog_db(), "s").unwrap();
        let mut old = common::sample_record("old-empty", "firn-empty-archive", 1);
        old.size = 0;
        old.tree_hash = tree_hash_of(&[]);
        catalog.import(&[old]).await.unwrap();
    });

    let (code, doc) = json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(code, Some(1), "problems found: {doc}");
    assert_eq!(doc["outcome"], "ready");
    assert_eq!(
        doc["archive_count"],
        5 + 1,
        "and the catalog snapshot: {doc}"
    );
    assert_eq!(doc["snapshots"], 1, "not an orphan: {doc}");
    assert_eq!(doc["record_count"], 5, "{doc}");
    assert_eq!(doc["matched"], 2, "a.txt and d.txt: {doc}");
    assert_eq!(doc["empty_sentinels"], 1);
    let mut orphans = vec![stray.clone(), foreign.clone()];
    orphans.sort();
    assert_eq!(ids(&doc["orphans"], "archive_id"), orphans);
    let stray_doc = doc["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["archive_id"] == stray.as_str())
        .unwrap();
    assert_eq!(stray_doc["description"]["key"], "stray.txt");
    assert_eq!(stray_doc["description"]["mtime_ns"], 7);
    assert!(stray_doc["refused"].is_null(), "{stray_doc}");
    let foreign_doc = doc["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["archive_id"] == foreign.as_str())
        .unwrap();
    assert!(foreign_doc["description"].is_null());
    assert!(
        foreign_doc["refused"]
            .as_str()
            .unwrap()
            .contains("another tool")
    );
    assert_eq!(ids(&doc["missing"], "key"), vec!["b.txt"]);
    assert_eq!(ids(&doc["mismatched"], "key"), vec!["c.txt"]);
    let mismatch = &doc["mismatched"][0];
    assert_eq!(
        mismatch["catalog_size"].as_u64().unwrap(),
        mismatch["store_size"].as_u64().unwrap() + 1
    );
    assert_eq!(doc["problems"], 4);

    // The same, for people: one line per finding; the job is reused.
    let out = firn(&sb, &["inventory", "--set", "s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("orphan: {stray} 5 B")) && text.contains("stray.txt"),
        "{text}"
    );
    assert!(text.contains("missing: b.txt (current version"), "{text}");
    assert!(text.contains("mismatch: c.txt"), "{text}");
    assert!(text.contains("4 problems"), "{text}");
    assert_eq!(
        sb.job_files(),
        2,
        "one inventory job (its file and its listing)"
    );
}

/// Opens the engine of set `s` in this process, as the terminal UI does.
fn engine(sb: &Sandbox) -> firn::engine::Engine {
    // SAFETY: nextest runs every test in its own process; nothing else reads the
    // environment concurrently in this one.
    unsafe { std::env::set_var("FIRN_DATA_DIR", sb.data()) };
    let set = firn::config::resolve(
        &firn::config::Overrides {
            set: Some("s".into()),
            config: Some(sb.config_path()),
            ..Default::default()
        },
        firn::config::RootUse::MayBeMissing,
    )
    .unwrap();
    rt().block_on(firn::engine::Engine::open(&set)).unwrap()
}

#[test]
fn the_engine_keeps_the_last_reconciliation_and_acts_on_its_orphans() {
    let sb = sandbox();
    sb.write("a.txt", "a");
    sb.back_up_set(&[]);
    let x = put_archive(&sb, b"x", &firn1("x.txt", None, b"x", 1));
    let engine = engine(&sb);
    assert_eq!(
        rt().block_on(engine.last_reconciliation()).unwrap(),
        None,
        "none yet"
    );
    let (code, _) = json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(code, Some(1));
    let last = rt()
        .block_on(engine.last_reconciliation())
        .unwrap()
        .expect("saved");
    assert!(!last.is_consistent());
    assert_eq!(last.orphans.len(), 1);
    assert_eq!(
        last.orphans[0].description.as_ref().unwrap().key.as_deref(),
        Some("x.txt")
    );
    let adopt = firn::engine::OrphanAction::Adopt;
    let delete_them = firn::engine::OrphanAction::Delete { only: Vec::new() };
    let results = rt()
        .block_on(engine.act_on_orphans(&adopt, &last))
        .unwrap()
        .report;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].archive_id, x);
    assert_eq!(
        results[0].outcome,
        firn::engine::OrphanOutcome::AdoptedCurrent
    );
    // Adopting again is harmless; deleting what the catalog records is refused.
    let again = rt()
        .block_on(engine.act_on_orphans(&adopt, &last))
        .unwrap()
        .report;
    assert_eq!(
        again[0].outcome,
        firn::engine::OrphanOutcome::AlreadyInCatalog
    );
    let delete = rt()
        .block_on(engine.act_on_orphans(&delete_them, &last))
        .unwrap()
        .report;
    assert!(matches!(
        delete[0].outcome,
        firn::engine::OrphanOutcome::Refused(_)
    ));
    assert!(archive_file(&sb, &x).exists());
    match rt().block_on(engine.inventory(true, false)).unwrap() {
        firn::engine::InventoryOutcome::Ready(r) => {
            assert!(r.is_consistent(), "{r:?}");
            assert_eq!(r.matched, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn records_uploaded_after_the_inventory_are_too_new_not_missing() {
    let sb = sandbox();
    sb.write("a.txt", "a");
    sb.back_up_set(&[]);
    let doc = ok_json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(doc["matched"], 1);

    // A file backed up after the inventory was taken: the reused job does not
    // list it, which is no reason for alarm.
    sb.write("later.txt", "later");
    sb.back_up_set(&[]);
    let doc = ok_json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(doc["too_new"], 1, "{doc}");
    assert_eq!(doc["missing"].as_array().unwrap().len(), 0);
    let out = firn(&sb, &["inventory", "--set", "s"]);
    assert!(
        stdout(&out).contains("1 too new to check"),
        "{}",
        stdout(&out)
    );

    // A job the store no longer knows is requested again, and sees everything.
    for job in std::fs::read_dir(sb.store_dir().join("jobs")).unwrap() {
        std::fs::remove_file(job.unwrap().path()).unwrap();
    }
    let doc = ok_json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(doc["matched"], 2, "{doc}");
    assert_eq!(doc["too_new"], 0, "{doc}");
}

#[test]
fn an_inventory_not_ready_is_waited_for_or_reported() {
    let sb = sandbox();
    sb.edit_config("retrieval_delay_secs = 0", "retrieval_delay_secs = 2");
    sb.write("a.txt", "a");
    sb.back_up_set(&[]);
    let (code, doc) = json(&sb, &["inventory", "--set", "s", "--no-wait"]);
    assert_eq!(code, Some(0), "waiting is not a problem: {doc}");
    assert_eq!(doc["outcome"], "waiting");
    assert!(doc["ready_at"].as_i64().unwrap() > doc["requested_at"].as_i64().unwrap());
    let out = firn(
        &sb,
        &[
            "catalog",
            "rebuild",
            "--from-inventory",
            "--set",
            "s",
            "--no-wait",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("waiting: nothing rebuilt yet"),
        "{}",
        stdout(&out)
    );
    // Waiting (the default) polls the same job until it is ready.
    let doc = ok_json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(doc["matched"], 1);
    assert_eq!(sb.job_files(), 2, "one inventory job, reused");
}

#[test]
fn an_archive_deleted_after_the_inventory_was_taken_is_not_an_orphan() {
    let sb = sandbox();
    sb.edit_config("retrieval_delay_secs = 0", "retrieval_delay_secs = 2");
    sb.write("a.txt", "a");
    sb.write("b.txt", "b");
    sb.back_up_set(&[]);
    // The inventory lists both archives as they are now...
    ok_json(&sb, &["inventory", "--set", "s", "--no-wait"]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let out = firn(&sb, &["delete", "--set", "s", "b.txt", "--yes"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // ...and is read after b.txt's archive was deleted.
    let doc = ok_json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(doc["orphans"].as_array().map(Vec::len), Some(0), "{doc}");
    assert_eq!(doc["matched"], 1, "{doc}");
}

#[test]
fn orphans_are_adopted_or_deleted_on_request() {
    let sb = sandbox();
    sb.write("x.txt", "x version 2");
    sb.back_up_set(&[]);
    let older_x = put_archive(&sb, b"x v1", &firn1("x.txt", None, b"x v1", 1_000));
    let new_y = put_archive(
        &sb,
        b"y content",
        &firn1("new/y.txt", None, b"y content", 2_000),
    );
    let foreign = put_archive(&sb, b"f", "not firn");
    let hostile = put_archive(&sb, b"evil", &firn1("../evil", None, b"evil", 3));

    let (code, doc) = json(&sb, &["inventory", "--set", "s", "--adopt-orphans"]);
    assert_eq!(code, Some(1), "the foreign and hostile ones remain: {doc}");
    let outcome = |id: &str| {
        doc["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["archive_id"] == id)
            .map(|a| a["outcome"]["result"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(outcome(&older_x), "adopted-superseded");
    assert_eq!(outcome(&new_y), "adopted-current");
    assert_eq!(outcome(&foreign), "refused");
    assert_eq!(outcome(&hostile), "refused");
    assert_eq!(doc["problems"], 2);
    let recs = records(&sb);
    let state_of = |id: &str| {
        recs.iter()
            .find(|r| r["archive_id"] == id)
            .map(|r| r["state"].as_str().unwrap().to_string())
    };
    assert_eq!(state_of(&older_x).as_deref(), Some("superseded"));
    assert_eq!(state_of(&new_y).as_deref(), Some("current"));
    assert_eq!(state_of(&hostile), None, "never recorded");
    assert!(
        recs.iter()
            .all(|r| !r["path"].as_str().unwrap().contains("evil"))
    );

    // The adopted file restores like any other.
    let out_dir = sb.path().join("out");
    let out = firn(
        &sb,
        &[
            "restore",
            "new/y.txt",
            "--set",
            "s",
            "--to",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        std::fs::read(out_dir.join("new/y.txt")).unwrap(),
        b"y content"
    );

    // Deleting needs consent, and takes only what is still orphaned.
    let out = firn(&sb, &["inventory", "--set", "s", "--delete-orphans"]);
    let err = one_line_error(&out);
    assert!(err.contains("--yes"), "{err}");
    assert!(archive_file(&sb, &foreign).exists(), "nothing deleted");

    let out = firn(
        &sb,
        &["inventory", "--set", "s", "--delete-orphans", "--yes"],
    );
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("deleted: archive {foreign}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("deleted: archive {hostile}")),
        "{text}"
    );
    assert!(!archive_file(&sb, &foreign).exists());
    assert!(!archive_file(&sb, &hostile).exists());
    assert!(archive_file(&sb, &new_y).exists(), "adopted archives stay");

    // The inventory (reused, taken before the deletion) still lists them: they
    // are not reported again.
    let doc = ok_json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(doc["deleted_since"], 2, "{doc}");
    assert_eq!(doc["matched"], 3, "{doc}");
}

#[test]
fn rebuild_skips_descriptions_that_would_escape_the_destination() {
    let sb = sandbox();
    let good = put_archive(
        &sb,
        b"good",
        &firn1("good/a.txt", None, b"good", 1_000_000_123),
    );
    let nfd = "Cafe\u{301}.txt";
    let good_nfd = put_archive(
        &sb,
        b"cafe",
        &firn1(
            "Caf\u{e9}.txt",
            Some(nfd.as_bytes()),
            b"cafe",
            2_000_000_456,
        ),
    );
    // Each stores its own number as content: "1", "2", ...
    let hostile: Vec<(String, &str)> = [
        (firn1("../evil", None, b"1", 1), "../evil"),
        (firn1("/etc/evil", None, b"2", 1), "/etc/evil"),
        (firn1("a/../../evil", None, b"3", 1), "a/../../evil"),
        (
            firn1("evil.txt", Some(b"../../evil.txt"), b"4", 1),
            "raw ..",
        ),
        (
            firn1("ok.txt", Some(b"/tmp/evil\xff"), b"5", 1),
            "raw absolute",
        ),
        (firn1("a//evil", None, b"6", 1), "a//evil"),
        (firn1("./evil", None, b"7", 1), "./evil"),
        (firn1("evil\0x", None, b"8", 1), "NUL"),
        (mt2("../mt2-evil", "20130327T133716Z"), "mt2 .."),
        (mt2("/etc/mt2-evil", "20130327T133716Z"), "mt2 /"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (description, what))| {
        let content = (i + 1).to_string();
        (put_archive(&sb, content.as_bytes(), &description), what)
    })
    .collect();
    let long_key = "deep/".repeat(250) + "file";
    let too_long = put_archive(&sb, b"l", &firn1(&long_key, None, b"l", 1));
    let foreign = put_archive(&sb, b"f", "some other tool");

    // Written before archives named their set: adopted only when asked.
    let (code, doc) = json(
        &sb,
        &[
            "catalog",
            "rebuild",
            "--from-inventory",
            "--adopt-unknown",
            "--set",
            "s",
        ],
    );
    assert_eq!(code, Some(1), "skipped archives are reported: {doc}");
    assert_eq!(doc["current"], 2, "{doc}");
    assert_eq!(doc["merged"], false);
    let skipped = doc["skipped"].as_array().unwrap();
    let reason = |id: &str| {
        skipped
            .iter()
            .find(|s| s["archive_id"] == id)
            .map(|s| s["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{id} not skipped: {doc}"))
    };
    for (id, what) in &hostile {
        assert!(reason(id).contains("unsafe path"), "{what}: {}", reason(id));
    }
    assert!(
        reason(&too_long).contains("too long"),
        "{}",
        reason(&too_long)
    );
    assert!(
        reason(&foreign).contains("another tool"),
        "{}",
        reason(&foreign)
    );
    assert_eq!(skipped.len(), hostile.len() + 2);

    let recs = records(&sb);
    let mut ids_recorded: Vec<&str> = recs
        .iter()
        .map(|r| r["archive_id"].as_str().unwrap())
        .collect();
    ids_recorded.sort();
    let mut expected = vec![good.as_str(), good_nfd.as_str()];
    expected.sort();
    assert_eq!(ids_recorded, expected, "only the safe ones are imported");

    // The text form names each skipped archive on its own line.
    let out = firn(
        &sb,
        &[
            "catalog",
            "rebuild",
            "--from-inventory",
            "--adopt-unknown",
            "--set",
            "s",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("merged:"), "{text}");
    assert!(
        text.contains(&format!(
            "skipped: archive {} (../evil): unsafe path",
            hostile[0].0
        )),
        "{text}"
    );

    // A restore of everything writes only inside the destination.
    let dest = sb.path().join("restore/here");
    let out = firn(
        &sb,
        &["restore", "--set", "s", "--to", dest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(std::fs::read(dest.join("good/a.txt")).unwrap(), b"good");
    assert_eq!(std::fs::read(dest.join(nfd)).unwrap(), b"cafe");
    let mtime = std::fs::metadata(dest.join("good/a.txt")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::mtime_nsec(&mtime),
        123,
        "mtime to the nanosecond"
    );
    assert!(names_containing(sb.path(), "evil").is_empty());
    for outside in [&b"/etc/evil"[..], b"/etc/mt2-evil", b"/tmp/evil\xff"] {
        assert!(!Path::new(OsStr::from_bytes(outside)).exists());
    }
}

#[test]
fn restore_refuses_a_crafted_catalog_record_that_escapes() {
    let sb = sandbox();
    sb.write("ok.txt", "fine");
    sb.back_up_set(&[]);
    let ok_archive = archive_of(&sb, "ok.txt");
    // Records pointing at a real archive, under keys that leave the destination.
    rt().block_on(async {
        let catalog = firn::catalog::sqlite::SqliteCatalog::open(&sb.catalog_db(), "s").unwrap();
        let current = catalog.current("ok.txt").await.unwrap().unwrap();
        let crafted = |key: &str, raw: Option<&[u8]>| ArchiveRecord {
            key: key.into(),
            raw: raw.map(<[u8]>::to_vec),
            state: ArchiveState::Current,
            ..current.clone()
        };
        catalog
            .import(&[
                crafted("../escape", None),
                crafted("fine.txt", Some(b"../../escape-raw")),
            ])
            .await
            .unwrap();
    });
    assert_eq!(archive_of(&sb, "../escape"), ok_archive);

    let dest = sb.path().join("restore/here");
    let out = firn(
        &sb,
        &["restore", "--set", "s", "--to", dest.to_str().unwrap()],
    );
    assert_exit(&out, 1);
    let text = stdout(&out);
    let refusals: Vec<&str> = text.lines().filter(|l| l.starts_with("failed:")).collect();
    assert_eq!(refusals.len(), 2, "{text}");
    assert!(
        refusals
            .iter()
            .any(|l| l.contains("../escape") && l.contains("refusing")),
        "{text}"
    );
    assert!(refusals.iter().all(|l| l.contains("refusing")), "{text}");
    assert_eq!(std::fs::read(dest.join("ok.txt")).unwrap(), b"fine");
    assert!(names_containing(sb.path(), "escape").is_empty());
}

#[test]
fn mt_aws_glacier_archives_are_adopted_with_nfc_keys_and_no_sha1() {
    let sb = sandbox();
    let photo = put_archive(
        &sb,
        b"jpeg bytes",
        &mt2("photos/Cafe\u{301} 1.jpg", "20130327T133716Z"),
    );
    // mt-aws-glacier's archives name no set: counted, and left alone unless
    // the person says no other set shares the vault.
    let (code, doc) = json(&sb, &["catalog", "rebuild", "--set", "s"]);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(
        (doc["unknown_owner"].as_u64(), doc["files"].as_u64()),
        (Some(1), Some(0)),
        "{doc}"
    );
    assert!(records(&sb).is_empty());
    let text = stdout(&sb.firn(["catalog", "rebuild", "--set", "s"]));
    assert!(
        text.contains("not adopted: 1 archive of unknown owner")
            && text.contains("--adopt-unknown"),
        "{text}"
    );
    let doc = ok_json(
        &sb,
        &["catalog", "rebuild", "--adopt-unknown", "--set", "s"],
    );
    assert_eq!(doc["unknown_sha1"], 1);
    let recs = records(&sb);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r["archive_id"], photo.as_str());
    assert_eq!(r["path"], "photos/Caf\u{e9} 1.jpg", "NFC key");
    assert_eq!(r["size"], 10, "size from the inventory");
    assert_eq!(r["mtime_ns"], 1_364_391_436_000_000_000i64);
    assert_eq!(r["sha1"], "0".repeat(40));

    // The same file on disk, same size and mtime: up to date, nothing uploaded.
    let path = sb.write("photos/Cafe\u{301} 1.jpg", "jpeg bytes");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_364_391_436))
        .unwrap();
    let doc = sb.status_json(&["--set", "s"]);
    assert_eq!(
        common::status_of(&doc, "photos/Caf\u{e9} 1.jpg"),
        "up-to-date",
        "{doc}"
    );
}

#[test]
fn rebuild_orders_versions_by_creation_and_merges_into_a_known_catalog() {
    let sb = sandbox();
    sb.write("x.txt", "one");
    sb.write("keep.txt", "keep");
    sb.back_up_set(&[]);
    // Archive creation dates are whole seconds.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sb.write("x.txt", "two!");
    sb.back_up_set(&[]);
    let before = records(&sb);
    assert_eq!(before.len(), 3);

    // Lose the catalog entirely: rebuild gives the same versions back.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sb.catalog_db().display()));
    }
    let doc = ok_json(&sb, &["catalog", "rebuild", "--no-snapshot", "--set", "s"]);
    assert_eq!(
        (doc["files"].as_u64(), doc["current"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(doc["superseded"], 1);
    let after = records(&sb);
    let summary = |recs: &[serde_json::Value]| {
        let mut v: Vec<(String, String, String, u64)> = recs
            .iter()
            .map(|r| {
                (
                    r["path"].as_str().unwrap().to_string(),
                    r["archive_id"].as_str().unwrap().to_string(),
                    r["state"].as_str().unwrap().to_string(),
                    r["size"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(summary(&after), summary(&before));
    let doc = sb.status_json(&["--set", "s"]);
    assert_eq!(doc["summary"]["pending"]["files"], 0, "{doc}");

    // A catalog that lost one row: only that archive is added, and it says so.
    catalog_sql(&sb, "DELETE FROM archive WHERE key = 'keep.txt'");
    let out = firn(
        &sb,
        &["catalog", "rebuild", "--from-inventory", "--set", "s"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("merged:"), "{text}");
    // The newest catalog snapshot has the row as it was.
    assert!(
        text.contains("3 records (1 added, 0 whose archive"),
        "{text}"
    );
    assert_eq!(summary(&records(&sb)), summary(&before));

    // Without snapshots, from the descriptions: the same.
    catalog_sql(&sb, "DELETE FROM archive WHERE key = 'keep.txt'");
    let out = firn(&sb, &["catalog", "rebuild", "--no-snapshot", "--set", "s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("1 file (1 current, 0 superseded"), "{text}");
    assert!(text.contains("2 already in the catalog"), "{text}");
    assert_eq!(summary(&records(&sb)), summary(&before));
}

#[test]
fn a_non_utf8_path_round_trips_through_a_rebuild() {
    let sb = sandbox();
    let raw: &[u8] = b"dir/caf\xe9.bin";
    sb.write(raw, "latin-1 name");
    sb.back_up_set(&[]);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sb.catalog_db().display()));
    }
    ok_json(
        &sb,
        &["catalog", "rebuild", "--from-inventory", "--set", "s"],
    );
    let dest = sb.path().join("out");
    let out = firn(
        &sb,
        &["restore", "--set", "s", "--to", dest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        std::fs::read(dest.join(OsStr::from_bytes(raw))).unwrap(),
        b"latin-1 name"
    );
}

#[test]
fn a_moved_embedded_store_is_still_this_store_and_another_that_exists_is_not() {
    let sb = sandbox();
    // Two runs, two packs: b.txt's can go without a.txt's.
    sb.write("a.txt", "a");
    sb.back_up_set(&[]);
    sb.write("b.txt", "b");
    sb.back_up_set(&[]);
    let gone = archive_of(&sb, "b.txt");
    assert_ne!(gone, archive_of(&sb, "a.txt"));
    // The disk is mounted elsewhere now: its records name the old directory.
    let moved = sb.path().join("mounted-elsewhere");
    std::fs::rename(sb.store_dir(), &moved).unwrap();
    sb.edit_config(
        "store = { kind = \"local\", retrieval_delay_secs = 0 }",
        &format!("store = {{ kind = \"local\", path = {moved:?}, retrieval_delay_secs = 0 }}"),
    );
    std::fs::remove_file(moved.join("archives").join(&gone[..2]).join(&gone)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, doc) = json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["matched"], 1, "{doc}");
    let missing = doc["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{doc}");
    assert_eq!(missing[0]["key"], "b.txt");
    assert_eq!(doc["other_store"], 0, "{doc}");

    // Where the old directory still holds a store, the record is another
    // store's (a set moved from one disk to another keeps its originals there).
    std::fs::create_dir_all(sb.store_dir().join("archives")).unwrap();
    let (_, doc) = json(&sb, &["inventory", "--set", "s", "--refresh"]);
    assert_eq!(doc["missing"].as_array().unwrap().len(), 0, "{doc}");
    assert_eq!(doc["other_store"], 1, "{doc}");
}

#[test]
fn a_pack_the_catalog_lacks_is_an_orphan_of_its_files_and_adopting_it_records_them() {
    let sb = sandbox();
    sb.write("p/a.txt", "a");
    sb.write("p/b.txt", "bb");
    sb.write("p/c.txt", "ccc");
    sb.back_up_set(&[]);
    let pack = archive_of(&sb, "p/a.txt");
    assert_eq!(archive_of(&sb, "p/c.txt"), pack, "one pack");

    // A pack the catalog records some files of is named, not a problem (the
    // others may have been deleted).
    catalog_sql(&sb, "DELETE FROM archive WHERE key = 'p/b.txt'");
    let (code, doc) = json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(code, Some(0), "{doc}");
    let partly = doc["partly_recorded_packs"].as_array().unwrap();
    assert_eq!(partly.len(), 1, "{doc}");
    assert_eq!(partly[0]["archive_id"], pack.as_str());
    assert_eq!(
        (&partly[0]["files"], &partly[0]["recorded"]),
        (&3.into(), &2.into())
    );
    let text =
        String::from_utf8_lossy(&firn(&sb, &["inventory", "--set", "s"]).stdout).into_owned();
    assert!(
        text.contains(&format!("pack {pack} ("))
            && text.contains("holds 3 files the catalog records 2 of"),
        "the text names the pack and its counts: {text}"
    );

    // None of its files recorded: an orphan that says it is a pack, and of what.
    catalog_sql(&sb, "DELETE FROM archive");
    let (code, doc) = json(&sb, &["inventory", "--set", "s", "--refresh"]);
    assert_eq!(code, Some(1), "{doc}");
    let orphans = doc["orphans"].as_array().unwrap();
    assert_eq!(orphans.len(), 1, "{doc}");
    assert_eq!(orphans[0]["archive_id"], pack.as_str());
    assert!(orphans[0]["refused"].is_null(), "{doc}");
    assert_eq!(orphans[0]["pack"]["files"], 3, "{doc}");
    assert_eq!(
        orphans[0]["pack"]["paths"],
        serde_json::json!(["p/a.txt", "p/b.txt", "p/c.txt"])
    );
    let text =
        String::from_utf8_lossy(&firn(&sb, &["inventory", "--set", "s"]).stdout).into_owned();
    assert!(
        text.contains("pack of 3 files: p/a.txt, p/b.txt, p/c.txt"),
        "the text says the orphan is a pack, and of what: {text}"
    );

    // Adopting it records every file its index names, in its place.
    let (code, doc) = json(&sb, &["inventory", "--set", "s", "--adopt-orphans"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(
        doc["actions"][0]["outcome"]["result"], "adopted-current",
        "{doc}"
    );
    let mut adopted: Vec<(String, String, u64)> = records(&sb)
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["archive_id"].as_str().unwrap().to_string(),
                r["size"].as_u64().unwrap(),
            )
        })
        .collect();
    adopted.sort();
    assert_eq!(
        adopted,
        vec![
            ("p/a.txt".to_string(), pack.clone(), 1),
            ("p/b.txt".to_string(), pack.clone(), 2),
            ("p/c.txt".to_string(), pack.clone(), 3),
        ]
    );
    let (code, doc) = json(&sb, &["inventory", "--set", "s", "--refresh"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["problems"], 0, "{doc}");
    // And each comes back byte for byte.
    let dest = sb.path().join("out");
    let out = firn(
        &sb,
        &["restore", "--set", "s", "--to", dest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(std::fs::read(dest.join("p/b.txt")).unwrap(), b"bb");
}
