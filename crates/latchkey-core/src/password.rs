//! Password hashing with Argon2id.
//!
//! Verification of an unknown user's login runs against a dummy hash with the same
//! parameters, so the answer takes as long as for a wrong password.
//!
//! Argon2's working memory (19 MiB at OWASP cost) is a [`HashMemory`] that the caller
//! keeps and reuses, so a server's memory stays at one buffer per hashing thread instead
//! of growing with every allocator arena that ever ran a hash.

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use aws_lc_rs::{constant_time, rand};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

pub use crate::model::normalise;
use crate::model::Password;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl HashCost {
    /// OWASP's recommendation for Argon2id: 19 MiB, 2 passes, 1 lane.
    pub const OWASP: Self = Self {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
}

/// Why hashing failed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The cost parameters are out of Argon2's range.
    #[error("invalid Argon2 parameters: {0}")]
    Parameters(String),
    /// Hashing failed (random source or Argon2 itself).
    #[error("password hashing failed")]
    Hashing,
}

/// Argon2 working memory, reused from one hash to the next.
pub struct HashMemory(Vec<Block>);

impl std::fmt::Debug for HashMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashMemory({} KiB)", self.0.len())
    }
}

impl HashMemory {
    fn with_blocks(blocks: usize) -> Self {
        Self(vec![Block::default(); blocks])
    }

    /// Memory enough for hashes of `cost`.
    pub fn for_cost(cost: HashCost) -> Self {
        Self::with_blocks(cost.memory_kib as usize)
    }

    /// At least `blocks` blocks, growing (once) if a stored hash asks for more.
    fn at_least(&mut self, blocks: usize) -> &mut [Block] {
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::default());
        }
        &mut self.0
    }
}

/// Bytes of the hash output, as the PHC default.
const OUTPUT_BYTES: usize = 32;

/// Hashes and verifies passwords. Cheap to clone; hashing is CPU-bound and should run
/// off the async runtime.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    cost: HashCost,
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with these costs. Computes the dummy hash once (one full hash).
    pub fn new(cost: HashCost) -> Result<Self, PasswordError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| PasswordError::Parameters(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self {
            argon2,
            cost,
            dummy_hash: String::new(),
        };
        let mut memory = HashMemory::for_cost(cost);
        hasher.dummy_hash =
            hasher.hash_bytes(b"latchkey dummy password for unknown users", &mut memory)?;
        Ok(hasher)
    }

    /// Working memory sized for this hasher's cost.
    pub fn new_memory(&self) -> HashMemory {
        HashMemory::for_cost(self.cost)
    }

    /// Hash a new password into a PHC string (`$argon2id$v=19$m=...`).
    pub fn hash(
        &self,
        password: &Password,
        memory: &mut HashMemory,
    ) -> Result<String, PasswordError> {
        self.hash_bytes(password.expose(), memory)
    }

    fn hash_bytes(
        &self,
        password: &[u8],
        memory: &mut HashMemory,
    ) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        rand::fill(&mut salt).map_err(|_| PasswordError::Hashing)?;
        let mut out = [0u8; OUTPUT_BYTES];
        let blocks = memory.at_least(self.cost.memory_kib as usize);
        self.argon2
            .hash_password_into_with_memory(password, &salt, &mut out, blocks)
            .map_err(|_| PasswordError::Hashing)?;
        let HashCost {
            memory_kib,
            iterations,
            parallelism,
        } = self.cost;
        Ok(format!(
            "$argon2id$v=19$m={memory_kib},t={iterations},p={parallelism}${}${}",
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(out)
        ))
    }

    /// Whether `password`, as typed at login, matches `stored`. With `stored = None`
    /// (unknown user) the same work is done against a dummy hash and the answer is
    /// `false`. A stored hash made with other costs is checked with its own costs.
    ///
    /// UTF-8 text is first brought to the form [`Password`] hashes (NFKC, see
    /// [`normalise`]), so callers pass the password exactly as received. When that form
    /// differs from the typed bytes and does not match, the typed bytes are tried too:
    /// hashes stored before passwords were normalised were made from them. Whether that
    /// second hash runs depends only on the typed text, never on whether the account
    /// exists.
    pub fn verify(&self, password: &[u8], stored: Option<&str>, memory: &mut HashMemory) -> bool {
        let (hash_text, real) = match stored {
            Some(hash) => (hash, true),
            None => (self.dummy_hash.as_str(), false),
        };
        let normalised = std::str::from_utf8(password)
            .ok()
            .map(normalise)
            .filter(|form| form.as_bytes() != password);
        let matches = match normalised {
            None => verify_phc(password, hash_text, memory).unwrap_or(false),
            Some(form) => {
                verify_phc(form.as_bytes(), hash_text, memory).unwrap_or(false)
                    || verify_phc(password, hash_text, memory).unwrap_or(false)
            }
        };
        matches && real
    }
}

/// Check `password` against an Argon2 PHC string, in `memory`.
fn verify_phc(password: &[u8], phc: &str, memory: &mut HashMemory) -> Option<bool> {
    let parsed = PasswordHash::new(phc).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = Version::try_from(parsed.version.unwrap_or(0x13)).ok()?;
    let params = Params::try_from(&parsed).ok()?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let expected = parsed.hash?;
    let mut out = vec![0u8; expected.len()];
    let blocks = memory.at_least(params.m_cost() as usize);
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, blocks)
        .ok()?;
    Some(constant_time::verify_slices_are_equal(&out, expected.as_bytes()).is_ok())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};

    const CHEAP: HashCost = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn cheap() -> (PasswordHasher, HashMemory) {
        (
            PasswordHasher::new(CHEAP).unwrap(),
            HashMemory::for_cost(CHEAP),
        )
    }

    fn password(text: &str) -> Password {
        Password::parse(text.into()).unwrap()
    }

    #[test]
    fn hash_then_verify() {
        let (hasher, mut memory) = cheap();
        let hash = hasher
            .hash(&password("correct horse"), &mut memory)
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(hasher.verify(b"correct horse", Some(&hash), &mut memory));
        assert!(!hasher.verify(b"wrong horse", Some(&hash), &mut memory));
    }

    #[test]
    fn hashes_are_standard_phc_both_ways() {
        let (hasher, mut memory) = cheap();
        let ours = hasher
            .hash(&password("correct horse"), &mut memory)
            .unwrap();
        let argon2 = Argon2::default();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2.verify_password(b"correct horse", &parsed).is_ok());
        // A hash made elsewhere, with other costs, verifies with its own costs.
        let salt = SaltString::encode_b64(&[5u8; 16]).unwrap();
        let theirs = argon2
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(hasher.verify(b"correct horse", Some(&theirs), &mut memory));
        assert!(!hasher.verify(b"correct horsE", Some(&theirs), &mut memory));
    }

    #[test]
    fn login_text_is_normalised_like_the_stored_password() {
        let (hasher, mut memory) = cheap();
        let hash = hasher
            .hash(&password("ｃｏｒｒｅｃｔ ｈｏｒｓｅ"), &mut memory)
            .unwrap();
        assert!(hasher.verify(b"correct horse", Some(&hash), &mut memory));
        assert!(hasher.verify(
            "ｃｏｒｒｅｃｔ ｈｏｒｓｅ".as_bytes(),
            Some(&hash),
            &mut memory
        ));
        assert!(!hasher.verify(b"correct horsE", Some(&hash), &mut memory));
        let cafe = hasher
            .hash(&password("cafe\u{301} au lait"), &mut memory)
            .unwrap();
        assert!(hasher.verify("café au lait".as_bytes(), Some(&cafe), &mut memory));
    }

    #[test]
    fn hashes_of_unnormalised_text_from_before_still_verify() {
        let (hasher, mut memory) = cheap();
        let typed = "ｃｏｒｒｅｃｔ ｈｏｒｓｅ";
        let legacy = hasher.hash_bytes(typed.as_bytes(), &mut memory).unwrap();
        assert!(hasher.verify(typed.as_bytes(), Some(&legacy), &mut memory));
        assert!(!hasher.verify(b"correct horsE", Some(&legacy), &mut memory));
    }

    #[test]
    fn normalise_borrows_text_already_in_form() {
        assert!(matches!(normalise("plain ascii"), Cow::Borrowed(_)));
        assert!(matches!(normalise("café"), Cow::Borrowed(_)));
        assert_eq!(normalise("ｃａｆｅ\u{301}"), "café");
        assert_eq!(normalise("\u{FB03}"), "ffi");
    }

    #[test]
    fn salts_differ() {
        let (hasher, mut memory) = cheap();
        let a = hasher
            .hash(&password("correct horse"), &mut memory)
            .unwrap();
        let b = hasher
            .hash(&password("correct horse"), &mut memory)
            .unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn unknown_user_never_verifies() {
        let (hasher, mut memory) = cheap();
        assert!(!hasher.verify(
            b"latchkey dummy password for unknown users",
            None,
            &mut memory
        ));
        assert!(!hasher.verify(b"anything", Some("not a phc string"), &mut memory));
        assert!(!hasher.verify(
            b"anything",
            Some("$argon2id$v=19$m=64,t=1,p=1$AAAA$AAAA"),
            &mut memory
        ));
    }

    #[test]
    fn owasp_parameters_are_recorded_in_the_hash() {
        let hasher = PasswordHasher::new(HashCost::OWASP).unwrap();
        let mut memory = hasher.new_memory();
        let hash = hasher.hash(&password("long enough"), &mut memory).unwrap();
        assert!(hash.contains("m=19456,t=2,p=1"), "{hash}");
    }
}
