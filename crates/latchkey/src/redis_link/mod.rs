//! Redis, for scale-out: shared rate limits, the denylist entries with their TTLs, and
//! revocation fan-out by pub/sub so every replica learns of a logout within moments.
//!
//! Redis is never the truth: the store's revocation log is. If Redis is unreachable,
//! logins and refreshes go on (rate limits fall back to each process), revocations still
//! reach other replicas through the store poll, and after reconnecting each replica
//! re-reads the store's log. `/readyz` then reports `redis: unavailable`.

mod fanout;
mod ratelimit;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::ConnectionManager;

pub(crate) use fanout::FanoutKey;
pub(crate) use fanout::RedisFanout;
pub(crate) use ratelimit::RedisRateLimiter;

/// The pub/sub channel revocations are announced on.
pub(crate) const REVOCATION_CHANNEL: &str = "latchkey:revocations";
const OPERATION_TIMEOUT: Duration = Duration::from_millis(250);
/// How long one attempt to (re)connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A Redis URL that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("LATCHKEY_REDIS_URL is not a valid Redis URL")]
pub struct InvalidRedisUrl;

/// A shared, self-healing connection to Redis.
pub struct RedisLink {
    client: redis::Client,
    /// The connection once made; [`ConnectionManager`] reconnects by itself after that.
    /// Held only to clone or store it, never across an `await`.
    connection: RwLock<Option<ConnectionManager>>,
    /// A connect attempt is under way (at most one at a time).
    connecting: AtomicBool,
    healthy: AtomicBool,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("healthy", &self.is_healthy())
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    /// Parse the URL and try to connect (waiting up to a second). An unreachable Redis
    /// does not stop start-up: the link keeps trying in the background.
    pub async fn open(url: &str) -> Result<Arc<Self>, InvalidRedisUrl> {
        let client = redis::Client::open(url).map_err(|_| InvalidRedisUrl)?;
        let link = Arc::new(Self {
            client,
            connection: RwLock::new(None),
            connecting: AtomicBool::new(true),
            healthy: AtomicBool::new(false),
        });
        link.connect().await;
        Ok(link)
    }

    /// Whether the last operation succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// The connection if there is one. If not, start one connect attempt in the
    /// background (unless one is under way) and answer `None` at once: callers fall back
    /// rather than wait for Redis.
    fn connection(self: &Arc<Self>) -> Option<ConnectionManager> {
        if let Some(connection) = self.current() {
            return Some(connection);
        }
        if !self.connecting.swap(true, Ordering::AcqRel) {
            let link = Arc::clone(self);
            tokio::spawn(async move { link.connect().await });
        }
        None
    }

    fn current(&self) -> Option<ConnectionManager> {
        self.connection.read().ok().and_then(|slot| slot.clone())
    }

    /// One connect attempt; the caller has set `connecting`, which this clears.
    async fn connect(&self) {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(OPERATION_TIMEOUT)
            .set_response_timeout(OPERATION_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(500);
        let made = tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.client.get_connection_manager_with_config(config),
        )
        .await;
        match made {
            Ok(Ok(connection)) => {
                if let Ok(mut slot) = self.connection.write() {
                    *slot = Some(connection);
                }
            }
            _ => self.mark(false),
        }
        self.connecting.store(false, Ordering::Release);
    }

    fn mark(&self, healthy: bool) {
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if was && !healthy {
            tracing::warn!("Redis unreachable: rate limits per process, revocations via the store");
        } else if !was && healthy {
            tracing::info!("Redis reachable");
        }
    }

    /// Run one command with a timeout, recording health; `None` at once when there is
    /// no connection yet.
    pub(crate) async fn run<T, F, Fut>(self: &Arc<Self>, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection()?;
        let outcome = tokio::time::timeout(OPERATION_TIMEOUT, op(connection)).await;
        let ok = matches!(outcome, Ok(Ok(_)));
        self.mark(ok);
        outcome.ok().and_then(Result::ok)
    }

    /// Check that Redis answers.
    pub async fn ping(self: &Arc<Self>) -> bool {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .is_some()
    }
}
