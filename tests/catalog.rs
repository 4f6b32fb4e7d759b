//! The catalog contract (tests/common/catalog_contract.rs) run against every
//! catalog backend: the embedded SQLite file and DynamoDB through a local
//! server; and what only DynamoDB has to prove: whole-set loads by paginated
//! Query.

mod common;

use async_trait::async_trait;
use common::aws::{FakeCloud, aws_env, sdk_config};
use common::catalog_contract::Backend;
use common::sample_record;
use firn::catalog::dynamodb::{DynamoCatalog, DynamoSettings, create_table, wait_until_active};
use firn::catalog::sqlite::SqliteCatalog;
use firn::catalog::{ArchiveRecord, Catalog};

/// The embedded catalog: one SQLite file in a temporary directory.
struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    fn new() -> Sqlite {
        Sqlite {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }
}

#[async_trait]
impl Backend for Sqlite {
    async fn open(&self, set: &str) -> Box<dyn Catalog> {
        let path = self.dir.path().join("catalog.sqlite");
        Box::new(SqliteCatalog::open(&path, set).expect("open the SQLite catalog"))
    }
}

/// DynamoDB: a table made as `firn init` makes it, on the local stand-in.
struct Dynamo {
    cloud: FakeCloud,
}

impl Dynamo {
    async fn start() -> Dynamo {
        let cloud = FakeCloud::start();
        make_table(&cloud).await;
        Dynamo { cloud }
    }
}

#[async_trait]
impl Backend for Dynamo {
    async fn open(&self, set: &str) -> Box<dyn Catalog> {
        Box::new(catalog(&self.cloud, set).await)
    }
}

catalog_contract_tests!(sqlite, Sqlite::new());
catalog_contract_tests!(dynamodb, Dynamo::start().await);

async fn catalog(cloud: &FakeCloud, set: &str) -> DynamoCatalog {
    for (k, v) in aws_env(&cloud.endpoint) {
        // SAFETY: nextest runs each test in its own process, before any other thread reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    let settings = DynamoSettings {
        table: "catalog".into(),
        region: Some("us-east-1".into()),
        profile: None,
        endpoint_url: Some(cloud.endpoint.clone()),
    };
    DynamoCatalog::connect(&settings, set)
        .await
        .expect("connect")
}

async fn make_table(cloud: &FakeCloud) {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&cloud.endpoint).await);
    create_table(&client, "catalog")
        .await
        .expect("create table");
    wait_until_active(&client, "catalog").await.expect("active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10000_entry_set_loads_in_one_query_per_page() {
    let cloud = FakeCloud::start();
    make_table(&cloud).await;
    let writer = catalog(&cloud, "big").await;
    let mut records: Vec<ArchiveRecord> = (0..10_000)
        .map(|i| {
            sample_record(
                &format!("photos/{:05}/IMG_{i}.jpg", i / 100),
                &format!("archive-{i:05}-{}", "x".repeat(100)),
                i,
            )
        })
        .collect();
    // A long path takes the hashed sort-key scheme and still loads.
    let long_key = format!("{}/end.txt", "deep".repeat(300));
    records.push(sample_record(&long_key, "long-archive", 1));
    writer.import(&records).await.expect("batch import");

    // Count the pages independently with the raw client.
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&cloud.endpoint).await);
    let mut pages = 0;
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name("catalog")
            .key_condition_expression("set_id = :s")
            .expression_attribute_values(
                ":s",
                aws_sdk_dynamodb::types::AttributeValue::S("big".into()),
            )
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        pages += 1;
        start = out.last_evaluated_key.filter(|k| !k.is_empty());
        if start.is_none() {
            break;
        }
    }
    assert!(pages > 1, "the set spans several 1 MB pages");

    let reader = catalog(&cloud, "big").await;
    let records = reader.records().await.unwrap();
    assert_eq!(records.len(), 10_001);
    assert!(records.iter().any(|r| r.key == long_key));
    let queries = reader
        .query_requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        queries, pages,
        "one Query request per page, never one per file"
    );
    let summaries = reader.current_summaries().await.unwrap();
    assert_eq!(summaries.len(), 10_001);
    assert!(
        summaries.windows(2).all(|w| w[0].key < w[1].key),
        "sorted by key"
    );
}
