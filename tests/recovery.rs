//! The catalog survives its own loss: on DynamoDB, `firn init` turns on the
//! table's point-in-time recovery (shown in the plan first, with a flag to leave
//! it off); catalog snapshots in the store (below) cover every backend.

mod common;

use common::aws::{FakeCloud, aws_env, sdk_config};
use common::{Sandbox, stderr, stdout};

fn dynamo_sandbox(table: &str) -> Sandbox {
    let sb = Sandbox::new();
    let config = sb.path().join("config/firn/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "[sets.s]\nroot = {:?}\ncatalog = {{ kind = \"dynamodb\", table = \"{table}\" }}\n",
            sb.tree()
        ),
    )
    .unwrap();
    sb
}

fn firn(sb: &Sandbox, cloud: &FakeCloud, args: &[&str]) -> std::process::Output {
    let mut cmd = sb.command();
    for (k, v) in aws_env(&cloud.endpoint) {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("run firn")
}

fn recovery_on(cloud: &FakeCloud, table: &str) -> bool {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = aws_sdk_dynamodb::Client::new(&sdk_config(&cloud.endpoint).await);
        firn::catalog::dynamodb::point_in_time_recovery(&client, table)
            .await
            .unwrap()
    })
}

#[test]
fn init_turns_on_point_in_time_recovery_for_a_dynamodb_catalog_unless_told_not_to() {
    let cloud = FakeCloud::start();
    let sb = dynamo_sandbox("cat");
    // The plan says so before anything is created.
    let plan = firn(&sb, &cloud, &["init", "--set", "s"]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "no terminal to ask: {}",
        stderr(&plan)
    );
    assert!(
        stdout(&plan).contains("turn on point-in-time recovery"),
        "{}",
        stdout(&plan)
    );
    let out = firn(&sb, &cloud, &["init", "--set", "s", "--yes"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(recovery_on(&cloud, "cat"));
    let again = firn(&sb, &cloud, &["init", "--set", "s", "--yes"]);
    assert!(
        stdout(&again).contains("exists: point-in-time recovery"),
        "{}",
        stdout(&again)
    );
    assert!(
        stdout(&again).contains("nothing to create"),
        "{}",
        stdout(&again)
    );

    let other = dynamo_sandbox("cat-without");
    let out = firn(
        &other,
        &cloud,
        &["init", "--set", "s", "--yes", "--no-point-in-time-recovery"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!stdout(&out).contains("point-in-time"), "{}", stdout(&out));
    assert!(!recovery_on(&cloud, "cat-without"));
}
