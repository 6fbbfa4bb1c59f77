//! The browser side: the refresh-token cookie and the CSRF defence for requests that
//! rely on it.
//!
//! CSRF defence, two independent checks, both required when the refresh token comes from
//! the cookie:
//! 1. `Origin` must be present and be the server's own origin (same host as `Host`) or
//!    one of `LATCHKEY_ALLOWED_ORIGINS`. Browsers always send `Origin` on POST, and a
//!    page cannot forge it.
//! 2. A custom header `X-Latchkey-CSRF` must be present. A cross-site page can only send
//!    it after a CORS preflight, which only allowed origins pass; HTML forms cannot send
//!    it at all.
//!
//! The cookie is `__Host-latchkey_refresh` when `Secure` (the default): `Path=/`, no
//! `Domain`, so only this host over HTTPS can set it; a sibling subdomain cannot plant
//! one. A request that carries the cookie twice (one planted under another `Path` or
//! `Domain`, which the browser sends as well) is refused with 400
//! `refresh_cookie_duplicated` rather than guessing which one is ours.
//!
//! The double-submit pattern was not chosen: it needs a second, script-readable cookie,
//! and with `SameSite=Strict` plus these two checks it would add nothing.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use latchkey_core::refresh::RefreshToken;

use super::error::ApiError;
use super::WebSettings;

/// The custom header that cookie-carried requests must send.
pub const CSRF_HEADER: &str = "x-latchkey-csrf";

/// The refresh token in the request's cookie, if any. Refuses a request that carries
/// the refresh cookie more than once (400 `refresh_cookie_duplicated`).
pub(super) fn refresh_cookie<'a>(
    headers: &'a HeaderMap,
    web: &WebSettings,
) -> Result<Option<&'a str>, ApiError> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| name.trim() == web.cookie_name)
        .map(|(_, value)| value.trim().trim_matches('"'));
    let first = found.next();
    if found.next().is_some() {
        return Err(ApiError::bad_request(
            "refresh_cookie_duplicated",
            "the request carries the refresh cookie more than once; clear this site's cookies and log in again",
        ));
    }
    Ok(first.filter(|value| !value.is_empty()))
}

/// Refuse a cookie-carried request that fails either CSRF check.
pub(super) fn check_csrf(headers: &HeaderMap, web: &WebSettings) -> Result<(), ApiError> {
    let refuse = |why: &str| ApiError::new(StatusCode::FORBIDDEN, "csrf_check_failed", why);
    if headers.get(CSRF_HEADER).is_none_or(|v| v.is_empty()) {
        return Err(refuse(
            "requests that use the refresh cookie must send the X-Latchkey-CSRF header",
        ));
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refuse("requests that use the refresh cookie must send an Origin header"))?;
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let same_origin = host.is_some_and(|host| {
        let scheme_ok =
            |rest: Option<&str>| rest.is_some_and(|authority| authority.eq_ignore_ascii_case(host));
        scheme_ok(origin.strip_prefix("https://"))
            // Plain http only without a Secure cookie, or on loopback, which browsers
            // treat as a secure context (`cargo run`, then http://127.0.0.1:8080/).
            || ((!web.cookie_secure || crate::config::is_loopback_authority(host))
                && scheme_ok(origin.strip_prefix("http://")))
    });
    if same_origin || web.allowed_origins.iter().any(|allowed| allowed == origin) {
        Ok(())
    } else {
        // The origin is the caller's own header: echoing it tells nothing new.
        let origin: String = origin
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(200)
            .collect();
        let over_http = if web.cookie_secure && origin.starts_with("http://") {
            " (over plain HTTP the cookie is Secure: for local development set LATCHKEY_COOKIE_SECURE=false, or auto with a loopback LATCHKEY_ISSUER)"
        } else {
            ""
        };
        Err(refuse(&format!(
            "the request's Origin {origin} is not allowed to use the refresh cookie: add it to LATCHKEY_ALLOWED_ORIGINS{over_http}"
        )))
    }
}

fn cookie(web: &WebSettings, value: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if web.cookie_secure { "; Secure" } else { "" };
    let text = format!(
        "{}={value}; Max-Age={max_age_secs}; Path={}; HttpOnly{secure}; SameSite=Strict",
        web.cookie_name, web.cookie_path
    );
    // The name, path and token are validated ASCII; an invalid value cannot arise.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` carrying a refresh token.
pub(super) fn set_refresh_cookie(
    web: &WebSettings,
    token: &RefreshToken,
    max_age_secs: u64,
) -> HeaderValue {
    cookie(web, token.expose(), max_age_secs)
}

/// `Set-Cookie` that deletes the refresh cookie.
pub(super) fn clear_refresh_cookie(web: &WebSettings) -> HeaderValue {
    cookie(web, "", 0)
}
