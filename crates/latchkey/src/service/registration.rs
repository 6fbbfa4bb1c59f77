//! Making accounts: registration over HTTP, and accounts made by the CLI and admins.
//!
//! Registration is one store call (`RegistrationStore::register`) whichever way it
//! goes. With `LATCHKEY_REGISTRATION_ENUMERATION=false` (the default) a taken address is
//! answered exactly as a fresh one: the same checks and limits, one Argon2 hash, one
//! store transaction, 201 with the same body (an id that is never stored). The store
//! then records a `registration_attempted` event for the existing account and queues a
//! notice to its address (at most one per address per [`NOTICE_QUIET`], decided in the
//! same transaction) instead of the new account. With enumeration on, a taken address
//! is 409 `email_taken` before any hashing, as before.

use std::time::Duration;

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::model::{Email, Password, Role, User, UserId};
use latchkey_core::store::{Registration, RegistrationOutcome, StoreError, TakenAddress};
use serde_json::json;

use super::{AuthError, AuthService, RequestContext};

/// After a notice of a registration with an address, how long further attempts are
/// recorded without mailing its owner again.
const NOTICE_QUIET: Duration = Duration::from_secs(15 * 60);

impl AuthService {
    /// Create an account with the `user` role, with its verification mail.
    pub async fn register(
        &self,
        email: &str,
        password: String,
        ctx: &RequestContext,
    ) -> Result<User, AuthError> {
        self.limit_ip("register", ctx, self.policy.limits.register_per_ip)
            .await?;
        let email = Email::parse(email)?;
        // A password made of the account's own words is weak for this account.
        let password = Password::parse_with_context(password, &[email.as_str()])?;
        self.limit(
            format!("register:account:{email}"),
            self.policy.limits.register_per_ip,
        )
        .await?;
        let enumerable = self.policy.registration_enumeration;
        let _lane = self.hashing.lane();
        if enumerable && self.store.user_by_email(&email).await?.is_some() {
            return Err(AuthError::EmailTaken);
        }
        let if_taken = (!enumerable).then(|| self.taken_address(&email, ctx));
        let user = self
            .hashed_user(email, password, vec![Role::user()])
            .await?;
        let now = user.created_at;
        let mut registered = self.event(SecurityEventKind::UserRegistered, ctx, now);
        registered.user_id = Some(user.id);
        let registration = Registration {
            registered,
            verification: self.verification(&user, now),
            if_taken,
            user,
        };
        let outcome = self.store.register(&registration).await?;
        let queued = match outcome {
            RegistrationOutcome::Created => true,
            RegistrationOutcome::Taken { .. } if enumerable => return Err(AuthError::EmailTaken),
            RegistrationOutcome::Taken { notified } => notified,
        };
        if queued {
            self.email.mail_queued();
        }
        // For a taken address: the answer a fresh account gets; its id is never stored.
        Ok(registration.user)
    }

    /// What a registration of `email` writes if the address has an account: an event for
    /// it, and a notice unless one went out within [`NOTICE_QUIET`]. Made the same way for
    /// every address, taken or not.
    fn taken_address(&self, email: &Email, ctx: &RequestContext) -> TakenAddress {
        let now = self.clock.now();
        let vars = json!({ "at": now.to_rfc3339(), "ip": ctx.client_ip });
        TakenAddress {
            event: self.event(SecurityEventKind::RegistrationAttempted, ctx, now),
            notice: self.outbox_mail("registration_attempted", email, vars, now),
            quiet_since: now.minus(NOTICE_QUIET),
        }
    }

    /// Create an account with the given roles (for the CLI and admins): no verification
    /// mail, and 409 `email_taken` for an address in use.
    pub async fn create_user(
        &self,
        email: Email,
        password: Password,
        roles: Vec<Role>,
        ctx: &RequestContext,
    ) -> Result<User, AuthError> {
        let _lane = self.hashing.lane();
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(AuthError::EmailTaken);
        }
        let user = self.hashed_user(email, password, roles).await?;
        self.store.insert_user(&user).await.map_err(|e| match e {
            StoreError::EmailTaken => AuthError::EmailTaken,
            other => AuthError::Store(other),
        })?;
        let mut event = self.event(SecurityEventKind::UserRegistered, ctx, user.created_at);
        event.user_id = Some(user.id);
        self.record(event).await;
        Ok(user)
    }

    /// A new user with the password hashed (on the hashing threads), made now.
    async fn hashed_user(
        &self,
        email: Email,
        password: Password,
        roles: Vec<Role>,
    ) -> Result<User, AuthError> {
        let password_hash = self
            .hashing
            .run(move |hasher, memory| hasher.hash(&password, memory))
            .await??;
        Ok(User {
            id: UserId::generate(),
            email,
            password_hash,
            roles,
            created_at: self.clock.now(),
            disabled_at: None,
        })
    }
}
