//! Which archives a command means: paths as a person types them (relative to
//! where they stand, or absolute) turned into catalog keys, and the records under
//! them. Both front ends select through here.

use std::path::{Component, Path, PathBuf};

use anyhow::Result;

use super::{Engine, RecordLookup};
use crate::catalog::Catalog as _;
use crate::catalog::{ArchiveRecord, ArchiveState};
use crate::model::usage;

/// What `firn restore` or `firn delete` was asked for.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Key prefixes (see [`Engine::key_prefix`]); empty with no archives: everything.
    pub prefixes: Vec<String>,
    /// Archive ids, any version.
    pub archives: Vec<String>,
    /// Superseded versions under the prefixes too (deletion only).
    pub all_versions: bool,
}

/// Whether `key` is `prefix` itself or below it (the empty prefix is everything).
pub fn is_under(key: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || key == prefix
        || (key.starts_with(prefix) && key.as_bytes().get(prefix.len()) == Some(&b'/'))
}

impl Engine {
    /// The catalog key prefix a path argument names, `/`-separated and NFC like
    /// keys (`""` is the whole set). An absolute path must lie under the root. A
    /// relative path is taken from `cwd` when `cwd` is inside the root (as git
    /// does), else from the root itself.
    pub fn key_prefix(&self, argument: &Path, cwd: &Path) -> Result<String> {
        let absolute = if argument.is_absolute() {
            argument.to_path_buf()
        } else if let Some(inside) = self.relative_to_root(cwd) {
            self.root.join(inside).join(argument)
        } else {
            self.root.join(argument)
        };
        let relative = self.relative_to_root(&absolute).ok_or_else(|| {
            usage(format!(
                "{} is not inside the root {} of set {}",
                argument.display(),
                self.root.display(),
                self.set_id
            ))
        })?;
        // `relative` is lexically normal: no `..` is left in it.
        let parts: Vec<String> = relative
            .components()
            .filter_map(|component| match component {
                Component::Normal(name) => Some(crate::pathkey::name_key(name).0),
                _ => None,
            })
            .collect();
        Ok(parts.join("/"))
    }

    /// [`Engine::key_prefix`] of each path argument.
    pub fn key_prefixes(&self, arguments: &[PathBuf], cwd: &Path) -> Result<Vec<String>> {
        arguments
            .iter()
            .map(|argument| self.key_prefix(argument, cwd))
            .collect()
    }

    /// `path` relative to the root (lexically, then through symlinks, since the
    /// root is canonical and the path may not be), or None when outside it.
    fn relative_to_root(&self, path: &Path) -> Option<PathBuf> {
        let lexical = lexically_normal(path);
        if let Ok(rest) = lexical.strip_prefix(&self.root) {
            return Some(rest.to_path_buf());
        }
        let canonical = std::fs::canonicalize(path).ok()?;
        canonical
            .strip_prefix(&self.root)
            .ok()
            .map(Path::to_path_buf)
    }

    /// Every record of the set (`all`), or the current versions only.
    pub async fn records(&self, all: bool) -> Result<Vec<ArchiveRecord>> {
        let mut records = self.catalog.records().await?;
        records.retain(|r| all || r.state == ArchiveState::Current);
        Ok(records)
    }

    /// The records a restore means: the archives named by id (any version), else
    /// the current versions under the prefixes. Nothing matching is a usage error.
    pub async fn select_for_restore(&self, selection: &Selection) -> Result<Vec<ArchiveRecord>> {
        if !selection.archives.is_empty() {
            if !selection.prefixes.is_empty() {
                return Err(usage("give either paths or --archive IDs, not both"));
            }
            return self.archives_by_id(&selection.archives).await;
        }
        let wanted = |key: &str| {
            selection.prefixes.is_empty() || selection.prefixes.iter().any(|p| is_under(key, p))
        };
        let records: Vec<_> = self
            .catalog
            .records()
            .await?
            .into_iter()
            .filter(|r| r.state == ArchiveState::Current && wanted(&r.key))
            .collect();
        if records.is_empty() {
            return Err(usage(format!(
                "nothing archived matches {}; see `firn ls`",
                if selection.prefixes.is_empty() {
                    "this set".to_string()
                } else {
                    selection.prefixes.join(", ")
                }
            )));
        }
        Ok(records)
    }

    async fn archives_by_id(&self, ids: &[String]) -> Result<Vec<ArchiveRecord>> {
        let lookups: Vec<RecordLookup> = ids
            .iter()
            .map(|id| RecordLookup {
                key: None,
                archive_id: Some(id.clone()),
            })
            .collect();
        let mut records = Vec::new();
        let mut packed: Option<Vec<ArchiveRecord>> = None;
        for (id, found) in ids.iter().zip(self.look_up(&lookups).await?) {
            match found {
                // A pack's id means every version it holds.
                Some(record) if record.is_packed() => {
                    if packed.is_none() {
                        packed = Some(self.catalog.records().await?);
                    }
                    records.extend(
                        packed
                            .iter()
                            .flatten()
                            .filter(|r| &r.archive_id == id)
                            .cloned(),
                    );
                }
                Some(record) => records.push(record),
                None => {
                    return Err(usage(format!(
                        "the catalog has no archive {id}; see `firn ls --all`"
                    )));
                }
            }
        }
        Ok(records)
    }

    /// The records a deletion means: the current version under each prefix (and
    /// the superseded ones with `all_versions`), plus the archives named by id.
    /// Anything that matches nothing is a usage error naming it; nothing is
    /// deleted then.
    pub async fn select_for_deletion(
        &self,
        selection: &Selection,
        paths_as_typed: &[String],
    ) -> Result<Vec<ArchiveRecord>> {
        let records = self.catalog.records().await?;
        let mut chosen = Vec::new();
        let mut problems = Vec::new();
        for (n, prefix) in selection.prefixes.iter().enumerate() {
            let typed = paths_as_typed.get(n).unwrap_or(prefix);
            let matching: Vec<_> = records
                .iter()
                .filter(|r| is_under(&r.key, prefix))
                .collect();
            let wanted: Vec<_> = matching
                .iter()
                .filter(|r| selection.all_versions || r.state == ArchiveState::Current)
                .collect();
            if wanted.is_empty() {
                problems.push(if matching.is_empty() {
                    format!("nothing archived matches {typed:?}")
                } else {
                    format!(
                        "{typed:?} has only superseded versions (add --all-versions to delete them)"
                    )
                });
            }
            chosen.extend(wanted.into_iter().map(|r| (*r).clone()));
        }
        for id in &selection.archives {
            // A pack's id means the pack: every version it holds (the plan
            // lists each, and the pack goes with them).
            let held: Vec<&ArchiveRecord> =
                records.iter().filter(|r| &r.archive_id == id).collect();
            if held.is_empty() {
                problems.push(format!(
                    "archive {id} is not in the catalog of set {}",
                    self.set_id
                ));
            }
            chosen.extend(held.into_iter().cloned());
        }
        if !problems.is_empty() {
            return Err(usage(format!(
                "{}; nothing deleted (see `firn ls --all`)",
                problems.join("; ")
            )));
        }
        Ok(chosen)
    }
}

impl Engine {
    /// What a migration left in this store: every version held here that is
    /// not current (a copy is current elsewhere, or it was superseded), and how
    /// many files still have their current version only here (kept).
    pub async fn left_behind(&self) -> Result<(Vec<ArchiveRecord>, u64)> {
        let mut left = Vec::new();
        let mut current_here = 0;
        for record in self.catalog.records().await? {
            if !self.holds(&record) {
                continue;
            }
            if record.state == ArchiveState::Current {
                current_here += 1;
            } else {
                left.push(record);
            }
        }
        Ok((left, current_here))
    }
}

/// `.` and `..` resolved without touching the filesystem.
fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_a_prefix() {
        assert!(is_under("a/b", "a"));
        assert!(is_under("a", "a"));
        assert!(!is_under("ab", "a"));
        assert!(is_under("anything", ""));
    }

    #[test]
    fn lexical_normalisation() {
        assert_eq!(
            lexically_normal(Path::new("/a/./b/../c")),
            PathBuf::from("/a/c")
        );
    }
}
