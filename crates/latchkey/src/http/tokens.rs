//! What a successful login or refresh answers: the access token in the body, the refresh
//! token in an `HttpOnly` cookie (browsers) or in the body (native clients), and the
//! answer to a login's first step when a second factor is due. Shared by the password
//! login, the refresh and the login's second step.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::browser::set_refresh_cookie;
use super::WebSettings;
use crate::service::{IssuedTokens, MfaPending, MFA_METHODS};

/// A login's first step for a user with a second factor: no tokens yet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(in crate::http) struct MfaRequired {
    /// Always `true`.
    pub(in crate::http) mfa_required: bool,
    /// Single-use, bound to this login; send it with the code.
    pub(in crate::http) mfa_token: String,
    /// What the second step accepts (`totp`, `recovery_code`).
    pub(in crate::http) methods: Vec<&'static str>,
    /// Seconds the `mfa_token` lives.
    pub(in crate::http) expires_in: u64,
}

/// Where the client wants its refresh token.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum RefreshDelivery {
    /// In an `HttpOnly` cookie (browsers).
    #[default]
    Cookie,
    /// In the JSON body (native clients).
    Body,
}

impl RefreshDelivery {
    /// The stable name, kept with a login's second step.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Cookie => "cookie",
            Self::Body => "body",
        }
    }

    /// The delivery named by [`as_str`](Self::as_str); the cookie for anything else.
    pub(super) fn from_name(name: &str) -> Self {
        if name == "body" {
            Self::Body
        } else {
            Self::Cookie
        }
    }
}

/// A new pair: the access token, and the refresh token when asked for in the body
/// (otherwise it is in the `HttpOnly` cookie set with this answer).
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct TokenResponse<'a> {
    /// The access token (a JWT).
    access_token: &'a str,
    /// `Bearer`.
    token_type: &'static str,
    /// Seconds the access token lives.
    expires_in: u64,
    /// The refresh token (`refresh_delivery: "body"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    /// Seconds the refresh token lives unused (`refresh_delivery: "body"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_expires_in: Option<u64>,
}

/// The answer carrying a new pair, the refresh token delivered as the client asked.
pub(super) fn token_response(
    tokens: &IssuedTokens,
    delivery: RefreshDelivery,
    web: &WebSettings,
) -> Response {
    let in_body = delivery == RefreshDelivery::Body;
    let body = TokenResponse {
        access_token: &tokens.access_token,
        token_type: "Bearer",
        expires_in: tokens.expires_in.as_secs(),
        refresh_token: in_body.then(|| tokens.refresh_token.expose()),
        refresh_expires_in: in_body.then_some(tokens.refresh_expires_in.as_secs()),
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if !in_body {
        let cookie = set_refresh_cookie(
            web,
            &tokens.refresh_token,
            tokens.refresh_expires_in.as_secs(),
        );
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The answer to a login's first step for a user with a second factor: no tokens.
pub(super) fn mfa_required_response(pending: &MfaPending) -> Response {
    let body = MfaRequired {
        mfa_required: true,
        mfa_token: pending.mfa_token.clone(),
        methods: MFA_METHODS.to_vec(),
        expires_in: pending.expires_in.as_secs(),
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
