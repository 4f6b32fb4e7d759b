//! Deleting packed files with the real binary: a packed file is forgotten and
//! `firn delete` says its bytes stay in its pack (no early-deletion charge for
//! it now) until the pack's last file goes; deleting that last file deletes
//! the pack. `firn ls` names the pack and place of each packed file, and
//! `firn cost` shows the dead bytes the pack keeps meanwhile.

mod common;

use std::process::Output;

use common::{Sandbox, pattern, stderr, stdout};
use serde_json::Value;

/// Prices that make the early-deletion charge of 100 KB plain to see.
const SET: &str = "retention = \"keep\"\nprices = { storage_per_gb_month = 100000.0, minimum_storage_days = 90 }\n";

fn ok(sb: &Sandbox, args: &[&str]) -> Output {
    let out = sb.firn(args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

fn json(sb: &Sandbox, args: &[&str]) -> Value {
    let (code, doc) = sb.firn_json(args);
    assert_eq!(code, Some(0), "{args:?}: {doc}");
    doc
}

fn record<'a>(records: &'a Value, path: &str) -> &'a Value {
    records
        .as_array()
        .and_then(|all| all.iter().find(|r| r["path"] == path))
        .unwrap_or_else(|| panic!("no record of {path}: {records}"))
}

#[test]
fn a_packed_file_deleted_is_forgotten_its_bytes_kept_in_the_pack_until_its_last_file_goes() {
    let sb = Sandbox::new();
    sb.write_config(SET);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("a.txt", pattern(100_000, 1)),
        ("b.txt", pattern(100_001, 2)),
        ("c.txt", pattern(100_002, 3)),
        ("big.bin", pattern(3 << 20, 4)),
    ];
    for (name, content) in &files {
        sb.write(name, content);
    }
    ok(&sb, &["backup", "--set", "s"]);

    // `ls` names the pack of each packed file and its place there.
    let records = json(&sb, &["ls", "--set", "s", "--json"]);
    let pack = record(&records, "a.txt")["archive_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut offsets = Vec::new();
    for name in ["a.txt", "b.txt", "c.txt"] {
        let r = record(&records, name);
        assert_eq!(r["archive_id"], pack.as_str(), "{records}");
        assert_eq!(r["pack"]["len"], r["size"], "{r}");
        offsets.push(r["pack"]["offset"].as_u64().unwrap());
    }
    offsets.sort_unstable();
    offsets.dedup();
    assert_eq!(offsets.len(), 3, "each file its own place: {records}");
    assert!(record(&records, "big.bin")["pack"].is_null(), "{records}");
    let a_offset = record(&records, "a.txt")["pack"]["offset"]
        .as_u64()
        .unwrap();
    let listing = stdout(&ok(&sb, &["ls", "--set", "s"]));
    let a_line = listing
        .lines()
        .find(|l| l.ends_with("a.txt"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        a_line.contains(&format!("pack {pack} @{a_offset}")),
        "{listing}"
    );
    let pack_file = sb.store_dir().join("archives").join(&pack[..2]).join(&pack);
    assert!(pack_file.is_file(), "{}", pack_file.display());

    // The plan says a.txt is only forgotten, with no charge, though it is
    // inside the minimum storage period; big.bin, alone, is charged.
    let a = sb.tree().join("a.txt").display().to_string();
    let big = sb.tree().join("big.bin").display().to_string();
    let plan = json(
        &sb,
        &["delete", "--set", "s", &a, &big, "--dry-run", "--json"],
    );
    let items = plan["archives"].as_array().unwrap();
    let a_item = items.iter().find(|i| i["path"] == "a.txt").unwrap();
    let big_item = items.iter().find(|i| i["path"] == "big.bin").unwrap();
    assert_eq!(a_item["pack"], "kept", "{plan}");
    assert_eq!(a_item["pack_offset"], a_offset, "{plan}");
    assert_eq!(a_item["early_deletion_charge"], 0.0, "{plan}");
    assert!(big_item["pack"].is_null(), "{plan}");
    let big_charge = big_item["early_deletion_charge"].as_f64().unwrap();
    assert!(big_charge > 0.0, "{plan}");
    assert_eq!(plan["total_early_deletion_charge"], big_charge, "{plan}");

    // Deleting a.txt says where its bytes stay; the pack is still there.
    let out = ok(&sb, &["delete", "--set", "s", &a, "--yes"]);
    let said = stdout(&out);
    assert!(
        said.contains(&format!(
            "forgotten: a.txt (97.7 KiB): its bytes stay in pack {pack} @{a_offset} until the pack's last file goes"
        )),
        "{said}"
    );
    assert!(said.contains("no early-deletion charge"), "{said}");
    assert!(!said.contains("deleted: a.txt"), "{said}");
    assert!(pack_file.is_file(), "the pack stays");
    let records = json(&sb, &["ls", "--set", "s", "--all", "--json"]);
    assert!(
        records
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["path"] != "a.txt"),
        "a.txt is forgotten: {records}"
    );

    // `firn cost` counts the pack once and the bytes a.txt left in it.
    let cost = json(&sb, &["cost", "--set", "s", "--json"]);
    assert_eq!(cost["packs"]["packs"], 1, "{cost}");
    assert_eq!(cost["packs"]["files"], 2, "{cost}");
    assert_eq!(
        cost["packs"]["dead_bytes_at_least"], 100_000,
        "a.txt's bytes, held in the pack: {cost}"
    );
    assert!(
        cost["packs"]["dead_monthly"].as_f64().unwrap() > 0.0,
        "{cost}"
    );
    assert_eq!(
        cost["stored_objects"].as_u64(),
        cost["snapshots"]["archives"].as_u64().map(|n| n + 2),
        "a pack and big.bin, and the catalog's snapshots: {cost}"
    );
    let text = stdout(&ok(&sb, &["cost", "--set", "s"]));
    assert!(text.contains("1 pack"), "{text}");
    assert!(text.contains("dead bytes"), "{text}");

    // The rest of the pack still restores, byte for byte.
    let to = sb.path().join("restored");
    let to_arg = to.display().to_string();
    ok(&sb, &["restore", "--set", "s", "--to", &to_arg]);
    for (name, content) in &files[1..] {
        assert_eq!(&std::fs::read(to.join(name)).unwrap(), content, "{name}");
    }
    assert!(!to.join("a.txt").exists());

    // Deleting the pack's last two files deletes the pack; the report says
    // which happened to each.
    let b = sb.tree().join("b.txt").display().to_string();
    let c = sb.tree().join("c.txt").display().to_string();
    let plan = json(
        &sb,
        &["delete", "--set", "s", &b, &c, "--dry-run", "--json"],
    );
    for item in plan["archives"].as_array().unwrap() {
        assert_eq!(item["pack"], "deleted", "{plan}");
        assert!(
            item["early_deletion_charge"].as_f64().unwrap() > 0.0,
            "{plan}"
        );
    }
    let done = json(&sb, &["delete", "--set", "s", &b, &c, "--yes", "--json"]);
    let outcomes = done["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 2, "{done}");
    assert!(outcomes.iter().all(|o| o["outcome"] == "deleted"), "{done}");
    assert_eq!(done["kept_in_packs"], 0, "{done}");
    assert!(!pack_file.exists(), "the pack went with its last file");
    let cost = json(&sb, &["cost", "--set", "s", "--json"]);
    assert_eq!(cost["packs"]["packs"], 0, "{cost}");
    assert_eq!(cost["packs"]["dead_bytes_at_least"], 0, "{cost}");
}

#[test]
fn prune_forgets_an_early_packed_version_for_free_and_leaves_a_pack_it_would_delete_early() {
    let sb = Sandbox::new();
    sb.write_config(SET);
    // One pack of three files; then a.txt changes, and lone.txt is alone in a
    // pack of its own before it changes too.
    sb.write("a.txt", pattern(50_000, 1));
    sb.write("b.txt", pattern(50_001, 2));
    sb.write("c.txt", pattern(50_002, 3));
    ok(&sb, &["backup", "--set", "s"]);
    sb.write("lone.txt", pattern(50_003, 4));
    ok(&sb, &["backup", "--set", "s"]);
    sb.write("a.txt", pattern(50_010, 5));
    sb.write("lone.txt", pattern(50_011, 6));
    ok(&sb, &["backup", "--set", "s"]);
    let records = json(&sb, &["ls", "--set", "s", "--all", "--json"]);
    let old = |path: &str| {
        records
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"] == path && r["state"] != "current")
            .unwrap_or_else(|| panic!("no superseded {path}: {records}"))
            .clone()
    };
    let (old_a, old_lone) = (old("a.txt"), old("lone.txt"));

    // Both superseded versions are inside the minimum period. Forgetting the
    // old a.txt costs nothing (b and c keep its pack); the old lone.txt would
    // delete its pack early, so it waits like any early archive.
    let plan = json(&sb, &["prune", "--set", "s", "--dry-run", "--json"]);
    let items = plan["archives"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{plan}");
    assert_eq!(items[0]["path"], "a.txt", "{plan}");
    assert_eq!(items[0]["archive_id"], old_a["archive_id"], "{plan}");
    assert_eq!(items[0]["pack"], "kept", "{plan}");
    assert_eq!(items[0]["early_deletion_charge"], 0.0, "{plan}");
    assert_eq!(plan["total_early_deletion_charge"], 0.0, "{plan}");

    ok(&sb, &["prune", "--set", "s", "--yes"]);
    let after = json(&sb, &["ls", "--set", "s", "--all", "--json"]);
    let after = after.as_array().unwrap();
    assert!(
        !after
            .iter()
            .any(|r| r["path"] == "a.txt" && r["state"] != "current"),
        "the old a.txt is forgotten: {after:?}"
    );
    assert!(
        after
            .iter()
            .any(|r| r["archive_id"] == old_lone["archive_id"] && r["path"] == "lone.txt"),
        "the old lone.txt waits for its minimum period: {after:?}"
    );
    let pack = old_a["archive_id"].as_str().unwrap();
    assert!(
        sb.store_dir()
            .join("archives")
            .join(&pack[..2])
            .join(pack)
            .is_file(),
        "the pack stays for b.txt and c.txt"
    );
}

#[test]
fn deleting_a_pack_by_its_id_plans_every_file_it_holds() {
    let sb = Sandbox::new();
    sb.write_config(SET);
    sb.write("a.txt", pattern(10_000, 1));
    sb.write("b.txt", pattern(10_001, 2));
    sb.write("c.txt", pattern(10_002, 3));
    ok(&sb, &["backup", "--set", "s"]);
    let records = json(&sb, &["ls", "--set", "s", "--json"]);
    let pack = record(&records, "a.txt")["archive_id"]
        .as_str()
        .unwrap()
        .to_string();
    let plan = json(
        &sb,
        &[
            "delete",
            "--set",
            "s",
            "--archive",
            &pack,
            "--dry-run",
            "--json",
        ],
    );
    let mut paths: Vec<&str> = plan["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["pack"], "deleted", "{plan}");
            i["path"].as_str().unwrap()
        })
        .collect();
    paths.sort_unstable();
    assert_eq!(paths, ["a.txt", "b.txt", "c.txt"], "{plan}");
    ok(&sb, &["delete", "--set", "s", "--archive", &pack, "--yes"]);
    let pack_file = sb.store_dir().join("archives").join(&pack[..2]).join(&pack);
    assert!(!pack_file.exists(), "the pack is deleted");
    let left = json(&sb, &["ls", "--set", "s", "--all", "--json"]);
    assert_eq!(left.as_array().map(Vec::len), Some(0), "{left}");
}
