//! Compact JWS parsing and signature checking.
//!
//! Only the compact serialization is accepted, with strict unpadded base64url and a
//! size limit; a `crit` header is refused (Latchkey understands no extensions).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use crate::error::TokenError;
use crate::jwk::{KeySet, VerificationKey};

/// Tokens longer than this are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The protected header members Latchkey looks at.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    /// The algorithm the signer claims; must equal the key's.
    pub alg: String,
    /// The key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// The token type, `at+jwt` for access tokens.
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// A compact JWS split into its parts, not yet verified.
#[derive(Debug)]
pub struct CompactJws<'a> {
    /// The decoded protected header.
    pub header: Header,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Split and decode a compact JWS. Refuses anything else with [`TokenError::Malformed`].
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| TokenError::Malformed)?;
        let header: Header =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
        if header.crit.is_some() {
            return Err(TokenError::Malformed);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::Malformed)?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        Ok(Self {
            header,
            signing_input,
            payload_b64,
            signature,
        })
    }

    /// Check the signature with `key`, whose algorithm the header must name exactly.
    /// Returns the decoded payload.
    pub fn verify_with(&self, key: &VerificationKey) -> Result<Vec<u8>, TokenError> {
        if self.header.alg != key.algorithm().as_str() {
            return Err(TokenError::AlgorithmMismatch);
        }
        if !key.verify_signature(self.signing_input.as_bytes(), &self.signature) {
            return Err(TokenError::BadSignature);
        }
        URL_SAFE_NO_PAD
            .decode(self.payload_b64)
            .map_err(|_| TokenError::Malformed)
    }

    /// Find the key named by the header's `kid` in `keys` and verify with it.
    pub fn verify_in(&self, keys: &KeySet) -> Result<Vec<u8>, TokenError> {
        let kid = self.header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
        let key = keys.get(kid).ok_or(TokenError::UnknownKey)?;
        self.verify_with(key)
    }
}
