//! What admins do: list and inspect users, change their roles or disable them, delete
//! them, see and revoke their sessions, read the audit log. Every change that reduces
//! privileges revokes the user's sessions in the same transaction, and no change may
//! leave the server without an enabled admin.

use latchkey_core::accounts::{plan_access_change, AccessChange};
use latchkey_core::audit::SecurityEventKind;
use latchkey_core::mfa::{admin_authentication, AdminAuthentication};
use latchkey_core::model::{Email, User, UserId};
use latchkey_core::store::{
    EventPosition, LoggedEvent, UserAccess, UserDeletion, UserUpdate, UserUpdateOutcome,
    WebhookDelivery,
};
use latchkey_verify::AccessClaims;
use serde::Serialize;

use super::{AuthError, AuthService, EventView, Reauthentication, RequestContext, SessionView};

/// A user as an admin sees it. Times are RFC 3339.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// The user id.
    #[schema(value_type = String, format = Uuid)]
    pub id: UserId,
    /// The e-mail address.
    #[schema(value_type = String, format = Email)]
    pub email: Email,
    /// The roles.
    pub roles: Vec<String>,
    /// When the account was made.
    pub created_at: String,
    /// Whether an admin disabled it.
    pub disabled: bool,
    /// When it was disabled.
    pub disabled_at: Option<String>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            created_at: user.created_at.to_rfc3339(),
            disabled: user.disabled_at.is_some(),
            disabled_at: user.disabled_at.map(|at| at.to_rfc3339()),
        }
    }
}

/// One page of users by e-mail address.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserPage {
    /// The users.
    pub users: Vec<UserView>,
    /// The `after` of the next page, if there may be one.
    pub next: Option<String>,
}

/// How many times a change is decided again after losing a compare-and-set.
const CHANGE_ATTEMPTS: usize = 3;

fn parse_user_id(id: &str) -> Result<UserId, AuthError> {
    id.parse::<UserId>().map_err(|_| AuthError::UserNotFound)
}

impl AuthService {
    /// Refuse admin work (the caller holds the `admin` role) unless the token's login is
    /// at most `LATCHKEY_ADMIN_MAX_AUTH_AGE` old and, when the account has a second
    /// factor, used it: an admin's token that leaked to a resource service, or one
    /// refreshed for hours from a stolen refresh token, is not an admin credential.
    pub async fn authorize_admin(&self, claims: &AccessClaims) -> Result<(), AuthError> {
        let max_age = self.policy.admin_max_auth_age;
        let max_age_seconds = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        let refused = |second_factor| {
            Err(AuthError::ReauthRequired(Reauthentication {
                max_age,
                second_factor,
            }))
        };
        let decision = admin_authentication(
            claims.auth_time,
            claims.is_multi_factor(),
            self.clock.now(),
            max_age_seconds,
        );
        match decision {
            AdminAuthentication::Sufficient => Ok(()),
            AdminAuthentication::LoginTooOld => refused(false),
            AdminAuthentication::SufficientWithoutSecondFactor => {
                let (user, _) = super::sessions::caller(claims)?;
                match self.active_totp(user).await? {
                    Some(_) => refused(true),
                    None => Ok(()),
                }
            }
        }
    }

    /// Up to `limit` users ordered by e-mail address, after `after`.
    pub async fn list_users(&self, after: Option<&str>, limit: u32) -> Result<UserPage, AuthError> {
        let after = after.map(Email::parse).transpose()?;
        let users = self.store.list_users(after.as_ref(), limit).await?;
        let next = (users.len() == limit as usize)
            .then(|| users.last().map(|u| u.email.to_string()))
            .flatten();
        Ok(UserPage {
            users: users.iter().map(UserView::from).collect(),
            next,
        })
    }

    async fn user_by_id_text(&self, id: &str) -> Result<User, AuthError> {
        self.store
            .user_by_id(parse_user_id(id)?)
            .await?
            .ok_or(AuthError::UserNotFound)
    }

    /// One user.
    pub async fn user(&self, id: &str) -> Result<UserView, AuthError> {
        Ok(UserView::from(&self.user_by_id_text(id).await?))
    }

    /// A user by e-mail address (for the CLI).
    pub async fn user_by_email(&self, email: &str) -> Result<UserView, AuthError> {
        let email = Email::parse(email)?;
        let user = self
            .store
            .user_by_email(&email)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        Ok(UserView::from(&user))
    }

    /// Change a user's roles or disabled state. Disabling or removing a role revokes the
    /// user's sessions at once; an added role takes effect at the next refresh.
    pub async fn change_user(
        &self,
        id: &str,
        change: AccessChange,
        ctx: &RequestContext,
    ) -> Result<UserView, AuthError> {
        for _ in 0..CHANGE_ATTEMPTS {
            let user = self.user_by_id_text(id).await?;
            let now = self.clock.now();
            let plan = plan_access_change(&user, &change, now);
            let revocation = plan
                .revoke_sessions
                .then(|| self.session_revocation(user.id, SecurityEventKind::SessionRevoked, ctx));
            let update = UserUpdate {
                id: user.id,
                expected: UserAccess {
                    roles: user.roles.clone(),
                    disabled_at: user.disabled_at,
                },
                new: plan.new.clone(),
                keep_an_admin: plan.keep_an_admin,
                revoke_sessions: revocation,
            };
            match self.store.update_user(&update).await? {
                UserUpdateOutcome::Applied { revoked } => {
                    if let Some(revocation) = &update.revoke_sessions {
                        self.revoked_in_store(&revoked, revocation).await;
                    }
                    self.record_access_change(&user, &plan.new, ctx, now).await;
                    let mut changed = user;
                    changed.roles = plan.new.roles;
                    changed.disabled_at = plan.new.disabled_at;
                    return Ok(UserView::from(&changed));
                }
                UserUpdateOutcome::LastAdmin => return Err(AuthError::LastAdmin),
                UserUpdateOutcome::Conflict => continue,
            }
        }
        Err(AuthError::Internal("user change did not settle".into()))
    }

    async fn record_access_change(
        &self,
        before: &User,
        after: &UserAccess,
        ctx: &RequestContext,
        now: latchkey_core::time::Timestamp,
    ) {
        let mut kinds = Vec::new();
        if before.roles != after.roles {
            kinds.push(SecurityEventKind::RolesChanged);
        }
        match (before.disabled_at.is_some(), after.disabled_at.is_some()) {
            (false, true) => kinds.push(SecurityEventKind::UserDisabled),
            (true, false) => kinds.push(SecurityEventKind::UserEnabled),
            _ => {}
        }
        for kind in kinds {
            let mut event = self.event(kind, ctx, now);
            event.user_id = Some(before.id);
            if kind == SecurityEventKind::RolesChanged {
                let roles: Vec<&str> = after.roles.iter().map(|r| r.as_str()).collect();
                event.detail = Some(format!("roles={}", roles.join(",")));
            }
            self.record(event).await;
        }
    }

    /// Delete a user: their sessions and tokens go, their access tokens die at once;
    /// security events keep the user id only.
    pub async fn delete_user(&self, id: &str, ctx: &RequestContext) -> Result<(), AuthError> {
        for _ in 0..CHANGE_ATTEMPTS {
            let user = self.user_by_id_text(id).await?;
            let deletion = UserDeletion {
                id: user.id,
                keep_an_admin: user.is_active_admin(),
                revocation: self.session_revocation(
                    user.id,
                    SecurityEventKind::SessionRevoked,
                    ctx,
                ),
            };
            match self.store.delete_user(&deletion).await? {
                UserUpdateOutcome::Applied { revoked } => {
                    self.revoked_in_store(&revoked, &deletion.revocation).await;
                    let mut event =
                        self.event(SecurityEventKind::UserDeleted, ctx, self.clock.now());
                    event.user_id = Some(user.id);
                    self.record(event).await;
                    return Ok(());
                }
                UserUpdateOutcome::LastAdmin => return Err(AuthError::LastAdmin),
                UserUpdateOutcome::Conflict => continue,
            }
        }
        Err(AuthError::UserNotFound)
    }

    /// A user's live sessions, newest first.
    pub async fn sessions_of_user(&self, id: &str) -> Result<Vec<SessionView>, AuthError> {
        let user = self.user_by_id_text(id).await?;
        self.live_sessions(user.id, None).await
    }

    /// Revoke all of a user's sessions (or one, by id). Returns how many were revoked.
    pub async fn revoke_sessions_of_user(
        &self,
        id: &str,
        session: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<usize, AuthError> {
        let user = self.user_by_id_text(id).await?;
        match session {
            None => {
                self.revoke_all_sessions(user.id, None, SecurityEventKind::SessionRevoked, ctx)
                    .await
            }
            Some(session) => {
                let session = session.parse().map_err(|_| AuthError::SessionNotFound)?;
                let theirs = self
                    .store
                    .session(session)
                    .await?
                    .is_some_and(|s| s.user_id == user.id && s.revoked_at.is_none());
                if !theirs {
                    return Err(AuthError::SessionNotFound);
                }
                let revoked = self
                    .revoke_session(
                        session,
                        Some(user.id),
                        SecurityEventKind::SessionRevoked,
                        ctx,
                        self.clock.now(),
                    )
                    .await?;
                Ok(usize::from(revoked))
            }
        }
    }

    /// The audit log, newest first, optionally of one user.
    pub async fn security_events(
        &self,
        user: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EventView>, AuthError> {
        let user = user.map(parse_user_id).transpose()?;
        let events = self.store.recent_events(user, limit).await?;
        Ok(events.into_iter().map(EventView::from).collect())
    }

    /// A page of the audit log in time order, with each event's position and its
    /// account's address (for `latchkey events tail`): the last `limit` events, or the
    /// first `limit` after `after`; optionally only of one user.
    pub async fn logged_events(
        &self,
        user: Option<UserId>,
        after: Option<EventPosition>,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, AuthError> {
        Ok(self.store.logged_events(user, after, limit).await?)
    }

    /// Webhook messages not delivered yet, or given up, newest first.
    pub async fn undelivered_webhooks(
        &self,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, AuthError> {
        Ok(self.store.undelivered_webhooks(limit).await?)
    }
}
