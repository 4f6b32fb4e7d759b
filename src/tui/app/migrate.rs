//! Migrating from the store a set used before (`previous_store`): the plan
//! worked out in the background, the dialog that shows it, the batch of copies
//! in the jobs pane (one row per archive, under the plan's task ids), and what
//! the migration did. One migration at a time.

use tokio_util::sync::CancellationToken;

use super::action::{Effect, MigrationOffer};
use super::dialogs::Dialog;
use super::state::{Migration, State};
use crate::engine::{MigrationPlan, MigrationReport};
use crate::fmt::plural;
use crate::model::Tier;
use crate::tui::jobs::{JobKind, NewJob};
use crate::tui::keys::{KeyAction, KeyMap};
use crate::tui::text::human_bytes;
use crate::tui::tree::ROOT;

/// The key that starts a migration, as the key map binds it (for messages).
pub fn migrate_key(keys: &KeyMap) -> String {
    keys.first(KeyAction::Migrate)
        .map_or_else(|| "the migrate key".into(), |b| b.to_string())
}

/// The tier a migration dialog starts on: bulk, the cheapest (a migration is
/// not urgent; the CLI's default too), or the slowest the store offers.
pub fn default_tier(plan: &MigrationPlan) -> Tier {
    let offered: Vec<Tier> = plan.quotes.iter().map(|q| q.tier).collect();
    if offered.contains(&Tier::Bulk) {
        Tier::Bulk
    } else {
        offered.last().copied().unwrap_or(Tier::Bulk)
    }
}

impl State {
    /// The migrate key (`C`): asks the runtime to open the previous store and
    /// plan the migration (the dialog opens when the plan arrives).
    pub(super) fn ask_migration(&mut self) -> Vec<Effect> {
        if !self.ready() {
            return Vec::new();
        }
        match self.migration {
            Migration::Idle => {}
            Migration::Planning => {
                self.message = Some("already working out the migration…".into());
                return Vec::new();
            }
            Migration::Running { .. } => {
                self.message =
                    Some("a migration is running: its copies are in the jobs pane".into());
                return Vec::new();
            }
        }
        let Some(from) = self.set.previous_store.clone() else {
            let message = format!(
                "This set names no store to migrate from. Add the store it used before to the set's table in the config, e.g.\n  previous_store = {{ kind = \"glacier\", vault = \"photos\" }}\nthen start firn again and press {}.",
                migrate_key(&self.keys)
            );
            self.log("migration: the set names no previous_store in the config");
            self.dialog = Some(Dialog::Error {
                title: "No previous store".into(),
                message,
            });
            return Vec::new();
        };
        self.migration = Migration::Planning;
        self.message = Some("opening the previous store and working out what to copy…".into());
        vec![Effect::PlanMigration { from }]
    }

    /// The plan arrived: the dialog asks, or one line says there is nothing
    /// to copy, or why it could not be planned.
    pub(super) fn migration_planned(&mut self, planned: Result<MigrationOffer, String>) {
        self.migration = Migration::Idle;
        self.message = None;
        if self.quitting() {
            return;
        }
        let offer = match planned {
            Ok(offer) => offer,
            Err(message) => {
                self.log(format!("cannot plan the migration: {message}"));
                self.dialog = Some(Dialog::Error {
                    title: "Cannot plan the migration".into(),
                    message,
                });
                return;
            }
        };
        let plan = &offer.plan;
        if plan.is_empty() {
            let mut line = format!(
                "nothing to migrate: every current archive of {} is in {} already",
                plan.source, plan.destination
            );
            if plan.versions_left.files > 0 {
                line.push_str(&format!(
                    " ({} stay behind; `firn migrate --all-versions` copies them)",
                    plural(plan.versions_left.files, "superseded version")
                ));
            }
            self.log(line.clone());
            self.message = Some(line);
            return;
        }
        let tier = default_tier(plan);
        self.dialog = Some(Dialog::ConfirmMigration { offer, tier });
    }

    /// Confirmed: one batch in the jobs pane, a row per archive under the task
    /// id the plan gave it, and the effect that runs it.
    pub(super) fn start_migration(&mut self, offer: MigrationOffer, tier: Tier) -> Vec<Effect> {
        let MigrationOffer { source, plan, .. } = offer;
        let cancel = CancellationToken::new();
        let tree = &self.browse.tree;
        let jobs = plan
            .tasks()
            .into_iter()
            .map(|task| NewJob {
                id: task.id,
                node: tree.find(&task.key).unwrap_or(ROOT),
                key: task.key,
                bytes: task.bytes,
                cancel: cancel.clone(),
            })
            .collect();
        let wait = plan
            .quotes
            .iter()
            .find(|q| q.tier == tier)
            .map_or((0, 0), |q| q.wait);
        let kind = JobKind::Migrate {
            tier,
            wait,
            started_at: self.clock.now_secs,
        };
        let batch = self.jobs.add_batch(kind, jobs);
        self.migration = Migration::Running {
            from: plan.source.clone(),
            into: plan.destination.clone(),
        };
        let mut line = format!(
            "migrating {} from {} into {}: {} from local files",
            plural(plan.from_local.files + plan.retrievals.files, "archive"),
            plan.source,
            plan.destination,
            plan.from_local.files
        );
        if plan.retrievals.files > 0 {
            line.push_str(&format!(
                ", {} to retrieve ({} tier)",
                plan.retrievals.files,
                tier.as_str()
            ));
        }
        self.log(line);
        vec![Effect::Migrate {
            batch,
            source,
            plan,
            tier,
            cancel,
        }]
    }

    /// The migration ended: its rows settle, the log says what was copied, and
    /// the tree is compared again (copies make files up to date here).
    pub(super) fn migration_done(&mut self, batch: u32, report: MigrationReport) -> Vec<Effect> {
        self.finish_batch(batch);
        let (from, into) = match std::mem::replace(&mut self.migration, Migration::Idle) {
            Migration::Running { from, into } => (from, into),
            _ => ("the previous store".to_string(), "this store".to_string()),
        };
        let copied = report.from_local.files + report.retrieved.files;
        let mut line = format!(
            "migration finished: {} copied into {into} ({}; {} from local files, {} retrieved), {} waiting, {} failed",
            plural(copied, "archive"),
            human_bytes(report.from_local.bytes + report.retrieved.bytes),
            report.from_local.files,
            report.retrieved.files,
            report.waiting,
            report.failed.len()
        );
        if report.cancelled > 0 {
            line.push_str(&format!(", {} cancelled", report.cancelled));
        }
        if report.recorded_from_earlier_run > 0 {
            line.push_str(&format!(
                ", {} stored by an interrupted run recorded",
                report.recorded_from_earlier_run
            ));
        }
        self.log(line);
        for failed in &report.failed {
            self.log(format!(
                "migration failed: {}: {}",
                failed.path, failed.reason
            ));
        }
        if report.has_failures() || report.waiting > 0 {
            self.log(format!(
                "copies made and retrieval jobs requested are kept: press {} again to copy the rest (no job is requested or paid twice)",
                migrate_key(&self.keys)
            ));
        }
        self.log(format!(
            "nothing was deleted from {from}: `firn delete --store {from}` removes its archives later (it shows the early-deletion charges first), or keep them"
        ));
        self.batch_ended();
        let changed = copied > 0 || report.recorded_from_earlier_run > 0;
        let mut effects = Vec::new();
        // Copies are stored in this store: the budget's figure again.
        if changed && self.set.budget.is_some() && !self.quitting() {
            effects.push(Effect::LoadMonthly);
        }
        if changed && self.jobs.running_batches == 0 && !self.quitting() {
            effects.push(Effect::Rescan);
        }
        effects
    }
}
