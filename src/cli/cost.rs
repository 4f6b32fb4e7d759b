//! `firn cost`: what the set's archives cost: bytes and counts, monthly storage,
//! pending early-deletion charges, and what retrieving everything would cost.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::Output;
use super::set_args::SetAt;
use crate::cost::{CostSummary, Prices};
use crate::engine::Engine;
use crate::fmt::{human_bytes, plural};
use crate::history::{Requests, RunSummary};
use crate::model::now_secs;

/// What the set's archives cost: bytes and counts, monthly storage, pending
/// early-deletion charges, and what retrieving everything would cost per tier.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: SetAt,
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    let set = &args.at.resolve()?;
    let output = &Output::new(args.json, verbose);
    let engine = Engine::open(set).await?;
    let prices = &set.prices;
    let summary = engine.cost_summary(now_secs()).await?;
    let target = engine.info().target;
    let budget = engine.budget();
    // The newest backup's requests, from the run history (the embedded store
    // sends none anyone bills).
    let history = crate::history::backups(&set.history())?;
    let last_backup = history.newest().filter(|_| !set.store.is_embedded());
    if output.json {
        /// The set's budget against its monthly storage estimate.
        #[derive(Serialize)]
        struct BudgetJson<'a> {
            limit: f64,
            used: f64,
            currency: &'a str,
        }
        #[derive(Serialize)]
        struct CostJson<'a> {
            set: &'a str,
            target: String,
            #[serde(flatten)]
            summary: &'a CostSummary,
            #[serde(skip_serializing_if = "Option::is_none")]
            budget: Option<BudgetJson<'a>>,
            /// The newest backup run and the billed requests it sent (null:
            /// none recorded, or the embedded store).
            last_backup: Option<LastBackupJson<'a>>,
        }
        /// A backup run's billed requests.
        #[derive(Serialize)]
        struct LastBackupJson<'a> {
            started_at: &'a str,
            started_at_unix: i64,
            outcome: &'static str,
            requests: &'a Requests,
            currency: &'a str,
        }
        let doc = CostJson {
            set: &set.id,
            target,
            summary: &summary,
            budget: budget.map(|b| BudgetJson {
                limit: b.per_month,
                used: summary.monthly_storage,
                currency: &b.currency,
            }),
            last_backup: last_backup.map(|run| LastBackupJson {
                started_at: &run.started_at,
                started_at_unix: run.started_at_unix,
                outcome: run.outcome.as_str(),
                requests: &run.requests,
                currency: &run.currency,
            }),
        };
        output.document(&doc)?;
        return Ok(ExitCode::SUCCESS);
    }
    let money = |amount: f64| prices.format(amount);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", set.describe())?;
    writeln!(out, "store: {target}")?;
    let snapshots = if summary.snapshots.archives > 0 {
        format!(
            "; catalog snapshots: {}, {}",
            plural(summary.snapshots.archives, "archive"),
            human_bytes(summary.snapshots.bytes)
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "archived: {}, {} (current: {}, {}; superseded: {}, {}{snapshots})",
        plural(summary.total.archives, "archive"),
        human_bytes(summary.total.bytes),
        plural(summary.current.archives, "archive"),
        human_bytes(summary.current.bytes),
        plural(summary.superseded.archives, "archive"),
        human_bytes(summary.superseded.bytes),
    )?;
    for other in &summary.other_stores {
        writeln!(
            out,
            "also in {} (not priced here; `firn delete --store {}` removes them): {}, {}",
            other.target,
            other.target,
            plural(other.tally.archives, "archive"),
            human_bytes(other.tally.bytes)
        )?;
    }
    writeln!(
        out,
        "storage: ≈ {} per month",
        money(summary.monthly_storage)
    )?;
    if summary.monthly_overhead > 0.0 {
        // Many small files cost more in overhead than in bytes: say how much.
        writeln!(
            out,
            "  of which ≈ {} is per-archive overhead ({} × {} billed beyond their size)",
            money(summary.monthly_overhead),
            plural(summary.stored_objects, "stored object"),
            overhead_words(prices)
        )?;
    }
    for line in pack_lines(&summary) {
        writeln!(out, "{line}")?;
    }
    if !set.store.is_embedded() {
        writeln!(out, "{}", last_backup_line(last_backup, prices))?;
    }
    if let Some(budget) = budget {
        let over = if budget.exceeded_by(summary.monthly_storage) {
            "; over it: backups upload nothing new until it is raised or archives are deleted"
        } else {
            ""
        };
        writeln!(
            out,
            "budget: {} used{over}",
            budget.used_text(summary.monthly_storage)
        )?;
    }
    if let Some(limit) = set.confirm_above {
        writeln!(
            out,
            "confirm_above: a retrieval or early deletion over {} asks first, even with --yes (--max-cost allows more)",
            money(limit)
        )?;
    }
    if prices.minimum_storage_days > 0 {
        writeln!(
            out,
            "pending early-deletion charges: ≈ {} ({} inside the {}-day minimum storage period)",
            money(summary.pending_early_deletion),
            plural(summary.early.archives, "superseded archive"),
            prices.minimum_storage_days
        )?;
    }
    writeln!(
        out,
        "retrieving every current archive ({}, {}):",
        plural(summary.current.archives, "archive"),
        human_bytes(summary.current.bytes)
    )?;
    for estimate in &summary.retrieval {
        // The bytes' part and the requests' part (one per archive or pack).
        let parts = if estimate.cost > 0.0 {
            format!(
                " ({} for the bytes + {} for {})",
                money(estimate.bytes_cost),
                money(estimate.request_cost),
                plural(estimate.requests, "request")
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {:<10} ≈ {}{parts}",
            estimate.tier.as_str(),
            money(estimate.cost)
        )?;
    }
    if set.store.is_embedded() && *prices == Prices::free() {
        writeln!(
            out,
            "the embedded local store has no charges; set a [prices] table in the config to estimate another store's"
        )?;
    } else {
        writeln!(
            out,
            "prices: {} per GB-month (GB = 2^30 bytes), {}-day minimum; estimates, not a bill",
            money(prices.storage_per_gb_month),
            prices.minimum_storage_days
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What the newest backup's upload requests were charged, from the run
/// history: `last backup (2025-01-31 03:00, ok): 312 upload requests ≈ 0.0156
/// USD (0.05 USD per 1,000)`.
fn last_backup_line(run: Option<&RunSummary>, prices: &Prices) -> String {
    let Some(run) = run else {
        return "last backup: none recorded".into();
    };
    let requests = &run.requests;
    let mut line = format!(
        "last backup ({}, {}): {} ≈ {} ({} per 1,000)",
        crate::fmt::format_time(run.started_at_unix),
        run.outcome.as_str(),
        plural(requests.upload, "upload request"),
        crate::cost::format_money(requests.upload_cost, &run.currency),
        prices.format(prices.upload_per_1000_requests)
    );
    if requests.retrieval > 0 {
        line += &format!(
            ", {} (in its retrievals' charge)",
            plural(requests.retrieval, "retrieval request")
        );
    }
    line
}

/// Packs of small files: the store bills each pack as one object, and keeps
/// the bytes of files deleted from it until its last file goes.
fn pack_lines(summary: &CostSummary) -> Vec<String> {
    let packs = &summary.packs;
    if packs.packs == 0 {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "packs: {} holding {} ({}), billed as {} of the {} the store keeps",
        plural(packs.packs, "pack"),
        plural(packs.files, "file"),
        human_bytes(packs.bytes),
        plural(packs.packs, "object"),
        plural(summary.stored_objects, "object")
    )];
    if packs.dead_bytes_at_least > 0 {
        lines.push(format!(
            "  dead bytes in packs: at least {} of deleted files, kept until each pack's last file goes: ≈ {} per month",
            human_bytes(packs.dead_bytes_at_least),
            summary.prices.format(packs.dead_monthly)
        ));
    }
    lines
}

/// What each archive is billed for beyond its bytes, in words.
fn overhead_words(prices: &Prices) -> String {
    let mut parts = Vec::new();
    if prices.overhead_bytes > 0 {
        parts.push(format!(
            "{} at the storage rate",
            human_bytes(prices.overhead_bytes)
        ));
    }
    if prices.overhead_standard_bytes > 0 {
        parts.push(format!(
            "{} at {} per GB-month",
            human_bytes(prices.overhead_standard_bytes),
            prices.format(prices.overhead_storage_per_gb_month)
        ));
    }
    if prices.minimum_billable_bytes > 0 {
        parts.push(format!(
            "at least {} each",
            human_bytes(prices.minimum_billable_bytes)
        ));
    }
    parts.join(" + ")
}
