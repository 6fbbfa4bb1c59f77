//! Rate limits shared by every replica through Redis.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use super::RedisLink;
use crate::config::RateSpec;
use crate::ratelimit::{LocalRateLimiter, RateDecision, RateLimiter};

/// GCRA in Redis, one key per bucket, so all replicas share each limit. The time is
/// Redis's own (`TIME`, in milliseconds), so replicas whose clocks differ still share one
/// schedule. A script may call `TIME` since Redis 5 (effects replication: replicas and
/// the AOF receive the `SET`, not the script). Arguments: the interval between requests
/// and the burst period, both in milliseconds.
const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
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
pub(crate) struct RedisRateLimiter {
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
    pub(crate) fn new(link: Arc<RedisLink>) -> Self {
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
        let script = &self.script;
        let redis_key = format!("latchkey:rate:{key}");
        let key_ref = &redis_key;
        let verdict = self
            .link
            .run(|mut c| async move {
                script
                    .key(key_ref)
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
    use std::sync::atomic::Ordering;

    use super::*;

    /// A "Redis" that accepts connections and never answers; counts the connections.
    async fn silent_redis() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn checks_fall_back_at_once_while_one_connect_is_under_way() {
        let (url, accepted) = silent_redis().await;
        let link = RedisLink::open(&url).await.unwrap();
        assert!(!link.is_healthy());
        let after_open = accepted.load(Ordering::SeqCst);
        let limiter = RedisRateLimiter::new(Arc::clone(&link));
        let spec = RateSpec {
            count: 1000,
            period: Duration::from_secs(60),
        };
        let checks = (0..20).map(|i| {
            let limiter = &limiter;
            async move { limiter.check(&format!("k{i}"), spec).await }
        });
        let decisions = futures::future::join_all(checks).await;
        assert!(decisions.iter().all(|d| matches!(d, RateDecision::Allowed)));
        // Each check answered from the local fallback without a connect of its own: at
        // most the one background attempt (of up to two connections, with its retry)
        // has reached the server, not one per check queued behind a lock.
        let during = accepted.load(Ordering::SeqCst) - after_open;
        assert!(during <= 2, "{during} connections for 20 checks");
    }
}
