//! The second factor's routes: enrol, confirm and turn off a TOTP authenticator, new
//! recovery codes, the login's second step, and the admin reset. Thin: each calls one
//! service method.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{Admin, Authenticated, JsonBody, PathParam};
use super::openapi::bodies::{RecoveryCodes, TotpEnrollment};
use super::openapi::errors;
use super::tokens::{token_response, RefreshDelivery, TokenResponse};
use super::AppState;
use crate::service::{MfaStatus, RequestContext, SecondFactor};

/// The second factor's routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login_mfa))
        .routes(routes!(status))
        .routes(routes!(enroll))
        .routes(routes!(confirm))
        .routes(routes!(disable))
        .routes(routes!(recovery_codes))
        .routes(routes!(admin_reset))
}

/// A code in a request: `code` (a TOTP code, or a recovery code where one is accepted)
/// or `recovery_code`.
#[derive(Deserialize, ToSchema)]
struct CodeBody {
    /// Six digits from the authenticator app; where recovery codes are accepted, any
    /// other text is read as a recovery code.
    #[serde(default)]
    code: Option<String>,
    /// A recovery code (case, spaces and dashes do not matter).
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

/// The second step of a login.
#[derive(Deserialize, ToSchema)]
struct LoginMfaRequest {
    /// The `mfa_token` of the first step's answer.
    mfa_token: String,
    /// The code.
    #[serde(flatten)]
    code: CodeBody,
}

/// Complete a login answered `mfa_required` with a TOTP or recovery code: exactly a
/// login's answer, the refresh token delivered as the first step asked.
#[utoipa::path(post, path = "/auth/login/mfa", tag = "mfa",
    request_body = LoginMfaRequest,
    responses(
        (status = 200, description = "A new pair", body = TokenResponse,
            headers(("Set-Cookie" = String, description = "The refresh cookie (`refresh_delivery: cookie`)"))),
        errors::LoginMfa))]
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

/// Whether the caller's second factor is on, and how many recovery codes are left.
#[utoipa::path(get, path = "/auth/mfa", tag = "mfa",
    security(("bearer" = [])),
    responses((status = 200, description = "The second factor's state", body = MfaStatus),
        errors::MfaStatus))]
async fn status(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<MfaStatus>, ApiError> {
    Ok(Json(state.service.mfa_status(&claims).await?))
}

/// Start enrolling a TOTP authenticator; nothing is active until confirmed.
#[utoipa::path(post, path = "/auth/mfa/totp/enroll", tag = "mfa",
    security(("bearer" = [])),
    responses((status = 200, description = "The secret to enrol", body = TotpEnrollment),
        errors::EnrollTotp))]
async fn enroll(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    ctx: RequestContext,
) -> Result<Response, ApiError> {
    let enrollment = state.service.enroll_totp(&claims, &ctx).await?;
    let body = TotpEnrollment {
        secret: enrollment.secret,
        otpauth_uri: enrollment.otpauth_uri,
        qr_svg: enrollment.qr_svg,
    };
    Ok(Json(body).into_response())
}

/// Confirm the pending authenticator with a code from it: the second factor is on.
#[utoipa::path(post, path = "/auth/mfa/totp/confirm", tag = "mfa",
    request_body = CodeBody,
    security(("bearer" = [])),
    responses((status = 200, description = "The first recovery codes, shown once", body = RecoveryCodes),
        errors::ConfirmTotp))]
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
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    })
    .into_response())
}

/// Replace the recovery codes (step-up: a recent login, and a code); the old set is void.
#[utoipa::path(post, path = "/auth/mfa/recovery-codes", tag = "mfa",
    request_body = CodeBody,
    security(("bearer" = [])),
    responses((status = 200, description = "The new codes, shown once", body = RecoveryCodes),
        errors::MfaChange))]
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
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    })
    .into_response())
}

/// Turn the second factor off (step-up: a recent login, and a code).
#[utoipa::path(delete, path = "/auth/mfa/totp", tag = "mfa",
    request_body = CodeBody,
    security(("bearer" = [])),
    responses((status = 204, description = "Off"), errors::MfaChange))]
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

/// Reset a user's second factor (a lost phone and lost codes), pending or active.
#[utoipa::path(delete, path = "/admin/users/{id}/mfa", tag = "admin",
    params(("id" = String, Path, description = "The user id")),
    security(("admin" = [])),
    responses((status = 204, description = "Reset"), errors::ResetMfa))]
async fn admin_reset(
    State(state): State<AppState>,
    _: Admin,
    ctx: RequestContext,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    state.service.reset_mfa(&id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
