//! Restore on the embedded default: jobs persisted and reused, a download killed
//! half-way and continued, existing files never overwritten without consent,
//! symlinks in the destination never followed.

mod common;

use std::os::unix::fs::MetadataExt;

use common::{Sandbox, one_line_error, pattern, stderr, stdout};

/// A set `s` on the sandbox tree whose retrieval jobs take `delay` seconds.
fn configure(sb: &Sandbox, delay: u64) {
    sb.write_config(&format!(
        "store = {{ kind = \"local\", retrieval_delay_secs = {delay} }}\n"
    ));
}

fn partials(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default()
}

/// Backs the tree up, then restores it into `to` with a crash injected right after
/// the first range reached the temporary file.
fn backup_then_crash_restoring(sb: &Sandbox, to: &str) {
    sb.back_up_set(&[]);
    let out = sb
        .command()
        .args(["restore", "--set", "s", "--to", to])
        .env("FIRN_FAULT", "during-download")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the injected crash happened");
    assert!(stderr(&out).contains("injected crash"), "{}", stderr(&out));
}

#[test]
fn a_download_killed_half_way_continues_with_the_same_job() {
    let sb = Sandbox::in_memory();
    configure(&sb, 0);
    // 40 MiB: two whole 16 MiB ranges and a short one.
    let content = pattern(40 << 20, 1);
    let file = sb.write("vm/disk.img", &content);
    let mtime_ns = std::fs::metadata(&file).unwrap().mtime_nsec();
    let out_dir = sb.path().join("out");
    let to = out_dir.to_str().unwrap();
    backup_then_crash_restoring(&sb, to);
    let target = out_dir.join("vm/disk.img");
    assert!(!target.exists(), "nothing renamed into place");
    let left = partials(&out_dir.join("vm"));
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(std::fs::metadata(&left[0]).unwrap().len(), 16 << 20);
    assert_eq!(sb.job_files(), 1);

    let out = sb.firn(["restore", "--set", "s", "--to", to]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("continued after 16.0 MiB"),
        "{}",
        stdout(&out)
    );
    assert_eq!(sb.job_files(), 1, "no new retrieval job was requested");
    assert!(std::fs::read(&target).unwrap() == content, "bytes differ");
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(meta.mtime_nsec(), mtime_ns);
    assert!(partials(&out_dir.join("vm")).is_empty());
    // The job is done with: nothing pending any more.
    let out = sb.firn(["jobs", "--set", "s"]);
    assert!(
        stdout(&out).contains("no retrieval jobs pending"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_corrupt_leftover_is_caught_by_the_final_check_and_the_rerun_succeeds() {
    let sb = Sandbox::in_memory();
    configure(&sb, 0);
    let content = pattern(20 << 20, 2);
    sb.write("big.bin", &content);
    let out_dir = sb.path().join("out");
    let to = out_dir.to_str().unwrap();
    backup_then_crash_restoring(&sb, to);
    // Damage what the crashed run left behind.
    let partial = partials(&out_dir).pop().expect("a temporary file");
    let mut bytes = std::fs::read(&partial).unwrap();
    bytes[12345] ^= 0x01;
    std::fs::write(&partial, &bytes).unwrap();

    let out = sb.firn(["restore", "--set", "s", "--to", to]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("tree hash"), "{}", stdout(&out));
    assert!(
        !out_dir.join("big.bin").exists(),
        "never renamed into place"
    );
    assert!(
        partials(&out_dir).is_empty(),
        "the bad bytes were discarded"
    );

    let out = sb.firn(["restore", "--set", "s", "--to", to]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(std::fs::read(out_dir.join("big.bin")).unwrap() == content);
    assert_eq!(sb.job_files(), 1, "the same job served all three runs");
}

#[test]
fn existing_files_are_kept_unless_overwrite_and_identical_ones_skipped() {
    let sb = Sandbox::in_memory();
    configure(&sb, 0);
    sb.write("same.txt", "same content");
    sb.write("other.txt", "archived content");
    sb.back_up_set(&[]);
    let out_dir = sb.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("same.txt"), "same content").unwrap();
    std::fs::write(out_dir.join("other.txt"), "local edits").unwrap();
    let to = out_dir.to_str().unwrap();

    let out = sb.firn(["restore", "--set", "s", "--to", to]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("identical, skipped"), "{text}");
    assert!(
        text.contains("other.txt exists with other content; pass --overwrite"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("other.txt")).unwrap(),
        "local edits"
    );
    assert_eq!(sb.job_files(), 0, "nothing was requested for refused files");

    let out = sb.firn(["restore", "--set", "s", "--to", to, "--overwrite"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("other.txt")).unwrap(),
        "archived content"
    );
}

#[test]
fn a_symlink_in_the_destination_is_never_followed() {
    let sb = Sandbox::in_memory();
    configure(&sb, 0);
    sb.write("sub/file.txt", "inside");
    sb.back_up_set(&[]);
    let out_dir = sb.path().join("out");
    let outside = sb.path().join("outside");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, out_dir.join("sub")).unwrap();

    let out = sb.firn(["restore", "--set", "s", "--to", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("refusing to restore through symbolic link"),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn pending_jobs_are_listed_with_tier_window_and_expiry_and_reused() {
    let sb = Sandbox::in_memory();
    // Files up to 4 bytes in packs: a.txt (and the empty file) in a pack,
    // b/c.txt alone; a job each.
    sb.write_config(
        "pack_threshold = 4\nstore = { kind = \"local\", retrieval_delay_secs = 3600 }\n",
    );
    sb.write("a.txt", "slow");
    sb.write("b/c.txt", "slower");
    sb.write("empty", "");
    sb.back_up_set(&[]);
    let out_dir = sb.path().join("out");
    let to = out_dir.to_str().unwrap();
    let out = sb.firn([
        "restore",
        "--set",
        "s",
        "--to",
        to,
        "--tier",
        "bulk",
        "--no-wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("waiting: a.txt"), "{text}");
    assert!(text.contains("waiting: b/c.txt"), "{text}");
    // An empty file needs no job at all.
    assert!(
        text.contains("restored:") && out_dir.join("empty").exists(),
        "{text}"
    );
    assert_eq!(
        sb.job_files(),
        2,
        "one job per archive: the pack and b/c.txt's"
    );

    let out = sb.firn(["jobs", "--set", "s", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    for job in jobs {
        assert_eq!(job["tier"], "bulk");
        assert_eq!(job["state"], "in-progress");
        assert_eq!(job["expected_from"], 3600);
        let requested = job["requested_at"].as_i64().unwrap();
        assert_eq!(
            job["expires_at"].as_i64().unwrap(),
            requested + 3600 + 86_400
        );
    }
    let out = sb.firn(["jobs", "--set", "s"]);
    assert!(stdout(&out).contains("bulk"), "{}", stdout(&out));

    // A second request for the same archives reuses the jobs.
    let out = sb.firn(["restore", "--set", "s", "--to", to, "--no-wait"]);
    assert!(out.status.success());
    assert_eq!(sb.job_files(), 2);
}

#[test]
fn a_superseded_version_restores_by_archive_id() {
    let sb = Sandbox::in_memory();
    configure(&sb, 0);
    let path = sb.write("notes.txt", "first draft");
    sb.back_up_set(&["--retention", "keep"]);
    std::fs::write(&path, "second draft, longer").unwrap();
    sb.back_up_set(&["--retention", "keep"]);
    let (_, listing) = sb.firn_json(["ls", "--set", "s", "--all", "--json"]);
    let old = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] == "superseded")
        .unwrap_or_else(|| panic!("no superseded version in {listing}"));
    let id = old["archive_id"].as_str().unwrap();
    let out_dir = sb.path().join("old");
    let out = sb.firn([
        "restore",
        "--set",
        "s",
        "--archive",
        id,
        "--to",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("notes.txt")).unwrap(),
        "first draft"
    );
    let nowhere = sb.path().join("not made");
    let out = sb.firn([
        "restore",
        "--set",
        "s",
        "--archive",
        "feedbeef",
        "--to",
        nowhere.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no archive feedbeef"),
        "{}",
        stderr(&out)
    );
    assert!(!nowhere.exists(), "a refused restore creates nothing");
}

#[test]
fn a_destination_that_is_not_a_directory_is_one_line_and_requests_nothing() {
    let sb = Sandbox::in_memory();
    configure(&sb, 0);
    sb.write("a.txt", "a");
    sb.back_up_set(&[]);
    let file = sb.path().join("a-file");
    std::fs::write(&file, "in the way").unwrap();
    let out = sb.firn(["restore", "--set", "s", "--to", file.to_str().unwrap()]);
    let err = one_line_error(&out);
    assert!(err.contains("as the destination"), "{err}");
    assert_eq!(sb.job_files(), 0);
}

#[test]
fn without_to_files_go_back_into_the_root_and_local_edits_are_kept() {
    let sb = Sandbox::in_memory();
    configure(&sb, 0);
    sb.write("gone.txt", "archived");
    let edited = sb.write("edited.txt", "archived version");
    sb.back_up_set(&[]);
    std::fs::remove_file(sb.tree().join("gone.txt")).unwrap();
    std::fs::write(&edited, "edited since").unwrap();
    let out = sb.firn(["restore", "--set", "s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        std::fs::read_to_string(sb.tree().join("gone.txt")).unwrap(),
        "archived"
    );
    assert_eq!(std::fs::read_to_string(&edited).unwrap(), "edited since");
    assert!(
        stdout(&out).contains("pass --overwrite"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn ctrl_c_while_waiting_keeps_the_job_for_the_next_run() {
    let sb = Sandbox::in_memory();
    configure(&sb, 3);
    sb.write("slow.txt", "worth the wait");
    sb.back_up_set(&[]);
    let out_dir = sb.path().join("out");
    let to = out_dir.to_str().unwrap();
    let child = sb
        .command()
        .args(["restore", "--set", "s", "--to", to])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while sb.job_files() == 0 {
        assert!(started.elapsed().as_secs() < 30, "no job was requested");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("failed: slow.txt: cancelled"),
        "{}",
        stdout(&out)
    );
    assert!(!out_dir.join("slow.txt").exists());

    let out = sb.firn(["restore", "--set", "s", "--to", to]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("slow.txt")).unwrap(),
        "worth the wait"
    );
    assert_eq!(sb.job_files(), 1, "the interrupted run's job was reused");
}
