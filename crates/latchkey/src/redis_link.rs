//! Redis, for scale-out: shared rate limits, the denylist entries with their TTLs, and
//! revocation fan-out by pub/sub so every replica learns of a logout within moments.
//!
//! Redis is never the truth: the store's revocation log is. If Redis is unreachable,
//! logins and refreshes go on (rate limits fall back to each process), revocations still
//! reach other replicas through the store poll, and after reconnecting each replica
//! re-reads the store's log. `/readyz` then reports `redis: unavailable`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use latchkey_core::model::SessionId;
use latchkey_core::store::Revoked;
use latchkey_core::time::Timestamp;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

use crate::clock;
use crate::config::RateSpec;
use crate::ratelimit::{LocalRateLimiter, RateDecision, RateLimiter};
use crate::revocation::RevocationFanout;
use crate::service::AuthService;

/// The pub/sub channel revocations are announced on.
pub const REVOCATION_CHANNEL: &str = "latchkey:revocations";
const OPERATION_TIMEOUT: Duration = Duration::from_millis(250);

/// A Redis URL that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("LATCHKEY_REDIS_URL is not a valid Redis URL")]
pub struct InvalidRedisUrl;

/// A shared, self-healing connection to Redis.
pub struct RedisLink {
    client: redis::Client,
    connection: RwLock<Option<ConnectionManager>>,
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
    /// Parse the URL and try to connect. An unreachable Redis does not stop start-up:
    /// the link keeps trying in the background.
    pub async fn open(url: &str) -> Result<Arc<Self>, InvalidRedisUrl> {
        let client = redis::Client::open(url).map_err(|_| InvalidRedisUrl)?;
        let link = Arc::new(Self {
            client,
            connection: RwLock::new(None),
            healthy: AtomicBool::new(false),
        });
        link.connection().await;
        Ok(link)
    }

    /// Whether the last operation succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        if let Some(connection) = self.connection.read().await.clone() {
            return Some(connection);
        }
        let mut slot = self.connection.write().await;
        if slot.is_none() {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(OPERATION_TIMEOUT)
                .set_response_timeout(OPERATION_TIMEOUT)
                .set_number_of_retries(1)
                .set_max_delay(500);
            match tokio::time::timeout(
                Duration::from_secs(1),
                self.client.get_connection_manager_with_config(config),
            )
            .await
            {
                Ok(Ok(connection)) => *slot = Some(connection),
                _ => {
                    self.mark(false);
                    return None;
                }
            }
        }
        slot.clone()
    }

    fn mark(&self, healthy: bool) {
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if was && !healthy {
            tracing::warn!("Redis unreachable: rate limits per process, revocations via the store");
        } else if !was && healthy {
            tracing::info!("Redis reachable");
        }
    }

    /// Run one command with a timeout, recording health.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection().await?;
        let outcome = tokio::time::timeout(OPERATION_TIMEOUT, op(connection)).await;
        let ok = matches!(outcome, Ok(Ok(_)));
        self.mark(ok);
        outcome.ok().and_then(Result::ok)
    }

    /// Check that Redis answers.
    pub async fn ping(&self) -> bool {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .is_some()
    }

    /// Follow the revocation channel, feeding `service`'s cache; after every
    /// (re)subscription re-read the store's log so nothing published meanwhile is missed.
    pub fn spawn_subscriber(self: &Arc<Self>, service: Arc<AuthService>) -> JoinHandle<()> {
        let link = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match link.client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(REVOCATION_CHANNEL).await.is_ok() {
                            backoff = Duration::from_millis(100);
                            link.mark(true);
                            if let Err(e) = service
                                .revocations()
                                .sync_from(service.store().as_ref(), clock::now())
                                .await
                            {
                                tracing::warn!(error = %e, "resync of revocations after Redis reconnect failed");
                            }
                            let mut messages = pubsub.on_message();
                            while let Some(message) = messages.next().await {
                                if let Some((revoked, until)) = message
                                    .get_payload::<String>()
                                    .ok()
                                    .as_deref()
                                    .and_then(decode)
                                {
                                    service.revocations().insert(revoked, until);
                                }
                            }
                        }
                        link.mark(false);
                    }
                    Err(_) => link.mark(false),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        })
    }
}

fn encode(revoked: &Revoked, until: Timestamp) -> (String, String) {
    let millis = until.unix_millis();
    match revoked {
        Revoked::AccessToken(jti) => (
            format!("latchkey:revoked:jti:{jti}"),
            format!("t:{jti}:{millis}"),
        ),
        Revoked::Session(sid) => (
            format!("latchkey:revoked:sid:{sid}"),
            format!("s:{sid}:{millis}"),
        ),
    }
}

fn decode(message: &str) -> Option<(Revoked, Timestamp)> {
    let mut parts = message.splitn(3, ':');
    let (kind, value, millis) = (parts.next()?, parts.next()?, parts.next()?);
    let until = Timestamp::from_unix_millis(millis.parse().ok()?);
    let revoked = match kind {
        "t" if !value.is_empty() && value.len() <= 128 => Revoked::AccessToken(value.to_owned()),
        "s" => Revoked::Session(value.parse::<SessionId>().ok()?),
        _ => return None,
    };
    Some((revoked, until))
}

#[async_trait::async_trait]
impl RevocationFanout for RedisLink {
    async fn announce(&self, revoked: &Revoked, until: Timestamp) {
        let (key, message) = encode(revoked, until);
        let ttl_ms =
            u64::try_from((until.unix_millis() - clock::now().unix_millis()).max(1)).unwrap_or(1);
        let sent = self
            .run(|mut c| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<()>(&mut c)
                    .await?;
                c.publish::<_, _, ()>(REVOCATION_CHANNEL, &message).await
            })
            .await;
        if sent.is_none() {
            tracing::warn!(
                "could not announce a revocation on Redis; other replicas learn it from the store"
            );
        }
    }
}

/// GCRA in Redis, one key per bucket, so all replicas share each limit.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > period then
  return ahead - period
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(ahead))
return 0
";

/// Rate limits shared through Redis, falling back to this process's limits when Redis
/// cannot answer (so an outage never blocks logins, and never lifts the limits).
pub struct RedisRateLimiter {
    link: Arc<RedisLink>,
    script: Script,
    fallback: LocalRateLimiter,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter").finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// Limits through `link`.
    pub fn new(link: Arc<RedisLink>) -> Self {
        Self {
            link,
            script: Script::new(GCRA),
            fallback: LocalRateLimiter::default(),
        }
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, spec: RateSpec) -> RateDecision {
        let interval = spec.period.as_millis() as f64 / f64::from(spec.count);
        let period = spec.period.as_millis() as f64;
        let now = clock::now().unix_millis();
        let script = &self.script;
        let redis_key = format!("latchkey:rate:{key}");
        let key_ref = &redis_key;
        let verdict = self
            .link
            .run(|mut c| async move {
                script
                    .key(key_ref)
                    .arg(now)
                    .arg(interval)
                    .arg(period)
                    .invoke_async::<f64>(&mut c)
                    .await
            })
            .await;
        match verdict {
            Some(wait) if wait > 0.0 => RateDecision::Limited {
                retry_after: Duration::from_millis(wait.ceil() as u64),
            },
            Some(_) => RateDecision::Allowed,
            None => self.fallback.check(key, spec).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_messages_round_trip_and_junk_is_ignored() {
        let sid = SessionId::generate();
        let until = Timestamp::from_unix_millis(1_800_000_000_123);
        for revoked in [
            Revoked::Session(sid),
            Revoked::AccessToken("abc_-123".into()),
        ] {
            let (_, message) = encode(&revoked, until);
            assert_eq!(decode(&message), Some((revoked, until)));
        }
        for junk in ["", "x:1:2", "s:not-a-uuid:5", "t::5", "t:abc:soon"] {
            assert_eq!(decode(junk), None, "{junk}");
        }
    }
}
