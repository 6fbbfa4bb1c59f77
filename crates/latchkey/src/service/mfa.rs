//! The second factor's use cases: enrol and confirm a TOTP authenticator, new recovery
//! codes, turn it off (the user, or an admin), and the step-up check for sensitive
//! changes. The login's second step is in `mfa_login`.
//!
//! Rules come from [`latchkey_core::mfa`]; every code is spent in the store by a
//! compare-and-set, in the same transaction as the change it allows.

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::mfa::{normalize_recovery_code, recent_enough, recovery_code_hash};
use latchkey_core::model::{User, UserId};
use latchkey_core::store::{MfaCompletion, MfaProof, TotpConfirmation, TotpRecord};
use latchkey_core::time::Timestamp;
use latchkey_verify::AccessClaims;

use super::throttle::FailureKeys;
use super::totp;
use super::{AuthError, AuthService, Reauthentication, RequestContext};

/// A code the user presents.
pub enum SecondFactor {
    /// A 6-digit TOTP code.
    Totp(String),
    /// A recovery code.
    RecoveryCode(String),
}

/// A new TOTP secret for the user's authenticator app. Nothing is active until confirmed.
pub struct TotpEnrollment {
    /// The secret, base32 (for typing in).
    pub secret: String,
    /// `otpauth://totp/<issuer>:<email>?secret=...&issuer=...`
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrollment(<redacted>)")
    }
}

/// Whether the caller's second factor is on, as the account page shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MfaStatus {
    /// Whether signing in asks for a code (a confirmed TOTP authenticator).
    pub enabled: bool,
    /// When it was turned on (RFC 3339); `null` when off.
    pub enabled_at: Option<String>,
    /// Recovery codes not used yet; 0 when off.
    pub recovery_codes_left: u32,
}

impl AuthService {
    /// Whether the caller's second factor is on, and how many recovery codes are left.
    pub async fn mfa_status(&self, claims: &AccessClaims) -> Result<MfaStatus, AuthError> {
        let user = self.caller_user(claims).await?;
        let Some(record) = self.active_totp(user.id).await? else {
            return Ok(MfaStatus {
                enabled: false,
                enabled_at: None,
                recovery_codes_left: 0,
            });
        };
        Ok(MfaStatus {
            enabled: true,
            enabled_at: record.confirmed_at.map(|at| at.to_rfc3339()),
            recovery_codes_left: self.store.unused_recovery_codes(user.id).await?,
        })
    }

    /// Start enrolling a TOTP authenticator (replacing a pending, unconfirmed one).
    pub async fn enroll_totp(
        &self,
        claims: &AccessClaims,
        ctx: &RequestContext,
    ) -> Result<TotpEnrollment, AuthError> {
        let user = self.caller_user(claims).await?;
        if self.active_totp(user.id).await?.is_some() {
            return Err(AuthError::MfaAlreadyEnabled);
        }
        let secret = totp::new_secret()?;
        let sealed = totp::seal_secret(&self.mfa_sealer, user.id, &secret)?;
        let totp = totp::totp(secret, &self.policy.mfa_issuer, user.email.as_str())?;
        let otpauth_uri = totp.get_url();
        let enrollment = TotpEnrollment {
            secret: totp.get_secret_base32(),
            qr_svg: totp::qr_svg(&otpauth_uri)?,
            otpauth_uri,
        };
        let now = self.clock.now();
        let mut event = self.event(SecurityEventKind::MfaEnrolled, ctx, now);
        event.user_id = Some(user.id);
        if !self
            .store
            .put_pending_totp(user.id, &sealed, now, &event)
            .await?
        {
            return Err(AuthError::MfaAlreadyEnabled);
        }
        Ok(enrollment)
    }

    /// Confirm the pending authenticator with a code from it: the second factor is on,
    /// and the first recovery codes are returned (shown once).
    pub async fn confirm_totp(
        &self,
        claims: &AccessClaims,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Vec<String>, AuthError> {
        let user = self.caller_user(claims).await?;
        let record = match self.store.totp(user.id).await? {
            None => return Err(AuthError::MfaNotEnabled),
            Some(record) if record.confirmed_at.is_some() => {
                return Err(AuthError::MfaAlreadyEnabled)
            }
            Some(record) => record,
        };
        let now = self.clock.now();
        let Some(MfaProof::TotpStep(step)) =
            self.proof(&user, &record, SecondFactor::Totp(code.to_owned()), now)?
        else {
            return Err(self.wrong_code(&user, ctx, now, "confirm").await);
        };
        let (shown, stored) = totp::new_recovery_codes()?;
        let mut event = self.event(SecurityEventKind::MfaConfirmed, ctx, now);
        event.user_id = Some(user.id);
        let confirmation = TotpConfirmation {
            user_id: user.id,
            sealed_secret: record.sealed_secret,
            step,
            recovery_codes: stored,
            now,
            event,
        };
        if !self.store.confirm_totp(&confirmation).await? {
            // Replaced by a new enrolment (or confirmed) meanwhile.
            return Err(AuthError::MfaCodeInvalid);
        }
        Ok(shown)
    }

    /// Replace the recovery codes (after a step-up and a code); the old set is void.
    pub async fn new_recovery_codes(
        &self,
        claims: &AccessClaims,
        factor: SecondFactor,
        ctx: &RequestContext,
    ) -> Result<Vec<String>, AuthError> {
        self.require_recent_login(claims)?;
        let (user, proof, now) = self.prove(claims, factor, ctx).await?;
        let (shown, stored) = totp::new_recovery_codes()?;
        let mut event = self.event(SecurityEventKind::RecoveryCodesRegenerated, ctx, now);
        event.user_id = Some(user.id);
        let outcome = self
            .store
            .replace_recovery_codes(user.id, &proof, &stored, now, &event)
            .await?;
        self.settle(&user, &proof, outcome, ctx, now).await?;
        Ok(shown)
    }

    /// Turn the caller's second factor off (after a step-up and a code).
    pub async fn disable_totp(
        &self,
        claims: &AccessClaims,
        factor: SecondFactor,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        self.require_recent_login(claims)?;
        let (user, proof, now) = self.prove(claims, factor, ctx).await?;
        let mut event = self.event(SecurityEventKind::MfaDisabled, ctx, now);
        event.user_id = Some(user.id);
        let outcome = self
            .store
            .delete_totp(user.id, Some(&proof), now, &event)
            .await?;
        self.settle(&user, &proof, outcome, ctx, now).await?;
        self.notify_mfa_disabled(user.id, ctx.client_ip.as_deref())
            .await;
        Ok(())
    }

    /// An admin resets a user's second factor (pending or active).
    pub async fn reset_mfa(&self, user_id: &str, ctx: &RequestContext) -> Result<(), AuthError> {
        let id = user_id
            .parse::<UserId>()
            .map_err(|_| AuthError::UserNotFound)?;
        let user = self.store.user_by_id(id).await?;
        self.reset_mfa_of(user, ctx).await
    }

    /// As [`reset_mfa`](Self::reset_mfa), by e-mail address (for the CLI).
    pub async fn reset_mfa_by_email(
        &self,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let email = latchkey_core::model::Email::parse(email)?;
        let user = self.store.user_by_email(&email).await?;
        self.reset_mfa_of(user, ctx).await
    }

    async fn reset_mfa_of(
        &self,
        user: Option<User>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let user = user.ok_or(AuthError::UserNotFound)?;
        let now = self.clock.now();
        let mut event = self.event(SecurityEventKind::MfaReset, ctx, now);
        event.user_id = Some(user.id);
        match self.store.delete_totp(user.id, None, now, &event).await? {
            MfaCompletion::Completed => Ok(()),
            MfaCompletion::Gone | MfaCompletion::ProofRefused => Err(AuthError::MfaNotEnabled),
        }
    }

    /// Refuse a sensitive change unless the caller's login is within the
    /// re-authentication window (`auth_time`; tokens without it are too old).
    pub(super) fn require_recent_login(&self, claims: &AccessClaims) -> Result<(), AuthError> {
        let window = i64::try_from(self.policy.reauth_window.as_secs()).unwrap_or(i64::MAX);
        match claims.auth_time {
            Some(at) if recent_enough(at, self.clock.now(), window) => Ok(()),
            _ => Err(AuthError::ReauthRequired(Reauthentication {
                max_age: self.policy.reauth_window,
                second_factor: false,
            })),
        }
    }

    async fn caller_user(&self, claims: &AccessClaims) -> Result<User, AuthError> {
        let (id, _) = super::sessions::caller(claims)?;
        self.store
            .user_by_id(id)
            .await?
            .ok_or(AuthError::Token(latchkey_verify::TokenError::Revoked))
    }

    pub(super) async fn active_totp(&self, user: UserId) -> Result<Option<TotpRecord>, AuthError> {
        Ok(self
            .store
            .totp(user)
            .await?
            .filter(|r| r.confirmed_at.is_some()))
    }

    /// What `factor` proves for `user`, checked against `record`: `None` for a wrong or
    /// malformed code. Replay is the store's to refuse.
    pub(super) fn proof(
        &self,
        user: &User,
        record: &TotpRecord,
        factor: SecondFactor,
        now: Timestamp,
    ) -> Result<Option<MfaProof>, AuthError> {
        Ok(match factor {
            SecondFactor::Totp(code) => {
                let secret = totp::open_secret(&self.mfa_sealer, user.id, &record.sealed_secret)?;
                let totp = totp::totp(secret, &self.policy.mfa_issuer, user.email.as_str())?;
                totp::matching_step(&totp, code.trim(), now).map(MfaProof::TotpStep)
            }
            SecondFactor::RecoveryCode(code) => normalize_recovery_code(&code)
                .map(|normalized| MfaProof::RecoveryCode(recovery_code_hash(&normalized))),
        })
    }

    /// The caller and what `factor` proves against their active authenticator; a wrong
    /// code is counted and refused here.
    async fn prove(
        &self,
        claims: &AccessClaims,
        factor: SecondFactor,
        ctx: &RequestContext,
    ) -> Result<(User, MfaProof, Timestamp), AuthError> {
        let user = self.caller_user(claims).await?;
        let record = self
            .active_totp(user.id)
            .await?
            .ok_or(AuthError::MfaNotEnabled)?;
        let keys = FailureKeys::of(&user.email, ctx);
        self.check_login_limits(Some(&keys), ctx).await?;
        let now = self.clock.now();
        match self.proof(&user, &record, factor, now)? {
            Some(proof) => Ok((user, proof, now)),
            None => {
                self.count_failure(&keys, ctx, now).await;
                Err(self.wrong_code(&user, ctx, now, "change").await)
            }
        }
    }

    /// Answer the store's verdict on a change that spent `proof`.
    async fn settle(
        &self,
        user: &User,
        proof: &MfaProof,
        outcome: MfaCompletion,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        match outcome {
            MfaCompletion::Completed => {
                if matches!(proof, MfaProof::RecoveryCode(_)) {
                    self.recovery_code_used(user, ctx, now).await;
                }
                Ok(())
            }
            MfaCompletion::Gone => Err(AuthError::MfaNotEnabled),
            MfaCompletion::ProofRefused => {
                let keys = FailureKeys::of(&user.email, ctx);
                self.count_failure(&keys, ctx, now).await;
                Err(self.wrong_code(user, ctx, now, "change").await)
            }
        }
    }

    /// Record a wrong (or replayed) code and return the error to answer with.
    pub(super) async fn wrong_code(
        &self,
        user: &User,
        ctx: &RequestContext,
        now: Timestamp,
        during: &str,
    ) -> AuthError {
        let mut event = self.event(SecurityEventKind::MfaFailed, ctx, now);
        event.user_id = Some(user.id);
        event.detail = Some(format!("during={during}"));
        self.record(event).await;
        AuthError::MfaCodeInvalid
    }

    pub(super) async fn recovery_code_used(
        &self,
        user: &User,
        ctx: &RequestContext,
        now: Timestamp,
    ) {
        let left = self.store.unused_recovery_codes(user.id).await.ok();
        let mut event = self.event(SecurityEventKind::RecoveryCodeUsed, ctx, now);
        event.user_id = Some(user.id);
        event.detail = left.map(|n| format!("unused_left={n}"));
        self.record(event).await;
    }
}
