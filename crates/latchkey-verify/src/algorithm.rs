//! The JWS algorithms Latchkey signs and verifies with.

use std::fmt;
use std::str::FromStr;

/// A JWS signature algorithm. A key has exactly one; a token's header must name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 signatures (RFC 8037). The default.
    EdDSA,
    /// ECDSA on P-256 with SHA-256, signature as raw `r || s`.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, keys of 2048 bits or more.
    RS256,
    /// HMAC with SHA-256: a shared secret, never published in the JWKS.
    HS256,
}

impl Algorithm {
    /// The name used in JWS headers and JWKs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::HS256 => "HS256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The algorithm name is not one Latchkey supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported algorithm {0:?}: expected EdDSA, ES256, RS256 or HS256")]
pub struct UnsupportedAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnsupportedAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            "RS256" => Ok(Self::RS256),
            "HS256" => Ok(Self::HS256),
            other => Err(UnsupportedAlgorithm(other.to_owned())),
        }
    }
}
