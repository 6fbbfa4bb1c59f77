//! Replicas sharing Redis (and one SQLite file): fan-out messages are authenticated, so a
//! Redis client without the server's key can neither revoke nor lift a revocation; and
//! rate limits hold across replicas. Each test runs its own `redis-server`, and polls
//! the store's revocation log only hourly, so only fan-out can carry a revocation.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use latchkey_core::model::SessionId;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::faults::PrivateRedis;
use crate::helpers::*;

/// The pub/sub channel revocations are announced on.
const REVOCATION_CHANNEL: &str = "latchkey:revocations";
use crate::replicas::eventually;

/// Two servers on one SQLite file and one Redis, polling the store's log only hourly.
async fn two_replicas(
    redis: &PrivateRedis,
    extra: &[&str],
) -> (tempfile::TempDir, TestApp, TestApp) {
    let (dir, path) = temp_db();
    let url = redis.url();
    let mut args = vec!["--redis-url", url.as_str(), "--revocation-poll", "1h"];
    args.extend_from_slice(extra);
    let a = spawn_app_on(&path, &args).await;
    let b = spawn_app_on(&path, &args).await;
    (dir, a, b)
}

fn claims_of(access: &str) -> Value {
    let payload = access.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The `sid` claim of an access token.
fn session_of(access: &str) -> SessionId {
    claims_of(access)["sid"].as_str().unwrap().parse().unwrap()
}

async fn publish(redis: &PrivateRedis, message: &str) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PUBLISH")
        .arg(REVOCATION_CHANNEL)
        .arg(message)
        .query_async::<i64>(&mut conn)
        .await
        .unwrap();
}

async fn logout(app: &TestApp, access: &str) {
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// Log out a fresh session on `from` and wait until `to` refuses its token: every
/// message published before has then been handled by `to` (one channel keeps order).
async fn revoke_through_fanout(from: &TestApp, to: &TestApp, email: &str) {
    let marker = from.login_body(email).await;
    logout(from, &marker.access).await;
    let seen = eventually(Duration::from_secs(10), || async {
        to.me(&marker.access).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        seen.is_some(),
        "a logout on one replica reaches the other through Redis"
    );
}

#[tokio::test]
async fn forged_redis_messages_neither_revoke_nor_unrevoke() {
    let Some(redis) = PrivateRedis::start().await else {
        return;
    };
    let (_dir, a, b) = two_replicas(&redis, &[]).await;
    let email = "fanout@example.com";
    assert_eq!(a.register(email).await.status(), StatusCode::CREATED);

    // A real revocation on B reaches A (through fan-out only: the poll is hourly).
    let revoked = a.login_body(email).await;
    assert_eq!(a.me(&revoked.access).await.status(), StatusCode::OK);
    logout(&b, &revoked.access).await;
    let seen = eventually(Duration::from_secs(10), || async {
        a.me(&revoked.access).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(seen.is_some(), "a valid revocation arrives through fan-out");

    // A plain Redis client publishes an un-revoke of that session and of its access token
    // (expiry 0, in the old unsigned form and with a made-up MAC), and a revocation of a
    // live session.
    let live = a.login_body(email).await;
    let revoked_sid = session_of(&revoked.access);
    let revoked_jti = claims_of(&revoked.access)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let live_sid = session_of(&live.access);
    publish(&redis, &format!("s:{revoked_sid}:0")).await;
    publish(&redis, &format!("t:{revoked_jti}:0")).await;
    publish(
        &redis,
        &format!("s:{revoked_sid}:0#AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    )
    .await;
    publish(&redis, &format!("s:{live_sid}:99999999999999")).await;
    revoke_through_fanout(&b, &a, email).await;

    // A purge drops only revocations whose tokens have expired: a forged expiry of 0
    // would have made this one go.
    a.service.purge().await.unwrap();
    assert_eq!(
        a.me(&revoked.access).await.status(),
        StatusCode::UNAUTHORIZED,
        "the forged un-revoke was ignored"
    );
    assert_eq!(
        a.me(&live.access).await.status(),
        StatusCode::OK,
        "the forged revocation was ignored"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_per_ip_login_limit_holds_across_replicas() {
    let Some(redis) = PrivateRedis::start().await else {
        return;
    };
    let (_dir, a, b) = two_replicas(&redis, &["--rate-login-per-ip", "3/1m"]).await;
    let email = "limit@example.com";
    assert_eq!(a.register(email).await.status(), StatusCode::CREATED);
    let body = json!({ "email": email, "password": PASSWORD, "refresh_delivery": "body" });
    let login = |app: &TestApp| {
        let request = app.client.post(app.url("/auth/login")).json(&body);
        async move { request.send().await.unwrap() }
    };
    assert_eq!(login(&a).await.status(), StatusCode::OK);
    assert_eq!(login(&b).await.status(), StatusCode::OK);
    assert_eq!(login(&a).await.status(), StatusCode::OK);
    // The fourth login from this address within the minute, on either replica.
    assert_error(
        login(&b).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    assert_error(
        login(&a).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    a.stop().await;
    b.stop().await;
}
