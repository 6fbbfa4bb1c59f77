//! Password rules over HTTP: characters counted after NFKC, the NFKC form hashed (so a
//! full-width rendering of the password logs in), common passwords refused.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn common_passwords_are_refused_with_password_too_weak() {
    let app = spawn_app(&[]).await;
    for (n, weak) in ["password123", "12345678", "qwertyuiop", "iloveyou1"]
        .into_iter()
        .enumerate()
    {
        let response = app
            .post_json(
                "/auth/register",
                &json!({ "email": format!("weak{n}@example.com"), "password": weak }),
            )
            .await;
        let body = assert_error(response, StatusCode::BAD_REQUEST, "password_too_weak").await;
        assert!(
            !body.to_string().contains(weak),
            "echoes the password: {body}"
        );
    }
    // The account was not created: the address is still free.
    assert_eq!(
        app.register("weak0@example.com").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn length_is_counted_in_characters() {
    let app = spawn_app(&[]).await;
    // Three CJK characters are nine bytes but three characters.
    let response = app
        .post_json(
            "/auth/register",
            &json!({ "email": "kai@example.com", "password": "密码锁" }),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "password_too_short").await;
}

#[tokio::test]
async fn a_full_width_rendering_of_the_password_logs_in() {
    let app = spawn_app(&[]).await;
    let response = app
        .post_json(
            "/auth/register",
            &json!({ "email": "wen@example.com", "password": "ｃｏｒｒｅｃｔ\u{3000}ｈｏｒｓｅ\u{3000}ｂａｔｔｅｒｙ" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    for typed in [
        "correct horse battery",
        "ｃｏｒｒｅｃｔ\u{3000}ｈｏｒｓｅ\u{3000}ｂａｔｔｅｒｙ",
    ] {
        let response = app
            .post_json(
                "/auth/login",
                &json!({ "email": "wen@example.com", "password": typed, "refresh_delivery": "body" }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{typed}");
    }
    let response = app
        .post_json(
            "/auth/login",
            &json!({ "email": "wen@example.com", "password": "correct horse batterY" }),
        )
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}
