//! Deletion, bulk pruning and the cost view through the real binary on the
//! embedded backend: the store confirms before the catalog changes, the plan
//! shows what deleting costs, and an interrupted deletion is finished later.

mod common;

use std::path::PathBuf;

use common::{Sandbox, assert_exit, one_line_error, status_of, stderr, stdout};
use serde_json::Value;

const GIB: f64 = (1u64 << 30) as f64;
const MIB: usize = 1 << 20;

fn root(sb: &Sandbox) -> String {
    sb.tree().display().to_string()
}

/// `firn ARGS... --root TREE` parsed as JSON.
fn json_on_root(sb: &Sandbox, args: &[&str]) -> (Option<i32>, Value) {
    let root = root(sb);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--root", root.as_str()]);
    sb.firn_json(&all)
}

fn archive_ids(records: &[Value], path: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["path"] == path)
        .map(|r| r["archive_id"].as_str().unwrap().to_string())
        .collect()
}

fn current_id(sb: &Sandbox, path: &str) -> String {
    sb.records()
        .iter()
        .find(|r| r["path"] == path && r["state"] == "current")
        .map(|r| r["archive_id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no current archive of {path}"))
}

fn backed_up(sb: &Sandbox, extra: &[&str]) {
    let (code, doc) = sb.backup_json(extra);
    assert_eq!(code, Some(0), "{doc}");
}

/// The local state database of the sandbox's ad-hoc set (rooted at the tree).
fn state_db(sb: &Sandbox) -> PathBuf {
    sb.adhoc_set().1.join("state.sqlite")
}

fn journaled_deletions(sb: &Sandbox) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(state_db(sb)).unwrap();
    let mut stmt = conn
        .prepare("SELECT archive_id, key FROM deletion_journal ORDER BY key")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// One archive per file. These tests follow a file's own archive out of the
/// store (gone, refused, charged early, crashed after the store let go of it);
/// a packed file's bytes stay in its pack while other members live, which is
/// another behaviour with tests of its own.
const ONE_ARCHIVE_PER_FILE: &str = "[defaults]\npack_small_files = false\n";

fn one_archive_per_file(sb: &Sandbox) {
    sb.write_config_text(ONE_ARCHIVE_PER_FILE);
}

#[test]
fn deleting_the_current_archive_of_an_existing_file_makes_it_new() {
    let sb = Sandbox::in_memory();
    one_archive_per_file(&sb);
    sb.write("a.txt", "alpha");
    sb.write("b.txt", "beta");
    backed_up(&sb, &[]);
    let id = current_id(&sb, "a.txt");
    assert!(sb.store_archives().contains(&id));

    let (code, doc) = json_on_root(&sb, &["delete", "a.txt", "--yes", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["deleted"], 1, "{doc}");
    assert_eq!(doc["archives"][0]["path"], "a.txt");
    assert_eq!(doc["archives"][0]["archive_id"], id.as_str());

    assert!(!sb.store_archives().contains(&id), "gone from the store");
    let records = sb.records();
    assert!(archive_ids(&records, "a.txt").is_empty(), "{records:?}");
    assert_eq!(archive_ids(&records, "b.txt").len(), 1, "b.txt untouched");
    let status = sb.status_json(&[]);
    assert_eq!(status_of(&status, "a.txt"), "new");
    assert_eq!(status_of(&status, "b.txt"), "up-to-date");
    assert!(journaled_deletions(&sb).is_empty(), "journal closed");
}

#[test]
fn an_archive_id_deletes_that_archive_whatever_its_file() {
    let sb = Sandbox::in_memory();
    sb.write("doc.txt", "version one");
    backed_up(&sb, &["--retention", "keep"]);
    let old = current_id(&sb, "doc.txt");
    sb.write("doc.txt", "version two!");
    backed_up(&sb, &["--retention", "keep"]);
    let new = current_id(&sb, "doc.txt");

    let (code, doc) = json_on_root(&sb, &["delete", "--archive", &old, "--yes", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["archives"][0]["state"], "superseded");
    let records = sb.records();
    assert_eq!(archive_ids(&records, "doc.txt"), vec![new.clone()]);
    assert_eq!(sb.store_archives(), vec![new.clone()]);
    assert_eq!(status_of(&sb.status_json(&[]), "doc.txt"), "up-to-date");

    // An id the catalog does not know: one line, nothing changed.
    let out = sb.firn([
        "delete",
        "--root",
        &root(&sb),
        "--archive",
        "no-such-archive",
        "--archive",
        &new,
        "--yes",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("no-such-archive") && err.contains("not in the catalog"),
        "{err}"
    );
    assert_eq!(sb.store_archives(), vec![new]);
}

#[test]
fn a_directory_means_everything_below_it() {
    let sb = Sandbox::in_memory();
    one_archive_per_file(&sb);
    sb.write("photos/2024/a.jpg", "a");
    sb.write("photos/b.jpg", "b1");
    sb.write("photoshop.txt", "not below photos/");
    sb.write("other/c.txt", "c");
    backed_up(&sb, &["--retention", "keep"]);
    sb.write("photos/b.jpg", "b2, changed");
    backed_up(&sb, &["--retention", "keep"]);
    assert_eq!(sb.records().len(), 5);

    // Current versions only by default: the superseded b.jpg stays.
    let (code, doc) = json_on_root(&sb, &["delete", "photos/", "--yes", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["deleted"], 2, "{doc}");
    let records = sb.records();
    let left: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["path"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        left,
        [
            ("other/c.txt", "current"),
            ("photos/b.jpg", "superseded"),
            ("photoshop.txt", "current")
        ],
        "the superseded version stays superseded, not promoted"
    );
    assert_eq!(status_of(&sb.status_json(&[]), "photos/b.jpg"), "new");

    // Only superseded versions left: say how to delete them.
    let out = sb.firn(["delete", "--root", &root(&sb), "photos", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--all-versions"), "{}", stderr(&out));
    let (code, doc) = json_on_root(
        &sb,
        &["delete", "photos", "--all-versions", "--yes", "--json"],
    );
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["deleted"], 1, "{doc}");
    assert_eq!(sb.records().len(), 2);
    assert_eq!(sb.store_archives().len(), 2);
}

#[test]
fn without_a_terminal_and_without_yes_nothing_is_deleted() {
    let sb = Sandbox::in_memory();
    sb.write("keep/me.txt", "precious");
    backed_up(&sb, &[]);
    let before = (sb.records(), sb.store_archives());
    for args in [
        vec!["delete", "keep"],
        vec!["delete", "keep", "--json"],
        vec!["prune", "--include-early"],
    ] {
        let mut cmd = sb.command();
        cmd.args(&args)
            .args(["--root", &root(&sb)])
            .stdin(std::process::Stdio::null());
        let out = cmd.output().unwrap();
        if args[0] == "prune" {
            // Nothing superseded: nothing to ask about.
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            assert!(
                stdout(&out).contains("nothing to prune"),
                "{}",
                stdout(&out)
            );
            continue;
        }
        let err = one_line_error(&out);
        assert!(err.contains("pass --yes"), "{err}");
        if !args.contains(&"--json") {
            assert!(
                stdout(&out).contains("keep/me.txt"),
                "the plan is shown first: {}",
                stdout(&out)
            );
        }
    }
    assert_eq!((sb.records(), sb.store_archives()), before);
}

#[test]
fn a_store_that_refuses_leaves_the_catalog_untouched_and_exits_1() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    one_archive_per_file(&sb);
    sb.write("locked.txt", "cannot be deleted");
    sb.write("free.txt", "can be deleted");
    backed_up(&sb, &[]);
    let locked = current_id(&sb, "locked.txt");
    let free = current_id(&sb, "free.txt");
    let mut cmd = sb.unprivileged_command();
    // The archive's directory refuses to let go of its files.
    let shard = sb.store_dir().join("archives").join(&locked[..2]);
    std::fs::set_permissions(&shard, std::fs::Permissions::from_mode(0o555)).unwrap();
    let free_shard_is_locked = free[..2] == locked[..2];

    let out = cmd
        .args([
            "delete",
            "--root",
            &root(&sb),
            "locked.txt",
            "free.txt",
            "--yes",
        ])
        .output()
        .unwrap();
    std::fs::set_permissions(&shard, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("failed: locked.txt") && l.contains("did not delete")),
        "{text}"
    );
    let records = sb.records();
    assert_eq!(archive_ids(&records, "locked.txt"), vec![locked.clone()]);
    assert!(sb.store_archives().contains(&locked));
    if !free_shard_is_locked {
        assert!(archive_ids(&records, "free.txt").is_empty(), "{text}");
        assert!(!sb.store_archives().contains(&free));
    }
    assert!(
        journaled_deletions(&sb).is_empty(),
        "a refused deletion is not left for the next run"
    );
    assert_eq!(status_of(&sb.status_json(&[]), "locked.txt"), "up-to-date");
}

#[test]
fn prune_skips_early_archives_unless_asked() {
    let sb = Sandbox::in_memory();
    sb.write_config_text("[prices]\nstorage_per_gb_month = 1.0\nminimum_storage_days = 90\n");
    sb.write("log.txt", "one");
    backed_up(&sb, &["--retention", "keep"]);
    let first = current_id(&sb, "log.txt");
    sb.write("log.txt", "two!");
    backed_up(&sb, &["--retention", "keep"]);

    let (code, doc) = json_on_root(&sb, &["prune", "--yes", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["deleted"], 0, "{doc}");
    assert_eq!(doc["skipped_early"], 1, "{doc}");
    assert!(sb.store_archives().contains(&first));
    assert_eq!(sb.records().len(), 2);

    let (code, doc) = json_on_root(&sb, &["prune", "--include-early", "--yes", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["deleted"], 1, "{doc}");
    assert_eq!(doc["archives"][0]["archive_id"], first.as_str());
    assert_eq!(doc["archives"][0]["early"], true);
    assert!(!sb.store_archives().contains(&first));
    let records = sb.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["state"], "current");

    // No minimum storage period: nothing is early, prune deletes at once.
    sb.write_config_text("[prices]\nstorage_per_gb_month = 1.0\nminimum_storage_days = 0\n");
    let second = current_id(&sb, "log.txt");
    sb.write("log.txt", "three");
    backed_up(&sb, &["--retention", "keep"]);
    let (code, doc) = json_on_root(&sb, &["prune", "--yes", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["deleted"], 1, "{doc}");
    assert_eq!(doc["skipped_early"], 0, "{doc}");
    assert_eq!(doc["total_early_deletion_charge"], 0.0);
    assert!(!sb.store_archives().contains(&second));
}

#[test]
fn the_plan_shows_each_archives_early_deletion_charge() {
    let sb = Sandbox::in_memory();
    let (price, days) = (10.0, 90);
    sb.write_config_text(
        &format!(
            "{ONE_ARCHIVE_PER_FILE}[prices]\ncurrency = \"EUR\"\nstorage_per_gb_month = {price}\nminimum_storage_days = {days}\n"
        ),
    );
    sb.write("big.bin", vec![9u8; MIB]);
    sb.write("small.bin", vec![1u8; 1000]);
    backed_up(&sb, &[]);
    // Freshly uploaded: every day of the minimum period is left.
    let charge = |size: usize| size as f64 / GIB * price * f64::from(days) / 30.0;

    let out = sb.firn(["delete", "--root", &root(&sb), "big.bin", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let expected = format!("{:.4} EUR", charge(MIB));
    assert_eq!(expected, "0.0293 EUR");
    let line = text
        .lines()
        .find(|l| l.ends_with("big.bin"))
        .unwrap_or_else(|| panic!("no plan line: {text}"));
    assert!(
        line.contains("1.0 MiB") && line.contains("0 d") && line.contains(&expected),
        "{line}"
    );
    assert!(
        text.contains(&format!(
            "total: 1 archive, 1.0 MiB, early-deletion charge ≈ {expected}"
        )),
        "{text}"
    );
    assert!(text.contains("dry run: nothing deleted"), "{text}");

    let (code, doc) = json_on_root(&sb, &["delete", ".", "--dry-run", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["currency"], "EUR");
    assert_eq!(doc["total_archives"], 2);
    let item = |path: &str| {
        doc["archives"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["path"] == path)
            .unwrap()
            .clone()
    };
    let big = item("big.bin")["early_deletion_charge"].as_f64().unwrap();
    let small = item("small.bin")["early_deletion_charge"].as_f64().unwrap();
    assert!(close(big, charge(MIB)), "{big}");
    assert!(close(small, charge(1000)), "{small}");
    let total = doc["total_early_deletion_charge"].as_f64().unwrap();
    assert!(close(total, charge(MIB) + charge(1000)), "{total}");
    assert_eq!(sb.store_archives().len(), 2, "a dry run deletes nothing");
}

#[test]
fn cost_json_for_a_known_tree() {
    let sb = Sandbox::in_memory();
    // One archive per file: the arithmetic of archives alone (a packed older
    // version costs nothing to delete while its pack stays: tests/pack_delete.rs).
    sb.write_config_text(
        "[defaults]\npack_small_files = false\n\
         [prices]\nstorage_per_gb_month = 1.0\nminimum_storage_days = 90\n\
         [prices.expedited]\nretrieval_per_gb = 3.0\nretrieval_per_1000_requests = 100.0\n\
         [prices.standard]\nretrieval_per_gb = 0.5\nretrieval_per_1000_requests = 2.0\n\
         [prices.bulk]\nretrieval_per_gb = 0.25\n",
    );
    sb.write("a.bin", vec![1u8; 2 * MIB]);
    sb.write("b.bin", vec![2u8; MIB]);
    sb.write("empty", "");
    backed_up(&sb, &["--retention", "keep"]);
    sb.write("b.bin", vec![3u8; 3 * MIB]);
    backed_up(&sb, &["--retention", "keep"]);

    let (code, doc) = json_on_root(&sb, &["cost", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    let mib = MIB as u64;
    assert_eq!(doc["current"]["archives"], 3, "{doc}");
    assert_eq!(doc["current"]["bytes"], 5 * mib);
    assert_eq!(doc["superseded"]["archives"], 1);
    assert_eq!(doc["superseded"]["bytes"], mib);
    // Each backup stored a catalog snapshot: billed like any archive.
    assert_eq!(doc["snapshots"]["archives"], 2, "{doc}");
    let snapshot_bytes = doc["snapshots"]["bytes"].as_u64().unwrap();
    assert!(snapshot_bytes > 0 && snapshot_bytes < 4096, "{doc}");
    assert_eq!(doc["total"]["archives"], 4 + 2);
    assert_eq!(doc["total"]["bytes"], 6 * mib + snapshot_bytes);
    let f = |v: &Value| v.as_f64().unwrap();
    let gb = |bytes: u64| bytes as f64 / GIB;
    assert!(
        close(
            f(&doc["monthly_storage"]),
            gb(6 * mib + snapshot_bytes) * 1.0
        ),
        "{doc}"
    );
    assert_eq!(doc["early"]["archives"], 1);
    assert!(
        close(f(&doc["pending_early_deletion"]), gb(mib) * 1.0 * 3.0),
        "{doc}"
    );
    let retrieval = doc["retrieval"].as_array().unwrap();
    let tier = |name: &str| retrieval.iter().find(|r| r["tier"] == name).unwrap();
    // Two requests: the empty file needs none.
    assert_eq!(tier("standard")["requests"], 2);
    assert_eq!(tier("standard")["bytes"], 5 * mib);
    assert!(close(
        f(&tier("expedited")["cost"]),
        gb(5 * mib) * 3.0 + 2.0 / 1000.0 * 100.0
    ));
    assert!(close(
        f(&tier("standard")["cost"]),
        gb(5 * mib) * 0.5 + 2.0 / 1000.0 * 2.0
    ));
    // Unset fields keep the Glacier defaults.
    assert!(close(
        f(&tier("bulk")["cost"]),
        gb(5 * mib) * 0.25 + 2.0 / 1000.0 * 0.025
    ));
    assert_eq!(doc["prices"]["currency"], "USD");

    // The same figures for people.
    let out = sb.firn(["cost", "--root", &root(&sb)]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("archived: 6 archives, 6.0 MiB (current: 3 archives, 5.0 MiB; superseded: 1 archive, 1.0 MiB; catalog snapshots: 2 archives, "),
        "{text}"
    );
    assert!(text.contains("standard"), "{text}");
}

#[test]
fn the_embedded_store_costs_nothing_without_prices() {
    let sb = Sandbox::in_memory();
    sb.write("a.bin", vec![1u8; MIB]);
    backed_up(&sb, &[]);
    let (code, doc) = json_on_root(&sb, &["cost", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["monthly_storage"], 0.0);
    assert_eq!(doc["prices"]["minimum_storage_days"], 0);
    let (code, doc) = json_on_root(&sb, &["delete", "a.bin", "--dry-run", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["archives"][0]["early"], false);
    assert_eq!(doc["total_early_deletion_charge"], 0.0);
}

#[test]
fn bad_prices_are_one_clear_line() {
    let sb = Sandbox::in_memory();
    sb.write("a.txt", "a");
    for (config, needle) in [
        ("[prices]\nstorage = 1.0\n", "unknown field `storage`"),
        (
            "[prices.standard]\nretrieval_per_byte = 1.0\n",
            "unknown field `retrieval_per_byte`",
        ),
        (
            "[prices]\nstorage_per_gb_month = -1\n",
            "storage_per_gb_month",
        ),
        (
            "[defaults.prices]\nstorage_per_gb_month = 1\n",
            "top-level [prices]",
        ),
    ] {
        sb.write_config_text(config);
        let out = sb.firn(["cost", "--root", &root(&sb)]);
        let err = one_line_error(&out);
        assert!(err.contains(needle), "{config}: {err}");
    }
}

/// Deletes a.txt with a crash right after the store confirmed: the archive is
/// gone from the store, the catalog still lists it, the journal remembers it.
fn crash_after_store_delete(sb: &Sandbox) -> String {
    one_archive_per_file(sb);
    sb.write("a.txt", "doomed");
    sb.write("b.txt", "bystander");
    backed_up(sb, &[]);
    let id = current_id(sb, "a.txt");
    let crashed = sb
        .command()
        .args(["delete", "--root", &root(sb), "a.txt", "--yes"])
        .env("FIRN_FAULT", "after-store-delete")
        .output()
        .unwrap();
    assert!(!crashed.status.success(), "the injected crash must kill it");
    assert!(
        stderr(&crashed).contains("injected crash"),
        "{}",
        stderr(&crashed)
    );
    assert!(!sb.store_archives().contains(&id), "the store deleted it");
    assert_eq!(
        archive_ids(&sb.records(), "a.txt"),
        vec![id.clone()],
        "the catalog was not touched before the crash"
    );
    assert_eq!(
        journaled_deletions(sb),
        vec![(id.clone(), "a.txt".to_string())]
    );
    id
}

#[test]
fn an_interrupted_deletion_is_finished_by_the_next_delete() {
    let sb = Sandbox::in_memory();
    let id = crash_after_store_delete(&sb);
    let (code, doc) = json_on_root(&sb, &["delete", "b.txt", "--yes", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["interrupted_finished"], serde_json::json!(["a.txt"]));
    assert_eq!(doc["deleted"], 1);
    let records = sb.records();
    assert!(records.iter().all(|r| r["archive_id"] != id.as_str()));
    assert!(records.is_empty(), "{records:?}");
    assert!(sb.store_archives().is_empty());
    assert!(journaled_deletions(&sb).is_empty());
}

#[test]
fn an_interrupted_deletion_is_finished_by_the_next_backup() {
    let sb = Sandbox::in_memory();
    let id = crash_after_store_delete(&sb);
    let (code, doc) = sb.backup_json(&[]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["deletions_finished"], 1, "{doc}");
    // a.txt had no current archive any more: it was uploaded again.
    assert_eq!(doc["uploaded_files"], 1, "{doc}");
    let records = sb.records();
    assert!(records.iter().all(|r| r["archive_id"] != id.as_str()));
    assert_eq!(archive_ids(&records, "a.txt").len(), 1);
    assert!(journaled_deletions(&sb).is_empty());
    let mut recorded: Vec<String> = records
        .iter()
        .map(|r| r["archive_id"].as_str().unwrap().to_string())
        .collect();
    recorded.sort();
    assert_eq!(recorded, sb.store_archives(), "store and catalog agree");
}

#[test]
fn naming_nothing_is_refused() {
    let sb = Sandbox::in_memory();
    let out = sb.firn(["delete", "--root", &root(&sb), "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("name what to delete"),
        "{}",
        stderr(&out)
    );
    let out = sb.firn(["delete", "--root", &root(&sb), "missing.txt", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nothing archived matches \"missing.txt\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn on_glacier_the_store_confirms_first_and_an_archive_already_gone_counts_as_deleted() {
    use common::aws::{Action, FaultProxy, aws_error, sdk_config};
    use common::aws_sandbox::AwsSandbox;
    let a = AwsSandbox::on_standin(
        Sandbox::new(),
        "store = { kind = \"glacier\", vault = \"vault\" }\ncatalog = { kind = \"dynamodb\", table = \"catalog\" }\n",
    );
    a.init();
    for name in ["gone.txt", "missing.txt", "refused.txt"] {
        a.sb.write(name, format!("content of {name}"));
    }
    a.ok(&["backup", "--set", "s"]);
    let id_of = |path: &str| archive_ids(&a.records(), path).pop().unwrap();

    // Deleted behind firn's back (another tool, or a run that crashed): Glacier's
    // DeleteArchive is idempotent, and the record goes.
    let gone = id_of("gone.txt");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = aws_sdk_glacier::Client::new(&sdk_config(a.endpoint()).await);
        client
            .delete_archive()
            .account_id("-")
            .vault_name("vault")
            .archive_id(&gone)
            .send()
            .await
            .unwrap();
    });
    let out = a.firn(&["delete", "--set", "s", "gone.txt", "--yes"]);
    assert_exit(&out, 0);
    assert!(archive_ids(&a.records(), "gone.txt").is_empty());

    // A vault that answers "not found" for the archive counts as deleted too.
    let proxy = FaultProxy::start(a.endpoint(), |r| {
        if r.method == "DELETE" && r.path.contains("/archives/") {
            aws_error(404, "ResourceNotFoundException", "Archive not found")
        } else {
            Action::Forward
        }
    });
    let out = a.run(
        &proxy.endpoint,
        &["delete", "--set", "s", "missing.txt", "--yes"],
    );
    assert_exit(&out, 0);
    assert!(archive_ids(&a.records(), "missing.txt").is_empty());
    drop(proxy);

    // A vault that refuses: the catalog keeps the record, exit 1.
    let refused = id_of("refused.txt");
    let proxy = FaultProxy::start(a.endpoint(), |r| {
        if r.method == "DELETE" && r.path.contains("/archives/") {
            aws_error(403, "AccessDeniedException", "not allowed")
        } else {
            Action::Forward
        }
    });
    let out = a.run(
        &proxy.endpoint,
        &["delete", "--set", "s", "refused.txt", "--yes"],
    );
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("failed: refused.txt") && stdout(&out).contains("access denied"),
        "{}",
        stdout(&out)
    );
    drop(proxy);
    assert_eq!(archive_ids(&a.records(), "refused.txt"), vec![refused]);

    let doc = a.json(&["status", "--set", "s", "--json"]);
    assert_eq!(status_of(&doc, "gone.txt"), "new");
    assert_eq!(status_of(&doc, "missing.txt"), "new");
    assert_eq!(status_of(&doc, "refused.txt"), "up-to-date");
}
