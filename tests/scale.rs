//! A second backup of an unchanged 200,000-file tree reads no file content: the
//! counters in the `--json` summary prove it.

mod common;

use common::Sandbox;

#[test]
fn an_unchanged_200k_file_tree_is_not_read_again() {
    let files: usize = std::env::var("FIRN_SCALE_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let sb = Sandbox::in_memory();
    for i in 0..files {
        let dir = sb
            .tree()
            .join(format!("d{:03}/e{:02}", i % 500, i / 500 % 20));
        if i < 10_000 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("f{i}.dat")), i.to_le_bytes()).unwrap();
    }

    let (code, first) = sb.backup_json(&["--concurrency", "8"]);
    assert_eq!(code, Some(0), "{first}");
    assert_eq!(first["uploaded_files"], files);
    assert!(
        first["files_read"].as_u64().unwrap() >= files as u64,
        "the first backup reads every file: {first}"
    );

    let (code, second) = sb.backup_json(&[]);
    assert_eq!(code, Some(0), "{second}");
    assert_eq!(second["pending_files"], 0, "{second}");
    assert_eq!(second["uploaded_files"], 0);
    assert_eq!(
        second["files_read"], 0,
        "no file opened for reading: {second}"
    );
    assert_eq!(second["bytes_read"], 0, "no byte of content read: {second}");
}
