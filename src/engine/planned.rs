//! A backup's plan as a bounded stream: what the uploads take, a window at a
//! time, so a job of millions of files holds only the files in flight.
//!
//! A whole-tree backup ([`super::Engine::back_up_tree`]) writes each file its
//! status plans to upload (or whose catalog mtime it updates) to a spill file
//! as status settles it (a compact record: key, raw name, size, fingerprint;
//! an unnamed temporary file in the local state's directory, gone when the
//! job ends, even on a kill), then reads it back into a bounded channel while
//! the uploads run. Status cannot feed the uploads directly: it walks the
//! catalog's current versions with a cursor, and the group commit writes the
//! same catalog; blocking one on the other's progress could deadlock.
//!
//! A plan held whole (`Plan`: the TUI's batches, a migration, a set
//! with a budget, which must see every file to choose what fits) is fed into
//! the same channel.

use std::io::{BufReader, BufWriter, Read, Write};

use anyhow::{Context as _, Result};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::progress::{TaskId, TaskIds};
use crate::model::Fingerprint;
use tokio_util::sync::CancellationToken;

/// Steps waiting in the channel between the plan and the uploads.
pub(super) const PLANNED_AHEAD: usize = 1024;

/// One thing a backup does with a file.
pub(super) enum Step {
    Upload(UploadItem),
    /// Up to date by content, its mtime moved: the catalog's mtime is updated.
    UpdateMtime(String, i64),
}

/// The steps of a plan, as they come; the task feeding them says whether it
/// fed them all.
pub(super) struct PlanStream {
    pub steps: mpsc::Receiver<Step>,
    pub feeder: JoinHandle<Result<()>>,
}

impl PlanStream {
    /// A plan held whole, fed into the stream (mtime updates first).
    pub fn of(uploads: Vec<UploadItem>, mtime_updates: Vec<(String, i64)>) -> PlanStream {
        let (tx, steps) = mpsc::channel(PLANNED_AHEAD);
        let feeder = tokio::spawn(async move {
            let updates = mtime_updates.into_iter();
            let updates = updates.map(|(key, mtime)| Step::UpdateMtime(key, mtime));
            for step in updates.chain(uploads.into_iter().map(Step::Upload)) {
                if tx.send(step).await.is_err() {
                    break;
                }
            }
            Ok(())
        });
        PlanStream { steps, feeder }
    }
}

/// One file to upload, with the id its progress events carry.
#[derive(Debug, Clone)]
pub struct UploadItem {
    pub id: TaskId,
    pub key: String,
    pub raw: Option<Box<[u8]>>,
    /// The size status saw (the upload re-reads the file's metadata itself).
    pub size: u64,
    /// The fingerprint status saw, when known.
    pub fingerprint: Option<Fingerprint>,
    /// Cancels this upload alone (the job's token cancels all of them).
    pub cancel: Option<CancellationToken>,
    /// The content a migration expects (its archived version's): bytes that
    /// differ are not stored (`BackupSummary::not_as_archived`).
    pub expect: Option<Expected>,
}

/// The hashes a file's bytes must have for its upload to be a copy of an
/// archived version (an unknown hash, all zeros, is not compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub sha1: crate::model::Sha1Digest,
    pub tree_hash: crate::model::TreeHash,
}

impl Expected {
    /// Whether there is anything to compare: a record with neither hash known
    /// cannot vouch for a local file.
    pub fn is_checkable(&self) -> bool {
        self.sha1 != crate::model::UNKNOWN_SHA1 || self.tree_hash != crate::model::UNKNOWN_TREE_HASH
    }

    pub fn matches(&self, content: &crate::model::ContentHash) -> bool {
        self.is_checkable()
            && (self.sha1 == crate::model::UNKNOWN_SHA1 || self.sha1 == content.sha1)
            && (self.tree_hash == crate::model::UNKNOWN_TREE_HASH
                || self.tree_hash == content.tree_hash)
    }
}

const UPLOAD: u8 = 0;
const UPDATE_MTIME: u8 = 1;
const NO_RAW: u32 = u32::MAX;

/// Where a whole-tree backup writes its plan while status runs.
pub(super) struct PlanSpill {
    out: BufWriter<std::fs::File>,
    /// Uploads written, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// The first write that failed (later writes are skipped).
    failed: Option<std::io::Error>,
}

impl PlanSpill {
    /// A temporary file in `dir`, unlinked at once (the system frees it when
    /// the job closes it, or dies).
    pub fn new(dir: &std::path::Path) -> Result<PlanSpill> {
        let path = dir.join(format!("backup-plan-{}.tmp", std::process::id()));
        let file = (|| {
            // One left by a process of the same id that died in between.
            let _ = std::fs::remove_file(&path);
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            Ok::<_, std::io::Error>(file)
        })()
        .with_context(|| {
            format!(
                "cannot create a temporary file in {} for the backup's plan (check the disk has room and the directory is writable)",
                dir.display()
            )
        })?;
        Ok(PlanSpill {
            out: BufWriter::with_capacity(1 << 16, file),
            files: 0,
            bytes: 0,
            failed: None,
        })
    }

    fn write(&mut self, record: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>) {
        if self.failed.is_none()
            && let Err(e) = record(&mut self.out)
        {
            self.failed = Some(e);
        }
    }

    /// A file to upload, as status saw it.
    pub fn upload(&mut self, key: &str, raw: Option<&[u8]>, fingerprint: &Fingerprint) {
        self.files += 1;
        self.bytes += fingerprint.size;
        self.write(|out| {
            out.write_all(&[UPLOAD])?;
            write_bytes(out, key.as_bytes())?;
            match raw {
                Some(raw) => write_bytes(out, raw)?,
                None => out.write_all(&NO_RAW.to_le_bytes())?,
            }
            out.write_all(&fingerprint.size.to_le_bytes())?;
            out.write_all(&fingerprint.mtime_ns.to_le_bytes())?;
            out.write_all(&fingerprint.ctime_ns.to_le_bytes())?;
            out.write_all(&fingerprint.inode.to_le_bytes())
        });
    }

    /// An up-to-date file whose catalog mtime is to be updated.
    pub fn update_mtime(&mut self, key: &str, mtime_ns: i64) {
        self.write(|out| {
            out.write_all(&[UPDATE_MTIME])?;
            write_bytes(out, key.as_bytes())?;
            out.write_all(&mtime_ns.to_le_bytes())
        });
    }

    /// Reads the plan back into a stream, each upload with a fresh task id.
    pub fn into_stream(self, ids: TaskIds) -> Result<PlanStream> {
        if let Some(e) = self.failed {
            return Err(anyhow::Error::new(e).context(
                "cannot write the backup's plan to a temporary file in the local state's directory (check the disk has room)",
            ));
        }
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| e.into_error())
            .context("cannot write the backup's plan to its temporary file")?;
        std::io::Seek::rewind(&mut file).context("cannot read back the backup's plan")?;
        let (tx, steps) = mpsc::channel(PLANNED_AHEAD);
        let feeder = tokio::task::spawn_blocking(move || -> Result<()> {
            let mut input = BufReader::with_capacity(1 << 16, file);
            while let Some(step) = read_step(&mut input, &ids)
                .context("cannot read back the backup's plan from its temporary file")?
            {
                if tx.blocking_send(step).is_err() {
                    break;
                }
            }
            Ok(())
        });
        Ok(PlanStream { steps, feeder })
    }
}

fn write_bytes(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|&len| len != NO_RAW)
        .ok_or_else(|| std::io::Error::other("a key too long for the plan"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

fn read_u32(input: &mut impl Read) -> std::io::Result<u32> {
    let mut buf = [0u8; 4];
    input.read_exact(&mut buf)?;
    Ok(u32::from_le_bytes(buf))
}

fn read_u64(input: &mut impl Read) -> std::io::Result<u64> {
    let mut buf = [0u8; 8];
    input.read_exact(&mut buf)?;
    Ok(u64::from_le_bytes(buf))
}

fn read_vec(input: &mut impl Read, len: u32) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    input.read_exact(&mut buf)?;
    Ok(buf)
}

fn read_key(input: &mut impl Read) -> std::io::Result<String> {
    let len = read_u32(input)?;
    String::from_utf8(read_vec(input, len)?)
        .map_err(|_| std::io::Error::other("a key that is not UTF-8 in the plan"))
}

/// The next step, None at the end.
fn read_step(input: &mut impl Read, ids: &TaskIds) -> std::io::Result<Option<Step>> {
    let mut tag = [0u8; 1];
    if input.read(&mut tag)? == 0 {
        return Ok(None);
    }
    match tag[0] {
        UPLOAD => {
            let key = read_key(input)?;
            let raw = match read_u32(input)? {
                NO_RAW => None,
                len => Some(read_vec(input, len)?.into_boxed_slice()),
            };
            let fingerprint = Fingerprint {
                size: read_u64(input)?,
                mtime_ns: read_u64(input)? as i64,
                ctime_ns: read_u64(input)? as i64,
                inode: read_u64(input)?,
            };
            Ok(Some(Step::Upload(UploadItem {
                id: ids.next(),
                key,
                raw,
                size: fingerprint.size,
                fingerprint: Some(fingerprint),
                cancel: None,
                expect: None,
            })))
        }
        UPDATE_MTIME => {
            let key = read_key(input)?;
            let mtime_ns = read_u64(input)? as i64;
            Ok(Some(Step::UpdateMtime(key, mtime_ns)))
        }
        other => Err(std::io::Error::other(format!(
            "an unknown record {other} in the plan"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spilled_plan_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = PlanSpill::new(dir.path()).unwrap();
        let fp = |size| Fingerprint {
            size,
            mtime_ns: -5,
            ctime_ns: 7,
            inode: 9,
        };
        spill.upload("a/b", None, &fp(3));
        spill.update_mtime("c", 42);
        spill.upload("d\u{fffd}", Some(b"d\xff"), &fp(0));
        assert_eq!((spill.files, spill.bytes), (2, 3));
        let mut stream = spill.into_stream(TaskIds::default()).unwrap();
        let mut got = Vec::new();
        while let Some(step) = stream.steps.recv().await {
            got.push(match step {
                Step::Upload(item) => format!(
                    "{} {} {:?} {:?} {:?}",
                    item.id, item.key, item.raw, item.size, item.fingerprint
                ),
                Step::UpdateMtime(key, mtime) => format!("{key} {mtime}"),
            });
        }
        stream.feeder.await.unwrap().unwrap();
        assert_eq!(
            got,
            [
                format!("0 a/b None 3 {:?}", Some(fp(3))),
                "c 42".to_string(),
                format!(
                    "1 d\u{fffd} {:?} 0 {:?}",
                    Some(Box::<[u8]>::from(&b"d\xff"[..])),
                    Some(fp(0))
                ),
            ]
        );
    }
}
