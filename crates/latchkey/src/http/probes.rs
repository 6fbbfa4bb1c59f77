//! What operators and resource services poll: liveness, readiness and the public keys.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::bodies::{Health, JwkSet, Readiness, Unready};
use super::openapi::errors;
use super::AppState;

/// `/healthz`, `/readyz` and `/.well-known/jwks.json`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The public keys, for services that verify tokens themselves (cacheable for 60 s).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth",
    responses((status = 200, description = "The key set", body = JwkSet), errors::NoRefusal))]
async fn jwks(State(state): State<AppState>) -> Response {
    let ring = state.service.key_ring();
    let mut response = Json(ring.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health), errors::NoRefusal))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready when the database answers (503 otherwise). A configured Redis that does not
/// answer makes the server `degraded`, still ready: the database is the truth.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready or degraded", body = Readiness),
        (status = 503, description = "The database does not answer, or the server is overloaded", body = Unready),
        errors::Readyz))]
async fn readyz(State(state): State<AppState>) -> Response {
    let database_ok = state.service.store_is_ready().await;
    let redis = match &state.redis {
        None => "not_configured",
        Some(link) if link.ping().await => "ok",
        Some(_) => "unavailable",
    };
    let (status, word) = match (database_ok, redis) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, "unavailable") => (StatusCode::OK, "degraded"),
        (true, _) => (StatusCode::OK, "ready"),
    };
    let database = if database_ok { "ok" } else { "unavailable" };
    let body = Readiness {
        status: word,
        database,
        redis,
    };
    (status, Json(body)).into_response()
}
