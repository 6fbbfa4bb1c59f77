//! The pages served by the binary (sign in and sign up at `/`, the account page at
//! `/account`, `/reset`, `/verify`, and this API's document at `/docs/api`) and the
//! browser client `latchkey.js` at `/sdk/latchkey.js` with its types at
//! `/sdk/latchkey.d.ts`. Each file is a documented route of its own (`page!`, `file!`).
//!
//! Everything is plain HTML, CSS and small ES modules from `crates/latchkey/ui/`, built
//! into the binary with `include_str!`: no build step, no framework. The pages carry no
//! inline script or style, so they get a strict Content-Security-Policy of their own
//! (the global layer only sets its `default-src 'none'` where a route set none).
//! The app name, logo and accent colour are settings; they are checked at start-up and
//! the name is HTML-escaped into the pages once, when the router is built.
//!
//! `LATCHKEY_UI=false` turns the pages off; the client stays, for apps on other origins.

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::errors;
use super::AppState;
use crate::ui_settings::{rgb, UiSettings};

const INDEX: &str = include_str!("../../ui/index.html");
const ACCOUNT: &str = include_str!("../../ui/account.html");
const RESET: &str = include_str!("../../ui/reset.html");
const VERIFY: &str = include_str!("../../ui/verify.html");
const API_DOCS: &str = include_str!("../../ui/api-docs.html");

/// The pages, rendered once when the router is built, and their policy.
#[derive(Debug)]
struct Pages {
    index: String,
    account: String,
    reset: String,
    verify: String,
    api_docs: String,
    theme: String,
    csp: HeaderValue,
}

/// The pages and the client, or only the client when the pages are off.
pub(super) fn router(settings: &UiSettings) -> OpenApiRouter<AppState> {
    let sdk = OpenApiRouter::new()
        .routes(routes!(latchkey_js))
        .routes(routes!(latchkey_dts));
    if !settings.enabled {
        return sdk;
    }
    let pages = Pages {
        index: render(INDEX, settings),
        account: render(ACCOUNT, settings),
        reset: render(RESET, settings),
        verify: render(VERIFY, settings),
        api_docs: render(API_DOCS, settings),
        theme: theme(&settings.accent),
        csp: content_security_policy(settings),
    };
    sdk.routes(routes!(index))
        .routes(routes!(account))
        .routes(routes!(reset))
        .routes(routes!(verify))
        .routes(routes!(api_docs))
        .routes(routes!(theme_css))
        .routes(routes!(style_css))
        .routes(routes!(api_docs_css))
        .routes(routes!(page_js))
        .routes(routes!(signin_js))
        .routes(routes!(account_js))
        .routes(routes!(account_mfa_js))
        .routes(routes!(reset_js))
        .routes(routes!(verify_js))
        .routes(routes!(api_docs_js))
        .layer(Extension(Arc::new(pages)))
}

/// A page handler: the rendered page with the pages' policy.
macro_rules! page {
    ($(#[$doc:meta])* $name:ident, $path:tt, $field:ident) => {
        $(#[$doc])*
        #[utoipa::path(get, path = $path, tag = "pages",
            responses((status = 200, description = "The page", content_type = "text/html", body = String),
                errors::NoRefusal))]
        async fn $name(Extension(pages): Extension<Arc<Pages>>) -> Response {
            html(&pages.$field, &pages.csp)
        }
    };
}

/// A file handler: a file from `ui/`, built into the binary.
macro_rules! file {
    ($(#[$doc:meta])* $name:ident, $path:tt, $media:tt, $file:tt) => {
        $(#[$doc])*
        #[utoipa::path(get, path = $path, tag = "pages",
            responses((status = 200, description = "The file", content_type = $media, body = String),
                errors::NoRefusal))]
        async fn $name() -> Response {
            asset(
                HeaderValue::from_static(concat!($media, "; charset=utf-8")),
                include_str!(concat!("../../ui/", $file)),
            )
        }
    };
}

page!(
    /// Sign in; `/#signup` creates an account.
    index, "/", index
);
page!(
    /// The account page: sessions, password, two-step sign-in, security activity.
    account, "/account", account
);
page!(
    /// Password reset: asks for the address, and the link's page sets the password.
    reset, "/reset", reset
);
page!(
    /// The landing page of e-mail confirmation links.
    verify, "/verify", verify
);
page!(
    /// This API, read from `/openapi.json`: operations, parameters, bodies, error codes.
    api_docs, "/docs/api", api_docs
);
file!(
    /// `latchkey.js`, the browser client (an ES module).
    latchkey_js, "/sdk/latchkey.js", "text/javascript", "sdk/latchkey.js"
);
file!(
    /// The TypeScript types of `latchkey.js`.
    latchkey_dts, "/sdk/latchkey.d.ts", "application/typescript", "sdk/latchkey.d.ts"
);
file!(
    /// The pages' style sheet.
    style_css, "/ui/style.css", "text/css", "style.css"
);
file!(
    /// The API page's style sheet.
    api_docs_css, "/ui/api-docs.css", "text/css", "api-docs.css"
);
file!(
    /// What every page shares (status line, forms).
    page_js, "/ui/page.js", "text/javascript", "page.js"
);
file!(
    /// The sign-in page's script.
    signin_js, "/ui/signin.js", "text/javascript", "signin.js"
);
file!(
    /// The account page's script.
    account_js, "/ui/account.js", "text/javascript", "account.js"
);
file!(
    /// The account page's two-step sign-in forms.
    account_mfa_js, "/ui/account-mfa.js", "text/javascript", "account-mfa.js"
);
file!(
    /// The reset page's script.
    reset_js, "/ui/reset.js", "text/javascript", "reset.js"
);
file!(
    /// The verification page's script.
    verify_js, "/ui/verify.js", "text/javascript", "verify.js"
);
file!(
    /// The API page's script: renders `/openapi.json`.
    api_docs_js, "/ui/api-docs.js", "text/javascript", "api-docs.js"
);

/// The accent colour (`LATCHKEY_UI_ACCENT`) as CSS custom properties.
#[utoipa::path(get, path = "/ui/theme.css", tag = "pages",
    responses((status = 200, description = "The file", content_type = "text/css", body = String),
        errors::NoRefusal))]
async fn theme_css(Extension(pages): Extension<Arc<Pages>>) -> Response {
    asset(
        HeaderValue::from_static("text/css; charset=utf-8"),
        pages.theme.clone(),
    )
}

fn asset(content_type: HeaderValue, body: impl Into<String>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body.into(),
    )
        .into_response()
}

fn html(body: &str, csp: &HeaderValue) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::CONTENT_SECURITY_POLICY, csp.clone()),
        ],
        body.to_owned(),
    )
        .into_response()
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
