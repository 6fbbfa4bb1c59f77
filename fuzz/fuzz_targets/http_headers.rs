//! The `Authorization` and `Cookie` headers (and the CSRF and `Origin` headers that come
//! with a cookie) through the router: no 5xx, every 4xx a JSON error with a code.
//! Input: selector byte, then Authorization, Cookie and Origin values split at 0xFF.
#![no_main]

#[path = "common.rs"]
mod common;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request};
use libfuzzer_sys::fuzz_target;

const ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/auth/me"),
    (Method::POST, "/auth/refresh"),
    (Method::POST, "/auth/logout"),
    (Method::GET, "/auth/sessions"),
    (Method::GET, "/admin/users"),
    (Method::GET, "/auth/revocations"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.split(|&b| b == 0xFF);
    let authorization = parts.next().unwrap_or_default();
    let cookie = parts.next().unwrap_or_default();
    let origin = parts.next();
    let (method, path) = &ROUTES[usize::from(selector) % ROUTES.len()];
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
    common::send(request.body(Body::empty()).unwrap());
});
