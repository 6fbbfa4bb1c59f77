//! Refresh: exchange a refresh token for a new pair (see
//! [`latchkey_core::rotation::decide`] for the rules).

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::model::RefreshState;
use latchkey_core::refresh::{RefreshToken, TokenLocator};
use latchkey_core::rotation::{decide, RefreshRejection, RotationDecision};
use latchkey_core::store::{RotateOutcome, Rotation};

use super::tokens::{Authentication, TokenSubject};
use super::{AuthError, AuthService, IssuedTokens, RequestContext};
use crate::telemetry::RefreshOutcome;

impl AuthService {
    /// Exchange a refresh token for a new pair.
    pub async fn refresh(
        &self,
        raw_token: &str,
        ctx: &RequestContext,
    ) -> Result<IssuedTokens, AuthError> {
        self.limit_ip("refresh", ctx, self.policy.limits.refresh_per_ip)
            .await?;
        let Some(presented) = RefreshToken::parse(raw_token) else {
            self.metrics.refresh(RefreshOutcome::Invalid);
            return Err(AuthError::Refresh(RefreshRejection::Invalid));
        };
        let lookup = self.refresh_keys.lookup(&presented);
        // A lost compare-and-set means another request rotated the same token a moment
        // ago; deciding again then yields the grace-window answer.
        for _ in 0..3 {
            let state = self.store.refresh_state(&lookup).await?;
            let now = self.clock.now();
            let decision = decide(
                state.as_ref().map(|s| (&s.token, &s.session)),
                now,
                &self.policy.rotation,
            );
            let Some(RefreshState {
                token,
                session,
                roles,
                auth_methods,
                email_verified,
            }) = state
            else {
                self.metrics.refresh(RefreshOutcome::Invalid);
                return Err(AuthError::Refresh(RefreshRejection::Invalid));
            };
            let subject = TokenSubject {
                user_id: session.user_id,
                roles: &roles,
                session_id: session.id,
                auth: Authentication {
                    at: session.created_at,
                    methods: auth_methods,
                },
                email_verified,
            };
            let successor = |generation| {
                let at = TokenLocator {
                    session_id: session.id,
                    generation,
                };
                self.refresh_keys.successor(&presented, at)
            };
            match decision {
                RotationDecision::Reject(rejection) => {
                    self.metrics.refresh(match rejection {
                        RefreshRejection::Invalid => RefreshOutcome::Invalid,
                        RefreshRejection::Expired => RefreshOutcome::Expired,
                        RefreshRejection::SessionRevoked => RefreshOutcome::Revoked,
                    });
                    return Err(AuthError::Refresh(rejection));
                }
                RotationDecision::ReuseDetected => {
                    let revoked_now = self
                        .revoke_session(
                            session.id,
                            Some(session.user_id),
                            SecurityEventKind::RefreshReuseDetected,
                            ctx,
                            now,
                        )
                        .await?;
                    self.metrics.refresh(RefreshOutcome::ReuseDetected);
                    tracing::warn!(session = %session.id, user = %session.user_id, "refresh token reuse detected; session revoked");
                    // Once per session, however many replays race here.
                    if revoked_now {
                        let vars =
                            serde_json::json!({ "at": now.to_rfc3339(), "ip": ctx.client_ip });
                        self.notify_user("refresh_reuse", session.user_id, None, vars)
                            .await;
                    }
                    return Err(AuthError::RefreshTokenReused);
                }
                RotationDecision::ReplaySuccessor => {
                    // `decide` replays only when the successor is the session's newest.
                    let next = successor(session.latest_generation);
                    self.metrics.refresh(RefreshOutcome::GraceReplay);
                    return self.issue(subject, next, now);
                }
                RotationDecision::Rotate {
                    successor_generation,
                } => {
                    self.limit(
                        format!("refresh:account:{}", session.user_id),
                        self.policy.limits.refresh_per_account,
                    )
                    .await?;
                    let next = successor(successor_generation);
                    let rotation = Rotation {
                        session_id: session.id,
                        presented: lookup.hash.clone(),
                        presented_generation: token.generation,
                        successor: self.refresh_keys.hash(&next),
                        now,
                        client_ip: ctx.client_ip.clone(),
                    };
                    match self.store.rotate(&rotation).await? {
                        RotateOutcome::Rotated => {
                            self.metrics.refresh(RefreshOutcome::Rotated);
                            return self.issue(subject, next, now);
                        }
                        RotateOutcome::Conflict => continue,
                    }
                }
            }
        }
        Err(AuthError::Internal(
            "refresh rotation did not settle".into(),
        ))
    }
}
