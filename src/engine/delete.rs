//! Deleting archives: on request (`firn delete`, `firn prune`, the TUI) and by the
//! retention policy, through one path. What a deletion costs is shown before it
//! is made (`plan_deletion`), and what the set costs is summed up (`cost_summary`).
//!
//! Order of every deletion (the catalog changes only after the store confirms):
//! 1. journal the intent in local state (`deletion_journal`), not in the catalog;
//! 2. delete the archive from the store (an archive already gone counts as deleted);
//! 3. remove its record from the catalog;
//! 4. close the journal entry.
//!
//! A store that refuses (2) leaves the catalog as it was and the journal entry is
//! dropped. A crash after (1) leaves the catalog record and the journal entry: the
//! next run (`recover`, and `firn delete` / `firn prune` before they start) repeats
//! 2–4, which is safe because deleting twice is not an error.
//!
//! Deleting the current version of a file leaves the file with no current version
//! (status calls it new if it still exists locally); older versions stay superseded.

use anyhow::{Context as _, Result};
use futures_util::StreamExt as _;
use serde::Serialize;

use super::{Done, Engine, Event, Progress, TaskId, fault_point};
use crate::catalog::Catalog as _;
use crate::catalog::{ArchiveRecord, ArchiveState};
use crate::cost::{CostSummary, Prices};
use crate::model::now_secs;
const SECS_PER_DAY: i64 = 86_400;

/// One archive of a deletion plan and what deleting it now costs.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletionItem {
    /// The task id its deletion reports under.
    pub id: TaskId,
    pub record: ArchiveRecord,
    /// Seconds since upload.
    pub age_secs: i64,
    /// Inside the minimum storage period: deleting now is billed.
    pub early: bool,
    /// The early-deletion charge (0 once the minimum period is over).
    pub early_charge: f64,
    /// A packed file: whether deleting it deletes its pack (the plan holds
    /// every version the pack still has) or only forgets it, its bytes kept in
    /// the pack until the pack's last file goes (then no charge applies to
    /// it now). None for a file archived alone, and until
    /// [`Engine::settle_packs`] looked at the catalog.
    pub pack: Option<PackFate>,
}

/// What deleting a packed file does to its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackFate {
    /// The pack goes with it: no other version this set keeps is in it.
    Deleted,
    /// Forgotten only: its bytes stay in the pack, which other files keep.
    Kept,
}

/// What became of one archive of a deletion plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Deleted from the store (a packed file: with its pack, its last file).
    Deleted,
    /// A packed file forgotten: its bytes stay in its pack until the pack's
    /// last file goes; no early-deletion charge applies to it.
    KeptInPack,
}

/// One file version a deletion removed from the catalog, and what became of
/// its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletionOutcome {
    pub path: String,
    pub archive_id: String,
    pub size: u64,
    pub outcome: Outcome,
    /// A packed file: its place in the pack `archive_id` names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack_offset: Option<u64>,
}

impl DeletionItem {
    /// Whole days since upload.
    pub fn age_days(&self) -> i64 {
        self.age_secs / SECS_PER_DAY
    }
}

/// What a deletion will remove and what it will cost, shown before asking.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletionPlan {
    /// Sorted by key, then upload time; one per archive.
    pub items: Vec<DeletionItem>,
    pub total_bytes: u64,
    pub total_charge: f64,
    pub currency: String,
}

impl DeletionPlan {
    pub fn new(
        records: Vec<ArchiveRecord>,
        prices: &Prices,
        now: i64,
        ids: &super::TaskIds,
    ) -> DeletionPlan {
        let mut records = records;
        records.sort_by(|a, b| {
            (a.key.as_str(), a.uploaded_at, a.archive_id.as_str()).cmp(&(
                b.key.as_str(),
                b.uploaded_at,
                b.archive_id.as_str(),
            ))
        });
        records.dedup_by(|a, b| a.archive_id == b.archive_id && a.key == b.key);
        let items: Vec<DeletionItem> = records
            .into_iter()
            .map(|record| DeletionItem {
                id: ids.next(),
                age_secs: now.saturating_sub(record.uploaded_at).max(0),
                early: prices.is_early(record.uploaded_at, now),
                early_charge: prices.early_deletion_charge(record.size, record.uploaded_at, now),
                pack: None,
                record,
            })
            .collect();
        DeletionPlan {
            total_bytes: items.iter().map(|i| i.record.size).sum(),
            total_charge: items.iter().map(|i| i.early_charge).sum(),
            currency: prices.currency.clone(),
            items,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many of its packed files are only forgotten, their bytes kept in
    /// packs other files keep, and those bytes.
    pub fn kept_in_packs(&self) -> (u64, u64) {
        self.items
            .iter()
            .filter(|i| i.pack == Some(PackFate::Kept))
            .fold((0, 0), |(n, bytes), i| (n + 1, bytes + i.record.size))
    }

    /// How many packs it deletes (their last files are in it).
    pub fn packs_deleted(&self) -> usize {
        let mut packs: Vec<&str> = self
            .items
            .iter()
            .filter(|i| i.pack == Some(PackFate::Deleted))
            .map(|i| i.record.archive_id.as_str())
            .collect();
        packs.sort_unstable();
        packs.dedup();
        packs.len()
    }

    /// How many archives are inside their minimum storage period.
    pub fn early_count(&self) -> usize {
        self.items.iter().filter(|i| i.early).count()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedDeletion {
    pub path: String,
    pub archive_id: String,
    pub reason: String,
}

/// What `delete_archives` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeletionReport {
    pub deleted: u64,
    pub deleted_bytes: u64,
    /// Early-deletion charges incurred by what was deleted (estimate).
    pub charged: f64,
    /// The store refused, or the catalog could not be updated (the next run
    /// finishes those from the journal).
    pub failed: Vec<FailedDeletion>,
    /// Not attempted because the run was cancelled.
    pub cancelled: u64,
    /// Of the versions deleted, the packed ones only forgotten (their bytes
    /// stay in their packs until each pack's last file goes), and their bytes.
    pub kept_in_packs: u64,
    pub kept_in_packs_bytes: u64,
    /// Each version deleted, and what became of its bytes.
    pub outcomes: Vec<DeletionOutcome>,
}

impl DeletionReport {
    /// The lines saying what became of each packed file deleted: gone with its
    /// pack, or forgotten with its bytes kept in the pack; then how many (both
    /// front ends say it the same way).
    pub fn pack_lines(&self) -> Vec<String> {
        let report = self;
        let mut lines = Vec::new();
        for o in &report.outcomes {
            let Some(offset) = o.pack_offset else {
                continue;
            };
            lines.push(match o.outcome {
                Outcome::Deleted => format!(
                    "deleted: {} ({}, the last file of pack {}: the pack is deleted)",
                    o.path,
                    crate::fmt::human_bytes(o.size),
                    o.archive_id
                ),
                Outcome::KeptInPack => format!(
                    "forgotten: {} ({}): its bytes stay in pack {} @{offset} until the pack's last file goes; no early-deletion charge for it now",
                    o.path,
                    crate::fmt::human_bytes(o.size),
                    o.archive_id
                ),
            });
        }
        if report.kept_in_packs > 0 {
            lines.push(format!(
                "{} ({}) forgotten but kept in packs: the store keeps billing those bytes until each pack's last file is deleted (`firn cost` shows them)",
                crate::fmt::plural(report.kept_in_packs, "packed file"),
                crate::fmt::human_bytes(report.kept_in_packs_bytes)
            ));
        }
        lines
    }
}

/// Deletions an interrupted run left, finished (or not) by this one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InterruptedDeletions {
    /// Keys whose archive was deleted from the store and the catalog.
    pub finished: Vec<String>,
    /// What could not be finished now (kept in the journal for the next run).
    pub failed: Vec<String>,
}

/// What a bulk prune deletes, and what it leaves alone for being early.
#[derive(Debug, Clone, PartialEq)]
pub struct Prunable {
    pub plan: DeletionPlan,
    /// Inside their minimum storage period, skipped (unless `include_early`).
    pub skipped_early: DeletionPlan,
}

impl Prunable {
    /// What the prune leaves for being early, in one sentence for people (both
    /// front ends say it the same way), or None when it leaves nothing.
    pub fn kept_early(&self, prices: &Prices) -> Option<String> {
        let skipped = &self.skipped_early;
        (!skipped.is_empty()).then(|| {
            format!(
                "kept: {} ({}) inside the {}-day minimum storage period; `firn prune --include-early` deletes them too (early-deletion charge ≈ {})",
                crate::fmt::plural(skipped.len() as u64, "superseded archive"),
                crate::fmt::human_bytes(skipped.total_bytes),
                prices.minimum_storage_days,
                prices.format(skipped.total_charge)
            )
        })
    }
}

impl Engine {
    /// The plan (per archive: age, early-deletion charge; totals) for deleting
    /// `records` at `now`.
    pub fn plan_deletion(&self, records: Vec<ArchiveRecord>, now: i64) -> DeletionPlan {
        DeletionPlan::new(records, &self.prices, now, &self.task_ids)
    }

    /// Says of each packed file of `plan` whether its deletion deletes its
    /// pack (the plan holds every version the catalog keeps in it) or only
    /// forgets it, its bytes kept in the pack: those are charged nothing now,
    /// and the totals say so. Reads the catalog once, when the plan has a
    /// packed file.
    pub async fn settle_packs(&self, plan: &mut DeletionPlan) -> Result<()> {
        let mut planned: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        for item in plan.items.iter().filter(|i| i.record.is_packed()) {
            *planned.entry(item.record.archive_id.clone()).or_default() += 1;
        }
        if planned.is_empty() {
            return Ok(());
        }
        let mut kept: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        self.catalog
            .for_each_record(&mut |r| {
                if r.is_packed() && planned.contains_key(&r.archive_id) {
                    *kept.entry(r.archive_id).or_default() += 1;
                }
                Ok(())
            })
            .await?;
        for item in plan.items.iter_mut().filter(|i| i.record.is_packed()) {
            let id = &item.record.archive_id;
            let in_plan = planned.get(id).copied().unwrap_or(0);
            let in_catalog = kept.get(id).copied().unwrap_or(0);
            if in_plan >= in_catalog {
                item.pack = Some(PackFate::Deleted);
            } else {
                item.pack = Some(PackFate::Kept);
                item.early = false;
                item.early_charge = 0.0;
            }
        }
        plan.total_charge = plan.items.iter().map(|i| i.early_charge).sum();
        Ok(())
    }

    /// `firn delete`, `firn prune`: deletes every archive of `plan` (up to
    /// `concurrency` at once), reporting per archive `Queued` (bytes = its
    /// size), `Started`, then `Done` or `Failed`, and stores the catalog's
    /// snapshot after. Archives not started when the job is cancelled are
    /// reported `Cancelled`.
    pub async fn delete_archives(
        &self,
        plan: &DeletionPlan,
        progress: &Progress,
    ) -> Done<DeletionReport> {
        let report = self.remove_archives(plan, progress).await;
        let done = self.done(report).await;
        self.note(&done);
        done
    }

    /// `firn delete --store OLD`: deletes `plan`'s archives from `old` (this
    /// set opened on a store it used before),
    /// as [`Engine::delete_archives`] does, and stores the catalog's snapshot in
    /// this set's own store.
    pub async fn delete_archives_in(
        &self,
        old: &Engine,
        plan: &DeletionPlan,
        progress: &Progress,
    ) -> Done<DeletionReport> {
        let report = old.remove_archives(plan, progress).await;
        let done = self.done(report).await;
        self.note(&done);
        done
    }

    async fn remove_archives(&self, plan: &DeletionPlan, progress: &Progress) -> DeletionReport {
        for item in &plan.items {
            let queued = Event::Queued {
                id: item.id,
                key: item.record.key.clone(),
                bytes: item.record.size,
            };
            progress.send(queued).await;
        }
        // A named async fn per archive (not a closure returning a future), so the
        // whole deletion can run on a spawned task (the TUI's).
        let deletions: Vec<_> = plan
            .items
            .iter()
            .enumerate()
            .map(|(n, item)| self.delete_reporting(n, item.id, item, progress))
            .collect();
        let outcomes: Vec<(usize, Option<Result<(), String>>)> =
            futures_util::stream::iter(deletions)
                .buffer_unordered(self.concurrency.max(1))
                .collect()
                .await;
        let mut outcomes = outcomes;
        outcomes.sort_by_key(|(n, _)| *n);
        // Once every deletion is over: which packs of the files deleted are
        // still there (other files keep them).
        let mut packs_left = std::collections::HashMap::new();
        for (n, outcome) in &outcomes {
            if let (Some(Ok(())), Some(item)) = (outcome, plan.items.get(*n))
                && item.record.is_packed()
                && !packs_left.contains_key(&item.record.archive_id)
            {
                let left = self.pack_left(item).await;
                packs_left.insert(item.record.archive_id.clone(), left);
            }
        }
        let mut report = DeletionReport::default();
        for (n, outcome) in outcomes {
            let Some(item) = plan.items.get(n) else {
                continue;
            };
            match outcome {
                None => report.cancelled += 1,
                Some(Ok(())) => {
                    let outcome = match packs_left.get(&item.record.archive_id) {
                        Some(true) => Outcome::KeptInPack,
                        _ => Outcome::Deleted,
                    };
                    report.deleted += 1;
                    report.deleted_bytes += item.record.size;
                    if outcome == Outcome::KeptInPack {
                        // Nothing left the store: nothing is charged.
                        report.kept_in_packs += 1;
                        report.kept_in_packs_bytes += item.record.size;
                    } else {
                        report.charged += item.early_charge;
                    }
                    report.outcomes.push(DeletionOutcome {
                        path: item.record.key.clone(),
                        archive_id: item.record.archive_id.clone(),
                        size: item.record.size,
                        outcome,
                        pack_offset: item.record.pack.map(|slot| slot.offset),
                    });
                }
                Some(Err(reason)) => report.failed.push(FailedDeletion {
                    path: item.record.key.clone(),
                    archive_id: item.record.archive_id.clone(),
                    reason,
                }),
            }
        }
        report
    }

    /// Deletes the archive of one plan item, reporting it as task `n`. None when
    /// cancelled before it started.
    async fn delete_reporting(
        &self,
        n: usize,
        id: TaskId,
        item: &DeletionItem,
        progress: &Progress,
    ) -> (usize, Option<Result<(), String>>) {
        if progress.is_cancelled() {
            progress.send(Event::Cancelled { id }).await;
            return (n, None);
        }
        progress.send(Event::Started { id }).await;
        match self.delete_archive(&item.record).await {
            Ok(()) => {
                let archive_id = item.record.archive_id.clone();
                progress.send(Event::Done { id, archive_id }).await;
                (n, Some(Ok(())))
            }
            Err(e) => {
                let reason = format!("{e:#}");
                let failed = Event::Failed {
                    id,
                    reason: reason.clone(),
                };
                progress.send(failed).await;
                (n, Some(Err(reason)))
            }
        }
    }

    /// Deletes one archive: intent journaled locally, store first, catalog only
    /// after the store confirmed, journal closed last (see the module docs).
    pub async fn delete_archive(&self, record: &ArchiveRecord) -> Result<()> {
        if let Some(owner) = self.disputed_by(&record.archive_id).await {
            anyhow::bail!(
                "archive {} of {} is named as its own by set {owner} too (found by the last `firn inventory`): not deleted; `firn catalog release` gives it up (README: Sharing a store)",
                record.archive_id,
                record.key
            );
        }
        if record.state != ArchiveState::Current
            && let Some(owner) = self
                .disputed_by(&format!("{}{}", super::inventory::DISPUTED_KEY, record.key))
                .await
        {
            anyhow::bail!(
                "archive {} of {} is an older version of a file whose current version set {owner} names as its own: kept until `firn catalog release` makes it current again (README: Sharing a store)",
                record.archive_id,
                record.key
            );
        }
        if !self.holds(record) {
            anyhow::bail!(
                "archive {} of {} is in store {}, not in {} (the store this set uses); nothing deleted",
                record.archive_id,
                record.key,
                record.target,
                self.store.target()
            );
        }
        if record.is_packed() && !self.last_in_pack(record).await? {
            // Other files' bytes share the pack: this version is forgotten, its
            // bytes stay in the pack until the last of them goes.
            return self
                .catalog
                .remove(&record.key, &record.archive_id)
                .await
                .with_context(|| {
                    format!(
                        "cannot forget {} (in pack {}) in the catalog",
                        record.key, record.archive_id
                    )
                });
        }
        self.state
            .deletion_begin(&record.archive_id, &record.key, now_secs())
            .context("cannot journal the deletion in local state")?;
        if let Err(e) = self.delete_from_store(&record.archive_id).await {
            // Not confirmed: the catalog is untouched, nothing is left to finish.
            let _ = self.state.deletion_end(&record.archive_id);
            return Err(e.context(format!(
                "the store did not delete archive {} of {}; the catalog still lists it",
                record.archive_id, record.key
            )));
        }
        fault_point("after-store-delete");
        self.catalog
            .remove(&record.key, &record.archive_id)
            .await
            .with_context(|| {
                format!(
                    "archive {} of {} was deleted from the store but is still in the catalog; the next firn run removes it",
                    record.archive_id, record.key
                )
            })?;
        self.state.deletion_end(&record.archive_id)
    }

    /// Whether the pack of a packed file deleted is still there: the catalog
    /// still names it (other files keep it). When the catalog cannot say,
    /// what the plan foresaw.
    async fn pack_left(&self, item: &DeletionItem) -> bool {
        match self.catalog.find_archive(&item.record.archive_id).await {
            Ok(found) => found.is_some(),
            Err(_) => item.pack == Some(PackFate::Kept),
        }
    }

    /// Whether `record` is the last version this set records in its pack: the
    /// count of each pack's versions is read from the catalog once a run, then
    /// taken down as versions go, so exactly one deletion finds itself the
    /// last and deletes the pack (journaled, as any archive's deletion).
    async fn last_in_pack(&self, record: &ArchiveRecord) -> Result<bool> {
        let mut counts = self.pack_versions.lock().await;
        // A pack recorded since the counts were read (a terminal UI session's
        // engine lives on) is not in them: read them again.
        if counts
            .as_ref()
            .is_none_or(|c| !c.contains_key(&record.archive_id))
        {
            let mut tally: std::collections::HashMap<String, u64> =
                std::collections::HashMap::new();
            self.catalog
                .for_each_record(&mut |r| {
                    if r.is_packed() {
                        *tally.entry(r.archive_id).or_default() += 1;
                    }
                    Ok(())
                })
                .await?;
            *counts = Some(tally);
        }
        let Some(counts) = counts.as_mut() else {
            return Ok(true);
        };
        let left = counts.entry(record.archive_id.clone()).or_insert(1);
        *left = left.saturating_sub(1);
        Ok(*left == 0)
    }

    /// The other set that the last reconciliation found naming `archive_id` as
    /// its own, if any (invariant 12: another set's archive is never deleted).
    async fn disputed_by(&self, archive_id: &str) -> Option<String> {
        let known = self.disputed.lock().ok().and_then(|d| d.clone());
        let disputed = match known {
            Some(disputed) => disputed,
            None => {
                let reconciliation = self.last_reconciliation().await.ok().flatten();
                let disputed = std::sync::Arc::new(
                    reconciliation
                        .map(|r| r.disputed_archives())
                        .unwrap_or_default(),
                );
                if let Ok(mut slot) = self.disputed.lock() {
                    *slot = Some(std::sync::Arc::clone(&disputed));
                }
                disputed
            }
        };
        disputed.get(archive_id).cloned()
    }

    /// Store deletion that treats an archive already gone as deleted. The local
    /// store and Glacier's DeleteArchive already are idempotent; a stand-in that
    /// answers "not found" counts as deleted too when the vault itself is there.
    async fn delete_from_store(&self, archive_id: &str) -> Result<()> {
        match self.store.delete(archive_id).await {
            Ok(()) => {}
            Err(e)
                if crate::aws::AwsError::in_chain_is_not_found(&e)
                    && self.store.check().await.is_ok() => {}
            Err(e) => return Err(e),
        }
        // An inventory taken before this deletion still lists the archive: it is
        // not an orphan.
        self.state.remember_deleted(archive_id, now_secs())
    }

    /// Finishes deletions a crash interrupted after they were journaled: deletes
    /// each archive from the store again (a no-op if it is gone) and from the
    /// catalog. Errors only when local state cannot be read; deletions that cannot
    /// be finished now are reported and stay journaled.
    pub(super) async fn finish_interrupted_deletions(&self) -> Result<InterruptedDeletions> {
        let mut report = InterruptedDeletions::default();
        let intents = self
            .state
            .deletions()
            .context("cannot read the journal of deletions in local state")?;
        for intent in intents {
            let outcome = async {
                self.delete_from_store(&intent.archive_id).await?;
                self.catalog.remove(&intent.key, &intent.archive_id).await?;
                self.state.deletion_end(&intent.archive_id)
            }
            .await;
            match outcome {
                Ok(()) => report.finished.push(intent.key),
                Err(e) => report.failed.push(format!(
                    "interrupted deletion of {} (archive {}): {e:#}; it is tried again next run",
                    intent.key, intent.archive_id
                )),
            }
        }
        Ok(report)
    }

    /// What a bulk prune deletes: superseded archives in this store (and any left
    /// `deleting` by an older firn), except those inside their minimum storage period unless
    /// `include_early`; the plan for those skipped comes along to be shown.
    pub async fn plan_prune(&self, now: i64, include_early: bool) -> Result<Prunable> {
        let mut chosen = Vec::new();
        let mut early = Vec::new();
        for record in self.catalog.records().await? {
            // Another store's archives (a migration's originals) are deleted with
            // `firn delete --store`, at that store's prices.
            if record.state == ArchiveState::Current || !self.holds(&record) {
                continue;
            }
            if !include_early && self.prices.is_early(record.uploaded_at, now) {
                early.push(record);
            } else {
                chosen.push(record);
            }
        }
        // A packed version inside its minimum period is free to forget while
        // its pack keeps other files: it is planned with the rest, and only
        // the ones whose pack would go with them (billed early) wait. Members
        // of one pack share its upload time, so a pack's are all early or none.
        let (early_packed, mut early): (Vec<_>, Vec<_>) =
            early.into_iter().partition(ArchiveRecord::is_packed);
        chosen.extend(early_packed);
        let mut plan = self.plan_deletion(chosen, now);
        self.settle_packs(&mut plan).await?;
        if !include_early {
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.items)
                .into_iter()
                .partition(|i| !i.early);
            plan.items = ready;
            plan.total_bytes = plan.items.iter().map(|i| i.record.size).sum();
            plan.total_charge = plan.items.iter().map(|i| i.early_charge).sum();
            early.extend(waiting.into_iter().map(|i| i.record));
        }
        Ok(Prunable {
            plan,
            skipped_early: self.plan_deletion(early, now),
        })
    }

    /// Archived bytes and counts, monthly storage, pending early-deletion charges
    /// and retrieval estimates of the whole set.
    pub async fn cost_summary(&self, now: i64) -> Result<CostSummary> {
        let records = self.catalog.records().await?;
        // This store's archives at its prices; other stores' are only counted.
        let (here, elsewhere): (Vec<&ArchiveRecord>, Vec<&ArchiveRecord>) =
            records.iter().partition(|r| self.holds(r));
        let mut summary = CostSummary::of(here, &self.prices, now);
        for record in elsewhere {
            summary.add_other_store(&record.target, record.size);
        }
        let target = self.store.target();
        summary.add_snapshots(
            self.catalog
                .snapshots()
                .await?
                .into_iter()
                .filter(|s| s.target.is_empty() || s.target == target)
                .map(|s| s.size),
        );
        // Only the tiers this store offers (S3 Deep Archive has no Expedited).
        let offered = self.store.tiers();
        summary
            .retrieval
            .retain(|estimate| offered.contains(&estimate.tier));
        Ok(summary)
    }
}
