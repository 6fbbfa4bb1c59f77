use reqwest::header::{HeaderMap, COOKIE, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const COOKIE_NAME: &str = "latchkey_refresh";

async fn browser_login(app: &TestApp, email: &str) -> (String, String) {
    assert_eq!(app.register(email).await.status(), StatusCode::CREATED);
    let response = app
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "cookie delivery keeps the token out of the body"
    );
    (cookie, body["access_token"].as_str().unwrap().to_owned())
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

fn browser_headers(app: &TestApp, token: &str, origin: Option<&str>, csrf: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, format!("{COOKIE_NAME}={token}").parse().unwrap());
    if let Some(origin) = origin {
        headers.insert(ORIGIN, origin.parse().unwrap());
    }
    if csrf {
        headers.insert("x-latchkey-csrf", "1".parse().unwrap());
    }
    let _ = app;
    headers
}

#[tokio::test]
async fn the_refresh_cookie_has_safe_attributes() {
    let app = spawn_app(&[]).await;
    let (cookie, _) = browser_login(&app, "lee@example.com").await;
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("latchkey_refresh="));
    for expected in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/auth",
        "Max-Age=604800",
    ] {
        assert!(
            attributes.contains(&expected),
            "{expected} missing in {cookie}"
        );
    }
}

#[tokio::test]
async fn the_cookie_is_secure_and_prefixed_by_default() {
    let app = spawn_app(&["--cookie-secure", "true"]).await;
    assert_eq!(
        app.register("max@example.com").await.status(),
        StatusCode::CREATED
    );
    let response = app
        .post_json(
            "/auth/login",
            &json!({ "email": "max@example.com", "password": PASSWORD }),
        )
        .await;
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("__Host-latchkey_refresh="), "{cookie}");
    assert!(cookie.split(';').any(|a| a.trim() == "Path=/"), "{cookie}");
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    assert!(cookie.split(';').any(|a| a.trim() == "Secure"), "{cookie}");
}

#[tokio::test]
async fn cookie_refresh_needs_the_csrf_header_and_an_allowed_origin() {
    let app = spawn_app(&["--allowed-origins", "https://app.example.com"]).await;
    let (cookie, _) = browser_login(&app, "ned@example.com").await;
    let token = cookie_value(&cookie);
    let own_origin = app.address.clone();
    let refuse = [
        (Some(own_origin.as_str()), false),
        (None, true),
        (Some("https://evil.example.com"), true),
        (Some("null"), true),
    ];
    for (origin, csrf) in refuse {
        let response = app
            .client
            .post(app.url("/auth/refresh"))
            .headers(browser_headers(&app, &token, origin, csrf))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::FORBIDDEN, "csrf_check_failed").await;
    }
    // Refused attempts spent nothing: an allowed cross-origin app refreshes fine.
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .headers(browser_headers(
            &app,
            &token,
            Some("https://app.example.com"),
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );
    let next = cookie_value(response.headers()[SET_COOKIE].to_str().unwrap());
    assert_ne!(next, token);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    // Same origin as the server works too.
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .headers(browser_headers(&app, &next, Some(&own_origin), true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn cookie_logout_needs_csrf_defence_and_clears_the_cookie() {
    let app = spawn_app(&[]).await;
    let (cookie, access) = browser_login(&app, "ola@example.com").await;
    let token = cookie_value(&cookie);
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .headers(browser_headers(&app, &token, None, false))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "csrf_check_failed").await;
    assert_eq!(
        app.me(&access).await.status(),
        StatusCode::OK,
        "a refused logout changed nothing"
    );

    let own = app.address.clone();
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .headers(browser_headers(&app, &token, Some(&own), true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("latchkey_refresh=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_error(
        app.me(&access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let app = spawn_app(&[]).await;
    for path in ["/healthz", "/auth/me", "/.well-known/jwks.json", "/missing"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(
            headers["strict-transport-security"], "max-age=63072000",
            "{path}"
        );
        assert!(headers.contains_key("content-security-policy"), "{path}");
    }
}

#[tokio::test]
async fn the_default_cookie_mode_works_for_local_development_over_http() {
    // As `cargo run` starts it: issuer http://127.0.0.1:8080, cookie mode auto.
    let app = spawn_app(&[
        "--cookie-secure",
        "auto",
        "--issuer",
        "http://127.0.0.1:8080",
    ])
    .await;
    let (cookie, _) = browser_login(&app, "dev@example.com").await;
    assert!(cookie.starts_with("latchkey_refresh="), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    // A page served by the server itself refreshes with the cookie.
    let own_origin = app.address.clone();
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .headers(browser_headers(
            &app,
            &cookie_value(&cookie),
            Some(&own_origin),
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // A public issuer makes the same mode Secure.
    let public = spawn_app(&[
        "--cookie-secure",
        "auto",
        "--issuer",
        "https://auth.example.com",
    ])
    .await;
    let (cookie, _) = browser_login(&public, "prod@example.com").await;
    assert!(cookie.starts_with("__Host-latchkey_refresh="), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn a_refused_origin_is_named_with_the_setting_that_allows_it() {
    let app = spawn_app(&["--allowed-origins", "http://localhost:3000/"]).await;
    let (cookie, _) = browser_login(&app, "ori@example.com").await;
    let token = cookie_value(&cookie);
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .headers(browser_headers(
            &app,
            &token,
            Some("http://localhost:5173"),
            true,
        ))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, StatusCode::FORBIDDEN, "csrf_check_failed").await;
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("http://localhost:5173"), "{message}");
    assert!(message.contains("LATCHKEY_ALLOWED_ORIGINS"), "{message}");
    // The allowed origin was given with a trailing slash: it still matches.
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .headers(browser_headers(
            &app,
            &token,
            Some("http://localhost:3000"),
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
