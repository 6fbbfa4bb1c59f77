//! Rate limits: a GCRA (generic cell rate algorithm) per key, in process.
//!
//! GCRA keeps one instant per key (the "theoretical arrival time"), allows a burst of
//! `count` and then one request per `period / count`, and tells a refused caller exactly
//! when to retry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateSpec;

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Go ahead.
    Allowed,
    /// Refused; try again after this long.
    Limited {
        /// When a retry will be allowed.
        retry_after: Duration,
    },
}

/// Counts requests per key against a [`RateSpec`]. Implementations: in process
/// ([`LocalRateLimiter`]), or shared by all replicas through Redis.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Count a request under `key` against `spec`.
    async fn check(&self, key: &str, spec: RateSpec) -> RateDecision;
}

#[async_trait::async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn check(&self, key: &str, spec: RateSpec) -> RateDecision {
        self.check_at(key, spec, Instant::now())
    }
}

/// Per-key limits held in process memory.
#[derive(Debug, Default)]
pub(crate) struct LocalRateLimiter {
    arrivals: Mutex<HashMap<String, Instant>>,
}

impl LocalRateLimiter {
    fn check_at(&self, key: &str, spec: RateSpec, now: Instant) -> RateDecision {
        let interval = spec.period / spec.count;
        let Ok(mut arrivals) = self.arrivals.lock() else {
            // A poisoned lock means a panic elsewhere; refuse rather than allow unlimited.
            return RateDecision::Limited {
                retry_after: Duration::from_secs(1),
            };
        };
        if arrivals.len() > 100_000 {
            arrivals.retain(|_, tat| *tat > now);
        }
        let tat = arrivals
            .get(key)
            .copied()
            .filter(|tat| *tat > now)
            .unwrap_or(now);
        let new_tat = tat + interval;
        let ahead = new_tat - now;
        if ahead > spec.period {
            return RateDecision::Limited {
                retry_after: ahead - spec.period,
            };
        }
        arrivals.insert(key.to_owned(), new_tat);
        RateDecision::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_spaces_requests() {
        let limiter = LocalRateLimiter::default();
        let spec = RateSpec {
            count: 3,
            period: Duration::from_secs(60),
        };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check_at("k", spec, t0), RateDecision::Allowed);
        }
        let RateDecision::Limited { retry_after } = limiter.check_at("k", spec, t0) else {
            panic!("fourth request allowed");
        };
        assert_eq!(retry_after, Duration::from_secs(20));
        assert_eq!(limiter.check_at("other", spec, t0), RateDecision::Allowed);
        assert_eq!(
            limiter.check_at("k", spec, t0 + Duration::from_secs(20)),
            RateDecision::Allowed
        );
    }
}
