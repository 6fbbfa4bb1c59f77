//! Time as a value. The core never reads the clock: callers pass `now`.

use std::time::Duration;

/// A point in time: milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// A timestamp from Unix milliseconds.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down), as JWT `iat`/`exp` use.
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant moved forward by `duration` (saturating).
    pub fn plus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// How long after `earlier` this instant is (zero if it is not after it).
    pub fn duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// The instant in RFC 3339 form with milliseconds, UTC: `2026-12-01T11:27:20.123Z`.
    /// Instants before 1970 are shown as the epoch.
    pub fn to_rfc3339(self) -> String {
        let since_epoch = Duration::from_millis(u64::try_from(self.0).unwrap_or(0));
        humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + since_epoch).to_string()
    }

    /// This instant moved back by `duration` (saturating).
    pub fn minus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_with_milliseconds() {
        let at = Timestamp::from_unix_millis(1_796_124_440_123);
        assert_eq!(at.to_rfc3339(), "2026-12-01T11:27:20.123Z");
        assert_eq!(
            Timestamp::from_unix_millis(-5).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
