//! E-mail use cases: password reset, address verification, change of address, and the
//! security notices. Mail is never sent here: it is written to the store's outbox (with
//! the change it belongs to) and the worker in [`crate::mail`] sends it.

use std::sync::Arc;
use std::time::Duration;

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::email::{
    token_usable, EmailKeys, EmailToken, EmailTokenPurpose, StoredEmailToken,
};
use latchkey_core::model::{Email, Password, User, UserId};
use latchkey_core::sealing::KeySealer;
use latchkey_core::store::{
    EmailTokenEffect, EmailTokenOutcome, EmailTokenUse, NewEmailToken, OutboxMail,
    PasswordResetRequest,
};
use latchkey_core::time::Timestamp;
use latchkey_verify::AccessClaims;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::{AuthError, AuthService, Notices, RequestContext};
use crate::config::{Config, RateSpec};
use crate::mail::Payload;

/// The e-mail rules, from the config.
#[derive(Debug, Clone)]
pub struct EmailPolicy {
    /// The base of links in mails, without a trailing slash.
    pub link_base: String,
    /// Lifetime of a reset link.
    pub reset_ttl: Duration,
    /// Lifetime of a verification or change-of-address link.
    pub verify_ttl: Duration,
    /// Refuse logins until the address is verified.
    pub require_verified: bool,
    /// Reset requests per address.
    pub reset_per_address: RateSpec,
    /// Reset requests per client network.
    pub reset_per_network: RateSpec,
    /// Verification re-sends and changes of address per account.
    pub verify_resend: RateSpec,
    /// The notices switched on.
    pub notices: Notices,
}

impl EmailPolicy {
    /// The policy the config describes.
    pub fn from_config(config: &Config) -> Self {
        let mail = &config.mail;
        Self {
            link_base: mail.link_base().to_owned(),
            reset_ttl: mail.reset_ttl.0,
            verify_ttl: mail.verify_ttl.0,
            require_verified: mail.require_verified_email,
            reset_per_address: mail.rate_reset_per_address,
            reset_per_network: mail.rate_reset_per_network,
            verify_resend: mail.rate_verify_resend,
            notices: Notices {
                password_changed: mail.notify_password_changed,
                new_device: mail.notify_new_device,
                reuse: mail.notify_reuse,
                mfa_disabled: mail.notify_mfa_disabled,
            },
        }
    }
}

/// What the e-mail use cases hold: the token and sealing keys and the worker's bell.
#[derive(Debug)]
pub(crate) struct EmailKit {
    keys: Arc<EmailKeys>,
    wake: Arc<Notify>,
}

impl EmailKit {
    /// Token keys derived from the database's secret; payloads sealed under the master
    /// secret's `outbox` sealer when one is configured.
    pub(super) fn new(
        database_secret: &[u8],
        outbox: Option<Arc<KeySealer>>,
    ) -> Result<Self, AuthError> {
        let keys = EmailKeys::new(database_secret, outbox)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok(Self {
            keys: Arc::new(keys),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Tell the worker there is new mail in the outbox.
    pub(super) fn mail_queued(&self) {
        self.wake.notify_one();
    }
}

impl AuthService {
    /// The keys that open outbox payloads, for the mail worker.
    pub fn email_keys(&self) -> Arc<EmailKeys> {
        self.email.keys.clone()
    }

    /// The signal the mail worker waits on.
    pub fn mail_wake(&self) -> Arc<Notify> {
        self.email.wake.clone()
    }

    /// A sealed outbox entry for mail `kind` to `to`.
    pub(super) fn outbox_mail(
        &self,
        kind: &str,
        to: &Email,
        mut vars: Value,
        now: Timestamp,
    ) -> OutboxMail {
        if let Value::Object(map) = &mut vars {
            map.entry("email").or_insert_with(|| json!(to.as_str()));
            map.insert("public_url".into(), json!(self.policy.email.link_base));
        }
        let payload = Payload {
            to: to.as_str().to_owned(),
            vars,
        };
        // Serialising strings and JSON values cannot fail.
        let plain = serde_json::to_vec(&payload).unwrap_or_default();
        OutboxMail {
            kind: kind.to_owned(),
            payload: self.email.keys.seal(&plain),
            created_at: now,
        }
    }

    fn link(&self, page: &str, token: &EmailToken) -> String {
        format!(
            "{}/{page}?token={}",
            self.policy.email.link_base,
            token.expose()
        )
    }

    fn new_email_token(
        &self,
        user_id: UserId,
        purpose: EmailTokenPurpose,
        email: &Email,
        now: Timestamp,
    ) -> (EmailToken, StoredEmailToken) {
        let token = self.email.keys.new_token();
        let ttl = match purpose {
            EmailTokenPurpose::PasswordReset => self.policy.email.reset_ttl,
            EmailTokenPurpose::VerifyEmail | EmailTokenPurpose::ChangeEmail => {
                self.policy.email.verify_ttl
            }
        };
        let stored = StoredEmailToken {
            hash: self.email.keys.hash(&token, purpose),
            user_id,
            purpose,
            email: email.clone(),
            created_at: now,
            expires_at: now.plus(ttl),
            used_at: None,
        };
        (token, stored)
    }

    /// Mails given up after their retries, newest first: `(id, kind, last error)`.
    pub async fn failed_mail(&self, limit: u32) -> Result<Vec<(i64, String, String)>, AuthError> {
        Ok(self.store.failed_mail(limit).await?)
    }

    /// Whether `user`'s current address is verified.
    pub(super) async fn email_verified(&self, user: UserId) -> Result<bool, AuthError> {
        Ok(self.store.email_verified_at(user).await?.is_some())
    }

    /// A verification link for `user` and the mail that carries it.
    pub(super) fn verification(&self, user: &User, now: Timestamp) -> NewEmailToken {
        let (token, stored) =
            self.new_email_token(user.id, EmailTokenPurpose::VerifyEmail, &user.email, now);
        let vars = json!({ "link": self.link("verify", &token) });
        let mail = self.outbox_mail("verify_email", &user.email, vars, now);
        NewEmailToken {
            token: stored,
            mail,
        }
    }

    /// Send `user` a verification link (on request).
    pub(super) async fn send_verification(&self, user: &User) -> Result<(), AuthError> {
        let new = self.verification(user, self.clock.now());
        self.store.issue_email_token(&new).await?;
        self.email.mail_queued();
        Ok(())
    }

    /// Ask for a password-reset link. The same answer, after the same store work,
    /// whether or not the address has an account; limited per address and per network.
    pub async fn request_password_reset(
        &self,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let limits = &self.policy.email;
        self.limit(
            format!("reset:net:{}", ctx.network()),
            limits.reset_per_network,
        )
        .await?;
        let email = Email::parse(email)?;
        self.limit(format!("reset:address:{email}"), limits.reset_per_address)
            .await?;
        let now = self.clock.now();
        // The user id is filled in by the store if the address has an account.
        let (token, stored) = self.new_email_token(
            UserId::generate(),
            EmailTokenPurpose::PasswordReset,
            &email,
            now,
        );
        let minutes = self.policy.email.reset_ttl.as_secs().div_ceil(60);
        let vars = json!({ "link": self.link("reset", &token), "ttl_minutes": minutes });
        let request = PasswordResetRequest {
            mail: self.outbox_mail("password_reset", &email, vars, now),
            email,
            token: stored,
        };
        if self.store.request_password_reset(&request).await?.is_some() {
            self.email.mail_queued();
        }
        Ok(())
    }

    /// The second factor a reset must show when the account has one: a TOTP code or a
    /// recovery code, spent once (else an account falls to its mailbox alone). Wrong
    /// codes count toward the account's failure back-off, like wrong passwords.
    async fn reset_second_factor(
        &self,
        user: UserId,
        code: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let Some(record) = self.active_totp(user).await? else {
            return Ok(());
        };
        let code = code.ok_or(AuthError::MfaCodeMissing)?;
        let user = self
            .store
            .user_by_id(user)
            .await?
            .ok_or(AuthError::ResetTokenInvalid)?;
        let keys = super::throttle::FailureKeys::of(&user.email, ctx);
        self.check_login_limits(Some(&keys), ctx).await?;
        let now = self.clock.now();
        let six_digits = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
        let factor = if six_digits {
            super::SecondFactor::Totp(code.to_owned())
        } else {
            super::SecondFactor::RecoveryCode(code.to_owned())
        };
        let Some(proof) = self.proof(&user, &record, factor, now)? else {
            self.count_failure(&keys, ctx, now).await;
            return Err(self.wrong_code(&user, ctx, now, "reset").await);
        };
        // A recovery code used up is worth an event; a TOTP code is not.
        let event = matches!(proof, latchkey_core::store::MfaProof::RecoveryCode(_)).then(|| {
            let mut event = self.event(SecurityEventKind::RecoveryCodeUsed, ctx, now);
            event.user_id = Some(user.id);
            event.detail = Some("password reset".to_owned());
            event
        });
        match self
            .store
            .spend_mfa_proof(user.id, &proof, now, event.as_ref())
            .await?
        {
            latchkey_core::store::MfaCompletion::ProofRefused => {
                self.count_failure(&keys, ctx, now).await;
                Err(self.wrong_code(&user, ctx, now, "reset").await)
            }
            _ => Ok(()),
        }
    }

    /// Set a new password with a reset token: every session of the user is revoked and
    /// every other reset token voided, in one transaction with the change.
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: String,
        mfa_code: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let _lane = self.hashing.lane();
        let purpose = EmailTokenPurpose::PasswordReset;
        let token = EmailToken::parse(token).ok_or(AuthError::ResetTokenInvalid)?;
        let hash = self.email.keys.hash(&token, purpose);
        let stored = self.store.email_token(&hash).await?;
        let Some(stored) = stored.filter(|t| token_usable(Some(t), purpose, self.clock.now()))
        else {
            return Err(AuthError::ResetTokenInvalid);
        };
        self.reset_second_factor(stored.user_id, mfa_code, ctx)
            .await?;
        let new_password = Password::parse(new_password)?;
        let new_hash = self
            .hashing
            .run(move |hasher, memory| hasher.hash(&new_password, memory))
            .await??;
        let now = self.clock.now();
        let notice = self.policy.email.notices.password_changed.then(|| {
            let vars = json!({
                "at": now.to_rfc3339(), "ip": ctx.client_ip, "device": Option::<String>::None,
            });
            self.outbox_mail("password_changed", &stored.email, vars, now)
        });
        let revocation =
            self.session_revocation(stored.user_id, SecurityEventKind::SessionRevoked, ctx);
        let use_ = EmailTokenUse {
            hash,
            purpose,
            user_id: stored.user_id,
            now,
            effect: EmailTokenEffect::ResetPassword {
                new_hash,
                revocation: revocation.clone(),
            },
            notice,
        };
        match self.store.use_email_token(&use_).await? {
            EmailTokenOutcome::Applied { revoked } => {
                self.revoked_in_store(&revoked, &revocation).await;
                self.email.mail_queued();
                let mut event = self.event(SecurityEventKind::PasswordChanged, ctx, now);
                event.user_id = Some(stored.user_id);
                event.detail = Some(format!(
                    "password reset; sessions_revoked={}",
                    revoked.len()
                ));
                self.record(event).await;
                Ok(())
            }
            EmailTokenOutcome::Invalid | EmailTokenOutcome::EmailTaken => {
                Err(AuthError::ResetTokenInvalid)
            }
        }
    }

    /// Confirm an address with the token from a verification or change-of-address link.
    pub async fn verify_email(&self, token: &str) -> Result<(), AuthError> {
        let token = EmailToken::parse(token).ok_or(AuthError::VerificationTokenInvalid)?;
        let now = self.clock.now();
        for (purpose, effect) in [
            (
                EmailTokenPurpose::VerifyEmail,
                EmailTokenEffect::VerifyAddress,
            ),
            (
                EmailTokenPurpose::ChangeEmail,
                EmailTokenEffect::ChangeAddress,
            ),
        ] {
            let hash = self.email.keys.hash(&token, purpose);
            let Some(stored) = self.store.email_token(&hash).await? else {
                continue;
            };
            if !token_usable(Some(&stored), purpose, now) {
                break;
            }
            let use_ = EmailTokenUse {
                hash,
                purpose,
                user_id: stored.user_id,
                now,
                effect,
                notice: None,
            };
            return match self.store.use_email_token(&use_).await? {
                EmailTokenOutcome::Applied { .. } => Ok(()),
                EmailTokenOutcome::EmailTaken => Err(AuthError::EmailTaken),
                EmailTokenOutcome::Invalid => Err(AuthError::VerificationTokenInvalid),
            };
        }
        Err(AuthError::VerificationTokenInvalid)
    }

    /// Send the caller a new verification link (nothing if the address is verified).
    pub async fn resend_verification(&self, claims: &AccessClaims) -> Result<(), AuthError> {
        let (user_id, _) = super::sessions::caller(claims)?;
        self.limit(
            format!("verify-resend:{user_id}"),
            self.policy.email.verify_resend,
        )
        .await?;
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        if self.email_verified(user.id).await? {
            return Ok(());
        }
        self.send_verification(&user).await
    }

    /// Ask to move the caller's account to `new_email`: a link goes to the new address, a
    /// notice to the old one; the account moves only when the link is followed. An
    /// address in use by another account gets no mail, with the same answer.
    pub async fn change_email(
        &self,
        claims: &AccessClaims,
        new_email: &str,
        current_password: String,
    ) -> Result<(), AuthError> {
        let _lane = self.hashing.lane();
        let (user_id, _) = super::sessions::caller(claims)?;
        self.limit(
            format!("change-email:{user_id}"),
            self.policy.email.verify_resend,
        )
        .await?;
        let new_email = Email::parse(new_email)?;
        if current_password.len() > 1024 {
            return Err(AuthError::InvalidCredentials);
        }
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        let stored_hash = user.password_hash.clone();
        let matches = self
            .hashing
            .run(move |hasher, memory| {
                hasher.verify(current_password.as_bytes(), Some(&stored_hash), memory)
            })
            .await?;
        if !matches {
            return Err(AuthError::InvalidCredentials);
        }
        if new_email == user.email {
            return Ok(());
        }
        let now = self.clock.now();
        if self.store.user_by_email(&new_email).await?.is_none() {
            let (token, stored) =
                self.new_email_token(user.id, EmailTokenPurpose::ChangeEmail, &new_email, now);
            let vars = json!({ "link": self.link("verify", &token) });
            let mail = self.outbox_mail("change_email", &new_email, vars, now);
            self.store
                .issue_email_token(&NewEmailToken {
                    token: stored,
                    mail,
                })
                .await?;
        }
        let vars = json!({ "new_email": new_email.as_str() });
        self.notify("email_change_requested", &user.email, vars)
            .await;
        Ok(())
    }
}
