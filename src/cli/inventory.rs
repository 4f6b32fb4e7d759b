//! `firn inventory`: the store's inventory checked against the catalog (orphans,
//! missing archives, mismatches), and acting on orphans.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::output::Output;
use super::set_args::SetAt;
use crate::config::ResolvedSet;
use crate::engine::{
    AfterRun, Engine, InventoryRequest, InventoryRun, OrphanAction, OrphanOutcome, OrphanResult,
    Reconciliation,
};
use crate::fmt::{format_time, human_bytes, plural};
use crate::model::usage;

/// Compare the store's inventory with the catalog: orphans (this set's
/// archives no record names), missing archives, size or tree-hash mismatches;
/// other sets sharing the store are counted apart, never orphans. Exit 1 when
/// it finds a problem. The inventory job is reused for 24 hours.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    at: SetAt,
    /// Do not wait for an inventory job that is not ready; run again later.
    #[arg(long)]
    no_wait: bool,
    /// Request a new inventory instead of reusing the one taken in the last
    /// 24 hours (a vault's takes hours, and lags its archives by about a day).
    #[arg(long)]
    refresh: bool,
    #[arg(long)]
    json: bool,
    /// Record orphans whose description names a file under a safe path.
    #[arg(long, conflicts_with = "delete_orphans")]
    adopt_orphans: bool,
    /// Delete orphans from the store (cannot be undone; needs --yes). Never
    /// another set's archives; in a store shared with other sets, archives of
    /// unknown owner only when named with --archive.
    #[arg(long)]
    delete_orphans: bool,
    /// With --delete-orphans: delete only this archive (an orphan, or an
    /// unclaimed archive of a shared store, as the inventory lists them).
    #[arg(long = "archive", value_name = "ID", requires = "delete_orphans")]
    archives: Vec<String>,
    /// Confirm --delete-orphans.
    #[arg(long)]
    yes: bool,
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
        outln!(
            "{}",
            serde_json::json!({"outcome": "waiting", "requested_at": requested_at, "ready_at": ready_at})
        );
    } else {
        outln!(
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
    after: &'a AfterRun,
}

pub async fn run(args: Args, verbose: bool) -> Result<ExitCode> {
    if args.delete_orphans && !args.yes {
        return Err(usage(
            "--delete-orphans deletes archives from the store and cannot be undone; add --yes to confirm",
        ));
    }
    let action = if args.adopt_orphans {
        OrphanAction::Adopt
    } else if args.delete_orphans {
        OrphanAction::Delete {
            only: args.archives,
        }
    } else {
        OrphanAction::None
    };
    let set = &args.at.resolve()?;
    let out = &Output::new(args.json, verbose);
    let json = out.json;
    let opened = Engine::open_to_work(set, "inventory").await?;
    let request = InventoryRequest {
        wait: !args.no_wait,
        refresh: args.refresh,
        action,
    };
    let done = opened.engine.inventory_job(request).await?;
    let (r, actions, problems) = match done.report {
        InventoryRun::Waiting {
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
        InventoryRun::Ready {
            reconciliation,
            actions,
            problems,
        } => (reconciliation, actions, problems),
    };
    if json {
        let doc = InventoryJson {
            outcome: "ready",
            set: &set.id,
            reconciliation: &r,
            actions: &actions,
            problems,
            after: &done.after,
        };
        out.document(&doc)?;
    } else {
        out.header(set);
        for line in opened.recovery.messages() {
            out.line(line);
        }
        print_reconciliation(&mut std::io::stdout().lock(), set, &r, &actions, problems)?;
        out.after(&done.after);
    }
    Ok(super::exit_code(problems > 0 || done.after.failed()))
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
        let what = match (&o.pack, &o.description, &o.refused) {
            (Some(pack), _, refused) => {
                let refused = refused
                    .as_ref()
                    .map(|why| format!(" (cannot be adopted: {why})"))
                    .unwrap_or_default();
                format!("{}{refused}", describe_pack(pack))
            }
            (None, description, refused) => describe_orphan(description, refused),
        };
        writeln!(
            out,
            "orphan: {} {} created {} {what}",
            o.archive_id,
            human_bytes(o.size),
            format_time(o.created_at),
        )?;
    }
    for p in &r.partly_recorded_packs {
        writeln!(
            out,
            "pack {} (created {}) holds {} the catalog records {} of: the others were deleted (their bytes stay until the pack's last file goes) or their records lost (`firn catalog rebuild` adds them back)",
            p.archive_id,
            format_time(p.created_at),
            plural(p.files, "file"),
            p.recorded,
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

/// What an orphan that is no pack holds, as its description says.
fn describe_orphan(
    description: &Option<crate::engine::DescribedFile>,
    refused: &Option<String>,
) -> String {
    match (description, refused) {
        (Some(d), None) => d.key.clone().unwrap_or_default(),
        (Some(d), Some(why)) => format!(
            "{} (cannot be adopted: {why})",
            d.key.as_deref().unwrap_or("(no path)")
        ),
        (None, why) => format!("({})", why.as_deref().unwrap_or("no description")),
    }
}

/// An orphan pack: how many files, and the first few of their paths when the
/// inventory read its index.
fn describe_pack(pack: &crate::engine::OrphanPack) -> String {
    const SHOWN: usize = 3;
    let mut text = format!("pack of {}", plural(pack.files, "file"));
    if !pack.paths.is_empty() {
        let mut shown: Vec<&str> = pack.paths.iter().take(SHOWN).map(String::as_str).collect();
        if pack.paths.len() > SHOWN {
            shown.push("…");
        }
        text.push_str(&format!(": {}", shown.join(", ")));
    }
    text
}
