//! Redis, for scale-out: shared rate limits, the denylist entries with their TTLs, and
//! revocation fan-out by pub/sub so every replica learns of a logout within moments.
//!
//! Redis is never the truth: the store's revocation log is. If Redis is unreachable,
//! logins and refreshes go on (rate limits fall back to each process), revocations still
//! reach other replicas through the store poll, and after reconnecting each replica
//! re-reads the store's log. `/readyz` then reports `redis: unavailable`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::{hkdf, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures::StreamExt;
use latchkey_core::model::SessionId;
use latchkey_core::store::Revoked;
use latchkey_core::time::Timestamp;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use tokio::task::JoinHandle;

use crate::clock;
use crate::config::RateSpec;
use crate::ratelimit::{LocalRateLimiter, RateDecision, RateLimiter};
use crate::revocation::{RevocationFanout, RevocationSink};

/// The pub/sub channel revocations are announced on.
pub(crate) const REVOCATION_CHANNEL: &str = "latchkey:revocations";
const OPERATION_TIMEOUT: Duration = Duration::from_millis(250);
/// How long one attempt to (re)connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// At most one warning about rejected fan-out messages per this long.
const REJECT_LOG_EVERY: Duration = Duration::from_secs(10);

/// A Redis URL that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("LATCHKEY_REDIS_URL is not a valid Redis URL")]
pub struct InvalidRedisUrl;

/// The key that signs revocation fan-out messages and checks them on receipt, derived
/// from the server's master secret: a Redis client without it can neither revoke nor
/// lift a revocation through the channel.
pub struct FanoutKey(hmac::Key);

impl std::fmt::Debug for FanoutKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FanoutKey(redacted)")
    }
}

struct FanoutKeyLen;

impl hkdf::KeyType for FanoutKeyLen {
    fn len(&self) -> usize {
        32
    }
}

impl FanoutKey {
    /// HKDF-SHA256 of the master secret, under its own salt and info label (distinct
    /// from the refresh-token keys'). Every replica sharing the store derives the same.
    pub fn derive(master: &[u8]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"latchkey fanout").extract(master);
        let mut bytes = [0u8; 32];
        let info: [&[u8]; 1] = [b"latchkey revocation fanout v1"];
        // Expanding 32 bytes from HKDF-SHA256 cannot fail (the limit is 255 * 32 bytes).
        if let Ok(okm) = prk.expand(&info, FanoutKeyLen) {
            let _ = okm.fill(&mut bytes);
        }
        Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
    }

    /// `payload#mac`, the MAC covering the channel name and the payload.
    fn seal(&self, payload: &str) -> String {
        let tag = hmac::sign(&self.0, &Self::signed_bytes(payload));
        format!("{payload}#{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The payload of a sealed message whose MAC checks (in constant time), else `None`.
    fn open<'m>(&self, message: &'m str) -> Option<&'m str> {
        let (payload, tag) = message.rsplit_once('#')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.0, &Self::signed_bytes(payload), &tag).ok()?;
        Some(payload)
    }

    fn signed_bytes(payload: &str) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(REVOCATION_CHANNEL.len() + 1 + payload.len());
        bytes.extend_from_slice(REVOCATION_CHANNEL.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(payload.as_bytes());
        bytes
    }
}

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

    /// Follow the revocation channel, feeding `service`'s cache with the messages whose
    /// MAC `key` accepts (the others are dropped, with a rate-limited warning); after
    /// every (re)subscription re-read the store's log so nothing published meanwhile is
    /// missed.
    pub fn spawn_subscriber(
        self: &Arc<Self>,
        sink: Arc<dyn RevocationSink>,
        key: Arc<FanoutKey>,
    ) -> JoinHandle<()> {
        let link = self.clone();
        tokio::spawn(async move {
            let mut rejected = RejectLog::default();
            let mut backoff = Duration::from_millis(100);
            loop {
                match link.client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(REVOCATION_CHANNEL).await.is_ok() {
                            backoff = Duration::from_millis(100);
                            link.mark(true);
                            if let Err(e) = sink.resync().await {
                                tracing::warn!(error = %e, "resync of revocations after Redis reconnect failed");
                            }
                            let mut messages = pubsub.on_message();
                            while let Some(message) = messages.next().await {
                                let payload = message.get_payload::<String>().ok();
                                match payload.as_deref().and_then(|m| accept(&key, m)) {
                                    Some((revoked, until)) => sink.heard(revoked, until),
                                    None => rejected.note(),
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

/// Counts fan-out messages dropped for a bad MAC or form, and warns at most once per
/// [`REJECT_LOG_EVERY`] (the message itself is never logged).
#[derive(Default)]
struct RejectLog {
    last: Option<Instant>,
    unreported: u64,
}

impl RejectLog {
    fn note(&mut self) {
        self.unreported += 1;
        if self
            .last
            .is_none_or(|last| last.elapsed() >= REJECT_LOG_EVERY)
        {
            tracing::warn!(
                ignored = self.unreported,
                channel = REVOCATION_CHANNEL,
                "ignored revocation messages that failed authentication (forged, malformed, \
                 or from a server with another master secret)"
            );
            self.last = Some(Instant::now());
            self.unreported = 0;
        }
    }
}

/// The revocation in a sealed fan-out message, if its MAC checks and it parses.
fn accept(key: &FanoutKey, message: &str) -> Option<(Revoked, Timestamp)> {
    decode(key.open(message)?)
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
        Revoked::Key(kid) => (
            format!("latchkey:revoked:kid:{kid}"),
            format!("k:{kid}:{millis}"),
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
        "k" if !value.is_empty() && value.len() <= 128 => Revoked::Key(value.to_owned()),
        _ => return None,
    };
    Some((revoked, until))
}

/// Revocation fan-out through Redis pub/sub, each message sealed with the [`FanoutKey`].
#[derive(Debug)]
pub(crate) struct RedisFanout {
    link: Arc<RedisLink>,
    key: Arc<FanoutKey>,
}

impl RedisFanout {
    /// Announce through `link`, sealing with `key`.
    pub(crate) fn new(link: Arc<RedisLink>, key: Arc<FanoutKey>) -> Self {
        Self { link, key }
    }
}

#[async_trait::async_trait]
impl RevocationFanout for RedisFanout {
    async fn announce(&self, revoked: &Revoked, until: Timestamp) {
        let (key, payload) = encode(revoked, until);
        let message = self.key.seal(&payload);
        let ttl_ms =
            u64::try_from((until.unix_millis() - clock::now().unix_millis()).max(1)).unwrap_or(1);
        let sent = self
            .link
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

    #[test]
    fn only_messages_sealed_with_the_fanout_key_are_accepted() {
        let key = FanoutKey::derive(&[7u8; 32]);
        let other = FanoutKey::derive(&[8u8; 32]);
        let sid = SessionId::generate();
        let until = Timestamp::from_unix_millis(1_800_000_000_123);
        let (_, payload) = encode(&Revoked::Session(sid), until);
        let sealed = key.seal(&payload);
        assert_eq!(accept(&key, &sealed), Some((Revoked::Session(sid), until)));
        assert_eq!(accept(&other, &sealed), None, "another master secret");
        assert_eq!(
            accept(&key, &payload),
            None,
            "unsealed, as a plain client sends"
        );
        assert_eq!(
            accept(&key, &format!("s:{sid}:0")),
            None,
            "forged un-revoke"
        );
        let (_, unrevoke) = encode(&Revoked::Session(sid), Timestamp::from_unix_millis(0));
        let tag = sealed
            .rsplit_once('#')
            .map(|(_, tag)| tag)
            .unwrap_or_default();
        assert_eq!(
            accept(&key, &format!("{unrevoke}#{tag}")),
            None,
            "a MAC moved to another payload"
        );
        let mut flipped = sealed.clone().into_bytes();
        flipped[2] ^= 1;
        assert_eq!(accept(&key, &String::from_utf8_lossy(&flipped)), None);
        let (_, token) = encode(&Revoked::AccessToken("a#b".into()), until);
        assert_eq!(
            accept(&key, &key.seal(&token)),
            Some((Revoked::AccessToken("a#b".into()), until)),
            "a jti may hold the separator"
        );
    }

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

    #[test]
    fn the_fanout_key_is_redacted() {
        assert_eq!(
            format!("{:?}", FanoutKey::derive(&[1u8; 32])),
            "FanoutKey(redacted)"
        );
    }
}
