//! Restoring packed small files from S3 DEEP_ARCHIVE (moto, restores that take
//! time): one RestoreObject per pack however many of its files are asked for,
//! the plan (`restore --dry-run`) saying so before anything is paid, and every
//! byte back, verified.

mod common;

use std::collections::BTreeSet;

use common::aws::{Action, FaultProxy, Moto, RequestInfo};
use common::aws_sandbox::AwsSandbox;
use common::{Sandbox, stderr, stdout};

/// A sandbox whose set `s` backs up to the DEEP_ARCHIVE bucket `firn-archive`
/// on moto (catalog: SQLite; moto sends MD5 checksums, not CRC32C), with
/// `extra` set lines.
fn deep_archive(moto: &Moto, extra: &str) -> AwsSandbox {
    let s = AwsSandbox::on(
        Sandbox::new(),
        &moto.endpoint,
        &format!(
            "retention = \"keep\"\nstore = {{ kind = \"s3\", bucket = \"firn-archive\", force_path_style = true, storage_class = \"DEEP_ARCHIVE\", checksum = \"md5\" }}\n{extra}"
        ),
    );
    s.init();
    s
}

/// Distinct content for file `i`: 20 to 219 bytes naming it.
fn content(i: usize) -> Vec<u8> {
    let line = format!("small file {i:05} ");
    line.bytes().cycle().take(20 + (i * 37) % 200).collect()
}

fn name(i: usize) -> String {
    format!("d{:02}/f{i:05}.txt", i % 50)
}

/// The objects of the bucket whose key holds `part` (the packs are under
/// `<prefix>.firn-packs/`), read with the SDK behind firn's back.
fn objects_with(endpoint: &str, part: &str) -> Vec<String> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let config = common::aws::sdk_config(endpoint).await;
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let mut keys = Vec::new();
        let mut pages = client
            .list_objects_v2()
            .bucket("firn-archive")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for object in page.unwrap().contents() {
                let key = object.key().unwrap_or_default();
                if key.contains(part) {
                    keys.push(key.to_string());
                }
            }
        }
        keys
    })
}

/// The distinct archives (packs) the catalog records `keys` in.
fn archives_of(s: &AwsSandbox, keys: &[String]) -> BTreeSet<String> {
    s.records()
        .iter()
        .filter(|r| keys.iter().any(|k| r["path"] == k.as_str()))
        .map(|r| r["archive_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn restoring_one_small_file_from_a_deep_archive_pack_sends_one_restore_object() {
    let moto = Moto::start();
    moto.restores_take(3);
    let s = deep_archive(&moto, "");
    let files = 40;
    for i in 0..files {
        s.sb.write(name(i), content(i));
    }
    assert_eq!(s.backup_via(&moto.endpoint).0, Some(0));
    let all: Vec<String> = (0..files).map(name).collect();
    let packs = archives_of(&s, &all);
    assert_eq!(packs.len(), 1, "40 small files in one pack: {packs:?}");
    assert_eq!(objects_with(&moto.endpoint, ".firn-packs/").len(), 1);

    let proxy = FaultProxy::start(&moto.endpoint, |_| Action::Forward);
    let to = s.sb.path().join("out");
    let to_arg = to.display().to_string();
    let wanted = name(7);

    // The plan first: one pack of one packed file, nothing requested.
    let out = s.run(
        &proxy.endpoint,
        &[
            "restore",
            "--set",
            "s",
            &wanted,
            "--to",
            &to_arg,
            "--dry-run",
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let plan = stdout(&out);
    eprintln!("{plan}");
    assert!(
        plan.contains("retrieving 1 file")
            && plan.contains("1 pack of 1 packed file")
            && plan.contains("1 retrieval"),
        "{plan}"
    );
    for tier in ["standard", "bulk"] {
        assert!(plan.contains(tier), "{tier} in {plan}");
    }
    assert!(plan.contains("dry run: nothing requested"), "{plan}");
    assert_eq!(proxy.count(RequestInfo::is_s3_restore), 0);
    assert!(!to.exists(), "a dry run writes nothing");

    let out = s.run(
        &proxy.endpoint,
        &["restore", "--set", "s", &wanted, "--to", &to_arg],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(std::fs::read(to.join(&wanted)).unwrap(), content(7));
    assert_eq!(
        proxy.count(RequestInfo::is_s3_restore),
        1,
        "one RestoreObject for one small file"
    );
    // Only the file asked for is written, though its whole pack was restored.
    let written = walkdir::WalkDir::new(&to)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count();
    assert_eq!(written, 1);
}

#[test]
fn restoring_5000_small_files_sends_one_restore_object_per_pack() {
    let moto = Moto::start();
    moto.restores_take(2);
    // Small packs: the 5,000 files (about 600 KB) fill several.
    let s = deep_archive(
        &moto,
        "pack_threshold = \"4 KiB\"\npack_size = \"64 KiB\"\n",
    );
    let files = 5000;
    for i in 0..files {
        s.sb.write(name(i), content(i));
    }
    let (code, summary) = s.backup_via(&moto.endpoint);
    let text = summary.to_string();
    assert_eq!(code, Some(0), "{}", &text[..text.len().min(2000)]);
    let all: Vec<String> = (0..files).map(name).collect();
    let packs = archives_of(&s, &all);
    let stored = objects_with(&moto.endpoint, ".firn-packs/");
    assert!(packs.len() >= 5, "several packs: {}", packs.len());
    assert_eq!(stored.len(), packs.len(), "{stored:?}");

    let proxy = FaultProxy::start(&moto.endpoint, |_| Action::Forward);
    let to = s.sb.path().join("out");
    let to_arg = to.display().to_string();
    let out = s.run(
        &proxy.endpoint,
        &["restore", "--set", "s", "--to", &to_arg, "--dry-run"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let plan = stdout(&out);
    let expected = format!("{} packs of 5,000 packed files", packs.len());
    assert!(plan.contains(&expected), "{expected} in {plan}");
    assert_eq!(proxy.count(RequestInfo::is_s3_restore), 0);

    let out = s.run(&proxy.endpoint, &["restore", "--set", "s", "--to", &to_arg]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        proxy.count(RequestInfo::is_s3_restore),
        packs.len(),
        "one RestoreObject per pack"
    );
    for i in 0..files {
        assert_eq!(
            std::fs::read(to.join(name(i))).unwrap(),
            content(i),
            "{}",
            name(i)
        );
    }
}

/// A pack closes at 4,096 files however small they are (what bounds the memory
/// its files' records take): 5,000 tiny files on the embedded store make two
/// packs, each file restorable byte for byte.
#[test]
fn a_pack_closes_at_4096_files_whatever_its_size() {
    let sb = Sandbox::new();
    for i in 0..5_000 {
        sb.write(name(i), content(i));
    }
    let root = sb.tree().display().to_string();
    let (code, doc) = sb.firn_json(["backup", root.as_str(), "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    let records = sb.records();
    assert_eq!(records.len(), 5_000);
    let mut members: std::collections::BTreeMap<String, usize> = Default::default();
    for record in &records {
        assert!(
            !record["pack"].is_null(),
            "every tiny file is packed: {record}"
        );
        *members
            .entry(record["archive_id"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let counts: Vec<usize> = members.values().copied().collect();
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts.contains(&firn_pack_files_max()), "{counts:?}");
    assert_eq!(sb.store_archives().len(), 2);
    let to = sb.path().join("back");
    let out = sb.firn([
        "restore",
        "--root",
        root.as_str(),
        "--to",
        to.to_str().unwrap_or_default(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for i in (0..5_000).step_by(97) {
        assert_eq!(
            std::fs::read(to.join(name(i))).unwrap(),
            content(i),
            "{}",
            name(i)
        );
    }
}

/// The cap as the library states it.
fn firn_pack_files_max() -> usize {
    firn::engine::PACK_FILES_MAX
}
