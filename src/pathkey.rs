//! Catalog keys: the path of a file relative to the backup root, '/'-separated,
//! each name NFC-normalized (macOS delivers NFD).
//!
//! When the bytes on disk differ from the key (an NFD name, or a name that is not
//! UTF-8) the original bytes of the whole relative path are kept beside the key so a
//! restore recreates the name exactly.
//!
//! Encoding of names that are not UTF-8 (documented in README): every byte that is
//! not part of a valid UTF-8 sequence is written into the key as `\xHH` (two
//! upper-case hex digits). The key stays printable and unique per directory; the
//! raw bytes are authoritative for restore. A valid name that literally contains
//! such an escape and collides with an encoded one is reported as a name collision.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Converts one file name to its key form. Returns the key and whether it differs
/// from the name's bytes.
pub fn name_key(name: &OsStr) -> (String, bool) {
    let bytes = name.as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            if text.is_ascii() || is_nfc_quick(text.chars()) == IsNormalized::Yes {
                (text.to_owned(), false)
            } else {
                let normalized: String = text.nfc().collect();
                let differs = normalized != text;
                (normalized, differs)
            }
        }
        Err(_) => (escape_invalid_utf8(bytes), true),
    }
}

fn escape_invalid_utf8(bytes: &[u8]) -> String {
    let mut key = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        key.extend(chunk.valid().nfc());
        for byte in chunk.invalid() {
            key.push_str(&format!("\\x{byte:02X}"));
        }
    }
    key
}

/// Joins a parent key and a child name key.
pub fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        let mut key = String::with_capacity(parent.len() + 1 + name.len());
        key.push_str(parent);
        key.push('/');
        key.push_str(name);
        key
    }
}

/// Builds the key of a path relative to the root, and the raw bytes of that relative
/// path when they differ from the key.
pub fn relative_key(relative: &Path) -> (String, Option<Vec<u8>>) {
    let mut key = String::new();
    let mut differs = false;
    for component in relative.iter() {
        let (name, name_differs) = name_key(component);
        differs |= name_differs;
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str(&name);
    }
    let raw = differs.then(|| relative.as_os_str().as_bytes().to_vec());
    (key, raw)
}

/// Why a stored path cannot be turned back into a place under a destination.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnsafePath {
    #[error("path is empty")]
    Empty,
    #[error("path is absolute")]
    Absolute,
    #[error("path contains an empty, '.' or '..' component")]
    BadComponent,
    #[error("path contains a NUL byte")]
    Nul,
    #[error("its raw bytes name another path than its key")]
    RawDiffers,
}

/// Turns a stored path (raw bytes when kept, else the key) into a relative path,
/// refusing anything that could name a place outside the destination.
pub fn safe_relative_path(key: &str, raw: Option<&[u8]>) -> Result<PathBuf, UnsafePath> {
    let bytes = raw.unwrap_or(key.as_bytes());
    if bytes.is_empty() {
        return Err(UnsafePath::Empty);
    }
    if bytes[0] == b'/' {
        return Err(UnsafePath::Absolute);
    }
    if bytes.contains(&0) {
        return Err(UnsafePath::Nul);
    }
    let mut path = PathBuf::new();
    for component in bytes.split(|&b| b == b'/') {
        if component.is_empty() || component == b"." || component == b".." {
            return Err(UnsafePath::BadComponent);
        }
        path.push(OsString::from_vec(component.to_vec()));
    }
    Ok(path)
}

/// Checks a key (and its raw bytes, when kept) that firn did not write itself, such
/// as one read from an archive description: the key and the raw bytes must both be
/// safe relative paths, and the raw bytes must be a spelling of the key (so what
/// status compares and what restore writes are the same file).
pub fn safe_key(key: &str, raw: Option<&[u8]>) -> Result<PathBuf, UnsafePath> {
    let from_key = safe_relative_path(key, None)?;
    match raw {
        None => Ok(from_key),
        Some(raw) => {
            let path = safe_relative_path(key, Some(raw))?;
            if relative_key(&path).0 != key {
                return Err(UnsafePath::RawDiffers);
            }
            Ok(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfd_name_becomes_nfc_and_keeps_raw_bytes() {
        let nfd = "Cafe\u{301}.txt";
        let (key, raw) = relative_key(Path::new(&format!("photos/{nfd}")));
        assert_eq!(key, "photos/Caf\u{e9}.txt");
        assert_eq!(raw.as_deref(), Some(format!("photos/{nfd}").as_bytes()));
    }

    #[test]
    fn ascii_name_is_its_own_key() {
        let (key, raw) = relative_key(Path::new("a/b c/d.txt"));
        assert_eq!(key, "a/b c/d.txt");
        assert_eq!(raw, None);
    }

    #[test]
    fn invalid_utf8_is_escaped_and_kept() {
        let name = OsStr::from_bytes(b"bad\xff\xfename");
        let (key, differs) = name_key(name);
        assert_eq!(key, "bad\\xFF\\xFEname");
        assert!(differs);
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert_eq!(
            safe_relative_path("/etc/passwd", None),
            Err(UnsafePath::Absolute)
        );
        assert_eq!(
            safe_relative_path("a/../../x", None),
            Err(UnsafePath::BadComponent)
        );
        assert_eq!(
            safe_relative_path("ok", Some(b"../x")),
            Err(UnsafePath::BadComponent)
        );
        assert_eq!(safe_relative_path("", None), Err(UnsafePath::Empty));
        assert_eq!(
            safe_relative_path("a//b", None),
            Err(UnsafePath::BadComponent)
        );
        assert_eq!(safe_relative_path("a/b", None), Ok(PathBuf::from("a/b")));
    }

    #[test]
    fn foreign_keys_need_a_safe_key_and_matching_raw_bytes() {
        assert_eq!(safe_key("a/b", None), Ok(PathBuf::from("a/b")));
        assert_eq!(safe_key("../x", Some(b"ok")), Err(UnsafePath::BadComponent));
        assert_eq!(
            safe_key("ok", Some(b"a/../../x")),
            Err(UnsafePath::BadComponent)
        );
        assert_eq!(safe_key("ok", Some(b"/etc/x")), Err(UnsafePath::Absolute));
        assert_eq!(safe_key("a\0b", Some(b"a\0b\0")), Err(UnsafePath::Nul));
        assert_eq!(safe_key("ok", Some(b"other")), Err(UnsafePath::RawDiffers));
        let nfd = "Cafe\u{301}.txt".as_bytes();
        assert!(safe_key("Caf\u{e9}.txt", Some(nfd)).is_ok());
        assert!(safe_key("caf\\xE9.bin", Some(b"caf\xe9.bin")).is_ok());
    }
}
