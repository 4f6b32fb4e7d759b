//! Every command through a faulty network. A seeded fault proxy
//! (`common::aws::Faults::heavy`) sits between firn and the AWS stand-in and
//! answers 15% of requests with 503 SlowDown and 5% with 500, drops 5% of
//! connections after the server got the request and cuts 5% of answers in half.
//! Through it, on S3 and on Glacier + DynamoDB: init, backup, status, ls, a
//! second backup, restore (byte for byte), jobs, delete, prune, catalog snapshot,
//! inventory, catalog rebuild, and migrate (embedded store → S3, vault → S3).
//! Each must exit 0; after each, nothing is recorded that the store lacks; at
//! the end an inventory taken without faults is clean.
//!
//! Each test has its seed (one sequence of faults by arrival order), printed on
//! failure; `FIRN_TEST_FAULT_SEED=<n>` replays another. Targeted tests pin the
//! care of writes that are not idempotent (a lost answer to an S3
//! CompleteMultipartUpload, a Glacier InitiateJob, a DynamoDB conditional write)
//! and the one limit left (a lost answer to a Glacier UploadArchive: an orphan
//! the inventory reports); one reads a multipart object from a server that
//! answers a part request with the whole object (moto).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::aws::{Action, FaultProxy, Faults, Moto, RequestInfo, sdk_config};
use common::aws_sandbox::AwsSandbox;
use common::{Sandbox, last_json, pattern, stderr, stdout};

const MIB: usize = 1 << 20;

/// The seed of a run: `FIRN_TEST_FAULT_SEED` replays one, else the test's own.
fn seed_or(default: u64) -> u64 {
    std::env::var("FIRN_TEST_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    /// An S3 bucket (GLACIER class: every restore goes through RestoreObject),
    /// the SQLite catalog.
    S3,
    /// A Glacier vault and a DynamoDB table.
    Glacier,
}

const BUCKET: &str = "stormy";
const VAULT: &str = "stormy";
const TABLE: &str = "firn-stormy";

impl Backend {
    fn store(self) -> String {
        match self {
            Backend::S3 => format!(
                "store = {{ kind = \"s3\", bucket = \"{BUCKET}\", storage_class = \"GLACIER\", force_path_style = true, single_upload_max = 1048576 }}"
            ),
            Backend::Glacier => format!(
                "store = {{ kind = \"glacier\", vault = \"{VAULT}\", single_upload_max = 1048576, part_memory_budget = 8388608, part_concurrency = 2 }}\ncatalog = {{ kind = \"dynamodb\", table = \"{TABLE}\" }}"
            ),
        }
    }

    /// The faults for this backend: Glacier's archive creations get only those
    /// that never reach the server. UploadArchive names its archive only in its
    /// answer, so a lost answer leaves a copy no request can name (an inventory
    /// lists it as an orphan: the protocol's limit, not firn's); and the
    /// stand-in answers a repeated CompleteMultipartUpload "not found" where AWS
    /// documents it returns the same archive again.
    fn faults(self, seed: u64) -> Faults {
        let mut faults = Faults::heavy(seed);
        if self == Backend::Glacier {
            faults.spare = Some(RequestInfo::is_glacier_archive_creation);
        }
        faults
    }

    /// Large files: two parts each (S3 parts are 16 MiB; Glacier's here 2 and
    /// 4 MiB), over `single_upload_max`.
    fn large_files(self) -> Vec<(String, Vec<u8>)> {
        let sizes = match self {
            Backend::S3 => [16 * MIB + 1001, 2 * MIB + 3],
            Backend::Glacier => [5 * MIB + 1, 3 * MIB + 17],
        };
        vec![
            ("big/two-parts.bin".to_string(), pattern(sizes[0], 40)),
            ("big/other.bin".to_string(), pattern(sizes[1], 41)),
        ]
    }
}

/// The small files of every tree: tens of them, one empty.
fn small_files() -> Vec<(String, Vec<u8>)> {
    (0..24)
        .map(|i| {
            let len = if i == 0 { 0 } else { 37 * i + i * i * 11 };
            (
                format!("dir{}/file-{i:02}.txt", i % 4),
                pattern(len, i as u8),
            )
        })
        .collect()
}

/// A set `s` on a backend, and a fault proxy in front of its server.
struct Stormy {
    a: AwsSandbox,
    backend: Backend,
    seed: u64,
    proxy: FaultProxy,
    /// The tree as it should be restored.
    files: BTreeMap<String, Vec<u8>>,
    started: Instant,
}

impl Stormy {
    fn new(backend: Backend, seed: u64, set_body: &str) -> Stormy {
        let a = AwsSandbox::on_standin(Sandbox::in_memory(), set_body);
        let proxy = backend.faults(seed).proxy(a.endpoint());
        Stormy {
            a,
            backend,
            seed,
            proxy,
            files: BTreeMap::new(),
            started: Instant::now(),
        }
    }

    fn write(&mut self, name: &str, content: Vec<u8>) {
        self.a.sb.write(name, &content);
        self.files.insert(name.to_string(), content);
    }

    fn remove(&mut self, name: &str) {
        std::fs::remove_file(self.a.sb.tree().join(name)).expect("remove a file");
        self.files.remove(name);
    }

    /// The seed and the faults so far, for a failure message.
    fn context(&self) -> String {
        let log = self.proxy.log();
        let last: Vec<String> = log
            .iter()
            .skip(log.len().saturating_sub(6))
            .map(|(r, action)| format!("{} {} → {action}", r.method, r.path))
            .collect();
        format!(
            "seed {seed} (replay: FIRN_TEST_FAULT_SEED={seed}); proxy so far: {:?}; last requests: {last:?}",
            self.proxy.tally(),
            seed = self.seed
        )
    }

    /// Runs firn through the fault proxy; it must exit 0.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.a.run(&self.proxy.endpoint, args);
        assert!(
            out.status.success(),
            "firn {args:?} through the faults failed ({}): {}{}",
            self.context(),
            stdout(&out),
            stderr(&out)
        );
        out
    }

    /// Runs firn with `--json` through the fault proxy; it must exit 0.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        last_json(&self.ok(&all))
    }

    /// Every archive id the store holds, asked of the server directly.
    fn store_ids(&self) -> BTreeSet<String> {
        let endpoint = self.a.endpoint().to_string();
        match self.backend {
            Backend::S3 => s3_keys(&endpoint, BUCKET),
            Backend::Glacier => vault_archives(&endpoint, VAULT),
        }
    }

    /// Every catalog record (asked without faults).
    fn records(&self) -> Vec<serde_json::Value> {
        self.a.records()
    }

    /// Nothing recorded that the store lacks (records of the store in use).
    fn nothing_recorded_the_store_lacks(&self, after: &str) {
        let held = self.store_ids();
        let prefix = match self.backend {
            Backend::S3 => "s3:",
            Backend::Glacier => "glacier:",
        };
        for record in self.records() {
            let id = record["archive_id"].as_str().unwrap_or_default();
            let ours = record["target"]
                .as_str()
                .unwrap_or_default()
                .starts_with(prefix);
            assert!(
                !ours || id == "firn-empty-archive" || held.contains(id),
                "after {after}: {} is recorded as {id}, which the store does not hold ({})",
                record["path"],
                self.context()
            );
        }
    }

    /// An inventory without faults finds every archive where the catalog says
    /// and nothing else.
    fn inventory_is_clean(&self, after: &str) {
        // An inventory speaks only for archives older than itself (whole seconds).
        std::thread::sleep(Duration::from_millis(1100));
        let doc = self
            .a
            .json(&["inventory", "--set", "s", "--refresh", "--json"]);
        for list in ["orphans", "missing", "mismatched"] {
            assert_eq!(
                doc[list].as_array().map(Vec::len),
                Some(0),
                "after {after}: {list} in {doc} ({})",
                self.context()
            );
        }
        assert_eq!(doc["problems"], 0, "after {after}: {doc}");
        assert_eq!(
            doc["too_new"], 0,
            "after {after}: every record checked: {doc}"
        );
    }

    /// Restores every current version into a new directory through the faults
    /// and compares every byte.
    fn restore_and_compare(&self, name: &str) {
        let to = self.a.sb.path().join(name);
        self.ok(&[
            "restore",
            "--set",
            "s",
            "--to",
            to.to_str().expect("a UTF-8 path"),
            "--tier",
            "expedited",
        ]);
        assert_eq!(
            tree_of(&to),
            self.files,
            "restored tree differs ({})",
            self.context()
        );
    }

    /// The figures of this test, for the record (`--no-capture` shows them).
    fn report(&self, test: &str) {
        let tally = self.proxy.tally();
        let total: usize = tally.values().sum();
        let faulted = total - tally.get("forward").copied().unwrap_or(0);
        eprintln!(
            "{test}: seed {}, {total} requests, {faulted} faulted ({tally:?}), {:.1} s",
            self.seed,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Every file under `root`, by its path relative to it.
fn tree_of(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.expect("walk");
        if entry.file_type().is_file() {
            let relative = entry
                .path()
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .into_owned();
            out.insert(relative, std::fs::read(entry.path()).expect("read"));
        }
    }
    out
}

fn s3_keys(endpoint: &str, bucket: &str) -> BTreeSet<String> {
    rt().block_on(async {
        let config = sdk_config(endpoint).await;
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let mut keys = BTreeSet::new();
        let mut token = None;
        loop {
            let out = client
                .list_objects_v2()
                .bucket(bucket)
                .set_continuation_token(token)
                .send()
                .await
                .expect("list the bucket");
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            token = out.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return keys;
            }
        }
    })
}

/// The vault's archives, from an inventory job (the stand-in's are ready at once).
fn vault_archives(endpoint: &str, vault: &str) -> BTreeSet<String> {
    rt().block_on(async {
        let client = aws_sdk_glacier::Client::new(&sdk_config(endpoint).await);
        let job = client
            .initiate_job()
            .account_id("-")
            .vault_name(vault)
            .job_parameters(
                aws_sdk_glacier::types::JobParameters::builder()
                    .r#type("inventory-retrieval")
                    .format("JSON")
                    .build(),
            )
            .send()
            .await
            .expect("an inventory job");
        let out = client
            .get_job_output()
            .account_id("-")
            .vault_name(vault)
            .job_id(job.job_id().expect("a job id"))
            .customize()
            .interceptor(firn::aws::SingleContentType)
            .send()
            .await
            .expect("the inventory");
        let body = out.body.collect().await.expect("its body").into_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        doc["ArchiveList"]
            .as_array()
            .expect("an archive list")
            .iter()
            .map(|a| a["ArchiveId"].as_str().expect("an id").to_string())
            .collect()
    })
}

/// The catalog is gone: the SQLite file (and the set's local state), or the
/// DynamoDB table (dropped; `firn init` makes an empty one).
fn lose_catalog(s: &Stormy) {
    match s.backend {
        Backend::S3 => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", s.a.sb.catalog_db().display()));
            }
        }
        Backend::Glacier => {
            rt().block_on(async {
                let client = aws_sdk_dynamodb::Client::new(&sdk_config(s.a.endpoint()).await);
                client
                    .delete_table()
                    .table_name(TABLE)
                    .send()
                    .await
                    .expect("drop the table");
            });
            s.a.init();
        }
    }
    std::fs::remove_dir_all(s.a.sb.data().join("sets")).expect("remove local state");
    assert!(s.records().is_empty(), "the catalog is empty");
}

/// How many Glacier InitiateJob requests in `log` reached the vault (each one
/// a job Amazon bills).
fn jobs_started(log: &[(RequestInfo, String)]) -> usize {
    log.iter()
        .filter(|(r, action)| {
            r.is_initiate_job()
                && ["forward", "drop after forward", "cut in half"].contains(&action.as_str())
        })
        .count()
}

/// Path, archive id and state of every record, sorted.
fn record_keys(records: &[serde_json::Value]) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap_or_default().to_string(),
                r["archive_id"].as_str().unwrap_or_default().to_string(),
                r["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn every_command(backend: Backend, seed: u64, test: &str) {
    let mut s = Stormy::new(
        backend,
        seed,
        &format!("retention = \"keep\"\n{}\n", backend.store()),
    );
    for (name, content) in small_files().into_iter().chain(backend.large_files()) {
        s.write(&name, content);
    }
    let count = s.files.len() as u64;

    s.ok(&["init", "--set", "s", "--yes"]);
    let backup = s.json(&["backup", "--set", "s"]);
    assert_eq!(
        backup["uploaded_files"],
        count,
        "{backup} ({})",
        s.context()
    );
    s.nothing_recorded_the_store_lacks("backup");

    let status = s.json(&["status", "--set", "s"]);
    assert_eq!(
        status["summary"]["up_to_date"]["files"],
        count,
        "{status} ({})",
        s.context()
    );
    let listed = s.json(&["ls", "--set", "s"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(count as usize));

    // New versions of three small files and a large one: four superseded.
    for name in ["dir1/file-01.txt", "dir2/file-02.txt", "dir3/file-03.txt"] {
        s.write(name, format!("{name}, second version").into_bytes());
    }
    let (big, _) = backend.large_files().remove(0);
    s.write(&big, pattern(backend.large_files()[0].1.len() + 7, 42));
    let again = s.json(&["backup", "--set", "s"]);
    assert_eq!(again["uploaded_files"], 4, "{again} ({})", s.context());
    s.nothing_recorded_the_store_lacks("the second backup");

    let before = s.proxy.log().len();
    s.restore_and_compare("restored");
    if backend == Backend::Glacier {
        // One retrieval job per archive holding bytes to restore (a pack's
        // files share its job), however many answers were lost.
        let jobs = jobs_started(&s.proxy.log()[before..]);
        let archives: BTreeSet<String> = s
            .records()
            .iter()
            .filter(|r| r["state"] == "current" && r["size"].as_u64() != Some(0))
            .map(|r| r["archive_id"].as_str().unwrap_or_default().to_string())
            .collect();
        let with_bytes = s.files.values().filter(|c| !c.is_empty()).count();
        assert!(
            archives.len() < with_bytes,
            "small files share packs: {} archives for {with_bytes} files",
            archives.len()
        );
        assert_eq!(
            jobs,
            archives.len(),
            "retrieval jobs started ({})",
            s.context()
        );
    }
    s.ok(&["jobs", "--set", "s", "--json"]);

    // One file deleted, every version; the superseded versions pruned.
    s.ok(&[
        "delete",
        "--set",
        "s",
        "dir0/file-04.txt",
        "--all-versions",
        "--yes",
    ]);
    s.remove("dir0/file-04.txt");
    s.nothing_recorded_the_store_lacks("delete");
    assert!(
        !s.records().iter().any(|r| r["path"] == "dir0/file-04.txt"),
        "the deleted file is not recorded"
    );
    s.ok(&["prune", "--set", "s", "--include-early", "--yes"]);
    let records = s.records();
    assert_eq!(records.len(), s.files.len(), "only current versions left");
    assert!(
        records.iter().all(|r| r["state"] == "current"),
        "{records:?}"
    );
    s.nothing_recorded_the_store_lacks("prune");

    s.json(&["catalog", "snapshot", "--set", "s"]);
    let inventory = s.json(&["inventory", "--set", "s"]);
    assert_eq!(inventory["problems"], 0, "{inventory} ({})", s.context());

    // The catalog lost, rebuilt from the store through the faults.
    let before = record_keys(&s.records());
    lose_catalog(&s);
    s.json(&["catalog", "rebuild", "--set", "s"]);
    assert_eq!(
        record_keys(&s.records()),
        before,
        "the rebuilt catalog ({})",
        s.context()
    );
    s.nothing_recorded_the_store_lacks("rebuild");
    s.restore_and_compare("restored-after-rebuild");

    s.inventory_is_clean("every command");
    s.report(test);
}

#[test]
fn every_command_survives_a_faulty_network_on_s3() {
    every_command(Backend::S3, seed_or(1), "S3");
}

#[test]
fn every_command_survives_a_faulty_network_on_glacier_and_dynamodb() {
    every_command(Backend::Glacier, seed_or(2), "Glacier + DynamoDB");
}

/// The S3 store `migrate` copies into, with `previous` as the set's old store.
fn s3_with_previous(previous: &str) -> String {
    format!(
        "retention = \"keep\"\nstore = {{ kind = \"s3\", bucket = \"{BUCKET}\", storage_class = \"GLACIER\", force_path_style = true, single_upload_max = 1048576 }}\nprevious_store = {previous}\n"
    )
}

#[test]
fn a_migration_from_the_embedded_store_to_s3_survives_a_faulty_network() {
    let mut s = Stormy::new(Backend::S3, seed_or(3), "retention = \"keep\"\n");
    let disk: PathBuf = s.a.sb.path().join("disk");
    let local = format!("{{ kind = \"local\", path = {disk:?}, retrieval_delay_secs = 0 }}");
    s.a.sb
        .write_config(&format!("retention = \"keep\"\nstore = {local}\n"));
    for (name, content) in small_files().into_iter().chain(Backend::S3.large_files()) {
        s.write(&name, content);
    }
    s.a.sb.back_up_set(&[]);
    // Two files changed since: their archived version comes from the old store.
    s.a.sb.write("dir1/file-05.txt", "changed after the backup");
    s.a.sb
        .write("big/other.bin", "changed after the backup too");
    s.a.sb.write_config(&s3_with_previous(&local));
    s.ok(&["init", "--set", "s", "--yes"]);

    let doc = s.json(&["migrate", "--set", "s", "--yes"]);
    assert_eq!(
        doc["report"]["from_local"]["files"],
        24,
        "{doc} ({})",
        s.context()
    );
    assert_eq!(
        doc["report"]["retrieved"]["files"],
        2,
        "{doc} ({})",
        s.context()
    );
    s.nothing_recorded_the_store_lacks("migrate");
    // What is restored is what was archived.
    s.a.sb
        .write("dir1/file-05.txt", &s.files["dir1/file-05.txt"]);
    s.a.sb.write("big/other.bin", &s.files["big/other.bin"]);
    let status = s.a.json(&["status", "--set", "s", "--json"]);
    assert_eq!(
        status["summary"]["up_to_date"]["files"],
        s.files.len() as u64,
        "{status}"
    );
    s.restore_and_compare("restored");
    s.inventory_is_clean("migrate");
    s.report("migrate: embedded store → S3");
}

#[test]
fn a_migration_from_a_vault_to_s3_survives_a_faulty_network() {
    let vault = format!(
        "{{ kind = \"glacier\", vault = \"{VAULT}\", single_upload_max = 1048576, part_memory_budget = 8388608, part_concurrency = 2 }}"
    );
    let mut s = Stormy::new(
        Backend::S3,
        seed_or(4),
        &format!(
            "retention = \"keep\"\nstore = {vault}\ncatalog = {{ kind = \"dynamodb\", table = \"{TABLE}\" }}\n"
        ),
    );
    s.a.init();
    for (name, content) in small_files()
        .into_iter()
        .chain(Backend::Glacier.large_files())
    {
        s.write(&name, content);
    }
    s.a.ok(&["backup", "--set", "s"]);
    // A superseded version, and files changed or gone since: retrieved from the vault.
    let first = s.files["dir2/file-06.txt"].clone();
    s.write("dir2/file-06.txt", b"second version".to_vec());
    s.a.ok(&["backup", "--set", "s"]);
    s.a.sb.write("dir2/file-06.txt", &first);
    s.a.sb
        .write("big/two-parts.bin", "changed after the backup");
    std::fs::remove_file(s.a.sb.tree().join("dir3/file-07.txt")).expect("remove");

    s.a.sb.write_config(&format!(
        "{}catalog = {{ kind = \"dynamodb\", table = \"{TABLE}\" }}\n",
        s3_with_previous(&vault)
    ));
    s.ok(&["init", "--set", "s", "--yes"]);
    let doc = s.json(&[
        "migrate",
        "--set",
        "s",
        "--all-versions",
        "--tier",
        "expedited",
        "--yes",
    ]);
    assert_eq!(
        doc["report"]["retrieved"]["files"],
        4,
        "{doc} ({})",
        s.context()
    );
    s.nothing_recorded_the_store_lacks("migrate");
    // Every version of the vault has its copy in S3.
    let records = s.records();
    let copies = |target: &str| {
        let mut content: Vec<_> = records
            .iter()
            .filter(|r| r["target"].as_str().unwrap_or_default().starts_with(target))
            .map(|r| (r["path"].to_string(), r["sha1"].to_string()))
            .collect();
        content.sort();
        content
    };
    assert_eq!(copies("s3:"), copies("glacier:"), "{records:?}");
    // Each retrieval requested once: a lost answer is settled by the vault's jobs.
    // One job per vault archive that holds a retrieved file (a pack's files share
    // its job): both versions of file-06, the changed big file and the gone file.
    let retrieved_archives: std::collections::BTreeSet<String> = records
        .iter()
        .filter(|r| {
            r["target"]
                .as_str()
                .unwrap_or_default()
                .starts_with("glacier:")
        })
        .filter(|r| {
            ["dir2/file-06.txt", "big/two-parts.bin", "dir3/file-07.txt"]
                .contains(&r["path"].as_str().unwrap_or_default())
        })
        .map(|r| r["archive_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        retrieved_archives.len() < 4,
        "small files share packs: {retrieved_archives:?}"
    );
    let jobs = jobs_started(&s.proxy.log());
    assert_eq!(
        jobs,
        retrieved_archives.len(),
        "retrieval jobs started ({})",
        s.context()
    );
    // Current versions come back, the gone file's too.
    s.restore_and_compare("restored");
    s.inventory_is_clean("migrate");
    s.report("migrate: vault → S3");
}

// --- The care of writes that are not idempotent, one at a time. ---

/// A set on the stand-in and a proxy that applies `rule`.
fn targeted(
    set_body: &str,
    rule: impl Fn(&RequestInfo) -> Action + Send + Sync + 'static,
) -> (AwsSandbox, FaultProxy) {
    let a = AwsSandbox::on_standin(Sandbox::in_memory(), set_body);
    a.init();
    let proxy = FaultProxy::start(a.endpoint(), rule);
    (a, proxy)
}

#[test]
fn a_multipart_upload_whose_completion_answer_was_lost_is_recorded() {
    // The first CompleteMultipartUpload lands and its answer is lost; the
    // repeat is answered NoSuchUpload, as S3 may once the upload is complete.
    let n = std::sync::atomic::AtomicUsize::new(0);
    let (a, proxy) = targeted(
        "retention = \"keep\"\nstore = { kind = \"s3\", bucket = \"lost\", force_path_style = true }\n",
        move |r| {
            if !r.is_s3_complete() {
                return Action::Forward;
            }
            match n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Action::DropAfterForward,
                _ => common::aws::s3_error(
                    404,
                    "NoSuchUpload",
                    "The specified upload does not exist.",
                    &[],
                ),
            }
        },
    );
    let content = pattern(16 * MIB + 99, 50);
    a.sb.write("big.bin", &content);
    let (code, doc) = a.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["uploaded_files"], 1, "{doc}");
    assert_eq!(
        proxy.count(RequestInfo::is_s3_complete),
        2,
        "completed, its answer lost, asked again, then the object asked for"
    );
    let inventory = a.json(&["inventory", "--set", "s", "--json"]);
    assert_eq!(inventory["problems"], 0, "{inventory}");
    a.restore_and_compare(&[("big.bin", &content)], &[]);
}

#[test]
fn a_retrieval_whose_answer_was_lost_is_not_requested_again() {
    // Every other InitiateJob reaches the vault and loses its answer. Packs of
    // two files (1,500 bytes): three packs, three jobs.
    let n = std::sync::atomic::AtomicUsize::new(0);
    let (a, proxy) = targeted(
        &format!(
            "retention = \"keep\"\npack_threshold = 1500\npack_size = 1500\n{}\n",
            Backend::Glacier.store()
        ),
        move |r| {
            if r.is_initiate_job()
                && n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    .is_multiple_of(2)
            {
                Action::DropAfterForward
            } else {
                Action::Forward
            }
        },
    );
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("f{i}.bin"), pattern(1000 + i, i as u8)))
        .collect();
    for (name, content) in &files {
        a.sb.write(name, content);
    }
    a.ok(&["backup", "--set", "s"]);
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    let to = a.sb.path().join("out");
    let out = a.run(
        &proxy.endpoint,
        &[
            "restore",
            "--set",
            "s",
            "--tier",
            "expedited",
            "--to",
            to.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for (name, content) in &refs {
        assert!(std::fs::read(to.join(name)).unwrap() == *content, "{name}");
    }
    let lost = proxy
        .log()
        .iter()
        .filter(|(r, action)| r.is_initiate_job() && action == "drop after forward")
        .count();
    assert!(lost >= 1, "some answers were lost");
    let jobs = rt().block_on(async {
        let client = aws_sdk_glacier::Client::new(&sdk_config(a.endpoint()).await);
        let out = client
            .list_jobs()
            .account_id("-")
            .vault_name(VAULT)
            .send()
            .await
            .unwrap();
        out.job_list()
            .iter()
            .filter(|j| j.action() == Some(&aws_sdk_glacier::types::ActionCode::ArchiveRetrieval))
            .count()
    });
    let mut archives: Vec<String> = a
        .records()
        .iter()
        .map(|r| r["archive_id"].as_str().unwrap().to_string())
        .collect();
    archives.sort();
    archives.dedup();
    assert_eq!(archives.len(), 3, "six files in three packs");
    assert_eq!(
        jobs, 3,
        "one retrieval job per archive, none paid for twice"
    );
}

/// Backs up ten files through a proxy that loses the answer of every other
/// TransactWriteItems after DynamoDB applied it (`strip_token`: and hides its
/// ClientRequestToken from DynamoDB, as a server that does not honour it): no
/// upload may be reported as a conflict, and every file is recorded once.
fn conditional_writes_with_lost_answers(strip_token: bool) {
    let n = std::sync::atomic::AtomicUsize::new(0);
    let (a, proxy) = targeted(
        &format!("retention = \"keep\"\n{}\n", Backend::Glacier.store()),
        move |r| {
            let transaction = r.dynamodb_target() == Some("DynamoDB_20120810.TransactWriteItems");
            if !transaction {
                return Action::Forward;
            }
            let lose = n
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                .is_multiple_of(2);
            let then = if lose {
                Action::DropAfterForward
            } else {
                Action::Forward
            };
            if strip_token {
                Action::StripJsonField {
                    field: "ClientRequestToken".into(),
                    then: Box::new(then),
                }
            } else {
                then
            }
        },
    );
    for i in 0..10 {
        a.sb.write(format!("f{i}.txt"), format!("file {i}"));
    }
    let (code, doc) = a.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["uploaded_files"], 10, "{doc}");
    assert!(!doc.to_string().contains("onflict"), "{doc}");
    // A second version of each through the same faults: the heads' revisions move.
    for i in 0..10 {
        a.sb.write(format!("f{i}.txt"), format!("file {i}, again"));
    }
    let (code, doc) = a.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["uploaded_files"], 10, "{doc}");
    let records = a.records();
    assert_eq!(records.len(), 20, "{records:?}");
    let lost = proxy
        .log()
        .iter()
        .filter(|(r, action)| {
            r.dynamodb_target().is_some() && action.contains("drop after forward")
        })
        .count();
    assert!(lost >= 2, "answers were lost: {:?}", proxy.tally());
    // Which care settled them: the token (DynamoDB applied the repeat as the
    // first), or reading the head back after the repeat's condition failed.
    let read_back = proxy.count(|r| r.dynamodb_target() == Some("DynamoDB_20120810.GetItem"));
    if strip_token {
        assert!(read_back >= 2, "heads read back: {:?}", proxy.tally());
    } else {
        assert_eq!(read_back, 0, "the token settled every repeat");
    }
    let inventory = a.json(&["inventory", "--set", "s", "--json"]);
    assert_eq!(inventory["problems"], 0, "{inventory}");
}

#[test]
fn a_conditional_write_whose_answer_was_lost_is_applied_once() {
    conditional_writes_with_lost_answers(false);
}

#[test]
fn a_conditional_write_whose_answer_was_lost_is_not_a_conflict_without_its_token() {
    conditional_writes_with_lost_answers(true);
}

/// The limit the Glacier protocol leaves: UploadArchive names its archive only in
/// its answer, so when that answer is lost after the vault stored the archive,
/// the retry stores the file again and the first copy can be found only by an
/// inventory. It must be reported there as this set's orphan (never missing,
/// never recorded), and `--delete-orphans` removes it.
#[test]
fn a_glacier_upload_whose_answer_was_lost_leaves_an_orphan_the_inventory_reports() {
    let first = std::sync::atomic::AtomicBool::new(true);
    // One archive per file: the lost answer is one file's own upload, and the
    // orphan it leaves names that file.
    let (a, proxy) = targeted(
        &format!(
            "retention = \"keep\"\npack_small_files = false\n{}\n",
            Backend::Glacier.store()
        ),
        move |r| {
            let upload = r.is_glacier() && r.method == "POST" && r.path.ends_with("/archives");
            if upload && first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                Action::DropAfterForward
            } else {
                Action::Forward
            }
        },
    );
    for i in 0..3 {
        a.sb.write(format!("f{i}.txt"), format!("file {i}"));
    }
    let (code, doc) = a.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["uploaded_files"], 3, "{doc}");
    assert_eq!(a.records().len(), 3);
    assert_eq!(
        vault_archives(a.endpoint(), VAULT).len(),
        3 + 1 + 1,
        "and the snapshot"
    );
    std::thread::sleep(Duration::from_millis(1100));
    let out = a.firn(&["inventory", "--set", "s", "--json"]);
    assert_eq!(out.status.code(), Some(1), "one problem: {}", stdout(&out));
    let doc = last_json(&out);
    assert_eq!(doc["orphans"].as_array().map(Vec::len), Some(1), "{doc}");
    assert!(
        doc["orphans"][0]["description"]["key"]
            .as_str()
            .is_some_and(|k| k.starts_with('f')),
        "the orphan names its file: {doc}"
    );
    assert_eq!(doc["missing"].as_array().map(Vec::len), Some(0), "{doc}");
    a.ok(&["inventory", "--set", "s", "--delete-orphans", "--yes"]);
    assert_eq!(vault_archives(a.endpoint(), VAULT).len(), 3 + 1);
    std::thread::sleep(Duration::from_millis(1100));
    let doc = a.json(&["inventory", "--set", "s", "--refresh", "--json"]);
    assert_eq!(doc["problems"], 0, "{doc}");
}

#[test]
fn a_server_that_answers_a_part_request_with_the_whole_object_is_read_by_ranges() {
    let moto = Moto::start();
    let a = AwsSandbox::on(
        Sandbox::in_memory(),
        &moto.endpoint,
        "retention = \"keep\"\nstore = { kind = \"s3\", bucket = \"parts\", force_path_style = true, checksum = \"md5\" }\n",
    );
    a.init();
    let content = pattern(30_000_000, 60);
    a.sb.write("thirty.bin", &content);
    let (code, doc) = a.backup_via(&moto.endpoint);
    assert_eq!(code, Some(0), "{doc}");
    let proxy = FaultProxy::start(&moto.endpoint, |_| Action::Forward);
    let to = a.sb.path().join("out");
    let out = a.run(
        &proxy.endpoint,
        &["restore", "--set", "s", "--to", to.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        std::fs::read(to.join("thirty.bin")).unwrap() == content,
        "byte-exact"
    );
    let log = proxy.log();
    let gets = |pick: &dyn Fn(&RequestInfo) -> bool| {
        log.iter()
            .filter(|(r, _)| r.is_s3_get_object() && pick(r))
            .count()
    };
    assert_eq!(
        gets(&|r| r.path.contains("partNumber=")),
        1,
        "one part request showed the server ignores partNumber"
    );
    assert_eq!(
        gets(&|r| r.header("range").is_some()),
        2,
        "then both parts by range"
    );
    assert_eq!(
        log.iter()
            .filter(|(r, _)| r.method == "HEAD" && r.path.contains("partNumber="))
            .count(),
        2,
        "each part's length asked of HEAD ?partNumber"
    );
}
