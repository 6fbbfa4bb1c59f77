//! The login's second step: the `mfa_token` handed out after a right password for a
//! user with a second factor, and its completion with a code (see
//! [`latchkey_core::mfa::challenge_state`] for when a token is still good).

use std::time::Duration;

use latchkey_core::mfa::{challenge_state, AuthMethods, ChallengeState, MAX_CODE_FAILURES};
use latchkey_core::model::User;
use latchkey_core::store::{MfaChallenge, MfaCompletion};
use latchkey_core::time::Timestamp;

use super::mfa::SecondFactor;
use super::throttle::FailureKeys;
use super::totp;
use super::{AuthError, AuthService, IssuedTokens, RequestContext};

/// How long the second step of a login may take.
pub(super) const MFA_TOKEN_TTL: Duration = Duration::from_secs(300);

/// The methods the second step accepts, as announced to clients.
pub const MFA_METHODS: [&str; 2] = ["totp", "recovery_code"];

/// How a login's first step ended.
#[derive(Debug)]
pub enum LoginOutcome {
    /// No second factor: the session started.
    Tokens(IssuedTokens),
    /// The user has a second factor: present a code with this token.
    MfaRequired(MfaPending),
}

/// The second step of a login, as handed to the client.
pub struct MfaPending {
    /// The single-use token that stands for the first step.
    pub mfa_token: String,
    /// Its lifetime.
    pub expires_in: Duration,
}

impl std::fmt::Debug for MfaPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaPending")
            .field("mfa_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl AuthService {
    /// The login's second step for `user` (password checked a moment ago), if they have
    /// a second factor on.
    pub(super) async fn second_step(
        &self,
        user: &User,
        refresh_delivery: &str,
        now: Timestamp,
    ) -> Result<Option<MfaPending>, AuthError> {
        if self.active_totp(user.id).await?.is_none() {
            return Ok(None);
        }
        let (mfa_token, token_hash) = totp::new_mfa_token()?;
        let challenge = MfaChallenge {
            token_hash,
            user_id: user.id,
            password_hash: user.password_hash.clone(),
            refresh_delivery: refresh_delivery.chars().take(16).collect(),
            created_at: now,
            expires_at: now.plus(MFA_TOKEN_TTL),
            failures: 0,
            used: false,
        };
        self.store.insert_mfa_challenge(&challenge).await?;
        Ok(Some(MfaPending {
            mfa_token,
            expires_in: MFA_TOKEN_TTL,
        }))
    }

    /// Complete a login with its `mfa_token` and a code: a session starts, with the
    /// `refresh_delivery` of the first step.
    pub async fn login_second_step(
        &self,
        mfa_token: &str,
        factor: SecondFactor,
        ctx: &RequestContext,
    ) -> Result<(IssuedTokens, String), AuthError> {
        if mfa_token.len() > 128 {
            return Err(AuthError::MfaTokenInvalid);
        }
        let token_hash = totp::mfa_token_hash(mfa_token);
        let challenge = self
            .store
            .mfa_challenge(&token_hash)
            .await?
            .ok_or(AuthError::MfaTokenInvalid)?;
        let now = self.clock.now();
        match challenge_state(
            challenge.expires_at,
            challenge.failures,
            challenge.used,
            now,
        ) {
            ChallengeState::Open => {}
            ChallengeState::Expired => return Err(AuthError::MfaTokenExpired),
            ChallengeState::Void => return Err(AuthError::MfaTokenInvalid),
        }
        let user = self
            .store
            .user_by_id(challenge.user_id)
            .await?
            .ok_or(AuthError::MfaTokenInvalid)?;
        let keys = FailureKeys::of(&user.email, ctx);
        self.check_login_limits(Some(&keys), ctx).await?;
        let record = self
            .active_totp(user.id)
            .await?
            .ok_or(AuthError::MfaTokenInvalid)?;
        let is_recovery = matches!(factor, SecondFactor::RecoveryCode(_));
        let proof = self.proof(&user, &record, factor, now)?;
        let outcome = match &proof {
            Some(proof) => {
                self.store
                    .complete_mfa_challenge(&token_hash, proof, now, MAX_CODE_FAILURES)
                    .await?
            }
            None => MfaCompletion::ProofRefused,
        };
        match outcome {
            MfaCompletion::Completed => {}
            MfaCompletion::Gone => return Err(AuthError::MfaTokenInvalid),
            MfaCompletion::ProofRefused => {
                self.store.count_mfa_challenge_failure(&token_hash).await?;
                self.count_failure(&keys, ctx, now).await;
                return Err(self.wrong_code(&user, ctx, now, "login").await);
            }
        }
        self.failures.clear(&keys.network).await;
        if is_recovery {
            self.recovery_code_used(&user, ctx, now).await;
        }
        // The session is made only if the password is still the one the first step saw.
        let user = User {
            password_hash: challenge.password_hash,
            ..user
        };
        let tokens = self
            .start_session(&user, AuthMethods::PasswordAndOtp, ctx, now)
            .await?;
        Ok((tokens, challenge.refresh_delivery))
    }
}
