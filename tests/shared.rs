//! Sets that share a store (invariant 12 in the crate docs): one embedded store
//! directory, one S3 bucket, one Glacier vault with one DynamoDB table, each
//! used by several sets on several "hosts" (a config, a data directory and a
//! tree of their own). No set's inventory, orphan deletion, rebuild, recovery
//! or prune takes or deletes another set's archive — also in a store written
//! before archives named their set, once each set has claimed its own, and
//! after an older firn's rebuild took other sets' archives (released again).
//!
//! The trees are alike on purpose: every set has `sub/f0`… with the same sizes
//! and mtimes and other bytes, so an archive taken by path, size and mtime
//! alone would be the wrong set's.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::aws::{FakeCloud, aws_env, sdk_config};
use common::{last_json, stderr, stdout};
use serde_json::Value;

/// Where the shared store is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    /// One embedded store directory; each set its own SQLite catalog.
    Embedded,
    /// One S3 bucket, every set at its top (as sets kept their objects before
    /// each had its own prefix); each set its own SQLite catalog.
    S3Top,
    /// One Glacier vault and one DynamoDB table for sets a and b; the third set
    /// keeps its own SQLite catalog.
    Glacier,
}

struct Shared {
    backend: Backend,
    cloud: Option<FakeCloud>,
    /// The embedded store's directory, and the hosts' homes.
    dir: tempfile::TempDir,
}

impl Shared {
    fn new(backend: Backend) -> Shared {
        let dir = tempfile::Builder::new()
            .prefix("firn-shared-")
            .tempdir_in(if Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "/tmp"
            })
            .expect("temp dir");
        let cloud = (backend != Backend::Embedded).then(FakeCloud::start);
        Shared {
            backend,
            cloud,
            dir,
        }
    }

    fn endpoint(&self) -> Option<String> {
        self.cloud.as_ref().map(|c| c.endpoint.clone())
    }

    /// The settings of a set on this store; `own_catalog`: an SQLite catalog of
    /// its own even where the others share a DynamoDB table.
    fn set_body(&self, own_catalog: bool) -> String {
        let store = match self.backend {
            Backend::Embedded => format!(
                "store = {{ kind = \"local\", path = {:?} }}\n",
                self.dir.path().join("store")
            ),
            Backend::S3Top => "store = { kind = \"s3\", bucket = \"shared\", prefix = \"\", storage_class = \"GLACIER\", force_path_style = true }\n".into(),
            Backend::Glacier => "store = { kind = \"glacier\", vault = \"shared-vault\" }\n".into(),
        };
        let catalog = if self.backend == Backend::Glacier && !own_catalog {
            "catalog = { kind = \"dynamodb\", table = \"firn-shared\" }\n"
        } else {
            ""
        };
        format!("retention = \"keep\"\n{store}{catalog}")
    }

    /// A host with set `set` on this store.
    fn host(&self, set: &str, own_catalog: bool) -> Host {
        let host = Host {
            home: self.dir.path().join(format!("host-{set}")),
            set: set.into(),
            endpoint: self.endpoint(),
        };
        host.write_config(&self.set_body(own_catalog));
        if self.backend != Backend::Embedded {
            host.ok(&["init", "--yes"]);
        }
        host
    }
}

/// One set on one host: its config, data directory and tree under `home`.
struct Host {
    home: PathBuf,
    set: String,
    endpoint: Option<String>,
}

impl Host {
    fn tree(&self) -> PathBuf {
        self.home.join("tree")
    }

    fn data(&self) -> PathBuf {
        self.home.join("data")
    }

    fn write_config(&self, body: &str) {
        let path = self.home.join("config/firn/config.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            format!("[sets.{}]\nroot = {:?}\n{body}", self.set, self.tree()),
        )
        .unwrap();
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firn"));
        cmd.env("FIRN_DATA_DIR", self.data())
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env_remove("FIRN_CONFIG")
            .env_remove("FIRN_FAULT");
        if let Some(endpoint) = &self.endpoint {
            cmd.envs(aws_env(endpoint));
        }
        cmd
    }

    /// `firn ARGS --set SET`.
    fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .args(["--set", &self.set])
            .output()
            .expect("run firn")
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "set {}: firn {args:?}: {}{}",
            self.set,
            stdout(&out),
            stderr(&out)
        );
        out
    }

    /// `firn ARGS --set SET --json`: exit code and document.
    fn json(&self, args: &[&str]) -> (Option<i32>, Value) {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.run(&args);
        (out.status.code(), last_json(&out))
    }

    fn ok_json(&self, args: &[&str]) -> Value {
        let (code, doc) = self.json(args);
        assert_eq!(code, Some(0), "set {}: firn {args:?}: {doc}", self.set);
        doc
    }

    /// `count` files `sub/f<i>`: the set's name and the index on 1 to 5 lines
    /// (so the same sizes in every set), mtime 1,700,000,000 + i.
    fn write_tree(&self, count: usize) {
        std::fs::create_dir_all(self.tree().join("sub")).unwrap();
        for i in 0..count {
            let line = format!("set {} file {i:03}\n", self.set);
            let path = self.tree().join(format!("sub/f{i}"));
            std::fs::write(&path, line.repeat(i % 5 + 1)).unwrap();
            set_mtime(&path, 1_700_000_000 + i as u64);
        }
    }

    /// Every file of the tree: relative path → bytes.
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        files_under(&self.tree())
    }

    /// Every catalog record: (archive id, path, state), sorted.
    fn versions(&self) -> Vec<(String, String, String)> {
        let doc = self.ok_json(&["ls", "--all"]);
        let mut out: Vec<_> = doc
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["archive_id"].as_str().unwrap().to_string(),
                    r["path"].as_str().unwrap().to_string(),
                    r["state"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Restores every file into a new directory and compares it with the tree
    /// (`expected`) byte for byte.
    fn restores_exactly(&self, expected: &BTreeMap<String, Vec<u8>>) {
        let to = self.home.join("restored");
        let _ = std::fs::remove_dir_all(&to);
        let to_text = to.to_string_lossy().into_owned();
        self.ok(&["restore", "sub", "--to", &to_text, "--tier", "expedited"]);
        assert_eq!(&files_under(&to), expected, "set {} restored", self.set);
    }

    /// The inventory of the set (exit code, document).
    fn inventory(&self, extra: &[&str]) -> (Option<i32>, Value) {
        let mut args = vec!["inventory"];
        args.extend_from_slice(extra);
        self.json(&args)
    }
}

fn set_mtime(path: &Path, secs: u64) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap();
}

fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let relative = e.path().strip_prefix(root).unwrap();
            (
                relative.to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Backs up several hosts at the same time; every run must succeed.
fn back_up_together(hosts: &[&Host]) {
    let children: Vec<_> = hosts
        .iter()
        .map(|h| {
            h.command()
                .args(["backup", "--set", &h.set])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, host) in children.into_iter().zip(hosts) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "set {}: {}{}",
            host.set,
            stdout(&out),
            stderr(&out)
        );
    }
}

/// How many archives of `set` an inventory counts among other sets'.
fn counted_for(inventory: &Value, set: &str) -> u64 {
    inventory["other_sets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] == set)
        .map(|o| o["archives"].as_u64().unwrap())
        .sum()
}

/// How many archives hold the versions of `host`'s set.
fn archives_of(host: &Host) -> u64 {
    let ids: std::collections::BTreeSet<String> =
        host.versions().into_iter().map(|v| v.0).collect();
    ids.len() as u64
}

/// An inventory taken now that finds this set consistent (exit 0).
fn consistent(host: &Host) -> Value {
    let (code, doc) = host.inventory(&["--refresh"]);
    assert_eq!(code, Some(0), "set {}: {doc}", host.set);
    assert_eq!(doc["problems"], 0, "set {}: {doc}", host.set);
    doc
}

/// The checks every shared store passes: `a` and `b` hold many files, `c` a few
/// with more than one version, each set in its own catalog.
fn passes_the_shared_store_checks(a: &Host, b: &Host, c: &Host) {
    let (a_records, b_records) = (a.versions().len() as u64, b.versions().len() as u64);
    // Each inventory is consistent and names the other sets, never orphans.
    for (host, others) in [(a, [b, c]), (b, [a, c])] {
        let doc = consistent(host);
        let records = host.versions().len() as u64;
        assert_eq!(doc["matched"], records, "set {}: {doc}", host.set);
        for other in others {
            assert!(
                counted_for(&doc, &other.set) >= 1,
                "set {} does not name set {}: {doc}",
                host.set,
                other.set
            );
        }
        // Every archive of the other set's files (a pack holds several).
        assert!(
            counted_for(&doc, &others[0].set) >= archives_of(others[0]),
            "set {}: {doc}",
            host.set
        );
        let text = stdout(&host.run(&["inventory", "--refresh"]));
        assert!(
            text.contains("of other sets sharing this store, left alone")
                && text.contains(&format!("of set {}", others[0].set)),
            "{text}"
        );
    }

    // Deleting a's orphans deletes nothing of b's; b restores byte for byte.
    let b_before = b.versions();
    let (code, doc) = a.inventory(&["--refresh", "--delete-orphans", "--yes"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["actions"].as_array().unwrap().len(), 0, "{doc}");
    let doc = consistent(b);
    assert_eq!(doc["matched"], b_records, "{doc}");
    assert_eq!(b.versions(), b_before);
    b.restores_exactly(&b.files());

    // c loses its catalog and its local state, rebuilds, and has exactly its
    // own versions back: from its snapshot, and from descriptions alone.
    let c_before = c.versions();
    assert!(c_before.iter().any(|v| v.2 == "superseded"), "{c_before:?}");
    for extra in [&[][..], &["--no-snapshot"][..]] {
        std::fs::remove_dir_all(c.data()).unwrap();
        let mut args = vec!["catalog", "rebuild"];
        args.extend_from_slice(extra);
        let doc = c.ok_json(&args);
        assert_eq!(doc["unknown_owner"], 0, "{doc}");
        assert_eq!(c.versions(), c_before, "rebuilt {extra:?}: {doc}");
    }
    c.restores_exactly(&c.files());

    // Prune with retention "delete" on c deletes its superseded version, and
    // nothing of a's or b's.
    let pruned = c.ok_json(&["prune", "--retention", "delete", "--include-early", "--yes"]);
    assert_eq!(pruned["deleted"], 1, "{pruned}");
    for (host, records) in [(a, a_records), (b, b_records)] {
        let doc = consistent(host);
        assert_eq!(doc["matched"], records, "{doc}");
    }
    a.restores_exactly(&a.files());
}

/// Two sets back up into one store at the same time, a third beside them.
fn two_sets_and_a_third_share(backend: Backend) {
    let shared = Shared::new(backend);
    let a = shared.host("a", false);
    let b = shared.host("b", false);
    let c = shared.host("c", true);
    a.write_tree(40);
    b.write_tree(40);
    c.write_tree(8);
    back_up_together(&[&a, &b, &c]);
    // A second version of one of c's files (archive creation times are whole
    // seconds: a rebuild from descriptions orders versions by them), then one
    // more of a's stored after c's last catalog snapshot (a rebuild of c must
    // not take it).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(c.tree().join("sub/f0"), "set c file 000, second version\n").unwrap();
    set_mtime(&c.tree().join("sub/f0"), 1_700_000_500);
    c.ok(&["backup"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(a.tree().join("sub/f1"), "set a file 001, v2!\n").unwrap();
    set_mtime(&a.tree().join("sub/f1"), 1_700_000_501);
    a.ok(&["backup"]);
    // a now has 40 current versions and 1 superseded.
    assert_eq!(a.versions().len(), 41);
    passes_the_shared_store_checks(&a, &b, &c);
}

#[test]
fn sets_sharing_an_embedded_store_never_touch_each_others_archives() {
    two_sets_and_a_third_share(Backend::Embedded);
}

#[test]
fn sets_sharing_the_top_of_an_s3_bucket_never_touch_each_others_archives() {
    two_sets_and_a_third_share(Backend::S3Top);
}

#[test]
fn sets_sharing_a_glacier_vault_and_a_dynamodb_table_never_touch_each_others_archives() {
    two_sets_and_a_third_share(Backend::Glacier);
}

/// A set killed between the store's confirmation and its journal, while another
/// set with the same paths, sizes and mtimes backs up into the same store: the
/// rerun adopts its own stray archives, and only those.
fn a_killed_backup_adopts_only_its_own_strays(backend: Backend) {
    let shared = Shared::new(backend);
    let a = shared.host("a", false);
    let b = shared.host("b", false);
    a.write_tree(30);
    b.write_tree(30);
    let killed = a
        .command()
        .args(["backup", "--set", "a"])
        .env("FIRN_FAULT", "after-store")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    b.ok(&["backup"]);
    let out = killed.wait_with_output().unwrap();
    assert!(!out.status.success(), "the fault point was not reached");
    assert!(a.versions().is_empty(), "nothing recorded before the kill");

    let rerun = a.ok(&["backup"]);
    let text = stdout(&rerun);
    assert_eq!(
        text.matches("recovered: sub/f").count(),
        30,
        "every stray of a's own is adopted: {text}"
    );
    for host in [&a, &b] {
        let doc = consistent(host);
        assert_eq!(doc["matched"], 30, "{doc}");
        assert_eq!(doc["disputed"].as_array().unwrap().len(), 0, "{doc}");
    }
    a.restores_exactly(&a.files());
    b.restores_exactly(&b.files());
}

#[test]
fn a_killed_backup_in_a_shared_embedded_store_adopts_only_its_own_strays() {
    a_killed_backup_adopts_only_its_own_strays(Backend::Embedded);
}

#[test]
fn a_killed_backup_at_the_top_of_a_shared_bucket_adopts_only_its_own_strays() {
    a_killed_backup_adopts_only_its_own_strays(Backend::S3Top);
}

/// Where tests/fixtures/make-firn1-shared.sh made the fixture (its catalogs
/// name the store by this path).
const FIXTURE_ROOT: &str = "/tmp/firn1-shared-fixture";

/// A host of the fixture, its tree made again as the script made it.
fn fixture_host(set: &str, files: usize) -> Host {
    let host = Host {
        home: Path::new(FIXTURE_ROOT).join(set),
        set: set.into(),
        endpoint: None,
    };
    host.write_tree(files);
    host
}

#[test]
fn a_store_shared_before_archives_named_their_set_is_claimed_and_then_safe() {
    // One run at a time on this machine uses the fixture's fixed place.
    let lock = std::fs::File::create(format!("{FIXTURE_ROOT}.lock")).unwrap();
    // SAFETY: flock on a file descriptor this function owns; released on drop.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) },
        0
    );
    let _ = std::fs::remove_dir_all(FIXTURE_ROOT);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/firn1-shared.tar.gz");
    let untar = Command::new("tar")
        .args(["xzf", &fixture.to_string_lossy(), "-C", "/tmp"])
        .status()
        .unwrap();
    assert!(untar.success());
    let a = fixture_host("a", 30);
    let b = fixture_host("b", 30);
    let c = fixture_host("c", 10);
    std::fs::write(c.tree().join("sub/f0"), "set c file 000 v2\n").unwrap();
    set_mtime(&c.tree().join("sub/f0"), 1_700_000_500);
    // d's catalog was rebuilt by firn 0.1: it names a's, b's and c's archives.
    let d = fixture_host("d", 5);
    assert_eq!(d.versions().len(), 76);
    let store_archives = || files_under(&Path::new(FIXTURE_ROOT).join("store/archives")).len();
    let stored = store_archives();

    // Before any claim: the other sets' archives are of unknown owner in a
    // shared store (their snapshots say other sets use it): unclaimed, never
    // orphans, and --delete-orphans deletes none of them.
    let (code, doc) = a.inventory(&["--delete-orphans", "--yes"]);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["orphans"].as_array().unwrap().len(), 0, "{doc}");
    assert_eq!(
        doc["unclaimed"].as_array().unwrap().len(),
        46,
        "b, c, d: {doc}"
    );
    assert_eq!(doc["actions"].as_array().unwrap().len(), 0, "{doc}");
    assert_eq!(store_archives(), stored, "nothing deleted");
    // Nor does a rebuild of c adopt them.
    let (code, doc) = c.json(&["catalog", "rebuild", "--no-snapshot"]);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(
        (doc["current"].as_u64(), doc["superseded"].as_u64()),
        (Some(0), Some(0)),
        "{doc}"
    );
    assert_eq!(doc["unknown_owner"], 65, "a's, b's and d's: {doc}");
    let stored = store_archives();

    // Each set claims the archives its catalog names.
    for (host, claimed) in [(&a, 30), (&b, 30), (&c, 11)] {
        let doc = host.ok_json(&["catalog", "claim"]);
        assert_eq!(doc["claimed"], claimed, "set {}: {doc}", host.set);
        assert_eq!(doc["claim_archives"], 1, "{doc}");
        assert_eq!(doc["others"].as_array().unwrap().len(), 0, "{doc}");
    }
    let again = a.ok_json(&["catalog", "claim"]);
    assert_eq!(
        (again["claimed"].as_u64(), again["already_mine"].as_u64()),
        (Some(0), Some(30)),
        "{again}"
    );
    assert_eq!(store_archives(), stored + 3, "one claim each");

    // d claims its own five, not the 71 the others claimed first.
    let (code, doc) = d.json(&["catalog", "claim"]);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["claimed"], 5, "{doc}");
    assert_eq!(doc["others"].as_array().unwrap().len(), 71, "{doc}");
    // d's inventory finds them disputed; d's prune deletes none of them, nor
    // d's own older versions of the files whose current version is another
    // set's (its only copies of them).
    let (code, doc) = d.inventory(&[]);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["disputed"].as_array().unwrap().len(), 71, "{doc}");
    let stored = store_archives();
    let (code, doc) = d.json(&["prune", "--retention", "delete", "--include-early", "--yes"]);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["deleted"], 0, "{doc}");
    assert_eq!(store_archives(), stored, "nothing deleted");
    // d releases them: its own versions are current again, nothing is deleted.
    let doc = d.ok_json(&["catalog", "release"]);
    assert_eq!(doc["released"].as_array().unwrap().len(), 71, "{doc}");
    assert_eq!(doc["current_again"].as_array().unwrap().len(), 5, "{doc}");
    assert_eq!(d.versions().len(), 5);
    let doc = consistent(&d);
    assert_eq!(doc["matched"], 5, "{doc}");
    d.restores_exactly(&d.files());
    let pruned = d.ok_json(&["prune", "--retention", "delete", "--include-early", "--yes"]);
    assert_eq!(pruned["deleted"], 0, "{pruned}");
    assert_eq!(store_archives(), stored + 1, "d's catalog snapshot");

    passes_the_shared_store_checks(&a, &b, &c);
    let _ = std::fs::remove_dir_all(FIXTURE_ROOT);
}

/// How many files `firn status` finds up to date.
fn up_to_date(host: &Host) -> usize {
    let doc = host.ok_json(&["status"]);
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "up-to-date")
        .count()
}

/// Keys in the bucket, through the SDK.
fn bucket_keys(endpoint: &str, bucket: &str) -> Vec<String> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let config = sdk_config(endpoint).await;
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let out = client
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    })
}

#[test]
fn new_sets_in_one_bucket_each_get_a_prefix_of_their_own() {
    let shared = Shared::new(Backend::S3Top);
    let endpoint = shared.endpoint().unwrap();
    let body = "retention = \"keep\"\nstore = { kind = \"s3\", bucket = \"family\", force_path_style = true }\n";
    let host = |set: &str| {
        let host = Host {
            home: shared.dir.path().join(format!("host-{set}")),
            set: set.into(),
            endpoint: Some(endpoint.clone()),
        };
        host.write_config(body);
        host
    };
    let (alice, bob) = (host("alice"), host("bob"));
    let init = stdout(&alice.ok(&["init", "--yes"]));
    assert!(init.contains("go under s3://family/alice/"), "{init}");
    alice.write_tree(5);
    bob.write_tree(5);
    back_up_together(&[&alice, &bob]);
    let keys = bucket_keys(&endpoint, "family");
    for host in [&alice, &bob] {
        let set = &host.set;
        let under = keys
            .iter()
            .filter(|k| k.starts_with(&format!("{set}/")))
            .count() as u64;
        // Its files' archives (5 files, in packs) and a snapshot.
        let versions = host.versions();
        assert_eq!(versions.len(), 5, "{versions:?}");
        for (archive_id, ..) in &versions {
            assert!(archive_id.starts_with(&format!("{set}/")), "{archive_id}");
        }
        assert!(
            under > archives_of(host),
            "{set}: its files' archives and a snapshot: {keys:?}"
        );
    }
    assert!(
        keys.iter()
            .all(|k| k.starts_with("alice/") || k.starts_with("bob/")),
        "{keys:?}"
    );
    let doc = consistent(&alice);
    assert_eq!(
        doc["other_sets"].as_array().unwrap().len(),
        0,
        "bob's prefix is not alice's"
    );

    // Another host's set named alice, with a catalog of its own, is refused:
    // it would take alice's objects for its orphans.
    let other_alice = Host {
        home: shared.dir.path().join("other-host-alice"),
        set: "alice".into(),
        endpoint: Some(endpoint.clone()),
    };
    other_alice.write_config(body);
    let out = other_alice.run(&["init", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out)
            .contains("already holds objects of a set named alice that its catalog does not know"),
        "{}",
        stderr(&out)
    );
    // The same set on a new machine rebuilds first; then init is content.
    other_alice.ok(&["catalog", "rebuild"]);
    other_alice.ok(&["init", "--yes"]);

    // A set told to use bob's prefix is refused at init, in one line.
    let carol = host("carol");
    carol.write_config(
        "store = { kind = \"s3\", bucket = \"family\", prefix = \"bob\", force_path_style = true }\n",
    );
    let out = carol.run(&["init", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let line = stderr(&out);
    assert!(
        line.contains("s3://family/bob/ already holds objects of another set")
            && line.contains("prefix = ")
            && line.lines().count() == 1,
        "{line}"
    );
}

#[test]
fn a_set_that_kept_its_objects_at_the_top_of_a_bucket_stays_there() {
    let shared = Shared::new(Backend::S3Top);
    let old = shared.host("old", false);
    old.write_tree(4);
    old.ok(&["backup"]);
    // Its config as firn wrote it before sets had prefixes: none named.
    old.write_config(
        "retention = \"keep\"\nstore = { kind = \"s3\", bucket = \"shared\", storage_class = \"GLACIER\", force_path_style = true }\n",
    );
    assert_eq!(up_to_date(&old), 4, "its catalog names the top");
    // Catalog and local state lost: its snapshots at the top say where it is.
    std::fs::remove_dir_all(old.data()).unwrap();
    let doc = old.ok_json(&["catalog", "rebuild"]);
    assert_eq!(doc["snapshot"]["records"], 4, "{doc}");
    assert_eq!(up_to_date(&old), 4);
    old.restores_exactly(&old.files());
    let keys = bucket_keys(shared.endpoint().as_deref().unwrap(), "shared");
    assert!(keys.iter().all(|k| !k.starts_with("old/")), "{keys:?}");
}

/// Two sets with the very same files (a photo library on two machines) move
/// from stores of their own into one shared store; one migration is killed
/// after storing a copy it had not recorded yet. Taking it up, it must not take
/// the other set's identical copy for its own.
#[test]
fn a_killed_migration_into_a_shared_store_takes_up_only_its_own_copies() {
    let shared = Shared::new(Backend::Embedded);
    let store = |name: &str| shared.dir.path().join(name);
    let body = |store_dir: &Path, previous: Option<&Path>| {
        let mut body =
            format!("retention = \"keep\"\nstore = {{ kind = \"local\", path = {store_dir:?} }}\n");
        if let Some(previous) = previous {
            body.push_str(&format!(
                "previous_store = {{ kind = \"local\", path = {previous:?} }}\n"
            ));
        }
        body
    };
    let hosts: Vec<Host> = ["a", "b"]
        .iter()
        .map(|set| {
            let host = Host {
                home: shared.dir.path().join(format!("host-{set}")),
                set: set.to_string(),
                endpoint: None,
            };
            host.write_config(&body(&store(&format!("old-{set}")), None));
            std::fs::create_dir_all(host.tree().join("sub")).unwrap();
            for i in 0..4 {
                let path = host.tree().join(format!("sub/photo{i}.jpg"));
                std::fs::write(&path, format!("the same photo {i}\n").repeat(i + 1)).unwrap();
                set_mtime(&path, 1_700_000_000 + i as u64);
            }
            host.ok(&["backup"]);
            host.write_config(&body(&store("shared"), Some(&store(&format!("old-{set}")))));
            host
        })
        .collect();
    let (a, b) = (&hosts[0], &hosts[1]);
    let files = a.files();
    assert_eq!(files, b.files(), "the same files");

    b.ok(&["migrate", "--yes"]);
    // a's tree is gone: its copies come from retrievals of its old store.
    std::fs::remove_dir_all(a.tree()).unwrap();
    let killed = a
        .command()
        .args(["migrate", "--set", "a", "--yes"])
        .env("FIRN_FAULT", "migrate-stored")
        .output()
        .unwrap();
    assert!(!killed.status.success(), "{}", stdout(&killed));
    a.ok(&["migrate", "--yes"]);

    let current = |host: &Host| -> Vec<String> {
        host.versions()
            .into_iter()
            .filter(|v| v.2 == "current")
            .map(|v| v.0)
            .collect()
    };
    let (mine, theirs) = (current(a), current(b));
    assert_eq!((mine.len(), theirs.len()), (4, 4));
    assert!(
        mine.iter().all(|id| !theirs.contains(id)),
        "a recorded b's copy: {mine:?} {theirs:?}"
    );
    for host in [a, b] {
        let doc = consistent(host);
        assert_eq!(doc["disputed"].as_array().unwrap().len(), 0, "{doc}");
        // The originals stay in the old stores, which still exist: recorded in
        // another store, not missing from this one (however long ago).
        assert_eq!(doc["other_store"], 4, "{doc}");
    }
    a.restores_exactly(&files);
}
