//! The restore drill, on every backend: back up an awkward tree (names no archive
//! description can hold among them) with small files in packs and larger ones
//! in archives of their own, supersede and delete some versions, store some
//! packs after the newest catalog snapshot, lose the tree, the catalog and the
//! set's local state, rebuild the catalog from what the store holds (its newest
//! catalog snapshot, then descriptions and packs' indexes; on the embedded store
//! the snapshot names packs and the members still live, and their indexes give
//! the records back, so a packed file deleted while its pack lives and a packed
//! file's updated mtime come back as they were), restore everything
//! into a new directory, and compare every file's name (raw bytes), content and
//! mtime, and every version the catalog had.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use common::aws::sdk_config;
use common::aws_sandbox::AwsSandbox;
use common::{Sandbox, pattern, stdout};

const MIB: usize = 1 << 20;

/// One backend under test: the sandbox with its set `s` (and the AWS stand-in
/// when the set lives on Glacier + DynamoDB or S3).
struct Drill {
    a: AwsSandbox,
    /// The catalog is a DynamoDB table (else the SQLite file).
    dynamodb: bool,
}

impl std::ops::Deref for Drill {
    type Target = AwsSandbox;
    fn deref(&self) -> &AwsSandbox {
        &self.a
    }
}

impl Drill {
    fn embedded() -> Drill {
        Drill {
            a: AwsSandbox::without_aws(
                Sandbox::in_memory(),
                "retention = \"keep\"\npack_threshold = 1000\nstore = { kind = \"local\", retrieval_delay_secs = 0 }\n",
            ),
            dynamodb: false,
        }
    }

    /// Files over 1 MiB go multipart.
    fn amazon() -> Drill {
        let drill = Drill {
            a: AwsSandbox::on_standin(
                Sandbox::in_memory(),
                "retention = \"keep\"\npack_threshold = 1000\nstore = { kind = \"glacier\", vault = \"drill\", single_upload_max = 1048576, part_memory_budget = 8388608, part_concurrency = 2 }\ncatalog = { kind = \"dynamodb\", table = \"firn-drill\" }\n",
            ),
            dynamodb: true,
        };
        drill.init();
        drill
    }

    /// An S3 bucket (GLACIER, so every tier restores) with the SQLite catalog;
    /// files over 1 MiB go multipart.
    fn s3() -> Drill {
        let drill = Drill {
            a: AwsSandbox::on_standin(
                Sandbox::in_memory(),
                "retention = \"keep\"\npack_threshold = 1000\nstore = { kind = \"s3\", bucket = \"drill\", storage_class = \"GLACIER\", force_path_style = true, single_upload_max = 1048576 }\n",
            ),
            dynamodb: false,
        };
        drill.init();
        drill
    }

    /// The catalog is gone: the SQLite file, or every item of the DynamoDB table
    /// (the table is dropped and `firn init` makes an empty one).
    fn lose_catalog(&self) {
        if self.dynamodb {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let client = aws_sdk_dynamodb::Client::new(&sdk_config(self.endpoint()).await);
                client
                    .delete_table()
                    .table_name("firn-drill")
                    .send()
                    .await
                    .expect("drop the table");
            });
            self.init();
        } else {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.sb.catalog_db().display()));
            }
            assert!(!self.sb.catalog_db().exists());
        }
        let listing = self.ok(&["ls", "--set", "s", "--all", "--json"]);
        assert_eq!(stdout(&listing).trim(), "[]", "the catalog is empty");
    }
}

/// Every regular file under `root`: relative path (raw bytes) → (content, mtime ns).
fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, (Vec<u8>, i64)> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.expect("walk");
        if !entry.file_type().is_file() {
            continue;
        }
        let meta = entry.metadata().expect("stat");
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("under the root")
            .as_os_str()
            .as_bytes()
            .to_vec();
        let content = std::fs::read(entry.path()).expect("read");
        out.insert(
            relative,
            (content, meta.mtime() * 1_000_000_000 + meta.mtime_nsec()),
        );
    }
    out
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// The tree: NFD names, a name that is not UTF-8, a newline, spaces and quotes,
/// a path 22 directories deep, paths over 1,024 bytes (a Glacier description's
/// limit) and over 2 KB (S3 metadata's), two empty files, and files over the
/// multipart threshold (some not a whole number of MiB); each with its own mtime,
/// to the nanosecond.
fn build_tree(sb: &Sandbox) -> usize {
    let deep: String = (1..=22).map(|i| format!("level{i:02}/")).collect();
    let long = |dirs: usize| -> String {
        (0..dirs)
            .map(|i| format!("a-rather-long-directory-name-{i:02}/"))
            .collect()
    };
    let (long, longer) = (
        format!("{}far.txt", long(33)),
        format!("{}farther.txt", long(66)),
    );
    assert!(long.len() > 1024 && long.len() < 2048, "{}", long.len());
    assert!(longer.len() > 2048, "{}", longer.len());
    let files: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"plain.txt".to_vec(), b"plain".to_vec()),
        ("Cafe\u{301}.txt".into(), b"NFD name".to_vec()),
        (
            "photos/Re\u{301}sume\u{301} 2024/pho\u{302}to.jpg".into(),
            pattern(4096, 1),
        ),
        (b"caf\xe9.bin".to_vec(), b"latin-1 name".to_vec()),
        (b"odd/na\xffme \xfe.dat".to_vec(), pattern(100, 2)),
        (
            "with space/it's a \"quoted\" name.txt".into(),
            b"quotes".to_vec(),
        ),
        (
            b"with space/  leading and trailing  ".to_vec(),
            b"spaces".to_vec(),
        ),
        (format!("{deep}deep.txt").into_bytes(), b"deep".to_vec()),
        (b"empty-1".to_vec(), Vec::new()),
        (b"dir/empty-2".to_vec(), Vec::new()),
        (
            b"big/three-mib-and-a-bit.bin".to_vec(),
            pattern(3 * MIB + 17, 3),
        ),
        (b"big/exactly-two-mib.bin".to_vec(), pattern(2 * MIB, 4)),
        (
            b"big/five-mib-plus-one.bin".to_vec(),
            pattern(5 * MIB + 1, 5),
        ),
        (b"lines/new\nline.txt".to_vec(), b"newline".to_vec()),
        (long.into_bytes(), b"far away".to_vec()),
        (longer.into_bytes(), b"farther still".to_vec()),
        (b"doomed.txt".to_vec(), b"deleted before the loss".to_vec()),
    ];
    for (i, (name, content)) in files.iter().enumerate() {
        write_with_mtime(sb, name, content, i as u64);
    }
    files.len()
}

/// Writes `content` at `name` with an mtime of its own (day `day`, odd nanoseconds).
fn write_with_mtime(sb: &Sandbox, name: &[u8], content: &[u8], day: u64) {
    let path = sb.write(name, content);
    let when = UNIX_EPOCH
        + Duration::new(
            1_500_000_000 + day * 86_400,
            ((123_456_789 * (day + 1)) % 1_000_000_000) as u32,
        );
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(when))
        .expect("set mtime");
}

/// Every version the catalog records, every field `firn ls --all --json` shows,
/// sorted by path and archive id.
fn versions(d: &Drill) -> Vec<serde_json::Value> {
    let listing = d.json(&["ls", "--set", "s", "--all", "--json"]);
    let mut out = listing.as_array().expect("a list").clone();
    out.sort_by_key(|r| (r["path"].to_string(), r["archive_id"].to_string()));
    out
}

/// The archive ids of `path`'s versions, in the order `firn ls --all` gives them
/// (oldest first).
fn history(d: &Drill, path: &str) -> Vec<(String, String)> {
    let listing = d.json(&["ls", "--set", "s", "--all", "--json"]);
    listing
        .as_array()
        .expect("a list")
        .iter()
        .filter(|r| r["path"] == path)
        .map(|r| {
            (
                r["archive_id"].as_str().unwrap_or_default().to_string(),
                r["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn drill(d: &Drill) {
    let count = build_tree(&d.sb);
    let backup = d.json(&["backup", "--set", "s", "--json"]);
    assert_eq!(backup["uploaded_files"], count as u64, "{backup}");
    assert!(backup["catalog_snapshot"]["records"].is_u64(), "{backup}");

    // plain.txt gets three more versions (creation dates are whole seconds);
    // one superseded version is deleted, and so is doomed.txt, every version.
    for (n, content) in ["second", "third!", "fourth!!"].iter().enumerate() {
        std::thread::sleep(Duration::from_millis(1100));
        write_with_mtime(&d.sb, b"plain.txt", content.as_bytes(), 400 + n as u64);
        let again = d.json(&["backup", "--set", "s", "--json"]);
        assert_eq!(again["uploaded_files"], 1, "{again}");
    }
    let plain = history(d, "plain.txt");
    assert_eq!(plain.len(), 4, "{plain:?}");
    let doomed = history(d, "doomed.txt");
    d.ok(&["delete", "--set", "s", "--archive", &plain[1].0, "--yes"]);
    d.ok(&[
        "delete",
        "--set",
        "s",
        "doomed.txt",
        "--all-versions",
        "--yes",
    ]);
    std::fs::remove_file(d.sb.tree().join("doomed.txt")).unwrap();
    let plain: Vec<_> = history(d, "plain.txt");
    assert_eq!(plain.len(), 3, "{plain:?}");
    // doomed.txt was a small file: its pack lives on with its other members,
    // and still holds it in its index.
    let doomed_pack = &doomed[0].0;
    assert!(
        versions(d)
            .iter()
            .any(|v| v["archive_id"] == doomed_pack.as_str()),
        "doomed.txt's pack holds other live files"
    );

    // A packed file touched without a change: a backup updates its mtime in
    // the catalog, and its pack's index keeps the old one.
    let touched = "with space/it's a \"quoted\" name.txt";
    let was = versions(d)
        .into_iter()
        .find(|v| v["path"] == touched)
        .expect("the quoted name is recorded");
    assert!(!was["pack"].is_null(), "{was}");
    write_with_mtime(&d.sb, touched.as_bytes(), b"quotes", 300);
    let touch = d.json(&["backup", "--set", "s", "--json"]);
    assert_eq!(touch["uploaded_files"], 0, "{touch}");
    let is = versions(d)
        .into_iter()
        .find(|v| v["path"] == touched)
        .expect("still recorded");
    assert_eq!(is["archive_id"], was["archive_id"]);
    assert_ne!(is["mtime_ns"], was["mtime_ns"], "{touch}");
    // The embedded store reads its packs' indexes at once: its snapshot names
    // each pack instead of repeating its members' records. Remote stores'
    // snapshots hold every record.
    let packs = &touch["catalog_snapshot"]["packs"];
    if d.cloud.is_none() {
        assert!(packs.as_u64().unwrap_or(0) >= 1, "{touch}");
        assert!(
            touch["catalog_snapshot"].get("whole_because").is_none(),
            "{touch}"
        );
    } else {
        assert!(packs.is_null(), "{touch}");
    }
    let catalog_snapshotted = versions(d).len();
    assert_packed_and_not(&versions(d));

    // Packs stored after the newest catalog snapshot: a backup of two new small
    // files and a new version of an empty one is killed once its packs are
    // recorded, before its snapshot is stored. The rebuild reads their indexes.
    std::thread::sleep(Duration::from_millis(1100));
    write_with_mtime(&d.sb, b"late/one.txt", b"stored after the snapshot", 500);
    write_with_mtime(&d.sb, b"late/tw\xf6.txt", b"and its raw name", 501);
    write_with_mtime(&d.sb, b"empty-1", b"no longer empty", 502);
    let killed = killed_after_packs_recorded(d);
    assert!(!killed.status.success(), "{}", stdout(&killed));
    let late = 3;
    let catalog_before = versions(d);
    assert_eq!(catalog_before.len(), catalog_snapshotted + late);
    let refilled = history(d, "empty-1");
    assert_eq!(refilled.len(), 2, "{refilled:?}");
    let before = snapshot(&d.sb.tree());
    let count = count + 2;
    assert_eq!(before.len(), count - 1);

    // Before anything is lost, the inventory agrees with the catalog (the empty
    // files' placeholders included); the snapshots are not orphans.
    let check = d.json(&["inventory", "--set", "s", "--json"]);
    assert_eq!(check["problems"], 0, "{check}");
    assert_eq!(
        check["record_count"],
        catalog_before.len() as u64,
        "{check}"
    );
    assert!(check["snapshots"].as_u64().unwrap_or(0) >= 1, "{check}");

    // Lose the tree, the catalog and the set's local state (fingerprints, jobs).
    std::fs::remove_dir_all(d.sb.tree()).unwrap();
    d.lose_catalog();
    std::fs::remove_dir_all(d.sb.data().join("sets")).unwrap();

    let rebuilt = d.json(&["catalog", "rebuild", "--set", "s", "--json"]);
    let used = &rebuilt["snapshot"];
    assert_eq!(used["records"], catalog_snapshotted as u64, "{rebuilt}");
    assert_eq!(used["imported"], catalog_snapshotted as u64, "{rebuilt}");
    assert_eq!(used["gone"], 0, "{rebuilt}");
    assert_eq!(rebuilt["skipped"].as_array().unwrap().len(), 0, "{rebuilt}");
    assert_eq!(
        rebuilt["current"], late,
        "the late pack's files, from its index: {rebuilt}"
    );
    assert_eq!(rebuilt["merged"], false);
    // Every version as it was, in its order, with its state; the deleted
    // archives are not back.
    assert_eq!(versions(d), catalog_before);
    assert_eq!(history(d, "plain.txt"), plain);
    assert_eq!(history(d, "empty-1"), refilled);
    assert!(history(d, "doomed.txt").is_empty(), "{doomed:?} came back");
    assert!(
        versions(d)
            .iter()
            .any(|v| v["archive_id"] == doomed_pack.as_str()),
        "doomed.txt's pack is back, without it"
    );

    let restored: PathBuf = d.sb.path().join("restored here");
    let out = d.ok(&[
        "restore",
        "--set",
        "s",
        "--to",
        restored.to_str().unwrap(),
        "--tier",
        "expedited",
    ]);
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.starts_with("restored: "))
            .count(),
        count - 1,
        "{}",
        stdout(&out)
    );

    let after = snapshot(&restored);
    let names = |m: &BTreeMap<Vec<u8>, (Vec<u8>, i64)>| -> Vec<String> {
        m.keys().map(|k| show(k)).collect()
    };
    assert_eq!(
        names(&after),
        names(&before),
        "the same names, byte for byte"
    );
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for (name, (content, mtime)) in &before {
        let (got, got_mtime) = &after[name];
        assert!(got == content, "{}: content differs", show(name));
        assert_eq!(got_mtime, mtime, "{}: mtime", show(name));
    }
    // An old version comes back by its archive id too.
    let oldest = d.sb.path().join("oldest");
    d.ok(&[
        "restore",
        "--set",
        "s",
        "--archive",
        &plain[0].0,
        "--to",
        oldest.to_str().unwrap(),
        "--tier",
        "expedited",
    ]);
    assert_eq!(std::fs::read(oldest.join("plain.txt")).unwrap(), b"plain");
    // So does every superseded version (a pack's id restores every version it
    // holds): its bytes and mtime as the catalog listed them before the loss.
    let superseded: Vec<&serde_json::Value> = catalog_before
        .iter()
        .filter(|v| v["state"] == "superseded")
        .collect();
    assert_eq!(superseded.len(), 3, "plain.txt twice, empty-1 once");
    for (n, version) in superseded.iter().enumerate() {
        let to = d.sb.path().join(format!("version-{n}"));
        d.ok(&[
            "restore",
            "--set",
            "s",
            "--archive",
            version["archive_id"].as_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
            "--tier",
            "expedited",
        ]);
        let restored = snapshot(&to);
        let path = version["path"].as_str().unwrap().as_bytes();
        let (content, mtime) = &restored[path];
        let mut hasher = firn::hash::ContentHasher::new();
        hasher.update(content);
        assert_eq!(
            hex_of(&hasher.finish().sha1),
            version["sha1"].as_str().unwrap(),
            "{version}"
        );
        assert_eq!(Some(*mtime), version["mtime_ns"].as_i64(), "{version}");
    }

    // The rebuilt catalog is consistent with the store.
    let check = d.json(&["inventory", "--set", "s", "--json"]);
    assert_eq!(check["problems"], 0, "{check}");
}

/// `firn backup --set s`, killed once its packs are recorded (before the
/// catalog snapshot that would follow).
fn killed_after_packs_recorded(d: &Drill) -> std::process::Output {
    let mut cmd = match d.cloud.as_ref().map(|c| c.endpoint.clone()) {
        Some(endpoint) => d.command(&endpoint),
        None => d.sb.command(),
    };
    cmd.args(["backup", "--set", "s"])
        .env("FIRN_FAULT", "packs-recorded")
        .output()
        .expect("run firn")
}

/// Small files share packs (several paths name one archive); the files over
/// the pack threshold have an archive each.
fn assert_packed_and_not(versions: &[serde_json::Value]) {
    let mut by_archive: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for v in versions {
        by_archive
            .entry(v["archive_id"].as_str().unwrap())
            .or_default()
            .push(v["path"].as_str().unwrap());
    }
    assert!(
        by_archive.values().any(|paths| paths.len() >= 5),
        "a pack of small files: {by_archive:?}"
    );
    for v in versions
        .iter()
        .filter(|v| v["size"].as_u64().unwrap() > 1000)
    {
        assert_eq!(
            by_archive[v["archive_id"].as_str().unwrap()].len(),
            1,
            "{v}: over the threshold, an archive of its own"
        );
    }
}

/// Without snapshots (`--no-snapshot`, or a store written by an older firn), the
/// descriptions and the packs' indexes bring back every file whose path they
/// hold: a pack's index holds every path, however long.
fn drill_from_descriptions(d: &Drill, multipart_files: u64) {
    let count = build_tree(&d.sb);
    d.json(&["backup", "--set", "s", "--json"]);
    let before = versions(d);
    assert_eq!(before.len(), count);
    assert_packed_and_not(&before);
    std::fs::remove_dir_all(d.sb.tree()).unwrap();
    d.lose_catalog();
    std::fs::remove_dir_all(d.sb.data().join("sets")).unwrap();
    let rebuilt = d.json(&[
        "catalog",
        "rebuild",
        "--no-snapshot",
        "--set",
        "s",
        "--json",
    ]);
    assert!(rebuilt.get("snapshot").is_none(), "{rebuilt}");
    assert!(
        rebuilt["snapshots_seen"].as_u64().unwrap_or(0) >= 1,
        "{rebuilt}"
    );
    // Descriptions written before the content was hashed (Glacier multipart) carry
    // no SHA-1; the tree hash still verifies those files on restore.
    assert_eq!(rebuilt["unknown_sha1"], multipart_files, "{rebuilt}");
    // Paths too long for a description are small files here: their pack's
    // index holds them whole.
    assert_eq!(rebuilt["skipped"].as_array().unwrap().len(), 0, "{rebuilt}");
    assert_eq!(rebuilt["current"], count as u64, "{rebuilt}");
    // Every version as it was (but the SHA-1s the store never had).
    let unknown = "0".repeat(40);
    let after = versions(d);
    assert_eq!(after.len(), before.len());
    for (mut was, is) in before.into_iter().zip(after) {
        if is["sha1"] == unknown.as_str() {
            was["sha1"] = is["sha1"].clone();
        }
        // Without a snapshot the upload time is the store's: a multipart
        // object's LastModified is when its upload began, which can be the
        // second before firn recorded it.
        let (recorded, listed) = (
            was["uploaded_at"].as_i64().unwrap(),
            is["uploaded_at"].as_i64().unwrap(),
        );
        assert!(
            (recorded - listed).abs() <= 2,
            "{}: recorded at {recorded}, listed at {listed}",
            is["path"]
        );
        was["uploaded_at"] = is["uploaded_at"].clone();
        assert_eq!(is, was);
    }
}

#[test]
fn restore_drill_on_the_embedded_default() {
    drill(&Drill::embedded());
}

#[test]
fn restore_drill_on_glacier_and_dynamodb() {
    drill(&Drill::amazon());
}

#[test]
fn restore_drill_on_s3() {
    drill(&Drill::s3());
}

#[test]
fn rebuild_without_snapshots_on_the_embedded_default() {
    drill_from_descriptions(&Drill::embedded(), 0);
}

#[test]
fn rebuild_without_snapshots_on_glacier_and_dynamodb() {
    // Glacier multipart uploads (the three files over 1 MiB) are described
    // before they are hashed.
    drill_from_descriptions(&Drill::amazon(), 3);
}

#[test]
fn rebuild_without_snapshots_on_s3() {
    // S3 multipart objects get their SHA-1 as a tag once whole: none unknown.
    drill_from_descriptions(&Drill::s3(), 0);
}
