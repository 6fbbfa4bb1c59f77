//! The e-mail routes: password reset (request and confirm), address verification (and
//! re-sending it), and change of address. Thin: each calls one service method.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{Authenticated, JsonBody};
use super::openapi::bodies::Accepted;
use super::openapi::errors;
use super::AppState;
use crate::service::RequestContext;

/// The e-mail routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_reset))
        .routes(routes!(confirm_reset))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(change_email))
}

/// The address to send a reset link to.
#[derive(Deserialize, ToSchema)]
struct ResetRequest {
    /// The account's address.
    #[schema(format = Email, example = "ada@example.com")]
    email: String,
}

/// Mail a password-reset link. Always the same answer, whether or not the address has
/// an account.
#[utoipa::path(post, path = "/auth/password-reset", tag = "email",
    request_body = ResetRequest,
    responses((status = 202, description = "Taken (known address or not)", body = Accepted),
        errors::RequestReset))]
async fn request_reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    JsonBody(body): JsonBody<ResetRequest>,
) -> Result<Response, ApiError> {
    state
        .service
        .request_password_reset(&body.email, &ctx)
        .await?;
    let body = Accepted {
        status: "accepted",
        message: "if the address has an account, a reset link is on its way",
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// A reset link's token and the new password.
#[derive(Deserialize, ToSchema)]
struct ResetConfirm {
    /// The `token` of the link.
    token: String,
    /// The new password, under the registration rules.
    new_password: String,
    /// A TOTP or recovery code, for accounts with a second factor.
    mfa_code: Option<String>,
}

/// Set a new password from a reset link: every session of the user ends, every other
/// reset link is void, the address counts as verified.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "email",
    request_body = ResetConfirm,
    responses((status = 204, description = "The password is set"), errors::ConfirmReset))]
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

/// A verification link's token.
#[derive(Deserialize, ToSchema)]
struct TokenBody {
    /// The `token` of the link.
    token: String,
}

/// Verify an address (registration, or a change of address) from its link.
#[utoipa::path(post, path = "/auth/verify-email", tag = "email",
    request_body = TokenBody,
    responses((status = 204, description = "Verified"), errors::VerifyEmail))]
async fn verify_email(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<Response, ApiError> {
    state.service.verify_email(&body.token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Send the verification link again (nothing is sent if the address is verified).
#[utoipa::path(post, path = "/auth/verify-email/resend", tag = "email",
    security(("bearer" = [])),
    responses((status = 202, description = "Taken"), errors::ResendVerification))]
async fn resend_verification(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Response, ApiError> {
    state.service.resend_verification(&claims).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A change of address.
#[derive(Deserialize, ToSchema)]
struct EmailChange {
    /// The new address; a link goes there, a notice to the old one.
    #[schema(format = Email, example = "ada@new.example")]
    new_email: String,
    /// The password now.
    current_password: String,
}

/// Change the address: the account moves when the link sent to the new address is
/// followed. An address in use gets no mail, and the same answer.
#[utoipa::path(post, path = "/auth/email", tag = "email",
    request_body = EmailChange,
    security(("bearer" = [])),
    responses((status = 202, description = "Taken"), errors::ChangeEmail))]
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
