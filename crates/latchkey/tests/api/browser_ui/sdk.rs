//! `latchkey.js` in Chromium: what script in the page can and cannot see, what another
//! origin can and cannot do, one refresh for many callers and tabs, and theft.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};

use super::harness::{counting_proxy, js, load_client, other_origin, refresh_cookie, Driver};
use super::pages::DEFAULT_COOKIE;
use crate::helpers::{spawn_app, PASSWORD};

async fn signed_in_page(browser: &fantoccini::Client, base: &str, email: &str) {
    browser.goto(&format!("{base}/reset")).await.unwrap();
    load_client(browser, base).await;
    let user = js(
        browser,
        &format!("const r = await auth.login('{email}', '{PASSWORD}'); return r.user.sub;"),
    )
    .await;
    assert!(user.as_str().is_some_and(|s| !s.is_empty()), "{user}");
}

#[tokio::test]
async fn script_in_the_page_cannot_read_the_refresh_token() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app(DEFAULT_COOKIE).await;
    app.register("xss@example.com").await;
    let browser = driver.browser().await;
    signed_in_page(&browser, &app.address, "xss@example.com").await;
    let token = refresh_cookie(&browser)
        .await
        .expect("the browser holds the cookie");

    // What an injected script can reach: document.cookie, and every answer it can read
    // (a login, a refresh, headers included).
    let seen = js(
        &browser,
        &format!(
            "const texts = [document.cookie];
             const read = async (r) => {{
               texts.push(await r.text());
               for (const [k, v] of r.headers) texts.push(k + ': ' + v);
             }};
             await read(await fetch('/auth/login', {{ method: 'POST', credentials: 'include',
               headers: {{ 'Content-Type': 'application/json' }},
               body: JSON.stringify({{ email: 'xss@example.com', password: '{PASSWORD}' }}) }}));
             await read(await fetch('/auth/refresh', {{ method: 'POST', credentials: 'include',
               headers: {{ 'X-Latchkey-CSRF': '1' }} }}));
             return texts;"
        ),
    )
    .await;
    let now = refresh_cookie(&browser).await.expect("still held");
    let seen = seen.to_string();
    assert!(
        seen.contains("access_token"),
        "the answers were read: {seen}"
    );
    for secret in [&token, &now] {
        assert!(
            !seen.contains(secret.as_str()),
            "a refresh token reached script"
        );
    }
    assert!(!seen.contains("latchkey_refresh"), "{seen}");
}

#[tokio::test]
async fn another_origin_cannot_use_the_cookie_or_read_the_answers() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app(DEFAULT_COOKIE).await;
    app.register("victim@example.com").await;
    let browser = driver.browser().await;
    signed_in_page(&browser, &app.address, "victim@example.com").await;
    let before = refresh_cookie(&browser).await.expect("cookie");

    // 127.0.0.1 on another port: another origin, the same site, so the browser does
    // send the SameSite=Strict cookie. The server's Origin and header checks refuse it.
    browser.goto(&other_origin().await).await.unwrap();
    let server = &app.address;
    let outcome = js(
        &browser,
        &format!(
            "const out = {{}};
             try {{
               const r = await fetch('{server}/auth/refresh', {{ method: 'POST', credentials: 'include',
                 headers: {{ 'X-Latchkey-CSRF': '1' }} }});
               out.read = await r.text();
             }} catch (e) {{ out.read = 'blocked'; }}
             const blind = {{ method: 'POST', credentials: 'include', mode: 'no-cors' }};
             const unread = (r) => r.type === 'opaque' ? 'unreadable' : 'READ';
             out.refresh = await fetch('{server}/auth/refresh', blind).then(unread, () => 'unreadable');
             out.logout = await fetch('{server}/auth/logout', blind).then(unread, () => 'unreadable');
             return out;"
        ),
    )
    .await;
    assert_eq!(
        outcome,
        json!({ "read": "blocked", "refresh": "unreadable", "logout": "unreadable" })
    );

    // Back home: the cookie was neither rotated nor cleared, and it still works.
    browser.goto(&format!("{server}/reset")).await.unwrap();
    assert_eq!(
        refresh_cookie(&browser).await.as_deref(),
        Some(before.as_str())
    );
    load_client(&browser, server).await;
    let restored = js(&browser, "return (await auth.restore()) !== null;").await;
    assert_eq!(restored, Value::Bool(true));
}

#[tokio::test]
async fn twenty_parallel_fetches_after_expiry_make_one_refresh() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let mut args = DEFAULT_COOKIE.to_vec();
    args.extend(["--access-ttl", "10s", "--leeway", "0s"]);
    let app = spawn_app(&args).await;
    app.register("many@example.com").await;
    let (proxy, refreshes) = counting_proxy(&app.address, Duration::ZERO).await;
    let browser = driver.browser().await;
    signed_in_page(&browser, &proxy, "many@example.com").await;

    // Wait out the access token (10 s, once), judged by the server's clock.
    let exp = js(&browser, "return auth.user.exp;")
        .await
        .as_i64()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    tokio::time::sleep(Duration::from_secs((exp - now + 1).max(0) as u64)).await;
    refreshes.store(0, Ordering::SeqCst);
    let statuses = js(
        &browser,
        "const all = await Promise.all(Array.from({ length: 20 }, () => auth.fetch('/auth/me')));
         return all.map(r => r.status);",
    )
    .await;
    assert_eq!(statuses, json!(vec![200; 20]));
    assert_eq!(
        refreshes.load(Ordering::SeqCst),
        1,
        "exactly one /auth/refresh"
    );
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_both_stay_signed_in() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let mut args = DEFAULT_COOKIE.to_vec();
    // No grace: two uses of one refresh token end the session.
    args.extend(["--reuse-grace", "0s"]);
    let app = spawn_app(&args).await;
    app.register("tabs@example.com").await;
    // Each refresh is held 300 ms on its way, so two tabs that did not take turns would
    // present the same cookie to the server at once.
    let (base, refreshes) = counting_proxy(&app.address, Duration::from_millis(300)).await;
    let browser = driver.browser().await;
    signed_in_page(&browser, &base, "tabs@example.com").await;
    let first = browser.window().await.unwrap();
    let second = browser.new_window(true).await.unwrap().handle;
    browser.switch_to_window(second.clone()).await.unwrap();
    browser.goto(&format!("{base}/reset")).await.unwrap();
    load_client(&browser, &base).await;
    assert_eq!(
        js(&browser, "return (await auth.restore()) !== null;").await,
        json!(true)
    );

    // The second tab refreshes when told; the first tells it and refreshes itself.
    js(
        &browser,
        "window.done = new Promise(r => { new BroadcastChannel('go').onmessage = () =>
           auth.refresh().then(() => r('ok'), e => r(e.code)); });
         return 1;",
    )
    .await;
    browser.switch_to_window(first.clone()).await.unwrap();
    let before = refreshes.load(Ordering::SeqCst);
    js(
        &browser,
        "new BroadcastChannel('go').postMessage('now');
         window.done = auth.refresh().then(() => 'ok', e => e.code);
         return 1;",
    )
    .await;
    for tab in [&first, &second] {
        browser.switch_to_window(tab.clone()).await.unwrap();
        assert_eq!(js(&browser, "return await window.done;").await, json!("ok"));
        let me = js(&browser, "return (await auth.fetch('/auth/me')).status;").await;
        assert_eq!(me, json!(200));
    }
    assert!(
        refreshes.load(Ordering::SeqCst) > before,
        "the tabs did refresh"
    );
}

#[tokio::test]
async fn a_stolen_refresh_token_used_after_rotation_ends_the_session_in_the_page() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let mut args = DEFAULT_COOKIE.to_vec();
    args.extend(["--reuse-grace", "0s"]);
    let app = spawn_app(&args).await;
    app.register("stolen@example.com").await;
    let browser = driver.browser().await;
    signed_in_page(&browser, &app.address, "stolen@example.com").await;
    let stolen = refresh_cookie(&browser).await.expect("cookie");

    js(&browser, "await auth.refresh(); return 1;").await;
    let thief = app.refresh_body(&stolen).await;
    crate::helpers::assert_error(
        thief,
        reqwest::StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;

    let reason = js(
        &browser,
        "await auth.fetch('/auth/me');
         return [await window.ended, auth.user];",
    )
    .await;
    assert_eq!(reason, json!(["revoked", null]));
}
