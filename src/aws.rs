//! What the Amazon backends share: SDK configuration from the standard credential
//! chain (never a key on the command line or in a file firn writes), retries, and
//! turning SDK errors into one line that names the problem and the fix.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_glacier::error::{ProvideErrorMetadata, SdkError};

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
    // Throttling, 5xx, timeouts and dropped connections are retried by the SDK
    // with exponential backoff and jitter; firn adds its own retry per part.
    let retry = RetryConfig::standard()
        .with_max_attempts(6)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(20));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(600))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
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
            Some(code) => TRANSIENT_CODES.contains(&code),
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

/// Error codes of failures that are the service's passing trouble, not a
/// refusal of what was asked.
const TRANSIENT_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestTimeout",
    "RequestTimeoutException",
    "BadDigest",
    "XAmzContentSHA256Mismatch",
];

/// One clear line for an SDK error. `what` names the resource ("Glacier vault
/// \"photos\"", "DynamoDB table \"firn\"").
pub fn explain<E, R>(err: &SdkError<E, R>, what: &str) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let message = match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match e.code() {
                Some(code) => explain_code(code, e.message().unwrap_or(""), what),
                // No error code: say what the service did answer.
                None => format!(
                    "AWS refused the request for {what} with no error code ({}){}",
                    deepest_cause(e),
                    e.message().map(|m| format!(": {m}")).unwrap_or_default()
                ),
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
            format!("unreadable answer from AWS for {what}; is the endpoint an AWS service?")
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
        "ThrottlingException"
        | "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded"
        | "SlowDown" => {
            format!(
                "AWS kept throttling requests for {what} after several retries; try again later or lower --concurrency"
            )
        }
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

/// Whether an error is worth another try by firn itself (after the SDK's own).
pub fn is_transient<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("");
            matches!(
                code,
                "ThrottlingException"
                    | "RequestTimeoutException"
                    | "ServiceUnavailableException"
                    | "SlowDown"
                    | "InternalFailure"
                    | "InternalServerError"
            ) || code.is_empty()
        }
        _ => false,
    }
}

/// How many times firn itself tries a request (each try has the SDK's own
/// retries inside, until the SDK's retry quota runs dry in a long storm).
pub const ATTEMPTS: u32 = 8;

/// Runs `op` again on transient errors (after the SDK's own retries gave up),
/// waiting with exponential backoff and jitter, up to `attempts` times in all.
pub async fn retry_transient<T, E, F, Fut>(attempts: u32, mut op: F) -> Result<T, SdkError<E>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E>>>,
    E: ProvideErrorMetadata,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if is_transient(&e) && attempt + 1 < attempts => {
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
            outcome => return outcome,
        }
    }
}

/// Exponential backoff with full jitter: 0..(base × 2^attempt), capped.
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms = (200u64 << attempt.min(8)).min(20_000);
    let mut byte = [0u8; 2];
    let _ = getrandom::fill(&mut byte);
    let fraction = u16::from_le_bytes(byte) as u64;
    Duration::from_millis(cap_ms * fraction / u16::MAX as u64)
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
/// (each retried attempt counts): uploads lower how many they keep in flight
/// when it grows.
static THROTTLE_SIGNALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many throttling answers AWS has given so far.
pub fn throttle_signals() -> u64 {
    THROTTLE_SIGNALS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Counts throttling answers (HTTP 429 and 503, or an error type naming
/// throttling) on every attempt, including the ones the SDK retries itself.
#[derive(Debug)]
pub struct CountThrottling;

impl aws_sdk_glacier::config::Intercept for CountThrottling {
    fn name(&self) -> &'static str {
        "CountThrottling"
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_glacier::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_glacier::config::RuntimeComponents,
        _cfg: &mut aws_sdk_glacier::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(response) = context.response() {
            let status = response.status().as_u16();
            let error_type = response.headers().get("x-amzn-errortype").unwrap_or("");
            if status == 429
                || status == 503
                || [
                    "Throttl",
                    "ProvisionedThroughputExceeded",
                    "RequestLimitExceeded",
                ]
                .iter()
                .any(|t| error_type.contains(t))
            {
                THROTTLE_SIGNALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }
}
