//! Claims (invariant 12 in the crate docs): how a set marks as its own the
//! archives its catalog names that were written before descriptions named their
//! set (`firn1`, or `mt2` adopted from mt-aws-glacier), so that a store shared
//! by several sets becomes safe without uploading anything again.
//!
//! Archive descriptions cannot be changed after the fact (a Glacier vault's
//! never can), so a claim is an archive of its own: its description names the
//! set and lists the short form of every archive id it claims (see
//! `description::ClaimDescription`), as many claims as the store's description
//! limit needs (about 90 archives each in a vault, 180 in a bucket); its body
//! lists the ids in full. Every set reading the store's listing then knows whose
//! those archives are without retrieving anything.
//!
//! A set claims only archives its catalog names, the store lists, and no other
//! set has claimed or named as its own; those are reported, never taken.
//!
//! Releasing is the other way: a set gives up the records of archives another
//! set names as its own (an older firn's `catalog rebuild` in a shared store
//! adopted them), found by the last inventory. Nothing leaves the store; a file
//! whose current version was such an archive gets its newest own version back
//! as current.

use anyhow::{Result, bail};
use bytes::Bytes;
use serde::Serialize;

use super::inventory::{Disputed, InventoryFetch};
use super::owners::{Owners, Whose, kind_of};
use super::{Done, Engine};
use crate::catalog::Catalog as _;
use crate::description::{ClaimDescription, claimed_id};
use crate::hash::tree_hash_of;
use crate::store::{ArchiveListing, EMPTY_ARCHIVE_ID, StoredArchive};

/// What [`Engine::claim`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClaimReport {
    /// Unix seconds: the moment the store's listing reflects.
    pub inventory_date: i64,
    /// Archives of unknown owner this set's catalog names: claimed now.
    pub claimed: u64,
    /// Claim archives stored for them.
    pub claim_archives: u64,
    /// Archives the catalog names that were this set's already (their
    /// description names it, or an earlier claim did).
    pub already_mine: u64,
    /// Archives the catalog names that another set's description or claim
    /// names as that set's: not claimed.
    pub others: Vec<Disputed>,
    /// Catalog records whose archive the listing does not show (stored after
    /// it, or in another store): not claimed now.
    pub not_listed: u64,
}

/// What [`Engine::release`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReleaseReport {
    /// Records given up (their archives stay in the store, the other set's).
    pub released: Vec<Disputed>,
    /// Files whose newest own version is current again.
    pub current_again: Vec<String>,
    /// Archive ids asked for that the last inventory did not find disputed.
    pub not_disputed: Vec<String>,
}

/// A claim, or the inventory job it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Waiting {
        requested_at: i64,
        ready_at: Option<i64>,
    },
    Ready(ClaimReport),
}

impl Engine {
    /// Claims, in the store, the archives of unknown owner that this set's
    /// catalog names (see the module docs). Reads the store's inventory first
    /// (a job on Glacier, reused for 24 hours; see [`Engine::fetch_inventory`]).
    pub async fn claim(&self, wait: bool) -> Result<ClaimOutcome> {
        let outcome = self.claim_archives(wait).await?;
        self.note(&outcome);
        Ok(outcome)
    }

    async fn claim_archives(&self, wait: bool) -> Result<ClaimOutcome> {
        if self.store.can_list() {
            // A listing as of now: another set's claim made since an inventory
            // this set took earlier must be seen, or both would claim one archive.
            self.state.forget_inventory_job()?;
        }
        let inventory = match self.fetch_inventory(wait).await? {
            InventoryFetch::Waiting {
                requested_at,
                ready_at,
            } => {
                return Ok(ClaimOutcome::Waiting {
                    requested_at,
                    ready_at,
                });
            }
            InventoryFetch::Ready(inventory) => inventory,
        };
        let owners = Owners::of(&inventory.archives, &self.owner);
        let listed: std::collections::HashMap<&str, &ArchiveListing> = inventory
            .archives
            .iter()
            .map(|a| (a.archive_id.as_str(), a))
            .collect();
        let mut report = ClaimReport {
            inventory_date: inventory.date,
            ..ClaimReport::default()
        };
        let mut to_claim: Vec<String> = Vec::new();
        for record in self.catalog.records().await? {
            if record.archive_id == EMPTY_ARCHIVE_ID {
                continue;
            }
            let Some(listing) = listed.get(record.archive_id.as_str()) else {
                report.not_listed += 1;
                continue;
            };
            let others = owners.claimed_by_others(&record.archive_id);
            match owners.whose(listing) {
                Whose::Mine => report.already_mine += 1,
                Whose::Other(owner) => report.others.push(Disputed {
                    key: record.key,
                    archive_id: record.archive_id,
                    owner,
                    state: record.state.as_str().into(),
                }),
                // Claimed by this set and another: the other claim stands.
                Whose::Unknown if !others.is_empty() => report.others.push(Disputed {
                    key: record.key,
                    archive_id: record.archive_id,
                    owner: others.join(","),
                    state: record.state.as_str().into(),
                }),
                Whose::Unknown if kind_of(listing) == super::owners::Kind::File => {
                    to_claim.push(record.archive_id)
                }
                Whose::Unknown => {}
            }
        }
        to_claim.sort();
        to_claim.dedup();
        let per_claim = ClaimDescription::capacity(self.store.description_limit()).max(1);
        for ids in to_claim.chunks(per_claim) {
            let claim = ClaimDescription {
                owner: self.owner.clone(),
                archives: ids.iter().map(|id| claimed_id(id)).collect(),
            };
            let mut body = ids.join("\n");
            body.push('\n');
            self.store_small(Bytes::from(body), &claim.encode()).await?;
            report.claimed += ids.len() as u64;
            report.claim_archives += 1;
        }
        self.store.make_durable().await?;
        if report.claim_archives > 0 && self.store.can_list() {
            // The next inventory lists the claims (a vault's shows them once
            // Glacier refreshes its inventory, about a day later).
            self.state.forget_inventory_job()?;
        }
        report.others.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(ClaimOutcome::Ready(report))
    }

    /// Gives up the records of `archive_ids` (all of them when empty) that the
    /// last inventory found another set naming as its own (see the module docs).
    pub async fn release(&self, archive_ids: &[String]) -> Result<Done<ReleaseReport>> {
        let report = self.give_up_disputed(archive_ids).await?;
        let done = self.done(report).await;
        self.note(&done);
        Ok(done)
    }

    async fn give_up_disputed(&self, archive_ids: &[String]) -> Result<ReleaseReport> {
        let Some(reconciliation) = self.last_reconciliation().await? else {
            bail!(crate::model::usage(
                "no inventory of this set yet: run `firn inventory`, which finds the records another set names as its own"
            ));
        };
        let mut report = ReleaseReport::default();
        let chosen: Vec<Disputed> = if archive_ids.is_empty() {
            reconciliation.disputed.clone()
        } else {
            let mut chosen = Vec::new();
            for id in archive_ids {
                match reconciliation.disputed.iter().find(|d| &d.archive_id == id) {
                    Some(d) => chosen.push(d.clone()),
                    None => report.not_disputed.push(id.clone()),
                }
            }
            chosen
        };
        let mut lost_current = std::collections::BTreeSet::new();
        for disputed in chosen {
            let Some(record) = self.catalog.find_archive(&disputed.archive_id).await? else {
                continue;
            };
            self.catalog.remove(&record.key, &record.archive_id).await?;
            if record.state == crate::catalog::ArchiveState::Current {
                lost_current.insert(record.key.clone());
            }
            report.released.push(disputed);
        }
        let gone: std::collections::HashSet<&str> = report
            .released
            .iter()
            .map(|d| d.archive_id.as_str())
            .collect();
        for key in lost_current {
            let versions = self.catalog.versions(&key).await?;
            let newest = versions
                .into_iter()
                .filter(|v| {
                    v.state == crate::catalog::ArchiveState::Superseded
                        && self.holds(v)
                        && !gone.contains(v.archive_id.as_str())
                })
                .max_by_key(|v| v.uploaded_at);
            let Some(mut newest) = newest else { continue };
            // Out of the superseded versions and back in as current (a crash in
            // between leaves an archive of this set that `firn inventory
            // --adopt-orphans` records again).
            self.catalog.remove(&key, &newest.archive_id).await?;
            newest.state = crate::catalog::ArchiveState::Current;
            newest.superseded_at = None;
            self.catalog.record_upload(&newest, None).await?;
            report.current_again.push(key);
        }
        // What is released is no longer this set's to keep from deletion.
        let mut left = reconciliation;
        left.disputed
            .retain(|d| !gone.contains(d.archive_id.as_str()));
        self.save_reconciliation(&left)?;
        Ok(report)
    }

    /// Stores a small archive held in memory (a claim), verified by its tree
    /// hash like any other; the caller makes it durable.
    async fn store_small(&self, bytes: Bytes, description: &str) -> Result<StoredArchive> {
        let size = bytes.len() as u64;
        let tree_hash = tree_hash_of(&bytes);
        let mut upload = self.store.begin_upload(size, description).await?;
        let part = self.store.part_size(size).max(1);
        let mut offset = 0usize;
        while offset < bytes.len() {
            let end = (offset + part).min(bytes.len());
            upload.reserve((end - offset) as u64).await?;
            upload.send(offset as u64, bytes.slice(offset..end)).await?;
            offset = end;
        }
        let stored = upload.complete(size, tree_hash, description).await?;
        if stored.tree_hash != tree_hash || stored.size != size {
            let _ = self.store.delete(&stored.archive_id).await;
            bail!(
                "the store reported tree hash {} for a claim, computed {}; discarded",
                hex::encode(stored.tree_hash),
                hex::encode(tree_hash)
            );
        }
        Ok(stored)
    }
}
