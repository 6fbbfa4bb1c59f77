//! E-mail against a real SMTP server (aiosmtpd, see `mail_sink`): verification and
//! re-sending, required verification at login, password reset (known and unknown
//! addresses, single use, expiry, every session revoked), change of address, the
//! notices, an SMTP outage, and the default `.eml` directory.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::mail_sink::{self, delivered, wait_for, Sink};

const NEW_PASSWORD: &str = "a different passphrase entirely";

/// A server sending through `smtp_url`, links under https://app.test.
async fn app_with_smtp(smtp_url: &str, extra: &[&str]) -> TestApp {
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
async fn mail_setup(extra: &[&str]) -> Option<(tempfile::TempDir, Sink, TestApp)> {
    if !mail_sink::available().await {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(dir.path(), None).await;
    let app = app_with_smtp(&sink.url(), extra).await;
    Some((dir, sink, app))
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
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

async fn request_reset(app: &TestApp, email: &str) -> (StatusCode, Value) {
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

async fn post_auth(app: &TestApp, path: &str, bearer: &str, body: &Value) -> reqwest::Response {
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
    tokio::time::sleep(Duration::from_millis(1100)).await;
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

async fn login_as(app: &TestApp, email: &str, password: &str, user_agent: &str) -> Tokens {
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("user-agent", user_agent)
        .json(&json!({ "email": email, "password": password, "refresh_delivery": "body" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    Tokens::from(response.json::<Value>().await.unwrap())
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

#[tokio::test]
async fn each_notice_is_sent_once() {
    let Some((dir, sink, app)) = mail_setup(&[]).await else {
        return;
    };
    let email = "notices@example.com";
    assert_eq!(app.register(email).await.status(), StatusCode::CREATED);
    // The first sign-in ever is not news; a second device is.
    let firefox = login_as(&app, email, PASSWORD, FIREFOX).await;
    login_as(&app, email, PASSWORD, FIREFOX).await;
    login_as(&app, email, PASSWORD, CHROME).await;
    let body = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    let changed = post_auth(&app, "/auth/password", &firefox.access, &body).await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    // Reuse: a spent refresh token presented again (grace 0s) ends the session.
    let current = login_as(&app, email, NEW_PASSWORD, FIREFOX).await;
    let rotated = app.refresh_body(&current.refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(5)).await;
    for _ in 0..2 {
        let replay = app.refresh_body(&current.refresh).await;
        assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    }
    let reuse = wait_for(dir.path(), email, "Suspicious activity", 1).await;
    let device = wait_for(dir.path(), email, "New sign-in from", 1).await;
    assert!(
        device[0].subject.contains("Chrome"),
        "{}",
        device[0].subject
    );
    wait_for(dir.path(), email, "Your password was changed", 1).await;
    // Everything queued before the reuse notice has been sent by now (queue order).
    assert_eq!(reuse.len(), 1);
    assert_eq!(delivered(dir.path(), email, "Suspicious activity").len(), 1);
    assert_eq!(delivered(dir.path(), email, "New sign-in from").len(), 1);
    assert_eq!(
        delivered(dir.path(), email, "Your password was changed").len(),
        1
    );
    sink.stop().await;
}

#[tokio::test]
async fn notices_can_be_switched_off() {
    let off = [
        "--notify-new-device",
        "false",
        "--notify-password-changed",
        "false",
    ];
    let Some((dir, sink, app)) = mail_setup(&off).await else {
        return;
    };
    let email = "quiet@example.com";
    assert_eq!(app.register(email).await.status(), StatusCode::CREATED);
    let firefox = login_as(&app, email, PASSWORD, FIREFOX).await;
    login_as(&app, email, PASSWORD, CHROME).await;
    let body = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    post_auth(&app, "/auth/password", &firefox.access, &body).await;
    // A mail queued after them marks the point by which they would have arrived.
    request_reset(&app, email).await;
    wait_for(dir.path(), email, "Reset your password", 1).await;
    assert!(delivered(dir.path(), email, "New sign-in").is_empty());
    assert!(delivered(dir.path(), email, "password was changed").is_empty());
    sink.stop().await;
}

#[tokio::test]
async fn requests_succeed_while_smtp_is_down_and_mail_goes_out_when_it_is_back() {
    if !mail_sink::available().await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = mail_sink::free_port();
    let app = app_with_smtp(&format!("smtp://127.0.0.1:{port}"), &[]).await;
    let email = "outage@example.com";
    assert_eq!(app.register(email).await.status(), StatusCode::CREATED);
    let (status, _) = request_reset(&app, email).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Let the worker fail at least once against the closed port.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mail_sink::mails(dir.path()).is_empty());
    let sink = Sink::start(dir.path(), Some(port)).await;
    wait_for(dir.path(), email, "Confirm your e-mail", 1).await;
    wait_for(dir.path(), email, "Reset your password", 1).await;
    sink.stop().await;
}

#[tokio::test]
async fn mail_that_cannot_be_sent_after_its_retries_is_recorded_as_failed() {
    // Nothing listens on the port: every attempt fails (no SMTP server needed).
    let port = mail_sink::free_port();
    let smtp = format!("smtp://127.0.0.1:{port}");
    let app = app_with_smtp(&smtp, &["--mail-max-attempts", "2"]).await;
    assert_eq!(
        app.register("lost@example.com").await.status(),
        StatusCode::CREATED
    );
    let mut failed = Vec::new();
    for _ in 0..200 {
        failed = app.service.failed_mail(10).await.unwrap();
        if !failed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].1, "verify_email");
    assert!(!failed[0].2.is_empty());
}

#[tokio::test]
async fn with_no_mail_settings_mail_lands_as_eml_files_in_latchkey_mail() {
    let work = tempfile::tempdir().unwrap();
    let port = mail_sink::free_port();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .current_dir(work.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_COOKIE_SECURE", "false")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not start");
    let email = "eml@example.com";
    let register = client
        .post(format!("{base}/auth/register"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), StatusCode::CREATED);
    let mail_dir = work.path().join("latchkey-mail");
    let mail = wait_for(&mail_dir, email, "Confirm your e-mail", 1)
        .await
        .remove(0);
    assert!(mail.text.contains("http://127.0.0.1:8080/verify?token="));
    server.start_kill().unwrap();
    let output = server.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    let note = "writing each mail as an .eml file into ./latchkey-mail";
    assert_eq!(log.matches(note).count(), 1, "log: {log}");
    assert!(Path::new(&mail_dir).is_dir());
}
