//! A bounded cache of access tokens whose signature and claims were verified, keyed by
//! the exact token text, so a client that sends the same token many times pays for the
//! signature check once.
//!
//! Safe because the key is the whole token: a token that differs in one byte (tampered,
//! re-signed, other header) is a different key and goes through full verification. An
//! entry is used only until the token's `exp` (plus leeway); revocation is checked on
//! every request after the cache, never cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use latchkey_verify::AccessClaims;

/// Verified tokens, at most `capacity` of them.
#[derive(Debug)]
pub struct VerifiedTokenCache {
    shards: Vec<Mutex<HashMap<Box<str>, Arc<AccessClaims>>>>,
    per_shard: usize,
}

const SHARDS: usize = 16;

impl VerifiedTokenCache {
    /// A cache holding up to `capacity` tokens; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
        }
    }

    fn shard(&self, token: &str) -> &Mutex<HashMap<Box<str>, Arc<AccessClaims>>> {
        // The signature's last bytes are as good as random and cost nothing to read.
        let tail = token
            .as_bytes()
            .iter()
            .rev()
            .take(4)
            .fold(0usize, |acc, &b| acc * 31 + usize::from(b));
        &self.shards[tail % SHARDS]
    }

    /// The claims of `token` if it was verified before and has not expired at
    /// `now_unix_secs` (with `leeway_secs`).
    pub fn get(
        &self,
        token: &str,
        now_unix_secs: i64,
        leeway_secs: i64,
    ) -> Option<Arc<AccessClaims>> {
        if self.per_shard == 0 {
            return None;
        }
        let mut shard = self.shard(token).lock().ok()?;
        let claims = shard.get(token)?.clone();
        if now_unix_secs >= claims.exp.saturating_add(leeway_secs) {
            shard.remove(token);
            return None;
        }
        Some(claims)
    }

    /// Remember that `token` verified to `claims`.
    pub fn insert(&self, token: &str, claims: Arc<AccessClaims>) {
        if self.per_shard == 0 {
            return;
        }
        if let Ok(mut shard) = self.shard(token).lock() {
            if shard.len() >= self.per_shard {
                // Crude but bounded: start the shard afresh. Hot tokens come back at once.
                shard.clear();
            }
            shard.insert(token.into(), claims);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: vec!["a".into()],
            sid: "sid".into(),
            roles: vec![],
            iat: 0,
            exp,
            nbf: None,
            jti: "j".into(),
        })
    }

    #[test]
    fn hits_until_expiry_and_never_for_other_text() {
        let cache = VerifiedTokenCache::new(64);
        cache.insert("a.b.c", claims(100));
        assert!(cache.get("a.b.c", 50, 0).is_some());
        assert!(cache.get("a.b.C", 50, 0).is_none());
        assert!(cache.get("a.b.c", 100, 0).is_none(), "expired");
        assert!(
            cache.get("a.b.c", 50, 0).is_none(),
            "expired entries are dropped"
        );
    }

    #[test]
    fn stays_bounded() {
        let cache = VerifiedTokenCache::new(32);
        for i in 0..1000 {
            cache.insert(&format!("token-{i}"), claims(100));
        }
        let total: usize = cache.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= 32, "{total}");
        assert!(VerifiedTokenCache::new(0).get("x", 0, 0).is_none());
    }
}
