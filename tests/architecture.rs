//! The shape the crate docs promise, checked on the sources: the front ends
//! never take the set's lock, run the recovery or store the catalog's snapshot
//! themselves (the engine's jobs do: invariant 13 of the design), never reach
//! the store, the catalog or the local state but through the engine, and every
//! command's arguments live in its own file.

use std::path::Path;

/// Every line of the Rust files under `dir` (path, line number, text).
fn lines_under(dir: &str) -> Vec<(String, usize, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(&root) {
        let entry = entry.unwrap();
        if entry.path().extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            out.push((entry.path().display().to_string(), n + 1, line.to_string()));
        }
    }
    out
}

#[test]
fn front_ends_hold_no_workflow_step_of_their_own() {
    let forbidden = [
        "SetLock",
        ".recover(",
        "snapshot_if_due",
        "after_run(",
        "finish_interrupted_deletions",
        "crate::store::",
        "crate::catalog::",
        "crate::state::",
        "crate::backend::open",
    ];
    let mut found = Vec::new();
    for dir in ["src/cli", "src/tui"] {
        for (path, n, line) in lines_under(dir) {
            if forbidden.iter().any(|f| line.contains(f)) {
                found.push(format!("{path}:{n}: {}", line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "front ends doing the engine's work:\n{}",
        found.join("\n")
    );
}

#[test]
fn each_command_owns_its_arguments() {
    // The CLI's module names the commands; their flags are in the commands' files.
    let flags: Vec<_> = lines_under("src/cli")
        .into_iter()
        .filter(|(path, _, line)| path.ends_with("cli/mod.rs") && line.contains("#[arg("))
        .collect();
    // The global ones only: -v and the UI's ROOT (no #[arg]) and the set's.
    assert!(
        flags.len() <= 1,
        "flags of commands in cli/mod.rs: {flags:?}"
    );
}
