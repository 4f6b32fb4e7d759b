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

/// How the inventory is had.
#[derive(Debug, Clone, Copy)]
pub struct InventoryJob {
    /// Wait for a job that is not ready.
    pub wait: bool,
    /// A new inventory, not the one taken in the last 24 hours.
    pub refresh: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrphanAction {
    None,
    Adopt,
    /// Delete every orphan of this set, or only the archives named (which may
    /// be unclaimed archives of a shared store).
    Delete {
        only: Vec<String>,
    },
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
    job: InventoryJob,
    action: OrphanAction,
    out: &Output,
) -> Result<ExitCode> {
    let json = out.json;
    let _lock = SetLock::acquire(&set.state_dir, &set.id, "inventory")?;
    let engine = Engine::open(set).await?;
    let r = match engine.inventory(job.wait, job.refresh).await? {
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
        OrphanAction::Delete { only } if only.is_empty() => {
            engine.delete_orphans(&r.orphans).await?
        }
        OrphanAction::Delete { only } => {
            let (named, mut refused) = r.named(&only);
            let mut done = engine.delete_orphans(&named).await?;
            done.append(&mut refused);
            done
        }
    };
    // Only what the reconciliation counted as a problem is resolved by acting.
    let resolved = actions
        .iter()
        .filter(|a| {
            matches!(
                a.outcome,
                OrphanOutcome::AdoptedCurrent
                    | OrphanOutcome::AdoptedSuperseded
                    | OrphanOutcome::Deleted
                    | OrphanOutcome::AlreadyInCatalog
            ) && r
                .orphans
                .iter()
                .chain(&r.unclaimed)
                .any(|o| o.archive_id == a.archive_id)
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
        (r.snapshots, "catalog snapshots"),
        (r.claims, "ownership claims"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {label}"));
        }
    }
    writeln!(out, "  {}", counts.join(", "))?;
    if !r.other_sets.is_empty() {
        let sets: Vec<String> = r
            .other_sets
            .iter()
            .map(|o| match &o.name {
                Some(name) => format!("{} of set {name} ({})", o.archives, o.owner),
                None => format!("{} of set {}", o.archives, o.owner),
            })
            .collect();
        writeln!(
            out,
            "  {} of other sets sharing this store, left alone: {}",
            plural(r.other_set_archives(), "archive"),
            sets.join(", ")
        )?;
    }
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
    for o in &r.unclaimed {
        writeln!(
            out,
            "unclaimed: {} {} created {} {} (owner unknown in a store shared with other sets)",
            o.archive_id,
            human_bytes(o.size),
            format_time(o.created_at),
            o.description
                .as_ref()
                .and_then(|d| d.key.as_deref())
                .unwrap_or("(no path)"),
        )?;
    }
    for d in &r.disputed {
        writeln!(
            out,
            "disputed: {} (archive {}) is named as its own by set {} too",
            d.key, d.archive_id, d.owner
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
        writeln!(
            out,
            "consistent: every archive of set {} is accounted for",
            set.id
        )?;
    } else {
        let mut kinds = vec![
            format!("{} orphaned", r.orphans.len()),
            format!("{} missing", r.missing.len()),
            format!("{} mismatched", r.mismatched.len()),
        ];
        if !r.unclaimed.is_empty() {
            kinds.push(format!("{} unclaimed", r.unclaimed.len()));
        }
        if !r.disputed.is_empty() {
            kinds.push(format!("{} disputed", r.disputed.len()));
        }
        writeln!(
            out,
            "{}: {}{}",
            plural(problems as u64, "problem"),
            kinds.join(", "),
            if actions.is_empty() && !r.orphans.is_empty() {
                "; act on orphans with --adopt-orphans or --delete-orphans --yes"
            } else {
                ""
            }
        )?;
        if !r.unclaimed.is_empty() {
            writeln!(
                out,
                "unclaimed archives were written before archives named their set: run `firn catalog claim` in every set that shares this store (README: Sharing a store); delete one no set claims with --delete-orphans --yes --archive ID"
            )?;
        }
        if !r.disputed.is_empty() {
            writeln!(
                out,
                "disputed records: this catalog names archives another set says are its own (an older firn's `catalog rebuild` in a shared store adopted them); see README: Sharing a store"
            )?;
        }
    }
    Ok(())
}
