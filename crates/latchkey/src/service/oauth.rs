//! Token introspection (RFC 7662) and revocation (RFC 7009) for resource services and
//! clients that cannot verify tokens themselves. Both go through the same checks and
//! revocation paths as the rest of the service, so a revoked session's access token
//! introspects inactive at once, and a revocation reaches the other replicas at once.

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::model::{RefreshState, SessionId, UserId};
use latchkey_core::refresh::RefreshToken;
use latchkey_core::rotation::{decide, RotationDecision};
use latchkey_verify::AccessClaims;

use super::{AuthError, AuthService, RequestContext};
use crate::clients::OAuthClients;

/// Which kind of token the client says it sends (`token_type_hint`); a wrong hint is
/// not an error, the other kind is tried too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
}

/// What an introspected token is.
#[derive(Debug)]
pub enum Introspection {
    /// Not active: unknown, expired, revoked, spent, malformed. No detail is given.
    Inactive,
    /// A live access token with its claims.
    Access(AccessClaims),
    /// A live refresh token: the newest of a live session.
    Refresh {
        /// The user.
        user_id: UserId,
        /// The session.
        session_id: SessionId,
        /// When it was issued (Unix seconds).
        issued_at: i64,
        /// When it stops working if unused (idle or absolute limit, Unix seconds).
        expires_at: i64,
    },
}

impl AuthService {
    /// Authenticate the OAuth client calling introspection or revocation with the
    /// `(client_id, client_secret)` it presented. Failures back off like failed logins
    /// (the same settings): per client network whatever the client id, and per client id
    /// from every network together (the account ceiling). While either says wait, the
    /// answer is 429 `rate_limited` before the secret is looked at, so guessing gains
    /// nothing; a wrong id or secret counts under both keys. Missing credentials guess
    /// nothing and are not counted.
    pub async fn authenticate_client(
        &self,
        clients: &OAuthClients,
        presented: Option<(&str, &str)>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let Some((id, secret)) = presented else {
            return Err(AuthError::InvalidClient);
        };
        let limits = &self.policy.limits;
        let counted = [
            (
                format!("client_auth:network:{}", ctx.network()),
                &limits.login_failures,
            ),
            (
                format!("client_auth:client:{id}"),
                &limits.login_failures_per_account,
            ),
        ];
        let now = self.clock.now();
        let mut wait = None;
        for (key, policy) in &counted {
            let record = self.failures.get(key).await;
            if let Some(this) = policy.wait(record.as_ref(), now) {
                self.metrics.rate_limited(key);
                wait = wait.max(Some(this));
            }
        }
        if let Some(retry_after) = wait {
            return Err(AuthError::RateLimited { retry_after });
        }
        if clients.authenticate(id, secret) {
            return Ok(());
        }
        for (key, policy) in &counted {
            self.failures.record(key, policy, now).await;
        }
        Err(AuthError::InvalidClient)
    }

    /// Whether `token` is active now, and what it says if it is. An access token is
    /// checked exactly as a protected route checks it (signature, claims, revocations);
    /// a refresh token is active while a refresh with it would rotate (its session is
    /// live and it is the newest of the family); nothing is rotated or written.
    pub async fn introspect(
        &self,
        token: &str,
        hint: Option<TokenHint>,
    ) -> Result<Introspection, AuthError> {
        let refresh_first = hint == Some(TokenHint::RefreshToken);
        if refresh_first {
            let found = self.introspect_refresh(token).await?;
            if !matches!(found, Introspection::Inactive) {
                return Ok(found);
            }
        }
        if let Ok(claims) = self.authenticate(token).await {
            return Ok(Introspection::Access(claims));
        }
        if refresh_first {
            return Ok(Introspection::Inactive);
        }
        self.introspect_refresh(token).await
    }

    async fn introspect_refresh(&self, token: &str) -> Result<Introspection, AuthError> {
        let Some(presented) = RefreshToken::parse(token) else {
            return Ok(Introspection::Inactive);
        };
        let state = self
            .store
            .refresh_state(&self.refresh_keys.lookup(&presented))
            .await?;
        let Some(RefreshState { token, session, .. }) = state else {
            return Ok(Introspection::Inactive);
        };
        let now = self.clock.now();
        let rotation = &self.policy.rotation;
        let decision = decide(Some((&token, &session)), now, rotation);
        if !matches!(decision, RotationDecision::Rotate { .. }) {
            return Ok(Introspection::Inactive);
        }
        let idle_end = token.issued_at.plus(rotation.idle_ttl).unix_seconds();
        let absolute_end = session
            .created_at
            .plus(rotation.session_lifetime)
            .unix_seconds();
        Ok(Introspection::Refresh {
            user_id: session.user_id,
            session_id: session.id,
            issued_at: token.issued_at.unix_seconds(),
            expires_at: idle_end.min(absolute_end),
        })
    }

    /// Revoke `token` (RFC 7009): a refresh token ends its session; an access token's
    /// `jti` is denied until it expires (its session stays). Unknown, invalid and
    /// already revoked tokens are ignored: the answer is the same either way.
    pub async fn revoke_token(
        &self,
        token: &str,
        hint: Option<TokenHint>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let refresh_first = hint != Some(TokenHint::AccessToken);
        if refresh_first && self.revoke_refresh_token(token, ctx).await? {
            return Ok(());
        }
        if let Some(claims) = self.live_access_claims(token) {
            self.deny_access_token(&claims).await?;
            return Ok(());
        }
        if !refresh_first {
            self.revoke_refresh_token(token, ctx).await?;
        }
        Ok(())
    }

    /// End the session of a refresh token; whether it was a token of a live session.
    async fn revoke_refresh_token(
        &self,
        token: &str,
        ctx: &RequestContext,
    ) -> Result<bool, AuthError> {
        let Some(presented) = RefreshToken::parse(token) else {
            return Ok(false);
        };
        let state = self
            .store
            .refresh_state(&self.refresh_keys.lookup(&presented))
            .await?;
        match state {
            Some(RefreshState { session, .. }) if session.revoked_at.is_none() => {
                self.revoke_session(
                    session.id,
                    Some(session.user_id),
                    SecurityEventKind::Logout,
                    ctx,
                    self.clock.now(),
                )
                .await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
