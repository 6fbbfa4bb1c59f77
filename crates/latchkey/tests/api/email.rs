//! E-mail flows against a real SMTP server (aiosmtpd, see `mail_sink`): verification
//! and re-sending, required verification at login, password reset (known and unknown
//! addresses, single use, expiry, every session revoked), change of address. Notices
//! and delivery are in `email_delivery`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::mail_sink::{self, delivered, wait_for, Sink};

pub(crate) const NEW_PASSWORD: &str = "a different passphrase entirely";

/// A server sending through `smtp_url`, links under https://app.test.
pub(crate) async fn app_with_smtp(smtp_url: &str, extra: &[&str]) -> TestApp {
    let mut args = vec![
        "--smtp-url",
        smtp_url,
        "--public-url",
        "https://app.test/",
        "--mail-retry-base",
        "100ms",
        "--mail-poll",
        "100ms",
        "--reuse-grace",
        "0s",
    ];
    args.extend_from_slice(extra);
    spawn_app(&args).await
}

/// A sink in a fresh directory and a server sending to it; `None` to skip.
pub(crate) async fn mail_setup(extra: &[&str]) -> Option<(tempfile::TempDir, Sink, TestApp)> {
    if !mail_sink::available().await {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(dir.path(), None).await;
    let app = app_with_smtp(&sink.url(), extra).await;
    Some((dir, sink, app))
}

pub(crate) async fn login_status(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/auth/login",
        &json!({ "email": email, "password": password, "refresh_delivery": "body" }),
    )
    .await
}

async fn verify(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/auth/verify-email", &json!({ "token": token }))
        .await
}

pub(crate) async fn request_reset(app: &TestApp, email: &str) -> (StatusCode, Value) {
    let response = app
        .post_json("/auth/password-reset", &json!({ "email": email }))
        .await;
    (response.status(), response.json().await.unwrap())
}

async fn confirm_reset(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json(
        "/auth/password-reset/confirm",
        &json!({ "token": token, "new_password": NEW_PASSWORD }),
    )
    .await
}

/// The `email_verified` claim of an access token.
fn email_verified_claim(access_token: &str) -> Value {
    use base64::Engine;
    let payload = access_token.split('.').nth(1).unwrap();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<Value>(&payload).unwrap()["email_verified"].clone()
}

pub(crate) async fn post_auth(
    app: &TestApp,
    path: &str,
    bearer: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn verification_link_gates_login_when_required_and_works_once() {
    let Some((dir, sink, app)) = mail_setup(&["--require-verified-email", "true"]).await else {
        return;
    };
    let email = "verify@example.com";
    assert_eq!(app.register(email).await.status(), StatusCode::CREATED);
    let refused = login_status(&app, email, PASSWORD).await;
    assert_error(refused, StatusCode::FORBIDDEN, "email_not_verified").await;
    // A wrong password still gets the usual answer, not a hint that the account exists.
    let wrong = login_status(&app, email, "not the password at all").await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let mail = wait_for(dir.path(), email, "Confirm your e-mail", 1)
        .await
        .remove(0);
    assert!(
        mail.text.contains("https://app.test/verify?token="),
        "{}",
        mail.text
    );
    let token = mail.token("verify");
    // The HTML part carries the same link (its slashes HTML-escaped).
    assert!(mail.html.contains(&token));
    assert_eq!(verify(&app, &token).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        login_status(&app, email, PASSWORD).await.status(),
        StatusCode::OK
    );
    let again = verify(&app, &token).await;
    assert_error(again, StatusCode::BAD_REQUEST, "verification_token_invalid").await;
    let junk = verify(&app, "not-a-token").await;
    assert_error(junk, StatusCode::BAD_REQUEST, "verification_token_invalid").await;
    sink.stop().await;
}

#[tokio::test]
async fn resend_sends_a_new_link_that_works() {
    let Some((dir, sink, app)) = mail_setup(&[]).await else {
        return;
    };
    let email = "resend@example.com";
    let tokens = app.user_with_session(email).await;
    wait_for(dir.path(), email, "Confirm your e-mail", 1).await;
    let resend = post_auth(
        &app,
        "/auth/verify-email/resend",
        &tokens.access,
        &json!({}),
    )
    .await;
    assert_eq!(resend.status(), StatusCode::ACCEPTED);
    let mails = wait_for(dir.path(), email, "Confirm your e-mail", 2).await;
    let second = mails[1].token("verify");
    assert_ne!(second, mails[0].token("verify"));
    assert_eq!(email_verified_claim(&tokens.access), json!(false));
    assert_eq!(verify(&app, &second).await.status(), StatusCode::NO_CONTENT);
    // Tokens issued from now on say so, at login and at refresh.
    let refreshed: Value = app
        .refresh_body(&tokens.refresh)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        email_verified_claim(refreshed["access_token"].as_str().unwrap()),
        json!(true)
    );
    assert_eq!(
        email_verified_claim(&app.login_body(email).await.access),
        json!(true)
    );
    let unauthenticated = app.post_json("/auth/verify-email/resend", &json!({})).await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    sink.stop().await;
}

#[tokio::test]
async fn reset_answers_the_same_for_known_and_unknown_addresses() {
    let Some((dir, sink, app)) = mail_setup(&[]).await else {
        return;
    };
    let known = "known@example.com";
    assert_eq!(app.register(known).await.status(), StatusCode::CREATED);
    let unknown = request_reset(&app, "unknown@example.com").await;
    let found = request_reset(&app, known).await;
    assert_eq!(unknown.0, StatusCode::ACCEPTED);
    assert_eq!(unknown, found);
    // The worker sends in queue order: once the known address's mail is there, a mail
    // to the unknown one would have been too.
    let mail = wait_for(dir.path(), known, "Reset your password", 1)
        .await
        .remove(0);
    assert!(mail.text.contains("https://app.test/reset?token="));
    assert!(delivered(dir.path(), "unknown@example.com", "").is_empty());
    sink.stop().await;
}

#[tokio::test]
async fn reset_works_once_revokes_every_session_and_voids_other_links() {
    let Some((dir, sink, app)) = mail_setup(&[]).await else {
        return;
    };
    let email = "reset@example.com";
    let first = app.user_with_session(email).await;
    let second = app.login_body(email).await;
    request_reset(&app, email).await;
    request_reset(&app, email).await;
    let mails = wait_for(dir.path(), email, "Reset your password", 2).await;
    let (used, other) = (mails[0].token("reset"), mails[1].token("reset"));
    assert_eq!(
        confirm_reset(&app, &used).await.status(),
        StatusCode::NO_CONTENT
    );
    for tokens in [&first, &second] {
        assert_eq!(
            app.me(&tokens.access).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let refresh = app.refresh_body(&tokens.refresh).await;
        assert_error(refresh, StatusCode::UNAUTHORIZED, "session_revoked").await;
    }
    let old = login_status(&app, email, PASSWORD).await;
    assert_error(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(
        login_status(&app, email, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    for token in [&used, &other] {
        let again = confirm_reset(&app, token).await;
        assert_error(again, StatusCode::BAD_REQUEST, "reset_token_invalid").await;
    }
    let unknown = confirm_reset(&app, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_error(unknown, StatusCode::BAD_REQUEST, "reset_token_invalid").await;
    wait_for(dir.path(), email, "Your password was changed", 1).await;
    sink.stop().await;
}

#[tokio::test]
async fn an_expired_reset_link_is_refused() {
    let Some((dir, sink, app)) = mail_setup(&["--reset-ttl", "1s"]).await else {
        return;
    };
    let email = "expired@example.com";
    assert_eq!(app.register(email).await.status(), StatusCode::CREATED);
    request_reset(&app, email).await;
    let token = wait_for(dir.path(), email, "Reset your password", 1).await[0].token("reset");
    app.clock.advance(Duration::from_millis(1100));
    let late = confirm_reset(&app, &token).await;
    assert_error(late, StatusCode::BAD_REQUEST, "reset_token_invalid").await;
    assert_eq!(
        login_status(&app, email, PASSWORD).await.status(),
        StatusCode::OK
    );
    sink.stop().await;
}

#[tokio::test]
async fn change_of_address_happens_when_the_new_address_is_verified() {
    let Some((dir, sink, app)) = mail_setup(&[]).await else {
        return;
    };
    let (old, new) = ("before@example.com", "after@example.com");
    let tokens = app.user_with_session(old).await;
    let body = json!({ "new_email": new, "current_password": "wrong password here" });
    let wrong = post_auth(&app, "/auth/email", &tokens.access, &body).await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let body = json!({ "new_email": new, "current_password": PASSWORD });
    let asked = post_auth(&app, "/auth/email", &tokens.access, &body).await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let link = wait_for(dir.path(), new, "Confirm your new e-mail", 1)
        .await
        .remove(0);
    let notice = wait_for(dir.path(), old, "change of your e-mail", 1)
        .await
        .remove(0);
    assert!(notice.text.contains(new));
    let early = login_status(&app, new, PASSWORD).await;
    assert_error(early, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(
        verify(&app, &link.token("verify")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        login_status(&app, new, PASSWORD).await.status(),
        StatusCode::OK
    );
    let gone = login_status(&app, old, PASSWORD).await;
    assert_error(gone, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    sink.stop().await;
}
