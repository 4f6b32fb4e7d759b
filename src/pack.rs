//! Packs: many small files in one archive. In cold storage every archive is
//! billed a request to put and to restore and a minimum size, and on a disk it
//! costs a file, a block and a sync; a file up to `pack_threshold` therefore
//! goes into a pack of about `pack_size` bytes with others, and each keeps its
//! own catalog record (key, raw name, size, mtime, SHA-1, tree hash) plus its
//! place in the pack ([`crate::catalog::PackSlot`]).
//!
//! A pack describes itself, so the catalog can be rebuilt from the store alone
//! (invariant 10). Format, version 1:
//!
//! ```text
//!  member bytes, one after another (no padding, no compression)
//!  index: gzip of JSON {"firn_pack": 1, "set": owner, "host": host,
//!         "members": [{"k": key, "r": raw name bytes base64url (only when they
//!                      differ from the key), "s": size, "m": mtime ns,
//!                      "h": SHA-1 hex, "t": tree hash hex, "o": offset}, …]}
//!  trailer, 24 bytes: index offset (u64 LE), index length (u64 LE), "FIRNPAK1"
//! ```
//!
//! The archive's description is a `firn2` record of its set with no path and
//! `"pk": [members, index offset, index length]` (see
//! [`crate::description::PackFacts`]), so the index can be read as one range
//! without the whole pack, and a listing tells a pack from a file.

use std::io::{Read, Write};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::description::PackFacts;
use crate::model::{Sha1Digest, TreeHash};

/// The pack format this firn writes and reads.
pub const FORMAT: u32 = 1;
/// The last bytes of every pack.
pub const MAGIC: &[u8; 8] = b"FIRNPAK1";
/// Bytes of the trailer: index offset, index length, magic.
pub const TRAILER_LEN: u64 = 24;

/// One file in a pack, as its index records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub key: String,
    pub raw: Option<Vec<u8>>,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha1: Sha1Digest,
    pub tree_hash: TreeHash,
    /// Where its bytes start in the pack.
    pub offset: u64,
}

/// A pack's index: whose it is, and its members in the order of their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub owner: String,
    pub host: String,
    pub members: Vec<Member>,
}

#[derive(Serialize, Deserialize)]
struct IndexJson {
    firn_pack: u32,
    set: String,
    host: String,
    members: Vec<MemberJson>,
}

#[derive(Serialize, Deserialize)]
struct MemberJson {
    k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    s: u64,
    m: i64,
    h: String,
    t: String,
    o: u64,
}

/// A pack being filled: its bytes so far and its members.
#[derive(Debug, Default)]
pub struct Builder {
    bytes: Vec<u8>,
    members: Vec<Member>,
}

/// A sealed pack: its whole bytes and where its index is.
#[derive(Debug)]
pub struct Sealed {
    pub bytes: Vec<u8>,
    pub members: Vec<Member>,
    pub facts: PackFacts,
}

impl Builder {
    pub fn new(capacity: usize) -> Builder {
        Builder {
            bytes: Vec::with_capacity(capacity),
            members: Vec::new(),
        }
    }

    /// Bytes of the members so far.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// Appends one file; `member.offset` is set to where its bytes go.
    pub fn push(&mut self, mut member: Member, data: &[u8]) {
        member.offset = self.bytes.len() as u64;
        self.bytes.extend_from_slice(data);
        self.members.push(member);
    }

    /// The pack's bytes: the members', the index, the trailer.
    pub fn seal(self, owner: &str, host: &str) -> Result<Sealed> {
        let Builder { mut bytes, members } = self;
        let index_offset = bytes.len() as u64;
        let json = IndexJson {
            firn_pack: FORMAT,
            set: owner.to_owned(),
            host: host.to_owned(),
            members: members
                .iter()
                .map(|m| MemberJson {
                    k: m.key.clone(),
                    r: m.raw.as_ref().map(|r| URL_SAFE_NO_PAD.encode(r)),
                    s: m.size,
                    m: m.mtime_ns,
                    h: hex_lower(&m.sha1),
                    t: hex_lower(&m.tree_hash),
                    o: m.offset,
                })
                .collect(),
        };
        {
            // The JSON whole, then compressed in one write: serde_json writes a
            // few bytes at a time, and each write to the encoder clears its
            // 32 KiB output buffer (a fifth of a small-file backup's time).
            let text = serde_json::to_vec(&json).context("cannot write a pack's index")?;
            let mut gz = flate2::write::GzEncoder::new(&mut bytes, flate2::Compression::fast());
            gz.write_all(&text)
                .and_then(|_| gz.finish().map(|_| ()))
                .context("cannot write a pack's index")?;
        }
        let index_len = bytes.len() as u64 - index_offset;
        bytes.write_all(&index_offset.to_le_bytes())?;
        bytes.write_all(&index_len.to_le_bytes())?;
        bytes.write_all(MAGIC)?;
        Ok(Sealed {
            facts: PackFacts {
                members: members.len() as u64,
                index_offset,
                index_len,
            },
            bytes,
            members,
        })
    }
}

/// Lowercase hex, as `hex::encode` writes it, a byte pair at a time (that one
/// collects a char at a time: two digests per member were 3% of a small-file
/// backup's CPU).
fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Where the index is, from a pack's last [`TRAILER_LEN`] bytes.
pub fn read_trailer(trailer: &[u8]) -> Result<(u64, u64)> {
    if trailer.len() as u64 != TRAILER_LEN || &trailer[16..] != MAGIC {
        bail!("not a firn pack (no FIRNPAK1 trailer at its end)");
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&trailer[at..at + 8]);
        u64::from_le_bytes(b)
    };
    Ok((word(0), word(8)))
}

/// Reads an index (its bytes alone, as [`PackFacts`] or the trailer locate
/// them).
pub fn decode_index(bytes: &[u8]) -> Result<Index> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut json)
        .context("a pack's index is corrupt (not gzip)")?;
    let index: IndexJson =
        serde_json::from_slice(&json).context("a pack's index is corrupt (not its JSON)")?;
    if index.firn_pack > FORMAT || index.firn_pack == 0 {
        bail!(
            "pack format {} is newer than this firn reads; update firn",
            index.firn_pack
        );
    }
    let digest = |text: &str, what: &str| -> Result<Vec<u8>> {
        hex::decode(text).with_context(|| format!("corrupt {what} in a pack's index"))
    };
    let members = index
        .members
        .into_iter()
        .map(|m| {
            Ok(Member {
                raw: match &m.r {
                    Some(raw) => Some(
                        URL_SAFE_NO_PAD
                            .decode(raw)
                            .context("corrupt raw name in a pack's index")?,
                    ),
                    None => None,
                },
                sha1: digest(&m.h, "SHA-1")?
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("corrupt SHA-1 in a pack's index"))?,
                tree_hash: digest(&m.t, "tree hash")?
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("corrupt tree hash in a pack's index"))?,
                key: m.k,
                size: m.s,
                mtime_ns: m.m,
                offset: m.o,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Index {
        owner: index.set,
        host: index.host,
        members,
    })
}

/// The index of a whole pack held in memory (the embedded store reads one so).
pub fn index_of(pack: &[u8]) -> Result<Index> {
    let len = pack.len() as u64;
    if len < TRAILER_LEN {
        bail!("not a firn pack (shorter than its trailer)");
    }
    let (offset, index_len) = read_trailer(&pack[(len - TRAILER_LEN) as usize..])?;
    let end = offset
        .checked_add(index_len)
        .filter(|end| *end <= len - TRAILER_LEN)
        .context("a pack's trailer points outside it")?;
    decode_index(&pack[offset as usize..end as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(key: &str, size: u64) -> Member {
        Member {
            key: key.into(),
            raw: (key == "b").then(|| vec![0xff, b'b']),
            size,
            mtime_ns: 1_700_000_000_123_456_789,
            sha1: [1; 20],
            tree_hash: [2; 32],
            offset: 0,
        }
    }

    #[test]
    fn a_sealed_pack_reads_back_its_index() {
        let mut builder = Builder::new(64);
        builder.push(member("a", 3), b"abc");
        builder.push(member("b", 0), b"");
        builder.push(member("c/d", 2), b"de");
        let sealed = builder.seal("0123456789abcdef", "host").unwrap();
        assert_eq!(&sealed.bytes[..5], b"abcde");
        assert_eq!(sealed.facts.members, 3);
        assert_eq!(sealed.facts.index_offset, 5);
        let index = index_of(&sealed.bytes).unwrap();
        assert_eq!(index.owner, "0123456789abcdef");
        assert_eq!(index.members, sealed.members);
        assert_eq!(index.members[2].offset, 3);
        assert_eq!(index.members[1].raw.as_deref(), Some(&[0xff, b'b'][..]));
        let at = sealed.facts.index_offset as usize;
        let end = at + sealed.facts.index_len as usize;
        assert_eq!(decode_index(&sealed.bytes[at..end]).unwrap(), index);
    }

    #[test]
    fn digests_are_written_in_hex_as_hex_encode_writes_them() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_lower(&bytes), hex::encode(&bytes));
        assert_eq!(hex_lower(&[]), "");
    }

    #[test]
    fn what_is_not_a_pack_is_refused_in_words() {
        let e = index_of(b"not a pack at all, twenty-four bytes or more").unwrap_err();
        assert!(format!("{e:#}").contains("not a firn pack"), "{e:#}");
    }
}
