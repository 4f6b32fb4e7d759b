//! `firn migrate` end to end: the real binary moves a set between stores —
//! a Glacier vault (fakecloud, multipart with tree-hash checks) into an S3
//! bucket, the embedded store into S3, and one directory into another — killed
//! at its crash points and run again, with every retrieval request counted.

mod common;

use std::process::Output;

use common::aws::{Action, FakeCloud, FaultProxy, Moto, RequestInfo};
use common::aws_sandbox::AwsSandbox;
use common::{Sandbox, assert_exit, last_json, one_line_error, pattern, stderr, stdout};

const MIB: usize = 1 << 20;

/// The records of `path`, oldest first.
fn versions_of<'a>(records: &'a [serde_json::Value], path: &str) -> Vec<&'a serde_json::Value> {
    let mut found: Vec<_> = records.iter().filter(|r| r["path"] == path).collect();
    found.sort_by_key(|r| r["uploaded_at"].as_i64());
    found
}

/// The fields a copy shares with its original.
fn content_of(record: &serde_json::Value) -> (String, u64, i64, String, String) {
    (
        record["path"].as_str().unwrap_or_default().to_string(),
        record["size"].as_u64().unwrap_or(u64::MAX),
        record["mtime_ns"].as_i64().unwrap_or(-1),
        record["sha1"].as_str().unwrap_or_default().to_string(),
        record["tree_hash"].as_str().unwrap_or_default().to_string(),
    )
}

fn expect_crash(out: &Output, point: &str) {
    assert!(
        !out.status.success() && stderr(out).contains(&format!("injected crash at {point}")),
        "expected a crash at {point}: {}{}",
        stdout(out),
        stderr(out)
    );
}

/// The plan `firn migrate --all-versions --dry-run` prints.
fn dry_run_of_all_versions(a: &AwsSandbox) -> serde_json::Value {
    a.json(&[
        "migrate",
        "--set",
        "s",
        "--all-versions",
        "--dry-run",
        "--json",
    ])
}

/// A run with a crash point set either crashed there or had nothing left that
/// reaches it and finished cleanly.
fn crash_or_done(out: &Output, point: &str) {
    if !out.status.success() {
        expect_crash(out, point);
    }
}

#[test]
fn a_vault_moves_into_an_s3_bucket_through_kills_and_no_retrieval_is_requested_twice() {
    let a = AwsSandbox::on_standin(
        Sandbox::new(),
        "retention = \"keep\"\nstore = { kind = \"glacier\", vault = \"photos\", single_upload_max = 1048576, part_memory_budget = 8388608, part_concurrency = 2 }\ncatalog = { kind = \"dynamodb\", table = \"firn-catalog\" }\n",
    );
    a.init();
    let small = b"small file, first version".to_vec();
    let doc_v1 = b"document, version one".to_vec();
    let doc_v2 = b"document, version two: longer".to_vec();
    let big = pattern(3 * MIB + 17, 3);
    a.sb.write("small.txt", &small);
    a.sb.write("docs/doc.txt", &doc_v1);
    a.sb.write("big.bin", &big);
    a.ok(&["backup", "--set", "s"]);
    a.sb.write("docs/doc.txt", &doc_v2);
    a.ok(&["backup", "--set", "s"]);
    let in_vault = a.records();
    assert_eq!(in_vault.len(), 4, "3 current versions and 1 superseded");
    // Only doc.txt is as archived: big.bin is gone, small.txt changed since.
    std::fs::remove_file(a.sb.tree().join("big.bin")).unwrap();
    a.sb.write("small.txt", b"small file, changed after the backup");

    // The set moves to S3; the vault becomes its previous store.
    a.sb.edit_config(
        "store = { kind = \"glacier\"",
        "store = { kind = \"s3\", bucket = \"firn-moved\", force_path_style = true }\nprevious_store = { kind = \"glacier\"",
    );
    a.init();
    let status = a.firn(&["status", "--set", "s"]);
    assert!(
        stdout(&status).contains("0 of 3 archived files"),
        "status before: {}",
        stdout(&status)
    );

    // The archives those three versions are in: small files share packs, and
    // a pack is retrieved once however many of its files are copied.
    let archives_to_retrieve = {
        let mut ids: Vec<&str> = in_vault
            .iter()
            .filter(|r| r["path"] != "docs/doc.txt" || r["state"] != "current")
            .map(|r| r["archive_id"].as_str().unwrap())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    assert_eq!(
        archives_to_retrieve, 2,
        "small.txt and the first doc.txt in one pack, big.bin alone: {in_vault:#?}"
    );
    let vault_archives = {
        let mut ids: Vec<&str> = in_vault
            .iter()
            .map(|r| r["archive_id"].as_str().unwrap())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };

    // The dry run: one copy from the local file, three retrievals from two
    // archives, a cost per tier.
    let plan = dry_run_of_all_versions(&a);
    assert_eq!(plan["plan"]["from_local"]["files"], 1, "{plan}");
    assert_eq!(plan["plan"]["retrievals"]["files"], 3, "{plan}");
    assert_eq!(
        plan["plan"]["retrieval_requests"], archives_to_retrieve as u64,
        "{plan}"
    );
    assert_eq!(
        plan["plan"]["retrievals"]["bytes"],
        (small.len() + doc_v1.len() + big.len()) as u64
    );
    let quotes = plan["plan"]["quotes"].as_array().unwrap();
    assert_eq!(quotes.len(), 3, "Glacier offers three tiers: {plan}");
    assert!(quotes.iter().all(|q| q["cost"].as_f64().unwrap() > 0.0));

    let proxy = FaultProxy::start(a.endpoint(), |_| Action::Forward);
    let migrate = |fault: Option<&str>| {
        let mut cmd = a.command(&proxy.endpoint);
        cmd.args(["migrate", "--set", "s", "--all-versions", "--json"]);
        if let Some(point) = fault {
            cmd.env("FIRN_FAULT", point);
        }
        cmd.output().expect("run firn migrate")
    };
    // Paid retrievals need a yes: without a terminal, nothing is requested.
    let refused = migrate(None);
    assert_exit(&refused, 2);
    assert!(
        one_line_error(&refused).contains("--yes"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(proxy.count(RequestInfo::is_initiate_job), 0);

    let migrate = |fault: Option<&str>| {
        let mut cmd = a.command(&proxy.endpoint);
        cmd.args(["migrate", "--set", "s", "--all-versions", "--yes", "--json"]);
        if let Some(point) = fault {
            cmd.env("FIRN_FAULT", point);
        }
        cmd.output().expect("run firn migrate")
    };
    // Killed while recording the copy of the local file (stored, journaled).
    expect_crash(&migrate(Some("batch-journaled")), "batch-journaled");
    assert_eq!(proxy.count(RequestInfo::is_initiate_job), 0);
    // Killed once the first retrieved copy is in the bucket, before its id is
    // journaled: the next run finds it by its description instead of copying again.
    expect_crash(&migrate(Some("migrate-stored")), "migrate-stored");
    assert_eq!(
        proxy.count(RequestInfo::is_initiate_job),
        archives_to_retrieve
    );
    // Killed once a retrieved copy is stored and journaled, not recorded (when
    // the concurrent copies of the run before were all stored, this run only
    // records them and has nothing left to kill).
    crash_or_done(&migrate(Some("migrate-journaled")), "migrate-journaled");
    assert_eq!(
        proxy.count(RequestInfo::is_initiate_job),
        archives_to_retrieve
    );
    // Killed right after taking up the jobs: none is requested again.
    crash_or_done(&migrate(Some("migrate-requested")), "migrate-requested");
    assert_eq!(
        proxy.count(RequestInfo::is_initiate_job),
        archives_to_retrieve
    );
    let done = migrate(None);
    assert!(done.status.success(), "{}{}", stdout(&done), stderr(&done));
    // How much is left for the last run depends on which concurrent copies the
    // kills caught; whatever it was, nothing is requested again and nothing fails.
    let doc = last_json(&done);
    assert_eq!(
        doc["report"]["jobs_requested"].as_u64().unwrap_or(0),
        0,
        "{doc}"
    );
    assert_eq!(
        doc["report"]["failed"].as_array().map_or(0, Vec::len),
        0,
        "{doc}"
    );
    assert_eq!(
        proxy.count(RequestInfo::is_initiate_job),
        archives_to_retrieve,
        "one retrieval per archive (a pack once), over five runs"
    );
    assert_eq!(proxy.count(RequestInfo::is_s3_restore), 0);

    // The catalog: each vault record has a copy in the bucket with the same
    // content, the current ones current there, the history kept.
    let records = a.records();
    assert_eq!(
        records.len(),
        8,
        "every version in both stores: {records:#?}"
    );
    let s3_target = records
        .iter()
        .find(|r| r["target"].as_str().unwrap().starts_with("s3:"))
        .map(|r| r["target"].as_str().unwrap().to_string())
        .expect("copies in the bucket");
    for original in &in_vault {
        let copy = records
            .iter()
            .find(|r| r["target"] == s3_target.as_str() && content_of(r) == content_of(original))
            .unwrap_or_else(|| panic!("no copy of {original}"));
        assert_eq!(copy["state"], original["state"], "{copy}");
        let now = records
            .iter()
            .find(|r| r["archive_id"] == original["archive_id"])
            .unwrap();
        assert_eq!(now["state"], "superseded", "the vault's archive is kept");
    }
    let doc_versions = versions_of(&records, "docs/doc.txt");
    assert_eq!(doc_versions.len(), 4);
    assert!(
        records
            .iter()
            .filter(|r| r["state"] == "current")
            .all(|r| r["target"] == s3_target.as_str())
    );

    // The bytes: the current versions restored from the bucket, and the old one.
    a.restore_and_compare(
        &[
            ("small.txt", &small),
            ("docs/doc.txt", &doc_v2),
            ("big.bin", &big),
        ],
        &["--overwrite"],
    );
    let old_copy = records
        .iter()
        .find(|r| r["target"] == s3_target.as_str() && r["size"] == doc_v1.len() as u64)
        .unwrap();
    let to = a.sb.path().join("old-version");
    let out = a.firn(&[
        "restore",
        "--set",
        "s",
        "--archive",
        old_copy["archive_id"].as_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(std::fs::read(to.join("docs/doc.txt")).unwrap(), doc_v1);

    // Nothing left to do, nothing stray in the bucket, status says all moved.
    let again = dry_run_of_all_versions(&a);
    assert_eq!(again["plan"]["from_local"]["files"], 0, "{again}");
    assert_eq!(again["plan"]["retrievals"]["files"], 0, "{again}");
    assert_eq!(again["plan"]["already_copied"]["files"], 4, "{again}");
    let status = a.json(&["status", "--set", "s", "--json"]);
    assert_eq!(status["summary"]["archived_here"]["files"], 3, "{status}");
    assert_eq!(status["summary"]["archived_elsewhere"]["files"], 0);
    let inventory = a.json(&["inventory", "--set", "s", "--json"]);
    assert_eq!(
        inventory["orphans"].as_array().map(Vec::len),
        Some(0),
        "{inventory}"
    );

    // Later, the vault's archives go, with Glacier's early-deletion charges shown.
    let vault = "glacier:us-east-1/photos";
    let plan = a.json(&[
        "delete",
        "--set",
        "s",
        "--store",
        vault,
        "--dry-run",
        "--json",
    ]);
    assert_eq!(plan["total_archives"], 4, "{plan}");
    assert!(plan["total_early_deletion_charge"].as_f64().unwrap() > 0.0);
    let before = proxy.count(|r| r.method == "DELETE");
    let out = a
        .command(&proxy.endpoint)
        .args(["delete", "--set", "s", "--store", vault, "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        proxy.count(|r| r.method == "DELETE" && r.path.contains("/vaults/photos/archives/")),
        vault_archives,
        "{before} deletions before"
    );
    let records = a.records();
    assert_eq!(records.len(), 4, "only the bucket's copies are left");
    assert!(records.iter().all(|r| r["target"] == s3_target.as_str()));
    a.restore_and_compare(&[("docs/doc.txt", &doc_v2)], &["--overwrite"]);
}

#[test]
fn an_unchanged_tree_moves_from_the_embedded_store_into_s3_without_a_single_retrieval() {
    let cloud = FakeCloud::start();
    let sb = Sandbox::new();
    let store = sb.store_dir();
    let a = AwsSandbox::on(sb, &cloud.endpoint, "retention = \"keep\"\n");
    let mut files = Vec::new();
    for i in 0..40 {
        let content = pattern(100 + i * 997, i as u8);
        a.sb.write(format!("d{}/f{i}.bin", i % 4), &content);
        files.push((format!("d{}/f{i}.bin", i % 4), content));
    }
    a.sb.write("large.bin", pattern(2 * MIB + 5, 9));
    a.sb.write("empty", b"");
    a.ok(&["backup", "--set", "s"]);
    a.sb.write_config(&format!(
        "retention = \"keep\"\nstore = {{ kind = \"s3\", bucket = \"from-disk\", force_path_style = true }}\nprevious_store = {{ kind = \"local\", path = {:?} }}\n",
        store
    ));
    a.init();
    let proxy = FaultProxy::start(a.endpoint(), |_| Action::Forward);
    let out = a
        .command(&proxy.endpoint)
        .args(["migrate", "--set", "s", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let doc = last_json(&out);
    assert_eq!(doc["report"]["from_local"]["files"], 42, "{doc}");
    assert_eq!(doc["report"]["retrieved"]["files"], 0, "{doc}");
    assert_eq!(doc["report"]["jobs_requested"], 0, "{doc}");
    assert_eq!(a.sb.job_files(), 0, "no retrieval job in the old store");
    // The copies went through the backup's uploads: the small files into a
    // pack, so far fewer objects than files, each of them sent.
    let in_bucket = {
        let mut ids: Vec<String> = a
            .records()
            .iter()
            .filter(|r| r["target"].as_str().unwrap_or_default().starts_with("s3:"))
            .map(|r| r["archive_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    assert!(
        (2..=3).contains(&in_bucket),
        "the 40 small files in one pack, large.bin alone: {in_bucket} objects"
    );
    assert!(proxy.count(|r| r.method == "PUT") >= in_bucket);
    let status = a.json(&["status", "--set", "s", "--json"]);
    assert_eq!(status["summary"]["up_to_date"]["files"], 42, "{status}");
    assert_eq!(status["summary"]["archived_elsewhere"]["files"], 0);
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(name, content)| (name.as_str(), content.as_slice()))
        .collect();
    std::fs::remove_dir_all(&store).unwrap();
    a.restore_and_compare(&refs, &[]);
}

#[test]
fn one_directory_moves_to_another_and_bad_sources_are_one_clear_line() {
    let sb = Sandbox::new();
    let old = sb.path().join("old-disk");
    let new = sb.path().join("new-disk");
    sb.write_config(&format!(
        "retention = \"keep\"\nstore = {{ kind = \"local\", path = {old:?} }}\n"
    ));
    for i in 0..300 {
        sb.write(format!("many/{i:03}.txt"), format!("file number {i}"));
    }
    sb.write("kept.txt", "first");
    let stamp = sb.write("same-stamp.txt", "original bytes");
    let ok = |args: &[&str]| {
        let out = sb.firn(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        out
    };
    ok(&["backup", "--set", "s"]);
    sb.write("kept.txt", "second");
    ok(&["backup", "--set", "s"]);
    // Other bytes behind the archived size and mtime: the upload from the file
    // is refused by its hashes and the archive itself is copied.
    let mtime = std::fs::metadata(&stamp).unwrap().modified().unwrap();
    std::fs::write(&stamp, "replaced bytes").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stamp)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    sb.write_config(&format!(
        "retention = \"keep\"\nstore = {{ kind = \"local\", path = {new:?} }}\n"
    ));
    let old_archives = files_under(&old.join("archives"));
    // Every archive the catalog names is a file of the old disk; the small
    // files share packs, so there are far fewer archives than files.
    let (_, before) = sb.firn_json(["ls", "--set", "s", "--all", "--json"]);
    let mut named: Vec<&str> = before
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter_map(|r| r["archive_id"].as_str())
                .collect()
        })
        .unwrap_or_default();
    named.sort_unstable();
    named.dedup();
    for id in &named {
        assert!(
            old.join("archives").join(&id[..2]).join(id).is_file(),
            "archive {id} on the old disk"
        );
    }
    assert!(
        (1..303).contains(&named.len()),
        "303 versions in {} archives",
        named.len()
    );

    // No previous store named, a source that is no store, the store in use.
    let out = sb.firn(["migrate", "--set", "s"]);
    assert_exit(&out, 2);
    assert!(
        one_line_error(&out).contains("previous_store"),
        "{}",
        stderr(&out)
    );
    let out = sb.firn(["migrate", "--set", "s", "--from", "tape:drive0"]);
    assert_exit(&out, 2);
    assert!(
        one_line_error(&out).contains("local:/DIR"),
        "{}",
        stderr(&out)
    );
    let typo = sb.path().join("no-such-disk");
    let typo_target = format!("local:{}", typo.display());
    let out = sb.firn(["migrate", "--set", "s", "--from", &typo_target]);
    assert_exit(&out, 2);
    assert!(
        one_line_error(&out).contains("holds no embedded store"),
        "{}",
        stderr(&out)
    );
    let out = sb.firn(["delete", "--set", "s", "--store", &typo_target, "--yes"]);
    assert_exit(&out, 2);
    assert!(!typo.exists(), "a mistyped store is not created");
    let out = sb.firn(["migrate", "--set", "s", "--from", new.to_str().unwrap()]);
    assert_exit(&out, 2);
    assert!(
        one_line_error(&out).contains("uses already"),
        "{}",
        stderr(&out)
    );

    // Killed in the middle of the group commit; the rerun finishes the job.
    let from = format!("local:{}", old.display());
    let out = sb
        .command()
        .args(["migrate", "--set", "s", "--from", &from, "--all-versions"])
        .env("FIRN_FAULT", "batch-recorded")
        .output()
        .unwrap();
    expect_crash(&out, "batch-recorded");
    let half = sb.firn(["status", "--set", "s"]);
    assert!(
        stdout(&half).contains("only in another store"),
        "half done: {}",
        stdout(&half)
    );
    let out = ok(&["migrate", "--set", "s", "--from", &from, "--all-versions"]);
    assert!(
        stdout(&out).contains("nothing was deleted from"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("2 retrieved"),
        "kept.txt's first version and same-stamp.txt come from the old store: {}",
        stdout(&out)
    );
    let (_, status) = sb.firn_json(["status", "--set", "s", "--json"]);
    assert_eq!(status["summary"]["up_to_date"]["files"], 301, "{status}");
    assert_eq!(status["summary"]["changed"]["files"], 1, "{status}");
    assert_eq!(status["summary"]["archived_elsewhere"]["files"], 0);
    let (_, records) = sb.firn_json(["ls", "--set", "s", "--all", "--json"]);
    let records = records.as_array().cloned().unwrap_or_default();
    let kept = versions_of(&records, "kept.txt");
    assert_eq!(kept.len(), 4, "two versions, each in both stores");
    let new_target = format!("local:{}", new.display());
    assert_eq!(
        kept.iter()
            .filter(|r| r["target"] == new_target.as_str())
            .count(),
        2
    );
    // Both versions may carry the same upload second: told apart by store.
    let stamped = versions_of(&records, "same-stamp.txt");
    assert_eq!(stamped.len(), 2);
    let (copy, original): (Vec<&serde_json::Value>, Vec<_>) = stamped
        .iter()
        .copied()
        .partition(|r| r["target"] == new_target.as_str());
    assert_eq!((copy.len(), original.len()), (1, 1), "{stamped:?}");
    assert_eq!(
        copy[0]["sha1"], original[0]["sha1"],
        "the archived bytes, copied"
    );
    assert_eq!(copy[0]["state"], "current");
    // The cost is the store in use's; the old disk's archives are counted apart.
    let (_, cost) = sb.firn_json(["cost", "--set", "s", "--json"]);
    let in_new = records
        .iter()
        .filter(|r| r["target"] == new_target.as_str())
        .count();
    let priced = cost["current"]["archives"].as_u64().unwrap()
        + cost["superseded"]["archives"].as_u64().unwrap();
    assert_eq!(priced, in_new as u64, "{cost}");
    assert_eq!(cost["other_stores"][0]["target"], from.as_str(), "{cost}");
    assert_eq!(
        cost["other_stores"][0]["archives"],
        (records.len() - in_new) as u64,
        "{cost}"
    );
    // A prune looks only at the store in use: the old disk's archives are
    // `firn delete --store`'s.
    let (code, prune) = sb.firn_json(["prune", "--set", "s", "--dry-run", "--json"]);
    assert_eq!(code, Some(0), "{prune}");
    assert_eq!(
        prune["total_archives"], 1,
        "kept.txt's first version: {prune}"
    );
    // The old directory still holds every archive it had.
    assert_eq!(files_under(&old.join("archives")), old_archives);
}

fn files_under(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn a_deep_archive_bucket_moves_to_a_disk_across_runs_waiting_for_its_restores() {
    let moto = Moto::start();
    moto.restores_take(4);
    let a = AwsSandbox::on(
        Sandbox::new(),
        &moto.endpoint,
        "retention = \"keep\"\nstore = { kind = \"s3\", bucket = \"deep\", force_path_style = true, checksum = \"md5\" }\n",
    );
    a.init();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("a.txt", b"from the deep".to_vec()),
        ("dir/b.bin", pattern(MIB + 3, 7)),
    ];
    for (name, content) in &files {
        a.sb.write(name, content);
    }
    a.ok(&["backup", "--set", "s"]);
    // The tree is gone: everything has to come out of the bucket.
    std::fs::remove_dir_all(a.sb.tree()).unwrap();
    std::fs::create_dir_all(a.sb.tree()).unwrap();
    let disk = a.sb.path().join("disk");
    a.sb.edit_config(
        "store = { kind = \"s3\"",
        &format!(
            "store = {{ kind = \"local\", path = {disk:?} }}\nprevious_store = {{ kind = \"s3\""
        ),
    );
    let proxy = FaultProxy::start(&moto.endpoint, |_| Action::Forward);
    let migrate = |extra: &[&str]| {
        let mut args = vec!["migrate", "--set", "s", "--yes", "--json"];
        args.extend(extra);
        let out = a.run(&proxy.endpoint, &args);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        last_json(&out)
    };
    let first = migrate(&["--no-wait"]);
    assert_eq!(first["report"]["waiting"], 2, "{first}");
    assert_eq!(first["report"]["jobs_requested"], 2, "{first}");
    let status = a.firn(&["status", "--set", "s"]);
    assert!(
        stdout(&status).contains("0 of 2 archived files"),
        "{}",
        stdout(&status)
    );
    let plan = migrate(&["--dry-run"]);
    assert_eq!(
        plan["plan"]["jobs_requested"], 2,
        "paid for already: {plan}"
    );
    let jobs = a.json(&["jobs", "--set", "s", "--json"]);
    let jobs = jobs.as_array().cloned().unwrap_or_default();
    assert_eq!(jobs.len(), 2, "the migration's jobs are listed: {jobs:?}");
    assert!(
        // In progress, or ready already on a slow machine (restores take 4 s).
        jobs.iter()
            .all(|j| (j["state"] == "in-progress" || j["state"] == "ready")
                && j["destination"]
                    .as_str()
                    .unwrap()
                    .starts_with("migration into local:")),
        "{jobs:?}"
    );
    std::thread::sleep(std::time::Duration::from_secs(5));
    let second = migrate(&[]);
    assert_eq!(second["report"]["retrieved"]["files"], 2, "{second}");
    assert_eq!(second["report"]["jobs_requested"], 0, "{second}");
    assert_eq!(
        proxy.count(RequestInfo::is_s3_restore),
        2,
        "one RestoreObject per object over both runs"
    );
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (*n, c.as_slice())).collect();
    a.restore_and_compare(&refs, &[]);
}

/// The distinct archive ids of `records`.
fn archives_of<'a>(records: impl Iterator<Item = &'a serde_json::Value>) -> Vec<String> {
    let mut ids: Vec<String> = records
        .filter_map(|r| r["archive_id"].as_str().map(str::to_string))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[test]
fn packed_embedded_archives_move_into_s3_from_local_files_and_from_retrievals_one_job_per_pack() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    let store = sb.store_dir();
    let a = AwsSandbox::on(
        sb,
        &moto.endpoint,
        "retention = \"keep\"\npack_threshold = \"8 KiB\"\npack_size = \"24 KiB\"\n",
    );
    // Small files in several packs, one large file alone.
    let mut files: Vec<(String, Vec<u8>)> = (0..48)
        .map(|i| {
            (
                format!("d{}/f{i:02}.bin", i % 3),
                pattern(500 + i * 97, i as u8),
            )
        })
        .collect();
    files.push(("large.bin".into(), pattern(100_000, 200)));
    for (name, content) in &files {
        a.sb.write(name, content);
    }
    a.ok(&["backup", "--set", "s"]);
    let in_old = a.records();
    assert_eq!(in_old.len(), files.len());
    let packs = archives_of(in_old.iter().filter(|r| r["path"] != "large.bin"));
    assert!(
        packs.len() >= 3,
        "48 small files in packs of 24 KiB: {} packs",
        packs.len()
    );
    // Every second small file changes after the backup: its archived bytes
    // must come out of its pack; the others are copied from the files.
    let mut changed_packs = Vec::new();
    let mut changed = 0;
    for (i, (name, _)) in files.iter().enumerate() {
        if name != "large.bin" && i % 2 == 1 {
            a.sb.write(name, format!("changed after the backup: {name}"));
            changed += 1;
            let record = in_old.iter().find(|r| r["path"] == name.as_str()).unwrap();
            changed_packs.push(record["archive_id"].as_str().unwrap().to_string());
        }
    }
    changed_packs.sort_unstable();
    changed_packs.dedup();
    assert!(changed_packs.len() >= 3, "{changed_packs:?}");

    a.sb.write_config(&format!(
        "retention = \"keep\"\npack_threshold = \"8 KiB\"\npack_size = \"24 KiB\"\nstore = {{ kind = \"s3\", bucket = \"packed\", force_path_style = true, checksum = \"md5\" }}\nprevious_store = {{ kind = \"local\", path = {store:?} }}\n"
    ));
    a.init();
    let plan = a.json(&["migrate", "--set", "s", "--dry-run", "--json"]);
    assert_eq!(
        plan["plan"]["from_local"]["files"],
        (files.len() - changed) as u64,
        "{plan}"
    );
    assert_eq!(
        plan["plan"]["retrievals"]["files"], changed as u64,
        "{plan}"
    );
    assert_eq!(
        plan["plan"]["retrieval_requests"],
        changed_packs.len() as u64,
        "one request per pack: {plan}"
    );
    // Each pack is retrieved whole (to the end of its last file), however
    // few of its files are copied: that is what the quote prices.
    let pack_ends: u64 = changed_packs
        .iter()
        .map(|pack| {
            in_old
                .iter()
                .filter(|r| r["archive_id"] == pack.as_str())
                .map(|r| r["pack"]["offset"].as_u64().unwrap() + r["pack"]["len"].as_u64().unwrap())
                .max()
                .unwrap()
        })
        .sum();
    assert_eq!(plan["plan"]["retrieval_bytes"], pack_ends, "{plan}");
    // Killed once the retrieved copies are stored and journaled (the copies
    // from the files are recorded by then): each pack's job is kept, every
    // file's row with it.
    let killed = a
        .command(&moto.endpoint)
        .args(["migrate", "--set", "s", "--yes", "--json"])
        .env("FIRN_FAULT", "migrate-journaled")
        .output()
        .unwrap();
    expect_crash(&killed, "migrate-journaled");
    assert_eq!(a.sb.job_files(), changed_packs.len(), "one job per pack");
    let out = a.run(
        &moto.endpoint,
        &["migrate", "--set", "s", "--yes", "--json"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let doc = last_json(&out);
    assert_eq!(
        doc["report"]["from_local"]["files"], 0,
        "done before the kill: {doc}"
    );
    assert_eq!(
        doc["report"]["retrieved"]["files"].as_u64().unwrap()
            + doc["report"]["recorded_from_earlier_run"].as_u64().unwrap(),
        changed as u64,
        "{doc}"
    );
    assert_eq!(
        doc["report"]["failed"].as_array().map_or(0, Vec::len),
        0,
        "{doc}"
    );
    assert_eq!(
        doc["report"]["jobs_requested"], 0,
        "none requested again: {doc}"
    );
    assert_eq!(
        a.sb.job_files(),
        changed_packs.len(),
        "the old store's jobs"
    );

    // Every version has its copy in the bucket, the small ones copied from
    // the files in packs there too.
    let records = a.records();
    let in_bucket: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["target"].as_str().unwrap_or_default().starts_with("s3:"))
        .collect();
    assert_eq!(in_bucket.len(), files.len(), "{records:#?}");
    assert!(in_bucket.iter().all(|r| r["state"] == "current"));
    let local_copies = archives_of(
        in_bucket
            .iter()
            .copied()
            .filter(|r| r["path"] != "large.bin")
            .filter(|r| {
                files
                    .iter()
                    .position(|(name, _)| r["path"] == name.as_str())
                    .is_some_and(|i| i % 2 == 0)
            }),
    );
    assert!(
        local_copies.len() < (files.len() - changed - 1),
        "the unchanged small files share packs in the bucket: {local_copies:?}"
    );
    // Nothing left to do; every byte comes back from the bucket alone.
    let again = a.json(&["migrate", "--set", "s", "--dry-run", "--json"]);
    assert_eq!(again["plan"]["retrievals"]["files"], 0, "{again}");
    assert_eq!(again["plan"]["from_local"]["files"], 0, "{again}");
    std::fs::remove_dir_all(&store).unwrap();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(name, content)| (name.as_str(), content.as_slice()))
        .collect();
    a.restore_and_compare(&refs, &[]);
}
