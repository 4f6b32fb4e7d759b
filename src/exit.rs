//! The exit codes, one per kind of outcome, and the rule that gives a failed
//! run its code: one place, so the CLI's exit status, the terminal UI's record
//! of a job and a run's history all say the same (README's table says it too).

use serde::{Deserialize, Serialize};

use crate::aws::AwsError;
use crate::lock::Busy;
use crate::model::UsageError;

/// Everything asked for is done.
pub const OK: u8 = 0;
/// The run finished, but something needs a look: files that failed, an
/// inventory's problems, archives a rebuild could not place.
pub const PROBLEMS: u8 = 1;
/// What was asked cannot be done as asked (a flag, the config, a missing
/// vault, bucket or table, credentials refused): nothing was done.
pub const USAGE: u8 = 2;
/// Another firn process works on the set.
pub const BUSY: u8 = 3;
/// The store, the catalog or the network failed (unreachable, timed out,
/// kept failing): run again later.
pub const FAILED: u8 = 4;
/// A spending limit held the run back: a backup left out the files that
/// would raise the set's estimated monthly storage charge above its
/// `budget` (and uploaded the rest), or a charge above `confirm_above` was
/// not confirmed and `--max-cost` did not allow it (nothing of it done).
/// Files that also failed make it 1.
pub const BUDGET: u8 = 5;

/// The code of a run that ended in `e`, by what kind of failure it is.
pub fn code_of(e: &anyhow::Error) -> u8 {
    if e.chain().any(|cause| cause.is::<Busy>()) {
        return BUSY;
    }
    if e.chain().any(|cause| cause.is::<UsageError>()) {
        return USAGE;
    }
    if e.chain()
        .any(|cause| cause.is::<crate::budget::OverLimit>())
    {
        return BUDGET;
    }
    match e.chain().find_map(|cause| cause.downcast_ref::<AwsError>()) {
        // AWS answered with a definite refusal: what was asked needs changing.
        Some(aws) if !aws.is_transient() => USAGE,
        _ => FAILED,
    }
}

/// The code of a run that finished: 1 when something needs a look, else 0.
pub fn code_of_finished(problems: bool) -> u8 {
    if problems { PROBLEMS } else { OK }
}

/// A run's outcome in a word, one per exit code (`firn log`, the hooks'
/// `FIRN_OUTCOME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Problems,
    Usage,
    Busy,
    Failed,
    /// Held back by a spending limit (exit 5).
    Budget,
}

impl Outcome {
    /// The outcome an exit code stands for (a code firn does not use is a failure).
    pub fn of_code(code: u8) -> Outcome {
        match code {
            OK => Outcome::Ok,
            PROBLEMS => Outcome::Problems,
            USAGE => Outcome::Usage,
            BUSY => Outcome::Busy,
            BUDGET => Outcome::Budget,
            _ => Outcome::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Problems => "problems",
            Outcome::Usage => "usage",
            Outcome::Busy => "busy",
            Outcome::Failed => "failed",
            Outcome::Budget => "budget",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_code_and_each_code_its_outcome() {
        let busy: anyhow::Error = Busy {
            set: "s".into(),
            holder: "firn backup".into(),
        }
        .into();
        assert_eq!(code_of(&busy.context("cannot open")), BUSY);
        assert_eq!(code_of(&crate::model::usage("bad flag")), USAGE);
        assert_eq!(code_of(&anyhow::anyhow!("disk on fire")), FAILED);
        for (code, word) in [
            (OK, "ok"),
            (PROBLEMS, "problems"),
            (USAGE, "usage"),
            (BUSY, "busy"),
            (FAILED, "failed"),
            (101, "failed"),
        ] {
            assert_eq!(Outcome::of_code(code).as_str(), word);
        }
        assert_eq!((code_of_finished(true), code_of_finished(false)), (1, 0));
    }
}
