//! The `/admin/*` routes, for callers with the `admin` role.

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use latchkey_core::model::{Email, UserId};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::Admin;
use super::AppState;
use crate::service::{AuthError, RequestContext};

/// The `/admin` routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list_users))
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
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let after = page
        .after
        .as_deref()
        .map(Email::parse)
        .transpose()
        .map_err(AuthError::from)?;
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    let users = state
        .service
        .store()
        .list_users(after.as_ref(), limit)
        .await
        .map_err(AuthError::from)?;
    let next = (users.len() == limit as usize)
        .then(|| users.last().map(|u| u.email.to_string()))
        .flatten();
    let users: Vec<Value> = users
        .iter()
        .map(|u| {
            let roles: Vec<&str> = u.roles.iter().map(|r| r.as_str()).collect();
            json!({ "id": u.id, "email": u.email, "roles": roles, "created_at": u.created_at.unix_seconds() })
        })
        .collect();
    Ok(Json(json!({ "users": users, "next": next })))
}

#[derive(Deserialize)]
struct EventQuery {
    user_id: Option<String>,
    limit: Option<u32>,
}

async fn security_events(
    State(state): State<AppState>,
    _: Admin,
    Query(query): Query<EventQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = match query.user_id.as_deref() {
        Some(id) => Some(
            id.parse::<UserId>()
                .map_err(|_| ApiError::bad_request("user_id_invalid", "user_id must be a UUID"))?,
        ),
        None => None,
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let events = state
        .service
        .store()
        .recent_events(user, limit)
        .await
        .map_err(AuthError::from)?;
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "at": e.at.unix_millis(),
                "kind": e.kind.as_str(),
                "user_id": e.user_id,
                "session_id": e.session_id,
                "client_ip": e.client_ip,
                "user_agent": e.user_agent,
                "detail": e.detail,
            })
        })
        .collect();
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
