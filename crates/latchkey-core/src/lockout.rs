//! Login back-off: failed attempts, never successful ones, earn a growing wait.
//!
//! Failures are counted per key (the service uses one key per account and client
//! network, and one per account over all networks with a much higher allowance). The
//! first `free_failures` cost nothing; each one after doubles the wait from `base` up to
//! `cap`. A success resets its key; a key with no failure for `forget_after` is forgotten.
//! An attacker elsewhere therefore cannot lock the owner out, and guessing slows to a
//! crawl.

use std::time::Duration;

use crate::time::Timestamp;

/// How failures turn into waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Failures allowed before any wait.
    pub free_failures: u32,
    /// The first wait.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// A key with no failure for this long starts from zero again.
    pub forget_after: Duration,
}

/// The failures counted under one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRecord {
    /// Failures since the key was last reset or forgotten.
    pub failures: u32,
    /// When the last one happened.
    pub last_failure_at: Timestamp,
}

impl BackoffPolicy {
    /// The wait that `failures` failures earn (zero while they are free).
    pub fn delay_after(&self, failures: u32) -> Duration {
        if failures < self.free_failures {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free_failures).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// How long a new attempt must still wait at `now`; `None` if it may go ahead.
    pub fn wait(&self, record: Option<&FailureRecord>, now: Timestamp) -> Option<Duration> {
        let record = record?;
        if record.last_failure_at.plus(self.forget_after) <= now {
            return None;
        }
        let until = record
            .last_failure_at
            .plus(self.delay_after(record.failures));
        (now < until).then(|| until.duration_since(now))
    }

    /// The record after one more failure at `now`.
    pub fn after_failure(&self, record: Option<&FailureRecord>, now: Timestamp) -> FailureRecord {
        let failures = match record {
            Some(r) if r.last_failure_at.plus(self.forget_after) > now => {
                r.failures.saturating_add(1)
            }
            _ => 1,
        };
        FailureRecord {
            failures,
            last_failure_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BackoffPolicy = BackoffPolicy {
        free_failures: 5,
        base: Duration::from_secs(1),
        cap: Duration::from_secs(900),
        forget_after: Duration::from_secs(86_400),
    };

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    #[test]
    fn five_free_failures_then_doubling_waits_up_to_the_cap() {
        let delays: Vec<u64> = (0..16).map(|n| POLICY.delay_after(n).as_secs()).collect();
        assert_eq!(
            delays,
            [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]
        );
        assert_eq!(POLICY.delay_after(u32::MAX), Duration::from_secs(900));
    }

    #[test]
    fn the_wait_counts_from_the_last_failure() {
        let mut record = None;
        for _ in 0..6 {
            record = Some(POLICY.after_failure(record.as_ref(), at(100)));
        }
        let record = record.unwrap();
        assert_eq!(record.failures, 6);
        assert_eq!(
            POLICY.wait(Some(&record), at(100)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            POLICY.wait(Some(&record), at(101)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(POLICY.wait(Some(&record), at(102)), None);
        assert_eq!(POLICY.wait(None, at(100)), None);
    }

    #[test]
    fn a_quiet_key_is_forgotten() {
        let record = FailureRecord {
            failures: 20,
            last_failure_at: at(0),
        };
        assert!(POLICY.wait(Some(&record), at(899)).is_some());
        assert_eq!(POLICY.wait(Some(&record), at(86_400)), None);
        assert_eq!(POLICY.after_failure(Some(&record), at(86_400)).failures, 1);
        assert_eq!(POLICY.after_failure(Some(&record), at(86_399)).failures, 21);
    }
}
