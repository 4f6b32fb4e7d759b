//! What finished background work reports: a scan, a batch of uploads,
//! retrievals or deletions, an orphan clean-up. Each settles its rows, logs what
//! happened and says what to look at again.

use std::collections::HashSet;

use super::action::{Effect, RestoreReport, RetrievalGroup, RetrieveItem};
use super::dialogs::Dialog;
use super::state::{Phase, State};
use crate::engine::{BackupSummary, DeletionReport, OrphanOutcome, OrphanResult};
use crate::fmt::plural;
use crate::tui::text::{count, human_bytes};
use crate::tui::tree::Tree;

impl State {
    pub(super) fn scan_done(&mut self, result: Result<Box<Tree>, String>) {
        match result {
            Ok(tree) => {
                let totals = *tree.totals();
                self.set_tree(*tree);
                self.log(format!(
                    "scanned: {} entries, {} pending ({})",
                    count(self.browse.tree.len() as u64),
                    count(u64::from(totals.pending())),
                    human_bytes(totals.pending_bytes)
                ));
            }
            Err(message) => {
                self.phase = Phase::Failed;
                self.log(format!("scan failed: {message}"));
                self.dialog = Some(Dialog::Error {
                    title: "Cannot scan the tree".into(),
                    message,
                });
            }
        }
    }

    /// Settles the rows a batch left unfinished.
    pub(super) fn finish_batch(&mut self, batch: u32) {
        for change in self.jobs.finish_batch(batch, self.clock.ms) {
            self.apply_change(change);
        }
    }

    pub(super) fn batch_done(&mut self, batch: u32, summary: BackupSummary) {
        self.finish_batch(batch);
        let mut line = format!(
            "batch finished: {} uploaded ({}), {} failed, {} cancelled",
            plural(summary.uploaded_files, "file"),
            human_bytes(summary.uploaded_bytes),
            summary.failed.len(),
            summary.cancelled
        );
        if summary.mtimes_updated > 0 {
            line.push_str(&format!(", {} mtimes updated", summary.mtimes_updated));
        }
        if summary.superseded_deleted > 0 {
            line.push_str(&format!(
                "; retention deleted {}",
                plural(summary.superseded_deleted, "superseded archive")
            ));
        }
        if let Some(budget) = &summary.budget
            && budget.refused_any()
        {
            line.push_str(&format!(
                "; {} left out for the budget",
                plural(budget.refused_files, "file")
            ));
        }
        self.log(line);
        for failure in &summary.failed {
            self.log(format!("failed: {}: {}", failure.path, failure.reason));
        }
        if let Some(budget) = &summary.budget {
            self.set.monthly = Some(budget.used);
            // The same words as `firn backup`: what was left out, what to change.
            if let Some(refusal) = budget.refusal(&self.set.config_file) {
                self.log(refusal.clone());
                if !self.quitting() {
                    self.dialog = Some(Dialog::Error {
                        title: "Budget reached".into(),
                        message: format!(
                            "{refusal}\n\nThe files left out stay pending; nothing of them was uploaded or recorded."
                        ),
                    });
                }
            }
        }
        self.batch_ended();
    }

    pub(super) fn restore_done(&mut self, batch: u32, report: RestoreReport) -> Vec<Effect> {
        self.finish_batch(batch);
        let RestoreReport {
            tally: report,
            tier,
            destination,
        } = report;
        let mut line = format!(
            "retrieval finished: {} restored, {} identical, {} waiting, {} failed",
            report.restored,
            report.identical,
            report.waiting,
            report.failed.len()
        );
        if !report.conflicts.is_empty() {
            line.push_str(&format!(
                ", {} in place with other content",
                report.conflicts.len()
            ));
        }
        self.log(line);
        for (key, reason) in &report.failed {
            self.log(format!("retrieval failed: {key}: {reason}"));
        }
        if report.waiting > 0 {
            self.log(format!(
                "{} still at the store: the jobs are kept and picked up when firn starts again",
                plural(report.waiting, "file")
            ));
        }
        let into_root = destination.trim_end_matches('/') == self.set.root.trim_end_matches('/');
        if !report.conflicts.is_empty()
            && let Some(tier) = tier
        {
            self.dialog = Some(Dialog::ConfirmOverwrite {
                keys: report.conflicts,
                tier,
                destination,
            });
        }
        self.batch_ended();
        // Files restored into the tree itself change their status: look again.
        if into_root && report.restored > 0 && self.jobs.running_batches == 0 {
            return vec![Effect::Rescan];
        }
        Vec::new()
    }

    /// Retrieval jobs an earlier run requested: picked up, not requested again.
    pub(super) fn resume_retrievals(&mut self, groups: Vec<RetrievalGroup>) -> Vec<Effect> {
        let mut effects = Vec::new();
        for group in groups {
            self.log(format!(
                "picking up {} requested by an earlier run",
                plural(group.items.len() as u64, "retrieval job")
            ));
            let items = group
                .items
                .into_iter()
                .map(|(key, archive_id, size)| {
                    let item = RetrieveItem {
                        key,
                        archive_id: Some(archive_id),
                    };
                    (item, size)
                })
                .collect();
            effects.extend(self.start_retrieval(items, group.tier, group.destination, false));
        }
        effects
    }

    pub(super) fn delete_done(&mut self, batch: u32, report: DeletionReport) -> Vec<Effect> {
        self.finish_batch(batch);
        let kept = if report.kept_in_packs > 0 {
            format!(
                " ({} of them only forgotten, bytes kept in packs)",
                report.kept_in_packs
            )
        } else {
            String::new()
        };
        self.log(format!(
            "deletion finished: {} deleted ({}){kept}, {} failed, {} cancelled; early-deletion charge ≈ {}",
            plural(report.deleted, "archive"),
            human_bytes(report.deleted_bytes),
            report.failed.len(),
            report.cancelled,
            self.set.prices.format(report.charged)
        ));
        // Packed files: gone with their pack, or forgotten, bytes kept in it.
        for line in report.pack_lines() {
            self.log(line);
        }
        for failed in &report.failed {
            self.log(format!(
                "deletion failed: {} ({}): {}",
                failed.path, failed.archive_id, failed.reason
            ));
        }
        self.batch_ended();
        let mut effects = Vec::new();
        // Deleting frees room in the budget: its figure again.
        if report.deleted > 0 && self.set.budget.is_some() && !self.quitting() {
            effects.push(Effect::LoadMonthly);
        }
        // Deleted current versions make their files new (or gone): look again.
        if report.deleted > 0 && self.jobs.running_batches == 0 && !self.quitting() {
            effects.push(Effect::Rescan);
        }
        effects
    }

    pub(super) fn orphans_acted(&mut self, results: Vec<OrphanResult>) -> Vec<Effect> {
        let mut adopted = 0;
        let mut done = HashSet::new();
        for result in &results {
            let name = result.key.as_deref().unwrap_or(&result.archive_id);
            let id = &result.archive_id;
            match &result.outcome {
                OrphanOutcome::AdoptedCurrent | OrphanOutcome::AdoptedSuperseded => {
                    adopted += 1;
                    done.insert(id.clone());
                    self.log(format!("adopted orphan {id} as {name}"));
                }
                OrphanOutcome::Deleted => {
                    done.insert(id.clone());
                    self.log(format!("deleted orphan {id} ({name})"));
                }
                OrphanOutcome::AlreadyInCatalog => {
                    done.insert(id.clone());
                    self.log(format!("orphan {id} ({name}) is in the catalog by now"));
                }
                OrphanOutcome::Refused(why) | OrphanOutcome::Failed(why) => {
                    self.log(format!("orphan {id} ({name}): {why}"))
                }
            }
        }
        if let Some(r) = self.set.reconciliation.as_mut() {
            r.orphans.retain(|o| !done.contains(&o.archive_id));
        }
        self.message = Some(format!(
            "{} of {} dealt with (details in the log, L)",
            done.len(),
            plural(results.len() as u64, "orphan")
        ));
        // Adopted archives are files the catalog now knows: look again.
        if adopted > 0 && self.jobs.running_batches == 0 {
            return vec![Effect::Rescan];
        }
        Vec::new()
    }
}
