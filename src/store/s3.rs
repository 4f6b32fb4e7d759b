//! Amazon S3 with a storage class (aws-sdk-s3): the Amazon path for every account
//! opened since the Glacier vault API closed to new customers on 2025-12-15.
//!
//! - **One object per archive version.** The key is the file's path as a person
//!   would recognise it in the console, a "folder" per file holding its versions:
//!   `<prefix><path>/<UTC time>-<random>`. Keys are valid UTF-8 and at most 1,024
//!   bytes whatever the name: bytes that are not UTF-8 are `\xHH` as in catalog
//!   keys, control characters are escaped the same way, and a path too long keeps
//!   its beginning and its file name around a `…`. The archive id is the key.
//! - **Self-describing.** Each object carries firn's record in its metadata
//!   (`x-amz-meta-firn`, at most [`METADATA_MAX`] characters: path, raw name bytes,
//!   size, mtime, SHA-1, tree hash), so a bucket listing rebuilds the catalog. A
//!   multipart object is created before its content is hashed: its SHA-1 and tree
//!   hash go in tags (`firn-sha1`, `firn-tree`) once it is complete.
//! - **The class is set at creation** (PutObject, CreateMultipartUpload), never by a
//!   copy or a lifecycle transition.
//! - **Verified uploads.** Every request body carries a checksum S3 verifies
//!   (CRC32C by default; Content-MD5 with `checksum = "md5"` for S3-compatible
//!   servers that refuse the newer headers), and the checksum S3 reports back is
//!   compared with the local one before anything is recorded. Multipart parts are
//!   16 MiB × 2^n (at most 10,000), within the memory budget all uploads share; an
//!   interrupted upload resumes through ListParts, each part re-read and compared.
//! - **Retrieval.** GLACIER and DEEP_ARCHIVE objects are restored (RestoreObject with
//!   a tier and `restore_days`); the "job" is the object itself, followed through
//!   HeadObject's `x-amz-restore` header. GLACIER_IR and STANDARD read at once.
//!   Downloads go part by part (`GET ?partNumber=N`), each checked against the
//!   part's checksum; a GET refused with InvalidObjectState is "not restored yet".

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    self as s3t, ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use md5::Digest as _;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::{
    ArchiveListing, DOWNLOAD_RANGE, Inventory, JobOutput, JobState, PartCheck, Store,
    StoredArchive, StoredPart, Upload,
};
use crate::aws::{self, AwsSettings};
use crate::model::{Tier, TreeHash, UNKNOWN_TREE_HASH, now_secs, usage};

const MIB: u64 = 1 << 20;
const MAX_PARTS: u64 = 10_000;
/// Parts are at least this large (S3 needs 5 MiB; 16 MiB is a node of the tree
/// hash, so each downloaded part is checked on its own and joins the whole).
const MIN_PART: u64 = DOWNLOAD_RANGE;
/// S3 keys are at most 1,024 bytes.
const KEY_MAX: usize = 1024;
/// User metadata is at most 2 KB, its name included.
pub const METADATA_MAX: usize = 2000;
const METADATA_NAME: &str = "firn";
const TAG_SHA1: &str = "firn-sha1";
const TAG_TREE: &str = "firn-tree";
/// The pseudo job id of a listing: S3 lists at once, no job needed.
const LISTING_JOB: &str = "s3-listing";

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

    fn sdk(self) -> s3t::StorageClass {
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

    fn from_sdk(class: Option<&s3t::StorageClass>) -> Option<StorageClass> {
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    region: String,
    class: StorageClass,
    restore_days: i32,
    checksum: ChecksumChoice,
    single_upload_max: u64,
    budget: u64,
    part_concurrency: usize,
    abandoned_after_secs: i64,
    /// One permit per MiB of part data in flight, shared by every upload.
    memory: Arc<Semaphore>,
    /// How each object read so far was uploaded.
    shapes: std::sync::Mutex<HashMap<String, Shape>>,
}

/// The SDK client for these settings (path style for S3-compatible servers; firn
/// chooses the checksum itself rather than the SDK's default CRC32).
async fn client(settings: &S3Settings) -> Result<(Client, String)> {
    let config = aws::sdk_config(&settings.aws()).await?;
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let s3_config = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(settings.force_path_style.unwrap_or(false))
        .request_checksum_calculation(
            aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
        )
        .response_checksum_validation(
            aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
        )
        .build();
    Ok((Client::from_conf(s3_config), region))
}

impl S3Store {
    pub async fn connect(settings: &S3Settings) -> Result<Self> {
        let (client, region) = client(settings).await?;
        let budget = settings.part_memory_budget.unwrap_or(256 * MIB).max(MIN_PART);
        let mut prefix = settings.prefix.clone().unwrap_or_default();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(S3Store {
            client,
            bucket: settings.bucket.clone(),
            prefix,
            region,
            class: settings.class(),
            restore_days: settings.restore_days.unwrap_or(3).max(1) as i32,
            checksum: settings.checksum.unwrap_or_default(),
            single_upload_max: settings.single_upload_max.unwrap_or(16 * MIB),
            budget,
            part_concurrency: settings.part_concurrency.unwrap_or(4).max(1),
            abandoned_after_secs: settings.abandoned_after_hours.unwrap_or(24) as i64 * 3600,
            memory: Arc::new(Semaphore::new((budget / MIB) as usize)),
            shapes: std::sync::Mutex::new(HashMap::new()),
        })
    }

    fn what(&self) -> String {
        format!("S3 bucket {:?} in {}", self.bucket, self.region)
    }

    fn explain<E>(&self, err: &aws_sdk_s3::error::SdkError<E>) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        explain(err, &self.what(), self.checksum)
    }

    /// Part size: the smallest 16 MiB × 2^n that keeps the file within 10,000
    /// parts (parts in flight stay within the memory budget through its permits).
    pub fn choose_part_size(size: u64) -> u64 {
        let mut part = MIN_PART;
        while size.div_ceil(part) > MAX_PARTS {
            part *= 2;
        }
        part
    }

    /// A new object key for a version of `key` (see the module docs).
    fn object_key(&self, key: &str) -> String {
        let mut stamp = [0u8; 4];
        let _ = getrandom::fill(&mut stamp);
        let version = format!(
            "{}-{}",
            crate::fmt::format_time_utc_compact(now_secs()),
            hex::encode(stamp)
        );
        object_key(&self.prefix, key, &version)
    }

    async fn head(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            Err(e) if aws::is_not_found(&e) => Ok(None),
            Err(e) => Err(self.explain(&e)),
        }
    }

    fn single(&self, key: String, size: u64) -> SingleUpload {
        SingleUpload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key,
            class: self.class,
            checksum: self.checksum,
            what: self.what(),
            body: Vec::with_capacity(size as usize),
        }
    }

    fn multipart(&self, key: String, upload_id: String, part_size: u64) -> MultipartUpload {
        MultipartUpload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key,
            upload_id,
            part_size,
            checksum: self.checksum,
            what: self.what(),
            in_flight: JoinSet::new(),
            max_in_flight: self.part_concurrency,
            memory: Arc::clone(&self.memory),
            budget_mib: (self.budget / MIB) as u32,
            done: BTreeMap::new(),
        }
    }

}

fn token(key: &str, upload_id: &str, part_size: u64) -> String {
    format!("s3:{part_size}:{upload_id}:{key}")
}

/// Part size, upload id and key of a resume token (the key comes last: it may
/// hold colons; upload ids do not).
fn parse_token(token: &str) -> Option<(u64, &str, &str)> {
    let rest = token.strip_prefix("s3:")?;
    let (size, rest) = rest.split_once(':')?;
    let (upload_id, key) = rest.split_once(':')?;
    Some((size.parse().ok()?, upload_id, key))
}

/// `<prefix><path>/<version>` within 1,024 bytes of valid UTF-8 (see the module
/// docs): control characters escaped, an overlong path shortened around a `…`
/// keeping its beginning and its file name.
pub fn object_key(prefix: &str, key: &str, version: &str) -> String {
    let mut path = String::with_capacity(key.len());
    for c in key.chars() {
        if c.is_control() {
            for byte in c.to_string().bytes() {
                path.push_str(&format!("\\x{byte:02X}"));
            }
        } else {
            path.push(c);
        }
    }
    let room = KEY_MAX.saturating_sub(prefix.len() + 1 + version.len());
    if path.len() > room {
        let name = path.rsplit('/').next().unwrap_or("").to_string();
        let name = truncate_to(&name, room / 2);
        let head = truncate_to(&path, room.saturating_sub(name.len() + "…/".len()));
        path = format!("{head}…/{name}");
    }
    format!("{prefix}{path}/{version}")
}

/// The longest prefix of `text` of at most `max` bytes, ending on a character.
fn truncate_to(text: &str, max: usize) -> String {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// One clear line for an S3 error (see [`aws::explain`]), with the S3-specific
/// cases: a missing bucket, a bucket in another region, checksums refused.
fn explain<E>(
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
            "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" => {
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
            "BadDigest" | "InvalidDigest" => Some(format!(
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
        if raw.status().as_u16() == 301 {
            let region = raw
                .headers()
                .get("x-amz-bucket-region")
                .unwrap_or("another region")
                .to_string();
            return anyhow!(
                "{what} is in {region}, not in the region firn used; set `region = \"{region}\"` in the set's store config"
            );
        }
    }
    aws::explain(err, what)
}

/// The checksum of one request body, as sent and as S3 reports it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyChecksum {
    Crc32c(u32),
    Md5([u8; 16]),
}

impl BodyChecksum {
    fn of(choice: ChecksumChoice, data: &[u8]) -> BodyChecksum {
        match choice {
            ChecksumChoice::Crc32c => BodyChecksum::Crc32c(crc32c::crc32c(data)),
            ChecksumChoice::Md5 => BodyChecksum::Md5(md5::Md5::digest(data).into()),
        }
    }

    fn crc32c_header(self) -> Option<String> {
        match self {
            BodyChecksum::Crc32c(crc) => Some(B64.encode(crc.to_be_bytes())),
            BodyChecksum::Md5(_) => None,
        }
    }

    fn md5_header(self) -> Option<String> {
        match self {
            BodyChecksum::Md5(digest) => Some(B64.encode(digest)),
            BodyChecksum::Crc32c(_) => None,
        }
    }

    /// Whether what S3 reported (its CRC32C, or its ETag for MD5) is this.
    fn confirmed_by(self, crc32c: Option<&str>, e_tag: Option<&str>) -> bool {
        match self {
            BodyChecksum::Crc32c(crc) => crc32c == Some(B64.encode(crc.to_be_bytes()).as_str()),
            BodyChecksum::Md5(digest) => {
                e_tag.map(|t| t.trim_matches('"').to_ascii_lowercase())
                    == Some(hex::encode(digest))
            }
        }
    }

    fn describe(self) -> String {
        match self {
            BodyChecksum::Crc32c(crc) => format!("CRC32C {}", B64.encode(crc.to_be_bytes())),
            BodyChecksum::Md5(digest) => format!("MD5 {}", hex::encode(digest)),
        }
    }

}

/// The checksum S3 reported for a body: its CRC32C and its ETag.
#[derive(Debug, Default)]
struct Reported {
    crc32c: Option<String>,
    e_tag: Option<String>,
}

impl Reported {
    fn from(crc32c: Option<&str>, e_tag: Option<&str>) -> Reported {
        Reported {
            crc32c: crc32c.map(str::to_owned),
            e_tag: e_tag.map(str::to_owned),
        }
    }

    /// Ok when S3 reported exactly `sum` for `what_body`; one line otherwise,
    /// naming the setting for servers that report no CRC32C.
    fn confirm(&self, sum: BodyChecksum, store: &str, what_body: &str) -> Result<()> {
        if sum.confirmed_by(self.crc32c.as_deref(), self.e_tag.as_deref()) {
            return Ok(());
        }
        match (sum, &self.crc32c) {
            (BodyChecksum::Crc32c(_), None) => bail!(
                "{store} reported no CRC32C for {what_body}, so firn cannot confirm what it stored; for an S3-compatible server without checksum support, set `checksum = \"md5\"` in the set's store config"
            ),
            _ => bail!(
                "{store} reported {} for {what_body}, computed {}",
                self.crc32c
                    .as_deref()
                    .or(self.e_tag.as_deref())
                    .unwrap_or("no checksum"),
                sum.describe()
            ),
        }
    }
}

/// The checksums S3 keeps for an object (HeadObject with checksums enabled).
async fn stored_checksum(client: &Client, bucket: &str, key: &str) -> Reported {
    match client
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
    {
        Ok(head) => Reported::from(head.checksum_crc32_c(), head.e_tag()),
        Err(_) => Reported::default(),
    }
}

/// What a listing needs of an object's record: its metadata, else its tags.
fn description_of(metadata: Option<&HashMap<String, String>>) -> String {
    metadata
        .and_then(|m| m.get(METADATA_NAME))
        .cloned()
        .unwrap_or_default()
}

/// `x-amz-restore: ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`.
fn parse_restore(header: &str) -> (bool, Option<i64>) {
    let ongoing = header.contains("ongoing-request=\"true\"");
    let expiry = header
        .split("expiry-date=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(parse_http_date);
    (ongoing, expiry)
}

/// `Fri, 21 Dec 2012 00:00:00 GMT` → Unix seconds.
fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, ..] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    Some(
        crate::description::days_from_civil(year.parse().ok()?, month, day.parse().ok()?) * 86_400
            + h * 3600
            + mi * 60
            + s,
    )
}

#[async_trait]
impl Store for S3Store {
    fn target(&self) -> String {
        format!("s3:{}/{}{}", self.region, self.bucket, {
            if self.prefix.is_empty() {
                String::new()
            } else {
                format!("/{}", self.prefix.trim_end_matches('/'))
            }
        })
    }

    fn kind(&self) -> String {
        format!("S3 {}", self.class.as_str())
    }

    async fn check(&self) -> Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| {
                if aws::is_not_found(&e) {
                    anyhow::Error::from(aws::AwsError {
                        message: format!("{} does not exist; create it with `firn init`", self.what()),
                        code: Some("NoSuchBucket".into()),
                    })
                } else {
                    self.explain(&e)
                }
            })?;
        Ok(())
    }

    fn part_size(&self, archive_size: u64) -> usize {
        if archive_size <= self.single_upload_max {
            MIB as usize
        } else {
            Self::choose_part_size(archive_size) as usize
        }
    }

    async fn begin_upload(&self, size: u64, description: &str) -> Result<Box<dyn Upload>> {
        let key = self.object_key(&description_key(description));
        if size <= self.single_upload_max {
            return Ok(Box::new(self.single(key, size)));
        }
        let part_size = Self::choose_part_size(size);
        let mut request = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&key)
            .storage_class(self.class.sdk())
            .metadata(METADATA_NAME, description);
        if self.checksum == ChecksumChoice::Crc32c {
            request = request.checksum_algorithm(ChecksumAlgorithm::Crc32C);
        }
        let out = request.send().await.map_err(|e| self.explain(&e))?;
        let upload_id = out
            .upload_id()
            .context("S3 returned no upload id")?
            .to_string();
        Ok(Box::new(self.multipart(key, upload_id, part_size)))
    }

    async fn resume_upload(
        &self,
        token: &str,
        size: u64,
    ) -> Result<Option<(Box<dyn Upload>, Vec<StoredPart>)>> {
        let Some((part_size, upload_id, key)) = parse_token(token) else {
            return Ok(None);
        };
        let mut upload = self.multipart(key.to_string(), upload_id.to_string(), part_size);
        let mut stored = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = match self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if aws::is_not_found(&e) || aws::has_code(&e, "NoSuchUpload") => {
                    return Ok(None);
                }
                Err(e) => return Err(self.explain(&e)),
            };
            for part in out.parts() {
                let (Some(number), Some(len)) = (part.part_number(), part.size()) else {
                    continue;
                };
                let offset = (number as u64 - 1) * part_size;
                let len = len as u64;
                if offset + len > size {
                    continue;
                }
                let check = match self.checksum {
                    ChecksumChoice::Crc32c => part
                        .checksum_crc32_c()
                        .and_then(|c| B64.decode(c).ok())
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map(|b| PartCheck::Crc32c(u32::from_be_bytes(b))),
                    ChecksumChoice::Md5 => part
                        .e_tag()
                        .and_then(|t| hex::decode(t.trim_matches('"')).ok())
                        .and_then(|b| <[u8; 16]>::try_from(b).ok())
                        .map(PartCheck::Md5),
                };
                let Some(check) = check else { continue };
                upload.done.insert(
                    number,
                    (
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(part.e_tag().map(str::to_owned))
                            .set_checksum_crc32_c(part.checksum_crc32_c().map(str::to_owned))
                            .build(),
                        None,
                    ),
                );
                stored.push(StoredPart { offset, len, check });
            }
            if out.is_truncated() != Some(true) {
                break;
            }
            marker = out.next_part_number_marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        Ok(Some((Box::new(upload), stored)))
    }

    async fn abort_abandoned(&self, keep: &[String]) -> Result<Vec<String>> {
        let keep_ids: Vec<&str> = keep
            .iter()
            .filter_map(|t| parse_token(t).map(|(_, id, _)| id))
            .collect();
        let now = now_secs();
        let mut aborted = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let out = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| self.explain(&e))?;
            for upload in out.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                let age = upload
                    .initiated()
                    .map(|t| now - t.secs())
                    .unwrap_or(0);
                if keep_ids.contains(&id) || age < self.abandoned_after_secs {
                    continue;
                }
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(|e| self.explain(&e))?;
                aborted.push(key.to_string());
            }
            if out.is_truncated() != Some(true) {
                break;
            }
            key_marker = out.next_key_marker().map(str::to_owned);
            id_marker = out.next_upload_id_marker().map(str::to_owned);
        }
        Ok(aborted)
    }

    async fn delete(&self, archive_id: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(archive_id)
            .send()
            .await
            .map_err(|e| self.explain(&e))?;
        Ok(())
    }

    async fn list(&self) -> Result<Option<Vec<ArchiveListing>>> {
        Ok(Some(self.listing().await?))
    }

    async fn request_retrieval(&self, archive_id: &str, tier: Tier) -> Result<String> {
        let head = self
            .head(archive_id)
            .await?
            .with_context(|| format!("{} has no object {archive_id}", self.what()))?;
        let class = StorageClass::from_sdk(head.storage_class()).unwrap_or(StorageClass::Standard);
        if !class.needs_restore() {
            return Ok(archive_id.to_string());
        }
        if !class.tiers().contains(&tier) {
            return Err(usage(format!(
                "{archive_id} is a {} object, which has no {tier} retrieval; choose --tier {}",
                class.as_str(),
                class
                    .tiers()
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        let s3_tier = match tier {
            Tier::Expedited => s3t::Tier::Expedited,
            Tier::Standard => s3t::Tier::Standard,
            Tier::Bulk => s3t::Tier::Bulk,
        };
        let request = s3t::RestoreRequest::builder()
            .days(self.restore_days)
            .glacier_job_parameters(
                s3t::GlacierJobParameters::builder()
                    .tier(s3_tier)
                    .build()
                    .context("restore parameters")?,
            )
            .build();
        match self
            .client
            .restore_object()
            .bucket(&self.bucket)
            .key(archive_id)
            .restore_request(request)
            .send()
            .await
        {
            Ok(_) => {}
            // A restore already on its way is the job we want.
            Err(e) if aws::has_code(&e, "RestoreAlreadyInProgress") => {}
            Err(e) => return Err(self.explain(&e)),
        }
        Ok(archive_id.to_string())
    }

    async fn job_state(&self, job_id: &str) -> Result<JobState> {
        if job_id == LISTING_JOB {
            return Ok(JobState::Ready { expires_at: None });
        }
        let Some(head) = self.head(job_id).await? else {
            return Ok(JobState::Failed(format!(
                "{} no longer has object {job_id}",
                self.what()
            )));
        };
        let class = StorageClass::from_sdk(head.storage_class()).unwrap_or(StorageClass::Standard);
        if !class.needs_restore() {
            return Ok(JobState::Ready { expires_at: None });
        }
        Ok(match head.restore().map(parse_restore) {
            Some((true, _)) => JobState::InProgress { ready_at: None },
            Some((false, expires_at)) => JobState::Ready { expires_at },
            // Never restored, or its copy expired: ask again.
            None => JobState::Gone,
        })
    }

    fn expected_wait(&self, tier: Tier) -> (u64, u64) {
        self.class.expected_wait(tier)
    }

    fn tiers(&self) -> Vec<Tier> {
        self.class.tiers()
    }

    fn download_range(&self, archive_size: u64) -> u64 {
        if archive_size <= self.single_upload_max {
            DOWNLOAD_RANGE
        } else {
            Self::choose_part_size(archive_size)
        }
    }

    async fn read_job_output(&self, job_id: &str, offset: u64, len: u64) -> Result<JobOutput> {
        if len == 0 {
            return Ok(JobOutput {
                data: Bytes::new(),
                checksum: None,
            });
        }
        let mut request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(job_id)
            .checksum_mode(ChecksumMode::Enabled);
        // A whole part (or the whole of a single-part object) is fetched as such,
        // so S3 sends the checksum of exactly these bytes.
        let shape = self.shape_of(job_id).await?;
        match shape.fetch(offset, len) {
            Fetch::Whole => {}
            Fetch::Part(number) => request = request.part_number(number),
            Fetch::Range => {
                request = request.range(format!("bytes={}-{}", offset, offset + len - 1))
            }
        }
        let out = request.send().await.map_err(|e| {
            if aws::has_code(&e, "InvalidObjectState") {
                anyhow::Error::from(aws::AwsError {
                    message: format!(
                        "{job_id} is not restored yet (its restore is still running or has expired); run again later"
                    ),
                    code: Some("InvalidObjectState".into()),
                })
            } else {
                self.explain(&e)
            }
        })?;
        let reported = out.checksum_crc32_c().map(str::to_owned);
        let body = out
            .body
            .collect()
            .await
            .context("download interrupted")?
            .into_bytes();
        // Only a whole-object or whole-part checksum says anything about these bytes
        // (a composite one, `…-N`, covers other bytes).
        if let Some(sum) = reported.filter(|s| !s.contains('-')) {
            let local = B64.encode(crc32c::crc32c(&body).to_be_bytes());
            if sum != local {
                bail!(
                    "the bytes of {job_id} at offset {offset} arrived with CRC32C {local}, S3 sent {sum} (corrupted in transit)"
                );
            }
        }
        Ok(JobOutput {
            data: body,
            checksum: None,
        })
    }

    async fn request_inventory(&self) -> Result<String> {
        // A bucket lists at once: the "job" is ready when asked.
        Ok(LISTING_JOB.to_string())
    }

    async fn read_inventory(&self, _job_id: &str) -> Result<Inventory> {
        Ok(Inventory {
            date: now_secs(),
            archives: self.listing().await?,
        })
    }
}

impl S3Store {
    /// Every object under the prefix with firn's record: ListObjectsV2 in pages of
    /// 1,000, then HeadObject for each (the record is in its metadata) and, for a
    /// multipart object whose record lacks its hashes, its tags.
    async fn listing(&self) -> Result<Vec<ArchiveListing>> {
        let mut keys = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .max_keys(1000)
                .set_continuation_token(continuation.clone())
                .send()
                .await
                .map_err(|e| self.explain(&e))?;
            for object in out.contents() {
                if let Some(key) = object.key() {
                    keys.push((
                        key.to_string(),
                        object.size().unwrap_or(0).max(0) as u64,
                        object.last_modified().map(|t| t.secs()).unwrap_or(0),
                    ));
                }
            }
            continuation = out.next_continuation_token().map(str::to_owned);
            if out.is_truncated() != Some(true) || continuation.is_none() {
                break;
            }
        }
        let heads = futures_util::stream::iter(keys.into_iter().map(|(key, size, created_at)| {
            async move {
                let head = self.head(&key).await?;
                let description = description_of(head.as_ref().and_then(|h| h.metadata()));
                let mut tree_hash = crate::description::decode(&description)
                    .ok()
                    .and_then(|d| d.tree_hash);
                let mut description = description;
                if tree_hash.is_none() && !description.is_empty() {
                    // A multipart object: its hashes are in its tags.
                    let (sha1, tree) = self.hash_tags(&key).await?;
                    tree_hash = tree;
                    description = with_hashes(&description, sha1.as_deref(), tree.as_ref());
                }
                Ok::<_, anyhow::Error>(ArchiveListing {
                    archive_id: key,
                    size,
                    tree_hash: tree_hash.unwrap_or(UNKNOWN_TREE_HASH),
                    description,
                    created_at,
                })
            }
        }));
        use futures_util::StreamExt as _;
        heads
            .buffered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    async fn hash_tags(&self, key: &str) -> Result<(Option<String>, Option<TreeHash>)> {
        let out = match self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            // No tags to read (some S3-compatible servers refuse tagging on
            // archived objects): the hashes stay unknown, the restore verifies
            // what it can.
            Err(e) if aws::is_not_found(&e) || aws::has_code(&e, "InvalidObjectState") => {
                return Ok((None, None));
            }
            Err(e) => return Err(self.explain(&e)),
        };
        let tag = |name: &str| {
            out.tag_set()
                .iter()
                .find(|t| t.key() == name)
                .map(|t| t.value().to_string())
        };
        let tree = tag(TAG_TREE)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| b.try_into().ok());
        Ok((tag(TAG_SHA1), tree))
    }

    /// How an object was uploaded (asked once per object, then remembered).
    async fn shape_of(&self, key: &str) -> Result<Shape> {
        if let Some(shape) = self.shapes.lock().ok().and_then(|s| s.get(key).copied()) {
            return Ok(shape);
        }
        let head = self
            .head(key)
            .await?
            .with_context(|| format!("{} has no object {key}", self.what()))?;
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        // A multipart object's ETag ends in `-<number of parts>`; firn's parts are
        // 16 MiB × 2^n by size, which the count confirms.
        let parts = head
            .e_tag()
            .and_then(|t| t.trim_matches('"').rsplit_once('-'))
            .and_then(|(_, n)| n.parse::<u64>().ok());
        let part_size = Self::choose_part_size(size);
        let shape = match parts {
            None => Shape::Single { size },
            Some(n) if n == size.div_ceil(part_size) => Shape::Parts { size, part_size },
            Some(_) => Shape::Unknown,
        };
        if let Ok(mut shapes) = self.shapes.lock() {
            shapes.insert(key.to_string(), shape);
        }
        Ok(shape)
    }
}

/// How an object was uploaded, which says how to fetch pieces S3 has checksums for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Single { size: u64 },
    Parts { size: u64, part_size: u64 },
    Unknown,
}

enum Fetch {
    Whole,
    Part(i32),
    Range,
}

impl Shape {
    fn fetch(self, offset: u64, len: u64) -> Fetch {
        match self {
            Shape::Single { size } if offset == 0 && len == size => Fetch::Whole,
            Shape::Parts { size, part_size }
                if offset.is_multiple_of(part_size)
                    && (len == part_size || offset + len == size) =>
            {
                Fetch::Part((offset / part_size + 1) as i32)
            }
            _ => Fetch::Range,
        }
    }
}

/// The file key a description names (the object key is built from it), or a
/// placeholder when it holds only a hash of a path too long to fit.
fn description_key(description: &str) -> String {
    crate::description::decode(description)
        .ok()
        .and_then(|d| d.key)
        .unwrap_or_else(|| "long-path".into())
}

/// A description with the SHA-1 and tree hash found in an object's tags.
fn with_hashes(description: &str, sha1: Option<&str>, tree: Option<&TreeHash>) -> String {
    let Ok(d) = crate::description::decode(description) else {
        return description.to_string();
    };
    let sha1 = d.sha1.or_else(|| {
        sha1.and_then(|h| hex::decode(h).ok())
            .and_then(|b| b.try_into().ok())
    });
    match &d.key {
        Some(key) => crate::description::encode_within(
            key,
            d.raw.as_deref(),
            d.size.unwrap_or(0),
            d.mtime_ns,
            sha1.as_ref(),
            tree.or(d.tree_hash.as_ref()),
            METADATA_MAX,
        ),
        None => description.to_string(),
    }
}

struct SingleUpload {
    client: Client,
    bucket: String,
    key: String,
    class: StorageClass,
    checksum: ChecksumChoice,
    what: String,
    body: Vec<u8>,
}

#[async_trait]
impl Upload for SingleUpload {
    async fn send(&mut self, offset: u64, data: Bytes) -> Result<()> {
        if offset != self.body.len() as u64 {
            bail!("part at offset {offset} sent out of order");
        }
        self.body.extend_from_slice(&data);
        Ok(())
    }

    async fn complete(
        self: Box<Self>,
        size: u64,
        tree_hash: TreeHash,
        description: &str,
    ) -> Result<StoredArchive> {
        if size != self.body.len() as u64 {
            bail!(
                "upload size mismatch: {size} declared, {} sent",
                self.body.len()
            );
        }
        // The whole content is hashed by now: the record carries the tree hash too.
        let record = match crate::description::decode(description) {
            Ok(d) => crate::description::encode_within(
                d.key.as_deref().unwrap_or(""),
                d.raw.as_deref(),
                size,
                d.mtime_ns,
                d.sha1.as_ref(),
                Some(&tree_hash),
                METADATA_MAX,
            ),
            Err(_) => description.to_string(),
        };
        let sum = BodyChecksum::of(self.checksum, &self.body);
        let body = Bytes::from(self.body);
        let out = aws::retry_transient(aws::ATTEMPTS, || {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .storage_class(self.class.sdk())
                .metadata(METADATA_NAME, &record)
                .set_checksum_crc32_c(sum.crc32c_header())
                .set_content_md5(sum.md5_header())
                .body(ByteStream::from(body.clone()))
                .send()
        })
        .await
        .map_err(|e| explain(&e, &self.what, self.checksum))?;
        let mut reported = Reported::from(out.checksum_crc32_c(), out.e_tag());
        if reported.crc32c.is_none() && self.checksum == ChecksumChoice::Crc32c {
            // Not echoed in the answer: ask for what S3 stored.
            reported = stored_checksum(&self.client, &self.bucket, &self.key).await;
        }
        if let Err(e) = reported.confirm(sum, &self.what, &self.key) {
            let _ = self
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .send()
                .await;
            return Err(e.context("object discarded, nothing recorded"));
        }
        Ok(StoredArchive {
            archive_id: self.key,
            // S3 confirmed these bytes by their checksum: the tree hash is of them.
            tree_hash,
            size,
        })
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

struct MultipartUpload {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    part_size: u64,
    checksum: ChecksumChoice,
    what: String,
    /// Each part's number, what completes it, and its local checksum when S3 did
    /// not confirm it in its answer.
    in_flight: JoinSet<Result<(i32, CompletedPart, Option<BodyChecksum>)>>,
    max_in_flight: usize,
    memory: Arc<Semaphore>,
    budget_mib: u32,
    /// Parts S3 holds, by number (from this run or, resumed, from ListParts),
    /// with the local checksum of those S3 has not confirmed yet.
    done: BTreeMap<i32, (CompletedPart, Option<BodyChecksum>)>,
}

impl MultipartUpload {
    /// Confirms through ListParts the parts whose checksum S3 did not echo.
    async fn confirm_parts(&mut self) -> Result<()> {
        if self.done.values().all(|(_, unconfirmed)| unconfirmed.is_none()) {
            return Ok(());
        }
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(&self.upload_id)
                .set_part_number_marker(marker.clone())
                .send()
                .await
                .map_err(|e| explain(&e, &self.what, self.checksum))?;
            for listed in out.parts() {
                let Some(number) = listed.part_number() else {
                    continue;
                };
                if let Some((_, unconfirmed)) = self.done.get_mut(&number)
                    && let Some(sum) = *unconfirmed
                {
                    Reported::from(listed.checksum_crc32_c(), listed.e_tag()).confirm(
                        sum,
                        &self.what,
                        &format!("part {number} of {}", self.key),
                    )?;
                    *unconfirmed = None;
                }
            }
            if out.is_truncated() != Some(true) {
                break;
            }
            marker = out.next_part_number_marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        if let Some((number, _)) = self.done.iter().find(|(_, (_, u))| u.is_some()) {
            bail!(
                "{} did not list part {number} of {}; not completed",
                self.what,
                self.key
            );
        }
        Ok(())
    }

    async fn wait_one(&mut self) -> Result<()> {
        if let Some(joined) = self.in_flight.join_next().await {
            let (number, part, unconfirmed) = joined.context("part upload task failed")??;
            self.done.insert(number, (part, unconfirmed));
        }
        Ok(())
    }
}

#[async_trait]
impl Upload for MultipartUpload {
    fn resume_token(&self) -> Option<String> {
        Some(token(&self.key, &self.upload_id, self.part_size))
    }

    async fn send(&mut self, offset: u64, data: Bytes) -> Result<()> {
        if !offset.is_multiple_of(self.part_size) || data.len() as u64 > self.part_size {
            bail!(
                "part at offset {offset} of {} bytes does not fit part size {}",
                data.len(),
                self.part_size
            );
        }
        while self.in_flight.len() >= self.max_in_flight {
            self.wait_one().await?;
        }
        let mib = (data.len() as u64)
            .div_ceil(MIB)
            .clamp(1, self.budget_mib.max(1) as u64) as u32;
        let permit: OwnedSemaphorePermit = Arc::clone(&self.memory)
            .acquire_many_owned(mib)
            .await
            .context("memory budget closed")?;
        let number = (offset / self.part_size + 1) as i32;
        let (client, bucket, key, upload_id, what, checksum) = (
            self.client.clone(),
            self.bucket.clone(),
            self.key.clone(),
            self.upload_id.clone(),
            self.what.clone(),
            self.checksum,
        );
        self.in_flight.spawn(async move {
            let _permit = permit;
            let data_for_sum = data.clone();
            let sum = tokio::task::spawn_blocking(move || BodyChecksum::of(checksum, &data_for_sum))
            .await
            .context("checksum task failed")?;
            let out = aws::retry_transient(aws::ATTEMPTS, || {
                client
                    .upload_part()
                    .bucket(&bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .set_checksum_crc32_c(sum.crc32c_header())
                    .set_content_md5(sum.md5_header())
                    .body(ByteStream::from(data.clone()))
                    .send()
            })
            .await
            .map_err(|e| explain(&e, &what, checksum))
            .with_context(|| format!("part {number} of {key}"))?;
            let reported = Reported::from(out.checksum_crc32_c(), out.e_tag());
            // A CRC32C S3 did not echo is confirmed through ListParts at the end.
            let echoed = reported.crc32c.is_some() || checksum == ChecksumChoice::Md5;
            if echoed {
                reported.confirm(sum, &what, &format!("part {number} of {key}"))?;
            }
            let part = CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .set_checksum_crc32_c(
                    out.checksum_crc32_c()
                        .map(str::to_owned)
                        .or(sum.crc32c_header()),
                )
                .build();
            Ok((number, part, (!echoed).then_some(sum)))
        });
        Ok(())
    }

    async fn complete(
        mut self: Box<Self>,
        size: u64,
        tree_hash: TreeHash,
        description: &str,
    ) -> Result<StoredArchive> {
        while !self.in_flight.is_empty() {
            self.wait_one().await?;
        }
        self.confirm_parts().await?;
        let expected_parts = size.div_ceil(self.part_size).max(1) as usize;
        if self.done.len() != expected_parts {
            bail!(
                "{} of {expected_parts} parts of {} reached S3; not completed",
                self.done.len(),
                self.key
            );
        }
        // What S3 reports for the whole: the checksum of the parts' checksums.
        let expected = match self.checksum {
            ChecksumChoice::Crc32c => {
                let mut joined = Vec::with_capacity(self.done.len() * 4);
                for (part, _) in self.done.values() {
                    let bytes = part
                        .checksum_crc32_c()
                        .and_then(|c| B64.decode(c).ok())
                        .context("a part has no CRC32C")?;
                    joined.extend_from_slice(&bytes);
                }
                format!(
                    "{}-{}",
                    B64.encode(crc32c::crc32c(&joined).to_be_bytes()),
                    self.done.len()
                )
            }
            ChecksumChoice::Md5 => {
                let mut joined = Vec::with_capacity(self.done.len() * 16);
                for (part, _) in self.done.values() {
                    let bytes = part
                        .e_tag()
                        .and_then(|t| hex::decode(t.trim_matches('"')).ok())
                        .context("a part has no MD5 ETag")?;
                    joined.extend_from_slice(&bytes);
                }
                format!(
                    "{}-{}",
                    hex::encode(md5::Md5::digest(&joined)),
                    self.done.len()
                )
            }
        };
        let parts: Vec<CompletedPart> = self.done.values().map(|(p, _)| p.clone()).collect();
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| explain(&e, &self.what, self.checksum))
            .with_context(|| format!("completing {}", self.key))?;
        let mut reported = match self.checksum {
            ChecksumChoice::Crc32c => out.checksum_crc32_c().map(str::to_owned),
            ChecksumChoice::Md5 => out.e_tag().map(|t| t.trim_matches('"').to_ascii_lowercase()),
        };
        if reported.is_none() && self.checksum == ChecksumChoice::Crc32c {
            reported = stored_checksum(&self.client, &self.bucket, &self.key)
                .await
                .crc32c;
        }
        if reported.as_deref() != Some(expected.as_str()) {
            let _ = self
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .send()
                .await;
            bail!(
                "{} reported {} for {}, computed {expected}; object discarded",
                self.what,
                reported.as_deref().unwrap_or("no checksum"),
                self.key
            );
        }
        // The object was created before its content was hashed: its hashes go in
        // tags so a listing alone can rebuild the catalog. Best effort: the catalog
        // has them either way.
        let sha1 = crate::description::decode(description)
            .ok()
            .and_then(|d| d.sha1);
        let mut tags = vec![s3t::Tag::builder()
            .key(TAG_TREE)
            .value(hex::encode(tree_hash))
            .build()
            .context("tag")?];
        if let Some(sha1) = sha1 {
            tags.push(
                s3t::Tag::builder()
                    .key(TAG_SHA1)
                    .value(hex::encode(sha1))
                    .build()
                    .context("tag")?,
            );
        }
        let _ = self
            .client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(&self.key)
            .tagging(s3t::Tagging::builder().set_tag_set(Some(tags)).build().context("tags")?)
            .send()
            .await;
        Ok(StoredArchive {
            archive_id: self.key,
            tree_hash,
            size,
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(|e| explain(&e, &self.what, self.checksum))?;
        Ok(())
    }
}

/// Whether the bucket exists, for `firn init`: creating it, with a lifecycle rule
/// that aborts incomplete multipart uploads after a few days, once the plan is
/// accepted.
pub async fn readiness(settings: &S3Settings) -> Result<crate::provision::Readiness> {
    use crate::provision::Readiness;
    let (client, region) = client(settings).await?;
    let checksum = settings.checksum.unwrap_or_default();
    let what = format!("S3 bucket {:?} in {region}", settings.bucket);
    match client.head_bucket().bucket(&settings.bucket).send().await {
        Ok(_) => Ok(Readiness::Exists(what)),
        Err(e) if aws::is_not_found(&e) => {
            let bucket = settings.bucket.clone();
            Ok(Readiness::Missing {
                plan: format!(
                    "create {what}, with a lifecycle rule that aborts incomplete multipart uploads after {ABORT_AFTER_DAYS} days (archives go in as {})",
                    settings.class().as_str()
                ),
                create: Box::pin(async move {
                    let mut request = client.create_bucket().bucket(&bucket);
                    if region != "us-east-1" {
                        request = request.create_bucket_configuration(
                            s3t::CreateBucketConfiguration::builder()
                                .location_constraint(s3t::BucketLocationConstraint::from(
                                    region.as_str(),
                                ))
                                .build(),
                        );
                    }
                    request
                        .send()
                        .await
                        .map_err(|e| explain(&e, &what, checksum))?;
                    let rule = s3t::LifecycleRule::builder()
                        .id("firn-abort-incomplete-uploads")
                        .status(s3t::ExpirationStatus::Enabled)
                        .filter(s3t::LifecycleRuleFilter::builder().prefix("").build())
                        .abort_incomplete_multipart_upload(
                            s3t::AbortIncompleteMultipartUpload::builder()
                                .days_after_initiation(ABORT_AFTER_DAYS)
                                .build(),
                        )
                        .build()
                        .context("lifecycle rule")?;
                    client
                        .put_bucket_lifecycle_configuration()
                        .bucket(&bucket)
                        .lifecycle_configuration(
                            s3t::BucketLifecycleConfiguration::builder()
                                .rules(rule)
                                .build()
                                .context("lifecycle configuration")?,
                        )
                        .send()
                        .await
                        .map_err(|e| explain(&e, &what, checksum))?;
                    Ok(format!("created: {what} (incomplete uploads aborted after {ABORT_AFTER_DAYS} days)"))
                }),
            })
        }
        Err(e) => Err(explain(&e, &what, checksum)),
    }
}

/// Incomplete multipart uploads are aborted by the bucket's lifecycle rule after
/// this many days (firn aborts the ones it abandons sooner itself).
const ABORT_AFTER_DAYS: i32 = 7;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_utf8_within_1024_bytes_and_readable() {
        let key = object_key("backups/", "photos/2024/beach.jpg", "20261130T024612Z-3f9a1c2b");
        assert_eq!(key, "backups/photos/2024/beach.jpg/20261130T024612Z-3f9a1c2b");
        let odd = object_key("", "a\nb/caf\\xE9.txt", "v");
        assert_eq!(odd, "a\\x0Ab/caf\\xE9.txt/v");
        let long = "deep/".repeat(400) + "the-file-name.bin";
        let key = object_key("p/", &long, "20261130T024612Z-3f9a1c2b");
        assert!(key.len() <= KEY_MAX, "{}", key.len());
        assert!(key.starts_with("p/deep/deep/"));
        assert!(key.ends_with("…/the-file-name.bin/20261130T024612Z-3f9a1c2b"));
        let wide = "é".repeat(700);
        assert!(object_key("", &wide, "v").len() <= KEY_MAX);
    }

    #[test]
    fn part_sizes_fit_ten_thousand_parts() {
        assert_eq!(S3Store::choose_part_size(17 * MIB), 16 * MIB);
        let huge = 5 << 40;
        let part = S3Store::choose_part_size(huge);
        assert!(huge.div_ceil(part) <= MAX_PARTS);
        assert!(part.is_power_of_two() && part >= 16 * MIB);
    }

    #[test]
    fn restore_headers_and_tokens_parse() {
        assert_eq!(parse_restore("ongoing-request=\"true\""), (true, None));
        let (ongoing, expiry) = parse_restore(
            "ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"",
        );
        assert!(!ongoing);
        assert_eq!(expiry, Some(1_356_048_000));
        let t = token("a:b/c", "upload-1", 16 * MIB);
        assert_eq!(parse_token(&t), Some((16 * MIB, "upload-1", "a:b/c")));
    }

    #[test]
    fn classes_offer_their_tiers() {
        assert!(!StorageClass::DeepArchive.tiers().contains(&Tier::Expedited));
        assert!(StorageClass::Glacier.tiers().contains(&Tier::Expedited));
        assert_eq!(StorageClass::GlacierIr.expected_wait(Tier::Bulk), (0, 0));
    }
}
