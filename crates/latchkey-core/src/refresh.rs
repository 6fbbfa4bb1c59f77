//! Refresh tokens: opaque random strings of which the store keeps only a keyed hash.
//!
//! A successor is *derived* from the token it replaces with a server-side key, so a late
//! caller that presents a just-spent token within the grace window can be handed the very
//! same successor again although the store never held it in clear.

use std::fmt;

use aws_lc_rs::{hkdf, hmac, rand};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Bytes of randomness in a refresh token (256 bits).
pub const REFRESH_TOKEN_BYTES: usize = 32;

/// A refresh token as handed to a client. Its `Debug` shows only a short prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// Accept a token presented by a client. Anything that cannot be one of ours
    /// (wrong length or alphabet) is refused here, before any lookup.
    pub fn parse(raw: &str) -> Option<Self> {
        let decoded = URL_SAFE_NO_PAD.decode(raw).ok()?;
        (decoded.len() == REFRESH_TOKEN_BYTES).then(|| Self(raw.to_owned()))
    }

    /// The token text, to send to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefreshToken({}…)", &self.0[..6.min(self.0.len())])
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

    /// A new random token for a new session (login).
    pub fn new_token(&self) -> RefreshToken {
        let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
        fill_random(&mut bytes);
        RefreshToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The successor of `token`: the same every time for the same token.
    pub fn successor(&self, token: &RefreshToken) -> RefreshToken {
        let tag = hmac::sign(&self.successor_key, token.0.as_bytes());
        RefreshToken(URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The keyed hash the store knows `token` by.
    pub fn hash(&self, token: &RefreshToken) -> RefreshTokenHash {
        let tag = hmac::sign(&self.hash_key, token.0.as_bytes());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(tag.as_ref());
        RefreshTokenHash(bytes)
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

    #[test]
    fn tokens_are_256_bit_base64url_and_distinct() {
        let keys = keys();
        let a = keys.new_token();
        let b = keys.new_token();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert!(RefreshToken::parse(a.expose()).is_some());
    }

    #[test]
    fn successor_is_deterministic_and_parses_as_a_token() {
        let keys = keys();
        let t = keys.new_token();
        assert_eq!(keys.successor(&t), keys.successor(&t));
        assert_ne!(keys.successor(&t), t);
        assert!(RefreshToken::parse(keys.successor(&t).expose()).is_some());
    }

    #[test]
    fn hash_depends_on_the_key() {
        let t = keys().new_token();
        let other = RefreshKeys::from_master_secret(&[8u8; 32]).unwrap();
        assert_ne!(keys().hash(&t), other.hash(&t));
        assert_eq!(keys().hash(&t), keys().hash(&t));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert!(RefreshToken::parse("").is_none());
        assert!(RefreshToken::parse("abc").is_none());
        assert!(RefreshToken::parse(&"A".repeat(44)).is_none());
        assert!(RefreshToken::parse("eyJhbGciOiJFZERTQSJ9.e30.sig").is_none());
    }

    #[test]
    fn short_master_secret_is_refused() {
        assert!(RefreshKeys::from_master_secret(&[1u8; 31]).is_err());
    }

    #[test]
    fn debug_does_not_reveal_the_token() {
        let t = keys().new_token();
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
