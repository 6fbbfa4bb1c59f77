//! A bounded cache of access tokens whose signature and claims were verified, keyed by
//! the exact token text, so a client that sends the same token many times pays for the
//! signature check once.
//!
//! Safe because the key is the whole token: a token that differs in one byte (tampered,
//! re-signed, other header) is a different key and goes through full verification. An
//! entry is used only until the token's `exp` (plus leeway), and only while the key ring
//! is at the generation the token was verified under: when keys are reloaded, rotated
//! or revoked the caller moves to a new generation and every older entry misses (and
//! [`VerifiedTokenCache::clear`] drops them at once). Revocation of tokens and sessions
//! is checked on every request after the cache, never cached.
//!
//! Eviction is `quick_cache`'s CLOCK-PRO/S3-FIFO-like policy: tokens seen once leave
//! first and tokens in use stay, so a flood of new tokens beyond the capacity costs
//! their own misses, not the hot tokens' hits.

use std::collections::hash_map::RandomState;
use std::sync::Arc;

use latchkey_verify::AccessClaims;
use quick_cache::sync::Cache;
use quick_cache::UnitWeighter;

/// What is kept per token: its claims and the key ring generation they were checked
/// against.
#[derive(Clone)]
struct Entry {
    claims: Arc<AccessClaims>,
    generation: u64,
}

/// Verified tokens, at most `capacity` of them.
pub(crate) struct VerifiedTokenCache {
    // SipHash with a random key: token text comes from clients.
    cache: Option<Cache<Box<str>, Entry, UnitWeighter, RandomState>>,
}

impl std::fmt::Debug for VerifiedTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens themselves.
        f.debug_struct("VerifiedTokenCache")
            .field("len", &self.len())
            .field(
                "capacity",
                &self.cache.as_ref().map_or(0, |cache| cache.capacity()),
            )
            .finish()
    }
}

impl VerifiedTokenCache {
    /// A cache holding up to `capacity` tokens; 0 disables it.
    pub(crate) fn new(capacity: usize) -> Self {
        let cache = (capacity > 0).then(|| {
            Cache::with(
                capacity,
                capacity as u64,
                UnitWeighter,
                RandomState::new(),
                Default::default(),
            )
        });
        Self { cache }
    }

    /// The claims of `token` if it was verified under key ring `generation` and has not
    /// expired at `now_unix_secs` (with `leeway_secs`). An entry of an older generation
    /// or past its expiry is dropped.
    pub(crate) fn get(
        &self,
        token: &str,
        now_unix_secs: i64,
        leeway_secs: i64,
        generation: u64,
    ) -> Option<Arc<AccessClaims>> {
        let cache = self.cache.as_ref()?;
        let entry = cache.get(token)?;
        let expired = now_unix_secs >= entry.claims.exp.saturating_add(leeway_secs);
        if expired || entry.generation < generation {
            cache.remove_if(token, |stale| {
                stale.generation < generation
                    || now_unix_secs >= stale.claims.exp.saturating_add(leeway_secs)
            });
            return None;
        }
        // A newer generation than the caller's (a reload racing this request) is a miss
        // too: the caller verifies against the ring it holds.
        (entry.generation == generation).then_some(entry.claims)
    }

    /// Remember that `token` verified to `claims` under key ring `generation`.
    pub(crate) fn insert(&self, token: &str, claims: Arc<AccessClaims>, generation: u64) {
        if let Some(cache) = &self.cache {
            cache.insert(token.into(), Entry { claims, generation });
        }
    }

    /// Forget every token, for when the key ring changes.
    pub(crate) fn clear(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    /// How many tokens are cached now.
    pub(crate) fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, |cache| cache.len())
    }

    /// Whether no token is cached.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
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
            email_verified: None,
            jti: "j".into(),
            amr: Vec::new(),
            auth_time: None,
        })
    }

    #[test]
    fn hits_until_expiry_and_never_for_other_text() {
        let cache = VerifiedTokenCache::new(64);
        cache.insert("a.b.c", claims(100), 0);
        assert!(cache.get("a.b.c", 50, 0, 0).is_some());
        assert!(cache.get("a.b.C", 50, 0, 0).is_none());
        assert!(cache.get("a.b.c", 100, 0, 0).is_none(), "expired");
        assert!(
            cache.get("a.b.c", 50, 0, 0).is_none(),
            "expired entries are dropped"
        );
        cache.insert("a.b.c", claims(100), 0);
        assert!(cache.get("a.b.c", 104, 5, 0).is_some(), "within leeway");
    }

    #[test]
    fn stays_bounded() {
        let cache = VerifiedTokenCache::new(32);
        for i in 0..1000 {
            cache.insert(&format!("token-{i}"), claims(100), 0);
        }
        assert!(cache.len() <= 32, "{}", cache.len());
        let disabled = VerifiedTokenCache::new(0);
        disabled.insert("x", claims(100), 0);
        assert!(disabled.get("x", 0, 0, 0).is_none());
        assert!(disabled.is_empty());
    }

    #[test]
    fn a_flood_of_new_tokens_evicts_some_not_all_and_keeps_the_hot_ones() {
        let capacity = 1024;
        let cache = VerifiedTokenCache::new(capacity);
        let hot: Vec<String> = (0..32).map(|i| format!("hot-{i}")).collect();
        for token in &hot {
            cache.insert(token, claims(100), 0);
        }
        // Twice the capacity of one-off tokens, the hot ones in use all along.
        for i in 0..2 * capacity {
            cache.insert(&format!("cold-{i}"), claims(100), 0);
            let token = &hot[i % hot.len()];
            assert!(cache.get(token, 50, 0, 0).is_some(), "{token} after {i}");
            let len = cache.len();
            assert!(len <= capacity, "over capacity: {len}");
            if i >= capacity {
                assert!(len >= capacity / 2, "dropped at once: {len} left");
            }
        }
        let recent = (capacity..2 * capacity)
            .rev()
            .take(64)
            .filter(|i| cache.get(&format!("cold-{i}"), 50, 0, 0).is_some())
            .count();
        assert!(recent > 0, "no recent one-off token kept");
    }

    #[test]
    fn entries_of_another_key_ring_generation_miss() {
        let cache = VerifiedTokenCache::new(64);
        cache.insert("a.b.c", claims(100), 3);
        assert!(cache.get("a.b.c", 50, 0, 3).is_some());
        assert!(
            cache.get("a.b.c", 50, 0, 2).is_none(),
            "newer than the caller"
        );
        assert!(
            cache.get("a.b.c", 50, 0, 3).is_some(),
            "kept for its own generation"
        );
        assert!(cache.get("a.b.c", 50, 0, 4).is_none(), "key ring moved on");
        assert!(
            cache.get("a.b.c", 50, 0, 3).is_none(),
            "stale entries are dropped"
        );
    }

    #[test]
    fn clear_empties() {
        let cache = VerifiedTokenCache::new(64);
        for i in 0..10 {
            cache.insert(&format!("t{i}"), claims(100), 0);
        }
        assert_eq!(cache.len(), 10);
        cache.clear();
        assert!(cache.is_empty());
        assert!(cache.get("t1", 50, 0, 0).is_none());
    }

    #[test]
    fn debug_shows_no_token() {
        let cache = VerifiedTokenCache::new(64);
        cache.insert("secret.token.text", claims(100), 0);
        let text = format!("{cache:?}");
        assert!(!text.contains("secret"), "{text}");
    }
}
