//! E-mail delivery against a real SMTP server (aiosmtpd, see `mail_sink`): each notice
//! once and switchable, an SMTP outage (requests succeed; the mail goes out later),
//! mail given up after its retries, and the default `.eml` directory.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::email::{app_with_smtp, mail_setup, post_auth, request_reset, NEW_PASSWORD};
use crate::helpers::*;
use crate::mail_sink::{self, delivered, wait_for, Sink};

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
