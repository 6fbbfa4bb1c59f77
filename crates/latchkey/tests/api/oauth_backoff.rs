//! Failed client authentication at `/oauth/introspect` and `/oauth/revoke` backs off,
//! per client network and per client id, before the secret is looked at.

use reqwest::{header, StatusCode};

use crate::helpers::*;
use crate::oauth::{app_with, form, CLIENT, OTHER, SECRET};

/// POST to `/oauth/introspect` from `client_ip` (through a trusted proxy) as `client`.
async fn introspect_from(
    app: &TestApp,
    client_ip: &str,
    client: (&str, &str),
    token: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/introspect"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-for", client_ip)
        .basic_auth(client.0, Some(client.1))
        .body(form(&[("token", token)]))
        .send()
        .await
        .unwrap()
}

async fn assert_backs_off(response: reqwest::Response) {
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(retry_after.is_some_and(|s| s.to_str().unwrap().parse::<u64>().unwrap() >= 1));
}

fn refusals(metrics: &str, rule: &str) -> usize {
    let line = format!("latchkey_rate_limited_total{{rule=\"{rule}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn failed_client_authentication_backs_off_per_network_and_per_client_id() {
    let app = app_with(&[
        "--trusted-proxies",
        "1",
        "--login-free-failures",
        "2",
        "--login-account-ceiling",
        "3",
    ])
    .await;
    let token = app.user_with_session("ci@example.com").await.access;
    let wrong = (CLIENT, "wrong-secret-0123456789");

    // Two free failures from one network, then it waits: whatever the client id, and
    // even with the right secret (checked only after the wait).
    let attacker = "198.51.100.66";
    for _ in 0..2 {
        let response = introspect_from(&app, attacker, wrong, &token).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    assert_backs_off(introspect_from(&app, attacker, (CLIENT, SECRET), &token).await).await;
    assert_backs_off(introspect_from(&app, "198.51.100.7", OTHER, &token).await).await;

    // Another network is not held up, and a third failure for the client id reaches
    // its ceiling over all networks: that client id now waits everywhere ...
    let elsewhere = "203.0.113.9";
    let response = introspect_from(&app, elsewhere, OTHER, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = introspect_from(&app, elsewhere, wrong, &token).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert_backs_off(introspect_from(&app, "192.0.2.1", (CLIENT, SECRET), &token).await).await;
    // ... while other clients go on.
    let response = introspect_from(&app, "192.0.2.1", OTHER, &token).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Revocation shares the counts.
    let response = app
        .client
        .post(app.url("/oauth/revoke"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-for", attacker)
        .basic_auth(OTHER.0, Some(OTHER.1))
        .body(form(&[("token", &token)]))
        .send()
        .await
        .unwrap();
    assert_backs_off(response).await;

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(refusals(&metrics, "client_auth:network"), 3, "{metrics}");
    assert_eq!(refusals(&metrics, "client_auth:client"), 1, "{metrics}");
    // Nothing was revoked by the refused calls.
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
}
