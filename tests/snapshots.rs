//! Catalog snapshots: stored after every run that changed the catalog, pruned
//! without early-deletion charges, retried when they fail, counted in the cost,
//! never orphans; and `firn catalog rebuild` starting from the newest one, waiting
//! on the store's jobs the way a vault makes it, and leaving out what the store no
//! longer holds. (The drill in tests/drill.rs runs the whole loss on every backend.)

mod common;

use common::aws::{Action, FaultProxy, s3_error};
use common::aws_sandbox::AwsSandbox;
use common::{Sandbox, last_json, stdout};

const EMBEDDED: &str =
    "retention = \"keep\"\nstore = { kind = \"local\", retrieval_delay_secs = 0 }\n";

fn embedded() -> Sandbox {
    let sb = Sandbox::in_memory();
    sb.write_config(EMBEDDED);
    sb
}

fn ok_json(sb: &Sandbox, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, doc) = sb.firn_json(all);
    assert_eq!(code, Some(0), "firn {args:?}: {doc}");
    doc
}

fn lose_catalog(sb: &Sandbox) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sb.catalog_db().display()));
    }
    std::fs::remove_dir_all(sb.data().join("sets")).unwrap();
}

/// Deletes an archive from the embedded store behind firn's back.
fn remove_archive(sb: &Sandbox, id: &str) {
    let file = std::fs::read_dir(sb.store_dir().join("archives"))
        .unwrap()
        .flat_map(|shard| std::fs::read_dir(shard.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy() == id)
        .expect("the archive file");
    std::fs::remove_file(file).unwrap();
}

fn records(sb: &Sandbox) -> Vec<serde_json::Value> {
    let mut out = ok_json(sb, &["ls", "--set", "s", "--all"])
        .as_array()
        .cloned()
        .unwrap_or_default();
    out.sort_by_key(|r| r["archive_id"].to_string());
    out
}

#[test]
fn a_run_that_changes_nothing_stores_no_snapshot_and_one_that_does_stores_one() {
    let sb = embedded();
    sb.write("a.txt", "a");
    let first = ok_json(&sb, &["backup", "--set", "s"]);
    assert_eq!(first["catalog_snapshot"]["records"], 1, "{first}");
    assert_eq!(sb.store_snapshots().len(), 1);

    let idle = ok_json(&sb, &["backup", "--set", "s"]);
    assert!(
        idle.get("catalog_snapshot").is_none(),
        "nothing changed: {idle}"
    );
    let dry = ok_json(&sb, &["delete", "--set", "s", "a.txt", "--dry-run"]);
    assert!(dry.get("catalog_snapshot").is_none(), "{dry}");
    assert_eq!(sb.store_snapshots().len(), 1);

    // -v says so; quiet by default.
    sb.write("b.txt", "b");
    let out = sb.firn(["backup", "--set", "s", "-v"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("catalog snapshot: 2 records"),
        "{}",
        stdout(&out)
    );
    sb.write("c.txt", "c");
    let out = sb.firn(["backup", "--set", "s"]);
    assert!(
        !stdout(&out).contains("catalog snapshot"),
        "{}",
        stdout(&out)
    );

    // On demand, whether or not anything changed.
    let now = ok_json(&sb, &["catalog", "snapshot", "--set", "s"]);
    assert_eq!(now["records"], 3, "{now}");
    assert_eq!(now["pruned"], 1, "the newest three are kept: {now}");
    assert_eq!(sb.store_snapshots().len(), 3);

    // They are not orphans, and the cost counts them.
    let check = ok_json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(check["problems"], 0, "{check}");
    assert_eq!(check["orphans"].as_array().unwrap().len(), 0, "{check}");
    assert_eq!(check["snapshots"], 3, "{check}");
    let cost = ok_json(&sb, &["cost", "--set", "s"]);
    assert_eq!(cost["snapshots"]["archives"], 3, "{cost}");
    assert_eq!(cost["total"]["archives"], 3 + 3, "{cost}");
    let out = sb.firn(["cost", "--set", "s"]);
    assert!(
        stdout(&out).contains("; catalog snapshots: 3 archives, "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn snapshots_inside_the_minimum_storage_period_are_kept_until_it_ends() {
    let sb = Sandbox::in_memory();
    sb.write_config_text(&format!(
        "[prices]\nminimum_storage_days = 90\n\n[sets.s]\nroot = {:?}\n{EMBEDDED}",
        sb.tree()
    ));
    for n in 0..5 {
        sb.write(format!("f{n}.txt"), "x");
        let doc = ok_json(&sb, &["backup", "--set", "s"]);
        assert_eq!(doc["catalog_snapshot"]["pruned"], 0, "{doc}");
        assert_eq!(
            doc["catalog_snapshot"]["kept_early"],
            n.max(2) - 2,
            "beyond the newest three, deleting now would be billed: {doc}"
        );
    }
    assert_eq!(sb.store_snapshots().len(), 5);
}

#[test]
fn a_rebuild_leaves_out_what_the_store_lost_after_the_snapshot() {
    let sb = embedded();
    // Two runs, two packs: the store can lose one without the other.
    sb.write("keep.txt", "keep");
    sb.back_up_set(&[]);
    sb.write("lost.txt", "lost");
    sb.back_up_set(&[]);
    let lost = records(&sb)
        .into_iter()
        .find(|r| r["path"] == "lost.txt")
        .unwrap();
    // Gone behind firn's back (another host, by hand), after the snapshot.
    remove_archive(&sb, lost["archive_id"].as_str().unwrap());
    let before_loss = records(&sb);
    // An inventory only speaks for archives older than itself (whole seconds).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    lose_catalog(&sb);

    let doc = ok_json(&sb, &["catalog", "rebuild", "--set", "s"]);
    assert_eq!(doc["snapshot"]["records"], 2, "{doc}");
    assert_eq!(doc["snapshot"]["gone"], 1, "{doc}");
    assert_eq!(doc["snapshot"]["imported"], 1, "{doc}");
    let after = records(&sb);
    assert_eq!(after.len(), 1);
    assert_eq!(
        after[0],
        before_loss
            .iter()
            .find(|r| r["path"] == "keep.txt")
            .unwrap()
            .clone()
    );
    let check = ok_json(&sb, &["inventory", "--set", "s"]);
    assert_eq!(check["problems"], 0, "{check}");
}

#[test]
fn archives_stored_after_the_snapshot_are_added_from_their_descriptions() {
    let sb = Sandbox::in_memory();
    // new.txt goes into a pack (added from the pack's index), big.bin over the
    // threshold into an archive of its own (added from its description).
    sb.write_config(&format!("pack_threshold = 100\n{EMBEDDED}"));
    sb.write("old.txt", "old");
    sb.back_up_set(&[]);
    let snapshots = sb.store_snapshots();
    sb.write("new.txt", "new");
    sb.write("big.bin", "b".repeat(200));
    sb.back_up_set(&[]);
    // The second run's snapshot is lost with the catalog: the first is the newest.
    for newer in sb.store_snapshots() {
        if !snapshots.contains(&newer) {
            remove_archive(&sb, &newer);
        }
    }
    assert_eq!(sb.store_snapshots(), snapshots);
    let before = records(&sb);
    lose_catalog(&sb);
    let doc = ok_json(&sb, &["catalog", "rebuild", "--set", "s"]);
    assert_eq!(doc["snapshot"]["imported"], 1, "{doc}");
    assert_eq!(
        doc["current"], 2,
        "new.txt from its pack's index, big.bin from its description: {doc}"
    );
    assert_eq!(records(&sb), before);
}

#[test]
fn a_rebuild_waits_for_the_inventory_then_for_the_snapshot_and_resumes_each_time() {
    let sb = Sandbox::in_memory();
    sb.write_config(
        "retention = \"keep\"\nstore = { kind = \"local\", retrieval_delay_secs = 2 }\n",
    );
    sb.write("a.txt", "a");
    sb.write("b.txt", "b");
    sb.back_up_set(&[]);
    let before = records(&sb);
    lose_catalog(&sb);

    let rebuild = [
        "catalog",
        "rebuild",
        "--set",
        "s",
        "--tier",
        "bulk",
        "--no-wait",
    ];
    let first = ok_json(&sb, &rebuild);
    assert_eq!(first["outcome"], "waiting", "{first}");
    let out = sb.firn(rebuild);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("waiting: nothing rebuilt yet (the store's inventory requested"),
        "{}",
        stdout(&out)
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    // The inventory is ready; the snapshot needs a retrieval job of its own,
    // requested with the tier asked for and kept for the next run.
    let out = sb.firn(rebuild);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains(
            "waiting: nothing rebuilt yet (the retrieval of the catalog snapshot requested"
        ),
        "{}",
        stdout(&out)
    );
    let jobs = ok_json(&sb, &["jobs", "--set", "s"]);
    let text = jobs.to_string();
    assert!(text.contains("bulk"), "{text}");
    let jobs_before = sb.job_files();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let done = ok_json(&sb, &rebuild);
    assert_eq!(done["outcome"], "ready", "{done}");
    assert_eq!(done["snapshot"]["imported"], 2, "{done}");
    assert_eq!(sb.job_files(), jobs_before, "no job requested twice");
    assert_eq!(records(&sb), before);
}

#[test]
fn a_snapshot_that_fails_is_reported_and_stored_by_the_next_run() {
    let a = AwsSandbox::on_standin(
        Sandbox::new(),
        "retention = \"keep\"\nstore = { kind = \"s3\", bucket = \"firn-archive\", force_path_style = true }\n",
    );
    a.init();
    a.sb.write("a.txt", "a");
    let proxy = FaultProxy::start(a.endpoint(), |r| {
        if r.method == "PUT" && r.path.contains(".firn-catalog-snapshots") {
            s3_error(500, "InternalError", "injected", &[])
        } else {
            Action::Forward
        }
    });
    let (code, doc) = a.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["uploaded_files"], 1, "the backup itself is done: {doc}");
    let error = doc["catalog_snapshot_error"].as_str().unwrap();
    assert!(error.contains("catalog snapshot was not stored"), "{error}");
    let out = a.run(&proxy.endpoint, &["backup", "--set", "s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("warning: the catalog snapshot was not stored"),
        "{}",
        stdout(&out)
    );
    drop(proxy);

    // Nothing changed since, but the snapshot is still owed.
    let doc = last_json(&a.ok(&["backup", "--set", "s", "--json"]));
    assert_eq!(doc["uploaded_files"], 0, "{doc}");
    assert_eq!(doc["catalog_snapshot"]["records"], 1, "{doc}");
    let doc = last_json(&a.ok(&["backup", "--set", "s", "--json"]));
    assert!(doc.get("catalog_snapshot").is_none(), "paid up: {doc}");
}

#[test]
fn a_rebuild_waits_for_the_packs_stored_after_the_snapshot_and_retrieves_nothing_twice() {
    let sb = Sandbox::in_memory();
    sb.write_config(
        "retention = \"keep\"\nstore = { kind = \"local\", retrieval_delay_secs = 2 }\n",
    );
    sb.write("old.txt", "old");
    sb.back_up_set(&[]);
    let snapshots = sb.store_snapshots();
    sb.write("new.txt", "new");
    sb.back_up_set(&[]);
    // The second run's snapshot is lost: new.txt's pack is only in the store.
    for newer in sb.store_snapshots() {
        if !snapshots.contains(&newer) {
            remove_archive(&sb, &newer);
        }
    }
    let before = records(&sb);
    lose_catalog(&sb);

    let rebuild = [
        "catalog",
        "rebuild",
        "--set",
        "s",
        "--tier",
        "bulk",
        "--no-wait",
    ];
    let waits = |what: &str| {
        let out = sb.firn(rebuild);
        assert!(out.status.success());
        assert!(
            stdout(&out).contains(&format!("waiting: nothing rebuilt yet ({what} requested")),
            "{}",
            stdout(&out)
        );
    };
    waits("the store's inventory");
    std::thread::sleep(std::time::Duration::from_secs(3));
    waits("the retrieval of the catalog snapshot");
    std::thread::sleep(std::time::Duration::from_secs(3));
    // The snapshot is in; the pack stored after it is retrieved to read its
    // index. Nothing is imported until it is read.
    waits("the retrieval of the packs stored after the catalog snapshot");
    assert_eq!(
        ok_json(&sb, &["ls", "--set", "s", "--all"]),
        serde_json::json!([])
    );
    let jobs_before = sb.job_files();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let done = ok_json(&sb, &rebuild);
    assert_eq!(done["outcome"], "ready", "{done}");
    assert_eq!(done["snapshot"]["imported"], 1, "{done}");
    assert_eq!(done["current"], 1, "new.txt from its pack's index: {done}");
    assert_eq!(
        sb.job_files(),
        jobs_before,
        "neither the snapshot nor the pack retrieved twice"
    );
    assert_eq!(records(&sb), before);
}
