//! End to end: the real binary in a pseudo-terminal, read through a vt100 parser.
//! Opens a temporary tree, marks a directory, uploads it, waits until its rows read
//! up to date, quits, and checks the terminal was restored and the catalog holds
//! the files.

mod common;

use std::time::{Duration, Instant};

use common::Sandbox;
use common::pty::Pty;

const ROWS: u16 = 40;
const COLS: u16 = 120;

/// The tree row showing `name`: the tree pane's part of a screen line (left of
/// the details pane), without the pane's left border.
fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .filter_map(|l| l.strip_prefix('│'))
        .map(|l| l.split("││").next().unwrap_or(l))
        .find(|l| l.contains(name))
}

/// The status mark of a tree row: the column after the mark-for-upload `*`.
fn mark(screen: &str, name: &str) -> Option<char> {
    row(screen, name).and_then(|l| l.chars().nth(1))
}

/// The paths the catalog records (`firn ls --all --json`), sorted.
fn recorded(sandbox: &Sandbox) -> Vec<String> {
    let mut paths: Vec<String> = sandbox
        .records()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths
}

#[test]
fn mark_upload_and_quit_in_a_real_terminal() {
    let sandbox = Sandbox::in_memory();
    sandbox.write("docs/a.txt", "alpha\n".repeat(1000));
    sandbox.write("docs/b.txt", "bravo\n".repeat(2000));
    sandbox.write("other.txt", "left alone");
    let mut cmd = sandbox.command();
    cmd.arg(sandbox.tree())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    let mut pty = Pty::spawn(cmd, ROWS, COLS);

    let screen = pty.wait_for("the scanned tree", Duration::from_secs(30), |s| {
        s.contains("docs/") && s.contains("other.txt")
    });
    assert_eq!(mark(&screen, "docs/"), Some('+'), "{screen}");
    assert!(
        row(&screen, "docs/").unwrap().contains("2 pending"),
        "{screen}"
    );
    assert!(pty.alternate_screen());

    // Directories come first: the selection is on docs/. Mark it, upload it.
    pty.send(" ");
    pty.wait_for("the mark", Duration::from_secs(5), |s| {
        row(s, "docs/").is_some_and(|l| l.starts_with('*'))
    });
    pty.send("u");
    let screen = pty.wait_for("docs/ up to date", Duration::from_secs(30), |s| {
        mark(s, "docs/") == Some('=') && row(s, "docs/").is_some_and(|l| l.contains("2 up to date"))
    });
    assert_eq!(
        mark(&screen, "other.txt"),
        Some('+'),
        "only the marked directory is uploaded:\n{screen}"
    );
    assert!(
        screen.contains("Jobs"),
        "the jobs pane shows the uploads:\n{screen}"
    );

    // Open docs/: both files read up to date.
    pty.send("gg");
    pty.send("l");
    let screen = pty.wait_for("the files of docs/", Duration::from_secs(10), |s| {
        mark(s, "a.txt") == Some('=') && mark(s, "b.txt") == Some('=')
    });
    assert!(row(&screen, "a.txt").is_some());

    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    pty.assert_restored();

    // The catalog holds the directory's files, and only those.
    assert_eq!(recorded(&sandbox), ["docs/a.txt", "docs/b.txt"]);
}

#[test]
fn sigterm_restores_the_terminal() {
    let sandbox = Sandbox::in_memory();
    sandbox.write("x.txt", "x");
    let mut cmd = sandbox.command();
    cmd.arg(sandbox.tree()).env("TERM", "xterm-256color");
    let mut pty = Pty::spawn(cmd, ROWS, COLS);
    pty.wait_for("the tree", Duration::from_secs(30), |s| s.contains("x.txt"));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pty.child.id() as i32, libc::SIGTERM) };
    pty.wait_exit(Duration::from_secs(10));
    pty.assert_restored();
}

#[test]
fn a_panic_restores_the_terminal() {
    let sandbox = Sandbox::in_memory();
    sandbox.write("x.txt", "x");
    let mut cmd = sandbox.command();
    cmd.arg(sandbox.tree())
        .env("TERM", "xterm-256color")
        .env("FIRN_TUI_PANIC", "1")
        .env("RUST_BACKTRACE", "0");
    let mut pty = Pty::spawn(cmd, ROWS, COLS);
    let status = pty.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "firn did not panic");
    pty.assert_restored();
    let screen = pty.screen();
    assert!(
        screen.contains("injected panic"),
        "the panic message is readable:\n{screen}"
    );
}

#[test]
fn a_backend_that_cannot_be_reached_is_a_dialog_not_a_crash() {
    let sandbox = Sandbox::in_memory();
    sandbox.write("x.txt", "x");
    sandbox.write_config(
        "store = { kind = \"glacier\", vault = \"v\", region = \"us-east-1\", endpoint_url = \"http://127.0.0.1:1\" }\ncatalog = { kind = \"dynamodb\", table = \"firn\", region = \"us-east-1\", endpoint_url = \"http://127.0.0.1:1\" }\n",
    );
    let mut cmd = sandbox.command();
    cmd.args(["--set", "s"])
        .env("TERM", "xterm-256color")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let mut pty = Pty::spawn(cmd, ROWS, COLS);
    let screen = pty.wait_for("the error dialog", Duration::from_secs(60), |s| {
        s.contains("Cannot open the backup set")
    });
    assert!(screen.contains("cannot reach"), "{screen}");
    pty.send("x");
    let status = pty.wait_exit(Duration::from_secs(10));
    // The store or the network failed, as the CLI says it (not a usage error).
    assert_eq!(status.code(), Some(4));
    pty.assert_restored();
}

#[test]
fn a_retrieval_requested_then_quit_is_picked_up_by_the_next_run() {
    let sandbox = Sandbox::in_memory();
    sandbox.write("gone/photo.jpg", "pixels ".repeat(3000));
    sandbox.write("kept.txt", "still here");
    sandbox.write_config("store = { kind = \"local\", retrieval_delay_secs = 4 }\n");
    let out = sandbox.firn(["backup", "--set", "s"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    std::fs::remove_dir_all(sandbox.tree().join("gone")).unwrap();
    let tui = || {
        let mut cmd = sandbox.command();
        cmd.args(["--set", "s"]).env("TERM", "xterm-256color");
        Pty::spawn(cmd, ROWS, COLS)
    };

    let mut pty = tui();
    let screen = pty.wait_for("the scanned tree", Duration::from_secs(30), |s| {
        s.contains("gone/") && s.contains("kept.txt")
    });
    assert_eq!(
        mark(&screen, "gone/"),
        Some('-'),
        "archived-only:\n{screen}"
    );
    // Directories first: the selection is on gone/.
    pty.send("r");
    pty.wait_for("the retrieval dialog", Duration::from_secs(5), |s| {
        s.contains("Retrieve archived files") && s.contains("expedited")
    });
    // The engine's plan replaces the estimate by file: the photo shares a
    // pack with kept.txt, and that pack is the one retrieval.
    pty.wait_for("the retrieval's plan", Duration::from_secs(10), |s| {
        s.contains("1 pack (for 1 file)")
    });
    pty.send("\r");
    pty.wait_for("the job at the store", Duration::from_secs(10), |s| {
        s.contains("at the store")
    });
    assert_eq!(sandbox.job_files(), 1);
    pty.send("q");
    pty.wait_for("the quit question", Duration::from_secs(5), |s| {
        s.contains("Quit anyway?")
    });
    pty.send("y");
    assert!(pty.wait_exit(Duration::from_secs(10)).success());
    assert!(!sandbox.tree().join("gone/photo.jpg").exists());
    drop(pty);

    // The next run picks the job up, downloads once it is ready, and the file
    // reads up to date again.
    let mut pty = tui();
    pty.wait_for(
        "gone/ restored and up to date",
        Duration::from_secs(60),
        |s| mark(s, "gone/") == Some('='),
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.tree().join("gone/photo.jpg")).unwrap(),
        "pixels ".repeat(3000)
    );
    assert_eq!(
        sandbox.job_files(),
        1,
        "the job requested by the first run was reused"
    );
    pty.send("q");
    assert!(pty.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn deleting_an_archive_in_the_tui_makes_the_file_new_again() {
    let sandbox = Sandbox::in_memory();
    sandbox.write("only.txt", "the one file");
    let out = sandbox.firn(["backup", sandbox.tree().to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(sandbox.records().len(), 1);
    let mut cmd = sandbox.command();
    cmd.arg(sandbox.tree()).env("TERM", "xterm-256color");
    let mut pty = Pty::spawn(cmd, ROWS, COLS);
    let screen = pty.wait_for("the tree", Duration::from_secs(30), |s| {
        s.contains("only.txt")
    });
    assert_eq!(mark(&screen, "only.txt"), Some('='), "{screen}");
    pty.send("d");
    let screen = pty.wait_for("the deletion plan", Duration::from_secs(10), |s| {
        s.contains("Delete archives?")
    });
    assert!(screen.contains("Delete 1 archive (12 B)"), "{screen}");
    pty.send("y");
    pty.wait_for("only.txt new again", Duration::from_secs(30), |s| {
        mark(s, "only.txt") == Some('+')
    });
    pty.send("q");
    assert!(pty.wait_exit(Duration::from_secs(10)).success());
    assert!(sandbox.records().is_empty(), "the catalog forgot it");
    let stored = sandbox.store_archives();
    assert!(stored.is_empty(), "the store deleted it: {stored:?}");
}

#[test]
fn orphans_found_by_an_inventory_are_adopted_from_the_tui() {
    let sandbox = Sandbox::in_memory();
    sandbox.write("photos/a.jpg", "jpeg bytes");
    let out = sandbox.firn(["backup", sandbox.tree().to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    // The catalog is lost: the store's archive is now an orphan.
    std::fs::remove_file(sandbox.catalog_db()).unwrap();
    let mut cmd = sandbox.command();
    cmd.arg(sandbox.tree()).env("TERM", "xterm-256color");
    let mut pty = Pty::spawn(cmd, ROWS, COLS);
    let screen = pty.wait_for("the tree", Duration::from_secs(30), |s| {
        s.contains("photos/")
    });
    assert_eq!(mark(&screen, "photos/"), Some('+'), "new again: {screen}");
    pty.send("I");
    pty.wait_for(
        "the empty reconciliation view",
        Duration::from_secs(5),
        |s| s.contains("No inventory has been compared"),
    );
    pty.send("n");
    let screen = pty.wait_for("the orphan", Duration::from_secs(30), |s| {
        s.contains("Orphans (in the store, not in the catalog): 1")
    });
    assert!(screen.contains("photos/a.jpg"), "{screen}");
    pty.send("a");
    pty.wait_for("photos/ archived again", Duration::from_secs(30), |s| {
        mark(s, "photos/") == Some('=')
    });
    pty.send("q");
    assert!(pty.wait_exit(Duration::from_secs(10)).success());
    let records = sandbox.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["path"], "photos/a.jpg");
}

/// The number done in the jobs pane's title: ` Jobs · 2 running · 1,010 queued
/// · 7 done`.
fn jobs_done(screen: &str) -> Option<usize> {
    let title = screen.lines().find(|l| l.contains(" Jobs · "))?;
    let done = regex::Regex::new(r"· ([\d,]+) done").unwrap();
    done.captures(title)?[1].replace(',', "").parse().ok()
}

#[test]
fn quitting_a_large_backup_is_fast_and_leaves_nothing_half_recorded() {
    const FILES: usize = 5_000;
    let sandbox = Sandbox::in_memory();
    // Packs of two or three files: in packs of the default size these 5,000
    // files are one pack, stored before anyone could quit; in small ones the
    // backup is a stream of packs to stop in the middle of.
    sandbox.write_config_text("[defaults]\npack_threshold = 16\npack_size = 16\n");
    for n in 0..FILES {
        sandbox.write(
            format!("many/{:02}/{n:05}.txt", n / 100),
            format!("file {n}\n"),
        );
    }
    let mut cmd = sandbox.command();
    cmd.arg(sandbox.tree()).env("TERM", "xterm-256color");
    let mut pty = Pty::spawn(cmd, ROWS, COLS);
    pty.wait_for("the scanned tree", Duration::from_secs(60), |s| {
        s.contains("many/") && s.contains("5,000 pending")
    });

    // Back up everything, and wait for the first uploads to be done.
    pty.send("U");
    pty.wait_for("the backup question", Duration::from_secs(10), |s| {
        s.contains("Upload 5,000 files")
    });
    pty.send("y");
    pty.wait_for("the first uploads", Duration::from_secs(60), |s| {
        jobs_done(s).is_some_and(|n| n > 0)
    });

    // Quitting asks first, counting what is not finished.
    pty.send("q");
    let screen = pty.wait_for("the quit question", Duration::from_secs(10), |s| {
        s.contains("Quit anyway?")
    });
    let question = regex::Regex::new(r"(\d{1,3}(?:,\d{3})*) uploads are not finished\.")
        .unwrap()
        .captures(&screen)
        .unwrap_or_else(|| panic!("no count of unfinished uploads:\n{screen}"));
    let unfinished: usize = question[1].replace(',', "").parse().unwrap();
    assert!(
        (1_000..FILES).contains(&unfinished),
        "most of the backup is still to do: {unfinished}\n{screen}"
    );
    assert_eq!(
        question[1],
        firn::fmt::count(unfinished as u64),
        "the count is formatted"
    );
    let done_before = jobs_done(&screen).unwrap();

    // Confirming drops the queue at once; only what is in flight is awaited.
    let started = Instant::now();
    pty.press("y");
    let status = pty.wait_exit(Duration::from_secs(30));
    let took = started.elapsed();
    eprintln!("quit with {unfinished} unfinished uploads took {took:?} from the confirm key");
    assert!(
        took <= Duration::from_secs(5),
        "quitting took {took:?} with {unfinished} uploads unfinished"
    );
    assert!(status.success(), "exit status {status:?}");
    pty.assert_restored();

    // Nothing is half-recorded: every archive the store holds is in the
    // catalog, the catalog holds only those, and they are exactly the files
    // status reports as up to date (the rest are still new).
    let mut referenced: Vec<String> = sandbox
        .records()
        .iter()
        .map(|r| r["archive_id"].as_str().unwrap().to_string())
        .collect();
    referenced.sort();
    referenced.dedup();
    assert_eq!(
        referenced,
        sandbox.store_archives(),
        "store and catalog agree"
    );
    let recorded = recorded(&sandbox);
    assert!(
        recorded.len() >= done_before && recorded.len() < FILES,
        "{} recorded, {done_before} done when asked, of {FILES}",
        recorded.len()
    );
    let status = sandbox.status_json(&[]);
    let mut up_to_date = Vec::new();
    let mut new = 0;
    for file in status["files"].as_array().unwrap() {
        match file["status"].as_str().unwrap() {
            "up-to-date" => up_to_date.push(file["path"].as_str().unwrap().to_string()),
            "new" => new += 1,
            other => panic!("{} is {other}", file["path"]),
        }
    }
    up_to_date.sort();
    assert_eq!(
        up_to_date, recorded,
        "the catalog holds what status calls up to date"
    );
    assert_eq!(up_to_date.len() + new, FILES);
}

#[test]
fn a_migration_from_the_previous_store_runs_in_the_jobs_pane() {
    let sandbox = Sandbox::in_memory();
    sandbox.write("docs/a.txt", "alpha\n".repeat(1000));
    sandbox.write("docs/b.txt", "bravo\n".repeat(2000));
    sandbox.write("gone.txt", "deleted after the backup");
    let (a, b) = (
        sandbox.path().join("store-a"),
        sandbox.path().join("store-b"),
    );
    sandbox.write_config(&format!("store = {{ kind = \"local\", path = {a:?} }}\n"));
    let out = sandbox.firn(["backup", "--set", "s"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    std::fs::remove_file(sandbox.tree().join("gone.txt")).unwrap();
    // The set moves to store B; A is the store it used before.
    sandbox.write_config(&format!(
        "store = {{ kind = \"local\", path = {b:?} }}\nprevious_store = {{ kind = \"local\", path = {a:?} }}\n"
    ));

    let mut cmd = sandbox.command();
    cmd.args(["--set", "s"]).env("TERM", "xterm-256color");
    let mut pty = Pty::spawn(cmd, ROWS, COLS);
    let screen = pty.wait_for("the scanned tree", Duration::from_secs(30), |s| {
        s.contains("docs/") && s.contains("gone.txt")
    });
    assert_eq!(
        mark(&screen, "docs/"),
        Some('+'),
        "archived only in the previous store: pending here\n{screen}"
    );

    pty.send("C");
    let screen = pty.wait_for("the migration plan", Duration::from_secs(30), |s| {
        s.contains("Migrate archives?")
    });
    assert!(screen.contains("Copy 3 archives"), "{screen}");
    assert!(
        screen.contains("From unchanged local files  2 (17.6 KiB), no retrieval"),
        "{screen}"
    );
    assert!(
        screen.contains("To retrieve                 1 (24 B)"),
        "{screen}"
    );
    pty.send("y");
    let screen = pty.wait_for("three copies done", Duration::from_secs(60), |s| {
        jobs_done(s) == Some(3)
    });
    for key in ["docs/a.txt", "docs/b.txt", "gone.txt"] {
        let row = screen
            .lines()
            .find(|l| l.contains(key) && l.contains("copied"))
            .unwrap_or_else(|| panic!("no copied row for {key}:\n{screen}"));
        assert!(row.contains("100%"), "{row}");
    }
    // The tree is compared again: the copies make the files safe here.
    pty.wait_for("docs/ up to date", Duration::from_secs(30), |s| {
        mark(s, "docs/") == Some('=')
    });
    pty.send("L");
    pty.wait_for("the log line", Duration::from_secs(10), |s| {
        s.contains("migration finished: 3 archives copied into local:")
    });
    pty.send("q");
    assert!(pty.wait_exit(Duration::from_secs(10)).success());
    pty.assert_restored();

    // Each file's current version is now in B; A's archives stay, superseded.
    let records = sandbox.records();
    for key in ["docs/a.txt", "docs/b.txt", "gone.txt"] {
        let of_key: Vec<_> = records.iter().filter(|r| r["path"] == key).collect();
        let target = |state: &str| {
            of_key
                .iter()
                .find(|r| r["state"] == state)
                .and_then(|r| r["target"].as_str())
                .unwrap_or_else(|| panic!("no {state} record of {key}: {of_key:?}"))
                .to_string()
        };
        assert!(target("current").ends_with("store-b"), "{of_key:?}");
        assert!(target("superseded").ends_with("store-a"), "{of_key:?}");
    }
    let out = sandbox.firn(["migrate", "--set", "s", "--dry-run"]);
    assert!(
        common::stdout(&out).contains("from unchanged local files: 0 files"),
        "nothing is left to copy: {}",
        common::stdout(&out)
    );
}
