//! Chromium through chromedriver, a counting proxy and a page on another origin.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{Html, Response};
use axum::Router;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use latchkey_store::testing::skip;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver for this test; it and the browsers it started stop when dropped.
pub struct Driver {
    process: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium outlives a killed chromedriver (it is re-parented, not killed): end
        // chromedriver's whole process group, which its browsers share.
        let group = self
            .process
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?));
        if let Some(group) = group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

impl Driver {
    /// Start chromedriver on a free port; `None` after [`skip`] when chromium is missing
    /// (a failure under `CI=true`).
    pub async fn start() -> Option<Self> {
        if !std::path::Path::new(CHROMIUM).exists() || !std::path::Path::new(CHROMEDRIVER).exists()
        {
            skip(format_args!(
                "{CHROMIUM} or {CHROMEDRIVER} is missing: apt-get install chromium chromium-driver"
            ));
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Its own process group, so dropping the driver ends its browsers too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client.get(format!("{url}/status")).send().await.is_ok() {
                return Some(Self { process, url });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not answer on {url}");
    }

    /// A new browser with its own profile (its own cookies).
    pub async fn browser(&self) -> Client {
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=900,1000"]
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

/// Run `body` (an async function body) in the page and return its result.
pub async fn js(browser: &Client, body: &str) -> Value {
    // A rejection comes back as `{thrown: ...}`: chromedriver mangles thrown objects.
    let script = format!(
        "return (async () => {{ {body} }})().catch(e => ({{ thrown: String(e), code: e && e.code }}));"
    );
    let value = browser
        .execute(&script, vec![])
        .await
        .expect("the script runs");
    assert!(value.get("thrown").is_none(), "the script threw: {value}");
    value
}

/// Load `latchkey.js` from `server` into the page as `window.auth`.
pub async fn load_client(browser: &Client, server: &str) {
    js(
        browser,
        &format!(
            "const m = await import('{server}/sdk/latchkey.js');
             window.auth = new m.Latchkey({{ baseUrl: '{server}' }});
             window.ended = new Promise(r => auth.onSessionEnd(r));
             return true;"
        ),
    )
    .await;
}

/// Wait for an element and return its text.
pub async fn text_of(browser: &Client, css: &str) -> String {
    let element = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    element.text().await.unwrap()
}

/// Wait until the URL's path and query are `path`.
pub async fn wait_for_path(browser: &Client, path: &str) {
    for _ in 0..200 {
        let url = browser.current_url().await.unwrap();
        let here = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        if here == path {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "never reached {path}: at {}",
        browser.current_url().await.unwrap()
    );
}

/// The refresh cookie's value as the browser holds it (WebDriver sees HttpOnly cookies).
pub async fn refresh_cookie(browser: &Client) -> Option<String> {
    let cookies = browser.get_all_cookies().await.unwrap();
    cookies
        .iter()
        .find(|c| c.name().ends_with("latchkey_refresh"))
        .map(|c| c.value().to_owned())
}

/// Save a screenshot under `$LATCHKEY_SCREENSHOTS` when that is set.
pub async fn screenshot(browser: &Client, name: &str) {
    if let Ok(dir) = std::env::var("LATCHKEY_SCREENSHOTS") {
        let png = browser.screenshot().await.unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

/// Save a screenshot of one element under `$LATCHKEY_SCREENSHOTS`, in a window tall
/// enough to hold all of it.
pub async fn screenshot_of(browser: &Client, css: &str, name: &str) {
    if let Ok(dir) = std::env::var("LATCHKEY_SCREENSHOTS") {
        let (width, height) = browser.get_window_size().await.unwrap();
        let (width, height) = (
            u32::try_from(width).unwrap(),
            u32::try_from(height).unwrap(),
        );
        browser.set_window_size(width, 2400).await.unwrap();
        let element = browser.find(Locator::Css(css)).await.unwrap();
        let png = element.screenshot().await.unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
        browser.set_window_size(width, height).await.unwrap();
    }
}

/// Serve `router` on a free local port; its address.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

/// A page on another origin, for the attacker.
pub async fn other_origin() -> String {
    let page = Html("<!doctype html><html lang=en><title>elsewhere</title><p>another site</p>");
    let router = Router::new().route("/", axum::routing::get(move || async move { page }));
    format!("http://{}", serve(router).await)
}

/// A proxy in front of `upstream` that counts `POST /auth/refresh` and holds each one
/// for `hold` before passing it on (so that concurrent refreshes overlap at the server
/// unless the client serialises them); its address and the count.
pub async fn counting_proxy(upstream: &str, hold: Duration) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let state = ProxyState {
        upstream: upstream.to_owned(),
        count: count.clone(),
        hold,
        client: reqwest::Client::new(),
    };
    let router = Router::new().fallback(forward).with_state(state);
    (format!("http://{}", serve(router).await), count)
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    count: Arc<AtomicUsize>,
    hold: Duration,
    client: reqwest::Client,
}

async fn forward(
    State(ProxyState {
        upstream,
        count,
        hold,
        client,
    }): State<ProxyState>,
    request: Request,
) -> Response {
    if request.method() == "POST" && request.uri().path() == "/auth/refresh" {
        count.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(hold).await;
    }
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    // Host stays the proxy's, so the server sees the page's own origin.
    let answer = client
        .request(parts.method, format!("{upstream}{path}"))
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "connection" {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

/// Wait until the element's text is `expected`.
pub async fn wait_text(browser: &Client, css: &str, expected: &str) {
    let mut last = String::new();
    for _ in 0..200 {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            last = element.text().await.unwrap_or_default();
            if last == expected {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css}: expected {expected:?}, last saw {last:?}");
}

/// Type `text` into the field at `css` (emptied first).
pub async fn fill(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Click the element at `css`.
pub async fn click(browser: &Client, css: &str) {
    let element = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    element.click().await.unwrap();
}

/// Fill in the sign-in form at `base` and send it (what follows depends on the account).
pub async fn submit_sign_in(browser: &Client, base: &str, email: &str, password: &str) {
    browser.goto(&format!("{base}/")).await.unwrap();
    text_of(browser, "#signin-form").await;
    fill(browser, "#signin-email", email).await;
    fill(browser, "#signin-password", password).await;
    click(browser, "#signin-form button").await;
}

/// Wait for the account page to have loaded (sessions and activity shown).
pub async fn account_ready(browser: &Client) {
    wait_for_path(browser, "/account").await;
    text_of(browser, "body[data-ready=true] #sessions li").await;
}

/// Sign in on the page with the tests' password, to the account page.
pub async fn sign_in(browser: &Client, base: &str, email: &str) {
    submit_sign_in(browser, base, email, crate::helpers::PASSWORD).await;
    account_ready(browser).await;
}
