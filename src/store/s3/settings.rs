//! The S3 store's settings and vocabulary: storage classes, the checksum S3
//! verifies, the SDK client, and S3's errors in one line each.

use anyhow::Result;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types as s3t;
use serde::Deserialize;

use crate::aws::{self, AwsSettings};
use crate::model::Tier;
use crate::store::DOWNLOAD_RANGE;
use crate::store::requests::RequestCounter;

pub(super) const MIB: u64 = 1 << 20;
pub(super) const MAX_PARTS: u64 = 10_000;
/// Parts are at least this large (S3 needs 5 MiB; 16 MiB is a node of the tree
/// hash, so each downloaded part is checked on its own and joins the whole).
pub(super) const MIN_PART: u64 = DOWNLOAD_RANGE;
/// S3 keys are at most 1,024 bytes.
pub(super) const KEY_MAX: usize = 1024;
/// User metadata is at most 2 KB, its name included.
pub const METADATA_MAX: usize = 2000;
pub(super) const METADATA_NAME: &str = "firn";
pub(super) const TAG_SHA1: &str = "firn-sha1";
pub(super) const TAG_TREE: &str = "firn-tree";
/// The pseudo job id of a listing: S3 lists at once, no job needed.
pub(super) const LISTING_JOB: &str = "s3-listing";

/// The storage classes firn writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    #[default]
    DeepArchive,
    Glacier,
    #[serde(rename = "GLACIER_IR")]
    GlacierIr,
    Standard,
}

impl StorageClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
            StorageClass::Glacier => "GLACIER",
            StorageClass::GlacierIr => "GLACIER_IR",
            StorageClass::Standard => "STANDARD",
        }
    }

    pub(super) fn sdk(self) -> s3t::StorageClass {
        match self {
            StorageClass::DeepArchive => s3t::StorageClass::DeepArchive,
            StorageClass::Glacier => s3t::StorageClass::Glacier,
            StorageClass::GlacierIr => s3t::StorageClass::GlacierIr,
            StorageClass::Standard => s3t::StorageClass::Standard,
        }
    }

    /// Objects of this class must be restored before they can be read.
    pub fn needs_restore(self) -> bool {
        matches!(self, StorageClass::DeepArchive | StorageClass::Glacier)
    }

    /// The retrieval tiers S3 offers for the class (Deep Archive has no
    /// Expedited; classes read directly take any, as they need no restore).
    pub fn tiers(self) -> Vec<Tier> {
        match self {
            StorageClass::DeepArchive => vec![Tier::Standard, Tier::Bulk],
            _ => Tier::ALL.to_vec(),
        }
    }

    /// Amazon's published restore times, seconds (from, to).
    pub fn expected_wait(self, tier: Tier) -> (u64, u64) {
        match (self, tier) {
            (StorageClass::DeepArchive, Tier::Bulk) => (12 * 3600, 48 * 3600),
            (StorageClass::DeepArchive, _) => (9 * 3600, 12 * 3600),
            (StorageClass::Glacier, Tier::Expedited) => (60, 5 * 60),
            (StorageClass::Glacier, Tier::Standard) => (3 * 3600, 5 * 3600),
            (StorageClass::Glacier, Tier::Bulk) => (5 * 3600, 12 * 3600),
            (StorageClass::GlacierIr | StorageClass::Standard, _) => (0, 0),
        }
    }

    pub(super) fn from_sdk(class: Option<&s3t::StorageClass>) -> Option<StorageClass> {
        Some(match class? {
            s3t::StorageClass::DeepArchive => StorageClass::DeepArchive,
            s3t::StorageClass::Glacier => StorageClass::Glacier,
            s3t::StorageClass::GlacierIr => StorageClass::GlacierIr,
            s3t::StorageClass::Standard => StorageClass::Standard,
            _ => return None,
        })
    }
}

/// Which checksum S3 verifies on every request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumChoice {
    #[default]
    Crc32c,
    /// Content-MD5, for S3-compatible servers that refuse the newer headers.
    Md5,
}

/// `store = { kind = "s3", bucket = "…", … }` in a set's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: String,
    /// Prepended to every key (e.g. `"firn/photos/"`).
    pub prefix: Option<String>,
    /// DEEP_ARCHIVE (the default), GLACIER, GLACIER_IR or STANDARD.
    pub storage_class: Option<StorageClass>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), for S3-compatible servers.
    pub force_path_style: Option<bool>,
    /// How long a restored copy stays readable (default 3 days).
    pub restore_days: Option<u32>,
    pub checksum: Option<ChecksumChoice>,
    /// Largest file sent in one PutObject (default 16 MiB).
    pub single_upload_max: Option<u64>,
    /// Memory for parts in flight, all uploads together (default 256 MiB).
    pub part_memory_budget: Option<u64>,
    /// Parts in flight per upload (default 4).
    pub part_concurrency: Option<usize>,
    /// Multipart uploads nothing resumes are aborted once older than this.
    pub abandoned_after_hours: Option<u64>,
}

impl S3Settings {
    pub fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }

    pub fn class(&self) -> StorageClass {
        self.storage_class.unwrap_or_default()
    }
}

/// The SDK client for these settings (path style for S3-compatible servers; firn
/// chooses the checksum itself rather than the SDK's default CRC32).
/// The S3 client of `settings`, each billed request it sends counted in `requests`.
pub(super) async fn client(
    settings: &S3Settings,
    requests: &RequestCounter,
) -> Result<(Client, String)> {
    let config = aws::sdk_config(&settings.aws()).await?;
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let s3_config = aws_sdk_s3::config::Builder::from(&config)
        .interceptor(requests.interceptor())
        .force_path_style(settings.force_path_style.unwrap_or(false))
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    Ok((Client::from_conf(s3_config), region))
}

/// One clear line for an S3 error (see [`aws::explain`]), with the S3-specific
/// cases: a missing bucket, a bucket in another region, checksums refused.
pub(super) fn explain<E>(
    err: &aws_sdk_s3::error::SdkError<E>,
    what: &str,
    checksum: ChecksumChoice,
) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let aws_sdk_s3::error::SdkError::ServiceError(service) = err {
        let code = service.err().code().unwrap_or("");
        let raw = service.raw();
        let message = service.err().message().unwrap_or("");
        let line = match code {
            "NoSuchBucket" => Some(format!("{what} does not exist; create it with `firn init`")),
            "PermanentRedirect"
            | "AuthorizationHeaderMalformed"
            | "IllegalLocationConstraintException" => {
                let region = raw
                    .headers()
                    .get("x-amz-bucket-region")
                    .map(str::to_owned)
                    .unwrap_or_else(|| "another region".into());
                Some(format!(
                    "{what} is in {region}, not in the region firn used; set `region = \"{region}\"` in the set's store config"
                ))
            }
            "InvalidStorageClass" => Some(format!(
                "{what} refused the storage class ({message}); use DEEP_ARCHIVE, GLACIER, GLACIER_IR or STANDARD"
            )),
            "BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch" => Some(format!(
                "{what} received bytes that do not match their checksum ({code}): corrupted in transit; nothing was recorded, run again"
            )),
            "InvalidRequest" | "NotImplemented" | "InvalidArgument"
                if checksum == ChecksumChoice::Crc32c
                    && message.to_lowercase().contains("checksum") =>
            {
                Some(format!(
                    "{what} refused firn's CRC32C checksum headers ({code}: {message}); for an S3-compatible server that does not support them, set `checksum = \"md5\"` in the set's store config"
                ))
            }
            _ => None,
        };
        if let Some(message) = line {
            return aws::AwsError {
                message,
                code: Some(code.to_string()),
            }
            .into();
        }
        // A HEAD answer has no body to carry a code: its status says it.
        let region = raw.headers().get("x-amz-bucket-region").map(str::to_owned);
        match (code, raw.status().as_u16()) {
            // Definite refusals, with the code the status stands for.
            ("", 301) => {
                let region = region.unwrap_or_else(|| "another region".into());
                return aws::AwsError {
                    message: format!(
                        "{what} is in {region}, not in the region firn used; set `region = \"{region}\"` in the set's store config"
                    ),
                    code: Some("PermanentRedirect".into()),
                }
                .into();
            }
            ("", 403) => {
                return aws::AwsError {
                    message: format!(
                        "access denied to {what}; check the IAM policy of the credentials in use"
                    ),
                    code: Some("AccessDenied".into()),
                }
                .into();
            }
            _ => {}
        }
    }
    aws::explain(err, what)
}
