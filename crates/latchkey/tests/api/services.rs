//! A resource service (examples/notes-api, protected by latchkey-verify) next to a real
//! Latchkey server: it verifies tokens on its own, follows key rotation and revocations.

use std::sync::Arc;
use std::time::Duration;

use latchkey_verify::RemoteVerifier;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::replicas::eventually;

pub const FEED_SECRET: &str = "a-feed-secret-of-at-least-32-bytes!!";

pub async fn start_notes_api(auth: &TestApp) -> String {
    let verifier = RemoteVerifier::builder()
        .jwks_url(auth.url("/.well-known/jwks.json"))
        .issuer("https://auth.test")
        .audience("test-api")
        .min_refetch_interval(Duration::from_millis(100))
        .revocation_feed(auth.url("/auth/revocations"), FEED_SECRET)
        .revocation_poll_interval(Duration::from_millis(200))
        .build()
        .await
        .expect("the verifier reaches the server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, notes_api::app(Arc::new(verifier)))
            .await
            .unwrap();
    });
    address
}

pub async fn get_notes(client: &reqwest::Client, notes: &str, token: &str) -> reqwest::Response {
    client
        .get(format!("{notes}/notes"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn notes_api_follows_key_rotation_and_logout() {
    let auth = spawn_app(&["--revocation-feed-secret", FEED_SECRET]).await;
    let notes = start_notes_api(&auth).await;
    let client = reqwest::Client::new();
    let user = auth.user_with_session("ann@example.com").await;
    let admin = auth.create_admin("root@example.com").await;

    let response = client
        .post(format!("{notes}/notes"))
        .bearer_auth(&user.access)
        .json(&json!({ "text": "hello" }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        get_notes(&client, &notes, &user.access).await.status(),
        StatusCode::OK
    );
    let response = client
        .get(format!("{notes}/admin/notes"))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "insufficient_role").await;
    assert_eq!(
        client
            .get(format!("{notes}/admin/notes"))
            .bearer_auth(&admin.access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_error(
        get_notes(&client, &notes, "not-a-token").await,
        StatusCode::UNAUTHORIZED,
        "token_invalid",
    )
    .await;

    // Keys rotate at the server; the service accepts tokens of the new key without a restart.
    let response = auth
        .client
        .post(auth.url("/admin/keys/rotate"))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let fresh = Tokens::from(
        auth.refresh_body(&user.refresh)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    assert_eq!(
        get_notes(&client, &notes, &fresh.access).await.status(),
        StatusCode::OK,
        "new key accepted"
    );
    assert_eq!(
        get_notes(&client, &notes, &user.access).await.status(),
        StatusCode::OK,
        "old key still accepted"
    );

    // Logout at the server: the service refuses the token within its poll interval.
    let response = auth
        .client
        .post(auth.url("/auth/logout"))
        .bearer_auth(&fresh.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let refused = eventually(Duration::from_secs(2), || async {
        get_notes(&client, &notes, &fresh.access).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused.is_some(),
        "the service honours the logout within the configured delay"
    );
    assert_error(
        get_notes(&client, &notes, &fresh.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
}

#[tokio::test]
async fn the_revocation_feed_needs_its_secret_and_is_off_without_one() {
    let off = spawn_app(&[]).await;
    let response = off
        .client
        .get(off.url("/auth/revocations"))
        .bearer_auth(FEED_SECRET)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;

    let on = spawn_app(&["--revocation-feed-secret", FEED_SECRET]).await;
    let response = on
        .client
        .get(on.url("/auth/revocations"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "feed_secret_invalid").await;
    let tokens = on.user_with_session("bea@example.com").await;
    let session = crate::accounts::session_of(&on, &tokens.access).await;
    let response = on
        .client
        .post(on.url("/auth/logout"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let feed = on.get_json("/auth/revocations?after=0", FEED_SECRET).await;
    // Logging out with an access token ends its session: one entry, which refuses
    // that access token as well as the session's others.
    let kinds = strings(&feed["entries"], "kind");
    assert_eq!(kinds, ["session"], "{feed}");
    assert_eq!(feed["entries"][0]["value"], session.as_str(), "{feed}");
    let next = feed["next"].as_i64().unwrap();
    let later = on
        .get_json(&format!("/auth/revocations?after={next}"), FEED_SECRET)
        .await;
    assert_eq!(later, json!({ "entries": [], "next": next }));
}
