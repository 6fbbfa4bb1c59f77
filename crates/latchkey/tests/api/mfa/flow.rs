//! Enrolment, the whole flow, step-up, the admin reset, and users without a second factor.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::authenticator::{base32_decode, secret_of, Authenticator};
use super::{claims, event_kinds, first_step, mfa_token, second_step, send, user_with_totp};
use crate::helpers::{assert_error, spawn_app, Tokens, PASSWORD};

#[tokio::test]
async fn enrolment_hands_out_an_otpauth_uri_and_an_svg_qr_code() {
    let app = spawn_app(&["--mfa-issuer", "Acme Test"]).await;
    let tokens = app.user_with_session("enrol@example.com").await;
    let response = send(
        &app,
        reqwest::Method::POST,
        "/auth/mfa/totp/enroll",
        &tokens.access,
        json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Acme%20Test:enrol%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains("issuer=Acme%20Test"), "{uri}");
    assert_eq!(
        base32_decode(body["secret"].as_str().unwrap()),
        secret_of(uri)
    );
    assert_eq!(secret_of(uri).len(), 20);
    let svg = body["qr_svg"].as_str().unwrap();
    let document = roxmltree::Document::parse(svg).expect("the QR code is well-formed XML");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );

    // Nothing is active before confirmation: login is unchanged.
    let login = first_step(&app, "enrol@example.com", Some("body")).await;
    assert!(login.json::<Value>().await.unwrap()["access_token"].is_string());
    // Enrolling again replaces the pending secret.
    let again: Value = send(
        &app,
        reqwest::Method::POST,
        "/auth/mfa/totp/enroll",
        &tokens.access,
        json!({}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ne!(again["secret"], body["secret"]);
    let stale = Authenticator::from_uri(uri).next_code().await;
    let response = send(
        &app,
        reqwest::Method::POST,
        "/auth/mfa/totp/confirm",
        &tokens.access,
        json!({ "code": stale }),
    )
    .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "mfa_code_invalid").await;
}

#[tokio::test]
async fn the_whole_second_factor_flow() {
    let app = spawn_app(&[]).await;
    let email = "walk@example.com";
    let (tokens, mut authenticator, recovery) = user_with_totp(&app, email).await;
    assert_eq!(recovery.len(), 10);
    assert_eq!(recovery.iter().collect::<BTreeSet<_>>().len(), 10);
    assert_eq!(claims(&tokens.access)["amr"], json!(["pwd"]));
    let response = send(
        &app,
        reqwest::Method::POST,
        "/auth/mfa/totp/enroll",
        &tokens.access,
        json!({}),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, "mfa_already_enabled").await;

    // Login: the password alone gives no tokens.
    let token = mfa_token(&app, email).await;
    let wrong = authenticator.wrong_code();
    assert_error(
        second_step(&app, &token, "code", &wrong).await,
        StatusCode::UNAUTHORIZED,
        "mfa_code_invalid",
    )
    .await;
    let code = authenticator.next_code().await;
    let response = second_step(&app, &token, "code", &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let mfa_tokens = Tokens::from(body);
    let access = claims(&mfa_tokens.access);
    assert_eq!(access["amr"], json!(["pwd", "otp"]));
    let auth_time = access["auth_time"].as_i64().unwrap();
    // The mfa_token was single-use.
    let again = second_step(&app, &token, "code", &authenticator.wrong_code()).await;
    assert_error(again, StatusCode::UNAUTHORIZED, "mfa_token_invalid").await;

    // Refresh keeps amr and auth_time.
    let refreshed = app.refresh_body(&mfa_tokens.refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed = claims(&Tokens::from(refreshed.json::<Value>().await.unwrap()).access);
    assert_eq!(refreshed["amr"], json!(["pwd", "otp"]));
    assert_eq!(refreshed["auth_time"].as_i64(), Some(auth_time));

    // The same code again, with a fresh mfa_token: refused.
    let token = mfa_token(&app, email).await;
    assert_error(
        second_step(&app, &token, "code", &code).await,
        StatusCode::UNAUTHORIZED,
        "mfa_code_invalid",
    )
    .await;

    // A recovery code works once.
    let response = second_step(&app, &token, "recovery_code", &recovery[0]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token = mfa_token(&app, email).await;
    let reused = second_step(&app, &token, "recovery_code", &recovery[0]).await;
    assert_error(reused, StatusCode::UNAUTHORIZED, "mfa_code_invalid").await;

    // New recovery codes (a recent login and a code): the old set is void.
    let response = send(
        &app,
        reqwest::Method::POST,
        "/auth/mfa/recovery-codes",
        &mfa_tokens.access,
        json!({ "code": recovery[1] }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh: Vec<String> =
        serde_json::from_value(response.json::<Value>().await.unwrap()["recovery_codes"].clone())
            .unwrap();
    let old = second_step(&app, &token, "recovery_code", &recovery[2]).await;
    assert_error(old, StatusCode::UNAUTHORIZED, "mfa_code_invalid").await;

    // Turning it off with a code of the new set; the login is as before.
    let off = send(
        &app,
        reqwest::Method::DELETE,
        "/auth/mfa/totp",
        &mfa_tokens.access,
        json!({ "code": fresh[0] }),
    )
    .await;
    assert_eq!(off.status(), StatusCode::NO_CONTENT);
    let login: Value = first_step(&app, email, Some("body"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(login["access_token"].as_str().unwrap())["amr"],
        json!(["pwd"])
    );
    let off = send(
        &app,
        reqwest::Method::DELETE,
        "/auth/mfa/totp",
        &mfa_tokens.access,
        json!({ "code": fresh[1] }),
    )
    .await;
    assert_error(off, StatusCode::BAD_REQUEST, "mfa_not_enabled").await;

    let kinds = event_kinds(&app, &mfa_tokens.access).await;
    for kind in [
        "mfa_enrolled",
        "mfa_confirmed",
        "mfa_failed",
        "recovery_code_used",
        "recovery_codes_regenerated",
        "mfa_disabled",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
}

#[tokio::test]
async fn step_up_is_refused_once_the_login_is_older_than_the_reauth_window() {
    let app = spawn_app(&["--reauth-window", "1s"]).await;
    let (tokens, _, recovery) = user_with_totp(&app, "stepup@example.com").await;
    // The login becomes more than a second old (auth_time has whole seconds).
    app.clock.advance(Duration::from_secs(3));
    // A refreshed token keeps the old auth_time, so it does not help either.
    let refreshed = Tokens::from(
        app.refresh_body(&tokens.refresh)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    for access in [&tokens.access, &refreshed.access] {
        let password = send(&app, reqwest::Method::POST, "/auth/password", access, json!({ "current_password": PASSWORD, "new_password": "a different long passphrase 42" })).await;
        assert_error(password, StatusCode::UNAUTHORIZED, "reauth_required").await;
        let off = send(
            &app,
            reqwest::Method::DELETE,
            "/auth/mfa/totp",
            access,
            json!({ "code": recovery[0] }),
        )
        .await;
        assert_error(off, StatusCode::UNAUTHORIZED, "reauth_required").await;
        let codes = send(
            &app,
            reqwest::Method::POST,
            "/auth/mfa/recovery-codes",
            access,
            json!({ "code": recovery[1] }),
        )
        .await;
        assert_error(codes, StatusCode::UNAUTHORIZED, "reauth_required").await;
    }
}

#[tokio::test]
async fn an_admin_resets_a_second_factor() {
    let app = spawn_app(&[]).await;
    let admin = app.create_admin("admin@example.com").await;
    let (tokens, _, _) = user_with_totp(&app, "lost@example.com").await;
    let id = claims(&tokens.access)["sub"].as_str().unwrap().to_owned();
    let path = format!("/admin/users/{id}/mfa");
    let forbidden = send(
        &app,
        reqwest::Method::DELETE,
        &path,
        &tokens.access,
        json!({}),
    )
    .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let reset = send(
        &app,
        reqwest::Method::DELETE,
        &path,
        &admin.access,
        json!({}),
    )
    .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let login: Value = first_step(&app, "lost@example.com", Some("body"))
        .await
        .json()
        .await
        .unwrap();
    assert!(login["access_token"].is_string(), "{login}");
    let again = send(
        &app,
        reqwest::Method::DELETE,
        &path,
        &admin.access,
        json!({}),
    )
    .await;
    assert_error(again, StatusCode::BAD_REQUEST, "mfa_not_enabled").await;
    assert!(event_kinds(&app, &tokens.access)
        .await
        .iter()
        .any(|k| k == "mfa_reset"));
}

#[tokio::test]
async fn a_user_without_totp_logs_in_exactly_as_before() {
    let app = spawn_app(&[]).await;
    app.register("plain@example.com").await;
    let response = first_step(&app, "plain@example.com", Some("body")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected = [
        "access_token",
        "expires_in",
        "refresh_expires_in",
        "refresh_token",
        "token_type",
    ];
    assert_eq!(keys, expected.into_iter().collect());
    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["amr"], json!(["pwd"]));
    assert!(access["auth_time"].is_i64());
    let off = send(
        &app,
        reqwest::Method::DELETE,
        "/auth/mfa/totp",
        body["access_token"].as_str().unwrap(),
        json!({ "code": "123456" }),
    )
    .await;
    assert_error(off, StatusCode::BAD_REQUEST, "mfa_not_enabled").await;
}

#[tokio::test]
async fn the_owner_sees_whether_the_second_factor_is_on_and_how_many_codes_are_left() {
    let app = spawn_app(&[]).await;
    let plain = app.user_with_session("plain@example.com").await;
    let off = json!({ "enabled": false, "enabled_at": null, "recovery_codes_left": 0 });
    assert_eq!(app.get_json("/auth/mfa", &plain.access).await, off);
    // A pending enrolment is not on.
    let pending = send(
        &app,
        reqwest::Method::POST,
        "/auth/mfa/totp/enroll",
        &plain.access,
        json!({}),
    )
    .await;
    assert_eq!(pending.status(), StatusCode::OK);
    assert_eq!(app.get_json("/auth/mfa", &plain.access).await, off);

    let email = "state@example.com";
    let (tokens, _, recovery) = user_with_totp(&app, email).await;
    let on = app.get_json("/auth/mfa", &tokens.access).await;
    assert_eq!(on["enabled"], true, "{on}");
    assert_eq!(on["recovery_codes_left"], 10, "{on}");
    assert!(on["enabled_at"].as_str().unwrap().ends_with('Z'), "{on}");
    // A recovery code spent at sign-in leaves one fewer.
    let token = mfa_token(&app, email).await;
    let response = second_step(&app, &token, "recovery_code", &recovery[0]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let after = app.get_json("/auth/mfa", &tokens.access).await;
    assert_eq!(after["recovery_codes_left"], 9, "{after}");
    // Only its owner asks: no token, no answer.
    let anonymous = app.client.get(app.url("/auth/mfa")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
