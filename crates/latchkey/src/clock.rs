//! The one place the server reads the wall clock.
//!
//! Everything that compares with a stored time (expiry, grace windows, outbox due times,
//! recent sign-in) reads the service's [`Clock`], so tests can move time forward with a
//! [`TestClock`] instead of sleeping.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};
use std::time::Duration;

use latchkey_core::time::Timestamp;

/// The clock a server reads: the system clock, or the system clock moved forward by a
/// [`TestClock`].
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the system clock; `None` for the plain system clock.
    offset_millis: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock (what `latchkey serve` uses).
    pub fn system() -> Self {
        Self::default()
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        let offset = self
            .offset_millis
            .as_ref()
            .map_or(0, |o| o.load(Ordering::Relaxed));
        Timestamp::from_unix_millis(system_millis().saturating_add(offset))
    }
}

/// A clock for tests: it runs with the system clock and jumps forward on [`advance`].
///
/// [`advance`]: TestClock::advance
#[derive(Clone, Debug, Default)]
pub struct TestClock {
    offset_millis: Arc<AtomicI64>,
}

impl TestClock {
    /// A clock that reads the system time until moved.
    pub fn new() -> Self {
        Self::default()
    }

    /// The [`Clock`] to build a server with.
    pub fn clock(&self) -> Clock {
        Clock {
            offset_millis: Some(self.offset_millis.clone()),
        }
    }

    /// Move every server built with this clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_millis.fetch_add(millis, Ordering::Relaxed);
    }
}

/// The current time by the system clock, where the outside world's time is meant
/// (webhook signature timestamps, Redis key lifetimes), not the service's.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_unix_millis(system_millis())
}

fn system_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_moves_only_its_own_servers() {
        let test = TestClock::new();
        let moved = test.clock();
        let system = Clock::system();
        test.advance(Duration::from_secs(3600));
        let gap = moved.now().unix_millis() - system.now().unix_millis();
        assert!((3_599_000..=3_601_000).contains(&gap), "gap {gap}");
    }
}
