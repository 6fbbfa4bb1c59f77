//! Two-step sign-in on the account page, in Chromium: turned on (QR code, recovery
//! codes), the code step at sign-in, new recovery codes, turned off; and the step-up
//! those last two need (a recent sign-in).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fantoccini::{Client, Locator};
use serde_json::{json, Value};

use super::harness::{
    account_ready, click, fill, screenshot_of, sign_in, submit_sign_in, text_of, wait_for_path,
    wait_text, Driver,
};
use super::pages::DEFAULT_COOKIE;
use crate::helpers::{spawn_app, TestApp, PASSWORD};
use crate::mfa::authenticator::Authenticator;

/// The recovery codes the page shows.
async fn shown_codes(browser: &Client) -> Vec<String> {
    let mut codes = Vec::new();
    for item in browser
        .find_all(Locator::Css("#mfa-recovery li"))
        .await
        .unwrap()
    {
        codes.push(item.text().await.unwrap());
    }
    codes
}

/// Turn two-step sign-in on from the account page (signed in); the test's authenticator
/// app and the first recovery codes.
async fn turn_on(browser: &Client) -> (Authenticator, Vec<String>) {
    click(browser, "#mfa-start").await;
    // The key shows once the enrolment is answered (a hidden element's text is empty).
    let secret = text_of(browser, "#mfa-enrol:not([hidden]) #mfa-secret").await;
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
    let mut app_codes = Authenticator::from_uri(&format!("otpauth://totp/x?secret={secret}"));
    fill(browser, "#mfa-code", &app_codes.next_code().await).await;
    click(browser, "#mfa-confirm-form button").await;
    wait_text(browser, "#status", "Two-step sign-in is on.").await;
    let codes = shown_codes(browser).await;
    assert_eq!(codes.len(), 10, "{codes:?}");
    (app_codes, codes)
}

/// Sign in on the page, answering the code step with the next code of `app_codes`.
async fn sign_in_with_a_code(
    browser: &Client,
    base: &str,
    email: &str,
    app_codes: &mut Authenticator,
) {
    submit_sign_in(browser, base, email, PASSWORD).await;
    text_of(browser, "#mfa:not([hidden]) #mfa-form").await;
    fill(browser, "#mfa-form input", &app_codes.next_code().await).await;
    click(browser, "#mfa-form button").await;
    account_ready(browser).await;
}

/// Whether the page shows two-step sign-in as on ("on") or off ("off").
async fn shown_state(browser: &Client) -> String {
    browser
        .find(Locator::Css("#mfa-section"))
        .await
        .unwrap()
        .attr("data-mfa")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// What a password login answers through the API: whether a code is asked for.
async fn login_asks_for_a_code(app: &TestApp, email: &str) -> bool {
    let response = app
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": PASSWORD, "refresh_delivery": "body" }),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    body["mfa_required"] == true
}

#[tokio::test]
async fn two_step_sign_in_is_turned_on_used_given_new_codes_and_turned_off_from_the_pages() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app(DEFAULT_COOKIE).await;
    let base = app.address.clone();
    let email = "tom@example.com";
    app.register(email).await;
    let browser = driver.browser().await;
    sign_in(&browser, &base, email).await;
    assert_eq!(shown_state(&browser).await, "off");

    let (mut app_codes, first_codes) = turn_on(&browser).await;
    assert_eq!(shown_state(&browser).await, "on");
    screenshot_of(&browser, "#mfa-section", "account-two-step").await;
    assert!(login_asks_for_a_code(&app, email).await);

    // Reloaded, the page still knows it is on (the server says so: GET /auth/mfa),
    // though this sign-in used no code.
    browser.refresh().await.unwrap();
    account_ready(&browser).await;
    assert_eq!(shown_state(&browser).await, "on");
    wait_text(
        &browser,
        "#mfa-state",
        "Two-step sign-in is on: sign-in asks for a code from your app. \
         10 unused recovery codes left.",
    )
    .await;

    // New recovery codes, proved with one of the first ones: a fresh set of ten.
    fill(&browser, "#mfa-new-codes-code", &first_codes[0]).await;
    click(&browser, "#mfa-new-codes-form button").await;
    wait_text(
        &browser,
        "#status",
        "New recovery codes are below. Your old codes no longer work.",
    )
    .await;
    let new_codes = shown_codes(&browser).await;
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|code| !first_codes.contains(code)));
    // The old set is void: an unused old code does not turn it off.
    fill(&browser, "#mfa-off-code", &first_codes[1]).await;
    click(&browser, "#mfa-off-form button").await;
    wait_text(
        &browser,
        "#status",
        "That code didn't work. Check your app, or use an unused recovery code.",
    )
    .await;
    assert_eq!(shown_state(&browser).await, "on");

    // Signing in now asks for the code, on the page.
    click(&browser, "#signout").await;
    wait_for_path(&browser, "/?ended=logout").await;
    sign_in_with_a_code(&browser, &base, email, &mut app_codes).await;
    assert_eq!(shown_state(&browser).await, "on");

    // Turned off with a code of the new set: sign-in asks only for the password again.
    fill(&browser, "#mfa-off-code", &new_codes[0]).await;
    click(&browser, "#mfa-off-form button").await;
    wait_text(
        &browser,
        "#status",
        "Two-step sign-in is off. Sign-in asks only for your password now.",
    )
    .await;
    assert_eq!(shown_state(&browser).await, "off");
    assert!(!login_asks_for_a_code(&app, email).await);
    let activity = text_of(&browser, "#events").await;
    assert!(
        activity.contains("Two-step sign-in turned off"),
        "{activity}"
    );
    // Reloaded, the page knows it is off, though this sign-in used a code.
    browser.refresh().await.unwrap();
    account_ready(&browser).await;
    assert_eq!(shown_state(&browser).await, "off");
    browser.close().await.unwrap();
}

/// Whole seconds since the epoch.
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn a_step_up_change_after_the_reauth_window_asks_to_sign_in_again() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    // A short window, but long enough to sign in again and make the change within it.
    let window = 5;
    let mut args = DEFAULT_COOKIE.to_vec();
    args.extend(["--reauth-window", "5s"]);
    let app = spawn_app(&args).await;
    let base = app.address.clone();
    let email = "old@example.com";
    app.register(email).await;
    let browser = driver.browser().await;
    sign_in(&browser, &base, email).await;
    let signed_in = unix_seconds();
    let (mut app_codes, codes) = turn_on(&browser).await;
    // The server has no clock to move: wait until the sign-in (auth_time, whole seconds,
    // at most `signed_in`) is older than the window.
    while unix_seconds() <= signed_in + window {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    fill(&browser, "#mfa-new-codes-code", &codes[0]).await;
    click(&browser, "#mfa-new-codes-form button").await;
    wait_text(
        &browser,
        "#status",
        "For your safety, this change needs a recent sign-in. Sign in again, then try once more.",
    )
    .await;
    click(&browser, "#mfa-reauth:not([hidden]) #mfa-reauth-button").await;
    wait_for_path(&browser, "/?ended=reauth").await;
    wait_text(
        &browser,
        "#status",
        "Sign in again to confirm it's you. Then you're back on your account page.",
    )
    .await;

    sign_in_with_a_code(&browser, &base, email, &mut app_codes).await;
    // Fresh from signing in, the same change goes through (the refused try spent no code).
    fill(&browser, "#mfa-new-codes-code", &codes[0]).await;
    click(&browser, "#mfa-new-codes-form button").await;
    wait_text(
        &browser,
        "#status",
        "New recovery codes are below. Your old codes no longer work.",
    )
    .await;
    assert!(browser
        .find(Locator::Css("#mfa-reauth"))
        .await
        .unwrap()
        .attr("hidden")
        .await
        .unwrap()
        .is_some());
    browser.close().await.unwrap();
}
