//! `firn schedule`, `firn completions` and `firn man`, run as a person would:
//! the units it writes pass `systemd-analyze verify` and their ExecStart backs
//! the set up (a busy set counting as success), the crontab line passes Debian
//! cron's own check (`crontab -n`) and runs under /bin/sh as cron runs it, removal
//! leaves the directory as it was, a dry run writes nothing; the bash completion
//! script completes firn's commands in bash, and the manual pages render and
//! list every command. systemd-analyze, crontab, man and groff are installed by
//! tests/run.sh; a test that needs one fails when it is missing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use clap::CommandFactory;
use common::pty::Pty;
use common::{Sandbox, assert_exit, one_line_error, stderr, stdout};
use sha1::Digest;

/// A set name systemd, cron and the shell would each misread unquoted.
const AWKWARD: &str = "photos 100% \"raw\" $HOME; it's";

/// A tool the test needs, or a failure that says how to get it.
fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .expect("run sh");
    assert!(
        found.status.success(),
        "{name} is missing: `bash tests/run.sh` installs it (Debian: systemd, cron, man-db, groff-base)"
    );
    Command::new(name)
}

/// A sandbox whose config names one set, `name`, rooted at its tree, with a
/// file to back up; its data directory has a space, `%` and `$` in its name.
fn sandbox_with_set(name: &str) -> (Sandbox, PathBuf) {
    let sb = Sandbox::new();
    sb.write("a.txt", "nightly");
    sb.write_config_text(&format!(
        "[sets.{}]\nroot = {:?}\n",
        toml_key(name),
        sb.tree()
    ));
    let data = sb.path().join("state 100% $x");
    (sb, data)
}

fn toml_key(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

fn firn(sb: &Sandbox, data: &Path, args: &[&str]) -> Output {
    sb.command()
        .env("FIRN_DATA_DIR", data)
        .args(args)
        .output()
        .expect("run firn")
}

/// The directory of a configured set's local state (where its lock is).
fn state_dir(data: &Path, set_id: &str) -> PathBuf {
    data.join("sets")
        .join(&hex::encode(sha1::Sha1::digest(set_id.as_bytes()))[..16])
}

/// Files in `dir` and their contents.
fn listing(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read file"),
            )
        })
        .collect()
}

fn units_in(dir: &Path) -> (PathBuf, PathBuf) {
    let mut service = None;
    let mut timer = None;
    for name in listing(dir).keys() {
        if name.starts_with("firn-backup-") && name.ends_with(".service") {
            service = Some(dir.join(name));
        } else if name.starts_with("firn-backup-") && name.ends_with(".timer") {
            timer = Some(dir.join(name));
        }
    }
    (
        service.expect("a service was written"),
        timer.expect("a timer was written"),
    )
}

/// `systemd-analyze verify` of the units, for the machine's or a user's
/// manager: it must pass with nothing to say (a warning is a failure too).
fn verify(units: &[&Path], user: bool) {
    let runtime = tempfile::tempdir().expect("runtime dir");
    let mut cmd = tool("systemd-analyze");
    if user {
        cmd.arg("--user").env("XDG_RUNTIME_DIR", runtime.path());
    }
    let out = cmd
        .arg("verify")
        .args(units)
        .output()
        .expect("run systemd-analyze");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze{} verify: {}{}",
        if user { " --user" } else { "" },
        stdout(&out),
        stderr(&out)
    );
}

/// The words of a unit's `KEY=` line as systemd reads them: double-quoted
/// words with C escapes, `%%` for a literal `%`, and in `ExecStart=` `$$` for
/// a literal `$` (`Environment=` expands no variables).
fn unit_words(unit: &str, key: &str) -> Vec<String> {
    let dollars = key == "ExecStart";
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {unit}"));
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next().expect("closing quote") {
                    '"' => break,
                    '\\' => match chars.next().expect("escape") {
                        'x' => {
                            let hex: String = chars.by_ref().take(2).collect();
                            word.push(u8::from_str_radix(&hex, 16).expect("hex") as char);
                        }
                        c => word.push(c),
                    },
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(unescape_specials(&word, dollars));
    }
    words
}

/// `%%` and `$$` as systemd reads them; a lone `%` (a specifier) or `$` (a
/// variable) would be expanded, so here it fails the test.
fn unescape_specials(word: &str, dollars: bool) -> String {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c == '%' || (c == '$' && dollars) {
            assert_eq!(
                chars.next(),
                Some(c),
                "a lone {c} systemd would expand: {word}"
            );
        }
        out.push(c);
    }
    out
}

/// The crontab line's command as cron hands it to /bin/sh: after the five time
/// fields, with `\%` turned back into `%`.
fn cron_command(line: &str) -> String {
    let fields: Vec<&str> = line.splitn(6, ' ').collect();
    assert_eq!(fields.len(), 6, "five time fields and a command: {line}");
    fields[5].replace("\\%", "%")
}

/// Runs a command line under /bin/sh with cron's environment: a short PATH,
/// HOME and nothing else.
fn as_cron(command: &str, home: &Path) -> Output {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .output()
        .expect("run sh")
}

fn archived(sb: &Sandbox, data: &Path, set: &str) -> usize {
    let out = firn(sb, data, &["ls", "--set", set, "--json"]);
    assert_exit(&out, 0);
    let doc: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("ls JSON");
    doc.as_array().map(Vec::len).unwrap_or(0)
}

#[test]
fn the_units_pass_systemd_analyze_verify_for_either_manager() {
    let (sb, data) = sandbox_with_set(AWKWARD);
    for (scope, user) in [("--system", false), ("--user", true)] {
        let dir = sb.path().join(format!("units{scope}"));
        let out = firn(
            &sb,
            &data,
            &[
                "schedule",
                "--set",
                AWKWARD,
                scope,
                "--dir",
                dir.to_str().unwrap(),
                "--yes",
            ],
        );
        assert_exit(&out, 0);
        let (service, timer) = units_in(&dir);
        assert_eq!(listing(&dir).len(), 2, "the service and the timer only");
        let name = service.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "a unit name systemd needs no escape for: {name}"
        );
        verify(&[&timer, &service], user);
        let text = std::fs::read_to_string(&timer).unwrap();
        assert!(text.contains("\nOnCalendar=*-*-* 02:30:00\n"), "{text}");
        assert!(text.contains("\nRandomizedDelaySec=30min\n"), "{text}");
        assert!(text.contains("\nPersistent=true\n"), "{text}");
    }

    // An ad-hoc set (named by its root) at another time, with no delay.
    let sb = Sandbox::new();
    let dir = sb.path().join("units");
    let tree = sb.tree();
    let out = sb.firn([
        "schedule",
        tree.to_str().unwrap(),
        "--at",
        "4:05",
        "--random-delay",
        "0",
        "--dir",
        dir.to_str().unwrap(),
        "--yes",
    ]);
    assert_exit(&out, 0);
    let (service, timer) = units_in(&dir);
    verify(&[&timer, &service], false);
    let text = std::fs::read_to_string(&timer).unwrap();
    assert!(text.contains("\nOnCalendar=*-*-* 04:05:00\n"), "{text}");
    assert!(!text.contains("RandomizedDelaySec"), "{text}");
    let exec = unit_words(&std::fs::read_to_string(&service).unwrap(), "ExecStart");
    let root = std::fs::canonicalize(&tree).unwrap();
    assert_eq!(
        exec,
        [env!("CARGO_BIN_EXE_firn"), "backup", root.to_str().unwrap()]
    );
}

#[test]
fn a_busy_set_counts_as_success_for_the_timer_and_for_cron_and_a_failure_does_not() {
    let (sb, data) = sandbox_with_set(AWKWARD);
    let dir = sb.path().join("units");
    let out = firn(
        &sb,
        &data,
        &[
            "schedule",
            "--set",
            AWKWARD,
            "--dir",
            dir.to_str().unwrap(),
            "--yes",
        ],
    );
    assert_exit(&out, 0);
    let service = std::fs::read_to_string(units_in(&dir).0).unwrap();
    let success: Vec<String> = unit_words(&service, "SuccessExitStatus");
    assert_eq!(success, ["3"], "{service}");
    let exec = unit_words(&service, "ExecStart");
    let environment = unit_words(&service, "Environment");
    let config = sb.config_path();
    assert_eq!(
        exec,
        [
            env!("CARGO_BIN_EXE_firn"),
            "backup",
            "--set",
            AWKWARD,
            "--config",
            config.to_str().unwrap()
        ]
    );
    assert_eq!(environment, [format!("FIRN_DATA_DIR={}", data.display())]);
    // The service's command as systemd runs it: without the shell's variables
    // (the config and data directory come from the unit itself).
    let run_service = || {
        let (key, value) = environment[0].split_once('=').unwrap();
        Command::new(&exec[0])
            .args(&exec[1..])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env(key, value)
            .stdin(Stdio::null())
            .output()
            .expect("run the service's command")
    };

    let cron = firn(
        &sb,
        &data,
        &[
            "schedule",
            "--set",
            AWKWARD,
            "--cron",
            "--random-delay",
            "2s",
        ],
    );
    assert_exit(&cron, 0);
    let line = stdout(&cron).trim().to_string();
    assert_eq!(line.lines().count(), 1, "the line alone on stdout: {line}");
    let command = cron_command(&line);
    let check = tool("sh").args(["-n", "-c", &command]).output().unwrap();
    assert!(check.status.success(), "sh -n: {}", stderr(&check));

    // Busy: another process holds the set.
    let held = firn::lock::SetLock::acquire(&state_dir(&data, AWKWARD), AWKWARD, "backup")
        .expect("take the set's lock");
    let out = run_service();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("busy"), "{}", stderr(&out));
    let out = as_cron(&command, sb.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "busy is success: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("busy"),
        "it was busy: {}",
        stderr(&out)
    );
    drop(held);
    assert_eq!(archived(&sb, &data, AWKWARD), 0, "nothing ran while busy");

    // Free: both back the set up.
    let out = as_cron(&command, sb.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(archived(&sb, &data, AWKWARD), 1);
    sb.write("b.txt", "the next night");
    let out = run_service();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(archived(&sb, &data, AWKWARD), 2);

    // A real failure stays one: the root is gone (exit 2).
    std::fs::rename(sb.tree(), sb.path().join("moved")).unwrap();
    let out = as_cron(&command, sb.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(run_service().status.code(), Some(2));
}

#[test]
fn the_crontab_line_passes_crons_own_check_and_installs_and_removes_with_the_printed_commands() {
    let (sb, data) = sandbox_with_set(AWKWARD);
    let out = firn(
        &sb,
        &data,
        &[
            "schedule", "--set", AWKWARD, "--cron", "--at", "23:59", "-v",
        ],
    );
    assert_exit(&out, 0);
    let line = stdout(&out).trim().to_string();
    assert!(line.starts_with("59 23 * * * "), "{line}");
    let file = sb.path().join("crontab");
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let check = tool("crontab").arg("-n").arg(&file).output().unwrap();
    assert!(
        check.status.success(),
        "crontab -n: {}{}",
        stdout(&check),
        stderr(&check)
    );
    // A line cron would refuse is refused by the same check.
    std::fs::write(&file, format!("{}\n", line.replacen("23", "24", 1))).unwrap();
    let check = tool("crontab").arg("-n").arg(&file).output().unwrap();
    assert!(!check.status.success(), "crontab -n accepts hour 24");

    // A stand-in `crontab` keeps the table in a file, so the printed commands
    // run as they would.
    let bin = sb.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let table = sb.path().join("table");
    let fake = bin.join("crontab");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n-l) cat {0} 2>/dev/null || {{ echo 'no crontab' >&2; exit 1; }} ;;\n-) cat > {0}.new && mv {0}.new {0} ;;\n*) exit 2 ;;\nesac\n",
            table.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let with_fake = |command: &str| {
        let out = Command::new("/bin/sh")
            .args(["-c", command])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("FIRN_DATA_DIR", &data)
            .env("XDG_CONFIG_HOME", sb.path().join("config"))
            .env_remove("FIRN_CONFIG")
            .output()
            .expect("run sh");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{command}: {}",
            stderr(&out)
        );
    };
    let other = "0 1 * * * echo another job\n";
    std::fs::write(&table, other).unwrap();
    let install = stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("install it: "))
        .expect("the install command, with -v")
        .to_string();
    with_fake(&install);
    let installed = std::fs::read_to_string(&table).unwrap();
    assert_eq!(installed.lines().count(), 2, "{installed}");
    assert!(installed.starts_with(other), "{installed}");
    let ours = installed.lines().nth(1).unwrap();
    assert_eq!(ours, line, "the same line, at the same time");

    // Another set's line, whose unit name starts with this set's, stays.
    let tag = ours.rsplit_once(" # ").unwrap().1;
    let neighbour = format!("0 4 * * * true # {tag}-2\n");
    std::fs::write(&table, format!("{installed}{neighbour}")).unwrap();
    let removal = firn(
        &sb,
        &data,
        &["schedule", "--set", AWKWARD, "--cron", "--remove"],
    );
    assert_exit(&removal, 0);
    with_fake(stdout(&removal).trim());
    assert_eq!(
        std::fs::read_to_string(&table).unwrap(),
        format!("{other}{neighbour}")
    );
}

#[test]
fn removal_leaves_the_directory_as_it_was_and_touches_no_file_of_anyone_else() {
    let (sb, data) = sandbox_with_set("photos");
    let dir = sb.path().join("units");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("other.service"),
        "[Service]\nExecStart=/bin/true\n",
    )
    .unwrap();
    let before = listing(&dir);
    let d = dir.to_str().unwrap();

    assert_exit(
        &firn(
            &sb,
            &data,
            &["schedule", "--set", "photos", "--dir", d, "--yes"],
        ),
        0,
    );
    let written = listing(&dir);
    assert_eq!(written.len(), before.len() + 2);
    assert!(written.contains_key("firn-backup-photos.service"));
    assert!(written.contains_key("firn-backup-photos.timer"));
    // Writing it again changes nothing; another time replaces the timer.
    assert_exit(
        &firn(
            &sb,
            &data,
            &["schedule", "--set", "photos", "--dir", d, "--yes"],
        ),
        0,
    );
    assert_eq!(listing(&dir), written);
    assert_exit(
        &firn(
            &sb,
            &data,
            &[
                "schedule", "--set", "photos", "--dir", d, "--at", "01:00", "--yes",
            ],
        ),
        0,
    );
    let timer = std::fs::read_to_string(dir.join("firn-backup-photos.timer")).unwrap();
    assert!(timer.contains("OnCalendar=*-*-* 01:00:00"), "{timer}");

    // A dry run of the removal removes nothing.
    let out = firn(
        &sb,
        &data,
        &[
            "schedule",
            "--set",
            "photos",
            "--dir",
            d,
            "--remove",
            "--dry-run",
        ],
    );
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("would delete"), "{}", stdout(&out));
    assert_eq!(listing(&dir).len(), before.len() + 2);

    let out = firn(
        &sb,
        &data,
        &["schedule", "--set", "photos", "--dir", d, "--remove"],
    );
    assert_exit(&out, 0);
    assert_eq!(listing(&dir), before);
    // Again: nothing to remove, and no error.
    let out = firn(
        &sb,
        &data,
        &["schedule", "--set", "photos", "--dir", d, "--remove"],
    );
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("nothing to remove"),
        "{}",
        stdout(&out)
    );

    // A file of the same name that firn did not write is neither replaced nor removed.
    std::fs::write(
        dir.join("firn-backup-photos.timer"),
        "[Timer]\nOnCalendar=daily\n",
    )
    .unwrap();
    let mine = listing(&dir);
    let err = one_line_error(&firn(
        &sb,
        &data,
        &["schedule", "--set", "photos", "--dir", d, "--yes"],
    ));
    assert!(err.contains("not written by firn schedule"), "{err}");
    let err = one_line_error(&firn(
        &sb,
        &data,
        &["schedule", "--set", "photos", "--dir", d, "--remove"],
    ));
    assert!(err.contains("not written by firn schedule"), "{err}");
    assert_eq!(listing(&dir), mine);
}

#[test]
fn a_dry_run_writes_nothing_and_without_a_terminal_it_takes_yes() {
    let (sb, data) = sandbox_with_set("photos");
    let dir = sb.path().join("units");
    let d = dir.to_str().unwrap();
    let out = firn(
        &sb,
        &data,
        &["schedule", "--set", "photos", "--dir", d, "--dry-run"],
    );
    assert_exit(&out, 0);
    let shown = stdout(&out);
    assert!(shown.contains("would write"), "{shown}");
    assert!(
        shown.contains("SuccessExitStatus=3"),
        "the units' text: {shown}"
    );
    assert!(shown.contains("OnCalendar="), "{shown}");
    assert!(!dir.exists(), "a dry run creates nothing");

    // No terminal, no --yes: one line naming the flag, nothing written.
    let err = one_line_error(&firn(
        &sb,
        &data,
        &["schedule", "--set", "photos", "--dir", d],
    ));
    assert!(err.contains("--yes"), "{err}");
    assert!(!dir.exists());

    // Bad times and delays are usage errors.
    for bad in [["--at", "25:00"], ["--random-delay", "1d"]] {
        let out = firn(
            &sb,
            &data,
            &["schedule", "--set", "photos", "--dir", d, bad[0], bad[1]],
        );
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
    assert!(!dir.exists());
}

#[test]
fn on_a_terminal_it_shows_the_units_and_asks_first() {
    let (sb, data) = sandbox_with_set("photos");
    let dir = sb.path().join("units");
    for (answer, writes) in [("n", false), ("y", true)] {
        let mut cmd = sb.command();
        cmd.env("FIRN_DATA_DIR", &data).args([
            "schedule",
            "--set",
            "photos",
            "--dir",
            dir.to_str().unwrap(),
        ]);
        let mut pty = Pty::spawn(cmd, 60, 160);
        let screen = pty.wait_for("the question", Duration::from_secs(30), |s| {
            s.contains("Write these? [y/N]")
        });
        assert!(screen.contains("OnCalendar=*-*-* 02:30:00"), "{screen}");
        assert!(screen.contains("SuccessExitStatus=3"), "{screen}");
        assert!(!dir.exists(), "nothing written before the answer");
        pty.send(&format!("{answer}\r"));
        assert!(
            pty.wait_exit(Duration::from_secs(30)).success(),
            "{}",
            pty.screen()
        );
        assert_eq!(
            dir.join("firn-backup-photos.timer").exists(),
            writes,
            "{}",
            pty.screen()
        );
        if !writes {
            assert!(pty.screen().contains("nothing written"), "{}", pty.screen());
        }
    }
}

#[test]
fn without_dir_or_cron_it_uses_systemd_when_it_runs_and_prints_the_crontab_line_when_not() {
    let (sb, data) = sandbox_with_set("photos");
    let out = firn(
        &sb,
        &data,
        &["schedule", "--set", "photos", "--user", "--dry-run"],
    );
    assert_exit(&out, 0);
    let (shown, said) = (stdout(&out), stderr(&out));
    if Path::new("/run/systemd/system").is_dir() {
        let dir = sb.path().join("config/systemd/user");
        assert!(
            shown.contains(&format!(
                "would write {}/firn-backup-photos.service",
                dir.display()
            )),
            "{shown}"
        );
        assert!(
            shown.contains("would run: systemctl --user enable --now firn-backup-photos.timer"),
            "{shown}"
        );
        assert!(!dir.exists(), "a dry run writes nothing");
    } else {
        assert!(said.contains("systemd is not running here"), "{said}");
        assert!(said.contains("| crontab -"), "how to install it: {said}");
        assert!(shown.starts_with("30 2 * * * "), "{shown}");
        assert!(
            shown.trim_end().ends_with("# firn-backup-photos"),
            "{shown}"
        );
        assert!(!sb.path().join("config/systemd").exists());
    }
}

/// Every command's name, as `firn-catalog-rebuild`, from the clap definitions.
fn page_names(command: &clap::Command, parent: Option<&str>, names: &mut Vec<String>) {
    let name = match parent {
        Some(parent) => format!("{parent}-{}", command.get_name()),
        None => command.get_name().to_string(),
    };
    for sub in command.get_subcommands() {
        if sub.get_name() != "help" {
            page_names(sub, Some(&name), names);
        }
    }
    names.push(name);
}

fn subcommands() -> Vec<String> {
    firn::cli::Cli::command()
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect()
}

#[test]
fn bash_completion_loads_and_completes_commands_and_flags() {
    let sb = Sandbox::new();
    let out = sb.firn(["completions", "bash"]);
    assert_exit(&out, 0);
    let script = sb.path().join("firn.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // Completes as bash does: COMP_WORDS, COMP_CWORD, then the function that
    // `complete` registered for firn.
    let complete = |words: &[&str]| -> Vec<String> {
        let cword = words.len() - 1;
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "source {script:?} || exit 9\n\
             spec=$(complete -p firn) || exit 8\n\
             fn=${{spec##*-F }}; fn=${{fn%% *}}\n\
             COMP_WORDS=({words}); COMP_CWORD={cword}\n\
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}\n\
             \"$fn\" firn \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script = script.display().to_string(),
            words = quoted.join(" "),
        );
        let out = tool("bash")
            .args(["--norc", "-c", &program])
            .output()
            .unwrap();
        assert!(out.status.success(), "{words:?}: {}", stderr(&out));
        stdout(&out).lines().map(str::to_string).collect()
    };
    let spec = tool("bash")
        .args([
            "--norc",
            "-c",
            &format!(
                "source {:?} && complete -p firn",
                script.display().to_string()
            ),
        ])
        .output()
        .unwrap();
    assert!(stdout(&spec).contains("-F _firn"), "{}", stdout(&spec));

    let all = complete(&["firn", ""]);
    for name in subcommands() {
        assert!(all.contains(&name), "{name} in {all:?}");
    }
    assert_eq!(complete(&["firn", "sch"]), ["schedule"]);
    assert_eq!(complete(&["firn", "comp"]), ["completions"]);
    let mut catalog = complete(&["firn", "catalog", "re"]);
    catalog.sort();
    assert_eq!(catalog, ["rebuild", "release"]);
    assert_eq!(
        complete(&["firn", "schedule", "--rand"]),
        ["--random-delay"]
    );
    let shells = complete(&["firn", "completions", ""]);
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(shells.contains(&shell.to_string()), "{shell} in {shells:?}");
    }

    // The other shells get scripts that know every command too.
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = sb.firn(["completions", shell]);
        assert_exit(&out, 0);
        let text = stdout(&out);
        for name in subcommands() {
            assert!(text.contains(&name), "{shell}: {name}");
        }
    }
    let out = sb.firn(["completions", "tcsh"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("tcsh"), "{}", stderr(&out));
}

#[test]
fn the_manual_pages_render_and_list_every_command() {
    let sb = Sandbox::new();
    let dir = sb.path().join("man/man1");
    let out = sb.firn(["man", "--dir", dir.to_str().unwrap()]);
    assert_exit(&out, 0);
    let mut expected = Vec::new();
    page_names(&firn::cli::Cli::command(), None, &mut expected);
    let mut written: Vec<String> = listing(&dir).into_keys().collect();
    written.sort();
    let mut wanted: Vec<String> = expected.iter().map(|n| format!("{n}.1")).collect();
    wanted.sort();
    assert_eq!(written, wanted);
    assert!(
        stdout(&out).contains(&format!("wrote {} manual pages", wanted.len())),
        "{}",
        stdout(&out)
    );

    let render = |page: &Path| -> String {
        let out = tool("man")
            .arg("-l")
            .arg(page)
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "man -l {}: {}",
            page.display(),
            stderr(&out)
        );
        // groff's own check, warnings on.
        let groff = tool("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(page)
            .output()
            .unwrap();
        assert!(
            groff.status.success() && groff.stderr.is_empty(),
            "groff {}: {}",
            page.display(),
            stderr(&groff)
        );
        stdout(&out)
    };
    let top = render(&dir.join("firn.1"));
    for name in subcommands().iter().filter(|n| *n != "help") {
        assert!(top.contains(&format!("firn-{name}(1)")), "{name}: {top}");
    }
    // man justifies lines: compare words, not spaces.
    let words = top.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("Exit codes: 0 all done;"), "{top}");
    let schedule = render(&dir.join("firn-schedule.1"));
    for flag in [
        "--at",
        "--random-delay",
        "--remove",
        "--cron",
        "--dir",
        "--dry-run",
    ] {
        assert!(schedule.contains(flag), "{flag}: {schedule}");
    }
    for name in &expected {
        render(&dir.join(format!("{name}.1")));
    }

    // Without --dir: firn.1 on stdout.
    let out = sb.firn(["man"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains(".TH firn 1"), "{}", stdout(&out));
}
