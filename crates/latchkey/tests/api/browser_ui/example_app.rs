//! `examples/browser-app`, served from another origin, signs in through the server with
//! `latchkey.js` imported across origins.

use axum::http::header;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use fantoccini::Locator;

use super::harness::{serve, text_of, wait_text, Driver};
use super::pages::DEFAULT_COOKIE;
use crate::helpers::{spawn_app, PASSWORD};

const INDEX: &str = include_str!("../../../../../examples/browser-app/index.html");
const APP_JS: &str = include_str!("../../../../../examples/browser-app/app.js");

#[tokio::test]
async fn the_example_app_on_another_origin_signs_in_calls_and_signs_out() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let site = Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], APP_JS) }),
        );
    let origin = format!("http://{}", serve(site).await);
    let mut args = DEFAULT_COOKIE.to_vec();
    args.extend(["--allowed-origins", origin.as_str()]);
    let app = spawn_app(&args).await;
    app.register("app@example.com").await;
    let browser = driver.browser().await;

    browser
        .goto(&format!("{origin}/?server={}", app.address))
        .await
        .unwrap();
    text_of(&browser, "#signin:not([hidden])").await;
    let fill = |css: &'static str, text: &'static str| {
        let browser = browser.clone();
        async move {
            let field = browser.find(Locator::Css(css)).await.unwrap();
            field.send_keys(text).await.unwrap();
        }
    };
    fill("#email", "app@example.com").await;
    fill("#password", PASSWORD).await;
    browser
        .find(Locator::Css("#signin button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_of(&browser, "#app:not([hidden])").await;

    browser
        .find(Locator::Css("#call"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let answer = text_of(&browser, "#answer:not(:empty)").await;
    assert!(answer.contains("\"session\""), "{answer}");

    // A reload keeps the session: the cookie refreshes across origins with the CSRF header.
    browser.refresh().await.unwrap();
    wait_text(&browser, "#status", "Welcome back.").await;
    text_of(&browser, "#app:not([hidden])").await;

    browser
        .find(Locator::Css("#signout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&browser, "#status", "Signed out (logout).").await;
    text_of(&browser, "#signin:not([hidden])").await;
}
