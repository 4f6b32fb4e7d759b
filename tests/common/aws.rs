//! Local AWS-compatible servers for the tests, each started on a free port per
//! test and killed when dropped: `FakeCloud` (firn-standin, for Glacier, DynamoDB
//! and S3) and `Moto` (S3 with storage classes and timed restores); and a
//! fault-injecting HTTP proxy to put between firn and either, driven by a rule
//! per request or by a seeded plan of random faults ([`Faults`]).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// firn-standin (tests/standin/): a slim build of fakecloud with only Glacier
/// (multipart with tree-hash, alignment and Content-Range checks), DynamoDB (Query
/// paged at 1 MB, conditional writes) and S3 (every checksum algorithm verified,
/// BadDigest on a mismatch; restores complete at once), from fakecloud's own
/// service crates. `bash tests/run.sh` builds it once per machine and points
/// `FAKECLOUD_BIN` at it; a full `fakecloud` binary also works, since the stand-in
/// keeps its command line and port announcement.
pub struct FakeCloud {
    child: Child,
    pub endpoint: String,
}

fn fakecloud_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FAKECLOUD_BIN") {
        return PathBuf::from(path);
    }
    let in_cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|d| d.join("bin/fakecloud"));
    match in_cargo_home {
        Some(path) if path.exists() => path,
        _ => PathBuf::from("fakecloud"),
    }
}

impl FakeCloud {
    /// Starts the stand-in on a free port. A missing server is a test failure
    /// (never a skip): `bash tests/run.sh` builds it.
    pub fn start() -> FakeCloud {
        let bin = fakecloud_binary();
        let mut child = Command::new(&bin)
            .args(["--addr", "127.0.0.1:0", "--log-level", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the AWS stand-in ({}): {e}; run `bash tests/run.sh`, which builds it and sets FAKECLOUD_BIN",
                    bin.display()
                )
            });
        let stdout = child.stdout.take().expect("stand-in stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(port) = line.trim().strip_prefix("FAKECLOUD_PORT=") {
                        break port.parse::<u16>().expect("port number");
                    }
                }
                _ => panic!(
                    "the AWS stand-in ({}) exited before announcing its port",
                    bin.display()
                ),
            }
        };
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        FakeCloud {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's S3 server, for what the stand-in does not model: storage classes where
/// an unrestored GLACIER or DEEP_ARCHIVE object refuses GET, and restores that take
/// time (`restores_take`). It does not verify `x-amz-checksum-*` headers: checksum
/// tests belong on `FakeCloud`. `bash tests/run.sh` installs it in a virtual
/// environment and sets `FIRN_MOTO_BIN`; it accepts any credentials (see `aws_env`).
pub struct Moto {
    child: Child,
    pub endpoint: String,
    port: u16,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers. A missing server is
    /// a test failure (never a skip): `bash tests/run.sh` installs it.
    pub fn start() -> Moto {
        let Some(bin) = std::env::var_os("FIRN_MOTO_BIN").map(PathBuf::from) else {
            panic!(
                "FIRN_MOTO_BIN is not set: run `bash tests/run.sh`, which installs moto and sets it"
            );
        };
        let mut last_error = String::new();
        // moto takes a port number, not port 0: take one the system says is free
        // and start again on another if something grabbed it in between.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start moto ({}): {e}; run `bash tests/run.sh`, which installs it",
                        bin.display()
                    )
                });
            // Keep draining its request log so it never blocks on a full pipe; the
            // last lines explain a failed start.
            let log = Arc::new(Mutex::new(Vec::<String>::new()));
            let stderr = child.stderr.take().expect("moto stderr");
            let log_in = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut log = log_in.lock().expect("moto log");
                    if log.len() == 20 {
                        log.remove(0);
                    }
                    log.push(line);
                }
            });
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                // Alive and answering: the port is moto's (it exits when it cannot bind).
                if let Ok(Some(status)) = child.try_wait() {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    last_error = format!(
                        "exited with {status}: {}",
                        log.lock().expect("moto log").join("\n")
                    );
                    break;
                }
                if let Ok((200, _)) = http(port, "GET", "/moto-api/data.json", "") {
                    return Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        port,
                    };
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = "did not answer within 30 s".into();
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        panic!("moto ({}) did not start: {last_error}", bin.display());
    }

    /// From now on a RestoreObject on a GLACIER or DEEP_ARCHIVE object is in
    /// progress (HEAD says `ongoing-request="true"`, GET is refused) for `seconds`,
    /// then done. The default is done at once.
    pub fn restores_take(&self, seconds: u64) {
        let body = format!(
            r#"{{"model_name": "s3::keyrestore", "transition": {{"progression": "time", "seconds": {seconds}}}}}"#
        );
        match http(
            self.port,
            "POST",
            "/moto-api/state-manager/set-transition",
            &body,
        ) {
            Ok((status, _)) if (200..300).contains(&status) => {}
            other => panic!("moto refused set-transition: {other:?}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request to 127.0.0.1:`port`: the status and the body.
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Environment for an AWS SDK client (or firn) talking to the local server:
/// dummy credentials through the standard chain, never on argv.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "firntest".into()),
        ("AWS_SECRET_ACCESS_KEY", "firntestsecret".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config".into()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials".into(),
        ),
    ]
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let creds = aws_sdk_dynamodb::config::Credentials::new(
        "firntest",
        "firntestsecret",
        None,
        None,
        "test",
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .load()
        .await
}

/// Creates an on-demand DynamoDB table keyed by the string attribute `key` alone
/// (not firn's schema: a table of another tool, or one to test the server with).
pub async fn create_plain_table(client: &aws_sdk_dynamodb::Client, table: &str, key: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
}

/// What the proxy does with one request.
#[derive(Clone, Debug)]
pub enum Action {
    Forward,
    /// Answer without asking the server (an AWS error, say).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Drop the connection without an answer (a reset).
    Reset,
    /// Forward, then replace the value of one response header.
    TamperHeader {
        name: String,
        value: String,
    },
    /// Forward, then flip the lowest bit of the response body's byte at `offset`
    /// (corruption in transit that TCP's checksum missed).
    FlipBodyByte {
        offset: usize,
    },
    /// Flip the lowest bit of the request body's byte at `offset`, then forward
    /// (corruption on the way to the server).
    FlipRequestBodyByte {
        offset: usize,
    },
    /// Replace the value of one request header, then forward.
    TamperRequestHeader {
        name: String,
        value: String,
    },
    /// Forward (the server acts on the request), then drop the connection
    /// without a word of the answer: the client cannot tell whether it landed.
    DropAfterForward,
    /// Forward, then send the first half of the answer's bytes (head and body
    /// together) and close: an answer cut short.
    CutInHalf,
    /// Remove one top-level field from the request's JSON body (a server that
    /// never saw it, e.g. an idempotency token it does not honour), then do
    /// `then`.
    StripJsonField {
        field: String,
        then: Box<Action>,
    },
}

impl Action {
    /// How the proxy's log names this action.
    pub fn label(&self) -> String {
        match self {
            Action::Forward => "forward".to_string(),
            Action::Respond { status, .. } => format!("respond {status}"),
            Action::Reset => "reset".to_string(),
            Action::TamperHeader { name, .. } => format!("tamper {name}"),
            Action::FlipBodyByte { offset } => format!("flip body byte {offset}"),
            Action::FlipRequestBodyByte { offset } => format!("flip request body byte {offset}"),
            Action::TamperRequestHeader { name, .. } => format!("tamper request {name}"),
            Action::DropAfterForward => "drop after forward".to_string(),
            Action::CutInHalf => "cut in half".to_string(),
            Action::StripJsonField { field, then } => format!("strip {field}, {}", then.label()),
        }
    }

    /// Whether the server sees the request.
    pub fn reaches_server(&self) -> bool {
        match self {
            Action::Respond { .. } | Action::Reset => false,
            Action::StripJsonField { then, .. } => then.reaches_server(),
            _ => true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RequestInfo {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// 0-based count of requests seen.
    pub n: usize,
}

impl RequestInfo {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// An UploadMultipartPart request.
    pub fn is_part_upload(&self) -> bool {
        self.method == "PUT" && self.path.contains("/multipart-uploads/")
    }

    /// An S3 UploadPart request.
    pub fn is_s3_part_upload(&self) -> bool {
        self.method == "PUT" && self.path.contains("partNumber=") && self.path.contains("uploadId=")
    }

    /// An S3 PutObject request (a whole object in one request).
    pub fn is_s3_put_object(&self) -> bool {
        self.method == "PUT" && self.path.contains("x-id=PutObject")
    }

    /// An S3 RestoreObject request.
    pub fn is_s3_restore(&self) -> bool {
        self.method == "POST" && self.path.contains("restore")
    }

    /// An S3 GetObject request (a download of bytes).
    pub fn is_s3_get_object(&self) -> bool {
        self.method == "GET" && self.path.contains("x-id=GetObject")
    }

    /// A Glacier InitiateJob request (each one a retrieval Amazon bills).
    pub fn is_initiate_job(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/jobs")
    }

    /// A Glacier GetJobOutput request (a download of a retrieval job's bytes).
    pub fn is_job_output(&self) -> bool {
        self.method == "GET" && self.path.contains("/jobs/") && self.path.ends_with("/output")
    }

    /// A Glacier request (REST paths under the account, `/-/vaults/...`).
    pub fn is_glacier(&self) -> bool {
        self.path.starts_with("/-/")
    }

    /// A Glacier request that stores an archive and names it only in its answer
    /// (UploadArchive, CompleteMultipartUpload).
    pub fn is_glacier_archive_creation(&self) -> bool {
        self.is_glacier()
            && self.method == "POST"
            && (self.path.ends_with("/archives")
                || (self.path.contains("/multipart-uploads/") && !self.path.ends_with('/')))
    }

    /// An S3 CompleteMultipartUpload request.
    pub fn is_s3_complete(&self) -> bool {
        self.method == "POST" && self.path.contains("uploadId=") && !self.is_glacier()
    }

    pub fn dynamodb_target(&self) -> Option<&str> {
        self.header("x-amz-target")
    }
}

type Rule = dyn Fn(&RequestInfo) -> Action + Send + Sync;

/// An HTTP/1.1 proxy that applies `rule` to every request and records what it did.
pub struct FaultProxy {
    pub endpoint: String,
    pub seen: Arc<Mutex<Vec<(RequestInfo, String)>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(
        upstream: &str,
        rule: impl Fn(&RequestInfo) -> Action + Send + Sync + 'static,
    ) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("upstream address");
        let rule: Arc<Rule> = Arc::new(rule);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let seen_in = Arc::clone(&seen);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
                addr_tx.send(listener.local_addr().expect("addr")).expect("send addr");
                let counter = Arc::new(AtomicUsize::new(0));
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            let (rule, seen, counter) = (Arc::clone(&rule), Arc::clone(&seen_in), Arc::clone(&counter));
                            tokio::spawn(async move {
                                let _ = serve(client, upstream, rule, seen, counter).await;
                            });
                        }
                    }
                }
            });
        });
        let addr = addr_rx.recv().expect("proxy address");
        FaultProxy {
            endpoint: format!("http://{addr}"),
            seen,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Requests seen, each with what was done ("forward", "respond 503", "reset", ...).
    pub fn log(&self) -> Vec<(RequestInfo, String)> {
        self.seen.lock().expect("proxy log").clone()
    }

    /// How many requests the proxy met with each action so far, by label.
    pub fn tally(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for (_, label) in self.seen.lock().expect("proxy log").iter() {
            *out.entry(label.clone()).or_insert(0) += 1;
        }
        out
    }

    /// How many requests seen so far `which` picks.
    pub fn count(&self, which: impl Fn(&RequestInfo) -> bool) -> usize {
        self.seen
            .lock()
            .expect("proxy log")
            .iter()
            .filter(|(r, _)| which(r))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(pos + 4));
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn parse_head(head: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    (first, headers)
}

fn content_length(headers: &[(String, String)]) -> usize {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn build_head(first: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut out = format!("{first}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// One request per client connection: the proxy answers with `Connection: close`.
async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    rule: Arc<Rule>,
    seen: Arc<Mutex<Vec<(RequestInfo, String)>>>,
    counter: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let Some(head_len) = read_head(&mut client, &mut buf).await? else {
        return Ok(());
    };
    let (request_line, mut headers) = parse_head(&buf[..head_len - 4]);
    let body_len = content_length(&headers);
    while buf.len() < head_len + body_len {
        let mut chunk = vec![0u8; 65536];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut body = buf[head_len..head_len + body_len].to_vec();
    let mut parts = request_line.split(' ');
    let info = RequestInfo {
        method: parts.next().unwrap_or_default().to_string(),
        path: parts.next().unwrap_or_default().to_string(),
        headers: headers.clone(),
        n: counter.fetch_add(1, Ordering::SeqCst),
    };
    let mut action = rule(&info);
    let label = action.label();
    seen.lock().expect("proxy log").push((info, label));
    if let Action::StripJsonField { field, then } = action {
        if let Ok(serde_json::Value::Object(mut doc)) = serde_json::from_slice(&body) {
            doc.remove(&field);
            body = serde_json::to_vec(&doc).expect("JSON body");
            for (k, v) in headers.iter_mut() {
                if k.eq_ignore_ascii_case("content-length") {
                    *v = body.len().to_string();
                }
            }
        }
        action = *then;
    }
    match action {
        Action::Reset => {
            reset(client);
            Ok(())
        }
        Action::Respond {
            status,
            headers: extra,
            body,
        } => {
            let mut h = extra;
            h.push(("Content-Length".into(), body.len().to_string()));
            h.push(("Connection".into(), "close".into()));
            let mut out = build_head(&format!("HTTP/1.1 {status} Injected"), &h);
            out.extend_from_slice(body.as_bytes());
            client.write_all(&out).await?;
            client.shutdown().await
        }
        Action::StripJsonField { .. } => unreachable!("replaced by what follows it"),
        Action::Forward
        | Action::TamperHeader { .. }
        | Action::FlipBodyByte { .. }
        | Action::FlipRequestBodyByte { .. }
        | Action::TamperRequestHeader { .. }
        | Action::DropAfterForward
        | Action::CutInHalf => {
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case("connection"));
            if let Action::TamperRequestHeader { name, value } = &action {
                for (k, v) in headers.iter_mut() {
                    if k.eq_ignore_ascii_case(name) {
                        *v = value.clone();
                    }
                }
            }
            headers.push(("Connection".into(), "close".into()));
            let mut upstream_conn = TcpStream::connect(upstream).await?;
            let mut request = build_head(&request_line, &headers);
            if let Action::FlipRequestBodyByte { offset } = &action
                && let Some(byte) = body.get_mut(*offset)
            {
                *byte ^= 0x01;
            }
            request.extend_from_slice(&body);
            upstream_conn.write_all(&request).await?;
            let mut response = Vec::new();
            upstream_conn.read_to_end(&mut response).await?;
            if let Action::TamperHeader { name, value } = &action
                && let Some(head_end) = response.windows(4).position(|w| w == b"\r\n\r\n")
            {
                let (status_line, mut resp_headers) = parse_head(&response[..head_end]);
                for (k, v) in resp_headers.iter_mut() {
                    if k.eq_ignore_ascii_case(name) {
                        *v = value.clone();
                    }
                }
                let mut rebuilt = build_head(&status_line, &resp_headers);
                rebuilt.extend_from_slice(&response[head_end + 4..]);
                response = rebuilt;
            }
            if let Action::FlipBodyByte { offset } = &action
                && let Some(head_end) = response.windows(4).position(|w| w == b"\r\n\r\n")
                && let Some(byte) = response.get_mut(head_end + 4 + offset)
            {
                *byte ^= 0x01;
            }
            match action {
                Action::DropAfterForward => {
                    reset(client);
                    Ok(())
                }
                Action::CutInHalf => {
                    client.write_all(&response[..response.len() / 2]).await?;
                    client.shutdown().await
                }
                _ => {
                    client.write_all(&response).await?;
                    client.shutdown().await
                }
            }
        }
    }
}

/// Closes a connection abruptly: SO_LINGER 0 sends a TCP reset.
fn reset(client: TcpStream) {
    if let Ok(std_stream) = client.into_std() {
        let socket = socket2::Socket::from(std_stream);
        let _ = socket.set_linger(Some(std::time::Duration::from_secs(0)));
    }
}

/// An S3 (REST-XML) error answer, with extra headers.
pub fn s3_error(status: u16, code: &str, message: &str, headers: &[(&str, &str)]) -> Action {
    let mut all: Vec<(String, String)> = vec![
        ("Content-Type".into(), "application/xml".into()),
        ("x-amz-request-id".into(), "injected".into()),
    ];
    all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Action::Respond {
        status,
        headers: all,
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>injected</RequestId></Error>"
        ),
    }
}

/// An AWS JSON-protocol error answer (Glacier and DynamoDB both speak it).
pub fn aws_error(status: u16, code: &str, message: &str) -> Action {
    Action::Respond {
        status,
        headers: vec![
            ("Content-Type".into(), "application/x-amz-json-1.0".into()),
            ("x-amzn-ErrorType".into(), code.into()),
            ("x-amzn-RequestId".into(), "injected".into()),
        ],
        body: format!(
            r#"{{"__type":"{code}","code":"{code}","message":"{message}","Message":"{message}"}}"#
        ),
    }
}

/// A seeded plan of random faults, in percent of requests: a throttling
/// answer (503 SlowDown in the request's own protocol), a server error (500),
/// a connection dropped after the server got the request, an answer cut in
/// half; the rest are forwarded. Each request draws its fate from the seed and
/// its arrival number, so one seed is one sequence of faults by arrival order.
#[derive(Clone, Debug)]
pub struct Faults {
    pub seed: u64,
    pub throttle: u64,
    pub server_error: u64,
    pub drop_after_forward: u64,
    pub cut_in_half: u64,
    /// Requests that only get the faults that never reach the server (a throttle,
    /// a server error, a connection reset before forwarding), when the others
    /// would be unfair: see where it is set.
    pub spare: Option<fn(&RequestInfo) -> bool>,
}

impl Faults {
    /// 15% 503 SlowDown, 5% 500, 5% dropped after the request, 5% cut in half.
    pub fn heavy(seed: u64) -> Faults {
        Faults {
            seed,
            throttle: 15,
            server_error: 5,
            drop_after_forward: 5,
            cut_in_half: 5,
            spare: None,
        }
    }

    /// What the proxy does with the request `r`.
    pub fn action(&self, r: &RequestInfo) -> Action {
        let roll = splitmix64(self.seed ^ splitmix64(r.n as u64)) % 100;
        let mut bound = self.throttle;
        if roll < bound {
            return throttle_answer(r);
        }
        bound += self.server_error;
        if roll < bound {
            return error_answer(r, 500, "InternalError", "We encountered an internal error");
        }
        let spared = self.spare.is_some_and(|spare| spare(r));
        bound += self.drop_after_forward;
        if roll < bound {
            return if spared {
                Action::Reset
            } else {
                Action::DropAfterForward
            };
        }
        bound += self.cut_in_half;
        if roll < bound {
            return if spared {
                Action::Reset
            } else {
                Action::CutInHalf
            };
        }
        Action::Forward
    }

    /// A proxy in front of `upstream` that applies this plan.
    pub fn proxy(&self, upstream: &str) -> FaultProxy {
        let plan = self.clone();
        FaultProxy::start(upstream, move |r| plan.action(r))
    }
}

/// One step of SplitMix64: a well-mixed 64-bit value for each input.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 503 SlowDown as the request's service says it.
pub fn throttle_answer(r: &RequestInfo) -> Action {
    if r.dynamodb_target().is_some() {
        error_answer(r, 503, "ThrottlingException", "Rate exceeded")
    } else {
        error_answer(r, 503, "SlowDown", "Please reduce your request rate.")
    }
}

/// An error answer in the request's protocol: JSON for DynamoDB and Glacier,
/// XML for S3 (whose HEAD answers carry no body, as S3's do not).
pub fn error_answer(r: &RequestInfo, status: u16, code: &str, message: &str) -> Action {
    if r.dynamodb_target().is_some() || r.is_glacier() {
        aws_error(status, code, message)
    } else if r.method == "HEAD" {
        Action::Respond {
            status,
            headers: vec![("x-amz-request-id".into(), "injected".into())],
            body: String::new(),
        }
    } else {
        s3_error(status, code, message, &[])
    }
}
