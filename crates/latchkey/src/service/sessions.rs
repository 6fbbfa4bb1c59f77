//! Sessions: the caller's list of where they are signed in, revoking one or all of
//! them, logout, and the revocation every one of these ends in (store, this process's
//! cache, other replicas).

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::model::{RefreshState, SessionId, UserId};
use latchkey_core::refresh::RefreshToken;
use latchkey_core::rotation::session_is_live;
use latchkey_core::store::{Revoked, SessionDetails, SessionRevocation};
use latchkey_core::time::Timestamp;
use latchkey_verify::AccessClaims;
use serde::Serialize;

use super::{AuthError, AuthService, RequestContext};
use crate::revocation::RevocationSink;

/// A session as its owner (or an admin) sees it. Times are RFC 3339.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The session id (the access token's `sid`).
    #[schema(value_type = String, format = Uuid)]
    pub id: SessionId,
    /// When the user logged in.
    pub created_at: String,
    /// The login or the last refresh.
    pub last_used_at: String,
    /// The address last seen (at the last refresh or the login).
    pub ip: Option<String>,
    /// The address the login came from.
    pub created_ip: Option<String>,
    /// The `User-Agent` of the login.
    pub user_agent: Option<String>,
    /// A readable device name, such as "Firefox on Linux".
    pub device: String,
    /// Whether this is the session of the access token that asked.
    pub current: bool,
}

impl SessionView {
    fn of(details: SessionDetails, current: Option<SessionId>) -> Self {
        Self {
            id: details.session.id,
            created_at: details.session.created_at.to_rfc3339(),
            last_used_at: details.last_used_at.to_rfc3339(),
            ip: details.last_ip.or_else(|| details.client_ip.clone()),
            created_ip: details.client_ip,
            user_agent: details.user_agent,
            device: details.device,
            current: current == Some(details.session.id),
        }
    }
}

/// The caller's user and session, from a verified access token.
pub(super) fn caller(claims: &AccessClaims) -> Result<(UserId, Option<SessionId>), AuthError> {
    let user = claims
        .sub
        .parse::<UserId>()
        .map_err(|_| AuthError::Token(latchkey_verify::TokenError::BadClaims))?;
    Ok((user, claims.sid.parse::<SessionId>().ok()))
}

impl AuthService {
    /// The live sessions of `user`, newest first; `current` marks the caller's own.
    pub(super) async fn live_sessions(
        &self,
        user: UserId,
        current: Option<SessionId>,
    ) -> Result<Vec<SessionView>, AuthError> {
        let now = self.clock.now();
        let sessions = self.store.user_sessions(user).await?;
        Ok(sessions
            .into_iter()
            .filter(|s| {
                session_is_live(
                    s.session.created_at,
                    s.last_used_at,
                    now,
                    &self.policy.rotation,
                )
            })
            .map(|s| SessionView::of(s, current))
            .collect())
    }

    /// The caller's live sessions, newest first.
    pub async fn my_sessions(&self, claims: &AccessClaims) -> Result<Vec<SessionView>, AuthError> {
        let (user, current) = caller(claims)?;
        self.live_sessions(user, current).await
    }

    /// Revoke one of the caller's sessions. Another user's, an unknown or an already
    /// revoked session are all [`AuthError::SessionNotFound`], so ids cannot be probed.
    pub async fn revoke_my_session(
        &self,
        claims: &AccessClaims,
        session: &str,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let (user, _) = caller(claims)?;
        let session = session
            .parse::<SessionId>()
            .map_err(|_| AuthError::SessionNotFound)?;
        let owned = self
            .store
            .session(session)
            .await?
            .is_some_and(|s| s.user_id == user && s.revoked_at.is_none());
        if !owned {
            return Err(AuthError::SessionNotFound);
        }
        let now = self.clock.now();
        let revoked = self
            .revoke_session(
                session,
                Some(user),
                SecurityEventKind::SessionRevoked,
                ctx,
                now,
            )
            .await?;
        if revoked {
            Ok(())
        } else {
            Err(AuthError::SessionNotFound)
        }
    }

    /// Revoke all of the caller's sessions, or all but the one asking.
    pub async fn logout_all(
        &self,
        claims: &AccessClaims,
        keep_current: bool,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let (user, current) = caller(claims)?;
        let except = if keep_current { current } else { None };
        self.revoke_all_sessions(user, except, SecurityEventKind::SessionRevoked, ctx)
            .await?;
        Ok(())
    }

    /// Revoke every session of `user` but `except`, in the store and everywhere else.
    pub(super) async fn revoke_all_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        kind: SecurityEventKind,
        ctx: &RequestContext,
    ) -> Result<usize, AuthError> {
        let revocation = self.session_revocation(user, kind, ctx);
        let revoked = self
            .store
            .revoke_user_sessions(user, except, &revocation)
            .await?;
        self.revoked_in_store(&revoked, &revocation).await;
        Ok(revoked.len())
    }

    /// What revoking sessions of `user` now writes: the time, how long the log entries
    /// last, and the event recorded per session.
    pub(super) fn session_revocation(
        &self,
        user: UserId,
        kind: SecurityEventKind,
        ctx: &RequestContext,
    ) -> SessionRevocation {
        let now = self.clock.now();
        let mut event = self.event(kind, ctx, now);
        event.user_id = Some(user);
        SessionRevocation {
            now,
            access_tokens_until: now.plus(self.policy.access_tokens_outlive_by()),
            event,
        }
    }

    /// Put sessions the store has just revoked into this process's cache and announce
    /// them to the other replicas.
    pub(super) async fn revoked_in_store(
        &self,
        sessions: &[SessionId],
        revocation: &SessionRevocation,
    ) {
        for session in sessions {
            self.revoke_locally(Revoked::Session(*session), revocation.access_tokens_until)
                .await;
        }
    }

    /// Revoke a session in the store (with its audit event) and in this process. Returns
    /// whether it was live until now.
    pub(super) async fn revoke_session(
        &self,
        session_id: SessionId,
        user_id: Option<UserId>,
        kind: SecurityEventKind,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<bool, AuthError> {
        let until = now.plus(self.policy.access_tokens_outlive_by());
        let mut event = self.event(kind, ctx, now);
        event.session_id = Some(session_id);
        event.user_id = user_id;
        let revoked = self
            .store
            .revoke_session(session_id, now, until, &event)
            .await?;
        // Already revoked: whoever did it announced it; nothing to tell the replicas.
        if revoked {
            self.revoke_locally(Revoked::Session(session_id), until)
                .await;
        }
        Ok(revoked)
    }

    /// Put a revocation (already in the store) into this process's cache and announce it
    /// to the other replicas.
    pub(super) async fn revoke_locally(&self, revoked: Revoked, until: Timestamp) {
        self.metrics.revocation(match revoked {
            Revoked::Session(_) => "session",
            Revoked::AccessToken(_) => "access_token",
            Revoked::Key(_) => "key",
        });
        self.revocations.insert(revoked.clone(), until);
        if let Some(fanout) = &self.fanout {
            fanout.announce(&revoked, until).await;
        }
    }

    /// Count the live sessions into the live-sessions gauge (a background task calls
    /// this periodically, so scrapes never query the store).
    pub async fn count_live_sessions(&self) -> Result<u64, AuthError> {
        let now = self.clock.now();
        let rotation = &self.policy.rotation;
        let count = self
            .store
            .count_live_sessions(
                now.minus(rotation.session_lifetime),
                now.minus(rotation.idle_ttl),
            )
            .await?;
        self.metrics.set_live_sessions(count);
        Ok(count)
    }

    /// The claims of a genuine access token neither it nor its session revoked (expiry
    /// is checked too).
    pub(super) fn live_access_claims(&self, token: &str) -> Option<AccessClaims> {
        self.verify_signature_and_claims(token)
            .ok()
            .filter(|c| !self.revocations.is_revoked(&c.jti, c.sid.parse().ok()))
    }

    /// Deny an access token's `jti` until it expires, in the store and everywhere else.
    pub(super) async fn deny_access_token(&self, claims: &AccessClaims) -> Result<(), AuthError> {
        let until =
            Timestamp::from_unix_millis(claims.exp.saturating_mul(1000)).plus(self.policy.leeway);
        self.store.deny_access_token(&claims.jti, until).await?;
        self.revoke_locally(Revoked::AccessToken(claims.jti.clone()), until)
            .await;
        Ok(())
    }

    /// End a session: by its refresh token, by an access token of it, or both (an access
    /// token without a session has its `jti` denied until it expires instead). Unknown or
    /// invalid tokens, and sessions already ended, are ignored without writing anything
    /// (logout is idempotent and cheap to repeat); logouts are rate-limited per client
    /// network.
    pub async fn logout(
        &self,
        raw_refresh_token: Option<&str>,
        access_token: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        if raw_refresh_token.is_none() && access_token.is_none() {
            return Ok(());
        }
        self.limit_ip("logout", ctx, self.policy.limits.logout_per_ip)
            .await?;
        let now = self.clock.now();
        let mut sessions = Vec::new();
        if let Some(token) = raw_refresh_token.and_then(RefreshToken::parse) {
            if let Some(RefreshState { session, .. }) = self
                .store
                .refresh_state(&self.refresh_keys.lookup(&token))
                .await?
            {
                if session.revoked_at.is_none() {
                    sessions.push((session.id, Some(session.user_id)));
                }
            }
        }
        if let Some(token) = access_token {
            if let Some(claims) = self.live_access_claims(token) {
                match claims.sid.parse::<SessionId>() {
                    // Ending the session refuses every access token of it, this one
                    // included: one revocation, written in one transaction.
                    Ok(sid) => sessions.push((sid, claims.sub.parse::<UserId>().ok())),
                    Err(_) => self.deny_access_token(&claims).await?,
                }
            }
        }
        sessions.dedup_by_key(|(session_id, _)| *session_id);
        for (session_id, user_id) in sessions {
            self.revoke_session(session_id, user_id, SecurityEventKind::Logout, ctx, now)
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl RevocationSink for AuthService {
    fn heard(&self, revoked: Revoked, until: Timestamp) {
        self.revocations.insert(revoked, until);
    }

    async fn resync(&self) -> Result<(), String> {
        self.sync_revocations().await.map_err(|e| e.to_string())
    }
}
