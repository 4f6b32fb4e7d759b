//! Whose is each archive a store lists (invariant 12 in the crate docs: a store
//! may be shared by several sets, and nothing one set does reads another set's
//! archive as its own).
//!
//! An archive says whose it is by its description: a file's `firn2` record
//! names its set's short id, a catalog snapshot names its set, a claim names the
//! set that made it. A `firn1` or `mt2` record names no set; it is a set's own
//! when that set's claim lists it (see `claim.rs`), another set's when only that
//! set's claims list it, and of unknown owner otherwise (also when several sets
//! claim it).
//!
//! A store is *shared* when its listing shows any archive of another set. There,
//! an archive of unknown owner is never taken for an orphan of this set: it is
//! neither adopted nor deleted unless a person names it.

use std::collections::{BTreeMap, HashMap};

use crate::description::{self, ClaimDescription, ClaimedId, SnapshotDescription, claimed_id};
use crate::store::ArchiveListing;

/// Whose an archive is, from where one set stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whose {
    Mine,
    /// Another set's, by its short id.
    Other(String),
    /// Written before archives named their set, and claimed by no set (or by
    /// several), or not firn's at all.
    Unknown,
}

/// What kind of archive a listing line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A file version (or something firn cannot read).
    File,
    /// A catalog snapshot.
    Snapshot,
    /// An ownership claim.
    Claim,
}

/// The owners a store's listing shows, as one set reads them.
pub struct Owners {
    mine: String,
    /// Each claimed archive (by its short id) and the sets claiming it.
    claims: HashMap<ClaimedId, Vec<String>>,
    /// Sets other than this one the listing shows archives of, with the set's
    /// name when one of its snapshots gives it.
    others: BTreeMap<String, Option<String>>,
}

impl Owners {
    /// Reads the owners of a listing for the set whose short id is `mine`.
    pub fn of(listing: &[ArchiveListing], mine: &str) -> Owners {
        let mut owners = Owners {
            mine: mine.to_string(),
            claims: HashMap::new(),
            others: BTreeMap::new(),
        };
        for archive in listing {
            if let Some(claim) = ClaimDescription::decode(&archive.description) {
                for id in &claim.archives {
                    let claimants = owners.claims.entry(*id).or_default();
                    if !claimants.contains(&claim.owner) {
                        claimants.push(claim.owner.clone());
                    }
                }
                owners.saw(&claim.owner, None);
            } else if let Some(snapshot) = SnapshotDescription::decode(&archive.description) {
                owners.saw(snapshot.owner(), snapshot.set.as_deref());
            } else if let Some(owner) = description::named_owner(&archive.description) {
                owners.saw(&owner, None);
            }
        }
        owners
    }

    fn saw(&mut self, owner: &str, name: Option<&str>) {
        if owner == self.mine {
            return;
        }
        let known = self.others.entry(owner.to_string()).or_default();
        if known.is_none() {
            *known = name.map(str::to_owned);
        }
    }

    /// Whose `archive` is.
    pub fn whose(&self, archive: &ArchiveListing) -> Whose {
        let owner = description::named_owner(&archive.description).or_else(|| {
            if self.claims.is_empty() {
                return None;
            }
            match self.claims.get(&claimed_id(&archive.archive_id)) {
                Some(claimants) if claimants.len() == 1 => claimants.first().cloned(),
                _ => None,
            }
        });
        match owner {
            Some(owner) if owner == self.mine => Whose::Mine,
            Some(owner) => Whose::Other(owner),
            None => Whose::Unknown,
        }
    }

    /// Whether the listing shows archives of a set other than this one.
    pub fn shared(&self) -> bool {
        !self.others.is_empty()
    }

    /// The name of another set, when one of its snapshots in the listing gives it.
    pub fn name_of(&self, owner: &str) -> Option<&str> {
        self.others.get(owner).and_then(|n| n.as_deref())
    }

    /// The sets other than this one whose claims list `archive_id`.
    pub fn claimed_by_others(&self, archive_id: &str) -> Vec<&str> {
        if self.claims.is_empty() {
            return Vec::new();
        }
        self.claims
            .get(&claimed_id(archive_id))
            .map(|c| {
                c.iter()
                    .filter(|o| **o != self.mine)
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What kind of archive `archive` is, by its description.
pub fn kind_of(archive: &ArchiveListing) -> Kind {
    if SnapshotDescription::decode(&archive.description).is_some() {
        Kind::Snapshot
    } else if ClaimDescription::decode(&archive.description).is_some() {
        Kind::Claim
    } else {
        Kind::File
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::description::{Description, MAX_LEN, owner_of};

    fn listing(id: &str, description: String) -> ArchiveListing {
        ArchiveListing {
            archive_id: id.into(),
            size: 1,
            tree_hash: [0; 32],
            description,
            created_at: 1,
        }
    }

    fn file(id: &str, owner: Option<&str>) -> ArchiveListing {
        let mut d = Description::of_file(id, None, 1, 1, None, owner.unwrap_or(""));
        d.owner = owner.map(str::to_owned);
        listing(id, d.encode(MAX_LEN))
    }

    fn claim(owner: &str, ids: &[&str]) -> ArchiveListing {
        let text = ClaimDescription {
            owner: owner.into(),
            archives: ids.iter().map(|id| claimed_id(id)).collect(),
        }
        .encode();
        listing(&format!("claim-{owner}"), text)
    }

    #[test]
    fn descriptions_and_claims_say_whose_an_archive_is() {
        let (a, b, c) = (owner_of("a"), owner_of("b"), owner_of("c"));
        let snapshot_b = SnapshotDescription::new("b", 1, 1, [0; 20]).encode();
        let all = vec![
            file("a1", Some(&a)),
            file("b1", Some(&b)),
            file("old-a", None),
            file("old-b", None),
            file("old-both", None),
            file("old-none", None),
            claim(&a, &["old-a", "old-both"]),
            claim(&c, &["old-b", "old-both"]),
            listing("snap-b", snapshot_b),
        ];
        let owners = Owners::of(&all, &a);
        let whose = |id: &str| owners.whose(all.iter().find(|l| l.archive_id == id).unwrap());
        assert_eq!(whose("a1"), Whose::Mine);
        assert_eq!(whose("b1"), Whose::Other(b.clone()));
        assert_eq!(whose("old-a"), Whose::Mine);
        assert_eq!(whose("old-b"), Whose::Other(c.clone()));
        assert_eq!(whose("old-both"), Whose::Unknown, "claimed by two sets");
        assert_eq!(whose("old-none"), Whose::Unknown);
        assert_eq!(whose("snap-b"), Whose::Other(b.clone()));
        assert_eq!(whose(&format!("claim-{a}")), Whose::Mine);
        assert!(owners.shared());
        assert_eq!(owners.name_of(&b), Some("b"));
        assert_eq!(owners.claimed_by_others("old-both"), vec![c.as_str()]);

        let alone = Owners::of(&all[..1], &a);
        assert!(!alone.shared());
        assert_eq!(kind_of(&all[6]), Kind::Claim);
        assert_eq!(kind_of(&all[8]), Kind::Snapshot);
        assert_eq!(kind_of(&all[0]), Kind::File);
    }
}
