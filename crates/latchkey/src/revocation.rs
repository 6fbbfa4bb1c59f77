//! What is revoked, kept in process so that checking an access token costs no I/O.
//!
//! The store's revocation log is the truth. This cache is filled from it at start-up,
//! written through by local revocations, and kept in step with other processes by a
//! background task that reads new log entries (see [`RevocationCache::sync_from`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::RwLock;

use latchkey_core::model::SessionId;
use latchkey_core::store::{RevocationEntry, Revoked, Store, StoreError};
use latchkey_core::time::Timestamp;

/// Tells other replicas about a revocation at once (the store poll would tell them
/// within `LATCHKEY_REVOCATION_POLL` anyway).
#[async_trait::async_trait]
pub trait RevocationFanout: Send + Sync {
    /// Announce that `revoked` is revoked until `until`.
    async fn announce(&self, revoked: &Revoked, until: Timestamp);
}

/// Where revocations heard from other replicas go (the service): into this process's
/// cache, and after each (re)connection a re-read of the store's log, so nothing
/// announced while disconnected is missed.
#[async_trait::async_trait]
pub trait RevocationSink: Send + Sync {
    /// A revocation another replica announced.
    fn heard(&self, revoked: Revoked, until: Timestamp);
    /// Read the store's revocation log up to its end.
    async fn resync(&self) -> Result<(), String>;
}

/// Revoked access tokens (by `jti`) and sessions (by `sid`), each with the instant after
/// which the entry no longer matters.
#[derive(Debug, Default)]
pub(crate) struct RevocationCache {
    tokens: RwLock<HashMap<String, Timestamp>>,
    sessions: RwLock<HashMap<SessionId, Timestamp>>,
    /// Counts key revocations seen: the service reloads its key ring (which no longer
    /// holds a revoked key, and flushes the verified-token cache) when this moves.
    key_revocations: AtomicU64,
    cursor: AtomicI64,
}

impl RevocationCache {
    /// Whether a token with this `jti` and `sid` is revoked.
    pub(crate) fn is_revoked(&self, jti: &str, sid: Option<SessionId>) -> bool {
        let token_revoked = self
            .tokens
            .read()
            .map(|m| m.contains_key(jti))
            .unwrap_or(true);
        let session_revoked = sid.is_some_and(|sid| {
            self.sessions
                .read()
                .map(|m| m.contains_key(&sid))
                .unwrap_or(true)
        });
        token_revoked || session_revoked
    }

    /// Record one revocation. An entry already present keeps the later of its expiry and
    /// `until`: a revocation can be extended, never shortened or lifted, whatever the order
    /// in which the store poll, local revocations and fan-out messages arrive.
    pub(crate) fn insert(&self, revoked: Revoked, until: Timestamp) {
        match revoked {
            Revoked::AccessToken(jti) => {
                if let Ok(mut map) = self.tokens.write() {
                    keep_later(map.entry(jti).or_insert(until), until);
                }
            }
            Revoked::Session(sid) => {
                if let Ok(mut map) = self.sessions.write() {
                    keep_later(map.entry(sid).or_insert(until), until);
                }
            }
            Revoked::Key(_) => {
                self.key_revocations.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// How many key revocations this process has seen; see [`Revoked::Key`].
    pub(crate) fn key_revocations(&self) -> u64 {
        self.key_revocations.load(Ordering::Acquire)
    }

    fn apply(&self, entries: Vec<RevocationEntry>) {
        for entry in entries {
            self.cursor.fetch_max(entry.seq, Ordering::Relaxed);
            self.insert(entry.revoked, entry.expires_at);
        }
    }

    /// Read every log entry newer than the last one seen. Returns how many were new.
    pub(crate) async fn sync_from(
        &self,
        store: &dyn Store,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let after = self.cursor.load(Ordering::Relaxed);
            let page = store.revocations_after(after, now, 1000).await?;
            let len = page.len();
            total += len;
            self.apply(page);
            if len < 1000 {
                return Ok(total);
            }
        }
    }

    /// The instant after which the session `sid` no longer counts as revoked here.
    #[cfg(test)]
    pub(crate) fn session_revoked_until(&self, sid: SessionId) -> Option<Timestamp> {
        self.sessions.read().ok()?.get(&sid).copied()
    }

    /// Drop entries whose tokens have all expired.
    pub(crate) fn purge(&self, now: Timestamp) {
        if let Ok(mut map) = self.tokens.write() {
            map.retain(|_, until| *until > now);
        }
        if let Ok(mut map) = self.sessions.write() {
            map.retain(|_, until| *until > now);
        }
    }
}

fn keep_later(current: &mut Timestamp, until: Timestamp) {
    if until > *current {
        *current = until;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_insert_never_shortens_or_lifts_a_revocation() {
        let cache = RevocationCache::default();
        let sid = SessionId::generate();
        let later = Timestamp::from_unix_millis(2_000_000);
        let earlier = Timestamp::from_unix_millis(1_000_000);
        cache.insert(Revoked::Session(sid), later);
        cache.insert(Revoked::Session(sid), Timestamp::from_unix_millis(0));
        cache.insert(Revoked::Session(sid), earlier);
        assert_eq!(cache.session_revoked_until(sid), Some(later));
        cache.purge(earlier);
        assert!(
            cache.is_revoked("any", Some(sid)),
            "still revoked after a purge at `earlier`"
        );

        cache.insert(Revoked::AccessToken("j".into()), later);
        cache.insert(
            Revoked::AccessToken("j".into()),
            Timestamp::from_unix_millis(0),
        );
        cache.purge(earlier);
        assert!(cache.is_revoked("j", None));

        let extended = Timestamp::from_unix_millis(3_000_000);
        cache.insert(Revoked::Session(sid), extended);
        assert_eq!(
            cache.session_revoked_until(sid),
            Some(extended),
            "can be extended"
        );
    }
}
