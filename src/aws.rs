//! What the Amazon backends share: SDK configuration from the standard credential
//! chain (never a key on the command line or in a file firn writes), the one retry
//! policy every AWS call goes through, and turning SDK errors into one line that
//! names the problem and the fix.
//!
//! # The retry policy
//!
//! The SDK's own retries are off. Every request firn sends to Glacier, DynamoDB
//! and S3 goes through [`send`] (or, for a call that needs care of its own,
//! through [`Tries`] directly), so one policy decides and it sees every attempt.
//!
//! - **Tried again.** *Throttling* — HTTP 429 or 503, or a code such as `SlowDown`,
//!   `ThrottlingException`, `ProvisionedThroughputExceededException` — where the
//!   service did nothing. A *lost answer* — a dropped connection, a timeout, an
//!   answer cut short (a body shorter than its Content-Length, an unexpected end
//!   while a GetObject or GetJobOutput body streams in, read by [`read_body`]),
//!   an answer the SDK could not read (a 2xx it could not parse), a 5xx or an
//!   internal-error code — where the request may or may not have taken effect.
//!   Anything else is the service's answer and stands: not found, access denied,
//!   a failed condition, a bad request. A lost answer is never reported as a
//!   refusal.
//! - **How often.** Reads (list, head, get, query, describe, job output, list
//!   parts, tagging): [`Call::Read`], 12 tries. Writes: [`Call::Write`], 10 tries
//!   (a failed write fails one file, which the next run sends again; a failed
//!   read can fail a whole listing). An endpoint that cannot be reached at all
//!   (connection refused, a name that does not resolve): 3 tries, so a wrong
//!   endpoint is reported in about a second.
//! - **How long between.** Exponential backoff with full jitter: before try n+1,
//!   a random wait between 0 and min(20 s, 100 ms × 2^n) — up to about two
//!   minutes for twelve tries through a long storm, a fraction of a second for
//!   a lone fault.
//! - **Throttling slows the uploads.** Every throttling answer is counted
//!   ([`throttle_signals`]); the engine halves the number of small uploads in
//!   flight when the count grows and adds one back after each calm window (AIMD).
//! - **Writes.** A write is retried blindly only when sending it twice leaves what
//!   sending it once leaves: a PutObject or UploadPart to a key firn chose, a
//!   Glacier part, a delete, an unconditional DynamoDB put, a tagging, a
//!   lifecycle rule. The others keep their own care:
//!   - a DynamoDB conditional write (TransactWriteItems) carries one
//!     ClientRequestToken through all its tries, so a try that landed before its
//!     answer was lost is not applied again; where the token is not honoured the
//!     condition fails and the head is read back: our own write there (the
//!     revision after the one we read, with our archive) is success, anything
//!     else is a conflict;
//!   - S3 CompleteMultipartUpload answered NoSuchUpload (a try completed it, its
//!     answer lost): the object is asked for, and it is complete when S3 reports
//!     the checksum of our parts;
//!   - Glacier CompleteMultipartUpload is idempotent at AWS (a repeated complete
//!     returns the same archive id); a NotFound after a lost answer is reported
//!     as such, never as a missing vault;
//!   - Glacier InitiateJob (each retrieval is billed): after a lost answer the
//!     vault's jobs are listed, and a job for the same whole archive started in
//!     the last 15 minutes (or an inventory job started since the request) is
//!     used rather than another one paid for;
//!   - Glacier UploadArchive names its archive only in its answer: after a lost
//!     answer the retry stores the file again, and the copy the lost try may have
//!     made can be found only by an inventory, which lists it as an orphan
//!     (`firn inventory --delete-orphans` removes it);
//!   - a multipart upload begun (CreateMultipartUpload, InitiateMultipartUpload)
//!     whose answer was lost is begun again: the empty one left behind holds no
//!     archive and is aborted once abandoned (`abandoned_after_hours`);
//!   - creations (CreateBucket, CreateTable, CreateVault) take "already yours" as
//!     done; aborts take "no such upload" as done.
//! - **Timeouts.** 10 s to connect, 10 minutes per attempt (a 4 GiB part on a slow
//!   line); a request body under a bandwidth limit ([`crate::limit`]) gets a
//!   second more for every 4 KiB it sends.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_glacier::config::http::HttpResponse;
use aws_sdk_glacier::error::{ProvideErrorMetadata, SdkError};
use std::sync::Arc;

use aws_sdk_glacier::primitives::{ByteStream, SdkBody};
use bytes::Bytes;

use crate::limit::{LimitedBody, Limiter};

/// Where and as whom to reach AWS. Credentials come only from the default chain
/// (environment, shared profiles, SSO, instance metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// A stand-in server (tests, a local emulator); `AWS_ENDPOINT_URL` works too.
    pub endpoint_url: Option<String>,
}

/// Regions of the standard partitions, to refuse a typo before any request.
const KNOWN_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "cn-north-1",
    "cn-northwest-1",
];

pub async fn sdk_config(settings: &AwsSettings) -> anyhow::Result<aws_config::SdkConfig> {
    // The SDK's retries are off: firn's own policy (module docs) retries every
    // call, so a retry never happens twice over or out of its sight.
    let timeouts = timeouts(ATTEMPT_TIMEOUT);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts);
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    if let Some(region) = config.region()
        && !KNOWN_REGIONS.contains(&region.as_ref())
    {
        anyhow::bail!(crate::model::usage(format!(
            "unknown AWS region {:?}; use a region code such as us-east-1 or eu-west-1",
            region.as_ref()
        )));
    }
    if config.region().is_none() {
        anyhow::bail!(crate::model::usage(
            "no AWS region configured; set `region` in the set's store/catalog config, AWS_REGION, or a profile's region"
        ));
    }
    Ok(config)
}

/// How long one try may take (a 4 GiB part on a slow line).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(600);

/// The share of a bandwidth limit below which a request body's try is let
/// time out: a body under a limit may take `ATTEMPT_TIMEOUT` plus its length at
/// this rate. (While the limiter holds a body back the SDK's stalled-stream
/// check does not count it as stalled: the network is not.)
const LIMITED_SHARE_FLOOR: u64 = 4 << 10;

/// 10 s to connect, `attempt` per try.
fn timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(attempt)
        .build()
}

/// The timeouts of a request that sends `len` bytes of body: under a bandwidth
/// limit a try may take as long as its body's share of the limit needs.
pub fn body_timeouts(len: u64, limited: bool) -> TimeoutConfig {
    if limited {
        timeouts(ATTEMPT_TIMEOUT + Duration::from_secs(len / LIMITED_SHARE_FLOOR))
    } else {
        timeouts(ATTEMPT_TIMEOUT)
    }
}

/// A request body of `data` sent as `limiter` grants it (see
/// [`crate::limit::LimitedBody`]); in memory, as usual, when nothing limits it.
/// Each try of the request takes a body of its own, so a try sent again is
/// limited again.
pub fn request_body(data: Bytes, limiter: &Arc<Limiter>) -> ByteStream {
    if !limiter.may_limit() {
        return ByteStream::from(data);
    }
    let limiter = Arc::clone(limiter);
    ByteStream::new(SdkBody::retryable(move || {
        SdkBody::from_body_1_x(LimitedBody::new(data.clone(), Arc::clone(&limiter)))
    }))
}

/// What a request does to the service, which says how often it is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Changes nothing: list, head, get, query, describe, job output, list
    /// parts, tagging.
    Read,
    /// Changes something; sent twice it leaves what sending it once leaves, or
    /// its caller checks what landed (module docs).
    Write,
}

impl Call {
    /// Tries in all, the first included.
    pub const fn attempts(self) -> u32 {
        match self {
            Call::Read => 12,
            Call::Write => 10,
        }
    }
}

/// Tries at an endpoint that cannot be reached at all: a wrong endpoint or
/// region is reported in about a second.
const UNREACHABLE_ATTEMPTS: u32 = 3;

/// What one failed try says about trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transience {
    /// The service asked to slow down; it did nothing.
    Throttled,
    /// The answer was lost, cut short or unreadable, or the server failed: the
    /// request may have taken effect.
    Lost,
    /// Nothing answered at the endpoint (connection refused, no such name):
    /// nothing was sent.
    Unreachable,
    /// The service's answer, which stands.
    Final,
}

/// A failure the retry policy can judge.
pub trait Classify {
    fn transience(&self) -> Transience;
}

/// Error codes that mean "slow down" whatever the HTTP status.
const THROTTLING_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
];

/// Error codes of a server that failed (the request may or may not have
/// landed), or is still applying the same request (a DynamoDB transaction whose
/// token an earlier try sent).
const SERVER_FAULT_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "TransactionInProgressException",
];

impl<E: ProvideErrorMetadata> Classify for SdkError<E, HttpResponse> {
    fn transience(&self) -> Transience {
        match self {
            SdkError::DispatchFailure(failure) => {
                if failure.is_user() {
                    Transience::Final
                } else if !failure.is_timeout()
                    && failure
                        .as_connector_error()
                        .is_some_and(|e| never_reached(e))
                {
                    Transience::Unreachable
                } else {
                    Transience::Lost
                }
            }
            // A body that ends before its Content-Length, or breaks off, is a
            // response error (hyper checks the length; HEAD answers have none).
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Transience::Lost,
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("");
                let raw = service.raw();
                let status = raw.status().as_u16();
                if THROTTLING_CODES.contains(&code) || status == 429 || status == 503 {
                    Transience::Throttled
                } else if SERVER_FAULT_CODES.contains(&code)
                    || status >= 500
                    // A success the SDK could not read: cut short or garbled.
                    || raw.status().is_success()
                {
                    Transience::Lost
                } else {
                    Transience::Final
                }
            }
            _ => Transience::Final,
        }
    }
}

/// Whether a dispatch failure never reached a server: the connection was
/// refused, or the endpoint's name did not resolve.
fn never_reached(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(cause) = current {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        if cause.to_string().starts_with("dns error") {
            return true;
        }
        current = cause.source();
    }
    false
}

/// A failed try of a request whose answer's body streams in after the request
/// returned (GetObject, GetJobOutput): the request itself, or its body.
#[derive(Debug)]
pub enum FetchError<E> {
    // Boxed: an SdkError is hundreds of bytes.
    Request(Box<SdkError<E, HttpResponse>>),
    /// The body broke off or ended short of its length (see [`read_body`]).
    CutShort(String),
}

impl<E> From<SdkError<E, HttpResponse>> for FetchError<E> {
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        FetchError::Request(Box::new(err))
    }
}

impl<E: ProvideErrorMetadata> Classify for FetchError<E> {
    fn transience(&self) -> Transience {
        match self {
            FetchError::Request(e) => e.transience(),
            FetchError::CutShort(_) => Transience::Lost,
        }
    }
}

impl<E> FetchError<E> {
    /// One line for a body that kept breaking off; `explain` for the request.
    pub fn explain(
        &self,
        what: &str,
        explain: impl Fn(&SdkError<E, HttpResponse>) -> anyhow::Error,
    ) -> anyhow::Error {
        match self {
            FetchError::Request(e) => explain(e),
            FetchError::CutShort(cause) => anyhow::anyhow!(
                "the answers from AWS for {what} kept breaking off ({cause}) after several tries; check the network and try again"
            ),
        }
    }
}

/// Reads a streamed body whole. A body that breaks off, or whose length is not
/// the `expected` one the answer announced, is a lost answer to try again (the
/// caller's [`FetchError::CutShort`]), never the store's data.
///
/// Under a download limit the body is read as `limiter` grants it, a piece at a
/// time (the connection's flow control holds the sender back meanwhile).
pub async fn read_body(
    mut body: ByteStream,
    expected: Option<u64>,
    limiter: &Limiter,
) -> Result<Bytes, String> {
    let broke_off = |e: &(dyn std::error::Error + 'static)| {
        format!("the answer broke off: {}", deepest_cause(e))
    };
    let bytes = if limiter.may_limit() {
        let mut bytes = Vec::with_capacity(expected.unwrap_or(0).min(64 << 20) as usize);
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| broke_off(&e))?;
            limiter.take(piece.len() as u64).await;
            bytes.extend_from_slice(&piece);
        }
        Bytes::from(bytes)
    } else {
        body.collect()
            .await
            .map_err(|e| broke_off(&e))?
            .into_bytes()
    };
    match expected {
        Some(n) if bytes.len() as u64 != n => Err(format!(
            "the answer held {} of the {n} bytes it announced",
            bytes.len()
        )),
        _ => Ok(bytes),
    }
}

/// The tries of one call: how many so far, and whether an answer was lost on
/// the way (a write may then have landed already).
#[derive(Debug)]
pub struct Tries {
    call: Call,
    tried: u32,
    lost: bool,
}

impl Tries {
    pub fn new(call: Call) -> Tries {
        Tries {
            call,
            tried: 0,
            lost: false,
        }
    }

    /// Whether an earlier try's answer was lost: its request may have landed.
    pub fn lost_before(&self) -> bool {
        self.lost
    }

    /// After a failed try: counts a throttling answer, and returns true, having
    /// waited its backoff, when the policy allows another try.
    pub async fn again(&mut self, transience: Transience) -> bool {
        match self.next_wait(transience) {
            Some(wait) => {
                tokio::time::sleep(wait).await;
                true
            }
            None => false,
        }
    }

    /// What [`Tries::again`] decides: the wait before another try, or None.
    fn next_wait(&mut self, transience: Transience) -> Option<Duration> {
        self.tried += 1;
        let limit = match transience {
            Transience::Final => return None,
            Transience::Throttled => {
                THROTTLE_SIGNALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.call.attempts()
            }
            Transience::Lost => {
                self.lost = true;
                self.call.attempts()
            }
            Transience::Unreachable => UNREACHABLE_ATTEMPTS.min(self.call.attempts()),
        };
        (self.tried < limit).then(|| backoff(self.tried))
    }
}

/// Runs `op` (one try of a request: build it and send it, and read its body if
/// it streams one) until it succeeds or the policy says stop (module docs).
pub async fn send<T, Er, F, Fut>(call: Call, mut op: F) -> Result<T, Er>
where
    Er: Classify,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Er>>,
{
    let mut tries = Tries::new(call);
    loop {
        match op().await {
            Ok(out) => return Ok(out),
            Err(e) => {
                if !tries.again(e.transience()).await {
                    return Err(e);
                }
            }
        }
    }
}

/// Exponential backoff with full jitter: 0..min(20 s, 100 ms × 2^attempt).
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms = (100u64 << attempt.min(8)).min(20_000);
    let mut byte = [0u8; 2];
    let _ = getrandom::fill(&mut byte);
    let fraction = u16::from_le_bytes(byte) as u64;
    Duration::from_millis(cap_ms * fraction / u16::MAX as u64)
}

/// A fresh token for a request AWS deduplicates (DynamoDB's
/// ClientRequestToken): 32 hex digits.
pub fn request_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for a request token: {e}"))?;
    Ok(hex::encode(bytes))
}

/// An SDK error explained in one line, keeping the service's error code so a
/// caller can tell a missing resource from other failures (a deletion treats an
/// archive that is already gone as deleted).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AwsError {
    pub message: String,
    /// The service's error code, when the service answered.
    pub code: Option<String>,
}

impl AwsError {
    /// The service said the resource (vault, archive, table, job) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("ResourceNotFoundException" | "VaultNotFound" | "NoSuchVault")
        )
    }

    /// Whether this is passing trouble of the network or the service (no
    /// answer, a timeout, an unreadable or cut answer, throttling, a server
    /// error), which running again later may not meet, rather than a definite
    /// refusal of what was asked (a missing resource, access denied…).
    pub fn is_transient(&self) -> bool {
        match self.code.as_deref() {
            None => true,
            Some(code) => [THROTTLING_CODES, SERVER_FAULT_CODES, CORRUPTED_CODES]
                .iter()
                .any(|codes| codes.contains(&code)),
        }
    }

    /// Whether some cause in an error's chain is a not-found answer from AWS.
    pub fn in_chain_is_not_found(err: &anyhow::Error) -> bool {
        err.chain().any(|cause| {
            cause
                .downcast_ref::<AwsError>()
                .is_some_and(AwsError::is_not_found)
        })
    }
}

/// Error codes of a body corrupted on its way: passing trouble, not a refusal.
const CORRUPTED_CODES: &[&str] = &["BadDigest", "XAmzContentSHA256Mismatch"];

/// One clear line for an SDK error, once the retry policy has given up. `what`
/// names the resource ("Glacier vault \"photos\"", "DynamoDB table \"firn\"").
pub fn explain<E>(err: &SdkError<E, HttpResponse>, what: &str) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let status = service.raw().status().as_u16();
            match e.code() {
                Some(code) => explain_code(code, e.message().unwrap_or(""), what),
                // No error code (a HEAD answer has no body to carry one): the
                // HTTP status says what happened.
                None => match err.transience() {
                    Transience::Throttled => format!(
                        "AWS kept throttling requests for {what} (HTTP {status}) after several tries; try again later or lower --concurrency"
                    ),
                    Transience::Lost if status >= 500 => format!(
                        "AWS kept failing requests for {what} (HTTP {status}) after several tries; try again later"
                    ),
                    Transience::Lost => format!(
                        "the answers from AWS for {what} kept arriving cut short or unreadable after several tries; check the network and the endpoint URL, and try again"
                    ),
                    _ => format!(
                        "AWS refused the request for {what} with HTTP {status} and no error code{}",
                        e.message().map(|m| format!(": {m}")).unwrap_or_default()
                    ),
                },
            }
        }
        SdkError::DispatchFailure(failure) => {
            let cause = std::error::Error::source(err)
                .map(deepest_cause)
                .unwrap_or_else(|| format!("{failure:?}"));
            if failure.is_timeout() {
                format!(
                    "timed out reaching AWS for {what} ({cause}); check the network and try again"
                )
            } else if err.transience() == Transience::Lost {
                format!(
                    "the connection to AWS for {what} kept dropping ({cause}) after several tries; check the network and try again"
                )
            } else {
                format!(
                    "cannot reach AWS for {what}: {cause}; check the network, the region and the endpoint URL"
                )
            }
        }
        SdkError::TimeoutError(_) => {
            format!("timed out talking to AWS about {what}; check the network and try again")
        }
        SdkError::ConstructionFailure(_) => {
            let cause = std::error::Error::source(err)
                .map(deepest_cause)
                .unwrap_or_default();
            if cause.to_lowercase().contains("credential") {
                // Nothing was sent: the configuration is what needs changing.
                return crate::model::usage(format!(
                    "no usable AWS credentials for {what} ({cause}); configure them through the standard chain (AWS_* environment, ~/.aws profiles, SSO, instance role)"
                ));
            } else {
                format!("cannot build the request for {what}: {cause}")
            }
        }
        SdkError::ResponseError(_) => {
            let cause = std::error::Error::source(err)
                .map(deepest_cause)
                .unwrap_or_default();
            format!(
                "the answers from AWS for {what} kept arriving cut short or unreadable ({cause}) after several tries; check the network and the endpoint URL, and try again"
            )
        }
        other => format!("AWS error for {what}: {}", deepest_cause(other)),
    };
    let code = match err {
        SdkError::ServiceError(service) => service.err().code().map(str::to_owned),
        _ => None,
    };
    AwsError { message, code }.into()
}

fn explain_code(code: &str, message: &str, what: &str) -> String {
    match code {
        "ResourceNotFoundException" | "NoSuchVault" | "VaultNotFound" => {
            format!("{what} does not exist; create it with `firn init`")
        }
        "AccessDeniedException" | "AccessDenied" => format!(
            "access denied to {what} ({message}); check the IAM policy of the credentials in use"
        ),
        "ExpiredTokenException" | "ExpiredToken" | "RequestExpired" => format!(
            "the AWS credentials have expired ({what}); refresh them (e.g. `aws sso login`) and run again"
        ),
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "MissingAuthenticationTokenException" => format!(
            "AWS rejected the credentials for {what} ({code}); check the access key, secret and profile in use"
        ),
        "NoLongerSupportedException" => format!(
            "the Glacier vault API is closed to this account: AWS stopped opening it to new customers on 2025-12-15 ({what}). \
             Use the embedded default store (store = {{ kind = \"local\" }}) or, once available, firn's S3 store with a Glacier storage class"
        ),
        _ if THROTTLING_CODES.contains(&code) => format!(
            "AWS kept throttling requests for {what} ({code}) after several tries; try again later or lower --concurrency"
        ),
        _ if SERVER_FAULT_CODES.contains(&code) => format!(
            "AWS kept failing requests for {what} ({code}) after several tries; try again later"
        ),
        _ => format!("AWS refused the request for {what}: {code}: {message}"),
    }
}

fn deepest_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The resource (vault, table, upload, job) does not exist. Servers spell it
/// differently (ResourceNotFoundException, VaultNotFound), all with HTTP 404.
pub fn is_not_found<E>(err: &SdkError<E>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => {
            matches!(
                service.err().code(),
                Some("ResourceNotFoundException" | "VaultNotFound" | "NoSuchVault")
            ) || service.raw().status().as_u16() == 404
        }
        _ => false,
    }
}

/// The service answered with this error code.
pub fn has_code<E: ProvideErrorMetadata>(err: &SdkError<E>, code: &str) -> bool {
    matches!(err, SdkError::ServiceError(service) if service.err().code() == Some(code))
}

/// Keeps the first of several `Content-Type` headers in a response. Some
/// AWS-compatible servers (fakecloud's GetJobOutput) send the header twice, which
/// the SDK refuses to parse; AWS itself sends one, so this changes nothing there.
#[derive(Debug)]
pub struct SingleContentType;

impl aws_sdk_glacier::config::Intercept for SingleContentType {
    fn name(&self) -> &'static str {
        "SingleContentType"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_glacier::config::interceptors::BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &aws_sdk_glacier::config::RuntimeComponents,
        _cfg: &mut aws_sdk_glacier::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let headers = context.response_mut().headers_mut();
        let values: Vec<String> = headers.get_all("content-type").map(str::to_owned).collect();
        if let [first, _, ..] = values.as_slice() {
            headers.remove("content-type");
            headers.insert("content-type", first.clone());
        }
        Ok(())
    }
}

/// Throttling answers seen from any AWS service since the process started
/// (every try counts, see [`Tries::again`]): uploads lower how many they keep
/// in flight when it grows.
static THROTTLE_SIGNALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many throttling answers AWS has given so far.
pub fn throttle_signals() -> u64 {
    THROTTLE_SIGNALS.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use aws_sdk_glacier::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_glacier::operation::describe_vault::DescribeVaultError;
    use aws_sdk_glacier::primitives::SdkBody;

    use super::*;

    /// An answer of the service with `status` and, when given, an error code.
    fn answer(status: u16, code: Option<&str>) -> SdkError<DescribeVaultError, HttpResponse> {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let status = status.try_into().expect("a status code");
        SdkError::service_error(
            DescribeVaultError::generic(meta.build()),
            HttpResponse::new(status, SdkBody::empty()),
        )
    }

    fn io(kind: std::io::ErrorKind) -> SdkError<DescribeVaultError, HttpResponse> {
        SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::from(kind))))
    }

    #[test]
    fn throttling_lost_answers_and_refusals_are_told_apart() {
        // A HEAD answer has no body, so no code: its status says it.
        assert_eq!(answer(503, None).transience(), Transience::Throttled);
        assert_eq!(answer(429, None).transience(), Transience::Throttled);
        assert_eq!(
            answer(400, Some("ThrottlingException")).transience(),
            Transience::Throttled
        );
        assert_eq!(answer(500, None).transience(), Transience::Lost);
        assert_eq!(
            answer(200, Some("InternalError")).transience(),
            Transience::Lost,
            "S3's 200 with an error inside"
        );
        assert_eq!(
            answer(200, None).transience(),
            Transience::Lost,
            "a success the SDK could not read"
        );
        assert_eq!(
            io(std::io::ErrorKind::ConnectionReset).transience(),
            Transience::Lost
        );
        assert_eq!(
            io(std::io::ErrorKind::ConnectionRefused).transience(),
            Transience::Unreachable
        );
        // The service's own answers stand.
        assert_eq!(answer(404, None).transience(), Transience::Final);
        assert_eq!(
            answer(404, Some("NotFound")).transience(),
            Transience::Final
        );
        assert_eq!(
            answer(400, Some("ConditionalCheckFailedException")).transience(),
            Transience::Final
        );
        assert_eq!(
            answer(403, Some("AccessDenied")).transience(),
            Transience::Final
        );
    }

    #[test]
    fn a_lost_answer_is_never_called_a_refusal() {
        let line = |e| explain(&e, "S3 bucket \"b\"").to_string();
        let throttled = line(answer(503, None));
        assert!(
            throttled.contains("throttling") && throttled.contains("503"),
            "{throttled}"
        );
        let failing = line(answer(500, None));
        assert!(failing.contains("kept failing"), "{failing}");
        let unreadable = line(answer(200, None));
        assert!(
            unreadable.contains("cut short or unreadable"),
            "{unreadable}"
        );
        let dropped = line(io(std::io::ErrorKind::ConnectionReset));
        assert!(dropped.contains("kept dropping"), "{dropped}");
        let refused = line(io(std::io::ErrorKind::ConnectionRefused));
        assert!(refused.contains("cannot reach"), "{refused}");
        for text in [throttled, failing, unreadable, dropped] {
            assert!(!text.contains("refused"), "{text}");
        }
    }

    #[test]
    fn tries_stop_where_the_policy_says() {
        let count = |call, transience| {
            let mut tries = Tries::new(call);
            let mut n = 1;
            while tries.next_wait(transience).is_some() {
                n += 1;
            }
            n
        };
        assert_eq!(count(Call::Read, Transience::Throttled), 12);
        assert_eq!(count(Call::Read, Transience::Lost), 12);
        assert_eq!(count(Call::Write, Transience::Lost), 10);
        assert_eq!(count(Call::Read, Transience::Unreachable), 3);
        assert_eq!(count(Call::Read, Transience::Final), 1);
        let before = throttle_signals();
        let mut tries = Tries::new(Call::Write);
        assert!(tries.next_wait(Transience::Throttled).is_some());
        assert!(
            throttle_signals() > before,
            "a throttling answer is counted"
        );
        assert!(!tries.lost_before());
        assert!(tries.next_wait(Transience::Lost).is_some());
        assert!(tries.lost_before(), "a write may have landed");
    }

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_cap() {
        for attempt in 1..20 {
            let cap = Duration::from_millis((100u64 << attempt.min(8)).min(20_000));
            for _ in 0..50 {
                assert!(backoff(attempt) <= cap);
            }
        }
        assert!(backoff(30) <= Duration::from_secs(20));
    }
}
