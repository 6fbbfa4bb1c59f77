//! The account routes of a signed-in user: their sessions, signing out everywhere,
//! changing the password, their security events. Thin: each calls one service method.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{page_limit, Authenticated, JsonBody, PathParam, QueryParams};
use super::openapi::bodies::{EventList, SessionList};
use super::openapi::errors;
use super::AppState;
use crate::service::RequestContext;

/// The account routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(logout_all))
        .routes(routes!(change_password))
        .routes(routes!(events))
}

/// Where the caller is signed in: their live sessions, newest first; `current` marks
/// this token's.
#[utoipa::path(get, path = "/auth/sessions", tag = "account",
    security(("bearer" = [])),
    responses((status = 200, description = "The live sessions", body = SessionList),
        errors::MySessions))]
async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.service.my_sessions(&claims).await?;
    Ok(Json(SessionList { sessions }))
}

/// End one of the caller's sessions: its refresh and access tokens stop working at
/// once, on every replica.
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "account",
    params(("id" = String, Path, description = "The session id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Ended"), errors::RevokeMySession))]
async fn revoke_session(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    ctx: RequestContext,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    state.service.revoke_my_session(&claims, &id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Which sessions to end.
#[derive(Deserialize, ToSchema)]
struct LogoutAll {
    /// Keep the session of this access token (sign out everywhere else).
    keep_current: bool,
}

/// End every session of the caller, or every one but this.
#[utoipa::path(post, path = "/auth/logout-all", tag = "account",
    request_body = LogoutAll,
    security(("bearer" = [])),
    responses((status = 204, description = "Ended"), errors::LogoutAll))]
async fn logout_all(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    ctx: RequestContext,
    JsonBody(body): JsonBody<LogoutAll>,
) -> Result<Response, ApiError> {
    state
        .service
        .logout_all(&claims, body.keep_current, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A change of password.
#[derive(Deserialize, ToSchema)]
struct PasswordChange {
    /// The password now (a wrong one counts as a failed login).
    current_password: String,
    /// The new password, under the registration rules.
    new_password: String,
}

/// Change the password (needs a login within `LATCHKEY_REAUTH_WINDOW`): this session
/// goes on, every other one ends at once.
#[utoipa::path(post, path = "/auth/password", tag = "account",
    request_body = PasswordChange,
    security(("bearer" = [])),
    responses((status = 204, description = "Changed"), errors::ChangePassword))]
async fn change_password(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    ctx: RequestContext,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<Response, ApiError> {
    state
        .service
        .change_password(&claims, body.current_password, body.new_password, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// How many events.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventQuery {
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// The caller's security events, newest first.
#[utoipa::path(get, path = "/auth/events", tag = "account",
    params(EventQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The events", body = EventList), errors::MyEvents))]
async fn events(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    QueryParams(query): QueryParams<EventQuery>,
) -> Result<Json<EventList>, ApiError> {
    let limit = page_limit(query.limit, 50, 200)?;
    let events = state.service.my_events(&claims, limit).await?;
    Ok(Json(EventList { events }))
}
