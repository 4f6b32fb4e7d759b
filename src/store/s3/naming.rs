//! How firn names and describes S3 objects: readable keys within S3's limits,
//! resume tokens, the record in metadata and tags, restore headers, and which
//! pieces of an object S3 keeps checksums for.

use std::collections::HashMap;

use super::settings::{KEY_MAX, METADATA_MAX, METADATA_NAME};
use crate::model::TreeHash;

pub(super) fn token(key: &str, upload_id: &str, part_size: u64) -> String {
    format!("s3:{part_size}:{upload_id}:{key}")
}

/// Part size, upload id and key of a resume token (the key comes last: it may
/// hold colons; upload ids do not).
pub(super) fn parse_token(token: &str) -> Option<(u64, &str, &str)> {
    let rest = token.strip_prefix("s3:")?;
    let (size, rest) = rest.split_once(':')?;
    let (upload_id, key) = rest.split_once(':')?;
    Some((size.parse().ok()?, upload_id, key))
}

/// `<prefix><path>/<version>` within 1,024 bytes of valid UTF-8 (see the module
/// docs): control characters escaped, an overlong path shortened around a `…`
/// keeping its beginning and its file name.
pub fn object_key(prefix: &str, key: &str, version: &str) -> String {
    let mut path = String::with_capacity(key.len());
    for c in key.chars() {
        if c.is_control() {
            for byte in c.to_string().bytes() {
                path.push_str(&format!("\\x{byte:02X}"));
            }
        } else {
            path.push(c);
        }
    }
    let room = KEY_MAX.saturating_sub(prefix.len() + 1 + version.len());
    if path.len() > room {
        let name = path.rsplit('/').next().unwrap_or("").to_string();
        let name = truncate_to(&name, room / 2);
        let head = truncate_to(&path, room.saturating_sub(name.len() + "…/".len()));
        path = format!("{head}…/{name}");
    }
    format!("{prefix}{path}/{version}")
}

/// The key prefix of a set's objects when its settings name none: its name, as
/// readable in the console as the paths under it (`photos/`). A name with
/// anything but ASCII letters, digits, `.`, `_` and `-` (an ad-hoc set's id is
/// its root's path), or one starting with a dot, is cleaned up and followed by a
/// short hash of the set id, so two sets never get one prefix.
pub fn set_prefix(set_id: &str) -> String {
    let clean: String = set_id
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = truncate_to(clean.trim_matches(|c| c == '-' || c == '.'), 100);
    if clean == set_id && !clean.is_empty() {
        format!("{clean}/")
    } else {
        let hash = &crate::description::owner_of(set_id)[..8];
        if clean.is_empty() {
            format!("set-{hash}/")
        } else {
            format!("{clean}-{hash}/")
        }
    }
}

/// The longest prefix of `text` of at most `max` bytes, ending on a character.
pub(super) fn truncate_to(text: &str, max: usize) -> String {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// What a listing needs of an object's record: its metadata, else its tags.
pub(super) fn description_of(metadata: Option<&HashMap<String, String>>) -> String {
    metadata
        .and_then(|m| m.get(METADATA_NAME))
        .cloned()
        .unwrap_or_default()
}

/// `x-amz-restore: ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`.
pub(super) fn parse_restore(header: &str) -> (bool, Option<i64>) {
    let ongoing = header.contains("ongoing-request=\"true\"");
    let expiry = header
        .split("expiry-date=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(parse_http_date);
    (ongoing, expiry)
}

/// `Fri, 21 Dec 2012 00:00:00 GMT` → Unix seconds.
pub(super) fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, ..] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    Some(
        crate::description::days_from_civil(year.parse().ok()?, month, day.parse().ok()?) * 86_400
            + h * 3600
            + mi * 60
            + s,
    )
}

/// How an object was uploaded, which says how to fetch pieces S3 has checksums for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Single {
        size: u64,
    },
    Parts {
        size: u64,
        part_size: u64,
        /// The server answers `GET ?partNumber=N` with the whole object (moto,
        /// several S3-compatible servers): parts are fetched by their byte range.
        by_range: bool,
    },
    Unknown,
}

pub(super) enum Fetch {
    Whole,
    Part(i32),
    /// Part N by its byte range (see [`Shape::Parts`]'s `by_range`).
    PartByRange(i32),
    Range,
}

impl Shape {
    pub(super) fn fetch(self, offset: u64, len: u64) -> Fetch {
        match self {
            Shape::Single { size } if offset == 0 && len == size => Fetch::Whole,
            Shape::Parts {
                size,
                part_size,
                by_range,
            } if offset.is_multiple_of(part_size) && (len == part_size || offset + len == size) => {
                let number = (offset / part_size + 1) as i32;
                if by_range {
                    Fetch::PartByRange(number)
                } else {
                    Fetch::Part(number)
                }
            }
            _ => Fetch::Range,
        }
    }

    /// The same object, its parts fetched by range from now on.
    pub(super) fn parts_by_range(self) -> Shape {
        match self {
            Shape::Parts {
                size, part_size, ..
            } => Shape::Parts {
                size,
                part_size,
                by_range: true,
            },
            other => other,
        }
    }
}

/// The file key a description names (the object key is built from it), or a
/// placeholder when it holds only a hash of a path too long to fit.
pub(super) fn description_key(description: &str) -> String {
    if let Some(snapshot) = crate::description::SnapshotDescription::decode(description) {
        // Catalog snapshots sit apart from the files, one folder per set.
        return format!(".firn-catalog-snapshots/{}", snapshot.set_hash);
    }
    if let Some(claim) = crate::description::ClaimDescription::decode(description) {
        return format!(".firn-claims/{}", claim.owner);
    }
    match crate::description::decode(description) {
        // Packs of small files sit apart from the files, in a folder of their own.
        Ok(d) if d.pack.is_some() => ".firn-packs".into(),
        Ok(d) => d.key.unwrap_or_else(|| "long-path".into()),
        Err(_) => "long-path".into(),
    }
}

/// The short id of the set a description names, if it names one.
pub(super) fn description_owner(description: &str) -> Option<String> {
    use crate::description::{ClaimDescription, SnapshotDescription};
    if let Some(snapshot) = SnapshotDescription::decode(description) {
        return Some(snapshot.owner().to_string());
    }
    if let Some(claim) = ClaimDescription::decode(description) {
        return Some(claim.owner);
    }
    crate::description::decode(description).ok()?.owner
}

/// The version part of an object key (`<UTC time>-<random>[-<owner>]`) for a
/// new object of the set `owner`: a multipart upload in progress, which S3
/// lists without its metadata, still says whose it is.
pub(super) fn version(time: &str, random: &str, owner: Option<&str>) -> String {
    match owner {
        Some(owner) => format!("{time}-{random}-{owner}"),
        None => format!("{time}-{random}"),
    }
}

/// The set an object key's version names (see [`version`]); None for keys
/// written before versions named their set.
pub(super) fn key_owner(key: &str) -> Option<&str> {
    let version = key.rsplit('/').next()?;
    let owner = version.rsplit('-').next()?;
    (version.split('-').count() == 3
        && owner.len() == crate::description::OWNER_LEN
        && owner.bytes().all(|b| b.is_ascii_hexdigit()))
    .then_some(owner)
}

/// A description with the SHA-1 and tree hash found in an object's tags.
pub(super) fn with_hashes(
    description: &str,
    sha1: Option<&str>,
    tree: Option<&TreeHash>,
) -> String {
    let Ok(mut d) = crate::description::decode(description) else {
        return description.to_string();
    };
    if d.key.is_none() && d.pack.is_none() {
        return description.to_string();
    }
    d.sha1 = d.sha1.or_else(|| {
        sha1.and_then(|h| hex::decode(h).ok())
            .and_then(|b| b.try_into().ok())
    });
    d.tree_hash = tree.copied().or(d.tree_hash);
    d.encode(METADATA_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_gets_a_readable_prefix_of_its_own() {
        assert_eq!(set_prefix("photos"), "photos/");
        assert_eq!(set_prefix("alice.docs_2024-x"), "alice.docs_2024-x/");
        let adhoc = set_prefix("/home/me/My Docs");
        assert!(
            adhoc.starts_with("home-me-My-Docs-") && adhoc.ends_with('/'),
            "{adhoc}"
        );
        // Cleaned-up names that meet get apart by their hash.
        assert_ne!(set_prefix("a b"), set_prefix("a/b"));
        assert_ne!(set_prefix("a-b"), set_prefix("a b"));
        assert!(set_prefix(".hidden").starts_with("hidden-"));
        assert!(set_prefix("///").starts_with("set-"));
    }

    #[test]
    fn a_key_names_the_set_that_wrote_it() {
        let owner = "0123456789abcdef";
        let key = object_key(
            "p/",
            "dir/a-b-c.txt",
            &version("20261201T000000Z", "d3fd9c4a", Some(owner)),
        );
        assert_eq!(key_owner(&key), Some(owner));
        let old = object_key(
            "p/",
            "dir/a-b-c.txt",
            &version("20261201T000000Z", "d3fd9c4a", None),
        );
        assert_eq!(key_owner(&old), None);
        assert_eq!(key_owner("x/y-z-0123456789abcdeg"), None, "not hex");
    }
}
