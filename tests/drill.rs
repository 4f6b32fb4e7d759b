//! The restore drill, on every backend: back up an awkward tree, lose the tree, the
//! catalog and the set's local state, rebuild the catalog from the store's
//! inventory alone, restore everything into a new directory, and compare every
//! file's name (raw bytes), content and mtime.

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
                "retention = \"keep\"\nstore = { kind = \"local\", retrieval_delay_secs = 0 }\n",
            ),
            dynamodb: false,
        }
    }

    /// Files over 1 MiB go multipart.
    fn amazon() -> Drill {
        let drill = Drill {
            a: AwsSandbox::on_standin(
                Sandbox::in_memory(),
                "retention = \"keep\"\nstore = { kind = \"glacier\", vault = \"drill\", single_upload_max = 1048576, part_memory_budget = 8388608, part_concurrency = 2 }\ncatalog = { kind = \"dynamodb\", table = \"firn-drill\" }\n",
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
                "retention = \"keep\"\nstore = { kind = \"s3\", bucket = \"drill\", storage_class = \"GLACIER\", force_path_style = true, single_upload_max = 1048576 }\n",
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

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// The tree: NFD names, a name that is not UTF-8, spaces and quotes, a path 22
/// directories deep, two empty files, and files over the multipart threshold
/// (some not a whole number of MiB); each with its own mtime, to the nanosecond.
fn build_tree(sb: &Sandbox, s3_names: bool) -> usize {
    let deep: String = (1..=22).map(|i| format!("level{i:02}/")).collect();
    let mut files: Vec<(Vec<u8>, Vec<u8>)> = vec![
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
    ];
    if s3_names {
        // A newline in a name, and a path over S3's 1,024-byte key limit (its
        // record in the object's metadata still holds it).
        files.push((b"lines/new\nline.txt".to_vec(), b"newline".to_vec()));
        let long: String = (0..33)
            .map(|i| format!("a-rather-long-directory-name-{i:02}/"))
            .collect();
        assert!(long.len() > 1024, "{}", long.len());
        files.push((format!("{long}far.txt").into_bytes(), b"far away".to_vec()));
    }
    for (i, (name, content)) in files.iter().enumerate() {
        let path = sb.write(name, content);
        let when = UNIX_EPOCH
            + Duration::new(
                1_500_000_000 + i as u64 * 86_400,
                (123_456_789 * (i as u32 + 1)) % 1_000_000_000,
            );
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(when))
            .expect("set mtime");
    }
    files.len()
}

fn drill(d: &Drill, multipart_files: u64, s3_names: bool) {
    let count = build_tree(&d.sb, s3_names);
    let before = snapshot(&d.sb.tree());
    assert_eq!(before.len(), count);

    let backup = d.json(&["backup", "--set", "s", "--json"]);
    assert_eq!(backup["uploaded_files"], count as u64, "{backup}");
    // Before anything is lost, the inventory agrees with the catalog (the empty
    // files' placeholders included).
    let check = d.json(&["inventory", "--set", "s", "--json"]);
    assert_eq!(check["problems"], 0, "{check}");
    assert_eq!(check["archive_count"], count as u64, "{check}");

    // Lose the tree, the catalog and the set's local state (fingerprints, jobs).
    std::fs::remove_dir_all(d.sb.tree()).unwrap();
    d.lose_catalog();
    std::fs::remove_dir_all(d.sb.data().join("sets")).unwrap();

    let rebuilt = d.json(&[
        "catalog",
        "rebuild",
        "--from-inventory",
        "--set",
        "s",
        "--json",
    ]);
    assert_eq!(rebuilt["current"], count as u64, "{rebuilt}");
    assert_eq!(rebuilt["files"], count as u64, "{rebuilt}");
    assert_eq!(rebuilt["skipped"].as_array().unwrap().len(), 0, "{rebuilt}");
    assert_eq!(rebuilt["merged"], false);
    // Descriptions written before the content was hashed (Glacier multipart) carry
    // no SHA-1; the tree hash still verifies those files on restore.
    assert_eq!(rebuilt["unknown_sha1"], multipart_files, "{rebuilt}");

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
        count,
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

    // The rebuilt catalog is consistent with the store.
    let check = d.json(&["inventory", "--set", "s", "--json"]);
    assert_eq!(check["problems"], 0, "{check}");
    // The restore verified every file by tree hash and filled in the SHA-1s the
    // descriptions did not carry.
    let listing = d.json(&["ls", "--set", "s", "--all", "--json"]);
    let unknown = "0".repeat(40);
    for record in listing.as_array().unwrap() {
        assert_ne!(record["sha1"], unknown.as_str(), "{record}");
    }
}

#[test]
fn restore_drill_on_the_embedded_default() {
    drill(&Drill::embedded(), 0, false);
}

#[test]
fn restore_drill_on_glacier_and_dynamodb() {
    drill(&Drill::amazon(), 3, false);
}

#[test]
fn restore_drill_on_s3() {
    // S3 multipart objects get their SHA-1 as a tag once whole: none unknown.
    drill(&Drill::s3(), 0, true);
}
