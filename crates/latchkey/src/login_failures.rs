//! Failed-login counts behind the back-off of [`latchkey_core::lockout`]: in process, or
//! shared by every replica through Redis (falling back to the process's own counts
//! while Redis is unreachable, as the rate limiter does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use latchkey_core::lockout::{BackoffPolicy, FailureRecord};
use latchkey_core::time::Timestamp;
use redis::Script;

use crate::redis_link::RedisLink;

/// Where failure counts live.
#[async_trait::async_trait]
pub trait FailureStore: Send + Sync {
    /// The failures counted under `key`, unless forgotten.
    async fn get(&self, key: &str) -> Option<FailureRecord>;
    /// Count one more failure under `key` at `now`; returns the new count.
    async fn record(&self, key: &str, policy: &BackoffPolicy, now: Timestamp) -> FailureRecord;
    /// Forget `key` (after a successful login).
    async fn clear(&self, key: &str);
}

/// Most keys kept in process before forgotten ones are swept out.
const SWEEP_ABOVE: usize = 100_000;

/// Failure counts in process memory.
#[derive(Debug, Default)]
pub(crate) struct LocalFailures {
    records: Mutex<HashMap<String, (FailureRecord, Timestamp)>>,
}

#[async_trait::async_trait]
impl FailureStore for LocalFailures {
    async fn get(&self, key: &str) -> Option<FailureRecord> {
        let records = self.records.lock().ok()?;
        records.get(key).map(|(record, _)| *record)
    }

    async fn record(&self, key: &str, policy: &BackoffPolicy, now: Timestamp) -> FailureRecord {
        let Ok(mut records) = self.records.lock() else {
            // A poisoned lock: count as if many failures happened (fail closed).
            return FailureRecord {
                failures: u32::MAX,
                last_failure_at: now,
            };
        };
        if records.len() > SWEEP_ABOVE {
            records.retain(|_, (_, forget_at)| *forget_at > now);
        }
        let previous = records.get(key).map(|(record, _)| *record);
        let record = policy.after_failure(previous.as_ref(), now);
        records.insert(key.to_owned(), (record, now.plus(policy.forget_after)));
        record
    }

    async fn clear(&self, key: &str) {
        if let Ok(mut records) = self.records.lock() {
            records.remove(key);
        }
    }
}

/// Count a failure: one more, at `now`, the key expiring `forget_after` later. Returns
/// the count.
const RECORD: &str = r"
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 't', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
";

/// Failure counts shared through Redis.
pub(crate) struct RedisFailures {
    link: Arc<RedisLink>,
    script: Script,
    fallback: LocalFailures,
}

impl std::fmt::Debug for RedisFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFailures").finish_non_exhaustive()
    }
}

impl RedisFailures {
    /// Counts through `link`.
    pub(crate) fn new(link: Arc<RedisLink>) -> Self {
        Self {
            link,
            script: Script::new(RECORD),
            fallback: LocalFailures::default(),
        }
    }
}

fn redis_key(key: &str) -> String {
    format!("latchkey:{key}")
}

#[async_trait::async_trait]
impl FailureStore for RedisFailures {
    async fn get(&self, key: &str) -> Option<FailureRecord> {
        let redis_key = redis_key(key);
        let key_ref = &redis_key;
        let stored = self
            .link
            .run(|mut c| async move {
                redis::cmd("HMGET")
                    .arg(key_ref)
                    .arg("n")
                    .arg("t")
                    .query_async::<(Option<u32>, Option<i64>)>(&mut c)
                    .await
            })
            .await;
        match stored {
            Some((Some(failures), Some(at))) => Some(FailureRecord {
                failures,
                last_failure_at: Timestamp::from_unix_millis(at),
            }),
            Some(_) => None,
            None => self.fallback.get(key).await,
        }
    }

    async fn record(&self, key: &str, policy: &BackoffPolicy, now: Timestamp) -> FailureRecord {
        let redis_key = redis_key(key);
        let key_ref = &redis_key;
        let script = &self.script;
        let forget_ms = u64::try_from(policy.forget_after.as_millis()).unwrap_or(u64::MAX);
        let counted = self
            .link
            .run(|mut c| async move {
                script
                    .key(key_ref)
                    .arg(now.unix_millis())
                    .arg(forget_ms)
                    .invoke_async::<u32>(&mut c)
                    .await
            })
            .await;
        match counted {
            Some(failures) => FailureRecord {
                failures,
                last_failure_at: now,
            },
            None => self.fallback.record(key, policy, now).await,
        }
    }

    async fn clear(&self, key: &str) {
        let redis_key = redis_key(key);
        let key_ref = &redis_key;
        // The process's own counts may hold failures from a Redis outage: clear both.
        self.link
            .run(|mut c| async move {
                redis::cmd("DEL")
                    .arg(key_ref)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
        self.fallback.clear(key).await;
    }
}
