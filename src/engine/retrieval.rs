//! The retrieval machine every job that reads archives back shares — restore,
//! migrate, and a rebuild's catalog snapshot (through restore):
//!
//! 1. one job per archive, requested once and persisted in the set's local
//!    state before anything else happens (a kill never pays for it twice);
//! 2. reused while the store keeps its output ([`job_usable`]: 24 hours after it
//!    was requested, or after it was seen ready); requested again only when the
//!    store no longer knows it;
//! 3. asked about with backoff ([`Poll`]): 0.2 s doubling up to a tenth of the
//!    tier's usual wait, at least a minute and at most a quarter of an hour (a
//!    thousand Standard jobs cost a thousand DescribeJob calls per 15 minutes,
//!    not per minute); a cancelled run stops waiting at once;
//! 4. read in verified ranges (`restore::fetch_range`: each range checked
//!    against the checksum the store keeps for it, fetched again when it does
//!    not match), joined into the whole archive's tree hash.
//!
//! What each job does with a ready output (a file renamed into place, a copy
//! in another store) is its own.

use std::time::Duration;

use super::Progress;

/// Glacier keeps job output at least 24 hours: a job younger than that is reused.
pub const JOB_OUTPUT_KEPT_SECS: i64 = 24 * 3600;

/// The bounds of the backoff's cap, seconds (see the module docs).
const MIN_POLL_CAP: u64 = 60;
const MAX_POLL_CAP: u64 = 15 * 60;

/// Whether a persisted job can still deliver its output at `now`: it was
/// requested (or last seen ready) less than [`JOB_OUTPUT_KEPT_SECS`] ago.
pub fn job_usable(requested_at: i64, ready_at: Option<i64>, now: i64) -> bool {
    now - ready_at.unwrap_or(requested_at) < JOB_OUTPUT_KEPT_SECS
}

/// The pause between two rounds of asking the store about jobs.
pub struct Poll {
    delay: Duration,
    cap: Duration,
}

impl Poll {
    /// For jobs the store usually finishes `expected_from` seconds after they
    /// were requested at the soonest.
    pub fn for_wait(expected_from: u64) -> Poll {
        Poll::capped(Duration::from_secs(
            (expected_from / 10).clamp(MIN_POLL_CAP, MAX_POLL_CAP),
        ))
    }

    /// Backing off up to `cap`.
    pub fn capped(cap: Duration) -> Poll {
        Poll {
            delay: Duration::from_millis(200),
            cap,
        }
    }

    /// Waits the next pause (shorter when the run is cancelled meanwhile).
    pub async fn pause(&mut self, progress: Option<&Progress>) {
        match progress {
            Some(progress) => {
                tokio::select! {
                    _ = progress.cancelled() => {}
                    _ = tokio::time::sleep(self.delay) => {}
                }
            }
            None => tokio::time::sleep(self.delay).await,
        }
        self.delay = (self.delay * 2).min(self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_usable_for_a_day_after_it_was_requested_or_seen_ready() {
        let day = JOB_OUTPUT_KEPT_SECS;
        assert!(job_usable(1_000, None, 1_000 + day - 1));
        assert!(!job_usable(1_000, None, 1_000 + day));
        assert!(job_usable(1_000, Some(5_000), 5_000 + day - 1));
        assert!(!job_usable(1_000, Some(5_000), 5_000 + day));
    }

    #[test]
    fn polls_back_off_to_a_tenth_of_the_wait_within_their_bounds() {
        assert_eq!(Poll::for_wait(60).cap, Duration::from_secs(60));
        assert_eq!(Poll::for_wait(5 * 3600).cap, Duration::from_secs(15 * 60));
        assert_eq!(
            Poll::for_wait(3 * 3600).cap,
            Duration::from_secs(1080).min(Duration::from_secs(900))
        );
        assert_eq!(Poll::for_wait(0).delay, Duration::from_millis(200));
    }
}
