//! The OpenAPI 3.1 document, `GET /openapi.json`, generated from the code.
//!
//! Every route is added to the router with utoipa-axum's `routes!`, which reads the
//! handler's `#[utoipa::path]` attribute for both its place in the router (method and
//! path) and its operation in the document, so the router cannot have a route the
//! document lacks. A source scan (`scan.rs`, a unit test) refuses any `.route(`,
//! `.route_service(`, `.nest(` or `.nest_service(` call in the crate, the ways around
//! `routes!`. The document is assembled in [`finish`] when the router is built, from
//! the base here (title, tags, the `Error` schema, the security schemes), and served
//! as it was serialized then.
//!
//! `bodies.rs` holds the answers' types, `errors.rs` each operation's refusals.

pub(super) mod bodies;
pub(super) mod errors;
#[cfg(test)]
mod scan;

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::browser::CSRF_HEADER;
use super::error::ErrorBody;
use super::{AppState, WebSettings};

/// Title, description, tags and the shared `Error` schema.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey",
        description = "Logs users in and keeps them logged in: short-lived signed access \
            tokens (JWT) and rotating refresh tokens with reuse detection. Every error is \
            `{\"error\": \"...\", \"code\": \"...\"}`; each operation lists the stable \
            codes it can answer, by status."
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Register, log in, refresh, log out"),
        (name = "account", description = "The signed-in user's sessions, password and events"),
        (name = "mfa", description = "The second factor (TOTP) and the login's second step"),
        (name = "email", description = "Password reset, address verification and change"),
        (name = "admin", description = "Users, sessions, the audit log and keys (role `admin`)"),
        (name = "oauth", description = "Discovery, JWKS, RFC 7662 introspection and RFC 7009 revocation"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "documentation", description = "This document"),
        (name = "pages", description = "The pages and latchkey.js"),
    )
)]
struct Base;

/// The document every router starts from, with the security schemes of these settings
/// (the refresh cookie's name depends on them).
pub(super) fn base(web: &WebSettings) -> utoipa::openapi::OpenApi {
    let mut document = Base::openapi();
    let components = document.components.get_or_insert_with(Default::default);
    let bearer = |description: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(description))
                .build(),
        )
    };
    components.add_security_scheme(
        "bearer",
        bearer("An access token from a login or a refresh: `Authorization: Bearer <token>`."),
    );
    components.add_security_scheme(
        "admin",
        bearer(
            "An access token whose `roles` include `admin` (403 `insufficient_role` otherwise).",
        ),
    );
    components.add_security_scheme(
        "refresh_cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            web.cookie_name,
            "The refresh token in its `HttpOnly` cookie (browsers); only together with `csrf_header` and an allowed `Origin`.",
        ))),
    );
    components.add_security_scheme(
        "csrf_header",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            CSRF_HEADER,
            "Any value; required with the refresh cookie (a cross-site page cannot send it without a CORS preflight).",
        ))),
    );
    components.add_security_scheme(
        "client_basic",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(
                    "An OAuth client of `LATCHKEY_CLIENTS` (`client_secret_basic`); \
                     `client_id` and `client_secret` in the form work too (`client_secret_post`).",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "feed_secret",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "`LATCHKEY_REVOCATION_FEED_SECRET`, for resource services.",
                ))
                .build(),
        ),
    );
    document
}

/// The document's own route.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The router of these documented routes, serving their document.
pub(super) fn finish(routes: OpenApiRouter<AppState>) -> Router<AppState> {
    let (router, document) = routes.split_for_parts();
    let json = serde_json::to_vec(&document).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document does not serialize");
        b"{}".to_vec()
    });
    router.layer(Extension(ApiDocument(Bytes::from(json))))
}

/// The serialized document.
#[derive(Debug, Clone)]
struct ApiDocument(Bytes);

/// This document: every route of this server, with its parameters, bodies, security
/// and the stable error codes it can answer.
#[utoipa::path(get, path = "/openapi.json", tag = "documentation",
    responses((status = 200, description = "The OpenAPI 3.1 document",
        content_type = "application/json", body = Object), errors::NoRefusal))]
async fn openapi_json(Extension(document): Extension<ApiDocument>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        document.0,
    )
        .into_response()
}
