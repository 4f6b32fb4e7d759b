//! The catalog contract: what every `Catalog` backend does, written once as
//! checks over `&dyn Catalog`. `catalog_contract_tests!` runs every check against
//! one backend, one test each (tests/catalog.rs runs them on SQLite and
//! DynamoDB); a new backend passes the contract when it is added there.
//!
//! Each check opens handles on a set of its own, so the checks hold on a
//! backend that keeps several sets side by side.

use async_trait::async_trait;
use firn::catalog::{
    ArchiveRecord, ArchiveState, Catalog, Conflict, CurrentSummary, SnapshotRecord,
};
use firn::model::UNKNOWN_SHA1;

use super::sample_record;

/// One catalog backend under test.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A handle on backup set `set`. Two handles on one set are two hosts
    /// writing the same entries.
    async fn open(&self, set: &str) -> Box<dyn Catalog>;
}

/// Runs every check of the contract against the backend `$open` makes (an
/// expression, `.await` allowed), as one `#[tokio::test]` per check in module
/// `$name`.
#[macro_export]
macro_rules! catalog_contract_tests {
    ($name:ident, $open:expr) => {
        $crate::catalog_contract_tests!(@tests $name, $open;
            an_upload_becomes_current_and_supersedes_the_version_it_replaces,
            two_writers_on_one_entry_get_a_conflict_not_a_lost_update,
            racing_writers_on_one_entry_one_wins_and_the_rest_conflict,
            an_adopted_stray_is_kept_superseded_beside_the_current_version,
            update_mtime_changes_only_the_archive_named,
            fill_unknown_sha1_never_replaces_a_known_sha1,
            set_state_marks_versions_being_deleted,
            remove_forgets_one_archive_and_the_entry_with_its_last,
            find_archive_finds_any_version_of_its_own_set,
            sets_are_kept_apart,
            import_writes_many_records_at_once,
            records_are_ordered_by_key_then_upload_time,
            current_summaries_list_current_versions_in_key_order_with_their_target,
            keys_longer_than_1024_bytes_behave_like_any_other,
            raw_names_round_trip,
            snapshots_are_kept_apart_from_records_oldest_first,
            a_batch_of_uploads_is_recorded_with_each_conflict_kept_to_its_own_item,
            names_target_says_which_stores_a_set_uses,
        );
    };
    (@tests $name:ident, $open:expr; $($check:ident),* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let backend = $open;
                    $crate::common::catalog_contract::$check(&backend).await;
                }
            )*
        }
    };
}

/// A record of `key` with content of its own (so a field mixed up between
/// records or versions is noticed).
fn record(key: &str, archive_id: &str, uploaded_at: i64) -> ArchiveRecord {
    let n = uploaded_at as u8;
    ArchiveRecord {
        size: 1000 + uploaded_at as u64,
        mtime_ns: 1_700_000_000_000_000_000 + uploaded_at,
        sha1: [n.wrapping_add(1); 20],
        tree_hash: [n.wrapping_add(2); 32],
        target: format!("test:/store-{}", uploaded_at % 2),
        host: format!("host-{archive_id}"),
        ..sample_record(key, archive_id, uploaded_at)
    }
}

/// `record` as the catalog holds it once superseded at `at`.
fn superseded(r: &ArchiveRecord, at: i64) -> ArchiveRecord {
    ArchiveRecord {
        state: ArchiveState::Superseded,
        superseded_at: Some(at),
        pack: None,
        ..r.clone()
    }
}

/// Two files recorded as backups record them: `f` uploaded twice (a1, then a2
/// replacing it) and `other_key` once (b1). Returns a1, a2 and b1 as recorded
/// when uploaded.
async fn two_files(
    catalog: &dyn Catalog,
    other_key: &str,
) -> (ArchiveRecord, ArchiveRecord, ArchiveRecord) {
    let old = record("f", "a1", 1);
    let cur = record("f", "a2", 2);
    let other = record(other_key, "b1", 3);
    catalog.record_upload(&old, None).await.unwrap();
    catalog.record_upload(&cur, Some("a1")).await.unwrap();
    catalog.record_upload(&other, None).await.unwrap();
    (old, cur, other)
}

fn ids_and_states(versions: &[ArchiveRecord]) -> Vec<(&str, ArchiveState)> {
    versions
        .iter()
        .map(|r| (r.archive_id.as_str(), r.state))
        .collect()
}

fn conflict(err: &anyhow::Error) -> &Conflict {
    err.downcast_ref::<Conflict>()
        .unwrap_or_else(|| panic!("a Conflict, not: {err:#}"))
}

/// A [`CurrentSummary`], comparable.
#[derive(Debug, PartialEq)]
struct Summary {
    key: String,
    raw: Option<Vec<u8>>,
    size: u64,
    mtime_ns: i64,
    sha1: [u8; 20],
    target: String,
}

/// What `current_summaries` should say of a current record.
fn summary_of(r: &ArchiveRecord) -> Summary {
    Summary {
        key: r.key.clone(),
        raw: r.raw.clone(),
        size: r.size,
        mtime_ns: r.mtime_ns,
        sha1: r.sha1,
        target: r.target.clone(),
    }
}

fn summary_fields(s: &CurrentSummary) -> Summary {
    Summary {
        key: s.key.clone(),
        raw: s.raw.as_deref().map(<[u8]>::to_vec),
        size: s.size,
        mtime_ns: s.mtime_ns,
        sha1: s.sha1,
        target: s.target.clone(),
    }
}

/// `superseded` lists exactly the records that are not current, in the order
/// `records` gives them.
async fn check_superseded(catalog: &dyn Catalog) {
    let mut expected = catalog.records().await.expect("records");
    expected.retain(|r| r.state != ArchiveState::Current);
    assert_eq!(
        catalog.superseded().await.expect("superseded"),
        expected,
        "superseded lists the records that are not current, in key then upload order"
    );
}

/// The current versions as both `current_summaries` and `for_each_current` give
/// them (the two must agree, order included).
async fn summaries(catalog: &dyn Catalog) -> Vec<Summary> {
    let listed: Vec<_> = catalog
        .current_summaries()
        .await
        .expect("current_summaries")
        .iter()
        .map(summary_fields)
        .collect();
    let mut visited = Vec::new();
    catalog
        .for_each_current(&mut |s| visited.push(summary_fields(&s)))
        .await
        .expect("for_each_current");
    assert_eq!(
        visited, listed,
        "for_each_current visits what current_summaries lists"
    );
    listed
}

pub async fn an_upload_becomes_current_and_supersedes_the_version_it_replaces(
    backend: &dyn Backend,
) {
    let catalog = backend.open("upload").await;
    assert!(catalog.versions("f").await.unwrap().is_empty());
    assert_eq!(catalog.current("f").await.unwrap(), None);

    let v1 = record("f", "a1", 1);
    catalog.record_upload(&v1, None).await.unwrap();
    assert_eq!(catalog.versions("f").await.unwrap(), vec![v1.clone()]);
    assert_eq!(catalog.current("f").await.unwrap(), Some(v1.clone()));

    // Whatever state the record carries, an upload is recorded current.
    let v2 = record("f", "a2", 5);
    let as_sent = ArchiveRecord {
        state: ArchiveState::Superseded,
        superseded_at: Some(3),
        pack: None,
        ..v2.clone()
    };
    catalog.record_upload(&as_sent, Some("a1")).await.unwrap();
    let v3 = record("f", "a3", 9);
    catalog.record_upload(&v3, Some("a2")).await.unwrap();

    // Oldest first; each replaced version superseded when its successor was uploaded.
    assert_eq!(
        catalog.versions("f").await.unwrap(),
        vec![superseded(&v1, 5), superseded(&v2, 9), v3.clone()]
    );
    assert_eq!(catalog.current("f").await.unwrap(), Some(v3.clone()));
    assert_eq!(summaries(catalog.as_ref()).await, vec![summary_of(&v3)]);
}

pub async fn two_writers_on_one_entry_get_a_conflict_not_a_lost_update(backend: &dyn Backend) {
    let host_a = backend.open("set").await;
    let host_b = backend.open("set").await;
    host_a
        .record_upload(&sample_record("f", "a1", 1), None)
        .await
        .unwrap();
    // Both saw a1 as current; A records a2 first.
    host_a
        .record_upload(&sample_record("f", "a2", 2), Some("a1"))
        .await
        .unwrap();
    let err = host_b
        .record_upload(&sample_record("f", "b2", 3), Some("a1"))
        .await
        .unwrap_err();
    let found = conflict(&err);
    assert_eq!(found.found.as_deref(), Some("a2"));
    assert_eq!(found.expected.as_deref(), Some("a1"));
    assert_eq!(found.key, "f");
    let versions = host_b.versions("f").await.unwrap();
    let current: Vec<_> = versions
        .iter()
        .filter(|r| r.state == ArchiveState::Current)
        .map(|r| r.archive_id.as_str())
        .collect();
    assert_eq!(current, vec!["a2"]);
    assert_eq!(
        versions
            .iter()
            .filter(|r| r.state == ArchiveState::Superseded)
            .count(),
        1
    );
    assert_eq!(
        ids_and_states(&versions),
        vec![
            ("a1", ArchiveState::Superseded),
            ("a2", ArchiveState::Current)
        ]
    );
    // A brand-new file raced by two hosts: the second is refused too.
    host_a
        .record_upload(&sample_record("g", "a", 1), None)
        .await
        .unwrap();
    let err = host_b
        .record_upload(&sample_record("g", "b", 1), None)
        .await
        .unwrap_err();
    assert!(err.downcast_ref::<Conflict>().is_some(), "{err:#}");
    assert_eq!(conflict(&err).found.as_deref(), Some("a"));
    assert_eq!(conflict(&err).expected, None);
    // Replacing a version that is not there (deleted meanwhile) is refused.
    let err = host_b
        .record_upload(&sample_record("h", "b", 1), Some("gone"))
        .await
        .unwrap_err();
    assert_eq!(conflict(&err).found, None);
    assert!(host_a.versions("h").await.unwrap().is_empty());
    assert_eq!(
        ids_and_states(&host_a.versions("g").await.unwrap()),
        vec![("a", ArchiveState::Current)]
    );
}

pub async fn racing_writers_on_one_entry_one_wins_and_the_rest_conflict(backend: &dyn Backend) {
    let hosts = [
        backend.open("race").await,
        backend.open("race").await,
        backend.open("race").await,
        backend.open("race").await,
    ];
    hosts[0]
        .record_upload(&sample_record("f", "v1", 1), None)
        .await
        .unwrap();
    // Every host saw v1 current and records its own upload at the same moment.
    let uploads: Vec<ArchiveRecord> = (0..hosts.len())
        .map(|i| sample_record("f", &format!("host{i}"), 2))
        .collect();
    let results = futures_util::future::join_all(
        hosts
            .iter()
            .zip(&uploads)
            .map(|(host, upload)| host.record_upload(upload, Some("v1"))),
    )
    .await;
    let winners: Vec<&str> = results
        .iter()
        .zip(&uploads)
        .filter(|(result, _)| result.is_ok())
        .map(|(_, upload)| upload.archive_id.as_str())
        .collect();
    assert_eq!(winners.len(), 1, "exactly one writer wins: {results:?}");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        conflict(err);
    }
    assert_eq!(
        ids_and_states(&hosts[1].versions("f").await.unwrap()),
        vec![
            ("v1", ArchiveState::Superseded),
            (winners[0], ArchiveState::Current)
        ],
        "no lost update, no second current version"
    );
}

pub async fn an_adopted_stray_is_kept_superseded_beside_the_current_version(backend: &dyn Backend) {
    let catalog = backend.open("strays").await;
    let current = record("f", "new", 5);
    catalog.record_upload(&current, None).await.unwrap();
    // A stray older version of f, and one of a file with no current version.
    let stray = ArchiveRecord {
        superseded_at: Some(5),
        pack: None,
        ..record("f", "old", 1)
    };
    catalog.record_superseded(&stray).await.unwrap();
    let lone = ArchiveRecord {
        superseded_at: Some(4),
        pack: None,
        ..record("lone", "lone-old", 3)
    };
    catalog.record_superseded(&lone).await.unwrap();

    let stray_kept = ArchiveRecord {
        state: ArchiveState::Superseded,
        ..stray.clone()
    };
    assert_eq!(
        catalog.versions("f").await.unwrap(),
        vec![stray_kept.clone(), current.clone()]
    );
    assert_eq!(catalog.current("f").await.unwrap(), Some(current.clone()));
    let lone_kept = ArchiveRecord {
        state: ArchiveState::Superseded,
        ..lone.clone()
    };
    assert_eq!(catalog.versions("lone").await.unwrap(), vec![lone_kept]);
    assert_eq!(catalog.current("lone").await.unwrap(), None);
    assert_eq!(
        summaries(catalog.as_ref()).await,
        vec![summary_of(&current)]
    );
    assert_eq!(
        catalog.find_archive("old").await.unwrap(),
        Some(stray_kept.clone())
    );
    // The next upload supersedes the current version; the stray stays as it was.
    let newer = record("f", "newer", 9);
    catalog.record_upload(&newer, Some("new")).await.unwrap();
    assert_eq!(
        catalog.versions("f").await.unwrap(),
        vec![stray_kept, superseded(&current, 9), newer]
    );
}

pub async fn update_mtime_changes_only_the_archive_named(backend: &dyn Backend) {
    let catalog = backend.open("mtime").await;
    let (old, new, other) = two_files(catalog.as_ref(), "g").await;

    catalog.update_mtime("f", "a2", 42).await.unwrap();
    let touched = ArchiveRecord {
        mtime_ns: 42,
        ..new.clone()
    };
    assert_eq!(
        catalog.versions("f").await.unwrap(),
        vec![superseded(&old, 2), touched.clone()]
    );
    assert_eq!(catalog.versions("g").await.unwrap(), vec![other.clone()]);
    assert_eq!(
        summaries(catalog.as_ref()).await,
        vec![summary_of(&touched), summary_of(&other)]
    );
    // An archive id under another key names nothing.
    catalog.update_mtime("g", "a2", 7).await.unwrap();
    assert_eq!(catalog.versions("g").await.unwrap(), vec![other]);
    assert_eq!(catalog.current("f").await.unwrap(), Some(touched));
}

pub async fn fill_unknown_sha1_never_replaces_a_known_sha1(backend: &dyn Backend) {
    let catalog = backend.open("sha1").await;
    // Rebuilt from an inventory: two versions of f and one of g, SHA-1 unknown
    // but for g's.
    let old = ArchiveRecord {
        sha1: UNKNOWN_SHA1,
        ..superseded(&record("f", "f1", 1), 2)
    };
    let cur = ArchiveRecord {
        sha1: UNKNOWN_SHA1,
        ..record("f", "f2", 2)
    };
    let known = record("g", "g1", 3);
    catalog
        .import(&[old.clone(), cur.clone(), known.clone()])
        .await
        .unwrap();
    assert_eq!(
        catalog.versions("f").await.unwrap(),
        vec![old.clone(), cur.clone()]
    );

    let verified = [9u8; 20];
    catalog
        .fill_unknown_sha1("f", "f2", &verified)
        .await
        .unwrap();
    let cur_filled = ArchiveRecord {
        sha1: verified,
        ..cur.clone()
    };
    assert_eq!(
        catalog.versions("f").await.unwrap(),
        vec![old.clone(), cur_filled.clone()],
        "only the archive named is filled"
    );
    // Known now: never replaced.
    catalog
        .fill_unknown_sha1("f", "f2", &[8; 20])
        .await
        .unwrap();
    assert_eq!(
        catalog.current("f").await.unwrap(),
        Some(cur_filled.clone())
    );
    // Known from the start: never replaced.
    catalog
        .fill_unknown_sha1("g", "g1", &[8; 20])
        .await
        .unwrap();
    assert_eq!(catalog.versions("g").await.unwrap(), vec![known.clone()]);
    // A superseded version is filled too.
    catalog
        .fill_unknown_sha1("f", "f1", &[7; 20])
        .await
        .unwrap();
    let old_filled = ArchiveRecord {
        sha1: [7; 20],
        ..old
    };
    assert_eq!(
        catalog.versions("f").await.unwrap(),
        vec![old_filled, cur_filled.clone()]
    );
    assert_eq!(
        summaries(catalog.as_ref()).await,
        vec![summary_of(&cur_filled), summary_of(&known)]
    );
}

pub async fn set_state_marks_versions_being_deleted(backend: &dyn Backend) {
    let catalog = backend.open("states").await;
    let (old, _, other) = two_files(catalog.as_ref(), "g").await;

    catalog
        .set_state("f", "a1", ArchiveState::Deleting)
        .await
        .unwrap();
    assert_eq!(
        ids_and_states(&catalog.versions("f").await.unwrap()),
        vec![
            ("a1", ArchiveState::Deleting),
            ("a2", ArchiveState::Current)
        ]
    );
    // The current version being deleted: the file has no current version.
    catalog
        .set_state("f", "a2", ArchiveState::Deleting)
        .await
        .unwrap();
    assert_eq!(
        ids_and_states(&catalog.versions("f").await.unwrap()),
        vec![
            ("a1", ArchiveState::Deleting),
            ("a2", ArchiveState::Deleting)
        ]
    );
    assert_eq!(catalog.current("f").await.unwrap(), None);
    assert_eq!(summaries(catalog.as_ref()).await, vec![summary_of(&other)]);
    check_superseded(catalog.as_ref()).await;
    assert_eq!(
        ids_and_states(&catalog.superseded().await.unwrap()),
        vec![
            ("a1", ArchiveState::Deleting),
            ("a2", ArchiveState::Deleting)
        ]
    );
    // A deletion the store refused: back to superseded.
    catalog
        .set_state("f", "a1", ArchiveState::Superseded)
        .await
        .unwrap();
    let versions = catalog.versions("f").await.unwrap();
    assert_eq!(
        ids_and_states(&versions),
        vec![
            ("a1", ArchiveState::Superseded),
            ("a2", ArchiveState::Deleting)
        ]
    );
    assert_eq!(versions[0], superseded(&old, 2), "nothing else changed");
    assert_eq!(catalog.versions("g").await.unwrap(), vec![other]);
}

pub async fn remove_forgets_one_archive_and_the_entry_with_its_last(backend: &dyn Backend) {
    let catalog = backend.open("remove").await;
    let (_, cur, other) = two_files(catalog.as_ref(), "g").await;

    catalog.remove("f", "a1").await.unwrap();
    assert_eq!(catalog.versions("f").await.unwrap(), vec![cur.clone()]);
    assert_eq!(catalog.find_archive("a1").await.unwrap(), None);
    // Under another key, or unknown: nothing is removed.
    catalog.remove("g", "a2").await.unwrap();
    catalog.remove("f", "never-recorded").await.unwrap();
    assert_eq!(catalog.versions("f").await.unwrap(), vec![cur.clone()]);
    assert_eq!(catalog.versions("g").await.unwrap(), vec![other.clone()]);

    // The current version deleted: the file is no longer archived at all.
    catalog.remove("f", "a2").await.unwrap();
    assert!(catalog.versions("f").await.unwrap().is_empty());
    assert_eq!(catalog.current("f").await.unwrap(), None);
    assert_eq!(catalog.records().await.unwrap(), vec![other.clone()]);
    assert_eq!(summaries(catalog.as_ref()).await, vec![summary_of(&other)]);
    // A new upload of the file starts afresh.
    let again = record("f", "a3", 4);
    catalog.record_upload(&again, None).await.unwrap();
    assert_eq!(catalog.versions("f").await.unwrap(), vec![again]);
}

pub async fn find_archive_finds_any_version_of_its_own_set(backend: &dyn Backend) {
    let catalog = backend.open("find").await;
    let (old, cur, other) = two_files(catalog.as_ref(), "dir/g").await;
    assert_eq!(
        catalog.find_archive("a1").await.unwrap(),
        Some(superseded(&old, 2))
    );
    assert_eq!(catalog.find_archive("a2").await.unwrap(), Some(cur));
    assert_eq!(catalog.find_archive("b1").await.unwrap(), Some(other));
    assert_eq!(catalog.find_archive("a").await.unwrap(), None);
    assert_eq!(catalog.find_archive("nope").await.unwrap(), None);
    let elsewhere = backend.open("find-elsewhere").await;
    assert_eq!(
        elsewhere.find_archive("a2").await.unwrap(),
        None,
        "another set's archive"
    );
}

pub async fn sets_are_kept_apart(backend: &dyn Backend) {
    let photos = backend.open("photos").await;
    let docs = backend.open("docs").await;
    let p = record("same/key", "p1", 1);
    let d = record("same/key", "d1", 2);
    photos.record_upload(&p, None).await.unwrap();
    // The same key in another set is another file: no conflict.
    docs.record_upload(&d, None).await.unwrap();
    assert_eq!(photos.versions("same/key").await.unwrap(), vec![p.clone()]);
    assert_eq!(docs.versions("same/key").await.unwrap(), vec![d.clone()]);
    assert_eq!(photos.records().await.unwrap(), vec![p.clone()]);
    assert_eq!(summaries(docs.as_ref()).await, vec![summary_of(&d)]);
    docs.remove("same/key", "d1").await.unwrap();
    assert_eq!(photos.records().await.unwrap(), vec![p]);
    assert!(docs.records().await.unwrap().is_empty());
    assert!(
        backend
            .open("empty")
            .await
            .records()
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn import_writes_many_records_at_once(backend: &dyn Backend) {
    let catalog = backend.open("import").await;
    // 60 files (more than one DynamoDB batch of 25), every third with an older
    // superseded version and every fifth with one being deleted; given in no
    // particular order.
    let mut records = Vec::new();
    for i in (0..60i64).rev() {
        let key = format!("dir{}/file{i:02}", i % 4);
        let current = record(&key, &format!("cur-{i}"), 100 + i);
        if i % 3 == 0 {
            records.push(superseded(&record(&key, &format!("old-{i}"), i), 100 + i));
        }
        if i % 5 == 0 {
            records.push(ArchiveRecord {
                state: ArchiveState::Deleting,
                ..superseded(&record(&key, &format!("del-{i}"), 50 + i), 100 + i)
            });
        }
        records.push(current);
    }
    catalog.import(&records).await.unwrap();

    let mut expected = records.clone();
    expected.sort_by(|a, b| a.key.cmp(&b.key).then(a.uploaded_at.cmp(&b.uploaded_at)));
    assert_eq!(catalog.records().await.unwrap(), expected);
    let key = "dir3/file15";
    assert_eq!(
        ids_and_states(&catalog.versions(key).await.unwrap()),
        vec![
            ("old-15", ArchiveState::Superseded),
            ("del-15", ArchiveState::Deleting),
            ("cur-15", ArchiveState::Current)
        ]
    );
    let current: Vec<_> = expected
        .iter()
        .filter(|r| r.state == ArchiveState::Current)
        .map(summary_of)
        .collect();
    assert_eq!(current.len(), 60);
    assert_eq!(summaries(catalog.as_ref()).await, current);
    // An imported current version is replaced like any other.
    let next = record(key, "next-15", 500);
    catalog.record_upload(&next, Some("cur-15")).await.unwrap();
    assert_eq!(catalog.current(key).await.unwrap(), Some(next));
}

pub async fn records_are_ordered_by_key_then_upload_time(backend: &dyn Backend) {
    let catalog = backend.open("order").await;
    // Keys whose order is byte order: upper case before lower, ' ' < '.' < '/',
    // and a multi-byte character after every ASCII one.
    let keys = ["b", "a/b", "a.b", "a b", "B", "\u{e9}t\u{e9}", "z", "a"];
    for (i, key) in keys.iter().enumerate() {
        let i = i as i64;
        // Uploaded in the order listed, each with an older version recorded later.
        catalog
            .record_upload(&record(key, &format!("{key}#new"), 20 + i), None)
            .await
            .unwrap();
        catalog
            .record_superseded(&superseded(
                &record(key, &format!("{key}#old"), 10 - i),
                20 + i,
            ))
            .await
            .unwrap();
    }
    let listed: Vec<(String, String)> = catalog
        .records()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.archive_id))
        .collect();
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort();
    assert_eq!(
        sorted,
        ["B", "a", "a b", "a.b", "a/b", "b", "z", "\u{e9}t\u{e9}"]
    );
    let expected: Vec<(String, String)> = sorted
        .iter()
        .flat_map(|k| {
            [
                (k.to_string(), format!("{k}#old")),
                (k.to_string(), format!("{k}#new")),
            ]
        })
        .collect();
    assert_eq!(listed, expected);
    check_superseded(catalog.as_ref()).await;
    let summary_keys: Vec<String> = summaries(catalog.as_ref())
        .await
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(summary_keys, sorted);
}

pub async fn current_summaries_list_current_versions_in_key_order_with_their_target(
    backend: &dyn Backend,
) {
    let catalog = backend.open("summaries").await;
    assert!(summaries(catalog.as_ref()).await.is_empty());
    // Files archived in two stores, recorded out of key order; one has an older
    // version, one only a superseded version, one an empty file.
    let in_old_store = ArchiveRecord {
        target: "local:/mnt/old-disk".into(),
        ..record("photos/b.jpg", "b1", 1)
    };
    let replaced = record("docs/a.txt", "a1", 2);
    let current_a = ArchiveRecord {
        target: "glacier:us-east-1/vault".into(),
        ..record("docs/a.txt", "a2", 3)
    };
    let empty = ArchiveRecord {
        size: 0,
        target: "local:/mnt/new-disk".into(),
        ..record("empty", "e1", 4)
    };
    let only_old = record("gone.txt", "g1", 5);
    catalog.record_upload(&in_old_store, None).await.unwrap();
    catalog.record_upload(&replaced, None).await.unwrap();
    catalog.record_upload(&current_a, Some("a1")).await.unwrap();
    catalog.record_upload(&empty, None).await.unwrap();
    catalog
        .record_superseded(&superseded(&only_old, 6))
        .await
        .unwrap();
    assert_eq!(
        summaries(catalog.as_ref()).await,
        vec![
            summary_of(&current_a),
            summary_of(&empty),
            summary_of(&in_old_store)
        ]
    );
}

pub async fn keys_longer_than_1024_bytes_behave_like_any_other(backend: &dyn Backend) {
    let catalog = backend.open("long").await;
    // Two keys sharing their first 1,100 bytes, one of 3,000; and a short key
    // that looks like a hashed one.
    let stem: String = (0..125).map(|i| format!("dir{i:03}-x/")).collect();
    assert!(stem.len() > 1024, "{}", stem.len());
    let long_a = format!("{stem}a.txt");
    let long_b = format!("{stem}b.txt");
    let longest = "deep/".repeat(600);
    let lookalike = "#long/0123".to_string();
    let keys = [&long_b, &lookalike, &longest, &long_a];
    for (i, key) in keys.iter().enumerate() {
        catalog
            .record_upload(&record(key, &format!("v1-{i}"), 1), None)
            .await
            .unwrap();
        catalog
            .record_upload(
                &record(key, &format!("v2-{i}"), 2),
                Some(&format!("v1-{i}")),
            )
            .await
            .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            catalog.versions(key).await.unwrap(),
            vec![
                superseded(&record(key, &format!("v1-{i}"), 1), 2),
                record(key, &format!("v2-{i}"), 2)
            ],
            "{}",
            &key[..20]
        );
    }
    check_superseded(catalog.as_ref()).await;
    let mut sorted: Vec<&String> = keys.to_vec();
    sorted.sort();
    let summary_keys: Vec<String> = summaries(catalog.as_ref())
        .await
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(
        summary_keys.iter().collect::<Vec<_>>(),
        sorted,
        "in key order"
    );
    let record_keys: Vec<String> = catalog
        .records()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    let expected: Vec<&String> = sorted.iter().flat_map(|k| [*k, *k]).collect();
    assert_eq!(record_keys.iter().collect::<Vec<_>>(), expected);
    assert_eq!(
        catalog.find_archive("v1-3").await.unwrap().map(|r| r.key),
        Some(long_a.clone())
    );
    // Writes to one long key leave its neighbour alone.
    catalog.update_mtime(&long_a, "v2-3", 77).await.unwrap();
    catalog.remove(&long_a, "v1-3").await.unwrap();
    assert_eq!(
        catalog.versions(&long_a).await.unwrap(),
        vec![ArchiveRecord {
            mtime_ns: 77,
            ..record(&long_a, "v2-3", 2)
        }]
    );
    assert_eq!(catalog.versions(&long_b).await.unwrap().len(), 2);
    catalog.remove(&long_a, "v2-3").await.unwrap();
    assert!(catalog.versions(&long_a).await.unwrap().is_empty());
    assert_eq!(catalog.records().await.unwrap().len(), 6);
}

pub async fn raw_names_round_trip(backend: &dyn Backend) {
    let catalog = backend.open("raw").await;
    // A name that is not UTF-8 (keyed escaped) and one in NFD (keyed NFC).
    let latin1 = ArchiveRecord {
        raw: Some(b"photos/caf\xe9 \xff.jpg".to_vec()),
        ..record("photos/caf\\xE9 \\xFF.jpg", "l1", 1)
    };
    let nfd = ArchiveRecord {
        raw: Some("Cafe\u{301}.txt".as_bytes().to_vec()),
        ..record("Caf\u{e9}.txt", "n1", 2)
    };
    let plain = record("plain.txt", "p1", 3);
    catalog.record_upload(&latin1, None).await.unwrap();
    catalog.record_upload(&nfd, None).await.unwrap();
    catalog.record_upload(&plain, None).await.unwrap();
    assert_eq!(
        catalog.versions(&latin1.key).await.unwrap(),
        vec![latin1.clone()]
    );
    assert_eq!(catalog.current(&nfd.key).await.unwrap(), Some(nfd.clone()));
    assert_eq!(
        catalog.find_archive("l1").await.unwrap(),
        Some(latin1.clone())
    );
    assert_eq!(
        summaries(catalog.as_ref()).await,
        vec![summary_of(&nfd), summary_of(&latin1), summary_of(&plain)]
    );
    // A new version of the same name keeps the name's bytes on both versions.
    let latin1_v2 = ArchiveRecord {
        raw: latin1.raw.clone(),
        ..record(&latin1.key, "l2", 4)
    };
    catalog.record_upload(&latin1_v2, Some("l1")).await.unwrap();
    assert_eq!(
        catalog.versions(&latin1.key).await.unwrap(),
        vec![superseded(&latin1, 4), latin1_v2]
    );
    // Imported, as a rebuilt catalog is.
    let imported = backend.open("raw-imported").await;
    imported
        .import(&[latin1.clone(), nfd.clone(), plain.clone()])
        .await
        .unwrap();
    assert_eq!(imported.records().await.unwrap(), vec![nfd, latin1, plain]);
}

pub async fn snapshots_are_kept_apart_from_records_oldest_first(backend: &dyn Backend) {
    let catalog = backend.open("snapshots").await;
    let other = backend.open("snapshots-elsewhere").await;
    let file = record("a.txt", "file-1", 1);
    catalog.record_upload(&file, None).await.unwrap();
    let snapshot = |id: &str, created_ms: i64| SnapshotRecord {
        archive_id: id.into(),
        target: "test:/store-0".into(),
        created_ms,
        size: 1234,
        records: 1,
        sha1: [7; 20],
        tree_hash: [8; 32],
    };
    // Two within one second, given newest first.
    let (newer, older) = (
        snapshot("snap-b", 1_800_000_000_500),
        snapshot("snap-a", 1_800_000_000_100),
    );
    catalog.record_snapshot(&newer).await.unwrap();
    catalog.record_snapshot(&older).await.unwrap();
    assert_eq!(
        catalog.snapshots().await.unwrap(),
        vec![older.clone(), newer.clone()]
    );
    // Not files: no record, no current version, no version of any key.
    assert_eq!(catalog.records().await.unwrap(), vec![file.clone()]);
    assert_eq!(summaries(catalog.as_ref()).await, vec![summary_of(&file)]);
    assert!(catalog.find_archive("snap-a").await.unwrap().is_none());
    assert!(other.snapshots().await.unwrap().is_empty());
    catalog.remove_snapshot("snap-a").await.unwrap();
    assert_eq!(catalog.snapshots().await.unwrap(), vec![newer]);
    assert_eq!(catalog.records().await.unwrap(), vec![file]);
}

pub async fn a_batch_of_uploads_is_recorded_with_each_conflict_kept_to_its_own_item(
    backend: &dyn Backend,
) {
    let catalog = backend.open("batch").await;
    let other_host = backend.open("batch").await;
    // 60 files already backed up; of those, 10 changed by another host since.
    for i in 0..60 {
        let old = record(&format!("dir/old{i:03}"), &format!("old-{i}"), 1);
        catalog.record_upload(&old, None).await.unwrap();
    }
    for i in 0..10 {
        let theirs = record(&format!("dir/old{i:03}"), &format!("theirs-{i}"), 2);
        other_host
            .record_upload(&theirs, Some(&format!("old-{i}")))
            .await
            .unwrap();
    }
    // One batch (more than one DynamoDB transaction of 100 writes): 60 new
    // versions of those files, as this run saw them, and 90 new files.
    let mut batch = Vec::new();
    for i in 0..60 {
        let new = record(&format!("dir/old{i:03}"), &format!("new-{i}"), 3);
        batch.push((new, Some(format!("old-{i}"))));
    }
    for i in 0..90 {
        batch.push((
            record(&format!("dir/fresh{i:03}"), &format!("fresh-{i}"), 3),
            None,
        ));
    }
    let outcomes = catalog.record_uploads(&batch).await.unwrap();
    assert_eq!(outcomes.len(), batch.len());
    for (i, ((record, _), outcome)) in batch.iter().zip(&outcomes).enumerate() {
        if i < 10 {
            let conflict = outcome
                .as_ref()
                .expect_err("another host wrote this file")
                .downcast_ref::<Conflict>()
                .expect("a Conflict");
            assert_eq!(
                conflict.found.as_deref(),
                Some(format!("theirs-{i}").as_str())
            );
            // Nothing of this item written: theirs is still current.
            assert_eq!(
                catalog
                    .current(&record.key)
                    .await
                    .unwrap()
                    .unwrap()
                    .archive_id,
                format!("theirs-{i}")
            );
        } else {
            assert!(outcome.is_ok(), "{}: {outcome:?}", record.key);
            assert_eq!(
                catalog.current(&record.key).await.unwrap(),
                Some(record.clone())
            );
        }
    }
    // Each replaced version superseded as record_upload would leave it.
    let old = record("dir/old042", "old-42", 1);
    let new = record("dir/old042", "new-42", 3);
    assert_eq!(
        catalog.versions("dir/old042").await.unwrap(),
        vec![superseded(&old, 3), new]
    );
    let currents = summaries(catalog.as_ref()).await;
    assert_eq!(currents.len(), 60 + 90);
    assert!(catalog.record_uploads(&[]).await.unwrap().is_empty());
}

/// Where a set's archives live, asked without loading the set (the S3 store's
/// prefix is settled by it): by a record's target or a snapshot's, never by
/// another set's.
pub async fn names_target_says_which_stores_a_set_uses(backend: &dyn Backend) {
    let catalog = backend.open("targets").await;
    let other = backend.open("targets-elsewhere").await;
    assert!(
        !catalog.names_target("test:/store-1").await.unwrap(),
        "empty"
    );
    catalog
        .record_upload(&record("a.txt", "t-1", 1), None)
        .await
        .unwrap();
    assert!(catalog.names_target("test:/store-1").await.unwrap());
    assert!(!catalog.names_target("test:/store-0").await.unwrap());
    catalog
        .record_snapshot(&SnapshotRecord {
            archive_id: "t-snap".into(),
            target: "test:/snapshots-only".into(),
            created_ms: 1,
            size: 1,
            records: 1,
            sha1: [1; 20],
            tree_hash: [2; 32],
        })
        .await
        .unwrap();
    assert!(catalog.names_target("test:/snapshots-only").await.unwrap());
    assert!(!other.names_target("test:/store-1").await.unwrap());
    assert!(!other.names_target("test:/snapshots-only").await.unwrap());
}
