//! The account's own use cases: log in (with the failure back-off and device tracking),
//! change the password, and read one's own security events (registering is in
//! `registration`).

use latchkey_core::audit::{SecurityEvent, SecurityEventKind};
use latchkey_core::device::{is_new_device, Device};
use latchkey_core::mfa::AuthMethods;
use latchkey_core::model::{Email, InvalidInput, Password, Session, SessionId, User, UserId};
use latchkey_core::store::{CreateSessionOutcome, NewSession, PasswordChange, UserUpdateOutcome};
use latchkey_core::time::Timestamp;
use latchkey_verify::AccessClaims;
use serde::Serialize;

use super::mfa_login::LoginOutcome;
use super::throttle::FailureKeys;
use super::tokens::{Authentication, TokenSubject};
use super::{AuthError, AuthService, IssuedTokens, RequestContext};

/// A security event as the user (or an admin) sees it. Times are RFC 3339.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// When it happened.
    pub at: String,
    /// What happened (`login_succeeded`, `new_device`, `password_changed`, ...).
    pub kind: &'static str,
    /// Whose account, if known.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub user_id: Option<UserId>,
    /// The session concerned, if any.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub session_id: Option<SessionId>,
    /// The client's address.
    pub client_ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// A readable device name from the `User-Agent`, when there is one.
    pub device: Option<String>,
    /// A short detail.
    pub detail: Option<String>,
}

impl From<SecurityEvent> for EventView {
    fn from(event: SecurityEvent) -> Self {
        let device = event
            .user_agent
            .as_deref()
            .map(|ua| Device::of(Some(ua), None).name);
        Self {
            at: event.at.to_rfc3339(),
            kind: event.kind.as_str(),
            user_id: event.user_id,
            session_id: event.session_id,
            client_ip: event.client_ip,
            user_agent: event.user_agent,
            device,
            detail: event.detail,
        }
    }
}

impl AuthService {
    /// Check credentials and start a session, or, for a user with a second factor,
    /// answer with the login's second step (`refresh_delivery` is kept for it).
    ///
    /// Refused quickly, before any hashing, while the per-IP limit or the failure
    /// back-off of this account (from this network, or from everywhere) says wait; the
    /// answer is the same whether or not the account exists.
    pub async fn login(
        &self,
        email: &str,
        password: String,
        refresh_delivery: &str,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, AuthError> {
        let _lane = self.hashing.lane();
        if password.len() > 1024 {
            return Err(InvalidInput::PasswordTooLong.into());
        }
        // An address that cannot be valid still costs a hash, like an unknown one.
        let email = Email::parse(email).ok();
        let keys = email.as_ref().map(|e| FailureKeys::of(e, ctx));
        self.check_login_limits(keys.as_ref(), ctx).await?;
        let user = match &email {
            Some(email) => self.store.user_by_email(email).await?,
            None => None,
        };
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        let matches = self
            .hashing
            .run(move |hasher, memory| {
                hasher.verify(password.as_bytes(), stored_hash.as_deref(), memory)
            })
            .await?;
        let now = self.clock.now();
        let Some(user) = user.filter(|_| matches) else {
            if let Some(keys) = &keys {
                self.count_failure(keys, ctx, now).await;
            }
            let mut event = self.event(SecurityEventKind::LoginFailed, ctx, now);
            event.detail = email.map(|e| format!("email={e}"));
            self.record(event).await;
            return Err(AuthError::InvalidCredentials);
        };
        if user.disabled_at.is_some() {
            return Err(AuthError::AccountDisabled);
        }
        if let Some(keys) = &keys {
            self.failures.clear(&keys.network).await;
        }
        if self.policy.email.require_verified && !self.email_verified(user.id).await? {
            return Err(AuthError::EmailNotVerified);
        }
        if let Some(pending) = self.second_step(&user, refresh_delivery, now).await? {
            return Ok(LoginOutcome::MfaRequired(pending));
        }
        self.start_session(&user, AuthMethods::Password, ctx, now)
            .await
            .map(LoginOutcome::Tokens)
    }

    /// Store a new session for `user` (checked a moment ago, with `methods`), note the
    /// device, and issue the first pair.
    pub(super) async fn start_session(
        &self,
        user: &User,
        methods: AuthMethods,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<IssuedTokens, AuthError> {
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id,
            created_at: now,
            latest_generation: 0,
            revoked_at: None,
        };
        let refresh_token = self.refresh_keys.new_token(session.id);
        let device = Device::of(
            ctx.user_agent.as_deref(),
            ctx.client_ip.as_deref().and_then(|ip| ip.parse().ok()),
        );
        let device_name = device.name.clone();
        let new = NewSession {
            first_token: self.refresh_keys.hash(&refresh_token),
            password_hash: user.password_hash.clone(),
            client_ip: ctx.client_ip.clone(),
            user_agent: ctx.user_agent.clone(),
            device,
            session: session.clone(),
            auth_methods: methods,
        };
        let (roles, device_last_seen) = match self.store.create_session(&new).await? {
            CreateSessionOutcome::Created {
                roles,
                device_last_seen,
            } => (roles, device_last_seen),
            // Disabled, deleted or given a new password since the check.
            CreateSessionOutcome::UserChanged => {
                let disabled = self
                    .store
                    .user_by_id(user.id)
                    .await?
                    .is_some_and(|u| u.disabled_at.is_some());
                return Err(if disabled {
                    AuthError::AccountDisabled
                } else {
                    AuthError::InvalidCredentials
                });
            }
        };
        let mut event = self.event(SecurityEventKind::LoginSucceeded, ctx, now);
        event.user_id = Some(user.id);
        event.session_id = Some(session.id);
        event.detail = Some(device_name.clone());
        self.record(event.clone()).await;
        if is_new_device(device_last_seen, now) {
            event.kind = SecurityEventKind::NewDevice;
            self.record(event.clone()).await;
            self.notify_new_device(user, &event).await;
        }
        let auth = Authentication { at: now, methods };
        let email_verified = self.email_verified(user.id).await?;
        let subject = TokenSubject {
            user_id: user.id,
            roles: &roles,
            session_id: session.id,
            auth,
            email_verified,
        };
        self.issue(subject, refresh_token, now)
    }

    /// Change the caller's password. The session that asks goes on; every other session
    /// of the user is revoked at once. A wrong current password counts as a failed login.
    pub async fn change_password(
        &self,
        claims: &AccessClaims,
        current_password: String,
        new_password: String,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let _lane = self.hashing.lane();
        let (user_id, current_session) = super::sessions::caller(claims)?;
        self.require_recent_login(claims)?;
        if current_password.len() > 1024 {
            return Err(AuthError::InvalidCredentials);
        }
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        let new_password = Password::parse_with_context(new_password, &[user.email.as_str()])?;
        let keys = FailureKeys::of(&user.email, ctx);
        self.check_login_limits(Some(&keys), ctx).await?;
        let stored_hash = user.password_hash.clone();
        let matches = self
            .hashing
            .run(move |hasher, memory| {
                hasher.verify(current_password.as_bytes(), Some(&stored_hash), memory)
            })
            .await?;
        let now = self.clock.now();
        if !matches {
            self.count_failure(&keys, ctx, now).await;
            let mut event = self.event(SecurityEventKind::LoginFailed, ctx, now);
            event.user_id = Some(user.id);
            event.detail = Some("password change: wrong current password".to_owned());
            self.record(event).await;
            return Err(AuthError::InvalidCredentials);
        }
        self.failures.clear(&keys.network).await;
        let new_hash = self
            .hashing
            .run(move |hasher, memory| hasher.hash(&new_password, memory))
            .await??;
        let revocation = self.session_revocation(user.id, SecurityEventKind::SessionRevoked, ctx);
        let change = PasswordChange {
            id: user.id,
            expected_hash: user.password_hash.clone(),
            new_hash,
            keep_session: current_session,
            revocation,
        };
        match self.store.change_password(&change).await? {
            UserUpdateOutcome::Applied { revoked } => {
                self.revoked_in_store(&revoked, &change.revocation).await;
                let mut event = self.event(SecurityEventKind::PasswordChanged, ctx, now);
                event.user_id = Some(user.id);
                event.session_id = current_session;
                event.detail = Some(format!("other_sessions_revoked={}", revoked.len()));
                self.record(event).await;
                let device = ctx
                    .user_agent
                    .as_deref()
                    .map(|ua| Device::of(Some(ua), None).name);
                let vars = serde_json::json!({
                    "at": now.to_rfc3339(), "ip": ctx.client_ip, "device": device,
                });
                self.notify_user("password_changed", user.id, Some(&user.email), vars)
                    .await;
                Ok(())
            }
            // Changed by another request meanwhile: the current password is no longer it.
            UserUpdateOutcome::Conflict | UserUpdateOutcome::LastAdmin => {
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// The caller's own security events, newest first.
    pub async fn my_events(
        &self,
        claims: &AccessClaims,
        limit: u32,
    ) -> Result<Vec<EventView>, AuthError> {
        let (user, _) = super::sessions::caller(claims)?;
        let events = self.store.recent_events(Some(user), limit).await?;
        Ok(events.into_iter().map(EventView::from).collect())
    }
}
