//! Spending limits through the real binary on the embedded store with
//! configured prices (1 USD per MiB-month, 1 USD per MiB retrieved, so the
//! figures read plainly): a set near its `budget` backs up what fits, leaves
//! out the rest with exit status 5 and records nothing it did not upload; a
//! raised budget takes the rest. `confirm_above` stops retrievals and early
//! deletions over it even with `--yes`, unless `--max-cost` allows them. And
//! the terminal UI over a real engine: the same refusal, the budget used.

mod common;
mod tui_common;

use common::{Sandbox, assert_exit, one_line_failure, status_of, stderr, stdout};
use serde_json::Value;

const MIB: usize = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;
/// The exit status of a run a spending limit held back.
const OVER_LIMIT: i32 = 5;

/// 1 USD per MiB-month of storage (1024 per GiB), 1 USD per MiB retrieved
/// with the standard tier, the Glacier vault's 90-day minimum.
const PRICES: &str = r#"
[prices]
storage_per_gb_month = 1024.0
minimum_storage_days = 90
[prices.standard]
retrieval_per_gb = 1024.0
retrieval_per_1000_requests = 0.0
"#;

/// One set `s` rooted at the tree with `body` (one setting a line), and the
/// prices above.
fn configure(sb: &Sandbox, body: &str) {
    sb.write_config_text(&format!(
        "[sets.s]\nroot = {:?}\n{body}\n{PRICES}",
        sb.tree()
    ));
}

fn mib(n: usize, seed: u8) -> Vec<u8> {
    common::pattern(n * MIB, seed)
}

/// The paths the catalog records (current and superseded), sorted.
fn recorded(sb: &Sandbox) -> Vec<String> {
    let (code, doc) = sb.firn_json(["ls", "--set", "s", "--all", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    let mut paths: Vec<String> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths
}

fn backup(sb: &Sandbox) -> (Option<i32>, Value) {
    sb.firn_json(["backup", "--set", "s", "--json"])
}

fn close(a: f64, b: f64, within: f64) -> bool {
    (a - b).abs() <= within
}

#[test]
fn a_set_near_its_cap_backs_up_what_fits_and_a_raised_budget_the_rest() {
    let sb = Sandbox::in_memory();
    configure(&sb, "budget = \"10 USD/month\"");
    sb.write("a.bin", mib(3, 1));
    let (code, first) = backup(&sb);
    assert_eq!(code, Some(0), "{first}");
    // 3 MiB at 1 USD per MiB-month (and the catalog snapshots, a few KiB).
    let used = first["budget"]["used"].as_f64().unwrap();
    assert!(close(used, 3.0, 0.01), "{first}");
    assert_eq!(first["budget"]["refused_files"], 0);

    // 7 USD/month of room, and 15 MiB pending. In key order the largest come
    // first; the budget takes the smallest first: 1 + 2 MiB fit, 4 would not.
    sb.write("big.bin", mib(8, 2));
    sb.write("mid.bin", mib(4, 3));
    sb.write("small1.bin", mib(1, 4));
    sb.write("small2.bin", mib(2, 5));
    let (code, doc) = backup(&sb);
    assert_eq!(code, Some(OVER_LIMIT), "{doc}");
    assert_eq!(doc["uploaded_files"], 2, "{doc}");
    assert_eq!(doc["uploaded_bytes"], 3 * MIB as u64, "{doc}");
    let budget = &doc["budget"];
    assert_eq!(budget["currency"], "USD");
    assert_eq!(budget["limit"], 10.0);
    assert!(
        close(budget["used_before"].as_f64().unwrap(), 3.0, 0.01),
        "{doc}"
    );
    let used = budget["used"].as_f64().unwrap();
    assert!(close(used, 6.0, 0.01) && used <= 10.0, "{doc}");
    assert_eq!(budget["refused_files"], 2);
    assert_eq!(budget["refused_bytes"], 12 * MIB as u64);
    assert!(close(
        budget["refused_monthly"].as_f64().unwrap(),
        12.0,
        1e-9
    ));
    assert_eq!(budget["refused"], serde_json::json!(["big.bin", "mid.bin"]));

    // Nothing it did not upload is recorded or stored.
    assert_eq!(recorded(&sb), ["a.bin", "small1.bin", "small2.bin"]);
    assert_eq!(sb.store_archives().len(), 3, "the store holds nothing more");
    let status = sb.status_json(&[]);
    assert_eq!(status_of(&status, "big.bin"), "new");
    assert_eq!(status_of(&status, "mid.bin"), "new");

    // The words: what is used, what was left out, what to change.
    let out = sb.firn(["backup", "--set", "s"]);
    assert_exit(&out, OVER_LIMIT);
    let text = stdout(&out);
    let config = sb.config_path().display().to_string();
    assert!(
        text.contains(&format!(
            " of 10.00 USD/month used; 2 files (12.0 MiB, +12.00 USD/month) not backed up — raise `budget` in {config}"
        )),
        "{text}"
    );
    assert!(text.contains("budget: 6.0"), "{text}");
    assert!(text.contains(", 2 left out for the budget\n"), "{text}");
    // A dry run says the same, uploads nothing, and exits the same way.
    let out = sb.firn(["backup", "--set", "s", "--dry-run"]);
    assert_exit(&out, OVER_LIMIT);
    let text = stdout(&out);
    assert!(text.contains("would upload 0 files"), "{text}");
    assert!(text.contains("dry run: budget: "), "{text}");
    assert_eq!(sb.store_archives().len(), 3);
    // `firn cost` shows how much of the budget is used.
    let out = sb.firn(["cost", "--set", "s"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("budget: 6.0"), "{}", stdout(&out));
    let (code, cost) = sb.firn_json(["cost", "--set", "s", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(cost["budget"]["limit"], 10.0);
    assert!(
        close(cost["budget"]["used"].as_f64().unwrap(), 6.0, 0.01),
        "{cost}"
    );

    // Raised: the rest fits (6 + 12 of 20).
    sb.edit_config("10 USD/month", "20 USD/month");
    let (code, doc) = backup(&sb);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["uploaded_files"], 2);
    assert_eq!(doc["budget"]["refused_files"], 0);
    assert!(
        close(doc["budget"]["used"].as_f64().unwrap(), 18.0, 0.02),
        "{doc}"
    );
    assert_eq!(
        recorded(&sb),
        ["a.bin", "big.bin", "mid.bin", "small1.bin", "small2.bin"]
    );
    assert_eq!(sb.store_archives().len(), 5);
}

#[test]
fn superseded_versions_count_against_the_budget() {
    let sb = Sandbox::in_memory();
    configure(&sb, "budget = \"5 USD/month\"\nretention = \"keep\"");
    sb.write("a.bin", mib(2, 1));
    assert_eq!(backup(&sb).0, Some(0));
    // Changed: its new version would make 2 + 2 MiB; the old one is kept
    // (and billed), so a third version (6 MiB) would not fit.
    sb.write("a.bin", mib(2, 2));
    let (code, doc) = backup(&sb);
    assert_eq!(code, Some(0), "{doc}");
    sb.write("a.bin", mib(2, 3));
    let (code, doc) = backup(&sb);
    assert_eq!(code, Some(OVER_LIMIT), "{doc}");
    assert_eq!(doc["budget"]["refused"], serde_json::json!(["a.bin"]));
    assert_eq!(doc["budget"]["superseded_archives"], 1);
    assert_eq!(recorded(&sb), ["a.bin", "a.bin"]);
    let out = sb.firn(["backup", "--set", "s"]);
    assert_exit(&out, OVER_LIMIT);
    assert!(
        stdout(&out).contains("or run `firn prune` (1 superseded version kept)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_budget_in_defaults_applies_to_every_set_and_bad_values_are_one_line() {
    let sb = Sandbox::in_memory();
    sb.write("a.bin", mib(2, 1));
    sb.write_config_text(&format!(
        "[defaults]\nbudget = \"1 USD/month\"\n[sets.s]\nroot = {:?}\n{PRICES}",
        sb.tree()
    ));
    let (code, doc) = backup(&sb);
    assert_eq!(code, Some(OVER_LIMIT), "{doc}");
    assert_eq!(doc["uploaded_files"], 0);
    assert!(recorded(&sb).is_empty());
    assert!(sb.store_archives().is_empty());

    for (setting, names) in [
        (
            "budget = \"2 USD\"",
            ["budget = \"2 USD\"", "[sets.s]", "budget = \"2 USD/month\""],
        ),
        (
            "budget = 2",
            ["budget = 2", "[sets.s]", "budget = \"2 USD/month\""],
        ),
        (
            "budget = \"2 EUR/month\"",
            ["EUR", "in USD", "budget = \"2 USD/month\""],
        ),
        (
            "confirm_above = \"1 USD/month\"",
            [
                "confirm_above = \"1 USD/month\"",
                "per run",
                "confirm_above = \"1 USD\"",
            ],
        ),
    ] {
        configure(&sb, setting);
        let out = sb.firn(["backup", "--set", "s"]);
        let line = one_line_failure(&out, 2);
        for name in names {
            assert!(line.contains(name), "{setting}: {name} not in {line}");
        }
        assert!(
            line.contains(&sb.config_path().display().to_string()),
            "{line}"
        );
    }
    assert!(sb.store_archives().is_empty(), "bad input changes nothing");
}

#[test]
fn an_early_deletion_over_confirm_above_needs_max_cost_even_with_yes() {
    let sb = Sandbox::in_memory();
    configure(&sb, "confirm_above = \"1 USD\"");
    sb.write("big.bin", mib(2, 1));
    sb.write("tiny.bin", vec![7u8; 10 * 1024]);
    assert_eq!(backup(&sb).0, Some(0));

    // Under the limit (10 KiB for 90 days ≈ 0.03 USD): --yes is enough.
    let out = sb.firn(["delete", "--set", "s", "tiny.bin", "--yes"]);
    assert_exit(&out, 0);
    assert_eq!(recorded(&sb), ["big.bin"]);

    // 2 MiB for 90 days: 6 USD, over 1 USD. Without a terminal, refused with
    // one line naming the charge, the limit and the flag; nothing deleted.
    let out = sb.firn(["delete", "--set", "s", "big.bin", "--yes"]);
    let line = one_line_failure(&out, OVER_LIMIT);
    for part in [
        "early-deletion charge ≈ 6.00 USD",
        "confirm_above = 1.00 USD",
        "--max-cost 6.00",
        "nothing deleted",
    ] {
        assert!(line.contains(part), "{part} not in {line}");
    }
    assert_eq!(recorded(&sb), ["big.bin"]);
    assert_eq!(sb.store_archives().len(), 1);
    // --max-cost below the charge does not allow it; nor does it stand for --yes.
    let out = sb.firn([
        "delete",
        "--set",
        "s",
        "big.bin",
        "--yes",
        "--max-cost",
        "5",
    ]);
    let line = one_line_failure(&out, OVER_LIMIT);
    assert!(line.contains("--max-cost 5.00 USD"), "{line}");
    let out = sb.firn(["delete", "--set", "s", "big.bin", "--max-cost", "6"]);
    let line = one_line_failure(&out, 2);
    assert!(line.contains("--yes"), "{line}");
    assert_eq!(recorded(&sb), ["big.bin"]);
    // A currency other than the set's is a usage error.
    let out = sb.firn([
        "delete",
        "--set",
        "s",
        "big.bin",
        "--yes",
        "--max-cost",
        "9 EUR",
    ]);
    let line = one_line_failure(&out, 2);
    assert!(line.contains("EUR") && line.contains("USD"), "{line}");
    // Allowed: deleted.
    let out = sb.firn([
        "delete",
        "--set",
        "s",
        "big.bin",
        "--yes",
        "--max-cost",
        "6.00 USD",
    ]);
    assert_exit(&out, 0);
    assert!(recorded(&sb).is_empty());
    assert!(sb.store_archives().is_empty());
}

#[test]
fn on_a_terminal_a_charge_over_confirm_above_is_asked_about_even_with_yes() {
    use common::pty::Pty;
    use std::time::Duration;
    let sb = Sandbox::in_memory();
    configure(&sb, "confirm_above = \"1 USD\"");
    sb.write("big.bin", mib(2, 1));
    assert_eq!(backup(&sb).0, Some(0));
    for (answer, deleted) in [("n", false), ("y", true)] {
        let mut cmd = sb.command();
        cmd.args(["delete", "--set", "s", "big.bin", "--yes"]);
        let mut pty = Pty::spawn(cmd, 30, 200);
        let screen = pty.wait_for("the question", Duration::from_secs(20), |s| {
            s.contains("[y/N]")
        });
        assert!(
            screen.contains("early-deletion charge ≈ 6.00 USD is over confirm_above = 1.00 USD")
                && screen.contains("asked even with --yes; --max-cost 6.00 allows it"),
            "{screen}"
        );
        pty.send(&format!("{answer}\r"));
        let status = pty.wait_exit(Duration::from_secs(20));
        assert_eq!(status.code(), Some(0), "{}", pty.screen());
        assert_eq!(
            recorded(&sb).is_empty(),
            deleted,
            "{answer}: {}",
            pty.screen()
        );
    }
}

#[test]
fn a_prune_over_confirm_above_is_refused_and_allowed_by_max_cost() {
    let sb = Sandbox::in_memory();
    configure(&sb, "confirm_above = \"1 USD\"\nretention = \"keep\"");
    sb.write("a.bin", mib(1, 1));
    assert_eq!(backup(&sb).0, Some(0));
    sb.write("a.bin", mib(1, 2));
    assert_eq!(backup(&sb).0, Some(0));
    // The superseded 1 MiB version, deleted at once: 3 USD.
    let out = sb.firn(["prune", "--set", "s", "--include-early", "--yes"]);
    let line = one_line_failure(&out, OVER_LIMIT);
    assert!(
        line.contains("≈ 3.00 USD") && line.contains("--max-cost 3.00"),
        "{line}"
    );
    assert_eq!(recorded(&sb).len(), 2);
    let out = sb.firn([
        "prune",
        "--set",
        "s",
        "--include-early",
        "--yes",
        "--max-cost",
        "3",
    ]);
    assert_exit(&out, 0);
    assert_eq!(recorded(&sb), ["a.bin"]);
}

#[test]
fn a_retrieval_over_confirm_above_requests_nothing_unless_max_cost_allows_it() {
    let sb = Sandbox::in_memory();
    configure(&sb, "confirm_above = \"1 USD\"");
    let big = mib(2, 1);
    sb.write("big.bin", &big);
    sb.write("tiny.bin", b"tiny");
    assert_eq!(backup(&sb).0, Some(0));
    let to = sb.path().join("restored");
    let to_text = to.display().to_string();

    // A few bytes: far under the limit, restored as ever.
    let out = sb.firn(["restore", "--set", "s", "tiny.bin", "--to", &to_text]);
    assert_exit(&out, 0);
    assert_eq!(std::fs::read(to.join("tiny.bin")).unwrap(), b"tiny");
    let jobs_before = sb.job_files();

    // 2 MiB at 1 USD per MiB: over. No job requested, nothing written.
    let out = sb.firn(["restore", "--set", "s", "big.bin", "--to", &to_text]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(OVER_LIMIT), "{}{err}", stdout(&out));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for part in [
        "retrieval charge ≈ 2.00 USD",
        "confirm_above = 1.00 USD",
        "--max-cost 2.00",
    ] {
        assert!(err.contains(part), "{part} not in {err}");
    }
    assert_eq!(sb.job_files(), jobs_before, "no retrieval job requested");
    assert!(!to.join("big.bin").exists());

    let out = sb.firn([
        "restore",
        "--set",
        "s",
        "big.bin",
        "--to",
        &to_text,
        "--max-cost",
        "2",
    ]);
    assert_exit(&out, 0);
    assert_eq!(std::fs::read(to.join("big.bin")).unwrap(), big);
}

/// On S3 DEEP_ARCHIVE (moto), with the class's default prices: each object
/// costs 32 KiB at the class's rate and 8 KiB at STANDARD's besides its bytes,
/// which is what decides how many small files fit (their bytes alone would all).
/// Packed, the overhead is a pack's, shared by its files: in packs of three,
/// two packs fit where three files alone did not; one archive per file, nine.
#[test]
fn per_object_overhead_decides_how_many_small_files_fit_on_deep_archive() {
    // (100 B + 32 KiB) × 0.00099 + 8 KiB × 0.023 per GiB-month ≈ 2.06e-7 USD
    // an object of its own: 9 fit under 2e-6 (ties in the plan's order).
    let per_object = (100.0 + 32768.0) / GIB * 0.00099 + 8192.0 / GIB * 0.023;
    let fitting = (2e-6 / per_object).floor() as usize;
    assert_eq!(fitting, 9);
    small_files_within_budget(
        "pack_small_files = false\n",
        "0.000002",
        per_object,
        fitting,
        fitting,
    );
    // A pack of three (300 B) costs what one object does and 200 B more; under
    // 5e-7 two packs fit, and a third would not.
    let per_pack = (300.0 + 32768.0) / GIB * 0.00099 + 8192.0 / GIB * 0.023;
    assert!(2.0 * per_pack < 5e-7 && 3.0 * per_pack > 5e-7);
    assert!(
        3.0 * per_object > 5e-7,
        "unpacked, only two files would fit"
    );
    small_files_within_budget(
        "pack_threshold = 100\npack_size = 300\n",
        "0.0000005",
        per_pack / 3.0,
        6,
        2,
    );
}

/// Twelve files of 100 B backed up to DEEP_ARCHIVE on moto under a budget of
/// `limit` USD/month: the first `fitting` (in `objects` objects) are stored,
/// the rest refused, each refused file adding `refused_each` a month.
fn small_files_within_budget(
    set_extra: &str,
    limit: &str,
    refused_each: f64,
    fitting: usize,
    objects: usize,
) {
    use common::aws::Moto;
    use common::aws_sandbox::AwsSandbox;
    let moto = Moto::start();
    let s = AwsSandbox::on(
        Sandbox::new(),
        &moto.endpoint,
        &format!(
            "{set_extra}budget = \"{limit} USD/month\"\nstore = {{ kind = \"s3\", bucket = \"firn-budget\", force_path_style = true, checksum = \"md5\" }}\n"
        ),
    );
    s.init();
    for n in 0..12 {
        s.sb.write(format!("f{n:02}.txt"), vec![b'x'; 100]);
    }
    let (code, doc) = s.backup_via(&moto.endpoint);
    assert_eq!(code, Some(OVER_LIMIT), "{doc}");
    assert_eq!(doc["uploaded_files"], fitting as u64, "{doc}");
    let refused: Vec<String> = (fitting..12).map(|n| format!("f{n:02}.txt")).collect();
    assert_eq!(doc["budget"]["refused"], serde_json::json!(refused));
    assert!(
        close(
            doc["budget"]["refused_monthly"].as_f64().unwrap(),
            (12 - fitting) as f64 * refused_each,
            1e-12
        ),
        "{doc}"
    );
    let records = s.records();
    assert_eq!(records.len(), fitting);
    // The bucket holds those objects and the catalog's snapshot, nothing more.
    let keys: Vec<String> = tui_common::block_on(async {
        let config = common::aws::sdk_config(&moto.endpoint).await;
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let listed = client
            .list_objects_v2()
            .bucket("firn-budget")
            .send()
            .await
            .unwrap();
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    });
    let files: Vec<&String> = keys
        .iter()
        .filter(|k| !k.contains(".firn-catalog-snapshots/"))
        .collect();
    assert_eq!(files.len(), objects, "{keys:?}");
    for refused in &refused {
        assert!(
            !keys.iter().any(|k| k.contains(refused.as_str())),
            "{keys:?}"
        );
    }
}

#[test]
fn help_names_the_budget_exit_status_and_the_flags() {
    let sb = Sandbox::new();
    let out = sb.firn(["--help"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("5 over a spending limit"),
        "{}",
        stdout(&out)
    );
    for command in ["delete", "prune", "restore", "migrate"] {
        let out = sb.firn([command, "--help"]);
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("--max-cost <AMOUNT>"), "{command}");
    }
}

/// The terminal UI over a real engine (embedded store, SQLite catalog) with
/// the same prices and a 10 USD/month budget.
mod tui {
    use std::sync::Arc;

    use crossterm::event::KeyCode;
    use firn::budget::Budget;
    use firn::catalog::sqlite::SqliteCatalog;
    use firn::cost::Prices;
    use firn::engine::{Candidate, Engine, Parts, Progress};
    use firn::model::Status;
    use firn::store::local::LocalStore;
    use firn::tui::app::{Action, Dialog, Effect, update};
    use firn::tui::jobs::JobState;
    use firn::tui::tree::{JobMark, Tree};

    use super::mib;
    use super::tui_common::{block_on, key, keys, render, state};

    fn prices() -> Prices {
        Prices {
            storage_per_gb_month: 1024.0,
            ..Prices::default()
        }
    }

    fn engine(dir: &std::path::Path) -> Arc<Engine> {
        let state = firn::state::LocalState::open(&dir.join("state.sqlite")).unwrap();
        let catalog = SqliteCatalog::open(&dir.join("catalog.sqlite"), "set").unwrap();
        let store = LocalStore::open(&dir.join("store"), 0).unwrap();
        Arc::new(
            Engine::from_parts(Parts {
                root: dir.join("tree"),
                set_id: "set".into(),
                state: Arc::new(state),
                catalog: Arc::new(catalog),
                store: Arc::new(store),
                host: "test-host".into(),
                retention: firn::model::Retention::Keep,
                concurrency: 2,
                requests_in_flight: Some(2),
                prices: prices(),
            })
            .with_budget(Some(Budget {
                per_month: 10.0,
                currency: "USD".into(),
            })),
        )
    }

    #[test]
    fn an_upload_over_the_budget_shows_the_refusal_and_the_budget_used() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("a.bin"), mib(3, 1)).unwrap();
        let engine = engine(dir.path());
        block_on(async {
            let report = engine.status(&mut |_| {}).await.unwrap();
            let plan = engine.plan(report.entries.iter().filter_map(Candidate::of));
            let done = engine
                .backup(plan, &Progress::unwatched(Default::default()))
                .await;
            assert_eq!(done.report.uploaded_files, 1);
        });
        for (name, size, seed) in [("big.bin", 8, 2), ("mid.bin", 4, 3), ("small.bin", 1, 4)] {
            std::fs::write(tree.join(name), mib(size, seed)).unwrap();
        }
        let report = block_on(engine.status(&mut |_| {})).unwrap();
        let mut ui = state(Tree::from_report(report), 120, 30);
        ui.set.prices = prices();
        ui.set.task_ids = engine.task_ids();
        ui.set.budget = engine.budget().cloned();
        ui.set.config_file = "/etc/firn/config.toml".into();
        let monthly = block_on(engine.cost_summary(super::tui_common::NOW))
            .unwrap()
            .monthly_storage;
        update(&mut ui, Action::MonthlyLoaded(monthly));
        let screen = render(&ui);
        assert!(screen.contains("budget 3.0"), "{screen}");
        assert!(screen.contains("/10.00 USD/mo"), "{screen}");

        // U, then yes: every pending file goes to the engine as one batch.
        keys(&mut ui, "U");
        let screen = render(&ui);
        assert!(screen.contains("what does not fit"), "{screen}");
        let effects = keys(&mut ui, "y");
        let Some(Effect::Upload { batch, candidates }) = effects.into_iter().next() else {
            panic!("no upload");
        };
        assert_eq!(candidates.len(), 3);
        let (progress, mut events) = Progress::channel(4096, Default::default());
        let done = block_on(engine.backup(engine.plan(candidates), &progress));
        drop(progress);
        while let Ok(event) = events.try_recv() {
            update(&mut ui, Action::Engine(event));
        }
        let summary = done.report;
        assert_eq!(
            summary.uploaded_files, 2,
            "small and mid fit (3 + 1 + 4 of 10)"
        );
        update(&mut ui, Action::BatchDone { batch, summary });

        // The same refusal as the CLI's, naming the config file.
        let Some(Dialog::Error { title, message }) = &ui.dialog else {
            panic!("no budget dialog: {:?}", ui.dialog);
        };
        assert_eq!(title, "Budget reached");
        assert!(
            message.contains(
                "of 10.00 USD/month used; 1 file (8.0 MiB, +8.00 USD/month) not backed up — raise `budget` in /etc/firn/config.toml"
            ),
            "{message}"
        );
        let screen = render(&ui);
        assert!(screen.contains("Budget reached"), "{screen}");
        assert!(screen.contains("budget 8.0"), "{screen}");
        // The file left out stays pending, its row settled; the others are done.
        let big = ui.browse.tree.find("big.bin").unwrap();
        assert_eq!(ui.browse.tree.node(big).job, JobMark::None);
        assert!(ui.browse.tree.node(big).class.is_pending());
        let rows: Vec<(String, JobState)> = ui
            .jobs
            .iter()
            .map(|j| (j.key.clone(), j.state.clone()))
            .collect();
        assert!(
            rows.contains(&("big.bin".into(), JobState::Cancelled)),
            "{rows:?}"
        );
        assert!(
            rows.contains(&("mid.bin".into(), JobState::Done)),
            "{rows:?}"
        );
        // The catalog has exactly what was uploaded.
        let report = block_on(engine.status(&mut |_| {})).unwrap();
        let statuses: Vec<(String, bool)> = report
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.status == Status::UpToDate))
            .collect();
        assert_eq!(
            statuses,
            [
                ("a.bin".to_string(), true),
                ("big.bin".into(), false),
                ("mid.bin".into(), true),
                ("small.bin".into(), true)
            ]
        );
        key(&mut ui, KeyCode::Esc);
        assert!(ui.dialog.is_none());
    }

    #[test]
    fn dialogs_say_when_a_charge_is_over_confirm_above() {
        use firn::engine::DeletionPlan;
        let mut ui = super::tui_common::state(
            Tree::from_entries(super::tui_common::mixed_entries()),
            120,
            40,
        );
        ui.set.prices = prices();
        ui.set.confirm_above = Some(1.0);
        let now = super::tui_common::NOW;
        // 1 MiB uploaded 10 days ago: 80 days left, ≈ 2.67 USD.
        let over = super::tui_common::archive("photos/2024/sunset.jpg", 1 << 20, 10);
        let plan = DeletionPlan::new(vec![over], &ui.set.prices, now, &ui.set.task_ids);
        update(&mut ui, Action::DeletionPlanned { plan, note: None });
        let screen = render(&ui);
        assert!(screen.contains("over confirm_above (1.00 USD)"), "{screen}");
        key(&mut ui, KeyCode::Esc);
        // 1 KiB: under.
        let under = super::tui_common::archive("photos/2024/sunset.jpg", 1024, 10);
        let plan = DeletionPlan::new(vec![under], &ui.set.prices, now, &ui.set.task_ids);
        update(&mut ui, Action::DeletionPlanned { plan, note: None });
        assert!(!render(&ui).contains("confirm_above"));
        key(&mut ui, KeyCode::Esc);

        // The retrieval dialog marks the tiers over the limit: 2 MiB costs
        // 2 USD with the standard tier's price of 1 USD per MiB.
        ui.set.prices.standard.retrieval_per_gb = 1024.0;
        ui.dialog = Some(Dialog::Retrieve {
            keys: vec!["photos/2024/sunset.jpg".into()],
            bytes: 2 << 20,
            tier: firn::model::Tier::Standard,
            destination: "/srv/backup".into(),
            quote: None,
        });
        let screen = render(&ui);
        let standard = super::tui_common::line_with(&screen, "standard");
        assert!(standard.contains("over confirm_above"), "{screen}");
        let bulk = super::tui_common::line_with(&screen, "bulk");
        assert!(!bulk.contains("over confirm_above"), "{screen}");
        key(&mut ui, KeyCode::Esc);

        // The cost view shows how much of the budget is used.
        ui.set.budget = Some(Budget {
            per_month: 10.0,
            currency: "USD".into(),
        });
        let records = [super::tui_common::archive("a.bin", 3 << 20, 10)];
        let summary = firn::cost::CostSummary::of(records.iter(), &ui.set.prices, now);
        update(&mut ui, Action::CostLoaded(Box::new(summary)));
        assert_eq!(ui.set.monthly, Some(3.0));
        let screen = render(&ui);
        assert!(
            screen.contains("Budget             3.00 of 10.00 USD/month used"),
            "{screen}"
        );
        assert!(screen.contains("budget 3.00/10.00 USD/mo"), "{screen}");
    }
}
