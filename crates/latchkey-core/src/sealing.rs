//! Private signing keys sealed at rest: AES-256-GCM under a key derived (HKDF-SHA256)
//! from a secret kept outside the database, so a copy of the database alone cannot sign
//! tokens.
//!
//! A sealed key is stored as `MAGIC || nonce (12 bytes) || ciphertext+tag`, with the key's
//! `kid` as additional data: a sealed key moved under another `kid` does not open. Keys
//! stored before sealing existed are plain PKCS#8 DER (or a raw HS256 secret), which never
//! start with `MAGIC`.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::{hkdf, rand};

/// The first bytes of every sealed key.
const MAGIC: &[u8] = b"lk-sealed-v1:";

/// Why a stored key could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key is sealed and no sealing secret is configured.
    #[error("the signing keys are sealed; configure the master secret that sealed them")]
    SecretMissing,
    /// The key does not open with this secret (another secret, or altered data).
    #[error("a signing key does not open with the configured master secret")]
    WrongSecret,
    /// The secret is shorter than 32 bytes.
    #[error("the master secret must be at least 32 bytes")]
    WeakSecret,
    /// The random source failed.
    #[error("the random source failed")]
    Random,
}

/// Seals and opens private keys.
pub struct KeySealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySealer(<redacted>)")
    }
}

struct Aes256KeyLen;

impl hkdf::KeyType for Aes256KeyLen {
    fn len(&self) -> usize {
        32
    }
}

impl KeySealer {
    /// A sealer from the master secret (at least 32 bytes).
    pub fn from_secret(secret: &[u8]) -> Result<Self, SealError> {
        if secret.len() < 32 {
            return Err(SealError::WeakSecret);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"latchkey key sealing v1").extract(secret);
        let mut bytes = [0u8; 32];
        prk.expand(&[b"signing-keys"], Aes256KeyLen)
            .and_then(|okm| okm.fill(&mut bytes))
            .map_err(|_| SealError::WeakSecret)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::WeakSecret)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Whether stored key material is sealed.
    pub fn is_sealed(stored: &[u8]) -> bool {
        stored.starts_with(MAGIC)
    }

    /// Seal `private_key` of key `kid`.
    pub fn seal(&self, kid: &str, private_key: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut sealed = private_key.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Open the stored material of key `kid`; plain (never sealed) material is returned
    /// as it is.
    pub fn open(sealer: Option<&Self>, kid: &str, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(rest) = stored.strip_prefix(MAGIC) else {
            return Ok(stored.to_vec());
        };
        let sealer = sealer.ok_or(SealError::SecretMissing)?;
        if rest.len() < NONCE_LEN {
            return Err(SealError::WrongSecret);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::WrongSecret)?;
        let mut buffer = ciphertext.to_vec();
        let plain = sealer
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer)
            .map_err(|_| SealError::WrongSecret)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn sealed_keys_open_only_with_their_secret_and_kid() {
        let sealer = KeySealer::from_secret(SECRET).unwrap();
        let sealed = sealer.seal("kid-1", b"private key bytes").unwrap();
        assert!(KeySealer::is_sealed(&sealed));
        assert!(!sealed.windows(17).any(|w| w == b"private key bytes"));
        assert_eq!(
            KeySealer::open(Some(&sealer), "kid-1", &sealed).unwrap(),
            b"private key bytes"
        );
        assert_eq!(
            KeySealer::open(Some(&sealer), "kid-2", &sealed),
            Err(SealError::WrongSecret)
        );
        let other = KeySealer::from_secret(b"another secret of thirty-two bytes!").unwrap();
        assert_eq!(
            KeySealer::open(Some(&other), "kid-1", &sealed),
            Err(SealError::WrongSecret)
        );
        assert_eq!(
            KeySealer::open(None, "kid-1", &sealed),
            Err(SealError::SecretMissing)
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(
            KeySealer::open(Some(&sealer), "kid-1", &altered),
            Err(SealError::WrongSecret)
        );
    }

    #[test]
    fn plain_keys_pass_through_and_short_secrets_are_refused() {
        assert_eq!(
            KeySealer::open(None, "k", b"\x30\x2e plain der").unwrap(),
            b"\x30\x2e plain der"
        );
        assert_eq!(
            KeySealer::from_secret(b"too short").unwrap_err(),
            SealError::WeakSecret
        );
        let sealer = KeySealer::from_secret(SECRET).unwrap();
        assert_ne!(
            sealer.seal("k", b"x").unwrap(),
            sealer.seal("k", b"x").unwrap()
        );
        assert!(format!("{sealer:?}").contains("redacted"));
    }
}
