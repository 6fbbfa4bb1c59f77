use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn bad_bodies_get_400_with_a_code() {
    let app = spawn_app(&[]).await;
    let post = |path: &'static str, content_type: &'static str, body: &'static str| {
        app.client
            .post(app.url(path))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let cases = [
        (
            "/auth/register",
            "application/json",
            "{\"email\": ",
            "malformed_json",
        ),
        (
            "/auth/register",
            "application/json",
            "[1,2",
            "malformed_json",
        ),
        (
            "/auth/register",
            "text/plain",
            "{\"email\":\"a@b.co\",\"password\":\"12345678\"}",
            "content_type_invalid",
        ),
        (
            "/auth/register",
            "application/json",
            "{\"email\":\"a@b.co\"}",
            "invalid_request",
        ),
        (
            "/auth/register",
            "application/json",
            "{\"email\":1,\"password\":\"12345678\"}",
            "invalid_request",
        ),
        (
            "/auth/register",
            "application/json",
            "{\"email\":\"not-an-email\",\"password\":\"12345678\"}",
            "email_invalid",
        ),
        (
            "/auth/register",
            "application/json",
            "{\"email\":\"a@b.co\",\"password\":\"short\"}",
            "password_too_short",
        ),
        (
            "/auth/login",
            "application/json",
            "{\"password\":\"12345678\"}",
            "invalid_request",
        ),
        (
            "/auth/login",
            "application/json",
            "{\"email\":\"a@b.co\",\"password\":\"12345678\",\"refresh_delivery\":\"pigeon\"}",
            "invalid_request",
        ),
        (
            "/auth/refresh",
            "text/plain",
            "refresh_token=abc",
            "content_type_invalid",
        ),
        (
            "/auth/refresh",
            "application/json",
            "{\"refresh_token\": 5}",
            "invalid_request",
        ),
    ];
    for (path, content_type, body, code) in cases {
        assert_error(
            post(path, content_type, body).await.unwrap(),
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
    }
    let long = "x".repeat(1025);
    let response = app
        .post_json(
            "/auth/register",
            &json!({ "email": "a@b.co", "password": long }),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "password_too_long").await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = spawn_app(&[]).await;
    let big = format!(
        "{{\"email\":\"a@b.co\",\"password\":\"{}\"}}",
        "x".repeat(17 * 1024)
    );
    for path in ["/auth/register", "/auth/login", "/auth/refresh"] {
        let response = app
            .client
            .post(app.url(path))
            .header(CONTENT_TYPE, "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    }
}

#[tokio::test]
async fn login_floods_get_429_with_retry_after() {
    let app = spawn_app(&["--rate-login-per-ip", "3/1m"]).await;
    let body = json!({ "email": "pat@example.com", "password": "wrong password" });
    let attempt = || app.post_json("/auth/login", &body);
    for _ in 0..3 {
        assert_eq!(attempt().await.status(), StatusCode::UNAUTHORIZED);
    }
    let response = attempt().await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn failed_logins_back_off_per_account() {
    let app = spawn_app(&["--login-free-failures", "2"]).await;
    for _ in 0..2 {
        let r = app
            .post_json(
                "/auth/login",
                &json!({ "email": "Quin@example.com", "password": "wrong password" }),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The same account, spelled differently, is the same bucket.
    let r = app
        .post_json(
            "/auth/login",
            &json!({ "email": "quin@EXAMPLE.com", "password": "wrong password" }),
        )
        .await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let other = app
        .post_json(
            "/auth/login",
            &json!({ "email": "rae@example.com", "password": "wrong password" }),
        )
        .await;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_and_register_are_rate_limited_too() {
    let app = spawn_app(&[
        "--rate-refresh-per-ip",
        "2/1m",
        "--rate-register-per-ip",
        "2/1m",
    ])
    .await;
    assert_eq!(
        app.register("sam@example.com").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.register("sue@example.com").await.status(),
        StatusCode::CREATED
    );
    assert_error(
        app.register("sid@example.com").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    for _ in 0..2 {
        assert_eq!(
            app.refresh_body(&"A".repeat(43)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_error(
        app.refresh_body(&"A".repeat(43)).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[tokio::test]
async fn a_login_flood_is_queued_or_refused_and_refreshes_go_on() {
    let app = spawn_app(&["--hash-workers", "1", "--hash-queue", "2"]).await;
    let tokens = app.user_with_session("flo@example.com").await;
    let body = json!({ "email": "flo@example.com", "password": "wrong password" });
    let flood = futures::future::join_all((0..12).map(|_| app.post_json("/auth/login", &body)));
    let refresh = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        app.refresh_body(&tokens.refresh).await
    };
    let (responses, refreshed) = tokio::join!(flood, refresh);
    assert_eq!(
        refreshed.status(),
        StatusCode::OK,
        "refreshes need no password hash and go through"
    );
    let mut refused = 0;
    for response in responses {
        match response.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(response.headers().contains_key("retry-after"));
                assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "overloaded").await;
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0, "beyond the queue, logins are refused with 503");
}
