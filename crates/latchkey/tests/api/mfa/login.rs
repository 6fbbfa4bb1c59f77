//! The login's second step: the refresh delivery, the wrong-code limit, the back-off, and
//! replay across replicas.

use reqwest::{header, StatusCode};
use serde_json::Value;

use super::{first_step, mfa_token, second_step, user_with_totp};
use crate::helpers::{assert_error, spawn_app, spawn_app_on, temp_db};

#[tokio::test]
async fn the_second_step_keeps_the_cookie_delivery_of_the_first() {
    let app = spawn_app(&[]).await;
    let (_, mut authenticator, _) = user_with_totp(&app, "cookie@example.com").await;
    let first: Value = first_step(&app, "cookie@example.com", None)
        .await
        .json()
        .await
        .unwrap();
    let token = first["mfa_token"].as_str().unwrap();
    let response = second_step(&app, token, "code", &authenticator.next_code().await).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .expect("a refresh cookie");
    assert!(cookie.to_str().unwrap().contains("HttpOnly"));
    let body: Value = response.json().await.unwrap();
    assert!(
        body["access_token"].is_string() && body.get("refresh_token").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn the_sixth_wrong_code_finds_the_mfa_token_void() {
    let app = spawn_app(&[]).await;
    let (_, mut authenticator, recovery) = user_with_totp(&app, "six@example.com").await;
    let token = mfa_token(&app, "six@example.com").await;
    for _ in 0..5 {
        let wrong = second_step(&app, &token, "code", &authenticator.wrong_code()).await;
        assert_error(wrong, StatusCode::UNAUTHORIZED, "mfa_code_invalid").await;
    }
    // Even a right code (and a recovery code) no longer completes this login.
    let sixth = second_step(&app, &token, "code", &authenticator.next_code().await).await;
    assert_error(sixth, StatusCode::UNAUTHORIZED, "mfa_token_invalid").await;
    let sixth = second_step(&app, &token, "recovery_code", &recovery[0]).await;
    assert_error(sixth, StatusCode::UNAUTHORIZED, "mfa_token_invalid").await;
    let unknown = second_step(&app, "no-such-token", "code", "123456").await;
    assert_error(unknown, StatusCode::UNAUTHORIZED, "mfa_token_invalid").await;
}

#[tokio::test]
async fn a_code_accepted_on_one_replica_is_refused_on_another() {
    let (_dir, path) = temp_db();
    let a = spawn_app_on(&path, &[]).await;
    let b = spawn_app_on(&path, &[]).await;
    let (_, mut authenticator, recovery) = user_with_totp(&a, "replicas@example.com").await;
    let on_a = mfa_token(&a, "replicas@example.com").await;
    let on_b = mfa_token(&b, "replicas@example.com").await;
    let code = authenticator.next_code().await;
    assert_eq!(
        second_step(&a, &on_a, "code", &code).await.status(),
        StatusCode::OK
    );
    assert_error(
        second_step(&b, &on_b, "code", &code).await,
        StatusCode::UNAUTHORIZED,
        "mfa_code_invalid",
    )
    .await;
    // B completes the same login with a recovery code: the refusal was the replay.
    assert_eq!(
        second_step(&b, &on_b, "recovery_code", &recovery[0])
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn wrong_codes_count_toward_the_login_back_off() {
    let app = spawn_app(&["--login-free-failures", "2"]).await;
    let (_, authenticator, _) = user_with_totp(&app, "backoff@example.com").await;
    let token = mfa_token(&app, "backoff@example.com").await;
    for _ in 0..2 {
        let wrong = second_step(&app, &token, "code", &authenticator.wrong_code()).await;
        assert_error(wrong, StatusCode::UNAUTHORIZED, "mfa_code_invalid").await;
    }
    // Two failures used the allowance: the account now backs off, in both steps.
    let third = second_step(&app, &token, "code", &authenticator.wrong_code()).await;
    assert_error(third, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let login = first_step(&app, "backoff@example.com", Some("body")).await;
    assert_error(login, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}
