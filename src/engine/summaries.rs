//! What each job's report adds to the summary of the run it is part of (the
//! run history, `crate::history`): what moved, what failed, what it cost. The
//! rule for "needs a look" is the one the CLI's exit code follows (exit 1), so
//! a terminal UI job is recorded with the code `firn` would have given it.
//!
//! Every public job notes its report once, when it is done ([`Engine::note`]);
//! a job that runs another runs its unnoted inner part, so nothing is counted
//! twice.

use super::{BackupSummary, ExistsWithOtherContent, TreeBackup};
use super::{
    ClaimOutcome, DeletionReport, Done, Engine, InventoryOutcome, InventoryRun, MigrationReport,
    OrphanOutcome, OrphanResult, RebuildOutcome, Reconciliation, ReleaseReport, RestoreOutcome,
    RestoreReport,
};
use crate::cost::Prices;
use crate::engine::progress::Cancelled;
use crate::fmt::plural;
use crate::history::{Summarize, Tally};
use crate::store::RequestCount;

impl Engine {
    /// Adds a job's report to the run under way, at this set's prices, with
    /// the billed requests the store sent since the last job was noted (the
    /// recovery before it, its own, its catalog snapshot's: each request is
    /// noted once, with the first job noted after it was sent).
    pub(super) fn note(&self, report: &dyn Summarize) {
        let sent = {
            let now = self.store.requests();
            let mut noted = self
                .requests_noted
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let since = now.since(*noted);
            *noted = now;
            since
        };
        crate::history::note(&WithRequests { report, sent }, &self.prices);
    }
}

/// A job's report and the requests sent for it.
struct WithRequests<'a> {
    report: &'a dyn Summarize,
    sent: RequestCount,
}

impl Summarize for WithRequests<'_> {
    fn summarize(&self, prices: &Prices, tally: &mut Tally) {
        self.report.summarize(prices, tally);
        tally.sent(self.sent, prices);
    }
}

impl<R: Summarize> Summarize for Done<R> {
    fn summarize(&self, prices: &Prices, tally: &mut Tally) {
        self.report.summarize(prices, tally);
        if let Some(error) = &self.after.error {
            tally.fail(format!("catalog snapshot: {error}"));
        }
    }
}

impl Summarize for BackupSummary {
    fn summarize(&self, prices: &Prices, tally: &mut Tally) {
        tally.uploaded.add(self.uploaded_files, self.uploaded_bytes);
        // Retention reports how many it deleted, not their bytes.
        tally.deleted.add(self.superseded_deleted, 0);
        for failed in &self.failed {
            tally.fail(format!("{}: {}", failed.path, failed.reason));
        }
        tally.cancelled += self.cancelled;
        tally.problems |= self.has_failures();
        // Its upload requests are charged as the store counted them
        // (`Engine::note`).
        tally.charge(0.0, prices);
    }
}

impl Summarize for TreeBackup {
    fn summarize(&self, prices: &Prices, tally: &mut Tally) {
        self.summary.summarize(prices, tally);
        for problem in self.problems.iter().filter(|p| p.is_failure) {
            tally.fail(format!("{}: {}", problem.path, problem.reason));
        }
        tally.problems |= self.has_failures();
    }
}

impl Summarize for RestoreReport {
    fn summarize(&self, prices: &Prices, tally: &mut Tally) {
        for result in &self.results {
            let key = &result.record.key;
            match &result.outcome {
                Ok(RestoreOutcome::Restored { .. }) => tally.restored.add(1, result.record.size),
                Ok(RestoreOutcome::Identical { .. }) => {}
                Ok(RestoreOutcome::Waiting { .. }) => tally.waiting += 1,
                Err(e) if e.is::<Cancelled>() => {
                    tally.cancelled += 1;
                    tally.problems = true;
                }
                Err(e) if e.is::<ExistsWithOtherContent>() => {
                    tally.fail(format!("{key}: {}", crate::fmt::one_line(e)))
                }
                Err(e) => tally.fail(format!("{key}: {}", crate::fmt::one_line(e))),
            }
        }
        tally.charge(
            prices.retrieval_estimate(self.bytes_requested, self.jobs_requested, self.tier),
            prices,
        );
    }
}

impl Summarize for DeletionReport {
    fn summarize(&self, prices: &Prices, tally: &mut Tally) {
        tally.deleted.add(self.deleted, self.deleted_bytes);
        tally.charge(self.charged, prices);
        for failed in &self.failed {
            tally.fail(format!("{}: {}", failed.path, failed.reason));
        }
        tally.cancelled += self.cancelled;
        tally.problems |= self.cancelled > 0;
    }
}

impl Summarize for MigrationReport {
    fn summarize(&self, prices: &Prices, tally: &mut Tally) {
        for copied in [self.from_local, self.retrieved] {
            tally.copied.add(copied.files, copied.bytes);
        }
        tally.waiting += self.waiting;
        for failed in &self.failed {
            tally.fail(format!("{}: {}", failed.path, failed.reason));
        }
        tally.cancelled += self.cancelled;
        tally.problems |= self.has_failures();
        tally.charge(self.retrieval_cost, prices);
    }
}

/// An inventory's findings: each kind of problem in one line.
fn findings(r: &Reconciliation, tally: &mut Tally) {
    for (count, noun) in [
        (r.orphans.len(), "orphan"),
        (r.unclaimed.len(), "unclaimed archive"),
        (r.missing.len(), "missing archive"),
        (r.mismatched.len(), "mismatched archive"),
        (r.disputed.len(), "disputed archive"),
    ] {
        tally.fail_many(
            count as u64,
            format!("inventory: {}", plural(count as u64, noun)),
        );
    }
}

/// The outcomes of acting on orphans (adopting or deleting them).
struct Orphans<'a>(&'a [OrphanResult]);

/// [`Engine::act_on_orphans`]'s report, and what storing the snapshot after it did.
pub(super) struct OrphansDone<'a>(pub &'a Done<Vec<OrphanResult>>);

impl Summarize for OrphansDone<'_> {
    fn summarize(&self, prices: &Prices, tally: &mut Tally) {
        Orphans(&self.0.report).summarize(prices, tally);
        if let Some(error) = &self.0.after.error {
            tally.fail(format!("catalog snapshot: {error}"));
        }
    }
}

impl Summarize for Orphans<'_> {
    fn summarize(&self, prices: &Prices, tally: &mut Tally) {
        for result in self.0 {
            match &result.outcome {
                OrphanOutcome::Deleted => tally.deleted.add(1, 0),
                OrphanOutcome::Failed(reason) => {
                    tally.fail(format!("orphan {}: {reason}", result.archive_id))
                }
                _ => {}
            }
        }
        tally.charge(0.0, prices);
    }
}

impl Summarize for InventoryRun {
    fn summarize(&self, prices: &Prices, tally: &mut Tally) {
        match self {
            InventoryRun::Waiting { .. } => tally.waiting += 1,
            InventoryRun::Ready {
                reconciliation,
                actions,
                problems,
            } => {
                Orphans(actions).summarize(prices, tally);
                // What acting on the orphans resolved is not counted; the
                // lines name every kind found.
                let mut found = Tally::default();
                findings(reconciliation, &mut found);
                tally.fail_with(*problems as u64, found.failures);
            }
        }
    }
}

impl Summarize for InventoryOutcome {
    fn summarize(&self, _prices: &Prices, tally: &mut Tally) {
        match self {
            InventoryOutcome::Waiting { .. } => tally.waiting += 1,
            InventoryOutcome::Ready(r) => findings(r, tally),
        }
    }
}

impl Summarize for RebuildOutcome {
    fn summarize(&self, _prices: &Prices, tally: &mut Tally) {
        match self {
            RebuildOutcome::Waiting { .. } => tally.waiting += 1,
            RebuildOutcome::Ready(report) => {
                for skipped in &report.skipped {
                    let what = skipped.key.as_deref().unwrap_or(&skipped.archive_id);
                    tally.fail(format!("skipped {what}: {}", skipped.reason));
                }
                if report.unknown_owner > 0 {
                    tally.fail_many(
                        report.unknown_owner,
                        format!(
                            "{} of unknown owner left alone",
                            plural(report.unknown_owner, "archive")
                        ),
                    );
                }
            }
        }
    }
}

impl Summarize for ClaimOutcome {
    fn summarize(&self, _prices: &Prices, tally: &mut Tally) {
        match self {
            ClaimOutcome::Waiting { .. } => tally.waiting += 1,
            ClaimOutcome::Ready(report) => {
                for other in &report.others {
                    tally.fail(format!(
                        "not claimed: {} (set {} names it)",
                        other.key, other.owner
                    ));
                }
            }
        }
    }
}

impl Summarize for ReleaseReport {
    fn summarize(&self, _prices: &Prices, _tally: &mut Tally) {}
}
