//! The e-mail routes: password reset (request and confirm), address verification (and
//! re-sending it), and change of address. Thin: each calls one service method.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{Authenticated, JsonBody};
use super::AppState;
use crate::service::RequestContext;

/// The e-mail routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/password-reset", post(request_reset))
        .route("/auth/password-reset/confirm", post(confirm_reset))
        .route("/auth/verify-email", post(verify_email))
        .route("/auth/verify-email/resend", post(resend_verification))
        .route("/auth/email", post(change_email))
}

#[derive(Deserialize)]
struct ResetRequest {
    email: String,
}

/// Always the same answer, whether or not the address has an account.
async fn request_reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    JsonBody(body): JsonBody<ResetRequest>,
) -> Result<Response, ApiError> {
    state
        .service
        .request_password_reset(&body.email, &ctx)
        .await?;
    let body = json!({ "status": "accepted", "message": "if the address has an account, a reset link is on its way" });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Deserialize)]
struct ResetConfirm {
    token: String,
    new_password: String,
    /// A TOTP or recovery code, for accounts with a second factor.
    mfa_code: Option<String>,
}

async fn confirm_reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    JsonBody(body): JsonBody<ResetConfirm>,
) -> Result<Response, ApiError> {
    state
        .service
        .confirm_password_reset(
            &body.token,
            body.new_password,
            body.mfa_code.as_deref(),
            &ctx,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

async fn verify_email(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<Response, ApiError> {
    state.service.verify_email(&body.token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn resend_verification(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Response, ApiError> {
    state.service.resend_verification(&claims).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize)]
struct EmailChange {
    new_email: String,
    current_password: String,
}

async fn change_email(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    JsonBody(body): JsonBody<EmailChange>,
) -> Result<Response, ApiError> {
    state
        .service
        .change_email(&claims, &body.new_email, body.current_password)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
