//! Small files into packs (see `crate::pack` for the format). A backup's files
//! up to `pack_threshold` are read a chunk at a time (their catalog baselines
//! read alongside), each checked as any upload is (invariant 4: read once,
//! hashed in that read, refused if size, mtime or ctime moved), and appended
//! to a pack; at about `pack_size` the pack is sealed with its index, hashed,
//! noted in the pack journal with every member, sent as one archive, checked
//! against the store's tree hash, and handed whole to the group commit, which
//! records every member with its place in the pack (invariant 1 at pack level).
//!
//! A kill at any moment loses nothing: before the journal entry nothing is
//! stored; after it, recovery records the members of a pack the store holds
//! (found by the journal or by its SHA-1 in the listing), or drops the entry
//! so the files, never recorded, are backed up again.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use super::backup::{FailedFile, UploadItem};
use super::commit::{Commit, PackPlace, Sent};
use super::{Engine, Event, Progress, fault_point};
use crate::catalog::{ArchiveRecord, Catalog as _, PackSlot};
use crate::description::Description;
use crate::hash::{self, ContentHasher};
use crate::model::{ContentHash, Fingerprint, Sha1Digest, now_secs};
use crate::pack::{Builder, Member};
use crate::state::{PackIntent, PackedFile};

/// The pack being sent: its members back, with why, when it failed.
type Sending = tokio::task::JoinHandle<Result<(), (Vec<Staged>, PackFailure)>>;

/// Why a pack was not stored: a cancelled pack's files are cancelled, not failed.
enum PackFailure {
    Cancelled,
    Failed(String),
}

/// The pack's upload stopped because the job was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
struct PackCancelled;
/// Files read together (and their baselines read) in one chunk…
const CHUNK_FILES: usize = 256;
/// …of at most this many bytes, so chunks read ahead stay small in memory.
const CHUNK_BYTES: u64 = 4 << 20;
/// Chunks read ahead of the one being packed.
const CHUNKS_AHEAD: usize = 3;
/// A pack also closes at this many files, whatever its size: each file's
/// record is held while its pack fills, is sent and is recorded, so this bounds
/// that memory (4,096 files of a few hundred bytes: a pack of about 2 MiB, and
/// still one request for 4,096 files).
pub const PACK_FILES_MAX: usize = 4096;

/// What became of the files that went to packs, apart from those recorded
/// (the commit counts those).
#[derive(Default)]
pub(super) struct PackTally {
    pub cancelled: u64,
    pub failed: Vec<FailedFile>,
    pub not_as_archived: Vec<UploadItem>,
}

/// One file read for a pack.
struct Read {
    item: UploadItem,
    outcome: Result<(Fingerprint, Bytes, ContentHash), ReadRefusal>,
}

enum ReadRefusal {
    Cancelled,
    Failed(String),
}

/// A file in the pack being filled, until it is handed to the commit.
struct Staged {
    item: UploadItem,
    before: Fingerprint,
    content: ContentHash,
    replaces: Option<ArchiveRecord>,
    offset: u64,
}

impl Engine {
    /// Packs `items` as they come (every one within the pack threshold) and
    /// sends the packs, handing each to `commits` once the store confirmed it.
    pub(super) async fn upload_packs(
        self: &Arc<Self>,
        items: mpsc::Receiver<UploadItem>,
        commits: mpsc::Sender<Commit>,
        progress: &Progress,
    ) -> PackTally {
        let mut tally = PackTally::default();
        let pack_size = self
            .packing
            .size
            .unwrap_or_else(|| self.store.default_pack_size())
            .max(1);
        let mut reads = Box::pin(chunks(items))
            .map(|chunk| {
                let engine = Arc::clone(self);
                let progress = progress.clone();
                async move { engine.read_chunk(chunk, &progress).await }
            })
            .buffered(CHUNKS_AHEAD);

        let mut builder = Builder::new(0);
        let mut staged: Vec<Staged> = Vec::new();
        // The pack being sent while the next one fills (one at a time: a pack
        // is its own parallelism, its parts go out together).
        let mut sending: Option<Sending> = None;
        while let Some(chunk) = reads.next().await {
            let (reads, mut baselines) = match chunk {
                Ok(chunk) => chunk,
                Err((items, e)) => {
                    for item in items {
                        fail(&mut tally, progress, item, format!("{e:#}")).await;
                    }
                    continue;
                }
            };
            for read in reads {
                let item = read.item;
                match read.outcome {
                    Err(ReadRefusal::Cancelled) => {
                        tally.cancelled += 1;
                        progress.send(Event::Cancelled { id: item.id }).await;
                    }
                    Err(ReadRefusal::Failed(reason)) => {
                        fail(&mut tally, progress, item, reason).await
                    }
                    Ok((_, _, content))
                        if item
                            .expect
                            .is_some_and(|expected| !expected.matches(&content)) =>
                    {
                        // A migration's copy must be the archived version, byte for byte.
                        tally.not_as_archived.push(item);
                    }
                    Ok((before, data, content)) => {
                        let offset = builder.len();
                        builder.push(
                            Member {
                                key: item.key.clone(),
                                raw: item.raw.as_ref().map(|r| r.to_vec()),
                                size: content.size,
                                mtime_ns: before.mtime_ns,
                                sha1: content.sha1,
                                tree_hash: content.tree_hash,
                                offset,
                            },
                            &data,
                        );
                        staged.push(Staged {
                            replaces: baselines.remove(&item.key),
                            item,
                            before,
                            content,
                            offset,
                        });
                        if builder.len() >= pack_size || builder.members() >= PACK_FILES_MAX {
                            let full = std::mem::replace(&mut builder, Builder::new(0));
                            let members = std::mem::take(&mut staged);
                            self.wait_for(&mut sending, &mut tally, progress).await;
                            sending = Some(self.spawn_send(full, members, &commits, progress));
                        }
                    }
                }
            }
        }
        self.wait_for(&mut sending, &mut tally, progress).await;
        if !builder.is_empty() {
            if progress.is_cancelled() {
                // Read but not sent: nothing of these is stored.
                for member in staged {
                    tally.cancelled += 1;
                    progress.send(Event::Cancelled { id: member.item.id }).await;
                }
            } else {
                sending = Some(self.spawn_send(builder, staged, &commits, progress));
                self.wait_for(&mut sending, &mut tally, progress).await;
            }
        }
        tally
    }

    async fn wait_for(
        &self,
        sending: &mut Option<Sending>,
        tally: &mut PackTally,
        progress: &Progress,
    ) {
        let Some(handle) = sending.take() else { return };
        match handle.await {
            Ok(Ok(())) => {}
            Ok(Err((members, PackFailure::Cancelled))) => {
                for member in members {
                    tally.cancelled += 1;
                    progress.send(Event::Cancelled { id: member.item.id }).await;
                }
            }
            Ok(Err((members, PackFailure::Failed(reason)))) => {
                for member in members {
                    fail(tally, progress, member.item, reason.clone()).await;
                }
            }
            Err(join_error) => tally.failed.push(FailedFile {
                path: "?".into(),
                reason: format!("pack upload task failed: {join_error}"),
            }),
        }
    }

    fn spawn_send(
        self: &Arc<Self>,
        builder: Builder,
        members: Vec<Staged>,
        commits: &mpsc::Sender<Commit>,
        progress: &Progress,
    ) -> Sending {
        let engine = Arc::clone(self);
        let commits = commits.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            match engine.send_pack(builder, &members, &progress).await {
                Ok((sha1, archive_id, stored_at)) => {
                    let sent = members
                        .into_iter()
                        .map(|m| Sent {
                            pack: Some(PackPlace {
                                sha1,
                                slot: PackSlot {
                                    offset: m.offset,
                                    len: m.content.size,
                                },
                            }),
                            item: m.item,
                            before: m.before,
                            content: m.content,
                            archive_id: archive_id.clone(),
                            stored_at,
                            replaces: m.replaces,
                        })
                        .collect();
                    let _ = commits.send(Commit::Pack(sent)).await;
                    Ok(())
                }
                Err(e) if e.downcast_ref::<PackCancelled>().is_some() => {
                    Err((members, PackFailure::Cancelled))
                }
                Err(e) => Err((members, PackFailure::Failed(format!("{e:#}")))),
            }
        })
    }

    /// Seals, journals and sends one pack; returns its SHA-1, its archive id
    /// and when the store took it. Nothing is left in the journal when the
    /// store did not confirm it.
    async fn send_pack(
        &self,
        builder: Builder,
        members: &[Staged],
        progress: &Progress,
    ) -> Result<(Sha1Digest, String, i64)> {
        let owner = self.owner.clone();
        let host = self.host.clone();
        let (sealed, hash) = tokio::task::spawn_blocking(move || -> Result<_> {
            let sealed = builder.seal(&owner, &host)?;
            let mut hasher = ContentHasher::new();
            hasher.update(&sealed.bytes);
            Ok((sealed, hasher.finish()))
        })
        .await
        .context("the pack sealing task failed")??;
        let size = sealed.bytes.len() as u64;
        let intent = PackIntent {
            sha1: hash.sha1,
            size,
            started_at: now_secs(),
            archive_id: None,
            stored_at: None,
            members: members
                .iter()
                .map(|m| PackedFile {
                    key: m.item.key.clone(),
                    raw: m.item.raw.as_ref().map(|r| r.to_vec()),
                    fingerprint: m.before,
                    hash: m.content,
                    offset: m.offset,
                })
                .collect(),
        };
        {
            let state = Arc::clone(&self.state);
            tokio::task::block_in_place(|| state.pack_begin(&intent))
                .context("cannot journal a pack in local state")?;
        }
        fault_point("pack-journaled");
        let description = Description::of_pack(size, &hash.sha1, &self.owner, sealed.facts)
            .encode(self.store.description_limit());
        let bytes = Bytes::from(sealed.bytes);
        let outcome = async {
            let mut upload = self.store.begin_upload(size, &description).await?;
            let part = self.store.part_size(size).max(1) as u64;
            let mut offset = 0;
            let sent: Result<()> = async {
                while offset < size {
                    if progress.is_cancelled() {
                        return Err(PackCancelled.into());
                    }
                    let len = part.min(size - offset);
                    upload.reserve(len).await?;
                    upload
                        .send(offset, bytes.slice(offset as usize..(offset + len) as usize))
                        .await?;
                    offset += len;
                }
                Ok(())
            }
            .await;
            if let Err(e) = sent {
                let _ = upload.abort().await;
                return Err(e);
            }
            let stored = upload.complete(size, hash.tree_hash, &description).await?;
            if stored.tree_hash != hash.tree_hash || stored.size != size {
                // Never record what the store did not confirm byte for byte.
                let _ = self.store.delete(&stored.archive_id).await;
                anyhow::bail!(
                    "the store reported tree hash {} for a pack of {} files, computed {}; pack discarded",
                    hex::encode(stored.tree_hash),
                    members.len(),
                    hex::encode(hash.tree_hash)
                );
            }
            Ok(stored)
        }
        .await;
        match outcome {
            Ok(stored) => {
                fault_point("pack-sent");
                Ok((hash.sha1, stored.archive_id, stored.created_at))
            }
            Err(e) => {
                // Nothing stored: the entry goes, the files are tried again next run.
                let _ = self.state.packs_end(&[hash.sha1]);
                Err(e.context(format!("cannot store a pack of {} files", members.len())))
            }
        }
    }

    /// Reads one chunk's files and their catalog baselines, side by side.
    async fn read_chunk(
        self: Arc<Self>,
        items: Vec<UploadItem>,
        progress: &Progress,
    ) -> Result<
        (Vec<Read>, std::collections::HashMap<String, ArchiveRecord>),
        (Vec<UploadItem>, anyhow::Error),
    > {
        let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
        let catalog = Arc::clone(&self.catalog);
        let baselines = async move {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            catalog.current_many(&keys).await
        };
        for item in &items {
            progress.send(Event::Started { id: item.id }).await;
        }
        let cancelled: Vec<bool> = items
            .iter()
            .map(|item| {
                progress.is_cancelled() || item.cancel.as_ref().is_some_and(|c| c.is_cancelled())
            })
            .collect();
        let paths: Vec<Option<std::path::PathBuf>> = items
            .iter()
            .zip(&cancelled)
            .map(|(item, cancelled)| (!cancelled).then(|| self.path_of(item)))
            .collect();
        let threshold = self.packing.threshold;
        let reading = tokio::task::spawn_blocking(move || {
            paths
                .into_iter()
                .map(|path| path.map(|p: std::path::PathBuf| read_member(&p, threshold)))
                .collect::<Vec<_>>()
        });
        let (baselines, read) = tokio::join!(baselines, reading);
        let read = match read {
            Ok(read) => read,
            Err(join_error) => {
                return Err((items, anyhow::anyhow!("read task failed: {join_error}")));
            }
        };
        let baselines = match baselines {
            Ok(baselines) => baselines,
            Err(e) => return Err((items, e)),
        };
        let mut out = Vec::with_capacity(items.len());
        for (item, read) in items.into_iter().zip(read) {
            let outcome = match read {
                None => Err(ReadRefusal::Cancelled),
                Some(Ok(Some((before, data, content)))) => {
                    progress
                        .send(Event::Advanced {
                            id: item.id,
                            bytes: content.size,
                        })
                        .await;
                    Ok((before, data, content))
                }
                Some(Ok(None)) => Err(ReadRefusal::Failed(format!(
                    "{} changed while it was read (size, mtime or ctime moved); not recorded, it will be tried again next run",
                    item.key
                ))),
                Some(Err(e)) => Err(ReadRefusal::Failed(format!(
                    "cannot read {}: {}",
                    self.path_of(&item).display(),
                    crate::scan::describe_io_error(&e)
                ))),
            };
            out.push(Read { item, outcome });
        }
        Ok((out, baselines))
    }
}

/// Reads a small file whole, hashing exactly the bytes read, and stats it
/// before and after: None when it changed meanwhile (invariant 4), or grew past
/// `threshold` (it goes alone next run).
fn read_member(
    path: &std::path::Path,
    threshold: u64,
) -> std::io::Result<Option<(Fingerprint, Bytes, ContentHash)>> {
    let mut file = std::fs::File::open(path)?;
    hash::count_file_opened();
    let before = Fingerprint::of(&file.metadata()?);
    if before.size > threshold {
        return Ok(None);
    }
    // One byte more than the file shows it grew; once its whole size is in, a
    // read that came back short is the end (no further read just to see 0): the
    // stat after the read tells a file that grew meanwhile.
    let size = before.size as usize;
    let mut buf = vec![0u8; size + 1];
    let mut n = 0;
    while n < buf.len() {
        match std::io::Read::read(&mut file, &mut buf[n..]) {
            Ok(0) => break,
            Ok(got) => {
                let wanted = buf.len() - n;
                n += got;
                if n >= size && got < wanted {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    hash::count_bytes_read(n);
    buf.truncate(n);
    let after = Fingerprint::of(&file.metadata()?);
    if n as u64 != before.size || !after.same_content_stamp(&before) {
        return Ok(None);
    }
    let mut hasher = ContentHasher::new();
    hasher.update(&buf);
    Ok(Some((before, Bytes::from(buf), hasher.finish())))
}

/// The items in chunks of at most [`CHUNK_FILES`] files and about
/// [`CHUNK_BYTES`] bytes.
fn chunks(items: mpsc::Receiver<UploadItem>) -> impl futures_util::Stream<Item = Vec<UploadItem>> {
    // The receiver, and the item that did not fit the last chunk.
    futures_util::stream::unfold((items, None), |(mut items, carried)| async move {
        let mut current: Vec<UploadItem> = Vec::new();
        let mut bytes = 0u64;
        let mut next = match carried {
            Some(item) => Some(item),
            None => items.recv().await,
        };
        while let Some(item) = next {
            if !current.is_empty()
                && (current.len() >= CHUNK_FILES || bytes + item.size > CHUNK_BYTES)
            {
                return Some((current, (items, Some(item))));
            }
            bytes += item.size;
            current.push(item);
            next = items.recv().await;
        }
        (!current.is_empty()).then_some((current, (items, None)))
    })
}

async fn fail(tally: &mut PackTally, progress: &Progress, item: UploadItem, reason: String) {
    progress
        .send(Event::Failed {
            id: item.id,
            reason: reason.clone(),
        })
        .await;
    tally.failed.push(FailedFile {
        path: item.key,
        reason,
    });
}
