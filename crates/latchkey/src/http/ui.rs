//! The pages served by the binary (sign in and sign up at `/`, the account page at
//! `/account`, `/reset` and `/verify`) and the browser client `latchkey.js` at
//! `/sdk/latchkey.js` with its types at `/sdk/latchkey.d.ts`.
//!
//! Everything is plain HTML, CSS and small ES modules from `crates/latchkey/ui/`, built
//! into the binary with `include_str!`: no build step, no framework. The pages carry no
//! inline script or style, so they get a strict Content-Security-Policy of their own
//! (the global layer only sets its `default-src 'none'` where a route set none).
//! The app name, logo and accent colour are settings; they are checked at start-up and
//! the name is HTML-escaped into the pages once, when the router is built.
//!
//! `LATCHKEY_UI=false` turns the pages off; the client stays, for apps on other origins.

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::Router;

use super::AppState;
use crate::ui_settings::{rgb, UiSettings};

const INDEX: &str = include_str!("../../ui/index.html");
const ACCOUNT: &str = include_str!("../../ui/account.html");
const RESET: &str = include_str!("../../ui/reset.html");
const VERIFY: &str = include_str!("../../ui/verify.html");
const STYLE: &str = include_str!("../../ui/style.css");
const PAGE_JS: &str = include_str!("../../ui/page.js");
const SIGNIN_JS: &str = include_str!("../../ui/signin.js");
const ACCOUNT_JS: &str = include_str!("../../ui/account.js");
const ACCOUNT_MFA_JS: &str = include_str!("../../ui/account-mfa.js");
const RESET_JS: &str = include_str!("../../ui/reset.js");
const VERIFY_JS: &str = include_str!("../../ui/verify.js");
const LATCHKEY_JS: &str = include_str!("../../ui/sdk/latchkey.js");
const LATCHKEY_DTS: &str = include_str!("../../ui/sdk/latchkey.d.ts");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// The pages and the client, or only the client when the pages are off.
pub(super) fn router(settings: &UiSettings) -> Router<AppState> {
    let sdk = Router::new()
        .route("/sdk/latchkey.js", asset(JS, LATCHKEY_JS.to_owned()))
        .route(
            "/sdk/latchkey.d.ts",
            asset(
                "application/typescript; charset=utf-8",
                LATCHKEY_DTS.to_owned(),
            ),
        );
    if !settings.enabled {
        return sdk;
    }
    let csp = content_security_policy(settings);
    let page = |template: &str| html(render(template, settings), csp.clone());
    sdk.route("/", page(INDEX))
        .route("/account", page(ACCOUNT))
        .route("/reset", page(RESET))
        .route("/verify", page(VERIFY))
        .route("/ui/style.css", asset(CSS, STYLE.to_owned()))
        .route("/ui/theme.css", asset(CSS, theme(&settings.accent)))
        .route("/ui/page.js", asset(JS, PAGE_JS.to_owned()))
        .route("/ui/signin.js", asset(JS, SIGNIN_JS.to_owned()))
        .route("/ui/account.js", asset(JS, ACCOUNT_JS.to_owned()))
        .route("/ui/account-mfa.js", asset(JS, ACCOUNT_MFA_JS.to_owned()))
        .route("/ui/reset.js", asset(JS, RESET_JS.to_owned()))
        .route("/ui/verify.js", asset(JS, VERIFY_JS.to_owned()))
}

fn asset(content_type: &'static str, body: String) -> MethodRouter<AppState> {
    get(move || {
        let body = body.clone();
        async move {
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                ],
                body,
            )
                .into_response()
        }
    })
}

fn html(body: String, csp: HeaderValue) -> MethodRouter<AppState> {
    get(move || {
        let (body, csp) = (body.clone(), csp.clone());
        async move {
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(HTML)),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    (header::CONTENT_SECURITY_POLICY, csp),
                ],
                body,
            )
                .into_response()
        }
    })
}

/// The pages' policy: scripts, styles and requests from this server only; images also
/// from `data:` and the logo's origin.
fn content_security_policy(settings: &UiSettings) -> HeaderValue {
    let logo_origin = settings
        .logo_url
        .as_deref()
        .and_then(origin_of)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{logo_origin}; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    // The logo URL was checked at start-up to hold only header-safe characters.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    })
}

/// `scheme://authority` of an absolute URL; `None` for a path on this server.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    Some(format!("{scheme}://{authority}"))
}

fn render(template: &str, settings: &UiSettings) -> String {
    let name = escape(&settings.app_name);
    let logo = settings
        .logo_url
        .as_deref()
        .map(|url| format!("<img src=\"{}\" alt=\"\">", escape(url)))
        .unwrap_or_default();
    template
        .replace("{{LOGO}}", &logo)
        .replace("{{APP_NAME}}", &name)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The accent colour, and black or white text on it, whichever contrasts more.
fn theme(accent: &str) -> String {
    let (r, g, b) = rgb(accent).unwrap_or((0x1d, 0x4e, 0xd8));
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
    let on_white = 1.05 / (luminance + 0.05);
    let on_black = (luminance + 0.05) / 0.05;
    let text = if on_white >= on_black {
        "#ffffff"
    } else {
        "#000000"
    };
    format!(":root {{ --accent: #{r:02x}{g:02x}{b:02x}; --accent-text: {text}; }}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui_settings::{parse_accent, parse_app_name, parse_logo_url};

    #[test]
    fn accent_text_keeps_contrast() {
        assert!(theme("#1d4ed8").contains("--accent-text: #ffffff"));
        assert!(theme("#ffd700").contains("--accent-text: #000000"));
        assert!(theme("#fff").contains("--accent: #ffffff"));
    }

    #[test]
    fn settings_are_checked() {
        assert!(parse_accent("#12345").is_err());
        assert!(parse_accent("red").is_err());
        assert!(parse_logo_url("javascript:alert(1)").is_err());
        assert!(parse_logo_url("//evil.example/x.png").is_err());
        assert!(parse_logo_url("https://cdn.example/logo.png\"onerror=x").is_err());
        assert!(parse_logo_url("https://cdn.example/logo.png").is_ok());
        assert!(parse_app_name("").is_err());
        assert_eq!(
            origin_of("https://cdn.example:8443/a/b.png").as_deref(),
            Some("https://cdn.example:8443")
        );
    }

    #[test]
    fn the_name_is_escaped() {
        let settings = UiSettings {
            enabled: true,
            app_name: "<b>Acme & Co</b>".into(),
            logo_url: None,
            accent: "#000".into(),
        };
        let page = render(INDEX, &settings);
        assert!(page.contains("&lt;b&gt;Acme &amp; Co&lt;/b&gt;"));
        assert!(!page.contains("{{"));
    }
}
