//! The pages and `latchkey.js` in a real Chromium (Debian's `chromium` driven through
//! `chromedriver` over WebDriver), plus HTTP-level checks of what the pages are served
//! with. Without chromium the browser tests skip with a note; under `CI=true` they fail.

mod api_docs;
mod example_app;
mod harness;
mod mail_links;
mod pages;
mod sdk;
mod two_step;

use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn pages_carry_a_strict_policy_of_their_own() {
    let app = spawn_app(&["--ui-app-name", "Acme <Notes>"]).await;
    for path in ["/", "/account", "/reset", "/verify"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        let body = response.text().await.unwrap();
        assert!(
            body.contains("Acme &lt;Notes&gt;"),
            "{path}: the name is escaped"
        );
        assert!(
            !body.contains("<script>") && !body.contains("style="),
            "{path}"
        );
    }
    // The API keeps the global policy.
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        response.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
}

#[tokio::test]
async fn ui_false_turns_the_pages_off_but_keeps_the_client() {
    let app = spawn_app(&["--ui", "false"]).await;
    let response = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .client
        .get(app.url("/sdk/latchkey.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
}

#[tokio::test]
async fn the_client_is_served_with_cors_for_allowed_origins() {
    let app = spawn_app(&["--allowed-origins", "http://127.0.0.1:9999"]).await;
    for path in ["/sdk/latchkey.js", "/sdk/latchkey.d.ts"] {
        let response = app
            .client
            .get(app.url(path))
            .header("Origin", "http://127.0.0.1:9999")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "http://127.0.0.1:9999"
        );
    }
    let response = app
        .client
        .get(app.url("/sdk/latchkey.js"))
        .header("Origin", "http://evil.test")
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn bad_ui_settings_are_refused() {
    for args in [
        ["--ui-accent", "red"],
        ["--ui-logo-url", "javascript:alert(1)"],
    ] {
        let mut argv = vec!["latchkey"];
        argv.extend_from_slice(&args);
        assert!(
            <TestCli as clap::Parser>::try_parse_from(argv).is_err(),
            "{args:?}"
        );
    }
}

#[derive(clap::Parser)]
struct TestCli {
    #[command(flatten)]
    _config: latchkey::Config,
}
