//! The second factor's routes: enrol, confirm and turn off a TOTP authenticator, new
//! recovery codes, the login's second step, and the admin reset. Thin: each calls one
//! service method.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{Admin, Authenticated, JsonBody, PathParam};
use super::tokens::{token_response, RefreshDelivery};
use super::AppState;
use crate::service::{RequestContext, SecondFactor};

/// The second factor's routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login/mfa", post(login_mfa))
        .route("/auth/mfa/totp/enroll", post(enroll))
        .route("/auth/mfa/totp/confirm", post(confirm))
        .route("/auth/mfa/totp", delete(disable))
        .route("/auth/mfa/recovery-codes", post(recovery_codes))
        .route("/admin/users/{id}/mfa", delete(admin_reset))
}

/// A code in a request: `code` (a TOTP code, or a recovery code where one is accepted)
/// or `recovery_code`.
#[derive(Deserialize)]
struct CodeBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

impl CodeBody {
    /// The factor presented. A `code` that is not six digits is read as a recovery code
    /// when `recovery_allowed`.
    fn factor(self, recovery_allowed: bool) -> Result<SecondFactor, ApiError> {
        match (self.code, self.recovery_code) {
            (_, Some(code)) if recovery_allowed => Ok(SecondFactor::RecoveryCode(code)),
            (Some(code), _) => {
                let six_digits = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
                Ok(if six_digits || !recovery_allowed {
                    SecondFactor::Totp(code)
                } else {
                    SecondFactor::RecoveryCode(code)
                })
            }
            _ => Err(ApiError::bad_request(
                "mfa_code_missing",
                "send \"code\" (or \"recovery_code\")",
            )),
        }
    }
}

#[derive(Deserialize)]
struct LoginMfaRequest {
    mfa_token: String,
    #[serde(flatten)]
    code: CodeBody,
}

async fn login_mfa(
    State(state): State<AppState>,
    ctx: RequestContext,
    JsonBody(body): JsonBody<LoginMfaRequest>,
) -> Result<Response, ApiError> {
    let factor = body.code.factor(true)?;
    let (tokens, delivery) = state
        .service
        .login_second_step(&body.mfa_token, factor, &ctx)
        .await?;
    let delivery = RefreshDelivery::from_name(&delivery);
    Ok(token_response(&tokens, delivery, &state.web))
}

async fn enroll(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    ctx: RequestContext,
) -> Result<Response, ApiError> {
    let enrollment = state.service.enroll_totp(&claims, &ctx).await?;
    let body = json!({
        "secret": enrollment.secret,
        "otpauth_uri": enrollment.otpauth_uri,
        "qr_svg": enrollment.qr_svg,
    });
    Ok(Json(body).into_response())
}

async fn confirm(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    ctx: RequestContext,
    JsonBody(body): JsonBody<CodeBody>,
) -> Result<Response, ApiError> {
    let SecondFactor::Totp(code) = body.factor(false)? else {
        return Err(ApiError::bad_request(
            "mfa_code_missing",
            "send \"code\" from the authenticator app",
        ));
    };
    let codes = state.service.confirm_totp(&claims, &code, &ctx).await?;
    Ok(Json(json!({ "recovery_codes": codes })).into_response())
}

async fn recovery_codes(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    ctx: RequestContext,
    JsonBody(body): JsonBody<CodeBody>,
) -> Result<Response, ApiError> {
    let factor = body.factor(true)?;
    let codes = state
        .service
        .new_recovery_codes(&claims, factor, &ctx)
        .await?;
    Ok(Json(json!({ "recovery_codes": codes })).into_response())
}

async fn disable(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    ctx: RequestContext,
    JsonBody(body): JsonBody<CodeBody>,
) -> Result<Response, ApiError> {
    let factor = body.factor(true)?;
    state.service.disable_totp(&claims, factor, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn admin_reset(
    State(state): State<AppState>,
    _: Admin,
    ctx: RequestContext,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    state.service.reset_mfa(&id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
