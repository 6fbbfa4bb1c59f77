//! What each fuzz target checks, as plain functions: the cargo-fuzz targets call them
//! under libFuzzer, and `crates/latchkey/tests/api/fuzz_replay.rs` calls them on stable
//! over the committed seeds and their mutations in every test run. A panic is a finding.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request};
use latchkey_core::refresh::RefreshToken;
use latchkey_verify::{
    verify_access_token, CompactJws, Jwk, Jwks, KeySet, Validation, VerificationKey,
};

#[path = "common.rs"]
mod common;

/// `CompactJws::parse`, then verification against a fixed key set (Ed25519 and HS256):
/// no input may panic, and nothing the fuzzer writes may verify (it holds no key).
pub fn jws(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jws) = CompactJws::parse(token) {
        assert!(
            jws.verify_in(jws_keys()).is_err(),
            "a fuzzed token verified"
        );
    }
    let validation = Validation::new("https://auth.test", "api", Duration::from_secs(30));
    assert!(verify_access_token(token, jws_keys(), &validation, 1_700_000_000).is_err());
}

fn jws_keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = KeySet::new();
        // An Ed25519 public key (RFC 8032 test 1) and an HS256 secret nobody else has.
        let ed = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        if let Ok(key) = VerificationKey::ed25519("ed", &ed) {
            keys.insert(key);
        }
        if let Ok(key) = VerificationKey::hs256("hs", b"fuzz-secret-fuzz-secret-fuzz-secret!!") {
            keys.insert(key);
        }
        keys
    })
}

/// `Jwk`/`Jwks` parsing and key import: no panic, whatever the key material.
pub fn jwk(data: &[u8]) {
    if let Ok(jwks) = serde_json::from_slice::<Jwks>(data) {
        let keys = KeySet::from_jwks(&jwks);
        let _ = keys.len();
    }
    if let Ok(jwk) = serde_json::from_slice::<Jwk>(data) {
        if let Ok(key) = VerificationKey::from_jwk(&jwk) {
            // Arbitrary message and signature: checking must answer, not panic.
            let _ = key.verify_signature(data, data);
            let _ = key.verify_signature(b"", &[]);
        }
    }
}

/// `RefreshToken::parse`: no panic; an accepted token keeps its exact text.
pub fn refresh_token(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(token) = RefreshToken::parse(raw) {
        assert_eq!(token.expose(), raw);
        let _ = format!("{token:?}");
    }
}

const HEADER_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/auth/me"),
    (Method::POST, "/auth/refresh"),
    (Method::POST, "/auth/logout"),
    (Method::GET, "/auth/sessions"),
    (Method::GET, "/admin/users"),
    (Method::GET, "/auth/revocations"),
];

/// The `Authorization` and `Cookie` headers (and the CSRF and `Origin` headers that come
/// with a cookie) through the router: no 5xx, every 4xx a JSON error with a code.
/// Input: selector byte, then Authorization, Cookie and Origin values split at 0xFF.
pub fn http_headers(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.split(|&b| b == 0xFF);
    let authorization = parts.next().unwrap_or_default();
    let cookie = parts.next().unwrap_or_default();
    let origin = parts.next();
    let (method, path) = &HEADER_ROUTES[usize::from(selector) % HEADER_ROUTES.len()];
    let mut request = Request::builder().method(method.clone()).uri(*path);
    // With 0x40 set, the fuzzed bytes follow a real user's bearer token.
    let with_token;
    let authorization = if selector & 0x40 != 0 {
        let mut value = format!("Bearer {}", common::fixture().user_access).into_bytes();
        value.extend_from_slice(authorization);
        with_token = value;
        &with_token[..]
    } else {
        authorization
    };
    for (name, value) in [
        ("authorization", Some(authorization)),
        ("cookie", Some(cookie)),
        ("origin", origin),
    ] {
        if let Some(Ok(value)) = value.map(HeaderValue::from_bytes) {
            request = request.header(name, value);
        }
    }
    if selector & 0x80 != 0 {
        request = request.header("x-latchkey-csrf", "1");
    }
    common::send(request.body(Body::empty()).expect("a valid request"));
}

const JSON_ROUTES: &[(Method, &str)] = &[
    (Method::POST, "/auth/register"),
    (Method::POST, "/auth/login"),
    (Method::POST, "/auth/refresh"),
    (Method::POST, "/auth/logout"),
    (Method::POST, "/auth/logout-all"),
    (Method::POST, "/auth/password"),
    (Method::POST, "/auth/login/mfa"),
    (Method::POST, "/auth/mfa/totp/confirm"),
    (Method::POST, "/auth/mfa/recovery-codes"),
    (Method::DELETE, "/auth/mfa/totp"),
    (
        Method::PATCH,
        "/admin/users/00000000-0000-4000-8000-000000000000",
    ),
];

/// Every JSON request body through the router: no 5xx, every 4xx a JSON error with a
/// code. The first byte picks the route and whose bearer token goes with it.
pub fn http_json(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let fixture = common::fixture();
    let (method, path) = &JSON_ROUTES[usize::from(selector) % JSON_ROUTES.len()];
    let mut request = Request::builder()
        .method(method.clone())
        .uri(*path)
        .header("content-type", "application/json");
    // Without a token, the admin's, or the user's (a body that happens to log the user
    // out everywhere only makes later inputs meet a revoked token: still no 5xx).
    request = match (selector / 16) % 3 {
        0 => request,
        1 => request.header("authorization", format!("Bearer {}", fixture.admin_access)),
        _ => request.header("authorization", format!("Bearer {}", fixture.user_access)),
    };
    common::send(
        request
            .body(Body::from(body.to_vec()))
            .expect("a valid request"),
    );
}
