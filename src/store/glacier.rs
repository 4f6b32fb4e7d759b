//! Amazon Glacier vault store (aws-sdk-glacier).
//!
//! - Files up to `single_upload_max` go in one UploadArchive request: the SDK keeps
//!   the whole request body in memory, so only small files take this path.
//! - Larger files go multipart. The part size is 1 MiB × 2^n, chosen so the file
//!   fits in 10,000 parts and the parts in flight fit the memory budget; parts are
//!   sent concurrently. Every part's tree hash the service returns is compared with
//!   the local one, and CompleteMultipartUpload gets the total tree hash and size
//!   computed locally.
//! - Glacier does not take empty archives: a 0-byte file is stored as a 1-byte
//!   placeholder ([`super::EMPTY_PLACEHOLDER`]) whose description says `s: 0`, so an
//!   inventory still knows about it. Catalogs written before that recorded empty
//!   files with the sentinel archive id [`EMPTY_ARCHIVE_ID`] (nothing stored), which
//!   still works.
//! - Inventories are `inventory-retrieval` jobs in JSON.
//! - Retries follow the one policy of [`crate::aws`]. Glacier's writes need care
//!   there: a job is billed, so a lost answer to InitiateJob is settled by
//!   listing the vault's jobs before another is started; a repeated
//!   CompleteMultipartUpload returns the same archive (AWS documents it); an
//!   UploadArchive whose answer was lost may leave a copy only an inventory finds.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_glacier::Client;
use aws_sdk_glacier::error::SdkError;
use aws_sdk_glacier::operation::initiate_job::InitiateJobError;
use aws_sdk_glacier::types::{ActionCode, GlacierJobDescription, JobParameters, StatusCode};
use bytes::Bytes;
use tokio::sync::Semaphore;

use super::parts::{PartSlots, WholeBody};
use super::requests::{RequestCount, RequestCounter};
use super::{
    ArchiveListing, EMPTY_ARCHIVE_ID, EMPTY_PLACEHOLDER, Inventory, JobOutput, JobState, PartCheck,
    Store, StoredArchive, StoredPart, Upload, placeholder_tree_hash,
};
use crate::aws::{self, AwsSettings, Call, Classify as _, FetchError};
use crate::hash::tree_hash_of;
use crate::limit::{Limiter, Limits};
use crate::model::Tier;
use crate::model::TreeHash;
/// The archive id older catalogs gave every empty file (nothing stored): Glacier
/// refuses 0-byte archives. New empty files are stored as a 1-byte placeholder.
const MIB: u64 = 1 << 20;
const MAX_PARTS: u64 = 10_000;

/// `store = { kind = "glacier", vault = "…", … }` in a set's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlacierSettings {
    pub vault: String,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// Largest file sent in a single request (the SDK buffers it whole).
    pub single_upload_max: Option<u64>,
    /// Memory for parts in flight, all uploads together.
    pub part_memory_budget: Option<u64>,
    /// Parts in flight per upload.
    pub part_concurrency: Option<usize>,
    /// Multipart uploads nothing resumes are aborted once older than this.
    pub abandoned_after_hours: Option<u64>,
}

impl GlacierSettings {
    pub fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

pub struct GlacierStore {
    client: Client,
    vault: String,
    region: String,
    single_upload_max: u64,
    budget: u64,
    part_concurrency: usize,
    abandoned_after_secs: i64,
    /// One permit per MiB of part data in flight, shared by every upload.
    memory: Arc<Semaphore>,
    /// How fast request bodies go up and job output comes down.
    limits: Limits,
    /// The billed requests this store's client sent.
    requests: RequestCounter,
}

impl GlacierStore {
    pub async fn connect(settings: &GlacierSettings) -> Result<Self> {
        let config = aws::sdk_config(&settings.aws()).await?;
        let region = config.region().map(|r| r.to_string()).unwrap_or_default();
        let budget = settings.part_memory_budget.unwrap_or(256 * MIB).max(MIB);
        let requests = RequestCounter::default();
        let glacier_config = aws_sdk_glacier::config::Builder::from(&config)
            .interceptor(requests.interceptor())
            .build();
        Ok(GlacierStore {
            client: Client::from_conf(glacier_config),
            vault: settings.vault.clone(),
            region,
            single_upload_max: settings.single_upload_max.unwrap_or(8 * MIB),
            budget,
            part_concurrency: settings.part_concurrency.unwrap_or(4).max(1),
            abandoned_after_secs: settings.abandoned_after_hours.unwrap_or(24) as i64 * 3600,
            memory: PartSlots::<()>::budget(budget),
            limits: Limits::none(),
            requests,
        })
    }

    /// Sends and reads under these bandwidth limits (the run's: see `limit`).
    /// The SDK reads a Glacier request's body whole before it signs it, so a
    /// body is granted first and then sent at line speed.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn vault(&self) -> &str {
        &self.vault
    }

    fn what(&self) -> String {
        format!("Glacier vault {:?} in {}", self.vault, self.region)
    }

    async fn describe_vault(&self) -> Result<()> {
        aws::send(Call::Read, || {
            self.client
                .describe_vault()
                .account_id("-")
                .vault_name(&self.vault)
                .send()
        })
        .await
        .map_err(|e| aws::explain(&e, &self.what()))?;
        Ok(())
    }

    /// Starts a job. Each job is billed: after a lost answer (the job may have
    /// started) the vault's jobs are asked for one created at or after `since`
    /// (Unix seconds, by our clock) that `same` recognises, before another is
    /// requested. The inner error is the service's refusal, for the caller to
    /// explain.
    async fn initiate_job(
        &self,
        params: JobParameters,
        since: i64,
        same: impl Fn(&GlacierJobDescription) -> bool,
    ) -> Result<Result<String, Box<SdkError<InitiateJobError>>>> {
        let mut tries = aws::Tries::new(Call::Write);
        loop {
            let sent = self
                .client
                .initiate_job()
                .account_id("-")
                .vault_name(&self.vault)
                .job_parameters(params.clone())
                .send()
                .await;
            match sent {
                Ok(out) => {
                    return out
                        .job_id()
                        .map(|id| Ok(id.to_owned()))
                        .context("Glacier returned no job id");
                }
                Err(e) => {
                    if !tries.again(e.transience()).await {
                        return Ok(Err(Box::new(e)));
                    }
                    if tries.lost_before()
                        && let Some(id) = self.job_started_since(since, &same).await?
                    {
                        return Ok(Ok(id));
                    }
                }
            }
        }
    }

    /// A job of the vault started at or after `since` (Unix seconds), not
    /// failed, that `same` recognises.
    async fn job_started_since(
        &self,
        since: i64,
        same: &impl Fn(&GlacierJobDescription) -> bool,
    ) -> Result<Option<String>> {
        let mut marker: Option<String> = None;
        loop {
            let out = aws::send(Call::Read, || {
                self.client
                    .list_jobs()
                    .account_id("-")
                    .vault_name(&self.vault)
                    .set_marker(marker.clone())
                    .send()
            })
            .await
            .map_err(|e| aws::explain(&e, &self.what()))?;
            let found = out.job_list().iter().find(|job| {
                job.status_code() != Some(&StatusCode::Failed)
                    && job
                        .creation_date()
                        .and_then(parse_iso8601)
                        .is_some_and(|t| t >= since)
                    && same(job)
            });
            if let Some(id) = found.and_then(|job| job.job_id()) {
                return Ok(Some(id.to_string()));
            }
            marker = out.marker().map(str::to_owned);
            if marker.is_none() {
                return Ok(None);
            }
        }
    }

    /// Part size: the smallest 1 MiB × 2^n that keeps the file within 10,000
    /// parts, raised towards budget / concurrency for fewer requests.
    pub fn choose_part_size(size: u64, budget: u64, concurrency: usize) -> u64 {
        let mut minimum = MIB;
        while size.div_ceil(minimum) > MAX_PARTS {
            minimum *= 2;
        }
        let mut part = minimum;
        let target = (budget / concurrency.max(1) as u64).min(4096 * MIB);
        while part * 2 <= target && size > part * 2 {
            part *= 2;
        }
        part
    }

    fn token(upload_id: &str, part_size: u64) -> String {
        format!("glacier:{part_size}:{upload_id}")
    }

    fn parse_token(token: &str) -> Option<(u64, &str)> {
        let rest = token.strip_prefix("glacier:")?;
        let (size, id) = rest.split_once(':')?;
        Some((size.parse().ok()?, id))
    }
}

#[async_trait]
impl Store for GlacierStore {
    fn target(&self) -> String {
        format!("glacier:{}/{}", self.region, self.vault)
    }

    fn requests(&self) -> RequestCount {
        self.requests.read()
    }

    fn kind(&self) -> String {
        "Glacier vault".into()
    }

    async fn check(&self) -> Result<()> {
        self.describe_vault().await
    }

    fn part_size(&self, archive_size: u64) -> usize {
        if archive_size <= self.single_upload_max {
            // Read in modest pieces; the whole body is assembled for one request.
            MIB as usize
        } else {
            Self::choose_part_size(archive_size, self.budget, self.part_concurrency) as usize
        }
    }

    fn needs_description_up_front(&self, size: u64) -> bool {
        size > self.single_upload_max
    }

    fn can_list(&self) -> bool {
        false
    }

    async fn begin_upload(&self, size: u64, description: &str) -> Result<Box<dyn Upload>> {
        if size == 0 {
            return Ok(Box::new(EmptyUpload {
                placeholder: self.single(WholeBody::holding(EMPTY_PLACEHOLDER)),
            }));
        }
        if size <= self.single_upload_max {
            return Ok(Box::new(self.single(WholeBody::with_capacity(size))));
        }
        let part_size = Self::choose_part_size(size, self.budget, self.part_concurrency);
        // A lost answer leaves an empty upload behind, which abort_abandoned ends.
        let out = aws::send(Call::Write, || {
            self.client
                .initiate_multipart_upload()
                .account_id("-")
                .vault_name(&self.vault)
                .archive_description(description)
                .part_size(part_size.to_string())
                .send()
        })
        .await
        .map_err(|e| aws::explain(&e, &self.what()))?;
        let upload_id = out
            .upload_id()
            .context("Glacier returned no upload id")?
            .to_string();
        Ok(Box::new(self.multipart(upload_id, part_size)))
    }

    async fn resume_upload(
        &self,
        token: &str,
        size: u64,
    ) -> Result<Option<(Box<dyn Upload>, Vec<StoredPart>)>> {
        let Some((part_size, upload_id)) = Self::parse_token(token) else {
            return Ok(None);
        };
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = match aws::send(Call::Read, || {
                self.client
                    .list_parts()
                    .account_id("-")
                    .vault_name(&self.vault)
                    .upload_id(upload_id)
                    .set_marker(marker.clone())
                    .send()
            })
            .await
            {
                Ok(out) => out,
                Err(e) if crate::aws::is_not_found(&e) => {
                    return Ok(None);
                }
                Err(e) => return Err(aws::explain(&e, &self.what())),
            };
            if out.part_size_in_bytes() as u64 != part_size {
                return Ok(None);
            }
            for part in out.parts() {
                let (Some(range), Some(hash)) = (part.range_in_bytes(), part.sha256_tree_hash())
                else {
                    continue;
                };
                let Some((start, end)) = range
                    .split_once('-')
                    .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
                else {
                    continue;
                };
                let Some(tree_hash) = hex::decode(hash).ok().and_then(|v| v.try_into().ok()) else {
                    continue;
                };
                if end < size {
                    parts.push(StoredPart {
                        offset: start,
                        len: end - start + 1,
                        check: PartCheck::TreeHash(tree_hash),
                    });
                }
            }
            marker = out.marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        Ok(Some((
            Box::new(self.multipart(upload_id.to_string(), part_size)),
            parts,
        )))
    }

    async fn abort_abandoned(&self, keep: &[String], owner: &str) -> Result<Vec<String>> {
        let keep_ids: Vec<&str> = keep
            .iter()
            .filter_map(|t| Self::parse_token(t).map(|(_, id)| id))
            .collect();
        let now = crate::model::now_secs();
        let mut aborted = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = aws::send(Call::Read, || {
                self.client
                    .list_multipart_uploads()
                    .account_id("-")
                    .vault_name(&self.vault)
                    .set_marker(marker.clone())
                    .send()
            })
            .await
            .map_err(|e| aws::explain(&e, &self.what()))?;
            for upload in out.uploads_list() {
                let Some(id) = upload.multipart_upload_id() else {
                    continue;
                };
                // Only this set's: another set sharing the vault resumes its own,
                // and one written before descriptions named their set may be any
                // set's.
                let ours = upload
                    .archive_description()
                    .and_then(|d| crate::description::decode(d).ok())
                    .is_some_and(|d| d.owner.as_deref() == Some(owner));
                let age = upload
                    .creation_date()
                    .and_then(parse_iso8601)
                    .map(|t| now - t)
                    .unwrap_or(0);
                if !ours || keep_ids.contains(&id) || age < self.abandoned_after_secs {
                    continue;
                }
                abort(&self.client, &self.vault, id)
                    .await
                    .map_err(|e| aws::explain(&e, &self.what()))?;
                aborted.push(id.to_string());
            }
            marker = out.marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        Ok(aborted)
    }

    async fn delete(&self, archive_id: &str) -> Result<()> {
        if archive_id == EMPTY_ARCHIVE_ID {
            return Ok(());
        }
        // A repeat of a deletion that landed is answered "not found", which the
        // engine takes as deleted.
        aws::send(Call::Write, || {
            self.client
                .delete_archive()
                .account_id("-")
                .vault_name(&self.vault)
                .archive_id(archive_id)
                .send()
        })
        .await
        .map_err(|e| aws::explain(&e, &self.what()))?;
        Ok(())
    }

    async fn list(&self) -> Result<Option<Vec<ArchiveListing>>> {
        // A vault lists its archives only through an inventory job (hours).
        Ok(None)
    }

    async fn request_retrieval(&self, archive_id: &str, tier: Tier) -> Result<String> {
        if archive_id == EMPTY_ARCHIVE_ID {
            return Ok(EMPTY_ARCHIVE_ID.to_string());
        }
        let tier_name = match tier {
            Tier::Expedited => "Expedited",
            Tier::Standard => "Standard",
            Tier::Bulk => "Bulk",
        };
        let params = JobParameters::builder()
            .r#type("archive-retrieval")
            .archive_id(archive_id)
            .tier(tier_name)
            .build();
        // Any job retrieving the whole archive holds the same bytes: one started
        // up to 15 minutes before by our clock (AWS refuses requests signed
        // further off its own) is ours or as good as ours.
        let since = crate::model::now_secs() - 15 * 60;
        let same = |job: &GlacierJobDescription| {
            let whole = match job.retrieval_byte_range() {
                None => true,
                Some(range) => {
                    job.archive_size_in_bytes()
                        .map(|size| format!("0-{}", size - 1))
                        .as_deref()
                        == Some(range)
                }
            };
            job.action() == Some(&ActionCode::ArchiveRetrieval)
                && job.archive_id() == Some(archive_id)
                && job.tier().is_none_or(|t| t == tier_name)
                && whole
        };
        match self.initiate_job(params, since, same).await? {
            Ok(job_id) => Ok(job_id),
            // "Not found" names the vault or the archive: say which.
            Err(e) if aws::is_not_found(&e) && self.check().await.is_ok() => {
                bail!(
                    "{} has no archive {archive_id} (deleted, or never stored there); `firn inventory` compares the catalog with the vault",
                    self.what()
                );
            }
            Err(e) => Err(aws::explain(&e, &self.what())),
        }
    }

    async fn job_state(&self, job_id: &str) -> Result<JobState> {
        if job_id == EMPTY_ARCHIVE_ID {
            return Ok(JobState::Ready { expires_at: None });
        }
        let out = match aws::send(Call::Read, || {
            self.client
                .describe_job()
                .account_id("-")
                .vault_name(&self.vault)
                .job_id(job_id)
                .send()
        })
        .await
        {
            Ok(out) => out,
            Err(e) if crate::aws::is_not_found(&e) => {
                return Ok(JobState::Gone);
            }
            Err(e) => return Err(aws::explain(&e, &self.what())),
        };
        Ok(match out.status_code() {
            Some(StatusCode::Succeeded) => JobState::Ready { expires_at: None },
            Some(StatusCode::Failed) => {
                JobState::Failed(out.status_message().unwrap_or("failed").to_string())
            }
            _ => JobState::InProgress { ready_at: None },
        })
    }

    fn expected_wait(&self, tier: Tier) -> (u64, u64) {
        // Amazon's published completion times for vault retrievals.
        match tier {
            Tier::Expedited => (60, 5 * 60),
            Tier::Standard => (3 * 3600, 5 * 3600),
            Tier::Bulk => (5 * 3600, 12 * 3600),
        }
    }

    async fn read_job_output(&self, job_id: &str, offset: u64, len: u64) -> Result<JobOutput> {
        if job_id == EMPTY_ARCHIVE_ID || len == 0 {
            return Ok(JobOutput {
                data: Bytes::new(),
                checksum: None,
            });
        }
        let range = format!("bytes={}-{}", offset, offset + len - 1);
        let (data, checksum) = aws::send(Call::Read, || async {
            let out = self
                .client
                .get_job_output()
                .account_id("-")
                .vault_name(&self.vault)
                .job_id(job_id)
                .range(&range)
                .customize()
                .interceptor(aws::SingleContentType)
                .send()
                .await?;
            let announced = out.content_range().and_then(range_len);
            let checksum = parse_tree_hash(out.checksum());
            let data = aws::read_body(out.body, announced, &self.limits.down)
                .await
                .map_err(FetchError::CutShort)?;
            Ok::<_, FetchError<_>>((data, checksum))
        })
        .await
        .map_err(|e| e.explain(&self.what(), |e| aws::explain(e, &self.what())))?;
        Ok(JobOutput { data, checksum })
    }

    async fn request_inventory(&self) -> Result<String> {
        let params = JobParameters::builder()
            .r#type("inventory-retrieval")
            .format("JSON")
            .build();
        // Only a job started since this request: an older one may list the
        // vault as it was before (a live listing, as the stand-in gives), and a
        // second inventory job costs little.
        let since = crate::model::now_secs();
        let same = |job: &GlacierJobDescription| {
            job.action() == Some(&ActionCode::InventoryRetrieval)
                && job
                    .inventory_retrieval_parameters()
                    .and_then(|p| p.format())
                    .is_none_or(|f| f == "JSON")
        };
        self.initiate_job(params, since, same).await?.map_err(|e| {
            if aws::is_not_found(&e) {
                // The vault exists (checked on open): it has no inventory yet.
                anyhow!(
                    "{} has no inventory yet (Glacier takes the first one about a day after the first upload); run again later",
                    self.what()
                )
            } else {
                aws::explain(&e, &self.what())
            }
        })
    }

    async fn read_inventory(&self, job_id: &str) -> Result<Inventory> {
        let body = aws::send(Call::Read, || async {
            let out = self
                .client
                .get_job_output()
                .account_id("-")
                .vault_name(&self.vault)
                .job_id(job_id)
                .customize()
                .interceptor(aws::SingleContentType)
                .send()
                .await?;
            aws::read_body(out.body, None, &self.limits.down)
                .await
                .map_err(FetchError::CutShort)
        })
        .await
        .map_err(|e| e.explain(&self.what(), |e| aws::explain(e, &self.what())))?;
        parse_inventory(&body).with_context(|| format!("unreadable inventory of {}", self.what()))
    }
}

/// Glacier's JSON inventory (only the fields firn reads).
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InventoryJson {
    inventory_date: String,
    #[serde(default)]
    archive_list: Vec<InventoryArchiveJson>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InventoryArchiveJson {
    archive_id: String,
    #[serde(default)]
    archive_description: String,
    creation_date: String,
    size: u64,
    #[serde(rename = "SHA256TreeHash")]
    sha256_tree_hash: String,
}

fn parse_inventory(bytes: &[u8]) -> Result<Inventory> {
    let json: InventoryJson = serde_json::from_slice(bytes).context("not Glacier's JSON")?;
    let date = parse_iso8601(&json.inventory_date)
        .with_context(|| format!("bad InventoryDate {:?}", json.inventory_date))?;
    let archives = json
        .archive_list
        .into_iter()
        .map(|a| {
            let created_at = parse_iso8601(&a.creation_date).with_context(|| {
                format!("bad CreationDate {:?} of {}", a.creation_date, a.archive_id)
            })?;
            let tree_hash = parse_tree_hash(Some(&a.sha256_tree_hash)).with_context(|| {
                format!(
                    "bad SHA256TreeHash {:?} of {}",
                    a.sha256_tree_hash, a.archive_id
                )
            })?;
            Ok(ArchiveListing {
                archive_id: a.archive_id,
                size: a.size,
                tree_hash,
                description: a.archive_description,
                created_at,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Inventory { date, archives })
}

impl GlacierStore {
    fn single(&self, body: WholeBody) -> SingleUpload {
        SingleUpload {
            client: self.client.clone(),
            vault: self.vault.clone(),
            what: self.what(),
            body,
            up: Arc::clone(&self.limits.up),
        }
    }

    fn multipart(&self, upload_id: String, part_size: u64) -> MultipartUpload {
        MultipartUpload {
            client: self.client.clone(),
            vault: self.vault.clone(),
            what: self.what(),
            upload_id,
            part_size,
            parts: PartSlots::new(self.part_concurrency, Arc::clone(&self.memory), self.budget),
            up: Arc::clone(&self.limits.up),
        }
    }
}

/// The length a `Content-Range: bytes 0-1023/2048` answer announces.
fn range_len(content_range: &str) -> Option<u64> {
    let (first, last) = content_range
        .strip_prefix("bytes ")?
        .split('/')
        .next()?
        .split_once('-')?;
    Some(last.parse::<u64>().ok()? - first.parse::<u64>().ok()? + 1)
}

/// Aborts a multipart upload; one already gone (a try that aborted it lost its
/// answer) counts as aborted.
async fn abort(
    client: &Client,
    vault: &str,
    upload_id: &str,
) -> Result<
    (),
    SdkError<aws_sdk_glacier::operation::abort_multipart_upload::AbortMultipartUploadError>,
> {
    match aws::send(Call::Write, || {
        client
            .abort_multipart_upload()
            .account_id("-")
            .vault_name(vault)
            .upload_id(upload_id)
            .send()
    })
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if aws::is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `2024-01-31T12:34:56.789Z` → Unix seconds.
fn parse_iso8601(text: &str) -> Option<i64> {
    let date = text.get(0..10)?;
    let time = text.get(11..19)?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (t.next()??, t.next()??, t.next()??);
    Some(crate::description::days_from_civil(y, m, day) * 86_400 + h * 3600 + mi * 60 + s)
}

/// A 0-byte file: Glacier refuses empty archives, so one 0x00 byte is stored under
/// the file's description (which says `s: 0`).
struct EmptyUpload {
    placeholder: SingleUpload,
}

#[async_trait]
impl Upload for EmptyUpload {
    async fn send(&mut self, _offset: u64, data: Bytes) -> Result<()> {
        if !data.is_empty() {
            bail!("an empty file grew while it was uploaded");
        }
        Ok(())
    }

    /// Stores the placeholder, checks Glacier's tree hash of it, and reports the
    /// tree hash of the empty content the caller hashed (what the catalog records).
    async fn complete(
        self: Box<Self>,
        size: u64,
        tree_hash: TreeHash,
        description: &str,
    ) -> Result<StoredArchive> {
        let empty = tree_hash_of(&[]);
        if size != 0 || tree_hash != empty {
            bail!("an empty file grew while it was uploaded");
        }
        let (client, vault, what) = (
            self.placeholder.client.clone(),
            self.placeholder.vault.clone(),
            self.placeholder.what.clone(),
        );
        let expected = placeholder_tree_hash();
        let stored = Box::new(self.placeholder)
            .complete(EMPTY_PLACEHOLDER.len() as u64, expected, description)
            .await?;
        if stored.tree_hash != expected {
            // Never hand back an archive Glacier did not confirm byte for byte.
            let _ = aws::send(Call::Write, || {
                client
                    .delete_archive()
                    .account_id("-")
                    .vault_name(&vault)
                    .archive_id(&stored.archive_id)
                    .send()
            })
            .await;
            bail!(
                "{what} reported tree hash {} for the placeholder of an empty file, computed {}; archive discarded",
                hex::encode(stored.tree_hash),
                hex::encode(expected)
            );
        }
        Ok(StoredArchive {
            archive_id: stored.archive_id,
            tree_hash: empty,
            size: 0,
            created_at: stored.created_at,
        })
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

struct SingleUpload {
    client: Client,
    vault: String,
    what: String,
    body: WholeBody,
    up: Arc<Limiter>,
}

#[async_trait]
impl Upload for SingleUpload {
    async fn send(&mut self, offset: u64, data: Bytes) -> Result<()> {
        self.body.push(offset, &data)
    }

    async fn complete(
        self: Box<Self>,
        size: u64,
        tree_hash: TreeHash,
        description: &str,
    ) -> Result<StoredArchive> {
        let body = self.body.finish(size)?;
        // The archive id is only in the answer: a try whose answer was lost may
        // have stored a copy that only an inventory finds (module docs of aws).
        let out = aws::send(Call::Write, || {
            self.client
                .upload_archive()
                .account_id("-")
                .vault_name(&self.vault)
                .archive_description(description)
                .checksum(hex::encode(tree_hash))
                .body(aws::request_body(body.clone(), &self.up))
                .send()
        })
        .await
        .map_err(|e| aws::explain(&e, &self.what))?;
        stored(out.archive_id(), out.checksum(), size)
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// What Glacier confirmed: its archive id and the tree hash it computed.
fn stored(archive_id: Option<&str>, checksum: Option<&str>, size: u64) -> Result<StoredArchive> {
    let archive_id = archive_id
        .context("Glacier returned no archive id")?
        .to_string();
    let tree_hash = parse_tree_hash(checksum).context("Glacier returned no tree hash")?;
    Ok(StoredArchive {
        archive_id,
        tree_hash,
        size,
        created_at: crate::model::now_secs(),
    })
}

fn parse_tree_hash(text: Option<&str>) -> Option<TreeHash> {
    hex::decode(text?).ok()?.try_into().ok()
}

struct MultipartUpload {
    client: Client,
    vault: String,
    what: String,
    upload_id: String,
    part_size: u64,
    parts: PartSlots<()>,
    up: Arc<Limiter>,
}

#[async_trait]
impl Upload for MultipartUpload {
    fn resume_token(&self) -> Option<String> {
        Some(GlacierStore::token(&self.upload_id, self.part_size))
    }

    async fn reserve(&mut self, len: u64) -> Result<()> {
        self.parts.reserve(len).await.map(drop)
    }

    async fn send(&mut self, offset: u64, data: Bytes) -> Result<()> {
        if !offset.is_multiple_of(self.part_size) || data.len() as u64 > self.part_size {
            bail!(
                "part at offset {offset} of {} bytes does not fit part size {}",
                data.len(),
                self.part_size
            );
        }
        let (client, vault, upload_id, what, up) = (
            self.client.clone(),
            self.vault.clone(),
            self.upload_id.clone(),
            self.what.clone(),
            Arc::clone(&self.up),
        );
        let len = data.len() as u64;
        let send = async move {
            let local = tree_hash_of(&data);
            let range = format!("bytes {}-{}/*", offset, offset + data.len() as u64 - 1);
            let out = aws::send(Call::Write, || {
                client
                    .upload_multipart_part()
                    .account_id("-")
                    .vault_name(&vault)
                    .upload_id(&upload_id)
                    .range(&range)
                    .checksum(hex::encode(local))
                    .body(aws::request_body(data.clone(), &up))
                    .send()
            })
            .await
            .map_err(|e| aws::explain(&e, &what))?;
            if parse_tree_hash(out.checksum()) != Some(local) {
                return Err(anyhow!(
                    "Glacier reported tree hash {} for the part at {offset}, computed {}",
                    out.checksum().unwrap_or("none"),
                    hex::encode(local)
                ));
            }
            Ok(())
        };
        self.parts.spawn(len, send).await.map(drop)
    }

    async fn complete(
        mut self: Box<Self>,
        size: u64,
        tree_hash: TreeHash,
        _description: &str,
    ) -> Result<StoredArchive> {
        self.parts.drain().await?;
        // AWS answers a repeated complete with the same archive id.
        let mut tries = aws::Tries::new(Call::Write);
        let out = loop {
            let sent = self
                .client
                .complete_multipart_upload()
                .account_id("-")
                .vault_name(&self.vault)
                .upload_id(&self.upload_id)
                .archive_size(size.to_string())
                .checksum(hex::encode(tree_hash))
                .send()
                .await;
            match sent {
                Ok(out) => break out,
                Err(e) => {
                    let lost_before = tries.lost_before();
                    if tries.again(e.transience()).await {
                        continue;
                    }
                    if lost_before && aws::is_not_found(&e) {
                        bail!(
                            "{} no longer knows upload {} after the answer to completing it was lost; the archive may be stored all the same (the next `firn inventory` lists it)",
                            self.what,
                            self.upload_id
                        );
                    }
                    return Err(aws::explain(&e, &self.what));
                }
            }
        };
        stored(out.archive_id(), out.checksum(), size)
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.parts.abort().await;
        abort(&self.client, &self.vault, &self.upload_id)
            .await
            .map_err(|e| aws::explain(&e, &self.what))?;
        Ok(())
    }
}

/// Whether the vault exists, for `firn init` (creating it once the plan is accepted).
pub async fn readiness(settings: &GlacierSettings) -> Result<crate::provision::Readiness> {
    use crate::provision::Readiness;
    let config = aws::sdk_config(&settings.aws()).await?;
    let client = Client::new(&config);
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let what = format!("Glacier vault {:?} in {region}", settings.vault);
    match aws::send(Call::Read, || {
        client
            .describe_vault()
            .account_id("-")
            .vault_name(&settings.vault)
            .send()
    })
    .await
    {
        Ok(_) => Ok(Readiness::Exists(what)),
        Err(e) if aws::is_not_found(&e) => {
            let vault = settings.vault.clone();
            Ok(Readiness::Missing {
                plan: format!("create {what}"),
                create: Box::pin(async move {
                    // Creating a vault that exists succeeds: idempotent.
                    aws::send(Call::Write, || {
                        client
                            .create_vault()
                            .account_id("-")
                            .vault_name(&vault)
                            .send()
                    })
                    .await
                    .map_err(|e| aws::explain(&e, &what))?;
                    Ok(format!("created: {what}"))
                }),
            })
        }
        Err(e) => Err(aws::explain(&e, &what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_are_powers_of_two_mib_within_ten_thousand_parts() {
        for (size, budget, conc) in [
            (9 * MIB, 256 * MIB, 4),
            (5 << 30, 64 * MIB, 4),
            (100 << 30, 64 * MIB, 4),
            (40 << 40, 256 * MIB, 4),
            (3 * MIB + 1, MIB, 1),
        ] {
            let part = GlacierStore::choose_part_size(size, budget, conc);
            assert!(part.is_power_of_two() && part >= MIB, "{part}");
            assert!(size.div_ceil(part) <= MAX_PARTS, "size {size} part {part}");
        }
        assert_eq!(
            GlacierStore::choose_part_size(5 << 30, 64 * MIB, 4),
            16 * MIB
        );
        assert_eq!(
            GlacierStore::choose_part_size(100 << 30, 64 * MIB, 4),
            16 * MIB
        );
        assert_eq!(
            GlacierStore::choose_part_size(200 << 30, 64 * MIB, 4),
            32 * MIB,
            "10,000 parts force larger parts"
        );
    }

    #[test]
    fn tokens_round_trip() {
        let token = GlacierStore::token("abc-123", 16 * MIB);
        assert_eq!(
            GlacierStore::parse_token(&token),
            Some((16 * MIB, "abc-123"))
        );
        assert_eq!(GlacierStore::parse_token("local:x"), None);
    }

    #[test]
    fn parses_a_glacier_inventory() {
        let text = r#"{"VaultARN":"arn:aws:glacier:us-east-1:1:vaults/v","InventoryDate":"2024-01-02T03:04:05Z",
            "ArchiveList":[{"ArchiveId":"abc","ArchiveDescription":"firn1 x","CreationDate":"2024-01-01T00:00:00.000Z",
            "Size":1,"SHA256TreeHash":"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"}]}"#;
        let inventory = parse_inventory(text.as_bytes()).unwrap();
        assert_eq!(inventory.date, 1_704_164_645);
        assert_eq!(inventory.archives.len(), 1);
        let a = &inventory.archives[0];
        assert_eq!((a.archive_id.as_str(), a.size), ("abc", 1));
        assert_eq!(a.created_at, 1_704_067_200);
        assert!(a.is_empty_placeholder(Some(0)), "one 0x00 byte");
        assert!(parse_inventory(b"{}").is_err());
    }

    #[test]
    fn parses_glacier_dates() {
        assert_eq!(parse_iso8601("1970-01-02T00:00:01.000Z"), Some(86_401));
    }
}
