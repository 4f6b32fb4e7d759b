//! The bandwidth limit end to end: uploads to S3 and Glacier on the AWS
//! stand-in through the latency proxy (which counts the request body bytes on
//! the wire, and when they arrive), restores and migrations under a download
//! limit, a timetable switch mid-run, and bad limits refused as usage errors.
//!
//! Time is only ever a lower bound here (bytes / limit, less a tenth and
//! what the limiter lets through at once): a loaded machine makes transfers slower, never faster. The one
//! upper bound is the acceptance criterion of a timetable switch (the new rate
//! within 2 s), checked with a wide margin (the new rate is 16 times the old).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::aws::{FakeCloud, aws_env};
use common::aws_sandbox::AwsSandbox;
use common::latency::LatencyProxy;
use common::{Sandbox, assert_exit, pattern, stderr, stdout};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Small files (64, of 32 to 255 KiB) and one large file, 28 MiB in all; S3
/// sends the large one in two parts (16 MiB and the rest). Returns the files
/// and their bytes.
fn mixed_tree(sb: &Sandbox) -> (Vec<(String, Vec<u8>)>, u64) {
    let mut files = Vec::new();
    for i in 0..64u64 {
        let len = (32 + (i * 37) % 224) * KIB;
        files.push((format!("small/{i:02}.jpg"), pattern(len as usize, i as u8)));
    }
    let small: u64 = files.iter().map(|(_, c)| c.len() as u64).sum();
    files.push((
        "big/video.mov".into(),
        pattern((28 * MIB - small) as usize, 200),
    ));
    for (name, content) in &files {
        sb.write(name, content);
    }
    let total = files.iter().map(|(_, c)| c.len() as u64).sum();
    (files, total)
}

/// What a run should take at least: its bytes at the limit, less what the
/// limiter lets through at once and a tenth.
fn at_least(bytes: u64, limit: u64) -> Duration {
    let burst = firn::limit::Rate::burst(limit);
    Duration::from_secs_f64(0.9 * bytes.saturating_sub(burst) as f64 / limit as f64)
}

fn run_ok(a: &AwsSandbox, endpoint: &str, args: &[&str]) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = a.run(endpoint, args);
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "firn {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    (out, took)
}

#[test]
fn s3_uploads_of_small_files_and_parts_keep_to_the_limit_on_the_wire() {
    let cloud = FakeCloud::start();
    let a = AwsSandbox::on(
        Sandbox::new(),
        &cloud.endpoint,
        "retention = \"keep\"\nupload_limit = \"8 MiB/s\"\nstore = { kind = \"s3\", bucket = \"limited\", force_path_style = true }\n",
    );
    a.init();
    let (files, total) = mixed_tree(&a.sb);
    let proxy = LatencyProxy::start(&cloud.endpoint, Duration::from_millis(20));
    let (out, took) = run_ok(&a, &proxy.endpoint, &["backup", "--set", "s"]);
    assert!(
        stdout(&out).contains("upload limit: 8 MiB/s"),
        "the run says what limit it keeps: {}",
        stdout(&out)
    );
    let seen = proxy.report();
    let limit = 8 * MIB;
    eprintln!(
        "{} of bodies in {:.2} s on the wire ({:.2} MiB/s under a limit of 8 MiB/s), {:.2} s in all",
        seen.body_bytes,
        seen.body_span.as_secs_f64(),
        seen.body_rate() / MIB as f64,
        took.as_secs_f64()
    );
    assert!(seen.body_bytes >= total, "{seen:?}");
    assert!(
        seen.body_span >= at_least(seen.body_bytes, limit),
        "{} bytes went in {:?}: faster than 8 MiB/s",
        seen.body_bytes,
        seen.body_span
    );
    // What was sent under the limit is what was stored.
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    a.restore_and_compare(&borrowed, &["--tier", "standard"]);
}

#[test]
fn s3_restores_keep_to_the_download_limit() {
    let cloud = FakeCloud::start();
    let a = AwsSandbox::on(
        Sandbox::new(),
        &cloud.endpoint,
        "retention = \"keep\"\nstore = { kind = \"s3\", bucket = \"down\", force_path_style = true, storage_class = \"STANDARD\" }\n",
    );
    a.init();
    let (files, total) = mixed_tree(&a.sb);
    run_ok(&a, &cloud.endpoint, &["backup", "--set", "s"]);
    let to = a.sb.path().join("restored");
    let to_text = to.display().to_string();
    let (out, took) = run_ok(
        &a,
        &cloud.endpoint,
        &[
            "restore",
            "--set",
            "s",
            "--to",
            &to_text,
            "--download-limit",
            "16MiB",
        ],
    );
    assert!(
        stdout(&out).contains("download limit: 16 MiB/s"),
        "{}",
        stdout(&out)
    );
    eprintln!(
        "restored {total} bytes in {:.2} s under 16 MiB/s",
        took.as_secs_f64()
    );
    assert!(took >= at_least(total, 16 * MIB), "{took:?}");
    for (name, content) in &files {
        assert!(std::fs::read(to.join(name)).unwrap() == *content, "{name}");
    }
}

#[test]
fn glacier_uploads_keep_to_the_limit_on_the_wire() {
    let cloud = FakeCloud::start();
    let a = AwsSandbox::on(
        Sandbox::new(),
        &cloud.endpoint,
        "retention = \"keep\"\nstore = { kind = \"glacier\", vault = \"limited\" }\ncatalog = { kind = \"dynamodb\", table = \"limited\" }\n",
    );
    a.init();
    // Small files in UploadArchive, a 12 MiB file in multipart parts.
    for i in 0..16u8 {
        a.sb.write(format!("small/{i}.bin"), pattern(128 * KIB as usize, i));
    }
    a.sb.write("big.bin", pattern(12 * MIB as usize, 99));
    let proxy = LatencyProxy::start(&cloud.endpoint, Duration::from_millis(20));
    run_ok(
        &a,
        &proxy.endpoint,
        &["backup", "--set", "s", "--upload-limit", "4MiB"],
    );
    let seen = proxy.report();
    eprintln!(
        "{} of bodies in {:.2} s on the wire ({:.2} MiB/s under 4 MiB/s)",
        seen.body_bytes,
        seen.body_span.as_secs_f64(),
        seen.body_rate() / MIB as f64
    );
    assert!(seen.body_bytes >= 14 * MIB, "{seen:?}");
    // Glacier bodies are granted whole before they are sent (the SDK signs the
    // whole body), so the wire sees the first part only once it is granted.
    assert!(
        seen.body_span >= at_least(seen.body_bytes, 4 * MIB).saturating_sub(Duration::from_secs(1)),
        "{seen:?}"
    );
}

#[test]
fn embedded_restores_and_migrations_keep_to_the_download_limit() {
    let sb = Sandbox::new();
    let old = sb.path().join("old-disk");
    let new = sb.path().join("new-disk");
    sb.write_config(&format!(
        "retention = \"keep\"\nstore = {{ kind = \"local\", path = {old:?} }}\n"
    ));
    let kept = pattern(2 * MIB as usize, 1);
    let changed = pattern(2 * MIB as usize, 2);
    sb.write("kept.bin", &kept);
    sb.write("changed.bin", &changed);
    let ok = |args: &[&str]| {
        let started = Instant::now();
        let out = sb.firn(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        (out, started.elapsed())
    };
    ok(&["backup", "--set", "s"]);

    // A restore reads 4 MiB at 1 MiB/s.
    let to = sb.path().join("restored").display().to_string();
    let (out, took) = ok(&[
        "restore",
        "--set",
        "s",
        "--to",
        &to,
        "--download-limit",
        "1MiB",
    ]);
    assert!(took >= at_least(4 * MIB, MIB), "{took:?}: {}", stdout(&out));

    // A migration copies the unchanged file from the tree and retrieves the
    // archived version of the changed one from the old store: 2 MiB read at
    // 512 KiB/s, while the 4 MiB it uploads are allowed 8 MiB/s.
    sb.write("changed.bin", b"other bytes now");
    sb.write_config(&format!(
        "retention = \"keep\"\nupload_limit = \"8MiB\"\nstore = {{ kind = \"local\", path = {new:?} }}\nprevious_store = {{ kind = \"local\", path = {old:?} }}\n"
    ));
    let (out, took) = ok(&[
        "migrate",
        "--set",
        "s",
        "--yes",
        "--download-limit",
        "512KiB",
    ]);
    let text = stdout(&out);
    assert!(text.contains("upload limit: 8 MiB/s"), "{text}");
    assert!(text.contains("download limit: 512 KiB/s"), "{text}");
    assert!(took >= at_least(2 * MIB, 512 * KIB), "{took:?}: {text}");
}

#[test]
fn bad_limits_are_usage_errors_that_show_what_to_write() {
    let sb = Sandbox::new();
    sb.write("a.txt", "a");
    let tree = sb.tree().display().to_string();
    for (limit, token) in [
        ("19:00", "\"19:00\""),
        ("08:00,512KiB 19:00,4Mx", "\"4Mx\""),
        ("4", "\"4\" has no unit"),
        ("0", "write \"off\""),
    ] {
        let out = sb.firn(["backup", &tree, "--upload-limit", limit]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(err.contains(token), "{limit}: {err}");
        assert!(err.contains("08:00,512KiB 19:00,4MiB 23:00,off"), "{err}");
    }
    let out = sb.firn(["restore", "--root", &tree, "--download-limit", "fast"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("\"fast\" is not a rate"),
        "{}",
        stderr(&out)
    );
    // In the config: the key, the value and the file are named.
    sb.write_config("download_limit = \"25:00,1MiB\"\n");
    let out = sb.firn(["backup", "--set", "s"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("invalid download_limit \"25:00,1MiB\""),
        "{err}"
    );
    assert!(err.contains("\"25:00\" is not a time of day"), "{err}");
    assert!(err.contains("config.toml"), "{err}");
    // [defaults] holds for a set without its own; a set's own wins.
    let set = format!("[sets.s]\nroot = {:?}\n", sb.tree());
    sb.write_config_text(&format!(
        "[defaults]\nupload_limit = \"64MiB\"\ndownload_limit = \"2MiB\"\n{set}download_limit = \"off\"\n"
    ));
    let out = sb.firn(["backup", "--set", "s"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("upload limit: 64 MiB/s"),
        "{}",
        stdout(&out)
    );
    let to = sb.path().join("back").display().to_string();
    let out = sb.firn(["restore", "--set", "s", "--to", &to]);
    assert_exit(&out, 0);
    assert!(!stdout(&out).contains("download limit"), "{}", stdout(&out));
    // A flag replaces the configured limit for the run.
    sb.write_config("upload_limit = \"1KiB\"\n");
    let out = sb.firn(["backup", "--set", "s", "--upload-limit", "off"]);
    assert_exit(&out, 0);
    assert!(!stdout(&out).contains("upload limit"), "{}", stdout(&out));
}

/// Through the engine (the library), with the local time injected: a timetable
/// whose next entry starts 3 s after the backup does. The proxy's timeline of
/// body bytes shows the rate before and after.
#[test]
fn a_timetable_switch_mid_run_takes_effect_within_two_seconds() {
    use firn::catalog::Catalog;
    use firn::catalog::sqlite::SqliteCatalog;
    use firn::cost::Prices;
    use firn::engine::{Engine, Parts, Progress};
    use firn::limit::{Limiter, Limits, LocalTime, Schedule};
    use firn::model::Retention;
    use firn::state::LocalState;
    use firn::store::Store;
    use firn::store::s3::{S3Settings, S3Store};

    let cloud = FakeCloud::start();
    for (k, v) in aws_env(&cloud.endpoint) {
        // SAFETY: nextest runs each test in its own process, before any other
        // thread reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    let sb = Sandbox::new();
    let (_, total) = mixed_tree(&sb);
    let proxy = LatencyProxy::start(&cloud.endpoint, Duration::from_millis(20));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let slow = 512 * KIB;
    let fast = 8 * MIB;
    let switch_after = Duration::from_secs(3);
    rt.block_on(async {
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&common::aws::sdk_config(&cloud.endpoint).await)
                .force_path_style(true)
                .build(),
        );
        client.create_bucket().bucket("switch").send().await.unwrap();
        // 18:59:57 when the backup starts, and running on from there.
        let origin: Arc<std::sync::OnceLock<Instant>> = Arc::default();
        let at_start = LocalTime::new(2, 18, 59, 57).second_of_week;
        let started = Arc::clone(&origin);
        let clock = Arc::new(move || LocalTime {
            second_of_week: at_start
                + started.get().map_or(0, |o: &Instant| o.elapsed().as_secs()) as u32,
        });
        let up = Limiter::with_clock(
            Schedule::parse("08:00,512KiB 19:00,8MiB").unwrap(),
            clock,
        );
        let limits = Limits {
            up: Arc::clone(&up),
            down: Limiter::unlimited(),
        };
        let settings = S3Settings {
            bucket: "switch".into(),
            prefix: Some("s".into()),
            force_path_style: Some(true),
            endpoint_url: Some(proxy.endpoint.clone()),
            region: Some("us-east-1".into()),
            ..S3Settings::default()
        };
        let store: Arc<dyn Store> = Arc::new(
            S3Store::connect(&settings)
                .await
                .unwrap()
                .with_limits(limits.clone()),
        );
        let state = Arc::new(LocalState::open(&sb.path().join("state.sqlite")).unwrap());
        let catalog: Arc<dyn Catalog> =
            Arc::new(SqliteCatalog::open(&sb.path().join("catalog.sqlite"), "s").unwrap());
        let engine = Arc::new(
            Engine::from_parts(Parts {
                root: sb.tree(),
                set_id: "s".into(),
                state,
                catalog,
                store,
                host: "test-host".into(),
                retention: Retention::Keep,
                concurrency: 4,
                requests_in_flight: None,
                prices: Prices::free(),
            })
            .with_limits(limits),
        );
        proxy.reset();
        let reset_at = Instant::now();
        let _ = origin.set(reset_at);
        let (progress, mut events) =
            Progress::channel(1024, tokio_util::sync::CancellationToken::new());
        let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
        let done = engine.back_up_tree(false, &progress).await.unwrap();
        drop(progress);
        let _ = drain.await;
        assert_eq!(done.report.summary.uploaded_files, 65, "{:?}", done.report.summary);
        assert!(done.report.summary.failed.is_empty(), "{:?}", done.report.summary.failed);
        // Waiting for the limiter is not the store being slow.
        assert_eq!(firn::aws::throttle_signals(), 0);
        let timeline = proxy.body_timeline();
        let switch = switch_after;
        let bytes_at = |t: Duration| {
            timeline
                .iter()
                .take_while(|(at, _)| *at <= t)
                .last()
                .map_or(0, |(_, n)| *n)
        };
        let before = bytes_at(switch);
        let within = bytes_at(switch + Duration::from_secs(2)) - before;
        eprintln!(
            "{before} bytes in the {:.1} s before the switch ({:.0} KiB/s), {within} in the 2 s after ({:.0} KiB/s); {total} in all",
            switch.as_secs_f64(),
            before as f64 / switch.as_secs_f64() / KIB as f64,
            within as f64 / 2.0 / KIB as f64
        );
        // Before: the slow rate (what the bucket held and the first second's
        // slack aside).
        assert!(
            before <= slow * (switch.as_secs() + 1) + firn::limit::Rate::burst(slow),
            "{before} bytes before the switch"
        );
        // Within 2 s of it: clearly the new rate, at least a second's worth of
        // it (16 times the old one).
        assert!(within >= fast, "{within} bytes in the 2 s after the switch");
        assert!(up.granted() >= total, "{} granted", up.granted());
    });
}

#[test]
fn a_limited_body_whose_try_failed_is_sent_again_whole() {
    use common::aws::{Action, FaultProxy, RequestInfo};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let cloud = FakeCloud::start();
    let a = AwsSandbox::on(
        Sandbox::new(),
        &cloud.endpoint,
        "retention = \"keep\"\nupload_limit = \"32MiB\"\nstore = { kind = \"s3\", bucket = \"retried\", force_path_style = true, storage_class = \"STANDARD\" }\n",
    );
    a.init();
    let (files, _) = mixed_tree(&a.sb);
    // The first PutObject and the first part are reset mid-way; the second part's
    // answer is lost after S3 stored it.
    let (puts, parts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let proxy = FaultProxy::start(&cloud.endpoint, move |r: &RequestInfo| {
        if r.is_s3_put_object() && puts.fetch_add(1, Ordering::SeqCst) == 0 {
            return Action::Reset;
        }
        if r.is_s3_part_upload() {
            return match parts.fetch_add(1, Ordering::SeqCst) {
                0 => Action::Reset,
                1 => Action::DropAfterForward,
                _ => Action::Forward,
            };
        }
        Action::Forward
    });
    let (code, doc) = a.backup_via(&proxy.endpoint);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["uploaded_files"], 65, "{doc}");
    assert!(proxy.count(RequestInfo::is_s3_part_upload) >= 4);
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    a.restore_and_compare(&borrowed, &[]);
}
