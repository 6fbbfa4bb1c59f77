//! Admin routes need a recent login (`LATCHKEY_ADMIN_MAX_AUTH_AGE`), made with the
//! account's second factor when it has one: an admin's ordinary access token that
//! leaked, or one refreshed for hours, is refused with RFC 9470's challenge.

use std::time::Duration;

use reqwest::{header, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp, Tokens};
use crate::mfa::{claims, enrol_totp, mfa_token, second_step};

async fn list_users(app: &TestApp, access: &str) -> Response {
    app.client
        .get(app.url("/admin/users"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// Assert 401 `reauth_required` with the RFC 9470 challenge naming `max_age` and, in
/// its description, `why`.
async fn assert_reauth_required(response: Response, max_age: u64, why: &str) {
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .expect("a WWW-Authenticate challenge")
        .to_str()
        .unwrap()
        .to_owned();
    assert_error(response, StatusCode::UNAUTHORIZED, "reauth_required").await;
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_user_authentication\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("max_age=\"{max_age}\"")),
        "{challenge}"
    );
    assert!(challenge.contains(why), "{challenge}");
}

#[tokio::test]
async fn admin_routes_need_a_recent_login_and_a_refresh_does_not_make_one() {
    let app = spawn_app(&["--admin-max-auth-age", "2s"]).await;
    let admin = app.create_admin("root@example.com").await;
    assert_eq!(
        list_users(&app, &admin.access).await.status(),
        StatusCode::OK
    );

    // The login becomes more than two seconds old (auth_time has whole seconds).
    let auth_time = claims(&admin.access)["auth_time"].as_i64().unwrap();
    app.clock.advance(Duration::from_secs(4));
    // A refresh issues a new token with the login's auth_time, not a new one.
    let refreshed = Tokens::from(
        app.refresh_body(&admin.refresh)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    let refreshed_claims = claims(&refreshed.access);
    assert_eq!(refreshed_claims["auth_time"].as_i64(), Some(auth_time));
    assert!(refreshed_claims["iat"].as_i64().unwrap() >= auth_time + 4);
    for access in [&admin.access, &refreshed.access] {
        assert_reauth_required(list_users(&app, access).await, 2, "more recent").await;
        // Every admin route asks, the admin-only key operations included.
        let rotate = app
            .client
            .post(app.url("/admin/keys/rotate"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_reauth_required(rotate, 2, "more recent").await;
        // Ordinary routes take the token as before.
        assert_eq!(app.me(access).await.status(), StatusCode::OK);
    }

    // A new login is recent again.
    let again = app.login_body("root@example.com").await;
    assert_eq!(
        list_users(&app, &again.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_admin_with_a_second_factor_must_have_used_it() {
    let app = spawn_app(&[]).await;
    let admin = app.create_admin("root@example.com").await;
    // A non-admin is refused for the role, before any question about the login.
    let user = app.user_with_session("user@example.com").await;
    let refused = list_users(&app, &user.access).await;
    assert!(refused.headers().get(header::WWW_AUTHENTICATE).is_none());
    assert_error(refused, StatusCode::FORBIDDEN, "insufficient_role").await;

    // The admin turns the second factor on: the password-only login no longer does.
    let (mut authenticator, _) = enrol_totp(&app, &admin).await;
    assert_eq!(claims(&admin.access)["amr"], json!(["pwd"]));
    assert_reauth_required(list_users(&app, &admin.access).await, 900, "second factor").await;

    // A login with the code does.
    let token = mfa_token(&app, "root@example.com").await;
    let code = authenticator.next_code().await;
    let response = second_step(&app, &token, "code", &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let with_code = Tokens::from(response.json::<Value>().await.unwrap());
    assert_eq!(claims(&with_code.access)["amr"], json!(["pwd", "otp"]));
    assert_eq!(
        list_users(&app, &with_code.access).await.status(),
        StatusCode::OK
    );
}
