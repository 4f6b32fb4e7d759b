//! Restore: archived versions back onto disk through the store's retrieval jobs.
//!
//! DESIGN invariant 5: the data goes to a temporary file inside the destination,
//! is verified (tree hash, then SHA-1) before it is renamed into place, never lands
//! outside the destination, and never replaces an existing file without consent.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::Engine;
use crate::catalog::ArchiveRecord;
use crate::hash::ContentHasher;
use crate::pathkey::safe_relative_path;
use crate::state::RetrievalRecord;
use crate::store::local::now_secs;
use crate::store::{JobState, Tier};

/// Glacier keeps job output at least 24 hours: a job younger than that is reused.
const JOB_REUSE_SECS: i64 = 24 * 3600;
const DOWNLOAD_RANGE: u64 = 16 << 20;

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub destination: PathBuf,
    pub overwrite: bool,
    pub tier: Tier,
    /// Wait for jobs that are not ready yet (otherwise report and return).
    pub wait: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum RestoreOutcome {
    Restored { path: PathBuf },
    Identical { path: PathBuf },
    Waiting { ready_at: Option<i64> },
}

impl Engine {
    pub async fn restore(
        &self,
        record: &ArchiveRecord,
        options: &RestoreOptions,
    ) -> Result<RestoreOutcome> {
        let relative = safe_relative_path(&record.key, record.raw.as_deref())
            .map_err(|why| anyhow::anyhow!("refusing to restore {:?}: {why}", record.key))?;
        let target = options.destination.join(&relative);
        let parent = prepare_parent(&options.destination, &relative)?;

        match fs::symlink_metadata(&target) {
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_file() => {
                bail!(
                    "{} exists and is not a regular file; move it away first",
                    target.display()
                )
            }
            Ok(_) => {
                if same_content(&target, record)? {
                    return Ok(RestoreOutcome::Identical { path: target });
                }
                if !options.overwrite {
                    bail!(
                        "{} exists with other content; pass --overwrite to replace it",
                        target.display()
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot inspect {}", target.display()));
            }
        }

        let job_id = match self.ready_job(record, options).await? {
            Ok(job_id) => job_id,
            Err(ready_at) => return Ok(RestoreOutcome::Waiting { ready_at }),
        };
        self.download(record, &job_id, &parent, &target, options.overwrite)
            .await?;
        self.state.forget_retrieval(&record.archive_id)?;
        Ok(RestoreOutcome::Restored { path: target })
    }

    /// Reuses a job requested in the last 24 hours, else requests one; waits for it
    /// when asked. Err(ready_at) when it is not ready and we do not wait.
    async fn ready_job(
        &self,
        record: &ArchiveRecord,
        options: &RestoreOptions,
    ) -> Result<Result<String, Option<i64>>> {
        let now = now_secs();
        let mut job = self
            .state
            .retrieval(&record.archive_id)?
            .filter(|j| now - j.requested_at < JOB_REUSE_SECS);
        let mut delay = Duration::from_millis(200);
        loop {
            let job_id = match &job {
                Some(j) => j.job_id.clone(),
                None => {
                    let job_id = self
                        .store
                        .request_retrieval(&record.archive_id, options.tier)
                        .await?;
                    let rec = RetrievalRecord {
                        archive_id: record.archive_id.clone(),
                        job_id: job_id.clone(),
                        tier: options.tier.as_str().into(),
                        requested_at: now_secs(),
                    };
                    self.state.put_retrieval(&rec)?;
                    job = Some(rec);
                    job_id
                }
            };
            match self.store.job_state(&job_id).await? {
                JobState::Ready => return Ok(Ok(job_id)),
                JobState::Gone => {
                    self.state.forget_retrieval(&record.archive_id)?;
                    job = None;
                }
                JobState::Failed(reason) => bail!("retrieval of {} failed: {reason}", record.key),
                JobState::InProgress { ready_at } => {
                    if !options.wait {
                        return Ok(Err(ready_at));
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    async fn download(
        &self,
        record: &ArchiveRecord,
        job_id: &str,
        parent: &Path,
        target: &Path,
        overwrite: bool,
    ) -> Result<()> {
        let mut suffix = [0u8; 6];
        getrandom::fill(&mut suffix).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let temp = parent.join(format!(".firn-restore-{}.partial", hex::encode(suffix)));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        let result = async {
            let mut hasher = ContentHasher::new();
            let mut offset = 0;
            while offset < record.size {
                let len = DOWNLOAD_RANGE.min(record.size - offset);
                let bytes = self.store.read_job_output(job_id, offset, len).await?;
                if bytes.len() as u64 != len {
                    bail!("short read from the store at offset {offset} of {}", record.key);
                }
                hasher.update(&bytes);
                file.write_all(&bytes).with_context(|| format!("cannot write {}", temp.display()))?;
                offset += len;
            }
            let got = hasher.finish();
            if got.tree_hash != record.tree_hash {
                bail!("retrieved data for {} has tree hash {}, the catalog says {}; nothing was written", record.key, hex::encode(got.tree_hash), hex::encode(record.tree_hash));
            }
            if got.sha1 != record.sha1 {
                bail!("retrieved data for {} has SHA-1 {}, the catalog says {}; nothing was written", record.key, hex::encode(got.sha1), hex::encode(record.sha1));
            }
            let mtime = std::time::UNIX_EPOCH + Duration::from_nanos(record.mtime_ns.max(0) as u64);
            file.set_modified(mtime).context("cannot set mtime")?;
            file.sync_all().context("cannot fsync restored file")?;
            if !overwrite && fs::symlink_metadata(target).is_ok() {
                bail!("{} appeared while restoring; pass --overwrite to replace it", target.display());
            }
            fs::rename(&temp, target).with_context(|| format!("cannot move restored file to {}", target.display()))?;
            File::open(parent).and_then(|d| d.sync_all()).ok();
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }
}

/// Creates the directories from the destination down to the file's parent, refusing
/// to pass through a symlink (which could lead outside the destination).
fn prepare_parent(destination: &Path, relative: &Path) -> Result<PathBuf> {
    fs::create_dir_all(destination)
        .with_context(|| format!("cannot create destination {}", destination.display()))?;
    let mut dir = destination.to_path_buf();
    let components: Vec<_> = relative.components().collect();
    for component in &components[..components.len().saturating_sub(1)] {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                bail!(
                    "refusing to restore through symbolic link {}",
                    dir.display()
                )
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!("{} exists and is not a directory", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", dir.display())),
        }
    }
    Ok(dir)
}

fn same_content(path: &Path, record: &ArchiveRecord) -> Result<bool> {
    let meta = fs::metadata(path)?;
    if meta.len() != record.size {
        return Ok(false);
    }
    let fingerprint = crate::scan::Fingerprint::of(&meta);
    match crate::hash::hash_file(path, &fingerprint, &mut |_| {}) {
        Ok(hash) => Ok(hash.sha1 == record.sha1 && hash.tree_hash == record.tree_hash),
        Err(_) => Ok(false),
    }
}
