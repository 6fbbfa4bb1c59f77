//! The `/admin/*` routes, for callers with the `admin` role: users, their sessions, the
//! audit log, key rotation. Thin: each calls one service method.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{extract::State, Json};
use latchkey_core::accounts::AccessChange;
use latchkey_core::model::Role;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{page_limit, Admin, JsonBody, PathParam, QueryParams};
use super::openapi::bodies::{
    ChangedUser, EventList, NewKey, RevokedSessions, SessionList, UserDetail,
};
use super::openapi::errors;
use super::AppState;
use crate::service::{AuthError, RequestContext, UserPage};

/// The `/admin` routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(show_user, change_user, delete_user))
        .routes(routes!(user_sessions, revoke_user_sessions))
        .routes(routes!(security_events))
        .routes(routes!(rotate_keys))
        .routes(routes!(revoke_key))
}

/// A page of users.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// The `next` of the previous page: users after this address.
    after: Option<String>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Users, by e-mail address.
#[utoipa::path(get, path = "/admin/users", tag = "admin",
    params(Page),
    security(("admin" = [])),
    responses((status = 200, description = "A page of users", body = UserPage), errors::ListUsers))]
async fn list_users(
    State(state): State<AppState>,
    _: Admin,
    QueryParams(page): QueryParams<Page>,
) -> Result<Json<UserPage>, ApiError> {
    let limit = page_limit(page.limit, 50, 500)?;
    let page = state
        .service
        .list_users(page.after.as_deref(), limit)
        .await?;
    Ok(Json(page))
}

/// A user and their live sessions.
#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "The user id")),
    security(("admin" = [])),
    responses((status = 200, description = "The user", body = UserDetail), errors::ShowUser))]
async fn show_user(
    State(state): State<AppState>,
    _: Admin,
    PathParam(id): PathParam,
) -> Result<Json<UserDetail>, ApiError> {
    let user = state.service.user(&id).await?;
    let sessions = state.service.sessions_of_user(&id).await?;
    Ok(Json(UserDetail { user, sessions }))
}

/// A change of roles or state; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UserChange {
    /// The new roles (they replace the old ones). Removing one ends the user's sessions.
    roles: Option<Vec<String>>,
    /// Disable (ending every session at once) or enable the account.
    disabled: Option<bool>,
}

/// Change a user's roles or disable them. The last enabled admin stays.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "The user id")),
    request_body = UserChange,
    security(("admin" = [])),
    responses((status = 200, description = "The user as changed", body = ChangedUser),
        errors::ChangeUser))]
async fn change_user(
    State(state): State<AppState>,
    _: Admin,
    ctx: RequestContext,
    PathParam(id): PathParam,
    JsonBody(body): JsonBody<UserChange>,
) -> Result<Json<ChangedUser>, ApiError> {
    let roles = body
        .roles
        .map(|roles| {
            roles
                .iter()
                .map(|r| Role::parse(r))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(AuthError::from)?;
    let change = AccessChange {
        roles,
        disabled: body.disabled,
    };
    let user = state.service.change_user(&id, change, &ctx).await?;
    Ok(Json(ChangedUser { user }))
}

/// Delete a user: their sessions and tokens go; the audit log keeps the id.
#[utoipa::path(delete, path = "/admin/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "The user id")),
    security(("admin" = [])),
    responses((status = 204, description = "Deleted"), errors::DeleteUser))]
async fn delete_user(
    State(state): State<AppState>,
    _: Admin,
    ctx: RequestContext,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    state.service.delete_user(&id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A user's live sessions.
#[utoipa::path(get, path = "/admin/users/{id}/sessions", tag = "admin",
    params(("id" = String, Path, description = "The user id")),
    security(("admin" = [])),
    responses((status = 200, description = "The sessions", body = SessionList), errors::ShowUser))]
async fn user_sessions(
    State(state): State<AppState>,
    _: Admin,
    PathParam(id): PathParam,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.service.sessions_of_user(&id).await?;
    Ok(Json(SessionList { sessions }))
}

/// End every session of a user, at once.
#[utoipa::path(delete, path = "/admin/users/{id}/sessions", tag = "admin",
    params(("id" = String, Path, description = "The user id")),
    security(("admin" = [])),
    responses((status = 200, description = "How many were ended", body = RevokedSessions),
        errors::RevokeUserSessions))]
async fn revoke_user_sessions(
    State(state): State<AppState>,
    _: Admin,
    ctx: RequestContext,
    PathParam(id): PathParam,
) -> Result<Json<RevokedSessions>, ApiError> {
    let revoked = state
        .service
        .revoke_sessions_of_user(&id, None, &ctx)
        .await?;
    Ok(Json(RevokedSessions { revoked }))
}

/// Which events.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventQuery {
    /// Only this user's.
    user_id: Option<String>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/admin/security-events", tag = "admin",
    params(EventQuery),
    security(("admin" = [])),
    responses((status = 200, description = "The events", body = EventList), errors::SecurityEvents))]
async fn security_events(
    State(state): State<AppState>,
    _: Admin,
    QueryParams(query): QueryParams<EventQuery>,
) -> Result<Json<EventList>, ApiError> {
    let limit = page_limit(query.limit, 100, 1000)?;
    let events = state
        .service
        .security_events(query.user_id.as_deref(), limit)
        .await?;
    Ok(Json(EventList { events }))
}

/// Revoke a leaked signing key: it is deleted (the active one replaced first) and its
/// tokens stop verifying at once, everywhere.
#[utoipa::path(post, path = "/admin/keys/{kid}/revoke", tag = "admin",
    params(("kid" = String, Path, description = "The key id")),
    security(("admin" = [])),
    responses((status = 204, description = "Revoked"), errors::RevokeKey))]
async fn revoke_key(
    State(state): State<AppState>,
    _: Admin,
    ctx: RequestContext,
    PathParam(kid): PathParam,
) -> Result<Response, ApiError> {
    state.service.revoke_key(&kid, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Make a new signing key active; the old one keeps verifying.
#[utoipa::path(post, path = "/admin/keys/rotate", tag = "admin",
    security(("admin" = [])),
    responses((status = 200, description = "The new key", body = NewKey), errors::RotateKeys))]
async fn rotate_keys(
    State(state): State<AppState>,
    _: Admin,
    ctx: RequestContext,
) -> Result<Json<NewKey>, ApiError> {
    let kid = state.service.rotate_keys(&ctx).await?;
    Ok(Json(NewKey { kid }))
}
