use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn refresh_spends_the_token_and_a_late_replay_revokes_the_family() {
    // No grace: any replay of a spent token is reuse.
    let app = spawn_app(&["--reuse-grace", "0s"]).await;
    let first = app.user_with_session("fay@example.com").await;
    let second = Tokens::from(
        app.refresh_body(&first.refresh)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    let third = Tokens::from(
        app.refresh_body(&second.refresh)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    // The thief replays the first token: the whole family dies.
    assert_error(
        app.refresh_body(&first.refresh).await,
        reqwest::StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;
    assert_error(
        app.refresh_body(&third.refresh).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
    for access in [&first.access, &second.access, &third.access] {
        assert_error(
            app.me(access).await,
            StatusCode::UNAUTHORIZED,
            "token_revoked",
        )
        .await;
    }

    // Other sessions of the same user live on.
    let other = app.login_body("fay@example.com").await;
    assert_eq!(app.me(&other.access).await.status(), StatusCode::OK);

    let admin = app.create_admin("root@example.com").await;
    let events = app.get_json("/admin/security-events", &admin.access).await;
    let reuse: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "refresh_reuse_detected")
        .collect();
    assert_eq!(reuse.len(), 1, "one security event: {events}");
    assert!(reuse[0]["session_id"].is_string() && reuse[0]["user_id"].is_string());
}

#[tokio::test]
async fn a_replay_within_the_grace_window_gets_the_same_successor() {
    let app = spawn_app(&["--reuse-grace", "10s"]).await;
    let first = app.user_with_session("gus@example.com").await;
    let a = Tokens::from(
        app.refresh_body(&first.refresh)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    let response = app.refresh_body(&first.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let b = Tokens::from(response.json::<Value>().await.unwrap());
    assert_eq!(
        a.refresh, b.refresh,
        "the late caller gets the same successor"
    );
    assert_ne!(a.access, b.access, "with a fresh access token");
    assert_eq!(app.me(&a.access).await.status(), StatusCode::OK);
    assert_eq!(app.me(&b.access).await.status(), StatusCode::OK);
    // And the session goes on from that successor.
    assert_eq!(app.refresh_body(&a.refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn fifty_concurrent_refreshes_of_one_token_end_with_one_successor() {
    let app = spawn_app(&[]).await;
    let first = app.user_with_session("hal@example.com").await;
    let responses = join_all((0..50).map(|_| app.refresh_body(&first.refresh))).await;
    let mut successors = HashSet::new();
    for response in responses {
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "no request fails, none answers 500"
        );
        successors.insert(Tokens::from(response.json::<Value>().await.unwrap()).refresh);
    }
    assert_eq!(successors.len(), 1, "exactly one successor exists");
    let successor = successors.into_iter().next().unwrap();
    assert_eq!(app.refresh_body(&successor).await.status(), StatusCode::OK);
}

/// `token` with the bytes of its locator (session id, then generation) changed by `edit`.
fn moved(token: &str, edit: impl FnOnce(&mut [u8])) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
    edit(&mut bytes[..20]);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_refresh_token_moved_to_another_place_is_invalid_and_harms_no_session() {
    let app = spawn_app(&["--reuse-grace", "0s"]).await;
    let mine = app.user_with_session("mo@example.com").await;
    let theirs = app.user_with_session("ned@example.com").await;
    let their_locator = URL_SAFE_NO_PAD.decode(&theirs.refresh).unwrap()[..20].to_vec();
    for forged in [
        moved(&mine.refresh, |at| at[19] ^= 1),
        moved(&mine.refresh, |at| at.copy_from_slice(&their_locator)),
    ] {
        assert_error(
            app.refresh_body(&forged).await,
            StatusCode::UNAUTHORIZED,
            "refresh_token_invalid",
        )
        .await;
    }
    // Neither family took it for reuse: both tokens still rotate.
    for tokens in [&mine, &theirs] {
        assert_eq!(
            app.refresh_body(&tokens.refresh).await.status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn unknown_and_malformed_refresh_tokens_are_invalid() {
    let app = spawn_app(&[]).await;
    for token in [
        "",
        "short",
        &"A".repeat(43),
        &URL_SAFE_NO_PAD.encode([7u8; 52]),
        "eyJhbGciOiJFZERTQSJ9.e30.c2ln",
    ] {
        let response = app.refresh_body(token).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "refresh_token_invalid").await;
    }
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "refresh_token_missing").await;
}

#[tokio::test]
async fn an_idle_refresh_token_expires() {
    let app = spawn_app(&[
        "--access-ttl",
        "10s",
        "--refresh-ttl",
        "11s",
        "--session-lifetime",
        "30s",
    ])
    .await;
    let tokens = app.user_with_session("ivy@example.com").await;
    // Idle lifetime is 11 s. Used within it, the token rotates; the server's clock then
    // moves past the successor's idle lifetime (still inside the 30 s session lifetime).
    app.clock.advance(std::time::Duration::from_secs(10));
    let response = app.refresh_body(&tokens.refresh).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "used within its idle lifetime"
    );
    let next: Value = response.json().await.unwrap();
    app.clock.advance(std::time::Duration::from_millis(11_100));
    assert_error(
        app.refresh_body(next["refresh_token"].as_str().unwrap())
            .await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_expired",
    )
    .await;
}
