//! End-to-end tests of the headless CLI on the embedded default backend: the real
//! binary, a real tree, the SQLite catalog and the directory store.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use common::{Sandbox, last_json, one_line_error, status_of, stderr, stdout};

fn set_mtime(path: &std::path::Path, when: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(when))
        .expect("set mtime");
}

/// `firn restore --root TREE --to DIR`: every file of the tree's ad-hoc set.
fn restore_all(sb: &Sandbox, to: &std::path::Path) -> std::process::Output {
    let root = sb.tree().display().to_string();
    sb.firn(["restore", "--root", &root, "--to", to.to_str().unwrap()])
}

#[test]
fn every_status_class_and_touched_but_identical() {
    let sb = Sandbox::new();
    sb.write("keep.txt", "same content");
    sb.write("touched.txt", "touched but identical");
    sb.write("grow.txt", "v1");
    sb.write("rewrite.txt", "aaaa");
    sb.write("gone.txt", "will be deleted");
    sb.write("debug.log", "ignored by pattern");
    sb.write("cache/blob.bin", "ignored directory");
    let ignore = ["--ignore-pattern", r"\.log$", "--ignore-pattern", "^cache$"];

    let (code, first) = sb.backup_json(&ignore);
    assert_eq!(code, Some(0), "{first}");
    assert_eq!(first["uploaded_files"], 5);

    sb.write("new.txt", "brand new");
    sb.write("grow.txt", "version two, longer");
    sb.write("rewrite.txt", "bbbb"); // same size, other content: only a hash tells
    std::fs::remove_file(sb.tree().join("gone.txt")).unwrap();
    let touched = sb.tree().join("touched.txt");
    set_mtime(&touched, SystemTime::now() + Duration::from_secs(3600));

    let doc = sb.status_json(&ignore);
    assert_eq!(status_of(&doc, "new.txt"), "new");
    assert_eq!(status_of(&doc, "grow.txt"), "changed");
    assert_eq!(status_of(&doc, "rewrite.txt"), "changed");
    assert_eq!(status_of(&doc, "keep.txt"), "up-to-date");
    assert_eq!(status_of(&doc, "touched.txt"), "up-to-date");
    assert_eq!(status_of(&doc, "gone.txt"), "archived-only");
    assert_eq!(status_of(&doc, "debug.log"), "ignored");
    assert_eq!(status_of(&doc, "cache"), "ignored");
    assert_eq!(doc["summary"]["pending"]["files"], 3);
    // Only the two same-size files whose fingerprint moved were read.
    assert_eq!(doc["summary"]["files_read"], 2, "{}", doc["summary"]);

    let (code, second) = sb.backup_json(&ignore);
    assert_eq!(code, Some(0), "{second}");
    assert_eq!(second["uploaded_files"], 3);
    assert_eq!(second["mtimes_updated"], 1);
    let records = sb.records();
    let touched_records: Vec<_> = records
        .iter()
        .filter(|r| r["path"] == "touched.txt")
        .collect();
    assert_eq!(
        touched_records.len(),
        1,
        "touched file must not be uploaded again"
    );
    let local_mtime = std::fs::metadata(&touched).unwrap();
    let local_ns = local_mtime.mtime() * 1_000_000_000 + local_mtime.mtime_nsec();
    assert_eq!(
        touched_records[0]["mtime_ns"], local_ns,
        "catalog mtime follows the touched file"
    );

    let doc = sb.status_json(&ignore);
    assert_eq!(doc["summary"]["pending"]["files"], 0);
    assert_eq!(doc["summary"]["files_read"], 0);
}

#[test]
fn directories_roll_up_counts_and_pending_bytes() {
    let sb = Sandbox::new();
    sb.write("photos/2024/a.jpg", vec![1u8; 100]);
    sb.write("photos/2024/b.jpg", vec![2u8; 50]);
    sb.write("photos/c.jpg", vec![3u8; 10]);
    sb.write("vm/disk.img", vec![4u8; 1000]);
    let doc = sb.status_json(&[]);
    let dirs = doc["directories"].as_array().unwrap();
    let dir = |p: &str| {
        dirs.iter()
            .find(|d| d["path"] == p)
            .unwrap_or_else(|| panic!("{p} missing"))
    };
    assert_eq!(dir("photos")["pending"]["files"], 3);
    assert_eq!(dir("photos")["pending"]["bytes"], 160);
    assert_eq!(dir("photos/2024")["new"]["files"], 2);
    assert_eq!(dir("vm")["pending"]["bytes"], 1000);
}

#[test]
fn nfd_names_are_keyed_nfc_and_restored_as_they_were() {
    let sb = Sandbox::new();
    let nfd = "Cafe\u{301}.txt"; // as macOS writes it
    sb.write(nfd, "coffee");
    let (code, _) = sb.backup_json(&[]);
    assert_eq!(code, Some(0));
    let doc = sb.status_json(&[]);
    assert_eq!(status_of(&doc, "Caf\u{e9}.txt"), "up-to-date");

    let out_dir = sb.path().join("restored");
    let out = restore_all(&sb, &out_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from(nfd)],
        "the NFD bytes come back exactly"
    );
}

#[test]
fn names_that_normalize_to_one_key_are_refused_for_both() {
    let sb = Sandbox::new();
    sb.write("Cafe\u{301}.txt", "nfd");
    sb.write("Caf\u{e9}.txt", "nfc");
    sb.write("other.txt", "fine");
    let (code, doc) = sb.backup_json(&[]);
    assert_eq!(code, Some(1), "a collision is a failure to back up: {doc}");
    assert_eq!(doc["uploaded_files"], 1);
    let problems = doc["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "both names reported: {doc}");
    assert!(
        problems
            .iter()
            .all(|p| p["reason"].as_str().unwrap().contains("collision"))
    );
}

#[test]
fn a_non_utf8_name_round_trips_byte_exact() {
    let sb = Sandbox::new();
    let name: &[u8] = b"latin1-caf\xe9 \xff.bin";
    let content: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
    let original = sb.write(name, &content);
    let mtime = std::fs::metadata(&original).unwrap();
    let (code, doc) = sb.backup_json(&[]);
    assert_eq!(code, Some(0), "{doc}");
    let status = sb.status_json(&[]);
    assert_eq!(
        status_of(&status, "latin1-caf\\xE9 \\xFF.bin"),
        "up-to-date"
    );

    std::fs::remove_dir_all(sb.tree()).unwrap();
    std::fs::create_dir(sb.tree()).unwrap();
    let doc = sb.status_json(&[]);
    assert_eq!(
        status_of(&doc, "latin1-caf\\xE9 \\xFF.bin"),
        "archived-only"
    );

    let out_dir = sb.path().join("restored");
    let out = restore_all(&sb, &out_dir);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let restored = out_dir.join(OsStr::from_bytes(name));
    assert_eq!(std::fs::read(&restored).unwrap(), content);
    let meta = std::fs::metadata(&restored).unwrap();
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (mtime.mtime(), mtime.mtime_nsec()),
        "mtime restored"
    );
}

#[test]
fn zero_byte_files_back_up_and_restore() {
    let sb = Sandbox::new();
    sb.write("empty", "");
    let (code, doc) = sb.backup_json(&[]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["uploaded_files"], 1);
    let records = sb.records();
    // Glacier's tree hash of nothing is SHA-256 of nothing.
    assert_eq!(
        records[0]["tree_hash"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let out_dir = sb.path().join("out");
    let out = restore_all(&sb, &out_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(out_dir.join("empty")).unwrap().len(), 0);
}

#[test]
fn fifos_and_symlink_loops_are_reported_and_skipped() {
    let sb = Sandbox::new();
    sb.write("dir/file.txt", "data");
    let fifo = sb.tree().join("dir/pipe");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: c_path is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo");
    std::os::unix::fs::symlink("..", sb.tree().join("dir/loop")).unwrap();

    let (code, doc) = sb.backup_json(&[]);
    assert_eq!(
        code,
        Some(0),
        "skipped special files are not failures: {doc}"
    );
    assert_eq!(doc["uploaded_files"], 1);
    let problems = doc["problems"].as_array().unwrap();
    let reason = |p: &str| {
        problems
            .iter()
            .find(|x| x["path"] == p)
            .map(|x| x["reason"].as_str().unwrap().to_string())
    };
    assert!(reason("dir/pipe").unwrap().contains("fifo"), "{doc}");
    assert!(
        reason("dir/loop").unwrap().contains("symbolic link"),
        "{doc}"
    );

    // Following links: the loop is detected and reported, the walk ends.
    let doc = sb.status_json(&["--follow-symlinks"]);
    let looped = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "dir/loop")
        .expect("loop reported");
    assert!(
        looped["reason"].as_str().unwrap().contains("loop"),
        "{looped}"
    );
}

/// Mode 000: unreadable to anyone but root.
fn lock_away(path: &std::path::Path) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
}

/// `firn <command> TREE --json` as an unprivileged user (root reads anything).
fn unprivileged(sb: &Sandbox, command: &str) -> std::process::Output {
    sb.unprivileged_command()
        .args([command, sb.tree().to_str().unwrap(), "--json"])
        .output()
        .unwrap()
}

#[test]
fn an_unreadable_file_is_reported_and_the_rest_backed_up() {
    let sb = Sandbox::new();
    sb.write("ok.txt", "readable");
    lock_away(&sb.write("secret.txt", "not for you"));
    sb.write("locked/inside.txt", "behind a closed directory");
    lock_away(&sb.tree().join("locked"));

    let out = unprivileged(&sb, "backup");
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreadable file fails the run: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let doc: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(doc["uploaded_files"], 1);
    let problems = doc["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{doc}");
    for (problem, path) in problems.iter().zip(["locked", "secret.txt"]) {
        assert_eq!(problem["path"], path);
        assert_eq!(problem["status"], "unreadable");
        let reason = problem["reason"].as_str().unwrap();
        assert!(reason.contains("permission denied"), "{problem}");
    }
}

#[test]
fn archived_files_under_a_directory_that_became_unreadable_are_unreadable_not_gone() {
    let sb = Sandbox::new();
    sb.write("locked/inside.txt", "archived, then locked away");
    // Between `locked` and `locked/…` in key order: the scan hands it on
    // before the directory's contents.
    sb.write("locked-b.txt", "a sibling");
    sb.write("z.txt", "after");
    let (code, doc) = sb.backup_json(&[]);
    assert_eq!(code, Some(0), "{doc}");
    lock_away(&sb.tree().join("locked"));

    let doc = last_json(&unprivileged(&sb, "status"));
    assert_eq!(status_of(&doc, "locked"), "unreadable", "{doc}");
    assert_eq!(status_of(&doc, "locked-b.txt"), "up-to-date", "{doc}");
    assert_eq!(status_of(&doc, "z.txt"), "up-to-date", "{doc}");
    // Not archived-only: firn cannot see it, which is not the same as gone.
    assert_eq!(status_of(&doc, "locked/inside.txt"), "unreadable", "{doc}");
    let inside = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "locked/inside.txt")
        .unwrap();
    assert!(
        inside
            .to_string()
            .contains("inside unreadable directory locked"),
        "{inside}"
    );
}

#[test]
fn an_invalid_regex_is_one_clear_line_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.write("a.txt", "a");
    for flag in ["--pattern", "--ignore-pattern"] {
        let out = sb.firn(["backup", sb.tree().to_str().unwrap(), flag, "(unclosed"]);
        let err = one_line_error(&out);
        assert!(
            err.contains(flag) && err.contains("(unclosed"),
            "names the flag and the expression: {err}"
        );
    }
    assert!(!sb.catalog_db().exists(), "nothing written");
}

#[test]
fn a_missing_root_is_one_clear_line() {
    let sb = Sandbox::new();
    let missing = sb.path().join("no-such-dir");
    let out = sb.firn(["status", missing.to_str().unwrap()]);
    let err = one_line_error(&out);
    assert!(
        err.contains("does not exist") && err.contains("no-such-dir"),
        "{err}"
    );
}

#[test]
fn patterns_match_relative_paths_case_insensitively() {
    let sb = Sandbox::new();
    sb.write("Photos/IMG_1.JPG", "jpg");
    sb.write("Photos/notes.txt", "txt");
    let doc = sb.status_json(&["--pattern", r"\.jpg$"]);
    assert_eq!(status_of(&doc, "Photos/IMG_1.JPG"), "new");
    assert_eq!(status_of(&doc, "Photos/notes.txt"), "ignored");
}

#[test]
fn a_crash_between_store_and_catalog_is_recovered_on_rerun() {
    let sb = Sandbox::new();
    sb.write("precious.img", vec![7u8; 3 << 20]);
    sb.write("other.txt", "other");
    let crashed = sb
        .command()
        .args(["backup", sb.tree().to_str().unwrap(), "--concurrency", "1"])
        .env("FIRN_FAULT", "after-store")
        .output()
        .unwrap();
    assert!(
        !crashed.status.success(),
        "the injected crash must kill the process"
    );
    assert!(
        stderr(&crashed).contains("injected crash"),
        "{}",
        stderr(&crashed)
    );
    // The crash comes once a batch is durable in the store: both files, or
    // (when the batch closed on time first) the first of them.
    let stored_after_crash = sb.store_archives();
    let stray = stored_after_crash.len();
    assert!(
        (1..=2).contains(&stray),
        "archives reached the store: {stored_after_crash:?}"
    );
    assert!(sb.records().is_empty(), "nothing recorded yet");

    let (code, doc) = sb.backup_json(&[]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(
        doc["recovered"], stray,
        "every stray archive is found: {doc}"
    );
    assert_eq!(
        doc["uploaded_files"],
        2 - stray,
        "only a file never stored is uploaded: {doc}"
    );
    let records = sb.records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r["state"] == "current"));
    for id in &stored_after_crash {
        let adopted = records
            .iter()
            .find(|r| r["archive_id"] == id.as_str())
            .expect("the stray itself was adopted");
        let same_path = records
            .iter()
            .filter(|r| r["path"] == adopted["path"])
            .count();
        assert_eq!(same_path, 1, "no duplicate current archive");
    }
    // Every archive in the store is accounted for in the catalog.
    let mut recorded: Vec<String> = records
        .iter()
        .map(|r| r["archive_id"].as_str().unwrap().to_string())
        .collect();
    recorded.sort();
    assert_eq!(recorded, sb.store_archives());
    let status = sb.status_json(&[]);
    assert_eq!(status["summary"]["pending"]["files"], 0);
}

/// 300 small files: more than one commit batch (256 files, or a second). A crash
/// at each batch boundary — before the batch is durable, once it is durable,
/// once its archive ids are journaled, once it is recorded — loses nothing: the
/// catalog never names an archive the store does not hold, and the rerun ends
/// with every file current once and every archive in the store accounted for.
#[test]
fn a_crash_at_any_batch_boundary_loses_nothing_and_records_only_what_the_store_holds() {
    const FILES: usize = 300;
    for point in [
        "batch-sent",
        "after-store",
        "batch-journaled",
        "batch-recorded",
    ] {
        let sb = Sandbox::new();
        // One archive per file: this test counts per-file archives found and
        // recovered across a batch boundary. The same boundaries with packs
        // are a_kill_at_any_pack_boundary_loses_nothing_and_leaves_no_pack_unaccounted_for.
        sb.write_config_text("[defaults]\npack_small_files = false\n");
        for i in 0..FILES {
            sb.write(
                format!("d{}/f{i}.txt", i % 7),
                common::pattern((i * 13) % 4096, i as u8),
            );
        }
        let crashed = sb
            .command()
            .args(["backup", sb.tree().to_str().unwrap()])
            .env("FIRN_FAULT", point)
            .output()
            .unwrap();
        assert!(
            !crashed.status.success(),
            "{point}: the crash must kill firn"
        );
        assert!(
            stderr(&crashed).contains(&format!("injected crash at {point}")),
            "{point}: {}",
            stderr(&crashed)
        );
        let in_store = sb.store_archives();
        let records = sb.records();
        for record in &records {
            let id = record["archive_id"].as_str().unwrap();
            assert!(
                in_store.binary_search(&id.to_string()).is_ok(),
                "{point}: recorded archive {id} is not in the store"
            );
        }
        match point {
            "batch-sent" => assert!(in_store.is_empty(), "{point}: nothing durable yet"),
            _ => assert!(!in_store.is_empty(), "{point}: a batch is durable"),
        }
        if point != "batch-recorded" {
            assert!(records.is_empty(), "{point}: nothing recorded yet");
        }
        let recorded_before = records.len();

        let (code, doc) = sb.backup_json(&[]);
        assert_eq!(code, Some(0), "{point}: {doc}");
        let uploaded = doc["uploaded_files"].as_u64().unwrap() as usize;
        let recovered = doc["recovered"].as_u64().unwrap() as usize;
        let records = sb.records();
        assert_eq!(records.len(), FILES, "{point}: one record per file");
        assert!(
            records.iter().all(|r| r["state"] == "current"),
            "{point}: every record current"
        );
        let mut paths: Vec<&str> = records
            .iter()
            .map(|r| r["path"].as_str().unwrap())
            .collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), FILES, "{point}: no file twice");
        let mut recorded: Vec<String> = records
            .iter()
            .map(|r| r["archive_id"].as_str().unwrap().to_string())
            .collect();
        recorded.sort();
        assert_eq!(
            recorded,
            sb.store_archives(),
            "{point}: every archive accounted for"
        );
        // Each file exactly once: recorded before the crash, recovered from the
        // store (durable, not recorded: the batch, and any archive completed
        // while it was made durable), or uploaded now.
        assert_eq!(
            recorded_before + recovered + uploaded,
            FILES,
            "{point}: {doc}"
        );
        match point {
            "batch-sent" => assert_eq!(recovered, 0, "{point}: nothing was durable: {doc}"),
            "after-store" | "batch-journaled" => {
                assert!(
                    recovered > 0,
                    "{point}: the durable batch is recovered: {doc}"
                );
            }
            _ => assert!(recorded_before > 0, "{point}: a batch was recorded"),
        }
        let status = sb.status_json(&[]);
        assert_eq!(status["summary"]["pending"]["files"], 0, "{point}");
    }
}

/// Rows of a table of the ad-hoc set's local state.
fn state_rows(sb: &Sandbox, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(sb.adhoc_set().1.join("state.sqlite")).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Each file's path and its (archive id, pack offset) as the ad-hoc set's
/// SQLite catalog holds them.
fn catalog_places(sb: &Sandbox) -> Vec<(String, String, Option<i64>)> {
    let conn = rusqlite::Connection::open(sb.catalog_db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT key, archive_id, pack_offset FROM archive ORDER BY key")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Issue 21's acceptance: a kill at every pack boundary — a pack journaled and
/// not yet sent, sent and not yet durable, its batch before and after the store
/// made it durable, once its archive id is journaled, once its members are
/// recorded, once they are recorded and before the pack journal closes — loses
/// nothing. Many small files in several packs (and a few files alone, above the
/// threshold): the rerun ends with every file current exactly once, every byte
/// restorable and checked, every archive in the store referenced by the catalog
/// (none left over from the kill), and the pack journal empty.
#[test]
fn a_kill_at_any_pack_boundary_loses_nothing_and_leaves_no_pack_unaccounted_for() {
    const SMALL: usize = 600;
    const LARGE: usize = 3;
    const FILES: usize = SMALL + LARGE;
    const THRESHOLD: usize = 8 << 10;
    let content = |i: usize| {
        if i < SMALL {
            common::pattern((i * 13) % 4096, i as u8)
        } else {
            common::pattern(THRESHOLD + 1 + i, i as u8)
        }
    };
    let points = [
        "pack-journaled",
        "pack-sent",
        "batch-sent",
        "after-store",
        "batch-journaled",
        "batch-recorded",
        "packs-recorded",
    ];
    // At the first pass of each point, and at a later one (the fourth pack,
    // the second batch), with packs before it recorded or in flight.
    let runs = points.into_iter().flat_map(|point| {
        [
            (point, 0),
            (point, if point.starts_with("pack-") { 3 } else { 1 }),
        ]
    });
    for (point, skip) in runs {
        let label = format!("{point} (pass {})", skip + 1);
        let point_name = point;
        let point = label.as_str();
        let sb = Sandbox::in_memory();
        // Packs of about 64 KiB: some 20 of them for 1.2 MiB of small files.
        sb.write_config_text(&format!(
            "[defaults]\npack_threshold = {THRESHOLD}\npack_size = \"64 KiB\"\n"
        ));
        let path = |i: usize| format!("d{}/f{i}.bin", i % 7);
        for i in 0..FILES {
            sb.write(path(i), content(i));
        }
        let killed = sb
            .command()
            .args(["backup", sb.tree().to_str().unwrap()])
            .env("FIRN_FAULT", point_name)
            .env("FIRN_FAULT_SKIP", skip.to_string())
            .output()
            .unwrap();
        assert!(!killed.status.success(), "{point}: the kill must stop firn");
        assert!(
            stderr(&killed).contains(&format!("injected crash at {point_name}")),
            "{point}: {}",
            stderr(&killed)
        );
        // Never a record of what the store does not hold.
        let in_store = sb.store_archives();
        let records = sb.records();
        for record in &records {
            let id = record["archive_id"].as_str().unwrap();
            assert!(
                in_store.binary_search(&id.to_string()).is_ok(),
                "{point}: recorded archive {id} is not in the store"
            );
        }
        if (point_name, skip) == ("pack-journaled", 0) {
            assert!(records.is_empty(), "{point}: nothing sent yet");
        }
        let recorded_before = records.len();

        let (code, doc) = sb.backup_json(&[]);
        assert_eq!(code, Some(0), "{point}: {doc}");
        let uploaded = doc["uploaded_files"].as_u64().unwrap() as usize;
        let recovered = doc["recovered"].as_u64().unwrap() as usize;
        assert_eq!(
            recorded_before + recovered + uploaded,
            FILES,
            "{point}: each file once, recorded before, recovered or uploaded: {doc}"
        );
        match (point_name, skip) {
            (_, 1..) => {}
            // The first pack killed before the store took it, or before its
            // batch was durable: nothing to find, everything uploaded again.
            ("pack-journaled" | "batch-sent", _) => {
                assert_eq!(recovered + recorded_before, 0, "{point}: {doc}")
            }
            // Durable, not recorded: the rerun records its members.
            ("after-store" | "batch-journaled", _) => {
                assert!(
                    recovered > 0,
                    "{point}: the durable pack is recovered: {doc}"
                )
            }
            ("batch-recorded" | "packs-recorded", _) => {
                assert!(recorded_before > 0, "{point}: a pack was recorded")
            }
            _ => {}
        }

        // Every file current exactly once.
        let records = sb.records();
        assert_eq!(records.len(), FILES, "{point}: one record per file");
        assert!(
            records.iter().all(|r| r["state"] == "current"),
            "{point}: every record current"
        );
        let mut paths: Vec<&str> = records
            .iter()
            .map(|r| r["path"].as_str().unwrap())
            .collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), FILES, "{point}: no file twice");

        // Small files in packs, large ones alone; every archive in the store
        // referenced by the catalog, and nothing referenced that it lacks.
        let places = catalog_places(&sb);
        let packed: Vec<_> = places.iter().filter(|(_, _, at)| at.is_some()).collect();
        assert_eq!(packed.len(), SMALL, "{point}: every small file packed");
        let mut packs: Vec<&str> = packed.iter().map(|(_, id, _)| id.as_str()).collect();
        packs.sort();
        packs.dedup();
        assert!(packs.len() >= 10, "{point}: several packs: {}", packs.len());
        let mut referenced: Vec<String> = places.iter().map(|(_, id, _)| id.clone()).collect();
        referenced.sort();
        referenced.dedup();
        assert_eq!(referenced.len(), packs.len() + LARGE, "{point}");
        assert_eq!(
            referenced,
            sb.store_archives(),
            "{point}: every archive in the store accounted for"
        );
        assert_eq!(state_rows(&sb, "pack_journal"), 0, "{point}: pack journal");
        assert_eq!(state_rows(&sb, "upload_journal"), 0, "{point}: journal");
        let status = sb.status_json(&[]);
        assert_eq!(status["summary"]["pending"]["files"], 0, "{point}");

        // Every byte back, each member checked on the way.
        let to = sb.dir.path().join("restored");
        let out = restore_all(&sb, &to);
        assert_eq!(out.status.code(), Some(0), "{point}: {}", stderr(&out));
        for i in 0..FILES {
            let back = std::fs::read(to.join(path(i)))
                .unwrap_or_else(|e| panic!("{point}: {} not restored: {e}", path(i)));
            assert!(back == content(i), "{point}: {} restored wrong", path(i));
        }
    }
}

#[test]
fn a_stray_of_a_file_changed_since_the_crash_is_kept_as_superseded() {
    let sb = Sandbox::new();
    sb.write("doc.txt", "first");
    let crashed = sb
        .command()
        .args(["backup", sb.tree().to_str().unwrap()])
        .env("FIRN_FAULT", "after-store")
        .output()
        .unwrap();
    assert!(!crashed.status.success());
    sb.write("doc.txt", "second, edited after the crash");
    let (code, doc) = sb.backup_json(&["--retention", "keep"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["recovered"], 1);
    let records = sb.records();
    let states: Vec<_> = records
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        states.contains(&"current") && states.contains(&"superseded"),
        "{states:?}"
    );
    assert_eq!(sb.store_archives().len(), 2);
}

fn change_and_back_up(sb: &Sandbox, retention: &str) -> serde_json::Value {
    sb.write("report.txt", "version one");
    let (code, doc) = sb.backup_json(&["--retention", retention]);
    assert_eq!(code, Some(0), "{doc}");
    sb.write("report.txt", "version two!");
    let (code, doc) = sb.backup_json(&["--retention", retention]);
    assert_eq!(code, Some(0), "{doc}");
    doc
}

#[test]
fn retention_keep_keeps_superseded_archives() {
    let sb = Sandbox::new();
    change_and_back_up(&sb, "keep");
    let records = sb.records();
    assert_eq!(records.len(), 2);
    assert_eq!(
        records
            .iter()
            .filter(|r| r["state"] == "superseded")
            .count(),
        1
    );
    assert_eq!(sb.store_archives().len(), 2);
}

#[test]
fn retention_delete_removes_the_superseded_archive_after_the_new_one_is_recorded() {
    let sb = Sandbox::new();
    let doc = change_and_back_up(&sb, "delete");
    assert_eq!(doc["superseded_deleted"], 1, "{doc}");
    let records = sb.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["state"], "current");
    assert_eq!(
        sb.store_archives(),
        vec![records[0]["archive_id"].as_str().unwrap().to_string()]
    );
}

#[test]
fn retention_after_days_deletes_only_once_the_window_has_passed() {
    let sb = Sandbox::new();
    change_and_back_up(&sb, "after-days 90");
    assert_eq!(
        sb.records().len(),
        2,
        "a fresh superseded archive stays within 90 days"
    );
    assert_eq!(sb.store_archives().len(), 2);

    // Age the superseded archive: uploaded 100 days ago.
    let conn = rusqlite::Connection::open(sb.catalog_db()).unwrap();
    let aged = conn
        .execute(
            "UPDATE archive SET uploaded_at = uploaded_at - 100 * 86400 WHERE state = 'superseded'",
            [],
        )
        .unwrap();
    assert_eq!(aged, 1);
    drop(conn);
    let (code, doc) = sb.backup_json(&["--retention", "after-days 90"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["superseded_deleted"], 1, "{doc}");
    assert_eq!(sb.records().len(), 1);
    assert_eq!(sb.store_archives().len(), 1);
}

#[test]
fn a_second_process_is_refused_by_the_lock() {
    let sb = Sandbox::new();
    sb.write("a.txt", "a");
    let (set_id, state_dir) = sb.adhoc_set();
    let held = firn::lock::SetLock::acquire(&state_dir, &set_id, "backup").expect("take the lock");

    let out = sb.firn(["backup", sb.tree().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("busy") && err.contains(&format!("pid {}", std::process::id())),
        "names the holder: {err}"
    );
    assert!(sb.records().is_empty(), "nothing was backed up");

    drop(held);
    let out = sb.firn(["backup", sb.tree().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn restore_never_overwrites_without_consent_and_skips_identical() {
    let sb = Sandbox::new();
    sb.write("a.txt", "archived");
    assert_eq!(sb.backup_json(&[]).0, Some(0));
    let out_dir = sb.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("a.txt"), "local edit").unwrap();
    let root = sb.tree().display().to_string();
    let to = out_dir.to_str().unwrap();
    let out = sb.firn(["restore", "--root", &root, "--to", to]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("--overwrite"), "{}", stdout(&out));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("a.txt")).unwrap(),
        "local edit"
    );

    let out = sb.firn(["restore", "--root", &root, "--to", to, "--overwrite"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("a.txt")).unwrap(),
        "archived"
    );

    let out = sb.firn(["restore", "--root", &root, "--to", to]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("identical"), "{}", stdout(&out));
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_config_file_names_sets_and_flags_override_it() {
    let sb = Sandbox::new();
    sb.write("keep.txt", "k");
    sb.write("skip.tmp", "s");
    let store = sb.path().join("external/store");
    let catalog = sb.path().join("external/catalog.sqlite");
    sb.write_config_text(&format!(
        "[sets.docs]\nroot = {:?}\nignore_patterns = ['\\.tmp$']\nretention = \"keep\"\nstore = {{ kind = \"local\", path = {:?} }}\ncatalog = {{ kind = \"sqlite\", path = {:?} }}\n",
        sb.tree(),
        store,
        catalog
    ));
    let (code, doc) = sb.firn_json(["backup", "--set", "docs", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["set"], "docs");
    assert_eq!(
        doc["uploaded_files"], 1,
        "the config's ignore pattern applies"
    );
    assert!(
        catalog.exists() && store.join("archives").is_dir(),
        "relocated store and catalog are used"
    );

    let out = sb.firn(["backup", "--set", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no backup set named \"nope\""),
        "{}",
        stderr(&out)
    );

    sb.write_config_text("[sets.docs]\nroot = 42\n");
    let out = sb.firn(["status", "--set", "docs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid config file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dry_run_uploads_nothing() {
    let sb = Sandbox::new();
    sb.write("a.txt", "aaa");
    sb.write("b/c.txt", "cc");
    let (code, doc) = sb.backup_json(&["--dry-run"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["pending_files"], 2);
    assert_eq!(doc["pending_bytes"], 5);
    assert_eq!(doc["uploaded_files"], 0);
    assert!(sb.records().is_empty());
    assert!(sb.store_archives().is_empty());
}

#[test]
fn retrieval_jobs_wait_and_are_reused_not_requested_again() {
    let sb = Sandbox::new();
    sb.write("a.txt", "slow to retrieve");
    sb.write_config("store = { kind = \"local\", retrieval_delay_secs = 2 }\n");
    sb.back_up_set(&[]);
    let out_dir = sb.path().join("out");
    let to = out_dir.to_str().unwrap();
    let out = sb.firn(["restore", "--set", "s", "--to", to, "--no-wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("waiting: a.txt"), "{}", stdout(&out));
    assert!(!out_dir.join("a.txt").exists());
    assert_eq!(sb.job_files(), 1);

    // Waiting (the default) picks up the same job once it is ready.
    let out = sb.firn(["restore", "--set", "s", "--to", to]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("a.txt")).unwrap(),
        "slow to retrieve"
    );
    assert_eq!(sb.job_files(), 1, "the job requested earlier was reused");
}

#[test]
fn the_example_config_is_valid() {
    let sb = Sandbox::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/config.example.toml");
    // Its roots do not exist here: status must fail on the root, not on the file.
    let out = sb.firn(["status", "--config", example, "--set", "vms"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/srv/vm") && stderr(&out).contains("does not exist"),
        "{}",
        stderr(&out)
    );
}
