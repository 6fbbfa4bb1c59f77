//! The `/auth/*` routes: register, login, refresh, logout, me, and the revocation feed.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::store::Revoked;
use secrecy::ExposeSecret;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::browser::{check_csrf, clear_refresh_cookie, refresh_cookie};
use super::error::ApiError;
use super::extract::{bearer_token, Authenticated, JsonBody, OptionalJsonBody, QueryParams};
use super::openapi::bodies::{
    LoginAnswer, Me, MeSession, MeToken, MeUser, Registered, RevocationFeed, RevocationFeedEntry,
};
use super::openapi::errors;
use super::tokens::{mfa_required_response, token_response, RefreshDelivery, TokenResponse};
use super::{AppState, WebSettings};
use crate::service::{AuthError, LoginOutcome, RequestContext};

/// The `/auth` routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(revocations))
}

/// An e-mail address and a password.
#[derive(Deserialize, ToSchema)]
struct Credentials {
    /// Trimmed and lower-cased before use.
    #[schema(format = Email, example = "ada@example.com")]
    email: String,
    /// At least 8 characters (after NFKC), at most 1024 bytes, not easy to guess.
    #[schema(example = "correct horse battery")]
    password: String,
}

/// Create an account with the role `user`.
#[utoipa::path(post, path = "/auth/register", tag = "auth",
    request_body = Credentials,
    responses((status = 201, description = "The account", body = Registered), errors::Register))]
async fn register(
    State(state): State<AppState>,
    ctx: RequestContext,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let user = state
        .service
        .register(&body.email, body.password, &ctx)
        .await?;
    let body = Registered {
        id: user.id.to_string(),
        email: user.email.to_string(),
        roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A password login.
#[derive(Deserialize, ToSchema)]
struct LoginRequest {
    /// The account's address.
    #[schema(format = Email, example = "ada@example.com")]
    email: String,
    /// The password.
    #[schema(example = "correct horse battery")]
    password: String,
    /// Where the refresh token goes: an `HttpOnly` cookie (browsers, the default) or
    /// the body (native clients).
    #[serde(default)]
    refresh_delivery: RefreshDelivery,
}

/// Log in with a password: a new session, or (with a second factor on) an
/// `mfa_token` for `POST /auth/login/mfa`.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens (the refresh token in the body or the cookie), or `mfa_required`",
            body = LoginAnswer,
            headers(("Set-Cookie" = String, description = "The refresh cookie (`refresh_delivery: cookie`)"))),
        errors::Login))]
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

/// A refresh token in the body (native clients); browsers send none and rely on the
/// cookie.
#[derive(Deserialize, ToSchema)]
struct RefreshRequest {
    /// The refresh token.
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

/// Exchange a refresh token for a new pair; the presented token is spent. A replay
/// within the grace window gets the same successor; a later one revokes the session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth",
    request_body(content = Option<RefreshRequest>,
        description = "The refresh token, or an empty body with the refresh cookie"),
    security((), ("refresh_cookie" = [], "csrf_header" = [])),
    responses(
        (status = 200, description = "A new pair, delivered the way the old one came", body = TokenResponse,
            headers(("Set-Cookie" = String, description = "The new refresh cookie, or its removal on 401"))),
        errors::Refresh))]
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

/// End the session of the refresh token (body or cookie) and/or of the access token;
/// every access token of an ended session is refused from then on. Idempotent.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    request_body(content = Option<RefreshRequest>,
        description = "The refresh token, or an empty body"),
    security((), ("bearer" = []), ("refresh_cookie" = [], "csrf_header" = [])),
    responses(
        (status = 204, description = "Logged out; the refresh cookie is cleared",
            headers(("Set-Cookie" = String, description = "Clears the refresh cookie"))),
        errors::Logout))]
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

/// The caller, from the access token alone (no database access).
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me), errors::Me))]
async fn me(Authenticated(claims): Authenticated) -> Json<Me> {
    Json(Me {
        user: MeUser {
            id: claims.sub,
            roles: claims.roles,
        },
        session: MeSession { id: claims.sid },
        token: MeToken {
            issued_at: claims.iat,
            expires_at: claims.exp,
            auth_time: claims.auth_time,
            amr: claims.amr,
        },
    })
}

/// The feed's position.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FeedQuery {
    /// Entries after this `seq` (the `next` of the previous page); 0 for all.
    #[serde(default)]
    after: i64,
}

/// The revocation log for resource services (`latchkey-verify`), behind a shared secret.
/// 404 when no `LATCHKEY_REVOCATION_FEED_SECRET` is set.
#[utoipa::path(get, path = "/auth/revocations", tag = "auth",
    params(FeedQuery),
    security(("feed_secret" = [])),
    responses((status = 200, description = "Revocations after `after`", body = RevocationFeed),
        errors::RevocationFeed))]
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
            RevocationFeedEntry {
                seq: e.seq,
                kind,
                value,
                expires_at: e.expires_at.unix_seconds(),
            }
        })
        .collect();
    Ok(Json(RevocationFeed { entries, next }).into_response())
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
