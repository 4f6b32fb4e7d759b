//! The S3 store end to end: the real binary and the real aws-sdk-s3 client talk
//! HTTP to local stand-ins: fakecloud's S3 (the slim stand-in; it verifies every
//! checksum and answers BadDigest) and moto (storage classes whose restores take
//! time, an unrestored object refusing GET), with a fault-injecting proxy in
//! between where a test needs one.

mod common;

use std::time::Duration;

use common::aws::{Action, FakeCloud, FaultProxy, Moto, RequestInfo, s3_error};
use common::aws_sandbox::AwsSandbox;
use common::scenarios::{kill_backup_after_parts, run_measuring_rss};
use common::{Sandbox, one_line_error, pattern, stderr, stdout};

const MIB: usize = 1 << 20;

/// [`s3`] with one archive per file (`pack_small_files = false`), for tests
/// that count or corrupt one file's own object.
fn s3_one_archive_per_file(endpoint: &str, store_extra: &str) -> AwsSandbox {
    AwsSandbox::on(
        Sandbox::new(),
        endpoint,
        &format!(
            "pack_small_files = false\nretention = \"keep\"\nstore = {{ kind = \"s3\", bucket = \"firn-archive\", force_path_style = true{store_extra} }}\n"
        ),
    )
}

/// A sandbox whose set `s` backs up to the S3 bucket `firn-archive` (with
/// `store_extra` settings) on the server at `endpoint`; catalog: SQLite.
fn s3(endpoint: &str, store_extra: &str) -> AwsSandbox {
    AwsSandbox::on(
        Sandbox::new(),
        endpoint,
        &format!(
            "retention = \"keep\"\nstore = {{ kind = \"s3\", bucket = \"firn-archive\", force_path_style = true{store_extra} }}\n"
        ),
    )
}

/// An SDK client on the stand-in, to look at the bucket behind firn's back.
async fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = common::aws::sdk_config(endpoint).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// The storage class S3 reports for every object of the bucket.
fn classes(endpoint: &str) -> Vec<(String, String)> {
    rt().block_on(async {
        let client = s3_client(endpoint).await;
        let listed = client
            .list_objects_v2()
            .bucket("firn-archive")
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for object in listed.contents() {
            let key = object.key().unwrap().to_string();
            let head = client
                .head_object()
                .bucket("firn-archive")
                .key(&key)
                .send()
                .await
                .unwrap();
            let class = head
                .storage_class()
                .map(|c| c.as_str().to_string())
                .unwrap_or_else(|| "STANDARD".into());
            out.push((key, class));
        }
        out
    })
}

#[test]
fn every_class_round_trips_single_and_multipart_files() {
    let small = pattern(3000, 1);
    let multi = pattern(2 * 16 * MIB + 5, 2);
    // Every class with the small files in a pack (the default) and with one
    // archive per file.
    let runs = ["DEEP_ARCHIVE", "GLACIER", "GLACIER_IR", "STANDARD"]
        .into_iter()
        .flat_map(|class| [(class, true), (class, false)]);
    for (class, packed) in runs {
        let cloud = FakeCloud::start();
        let store_extra = format!(", storage_class = \"{class}\", prefix = \"photos\"");
        let s = if packed {
            s3(&cloud.endpoint, &store_extra)
        } else {
            s3_one_archive_per_file(&cloud.endpoint, &store_extra)
        };
        s.init();
        s.sb.write("small.jpg", &small);
        s.sb.write("raw/multi.bin", &multi);
        s.sb.write("empty", b"");
        let proxy = FaultProxy::start(&cloud.endpoint, |_| Action::Forward);
        let (code, doc) = s.backup_via(&proxy.endpoint);
        assert_eq!(code, Some(0), "{class}: {doc}");
        assert_eq!(doc["uploaded_files"], 3, "{class}: {doc}");
        let parts = proxy.count(RequestInfo::is_s3_part_upload);
        let puts = proxy.count(RequestInfo::is_s3_put_object);
        if packed {
            assert_eq!(
                (parts, puts),
                (3, 1 + 1),
                "{class}: 3 parts of 16 MiB, one pack of the small and the empty file, and the catalog snapshot's"
            );
        } else {
            assert_eq!(
                (parts, puts),
                (3, 2 + 1),
                "{class}: 3 parts of 16 MiB, 2 single puts and the catalog snapshot's"
            );
        }
        assert!(
            proxy
                .log()
                .iter()
                .filter(|(r, _)| r.is_s3_put_object() || r.is_s3_part_upload())
                .all(|(r, _)| r.header("x-amz-checksum-crc32c").is_some()),
            "every body carries the checksum S3 verifies"
        );
        // The class is set when each object is created; keys read as the files.
        // The catalog snapshot too: under the prefix, in the class, apart from the files.
        let objects = classes(&cloud.endpoint);
        assert_eq!(
            objects.len(),
            if packed { 2 + 1 } else { 3 + 1 },
            "{objects:?}"
        );
        assert_eq!(
            objects
                .iter()
                .filter(|(k, _)| k.starts_with("photos/.firn-packs/"))
                .count(),
            usize::from(packed),
            "{class}: {objects:?}"
        );
        assert!(
            objects
                .iter()
                .any(|(k, _)| k.starts_with("photos/.firn-catalog-snapshots/")),
            "{objects:?}"
        );
        for (key, got) in &objects {
            assert_eq!(got, class, "{key}");
            assert!(key.starts_with("photos/"), "{key}");
        }
        assert!(
            objects
                .iter()
                .any(|(k, _)| k.starts_with("photos/raw/multi.bin/"))
        );
        s.restore_and_compare(
            &[
                ("small.jpg", &small),
                ("raw/multi.bin", &multi),
                ("empty", b""),
            ],
            &[],
        );
    }
}

#[test]
fn expedited_on_deep_archive_is_refused_before_anything_is_requested() {
    let cloud = FakeCloud::start();
    let s = s3(&cloud.endpoint, "");
    s.init();
    s.sb.write("a.txt", "a");
    assert_eq!(s.backup_via(&cloud.endpoint).0, Some(0));
    let proxy = FaultProxy::start(&cloud.endpoint, |_| Action::Forward);
    let to = s.sb.path().join("out").display().to_string();
    let out = s.run(
        &proxy.endpoint,
        &["restore", "--set", "s", "--tier", "expedited", "--to", &to],
    );
    let err = one_line_error(&out);
    assert!(
        err.contains("expedited") && err.contains("standard or bulk"),
        "names the valid tiers: {err}"
    );
    assert_eq!(
        proxy.count(RequestInfo::is_s3_restore),
        0,
        "nothing requested"
    );
}

#[test]
fn a_body_corrupted_on_the_way_is_refused_by_s3_and_nothing_is_recorded() {
    let cloud = FakeCloud::start();
    let s = s3(&cloud.endpoint, "");
    s.init();
    s.sb.write("photo.jpg", pattern(5000, 3));
    s.sb.write("film.mov", pattern(16 * MIB + 7, 4));
    // One bit flipped in every body on its way: S3 checks each against its CRC32C.
    let proxy = FaultProxy::start(&cloud.endpoint, |r: &RequestInfo| {
        if r.is_s3_put_object() || r.is_s3_part_upload() {
            Action::FlipRequestBodyByte { offset: 100 }
        } else {
            Action::Forward
        }
    });
    let (code, doc) = s.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["uploaded_files"], 0, "{doc}");
    let reasons = doc["failed"].to_string();
    assert!(reasons.contains("corrupted in transit"), "{reasons}");
    assert!(s.records().is_empty(), "nothing recorded");
    assert!(
        classes(&cloud.endpoint).is_empty(),
        "no object left in the bucket"
    );
    // A checksum that does not match the body: S3 refuses it (BadDigest).
    let proxy = FaultProxy::start(&cloud.endpoint, |r: &RequestInfo| {
        if r.is_s3_put_object() || r.is_s3_part_upload() {
            Action::TamperRequestHeader {
                name: "x-amz-checksum-crc32c".into(),
                value: "AAAAAA==".into(),
            }
        } else {
            Action::Forward
        }
    });
    let (code, doc) = s.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(1), "{doc}");
    let reasons = doc["failed"].to_string();
    assert!(reasons.contains("BadDigest"), "{reasons}");
    assert!(s.records().is_empty(), "nothing recorded");
    assert!(classes(&cloud.endpoint).is_empty());
    // Without the damage the same files go up.
    let (code, doc) = s.backup_via(&cloud.endpoint);
    assert_eq!(
        (code, doc["uploaded_files"].clone()),
        (Some(0), 2.into()),
        "{doc}"
    );
}

#[test]
fn a_multipart_upload_killed_midway_resumes_sending_only_the_missing_parts() {
    let cloud = FakeCloud::start();
    let s = s3(&cloud.endpoint, ", part_concurrency = 1");
    s.init();
    let content = pattern(6 * 16 * MIB - 3, 5);
    s.sb.write("vm.img", &content);
    kill_backup_after_parts(&s, 3, RequestInfo::is_s3_part_upload);
    assert!(s.records().is_empty(), "nothing recorded by the killed run");
    let held = rt().block_on(async {
        let client = s3_client(&cloud.endpoint).await;
        let uploads = client
            .list_multipart_uploads()
            .bucket("firn-archive")
            .send()
            .await
            .unwrap();
        let upload = &uploads.uploads()[0];
        client
            .list_parts()
            .bucket("firn-archive")
            .key(upload.key().unwrap())
            .upload_id(upload.upload_id().unwrap())
            .send()
            .await
            .unwrap()
            .parts()
            .len()
    });
    assert!((1..6).contains(&held), "{held} parts held");
    let proxy = FaultProxy::start(&cloud.endpoint, |_| Action::Forward);
    let (code, doc) = s.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(0), "{doc}");
    let sent = proxy.count(RequestInfo::is_s3_part_upload);
    assert_eq!(sent, 6 - held, "only the missing parts are sent again");
    s.restore_and_compare(&[("vm.img", &content)], &[]);
}

#[test]
fn a_flipped_bit_in_a_download_is_caught_by_its_checksum_and_fetched_again() {
    let cloud = FakeCloud::start();
    let s = s3(&cloud.endpoint, ", storage_class = \"GLACIER_IR\"");
    s.init();
    let small = pattern(100_000, 6);
    let big = pattern(2 * 16 * MIB + 11, 7);
    s.sb.write("small.bin", &small);
    s.sb.write("big.bin", &big);
    assert_eq!(s.backup_via(&cloud.endpoint).0, Some(0));
    // The first download of each object arrives with one bit flipped.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let proxy = FaultProxy::start(&cloud.endpoint, move |r: &RequestInfo| {
        let object = r.path.split('?').next().unwrap_or_default().to_string();
        if r.is_s3_get_object() && seen.lock().unwrap().insert(object) {
            Action::FlipBodyByte { offset: 1000 }
        } else {
            Action::Forward
        }
    });
    let to = s.sb.path().join("out");
    let out = s.run(
        &proxy.endpoint,
        &["restore", "--set", "s", "--to", to.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(std::fs::read(to.join("small.bin")).unwrap() == small);
    assert!(std::fs::read(to.join("big.bin")).unwrap() == big);
    let gets = proxy.count(RequestInfo::is_s3_get_object);
    // 1 small (its range of the pack: checked by its own tree hash) + 3 parts,
    // and one fetch again for each damaged object.
    assert_eq!(gets, 4 + 2, "each damaged piece was fetched again");
}

#[test]
fn a_restore_in_progress_is_kept_then_downloaded_and_never_requested_twice() {
    let moto = Moto::start();
    moto.restores_take(4);
    let s = s3(&moto.endpoint, ", checksum = \"md5\"");
    s.init();
    s.sb.write("deep.txt", "from the deep");
    assert_eq!(s.backup_via(&moto.endpoint).0, Some(0));
    let proxy = FaultProxy::start(&moto.endpoint, |_| Action::Forward);
    let to = s.sb.path().join("out");
    let to_arg = to.display().to_string();
    let out = s.run(
        &proxy.endpoint,
        &["restore", "--set", "s", "--to", &to_arg, "--no-wait"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("waiting: deep.txt"),
        "{}",
        stdout(&out)
    );
    assert!(!to.join("deep.txt").exists());
    let jobs = s.run(&proxy.endpoint, &["jobs", "--set", "s", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&jobs.stdout).unwrap();
    assert_eq!(listed[0]["state"], "in-progress", "{listed}");
    std::thread::sleep(Duration::from_secs(5));
    let jobs = s.run(&proxy.endpoint, &["jobs", "--set", "s", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&jobs.stdout).unwrap();
    assert_eq!(listed[0]["state"], "ready", "{listed}");
    let expires = listed[0]["expires_at"].as_i64().unwrap();
    let now = firn::model::now_secs();
    assert!(
        (now + 2 * 86_400..=now + 4 * 86_400).contains(&expires),
        "the restored copy's own expiry ({expires}, now {now})"
    );
    let out = s.run(&proxy.endpoint, &["restore", "--set", "s", "--to", &to_arg]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        std::fs::read_to_string(to.join("deep.txt")).unwrap(),
        "from the deep"
    );
    assert_eq!(
        proxy.count(RequestInfo::is_s3_restore),
        1,
        "one RestoreObject over both runs"
    );
}

#[test]
fn an_object_not_restored_yet_is_reported_as_such_not_as_corruption() {
    let moto = Moto::start();
    moto.restores_take(60);
    let s = s3(
        &moto.endpoint,
        ", checksum = \"md5\", storage_class = \"GLACIER\"",
    );
    s.init();
    s.sb.write("cold.txt", "cold");
    assert_eq!(s.backup_via(&moto.endpoint).0, Some(0));
    // A GET of the archived object is refused with InvalidObjectState.
    let key = s.records()[0]["archive_id"].as_str().unwrap().to_string();
    let refused = rt().block_on(async {
        let client = s3_client(&moto.endpoint).await;
        client
            .get_object()
            .bucket("firn-archive")
            .key(&key)
            .send()
            .await
            .err()
            .and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(str::to_owned))
    });
    assert_eq!(refused.as_deref(), Some("InvalidObjectState"));
    let to = s.sb.path().join("out").display().to_string();
    let out = s.firn(&["restore", "--set", "s", "--to", &to, "--no-wait"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("waiting: cold.txt"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("corrupt"), "{}", stdout(&out));
}

#[test]
fn each_s3_problem_is_one_clear_line_and_writes_nothing() {
    let cloud = FakeCloud::start();
    let s = s3(&cloud.endpoint, "");
    s.sb.write("a.txt", "a");
    // No bucket yet.
    let err = one_line_error(&s.firn(&["backup", "--set", "s"]));
    assert!(
        err.contains("does not exist") && err.contains("firn init"),
        "{err}"
    );
    s.init();
    for (action, expect) in [
        (
            s3_error(403, "AccessDenied", "Access Denied", &[]),
            "access denied",
        ),
        (
            s3_error(
                301,
                "PermanentRedirect",
                "The bucket is in this region: eu-west-1.",
                &[("x-amz-bucket-region", "eu-west-1")],
            ),
            "eu-west-1",
        ),
    ] {
        let proxy = FaultProxy::start(&cloud.endpoint, move |_| action.clone());
        let err = one_line_error(&s.run(&proxy.endpoint, &["backup", "--set", "s"]));
        assert!(err.to_lowercase().contains(expect), "{err}");
    }
    // A server that refuses the checksum headers: the line names the setting.
    let proxy = FaultProxy::start(&cloud.endpoint, |r: &RequestInfo| {
        if r.header("x-amz-checksum-crc32c").is_some() {
            s3_error(
                400,
                "InvalidRequest",
                "x-amz-checksum-crc32c header is not supported",
                &[],
            )
        } else {
            Action::Forward
        }
    });
    let (code, doc) = s.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(1), "{doc}");
    assert!(
        doc["failed"].to_string().contains("checksum = \\\"md5\\\""),
        "{doc}"
    );
    assert!(s.records().is_empty());
    // An unknown storage class in the config.
    let bad = s3(&cloud.endpoint, ", storage_class = \"ONEZONE\"");
    bad.sb.write("a.txt", "a");
    let err = one_line_error(&bad.firn(&["status", "--set", "s"]));
    assert!(
        err.contains("ONEZONE") || err.contains("storage_class"),
        "{err}"
    );
}

#[test]
fn a_2_gib_multipart_upload_stays_within_the_part_budget() {
    let budget = 64 * MIB;
    let cloud = FakeCloud::start();
    let s = s3(
        &cloud.endpoint,
        &format!(", part_memory_budget = {budget}, part_concurrency = 4"),
    );
    s.init();
    let file = std::fs::File::create(s.sb.tree().join("disk.img")).unwrap();
    file.set_len(2 << 30).unwrap(); // 2 GiB, sparse
    let mut cmd = s.command(&cloud.endpoint);
    cmd.args(["backup", "--set", "s"]);
    let (status, rss_kib) = run_measuring_rss(cmd);
    assert!(status.success(), "backup failed");
    let rss_mib = rss_kib / 1024;
    eprintln!(
        "peak RSS of firn backup of a 2 GiB file to S3 with a {} MiB part budget: {rss_mib} MiB",
        budget / MIB
    );
    assert!(
        rss_mib <= (budget / MIB) as i64 + 50,
        "peak RSS {rss_mib} MiB is over the part budget + 50 MB"
    );
    assert_eq!(s.records()[0]["size"], 2u64 << 30);
}
