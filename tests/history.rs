//! The run history and the hooks, through the real binary: every command that
//! changes a set leaves a summary `firn log` lists (busy runs and runs that
//! failed before the set was opened too), `firn status` says how old the last
//! backup is, the terminal UI's jobs are recorded, and the hooks read the
//! summary on their standard input without ever changing a run's exit code.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::pty::Pty;
use common::{Sandbox, assert_exit, last_json, stderr, stdout};
use serde_json::Value;

/// The runs of set `set`, newest first (`firn log --json`).
fn log(sb: &Sandbox, set: &str) -> Vec<Value> {
    let out = sb.firn(["log", "--set", set, "--json", "-n", "100"]);
    assert_exit(&out, 0);
    let doc = last_json(&out);
    assert_eq!(doc["set"], set);
    doc["runs"].as_array().cloned().expect("runs")
}

/// The local state directory of configured set `set`.
fn state_dir(sb: &Sandbox, set: &str) -> PathBuf {
    use sha1::Digest;
    sb.data()
        .join("sets")
        .join(&hex::encode(sha1::Sha1::digest(set.as_bytes()))[..16])
}

/// Fields every summary has, whatever the run.
fn assert_summary(run: &Value, set: &str, command: &str, code: u64, outcome: &str) {
    assert_eq!(run["set"], set, "{run}");
    assert_eq!(run["command"], command, "{run}");
    assert_eq!(run["exit_code"], code, "{run}");
    assert_eq!(run["outcome"], outcome, "{run}");
    assert_eq!(run["front_end"], "cli", "{run}");
    assert_eq!(run["firn_version"], env!("CARGO_PKG_VERSION"), "{run}");
    assert!(!run["host"].as_str().unwrap().is_empty(), "{run}");
    let started = run["started_at_unix"].as_i64().unwrap();
    let now = firn::model::now_secs();
    assert!(
        (now - 600..=now).contains(&started),
        "started {started}, now {now}"
    );
    assert_eq!(
        run["started_at"],
        firn::fmt::format_time_rfc3339(started),
        "{run}"
    );
    assert!(run["duration_secs"].as_f64().unwrap() >= 0.0, "{run}");
    assert!(run["cost_estimate"].as_f64().unwrap() >= 0.0, "{run}");
    assert!(run.get("hook").is_none(), "no hook configured: {run}");
}

/// A set `down` whose store nothing answers (an S3 endpoint on port 1): every
/// run of it fails with the store (exit 4).
fn unreachable_set(sb: &Sandbox) -> String {
    let root = sb.path().join("down");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("x.txt"), "x").unwrap();
    format!(
        "[sets.down]\nroot = {root:?}\nstore = {{ kind = \"s3\", bucket = \"b\", region = \"us-east-1\", endpoint_url = \"http://127.0.0.1:1\" }}\n"
    )
}

/// firn with AWS credentials that need no network (the unreachable set's store).
fn firn(sb: &Sandbox, args: &[&str]) -> Output {
    sb.command()
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run firn")
}

#[test]
fn backups_restores_and_failed_runs_are_in_the_log_with_their_exit_codes() {
    let sb = Sandbox::in_memory();
    sb.write("a.txt", "alpha");
    sb.write("dir/b.txt", "bravo!");
    let gone = sb.path().join("not-mounted");
    let config = format!(
        "[sets.s]\nroot = {:?}\n[sets.unmounted]\nroot = {gone:?}\n{}",
        sb.tree(),
        unreachable_set(&sb)
    );
    sb.write_config_text(&config);
    assert!(
        log(&sb, "s").is_empty(),
        "nothing recorded before the first run"
    );

    assert_exit(&sb.firn(["backup", "--set", "s"]), 0);
    let restored = sb.path().join("restored");
    let to = restored.to_str().unwrap();
    assert_exit(&sb.firn(["restore", "--set", "s", "--to", to]), 0);
    // Neither a dry run nor a command that only looks is a run.
    assert_exit(&sb.firn(["backup", "--set", "s", "--dry-run"]), 0);
    assert_exit(&sb.firn(["status", "--set", "s"]), 0);
    assert_exit(&sb.firn(["ls", "--set", "s"]), 0);

    let runs = log(&sb, "s");
    assert_eq!(runs.len(), 2, "{runs:?}");
    let (restore, backup) = (&runs[0], &runs[1]);
    assert_summary(backup, "s", "backup", 0, "ok");
    assert_eq!(backup["uploaded"]["count"], 2);
    assert_eq!(backup["uploaded"]["bytes"], 11);
    assert_eq!(backup["failed"], 0);
    assert_eq!(backup["error"], Value::Null);
    assert_summary(restore, "s", "restore", 0, "ok");
    assert_eq!(restore["restored"]["count"], 2);
    assert_eq!(restore["restored"]["bytes"], 11);
    assert_eq!(restore["uploaded"]["count"], 0);
    assert_eq!(
        std::fs::read_to_string(restored.join("dir/b.txt")).unwrap(),
        "bravo!"
    );
    assert!(
        restore["started_at_unix"].as_i64() >= backup["started_at_unix"].as_i64(),
        "newest first"
    );

    // The store cannot be reached: exit 4, recorded in its set.
    let out = firn(&sb, &["backup", "--set", "down"]);
    let line = common::one_line_failure(&out, 4);
    assert!(line.contains("cannot reach"), "{line}");
    let down = log(&sb, "down");
    assert_eq!(down.len(), 1);
    assert_summary(&down[0], "down", "backup", 4, "failed");
    assert!(
        down[0]["error"].as_str().unwrap().contains("cannot reach"),
        "{}",
        down[0]
    );

    // The root is not there (a disk not mounted): exit 2, recorded by name.
    let out = sb.firn(["backup", "--set", "unmounted"]);
    let line = common::one_line_error(&out);
    assert!(line.contains("does not exist"), "{line}");
    let unmounted = log(&sb, "unmounted");
    assert_eq!(unmounted.len(), 1);
    assert_summary(&unmounted[0], "unmounted", "backup", 2, "usage");
    assert!(
        unmounted[0]["error"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );

    // Busy: another process holds the set. Recorded, and it changes nothing.
    let lock = firn::lock::SetLock::acquire(&state_dir(&sb, "s"), "s", "test").unwrap();
    let out = sb.firn(["prune", "--set", "s", "--yes"]);
    let line = common::one_line_failure(&out, 3);
    assert!(line.contains("busy"), "{line}");
    drop(lock);
    let runs = log(&sb, "s");
    assert_eq!(runs.len(), 3);
    assert_summary(&runs[0], "s", "prune", 3, "busy");
    assert!(runs[0]["error"].as_str().unwrap().contains("busy"));

    // A set no config names and no run used is not a set: nothing to record in.
    let out = sb.firn(["backup", "--set", "nosuch"]);
    common::one_line_error(&out);
    assert!(!state_dir(&sb, "nosuch").exists());

    // For people: a line per run, newest first; -n keeps the newest.
    let out = sb.firn(["log", "--set", "s"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("set s ("), "{text}");
    assert!(lines[1].contains("prune") && lines[1].contains("busy") && lines[1].contains("exit 3"));
    assert!(lines[2].contains("restore") && lines[2].contains("restored 2 files"));
    assert!(lines[3].contains("backup") && lines[3].contains("uploaded 2 files"));
    let out = sb.firn(["log", "--set", "s", "-n", "1", "--json"]);
    assert_eq!(last_json(&out)["runs"].as_array().unwrap().len(), 1);
}

#[test]
fn a_run_whose_files_fail_is_problems_with_its_failures() {
    let sb = Sandbox::new();
    sb.write("fine.txt", "fine");
    let locked = sb.write("locked.txt", "secret");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    sb.write_config("");
    // Root reads anything: firn runs as an unprivileged user instead.
    let out = sb
        .unprivileged_command()
        .args(["backup", "--set", "s"])
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let runs = log(&sb, "s");
    assert_summary(&runs[0], "s", "backup", 1, "problems");
    assert_eq!(runs[0]["uploaded"]["count"], 1);
    assert_eq!(runs[0]["failed"], 1);
    let failure = runs[0]["failures"][0].as_str().unwrap();
    assert!(failure.starts_with("locked.txt: "), "{failure}");
    // Files failed, the rest is archived: it counts as the last backup.
    let doc = sb.status_json(&[]);
    assert_eq!(doc["last_backup"]["exit_code"], 1);
    assert_eq!(doc["last_backup"]["failed"], 1);
}

#[test]
fn status_says_how_old_the_last_backup_is_and_what_failed_since() {
    let sb = Sandbox::in_memory();
    sb.write("a.txt", "alpha");
    sb.write_config("stale_after = \"4s\"\n");

    let doc = sb.status_json(&["--set", "s"]);
    assert_eq!(doc["last_backup"], Value::Null);
    assert_eq!(doc["failed_backups_since"], 0);
    let out = sb.firn(["status", "--set", "s"]);
    assert!(
        stdout(&out).contains("last backup: none recorded"),
        "{}",
        stdout(&out)
    );

    assert_exit(&sb.firn(["backup", "--set", "s"]), 0);
    let doc = sb.status_json(&["--set", "s"]);
    let last = &doc["last_backup"];
    assert_eq!(
        (&last["outcome"], &last["exit_code"]),
        (&Value::from("ok"), &Value::from(0))
    );
    assert_eq!(last["stale"], false, "{doc}");
    assert_eq!(last["stale_after_secs"], 4);
    let age = last["age_secs"].as_i64().unwrap();
    assert!((0..=4).contains(&age), "{age}");
    let out = sb.firn(["status", "--set", "s"]);
    let text = stdout(&out);
    assert!(
        text.contains("last backup ") && text.contains(" s ago ("),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no colour without a terminal: {text}"
    );

    // A failed backup since (an invalid pattern: exit 2) is named.
    assert_exit(&sb.firn(["backup", "--set", "s", "--pattern", "("]), 2);
    std::thread::sleep(Duration::from_secs(5));
    let doc = sb.status_json(&["--set", "s"]);
    assert_eq!(doc["last_backup"]["stale"], true, "{doc}");
    assert_eq!(doc["failed_backups_since"], 1);
    let text = stdout(&sb.firn(["status", "--set", "s"]));
    assert!(text.contains("older than stale_after (4 s)"), "{text}");
    assert!(
        text.contains("since then 1 backup run did not complete")
            && text.contains("(exit 2)")
            && text.contains("invalid --pattern"),
        "{text}"
    );

    // On a terminal, a stale backup is red.
    let mut cmd = sb.command();
    cmd.args(["status", "--set", "s"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    let mut pty = Pty::spawn(cmd, 24, 200);
    assert!(pty.wait_exit(Duration::from_secs(30)).success());
    let raw = String::from_utf8_lossy(&pty.raw()).into_owned();
    assert!(raw.contains("\x1b[31mlast backup "), "{raw:?}");

    // stale_after = "off": never stale.
    sb.edit_config("stale_after = \"4s\"", "stale_after = \"off\"");
    let doc = sb.status_json(&["--set", "s"]);
    assert_eq!(doc["last_backup"]["stale"], false);
    assert_eq!(doc["last_backup"]["stale_after_secs"], Value::Null);

    // A bad duration is a usage error naming the key.
    sb.edit_config("stale_after = \"off\"", "stale_after = \"soon\"");
    let line = common::one_line_error(&sb.firn(["status", "--set", "s"]));
    assert!(
        line.contains("stale_after") && line.contains("36h"),
        "{line}"
    );
}

/// A config with set `s` at the tree and these hook settings in it.
fn hooks_config(sb: &Sandbox, defaults: &str, set: &str) {
    let text = format!(
        "[defaults]\n{defaults}\n[sets.s]\nroot = {:?}\n{set}\n",
        sb.tree()
    );
    sb.write_config_text(&text);
}

fn json_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(text.lines().count(), 1, "one line of JSON: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn hooks_read_the_summary_on_stdin_and_never_change_the_exit_code() {
    let sb = Sandbox::in_memory();
    sb.write("a.txt", "alpha");
    let (ok, failed, env) = (
        sb.path().join("ok.json"),
        sb.path().join("failed.json"),
        sb.path().join("failed.env"),
    );
    hooks_config(
        &sb,
        &format!(
            "on_failure = 'cat > {failed:?}; echo \"$FIRN_HOOK $FIRN_OUTCOME $FIRN_EXIT_CODE $FIRN_SET $FIRN_COMMAND\" > {env:?}'"
        ),
        &format!("on_success = 'echo noise; cat > {ok:?}'"),
    );

    // Success: on_success reads the summary; stdout stays firn's own JSON.
    let (code, doc) = sb.firn_json(["backup", "--set", "s", "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(
        doc["uploaded_files"], 1,
        "the backup's document is the last line"
    );
    let got = json_file(&ok);
    assert_summary(&got, "s", "backup", 0, "ok");
    assert_eq!(got["uploaded"]["count"], 1);
    assert!(!failed.exists(), "on_failure did not run");
    let runs = log(&sb, "s");
    assert_eq!(runs[0]["hook"]["name"], "on_success");
    assert_eq!(runs[0]["hook"]["ok"], true);
    assert_eq!(runs[0]["hook"]["exit_code"], 0);

    // Failure: on_failure, with the outcome in its variables too.
    let out = sb.firn(["backup", "--set", "s", "--pattern", "("]);
    common::one_line_error(&out);
    let got = json_file(&failed);
    assert_eq!(
        (&got["exit_code"], &got["outcome"]),
        (&Value::from(2), &Value::from("usage"))
    );
    assert!(got["error"].as_str().unwrap().contains("invalid --pattern"));
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        "on_failure usage 2 s backup\n"
    );
}

#[test]
fn a_failing_missing_or_hanging_hook_is_reported_in_one_line_and_the_run_stands() {
    let sb = Sandbox::in_memory();
    sb.write("a.txt", "alpha");
    // Fails: exit 9, and says why on stderr.
    hooks_config(
        &sb,
        "",
        "on_success = 'echo starting >&2; echo \"mail: no route to host\" >&2; exit 9'",
    );
    let out = sb.firn(["backup", "--set", "s"]);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("on_success hook failed")
            && err.contains("status 9")
            && err.contains("no route to host")
            && err.contains("the run's own exit code stands"),
        "{err}"
    );
    let runs = log(&sb, "s");
    assert_eq!(runs[0]["exit_code"], 0);
    assert_eq!(runs[0]["hook"]["ok"], false);
    assert_eq!(runs[0]["hook"]["exit_code"], 9);
    let text = stdout(&sb.firn(["log", "--set", "s", "-n", "1"]));
    assert!(text.contains("on_success hook failed"), "{text}");

    // Not found: the run's failure (busy) stands, exit 3.
    hooks_config(&sb, "on_failure = 'no-such-firn-hook --now'", "");
    let lock = firn::lock::SetLock::acquire(&state_dir(&sb, "s"), "s", "test").unwrap();
    let out = sb.firn(["backup", "--set", "s"]);
    drop(lock);
    assert_exit(&out, 3);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "the run's line, then the hook's: {err}");
    assert!(lines[0].contains("busy"), "{err}");
    assert!(
        lines[1].contains("on_failure hook failed") && lines[1].contains("not found"),
        "{err}"
    );
    assert_eq!(log(&sb, "s")[0]["hook"]["exit_code"], 127);

    // Hangs, with a child of its own: killed at hook_timeout, the run is done.
    let pid_file = sb.path().join("hook.pid");
    hooks_config(
        &sb,
        "hook_timeout = \"1s\"",
        &format!("on_success = 'sleep 60 & echo $! > {pid_file:?}; wait'"),
    );
    sb.write("b.txt", "bravo");
    let started = Instant::now();
    let out = sb.firn(["backup", "--set", "s"]);
    let took = started.elapsed();
    assert_exit(&out, 0);
    assert!(took < Duration::from_secs(20), "{took:?}");
    let err = stderr(&out);
    assert!(
        err.contains("on_success hook failed") && err.contains("killed (hook_timeout)"),
        "{err}"
    );
    let run = &log(&sb, "s")[0];
    assert_eq!(run["uploaded"]["count"], 1);
    assert_eq!(run["hook"]["exit_code"], Value::Null);
    assert!(run["hook"]["seconds"].as_f64().unwrap() >= 1.0);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid.trim()) {
        assert!(Instant::now() < deadline, "the hook's sleep outlived it");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether process `pid` runs (a zombie waiting to be reaped does not).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

#[test]
fn the_terminal_uis_jobs_are_runs_and_h_lists_them() {
    let sb = Sandbox::in_memory();
    sb.write("a.txt", "alpha");
    sb.write_config("");
    assert_exit(&sb.firn(["backup", "--set", "s"]), 0);
    sb.write("b.txt", "bravo, new");
    let mut cmd = sb.command();
    cmd.args(["--set", "s"]).env("TERM", "xterm-256color");
    let mut pty = Pty::spawn(cmd, 40, 140);
    let screen = pty.wait_for(
        "the tree and the last backup",
        Duration::from_secs(30),
        |s| s.contains("b.txt") && s.contains("last backup"),
    );
    assert!(screen.contains(" s ago"), "{screen}");

    // Back up everything pending: one upload run.
    pty.send("U");
    pty.wait_for("the question", Duration::from_secs(5), |s| {
        s.contains("Back up everything pending?")
    });
    pty.send("y");
    pty.wait_for("nothing pending", Duration::from_secs(30), |s| {
        s.contains("0 pending")
    });
    // Delete a.txt's archive (the selection is on it): one delete run.
    pty.send("gg");
    pty.send("d");
    pty.wait_for("the deletion plan", Duration::from_secs(10), |s| {
        s.contains("Delete archives?")
    });
    pty.send("y");
    pty.wait_for("a.txt pending again", Duration::from_secs(30), |s| {
        s.contains("1 pending")
    });

    // H: the last runs, newest first.
    pty.send("H");
    let screen = pty.wait_for("the last runs", Duration::from_secs(10), |s| {
        s.contains("Last runs") && s.contains("delete (ui)")
    });
    let at = |what: &str| {
        screen
            .find(what)
            .unwrap_or_else(|| panic!("{what}:\n{screen}"))
    };
    assert!(at("delete (ui)") < at("upload (ui)"), "{screen}");
    assert!(at("upload (ui)") < at("  backup  "), "{screen}");
    pty.send("\x1b");
    pty.send("q");
    assert!(pty.wait_exit(Duration::from_secs(10)).success());

    let runs = log(&sb, "s");
    assert_eq!(runs.len(), 3, "{runs:?}");
    for run in &runs[..2] {
        assert_eq!(run["front_end"], "tui", "{run}");
        assert_eq!(
            (&run["exit_code"], &run["outcome"]),
            (&Value::from(0), &Value::from("ok"))
        );
    }
    assert_eq!(runs[0]["command"], "delete");
    assert_eq!(runs[0]["deleted"]["count"], 1);
    assert_eq!(runs[0]["deleted"]["bytes"], 5);
    assert_eq!(runs[1]["command"], "upload");
    assert_eq!(runs[1]["uploaded"]["count"], 1);
    assert_eq!(runs[2]["command"], "backup");
    // The terminal UI's uploads are not backups: the last backup is the CLI's.
    let doc = sb.status_json(&["--set", "s"]);
    assert_eq!(
        doc["last_backup"]["finished_at_unix"].as_i64().unwrap(),
        runs[2]["started_at_unix"].as_i64().unwrap()
            + runs[2]["duration_secs"].as_f64().unwrap().round() as i64
    );
}

#[test]
fn a_runs_cost_is_what_its_retrievals_and_early_deletions_are_billed() {
    let sb = Sandbox::in_memory();
    sb.write("a.txt", "alpha");
    sb.write("b.txt", "bravo!");
    // Prices that make each request and each early deletion plain to see. One
    // archive per file: a request per file restored, and deleting a.txt deletes
    // its archive early (a packed a.txt's bytes would stay in b.txt's pack,
    // billed on, with no early deletion yet).
    sb.write_config_text(&format!(
        "[prices]\nstorage_per_gb_month = 1000000.0\nminimum_storage_days = 90\n[prices.standard]\nretrieval_per_gb = 0.0\nretrieval_per_1000_requests = 1000.0\n[sets.s]\nroot = {:?}\npack_small_files = false\n",
        sb.tree()
    ));
    assert_exit(&sb.firn(["backup", "--set", "s"]), 0);
    let restored = sb.path().join("restored");
    let to = restored.to_str().unwrap();
    assert_exit(&sb.firn(["restore", "--set", "s", "--to", to]), 0);
    // Both files in place: nothing to retrieve, no job requested, nothing paid.
    assert_exit(&sb.firn(["restore", "--set", "s", "--to", to]), 0);
    let (code, deletion) = sb.firn_json(["delete", "--set", "s", "a.txt", "--yes", "--json"]);
    assert_eq!(code, Some(0), "{deletion}");
    let charged = deletion["charged"].as_f64().unwrap();
    assert!(charged > 0.001, "{deletion}");

    let runs = log(&sb, "s");
    let costs: Vec<(&str, f64)> = runs
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap(),
                r["cost_estimate"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        costs[1..],
        [("restore", 0.0), ("restore", 2.0), ("backup", 0.0)]
    );
    assert_eq!(costs[0].0, "delete");
    assert!(
        (costs[0].1 - charged).abs() < 1e-6,
        "{costs:?} vs {charged}"
    );
    assert!(runs.iter().all(|r| r["currency"] == "USD"));
    let text = stdout(&sb.firn(["log", "--set", "s", "-n", "3"]));
    assert!(text.contains("≈ 2.00 USD"), "{text}");
}
