//! What a backup's requests cost, as `firn cost` tells it: the upload
//! requests (S3's PUT class) the last backup sent, counted by firn where it
//! sends them, against what a proxy in front of the server (moto, S3
//! DEEP_ARCHIVE) saw arrive; and the request part of a full restore, one
//! request per pack or per file archived alone.

mod common;

use std::collections::BTreeSet;

use common::aws::{Action, FaultProxy, Moto, RequestInfo};
use common::aws_sandbox::AwsSandbox;
use common::{Sandbox, last_json, stderr, stdout};

/// DEEP_ARCHIVE's list price of PUT, COPY, POST requests (us-east-1), per 1,000.
const DEEP_ARCHIVE_PUT: f64 = 0.05;
const SMALL: usize = 300;
/// Above S3's single-upload maximum (16 MiB): two 16 MiB parts.
const LARGE: usize = (17 << 20) + 12_345;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// Distinct content for file `i`: 20 to 219 bytes naming it.
fn content(i: usize) -> Vec<u8> {
    let line = format!("small file {i:05} ");
    line.bytes().cycle().take(20 + (i * 37) % 200).collect()
}

/// S3 requests the provider bills in its PUT class: every PUT and POST but
/// RestoreObject (a retrieval) and DeleteObjects (deletions are free).
fn put_class(r: &RequestInfo) -> bool {
    (r.method == "PUT" || r.method == "POST") && !r.is_s3_restore() && !r.path.contains("delete")
}

/// `firn backup` through a proxy that forwards everything: how many PUT-class
/// requests reached the server, how many of them were UploadPart.
fn backup_counted(s: &AwsSandbox, moto: &Moto) -> (usize, usize) {
    let proxy = FaultProxy::start(&moto.endpoint, |_| Action::Forward);
    let out = s.run(&proxy.endpoint, &["backup", "--set", "s", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let seen = proxy.log();
    assert!(
        seen.iter().all(|(_, action)| action == "forward"),
        "{seen:?}"
    );
    (
        proxy.count(put_class),
        proxy.count(RequestInfo::is_s3_part_upload),
    )
}

#[test]
fn firn_cost_shows_what_the_last_backup_sent_and_what_a_full_restore_requests() {
    let moto = Moto::start();
    let s = AwsSandbox::on(
        Sandbox::new(),
        &moto.endpoint,
        "retention = \"keep\"\npack_threshold = \"4 KiB\"\npack_size = \"16 KiB\"\nstore = { kind = \"s3\", bucket = \"firn-archive\", force_path_style = true, storage_class = \"DEEP_ARCHIVE\", checksum = \"md5\" }\n",
    );
    s.init();
    for i in 0..SMALL {
        s.sb.write(format!("d{:02}/f{i:05}.txt", i % 30), content(i));
    }
    // Two files above the pack threshold, each one object of its own, and a
    // large one that goes multipart.
    s.sb.write("mid/a.bin", vec![b'a'; 10_000]);
    s.sb.write("mid/b.bin", vec![b'b'; 20_000]);
    let large: Vec<u8> = (0..LARGE).map(|i| (i * 7 % 251) as u8).collect();
    s.sb.write("large.bin", &large);

    let (sent, parts) = backup_counted(&s, &moto);
    assert_eq!(parts, 2, "the large file in two parts");

    let doc = s.json(&["cost", "--set", "s", "--json"]);
    let price = doc["prices"]["upload_per_1000_requests"].as_f64().unwrap();
    assert!(close(price, DEEP_ARCHIVE_PUT), "{doc}");
    let last = &doc["last_backup"];
    assert_eq!(last["outcome"], "ok", "{doc}");
    let counted = last["requests"]["upload"].as_u64().unwrap();
    // Packs, the two mid files, the large file's create + 2 parts + complete +
    // tags, the catalog snapshot: every one counted, none twice.
    assert_eq!(
        counted, sent as u64,
        "firn counted {counted}, moto received {sent}"
    );
    let charged = last["requests"]["upload_cost"].as_f64().unwrap();
    assert!(
        close(charged, sent as f64 * DEEP_ARCHIVE_PUT / 1000.0),
        "{charged} for {sent} requests"
    );
    assert_eq!(last["requests"]["retrieval"], 0);
    // The run history says the same, in the run's cost.
    let log = s.json(&["log", "--set", "s", "--json"]);
    let run = &log["runs"][0];
    assert_eq!(run["command"], "backup");
    assert_eq!(run["requests"]["upload"], sent as u64);
    assert!(
        close(run["cost_estimate"].as_f64().unwrap(), charged),
        "{run}"
    );

    // A full restore: one request per pack, one per file archived alone.
    let records = s.records();
    let archives: BTreeSet<&str> = records
        .iter()
        .filter(|r| r["size"].as_u64().unwrap() > 0)
        .map(|r| r["archive_id"].as_str().unwrap())
        .collect();
    let packs: BTreeSet<&str> = records
        .iter()
        .filter(|r| !r["pack"].is_null())
        .map(|r| r["archive_id"].as_str().unwrap())
        .collect();
    assert!(
        packs.len() >= 2,
        "300 small files in 16 KiB packs: {packs:?}"
    );
    assert_eq!(archives.len(), packs.len() + 3, "packs + a, b, large");
    let retrieval = doc["retrieval"].as_array().unwrap();
    for (tier, per_1000) in [("standard", 0.10), ("bulk", 0.025)] {
        let estimate = retrieval
            .iter()
            .find(|e| e["tier"] == tier)
            .unwrap_or_else(|| panic!("{tier} in {doc}"));
        assert_eq!(estimate["requests"], archives.len() as u64, "{estimate}");
        let request_cost = estimate["request_cost"].as_f64().unwrap();
        assert!(
            close(request_cost, archives.len() as f64 * per_1000 / 1000.0),
            "{tier}: {estimate}"
        );
        let bytes_cost = estimate["bytes_cost"].as_f64().unwrap();
        assert!(bytes_cost > 0.0, "{estimate}");
        assert!(
            close(
                estimate["cost"].as_f64().unwrap(),
                bytes_cost + request_cost
            ),
            "{estimate}"
        );
    }

    // For people: the same figures in words.
    let text = stdout(&s.ok(&["cost", "--set", "s"]));
    eprintln!("{text}");
    assert!(
        text.contains(&format!("ok): {sent} upload requests ≈ ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("for {} requests)", archives.len())),
        "{text}"
    );

    // A backup with nothing new sends what it sends (its snapshot, if any),
    // and that is what is counted, not the first run's again.
    let (again, _) = backup_counted(&s, &moto);
    let doc = last_json(&s.ok(&["cost", "--set", "s", "--json"]));
    assert_eq!(doc["last_backup"]["requests"]["upload"], again as u64);
    assert!(again < sent, "{again} vs {sent}");
}
