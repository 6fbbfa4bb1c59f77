//! The links in e-mails, end to end in Chromium: the mail goes through a real SMTP
//! server (`mail_sink`), the test reads it there and opens its link as it is written.

use reqwest::StatusCode;
use serde_json::json;

use super::harness::{
    account_ready, click, fill, screenshot, submit_sign_in, text_of, wait_for_path, wait_text,
    Driver,
};
use super::pages::DEFAULT_COOKIE;
use crate::helpers::{assert_error, spawn_app, TestApp, PASSWORD};
use crate::mail_sink::{self, free_port, wait_for, Sink};

const NEW_PASSWORD: &str = "a brand new passphrase for ada";

/// A server on a port chosen up front, so the links in its mails (`LATCHKEY_PUBLIC_URL`)
/// point at it, sending mail to a real SMTP sink; `None` when the sink cannot run.
async fn server_with_mail() -> Option<(tempfile::TempDir, Sink, TestApp)> {
    if !mail_sink::available().await {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(dir.path(), None).await;
    let (smtp, port) = (sink.url(), free_port());
    let (bind, public_url) = (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
    );
    let mut args = DEFAULT_COOKIE.to_vec();
    args.extend([
        "--smtp-url",
        &smtp,
        "--bind",
        &bind,
        "--public-url",
        &public_url,
        "--mail-poll",
        "100ms",
    ]);
    let app = spawn_app(&args).await;
    assert_eq!(app.address, public_url);
    Some((dir, sink, app))
}

#[tokio::test]
async fn a_reset_link_from_the_mail_sets_a_new_password_to_sign_in_with() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let Some((dir, sink, app)) = server_with_mail().await else {
        return;
    };
    let email = "ada@example.com";
    app.register(email).await;
    let browser = driver.browser().await;

    browser.goto(&app.url("/reset")).await.unwrap();
    fill(&browser, "#request-email", email).await;
    click(&browser, "#request-form button").await;
    wait_text(
        &browser,
        "#status",
        "If that email belongs to an account, a link is on its way. Check your inbox.",
    )
    .await;

    let mail = wait_for(dir.path(), email, "Reset your password", 1)
        .await
        .remove(0);
    let link = mail.link("reset");
    assert!(
        link.starts_with(&format!("{}/reset?token=", app.address)),
        "{link}"
    );
    browser.goto(&link).await.unwrap();
    text_of(&browser, "#choose:not([hidden]) #choose-form").await;
    fill(&browser, "#new-password", NEW_PASSWORD).await;
    screenshot(&browser, "reset-link").await;
    click(&browser, "#choose-form button").await;
    wait_text(
        &browser,
        "#status",
        "Your password is changed. Sign in with it now.",
    )
    .await;

    // The link works once.
    browser.goto(&link).await.unwrap();
    fill(&browser, "#new-password", "yet another long passphrase").await;
    click(&browser, "#choose-form button").await;
    wait_text(
        &browser,
        "#status",
        "This link has expired or was used already. Ask for a new one.",
    )
    .await;

    // The new password signs in on the page; the old one no longer does.
    submit_sign_in(&browser, &app.address, email, NEW_PASSWORD).await;
    account_ready(&browser).await;
    let old = app
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_error(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    browser.close().await.unwrap();
    sink.stop().await;
}

#[tokio::test]
async fn the_verification_link_from_the_sign_up_mail_confirms_the_address() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let Some((dir, sink, app)) = server_with_mail().await else {
        return;
    };
    let email = "grace@example.com";
    let browser = driver.browser().await;
    browser.goto(&app.url("/#signup")).await.unwrap();
    text_of(&browser, "#signup-form").await;
    fill(&browser, "#signup-email", email).await;
    fill(&browser, "#signup-password", PASSWORD).await;
    click(&browser, "#signup-form button").await;
    wait_for_path(&browser, "/account").await;
    let before = app.login_body(email).await;
    assert_eq!(
        crate::mfa::claims(&before.access)["email_verified"],
        false,
        "not verified before the link"
    );

    let mail = wait_for(dir.path(), email, "Confirm your e-mail", 1)
        .await
        .remove(0);
    let link = mail.link("verify");
    assert!(
        link.starts_with(&format!("{}/verify?token=", app.address)),
        "{link}"
    );
    browser.goto(&link).await.unwrap();
    wait_text(&browser, "#status", "Your email is confirmed. Thank you.").await;
    screenshot(&browser, "verify").await;
    let after = app.login_body(email).await;
    assert_eq!(crate::mfa::claims(&after.access)["email_verified"], true);

    // A second visit finds the link spent.
    browser.goto(&link).await.unwrap();
    wait_text(
        &browser,
        "#status",
        "This link has expired or was used already. Sign in and ask for a new one.",
    )
    .await;
    browser.close().await.unwrap();
    sink.stop().await;
}
