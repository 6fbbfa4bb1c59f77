//! Security events: what the audit log records.

use crate::ids::{SessionId, UserId};
use crate::time::Timestamp;

/// The kinds of security event, each with a stable name used in storage and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityEventKind {
    /// A new user registered.
    UserRegistered,
    /// A login succeeded and a session started.
    LoginSucceeded,
    /// A login was refused (unknown user or wrong password).
    LoginFailed,
    /// A spent refresh token was presented after its grace window: the family was revoked.
    RefreshReuseDetected,
    /// A session was revoked for a reason other than logout or reuse.
    SessionRevoked,
    /// A user logged out.
    Logout,
    /// A new signing key replaced the active one.
    SigningKeyRotated,
    /// A signing key was revoked (leaked): its tokens no longer verify.
    SigningKeyRevoked,
    /// A login from a device not seen for this user in the last 90 days.
    NewDevice,
    /// The user changed their password; their other sessions were revoked.
    PasswordChanged,
    /// An admin changed the user's roles.
    RolesChanged,
    /// An admin disabled the account; its sessions were revoked.
    UserDisabled,
    /// An admin enabled the account again.
    UserEnabled,
    /// An admin deleted the account.
    UserDeleted,
    /// An account's failed logins reached the ceiling over all networks: likely
    /// distributed guessing.
    LoginCeilingReached,
    /// The user started enrolling a TOTP authenticator (nothing active yet).
    MfaEnrolled,
    /// The user confirmed a TOTP authenticator: the second factor is on.
    MfaConfirmed,
    /// The user turned the second factor off.
    MfaDisabled,
    /// A recovery code was used (it is spent now).
    RecoveryCodeUsed,
    /// The user replaced their recovery codes.
    RecoveryCodesRegenerated,
    /// A wrong (or replayed) second-factor code was presented.
    MfaFailed,
    /// An admin reset the user's second factor.
    MfaReset,
    /// Someone registered with the address of this account (which was not changed; the
    /// owner was mailed when registration does not tell which addresses have accounts).
    RegistrationAttempted,
}

impl SecurityEventKind {
    /// Every kind, for round-trip checks.
    pub const ALL: [Self; 23] = [
        Self::UserRegistered,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::RefreshReuseDetected,
        Self::SessionRevoked,
        Self::Logout,
        Self::SigningKeyRotated,
        Self::SigningKeyRevoked,
        Self::NewDevice,
        Self::PasswordChanged,
        Self::RolesChanged,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::UserDeleted,
        Self::LoginCeilingReached,
        Self::MfaEnrolled,
        Self::MfaConfirmed,
        Self::MfaDisabled,
        Self::RecoveryCodeUsed,
        Self::RecoveryCodesRegenerated,
        Self::MfaFailed,
        Self::MfaReset,
        Self::RegistrationAttempted,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRegistered => "user_registered",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::RefreshReuseDetected => "refresh_reuse_detected",
            Self::SessionRevoked => "session_revoked",
            Self::Logout => "logout",
            Self::SigningKeyRotated => "signing_key_rotated",
            Self::SigningKeyRevoked => "signing_key_revoked",
            Self::NewDevice => "new_device",
            Self::PasswordChanged => "password_changed",
            Self::RolesChanged => "roles_changed",
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::UserDeleted => "user_deleted",
            Self::LoginCeilingReached => "login_ceiling_reached",
            Self::MfaEnrolled => "mfa_enrolled",
            Self::MfaConfirmed => "mfa_confirmed",
            Self::MfaDisabled => "mfa_disabled",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::MfaFailed => "mfa_failed",
            Self::MfaReset => "mfa_reset",
            Self::RegistrationAttempted => "registration_attempted",
        }
    }

    /// The kind with this stable name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub kind: SecurityEventKind,
    /// Whose account, when known.
    pub user_id: Option<UserId>,
    /// Which session, when there is one.
    pub session_id: Option<SessionId>,
    /// The client's IP address, when the event came from a request.
    pub client_ip: Option<String>,
    /// The client's `User-Agent`, truncated.
    pub user_agent: Option<String>,
    /// A short free-text detail (never a token or password).
    pub detail: Option<String>,
}
