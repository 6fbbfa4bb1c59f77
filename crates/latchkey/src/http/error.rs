//! The one place where errors become HTTP responses: `{"error": "...", "code": "..."}`
//! with a stable code. Internal failures are logged once here and never echoed.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::rotation::RefreshRejection;
use latchkey_core::store::StoreError;
use latchkey_verify::TokenError;
use serde::Serialize;

use crate::service::{AuthError, Reauthentication};

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
    bearer_challenge: Option<Cow<'static, str>>,
}

/// The stable code of an error response, in its extensions (for the error metrics).
#[derive(Debug, Clone, Copy)]
pub(super) struct ErrorCode(pub(super) &'static str);

/// Every error answer. Each operation's error responses narrow `code` to the codes it
/// can answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(super) struct ErrorBody<'a> {
    /// What went wrong, in words for people; it may change.
    error: &'a str,
    /// The stable machine-readable code; it does not change.
    code: &'a str,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            bearer_challenge: None,
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// An OAuth error (RFC 6749 section 5.2): `error` is the code itself, as OAuth
    /// clients read it, with an optional `WWW-Authenticate` challenge.
    pub(super) fn oauth(
        status: StatusCode,
        code: &'static str,
        challenge: Option<&'static str>,
    ) -> Self {
        Self {
            bearer_challenge: challenge.map(Cow::Borrowed),
            ..Self::new(status, code, code)
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

fn unauthorized(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

/// 401 `reauth_required` with the RFC 9470 challenge: how recent the new login must be
/// (`max_age`, seconds), and why this one is not enough.
fn reauth_required(needed: Reauthentication) -> ApiError {
    let (message, description) = if needed.second_factor {
        (
            "this needs a login with the account's second factor; log in again and retry",
            "a login with the second factor is required",
        )
    } else {
        (
            "this needs a recent login; log in again and retry",
            "a more recent login is required",
        )
    };
    let challenge = format!(
        "Bearer error=\"insufficient_user_authentication\", error_description=\"{description}\", max_age=\"{}\"",
        needed.max_age.as_secs()
    );
    ApiError {
        bearer_challenge: Some(Cow::Owned(challenge)),
        ..unauthorized("reauth_required", message)
    }
}

impl From<TokenError> for ApiError {
    /// The stable code with a generic message: which check failed (signature, issuer,
    /// audience...) goes to the debug log, not to the caller.
    fn from(e: TokenError) -> Self {
        tracing::debug!(code = e.code(), reason = %e, "access token refused");
        let message = match e {
            TokenError::Missing => "an access token is required",
            TokenError::Expired => "the access token has expired",
            TokenError::Revoked => "the access token has been revoked",
            _ => "the access token is not valid",
        };
        let mut error = unauthorized(e.code(), message);
        error.bearer_challenge = Some(Cow::Borrowed(match e {
            TokenError::Missing => "Bearer",
            _ => "Bearer error=\"invalid_token\"",
        }));
        error
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidInput(input) => Self::bad_request(input.code(), input.to_string()),
            AuthError::EmailTaken | AuthError::Store(StoreError::EmailTaken) => {
                Self::new(StatusCode::CONFLICT, "email_taken", e.to_string())
            }
            AuthError::InvalidCredentials => {
                unauthorized("invalid_credentials", "invalid e-mail address or password")
            }
            AuthError::AccountDisabled => Self::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "this account has been disabled",
            ),
            AuthError::SessionNotFound => Self::new(
                StatusCode::NOT_FOUND,
                "session_not_found",
                "no such session",
            ),
            AuthError::KeyNotFound => Self::new(
                StatusCode::NOT_FOUND,
                "key_not_found",
                "no such signing key",
            ),
            AuthError::UserNotFound => {
                Self::new(StatusCode::NOT_FOUND, "user_not_found", "no such user")
            }
            AuthError::ResetTokenInvalid => Self::bad_request("reset_token_invalid", e.to_string()),
            AuthError::VerificationTokenInvalid => {
                Self::bad_request("verification_token_invalid", e.to_string())
            }
            AuthError::EmailNotVerified => {
                Self::new(StatusCode::FORBIDDEN, "email_not_verified", e.to_string())
            }
            AuthError::LastAdmin => Self::new(
                StatusCode::CONFLICT,
                "last_admin",
                "this would leave no enabled admin",
            ),
            AuthError::Refresh(RefreshRejection::Invalid) => {
                unauthorized("refresh_token_invalid", "the refresh token is not valid")
            }
            AuthError::Refresh(RefreshRejection::Expired) => unauthorized(
                "refresh_token_expired",
                "the refresh token has expired; log in again",
            ),
            AuthError::Refresh(RefreshRejection::SessionRevoked) => unauthorized(
                "session_revoked",
                "the session has been revoked; log in again",
            ),
            AuthError::RefreshTokenReused => unauthorized(
                "refresh_token_reused",
                "this refresh token was used before; the session has been revoked",
            ),
            AuthError::Token(token) => token.into(),
            AuthError::MfaCodeInvalid => unauthorized("mfa_code_invalid", "the code is not valid"),
            AuthError::MfaTokenInvalid => unauthorized(
                "mfa_token_invalid",
                "the mfa_token is not valid; log in again",
            ),
            AuthError::MfaTokenExpired => unauthorized(
                "mfa_token_expired",
                "the mfa_token has expired; log in again",
            ),
            AuthError::MfaAlreadyEnabled => Self::new(
                StatusCode::CONFLICT,
                "mfa_already_enabled",
                "a second factor is on already",
            ),
            AuthError::MfaCodeMissing => Self::bad_request(
                "mfa_code_missing",
                "this account has a second factor: send its code as \"mfa_code\"",
            ),
            AuthError::MfaNotEnabled => {
                Self::bad_request("mfa_not_enabled", "no second factor is on")
            }
            AuthError::ReauthRequired(needed) => reauth_required(needed),
            AuthError::InvalidClient => Self::oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                Some("Basic realm=\"latchkey\""),
            ),
            AuthError::RateLimited { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests; retry later",
                )
            },
            AuthError::Overloaded | AuthError::Store(StoreError::Busy) => Self {
                retry_after: Some(Duration::from_secs(1)),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the server is busy; retry shortly",
                )
            },
            AuthError::Store(StoreError::Unavailable(detail)) => {
                tracing::error!(%detail, "store unavailable");
                Self {
                    retry_after: Some(Duration::from_secs(1)),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store_unavailable",
                        "storage is unavailable; retry shortly",
                    )
                }
            }
            AuthError::Sealing(e) => {
                tracing::error!(error = %e, "signing keys do not open");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "internal error",
                )
            }
            AuthError::Store(StoreError::Internal(detail)) | AuthError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: &self.message,
            code: self.code,
        };
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(self.code));
        let headers = response.headers_mut();
        if let Some(retry_after) = self.retry_after {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        let challenge = self.bearer_challenge.and_then(|c| match c {
            Cow::Borrowed(text) => Some(HeaderValue::from_static(text)),
            Cow::Owned(text) => HeaderValue::try_from(text).ok(),
        });
        if let Some(challenge) = challenge {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_store_queue_is_503_overloaded_with_retry_after() {
        let response = ApiError::from(AuthError::Store(StoreError::Busy)).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(1u64))
        );
        let error = ApiError::from(AuthError::Store(StoreError::Busy));
        assert_eq!(error.code(), "overloaded");
    }

    #[test]
    fn reauthentication_is_asked_for_with_the_rfc_9470_challenge() {
        for (second_factor, description) in [
            (false, "a more recent login is required"),
            (true, "a login with the second factor is required"),
        ] {
            let needed = Reauthentication {
                max_age: Duration::from_secs(900),
                second_factor,
            };
            let response = ApiError::from(AuthError::ReauthRequired(needed)).into_response();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            let challenge = response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap();
            assert_eq!(
                challenge,
                format!(
                    "Bearer error=\"insufficient_user_authentication\", \
                     error_description=\"{description}\", max_age=\"900\""
                )
            );
        }
    }
}
