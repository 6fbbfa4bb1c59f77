//! [`AuthError`]: everything that can go wrong in a use case, in domain words. The HTTP
//! layer maps it to status and code in one place (`http/error.rs`).

use std::time::Duration;

use latchkey_core::keys::KeyError;
use latchkey_core::model::InvalidInput;
use latchkey_core::rotation::RefreshRejection;
use latchkey_core::store::StoreError;
use latchkey_verify::TokenError;

use crate::hashing::HashJobError;

/// Everything that can go wrong in a use case, in domain words.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// An input value was refused.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// Registration with an address in use.
    #[error("a user with this e-mail address exists already")]
    EmailTaken,
    /// Unknown user or wrong password (deliberately the same).
    #[error("invalid e-mail address or password")]
    InvalidCredentials,
    /// The right password for a disabled account.
    #[error("this account has been disabled")]
    AccountDisabled,
    /// A refresh was refused.
    #[error("refresh refused: {0:?}")]
    Refresh(RefreshRejection),
    /// A spent refresh token was replayed: the session is revoked.
    #[error("refresh token reuse detected; the session has been revoked")]
    RefreshTokenReused,
    /// An access token was refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// No such live session of the caller (also: someone else's, so ids cannot be probed).
    #[error("no such session")]
    SessionNotFound,
    /// No such user.
    #[error("no such user")]
    UserNotFound,
    /// No such signing key that can be revoked.
    #[error("no such signing key")]
    KeyNotFound,
    /// A password-reset token that is unknown, used or expired.
    #[error("the reset link is not valid or has expired")]
    ResetTokenInvalid,
    /// A verification token that is unknown, used or expired.
    #[error("the verification link is not valid or has expired")]
    VerificationTokenInvalid,
    /// The right password, but the address is not verified yet and must be.
    #[error("the e-mail address has not been verified")]
    EmailNotVerified,
    /// The change would leave the server without an enabled admin.
    #[error("this would leave no enabled admin")]
    LastAdmin,
    /// A wrong, malformed or replayed second-factor code.
    #[error("the code is not valid")]
    MfaCodeInvalid,
    /// An unknown, used or voided `mfa_token`.
    #[error("the mfa_token is not valid; log in again")]
    MfaTokenInvalid,
    /// An `mfa_token` past its lifetime.
    #[error("the mfa_token has expired; log in again")]
    MfaTokenExpired,
    /// Enrolment while a second factor is on.
    #[error("a second factor is on already")]
    MfaAlreadyEnabled,
    /// A change to a second factor that is not on (or not enrolled).
    #[error("no second factor is on")]
    MfaNotEnabled,
    /// A second factor is on and the request carries no code.
    #[error("a second-factor code is required")]
    MfaCodeMissing,
    /// A sensitive change or admin work with an access token whose login is too old
    /// (or from before `auth_time` was issued), or lacks the account's second factor.
    #[error("log in again to do this")]
    ReauthRequired(Reauthentication),
    /// Missing or wrong OAuth client credentials (introspection, revocation).
    #[error("client authentication failed")]
    InvalidClient,
    /// Too many requests, or too many failed logins.
    #[error("too many requests")]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// Password hashing is saturated.
    #[error("the server is busy")]
    Overloaded,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored secrets are sealed and do not open with the configured master secret
    /// (or none is configured): the server cannot start.
    #[error(transparent)]
    Sealing(latchkey_core::sealing::SealError),
    /// Key material or another internal invariant failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a new login must bring for a refused request (RFC 9470 step-up): it is at
/// most `max_age` old, and used the account's second factor if `second_factor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reauthentication {
    /// The oldest a login may be.
    pub max_age: Duration,
    /// The refusal is for a login without the account's second factor.
    pub second_factor: bool,
}

impl From<KeyError> for AuthError {
    fn from(e: KeyError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<latchkey_core::password::PasswordError> for AuthError {
    fn from(e: latchkey_core::password::PasswordError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<HashJobError> for AuthError {
    fn from(e: HashJobError) -> Self {
        match e {
            HashJobError::Overloaded => Self::Overloaded,
            HashJobError::Failed => Self::Internal("password hashing failed".into()),
        }
    }
}
