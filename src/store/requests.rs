//! The requests a store sends that its provider bills per request, counted
//! where they are made: an interceptor on the store's AWS client sees every
//! try of every operation as it goes on the wire (retries included, so the
//! count is what a bill can be at most), and sorts it by the operation's name.
//!
//! - **Upload requests** (S3's PUT, COPY and POST class; a Glacier vault's
//!   upload requests): PutObject; a multipart upload's CreateMultipartUpload,
//!   one UploadPart per part and CompleteMultipartUpload, and the
//!   PutObjectTagging that records its hashes; CopyObject; a vault's
//!   UploadArchive, InitiateMultipartUpload, UploadMultipartPart and
//!   CompleteMultipartUpload. Catalog snapshots are archives like any other.
//!   Priced at `upload_per_1000_requests` (`cost`).
//! - **Retrieval requests**: S3 RestoreObject, a vault's InitiateJob (an
//!   inventory's job counts here too, though it is not a retrieval). Their
//!   charge is in the retrieval estimate of each tier (per GB and per 1,000
//!   requests), so they are counted here, not priced again.
//!
//! Not counted: deletions (free on S3 and Glacier), aborting a multipart
//! upload (free), and reads — GET, HEAD and LIST, billed at S3 STANDARD's
//! request rates (0.0004 and 0.005 USD per 1,000) whatever the class. The
//! embedded store sends no request anyone bills: it counts nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use serde::{Deserialize, Serialize};

/// How many billed requests a store sent, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCount {
    /// Upload requests (S3 PUT class, vault uploads).
    pub upload: u64,
    /// Retrieval requests (RestoreObject, InitiateJob).
    pub retrieval: u64,
}

impl RequestCount {
    /// What was sent since `earlier` (a reading of the same counter).
    pub fn since(self, earlier: RequestCount) -> RequestCount {
        RequestCount {
            upload: self.upload.saturating_sub(earlier.upload),
            retrieval: self.retrieval.saturating_sub(earlier.retrieval),
        }
    }

    pub fn is_zero(&self) -> bool {
        self.upload == 0 && self.retrieval == 0
    }
}

/// The billed kind of an operation, by its name in the AWS SDKs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billed {
    Upload,
    Retrieval,
}

impl Billed {
    /// What an operation of S3 or Glacier is billed as; None for what this
    /// count leaves out (reads, lists, deletions, aborts).
    pub fn of(operation: &str) -> Option<Billed> {
        match operation {
            // S3 (PUT, COPY, POST class) and Glacier vault uploads.
            "PutObject"
            | "CreateMultipartUpload"
            | "UploadPart"
            | "UploadPartCopy"
            | "CompleteMultipartUpload"
            | "CopyObject"
            | "PutObjectTagging"
            | "UploadArchive"
            | "InitiateMultipartUpload"
            | "UploadMultipartPart" => Some(Billed::Upload),
            "RestoreObject" | "InitiateJob" => Some(Billed::Retrieval),
            _ => None,
        }
    }
}

/// The counts of one store, shared with the interceptor on its client.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    upload: Arc<AtomicU64>,
    retrieval: Arc<AtomicU64>,
}

impl RequestCounter {
    pub fn add(&self, billed: Billed) {
        let counter = match billed {
            Billed::Upload => &self.upload,
            Billed::Retrieval => &self.retrieval,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Every request counted so far.
    pub fn read(&self) -> RequestCount {
        RequestCount {
            upload: self.upload.load(Ordering::Relaxed),
            retrieval: self.retrieval.load(Ordering::Relaxed),
        }
    }

    /// The interceptor that counts the requests of a client (S3 or Glacier:
    /// both SDKs take the same interceptors).
    pub fn interceptor(&self) -> CountRequests {
        CountRequests(self.clone())
    }
}

/// Counts each try of a billed operation as it is about to go on the wire.
#[derive(Debug)]
pub struct CountRequests(RequestCounter);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(billed) = cfg.load::<Metadata>().and_then(|m| Billed::of(m.name())) {
            self.0.add(billed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_and_retrievals_are_counted_apart_and_reads_and_deletions_not_at_all() {
        let counter = RequestCounter::default();
        for op in [
            "PutObject",
            "CreateMultipartUpload",
            "UploadPart",
            "UploadPart",
            "CompleteMultipartUpload",
            "PutObjectTagging",
            "RestoreObject",
            "GetObject",
            "HeadObject",
            "ListObjectsV2",
            "DeleteObject",
            "AbortMultipartUpload",
            "UploadArchive",
            "InitiateJob",
            "DescribeJob",
        ] {
            if let Some(billed) = Billed::of(op) {
                counter.add(billed);
            }
        }
        let count = counter.read();
        assert_eq!(
            count,
            RequestCount {
                upload: 7,
                retrieval: 2
            }
        );
        let later = RequestCount {
            upload: 10,
            retrieval: 2,
        };
        assert_eq!(
            later.since(count),
            RequestCount {
                upload: 3,
                retrieval: 0
            }
        );
        assert!(later.since(later).is_zero());
    }
}
