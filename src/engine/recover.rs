//! Finishing what an interrupted run left: uploads the store confirmed but the
//! catalog never recorded (invariant 3 in the crate docs: every archive is accounted for),
//! and deletions the store confirmed but the catalog still lists.

use anyhow::Result;
use serde::Serialize;

use super::Engine;
use super::owners::{Owners, Whose};
use crate::catalog::Catalog as _;
use crate::catalog::{ArchiveRecord, ArchiveState, PackSlot};
use crate::description;
use crate::model::Fingerprint;
use crate::model::now_secs;
use crate::model::{ContentHash, TreeHash};
use crate::state::JournalEntry;
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoveryReport {
    /// Keys whose stray archive matched the unchanged file and became current.
    pub adopted: Vec<String>,
    /// Stray archives of files that changed since: recorded as superseded versions.
    pub superseded: Vec<String>,
    /// Interrupted uploads the store cannot list (check with an inventory).
    pub unresolved: Vec<String>,
    /// Uploads in progress in the store that nothing will resume, aborted.
    pub aborted_uploads: Vec<String>,
    /// Keys whose interrupted deletion was finished (store, then catalog).
    pub deletions_finished: Vec<String>,
    /// What could not be checked (the run goes on).
    pub warnings: Vec<String>,
}

impl RecoveryReport {
    pub fn found(&self) -> usize {
        self.adopted.len() + self.superseded.len()
    }

    /// What recovery did, a line each, in the words both front ends show.
    pub fn messages(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for key in &self.adopted {
            lines.push(format!(
                "recovered: {key} (stored by an interrupted run, now recorded)"
            ));
        }
        for key in &self.superseded {
            lines.push(format!(
                "recovered: {key} (stray archive of an older version, recorded as superseded)"
            ));
        }
        for warning in &self.warnings {
            lines.push(format!("warning: {warning}"));
        }
        for key in &self.deletions_finished {
            lines.push(format!(
                "finished: deletion of {key} (interrupted by an earlier run)"
            ));
        }
        for id in &self.aborted_uploads {
            lines.push(format!("aborted: abandoned upload {id}"));
        }
        for key in &self.unresolved {
            lines.push(format!(
                "unresolved: {key} (interrupted upload; run an inventory to find its archive)"
            ));
        }
        lines
    }
}

struct Stray {
    archive_id: String,
    hash: ContentHash,
    mtime_ns: i64,
    created_at: i64,
    /// Its place, when the archive is a pack.
    pack: Option<PackSlot>,
}

impl Engine {
    /// Resolves every journal entry left by an interrupted run (what
    /// [`Engine::open_to_work`] does first).
    pub(super) async fn recover(&self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        let deletions = self.finish_interrupted_deletions().await?;
        report.deletions_finished = deletions.finished;
        report.warnings.extend(deletions.failed);
        match self
            .store
            .abort_abandoned(&self.state.multipart_tokens()?, &self.owner)
            .await
        {
            Ok(aborted) => report.aborted_uploads = aborted,
            Err(e) => report
                .warnings
                .push(format!("cannot look for abandoned uploads: {e:#}")),
        }
        self.recover_packs(&mut report).await?;
        let journal = self.state.journal()?;
        if journal.is_empty() {
            return Ok(report);
        }
        let mut listing = None;
        for entry in journal {
            let mut strays = Vec::new();
            match (&entry.archive_id, entry.hash) {
                (Some(id), Some(hash)) => {
                    if !self.is_recorded(&entry.key, id).await? {
                        strays.push(Stray {
                            archive_id: id.clone(),
                            hash,
                            mtime_ns: entry.fingerprint.mtime_ns,
                            created_at: entry.started_at,
                            pack: None,
                        });
                    }
                }
                _ if self.state.multipart(&entry.key)?.is_some() => {
                    // A resumable upload: the next backup picks it up where it stopped.
                }
                _ => {
                    // The store may have finished before the crash: look for archives
                    // of this set whose description names this file and that
                    // nothing records (another set sharing the store may hold the
                    // same path: its archives are never taken).
                    if listing.is_none() {
                        listing = Some(self.store.list().await?.map(|archives| {
                            let owners = Owners::of(&archives, &self.owner);
                            (archives, owners)
                        }));
                    }
                    match listing.as_ref().and_then(|l| l.as_ref()) {
                        None => report.unresolved.push(entry.key.clone()),
                        Some((archives, owners)) => {
                            for archive in archives {
                                if owners.whose(archive) != Whose::Mine {
                                    continue;
                                }
                                let Ok(desc) = description::decode(&archive.description) else {
                                    continue;
                                };
                                if desc.key.as_deref() != Some(entry.key.as_str()) {
                                    continue;
                                }
                                let Some(sha1) = desc.sha1 else { continue };
                                if self.is_recorded(&entry.key, &archive.archive_id).await? {
                                    continue;
                                }
                                strays.push(Stray {
                                    archive_id: archive.archive_id.clone(),
                                    hash: ContentHash {
                                        size: archive.size,
                                        sha1,
                                        tree_hash: archive.tree_hash,
                                    },
                                    mtime_ns: desc.mtime_ns,
                                    created_at: archive.created_at,
                                    pack: None,
                                });
                            }
                        }
                    }
                }
            }
            strays.sort_by_key(|s| s.created_at);
            let newest = strays.len().checked_sub(1);
            for (i, stray) in strays.into_iter().enumerate() {
                let adopt = Some(i) == newest && self.still_matches(&entry, &stray).await?;
                self.account_for(&entry, stray, adopt, &mut report).await?;
            }
            self.state.journal_end(&entry.key)?;
        }
        Ok(report)
    }

    /// Resolves the packs an interrupted run journaled: the members of a pack
    /// the store holds are recorded (current where the file is still the one
    /// read, superseded otherwise); a pack the store does not hold is
    /// forgotten, and its files, never recorded, are backed up again.
    async fn recover_packs(&self, report: &mut RecoveryReport) -> Result<()> {
        let intents = self.state.pack_journal()?;
        if intents.is_empty() {
            return Ok(());
        }
        let mut listing: Option<Option<Vec<crate::store::ArchiveListing>>> = None;
        for intent in intents {
            let stored = match (&intent.archive_id, intent.stored_at) {
                (Some(id), Some(at)) => Some((id.clone(), at)),
                _ => {
                    if listing.is_none() {
                        listing = Some(self.store.list().await?);
                    }
                    match listing.as_ref().and_then(|l| l.as_ref()) {
                        None => {
                            // Glacier cannot list: an inventory finds the pack if
                            // the store kept it; its files are backed up again.
                            report
                                .unresolved
                                .extend(intent.members.iter().map(|m| m.key.clone()));
                            None
                        }
                        Some(archives) => archives
                            .iter()
                            .find(|a| {
                                description::named_owner(&a.description).as_deref()
                                    == Some(self.owner.as_str())
                                    && description::decode(&a.description).is_ok_and(|d| {
                                        d.pack.is_some() && d.sha1 == Some(intent.sha1)
                                    })
                            })
                            .map(|a| (a.archive_id.clone(), a.created_at)),
                    }
                }
            };
            if let Some((archive_id, created_at)) = stored {
                for member in &intent.members {
                    if self.is_recorded(&member.key, &archive_id).await? {
                        continue;
                    }
                    let entry = JournalEntry {
                        key: member.key.clone(),
                        raw: member.raw.clone(),
                        fingerprint: member.fingerprint,
                        started_at: intent.started_at,
                        archive_id: Some(archive_id.clone()),
                        hash: Some(member.hash),
                    };
                    let stray = Stray {
                        archive_id: archive_id.clone(),
                        hash: member.hash,
                        mtime_ns: member.fingerprint.mtime_ns,
                        created_at,
                        pack: Some(PackSlot {
                            offset: member.offset,
                            len: member.hash.size,
                        }),
                    };
                    let adopt = self.still_matches(&entry, &stray).await?;
                    self.account_for(&entry, stray, adopt, report).await?;
                }
            }
            self.state.packs_end(&[intent.sha1])?;
        }
        Ok(())
    }

    async fn is_recorded(&self, key: &str, archive_id: &str) -> Result<bool> {
        Ok(self
            .catalog
            .versions(key)
            .await?
            .iter()
            .any(|r| r.archive_id == archive_id))
    }

    /// The file on disk is the one whose upload was interrupted, and its content is
    /// not already the current version in this store.
    async fn still_matches(&self, entry: &JournalEntry, stray: &Stray) -> Result<bool> {
        let path = match &entry.raw {
            Some(raw) => self
                .root
                .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(raw)),
            None => self.root.join(&entry.key),
        };
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return Ok(false);
        };
        let now = Fingerprint::of(&meta);
        if now != entry.fingerprint || stray.hash.size != now.size || stray.mtime_ns != now.mtime_ns
        {
            return Ok(false);
        }
        // The same content current in another store (a migration, a new store)
        // is not here yet: the stray becomes this store's current copy.
        let current = self.catalog.current(&entry.key).await?;
        Ok(current.is_none_or(|c| c.sha1 != stray.hash.sha1 || !self.holds(&c)))
    }

    async fn account_for(
        &self,
        entry: &JournalEntry,
        stray: Stray,
        adopt: bool,
        report: &mut RecoveryReport,
    ) -> Result<()> {
        let record = ArchiveRecord {
            key: entry.key.clone(),
            raw: entry.raw.clone(),
            size: stray.hash.size,
            mtime_ns: stray.mtime_ns,
            sha1: stray.hash.sha1,
            tree_hash: stray.hash.tree_hash as TreeHash,
            archive_id: stray.archive_id,
            target: self.store.target(),
            uploaded_at: stray.created_at,
            state: ArchiveState::Superseded,
            host: self.host.clone(),
            superseded_at: Some(now_secs()),
            pack: stray.pack,
        };
        if !adopt {
            self.catalog.record_superseded(&record).await?;
            report.superseded.push(entry.key.clone());
            return Ok(());
        }
        let previous = self.catalog.current(&entry.key).await?;
        self.catalog
            .record_upload(&record, previous.as_ref().map(|p| p.archive_id.as_str()))
            .await?;
        self.state
            .put_fingerprints(&[(entry.key.clone(), entry.fingerprint, stray.hash)])?;
        report.adopted.push(entry.key.clone());
        if let Some(mut previous) = previous {
            previous.state = ArchiveState::Superseded;
            self.apply_retention_to(&previous, now_secs()).await?;
        }
        Ok(())
    }
}
