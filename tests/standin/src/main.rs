//! firn-standin: a local AWS server with only the services firn's tests use
//! (Glacier, DynamoDB, S3), built from fakecloud's service crates. It speaks
//! fakecloud's command line and start-up handshake, so the tests run it exactly
//! as they would run `fakecloud`:
//!
//!     firn-standin --addr 127.0.0.1:0 --log-level warn
//!
//! binds the address (port 0: the system picks a free one), prints
//! `FAKECLOUD_PORT=<port>` on stdout and serves until killed. State is in memory
//! only and goes away with the process.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use fakecloud_core::delivery::DeliveryBus;
use fakecloud_core::dispatch::{self, DispatchConfig};
use fakecloud_core::multi_account::MultiAccountState;
use fakecloud_core::registry::ServiceRegistry;
use parking_lot::RwLock;
use tokio::net::TcpListener;
use tracing_subscriber::filter::LevelFilter;

const USAGE: &str = "usage: firn-standin [--addr HOST:PORT] [--log-level LEVEL] \
[--region REGION] [--account-id ID]";

struct Options {
    addr: String,
    log_level: String,
    region: String,
    account_id: String,
}

/// fakecloud's flags, defaults and environment variables, for the options that
/// matter to a test server; anything else is refused rather than ignored.
fn parse_args() -> Result<Options, String> {
    let env_or = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let mut options = Options {
        addr: env_or("FAKECLOUD_ADDR", "0.0.0.0:4566"),
        log_level: env_or("FAKECLOUD_LOG", "info"),
        region: env_or("FAKECLOUD_REGION", "us-east-1"),
        account_id: env_or("FAKECLOUD_ACCOUNT_ID", "123456789012"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "--addr" => &mut options.addr,
            "--log-level" => &mut options.log_level,
            "--region" => &mut options.region,
            "--account-id" => &mut options.account_id,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "-V" | "--version" => {
                println!(
                    "firn-standin {} (fakecloud service crates 0.51.0: glacier, dynamodb, s3)",
                    env!("CARGO_PKG_VERSION")
                );
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        };
        *slot = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(format!("{flag} needs a value")),
        };
    }
    Ok(options)
}

/// The URL services put in the resource addresses they hand out: the address
/// actually bound (so port 0 becomes the real port), a wildcard host as localhost.
fn endpoint_url(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "localhost".to_string(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("http://{host}:{}", addr.port())
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

#[tokio::main]
async fn main() {
    let options = parse_args().unwrap_or_else(|e| {
        eprintln!("firn-standin: {e}\n{USAGE}");
        std::process::exit(2);
    });
    tracing_subscriber::fmt()
        .with_max_level(
            options
                .log_level
                .parse::<LevelFilter>()
                .unwrap_or(LevelFilter::INFO),
        )
        .with_writer(std::io::stderr)
        .init();

    let listener = TcpListener::bind(&options.addr).await.unwrap_or_else(|e| {
        eprintln!("firn-standin: cannot bind {}: {e}", options.addr);
        std::process::exit(1);
    });
    let bound = listener.local_addr().expect("bound address");
    let endpoint = endpoint_url(bound);
    let (account, region) = (options.account_id.as_str(), options.region.as_str());

    // One shared state per service, as fakecloud keeps them; DynamoDB is handed
    // S3's so its exports to S3 land in the same buckets. Nothing is wired to
    // deliver events to other services: there are none here.
    let delivery = Arc::new(DeliveryBus::new());
    let s3_state: fakecloud_s3::SharedS3State = Arc::new(RwLock::new(MultiAccountState::new(
        account, region, &endpoint,
    )));
    let s3_store: Arc<dyn fakecloud_persistence::S3Store> =
        Arc::new(fakecloud_persistence::s3::MemoryS3Store::new());
    let dynamodb_state: fakecloud_dynamodb::SharedDynamoDbState = Arc::new(RwLock::new(
        MultiAccountState::new(account, region, &endpoint),
    ));
    let glacier_state: fakecloud_glacier::SharedGlacierState = Arc::new(RwLock::new(
        MultiAccountState::new(account, region, &endpoint),
    ));

    let mut registry = ServiceRegistry::new();
    registry.register(Arc::new(fakecloud_s3::S3Service::with_store(
        s3_state.clone(),
        delivery.clone(),
        s3_store.clone(),
    )));
    registry.register(Arc::new(
        fakecloud_dynamodb::DynamoDbService::new(dynamodb_state)
            .with_s3(s3_state.clone())
            .with_s3_store(s3_store)
            .with_delivery(delivery)
            .with_region(region),
    ));
    registry.register(Arc::new(fakecloud_glacier::GlacierService::new(
        glacier_state,
    )));
    // Lifecycle rules (expiry, transitions) run in the background, as in fakecloud.
    tokio::spawn(fakecloud_s3::lifecycle::LifecycleProcessor::new(s3_state).run());

    // No SigV4 verification and no IAM: any credentials are accepted, as
    // fakecloud does by default.
    let config = DispatchConfig::new(region, account);
    let app = axum::Router::new()
        .route("/_fakecloud/health", axum::routing::get(|| async { "ok" }))
        .fallback(dispatch::dispatch)
        .layer(Extension(Arc::new(registry)))
        .layer(Extension(Arc::new(config)));

    // The handshake the tests wait for: once this line is out, the port takes
    // connections (the listener is already bound).
    println!("FAKECLOUD_PORT={}", bound.port());
    tracing::info!(addr = %bound, "firn-standin is ready");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .expect("serve");
}
