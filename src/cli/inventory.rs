//! `firn inventory`: the store's inventory checked against the catalog (orphans,
//! missing archives, mismatches), and acting on orphans.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::Output;
use super::snapshot::AfterRun;
use crate::config::ResolvedSet;
use crate::engine::{Engine, InventoryOutcome, OrphanOutcome, OrphanResult, Reconciliation};
use crate::fmt::{format_time, human_bytes, plural};
use crate::lock::SetLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanAction {
    None,
    Adopt,
    Delete,
}

/// The line (or JSON) of a command whose store job is not ready: `job` is what
/// was requested, `what` what the command has not done yet.
pub(super) fn print_waiting(
    json: bool,
    job: &str,
    what: &str,
    requested_at: i64,
    ready_at: Option<i64>,
) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({"outcome": "waiting", "requested_at": requested_at, "ready_at": ready_at})
        );
    } else {
        println!(
            "waiting: {what} ({job} requested {}, ready {}); run again later",
            format_time(requested_at),
            ready_at
                .map(format_time)
                .unwrap_or_else(|| "in a few hours".into())
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct InventoryJson<'a> {
    outcome: &'static str,
    set: &'a str,
    #[serde(flatten)]
    reconciliation: &'a Reconciliation,
    actions: &'a [OrphanResult],
    /// Orphans, missing archives and mismatches the actions did not resolve.
    problems: usize,
    #[serde(flatten)]
    snapshot: &'a AfterRun,
}

pub async fn run(
    set: &ResolvedSet,
    wait: bool,
    action: OrphanAction,
    out: &Output,
) -> Result<ExitCode> {
    let json = out.json;
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "inventory")?;
    let engine = Engine::open(set).await?;
    let r = match engine.inventory(wait).await? {
        InventoryOutcome::Waiting {
            requested_at,
            ready_at,
        } => {
            print_waiting(
                json,
                "inventory job",
                "no reconciliation yet",
                requested_at,
                ready_at,
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        InventoryOutcome::Ready(r) => r,
    };
    let actions = match action {
        OrphanAction::None => Vec::new(),
        OrphanAction::Adopt => engine.adopt_orphans(&r.orphans).await?,
        OrphanAction::Delete => engine.delete_orphans(&r.orphans).await?,
    };
    let resolved = actions
        .iter()
        .filter(|a| {
            matches!(
                a.outcome,
                OrphanOutcome::AdoptedCurrent
                    | OrphanOutcome::AdoptedSuperseded
                    | OrphanOutcome::Deleted
                    | OrphanOutcome::AlreadyInCatalog
            )
        })
        .count();
    let problems = r.problems() - resolved;
    let snapshot = if actions.is_empty() {
        AfterRun::default()
    } else {
        super::snapshot::after_run(&engine).await
    };
    if json {
        let doc = InventoryJson {
            outcome: "ready",
            set: &set.id,
            reconciliation: &r,
            actions: &actions,
            problems,
            snapshot: &snapshot,
        };
        out.document(&doc)?;
    } else {
        out.header(set);
        print_reconciliation(&mut std::io::stdout().lock(), set, &r, &actions, problems)?;
        snapshot.print(out);
    }
    Ok(super::exit_code(problems > 0 || snapshot.failed()))
}

fn print_reconciliation(
    out: &mut impl Write,
    set: &ResolvedSet,
    r: &Reconciliation,
    actions: &[OrphanResult],
    problems: usize,
) -> Result<()> {
    writeln!(
        out,
        "inventory of {} (set {}): {}, checked against {}",
        format_time(r.inventory_date),
        set.id,
        plural(r.archive_count, "archive"),
        plural(r.record_count, "catalog record"),
    )?;
    let mut counts = vec![format!("{} matched", r.matched)];
    for (n, label) in [
        (r.too_new, "too new to check (uploaded after the inventory)"),
        (r.empty_sentinels, "empty files with nothing stored"),
        (r.other_store, "recorded in another store"),
        (r.deleted_since, "deleted since the inventory"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {label}"));
        }
    }
    writeln!(out, "  {}", counts.join(", "))?;
    for o in &r.orphans {
        let what = match (&o.description, &o.refused) {
            (Some(d), None) => d.key.clone().unwrap_or_default(),
            (Some(d), Some(why)) => format!(
                "{} (cannot be adopted: {why})",
                d.key.as_deref().unwrap_or("(no path)")
            ),
            (None, why) => format!("({})", why.as_deref().unwrap_or("no description")),
        };
        writeln!(
            out,
            "orphan: {} {} created {} {what}",
            o.archive_id,
            human_bytes(o.size),
            format_time(o.created_at),
        )?;
    }
    for m in &r.missing {
        writeln!(
            out,
            "missing: {} ({} version, archive {}, {}, uploaded {})",
            m.key,
            m.state,
            m.archive_id,
            human_bytes(m.size),
            format_time(m.uploaded_at)
        )?;
    }
    for m in &r.mismatched {
        writeln!(
            out,
            "mismatch: {} (archive {}): catalog {} bytes, tree hash {}; store {} bytes, tree hash {}",
            m.key,
            m.archive_id,
            m.catalog_size,
            m.catalog_tree_hash,
            m.store_size,
            m.store_tree_hash
        )?;
    }
    for a in actions {
        let key = a.key.as_deref().unwrap_or("(no path)");
        match &a.outcome {
            OrphanOutcome::AdoptedCurrent => writeln!(
                out,
                "adopted: {key} (archive {}) as the current version",
                a.archive_id
            )?,
            OrphanOutcome::AdoptedSuperseded => writeln!(
                out,
                "adopted: {key} (archive {}) as a superseded version",
                a.archive_id
            )?,
            OrphanOutcome::Deleted => writeln!(out, "deleted: archive {} ({key})", a.archive_id)?,
            OrphanOutcome::AlreadyInCatalog => writeln!(
                out,
                "already in the catalog: archive {} ({key})",
                a.archive_id
            )?,
            OrphanOutcome::Refused(why) => {
                writeln!(out, "refused: archive {} ({key}): {why}", a.archive_id)?
            }
            OrphanOutcome::Failed(why) => {
                writeln!(out, "failed: archive {} ({key}): {why}", a.archive_id)?
            }
        }
    }
    if problems == 0 {
        writeln!(out, "consistent: every archive is accounted for")?;
    } else {
        writeln!(
            out,
            "{}: {} orphaned, {} missing, {} mismatched{}",
            plural(problems as u64, "problem"),
            r.orphans.len(),
            r.missing.len(),
            r.mismatched.len(),
            if actions.is_empty() && !r.orphans.is_empty() {
                "; act on orphans with --adopt-orphans or --delete-orphans --yes"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}
