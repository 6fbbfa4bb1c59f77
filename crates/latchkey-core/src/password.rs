//! Password hashing with Argon2id.
//!
//! Verification of an unknown user's login runs against a dummy hash with the same
//! parameters, so the answer takes as long as for a wrong password.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::rand;

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

/// Hashes and verifies passwords. Cheap to clone; hashing is CPU-bound and should run
/// off the async runtime.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
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
            dummy_hash: String::new(),
        };
        hasher.dummy_hash = hasher.hash_bytes(b"latchkey dummy password for unknown users")?;
        Ok(hasher)
    }

    /// Hash a new password into a PHC string (`$argon2id$v=19$m=...`).
    pub fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        self.hash_bytes(password.expose())
    }

    fn hash_bytes(&self, password: &[u8]) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        rand::fill(&mut salt).map_err(|_| PasswordError::Hashing)?;
        let salt = SaltString::encode_b64(&salt).map_err(|_| PasswordError::Hashing)?;
        self.argon2
            .hash_password(password, &salt)
            .map(|hash| hash.to_string())
            .map_err(|_| PasswordError::Hashing)
    }

    /// Whether `password` matches `stored`. With `stored = None` (unknown user) the same
    /// work is done against a dummy hash and the answer is `false`.
    pub fn verify(&self, password: &[u8], stored: Option<&str>) -> bool {
        let (hash_text, real) = match stored {
            Some(hash) => (hash, true),
            None => (self.dummy_hash.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(hash_text) else {
            return false;
        };
        self.argon2.verify_password(password, &parsed).is_ok() && real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hash_then_verify() {
        let hasher = cheap();
        let password = Password::parse("correct horse".into()).unwrap();
        let hash = hasher.hash(&password).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"));
        assert!(hasher.verify(b"correct horse", Some(&hash)));
        assert!(!hasher.verify(b"wrong horse", Some(&hash)));
    }

    #[test]
    fn salts_differ() {
        let hasher = cheap();
        let password = Password::parse("correct horse".into()).unwrap();
        assert_ne!(
            hasher.hash(&password).unwrap(),
            hasher.hash(&password).unwrap()
        );
    }

    #[test]
    fn unknown_user_never_verifies() {
        let hasher = cheap();
        assert!(!hasher.verify(b"latchkey dummy password for unknown users", None));
        assert!(!hasher.verify(b"anything", Some("not a phc string")));
    }

    #[test]
    fn owasp_parameters_are_recorded_in_the_hash() {
        let hasher = PasswordHasher::new(HashCost::OWASP).unwrap();
        let hash = hasher
            .hash(&Password::parse("long enough".into()).unwrap())
            .unwrap();
        assert!(hash.contains("m=19456,t=2,p=1"), "{hash}");
    }
}
