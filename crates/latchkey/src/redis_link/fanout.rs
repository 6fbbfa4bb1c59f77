//! Revocation fan-out: each revocation is announced on one pub/sub channel, sealed with
//! a MAC under a key derived from the master secret, and set as a key with the
//! revocation's TTL; every replica's subscriber feeds what it hears into its cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::{hkdf, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures::StreamExt;
use latchkey_core::model::SessionId;
use latchkey_core::store::Revoked;
use latchkey_core::time::Timestamp;
use redis::AsyncCommands;
use tokio::task::JoinHandle;

use super::{RedisLink, REVOCATION_CHANNEL};
use crate::clock;
use crate::revocation::{RevocationFanout, RevocationSink};

/// At most one warning about rejected fan-out messages per this long.
const REJECT_LOG_EVERY: Duration = Duration::from_secs(10);

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

impl RedisLink {
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

    #[test]
    fn the_fanout_key_is_redacted() {
        assert_eq!(
            format!("{:?}", FanoutKey::derive(&[1u8; 32])),
            "FanoutKey(redacted)"
        );
    }
}
