//! Reading objects back: each piece of a download fetched as a whole part, a
//! whole object or a range, checked against the checksum S3 keeps for exactly
//! those bytes; a server that ignores `partNumber` on GET read part by part by
//! range; bodies that break off tried again under the retry policy.

use anyhow::{Context, Result, bail};
use aws_sdk_s3::types::ChecksumMode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;

use super::S3Store;
use super::naming::{Fetch, Shape};
use crate::aws::{self, Call, FetchError};

impl S3Store {
    /// `len` bytes of an object at `offset`, as a whole part, a whole object or
    /// a range, each checked against the checksum S3 keeps for exactly those
    /// bytes when it keeps one.
    pub(super) async fn read_piece(&self, key: &str, offset: u64, len: u64) -> Result<Bytes> {
        let shape = self.shape_of(key).await?;
        Ok(match shape.fetch(offset, len) {
            Fetch::PartByRange(number) => self.part_by_range(key, number, offset, len).await?,
            fetch => match self.get(key, &fetch, offset, len, None).await? {
                Some(data) => data,
                None => match fetch {
                    // The whole object for a part: this server ignores partNumber
                    // on GET. Ranges from now on, for every part of the object.
                    Fetch::Part(number) => {
                        self.remember(key, shape.parts_by_range());
                        self.part_by_range(key, number, offset, len).await?
                    }
                    _ => bail!(
                        "{} answered a request for {len} bytes of {key} at offset {offset} with another length; is the endpoint an S3 service?",
                        self.what()
                    ),
                },
            },
        })
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
            Some(n) if n == size.div_ceil(part_size) => Shape::Parts {
                size,
                part_size,
                by_range: false,
            },
            Some(_) => Shape::Unknown,
        };
        self.remember(key, shape);
        Ok(shape)
    }

    fn remember(&self, key: &str, shape: Shape) {
        if let Ok(mut shapes) = self.shapes.lock() {
            shapes.insert(key.to_string(), shape);
        }
    }

    /// One piece of an object, `len` bytes at `offset`, as `fetch` says, checked
    /// against the CRC32C S3 sends with it (or `part_crc32c`, the part's own,
    /// for a part fetched by range). None when the server answers with another
    /// length (a whole object for a part): its body is not read.
    async fn get(
        &self,
        key: &str,
        fetch: &Fetch,
        offset: u64,
        len: u64,
        part_crc32c: Option<&str>,
    ) -> Result<Option<Bytes>> {
        let answer = aws::send(Call::Read, || async {
            let mut request = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .checksum_mode(ChecksumMode::Enabled);
            // A whole part (or the whole of a single-part object) is fetched as
            // such, so S3 sends the checksum of exactly these bytes.
            match fetch {
                Fetch::Whole => {}
                Fetch::Part(number) => request = request.part_number(*number),
                Fetch::Range | Fetch::PartByRange(_) => {
                    request = request.range(format!("bytes={}-{}", offset, offset + len - 1))
                }
            }
            let out = request.send().await?;
            let announced = out.content_length().map(|n| n.max(0) as u64);
            if announced.is_some_and(|n| n != len) {
                return Ok(None);
            }
            let reported = out.checksum_crc32_c().map(str::to_owned);
            let body = aws::read_body(out.body, announced, &self.limits.down)
                .await
                .map_err(FetchError::CutShort)?;
            Ok::<_, FetchError<_>>((body.len() as u64 == len).then_some((body, reported)))
        })
        .await
        .map_err(|e| e.explain(&self.what(), |e| self.explain_get(e, key)))?;
        let Some((body, reported)) = answer else {
            return Ok(None);
        };
        // Only a whole-object or whole-part checksum says anything about these bytes
        // (a composite one, `…-N`, covers other bytes).
        if let Some(sum) = reported
            .as_deref()
            .or(part_crc32c)
            .filter(|s| !s.contains('-'))
        {
            let local = B64.encode(crc32c::crc32c(&body).to_be_bytes());
            if sum != local {
                bail!(
                    "the bytes of {key} at offset {offset} arrived with CRC32C {local}, S3 sent {sum} (corrupted in transit)"
                );
            }
        }
        Ok(Some(body))
    }

    /// Part `number` of an object by its byte range, for a server that ignores
    /// partNumber on GET: what `HEAD ?partNumber=N` reports of the part (its
    /// length, and its CRC32C where the server keeps one) checks the bytes. A
    /// server that ignores partNumber on HEAD too leaves them to the restore's
    /// check of the whole archive (tree hash and SHA-1).
    async fn part_by_range(&self, key: &str, number: i32, offset: u64, len: u64) -> Result<Bytes> {
        let head = aws::send(Call::Read, || {
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .part_number(number)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
        })
        .await
        .map_err(|e| self.explain(&e))?;
        let part_crc32c = if head.content_length() == Some(len as i64) {
            head.checksum_crc32_c()
        } else {
            None
        };
        self.get(key, &Fetch::PartByRange(number), offset, len, part_crc32c)
            .await?
            .with_context(|| {
                format!(
                    "{} answered a request for bytes {offset}-{} of {key} with another length; is the endpoint an S3 service?",
                    self.what(),
                    offset + len - 1
                )
            })
    }

    fn explain_get(
        &self,
        e: &aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::get_object::GetObjectError>,
        key: &str,
    ) -> anyhow::Error {
        if aws::has_code(e, "InvalidObjectState") {
            anyhow::Error::from(aws::AwsError {
                message: format!(
                    "{key} is not restored yet (its restore is still running or has expired); run again later"
                ),
                code: Some("InvalidObjectState".into()),
            })
        } else {
            self.explain(e)
        }
    }
}
