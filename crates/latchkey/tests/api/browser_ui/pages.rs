//! The pages in Chromium: sign up, sign in, the account page, sign out, revoking
//! another browser's session, and the screenshots.

use fantoccini::{Client, Locator};

use super::harness::{refresh_cookie, screenshot, text_of, wait_for_path, wait_text, Driver};
use crate::helpers::{spawn_app, PASSWORD};

/// The defaults of `cargo run`: a Secure (`__Host-`) cookie, which Chromium accepts on
/// http://127.0.0.1 because loopback is a secure context.
pub const DEFAULT_COOKIE: &[&str] = &["--cookie-secure", "true"];

async fn fill(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn sign_in(browser: &Client, base: &str, email: &str) {
    browser.goto(&format!("{base}/")).await.unwrap();
    text_of(browser, "#signin-form").await;
    fill(browser, "#signin-email", email).await;
    fill(browser, "#signin-password", PASSWORD).await;
    browser
        .find(Locator::Css("#signin-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(browser, "/account").await;
    text_of(browser, "body[data-ready=true] #sessions li").await;
}

#[tokio::test]
async fn sign_up_sign_in_see_this_session_and_sign_out_with_the_defaults() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app(DEFAULT_COOKIE).await;
    let base = app.address.clone();
    let browser = driver.browser().await;

    browser.goto(&format!("{base}/")).await.unwrap();
    text_of(&browser, "#signin-form").await;
    screenshot(&browser, "sign-in").await;
    browser.goto(&format!("{base}/#signup")).await.unwrap();
    text_of(&browser, "#signup-form").await;
    fill(&browser, "#signup-email", "ada@example.com").await;
    fill(&browser, "#signup-password", PASSWORD).await;
    screenshot(&browser, "sign-up").await;
    browser
        .find(Locator::Css("#signup-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    wait_for_path(&browser, "/account").await;
    let current = text_of(
        &browser,
        "body[data-ready=true] #sessions li[data-current=true]",
    )
    .await;
    assert!(current.contains("This browser"), "{current}");
    assert!(
        refresh_cookie(&browser).await.is_some(),
        "the refresh cookie is set"
    );
    screenshot(&browser, "account").await;

    browser
        .find(Locator::Css("#signout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(&browser, "/?ended=logout").await;
    wait_text(&browser, "#status", "You signed out.").await;
    assert!(
        refresh_cookie(&browser).await.is_none(),
        "the cookie is gone"
    );
    // Signed out for real: the account page sends us back.
    browser.goto(&format!("{base}/account")).await.unwrap();
    wait_for_path(&browser, "/?ended=signed_out").await;

    sign_in(&browser, &base, "ada@example.com").await;
    // The reset page asks for the address and answers the same for any address.
    browser.goto(&format!("{base}/reset")).await.unwrap();
    fill(&browser, "#request-email", "ada@example.com").await;
    browser
        .find(Locator::Css("#request-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(
        &browser,
        "#status",
        "If that email belongs to an account, a link is on its way. Check your inbox.",
    )
    .await;
    screenshot(&browser, "reset").await;
    // The confirmation page needs the link's token; a bad one says so.
    browser
        .goto(&format!("{base}/verify?token=not-a-real-token"))
        .await
        .unwrap();
    wait_text(
        &browser,
        "#status",
        "This link has expired or was used already. Sign in and ask for a new one.",
    )
    .await;
    screenshot(&browser, "verify").await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn revoking_a_session_from_the_account_page_signs_out_the_browser_that_owned_it() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app(DEFAULT_COOKIE).await;
    let base = app.address.clone();
    app.register("grace@example.com").await;
    let (a, b) = (driver.browser().await, driver.browser().await);
    sign_in(&b, &base, "grace@example.com").await;
    sign_in(&a, &base, "grace@example.com").await;

    let other = "#sessions li:not([data-current]) button.revoke";
    a.find(Locator::Css(other))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&a, "#status", "That device is signed out.").await;

    // B comes back to its tab: the page checks, learns the session ended and leaves.
    super::harness::js(
        &b,
        "document.dispatchEvent(new Event('visibilitychange')); return 1;",
    )
    .await;
    wait_for_path(&b, "/?ended=revoked").await;
    wait_text(
        &b,
        "#status",
        "You were signed out. Sign in again to continue.",
    )
    .await;
    // Its cookie no longer signs anyone in.
    b.goto(&format!("{base}/account")).await.unwrap();
    wait_for_path(&b, "/?ended=signed_out").await;
    // A is still signed in.
    a.refresh().await.unwrap();
    text_of(&a, "body[data-ready=true] #sessions li[data-current=true]").await;
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn two_step_sign_in_is_turned_on_from_the_account_page() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app(DEFAULT_COOKIE).await;
    let base = app.address.clone();
    app.register("tom@example.com").await;
    let browser = driver.browser().await;
    sign_in(&browser, &base, "tom@example.com").await;
    browser
        .find(Locator::Css("#mfa-start"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The key and QR code are filled in before the enrolment form is shown.
    let secret = text_of(&browser, "#mfa-enrol:not([hidden]) #mfa-secret").await;
    let qr = browser
        .find(Locator::Css("#mfa-qr"))
        .await
        .unwrap()
        .attr("src")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(qr.starts_with("data:image/svg+xml"), "{qr}");
    // The test's own RFC 6238 authenticator, from the key the page shows.
    let mut app_codes = crate::mfa::authenticator::Authenticator::from_uri(&format!(
        "otpauth://totp/x?secret={secret}"
    ));
    fill(&browser, "#mfa-code", &app_codes.next_code().await).await;
    browser
        .find(Locator::Css("#mfa-confirm-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&browser, "#status", "Two-step sign-in is on.").await;
    let codes = browser
        .find_all(Locator::Css("#mfa-recovery li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    screenshot(&browser, "account-two-step").await;
    // Signing in now asks for a code.
    let first_step = app
        .post_json(
            "/auth/login",
            &serde_json::json!({"email": "tom@example.com", "password": PASSWORD}),
        )
        .await;
    let body: serde_json::Value = first_step.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    browser.close().await.unwrap();
}
