//! axum and tower integration (feature `axum`): the [`Claims`] extractor, role checks,
//! and [`VerifyLayer`] for any `tower::Service<http::Request<B>>`.
//!
//! Refusals follow RFC 6750 and the Latchkey server's error format: a JSON body
//! `{"error": "<human text>", "code": "<stable code>"}` and, for 401, a
//! `WWW-Authenticate: Bearer` challenge (`Bearer error="invalid_token"` when a token was
//! presented but refused); 403 with code `insufficient_role` when a role is missing;
//! 503 with code `revocation_state_stale` (and `Retry-After`, no challenge) while the
//! verifier's revocation state is too old to tell whether a token was revoked: that is
//! the service's trouble, not the token's, and a 401 would send clients to refresh or log
//! in again for nothing.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{routing::get, Router};
//! use latchkey_verify::axum::{AuthRejection, Claims, VerifyLayer};
//! use latchkey_verify::RemoteVerifier;
//!
//! async fn me(claims: Claims) -> String {
//!     format!("hello {}", claims.sub)
//! }
//!
//! async fn admin(claims: Claims) -> Result<&'static str, AuthRejection> {
//!     claims.require_role("admin")?;
//!     Ok("welcome, admin")
//! }
//!
//! fn router(verifier: Arc<RemoteVerifier>) -> Router {
//!     Router::new()
//!         .route("/me", get(me))
//!         .route("/admin", get(admin))
//!         // Or guard whole routes with the layer: 401/403 before the handler runs.
//!         .route("/ops", get(|| async { "ops" }))
//!         .route_layer(VerifyLayer::new(verifier.clone()).require_role("ops"))
//!         .with_state(verifier)
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use ::axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use ::axum::http::request::Parts;
use ::axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use ::axum::response::IntoResponse;

use crate::claims::AccessClaims;
use crate::error::TokenError;
use crate::remote::RemoteVerifier;

/// The code of a 403 refusal for a missing role.
pub const INSUFFICIENT_ROLE: &str = "insufficient_role";

/// The code of a 403 refusal for a login without a second factor where one is required.
pub const MFA_REQUIRED: &str = "mfa_required";

/// The bearer token of an `Authorization: Bearer <token>` header.
///
/// No `Authorization` header, another scheme, or an empty token is
/// [`TokenError::Missing`]; several `Authorization` headers or a non-ASCII one is
/// [`TokenError::Malformed`]. The scheme name is case-insensitive (RFC 7235).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, TokenError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(TokenError::Missing);
    };
    if values.next().is_some() {
        return Err(TokenError::Malformed);
    }
    let value = value.to_str().map_err(|_| TokenError::Malformed)?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Missing);
    }
    match token.trim() {
        "" => Err(TokenError::Missing),
        token => Ok(token),
    }
}

/// A refusal: 401 for a missing or refused token, 403 for a missing role, 503 when the
/// revocation state is stale. Renders as `{"error": ..., "code": ...}` with the RFC 6750
/// `WWW-Authenticate` challenge (401 and 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRejection {
    status: StatusCode,
    code: &'static str,
    message: String,
    challenge: Option<&'static str>,
}

/// `Retry-After` of a 503 `revocation_state_stale`, in seconds.
const STALE_RETRY_AFTER_SECS: &str = "1";

impl AuthRejection {
    /// The refusal for a token error: 401, or 503 for
    /// [`TokenError::RevocationStateStale`]. The message tells the code, never which
    /// check failed.
    pub fn from_token_error(error: TokenError) -> Self {
        if error == TokenError::RevocationStateStale {
            return Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: error.code(),
                message: "tokens cannot be checked for revocation right now; retry later"
                    .to_owned(),
                challenge: None,
            };
        }
        let (message, challenge) = match error {
            TokenError::Missing => ("no access token was presented", "Bearer"),
            TokenError::Expired => (
                "the access token has expired",
                r#"Bearer error="invalid_token""#,
            ),
            TokenError::Revoked => (
                "the access token has been revoked",
                r#"Bearer error="invalid_token""#,
            ),
            _ => (
                "the access token is invalid",
                r#"Bearer error="invalid_token""#,
            ),
        };
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: error.code(),
            message: message.to_owned(),
            challenge: Some(challenge),
        }
    }

    /// The 403 refusal for a caller who lacks `role`.
    pub fn insufficient_role(role: &str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: INSUFFICIENT_ROLE,
            message: format!("this needs the role {role:?}"),
            challenge: Some(r#"Bearer error="insufficient_scope""#),
        }
    }

    /// The 403 refusal for a caller who logged in with one factor where two are
    /// required (code `mfa_required`).
    pub fn mfa_required() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: MFA_REQUIRED,
            message: "this needs a login with a second factor".to_owned(),
            challenge: Some(r#"Bearer error="insufficient_user_authentication""#),
        }
    }

    /// The HTTP status: 401, 403 or 503.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code: `token_missing`, `token_expired`, `token_revoked`,
    /// `token_invalid`, `insufficient_role` or `revocation_state_stale`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body, `{"error": ..., "code": ...}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.message, "code": self.code }).to_string()
    }

    /// The response, with any body type that can be made from a `String`.
    pub fn to_response<B: From<String>>(&self) -> Response<B> {
        let mut response = Response::new(B::from(self.body()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(challenge) = self.challenge {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(
                RETRY_AFTER,
                HeaderValue::from_static(STALE_RETRY_AFTER_SECS),
            );
        }
        response
    }
}

impl fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for AuthRejection {}

impl From<TokenError> for AuthRejection {
    fn from(error: TokenError) -> Self {
        Self::from_token_error(error)
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> ::axum::response::Response {
        self.to_response()
    }
}

/// The verified claims of the request's bearer token: an axum extractor.
///
/// It verifies `Authorization: Bearer <token>` with the `Arc<RemoteVerifier>` found in
/// the router state (through [`FromRef`]), and refuses with a 401 [`AuthRejection`].
/// Behind a [`VerifyLayer`] it takes the claims the layer already verified. Use
/// `Option<Claims>` for routes where a token is optional: no `Authorization` header gives
/// `None`, a bad token is still refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims(pub AccessClaims);

impl Claims {
    /// The claims.
    pub fn into_inner(self) -> AccessClaims {
        self.0
    }

    /// `Ok` if the token carries `role`, else the 403 `insufficient_role` refusal.
    pub fn require_role(&self, role: &str) -> Result<(), AuthRejection> {
        if self.0.has_role(role) {
            Ok(())
        } else {
            Err(AuthRejection::insufficient_role(role))
        }
    }

    /// `Ok` if the user logged in with a second factor (see
    /// [`AccessClaims::is_multi_factor`]), else the 403 `mfa_required` refusal.
    pub fn require_mfa(&self) -> Result<(), AuthRejection> {
        if self.0.is_multi_factor() {
            Ok(())
        } else {
            Err(AuthRejection::mfa_required())
        }
    }

    /// `Ok` if the token carries at least one of `roles`, else the 403 refusal.
    pub fn require_any_role(&self, roles: &[&str]) -> Result<(), AuthRejection> {
        if roles.iter().any(|role| self.0.has_role(role)) {
            Ok(())
        } else {
            Err(AuthRejection::insufficient_role(&roles.join(" or ")))
        }
    }
}

impl Deref for Claims {
    type Target = AccessClaims;

    fn deref(&self) -> &AccessClaims {
        &self.0
    }
}

impl From<Claims> for AccessClaims {
    fn from(claims: Claims) -> Self {
        claims.0
    }
}

async fn claims_from_parts(
    parts: &mut Parts,
    verifier: &RemoteVerifier,
) -> Result<Claims, AuthRejection> {
    if let Some(claims) = parts.extensions.get::<AccessClaims>() {
        return Ok(Claims(claims.clone()));
    }
    let token = bearer_token(&parts.headers)?;
    let claims = verifier.verify(token).await?;
    parts.extensions.insert(claims.clone());
    Ok(Claims(claims))
}

impl<S> FromRequestParts<S> for Claims
where
    Arc<RemoteVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<RemoteVerifier>::from_ref(state);
        claims_from_parts(parts, &verifier).await
    }
}

impl<S> OptionalFromRequestParts<S> for Claims
where
    Arc<RemoteVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if !parts.headers.contains_key(AUTHORIZATION)
            && parts.extensions.get::<AccessClaims>().is_none()
        {
            return Ok(None);
        }
        let verifier = Arc::<RemoteVerifier>::from_ref(state);
        claims_from_parts(parts, &verifier).await.map(Some)
    }
}

/// A tower [`Layer`](tower_layer::Layer) that lets through only requests with a valid
/// bearer token (and the required roles), inserting the verified [`AccessClaims`] into
/// the request extensions; others get the 401/403 JSON refusal without reaching the
/// inner service.
///
/// Works on any `Service<http::Request<B>, Response = http::Response<R>>` whose response
/// body `R` can be made from a `String` (as axum's `Body` can).
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Arc<RemoteVerifier>,
    roles: Arc<[String]>,
    mfa: bool,
}

impl VerifyLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Arc<RemoteVerifier>) -> Self {
        Self {
            verifier,
            roles: Arc::from([]),
            mfa: false,
        }
    }

    /// Also require a login with a second factor (403 `mfa_required` otherwise).
    #[must_use]
    pub fn require_mfa(self) -> Self {
        Self { mfa: true, ..self }
    }

    /// Also require `role` (403 `insufficient_role` otherwise). Each call adds a role
    /// that must be present.
    #[must_use]
    pub fn require_role(self, role: impl Into<String>) -> Self {
        let mut roles = self.roles.to_vec();
        roles.push(role.into());
        Self {
            roles: roles.into(),
            ..self
        }
    }
}

impl<S> tower_layer::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            verifier: Arc::clone(&self.verifier),
            roles: Arc::clone(&self.roles),
            mfa: self.mfa,
        }
    }
}

/// The service made by [`VerifyLayer`].
#[derive(Debug, Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Arc<RemoteVerifier>,
    roles: Arc<[String]>,
    mfa: bool,
}

impl<S, B, R> tower_service::Service<Request<B>> for VerifyService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: From<String>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone may not be ready: keep the instance that was polled ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = Arc::clone(&self.verifier);
        let roles = Arc::clone(&self.roles);
        let mfa = self.mfa;
        let token = bearer_token(request.headers()).map(str::to_owned);
        Box::pin(async move {
            let verified = match token {
                Ok(token) => verifier.verify(&token).await,
                Err(error) => Err(error),
            };
            let claims = match verified {
                Ok(claims) => claims,
                Err(error) => return Ok(AuthRejection::from(error).to_response()),
            };
            if let Some(missing) = roles.iter().find(|role| !claims.has_role(role)) {
                return Ok(AuthRejection::insufficient_role(missing).to_response());
            }
            if mfa && !claims.is_multi_factor() {
                return Ok(AuthRejection::mfa_required().to_response());
            }
            request.extensions_mut().insert(claims);
            inner.call(request).await
        })
    }
}
