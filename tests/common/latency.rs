//! A latency proxy: an HTTP/1.1 proxy on a free port in front of a local AWS
//! server (the stand-in) that holds every request for a fixed delay before it
//! forwards it, as if the server were across the internet, and counts what it
//! sees: requests in flight (the most at once, the mean over time) and the
//! request body bytes clients send (how many, and from the first byte's arrival
//! to the last's: the upload rate on the wire). Connections are kept alive and
//! served at once, as many as the client opens; opening one costs no added
//! delay (on the internet a TLS handshake would cost round trips more).
//! Used by the remote and bandwidth benchmarks and by the tests of the
//! bandwidth limit.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Gives up with one line (the tests and benches stop their servers as the
/// stack unwinds).
fn fail(message: &str) -> ! {
    panic!("latency proxy: {message}");
}

/// What the proxy saw since its last reset.
#[derive(Clone, Debug, Default)]
pub struct ProxyReport {
    pub requests: u64,
    pub in_flight: u64,
    pub max: u64,
    /// Requests in flight, averaged over the time since the reset.
    pub mean: f64,
    /// Exchanges cut short: a connection broken before the answer was relayed.
    pub errors: u64,
    /// Request body bytes received from clients.
    pub body_bytes: u64,
    /// From the first body byte received to the last.
    pub body_span: Duration,
    /// Requests by HTTP method (`PUT`, `POST`...), in the order first seen.
    pub methods: Vec<(String, u64)>,
}

impl ProxyReport {
    /// The requests made with `method` (`PUT`, ...).
    pub fn with_method(&self, method: &str) -> u64 {
        self.methods
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(method))
            .map_or(0, |(_, n)| *n)
    }

    /// Body bytes per second between the first body byte and the last.
    pub fn body_rate(&self) -> f64 {
        self.body_bytes as f64 / self.body_span.as_secs_f64().max(1e-9)
    }
}

struct Stats {
    requests: u64,
    in_flight: u64,
    max: u64,
    errors: u64,
    /// Requests in flight integrated over time (request-seconds) up to `last`.
    area: f64,
    since: Instant,
    last: Instant,
    body_bytes: u64,
    first_body: Option<Instant>,
    last_body: Option<Instant>,
    /// Body bytes received so far, after each read: (since the reset, total).
    timeline: Vec<(Duration, u64)>,
    methods: Vec<(String, u64)>,
}

impl Stats {
    fn new() -> Stats {
        let now = Instant::now();
        Stats {
            requests: 0,
            in_flight: 0,
            max: 0,
            errors: 0,
            area: 0.0,
            since: now,
            last: now,
            body_bytes: 0,
            first_body: None,
            last_body: None,
            timeline: Vec::new(),
            methods: Vec::new(),
        }
    }

    fn method(&mut self, method: &str) {
        match self.methods.iter_mut().find(|(m, _)| m == method) {
            Some((_, n)) => *n += 1,
            None => self.methods.push((method.to_string(), 1)),
        }
    }

    /// `n` bytes of a request body arrived now.
    fn body(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let now = Instant::now();
        self.first_body.get_or_insert(now);
        self.last_body = Some(now);
        self.body_bytes += n as u64;
        self.timeline.push((now - self.since, self.body_bytes));
    }

    fn advance(&mut self) {
        let now = Instant::now();
        self.area += self.in_flight as f64 * (now - self.last).as_secs_f64();
        self.last = now;
    }
}

type SharedStats = Arc<Mutex<Stats>>;

fn with_stats<T>(stats: &SharedStats, f: impl FnOnce(&mut Stats) -> T) -> T {
    let mut guard = stats
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(&mut guard)
}

/// One request in flight, from its head arriving to its answer relayed (or the
/// exchange failing).
struct InFlight(SharedStats);

impl InFlight {
    fn begin(stats: &SharedStats) -> InFlight {
        with_stats(stats, |s| {
            s.advance();
            s.requests += 1;
            s.in_flight += 1;
            s.max = s.max.max(s.in_flight);
        });
        InFlight(Arc::clone(stats))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        with_stats(&self.0, |s| {
            s.advance();
            s.in_flight = s.in_flight.saturating_sub(1);
        });
    }
}

/// An HTTP/1.1 proxy on a free port that holds every request for `latency`
/// before forwarding it, keeps connections alive (one upstream connection per
/// client connection) and serves any number of connections at once.
pub struct LatencyProxy {
    pub endpoint: String,
    stats: SharedStats,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LatencyProxy {
    pub fn start(upstream: &str, latency: Duration) -> LatencyProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|e| fail(&format!("the stand-in's address {upstream:?}: {e}")));
        let stats: SharedStats = Arc::new(Mutex::new(Stats::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let stats_in = Arc::clone(&stats);
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = addr_tx.send(Err(format!("no runtime for the proxy: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match TcpListener::bind("127.0.0.1:0").await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = addr_tx.send(Err(format!("the proxy cannot listen: {e}")));
                        return;
                    }
                };
                let _ = addr_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            let _ = client.set_nodelay(true);
                            let stats = Arc::clone(&stats_in);
                            tokio::spawn(async move {
                                if relay(client, upstream, latency, &stats).await.is_err() {
                                    with_stats(&stats, |s| s.errors += 1);
                                }
                            });
                        }
                    }
                }
            });
            // Connections still open are dropped with the runtime.
            runtime.shutdown_background();
        });
        let addr = match addr_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => fail(&e),
            Err(_) => fail("the proxy thread ended before it listened"),
        };
        LatencyProxy {
            endpoint: format!("http://{addr}"),
            stats,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Starts counting afresh (requests still in flight stay counted).
    pub fn reset(&self) {
        with_stats(&self.stats, |s| {
            let now = Instant::now();
            s.requests = 0;
            s.max = s.in_flight;
            s.errors = 0;
            s.area = 0.0;
            s.since = now;
            s.last = now;
            s.body_bytes = 0;
            s.first_body = None;
            s.last_body = None;
            s.timeline.clear();
            s.methods.clear();
        });
    }

    /// Request body bytes received since the reset, after each read: the time
    /// since the reset and the total so far.
    pub fn body_timeline(&self) -> Vec<(Duration, u64)> {
        with_stats(&self.stats, |s| s.timeline.clone())
    }

    pub fn report(&self) -> ProxyReport {
        with_stats(&self.stats, |s| {
            s.advance();
            let span = (s.last - s.since).as_secs_f64();
            ProxyReport {
                requests: s.requests,
                in_flight: s.in_flight,
                max: s.max,
                mean: if span > 0.0 { s.area / span } else { 0.0 },
                errors: s.errors,
                body_bytes: s.body_bytes,
                body_span: match (s.first_body, s.last_body) {
                    (Some(first), Some(last)) => last - first,
                    _ => Duration::ZERO,
                },
                methods: s.methods.clone(),
            }
        })
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A stream and the bytes read from it but not used yet.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where the body bytes read are counted (a client's connection), and
    /// whether a body is being read now.
    count: Option<SharedStats>,
    in_body: bool,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            count: None,
            in_body: false,
        }
    }

    /// A client's connection: the bytes of its request bodies are counted.
    fn counted(stream: TcpStream, stats: &SharedStats) -> Conn {
        Conn {
            count: Some(Arc::clone(stats)),
            ..Conn::new(stream)
        }
    }

    /// Reads more into the buffer; false at the end of the stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        if self.in_body
            && let Some(stats) = &self.count
        {
            with_stats(stats, |s| s.body(n));
        }
        Ok(n > 0)
    }

    /// A message head (through the blank line); None when the stream ends
    /// before its first byte.
    async fn head(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(Some(self.buf.drain(..pos + 4).collect()));
            }
            if !self.fill().await? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(truncated("a message head"));
            }
        }
    }

    async fn take(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(truncated("a message body"));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    async fn line(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return Ok(self.buf.drain(..pos + 2).collect());
            }
            if !self.fill().await? {
                return Err(truncated("a chunk"));
            }
        }
    }

    /// A body as framed, raw (chunk sizes and trailers included); on a
    /// client's connection its bytes are counted as they arrive.
    async fn body(&mut self, framing: Framing) -> std::io::Result<Vec<u8>> {
        if let Some(stats) = &self.count {
            // What came with the head is the body's beginning (no pipelining).
            let early = match framing {
                Framing::Length(n) => self.buf.len().min(n),
                Framing::None => 0,
                _ => self.buf.len(),
            };
            with_stats(stats, |s| s.body(early));
        }
        self.in_body = true;
        let body = self.framed(framing).await;
        self.in_body = false;
        body
    }

    async fn framed(&mut self, framing: Framing) -> std::io::Result<Vec<u8>> {
        match framing {
            Framing::None => Ok(Vec::new()),
            Framing::Length(n) => self.take(n).await,
            Framing::UntilClose => {
                while self.fill().await? {}
                Ok(std::mem::take(&mut self.buf))
            }
            Framing::Chunked => {
                let mut raw = Vec::new();
                loop {
                    let line = self.line().await?;
                    let text = String::from_utf8_lossy(&line);
                    let size = text.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size, 16).map_err(|_| {
                        std::io::Error::other(format!("bad chunk size line {text:?}"))
                    })?;
                    raw.extend_from_slice(&line);
                    if size == 0 {
                        // Trailers, up to the blank line.
                        loop {
                            let trailer = self.line().await?;
                            raw.extend_from_slice(&trailer);
                            if trailer == b"\r\n" {
                                return Ok(raw);
                            }
                        }
                    }
                    raw.extend(self.take(size + 2).await?);
                }
            }
        }
    }
}

fn truncated(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("connection closed in {what}"),
    )
}

#[derive(Clone, Copy)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

struct Head {
    /// The request or status line.
    first: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: &[u8]) -> Head {
        let text = String::from_utf8_lossy(raw);
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or_default().to_string();
        let headers = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        Head { first, headers }
    }

    fn has(&self, name: &str, token: &str) -> bool {
        self.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case(name)
                && v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    }

    fn content_length(&self) -> Option<usize> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
    }

    /// The body that follows a request head.
    fn request_framing(&self) -> Framing {
        if self.has("transfer-encoding", "chunked") {
            Framing::Chunked
        } else {
            self.content_length().map_or(Framing::None, Framing::Length)
        }
    }

    /// The body that follows a response head to a `method` request.
    fn response_framing(&self, method: &str) -> Framing {
        let status = self.status();
        if method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
            Framing::None
        } else if self.has("transfer-encoding", "chunked") {
            Framing::Chunked
        } else {
            self.content_length()
                .map_or(Framing::UntilClose, Framing::Length)
        }
    }

    fn status(&self) -> u16 {
        self.first
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Whether the connection ends after this message.
    fn closes(&self) -> bool {
        self.has("connection", "close") || self.first.contains("HTTP/1.0")
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.first);
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// Serves one client connection, request after request: each held for `latency`,
/// then sent upstream, its answer relayed back whole.
async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    latency: Duration,
    stats: &SharedStats,
) -> std::io::Result<()> {
    let mut client = Conn::counted(client, stats);
    let mut server: Option<Conn> = None;
    loop {
        let Some(raw_head) = client.head().await? else {
            return Ok(());
        };
        let _in_flight = InFlight::begin(stats);
        let mut head = Head::parse(&raw_head);
        let method = head.first.split(' ').next().unwrap_or("").to_string();
        with_stats(stats, |s| s.method(&method));
        if head.has("expect", "100-continue") {
            // Ask for the body at once; the server is not asked to.
            head.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("expect"));
            client
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await?;
        }
        let body = client.body(head.request_framing()).await?;
        let client_closes = head.closes();
        tokio::time::sleep(latency).await;
        let mut request = head.bytes();
        request.extend_from_slice(&body);

        let (response, server_closes) = exchange(&mut server, upstream, &request, &method).await?;
        client.stream.write_all(&response).await?;
        if server_closes {
            server = None;
        }
        if client_closes || server_closes {
            let _ = client.stream.shutdown().await;
            return Ok(());
        }
    }
}

/// Sends `request` upstream (on the kept connection, else a new one; once more on
/// a new one if a kept connection turns out closed) and reads the whole answer,
/// interim 1xx answers included. Returns it and whether the server closes.
async fn exchange(
    server: &mut Option<Conn>,
    upstream: SocketAddr,
    request: &[u8],
    method: &str,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut retried = false;
    loop {
        let reused = server.is_some();
        let conn = match server {
            Some(conn) => conn,
            None => {
                let stream = TcpStream::connect(upstream).await?;
                let _ = stream.set_nodelay(true);
                server.insert(Conn::new(stream))
            }
        };
        // A kept connection the server closed meanwhile fails here or answers
        // nothing: nothing reached the server, so sending again is safe.
        let sent = conn.stream.write_all(request).await;
        let first = match sent {
            Ok(()) => conn.head().await,
            Err(e) => Err(e),
        };
        let raw = match first {
            Ok(Some(raw)) => raw,
            Ok(None) | Err(_) if reused && !retried => {
                *server = None;
                retried = true;
                continue;
            }
            Ok(None) => return Err(truncated("an answer")),
            Err(e) => return Err(e),
        };
        let mut response = Vec::new();
        let mut head = Head::parse(&raw);
        response.extend_from_slice(&raw);
        while (100..200).contains(&head.status()) && head.status() != 101 {
            let Some(raw) = conn.head().await? else {
                return Err(truncated("an answer"));
            };
            head = Head::parse(&raw);
            response.extend_from_slice(&raw);
        }
        let framing = head.response_framing(method);
        response.extend(conn.body(framing).await?);
        let closes = head.closes() || matches!(framing, Framing::UntilClose);
        return Ok((response, closes));
    }
}
