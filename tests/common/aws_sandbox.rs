//! A sandbox whose set `s` talks to an AWS stand-in: the config written once, and
//! every run of firn given the AWS environment of the endpoint it should use (the
//! server itself, or a fault proxy in front of it).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::aws::{FakeCloud, aws_env};
use super::{Sandbox, last_json, stderr, stdout};

pub struct AwsSandbox {
    pub sb: Sandbox,
    /// The stand-in this sandbox started, when it did not share one.
    pub cloud: Option<FakeCloud>,
    /// Where runs go unless told otherwise; None: no AWS environment at all (the
    /// embedded backend).
    endpoint: Option<String>,
}

impl AwsSandbox {
    /// Set `s` (`set_body`, see [`Sandbox::write_config`]) on a stand-in of its own.
    pub fn on_standin(sb: Sandbox, set_body: &str) -> AwsSandbox {
        let cloud = FakeCloud::start();
        let endpoint = cloud.endpoint.clone();
        sb.write_config(set_body);
        AwsSandbox {
            sb,
            cloud: Some(cloud),
            endpoint: Some(endpoint),
        }
    }

    /// Set `s` on a server the test holds (moto, or a stand-in it shares).
    pub fn on(sb: Sandbox, endpoint: &str, set_body: &str) -> AwsSandbox {
        sb.write_config(set_body);
        AwsSandbox {
            sb,
            cloud: None,
            endpoint: Some(endpoint.to_string()),
        }
    }

    /// Set `s` on a backend that needs no AWS: runs get no AWS environment.
    pub fn without_aws(sb: Sandbox, set_body: &str) -> AwsSandbox {
        sb.write_config(set_body);
        AwsSandbox {
            sb,
            cloud: None,
            endpoint: None,
        }
    }

    /// The endpoint runs use by default.
    pub fn endpoint(&self) -> &str {
        self.endpoint
            .as_deref()
            .expect("a sandbox with an AWS endpoint")
    }

    /// firn, talking to `endpoint`.
    pub fn command(&self, endpoint: &str) -> Command {
        let mut cmd = self.sb.command();
        cmd.envs(aws_env(endpoint));
        cmd
    }

    pub fn run(&self, endpoint: &str, args: &[&str]) -> Output {
        self.command(endpoint)
            .args(args)
            .output()
            .expect("run firn")
    }

    /// firn on the sandbox's own endpoint.
    pub fn firn(&self, args: &[&str]) -> Output {
        match &self.endpoint {
            Some(endpoint) => self.run(endpoint, args),
            None => self.sb.firn(args),
        }
    }

    /// Runs firn and checks it succeeded.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.firn(args);
        assert!(
            out.status.success(),
            "firn {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        out
    }

    /// Runs firn, checks it succeeded and parses the last line of its output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        last_json(&self.ok(args))
    }

    pub fn init(&self) {
        self.ok(&["init", "--set", "s", "--yes"]);
    }

    /// `firn backup --set s --json` through `endpoint`: exit code and summary.
    pub fn backup_via(&self, endpoint: &str) -> (Option<i32>, serde_json::Value) {
        let out = self.run(endpoint, &["backup", "--set", "s", "--json"]);
        (out.status.code(), last_json(&out))
    }

    /// Catalog records of set `s` (`firn ls --set s --all --json`).
    pub fn records(&self) -> Vec<serde_json::Value> {
        let listing = self.json(&["ls", "--set", "s", "--all", "--json"]);
        listing
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("not a list: {listing}"))
    }

    /// Restores everything (with `extra` arguments) into a fresh directory and
    /// checks every byte of `files` there.
    pub fn restore_and_compare(&self, files: &[(&str, &[u8])], extra: &[&str]) {
        static RESTORES: AtomicUsize = AtomicUsize::new(0);
        let out_dir: PathBuf = self.sb.path().join(format!(
            "restored-{}",
            RESTORES.fetch_add(1, Ordering::SeqCst)
        ));
        let to = out_dir.display().to_string();
        let mut args = vec!["restore", "--set", "s", "--to", &to];
        args.extend(extra);
        let out = self.firn(&args);
        assert!(
            out.status.success(),
            "restore: {}{}",
            stdout(&out),
            stderr(&out)
        );
        for (name, content) in files {
            let restored =
                std::fs::read(out_dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(restored == *content, "{name}: restored bytes differ");
        }
    }
}
