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
//! // The issuer never mints access tokens for longer than 15 minutes: refuse longer ones.
//! let validation = Validation::new("https://auth.example.com", "my-api", Duration::from_secs(30))
//!     .with_max_lifetime(Duration::from_secs(15 * 60));
//! let now = 1_700_000_000;
//! let err = verify_access_token("not.a.token", &keys, &validation, now).unwrap_err();
//! assert_eq!(err.code(), "token_invalid");
//! assert_eq!(verify_access_token("", &keys, &validation, now), Err(TokenError::Missing));
//! ```
//!
//! # In a service: `RemoteVerifier` and the axum extractor
//!
//! With the feature `remote`, `RemoteVerifier` fetches the JWKS from the Latchkey
//! server, refreshes it in the background, refetches it at once for an unknown `kid`
//! (key rotation needs no restart) and follows the revocation feed, so logged-out tokens
//! are refused within the poll interval. With the feature `axum` (which implies
//! `remote`), the `axum::Claims` extractor and the `axum::VerifyLayer` tower layer
//! put it in front of handlers:
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # mod example {
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use axum::{routing::get, Router};
//! use latchkey_verify::axum::{AuthRejection, Claims};
//! use latchkey_verify::RemoteVerifier;
//!
//! async fn profile(claims: Claims) -> String {
//!     format!("user {} with roles {:?}", claims.sub, claims.roles)
//! }
//!
//! async fn admin_only(claims: Claims) -> Result<&'static str, AuthRejection> {
//!     claims.require_role("admin")?; // 403 {"code":"insufficient_role"} otherwise
//!     Ok("admin area")
//! }
//!
//! pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
//!     // Fails here if the JWKS or the revocation feed cannot be read (fail fast), or a
//!     // URL is plain http to a host that is not loopback.
//!     let verifier = RemoteVerifier::builder()
//!         .jwks_url("https://auth.example.com/.well-known/jwks.json")
//!         .issuer("https://auth.example.com")
//!         .audience("my-api")
//!         .max_token_lifetime(Duration::from_secs(15 * 60)) // the server's access TTL
//!         .revocation_feed(
//!             "https://auth.example.com/auth/revocations",
//!             std::env::var("LATCHKEY_REVOCATION_FEED_SECRET")?,
//!         )
//!         .revocation_poll_interval(Duration::from_secs(1))
//!         // Refuse tokens (503 revocation_state_stale) once the feed has been
//!         // unreadable for this long: the default.
//!         .max_revocation_staleness(Some(Duration::from_secs(60)))
//!         .build()
//!         .await?;
//!
//!     // Any token: 401 with {"error", "code"} and WWW-Authenticate when refused.
//!     let app = Router::new()
//!         .route("/profile", get(profile))
//!         .route("/admin", get(admin_only))
//!         .with_state(Arc::new(verifier));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! Outside axum, call `RemoteVerifier::verify` with the bearer token yourself.
//!
//! # Security properties
//!
//! - the algorithm comes from the key, never from the token header (`alg: none`, HS256
//!   signed with a public key and other confusions are refused before any cryptography);
//! - `typ` must be `at+jwt`, so refresh or ID tokens cannot pass as access tokens;
//! - `iss`, `aud`, `exp`, `nbf` and `iat` are always checked, with a bounded leeway;
//!   `exp - iat` too when [`Validation::max_lifetime`] is set;
//! - `RemoteVerifier` fetches keys and revocations over `https` only (loopback hosts
//!   excepted, or when told `allow_insecure_http`), refuses a leeway over 5 minutes, and
//!   fails closed when its revocation state grows older than its maximum staleness.

mod algorithm;
#[cfg(feature = "axum")]
pub mod axum;
mod claims;
mod error;
mod jwk;
mod jws;
#[cfg(feature = "remote")]
pub mod remote;

pub use algorithm::{Algorithm, UnsupportedAlgorithm};
pub use claims::{verify_access_token, AccessClaims, Validation, ACCESS_TOKEN_TYPE};
pub use error::{KeyError, TokenError};
pub use jwk::{Jwk, Jwks, KeySet, VerificationKey};
pub use jws::{CompactJws, Header, MAX_TOKEN_BYTES};
#[cfg(feature = "remote")]
pub use remote::{RemoteError, RemoteVerifier, RemoteVerifierBuilder, VerifierStatus};
