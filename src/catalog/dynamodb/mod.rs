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
//! - `revision` (N): bumped by every write of the head; every head write is
//!   conditional on the revision it read, so two hosts writing one entry get a
//!   conflict, never a lost update.
//!
//! Each superseded (or being deleted) version is an item of its own, so a file can
//! have any number (an item holds at most 400 KB): sort key `<key>//v/<first 16
//! bytes of the SHA-256 of the archive id, hex>` (the key hashed as above when it
//! leaves too little room), `full_path` (S), the version's attributes plus `state`
//! (S) and `superseded_at` (N). A head and the version items a write changes are
//! written in one TransactWriteItems. Heads written by an older firn keep their
//! versions in a `versions` list (L of M); they are read as such, and moved out into
//! items by the next write of that head. (tests/upgrade.rs loads a table firn 0.1
//! wrote, and the same items in that older layout, and checks both read back.)
//!
//! A whole set is loaded with paginated Query (one request per 1 MB page).
//!
//! Every request follows the one retry policy of [`crate::aws`]. Unconditional
//! puts and deletes are idempotent; a conditional write carries one
//! ClientRequestToken through its tries, and a refusal after a lost answer is
//! checked against the head before it is called a conflict
//! ([`DynamoCatalog::landed_or_conflict`]).

mod batch;
mod items;
mod order;
mod settings;
mod table;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, anyhow};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, PutRequest, TransactWriteItem, WriteRequest};

use super::{ArchiveRecord, ArchiveState, Catalog, Conflict, CurrentSummary, SnapshotRecord};
use crate::aws::{self, Call};
use crate::model::{Sha1Digest, UNKNOWN_SHA1};
pub use items::sort_key;
use items::*;
pub use settings::DynamoSettings;
pub use table::{
    create_table, point_in_time_recovery, readiness, table_schema_matches, wait_until_active,
};

/// Items read by [`Catalog::names_target`]'s quick look.
const QUICK_LOOK: i32 = 25;

pub struct DynamoCatalog {
    client: Client,
    table: String,
    set_id: String,
    region: String,
    /// Query requests sent (pages loaded), for tests and diagnostics.
    pub query_requests: AtomicU64,
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
        aws::send(Call::Read, || {
            self.client.describe_table().table_name(&self.table).send()
        })
        .await
        .map_err(|e| aws::explain(&e, &self.what()))?;
        Ok(())
    }

    /// Every item of the set (or those whose sort key begins with `prefix`), page
    /// by page.
    async fn query(&self, prefix: Option<&str>, projection: Option<&str>) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        self.query_pages(prefix, projection, &mut |page| items.extend(page))
            .await?;
        Ok(items)
    }

    /// Like [`Self::query`], handing over each page as it comes, so a caller that
    /// keeps only some items never holds the whole set.
    async fn query_pages(
        &self,
        prefix: Option<&str>,
        projection: Option<&str>,
        on_page: &mut (dyn FnMut(Vec<Item>) + Send),
    ) -> Result<()> {
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":s", s(&self.set_id))
                .set_exclusive_start_key(start.take());
            query = match prefix {
                Some(prefix) => query
                    .key_condition_expression("set_id = :s AND begins_with(#p, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix))
                    .expression_attribute_names("#p", "path"),
                None => query.key_condition_expression("set_id = :s"),
            };
            if let Some(p) = projection {
                query = query
                    .projection_expression(p)
                    .expression_attribute_names("#p", "path")
                    .expression_attribute_names("#sz", "size")
                    .expression_attribute_names("#st", "state");
            }
            self.query_requests.fetch_add(1, Ordering::Relaxed);
            let out = aws::send(Call::Read, || query.clone().send())
                .await
                .map_err(|e| aws::explain(&e, &self.what()))?;
            on_page(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(())
    }

    async fn read_head(&self, key: &str) -> Result<Head> {
        let get = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("set_id", s(&self.set_id))
            .key("path", s(sort_key(key)))
            .consistent_read(true);
        let out = aws::send(Call::Read, || get.clone().send())
            .await
            .map_err(|e| aws::explain(&e, &self.what()))?;
        Ok(out
            .item
            .as_ref()
            .and_then(Head::decode)
            .unwrap_or_else(|| Head {
                key: key.to_string(),
                ..Head::default()
            }))
    }

    /// The version items of one file, oldest first.
    async fn read_versions(&self, key: &str) -> Result<Vec<ArchiveRecord>> {
        let mut versions: Vec<ArchiveRecord> = self
            .query(Some(&version_prefix(key)), None)
            .await?
            .iter()
            .filter_map(decode_version)
            .filter(|v| v.key == key)
            .collect();
        versions.sort_by_key(|v| v.uploaded_at);
        Ok(versions)
    }

    /// Puts version items without a condition (their archive id names them, so
    /// putting one twice is harmless), 25 at a time, resending what DynamoDB left
    /// unprocessed.
    async fn put_items(&self, items: Vec<Item>) -> Result<()> {
        for chunk in items.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(item.clone()))
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
                let out = aws::send(Call::Write, || batch.clone().send())
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

    /// Writes a head (conditionally on the revision it read) with its version
    /// items in one transaction. Versions an older firn kept in the head are put
    /// as items first, so the head can drop them.
    async fn write(&self, write: HeadWrite) -> Result<()> {
        let HeadWrite {
            mut head,
            mut put_versions,
            delete_versions,
        } = write;
        put_versions.append(&mut head.legacy);
        // One transaction holds 100 writes: the head and the last 99 others; the
        // rest (only a head written by an older firn has more) go first.
        let spill = put_versions
            .len()
            .saturating_sub(99 - delete_versions.len().min(99));
        let early: Vec<Item> = put_versions
            .drain(..spill)
            .map(|v| encode_version(&self.set_id, &v))
            .collect();
        self.put_items(early).await?;

        let items = self.transact_items(&head, &put_versions, &delete_versions)?;
        if items.is_empty() {
            return Ok(());
        }
        let transaction = self.transaction(items)?;
        match aws::send(Call::Write, || transaction.clone().send()).await {
            Ok(_) => Ok(()),
            Err(e) if aws::has_code(&e, "TransactionCanceledException") => {
                // A retried write whose first attempt landed (its answer was lost)
                // fails its own condition where the token is not honoured: check
                // what is there before crying conflict.
                self.landed_or_conflict(&head).await
            }
            Err(e) => Err(aws::explain(&e, &self.what())),
        }
    }

    /// A TransactWriteItems of `items` with a ClientRequestToken of its own, which
    /// every try sends: DynamoDB applies a transaction whose token it has seen
    /// in the last 10 minutes only once, so a try that landed before its answer
    /// was lost is not applied again (and its repeat is not refused by its own
    /// condition).
    fn transaction(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder>
    {
        Ok(self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(aws::request_token()?))
    }

    /// The writes of one head in a transaction: the head (put, or deleted when it
    /// has no current version) under the condition that its revision is the one
    /// read, the version items to put and those to delete.
    fn transact_items(
        &self,
        head: &Head,
        put_versions: &[ArchiveRecord],
        delete_versions: &[String],
    ) -> Result<Vec<TransactWriteItem>> {
        let remove_head = head.current.is_none();
        let mut items = Vec::with_capacity(1 + put_versions.len() + delete_versions.len());
        if remove_head {
            // A head with no revision read does not exist: nothing to delete.
            if let Some(rev) = head.revision {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .key("set_id", s(&self.set_id))
                    .key("path", s(sort_key(&head.key)))
                    .condition_expression("revision = :rev")
                    .expression_attribute_values(":rev", n(rev));
                items.push(
                    TransactWriteItem::builder()
                        .delete(delete.build().map_err(|e| anyhow!("{e}"))?)
                        .build(),
                );
            }
        } else {
            let mut put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(head.encode(&self.set_id)));
            put = match head.revision {
                Some(rev) => put
                    .condition_expression("revision = :rev")
                    .expression_attribute_values(":rev", n(rev)),
                None => put
                    .condition_expression("attribute_not_exists(#p)")
                    .expression_attribute_names("#p", "path"),
            };
            items.push(
                TransactWriteItem::builder()
                    .put(put.build().map_err(|e| anyhow!("{e}"))?)
                    .build(),
            );
        }
        for version in put_versions {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(encode_version(&self.set_id, version)))
                .build()
                .map_err(|e| anyhow!("{e}"))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        for sk in delete_versions {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key("set_id", s(&self.set_id))
                .key("path", s(sk))
                .build()
                .map_err(|e| anyhow!("{e}"))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        Ok(items)
    }

    /// After a head's conditional write was refused: Ok when the write is there
    /// anyway (a retried request whose first attempt landed, its answer lost),
    /// else the Conflict with what another writer put there.
    async fn landed_or_conflict(&self, head: &Head) -> Result<()> {
        let now = self.read_head(&head.key).await?;
        let landed = if head.current.is_none() {
            now.revision.is_none()
        } else {
            now.revision == Some(head.revision.unwrap_or(0) + 1)
                && now.current.as_ref().map(|c| &c.archive_id)
                    == head.current.as_ref().map(|c| &c.archive_id)
        };
        if landed {
            return Ok(());
        }
        Err(Conflict {
            key: head.key.clone(),
            expected: head.current.as_ref().map(|c| c.archive_id.clone()),
            found: now.current.map(|c| c.archive_id),
        }
        .into())
    }

    /// Updates one version item in place (when it exists).
    async fn update_version(
        &self,
        key: &str,
        archive_id: &str,
        change: impl FnOnce(&mut ArchiveRecord),
    ) -> Result<()> {
        let get = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("set_id", s(&self.set_id))
            .key("path", s(version_key(key, archive_id)))
            .consistent_read(true);
        let out = aws::send(Call::Read, || get.clone().send())
            .await
            .map_err(|e| aws::explain(&e, &self.what()))?;
        if let Some(mut version) = out.item.as_ref().and_then(decode_version) {
            change(&mut version);
            self.put_items(vec![encode_version(&self.set_id, &version)])
                .await?;
        }
        Ok(())
    }

    /// Changes a head, its own current version or one kept in it by an older firn.
    async fn modify_head(&self, key: &str, change: impl FnOnce(&mut Head)) -> Result<()> {
        let mut head = self.read_head(key).await?;
        if head.revision.is_none() {
            return Ok(());
        }
        change(&mut head);
        self.write(HeadWrite {
            head,
            put_versions: Vec::new(),
            delete_versions: Vec::new(),
        })
        .await
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
        let mut out = Vec::new();
        self.for_each_current(&mut |summary| out.push(summary))
            .await?;
        Ok(out)
    }

    async fn for_each_current(&self, visit: &mut (dyn FnMut(CurrentSummary) + Send)) -> Result<()> {
        // `path`, `size` and `state` are DynamoDB reserved words: aliased.
        let projection = "#p, full_path, raw_path, archive_id, #sz, mtime_ns, sha1, target, #st";
        let mut order = order::KeyOrder::default();
        // Only heads with a current version, page by page: version items are
        // dropped as they come, so 5,000 versions of a file cost no memory here,
        // and heads are handed on as they come, so neither do 200,000 files.
        self.query_pages(None, Some(projection), &mut |page| {
            for item in &page {
                if !item.contains_key("archive_id")
                    || is_version_item(item)
                    || is_snapshot_item(item)
                {
                    continue;
                }
                let (Some(sort_key), Some(summary)) = (get_s(item, "path"), summary_of(item))
                else {
                    continue;
                };
                order.push(&sort_key, summary, visit);
            }
        })
        .await?;
        order.finish(visit)
    }

    async fn records(&self) -> Result<Vec<ArchiveRecord>> {
        let mut out: Vec<ArchiveRecord> = Vec::new();
        for item in self.query(None, None).await? {
            if is_snapshot_item(&item) {
                continue;
            }
            if is_version_item(&item) {
                out.extend(decode_version(&item));
            } else if let Some(head) = Head::decode(&item) {
                out.extend(head.current);
                out.extend(head.legacy);
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key).then(a.uploaded_at.cmp(&b.uploaded_at)));
        Ok(out)
    }

    async fn superseded(&self) -> Result<Vec<ArchiveRecord>> {
        let mut out: Vec<ArchiveRecord> = Vec::new();
        // Page by page: heads are dropped as they come (keeping only the versions
        // an older firn wrote into them), so the current version of every file is
        // never held.
        self.query_pages(None, None, &mut |page| {
            for item in &page {
                if is_snapshot_item(item) {
                    continue;
                }
                if is_version_item(item) {
                    out.extend(decode_version(item));
                } else if let Some(head) = Head::decode(item) {
                    out.extend(head.legacy);
                }
            }
        })
        .await?;
        out.retain(|r| r.state != ArchiveState::Current);
        out.sort_by(|a, b| a.key.cmp(&b.key).then(a.uploaded_at.cmp(&b.uploaded_at)));
        Ok(out)
    }

    async fn versions(&self, key: &str) -> Result<Vec<ArchiveRecord>> {
        let head = self.read_head(key).await?;
        let mut out = self.read_versions(key).await?;
        out.extend(head.current);
        out.extend(head.legacy);
        out.sort_by_key(|r| r.uploaded_at);
        Ok(out)
    }

    async fn current(&self, key: &str) -> Result<Option<ArchiveRecord>> {
        Ok(self.read_head(key).await?.current)
    }

    async fn current_many(
        &self,
        keys: &[&str],
    ) -> Result<std::collections::HashMap<String, ArchiveRecord>> {
        self.current_of_many(keys).await
    }

    async fn record_upload(&self, record: &ArchiveRecord, replaces: Option<&str>) -> Result<()> {
        let head = self.read_head(&record.key).await?;
        let found = head.current.as_ref().map(|c| c.archive_id.clone());
        Conflict::check(&record.key, replaces, found)?;
        self.write(head.make_current(record)).await
    }

    async fn record_uploads(
        &self,
        uploads: &[(ArchiveRecord, Option<String>)],
    ) -> Result<Vec<Result<()>>> {
        self.record_batch(uploads).await
    }

    async fn record_superseded(&self, record: &ArchiveRecord) -> Result<()> {
        let mut version = record.clone();
        version.state = ArchiveState::Superseded;
        self.put_items(vec![encode_version(&self.set_id, &version)])
            .await
    }

    async fn update_mtime(&self, key: &str, archive_id: &str, mtime_ns: i64) -> Result<()> {
        self.modify_head(key, |head| {
            if let Some(c) = head.current.as_mut().filter(|c| c.archive_id == archive_id) {
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
        let head = self.read_head(key).await?;
        let in_head = head
            .current
            .iter()
            .chain(head.legacy.iter())
            .any(|r| r.archive_id == archive_id);
        if in_head {
            return self
                .modify_head(key, |head| {
                    for r in head.current.iter_mut().chain(head.legacy.iter_mut()) {
                        if r.archive_id == archive_id && r.sha1 == UNKNOWN_SHA1 {
                            r.sha1 = *sha1;
                        }
                    }
                })
                .await;
        }
        self.update_version(key, archive_id, |v| {
            if v.sha1 == UNKNOWN_SHA1 {
                v.sha1 = *sha1;
            }
        })
        .await
    }

    async fn set_state(&self, key: &str, archive_id: &str, state: ArchiveState) -> Result<()> {
        let mut head = self.read_head(key).await?;
        let leaving = state != ArchiveState::Current
            && head
                .current
                .as_ref()
                .is_some_and(|c| c.archive_id == archive_id);
        if leaving && let Some(mut version) = head.current.take() {
            version.state = state;
            return self
                .write(HeadWrite {
                    head,
                    put_versions: vec![version],
                    delete_versions: Vec::new(),
                })
                .await;
        }
        if let Some(v) = head.legacy.iter_mut().find(|v| v.archive_id == archive_id) {
            v.state = state;
            return self
                .write(HeadWrite {
                    head,
                    put_versions: Vec::new(),
                    delete_versions: Vec::new(),
                })
                .await;
        }
        self.update_version(key, archive_id, |v| v.state = state)
            .await
    }

    async fn remove(&self, key: &str, archive_id: &str) -> Result<()> {
        let mut head = self.read_head(key).await?;
        let in_head = head
            .current
            .as_ref()
            .is_some_and(|c| c.archive_id == archive_id)
            || head.legacy.iter().any(|v| v.archive_id == archive_id);
        if head
            .current
            .as_ref()
            .is_some_and(|c| c.archive_id == archive_id)
        {
            head.current = None;
        }
        head.legacy.retain(|v| v.archive_id != archive_id);
        if in_head || !head.legacy.is_empty() {
            return self
                .write(HeadWrite {
                    head,
                    put_versions: Vec::new(),
                    delete_versions: vec![version_key(key, archive_id)],
                })
                .await;
        }
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("set_id", s(&self.set_id))
            .key("path", s(version_key(key, archive_id)));
        aws::send(Call::Write, || delete.clone().send())
            .await
            .map_err(|e| aws::explain(&e, &self.what()))?;
        Ok(())
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
        let mut items = Vec::with_capacity(records.len());
        let mut heads: HashMap<&str, ()> = HashMap::new();
        for r in records {
            if r.state == ArchiveState::Current && heads.insert(r.key.as_str(), ()).is_none() {
                let head = Head {
                    key: r.key.clone(),
                    raw: r.raw.clone(),
                    current: Some(r.clone()),
                    legacy: Vec::new(),
                    revision: None,
                };
                items.push(head.encode(&self.set_id));
            } else {
                let mut version = r.clone();
                if version.state == ArchiveState::Current {
                    version.state = ArchiveState::Superseded;
                }
                items.push(encode_version(&self.set_id, &version));
            }
        }
        self.put_items(items).await
    }

    async fn snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        let mut out: Vec<SnapshotRecord> = self
            .query(Some(SNAPSHOT_MARK), None)
            .await?
            .iter()
            .filter_map(decode_snapshot)
            .collect();
        out.sort_by(|a, b| (a.created_ms, &a.archive_id).cmp(&(b.created_ms, &b.archive_id)));
        Ok(out)
    }

    async fn record_snapshot(&self, snapshot: &SnapshotRecord) -> Result<()> {
        self.put_items(vec![encode_snapshot(&self.set_id, snapshot)])
            .await
    }

    async fn names_target(&self, target: &str) -> Result<bool> {
        if self.snapshots().await?.iter().any(|s| s.target == target) {
            return Ok(true);
        }
        // A quick look at the first items, not the whole set: a set's archives
        // live in one store but after a migration.
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("set_id = :s")
            .expression_attribute_values(":s", s(&self.set_id))
            .projection_expression("target")
            .limit(QUICK_LOOK);
        self.query_requests.fetch_add(1, Ordering::Relaxed);
        let out = aws::send(Call::Read, || query.clone().send())
            .await
            .map_err(|e| aws::explain(&e, &self.what()))?;
        Ok(out.items().iter().any(|item| {
            item.get("target").and_then(|t| t.as_s().ok()) == Some(&target.to_string())
        }))
    }

    async fn remove_snapshot(&self, archive_id: &str) -> Result<()> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("set_id", s(&self.set_id))
            .key("path", s(snapshot_key(archive_id)));
        aws::send(Call::Write, || delete.clone().send())
            .await
            .map_err(|e| aws::explain(&e, &self.what()))?;
        Ok(())
    }
}
