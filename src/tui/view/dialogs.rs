//! Dialog boxes: each dialog's title, body and key line.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

use super::widgets::centered;
use crate::model::Tier;
use crate::tui::app::{Dialog, Direction, MigrationOffer, State};
use crate::tui::text::{self, count, duration, fit, human_bytes};
use crate::tui::theme::Role;

pub fn dialog_box(state: &State, dialog: &Dialog, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let (title, body, role) = match dialog {
        Dialog::ConfirmBackupAll { files, bytes } => {
            let mut body = format!(
                "Upload {} ({}) that are new or changed.\nUploads run in the background; you can keep browsing.",
                crate::fmt::plural(*files, "file"),
                human_bytes(*bytes)
            );
            if let (Some(budget), Some(used)) = (&state.set.budget, state.set.monthly) {
                body.push_str(&format!(
                    "\nBudget: {} used; what does not fit is left out.",
                    budget.used_text(used)
                ));
            }
            (
                " Back up everything pending? ".to_string(),
                body,
                Role::Changed,
            )
        }
        Dialog::ConfirmQuit { running } => (
            " Uploads are running ".to_string(),
            format!(
                "{} not finished. Quit anyway?\nThey are cancelled; firn waits for those in flight to stop cleanly, so nothing is left half-recorded.",
                crate::fmt::plural_with(*running as u64, "upload", "is", "are")
            ),
            Role::Changed,
        ),
        Dialog::Retrieve {
            keys,
            bytes,
            tier,
            destination,
            quote,
        } => {
            let mut body = format!(
                "Retrieve {} ({}) into:\n  {destination}▏\n",
                crate::fmt::plural(keys.len() as u64, "file"),
                human_bytes(*bytes)
            );
            match quote {
                Some(quote) => body.push_str(&retrieval_plan_line(quote)),
                None => body.push_str("\nworking out the archives and packs to retrieve…"),
            }
            body.push_str("\nTier:");
            for option in state.offered_tiers() {
                let (from, to) = state.tier_wait(option);
                // The engine's figure once it has one (one request per archive
                // and per pack, a pack's whole bytes, reused jobs free); until
                // then one request per file and the files' bytes.
                let cost = match quote
                    .as_ref()
                    .and_then(|q| q.tiers.iter().find(|t| t.tier == option))
                {
                    Some(estimate) => estimate.to_request_cost,
                    None => state
                        .set
                        .prices
                        .retrieval_estimate(*bytes, keys.len() as u64, option),
                };
                body.push_str(&format!(
                    "\n{} {:<10} ready in {}–{}, ≈ {}{}",
                    if option == *tier { "●" } else { "○" },
                    option.as_str(),
                    duration(from),
                    duration(to),
                    state.set.prices.format(cost),
                    over_limit(state, cost)
                ));
            }
            body.push_str("\n\nFiles in place with other content are not replaced without asking; identical ones are skipped.");
            (" Retrieve archived files ".to_string(), body, Role::Changed)
        }
        Dialog::ConfirmDelete { plan, note } => {
            let prices = &state.set.prices;
            let mut body = format!(
                "Delete {} ({}) from the store? This cannot be undone.",
                crate::fmt::plural(plan.items.len() as u64, "archive"),
                human_bytes(plan.total_bytes)
            );
            push_list(&mut body, &plan.items, 8, "", |item| {
                format!(
                    "{} · {} · {} d{}{}",
                    item.record.key,
                    human_bytes(item.record.size),
                    item.age_days(),
                    if item.early {
                        format!(" · early ≈ {}", prices.format(item.early_charge))
                    } else {
                        String::new()
                    },
                    match item.pack {
                        Some(crate::engine::PackFate::Kept) => " · stays in its pack",
                        Some(crate::engine::PackFate::Deleted) => " · its pack goes too",
                        None => "",
                    }
                )
            });
            let (kept, kept_bytes) = plan.kept_in_packs();
            if kept > 0 {
                body.push_str(&format!(
                    "\n{} ({}) only forgotten: their bytes stay in packs other files keep until each pack's last file goes (no early-deletion charge for them now).",
                    crate::fmt::plural(kept, "packed file"),
                    human_bytes(kept_bytes)
                ));
            }
            body.push_str(&format!(
                "\n\nEarly-deletion charge ≈ {} ({} inside the {}-day minimum){}.",
                prices.format(plan.total_charge),
                plan.early_count(),
                prices.minimum_storage_days,
                over_limit(state, plan.total_charge)
            ));
            if let Some(note) = note {
                body.push_str(&format!("\n{note}"));
            }
            body.push_str("\nLocal files are not touched; one that still exists becomes new.");
            (" Delete archives? ".to_string(), body, Role::Problem)
        }
        Dialog::Cost(summary) => {
            let prices = &state.set.prices;
            let mut body = format!(
                "Current versions   {} archives, {}\nSuperseded         {} archives, {}\nStorage            ≈ {} per month\nEarly deletion     ≈ {} if the {} superseded archives inside the {}-day minimum were deleted now",
                count(summary.current.archives),
                human_bytes(summary.current.bytes),
                count(summary.superseded.archives),
                human_bytes(summary.superseded.bytes),
                prices.format(summary.monthly_storage),
                prices.format(summary.pending_early_deletion),
                count(summary.early.archives),
                prices.minimum_storage_days,
            );
            if let Some(budget) = &state.set.budget {
                body.push_str(&format!(
                    "\nBudget             {} used",
                    budget.used_text(summary.monthly_storage)
                ));
            }
            if summary.packs.packs > 0 {
                // The store bills a pack as one object; deleted files' bytes
                // stay in it until its last file goes.
                body.push_str(&format!(
                    "\nPacks              {} holding {} files, {} ({} stored objects in all)",
                    count(summary.packs.packs),
                    count(summary.packs.files),
                    human_bytes(summary.packs.bytes),
                    count(summary.stored_objects),
                ));
                if summary.packs.dead_bytes_at_least > 0 {
                    body.push_str(&format!(
                        "\nDead in packs      ≥ {} of deleted files, ≈ {} per month until each pack's last file goes",
                        human_bytes(summary.packs.dead_bytes_at_least),
                        prices.format(summary.packs.dead_monthly),
                    ));
                }
            }
            if summary.snapshots.archives > 0 {
                body.push_str(&format!(
                    "\nCatalog snapshots  {} archives, {} (in the storage)",
                    count(summary.snapshots.archives),
                    human_bytes(summary.snapshots.bytes)
                ));
            }
            // The newest backup's upload requests (the embedded store sends
            // none anyone bills).
            if let Some(run) = state.set.backups.as_ref().and_then(|b| b.newest())
                && run.requests.upload > 0
            {
                body.push_str(&format!(
                    "\nLast backup        {} upload requests, ≈ {} ({} per 1,000)",
                    count(run.requests.upload),
                    crate::cost::format_money(run.requests.upload_cost, &run.currency),
                    prices.format(prices.upload_per_1000_requests),
                ));
            }
            body.push_str("\n\nRetrieving every current file:");
            for estimate in &summary.retrieval {
                let (from, to) = state.tier_wait(estimate.tier);
                body.push_str(&format!(
                    "\n{:<10} ≈ {} ({} bytes + {} for {} requests), ready in {}–{}",
                    estimate.tier.as_str(),
                    prices.format(estimate.cost),
                    prices.format(estimate.bytes_cost),
                    prices.format(estimate.request_cost),
                    count(estimate.requests),
                    duration(from),
                    duration(to)
                ));
            }
            (" Cost ".to_string(), body, Role::Title)
        }
        Dialog::History(runs) => (" Last runs ".to_string(), history_text(runs), Role::Title),
        Dialog::Reconciliation => (
            " Store inventory vs catalog ".to_string(),
            reconciliation_text(state),
            Role::Title,
        ),
        Dialog::ConfirmDeleteOrphans { orphans } => {
            let bytes: u64 = orphans.iter().map(|o| o.size).sum();
            let mut body = format!(
                "Delete {} ({}) from the store? No catalog records them, so nothing else changes. This cannot be undone.",
                crate::fmt::plural(orphans.len() as u64, "orphan"),
                human_bytes(bytes)
            );
            push_list(&mut body, orphans, 6, "", orphan_line);
            (" Delete orphans? ".to_string(), body, Role::Problem)
        }
        Dialog::ConfirmOverwrite {
            keys, destination, ..
        } => {
            let mut body = format!(
                "{} in {destination} with other content than the archive:",
                crate::fmt::plural_with(keys.len() as u64, "file", "exists", "exist")
            );
            push_list(&mut body, keys, 5, "  ", String::clone);
            body.push_str("\n\nReplace them with the archived versions?");
            (" Overwrite local files? ".to_string(), body, Role::Problem)
        }
        Dialog::ConfirmMigration { offer, tier } => (
            " Migrate archives? ".to_string(),
            migration_text(state, offer, *tier),
            Role::Changed,
        ),
        Dialog::Bandwidth {
            upload,
            download,
            field,
            error,
        } => (
            " Bandwidth for this run ".to_string(),
            bandwidth_text(state, upload, download, *field, error.as_deref()),
            if error.is_some() {
                Role::Problem
            } else {
                Role::Changed
            },
        ),
        Dialog::Error { title, message } => (format!(" {title} "), message.clone(), Role::Problem),
    };
    let width = 64.min(area.width.saturating_sub(4));
    let inner_w = width.saturating_sub(4) as usize;
    let wrapped: u16 = body
        .lines()
        .map(|l| (text::width(l).max(1).div_ceil(inner_w.max(1))) as u16)
        .sum();
    let rect = centered(area, width, wrapped + 5);
    frame.render_widget(Clear, rect);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(t.fg(role).add_modifier(Modifier::BOLD))
        .title(Span::styled(title, t.fg(role).add_modifier(Modifier::BOLD)));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [body_area, _, keys_area] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner.inner(ratatui::layout::Margin::new(1, 0)));
    frame.render_widget(Paragraph::new(body).wrap(Wrap { trim: true }), body_area);
    frame.render_widget(
        Line::from(Span::styled(key_line(state, dialog), t.fg(Role::Key)))
            .alignment(Alignment::Center),
        keys_area,
    );
}

/// ` — over confirm_above (1.00 USD)` after a charge above the set's limit
/// (these dialogs always ask; the words say why `--yes` would not do).
/// What a retrieval takes, as the engine planned it: one request per archive
/// and per pack, and the bytes they bring back.
fn retrieval_plan_line(quote: &crate::engine::RetrievalQuote) -> String {
    let mut parts = Vec::new();
    if quote.archives > 0 {
        parts.push(crate::fmt::plural(quote.archives, "archive"));
    }
    if quote.packs > 0 {
        parts.push(format!(
            "{} (for {})",
            crate::fmt::plural(quote.packs, "pack"),
            crate::fmt::plural(quote.packed_files, "file")
        ));
    }
    let mut line = if parts.is_empty() {
        "\nNothing to retrieve: empty files only.".to_string()
    } else {
        format!(
            "\n{}: {} retrieved.",
            parts.join(" + "),
            human_bytes(quote.retrieved_bytes())
        )
    };
    if quote.already_requested > 0 {
        line.push_str(&format!(
            " {} requested earlier, reused at no charge.",
            quote.already_requested
        ));
    }
    line.push('\n');
    line
}

fn over_limit(state: &State, charge: f64) -> String {
    state
        .set
        .over_confirm_above(charge)
        .map_or_else(String::new, |over| format!(" — {over}"))
}

/// The dialog's keys, from the key map, and what each does: `KEYS: WHAT`
/// entries, four spaces apart (two when there are more than two entries).
fn key_line(state: &State, dialog: &Dialog) -> String {
    let hints = dialog.hints(&state.keys, state.set.reconciliation.as_deref());
    let gap = if hints.len() > 2 { "  " } else { "    " };
    hints
        .iter()
        .map(|(keys, does)| format!("{keys}: {does}"))
        .collect::<Vec<_>>()
        .join(gap)
}

/// The first `shown` of `items`, one line each after `indent`, then how many
/// more there are.
fn push_list<T>(
    body: &mut String,
    items: &[T],
    shown: usize,
    indent: &str,
    line: impl Fn(&T) -> String,
) {
    for item in items.iter().take(shown) {
        body.push_str(&format!("\n{indent}{}", line(item)));
    }
    if items.len() > shown {
        body.push_str(&format!("\n{indent}… and {} more", items.len() - shown));
    }
}

/// A heading with how many `items` there are, then the first `shown` of them;
/// nothing when there are none.
fn push_section<T>(
    body: &mut String,
    heading: &str,
    items: &[T],
    shown: usize,
    line: impl Fn(&T) -> String,
) {
    if !items.is_empty() {
        body.push_str(&format!("\n\n{heading}: {}", items.len()));
        push_list(body, items, shown, "", line);
    }
}

/// Runs shown in the history view (`firn log` lists more).
const RUNS_SHOWN: usize = 8;

/// The history view's body: the last runs, newest first, one entry each.
fn history_text(runs: &[crate::history::RunSummary]) -> String {
    if runs.is_empty() {
        return "No runs recorded yet: backups, restores, deletions and the jobs started here are listed once they ran.".into();
    }
    let mut body = String::from("Newest first (`firn log` lists more):");
    for run in runs.iter().take(RUNS_SHOWN) {
        body.push('\n');
        body.push_str(&run.describe());
    }
    body
}

/// One orphan: what its description names (or its id), size and age.
fn orphan_line(orphan: &crate::engine::Orphan) -> String {
    let name = match &orphan.pack {
        // A pack: how many files, and their paths when its index was read.
        Some(pack) if pack.paths.is_empty() => format!(
            "pack {} of {}",
            fit(&orphan.archive_id, 16),
            crate::fmt::plural(pack.files, "file")
        ),
        Some(pack) => format!(
            "pack of {}: {}",
            crate::fmt::plural(pack.files, "file"),
            fit(&pack.paths.join(", "), 60)
        ),
        None => orphan
            .description
            .as_ref()
            .and_then(|d| d.key.clone())
            .unwrap_or_else(|| format!("archive {}", fit(&orphan.archive_id, 16))),
    };
    format!(
        "{name} · {} · stored {}{}",
        human_bytes(orphan.size),
        text::format_time(orphan.created_at),
        match &orphan.refused {
            Some(why) => format!(" · cannot adopt: {why}"),
            None => String::new(),
        }
    )
}

/// The migration dialog's body: from where to where, how each archive gets
/// there, and each tier's wait and cost when retrievals are still to request.
fn migration_text(state: &State, offer: &MigrationOffer, tier: Tier) -> String {
    let plan = &offer.plan;
    let files = plan.from_local.files + plan.retrievals.files;
    let bytes = plan.from_local.bytes + plan.retrievals.bytes;
    let destination_kind = if state.set.store.is_empty() {
        String::new()
    } else {
        format!(" ({})", state.set.store)
    };
    let mut body = format!(
        "Copy {} ({})\nfrom  {} ({})\ninto  {}{destination_kind}\n",
        crate::fmt::plural(files, "archive"),
        human_bytes(bytes),
        plan.source,
        offer.source_kind,
        plan.destination,
    );
    // One line per way in, its label in a column of its own.
    let mut row = |label: &str, value: String| {
        body.push_str(&format!("\n{label:<27} {value}"));
    };
    row(
        "From unchanged local files",
        format!(
            "{} ({}), no retrieval",
            count(plan.from_local.files),
            human_bytes(plan.from_local.bytes)
        ),
    );
    row(
        "To retrieve",
        format!(
            "{} ({})",
            count(plan.retrievals.files),
            human_bytes(plan.retrievals.bytes)
        ),
    );
    if plan.jobs_requested > 0 {
        row(
            "Requested by an earlier run",
            format!("{} (not paid again)", count(plan.jobs_requested)),
        );
    }
    if plan.to_record > 0 {
        row(
            "Stored by an interrupted run",
            format!("{} (recorded first)", count(plan.to_record)),
        );
    }
    if plan.already_copied.files > 0 {
        row(
            "Already copied",
            format!(
                "{} ({})",
                crate::fmt::plural(plan.already_copied.files, "version"),
                human_bytes(plan.already_copied.bytes)
            ),
        );
    }
    if plan.versions_left.files > 0 {
        row(
            "Left behind",
            format!(
                "{} ({}); `firn migrate --all-versions` copies them",
                crate::fmt::plural(plan.versions_left.files, "superseded version"),
                human_bytes(plan.versions_left.bytes)
            ),
        );
    }
    if plan.retrievals.files > plan.jobs_requested {
        body.push_str("\n\nRetrieval tier:");
        for quote in &plan.quotes {
            let wait = match quote.wait {
                (_, 0) => "ready at once".to_string(),
                (from, to) if from == to => format!("ready in {}", duration(from)),
                (from, to) => format!("ready in {}–{}", duration(from), duration(to)),
            };
            body.push_str(&format!(
                "\n{} {:<10} {wait}, ≈ {}{}",
                if quote.tier == tier { "●" } else { "○" },
                quote.tier.as_str(),
                quote.cost_text,
                over_limit(state, quote.cost)
            ));
        }
    }
    body.push_str(&format!(
        "\n\nEach copy is verified, then recorded as current; nothing is deleted from the previous store. Quitting stops it: copies made and jobs requested are kept for the next {}.",
        crate::tui::app::migrate_key(&state.keys)
    ));
    body
}

/// The bandwidth dialog's body: a field per direction (the one typed in
/// marked, with the cursor), what is in force now, and what may be typed.
fn bandwidth_text(
    state: &State,
    upload: &str,
    download: &str,
    field: Direction,
    error: Option<&str>,
) -> String {
    let mut body = String::new();
    for (direction, text) in [(Direction::Up, upload), (Direction::Down, download)] {
        let typing = direction == field;
        let now = state
            .bandwidth
            .get(direction)
            .map_or_else(|| "off".to_string(), |shown| shown.describe());
        body.push_str(&format!(
            "{} {}: now {now}\n{} {}{}\n\n",
            direction.arrow(),
            direction.name(),
            if typing { "›" } else { "·" },
            if text.is_empty() && !typing {
                "(as configured)"
            } else {
                text
            },
            if typing { "▏" } else { "" },
        ));
    }
    body.push_str("A rate (4 MiB/s, 512KiB, off) or a timetable in local time (08:00,512KiB 19:00,4MiB 23:00,off); empty: the set's own limit. Uploads and downloads in flight follow at once.");
    if let Some(error) = error {
        body.push_str(&format!("\n\n{error}"));
    }
    body
}

/// The reconciliation view's body.
fn reconciliation_text(state: &State) -> String {
    let Some(r) = &state.set.reconciliation else {
        return "No inventory has been compared with the catalog yet.\nAn inventory lists every archive the store holds; Glacier takes hours to prepare one (the job is kept and reused for 24 hours).".into();
    };
    let mut body = format!(
        "Inventory of {}, compared {}.\n{} archives in the store, {} catalog records: {} match, {} too new to check.",
        text::format_time(r.inventory_date),
        text::format_time(r.checked_at),
        count(r.archive_count),
        count(r.record_count),
        count(r.matched),
        count(r.too_new)
    );
    if !r.other_sets.is_empty() {
        body.push_str(&format!(
            "\n{} of {} sharing this store, left alone.",
            crate::fmt::plural(r.other_set_archives(), "archive"),
            crate::fmt::plural(r.other_sets.len() as u64, "other set")
        ));
    }
    if r.is_consistent() {
        body.push_str("\n\nEvery archive of this set is accounted for.");
    }
    push_section(
        &mut body,
        "Orphans (in the store, not in the catalog)",
        &r.orphans,
        6,
        orphan_line,
    );
    push_section(
        &mut body,
        "Unclaimed (owner unknown, store shared: run `firn catalog claim` in each set)",
        &r.unclaimed,
        4,
        orphan_line,
    );
    push_section(
        &mut body,
        "Missing (in the catalog, not in the store)",
        &r.missing,
        4,
        |missing| {
            format!(
                "{} · {} · {}",
                missing.key,
                human_bytes(missing.size),
                missing.state
            )
        },
    );
    push_section(
        &mut body,
        "Size or tree hash differs",
        &r.mismatched,
        4,
        |m| {
            format!(
                "{} · catalog {} · store {}",
                m.key,
                human_bytes(m.catalog_size),
                human_bytes(m.store_size)
            )
        },
    );
    body
}
