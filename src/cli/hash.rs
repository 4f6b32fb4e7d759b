//! `firn hash FILE...`: the SHA-1 and the Glacier tree hash of files, one read each.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::hash::{HashError, hash_file};
use crate::model::Fingerprint;

/// Print the SHA-1 and the Glacier SHA-256 tree hash of files (one read each).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let files = &args.files;
    let mut failed = false;
    for path in files {
        let outcome = std::fs::metadata(path)
            .map_err(HashError::Io)
            .and_then(|meta| hash_file(path, &Fingerprint::of(&meta), &mut |_| {}));
        match outcome {
            Ok(hash) => outln!(
                "{}  {}  {}",
                hex::encode(hash.sha1),
                hex::encode(hash.tree_hash),
                path.display()
            ),
            Err(e) => {
                failed = true;
                eprintln!("firn: {}: {e}", path.display());
            }
        }
    }
    Ok(super::exit_code(failed))
}
