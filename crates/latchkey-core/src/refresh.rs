//! Refresh tokens: opaque strings of which the store keeps only a keyed hash.
//!
//! A token is its *locator* (its session and generation, not secret: the session id is
//! the access token's `sid`) followed by 256 secret bits. The store finds a presented
//! token by its locator, next to the rest of its family, and accepts it only if the
//! keyed hash of the whole token matches the stored one. Tokens issued before locators
//! existed (32 bytes, no locator) are still found by their hash alone until they expire.
//!
//! A successor is *derived* from the token it replaces with a server-side key, so a late
//! caller that presents a just-spent token within the grace window can be handed the very
//! same successor again although the store never held it in clear.

use std::fmt;

use aws_lc_rs::{hkdf, hmac, rand};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

use crate::ids::SessionId;

/// Bytes of secret randomness in a refresh token (256 bits).
pub const REFRESH_TOKEN_SECRET_BYTES: usize = 32;

/// Bytes of a locator: the session's UUID and the generation (big-endian `u32`).
const LOCATOR_BYTES: usize = 16 + 4;

/// Where a refresh token sits in the store: its session and its place in the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenLocator {
    /// The session (family) the token belongs to.
    pub session_id: SessionId,
    /// The token's generation: the login token is 0, each rotation adds one.
    pub generation: u32,
}

impl TokenLocator {
    fn to_bytes(self) -> [u8; LOCATOR_BYTES] {
        let mut bytes = [0u8; LOCATOR_BYTES];
        bytes[..16].copy_from_slice(self.session_id.as_uuid().as_bytes());
        bytes[16..].copy_from_slice(&self.generation.to_be_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let uuid = Uuid::from_slice(bytes.get(..16)?).ok()?;
        let generation = u32::from_be_bytes(bytes.get(16..LOCATOR_BYTES)?.try_into().ok()?);
        Some(Self {
            session_id: SessionId::from(uuid),
            generation,
        })
    }
}

/// A refresh token as handed to a client. Its `Debug` shows only a short prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    text: String,
    locator: Option<TokenLocator>,
}

impl RefreshToken {
    /// Accept a token presented by a client. Anything that cannot be one of ours
    /// (wrong length or alphabet) is refused here, before any lookup.
    pub fn parse(raw: &str) -> Option<Self> {
        let decoded = URL_SAFE_NO_PAD.decode(raw).ok()?;
        let locator = match decoded.len() {
            n if n == LOCATOR_BYTES + REFRESH_TOKEN_SECRET_BYTES => {
                Some(TokenLocator::from_bytes(&decoded)?)
            }
            // Issued before tokens carried a locator.
            REFRESH_TOKEN_SECRET_BYTES => None,
            _ => return None,
        };
        Some(Self {
            text: raw.to_owned(),
            locator,
        })
    }

    /// A token at `locator` with this secret part.
    fn located(locator: TokenLocator, secret: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(LOCATOR_BYTES + secret.len());
        bytes.extend_from_slice(&locator.to_bytes());
        bytes.extend_from_slice(secret);
        Self {
            text: URL_SAFE_NO_PAD.encode(bytes),
            locator: Some(locator),
        }
    }

    /// The token text, to send to the client.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// Where the token claims to sit in the store; `None` for a token issued before
    /// tokens carried a locator.
    pub fn locator(&self) -> Option<TokenLocator> {
        self.locator
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.locator {
            Some(at) => write!(f, "RefreshToken({}#{}, …)", at.session_id, at.generation),
            None => f.write_str("RefreshToken(…)"),
        }
    }
}

/// The keyed hash under which the store knows a refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefreshTokenHash([u8; 32]);

impl RefreshTokenHash {
    /// A hash read back from the store.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The hash bytes, to store or look up.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// How the store finds a presented token: at its locator if it has one, else by hash;
/// either way the stored hash must equal `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenLookup {
    /// Where the token claims to sit.
    pub locator: Option<TokenLocator>,
    /// Its keyed hash.
    pub hash: RefreshTokenHash,
}

/// Why the refresh-token key material could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("refresh token key material must be at least 32 bytes")]
pub struct WeakRefreshSecret;

/// The server-side keys for refresh tokens, derived from one master secret that is kept
/// apart from the access-token signing keys.
pub struct RefreshKeys {
    hash_key: hmac::Key,
    successor_key: hmac::Key,
}

impl fmt::Debug for RefreshKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshKeys(<redacted>)")
    }
}

struct HmacKeyLen;

impl hkdf::KeyType for HmacKeyLen {
    fn len(&self) -> usize {
        32
    }
}

fn derive_hmac_key(prk: &hkdf::Prk, label: &'static [u8]) -> hmac::Key {
    let mut bytes = [0u8; 32];
    let info = [label];
    // Expanding 32 bytes from HKDF-SHA256 cannot fail (the limit is 255 * 32 bytes).
    if let Ok(okm) = prk.expand(&info, HmacKeyLen) {
        let _ = okm.fill(&mut bytes);
    }
    hmac::Key::new(hmac::HMAC_SHA256, &bytes)
}

impl RefreshKeys {
    /// Fresh random master secret, to be persisted by the caller.
    pub fn generate_master_secret() -> Vec<u8> {
        let mut secret = vec![0u8; 32];
        fill_random(&mut secret);
        secret
    }

    /// Derive the hashing and successor keys from the master secret.
    pub fn from_master_secret(master: &[u8]) -> Result<Self, WeakRefreshSecret> {
        if master.len() < 32 {
            return Err(WeakRefreshSecret);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"latchkey refresh v1").extract(master);
        Ok(Self {
            hash_key: derive_hmac_key(&prk, b"refresh-token-hash"),
            successor_key: derive_hmac_key(&prk, b"refresh-token-successor"),
        })
    }

    /// The first token of a new session (login): generation 0, a random secret.
    pub fn new_token(&self, session_id: SessionId) -> RefreshToken {
        let mut secret = [0u8; REFRESH_TOKEN_SECRET_BYTES];
        fill_random(&mut secret);
        let at = TokenLocator {
            session_id,
            generation: 0,
        };
        RefreshToken::located(at, &secret)
    }

    /// The successor of `token`, to sit at `at`: the same every time for the same token.
    pub fn successor(&self, token: &RefreshToken, at: TokenLocator) -> RefreshToken {
        let tag = hmac::sign(&self.successor_key, token.text.as_bytes());
        RefreshToken::located(at, tag.as_ref())
    }

    /// The keyed hash the store knows `token` by: of the whole token, locator included,
    /// so a token whose locator was changed matches nothing.
    pub fn hash(&self, token: &RefreshToken) -> RefreshTokenHash {
        let tag = hmac::sign(&self.hash_key, token.text.as_bytes());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(tag.as_ref());
        RefreshTokenHash(bytes)
    }

    /// How the store finds `token`.
    pub fn lookup(&self, token: &RefreshToken) -> RefreshTokenLookup {
        RefreshTokenLookup {
            locator: token.locator,
            hash: self.hash(token),
        }
    }
}

/// Fill `bytes` from the system's secure random source.
///
/// If the OS random source fails there is no safe way on: a token or secret made without
/// it could be guessed, so this aborts the request (the task panics) rather than return one.
#[allow(clippy::panic)]
fn fill_random(bytes: &mut [u8]) {
    if rand::fill(bytes).is_err() {
        panic!("the system random number generator failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> RefreshKeys {
        RefreshKeys::from_master_secret(&[7u8; 32]).unwrap()
    }

    fn at(session_id: SessionId, generation: u32) -> TokenLocator {
        TokenLocator {
            session_id,
            generation,
        }
    }

    #[test]
    fn a_new_token_is_base64url_with_its_locator_and_256_secret_bits() {
        let keys = keys();
        let sid = SessionId::generate();
        let a = keys.new_token(sid);
        let b = keys.new_token(sid);
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 70);
        let parsed = RefreshToken::parse(a.expose()).unwrap();
        assert_eq!(parsed, a);
        assert_eq!(parsed.locator(), Some(at(sid, 0)));
    }

    #[test]
    fn successor_is_deterministic_and_sits_where_it_is_told() {
        let keys = keys();
        let sid = SessionId::generate();
        let t = keys.new_token(sid);
        let next = keys.successor(&t, at(sid, 1));
        assert_eq!(next, keys.successor(&t, at(sid, 1)));
        assert_ne!(next, t);
        let parsed = RefreshToken::parse(next.expose()).unwrap();
        assert_eq!(parsed.locator(), Some(at(sid, 1)));
        assert_eq!(
            keys.successor(&next, at(sid, u32::MAX)).locator(),
            Some(at(sid, u32::MAX))
        );
    }

    #[test]
    fn a_token_from_before_locators_parses_without_one() {
        let legacy = URL_SAFE_NO_PAD.encode([9u8; 32]);
        let token = RefreshToken::parse(&legacy).unwrap();
        assert_eq!(token.locator(), None);
        assert_eq!(keys().lookup(&token).locator, None);
        let sid = SessionId::generate();
        let next = keys().successor(&token, at(sid, 4));
        assert_eq!(next.locator(), Some(at(sid, 4)));
    }

    #[test]
    fn hash_covers_the_locator_and_depends_on_the_key() {
        let keys = keys();
        let t = keys.new_token(SessionId::generate());
        let other = RefreshKeys::from_master_secret(&[8u8; 32]).unwrap();
        assert_ne!(keys.hash(&t), other.hash(&t));
        assert_eq!(keys.hash(&t), keys.hash(&t));
        // The same secret moved to another place is another token.
        let mut bytes = URL_SAFE_NO_PAD.decode(t.expose()).unwrap();
        bytes[19] ^= 1;
        let moved = RefreshToken::parse(&URL_SAFE_NO_PAD.encode(bytes)).unwrap();
        assert_eq!(moved.locator().unwrap().generation, 1);
        assert_ne!(keys.hash(&moved), keys.hash(&t));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert!(RefreshToken::parse("").is_none());
        assert!(RefreshToken::parse("abc").is_none());
        assert!(RefreshToken::parse(&"A".repeat(44)).is_none());
        assert!(RefreshToken::parse(&"A".repeat(71)).is_none());
        assert!(RefreshToken::parse(&URL_SAFE_NO_PAD.encode([1u8; 51])).is_none());
        assert!(RefreshToken::parse("eyJhbGciOiJFZERTQSJ9.e30.sig").is_none());
    }

    #[test]
    fn short_master_secret_is_refused() {
        assert!(RefreshKeys::from_master_secret(&[1u8; 31]).is_err());
    }

    #[test]
    fn debug_does_not_reveal_the_secret_part() {
        let t = keys().new_token(SessionId::generate());
        let shown = format!("{t:?}");
        assert!(!shown.contains(&t.expose()[27..]), "{shown}");
        assert!(!shown.contains(&t.expose()[..27]), "{shown}");
    }
}
