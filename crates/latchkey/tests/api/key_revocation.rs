//! Revoking a leaked signing key: its tokens stop verifying at once, from the verified
//! token cache too, on every replica (through Redis), and in resource services that read
//! the revocation feed.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::faults::PrivateRedis;
use crate::helpers::*;
use crate::keys::jwks_kids;
use crate::replicas::eventually;
use crate::services::{get_notes, start_notes_api, FEED_SECRET};

/// The `kid` in an access token's header.
fn kid_of(access: &str) -> String {
    use base64::Engine as _;
    let header = access.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn post(app: &TestApp, path: &str, bearer: &str) -> Response {
    app.client
        .post(app.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

async fn rotate(app: &TestApp, admin: &str) -> String {
    let body: Value = post(app, "/admin/keys/rotate", admin)
        .await
        .json()
        .await
        .unwrap();
    body["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_revoked_key_stops_verifying_at_once() {
    let app = spawn_app(&[]).await;
    let old = app.user_with_session("rey@example.com").await;
    let old_kid = kid_of(&old.access);
    let admin = app.create_admin("root@example.com").await;
    // Checked once: now in the verified-token cache.
    assert_eq!(app.me(&old.access).await.status(), StatusCode::OK);
    let new_kid = rotate(&app, &admin.access).await;
    let admin = app.login_body("root@example.com").await;
    assert_eq!(kid_of(&admin.access), new_kid);
    assert_eq!(
        app.me(&old.access).await.status(),
        StatusCode::OK,
        "rotation alone keeps old tokens"
    );

    let response = post(
        &app,
        &format!("/admin/keys/{old_kid}/revoke"),
        &admin.access,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let refused = app.me(&old.access).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(jwks_kids(&app).await, std::slice::from_ref(&new_kid));
    assert_eq!(app.me(&admin.access).await.status(), StatusCode::OK);
    // The session itself lives on: a refresh signs with the new key.
    let refreshed: Value = app.refresh_body(&old.refresh).await.json().await.unwrap();
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(kid_of(access), new_kid);
    assert_eq!(app.me(access).await.status(), StatusCode::OK);

    let again = post(
        &app,
        &format!("/admin/keys/{old_kid}/revoke"),
        &admin.access,
    )
    .await;
    assert_error(again, StatusCode::NOT_FOUND, "key_not_found").await;
    let unknown = post(&app, "/admin/keys/no-such-kid/revoke", &admin.access).await;
    assert_error(unknown, StatusCode::NOT_FOUND, "key_not_found").await;
    let user = post(&app, &format!("/admin/keys/{new_kid}/revoke"), access).await;
    assert_error(user, StatusCode::FORBIDDEN, "insufficient_role").await;

    // Revoking the active key puts a new one in its place.
    let response = post(
        &app,
        &format!("/admin/keys/{new_kid}/revoke"),
        &admin.access,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.me(&admin.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let kids = jwks_kids(&app).await;
    assert_eq!(kids.len(), 1);
    assert!(kids[0] != old_kid && kids[0] != new_kid);
    let fresh = app.login_body("root@example.com").await;
    assert_eq!(kid_of(&fresh.access), kids[0]);
    assert_eq!(app.me(&fresh.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_key_revocation_reaches_other_replicas_through_redis() {
    let Some(redis) = PrivateRedis::start().await else {
        return;
    };
    let (_dir, path) = temp_db();
    let url = redis.url();
    // The store poll is hourly and keys reload hourly: only fan-out can pass this.
    let args = [
        "--redis-url",
        url.as_str(),
        "--revocation-poll",
        "1h",
        "--key-reload",
        "1h",
    ];
    let a = spawn_app_on(&path, &args).await;
    let b = spawn_app_on(&path, &args).await;
    let user = a.user_with_session("sam@example.com").await;
    let old_kid = kid_of(&user.access);
    assert_eq!(b.me(&user.access).await.status(), StatusCode::OK);
    let admin = a.create_admin("root@example.com").await;
    rotate(&a, &admin.access).await;
    let admin = a.login_body("root@example.com").await;
    assert_eq!(b.me(&admin.access).await.status(), StatusCode::OK);

    let response = post(&a, &format!("/admin/keys/{old_kid}/revoke"), &admin.access).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let refused = eventually(Duration::from_secs(5), || async {
        b.me(&user.access).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused.is_some(),
        "replica B still accepts the revoked key's token"
    );
    assert_eq!(b.me(&admin.access).await.status(), StatusCode::OK);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn resource_services_refuse_a_revoked_key() {
    let auth = spawn_app(&["--revocation-feed-secret", FEED_SECRET]).await;
    let notes = start_notes_api(&auth).await;
    let client = reqwest::Client::new();
    let user = auth.user_with_session("tia@example.com").await;
    let old_kid = kid_of(&user.access);
    assert_eq!(
        get_notes(&client, &notes, &user.access).await.status(),
        StatusCode::OK
    );
    let admin = auth.create_admin("root@example.com").await;
    rotate(&auth, &admin.access).await;
    let admin = auth.login_body("root@example.com").await;
    let response = post(
        &auth,
        &format!("/admin/keys/{old_kid}/revoke"),
        &admin.access,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let refused = eventually(Duration::from_secs(5), || async {
        get_notes(&client, &notes, &user.access).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused.is_some(),
        "the resource service still accepts the revoked key"
    );
    assert_eq!(
        get_notes(&client, &notes, &admin.access).await.status(),
        StatusCode::OK
    );
}
