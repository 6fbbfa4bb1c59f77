//! Signing keys and the key ring: the active key signs access tokens, every key still
//! in the ring verifies them, and the public halves are served as the JWKS.
//!
//! A rotation adds a key and retires the previous one for signing; the retired key stays
//! in the ring (and the JWKS) until every token it signed has expired, so a rotation logs
//! nobody out.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{self, SystemRandom};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256,
};
use aws_lc_rs::{hmac, rsa};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_verify::{AccessClaims, Algorithm, Jwk, Jwks, KeySet, VerificationKey};

use crate::store::StoredSigningKey;
use crate::time::Timestamp;

/// Why key material could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The stored algorithm name is unknown.
    #[error("unknown signing algorithm {0:?}")]
    UnknownAlgorithm(String),
    /// Stored private key material did not parse.
    #[error("signing key {kid} is corrupt")]
    Corrupt {
        /// The key's id.
        kid: String,
    },
    /// The crypto library failed to generate or sign.
    #[error("the crypto library failed: {0}")]
    Crypto(&'static str),
    /// The ring has no active signing key.
    #[error("no active signing key")]
    NoActiveKey,
}

#[allow(clippy::large_enum_variant)] // one per key, a few per process: boxing buys nothing
enum Signer {
    Ed25519(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    Hs256 { key: hmac::Key, secret: Vec<u8> },
}

/// A private key that signs access tokens with one algorithm.
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    signer: Signer,
    /// `base64url(header) + "."`, computed once.
    header_prefix: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn random_kid() -> Result<String, KeyError> {
    let mut bytes = [0u8; 12];
    rand::fill(&mut bytes).map_err(|_| KeyError::Crypto("random"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl Signer {
    fn hs256(secret: &[u8]) -> Self {
        Self::Hs256 {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            secret: secret.to_vec(),
        }
    }
}

impl SigningKey {
    /// Make a new key for `algorithm` with a random `kid`, returned ready to be stored.
    pub fn generate(algorithm: Algorithm, now: Timestamp) -> Result<StoredSigningKey, KeyError> {
        let rng = SystemRandom::new();
        let private_key = match algorithm {
            Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError::Crypto("Ed25519 key generation"))?
                .as_ref()
                .to_vec(),
            Algorithm::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyError::Crypto("P-256 key generation"))?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::generate(rsa::KeySize::Rsa2048)
                    .map_err(|_| KeyError::Crypto("RSA key generation"))?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair
                    .as_der()
                    .map_err(|_| KeyError::Crypto("RSA key encoding"))?;
                der.as_ref().to_vec()
            }
            Algorithm::HS256 => {
                let mut secret = vec![0u8; 32];
                rand::fill(&mut secret).map_err(|_| KeyError::Crypto("random"))?;
                secret
            }
        };
        Ok(StoredSigningKey {
            kid: random_kid()?,
            algorithm: algorithm.as_str().to_owned(),
            private_key,
            created_at: now,
            retired_at: None,
        })
    }

    /// Load a stored key.
    pub fn from_stored(stored: &StoredSigningKey) -> Result<Self, KeyError> {
        let algorithm: Algorithm = stored
            .algorithm
            .parse()
            .map_err(|_| KeyError::UnknownAlgorithm(stored.algorithm.clone()))?;
        let corrupt = || KeyError::Corrupt {
            kid: stored.kid.clone(),
        };
        let der = stored.private_key.as_slice();
        let signer = match algorithm {
            Algorithm::EdDSA => {
                Signer::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(|_| corrupt())?)
            }
            Algorithm::ES256 => Signer::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| corrupt())?,
            ),
            Algorithm::RS256 => Signer::Rs256(RsaKeyPair::from_pkcs8(der).map_err(|_| corrupt())?),
            Algorithm::HS256 if der.len() >= 32 => Signer::hs256(der),
            Algorithm::HS256 => return Err(corrupt()),
        };
        Ok(Self::new(stored.kid.clone(), algorithm, signer))
    }

    /// An HS256 key from a configured shared secret (at least 32 bytes). Its `kid` is
    /// derived from the secret so that every replica configured alike agrees on it.
    pub fn hs256_from_secret(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::Crypto("HS256 secrets must be at least 32 bytes"));
        }
        let signer = Signer::hs256(secret);
        let Signer::Hs256 { key, .. } = &signer else {
            return Err(KeyError::Crypto("HS256"));
        };
        let kid = URL_SAFE_NO_PAD.encode(&hmac::sign(key, b"latchkey kid").as_ref()[..12]);
        Ok(Self::new(kid, Algorithm::HS256, signer))
    }

    fn new(kid: String, algorithm: Algorithm, signer: Signer) -> Self {
        let header = serde_json::json!({ "alg": algorithm.as_str(), "typ": "at+jwt", "kid": kid });
        let header_prefix = format!("{}.", URL_SAFE_NO_PAD.encode(header.to_string()));
        Self {
            kid,
            algorithm,
            signer,
            header_prefix,
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Sign `claims` as a compact JWS with header `{alg, typ: "at+jwt", kid}`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        let payload =
            serde_json::to_vec(claims).map_err(|_| KeyError::Crypto("claims encoding"))?;
        let mut token = String::with_capacity(self.header_prefix.len() + payload.len() * 2 + 350);
        token.push_str(&self.header_prefix);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.sign_bytes(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        Ok(match &self.signer {
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Es256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map_err(|_| KeyError::Crypto("ES256 signing"))?
                .as_ref()
                .to_vec(),
            Signer::Rs256(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(|_| KeyError::Crypto("RS256 signing"))?;
                signature
            }
            Signer::Hs256 { key, .. } => hmac::sign(key, message).as_ref().to_vec(),
        })
    }

    /// The public key as a JWK, or `None` for HS256 (a shared secret is never published).
    pub fn public_jwk(&self) -> Option<Jwk> {
        let base = Jwk {
            kid: Some(self.kid.clone()),
            alg: Some(self.algorithm.as_str().to_owned()),
            use_: Some("sig".to_owned()),
            ..Jwk::default()
        };
        match &self.signer {
            Signer::Ed25519(pair) => Some(Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())),
                ..base
            }),
            Signer::Es256(pair) => {
                let point = pair.public_key().as_ref();
                let (x, y) = point.get(1..33).zip(point.get(33..65))?;
                Some(Jwk {
                    kty: "EC".into(),
                    crv: Some("P-256".into()),
                    x: Some(URL_SAFE_NO_PAD.encode(x)),
                    y: Some(URL_SAFE_NO_PAD.encode(y)),
                    ..base
                })
            }
            Signer::Rs256(pair) => {
                let components = aws_lc_rs::signature::RsaPublicKeyComponents::<Vec<u8>>::from(
                    pair.public_key(),
                );
                Some(Jwk {
                    kty: "RSA".into(),
                    n: Some(URL_SAFE_NO_PAD.encode(&components.n)),
                    e: Some(URL_SAFE_NO_PAD.encode(&components.e)),
                    ..base
                })
            }
            Signer::Hs256 { .. } => None,
        }
    }

    /// The key that checks this key's signatures.
    pub fn verification_key(&self) -> Result<VerificationKey, KeyError> {
        let unusable = |_| KeyError::Corrupt {
            kid: self.kid.clone(),
        };
        match &self.signer {
            Signer::Hs256 { secret, .. } => {
                VerificationKey::hs256(self.kid.clone(), secret).map_err(unusable)
            }
            _ => self
                .public_jwk()
                .ok_or(KeyError::Crypto("public key"))
                .and_then(|jwk| VerificationKey::from_jwk(&jwk).map_err(unusable)),
        }
    }
}

/// The server's keys: the active signing key, every key that still verifies, and the
/// JWKS to publish. Immutable; a reload builds a new ring.
#[derive(Debug)]
pub struct KeyRing {
    active: SigningKey,
    verification: KeySet,
    jwks: Jwks,
    /// The `kid` of every key that verifies, sorted.
    kids: Vec<String>,
}

impl KeyRing {
    /// Build the ring from stored keys: the newest unretired one signs, all verify.
    pub fn from_stored(stored: &[StoredSigningKey]) -> Result<Self, KeyError> {
        let active_kid = stored
            .iter()
            .filter(|k| k.retired_at.is_none())
            .max_by_key(|k| k.created_at)
            .map(|k| k.kid.as_str())
            .ok_or(KeyError::NoActiveKey)?;
        let mut keys = stored
            .iter()
            .map(SigningKey::from_stored)
            .collect::<Result<Vec<_>, _>>()?;
        let position = keys
            .iter()
            .position(|k| k.kid == active_kid)
            .ok_or(KeyError::NoActiveKey)?;
        let active = keys.swap_remove(position);
        Self::build(active, keys)
    }

    /// A ring whose active key is `active` (a configured HS256 secret), with the stored
    /// keys `others` still verifying.
    pub fn with_active(active: SigningKey, others: &[StoredSigningKey]) -> Result<Self, KeyError> {
        let keys = others
            .iter()
            .map(SigningKey::from_stored)
            .collect::<Result<Vec<_>, _>>()?;
        Self::build(active, keys)
    }

    fn build(active: SigningKey, others: Vec<SigningKey>) -> Result<Self, KeyError> {
        let mut verification = KeySet::new();
        let mut jwks = Jwks::default();
        let mut kids = Vec::with_capacity(others.len() + 1);
        for key in std::iter::once(&active).chain(others.iter()) {
            jwks.keys.extend(key.public_jwk());
            verification.insert(key.verification_key()?);
            kids.push(key.kid.clone());
        }
        kids.sort();
        Ok(Self {
            active,
            verification,
            jwks,
            kids,
        })
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// The keys that verify tokens.
    pub fn verification_keys(&self) -> &KeySet {
        &self.verification
    }

    /// The `kid` of every key that verifies (the active one included), sorted: two rings
    /// with the same kids accept the same tokens.
    pub fn kids(&self) -> &[String] {
        &self.kids
    }

    /// The public keys to serve at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_verify::{verify_access_token, Validation};
    use std::time::Duration;

    const NOW: i64 = 1_800_000_000;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://auth.test".into(),
            sub: "user-1".into(),
            aud: vec!["api".into()],
            sid: "session-1".into(),
            roles: vec!["user".into()],
            iat: NOW,
            exp: NOW + 900,
            nbf: None,
            email_verified: None,
            jti: "jti-1".into(),
            amr: Vec::new(),
            auth_time: None,
        }
    }

    fn validation() -> Validation {
        Validation {
            issuer: "https://auth.test".into(),
            audience: "api".into(),
            leeway: Duration::from_secs(30),
            max_lifetime: None,
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    #[test]
    fn every_algorithm_signs_what_its_ring_verifies() {
        for algorithm in [
            Algorithm::EdDSA,
            Algorithm::ES256,
            Algorithm::RS256,
            Algorithm::HS256,
        ] {
            let stored = SigningKey::generate(algorithm, at(NOW)).unwrap();
            let ring = KeyRing::from_stored(std::slice::from_ref(&stored)).unwrap();
            let token = ring.active().sign(&claims()).unwrap();
            let verified =
                verify_access_token(&token, ring.verification_keys(), &validation(), NOW);
            assert_eq!(verified.unwrap(), claims(), "{algorithm}");
            let published = ring.jwks().keys.len();
            assert_eq!(
                published,
                usize::from(algorithm != Algorithm::HS256),
                "{algorithm}"
            );
            // The public JWKS alone verifies asymmetric tokens, as a resource service would.
            if algorithm != Algorithm::HS256 {
                let keys = KeySet::from_jwks(ring.jwks());
                assert!(verify_access_token(&token, &keys, &validation(), NOW).is_ok());
            }
        }
    }

    #[test]
    fn retired_keys_still_verify_and_the_newest_signs() {
        let mut old = SigningKey::generate(Algorithm::EdDSA, at(NOW - 60)).unwrap();
        let old_ring = KeyRing::from_stored(std::slice::from_ref(&old)).unwrap();
        let old_token = old_ring.active().sign(&claims()).unwrap();
        old.retired_at = Some(at(NOW));
        let new = SigningKey::generate(Algorithm::ES256, at(NOW)).unwrap();
        let ring = KeyRing::from_stored(&[old.clone(), new.clone()]).unwrap();
        assert_eq!(ring.active().kid(), new.kid);
        assert_eq!(ring.jwks().keys.len(), 2);
        let mut kids = vec![old.kid.clone(), new.kid.clone()];
        kids.sort();
        assert_eq!(ring.kids(), kids.as_slice());
        assert_eq!(old_ring.kids(), std::slice::from_ref(&old.kid));
        assert!(
            verify_access_token(&old_token, ring.verification_keys(), &validation(), NOW).is_ok()
        );
    }

    #[test]
    fn stored_keys_round_trip() {
        let stored = SigningKey::generate(Algorithm::RS256, at(NOW)).unwrap();
        let a = KeyRing::from_stored(std::slice::from_ref(&stored)).unwrap();
        let b = KeyRing::from_stored(std::slice::from_ref(&stored)).unwrap();
        assert_eq!(a.jwks(), b.jwks());
    }

    #[test]
    fn corrupt_or_unknown_keys_are_errors_not_panics() {
        let mut stored = SigningKey::generate(Algorithm::EdDSA, at(NOW)).unwrap();
        stored.private_key.truncate(10);
        assert!(matches!(
            KeyRing::from_stored(&[stored.clone()]),
            Err(KeyError::Corrupt { .. })
        ));
        stored.algorithm = "none".into();
        assert!(matches!(
            KeyRing::from_stored(&[stored]),
            Err(KeyError::UnknownAlgorithm(_))
        ));
        assert!(matches!(
            KeyRing::from_stored(&[]),
            Err(KeyError::NoActiveKey)
        ));
    }

    #[test]
    fn configured_hs256_secret_has_a_stable_kid_and_refuses_short_secrets() {
        let a = SigningKey::hs256_from_secret(&[9u8; 32]).unwrap();
        let b = SigningKey::hs256_from_secret(&[9u8; 32]).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert!(SigningKey::hs256_from_secret(&[9u8; 31]).is_err());
        let ring = KeyRing::with_active(a, &[]).unwrap();
        let token = ring.active().sign(&claims()).unwrap();
        assert!(verify_access_token(&token, ring.verification_keys(), &validation(), NOW).is_ok());
        assert!(ring.jwks().keys.is_empty());
    }
}
