//! Guessing passwords: failures back off per account and client network, so an
//! attacker elsewhere cannot lock the owner out; client addresses behind proxies; IPv6
//! networks share a bucket.

use reqwest::StatusCode;
use serde_json::Value;

use crate::accounts::{login_from, FIREFOX};
use crate::helpers::{assert_error, spawn_app, PASSWORD};

#[tokio::test]
async fn wrong_passwords_from_one_network_do_not_lock_out_another() {
    let app = spawn_app(&["--trusted-proxies", "1"]).await;
    app.register("lu@example.com").await;
    let attacker = Some("198.51.100.66");
    let mut statuses = Vec::new();
    let mut last_retry_after = None;
    for _ in 0..11 {
        let response = login_from(
            &app,
            "lu@example.com",
            "guess guess guess",
            FIREFOX,
            attacker,
        )
        .await;
        statuses.push(response.status().as_u16());
        last_retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    }
    // Five free failures, then the network must wait.
    assert_eq!(&statuses[..5], [401; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    assert!(
        last_retry_after.is_some_and(|s| s >= 1),
        "{last_retry_after:?}"
    );
    // Even the right password waits there ...
    let there = login_from(&app, "lu@example.com", PASSWORD, FIREFOX, attacker).await;
    assert_error(there, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // ... and its neighbours in the same /24 too ...
    let neighbour = login_from(
        &app,
        "lu@example.com",
        PASSWORD,
        FIREFOX,
        Some("198.51.100.7"),
    )
    .await;
    assert_eq!(neighbour.status(), StatusCode::TOO_MANY_REQUESTS);
    // ... but the owner elsewhere signs in.
    let owner = login_from(
        &app,
        "lu@example.com",
        PASSWORD,
        FIREFOX,
        Some("203.0.113.20"),
    )
    .await;
    assert_eq!(owner.status(), StatusCode::OK);
    // An account that does not exist is told exactly the same.
    let mut ghost = Vec::new();
    for _ in 0..6 {
        let r = login_from(
            &app,
            "nobody@example.com",
            "guess guess guess",
            FIREFOX,
            attacker,
        )
        .await;
        ghost.push(r.status().as_u16());
    }
    assert_eq!(ghost, [401, 401, 401, 401, 401, 429]);
}

#[tokio::test]
async fn the_account_ceiling_stops_distributed_guessing() {
    let app = spawn_app(&[
        "--trusted-proxies",
        "1",
        "--login-free-failures",
        "3",
        "--login-account-ceiling",
        "6",
    ])
    .await;
    let admin = app.create_admin("root@example.com").await;
    app.register("mo@example.com").await;
    // Two failures from each of three networks: no network reaches its own limit.
    for net in ["198.51.100.1", "198.51.101.1", "198.51.102.1"] {
        for _ in 0..2 {
            let r = login_from(
                &app,
                "mo@example.com",
                "guess guess guess",
                FIREFOX,
                Some(net),
            )
            .await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
    }
    let fresh_network =
        login_from(&app, "mo@example.com", PASSWORD, FIREFOX, Some("192.0.2.1")).await;
    assert_error(fresh_network, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let log = app.get_json("/admin/security-events", &admin.access).await;
    let ceilings = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "login_ceiling_reached")
        .count();
    assert_eq!(ceilings, 1);
}

#[tokio::test]
async fn a_success_resets_its_network() {
    let app = spawn_app(&["--login-free-failures", "3"]).await;
    app.register("ni@example.com").await;
    for _ in 0..2 {
        let r = login_from(&app, "ni@example.com", "guess guess guess", FIREFOX, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_from(&app, "ni@example.com", PASSWORD, FIREFOX, None)
            .await
            .status(),
        StatusCode::OK
    );
    // Three more free failures after the reset (without it the third would wait).
    for _ in 0..3 {
        let r = login_from(&app, "ni@example.com", "guess guess guess", FIREFOX, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login_from(&app, "ni@example.com", "guess guess guess", FIREFOX, None).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// The address a session was made from, as the session list tells it.
async fn session_ip(app: &crate::helpers::TestApp, access: &str) -> String {
    let body: Value = app.get_json("/auth/sessions", access).await;
    body["sessions"][0]["ip"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_client_cannot_choose_its_address_with_a_second_header_line() {
    let app = spawn_app(&["--trusted-proxies", "1"]).await;
    app.register("ol@example.com").await;
    // The client sent its own X-Forwarded-For; the proxy added a second line.
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-for", "203.0.113.9")
        .json(&serde_json::json!({"email": "ol@example.com", "password": PASSWORD, "refresh_delivery": "body"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(session_ip(&app, access).await, "203.0.113.9");

    // Without trusted proxies, forwarded addresses are ignored.
    let direct = spawn_app(&[]).await;
    direct.register("ol@example.com").await;
    let response = login_from(
        &direct,
        "ol@example.com",
        PASSWORD,
        FIREFOX,
        Some("203.0.113.9"),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(session_ip(&direct, access).await, "127.0.0.1");
}

#[tokio::test]
async fn ipv6_addresses_of_one_slash_64_share_a_bucket() {
    let app = spawn_app(&["--trusted-proxies", "1", "--rate-login-per-ip", "2/1m"]).await;
    app.register("pa@example.com").await;
    for ip in ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"] {
        let r = login_from(&app, "pa@example.com", PASSWORD, FIREFOX, Some(ip)).await;
        assert_eq!(r.status(), StatusCode::OK, "{ip}");
    }
    let same_64 = login_from(
        &app,
        "pa@example.com",
        PASSWORD,
        FIREFOX,
        Some("2001:db8:1:2:abcd::5"),
    )
    .await;
    assert_error(same_64, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let next_64 = login_from(
        &app,
        "pa@example.com",
        PASSWORD,
        FIREFOX,
        Some("2001:db8:1:3::1"),
    )
    .await;
    assert_eq!(next_64.status(), StatusCode::OK);
}
