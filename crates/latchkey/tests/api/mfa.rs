//! The second factor over HTTP, with TOTP codes computed by the test's own RFC 6238
//! implementation (HMAC-SHA1 from aws-lc-rs, checked against the RFC's test vectors)
//! from the `otpauth_uri` the server hands out.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{header, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_on, temp_db, TestApp, Tokens, PASSWORD};

// ---- the test's own TOTP (RFC 4226 / RFC 6238) ----

fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[19] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(digits),
        width = digits as usize
    )
}

fn code_at_step(secret: &[u8], step: u64) -> String {
    hotp(secret, step, 6)
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u32, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let index = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("base32");
        value = (value << 5) | index as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    out
}

/// The secret of an `otpauth://totp/...` URI, after checking its parameters are the ones
/// every authenticator app assumes.
fn secret_of(uri: &str) -> Vec<u8> {
    let query = uri.split_once('?').expect("a query").1;
    let mut secret = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').expect("key=value");
        match key {
            "secret" => secret = Some(base32_decode(value)),
            "algorithm" => assert_eq!(value, "SHA1"),
            "digits" => assert_eq!(value, "6"),
            "period" => assert_eq!(value, "30"),
            _ => {}
        }
    }
    secret.expect("a secret parameter")
}

fn now_step() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// The authenticator app: hands out codes of ever newer time steps, each one the server
/// accepts when it arrives even if a step boundary passes on the way (the current or
/// the next step, never the previous one); waits for the next step when both are used.
struct Authenticator {
    secret: Vec<u8>,
    last: Option<u64>,
}

impl Authenticator {
    fn from_uri(uri: &str) -> Self {
        Self {
            secret: secret_of(uri),
            last: None,
        }
    }

    async fn next_code(&mut self) -> String {
        loop {
            let now = now_step();
            let step = self.last.map_or(now, |last| (last + 1).max(now));
            if step <= now + 1 {
                self.last = Some(step);
                return code_at_step(&self.secret, step);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A code no step near now has.
    fn wrong_code(&self) -> String {
        let now = now_step();
        let near: BTreeSet<String> = (now - 3..=now + 3)
            .map(|s| code_at_step(&self.secret, s))
            .collect();
        (0..)
            .map(|n| format!("{:06}", 123_456 + n))
            .find(|c| !near.contains(c))
            .unwrap()
    }
}

#[test]
fn the_tests_own_totp_matches_rfc_6238_appendix_b() {
    let secret = b"12345678901234567890";
    for (time, expected) in [
        (59u64, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ] {
        assert_eq!(hotp(secret, time / 30, 8), expected, "T = {time}");
    }
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), secret);
}

// ---- HTTP helpers ----

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    bearer: &str,
    body: Value,
) -> Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn first_step(app: &TestApp, email: &str, delivery: Option<&str>) -> Response {
    let mut body = json!({ "email": email, "password": PASSWORD });
    if let Some(delivery) = delivery {
        body["refresh_delivery"] = json!(delivery);
    }
    app.post_json("/auth/login", &body).await
}

/// The first step for a user with a second factor: the `mfa_token`, and no tokens.
async fn mfa_token(app: &TestApp, email: &str) -> String {
    let response = first_step(app, email, Some("body")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    assert_eq!(body["expires_in"], 300);
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn second_step(app: &TestApp, token: &str, field: &str, code: &str) -> Response {
    app.post_json(
        "/auth/login/mfa",
        &json!({ "mfa_token": token, field: code }),
    )
    .await
}

fn claims(access: &str) -> Value {
    let payload = access.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Register, log in, enrol and confirm: the user's session, authenticator and codes.
async fn user_with_totp(app: &TestApp, email: &str) -> (Tokens, Authenticator, Vec<String>) {
    let tokens = app.user_with_session(email).await;
    let response = send(
        app,
        reqwest::Method::POST,
        "/auth/mfa/totp/enroll",
        &tokens.access,
        json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let enrollment: Value = response.json().await.unwrap();
    let uri = enrollment["otpauth_uri"].as_str().unwrap();
    let mut app_codes = Authenticator::from_uri(uri);
    let code = app_codes.next_code().await;
    let response = send(
        app,
        reqwest::Method::POST,
        "/auth/mfa/totp/confirm",
        &tokens.access,
        json!({ "code": code }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let codes: Vec<String> = serde_json::from_value(body["recovery_codes"].clone()).unwrap();
    (tokens, app_codes, codes)
}

async fn event_kinds(app: &TestApp, access: &str) -> Vec<String> {
    let events = app.get_json("/auth/events", access).await;
    crate::helpers::strings(&events["events"], "kind")
}

// ---- the flow ----

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
async fn step_up_is_refused_once_the_login_is_older_than_the_reauth_window() {
    let app = spawn_app(&["--reauth-window", "1s"]).await;
    let (tokens, _, recovery) = user_with_totp(&app, "stepup@example.com").await;
    let auth_time = claims(&tokens.access)["auth_time"].as_i64().unwrap();
    // Wait until the login is more than a second old (auth_time has whole seconds).
    while (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64)
        < auth_time + 3
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
