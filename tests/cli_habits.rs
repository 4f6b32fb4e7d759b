//! The CLI as a new user tries it: commands that find their set from where they
//! are run or from the paths they name, errors that say what is wrong for the
//! command that was run, one live progress line on a terminal and per-file lines
//! only with -v, and a busy set named with a local time.

mod common;

use std::time::Duration;

use common::pty::Pty;
use common::{Sandbox, assert_exit, one_line_error, stderr, stdout};

/// A sandbox with a small tree backed up as an ad-hoc set (named by its root).
fn backed_up() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("top.txt", "top");
    sb.write("sub/data.bin", "data in sub");
    sb.write("sub/deeper/note.txt", "deeper note");
    let (code, doc) = sb.backup_json(&[]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["uploaded_files"], 3);
    sb
}

fn canonical_tree(sb: &Sandbox) -> String {
    std::fs::canonicalize(sb.tree())
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn status_without_a_root_finds_the_set_from_its_root_and_from_a_subdirectory() {
    let sb = backed_up();
    let root = canonical_tree(&sb);
    sb.write("sub/new.txt", "new since the backup");
    for dir in [sb.tree(), sb.tree().join("sub/deeper")] {
        let out = sb
            .command()
            .arg("status")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.contains(&root),
            "the first line names the set's root, from {}: {text}",
            dir.display()
        );
        assert!(text.contains("new ") && text.contains("1 file"), "{text}");
        let json = sb
            .command()
            .args(["status", "--json"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(
            doc["root"],
            root.as_str(),
            "the whole set, not {}",
            dir.display()
        );
        assert_eq!(doc["summary"]["new"]["files"], 1, "{doc}");
        assert_eq!(doc["summary"]["up_to_date"]["files"], 3, "{doc}");
    }
}

#[test]
fn a_configured_set_is_found_from_inside_its_root_among_several() {
    let sb = Sandbox::new();
    sb.write("photos/a.jpg", "a");
    sb.write("docs/b.txt", "b");
    let config = sb.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[sets.photos]\nroot = {:?}\n[sets.docs]\nroot = {:?}\n",
            sb.tree().join("photos"),
            sb.tree().join("docs")
        ),
    )
    .unwrap();
    let out = sb
        .command()
        .env("FIRN_CONFIG", &config)
        .args(["backup", "--json"])
        .current_dir(sb.tree().join("docs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["set"], "docs");
    assert_eq!(doc["uploaded_files"], 1);
}

#[test]
fn with_no_set_anywhere_status_compares_the_current_directory() {
    let sb = Sandbox::new();
    sb.write("here/x.txt", "x");
    let out = sb
        .command()
        .args(["status", "--json"])
        .current_dir(sb.tree().join("here"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let here = std::fs::canonicalize(sb.tree().join("here")).unwrap();
    assert_eq!(doc["root"], here.display().to_string());
    assert_eq!(doc["summary"]["new"]["files"], 1);
}

#[test]
fn restore_by_absolute_path_finds_its_set() {
    let sb = backed_up();
    let target = sb.tree().join("sub/data.bin");
    let out_dir = sb.path().join("out");
    let out = sb
        .command()
        .arg("restore")
        .arg("--to")
        .arg(&out_dir)
        .arg(&target)
        .current_dir(sb.path())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("sub/data.bin")).unwrap(),
        "data in sub"
    );
    assert!(!out_dir.join("top.txt").exists(), "only the file named");
}

#[test]
fn a_relative_path_is_taken_from_the_current_directory_inside_the_root() {
    let sb = backed_up();
    let out_dir = sb.path().join("out");
    let out = sb
        .command()
        .args(["restore", "deeper", "--to"])
        .arg(&out_dir)
        .current_dir(sb.tree().join("sub"))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("sub/deeper/note.txt")).unwrap(),
        "deeper note"
    );
    assert!(!out_dir.join("sub/data.bin").exists());
    // `firn ls` from inside the root lists the set it is in.
    let ls = sb
        .command()
        .args(["ls", "--json"])
        .current_dir(sb.tree().join("sub"))
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(3), "{rows}");
}

#[test]
fn a_path_in_no_known_set_is_one_line_naming_it_for_the_command_run() {
    let sb = backed_up();
    let elsewhere = sb.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let stray = elsewhere.join("x.txt");
    std::fs::write(&stray, "x").unwrap();
    for command in ["restore", "delete"] {
        let out = sb
            .command()
            .arg(command)
            .arg(&stray)
            .current_dir(sb.path())
            .output()
            .unwrap();
        let err = one_line_error(&out);
        assert!(
            err.contains(&stray.display().to_string()) && err.contains("in no backup set"),
            "{command}: {err}"
        );
        assert!(
            !err.contains("firn backup ROOT"),
            "not the backup hint: {err}"
        );
    }
    // A command that needs a set, run from nowhere near one, says so too.
    let out = sb
        .command()
        .arg("ls")
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the current directory is in no backup set"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.records().len(), 3, "nothing deleted");
}

fn many_small_files(sb: &Sandbox, n: usize) {
    for i in 0..n {
        sb.write(format!("d{}/f{i}.txt", i % 20), format!("file {i}"));
    }
}

#[test]
fn a_terminal_gets_one_live_line_and_no_line_per_file() {
    let sb = Sandbox::in_memory();
    many_small_files(&sb, 2_000);
    let mut cmd = sb.command();
    cmd.arg("backup").arg(sb.tree());
    let mut pty = Pty::spawn(cmd, 30, 120);
    let status = pty.wait_exit(Duration::from_secs(120));
    assert!(status.success(), "{}", pty.screen());
    let raw = String::from_utf8_lossy(&pty.raw()).into_owned();
    assert!(!raw.contains("uploaded: "), "no per-file lines without -v");
    assert!(
        raw.contains("/2,000 files"),
        "the live line counts files done of the total: {raw:.2000}"
    );
    let screen = pty.screen();
    assert!(
        screen.contains("backup: 2,000 files uploaded"),
        "the summary stays: {screen}"
    );
    assert!(
        !screen.contains("/2,000 files"),
        "the live line is cleared at the end: {screen}"
    );
}

#[test]
fn without_a_terminal_nothing_animates_and_v_lists_each_file() {
    let sb = Sandbox::in_memory();
    many_small_files(&sb, 50);
    let out = sb.firn(["backup", sb.tree().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out) + &stderr(&out);
    assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
    assert!(!text.contains("uploaded: "), "{text}");
    assert!(text.contains("backup: 50 files uploaded"), "{text}");
    sb.write("d0/extra.txt", "one more");
    let out = sb.firn(["backup", "-v", sb.tree().to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("uploaded: ")).count(),
        1,
        "{text}"
    );
    assert!(text.contains("uploaded: d0/extra.txt"), "{text}");
}

#[test]
fn a_busy_set_names_its_holder_with_a_local_time() {
    let sb = Sandbox::new();
    sb.write("a.txt", "a");
    let (set_id, state_dir) = sb.adhoc_set();
    let _held = firn::lock::SetLock::acquire(&state_dir, &set_id, "backup").unwrap();
    let out = sb.firn(["backup", sb.tree().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(!err.contains("unix time"), "{err}");
    let year = firn::fmt::format_time(firn::model::now_secs());
    assert!(
        err.contains(&format!("since {}", &year[..10])),
        "a date and time as people read them: {err}"
    );
}

#[test]
fn help_says_what_each_exit_code_means() {
    let sb = Sandbox::new();
    let out = sb.firn(["--help"]);
    assert_exit(&out, 0);
    let help = stdout(&out);
    for code in [
        "0 all done",
        "1 done, but files failed",
        "2 usage or configuration error",
        "3 backup set busy",
        "4 the store, catalog or network failed",
        "5 over a spending limit",
    ] {
        assert!(help.contains(code), "{code}: {help}");
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_printing_not_the_command() {
    // `firn ls | head -1` and `firn backup -v | head -1`: the pipe closes after
    // one line; firn neither panics nor fails, and the backup still finishes.
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let sb = Sandbox::new();
    many_small_files(&sb, 400);
    let tree = sb.tree().display().to_string();
    let first_line_then_close = |args: &[&str]| {
        let mut child = sb
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        drop(out);
        let done = child.wait_with_output().unwrap();
        (
            line,
            done.status.code(),
            String::from_utf8_lossy(&done.stderr).into_owned(),
        )
    };
    let (line, code, err) = first_line_then_close(&["backup", "-v", &tree]);
    assert!(
        line.contains("ad-hoc set"),
        "the header comes first: {line}"
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert_eq!(sb.records().len(), 400, "the backup went on to its end");
    let (line, code, err) = first_line_then_close(&["ls", "--root", &tree, "--all"]);
    assert!(!line.is_empty());
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}
