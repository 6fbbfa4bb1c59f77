//! JSON Web Keys: the public half of Latchkey's signing keys, as served at
//! `/.well-known/jwks.json`, and the verification keys built from them.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{
    ParsedPublicKey, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED, ED25519,
    RSA_PKCS1_2048_8192_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::algorithm::Algorithm;
use crate::error::KeyError;

/// One JSON Web Key (RFC 7517), with the members Latchkey uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Jwk {
    /// Key type: `OKP`, `EC`, `RSA` or `oct`.
    pub kty: String,
    /// Key id, matched against the JWS header's `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The one algorithm this key is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use: `sig` for Latchkey's keys.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Permitted operations, if restricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// Curve: `Ed25519` or `P-256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Public key (OKP) or x coordinate (EC), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// y coordinate (EC), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Modulus (RSA), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// Public exponent (RSA), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// The shared secret (`oct`), base64url. Never served by Latchkey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
}

/// A JWK Set, as served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

enum Verifier {
    Public(ParsedPublicKey),
    Hmac(Box<hmac::Key>),
}

/// A key that can check signatures of exactly one [`Algorithm`].
///
/// The algorithm belongs to the key, never to the token: a token whose header names
/// another algorithm is refused before any cryptography runs.
pub struct VerificationKey {
    kid: String,
    algorithm: Algorithm,
    verifier: Verifier,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn b64(value: Option<&String>, what: &'static str) -> Result<Vec<u8>, KeyError> {
    let text = value.ok_or(KeyError::Malformed(what))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| KeyError::Malformed(what))
}

impl VerificationKey {
    /// An Ed25519 (EdDSA) key from its 32 public bytes.
    pub fn ed25519(kid: impl Into<String>, public_key: &[u8]) -> Result<Self, KeyError> {
        if public_key.len() != 32 {
            return Err(KeyError::Malformed("x"));
        }
        let key =
            ParsedPublicKey::new(&ED25519, public_key).map_err(|_| KeyError::Malformed("x"))?;
        Ok(Self::public(kid, Algorithm::EdDSA, key))
    }

    /// A P-256 (ES256) key from its coordinates, 32 bytes each.
    pub fn es256(kid: impl Into<String>, x: &[u8], y: &[u8]) -> Result<Self, KeyError> {
        if x.len() != 32 || y.len() != 32 {
            return Err(KeyError::Malformed("x/y"));
        }
        let mut point = Vec::with_capacity(65);
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .map_err(|_| KeyError::Malformed("x/y"))?;
        Ok(Self::public(kid, Algorithm::ES256, key))
    }

    /// An RSA (RS256) key from its modulus and public exponent (big-endian bytes).
    /// Moduli under 2048 bits are refused.
    pub fn rs256(kid: impl Into<String>, n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let n = strip_leading_zeros(n);
        if n.len() < 256 {
            return Err(KeyError::Malformed(
                "n: RSA keys must have at least 2048 bits",
            ));
        }
        if has_roca_fingerprint(n) {
            return Err(KeyError::Malformed(
                "n: the modulus has the ROCA weakness (CVE-2017-15361)",
            ));
        }
        let components = RsaPublicKeyComponents {
            n,
            e: strip_leading_zeros(e),
        };
        let der = components
            .as_der()
            .map_err(|_| KeyError::Malformed("n/e"))?;
        let key = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der.as_ref())
            .map_err(|_| KeyError::Malformed("n/e"))?;
        Ok(Self::public(kid, Algorithm::RS256, key))
    }

    /// An HS256 key from a shared secret of at least 32 bytes.
    pub fn hs256(kid: impl Into<String>, secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::Malformed(
                "k: HS256 secrets must be at least 32 bytes",
            ));
        }
        Ok(Self {
            kid: kid.into(),
            algorithm: Algorithm::HS256,
            verifier: Verifier::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret))),
        })
    }

    fn public(kid: impl Into<String>, algorithm: Algorithm, key: ParsedPublicKey) -> Self {
        Self {
            kid: kid.into(),
            algorithm,
            verifier: Verifier::Public(key),
        }
    }

    /// A key from a JWK. The algorithm is the JWK's `alg`; a JWK without one gets the
    /// only algorithm Latchkey supports for its key type. A JWK whose `use` is not `sig`,
    /// or whose `key_ops` lack `verify`, is refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::WrongUse);
        }
        if jwk
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            return Err(KeyError::WrongUse);
        }
        let kid = jwk.kid.clone().unwrap_or_default();
        let implied = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("OKP", Some("Ed25519")) => Algorithm::EdDSA,
            ("EC", Some("P-256")) => Algorithm::ES256,
            ("RSA", _) => Algorithm::RS256,
            ("oct", _) => Algorithm::HS256,
            _ => return Err(KeyError::Unsupported),
        };
        if let Some(alg) = &jwk.alg {
            let named: Algorithm = alg.parse().map_err(|_| KeyError::Unsupported)?;
            if named != implied {
                return Err(KeyError::Unsupported);
            }
        }
        match implied {
            Algorithm::EdDSA => Self::ed25519(kid, &b64(jwk.x.as_ref(), "x")?),
            Algorithm::ES256 => {
                Self::es256(kid, &b64(jwk.x.as_ref(), "x")?, &b64(jwk.y.as_ref(), "y")?)
            }
            Algorithm::RS256 => {
                Self::rs256(kid, &b64(jwk.n.as_ref(), "n")?, &b64(jwk.e.as_ref(), "e")?)
            }
            Algorithm::HS256 => Self::hs256(kid, &b64(jwk.k.as_ref(), "k")?),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether `signature` is a valid signature of `message` under this key.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Public(key) => key.verify_sig(message, signature).is_ok(),
            Verifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }
}

/// Whether an RSA modulus was made by the flawed Infineon generator (ROCA,
/// CVE-2017-15361), whose keys can be factored. Such moduli are `65537^k mod M` for a
/// primorial `M`, so for every small prime `p` the residue `n mod p` lies in the subgroup
/// generated by 65537 modulo `p`; for other moduli that fails for some `p` almost surely.
fn has_roca_fingerprint(n: &[u8]) -> bool {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    PRIMES.iter().all(|&p| {
        let residue = n
            .iter()
            .fold(0u32, |acc, &byte| (acc * 256 + u32::from(byte)) % p);
        let generator = 65537 % p;
        let mut power = 1;
        for _ in 0..p {
            if power == residue {
                return true;
            }
            power = power * generator % p;
        }
        false
    })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// The keys a verifier trusts, by `kid`.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: HashMap<String, VerificationKey>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a key.
    pub fn insert(&mut self, key: VerificationKey) {
        self.keys.insert(key.kid.clone(), key);
    }

    /// The public keys of a JWKS that can verify signatures. Symmetric (`oct`) keys are
    /// never taken from a key set (a published shared secret is no secret, and a mixed
    /// set invites algorithm confusion); keys of other kinds (encryption keys,
    /// unsupported algorithms) and keys without a `kid` are left out too, so one odd key
    /// does not make the whole set unusable.
    pub fn from_jwks(jwks: &Jwks) -> Self {
        let mut set = Self::new();
        let mut seen = HashMap::<&str, usize>::new();
        for kid in jwks.keys.iter().filter_map(|jwk| jwk.kid.as_deref()) {
            *seen.entry(kid).or_default() += 1;
        }
        // A kid named twice is ambiguous: trust neither key.
        let usable = |jwk: &&Jwk| {
            jwk.kty != "oct"
                && jwk
                    .kid
                    .as_deref()
                    .is_some_and(|kid| seen.get(kid) == Some(&1))
        };
        for jwk in jwks.keys.iter().filter(usable) {
            if let Ok(key) = VerificationKey::from_jwk(jwk) {
                set.insert(key);
            }
        }
        set
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.get(kid)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
