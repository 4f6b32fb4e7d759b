//! Amazon DynamoDB catalog (aws-sdk-dynamodb).
//!
//! One item per file of a backup set (documented in README so the AWS CLI or
//! boto3 can read the table):
//! - partition key `set_id` (S), sort key `path` (S): the file's key. A key longer
//!   than DynamoDB's 1024-byte sort-key limit is stored as `#long/<SHA-256 hex of
//!   the key>` with the key itself in `full_path` (S).
//! - the current version: `archive_id` (S), `size` (N), `mtime_ns` (N), `sha1` (S,
//!   hex), `tree_hash` (S, hex), `target` (S), `uploaded_at` (N, Unix seconds),
//!   `host` (S); `raw_path` (B) when the name's bytes differ from the key. An item
//!   whose current version was deleted has no `archive_id`.
//! - `versions` (L of M): superseded (or being deleted) versions, each with the same
//!   attributes plus `state` (S) and `superseded_at` (N).
//! - `revision` (N): bumped by every write; every write is conditional on the
//!   revision it read, so two hosts writing one entry get a conflict, never a lost
//!   update.
//!
//! A whole set is loaded with paginated Query (one request per 1 MB page).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, anyhow};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use sha2::{Digest, Sha256};

use super::{ArchiveRecord, ArchiveState, Catalog, Conflict, CurrentSummary};
use crate::aws::{self, AwsSettings};
use crate::model::{Sha1Digest, UNKNOWN_SHA1};
/// Sort keys longer than this (bytes) are stored hashed.
const MAX_SORT_KEY: usize = 1024;
const LONG_PREFIX: &str = "#long/";

/// `catalog = { kind = "dynamodb", table = "…", … }` in a set's config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoSettings {
    pub table: String,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

impl DynamoSettings {
    pub fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

pub struct DynamoCatalog {
    client: Client,
    table: String,
    set_id: String,
    region: String,
    /// Query requests sent (pages loaded), for tests and diagnostics.
    pub query_requests: AtomicU64,
}

type Item = HashMap<String, AttributeValue>;

/// One file's item, decoded.
#[derive(Debug, Clone, Default)]
struct FileItem {
    key: String,
    raw: Option<Vec<u8>>,
    current: Option<ArchiveRecord>,
    versions: Vec<ArchiveRecord>,
    revision: Option<u64>,
}

pub fn sort_key(key: &str) -> String {
    if key.len() <= MAX_SORT_KEY && !key.starts_with(LONG_PREFIX) {
        key.to_string()
    } else {
        format!(
            "{LONG_PREFIX}{}",
            hex::encode(Sha256::digest(key.as_bytes()))
        )
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|t| t.parse().ok())
}

fn get_hex<const N: usize>(item: &Item, name: &str) -> Option<[u8; N]> {
    hex::decode(get_s(item, name)?).ok()?.try_into().ok()
}

fn version_attributes(r: &ArchiveRecord, with_state: bool) -> Item {
    let mut m = Item::new();
    m.insert("archive_id".into(), s(&r.archive_id));
    m.insert("size".into(), n(r.size));
    m.insert("mtime_ns".into(), n(r.mtime_ns));
    m.insert("sha1".into(), s(hex::encode(r.sha1)));
    m.insert("tree_hash".into(), s(hex::encode(r.tree_hash)));
    m.insert("target".into(), s(&r.target));
    m.insert("uploaded_at".into(), n(r.uploaded_at));
    m.insert("host".into(), s(&r.host));
    if with_state {
        m.insert("state".into(), s(r.state.as_str()));
        if let Some(at) = r.superseded_at {
            m.insert("superseded_at".into(), n(at));
        }
    }
    m
}

fn version_from(
    m: &Item,
    key: &str,
    raw: &Option<Vec<u8>>,
    state: Option<ArchiveState>,
) -> Option<ArchiveRecord> {
    Some(ArchiveRecord {
        key: key.to_string(),
        raw: raw.clone(),
        size: get_n(m, "size")?,
        mtime_ns: get_n(m, "mtime_ns")?,
        sha1: get_hex(m, "sha1")?,
        tree_hash: get_hex(m, "tree_hash")?,
        archive_id: get_s(m, "archive_id")?,
        target: get_s(m, "target").unwrap_or_default(),
        uploaded_at: get_n(m, "uploaded_at").unwrap_or(0),
        state: state.or_else(|| ArchiveState::parse(&get_s(m, "state")?))?,
        host: get_s(m, "host").unwrap_or_default(),
        superseded_at: get_n(m, "superseded_at"),
    })
}

impl FileItem {
    fn decode(item: &Item) -> Option<FileItem> {
        let key = get_s(item, "full_path").or_else(|| get_s(item, "path"))?;
        let raw = item
            .get("raw_path")
            .and_then(|v| v.as_b().ok())
            .map(|b| b.clone().into_inner());
        let current = if item.contains_key("archive_id") {
            version_from(item, &key, &raw, Some(ArchiveState::Current))
        } else {
            None
        };
        let versions = item
            .get("versions")
            .and_then(|v| v.as_l().ok())
            .map(|list| {
                list.iter()
                    .filter_map(|v| v.as_m().ok())
                    .filter_map(|m| version_from(m, &key, &raw, None))
                    .collect()
            })
            .unwrap_or_default();
        Some(FileItem {
            key,
            raw,
            current,
            versions,
            revision: get_n(item, "revision"),
        })
    }

    fn encode(&self, set_id: &str) -> Item {
        let mut item = self
            .current
            .as_ref()
            .map(|c| version_attributes(c, false))
            .unwrap_or_default();
        item.insert("set_id".into(), s(set_id));
        let sk = sort_key(&self.key);
        if sk != self.key {
            item.insert("full_path".into(), s(&self.key));
        }
        item.insert("path".into(), s(sk));
        if let Some(raw) = &self.raw {
            item.insert("raw_path".into(), AttributeValue::B(Blob::new(raw.clone())));
        }
        if !self.versions.is_empty() {
            let list = self
                .versions
                .iter()
                .map(|v| AttributeValue::M(version_attributes(v, true)))
                .collect();
            item.insert("versions".into(), AttributeValue::L(list));
        }
        item.insert("revision".into(), n(self.revision.unwrap_or(0) + 1));
        item
    }

    fn all(&self) -> impl Iterator<Item = &ArchiveRecord> {
        self.current.iter().chain(self.versions.iter())
    }
}

impl DynamoCatalog {
    pub async fn connect(settings: &DynamoSettings, set_id: &str) -> Result<Self> {
        let config = aws::sdk_config(&settings.aws()).await?;
        let region = config.region().map(|r| r.to_string()).unwrap_or_default();
        Ok(DynamoCatalog {
            client: Client::new(&config),
            table: settings.table.clone(),
            set_id: set_id.to_string(),
            region,
            query_requests: AtomicU64::new(0),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn what(&self) -> String {
        format!("DynamoDB table {:?} in {}", self.table, self.region)
    }

    async fn describe_table(&self) -> Result<()> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| aws::explain(&e, &self.what()))?;
        Ok(())
    }

    async fn load_all(&self, projection: Option<&str>) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("set_id = :s")
                .expression_attribute_values(":s", s(&self.set_id))
                .set_exclusive_start_key(start.take());
            if let Some(p) = projection {
                query = query
                    .projection_expression(p)
                    .expression_attribute_names("#p", "path")
                    .expression_attribute_names("#sz", "size");
            }
            self.query_requests.fetch_add(1, Ordering::Relaxed);
            let out = aws::retry_transient(aws::ATTEMPTS, || query.clone().send())
                .await
                .map_err(|e| aws::explain(&e, &self.what()))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(items)
    }

    async fn read(&self, key: &str) -> Result<FileItem> {
        let get = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("set_id", s(&self.set_id))
            .key("path", s(sort_key(key)))
            .consistent_read(true);
        let out = aws::retry_transient(aws::ATTEMPTS, || get.clone().send())
            .await
            .map_err(|e| aws::explain(&e, &self.what()))?;
        Ok(out
            .item
            .as_ref()
            .and_then(FileItem::decode)
            .unwrap_or_else(|| FileItem {
                key: key.to_string(),
                ..FileItem::default()
            }))
    }

    /// Writes `item` only if nobody wrote it since it was read.
    async fn write(&self, item: &FileItem) -> Result<()> {
        let deleting = item.current.is_none() && item.versions.is_empty();
        let result = if deleting {
            let mut delete = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("set_id", s(&self.set_id))
                .key("path", s(sort_key(&item.key)));
            if let Some(rev) = item.revision {
                delete = delete
                    .condition_expression("revision = :rev")
                    .expression_attribute_values(":rev", n(rev));
            }
            match aws::retry_transient(aws::ATTEMPTS, || delete.clone().send()).await {
                Ok(_) => Ok(()),
                Err(e) if aws::has_code(&e, "ConditionalCheckFailedException") => Err(None),
                Err(e) => Err(Some(aws::explain(&e, &self.what()))),
            }
        } else {
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.encode(&self.set_id)));
            put = match item.revision {
                Some(rev) => put
                    .condition_expression("revision = :rev")
                    .expression_attribute_values(":rev", n(rev)),
                None => put
                    .condition_expression("attribute_not_exists(#p)")
                    .expression_attribute_names("#p", "path"),
            };
            match aws::retry_transient(aws::ATTEMPTS, || put.clone().send()).await {
                Ok(_) => Ok(()),
                Err(e) if aws::has_code(&e, "ConditionalCheckFailedException") => Err(None),
                Err(e) => Err(Some(aws::explain(&e, &self.what()))),
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(Some(e)) => Err(e),
            Err(None) => {
                // A retried write whose first attempt landed (its answer was lost)
                // fails its own condition: check what is there before crying conflict.
                let now = self.read(&item.key).await?;
                let landed = if deleting {
                    now.revision.is_none()
                } else {
                    now.revision == Some(item.revision.unwrap_or(0) + 1)
                        && now.current.as_ref().map(|c| &c.archive_id)
                            == item.current.as_ref().map(|c| &c.archive_id)
                        && now.versions.len() == item.versions.len()
                };
                if landed {
                    return Ok(());
                }
                Err(Conflict {
                    key: item.key.clone(),
                    expected: item.current.as_ref().map(|c| c.archive_id.clone()),
                    found: now.current.map(|c| c.archive_id),
                }
                .into())
            }
        }
    }

    async fn modify(&self, key: &str, change: impl FnOnce(&mut FileItem)) -> Result<()> {
        let mut item = self.read(key).await?;
        change(&mut item);
        self.write(&item).await
    }
}

#[async_trait]
impl Catalog for DynamoCatalog {
    fn describe(&self) -> String {
        format!("dynamodb:{}/{}", self.region, self.table)
    }

    async fn check(&self) -> Result<()> {
        self.describe_table().await
    }

    async fn current_summaries(&self) -> Result<Vec<CurrentSummary>> {
        // `path` and `size` are DynamoDB reserved words: aliased.
        let projection = "#p, full_path, raw_path, archive_id, #sz, mtime_ns, sha1, target";
        let mut out: Vec<CurrentSummary> = self
            .load_all(Some(projection))
            .await?
            .iter()
            .filter(|item| item.contains_key("archive_id"))
            .filter_map(|item| {
                Some(CurrentSummary {
                    key: get_s(item, "full_path").or_else(|| get_s(item, "path"))?,
                    raw: item
                        .get("raw_path")
                        .and_then(|v| v.as_b().ok())
                        .map(|b| b.as_ref().to_vec().into_boxed_slice()),
                    size: get_n(item, "size")?,
                    mtime_ns: get_n(item, "mtime_ns")?,
                    sha1: get_hex(item, "sha1")?,
                    target: get_s(item, "target").unwrap_or_default(),
                })
            })
            .collect();
        // Hashed long keys break DynamoDB's order: sort by the real key.
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn records(&self) -> Result<Vec<ArchiveRecord>> {
        let mut out: Vec<ArchiveRecord> = self
            .load_all(None)
            .await?
            .iter()
            .filter_map(FileItem::decode)
            .flat_map(|f| f.all().cloned().collect::<Vec<_>>())
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key).then(a.uploaded_at.cmp(&b.uploaded_at)));
        Ok(out)
    }

    async fn versions(&self, key: &str) -> Result<Vec<ArchiveRecord>> {
        let mut out: Vec<ArchiveRecord> = self.read(key).await?.all().cloned().collect();
        out.sort_by_key(|r| r.uploaded_at);
        Ok(out)
    }

    async fn record_upload(&self, record: &ArchiveRecord, replaces: Option<&str>) -> Result<()> {
        let mut item = self.read(&record.key).await?;
        let found = item.current.as_ref().map(|c| c.archive_id.clone());
        Conflict::check(&record.key, replaces, found)?;
        if let Some(mut previous) = item.current.take() {
            previous.state = ArchiveState::Superseded;
            previous.superseded_at = Some(record.uploaded_at);
            item.versions.push(previous);
        }
        let mut current = record.clone();
        current.state = ArchiveState::Current;
        current.superseded_at = None;
        item.raw = record.raw.clone();
        item.current = Some(current);
        self.write(&item).await
    }

    async fn record_superseded(&self, record: &ArchiveRecord) -> Result<()> {
        self.modify(&record.key, |item| {
            let mut r = record.clone();
            r.state = ArchiveState::Superseded;
            if item.raw.is_none() {
                item.raw = record.raw.clone();
            }
            item.versions.push(r);
        })
        .await
    }

    async fn update_mtime(&self, key: &str, archive_id: &str, mtime_ns: i64) -> Result<()> {
        self.modify(key, |item| {
            if let Some(c) = item.current.as_mut().filter(|c| c.archive_id == archive_id) {
                c.mtime_ns = mtime_ns;
            }
        })
        .await
    }

    async fn fill_unknown_sha1(
        &self,
        key: &str,
        archive_id: &str,
        sha1: &Sha1Digest,
    ) -> Result<()> {
        self.modify(key, |item| {
            for record in item.current.iter_mut().chain(item.versions.iter_mut()) {
                if record.archive_id == archive_id && record.sha1 == UNKNOWN_SHA1 {
                    record.sha1 = *sha1;
                }
            }
        })
        .await
    }

    async fn set_state(&self, key: &str, archive_id: &str, state: ArchiveState) -> Result<()> {
        self.modify(key, |item| {
            if state != ArchiveState::Current
                && item
                    .current
                    .as_ref()
                    .is_some_and(|c| c.archive_id == archive_id)
            {
                if let Some(mut c) = item.current.take() {
                    c.state = state;
                    item.versions.push(c);
                }
            } else if let Some(v) = item
                .versions
                .iter_mut()
                .find(|v| v.archive_id == archive_id)
            {
                v.state = state;
            }
        })
        .await
    }

    async fn remove(&self, key: &str, archive_id: &str) -> Result<()> {
        self.modify(key, |item| {
            if item
                .current
                .as_ref()
                .is_some_and(|c| c.archive_id == archive_id)
            {
                item.current = None;
            }
            item.versions.retain(|v| v.archive_id != archive_id);
        })
        .await
    }

    async fn find_archive(&self, archive_id: &str) -> Result<Option<ArchiveRecord>> {
        // No index on archive ids: the whole set is read (used only for recovery).
        Ok(self
            .records()
            .await?
            .into_iter()
            .find(|r| r.archive_id == archive_id))
    }

    async fn import(&self, records: &[ArchiveRecord]) -> Result<()> {
        let mut files: Vec<FileItem> = Vec::new();
        let mut sorted: Vec<&ArchiveRecord> = records.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        for r in sorted {
            if files.last().is_none_or(|f| f.key != r.key) {
                files.push(FileItem {
                    key: r.key.clone(),
                    raw: r.raw.clone(),
                    ..FileItem::default()
                });
            }
            let Some(file) = files.last_mut() else {
                continue;
            };
            if r.state == ArchiveState::Current && file.current.is_none() {
                file.current = Some(r.clone());
            } else {
                file.versions.push(r.clone());
            }
        }
        for chunk in files.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|f| {
                    let put = PutRequest::builder()
                        .set_item(Some(f.encode(&self.set_id)))
                        .build()
                        .map_err(|e| anyhow!("{e}"))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<_>>()?;
            let mut attempt = 0;
            while !pending.is_empty() {
                let batch = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending);
                let out = aws::retry_transient(aws::ATTEMPTS, || batch.clone().send())
                    .await
                    .map_err(|e| aws::explain(&e, &self.what()))?;
                // DynamoDB may accept only part of a batch: resend the rest.
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > 10 {
                        return Err(anyhow!(
                            "DynamoDB kept {} items unprocessed after 10 tries",
                            pending.len()
                        ));
                    }
                    tokio::time::sleep(aws::backoff(attempt)).await;
                }
            }
        }
        Ok(())
    }
}

/// What `firn init` creates: the table with firn's key schema, on-demand billing.
pub async fn create_table(client: &Client, table: &str) -> Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("set_id")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("path")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("set_id")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("path")
                .key_type(KeyType::Range)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(|e| aws::explain(&e, &format!("DynamoDB table {table:?}")))?;
    Ok(())
}

/// Waits (up to a minute) until a new table accepts reads and writes.
pub async fn wait_until_active(client: &Client, table: &str) -> Result<()> {
    use aws_sdk_dynamodb::types::TableStatus;
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| aws::explain(&e, &format!("DynamoDB table {table:?}")))?;
        if out.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(anyhow!(
        "DynamoDB table {table:?} did not become active within a minute"
    ))
}

/// None when the table does not exist; Some(true) when its key schema is firn's.
pub async fn table_schema_matches(client: &Client, table: &str) -> Result<Option<bool>> {
    use aws_sdk_dynamodb::types::KeyType;
    let out = match client.describe_table().table_name(table).send().await {
        Ok(out) => out,
        Err(e) if crate::aws::is_not_found(&e) => {
            return Ok(None);
        }
        Err(e) => return Err(aws::explain(&e, &format!("DynamoDB table {table:?}"))),
    };
    let schema = out
        .table
        .as_ref()
        .map(|t| t.key_schema())
        .unwrap_or_default();
    let has = |name: &str, kind: KeyType| {
        schema
            .iter()
            .any(|k| k.attribute_name() == name && *k.key_type() == kind)
    };
    Ok(Some(
        schema.len() == 2 && has("set_id", KeyType::Hash) && has("path", KeyType::Range),
    ))
}

/// Whether the table exists with firn's key schema, for `firn init` (creating it,
/// on-demand billing, once the plan is accepted).
pub async fn readiness(settings: &DynamoSettings) -> Result<crate::provision::Readiness> {
    use crate::provision::Readiness;
    let config = aws::sdk_config(&settings.aws()).await?;
    let client = Client::new(&config);
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let what = format!("DynamoDB table {:?} in {region}", settings.table);
    match table_schema_matches(&client, &settings.table).await? {
        Some(true) => Ok(Readiness::Exists(what)),
        Some(false) => Err(crate::model::usage(format!(
            "{what} exists with another key schema (firn needs partition key set_id and sort key path, both strings); name another table in the config"
        ))),
        None => {
            let table = settings.table.clone();
            Ok(Readiness::Missing {
                plan: format!(
                    "create {what} (on-demand billing; keys: set_id (S) partition, path (S) sort)"
                ),
                create: Box::pin(async move {
                    create_table(&client, &table).await?;
                    wait_until_active(&client, &table).await?;
                    Ok(format!("created: DynamoDB table {table:?}"))
                }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_hashed_into_the_sort_key_limit() {
        let short = "photos/a.jpg";
        assert_eq!(sort_key(short), short);
        let long = "d/".repeat(600);
        let sk = sort_key(&long);
        assert!(sk.starts_with(LONG_PREFIX) && sk.len() < MAX_SORT_KEY);
        assert_ne!(sort_key(&(long.clone() + "x")), sk);
    }

    #[test]
    fn items_round_trip() {
        let record = ArchiveRecord {
            key: "a/b".into(),
            raw: Some(b"a/b\xff".to_vec()),
            size: 5,
            mtime_ns: -3,
            sha1: [1; 20],
            tree_hash: [2; 32],
            archive_id: "id1".into(),
            target: "glacier:us-east-1/v".into(),
            uploaded_at: 10,
            state: ArchiveState::Current,
            host: "h".into(),
            superseded_at: None,
        };
        let mut old = record.clone();
        old.archive_id = "id0".into();
        old.state = ArchiveState::Superseded;
        old.superseded_at = Some(10);
        let item = FileItem {
            key: "a/b".into(),
            raw: record.raw.clone(),
            current: Some(record.clone()),
            versions: vec![old.clone()],
            revision: Some(4),
        };
        let encoded = item.encode("set");
        assert_eq!(get_n::<u64>(&encoded, "revision"), Some(5));
        let decoded = FileItem::decode(&encoded).expect("decodes");
        assert_eq!(decoded.current, Some(record));
        assert_eq!(decoded.versions, vec![old]);
    }
}
