//! The engine through the library: progress events, invariants 1 and 4. (The
//! catalogs' optimistic concurrency is in the catalog contract, tests/catalog.rs.)

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use async_trait::async_trait;
use bytes::Bytes;
use common::sample_record;
use firn::catalog::Catalog;
use firn::catalog::sqlite::SqliteCatalog;
use firn::cost::Prices;
use firn::engine::{
    BackupSummary, Candidate, Engine, Event, Parts, Plan, Progress, RestoreOptions, RestoreOutcome,
};
use firn::hash::tree_hash_of;
use firn::model::Retention;
use firn::model::Tier;
use firn::model::TreeHash;
use firn::state::LocalState;
use firn::store::local::LocalStore;
use firn::store::{ArchiveListing, JobOutput, JobState, Store, StoredArchive, Upload};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// An engine and the parts it was built from, so a test can look behind it.
struct Harness {
    engine: Arc<Engine>,
    catalog: Arc<dyn Catalog>,
    state: Arc<LocalState>,
    store: Arc<dyn Store>,
}

impl std::ops::Deref for Harness {
    type Target = Arc<Engine>;
    fn deref(&self) -> &Arc<Engine> {
        &self.engine
    }
}

fn engine_with(dir: &Path, store: Arc<dyn Store>) -> Harness {
    engine_with_concurrency(dir, store, 2)
}

fn engine_with_concurrency(dir: &Path, store: Arc<dyn Store>, concurrency: usize) -> Harness {
    let state = Arc::new(LocalState::open(&dir.join("state.sqlite")).unwrap());
    let catalog: Arc<dyn Catalog> =
        Arc::new(SqliteCatalog::open(&dir.join("catalog.sqlite"), "set").unwrap());
    let engine = Arc::new(Engine::from_parts(Parts {
        root: dir.join("tree"),
        set_id: "set".into(),
        state: Arc::clone(&state),
        catalog: Arc::clone(&catalog),
        store: Arc::clone(&store),
        host: "test-host".into(),
        retention: Retention::Keep,
        requests_in_flight: Some(concurrency),
        concurrency,
        prices: Prices::free(),
    }));
    Harness {
        engine,
        catalog,
        state,
        store,
    }
}

fn watched(events: mpsc::Sender<Event>, cancel: CancellationToken) -> Progress {
    Progress::new(events, cancel)
}

fn local_store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(LocalStore::open(&dir.join("store"), 0).unwrap())
}

async fn plan_for(engine: &Engine) -> Plan {
    let report = engine.status(&mut |_| {}).await.unwrap();
    engine.plan(report.entries.iter().filter_map(Candidate::of))
}

/// Backs up everything status finds pending, with nobody watching the events.
async fn back_up_all(engine: &Harness) -> BackupSummary {
    let plan = plan_for(engine).await;
    let (tx, rx) = mpsc::channel(64);
    drop(rx);
    engine
        .backup(plan, &watched(tx, CancellationToken::new()))
        .await
        .report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cover_the_life_of_each_upload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    std::fs::write(dir.path().join("tree/a.bin"), vec![1u8; (2 << 20) + 5]).unwrap();
    std::fs::write(dir.path().join("tree/b.txt"), "bee").unwrap();
    let engine = engine_with(dir.path(), local_store(dir.path()));
    let plan = plan_for(&engine).await;
    let (tx, mut rx) = mpsc::channel(64);
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        events
    });
    let summary = engine
        .backup(plan, &watched(tx, CancellationToken::new()))
        .await
        .report;
    let events = collector.await.unwrap();
    assert_eq!(summary.uploaded_files, 2, "{summary:?}");
    let queued: Vec<_> = events
        .iter()
        .filter_map(|e| {
            if let Event::Queued { id, key, bytes } = e {
                Some((*id, key.clone(), *bytes))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(queued.len(), 2);
    for (id, _key, bytes) in queued {
        assert!(events.contains(&Event::Started { id }));
        let advanced: u64 = events
            .iter()
            .map(|e| {
                if let Event::Advanced { id: i, bytes } = e {
                    if *i == id { *bytes } else { 0 }
                } else {
                    0
                }
            })
            .sum();
        assert_eq!(advanced, bytes, "progress adds up to the file size");
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Done { id: i, .. } if *i == id))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_grows_while_it_is_uploaded_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    let path = dir.path().join("tree/growing.log");
    std::fs::write(&path, vec![9u8; 8 << 20]).unwrap();
    let engine = engine_with(dir.path(), local_store(dir.path()));
    let plan = plan_for(&engine).await;
    // Capacity 1: the upload can run at most a part or two ahead of this test,
    // so the append below lands while the file is still being read.
    let (tx, mut rx) = mpsc::channel(1);
    let backup = {
        let engine = Arc::clone(&engine.engine);
        tokio::spawn(async move {
            engine
                .backup(plan, &watched(tx, CancellationToken::new()))
                .await
                .report
        })
    };
    let mut appended = false;
    let mut failure = None;
    while let Some(event) = rx.recv().await {
        match event {
            Event::Advanced { .. } if !appended => {
                use std::io::Write;
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap()
                    .write_all(b"late line\n")
                    .unwrap();
                appended = true;
            }
            Event::Failed { reason, .. } => failure = Some(reason),
            _ => {}
        }
    }
    let summary = backup.await.unwrap();
    assert!(appended);
    assert_eq!(summary.uploaded_files, 0);
    let reason = failure.expect("the upload fails");
    assert!(reason.contains("changed while it was read"), "{reason}");
    assert!(
        engine.catalog.records().await.unwrap().is_empty(),
        "nothing recorded"
    );
    assert_eq!(
        engine.store.list().await.unwrap().unwrap().len(),
        0,
        "no archive left in the store"
    );
    assert!(engine.state.journal().unwrap().is_empty(), "journal closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_upload_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    std::fs::write(dir.path().join("tree/big.img"), vec![3u8; 8 << 20]).unwrap();
    std::fs::write(dir.path().join("tree/later.txt"), "never started").unwrap();
    let mut engine = engine_with_concurrency(dir.path(), local_store(dir.path()), 1);
    // One archive per file: the point is a lone upload's partial archive, with
    // later.txt queued behind it. Packed, later.txt would go in a pack beside
    // big.img and could be stored before the cancel lands (a race, not a bug).
    engine.engine = Arc::new(
        Arc::try_unwrap(engine.engine)
            .unwrap_or_else(|_| panic!("engine shared"))
            .with_packing(firn::model::Packing {
                enabled: false,
                ..firn::model::Packing::default()
            }),
    );
    let plan = plan_for(&engine).await;
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel(1);
    let backup = {
        let (engine, cancel) = (Arc::clone(&engine.engine), cancel.clone());
        tokio::spawn(async move { engine.backup(plan, &watched(tx, cancel)).await.report })
    };
    while let Some(event) = rx.recv().await {
        if matches!(event, Event::Advanced { .. }) {
            cancel.cancel();
        }
    }
    let summary = backup.await.unwrap();
    assert_eq!(summary.uploaded_files, 0);
    assert_eq!(summary.cancelled, 2, "{summary:?}");
    assert!(engine.catalog.records().await.unwrap().is_empty());
    assert!(engine.state.journal().unwrap().is_empty());
    let leftovers = std::fs::read_dir(dir.path().join("store/tmp"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0, "the partial archive is removed");
}

/// A store that keeps what it is sent but reports a wrong tree hash, as a corrupted
/// transfer would; and flips a bit in the first `corrupt_reads` ranges it sends back
/// (the checksum it sends with them stays the true one).
struct LyingStore {
    inner: Arc<dyn Store>,
    corrupt_reads: AtomicUsize,
    /// Reads take this long, and how many overlap is recorded.
    read_delay_ms: u64,
    reads_in_flight: AtomicUsize,
    most_reads_in_flight: AtomicUsize,
}

impl LyingStore {
    fn over(inner: &Arc<dyn Store>) -> LyingStore {
        LyingStore {
            inner: Arc::clone(inner),
            corrupt_reads: AtomicUsize::new(0),
            read_delay_ms: 0,
            reads_in_flight: AtomicUsize::new(0),
            most_reads_in_flight: AtomicUsize::new(0),
        }
    }
}

struct LyingUpload {
    inner: Box<dyn Upload>,
}

#[async_trait]
impl Store for LyingStore {
    fn target(&self) -> String {
        self.inner.target()
    }
    fn kind(&self) -> String {
        self.inner.kind()
    }
    fn part_size(&self, size: u64) -> usize {
        self.inner.part_size(size)
    }
    async fn begin_upload(&self, size: u64, description: &str) -> Result<Box<dyn Upload>> {
        Ok(Box::new(LyingUpload {
            inner: self.inner.begin_upload(size, description).await?,
        }))
    }
    async fn make_durable(&self) -> Result<()> {
        self.inner.make_durable().await
    }
    async fn delete(&self, archive_id: &str) -> Result<()> {
        self.inner.delete(archive_id).await
    }
    async fn list(&self) -> Result<Option<Vec<ArchiveListing>>> {
        self.inner.list().await
    }
    async fn request_retrieval(&self, archive_id: &str, tier: Tier) -> Result<String> {
        self.inner.request_retrieval(archive_id, tier).await
    }
    async fn job_state(&self, job_id: &str) -> Result<JobState> {
        self.inner.job_state(job_id).await
    }
    fn expected_wait(&self, tier: Tier) -> (u64, u64) {
        self.inner.expected_wait(tier)
    }

    async fn read_job_output(&self, job_id: &str, offset: u64, len: u64) -> Result<JobOutput> {
        let now = self.reads_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_reads_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(self.read_delay_ms)).await;
        let output = self.inner.read_job_output(job_id, offset, len).await;
        self.reads_in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut output = output?;
        // Like Glacier, send the range's tree hash with it (computed before any
        // damage, as a server's would be).
        output.checksum = Some(tree_hash_of(&output.data));
        let corrupt = self
            .corrupt_reads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if corrupt && !output.data.is_empty() {
            let mut data = output.data.to_vec();
            data[len as usize / 2] ^= 0x01;
            output.data = Bytes::from(data);
        }
        Ok(output)
    }
}

#[async_trait]
impl Upload for LyingUpload {
    async fn send(&mut self, offset: u64, data: Bytes) -> Result<()> {
        self.inner.send(offset, data).await
    }
    async fn complete(
        self: Box<Self>,
        size: u64,
        tree_hash: TreeHash,
        description: &str,
    ) -> Result<StoredArchive> {
        let mut stored = self.inner.complete(size, tree_hash, description).await?;
        stored.tree_hash[0] ^= 0xff;
        Ok(stored)
    }
    async fn abort(self: Box<Self>) -> Result<()> {
        self.inner.abort().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_hash_the_store_disagrees_with_is_never_recorded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    std::fs::write(dir.path().join("tree/a.txt"), "content").unwrap();
    let honest = local_store(dir.path());
    let engine = engine_with(dir.path(), Arc::new(LyingStore::over(&honest)));
    let summary = back_up_all(&engine).await;
    assert_eq!(summary.uploaded_files, 0);
    assert_eq!(summary.failed.len(), 1);
    assert!(
        summary.failed[0].reason.contains("tree hash"),
        "{:?}",
        summary.failed
    );
    assert!(
        engine.catalog.records().await.unwrap().is_empty(),
        "nothing recorded"
    );
    assert!(
        honest.list().await.unwrap().unwrap().is_empty(),
        "the unconfirmed archive is discarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_that_fails_its_checksum_is_fetched_again_and_persistent_damage_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    let content: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("tree/big.bin"), &content).unwrap();
    let honest = local_store(dir.path());
    let engine = engine_with(dir.path(), Arc::clone(&honest));
    let summary = back_up_all(&engine).await;
    assert_eq!(summary.uploaded_files, 1, "{summary:?}");
    let record = engine.catalog.current("big.bin").await.unwrap().unwrap();

    let restore_through = |corrupt_reads: usize, to: &str| {
        let engine = engine_with(
            dir.path(),
            Arc::new(LyingStore {
                corrupt_reads: AtomicUsize::new(corrupt_reads),
                ..LyingStore::over(&honest)
            }),
        );
        let (record, to) = (record.clone(), dir.path().join(to));
        async move {
            let options = RestoreOptions {
                destination: to.clone(),
                overwrite: false,
                tier: Tier::Standard,
                wait: true,
            };
            let unwatched = Progress::unwatched(CancellationToken::new());
            let done = engine
                .restore(engine.number(vec![record]), &options, &unwatched)
                .await;
            let outcome = match done.report.results.into_iter().next() {
                Some(result) => result.outcome,
                None => Err(anyhow::anyhow!("nothing restored")),
            };
            (outcome, to)
        }
    };
    // One damaged range: caught by its checksum, fetched again, restored.
    let (outcome, to) = restore_through(1, "once").await;
    assert!(
        matches!(outcome, Ok(RestoreOutcome::Restored { .. })),
        "{outcome:?}"
    );
    assert!(std::fs::read(to.join("big.bin")).unwrap() == content);
    // Damage on every attempt: the restore fails and nothing is renamed into place.
    let (outcome, to) = restore_through(usize::MAX, "always").await;
    let err = format!("{:#}", outcome.unwrap_err());
    assert!(err.contains("corrupted in transit"), "{err}");
    assert!(!to.join("big.bin").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_jobs_download_concurrently_up_to_the_set_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    for n in 0..5 {
        std::fs::write(
            dir.path().join(format!("tree/{n}.txt")),
            format!("file {n}"),
        )
        .unwrap();
    }
    let honest = local_store(dir.path());
    let engine = engine_with(dir.path(), Arc::clone(&honest));
    assert_eq!(back_up_all(&engine).await.uploaded_files, 5);

    let slow = Arc::new(LyingStore {
        read_delay_ms: 200,
        ..LyingStore::over(&honest)
    });
    let restorer = engine_with(dir.path(), Arc::clone(&slow) as Arc<dyn Store>);
    let records = restorer.catalog.records().await.unwrap();
    let options = RestoreOptions {
        destination: dir.path().join("out"),
        overwrite: false,
        tier: Tier::Bulk,
        wait: true,
    };
    let results = restorer
        .restore(
            restorer.number(records),
            &options,
            &Progress::unwatched(CancellationToken::new()),
        )
        .await
        .report
        .results;
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    assert_eq!(slow.most_reads_in_flight.load(Ordering::SeqCst), 2);
    for n in 0..5 {
        let got = std::fs::read_to_string(dir.path().join(format!("out/{n}.txt"))).unwrap();
        assert_eq!(got, format!("file {n}"));
    }
}

#[tokio::test]
async fn look_up_finds_the_same_records_per_file_or_from_one_load_of_the_set() {
    use firn::engine::RecordLookup;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), local_store(dir.path()));
    for n in 0..40 {
        let key = format!("f{n:02}");
        engine
            .catalog
            .record_upload(&sample_record(&key, &format!("{key}-v1"), 1), None)
            .await
            .unwrap();
        engine
            .catalog
            .record_upload(
                &sample_record(&key, &format!("{key}-v2"), 2),
                Some(&format!("{key}-v1")),
            )
            .await
            .unwrap();
    }
    let by_key = |n: usize| RecordLookup {
        key: Some(format!("f{n:02}")),
        archive_id: None,
    };
    let ids = |found: Vec<Option<firn::catalog::ArchiveRecord>>| -> Vec<Option<String>> {
        found.into_iter().map(|r| r.map(|r| r.archive_id)).collect()
    };
    // A few files by key: current versions.
    let few = engine.look_up(&[by_key(3), by_key(7)]).await.unwrap();
    assert_eq!(ids(few), [Some("f03-v2".into()), Some("f07-v2".into())]);
    // Many, and archive ids with or without a key (superseded ones included), and
    // what the catalog lacks: the same answers from one load of the set.
    let mut many: Vec<RecordLookup> = (0..40).map(by_key).collect();
    many.push(RecordLookup {
        key: None,
        archive_id: Some("f05-v1".into()),
    });
    many.push(RecordLookup {
        key: Some("f06".into()),
        archive_id: Some("f05-v1".into()),
    });
    many.push(RecordLookup {
        key: Some("nope".into()),
        archive_id: None,
    });
    let found = ids(engine.look_up(&many).await.unwrap());
    assert_eq!(found[0], Some("f00-v2".into()));
    assert_eq!(found[39], Some("f39-v2".into()));
    assert_eq!(found[40], Some("f05-v1".into()));
    assert_eq!(found[41], None, "the archive belongs to another file");
    assert_eq!(found[42], None);
}

/// A whole-tree backup holds a bounded window of its plan, not every file: the
/// files queued and not yet settled (what the engine holds per file, and what
/// the CLI's table holds a row for) never exceed what its channels, chunks read
/// ahead and the packs filling and in flight hold, however large the tree.
/// Before the plan was streamed, every file was queued up front.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_backup_holds_a_bounded_window_of_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let files = 12_000u64;
    for i in 0..files {
        let sub = tree.join(format!("d{:02}", i % 40));
        std::fs::create_dir_all(&sub).unwrap();
        let body = vec![b'x'; 10 + (i % 90) as usize];
        std::fs::write(sub.join(format!("f{i:05}")), body).unwrap();
    }
    let state = Arc::new(LocalState::open(&dir.path().join("state.sqlite")).unwrap());
    let catalog: Arc<dyn Catalog> =
        Arc::new(SqliteCatalog::open(&dir.path().join("catalog.sqlite"), "set").unwrap());
    let engine = Arc::new(
        Engine::from_parts(Parts {
            root: tree,
            set_id: "set".into(),
            state,
            catalog,
            store: local_store(dir.path()),
            host: "test-host".into(),
            retention: Retention::Keep,
            requests_in_flight: Some(2),
            concurrency: 2,
            prices: Prices::free(),
        })
        // Small packs (a few hundred files each), so what they hold is small.
        .with_packing(firn::model::Packing {
            enabled: true,
            threshold: 4096,
            size: Some(16 * 1024),
        }),
    );
    let (tx, mut rx) = mpsc::channel(1024);
    let watcher = tokio::spawn(async move {
        let (mut planned, mut queued, mut settled, mut most) = (0u64, 0u64, 0u64, 0u64);
        while let Some(event) = rx.recv().await {
            match event {
                Event::Planned { files, .. } => planned += files,
                Event::Queued { .. } => queued += 1,
                Event::Done { .. } | Event::Failed { .. } | Event::Cancelled { .. } => settled += 1,
                _ => {}
            }
            most = most.max(queued.saturating_sub(settled));
        }
        (planned, queued, settled, most)
    });
    let progress = watched(tx, CancellationToken::new());
    let done = engine.back_up_tree(false, &progress).await.unwrap();
    drop(progress);
    let (planned, queued, settled, most) = watcher.await.unwrap();
    let summary = &done.report.summary;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert_eq!(summary.uploaded_files, files);
    assert_eq!((planned, queued, settled), (files, files, files));
    // Channels (2 × 1,024), chunks read ahead (4 × 256), two packs (~300
    // files each) and the commit's batch (up to a second of packs): half the
    // tree at most, where an unstreamed plan queues all of it at once.
    assert!(
        most <= files / 2,
        "{most} of {files} files were queued and unsettled at once"
    );
}
