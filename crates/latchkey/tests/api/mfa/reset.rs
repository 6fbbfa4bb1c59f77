//! A password reset by e-mail on an account with a second factor needs a code too, or
//! the mailbox alone would take the account over.

use reqwest::StatusCode;
use serde_json::json;

use super::user_with_totp;
use crate::email::{mail_setup, request_reset, NEW_PASSWORD};
use crate::helpers::assert_error;
use crate::mail_sink::wait_for;

#[tokio::test]
async fn a_reset_with_totp_on_needs_a_code_spent_once() {
    let Some((dir, sink, app)) = mail_setup(&[]).await else {
        return;
    };
    let email = "guarded@example.com";
    let (_tokens, mut authenticator, recovery) = user_with_totp(&app, email).await;
    let (status, _) = request_reset(&app, email).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mail = wait_for(dir.path(), email, "Reset your password", 1).await;
    let token = mail[0].token("reset");
    let confirm = |code: Option<String>| {
        let mut body = json!({ "token": token, "new_password": NEW_PASSWORD });
        if let Some(code) = code {
            body["mfa_code"] = json!(code);
        }
        let app = &app;
        async move { app.post_json("/auth/password-reset/confirm", &body).await }
    };
    assert_error(
        confirm(None).await,
        StatusCode::BAD_REQUEST,
        "mfa_code_missing",
    )
    .await;
    let wrong = authenticator.wrong_code();
    assert_error(
        confirm(Some(wrong)).await,
        StatusCode::UNAUTHORIZED,
        "mfa_code_invalid",
    )
    .await;
    // The link still works: only a right code lets it through.
    let code = authenticator.next_code().await;
    assert_eq!(
        confirm(Some(code.clone())).await.status(),
        StatusCode::NO_CONTENT
    );
    // The code was spent: it cannot sign in now.
    let login = app
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": NEW_PASSWORD, "refresh_delivery": "body" }),
        )
        .await;
    let body: serde_json::Value = login.json().await.unwrap();
    let mfa_token = body["mfa_token"].as_str().unwrap();
    let replay = super::second_step(&app, mfa_token, "code", &code).await;
    assert_error(replay, StatusCode::UNAUTHORIZED, "mfa_code_invalid").await;
    let with_recovery = super::second_step(&app, mfa_token, "recovery_code", &recovery[0]).await;
    assert_eq!(with_recovery.status(), StatusCode::OK);
    sink.stop().await;
}
