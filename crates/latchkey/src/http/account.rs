//! The account routes of a signed-in user: their sessions, signing out everywhere,
//! changing the password, their security events. Thin: each calls one service method.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{Authenticated, JsonBody, PathParam, QueryParams};
use super::AppState;
use crate::service::RequestContext;

/// The account routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/sessions", get(list_sessions))
        .route("/auth/sessions/{id}", delete(revoke_session))
        .route("/auth/logout-all", post(logout_all))
        .route("/auth/password", post(change_password))
        .route("/auth/events", get(events))
}

async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let sessions = state.service.my_sessions(&claims).await?;
    Ok(Json(json!({ "sessions": sessions })))
}

async fn revoke_session(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    ctx: RequestContext,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    state.service.revoke_my_session(&claims, &id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct LogoutAll {
    keep_current: bool,
}

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

#[derive(Deserialize)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

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

#[derive(Deserialize)]
struct EventQuery {
    limit: Option<u32>,
}

async fn events(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    QueryParams(query): QueryParams<EventQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let events = state.service.my_events(&claims, limit).await?;
    Ok(Json(json!({ "events": events })))
}
