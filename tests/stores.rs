//! A file is safe only in the store its set uses now (invariant 9): moving a set
//! to another store (a new external disk, say) makes every file pending again
//! there, and archives in the old store are neither counted nor deleted from here.

mod common;

use common::{Sandbox, assert_exit, status_of, stdout};

#[test]
fn a_new_store_holds_nothing_until_a_backup_puts_it_there() {
    let sb = Sandbox::new();
    // One archive per file: the test follows each file's own archive in the
    // old store and deletes one of them by its id (a pack's id names every
    // file in it).
    sb.write_config_text("[defaults]\npack_small_files = false\n");
    sb.write("a.txt", "alpha");
    sb.write("docs/b.txt", "bravo");
    let tree = sb.tree().display().to_string();
    let new_store = sb.path().join("new-disk");
    let new_store_arg = new_store.display().to_string();
    let with_new = ["--store-dir", new_store_arg.as_str()];

    let (code, first) = sb.backup_json(&["--retention", "delete"]);
    assert_eq!(code, Some(0), "{first}");
    assert_eq!(first["uploaded_files"], 2);
    let old_archives = sb.store_archives();
    assert_eq!(old_archives.len(), 2);

    // The bug this guards against: "up to date" while the new store is empty.
    let doc = sb.status_json(&with_new);
    assert_eq!(status_of(&doc, "a.txt"), "other-store", "{doc}");
    assert_eq!(status_of(&doc, "docs/b.txt"), "other-store");
    assert_eq!(doc["summary"]["pending"]["files"], 2);
    assert_eq!(doc["summary"]["up_to_date"]["files"], 0);
    let text = sb.firn([
        "status",
        tree.as_str(),
        "--store-dir",
        new_store_arg.as_str(),
    ]);
    assert!(
        stdout(&text).contains("in another store only"),
        "{}",
        stdout(&text)
    );

    // A backup to the new store uploads both; the old store's archives become
    // superseded versions and stay where they are, even under `retention = delete`.
    let mut args = vec!["--retention", "delete"];
    args.extend(with_new);
    let (code, second) = sb.backup_json(&args);
    assert_eq!(code, Some(0), "{second}");
    assert_eq!(second["uploaded_files"], 2, "{second}");
    assert_eq!(second["superseded_deleted"], 0, "{second}");
    assert_eq!(
        sb.store_archives(),
        old_archives,
        "the old store is untouched"
    );
    let doc = sb.status_json(&with_new);
    assert_eq!(doc["summary"]["up_to_date"]["files"], 2, "{doc}");
    // Judged against the old store now, the current versions live elsewhere.
    let doc = sb.status_json(&[]);
    assert_eq!(status_of(&doc, "a.txt"), "other-store");

    // `ls` names each archive's store.
    let (_, rows) = sb.firn_json(["ls", "--root", tree.as_str(), "--all", "--json"]);
    let targets: std::collections::BTreeSet<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(targets.len(), 2, "{rows}");
    let listing = sb.firn(["ls", "--root", tree.as_str(), "--all"]);
    assert!(
        stdout(&listing).contains(&format!(
            "(in local:{})",
            std::fs::canonicalize(&new_store).unwrap().display()
        )),
        "{}",
        stdout(&listing)
    );

    // Restoring needs the store that holds the archive: named, it works.
    let to = sb.path().join("out");
    let to_arg = to.display().to_string();
    let out = sb.firn(["restore", "--root", tree.as_str(), "--to", to_arg.as_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("is archived in store") && stdout(&out).contains("name that store"),
        "{}",
        stdout(&out)
    );
    assert!(!to.join("a.txt").exists());
    let out = sb.firn([
        "restore",
        "--root",
        tree.as_str(),
        "--to",
        to_arg.as_str(),
        "--store-dir",
        new_store_arg.as_str(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        std::fs::read_to_string(to.join("docs/b.txt")).unwrap(),
        "bravo"
    );

    // Deleting an old-store archive through the new store is refused, not faked.
    let old = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] == "superseded")
        .unwrap()["archive_id"]
        .as_str()
        .unwrap()
        .to_string();
    let delete_old = |extra: &[&str]| {
        let mut args = vec!["delete", "--root", &tree, "--archive", &old, "--yes"];
        args.extend(extra);
        sb.firn(args)
    };
    let out = delete_old(&with_new);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("not in"), "{}", stdout(&out));
    assert_eq!(sb.store_archives(), old_archives);
    // In its own store it deletes as usual.
    let out = delete_old(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(sb.store_archives().len(), 1);
}
