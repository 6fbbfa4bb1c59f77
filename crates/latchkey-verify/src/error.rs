//! Why a token was refused, with the stable codes the Latchkey server uses too.

/// Why an access token was refused.
///
/// Several variants share one public [`code`](TokenError::code): a caller learns that a
/// token is invalid, not which check it failed, so a forger gains nothing from probing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was presented.
    #[error("no access token was presented")]
    Missing,
    /// Not a compact JWS, bad base64url, bad JSON, oversized, or a `crit` header.
    #[error("the token is malformed")]
    Malformed,
    /// The header names no `kid`, or one that is not in the key set.
    #[error("the token's key id is unknown")]
    UnknownKey,
    /// The header's `alg` is not the algorithm of the key named by `kid` (this covers
    /// `alg: none` and algorithm-confusion attempts).
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// The header's `typ` is not `at+jwt`: for example a refresh or ID token.
    #[error("the token is not an access token")]
    WrongType,
    /// Required claims are missing or have the wrong type.
    #[error("the token's claims are malformed")]
    BadClaims,
    /// `iss` is not the expected issuer.
    #[error("the token was issued by someone else")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// `nbf` lies in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// The token or its session was revoked (logout, reuse detection).
    #[error("the token has been revoked")]
    Revoked,
    /// `exp - iat` is longer than [`Validation::max_lifetime`](crate::Validation::max_lifetime)
    /// plus the leeway: the issuer would never mint such a token.
    #[error("the token's lifetime is longer than allowed")]
    LifetimeTooLong,
    /// The verifier's copy of the revocation list is older than its maximum staleness
    /// (the revocation feed has been failing), so it cannot tell whether the token was
    /// revoked and refuses it (fail closed). Not the token's fault: the code is
    /// `revocation_state_stale`, answered as 503 by the axum integration.
    #[error("the revocation state is stale; the token cannot be checked")]
    RevocationStateStale,
}

impl TokenError {
    /// The stable machine-readable code: `token_missing`, `token_expired`,
    /// `token_revoked`, `token_invalid`, or `revocation_state_stale` (a verifier-side
    /// condition, not a verdict on the token).
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::Expired => "token_expired",
            Self::Revoked => "token_revoked",
            Self::RevocationStateStale => "revocation_state_stale",
            Self::Malformed
            | Self::UnknownKey
            | Self::AlgorithmMismatch
            | Self::BadSignature
            | Self::WrongType
            | Self::BadClaims
            | Self::WrongIssuer
            | Self::WrongAudience
            | Self::NotYetValid
            | Self::LifetimeTooLong => "token_invalid",
        }
    }
}

/// Why a JWK could not be used as a verification key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key type, curve or algorithm is not one Latchkey supports
    /// (EdDSA/Ed25519, ES256/P-256, RS256, HS256).
    #[error("unsupported key type or algorithm")]
    Unsupported,
    /// The key is marked for another use (`use` other than `sig`, or `key_ops`
    /// without `verify`).
    #[error("the key is not meant for signature verification")]
    WrongUse,
    /// A member is missing or not valid base64url, or the key material is malformed.
    #[error("the key is malformed: {0}")]
    Malformed(&'static str),
}
