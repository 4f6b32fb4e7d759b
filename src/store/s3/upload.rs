//! Sending one archive to S3: one PutObject, or a multipart upload within the
//! shared part budget, every body with a checksum S3 verifies and confirms.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::types::{self as s3t, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use md5::Digest as _;

use super::naming::token;
use super::settings::{
    ChecksumChoice, METADATA_MAX, METADATA_NAME, StorageClass, TAG_SHA1, TAG_TREE, explain,
};
use crate::aws::{self, Call};
use crate::limit::Limiter;
use crate::model::TreeHash;
use crate::store::parts::{PartSlots, WholeBody};
use crate::store::{StoredArchive, Upload};

/// The checksum of one request body, as sent and as S3 reports it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyChecksum {
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
                e_tag.map(|t| t.trim_matches('"').to_ascii_lowercase()) == Some(hex::encode(digest))
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
pub(super) struct Reported {
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

/// The object an upload writes: where, and how S3's answers about it are
/// checked and explained.
pub(super) struct Destination {
    pub(super) client: Client,
    pub(super) bucket: String,
    pub(super) key: String,
    pub(super) checksum: ChecksumChoice,
    /// The bucket, for people (`S3 bucket "b" in eu-west-1`).
    pub(super) what: String,
    /// The run's upload limit, which request bodies stream under.
    pub(super) up: Arc<Limiter>,
}

impl Destination {
    fn explain<E>(&self, err: &aws_sdk_s3::error::SdkError<E>) -> anyhow::Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        explain(err, &self.what, self.checksum)
    }

    /// The checksums S3 keeps for the object (HeadObject with checksums
    /// enabled); None when there is no such object. An error is not "no
    /// checksum": the object may be fine, and is never discarded for it.
    async fn stored_checksum(&self) -> Result<Option<Reported>> {
        match aws::send(Call::Read, || {
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
        })
        .await
        {
            Ok(head) => Ok(Some(Reported::from(head.checksum_crc32_c(), head.e_tag()))),
            Err(e) if aws::is_not_found(&e) => Ok(None),
            Err(e) => Err(self.explain(&e).context(format!(
                "cannot confirm what S3 stored for {}; nothing recorded",
                self.key
            ))),
        }
    }

    /// Deletes the object firn could not confirm (best effort: one left behind
    /// is found and reported by the next inventory).
    async fn discard(&self) {
        let _ = aws::send(Call::Write, || {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .send()
        })
        .await;
    }
}

/// Aborts a multipart upload; one already gone (a try that aborted it lost its
/// answer) counts as aborted.
pub(super) async fn abort(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<
    (),
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadError,
    >,
> {
    match aws::send(Call::Write, || {
        client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
    })
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if aws::has_code(&e, "NoSuchUpload") => Ok(()),
        Err(e) => Err(e),
    }
}

/// A request's own config: the timeouts of a body of `len` bytes under `up`.
fn body_config(len: usize, up: &Limiter) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::new()
        .timeout_config(aws::body_timeouts(len as u64, up.may_limit()))
}

pub(super) struct SingleUpload {
    pub(super) dest: Destination,
    pub(super) class: StorageClass,
    pub(super) body: WholeBody,
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
        // The whole content is hashed by now: the record carries the tree hash too.
        let record = match crate::description::decode(description) {
            Ok(mut record) if record.key.is_some() || record.pack.is_some() => {
                record.size = Some(size);
                record.tree_hash = Some(tree_hash);
                record.encode(METADATA_MAX)
            }
            // Only a hash of an overlong path: the record stays as it is.
            _ => description.to_string(),
        };
        let sum = BodyChecksum::of(self.dest.checksum, &body);
        let up = &self.dest.up;
        // The key is this upload's own: a try that landed is overwritten by the
        // same bytes.
        let out = aws::send(Call::Write, || {
            self.dest
                .client
                .put_object()
                .bucket(&self.dest.bucket)
                .key(&self.dest.key)
                .storage_class(self.class.sdk())
                .metadata(METADATA_NAME, &record)
                .set_checksum_crc32_c(sum.crc32c_header())
                .set_content_md5(sum.md5_header())
                .body(aws::request_body(body.clone(), up))
                .customize()
                .config_override(body_config(body.len(), up))
                .send()
        })
        .await
        .map_err(|e| self.dest.explain(&e))?;
        let mut reported = Reported::from(out.checksum_crc32_c(), out.e_tag());
        if reported.crc32c.is_none() && self.dest.checksum == ChecksumChoice::Crc32c {
            // Not echoed in the answer: ask for what S3 stored.
            reported = self.dest.stored_checksum().await?.unwrap_or_default();
        }
        if let Err(e) = reported.confirm(sum, &self.dest.what, &self.dest.key) {
            self.dest.discard().await;
            return Err(e.context("object discarded, nothing recorded"));
        }
        Ok(StoredArchive {
            archive_id: self.dest.key,
            // S3 confirmed these bytes by their checksum: the tree hash is of them.
            tree_hash,
            size,
            created_at: crate::model::now_secs(),
        })
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// A part S3 holds: its number, what completes it, and its local checksum when S3
/// did not confirm it in its answer.
pub(super) type FinishedPart = (i32, CompletedPart, Option<BodyChecksum>);

pub(super) struct MultipartUpload {
    pub(super) dest: Destination,
    pub(super) upload_id: String,
    pub(super) part_size: u64,
    /// Each part's number, what completes it, and its local checksum when S3 did
    /// not confirm it in its answer.
    pub(super) parts: PartSlots<FinishedPart>,
    /// Parts S3 holds, by number (from this run or, resumed, from ListParts),
    /// with the local checksum of those S3 has not confirmed yet.
    pub(super) done: BTreeMap<i32, (CompletedPart, Option<BodyChecksum>)>,
}

impl MultipartUpload {
    /// Confirms through ListParts the parts whose checksum S3 did not echo.
    async fn confirm_parts(&mut self) -> Result<()> {
        if self
            .done
            .values()
            .all(|(_, unconfirmed)| unconfirmed.is_none())
        {
            return Ok(());
        }
        let mut marker: Option<String> = None;
        loop {
            let out = aws::send(Call::Read, || {
                self.dest
                    .client
                    .list_parts()
                    .bucket(&self.dest.bucket)
                    .key(&self.dest.key)
                    .upload_id(&self.upload_id)
                    .set_part_number_marker(marker.clone())
                    .send()
            })
            .await
            .map_err(|e| self.dest.explain(&e))?;
            for listed in out.parts() {
                let Some(number) = listed.part_number() else {
                    continue;
                };
                if let Some((_, unconfirmed)) = self.done.get_mut(&number)
                    && let Some(sum) = *unconfirmed
                {
                    Reported::from(listed.checksum_crc32_c(), listed.e_tag()).confirm(
                        sum,
                        &self.dest.what,
                        &format!("part {number} of {}", self.dest.key),
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
                self.dest.what,
                self.dest.key
            );
        }
        Ok(())
    }

    fn keep(&mut self, finished: Vec<FinishedPart>) {
        for (number, part, unconfirmed) in finished {
            self.done.insert(number, (part, unconfirmed));
        }
    }
}

#[async_trait]
impl Upload for MultipartUpload {
    fn resume_token(&self) -> Option<String> {
        Some(token(&self.dest.key, &self.upload_id, self.part_size))
    }

    async fn reserve(&mut self, len: u64) -> Result<()> {
        let finished = self.parts.reserve(len).await?;
        self.keep(finished);
        Ok(())
    }

    async fn send(&mut self, offset: u64, data: Bytes) -> Result<()> {
        if !offset.is_multiple_of(self.part_size) || data.len() as u64 > self.part_size {
            bail!(
                "part at offset {offset} of {} bytes does not fit part size {}",
                data.len(),
                self.part_size
            );
        }
        let number = (offset / self.part_size + 1) as i32;
        let (client, bucket, key, upload_id, what, checksum, up) = (
            self.dest.client.clone(),
            self.dest.bucket.clone(),
            self.dest.key.clone(),
            self.upload_id.clone(),
            self.dest.what.clone(),
            self.dest.checksum,
            Arc::clone(&self.dest.up),
        );
        let len = data.len() as u64;
        let send = async move {
            let data_for_sum = data.clone();
            let sum =
                tokio::task::spawn_blocking(move || BodyChecksum::of(checksum, &data_for_sum))
                    .await
                    .context("checksum task failed")?;
            let out = aws::send(Call::Write, || {
                client
                    .upload_part()
                    .bucket(&bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .set_checksum_crc32_c(sum.crc32c_header())
                    .set_content_md5(sum.md5_header())
                    .body(aws::request_body(data.clone(), &up))
                    .customize()
                    .config_override(body_config(data.len(), &up))
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
        };
        let finished = self.parts.spawn(len, send).await?;
        self.keep(finished);
        Ok(())
    }

    async fn complete(
        mut self: Box<Self>,
        size: u64,
        tree_hash: TreeHash,
        description: &str,
    ) -> Result<StoredArchive> {
        let finished = self.parts.drain().await?;
        self.keep(finished);
        self.confirm_parts().await?;
        let expected_parts = size.div_ceil(self.part_size).max(1) as usize;
        if self.done.len() != expected_parts {
            bail!(
                "{} of {expected_parts} parts of {} reached S3; not completed",
                self.done.len(),
                self.dest.key
            );
        }
        // What S3 reports for the whole: the checksum of the parts' checksums.
        let expected = match self.dest.checksum {
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
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(self.done.values().map(|(p, _)| p.clone()).collect()))
            .build();
        let completed = aws::send(Call::Write, || {
            self.dest
                .client
                .complete_multipart_upload()
                .bucket(&self.dest.bucket)
                .key(&self.dest.key)
                .upload_id(&self.upload_id)
                .multipart_upload(parts.clone())
                .send()
        })
        .await;
        let whole = |crc32c: Option<&str>, e_tag: Option<&str>| match self.dest.checksum {
            ChecksumChoice::Crc32c => crc32c.map(str::to_owned),
            ChecksumChoice::Md5 => e_tag.map(|t| t.trim_matches('"').to_ascii_lowercase()),
        };
        let mut reported = match completed {
            Ok(out) => whole(out.checksum_crc32_c(), out.e_tag()),
            // A try that completed it lost its answer (or another run aborted it):
            // the object, if it is there, says which.
            Err(e) if aws::has_code(&e, "NoSuchUpload") => {
                let stored = self.dest.stored_checksum().await?.with_context(|| {
                    format!(
                        "{} no longer has the multipart upload of {} and holds no object there (aborted meanwhile?); nothing recorded, the next run sends the file again",
                        self.dest.what, self.dest.key
                    )
                })?;
                whole(stored.crc32c.as_deref(), stored.e_tag.as_deref())
            }
            Err(e) => {
                return Err(self.dest.explain(&e))
                    .with_context(|| format!("completing {}", self.dest.key));
            }
        };
        if reported.is_none() && self.dest.checksum == ChecksumChoice::Crc32c {
            reported = self.dest.stored_checksum().await?.and_then(|r| r.crc32c);
        }
        if reported.as_deref() != Some(expected.as_str()) {
            self.dest.discard().await;
            bail!(
                "{} reported {} for {}, computed {expected}; object discarded",
                self.dest.what,
                reported.as_deref().unwrap_or("no checksum"),
                self.dest.key
            );
        }
        // The object was created before its content was hashed: its hashes go in
        // tags so a listing alone can rebuild the catalog. Best effort: the catalog
        // has them either way.
        let sha1 = crate::description::decode(description)
            .ok()
            .and_then(|d| d.sha1);
        let mut tags = vec![
            s3t::Tag::builder()
                .key(TAG_TREE)
                .value(hex::encode(tree_hash))
                .build()
                .context("tag")?,
        ];
        if let Some(sha1) = sha1 {
            tags.push(
                s3t::Tag::builder()
                    .key(TAG_SHA1)
                    .value(hex::encode(sha1))
                    .build()
                    .context("tag")?,
            );
        }
        let tagging = s3t::Tagging::builder()
            .set_tag_set(Some(tags))
            .build()
            .context("tags")?;
        let _ = aws::send(Call::Write, || {
            self.dest
                .client
                .put_object_tagging()
                .bucket(&self.dest.bucket)
                .key(&self.dest.key)
                .tagging(tagging.clone())
                .send()
        })
        .await;
        Ok(StoredArchive {
            archive_id: self.dest.key,
            tree_hash,
            size,
            created_at: crate::model::now_secs(),
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.parts.abort().await;
        abort(
            &self.dest.client,
            &self.dest.bucket,
            &self.dest.key,
            &self.upload_id,
        )
        .await
        .map_err(|e| self.dest.explain(&e))?;
        Ok(())
    }
}
