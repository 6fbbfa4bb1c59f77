//! Request extractors: JSON bodies with stable error codes, the caller's context, the
//! bearer token, and the authenticated caller.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use latchkey_verify::{AccessClaims, TokenError};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::forwarded::client_address;
use super::AppState;
use crate::service::RequestContext;

/// A JSON body. Refuses a wrong content type, malformed JSON, missing or mistyped fields
/// and oversized bodies, each with its own code.
#[derive(Debug)]
pub(super) struct JsonBody<T>(pub(super) T);

/// Like [`JsonBody`], but an empty body (as a browser's cookie-only refresh sends) is `None`.
#[derive(Debug)]
pub(super) struct OptionalJsonBody<T>(pub(super) Option<T>);

async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            )
        } else {
            ApiError::bad_request("invalid_body", "the request body could not be read")
        }
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is a JSON object: serde would also read a struct from an array (its
    // fields by position, `[]` as all defaults), which no client means (schemathesis).
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
    if first != Some(b'{') {
        let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        return Err(if well_formed {
            ApiError::bad_request("invalid_request", "the request body must be a JSON object")
        } else {
            ApiError::bad_request("malformed_json", "the request body is not valid JSON")
        });
    }
    serde_json::from_slice(bytes).map_err(|e| {
        // A shape error can come before a syntax error further on: tell them apart by
        // checking the syntax alone (only on this error path).
        let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        if e.classify() == serde_json::error::Category::Data && well_formed {
            ApiError::bad_request(
                "invalid_request",
                "a field is missing or has the wrong type",
            )
        } else {
            ApiError::bad_request("malformed_json", "the request body is not valid JSON")
        }
    })
}

fn content_type_error() -> ApiError {
    ApiError::bad_request(
        "content_type_invalid",
        "the request body must be application/json",
    )
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(content_type_error());
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !json {
            return Err(content_type_error());
        }
        parse_json(&bytes).map(|body| Self(Some(body)))
    }
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let client = client_address(peer, &parts.headers, state.web.trusted_proxies.as_ref());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| {
                let mut end = ua.len().min(256);
                while !ua.is_char_boundary(end) {
                    end -= 1;
                }
                ua[..end].to_owned()
            });
        Ok(Self {
            client_ip: client.map(|ip| ip.to_canonical().to_string()),
            user_agent,
        })
    }
}

/// A query string, refused as 400 `invalid_request` (JSON, like every error) when a
/// value does not parse.
#[derive(Debug)]
pub(super) struct QueryParams<T>(pub(super) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query).map(Self).map_err(|_| {
            ApiError::bad_request(
                "invalid_request",
                "a query parameter is missing or has the wrong type",
            )
        })
    }
}

/// A page size from the query: `default` when absent, refused as 400 `invalid_request`
/// outside `1..=max` (a client asking for more than a page holds is told, not cut short).
pub(super) fn page_limit(requested: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match requested {
        None => Ok(default),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::bad_request(
            "invalid_request",
            "limit is out of range",
        )),
    }
}

/// The one `{...}` parameter of a route's path, as text (each use case parses its own
/// ids, so a malformed id gets the same answer as an unknown one).
#[derive(Debug)]
pub(super) struct PathParam(pub(super) String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|_| ApiError::bad_request("invalid_request", "the path is not valid"))
    }
}

/// The bearer token of the `Authorization` header, if any (unverified).
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The caller, authenticated by a valid, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub AccessClaims);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(TokenError::Missing)?;
        Ok(Self(state.service.authenticate(token).await?))
    }
}

/// The caller, authenticated, holding the `admin` role, with a login recent enough
/// for admin work (and made with the account's second factor when it has one); see
/// [`crate::service::AuthService::authorize_admin`].
#[derive(Debug, Clone)]
pub struct Admin(pub AccessClaims);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        if !claims.has_role("admin") {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_role",
                "this needs the admin role",
            ));
        }
        state.service.authorize_admin(&claims).await?;
        Ok(Self(claims))
    }
}
