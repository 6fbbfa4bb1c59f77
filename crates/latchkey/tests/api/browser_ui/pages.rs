//! The pages in Chromium: sign up, sign in, the account page, sign out, revoking
//! another browser's session, and the screenshots. Two-step sign-in is in `two_step`,
//! the links from e-mails in `mail_links`.

use fantoccini::Locator;

use super::harness::{
    fill, refresh_cookie, screenshot, sign_in, text_of, wait_for_path, wait_text, Driver,
};
use crate::helpers::{spawn_app, PASSWORD};

/// The defaults of `cargo run`: a Secure (`__Host-`) cookie, which Chromium accepts on
/// http://127.0.0.1 because loopback is a secure context.
pub const DEFAULT_COOKIE: &[&str] = &["--cookie-secure", "true"];

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
