//! When an outbox tries again: the back-off shared by the mail outbox and the webhook
//! outbox. A failed delivery waits `base`, then twice as long after each further
//! failure, up to `cap`; after `max_attempts` it is given up.

use std::time::Duration;

use crate::time::Timestamp;

/// How often and how patiently an outbox retries a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt, or `None` to give up.
    pub fn wait_after(&self, attempts: u32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(30);
        Some(
            self.base
                .checked_mul(1u32 << doublings)
                .map_or(self.cap, |w| w.min(self.cap)),
        )
    }
}

/// When to try again after the `attempts`-th failed attempt, or `None` to give up.
pub fn next_attempt(attempts: u32, now: Timestamp, policy: &RetryPolicy) -> Option<Timestamp> {
    policy.wait_after(attempts).map(|wait| now.plus(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_up_to_the_cap_then_give_up() {
        let now = Timestamp::from_unix_millis(0);
        let policy = RetryPolicy {
            max_attempts: 4,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(3),
        };
        let wait = |n| next_attempt(n, now, &policy).map(|t| t.duration_since(now));
        assert_eq!(wait(1), Some(Duration::from_secs(1)));
        assert_eq!(wait(2), Some(Duration::from_secs(2)));
        assert_eq!(wait(3), Some(Duration::from_secs(3)));
        assert_eq!(wait(4), None);
    }
}
