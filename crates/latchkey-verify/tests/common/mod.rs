//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod keys;
pub mod server;

use std::future::Future;
use std::time::{Duration, Instant};

/// Poll `condition` every 10 ms until it holds; `Err(elapsed)` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> Result<Duration, Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if condition().await {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            return Err(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
