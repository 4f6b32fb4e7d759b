//! The Amazon backends end to end: the real binary and the real SDK clients talk
//! HTTP to a local AWS-compatible server (fakecloud: Glacier multipart with tree
//! hash, alignment and Content-Range checks; DynamoDB paging Query at 1 MB), with
//! a fault-injecting proxy in between where a test needs one.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::aws::{Action, FaultProxy, RequestInfo, aws_error, create_plain_table, sdk_config};
use common::aws_sandbox::AwsSandbox;
use common::scenarios::{kill_backup_after_parts, kill_once_seen, run_measuring_rss};
use common::{Sandbox, assert_exit, one_line_error, one_line_failure, pattern, stderr, stdout};

const MIB: usize = 1 << 20;

/// A sandbox whose set `s` backs up to the Glacier vault `photos` (with
/// `store_extra` settings) and the DynamoDB table `firn-catalog`, on a stand-in
/// of its own.
fn glacier(store_extra: &str) -> AwsSandbox {
    AwsSandbox::on_standin(
        Sandbox::new(),
        &format!(
            "retention = \"keep\"\nstore = {{ kind = \"glacier\", vault = \"photos\"{store_extra} }}\ncatalog = {{ kind = \"dynamodb\", table = \"firn-catalog\" }}\n"
        ),
    )
}

/// [`glacier`] with one archive per file (`pack_small_files = false`), for
/// tests that count one file's own requests.
fn glacier_one_archive_per_file(store_extra: &str) -> AwsSandbox {
    AwsSandbox::on_standin(
        Sandbox::new(),
        &format!(
            "pack_small_files = false\nretention = \"keep\"\nstore = {{ kind = \"glacier\", vault = \"photos\"{store_extra} }}\ncatalog = {{ kind = \"dynamodb\", table = \"firn-catalog\" }}\n"
        ),
    )
}

/// Restores everything, expedited, and checks every byte.
fn restore_and_compare(a: &AwsSandbox, files: &[(&str, &[u8])]) {
    a.restore_and_compare(files, &["--tier", "expedited"]);
}

#[test]
fn init_creates_the_vault_and_table_and_refuses_a_foreign_table() {
    let a = glacier("");
    let out = a.firn(&["init", "--set", "s"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no confirmation without a terminal: {}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("create Glacier vault \"photos\""),
        "shows the plan: {}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("on-demand"), "{}", stdout(&out));
    a.init();
    let again = a.firn(&["init", "--set", "s", "--yes"]);
    assert!(
        stdout(&again).contains("nothing to create"),
        "{}",
        stdout(&again)
    );

    // A table of the same name with another key schema is refused.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = aws_sdk_dynamodb::Client::new(&sdk_config(a.endpoint()).await);
        create_plain_table(&client, "other", "id").await;
    });
    a.sb.edit_config("firn-catalog", "other");
    let out = a.firn(&["init", "--set", "s", "--yes"]);
    let err = one_line_error(&out);
    assert!(err.contains("another key schema"), "{err}");
}

#[test]
fn small_multipart_and_empty_files_round_trip_through_glacier() {
    // Small files in one pack (the default), and each in an archive of its own.
    for packed in [true, false] {
        small_multipart_and_empty_files_round_trip(packed);
    }
}

fn small_multipart_and_empty_files_round_trip(packed: bool) {
    let store_extra =
        ", single_upload_max = 1048576, part_memory_budget = 8388608, part_concurrency = 2";
    let a = if packed {
        glacier(store_extra)
    } else {
        glacier_one_archive_per_file(store_extra)
    };
    a.init();
    let small = b"small file".to_vec();
    let medium = pattern(3 * MIB + 17, 1);
    let big = pattern(20 * MIB + 5, 2);
    let files: Vec<(&str, &[u8])> = vec![
        ("small.txt", &small),
        ("dir/medium.bin", &medium),
        ("dir/big.bin", &big),
        ("empty", b""),
        ("Cafe\u{301} quote'\" space.txt", b"nfd"),
    ];
    for (name, content) in &files {
        a.sb.write(name, content);
    }
    let proxy = FaultProxy::start(a.endpoint(), |_| Action::Forward);
    let (code, doc) = a.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["uploaded_files"], 5);
    let parts = proxy.count(RequestInfo::is_part_upload);
    assert_eq!(
        parts,
        2 + 6,
        "3 MiB + 17 B in 2 MiB parts, 20 MiB + 5 B in 4 MiB parts"
    );
    let singles = proxy.count(|r| r.method == "POST" && r.path.ends_with("/archives"));
    if packed {
        assert_eq!(
            singles,
            1 + 1,
            "the three small files (the empty one too) in one pack, and the catalog snapshot"
        );
    } else {
        assert_eq!(
            singles,
            3 + 1,
            "only the small files go in one request (the empty one as a 1-byte placeholder), and the catalog snapshot"
        );
    }

    let records = a.records();
    assert_eq!(records.len(), 5);
    // The empty file is a real archive (an inventory knows it), recorded as empty.
    let empty = records.iter().find(|r| r["path"] == "empty").unwrap();
    assert_eq!(empty["size"], 0);
    assert_eq!(
        empty["tree_hash"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_ne!(empty["archive_id"], "firn-empty-archive");
    assert!(records.iter().all(|r| {
        r["target"]
            .as_str()
            .unwrap()
            .starts_with("glacier:us-east-1/photos")
    }));
    restore_and_compare(&a, &files);

    // A second run finds nothing to do.
    let (code, doc) = a.backup_via(a.endpoint());
    assert_eq!(code, Some(0));
    assert_eq!(doc["pending_files"], 0, "{doc}");
}

#[test]
fn a_multi_gib_sparse_file_uploads_within_the_memory_budget() {
    let budget = 32 * MIB;
    let a = glacier(&format!(
        ", part_memory_budget = {budget}, part_concurrency = 2"
    ));
    a.init();
    let path = a.sb.tree().join("disk.img");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(2 << 30).unwrap(); // 2 GiB, sparse
    let mut cmd = a.command(a.endpoint());
    cmd.args(["backup", "--set", "s"]);
    let (status, rss_kib) = run_measuring_rss(cmd);
    assert!(status.success(), "backup failed");
    let rss_mib = rss_kib / 1024;
    eprintln!(
        "peak RSS of firn backup of a 2 GiB file with a {} MiB part budget: {rss_mib} MiB",
        budget / MIB
    );
    // Parts in flight (the budget) + the part being read + the runtime and SDK.
    assert!(
        rss_mib < (budget / MIB) as i64 + 16 + 64,
        "peak RSS {rss_mib} MiB exceeds the budget"
    );
    let records = a.records();
    assert_eq!(records[0]["size"], 2u64 << 30);
    assert_eq!(records[0]["tree_hash"].as_str().unwrap().len(), 64);
}

/// The multipart uploads vault `photos` holds in progress.
async fn uploads_in_progress(
    client: &aws_sdk_glacier::Client,
) -> Vec<aws_sdk_glacier::types::UploadListElement> {
    client
        .list_multipart_uploads()
        .account_id("-")
        .vault_name("photos")
        .send()
        .await
        .unwrap()
        .uploads_list()
        .to_vec()
}

#[test]
fn an_upload_killed_midway_resumes_sending_only_the_missing_parts() {
    let a = glacier(&format!(
        ", part_memory_budget = {}, part_concurrency = 1",
        4 * MIB
    ));
    a.init();
    let content = pattern(24 * MIB, 3);
    a.sb.write("vm.img", &content);
    kill_backup_after_parts(&a, 3, RequestInfo::is_part_upload);

    // What the server holds now.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let held = rt.block_on(async {
        let client = aws_sdk_glacier::Client::new(&sdk_config(a.endpoint()).await);
        let uploads = uploads_in_progress(&client).await;
        let upload = &uploads[0];
        let parts = client
            .list_parts()
            .account_id("-")
            .vault_name("photos")
            .upload_id(upload.multipart_upload_id().unwrap())
            .send()
            .await
            .unwrap();
        parts.parts().len()
    });
    assert!(
        (1..6).contains(&held),
        "some but not all of the 6 parts arrived: {held}"
    );
    assert!(a.records().is_empty(), "nothing recorded by the killed run");

    let second = FaultProxy::start(a.endpoint(), |_| Action::Forward);
    let (code, doc) = a.backup_via(&second.endpoint);
    assert_eq!(code, Some(0), "{doc}");
    let sent = second.count(RequestInfo::is_part_upload);
    assert_eq!(sent, 6 - held, "only the missing parts are sent again");
    restore_and_compare(&a, &[("vm.img", &content)]);
}

#[test]
fn a_tampered_tree_hash_is_rejected_and_nothing_is_recorded() {
    // Small files in one pack (the default), and each in an archive of its own.
    for packed in [true, false] {
        a_tampered_tree_hash_is_rejected(packed);
    }
}

fn a_tampered_tree_hash_is_rejected(packed: bool) {
    let store_extra = ", single_upload_max = 1048576, part_memory_budget = 4194304";
    let a = if packed {
        glacier(store_extra)
    } else {
        glacier_one_archive_per_file(store_extra)
    };
    a.init();
    a.sb.write("small.txt", "small");
    a.sb.write("big.bin", pattern(3 * MIB, 4));
    a.sb.write("empty", "");
    let zeros = "0".repeat(64);
    let proxy = FaultProxy::start(a.endpoint(), move |r: &RequestInfo| {
        let completes = r.method == "POST"
            && (r.path.contains("/multipart-uploads/") || r.path.ends_with("/archives"));
        if completes {
            Action::TamperHeader {
                name: "x-amz-sha256-tree-hash".into(),
                value: zeros.clone(),
            }
        } else {
            Action::Forward
        }
    });
    let (code, doc) = a.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(1), "{doc}");
    let failed = doc["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 3, "{doc}");
    assert!(
        failed
            .iter()
            .all(|f| f["reason"].as_str().unwrap().contains("tree hash")),
        "{doc}"
    );
    assert!(a.records().is_empty(), "nothing recorded");
    // The archives the service stored under a hash firn could not confirm are deleted.
    let deletes = proxy.count(|r| r.method == "DELETE" && r.path.contains("/archives/"));
    if packed {
        assert_eq!(deletes, 2, "the pack of small.txt and empty, and big.bin's");
    } else {
        assert_eq!(deletes, 3, "the empty file's placeholder too");
    }
}

#[test]
fn throttling_server_errors_and_resets_are_retried_and_every_archive_is_right() {
    let a = glacier(
        ", single_upload_max = 1048576, part_memory_budget = 8388608, part_concurrency = 2",
    );
    a.init();
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            (
                format!("f{i}.bin"),
                pattern(if i % 2 == 0 { 100 + i } else { 5 * MIB + i }, i as u8 + 10),
            )
        })
        .collect();
    for (name, content) in &files {
        a.sb.write(name, content);
    }
    let n = Arc::new(AtomicUsize::new(0));
    let proxy = FaultProxy::start(a.endpoint(), move |_r: &RequestInfo| {
        // Three requests in ten fail: an outage, throttling and a dropped connection.
        match n.fetch_add(1, Ordering::SeqCst) % 10 {
            1 => aws_error(503, "ServiceUnavailableException", "injected outage"),
            4 => aws_error(400, "ThrottlingException", "Rate exceeded"),
            7 => Action::Reset,
            _ => Action::Forward,
        }
    });
    let (code, doc) = a.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["uploaded_files"], 6);
    let log = proxy.log();
    for fault in ["respond 503", "respond 400", "reset"] {
        assert!(
            log.iter().any(|(_, what)| what == fault),
            "no {fault} injected"
        );
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    restore_and_compare(&a, &refs);
}

#[test]
fn each_amazon_error_is_one_clear_line_and_writes_nothing() {
    let a = glacier("");
    a.sb.write("a.txt", "a");

    // Vault (and table) missing: points at firn init.
    let out = a.firn(&["backup", "--set", "s"]);
    let err = one_line_error(&out);
    assert!(
        err.contains("Glacier vault \"photos\"") && err.contains("firn init"),
        "{err}"
    );

    a.init();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = aws_sdk_dynamodb::Client::new(&sdk_config(a.endpoint()).await);
        client
            .delete_table()
            .table_name("firn-catalog")
            .send()
            .await
            .unwrap();
    });
    let err = one_line_error(&a.firn(&["backup", "--set", "s"]));
    assert!(
        err.contains("DynamoDB table \"firn-catalog\"") && err.contains("firn init"),
        "{err}"
    );
    a.init();

    for (status, code, expect) in [
        (403, "AccessDeniedException", "access denied"),
        (400, "ExpiredTokenException", "expired"),
        (
            400,
            "UnrecognizedClientException",
            "rejected the credentials",
        ),
        (400, "NoLongerSupportedException", "2025-12-15"),
    ] {
        let proxy = FaultProxy::start(a.endpoint(), move |_| aws_error(status, code, "injected"));
        let err = one_line_error(&a.run(&proxy.endpoint, &["backup", "--set", "s"]));
        assert!(err.contains(expect), "{code}: {err}");
        if code == "NoLongerSupportedException" {
            assert!(
                err.contains("embedded default") && err.contains("S3"),
                "{err}"
            );
        }
    }

    // Unreachable endpoint: nothing listens on port 1. Not a usage error: the
    // store or the network failed (exit 4, "run again later").
    let err = one_line_failure(&a.run("http://127.0.0.1:1", &["backup", "--set", "s"]), 4);
    assert!(err.contains("cannot reach"), "{err}");

    // Unknown region.
    a.sb.edit_config(
        "vault = \"photos\"",
        "vault = \"photos\", region = \"mars-north-1\"",
    );
    let err = one_line_error(&a.firn(&["backup", "--set", "s"]));
    assert!(err.contains("unknown AWS region \"mars-north-1\""), "{err}");

    a.sb.edit_config(", region = \"mars-north-1\"", "");
    assert!(a.records().is_empty(), "nothing was written");
}

#[test]
fn an_interrupted_upload_of_a_file_changed_since_is_aborted_and_restarted() {
    let a = glacier(&format!(
        ", part_memory_budget = {}, part_concurrency = 1",
        4 * MIB
    ));
    a.init();
    a.sb.write("vm.img", pattern(16 * MIB, 5));
    kill_backup_after_parts(&a, 2, RequestInfo::is_part_upload);

    let changed = pattern(16 * MIB, 6);
    a.sb.write("vm.img", &changed);
    let second = FaultProxy::start(a.endpoint(), |_| Action::Forward);
    let (code, doc) = a.backup_via(&second.endpoint);
    assert_eq!(code, Some(0), "{doc}");
    let log = second.log();
    assert!(
        log.iter()
            .any(|(r, _)| r.method == "DELETE" && r.path.contains("/multipart-uploads/")),
        "the stale upload is aborted"
    );
    assert_eq!(
        log.iter().filter(|(r, _)| r.is_part_upload()).count(),
        4,
        "every part of the new content is sent"
    );
    restore_and_compare(&a, &[("vm.img", &changed)]);
}

#[test]
fn abandoned_multipart_uploads_are_found_and_aborted() {
    let a = glacier(", abandoned_after_hours = 0");
    a.init();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client =
        rt.block_on(async { aws_sdk_glacier::Client::new(&sdk_config(a.endpoint()).await) });
    use firn::description::{Description, MAX_LEN, owner_of};
    let initiate = |description: String| {
        rt.block_on(async {
            let out = client
                .initiate_multipart_upload()
                .account_id("-")
                .vault_name("photos")
                .archive_description(description)
                .part_size((1 << 20).to_string())
                .send()
                .await
                .unwrap();
            out.upload_id().unwrap().to_string()
        })
    };
    let lost = |owner: Option<String>| Description {
        owner,
        ..Description::of_file("lost/file.bin", None, 5 << 20, 0, None, "")
    };
    let abandoned = initiate(lost(Some(owner_of("s"))).encode(MAX_LEN));
    // Someone else's upload (not a firn description), another set's sharing the
    // vault, and one that names no set (an older firn's, maybe another set's)
    // are left alone.
    let foreign = initiate("another tool".into());
    let other_set = initiate(lost(Some(owner_of("t"))).encode(MAX_LEN));
    let unnamed = initiate(lost(None).encode(MAX_LEN));
    a.sb.write("a.txt", "a");
    let out = a.firn(&["backup", "--set", "s"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(&format!("aborted: abandoned upload {abandoned}")),
        "{}",
        stdout(&out)
    );
    let left: Vec<String> = rt.block_on(async {
        uploads_in_progress(&client)
            .await
            .iter()
            .filter_map(|u| u.multipart_upload_id().map(str::to_owned))
            .collect()
    });
    let mut expected = vec![foreign, other_set, unnamed];
    let mut left = left;
    expected.sort();
    left.sort();
    assert_eq!(left, expected);
}

/// A vault holding `content` as `name`, backed up (files over 1 MiB multipart).
fn backed_up(name: &str, content: &[u8]) -> AwsSandbox {
    let a = glacier(", single_upload_max = 1048576");
    a.init();
    a.sb.write(name, content);
    let (code, doc) = a.backup_via(a.endpoint());
    assert_eq!(code, Some(0), "{doc}");
    a
}

#[test]
fn a_download_corrupted_in_transit_is_never_renamed_into_place_and_can_be_retried() {
    let content = pattern(3 * MIB + 5, 9);
    let a = backed_up("photo.raw", &content);

    let flips = Arc::new(AtomicUsize::new(0));
    let flips_in = Arc::clone(&flips);
    let proxy = FaultProxy::start(a.endpoint(), move |r: &RequestInfo| {
        if r.is_job_output() && flips_in.fetch_add(1, Ordering::SeqCst) == 0 {
            Action::FlipBodyByte { offset: 1000 }
        } else {
            Action::Forward
        }
    });
    let out_dir = a.sb.path().join("out");
    let to = out_dir.to_str().unwrap();
    let out = a.run(&proxy.endpoint, &["restore", "--set", "s", "--to", to]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("tree hash") && stdout(&out).contains("discarded"),
        "{}",
        stdout(&out)
    );
    assert!(
        !out_dir.join("photo.raw").exists(),
        "never renamed into place"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file left: {leftovers:?}"
    );
    assert_eq!(proxy.count(RequestInfo::is_initiate_job), 1);

    // The retry downloads from the same job.
    let out = a.run(&proxy.endpoint, &["restore", "--set", "s", "--to", to]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(std::fs::read(out_dir.join("photo.raw")).unwrap() == content);
    assert_eq!(
        proxy.count(RequestInfo::is_initiate_job),
        1,
        "no new retrieval job"
    );
}

#[test]
fn a_download_killed_midway_resumes_without_a_new_job() {
    // Two 16 MiB download ranges and a short third.
    let content = pattern(33 * MIB + 17, 4);
    let a = backed_up("vm/disk.img", &content);

    // Hold back every range after the first, so the kill lands mid-download.
    let proxy = FaultProxy::start(a.endpoint(), |r: &RequestInfo| {
        if r.is_job_output() && !r.header("range").is_some_and(|v| v.starts_with("bytes=0-")) {
            std::thread::sleep(Duration::from_secs(3));
        }
        Action::Forward
    });
    let out_dir = a.sb.path().join("out");
    let to = out_dir.to_str().unwrap();
    let child = a
        .command(&proxy.endpoint)
        .args(["restore", "--set", "s", "--to", to])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = kill_once_seen(child, &proxy, 2, RequestInfo::is_job_output, "the download");
    assert_eq!(status.signal(), Some(9));
    assert!(!out_dir.join("vm/disk.img").exists());
    assert_eq!(proxy.count(RequestInfo::is_initiate_job), 1);

    let out = a.run(&proxy.endpoint, &["restore", "--set", "s", "--to", to]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("continued after 16.0 MiB"),
        "{}",
        stdout(&out)
    );
    assert!(std::fs::read(out_dir.join("vm/disk.img")).unwrap() == content);
    assert_eq!(
        proxy.count(RequestInfo::is_initiate_job),
        1,
        "the restart reused the job"
    );
}

#[test]
fn a_restore_of_an_archive_gone_from_the_vault_names_the_archive_not_the_vault() {
    let a = backed_up("gone.txt", b"deleted behind firn's back");
    let archive = a.records()[0]["archive_id"].as_str().unwrap().to_string();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = aws_sdk_glacier::Client::new(&sdk_config(a.endpoint()).await);
        client
            .delete_archive()
            .account_id("-")
            .vault_name("photos")
            .archive_id(&archive)
            .send()
            .await
            .unwrap();
    });
    let to = a.sb.path().join("back");
    let out = a.firn(&[
        "restore",
        "--set",
        "s",
        "gone.txt",
        "--to",
        &to.to_string_lossy(),
        "--tier",
        "expedited",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out) + &stderr(&out);
    assert!(
        text.contains(&format!("has no archive {archive}")) && !text.contains("does not exist"),
        "{text}"
    );
}
