//! Measurement: a window that opens after a warm-up, per-worker latency recorders, and
//! their summary (throughput of 2xx answers, p50/p99 of all answers, non-2xx count).

use std::fmt;
use std::time::{Duration, Instant};

/// When measuring starts and when the workers stop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    from: Instant,
    until: Instant,
}

impl Window {
    /// Measure for `duration` after `warmup` from now.
    pub(crate) fn starting_now(warmup: Duration, duration: Duration) -> Self {
        let from = Instant::now() + warmup;
        Self {
            from,
            until: from + duration,
        }
    }

    /// Whether workers should send another request.
    pub(crate) fn open(&self) -> bool {
        Instant::now() < self.until
    }

    /// When measuring started.
    pub(crate) fn from(&self) -> Instant {
        self.from
    }

    /// When measuring ended.
    pub(crate) fn until(&self) -> Instant {
        self.until
    }

    /// The measured span in seconds.
    pub(crate) fn seconds(&self) -> f64 {
        (self.until - self.from).as_secs_f64()
    }
}

/// Latencies and counts of one worker (or several, merged).
#[derive(Debug, Default, Clone)]
pub(crate) struct Recorder {
    micros: Vec<u32>,
    ok: u64,
    errors: u64,
}

impl Recorder {
    /// Record a request sent at `started` that just completed, if it lies in the window.
    /// `ok` is false for a non-2xx answer or a transport error.
    pub(crate) fn record(&mut self, window: &Window, started: Instant, ok: bool) {
        let done = Instant::now();
        if started < window.from || done > window.until {
            return;
        }
        let micros = (done - started).as_micros();
        self.micros.push(u32::try_from(micros).unwrap_or(u32::MAX));
        if ok {
            self.ok += 1;
        } else {
            self.errors += 1;
        }
    }

    /// Add another recorder's samples.
    pub(crate) fn merge(&mut self, other: Recorder) {
        self.micros.extend(other.micros);
        self.ok += other.ok;
        self.errors += other.errors;
    }

    /// Sort and summarise over the window.
    pub(crate) fn summary(mut self, window: &Window) -> Summary {
        self.micros.sort_unstable();
        let seconds = window.seconds();
        Summary {
            ok: self.ok,
            errors: self.errors,
            rate: if seconds > 0.0 {
                self.ok as f64 / seconds
            } else {
                0.0
            },
            p50_ms: percentile(&self.micros, 50.0),
            p99_ms: percentile(&self.micros, 99.0),
            window: *window,
        }
    }
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile(sorted_micros: &[u32], p: f64) -> f64 {
    if sorted_micros.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted_micros.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted_micros.len()) - 1;
    f64::from(sorted_micros[index]) / 1000.0
}

/// What one scenario measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Summary {
    /// 2xx answers in the window.
    pub(crate) ok: u64,
    /// Non-2xx answers and transport errors in the window.
    pub(crate) errors: u64,
    /// 2xx answers per second.
    pub(crate) rate: f64,
    /// Median latency of all answers, ms.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency, ms.
    pub(crate) p99_ms: f64,
    /// The window measured.
    pub(crate) window: Window,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.0} req/s ({} ok, {} errors), p50 {:.2} ms, p99 {:.2} ms",
            self.rate, self.ok, self.errors, self.p50_ms, self.p99_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile(&sorted, 50.0), 50.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&[7000], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn only_requests_inside_the_window_count() {
        let window = Window::starting_now(Duration::from_secs(3600), Duration::from_secs(1));
        let mut recorder = Recorder::default();
        recorder.record(&window, Instant::now(), true);
        let summary = recorder.summary(&window);
        assert_eq!((summary.ok, summary.errors), (0, 0));
    }
}
