//! The embedded default store: archives as files in a directory (an external disk,
//! say). Each archive is written to a temporary file; [`Store::make_durable`]
//! syncs a whole batch of them at once, renames them into place and syncs again,
//! so `archives/` only ever holds whole, durable archives and a crash leaves a
//! whole archive or none — at two filesystem syncs per batch, not three per file.
//!
//! Layout under the store root:
//! - `archives/<first two hex digits>/<archive id>`: the archive's bytes followed by a
//!   trailer (JSON metadata: description, tree hash, size, creation time; then its
//!   length as 8 bytes little-endian and the magic `FIRNARC1`).
//! - `tmp/`: uploads in progress.
//! - `jobs/<job id>.json`: retrieval and inventory jobs (ready after a configurable
//!   delay, as Glacier's are after hours). An inventory job's listing is taken when
//!   it is requested and kept in `jobs/<job id>.inventory.json`.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ArchiveListing, Inventory, JobOutput, JobState, Store, StoredArchive, Upload};
use crate::hash::TreeHasher;
use crate::limit::{Limiter, Limits};
use crate::model::Tier;
use crate::model::TreeHash;
use crate::model::now_secs;
const MAGIC: &[u8; 8] = b"FIRNARC1";
const PART_SIZE: usize = 1 << 20;

/// `store = { kind = "local", path = "…" }` in a set's config; the path defaults
/// to `<data dir>/store`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    pub path: Option<PathBuf>,
    /// Retrieval jobs become ready after this long (to rehearse a vault's wait).
    pub retrieval_delay_secs: Option<u64>,
}

pub struct LocalStore {
    root: PathBuf,
    retrieval_delay_secs: u64,
    /// Archives completed but not yet made durable and moved into `archives/`.
    unsynced: Arc<Mutex<Vec<Unsynced>>>,
    /// Shard directories known to exist (created at most once per run).
    shards: Mutex<HashSet<PathBuf>>,
    /// How fast archives are written and read back. The directory may be a
    /// network share, and a limit the person set is a limit: the embedded store
    /// honours it too.
    limits: Limits,
}

/// A completed archive still in `tmp/`, waiting for [`Store::make_durable`].
struct Unsynced {
    archive_id: String,
    temp_path: PathBuf,
    final_dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    description: String,
    tree_hash: String,
    size: u64,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
struct JobFile {
    archive_id: String,
    tier: Tier,
    requested_at: i64,
    ready_at: i64,
}

/// Whether the embedded store exists in `dir`, for `firn init`.
pub fn readiness(dir: &Path) -> crate::provision::Readiness {
    use crate::provision::Readiness;
    let what = format!("embedded store {}", dir.display());
    if dir.join("archives").is_dir() {
        return Readiness::Exists(what);
    }
    let dir = dir.to_path_buf();
    Readiness::Missing {
        plan: format!("create the embedded store directory {}", dir.display()),
        create: Box::pin(async move {
            LocalStore::open(&dir, 0)?;
            Ok(format!("created: {what}"))
        }),
    }
}

fn random_id(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(hex::encode(buf))
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

/// Flushes everything written to the filesystem holding `dir` (one `syncfs`):
/// a batch of files becomes durable in one pass instead of an fsync each.
fn sync_filesystem(dir: &Path) -> Result<()> {
    let handle =
        File::open(dir).with_context(|| format!("cannot open directory {}", dir.display()))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        // SAFETY: syncfs only reads the file descriptor, which `handle` keeps open.
        if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| {
                format!(
                    "cannot sync the filesystem of {} (is the disk failing or full?)",
                    dir.display()
                )
            });
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        // No syncfs: sync every file in the directory, then the directory.
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_file() {
                File::open(&path).and_then(|f| f.sync_all())?;
            }
        }
        handle
            .sync_all()
            .with_context(|| format!("cannot sync {}", dir.display()))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl LocalStore {
    pub fn open(root: &Path, retrieval_delay_secs: u64) -> Result<Self> {
        for sub in ["archives", "tmp", "jobs"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).with_context(|| {
                format!(
                    "cannot create store directory {} (is the disk mounted and writable?)",
                    dir.display()
                )
            })?;
        }
        // Canonical, so the target recorded with each archive names the store the
        // same way however the path was spelled.
        let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        Ok(LocalStore {
            root,
            retrieval_delay_secs,
            unsynced: Arc::new(Mutex::new(Vec::new())),
            shards: Mutex::new(HashSet::new()),
            limits: Limits::none(),
        })
    }

    /// Writes and reads under these bandwidth limits (the run's: see `limit`).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    fn archive_path(&self, archive_id: &str) -> Result<PathBuf> {
        if !valid_id(archive_id) {
            bail!("invalid archive id {archive_id:?}");
        }
        Ok(self
            .root
            .join("archives")
            .join(&archive_id[..2])
            .join(archive_id))
    }

    fn job_path(&self, job_id: &str) -> Result<PathBuf> {
        if !valid_id(job_id) {
            bail!("invalid job id {job_id:?}");
        }
        Ok(self.root.join("jobs").join(format!("{job_id}.json")))
    }

    fn read_trailer(file: &mut File) -> Result<Trailer> {
        let len = file.metadata()?.len();
        if len < 16 {
            bail!("archive file too short");
        }
        file.seek(SeekFrom::Start(len - 16))?;
        let mut tail = [0u8; 16];
        file.read_exact(&mut tail)?;
        if &tail[8..] != MAGIC {
            bail!("archive file has no firn trailer");
        }
        let meta_len = u64::from_le_bytes(tail[..8].try_into()?);
        if meta_len > len - 16 {
            bail!("archive trailer length is corrupt");
        }
        file.seek(SeekFrom::Start(len - 16 - meta_len))?;
        let mut meta = vec![0u8; meta_len as usize];
        file.read_exact(&mut meta)?;
        Ok(serde_json::from_slice(&meta)?)
    }

    fn inventory_path(&self, job_id: &str) -> Result<PathBuf> {
        if !valid_id(job_id) {
            bail!("invalid job id {job_id:?}");
        }
        Ok(self
            .root
            .join("jobs")
            .join(format!("{job_id}.inventory.json")))
    }

    fn inventory_job_state(&self, job_id: &str, bytes: &[u8]) -> Result<JobState> {
        let job: InventoryJobFile = serde_json::from_slice(bytes)
            .with_context(|| format!("corrupt inventory job file of job {job_id}"))?;
        if !self.inventory_path(job_id)?.exists() {
            return Ok(JobState::Gone);
        }
        Ok(if now_secs() >= job.ready_at {
            JobState::Ready { expires_at: None }
        } else {
            JobState::InProgress {
                ready_at: Some(job.ready_at),
            }
        })
    }
}

/// What a job file is; retrieval job files carry no kind.
#[derive(Serialize, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum JobKind {
    #[default]
    Retrieval,
    Inventory,
}

#[derive(Deserialize)]
struct JobKindOnly {
    #[serde(default)]
    kind: JobKind,
}

/// `jobs/<id>.json` of an inventory job; its listing is `jobs/<id>.inventory.json`.
#[derive(Serialize, Deserialize)]
struct InventoryJobFile {
    kind: JobKind,
    requested_at: i64,
    ready_at: i64,
}

/// An inventory job's output as kept in the store's `jobs/` directory.
#[derive(Serialize, Deserialize)]
struct InventoryFile {
    date: i64,
    archives: Vec<InventoryLine>,
}

#[derive(Serialize, Deserialize)]
struct InventoryLine {
    archive_id: String,
    size: u64,
    tree_hash: String,
    description: String,
    created_at: i64,
}

struct LocalUpload {
    temp_path: PathBuf,
    final_dir: PathBuf,
    archive_id: String,
    /// Created once there is more than a part to write: a small archive is
    /// written whole when it completes, in one blocking call.
    file: Option<File>,
    /// Received, not yet written (at most a part).
    held: Vec<Bytes>,
    held_bytes: u64,
    tree: TreeHasher,
    written: u64,
    /// Where the completed archive waits for [`Store::make_durable`].
    unsynced: Arc<Mutex<Vec<Unsynced>>>,
    /// The run's upload limit: each piece waits for its share before it is taken.
    up: Arc<Limiter>,
}

#[async_trait]
impl Store for LocalStore {
    fn target(&self) -> String {
        format!("local:{}", self.root.display())
    }

    fn kind(&self) -> String {
        "embedded store".into()
    }

    fn part_size(&self, _archive_size: u64) -> usize {
        PART_SIZE
    }

    async fn begin_upload(&self, _size: u64, _description: &str) -> Result<Box<dyn Upload>> {
        let archive_id = random_id(16)?;
        let temp_path = self.root.join("tmp").join(format!("{archive_id}.partial"));
        Ok(Box::new(LocalUpload {
            temp_path,
            final_dir: self.root.join("archives").join(&archive_id[..2]),
            archive_id,
            file: None,
            held: Vec::new(),
            held_bytes: 0,
            tree: TreeHasher::new(),
            written: 0,
            unsynced: Arc::clone(&self.unsynced),
            up: Arc::clone(&self.limits.up),
        }))
    }

    /// 16 MiB: a disk pays per file, not per byte, so 16 MiB already brings a
    /// pack's cost per small file to nothing; smaller than a remote store's,
    /// because a restore reads just the bytes it wants anyway, while the bytes
    /// of deleted files a pack keeps stay on the disk until the pack goes.
    fn default_pack_size(&self) -> u64 {
        16 << 20
    }

    fn default_requests_in_flight(&self) -> usize {
        // Bound by CPU (hashing) and the disk, not by latency: two bundles of
        // small files (read together, 8 a call) per core.
        std::thread::available_parallelism().map_or(16, |n| (n.get() * 16).max(16))
    }

    /// Archives a crash left in `tmp/` before they were made durable: never
    /// recorded, removed once a day old (a store may be shared by sets, and
    /// another set's run may be writing there now).
    async fn abort_abandoned(&self, _keep: &[String], _owner: &str) -> Result<Vec<String>> {
        let tmp = self.root.join("tmp");
        tokio::task::spawn_blocking(move || -> Result<Vec<String>> {
            let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
            let mut removed = Vec::new();
            for entry in
                fs::read_dir(&tmp).with_context(|| format!("cannot list {}", tmp.display()))?
            {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(id) = name.strip_suffix(".partial") else {
                    continue;
                };
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| modified < day_ago);
                if old && valid_id(id) && fs::remove_file(entry.path()).is_ok() {
                    removed.push(id.to_owned());
                }
            }
            Ok(removed)
        })
        .await
        .context("store cleanup task failed")?
    }

    async fn make_durable(&self) -> Result<()> {
        let batch = std::mem::take(&mut *lock(&self.unsynced));
        if batch.is_empty() {
            return Ok(());
        }
        let root = self.root.clone();
        let mut new_shards: Vec<PathBuf> = {
            let known = lock(&self.shards);
            batch
                .iter()
                .map(|u| u.final_dir.clone())
                .filter(|d| !known.contains(d))
                .collect()
        };
        new_shards.sort();
        new_shards.dedup();
        let made = new_shards.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            // 1. Every archive's bytes and trailer on disk, in one pass.
            sync_filesystem(&root.join("tmp"))?;
            for dir in &new_shards {
                fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create store directory {}", dir.display()))?;
            }
            // 2. Into place: `archives/` only holds whole archives.
            for unsynced in &batch {
                let final_path = unsynced.final_dir.join(&unsynced.archive_id);
                fs::rename(&unsynced.temp_path, &final_path).with_context(|| {
                    format!("cannot move archive {} into place", final_path.display())
                })?;
            }
            // 3. The renames themselves durable.
            sync_filesystem(&root.join("archives"))
        })
        .await
        .context("store sync task failed")??;
        lock(&self.shards).extend(made);
        Ok(())
    }

    async fn delete(&self, archive_id: &str) -> Result<()> {
        {
            // Completed but never made durable (discarded before it was recorded).
            let mut unsynced = lock(&self.unsynced);
            if let Some(i) = unsynced.iter().position(|u| u.archive_id == archive_id) {
                let gone = unsynced.swap_remove(i);
                drop(unsynced);
                return match fs::remove_file(&gone.temp_path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                    _ => Ok(()),
                };
            }
        }
        let path = self.archive_path(archive_id)?;
        // Idempotent, like S3's DeleteObject: a deletion a crash interrupted after
        // the file went away is finished by marking it gone in the catalog.
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot delete {}", path.display())),
        }
        if let Some(parent) = path.parent() {
            fsync_dir(parent)?;
        }
        Ok(())
    }

    async fn list(&self) -> Result<Option<Vec<ArchiveListing>>> {
        let root = self.root.join("archives");
        tokio::task::spawn_blocking(move || -> Result<Option<Vec<ArchiveListing>>> {
            let mut out = Vec::new();
            for entry in walkdir::WalkDir::new(&root).min_depth(2).max_depth(2) {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().to_string();
                if !entry.file_type().is_file() || !valid_id(&name) {
                    continue;
                }
                let mut file = File::open(entry.path())?;
                let trailer = LocalStore::read_trailer(&mut file)
                    .with_context(|| format!("unreadable archive {}", entry.path().display()))?;
                let tree_hash = hex::decode(&trailer.tree_hash)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .unwrap_or([0u8; 32]);
                out.push(ArchiveListing {
                    archive_id: name,
                    size: trailer.size,
                    tree_hash,
                    description: trailer.description,
                    created_at: trailer.created_at,
                });
            }
            out.sort_by(|a, b| a.archive_id.cmp(&b.archive_id));
            Ok(Some(out))
        })
        .await?
    }

    async fn request_retrieval(&self, archive_id: &str, tier: Tier) -> Result<String> {
        let path = self.archive_path(archive_id)?;
        if !path.exists() {
            bail!(
                "archive {archive_id} is not in the store {}",
                self.root.display()
            );
        }
        let job_id = random_id(16)?;
        let now = now_secs();
        let job = JobFile {
            archive_id: archive_id.to_owned(),
            tier,
            requested_at: now,
            ready_at: now + self.retrieval_delay_secs as i64,
        };
        let job_path = self.job_path(&job_id)?;
        let temp = job_path.with_extension("json.partial");
        fs::write(&temp, serde_json::to_vec(&job)?)?;
        fs::rename(&temp, &job_path)?;
        Ok(job_id)
    }

    async fn job_state(&self, job_id: &str) -> Result<JobState> {
        let path = self.job_path(job_id)?;
        let Ok(bytes) = fs::read(&path) else {
            return Ok(JobState::Gone);
        };
        if let Ok(JobKindOnly {
            kind: JobKind::Inventory,
        }) = serde_json::from_slice(&bytes)
        {
            return self.inventory_job_state(job_id, &bytes);
        }
        let job: JobFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("corrupt job file {}", path.display()))?;
        if !self.archive_path(&job.archive_id)?.exists() {
            return Ok(JobState::Failed(format!(
                "archive {} no longer exists",
                job.archive_id
            )));
        }
        let now = now_secs();
        if now >= job.ready_at {
            Ok(JobState::Ready { expires_at: None })
        } else {
            Ok(JobState::InProgress {
                ready_at: Some(job.ready_at),
            })
        }
    }

    fn expected_wait(&self, _tier: Tier) -> (u64, u64) {
        (self.retrieval_delay_secs, self.retrieval_delay_secs)
    }

    /// A file on a local disk: read at once, whatever delay the store's
    /// retrieval jobs rehearse.
    fn reads_at_once(&self) -> bool {
        true
    }

    async fn read_at_once(&self, archive_id: &str, offset: u64, len: u64) -> Result<(u64, Bytes)> {
        let archive = self.archive_path(archive_id)?;
        let (size, data) = tokio::task::spawn_blocking(move || -> Result<(u64, Vec<u8>)> {
            let mut file = File::open(&archive)
                .with_context(|| format!("cannot open {}", archive.display()))?;
            let trailer = LocalStore::read_trailer(&mut file)?;
            let start = offset.min(trailer.size);
            let len = len.min(trailer.size - start);
            file.seek(SeekFrom::Start(start))?;
            let mut buf = vec![0u8; len as usize];
            file.read_exact(&mut buf)?;
            Ok((trailer.size, buf))
        })
        .await??;
        self.limits.down.take(data.len() as u64).await;
        Ok((size, Bytes::from(data)))
    }

    async fn read_job_output(&self, job_id: &str, offset: u64, len: u64) -> Result<JobOutput> {
        let path = self.job_path(job_id)?;
        let job: JobFile = serde_json::from_slice(
            &fs::read(&path).with_context(|| format!("retrieval job {job_id} is unknown"))?,
        )?;
        let archive = self.archive_path(&job.archive_id)?;
        let output = tokio::task::spawn_blocking(move || -> Result<JobOutput> {
            let mut file = File::open(&archive)
                .with_context(|| format!("cannot open {}", archive.display()))?;
            let trailer = LocalStore::read_trailer(&mut file)?;
            if offset > trailer.size {
                bail!("range starts past the end of the archive");
            }
            let len = len.min(trailer.size - offset);
            file.seek(SeekFrom::Start(offset))?;
            let mut buf = vec![0u8; len as usize];
            file.read_exact(&mut buf)?;
            // No per-range checksum: the bytes come from a local disk, not over a
            // network, and computing one would cost a second SHA-256 pass; the
            // restore still verifies the whole tree hash and SHA-1.
            Ok(JobOutput {
                data: Bytes::from(buf),
                checksum: None,
            })
        })
        .await??;
        self.limits.down.take(output.data.len() as u64).await;
        Ok(output)
    }

    async fn request_inventory(&self) -> Result<String> {
        self.write_inventory_job().await
    }

    async fn read_inventory(&self, job_id: &str) -> Result<Inventory> {
        let unknown =
            || format!("inventory job {job_id} is unknown or expired; request a new inventory");
        let job: InventoryJobFile =
            serde_json::from_slice(&fs::read(self.job_path(job_id)?).with_context(unknown)?)
                .with_context(|| format!("job {job_id} is not an inventory job"))?;
        if job.kind != JobKind::Inventory {
            bail!("job {job_id} is not an inventory job");
        }
        if now_secs() < job.ready_at {
            bail!("inventory job {job_id} is not ready yet; wait for it");
        }
        let path = self.inventory_path(job_id)?;
        let output: InventoryFile = serde_json::from_slice(&fs::read(&path).with_context(unknown)?)
            .with_context(|| format!("corrupt inventory {}", path.display()))?;
        let archives = output
            .archives
            .into_iter()
            .map(|line| {
                let tree_hash = hex::decode(&line.tree_hash)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .with_context(|| format!("corrupt inventory {}", path.display()))?;
                Ok(ArchiveListing {
                    archive_id: line.archive_id,
                    size: line.size,
                    tree_hash,
                    description: line.description,
                    created_at: line.created_at,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Inventory {
            date: output.date,
            archives,
        })
    }
}

impl LocalStore {
    async fn write_inventory_job(&self) -> Result<String> {
        let date = now_secs();
        let archives = self.list().await?.unwrap_or_default();
        let output = InventoryFile {
            date,
            archives: archives
                .into_iter()
                .map(|a| InventoryLine {
                    archive_id: a.archive_id,
                    size: a.size,
                    tree_hash: hex::encode(a.tree_hash),
                    description: a.description,
                    created_at: a.created_at,
                })
                .collect(),
        };
        let job_id = random_id(16)?;
        let job = InventoryJobFile {
            kind: JobKind::Inventory,
            requested_at: date,
            ready_at: date + self.retrieval_delay_secs as i64,
        };
        // The listing first, then the job that points at it: a job file never
        // exists without its output.
        for (path, bytes) in [
            (self.inventory_path(&job_id)?, serde_json::to_vec(&output)?),
            (self.job_path(&job_id)?, serde_json::to_vec(&job)?),
        ] {
            let temp = path.with_extension("partial");
            fs::write(&temp, bytes)
                .with_context(|| format!("cannot write {} in the store", temp.display()))?;
            fs::rename(&temp, &path)
                .with_context(|| format!("cannot write {} in the store", path.display()))?;
        }
        Ok(job_id)
    }
}

/// Writes `chunks` to an upload's temporary file (created first if need be) and
/// feeds them to the store's own tree hash.
fn write_chunks(
    file: Option<File>,
    mut tree: TreeHasher,
    chunks: &[Bytes],
    temp_path: &Path,
) -> Result<(File, TreeHasher)> {
    let mut file = match file {
        Some(file) => file,
        None => OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp_path)
            .with_context(|| format!("cannot create {} in the store", temp_path.display()))?,
    };
    for chunk in chunks {
        file.write_all(chunk)
            .with_context(|| format!("cannot write {} in the store", temp_path.display()))?;
        tree.update(chunk);
    }
    Ok((file, tree))
}

/// Writes what an upload still holds, checks size and tree hash against what the
/// uploader claims (removing the file if they differ), and appends the trailer.
fn finish_archive(
    file: Option<File>,
    tree: TreeHasher,
    chunks: &[Bytes],
    temp_path: &Path,
    (size, written): (u64, u64),
    tree_hash: TreeHash,
    trailer: Trailer,
) -> Result<TreeHash> {
    let (mut file, tree) = write_chunks(file, tree, chunks, temp_path)?;
    let computed = tree.finish();
    if size != written || computed != tree_hash {
        drop(file);
        let _ = fs::remove_file(temp_path);
        bail!(
            "store received {written} bytes with tree hash {}, the uploader claimed {size} bytes with {}",
            hex::encode(computed),
            hex::encode(tree_hash)
        );
    }
    let trailer = Trailer {
        tree_hash: hex::encode(computed),
        ..trailer
    };
    let meta = serde_json::to_vec(&trailer)?;
    let mut tail = Vec::with_capacity(meta.len() + 16);
    tail.extend_from_slice(&meta);
    tail.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    tail.extend_from_slice(MAGIC);
    file.write_all(&tail)
        .with_context(|| format!("cannot write {} in the store", temp_path.display()))?;
    Ok(computed)
}

impl LocalUpload {
    /// Writes what is held (and `more`) to the temporary file, creating it first
    /// if need be, and feeds the store's own tree hash: one blocking call.
    async fn write_held(&mut self, more: Option<Bytes>) -> Result<()> {
        let mut chunks = std::mem::take(&mut self.held);
        chunks.extend(more);
        self.held_bytes = 0;
        let file = self.file.take();
        let tree = std::mem::take(&mut self.tree);
        let temp_path = self.temp_path.clone();
        let (file, tree) =
            tokio::task::spawn_blocking(move || write_chunks(file, tree, &chunks, &temp_path))
                .await??;
        self.file = Some(file);
        self.tree = tree;
        Ok(())
    }
}

#[async_trait]
impl Upload for LocalUpload {
    async fn send(&mut self, offset: u64, data: Bytes) -> Result<()> {
        if offset != self.written {
            bail!(
                "part at offset {offset} sent out of order (expected {})",
                self.written
            );
        }
        let len = data.len() as u64;
        self.up.take(len).await;
        self.written += len;
        if self.file.is_none() && self.held_bytes + len <= PART_SIZE as u64 {
            self.held_bytes += len;
            self.held.push(data);
            return Ok(());
        }
        self.write_held(Some(data)).await
    }

    async fn complete(
        mut self: Box<Self>,
        size: u64,
        tree_hash: TreeHash,
        description: &str,
    ) -> Result<StoredArchive> {
        let written = self.written;
        let trailer = Trailer {
            description: description.to_owned(),
            tree_hash: String::new(),
            size,
            created_at: now_secs(),
        };
        let created_at = trailer.created_at;
        let chunks = std::mem::take(&mut self.held);
        let file = self.file.take();
        let tree = std::mem::take(&mut self.tree);
        let temp_path = self.temp_path.clone();
        let finish = move || {
            finish_archive(
                file,
                tree,
                &chunks,
                &temp_path,
                (size, written),
                tree_hash,
                trailer,
            )
        };
        // What is held, the check and the trailer. A small archive (all of it held,
        // no file yet) is written here: a new file's bytes go to the page cache,
        // and the wait for the disk is make_durable's, once per batch; a thread
        // hop per small file cost more than the write.
        let computed = if self.held_bytes <= PART_SIZE as u64 && written <= PART_SIZE as u64 {
            finish()?
        } else {
            tokio::task::spawn_blocking(finish).await??
        };
        // Durable, and in `archives/`, once the engine calls make_durable.
        lock(&self.unsynced).push(Unsynced {
            archive_id: self.archive_id.clone(),
            temp_path: self.temp_path.clone(),
            final_dir: self.final_dir.clone(),
        });
        Ok(StoredArchive {
            archive_id: self.archive_id.clone(),
            tree_hash: computed,
            size,
            created_at,
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.file = None;
        match fs::remove_file(&self.temp_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
