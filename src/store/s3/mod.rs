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
//!   A server that answers a part request with the whole object (moto, several
//!   S3-compatible servers ignore `partNumber` on GET) is asked for each part's
//!   bytes by range instead, checked against what `HEAD ?partNumber=N` reports
//!   of the part; the whole object's body is never read for a part.
//! - **Retries** follow the one policy of [`crate::aws`]; S3 writes are
//!   idempotent (keys are firn's own), except CompleteMultipartUpload, whose
//!   NoSuchUpload after a lost answer is settled by asking for the object.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{self as s3t, ChecksumAlgorithm, ChecksumMode, CompletedPart};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use tokio::sync::Semaphore;

use super::{
    ArchiveListing, DOWNLOAD_RANGE, Inventory, JobOutput, JobState, PartCheck, Store, StoredPart,
    Upload,
};
use crate::aws::{self, Call};
use crate::limit::Limits;
use crate::model::{Tier, TreeHash, UNKNOWN_TREE_HASH, now_secs, usage};

mod download;
mod naming;
mod settings;
mod upload;

use super::parts::{PartSlots, WholeBody};
use super::requests::{RequestCount, RequestCounter};
use naming::{
    Shape, description_key, description_of, description_owner, key_owner, parse_restore,
    parse_token, version, with_hashes,
};
use settings::{
    LISTING_JOB, MAX_PARTS, METADATA_NAME, MIB, MIN_PART, TAG_SHA1, TAG_TREE, client, explain,
};
use upload::{Destination, MultipartUpload, SingleUpload};

pub use naming::{object_key, set_prefix};
pub use settings::{ChecksumChoice, METADATA_MAX, S3Settings, StorageClass};

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
    /// How fast request bodies go up and answers' bodies come down.
    limits: Limits,
    /// The billed requests this store's client sent.
    requests: RequestCounter,
}

impl S3Store {
    pub async fn connect(settings: &S3Settings) -> Result<Self> {
        let requests = RequestCounter::default();
        let (client, region) = client(settings, &requests).await?;
        let budget = settings
            .part_memory_budget
            .unwrap_or(256 * MIB)
            .max(MIN_PART);
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
            memory: PartSlots::<()>::budget(budget),
            shapes: std::sync::Mutex::new(HashMap::new()),
            limits: Limits::none(),
            requests,
        })
    }

    /// Sends and reads under these bandwidth limits (the run's: see `limit`).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    fn what(&self) -> String {
        format!("S3 bucket {:?} in {}", self.bucket, self.region)
    }

    /// Puts this store's objects under `prefix` (see [`set_prefix`]).
    pub fn use_prefix(&mut self, prefix: &str) {
        self.prefix = prefix.to_string();
        if !self.prefix.is_empty() && !self.prefix.ends_with('/') {
            self.prefix.push('/');
        }
    }

    /// Where this store's objects go: `s3://bucket/prefix/`, for people.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// Whether the top of the bucket holds catalog snapshots of the set `set_id`:
    /// the set kept its objects there before each set had its own prefix.
    pub async fn has_top_level_snapshots_of(&self, set_id: &str) -> Result<bool> {
        let folder = format!(
            ".firn-catalog-snapshots/{}/",
            crate::description::set_hash(set_id)
        );
        let out = aws::send(Call::Read, || {
            self.client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&folder)
                .max_keys(1)
                .send()
        })
        .await
        .map_err(|e| self.explain(&e))?;
        Ok(out.key_count().unwrap_or(0) > 0 || !out.contents().is_empty())
    }

    /// Whose objects the first `limit` keys under the prefix are, as their keys
    /// say (see `naming::version`): each set's short id and how many, and how
    /// many keys name no set (written before keys did). For `firn init`, which
    /// refuses a prefix another set uses.
    pub async fn owners_under_prefix(&self, limit: i32) -> Result<(BTreeMap<String, u64>, u64)> {
        let out = aws::send(Call::Read, || {
            self.client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .max_keys(limit)
                .send()
        })
        .await
        .map_err(|e| self.explain(&e))?;
        let mut owners = BTreeMap::new();
        let mut unnamed = 0;
        for key in out.contents().iter().filter_map(|o| o.key()) {
            match key_owner(key) {
                Some(owner) => *owners.entry(owner.to_string()).or_default() += 1,
                None => unnamed += 1,
            }
        }
        Ok((owners, unnamed))
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

    /// A new object key for the version `description` describes (see the
    /// module docs).
    fn object_key(&self, description: &str) -> String {
        let mut stamp = [0u8; 4];
        let _ = getrandom::fill(&mut stamp);
        let version = version(
            &crate::fmt::format_time_utc_compact(now_secs()),
            &hex::encode(stamp),
            description_owner(description).as_deref(),
        );
        object_key(&self.prefix, &description_key(description), &version)
    }

    async fn head(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>> {
        match aws::send(Call::Read, || {
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
        })
        .await
        {
            Ok(out) => Ok(Some(out)),
            Err(e) if aws::is_not_found(&e) => Ok(None),
            Err(e) => Err(self.explain(&e)),
        }
    }

    fn destination(&self, key: String) -> Destination {
        Destination {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key,
            checksum: self.checksum,
            what: self.what(),
            up: Arc::clone(&self.limits.up),
        }
    }

    fn single(&self, key: String, size: u64) -> SingleUpload {
        SingleUpload {
            dest: self.destination(key),
            class: self.class,
            body: WholeBody::with_capacity(size),
        }
    }

    fn multipart(&self, key: String, upload_id: String, part_size: u64) -> MultipartUpload {
        MultipartUpload {
            dest: self.destination(key),
            upload_id,
            part_size,
            parts: PartSlots::new(self.part_concurrency, Arc::clone(&self.memory), self.budget),
            done: BTreeMap::new(),
        }
    }
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

    fn requests(&self) -> RequestCount {
        self.requests.read()
    }

    async fn check(&self) -> Result<()> {
        aws::send(Call::Read, || {
            self.client.head_bucket().bucket(&self.bucket).send()
        })
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

    fn description_limit(&self) -> usize {
        METADATA_MAX
    }

    fn part_size(&self, archive_size: u64) -> usize {
        if archive_size <= self.single_upload_max {
            MIB as usize
        } else {
            Self::choose_part_size(archive_size) as usize
        }
    }

    async fn begin_upload(&self, size: u64, description: &str) -> Result<Box<dyn Upload>> {
        let key = self.object_key(description);
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
        // A lost answer leaves an empty upload behind, which abort_abandoned ends.
        let out = aws::send(Call::Write, || request.clone().send())
            .await
            .map_err(|e| self.explain(&e))?;
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
            let out = match aws::send(Call::Read, || {
                self.client
                    .list_parts()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .set_part_number_marker(marker.clone())
                    .send()
            })
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

    async fn abort_abandoned(&self, keep: &[String], owner: &str) -> Result<Vec<String>> {
        let keep_ids: Vec<&str> = keep
            .iter()
            .filter_map(|t| parse_token(t).map(|(_, id, _)| id))
            .collect();
        let now = now_secs();
        let mut aborted = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let out = aws::send(Call::Read, || {
                self.client
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .prefix(&self.prefix)
                    .set_key_marker(key_marker.clone())
                    .set_upload_id_marker(id_marker.clone())
                    .send()
            })
            .await
            .map_err(|e| self.explain(&e))?;
            for upload in out.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                let age = upload.initiated().map(|t| now - t.secs()).unwrap_or(0);
                // Only this set's: another set sharing the bucket resumes its
                // own, and a key that names no set (written before keys did) may
                // be any set's — the bucket's lifecycle rule ends those.
                let ours = key_owner(key) == Some(owner);
                if !ours || keep_ids.contains(&id) || age < self.abandoned_after_secs {
                    continue;
                }
                upload::abort(&self.client, &self.bucket, key, id)
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
        aws::send(Call::Write, || {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(archive_id)
                .send()
        })
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
        match aws::send(Call::Write, || {
            self.client
                .restore_object()
                .bucket(&self.bucket)
                .key(archive_id)
                .restore_request(request.clone())
                .send()
        })
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
        let data = self.read_piece(job_id, offset, len).await?;
        Ok(JobOutput {
            data,
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
            let out = aws::send(Call::Read, || {
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&self.prefix)
                    .max_keys(1000)
                    .set_continuation_token(continuation.clone())
                    .send()
            })
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
        let out = match aws::send(Call::Read, || {
            self.client
                .get_object_tagging()
                .bucket(&self.bucket)
                .key(key)
                .send()
        })
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
}

/// Whether the bucket exists, for `firn init`: creating it, with a lifecycle rule
/// that aborts incomplete multipart uploads after a few days, once the plan is
/// accepted.
pub async fn readiness(settings: &S3Settings) -> Result<crate::provision::Readiness> {
    use crate::provision::Readiness;
    let (client, region) = client(settings, &RequestCounter::default()).await?;
    let checksum = settings.checksum.unwrap_or_default();
    let what = format!("S3 bucket {:?} in {region}", settings.bucket);
    match aws::send(Call::Read, || {
        client.head_bucket().bucket(&settings.bucket).send()
    })
    .await
    {
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
                    match aws::send(Call::Write, || request.clone().send()).await {
                        Ok(_) => {}
                        // A try that created it lost its answer.
                        Err(e) if aws::has_code(&e, "BucketAlreadyOwnedByYou") => {}
                        Err(e) => return Err(explain(&e, &what, checksum)),
                    }
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
                    let lifecycle = s3t::BucketLifecycleConfiguration::builder()
                        .rules(rule)
                        .build()
                        .context("lifecycle configuration")?;
                    aws::send(Call::Write, || {
                        client
                            .put_bucket_lifecycle_configuration()
                            .bucket(&bucket)
                            .lifecycle_configuration(lifecycle.clone())
                            .send()
                    })
                    .await
                    .map_err(|e| explain(&e, &what, checksum))?;
                    Ok(format!(
                        "created: {what} (incomplete uploads aborted after {ABORT_AFTER_DAYS} days)"
                    ))
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
    use super::naming::token;
    use super::settings::KEY_MAX;
    use super::*;

    #[test]
    fn keys_are_utf8_within_1024_bytes_and_readable() {
        let key = object_key(
            "backups/",
            "photos/2024/beach.jpg",
            "20261130T024612Z-3f9a1c2b",
        );
        assert_eq!(
            key,
            "backups/photos/2024/beach.jpg/20261130T024612Z-3f9a1c2b"
        );
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
