//! Recording many uploads in few requests: heads read with BatchGetItem (100 a
//! request), written with TransactWriteItems of up to 100 writes, each head
//! keeping its own condition. When a transaction is cancelled because some heads'
//! conditions failed, those heads are checked one by one (landed, or a Conflict)
//! and the rest are sent again: a conflict fails only its own upload.

use std::collections::{HashMap, HashSet};

use anyhow::{Result, anyhow};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{KeysAndAttributes, TransactWriteItem};

use super::DynamoCatalog;
use super::items::{Head, HeadWrite, Item, s, sort_key};
use crate::aws::{self, Call};
use crate::catalog::{ArchiveRecord, Catalog as _, Conflict};

/// DynamoDB's limits: keys per BatchGetItem, writes per TransactWriteItems.
const GET_MAX: usize = 100;
const TRANSACTION_MAX: usize = 100;

impl DynamoCatalog {
    pub(super) async fn record_batch(
        &self,
        uploads: &[(ArchiveRecord, Option<String>)],
    ) -> Result<Vec<Result<()>>> {
        let mut out: Vec<Option<Result<()>>> = (0..uploads.len()).map(|_| None).collect();
        // A key twice in one batch, or a head an older firn wrote (its versions
        // move out first): those go one by one, after the batch.
        let mut seen = HashSet::new();
        let mut alone = Vec::new();
        let keys: Vec<&str> = uploads
            .iter()
            .map(|(r, _)| r.key.as_str())
            .filter(|k| seen.insert(*k))
            .collect();
        let heads = self.read_heads(&keys).await?;
        let mut seen = HashSet::new();
        let mut writes: Vec<(usize, HeadWrite)> = Vec::new();
        for (i, (record, replaces)) in uploads.iter().enumerate() {
            if !seen.insert(record.key.as_str()) {
                alone.push(i);
                continue;
            }
            let head = heads.get(&record.key).cloned().unwrap_or_else(|| Head {
                key: record.key.clone(),
                ..Head::default()
            });
            if !head.legacy.is_empty() {
                alone.push(i);
                continue;
            }
            let found = head.current.as_ref().map(|c| c.archive_id.clone());
            if let Err(conflict) = Conflict::check(&record.key, replaces.as_deref(), found) {
                out[i] = Some(Err(conflict));
                continue;
            }
            writes.push((i, head.make_current(record)));
        }

        let mut pending = writes;
        while !pending.is_empty() {
            // Fill one transaction with whole heads (a head and its versions).
            let mut chunk = Vec::new();
            let mut items: Vec<TransactWriteItem> = Vec::new();
            let mut spans = Vec::new();
            while let Some((i, write)) = pending.pop() {
                let mine = self.transact_items(&write.head, &write.put_versions, &[])?;
                if !items.is_empty() && items.len() + mine.len() > TRANSACTION_MAX {
                    pending.push((i, write));
                    break;
                }
                spans.push(items.len()..items.len() + mine.len());
                items.extend(mine);
                chunk.push((i, write));
            }
            let transaction = self.transaction(items)?;
            match aws::send(Call::Write, || transaction.clone().send()).await {
                Ok(_) => {
                    for (i, _) in chunk {
                        out[i] = Some(Ok(()));
                    }
                }
                Err(e) if aws::has_code(&e, "TransactionCanceledException") => {
                    let reasons: Vec<bool> = match e.into_service_error() {
                        TransactWriteItemsError::TransactionCanceledException(ex) => ex
                            .cancellation_reasons()
                            .iter()
                            .map(|r| r.code().is_some_and(|c| c != "None"))
                            .collect(),
                        _ => Vec::new(),
                    };
                    for ((i, write), span) in chunk.into_iter().zip(spans) {
                        // Without reasons (a server that gives none), every head
                        // of the transaction is checked on its own.
                        let refused = reasons.len() < span.end || reasons[span].contains(&true);
                        if refused {
                            out[i] = Some(match self.landed_or_conflict(&write.head).await {
                                Ok(()) => Ok(()),
                                Err(e) if e.downcast_ref::<Conflict>().is_some() => Err(e),
                                // Neither landed nor another writer's: write it alone.
                                Err(_) => self.write(write).await,
                            });
                        } else {
                            pending.push((i, write));
                        }
                    }
                }
                Err(e) => {
                    // The batch failed as a whole after retries: its uploads stay
                    // journaled, and the next run records them.
                    let error = aws::explain(&e, &self.what());
                    for (i, _) in chunk.into_iter().chain(pending.drain(..)) {
                        out[i] = Some(Err(anyhow!("{error:#}")));
                    }
                }
            }
        }
        for i in alone {
            let (record, replaces) = &uploads[i];
            out[i] = Some(self.record_upload(record, replaces.as_deref()).await);
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(anyhow!("not recorded"))))
            .collect())
    }

    /// The heads of `keys` (strongly consistent), 100 a request, resending what
    /// DynamoDB left unprocessed.
    /// The current versions of many keys, read in batches of 100 heads.
    pub(super) async fn current_of_many(
        &self,
        keys: &[&str],
    ) -> Result<HashMap<String, ArchiveRecord>> {
        let heads = self.read_heads(keys).await?;
        Ok(heads
            .into_iter()
            .filter_map(|(key, head)| Some((key, head.current?)))
            .collect())
    }

    async fn read_heads(&self, keys: &[&str]) -> Result<HashMap<String, Head>> {
        let mut heads = HashMap::new();
        for chunk in keys.chunks(GET_MAX) {
            let wanted: Vec<Item> = chunk
                .iter()
                .map(|k| {
                    Item::from([
                        ("set_id".to_string(), s(&self.set_id)),
                        ("path".to_string(), s(sort_key(k))),
                    ])
                })
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(wanted))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| anyhow!("{e}"))?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                let get = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request);
                let out = aws::send(Call::Read, || get.clone().send())
                    .await
                    .map_err(|e| aws::explain(&e, &self.what()))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let Some(head) = Head::decode(&item) {
                        heads.insert(head.key.clone(), head);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    attempt += 1;
                    if attempt > 10 {
                        return Err(anyhow!("DynamoDB kept keys unprocessed after 10 tries"));
                    }
                    tokio::time::sleep(aws::backoff(attempt)).await;
                }
            }
        }
        Ok(heads)
    }
}
