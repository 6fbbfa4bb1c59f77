//! Every JSON request body through the router: no 5xx, every 4xx a JSON error with a code.
//! The first byte picks the route and whose bearer token goes with it.
#![no_main]

#[path = "common.rs"]
mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;

const ROUTES: &[(Method, &str)] = &[
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

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let fixture = common::fixture();
    let (method, path) = &ROUTES[usize::from(selector) % ROUTES.len()];
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
    common::send(request.body(Body::from(body.to_vec())).unwrap());
});
