//! The API page (`/docs/api`) in Chromium: it renders every operation of the server's
//! own `/openapi.json` with its error codes, and the filter narrows the list.

use fantoccini::Locator;

use super::harness::{js, screenshot, text_of, Driver};
use crate::helpers::spawn_app;

#[tokio::test]
async fn the_api_page_renders_the_document_and_filters_it() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let doc: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let browser = driver.browser().await;
    browser.goto(&app.url("/docs/api")).await.unwrap();
    text_of(&browser, "body[data-ready=true] #operations").await;

    let shown = js(
        &browser,
        "return document.querySelectorAll('#operations details.op').length;",
    )
    .await;
    assert_eq!(shown.as_u64(), Some(operations as u64));
    let count = text_of(&browser, "#match-count").await;
    assert_eq!(count, format!("{operations} operations."));

    // An operation opens to its body, security and error codes.
    let login = browser
        .find(Locator::Css("details.op[id=login] summary"))
        .await
        .unwrap();
    login.click().await.unwrap();
    let body = text_of(&browser, "details.op[id=login][open] .body").await;
    for expected in [
        "refresh_delivery",
        "invalid_credentials",
        "account_disabled",
        "Anyone may call it.",
    ] {
        assert!(body.contains(expected), "{expected} not in {body}");
    }
    screenshot(&browser, "api-docs").await;

    // The filter keeps the operations that answer a code, and says how many.
    let field = browser.find(Locator::Css("#filter")).await.unwrap();
    field.send_keys("last_admin").await.unwrap();
    let visible = js(
        &browser,
        "return [...document.querySelectorAll('details.op')].filter(d => !d.hidden).map(d => d.id);",
    )
    .await;
    let visible: Vec<&str> = visible
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(visible, ["change_user", "delete_user"], "{visible:?}");
    assert_eq!(
        text_of(&browser, "#match-count").await,
        format!("2 of {operations} operations match.")
    );
}
