//! Verify Latchkey access tokens in any Rust service, without asking the auth server.
//!
//! The same code checks tokens inside the Latchkey server itself, so a service that uses
//! this crate accepts exactly what the server accepts.
//!
//! ```
//! use std::time::Duration;
//! use latchkey_verify::{verify_access_token, Jwks, KeySet, TokenError, Validation};
//!
//! // In a service: the JWKS comes from `https://auth.example.com/.well-known/jwks.json`.
//! let jwks: Jwks = serde_json::from_str(r#"{"keys": []}"#).unwrap();
//! let keys = KeySet::from_jwks(&jwks);
//! let validation = Validation {
//!     issuer: "https://auth.example.com".into(),
//!     audience: "my-api".into(),
//!     leeway: Duration::from_secs(30),
//! };
//! let now = 1_700_000_000;
//! let err = verify_access_token("not.a.token", &keys, &validation, now).unwrap_err();
//! assert_eq!(err.code(), "token_invalid");
//! assert_eq!(verify_access_token("", &keys, &validation, now), Err(TokenError::Missing));
//! ```
//!
//! Security properties:
//! - the algorithm comes from the key, never from the token header (`alg: none`, HS256
//!   signed with a public key and other confusions are refused before any cryptography);
//! - `typ` must be `at+jwt`, so refresh or ID tokens cannot pass as access tokens;
//! - `iss`, `aud`, `exp`, `nbf` and `iat` are always checked, with a bounded leeway.

mod algorithm;
mod claims;
mod error;
mod jwk;
mod jws;

pub use algorithm::{Algorithm, UnsupportedAlgorithm};
pub use claims::{verify_access_token, AccessClaims, Validation, ACCESS_TOKEN_TYPE};
pub use error::{KeyError, TokenError};
pub use jwk::{Jwk, Jwks, KeySet, VerificationKey};
pub use jws::{CompactJws, Header, MAX_TOKEN_BYTES};
