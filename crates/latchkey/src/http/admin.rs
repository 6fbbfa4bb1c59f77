//! The `/admin/*` routes, for callers with the `admin` role: users, their sessions, the
//! audit log, key rotation. Thin: each calls one service method.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{extract::State, Json, Router};
use latchkey_core::accounts::AccessChange;
use latchkey_core::model::Role;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{Admin, JsonBody, PathParam, QueryParams};
use super::AppState;
use crate::service::{AuthError, RequestContext};

/// The `/admin` routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list_users))
        .route(
            "/admin/users/{id}",
            get(show_user).patch(change_user).delete(delete_user),
        )
        .route(
            "/admin/users/{id}/sessions",
            get(user_sessions).delete(revoke_user_sessions),
        )
        .route("/admin/security-events", get(security_events))
        .route("/admin/keys/rotate", post(rotate_keys))
}

#[derive(Deserialize)]
struct Page {
    after: Option<String>,
    limit: Option<u32>,
}

async fn list_users(
    State(state): State<AppState>,
    _: Admin,
    QueryParams(page): QueryParams<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    let page = state
        .service
        .list_users(page.after.as_deref(), limit)
        .await?;
    Ok(Json(json!(page)))
}

async fn show_user(
    State(state): State<AppState>,
    _: Admin,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let user = state.service.user(&id).await?;
    let sessions = state.service.sessions_of_user(&id).await?;
    Ok(Json(json!({ "user": user, "sessions": sessions })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    roles: Option<Vec<String>>,
    disabled: Option<bool>,
}

async fn change_user(
    State(state): State<AppState>,
    _: Admin,
    ctx: RequestContext,
    PathParam(id): PathParam,
    JsonBody(body): JsonBody<UserChange>,
) -> Result<Json<Value>, ApiError> {
    let roles = body
        .roles
        .map(|roles| roles.iter().map(|r| Role::parse(r)).collect::<Result<Vec<_>, _>>())
        .transpose()
        .map_err(AuthError::from)?;
    let change = AccessChange {
        roles,
        disabled: body.disabled,
    };
    let user = state.service.change_user(&id, change, &ctx).await?;
    Ok(Json(json!({ "user": user })))
}

async fn delete_user(
    State(state): State<AppState>,
    _: Admin,
    ctx: RequestContext,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    state.service.delete_user(&id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn user_sessions(
    State(state): State<AppState>,
    _: Admin,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let sessions = state.service.sessions_of_user(&id).await?;
    Ok(Json(json!({ "sessions": sessions })))
}

async fn revoke_user_sessions(
    State(state): State<AppState>,
    _: Admin,
    ctx: RequestContext,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let revoked = state
        .service
        .revoke_sessions_of_user(&id, None, &ctx)
        .await?;
    Ok(Json(json!({ "revoked": revoked })))
}

#[derive(Deserialize)]
struct EventQuery {
    user_id: Option<String>,
    limit: Option<u32>,
}

async fn security_events(
    State(state): State<AppState>,
    _: Admin,
    QueryParams(query): QueryParams<EventQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let events = state
        .service
        .security_events(query.user_id.as_deref(), limit)
        .await?;
    Ok(Json(json!({ "events": events })))
}

async fn rotate_keys(
    State(state): State<AppState>,
    _: Admin,
    ctx: RequestContext,
) -> Result<Json<Value>, ApiError> {
    let kid = state.service.rotate_keys(&ctx).await?;
    Ok(Json(json!({ "kid": kid })))
}
