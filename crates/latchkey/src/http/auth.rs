//! The `/auth/*` routes: register, login, refresh, logout, me, and the revocation feed.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use latchkey_core::store::Revoked;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::browser::{check_csrf, clear_refresh_cookie, refresh_cookie};
use super::error::ApiError;
use super::extract::{bearer_token, Authenticated, JsonBody, OptionalJsonBody, QueryParams};
use super::tokens::{mfa_required_response, token_response, RefreshDelivery};
use super::{AppState, WebSettings};
use crate::service::{AuthError, LoginOutcome, RequestContext};

/// The `/auth` routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/auth/revocations", get(revocations))
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

async fn register(
    State(state): State<AppState>,
    ctx: RequestContext,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let user = state
        .service
        .register(&body.email, body.password, &ctx)
        .await?;
    let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
    let body = json!({ "id": user.id, "email": user.email, "roles": roles });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    password: String,
    #[serde(default)]
    refresh_delivery: RefreshDelivery,
}

async fn login(
    State(state): State<AppState>,
    ctx: RequestContext,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let result = state
        .service
        .login(
            &body.email,
            body.password,
            body.refresh_delivery.as_str(),
            &ctx,
        )
        .await;
    state.service.metrics().login(login_outcome(&result));
    Ok(match result? {
        LoginOutcome::Tokens(tokens) => token_response(&tokens, body.refresh_delivery, &state.web),
        LoginOutcome::MfaRequired(pending) => mfa_required_response(&pending),
    })
}

#[derive(Deserialize)]
struct RefreshRequest {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The refresh token of a refresh or logout request: from the body (native clients), or
/// from the cookie after the CSRF checks.
fn presented_refresh_token(
    body: Option<RefreshRequest>,
    headers: &HeaderMap,
    web: &WebSettings,
) -> Result<Option<(String, RefreshDelivery)>, ApiError> {
    if let Some(token) = body.and_then(|b| b.refresh_token) {
        return Ok(Some((token, RefreshDelivery::Body)));
    }
    match refresh_cookie(headers, web)? {
        Some(token) => {
            check_csrf(headers, web)?;
            Ok(Some((token.to_owned(), RefreshDelivery::Cookie)))
        }
        None => Ok(None),
    }
}

async fn refresh(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    OptionalJsonBody(body): OptionalJsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    let Some((token, delivery)) = presented_refresh_token(body, &headers, &state.web)? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "refresh_token_missing",
            "no refresh token was presented",
        ));
    };
    match state.service.refresh(&token, &ctx).await {
        Ok(tokens) => Ok(token_response(&tokens, delivery, &state.web)),
        Err(e) => {
            let error = ApiError::from(e);
            let mut response = error.into_response();
            // A cookie that can never work again is removed from the browser.
            if delivery == RefreshDelivery::Cookie && response.status() == StatusCode::UNAUTHORIZED
            {
                response
                    .headers_mut()
                    .insert(header::SET_COOKIE, clear_refresh_cookie(&state.web));
            }
            Ok(response)
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    OptionalJsonBody(body): OptionalJsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    let refresh = presented_refresh_token(body, &headers, &state.web)?;
    let access = bearer_token(&headers);
    state
        .service
        .logout(refresh.as_ref().map(|(t, _)| t.as_str()), access, &ctx)
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_refresh_cookie(&state.web));
    Ok(response)
}

async fn me(Authenticated(claims): Authenticated) -> Json<serde_json::Value> {
    Json(json!({
        "user": { "id": claims.sub, "roles": claims.roles },
        "session": { "id": claims.sid },
        "token": {
            "issued_at": claims.iat,
            "expires_at": claims.exp,
            "auth_time": claims.auth_time,
            "amr": claims.amr,
        },
    }))
}

#[derive(Deserialize)]
struct FeedQuery {
    #[serde(default)]
    after: i64,
}

/// The revocation log for resource services (`latchkey-verify`), behind a shared secret.
async fn revocations(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(query): QueryParams<FeedQuery>,
) -> Result<Response, ApiError> {
    let Some(secret) = state
        .web
        .revocation_feed_secret
        .as_ref()
        .map(|s| s.expose_secret())
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route",
        ));
    };
    let presented = bearer_token(&headers).unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), secret.as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "feed_secret_invalid",
            "a valid feed secret is required",
        ));
    }
    let entries = state.service.revocations_after(query.after).await?;
    let next = entries.last().map_or(query.after, |e| e.seq);
    let entries: Vec<_> = entries
        .into_iter()
        .map(|e| {
            let (kind, value) = match e.revoked {
                Revoked::AccessToken(jti) => ("access_token", jti),
                Revoked::Session(sid) => ("session", sid.to_string()),
                Revoked::Key(kid) => ("key", kid),
            };
            json!({ "seq": e.seq, "kind": kind, "value": value, "expires_at": e.expires_at.unix_seconds() })
        })
        .collect();
    Ok(Json(json!({ "entries": entries, "next": next })).into_response())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `outcome` label of the logins counter (a fixed set: no user data).
fn login_outcome(result: &Result<LoginOutcome, AuthError>) -> &'static str {
    match result {
        Ok(LoginOutcome::Tokens(_)) => "success",
        Ok(LoginOutcome::MfaRequired(_)) => "mfa_required",
        Err(AuthError::EmailNotVerified) => "email_not_verified",
        Err(AuthError::InvalidCredentials) => "invalid_credentials",
        Err(AuthError::RateLimited { .. }) => "rate_limited",
        Err(AuthError::AccountDisabled) => "disabled",
        Err(AuthError::InvalidInput(_)) => "invalid_input",
        Err(AuthError::Overloaded) => "overloaded",
        Err(_) => "error",
    }
}
