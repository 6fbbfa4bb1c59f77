//! The second factor over HTTP: `flow` walks enrolment, login, replay, recovery codes,
//! step-up and the admin reset; `login` the second step's limits and replicas. Codes
//! come from the test's own RFC 6238 implementation (`authenticator`).

pub(crate) mod authenticator;
mod flow;
mod login;
mod reset;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{header, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{TestApp, Tokens, PASSWORD};
use authenticator::Authenticator;

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
pub(crate) async fn mfa_token(app: &TestApp, email: &str) -> String {
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

pub(crate) async fn second_step(app: &TestApp, token: &str, field: &str, code: &str) -> Response {
    app.post_json(
        "/auth/login/mfa",
        &json!({ "mfa_token": token, field: code }),
    )
    .await
}

/// The claims of an access token (the payload, unverified).
pub(crate) fn claims(access: &str) -> Value {
    let payload = access.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Register, log in, enrol and confirm: the user's session, authenticator and codes.
async fn user_with_totp(app: &TestApp, email: &str) -> (Tokens, Authenticator, Vec<String>) {
    let tokens = app.user_with_session(email).await;
    let (app_codes, codes) = enrol_totp(app, &tokens).await;
    (tokens, app_codes, codes)
}

/// Enrol and confirm an authenticator with the session of `tokens`: the authenticator
/// and the recovery codes.
pub(crate) async fn enrol_totp(app: &TestApp, tokens: &Tokens) -> (Authenticator, Vec<String>) {
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
    (app_codes, codes)
}

async fn event_kinds(app: &TestApp, access: &str) -> Vec<String> {
    let events = app.get_json("/auth/events", access).await;
    crate::helpers::strings(&events["events"], "kind")
}
