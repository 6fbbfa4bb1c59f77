//! The HTTP layer (axum): thin handlers over [`crate::service::AuthService`], the
//! browser-facing cookie and CSRF rules, limits and security headers.
//!
//! [`router`] returns a complete `Router` that another axum application can `merge`.

mod account;
mod admin;
mod auth;
mod browser;
mod email;
mod error;
mod extract;
mod forwarded;
mod limits;
mod mfa;
mod oauth;
mod observe;
mod openapi;
mod probes;
mod tokens;
mod ui;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;

pub use crate::ui_settings::UiSettings;
pub use browser::CSRF_HEADER;
pub use error::ApiError;
pub use extract::{Admin, Authenticated};
pub use observe::REQUEST_ID;

use crate::clients::OAuthClients;
use crate::config::{Config, TrustedProxies};
use crate::hashing::HashPool;
use crate::redis_link::RedisLink;
use crate::service::AuthService;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Settings of the HTTP layer, from the config.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Name of the refresh cookie.
    pub cookie_name: &'static str,
    /// `Path` of the refresh cookie.
    pub cookie_path: String,
    /// Whether the cookie is `Secure`.
    pub cookie_secure: bool,
    /// Cross-origin browser origins allowed to use the cookie.
    pub allowed_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` entries are believed.
    pub trusted_proxies: Option<TrustedProxies>,
    /// Secret for the revocation feed; `None` turns the feed off.
    pub revocation_feed_secret: Option<SecretString>,
    /// The HSTS header value, if any.
    pub hsts: Option<String>,
    /// How long a request body may take to arrive after the head (408 `body_timeout`).
    pub body_timeout: Duration,
    /// How long a handler may take once the request has arrived (503 `request_timeout`).
    pub request_timeout: Duration,
    /// The pages and `latchkey.js`.
    pub ui: UiSettings,
    /// Whether `GET /metrics` is on this router (no separate metrics listener).
    pub metrics_route: bool,
    /// Clients allowed to introspect and revoke tokens.
    pub clients: Arc<OAuthClients>,
}

impl WebSettings {
    /// The settings the config describes.
    pub fn from_config(config: &Config) -> Self {
        Self {
            cookie_name: config.refresh_cookie_name(),
            cookie_path: config.refresh_cookie_path().to_owned(),
            cookie_secure: config.cookie_is_secure(),
            allowed_origins: config.allowed_origins.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            revocation_feed_secret: config.revocation_feed_secret.clone(),
            hsts: Some(config.hsts.clone())
                .filter(|h| !h.eq_ignore_ascii_case("off") && !h.is_empty()),
            body_timeout: config.body_timeout.0,
            request_timeout: config.request_timeout.0,
            ui: config.ui.clone(),
            metrics_route: config.metrics_bind.is_none(),
            // Checked by `Config::validate` at start-up.
            clients: Arc::new(
                config
                    .clients
                    .as_ref()
                    .and_then(|c| OAuthClients::parse(c.expose_secret()).ok())
                    .unwrap_or_default(),
            ),
        }
    }
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The use cases.
    pub service: Arc<AuthService>,
    /// HTTP settings.
    pub web: Arc<WebSettings>,
    /// Redis, when configured (for readiness).
    pub redis: Option<Arc<RedisLink>>,
}

/// All Latchkey routes with their limits, CORS and security headers, and their OpenAPI
/// document at `/openapi.json`. Routes are added only with `routes!` (see [`openapi`]).
pub fn router(state: AppState) -> Router {
    let web = state.web.clone();
    let hashing = state.service.hashing().clone();
    let metrics = state.service.metrics().clone();
    let mut routes = OpenApiRouter::with_openapi(openapi::base(&web))
        .merge(auth::router())
        .merge(account::router())
        .merge(admin::router())
        .merge(mfa::router())
        .merge(email::router())
        .merge(ui::router(&web.ui))
        .merge(oauth::router())
        .merge(probes::router())
        .merge(openapi::router());
    if web.metrics_route {
        routes = routes.merge(observe::router());
    }
    let mut router = openapi::finish(routes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(hashing, count_in_flight))
        .layer(middleware::from_fn(require_peer_address))
        .layer(middleware::from_fn_with_state(
            web.clone(),
            limits::read_then_answer,
        ))
        .with_state(state);
    if !web.allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> = web
            .allowed_origins
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_credentials(true)
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    HeaderName::from_static(CSRF_HEADER),
                ]),
        );
    }
    if let Some(hsts) = web
        .hsts
        .as_deref()
        .and_then(|h| HeaderValue::from_str(h).ok())
    {
        router = router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            hsts,
        ));
    }
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // `if_not_present`: the pages (see `ui`) set a policy of their own.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            metrics,
            observe::record_request,
        ))
        .layer(observe::trace_layer())
        .layer(middleware::from_fn_with_state(web, observe::request_id))
}

/// `GET /metrics` alone, for the separate metrics listener (`LATCHKEY_METRICS_BIND`).
pub fn metrics_router(state: AppState) -> Router {
    let (router, _) = observe::router().split_for_parts();
    router.with_state(state)
}

/// A handler that panicked: 500 `internal_error` as JSON, like every other error.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "internal error",
    )
    .into_response()
}

/// Refuses every request that arrives without the peer's socket address
/// (`ConnectInfo<SocketAddr>`): without it every client would share one rate-limit
/// bucket, and a proxy's `X-Forwarded-For` could not be checked against the peer either.
/// An application that mounts [`router`] must be served with
/// `into_make_service_with_connect_info::<SocketAddr>()`; until then every request is
/// answered 500 `connect_info_missing` and the mistake is logged once.
async fn require_peer_address(request: Request, next: Next) -> Response {
    if request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_none()
    {
        static LOGGED: AtomicBool = AtomicBool::new(false);
        if !LOGGED.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "latchkey::http::router is served without ConnectInfo<SocketAddr>: serve it with \
                 into_make_service_with_connect_info::<SocketAddr>(); every request is refused \
                 with 500 connect_info_missing until then"
            );
        }
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "connect_info_missing",
            "the server is misconfigured",
        )
        .into_response();
    }
    next.run(request).await
}

/// Counts the request as in flight while it runs, so password hashing keeps to its CPU
/// budget while there are other requests to answer (see [`crate::hashing`]). Runs
/// inside [`limits::read_then_answer`]: a request counts once its head and body are in.
async fn count_in_flight(
    State(hashing): State<HashPool>,
    request: Request,
    next: Next,
) -> Response {
    let _in_flight = hashing.track_request();
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// The router's panic layer, around a route that panics: a JSON 500, not a dropped
    /// connection or framework text.
    #[tokio::test]
    async fn a_panic_becomes_a_json_internal_error() {
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(panic_response));
        let request = axum::http::Request::get("/boom")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "internal_error");
    }
}
