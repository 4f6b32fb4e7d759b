//! No ceiling on versions: a file with 5,000 superseded versions in a DynamoDB
//! catalog (an item holds at most 400 KB, so versions are items of their own) is
//! backed up again, listed, restored by its oldest version, and pruned.

mod common;

use common::aws::{FakeCloud, aws_env};
use common::{Sandbox, stderr, stdout};
use firn::catalog::dynamodb::{DynamoCatalog, DynamoSettings};
use firn::catalog::{ArchiveRecord, ArchiveState, Catalog};

const VERSIONS: usize = 5_000;

fn firn(sb: &Sandbox, cloud: &FakeCloud, args: &[&str]) -> std::process::Output {
    let mut cmd = sb.command();
    for (k, v) in aws_env(&cloud.endpoint) {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().expect("run firn");
    assert!(
        out.status.success(),
        "firn {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

fn json(sb: &Sandbox, cloud: &FakeCloud, args: &[&str]) -> serde_json::Value {
    let out = firn(sb, cloud, args);
    let text = stdout(&out);
    serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap()
}

#[test]
fn a_file_with_five_thousand_superseded_versions_keeps_working() {
    let sb = Sandbox::in_memory();
    let cloud = FakeCloud::start();
    let config = sb.path().join("config/firn/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "[sets.s]\nroot = {:?}\nretention = \"keep\"\ncatalog = {{ kind = \"dynamodb\", table = \"firn-versions\" }}\n",
            sb.tree()
        ),
    )
    .unwrap();
    firn(&sb, &cloud, &["init", "--set", "s", "--yes"]);

    sb.write("doc.txt", "the oldest version");
    firn(&sb, &cloud, &["backup", "--set", "s"]);
    let oldest = json(&sb, &cloud, &["ls", "--set", "s", "--json"])[0].clone();
    sb.write("doc.txt", "the second version, longer");
    firn(&sb, &cloud, &["backup", "--set", "s"]);

    // 4,999 more superseded versions, as years of nightly changes under
    // `retention = "keep"` would leave (their archives long gone from the store).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (k, v) in aws_env(&cloud.endpoint) {
            // SAFETY: nextest runs each test in its own process, before any other
            // thread reads the environment.
            unsafe { std::env::set_var(k, v) };
        }
        let settings = DynamoSettings {
            table: "firn-versions".into(),
            region: Some("us-east-1".into()),
            profile: None,
            endpoint_url: Some(cloud.endpoint.clone()),
        };
        let catalog = DynamoCatalog::connect(&settings, "s").await.unwrap();
        let base = oldest["uploaded_at"].as_i64().unwrap();
        let target = oldest["target"].as_str().unwrap().to_string();
        let versions: Vec<ArchiveRecord> = (1..VERSIONS)
            .map(|n| ArchiveRecord {
                key: "doc.txt".into(),
                raw: None,
                size: 10,
                mtime_ns: n as i64,
                sha1: [7; 20],
                tree_hash: [8; 32],
                archive_id: format!("{n:032x}"),
                target: target.clone(),
                uploaded_at: base + 1,
                state: ArchiveState::Superseded,
                host: "other".into(),
                superseded_at: Some(base + 2),
                pack: None,
            })
            .collect();
        catalog.import(&versions).await.unwrap();
    });

    // Backed up again: one more version, no item-size ceiling in the way.
    sb.write("doc.txt", "the newest version of all");
    let backup = json(&sb, &cloud, &["backup", "--set", "s", "--json"]);
    assert_eq!(backup["uploaded_files"], 1, "{backup}");
    let all = json(&sb, &cloud, &["ls", "--set", "s", "--all", "--json"]);
    let rows = all.as_array().unwrap();
    assert_eq!(rows.len(), VERSIONS + 2, "every version is listed");
    assert_eq!(
        rows.iter().filter(|r| r["state"] == "superseded").count(),
        VERSIONS + 1
    );

    // The oldest version comes back by its archive id.
    let to = sb.path().join("out");
    firn(
        &sb,
        &cloud,
        &[
            "restore",
            "--set",
            "s",
            "--archive",
            oldest["archive_id"].as_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(to.join("doc.txt")).unwrap(),
        "the oldest version"
    );

    // Pruned: every superseded version goes, the current one stays.
    let pruned = json(&sb, &cloud, &["prune", "--set", "s", "--yes", "--json"]);
    assert_eq!(
        pruned["deleted"],
        (VERSIONS + 1) as u64,
        "{}",
        pruned["failed"]
    );
    let left = json(&sb, &cloud, &["ls", "--set", "s", "--all", "--json"]);
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left[0]["state"], "current");
}
