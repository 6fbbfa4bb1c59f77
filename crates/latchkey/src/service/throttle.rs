//! The login back-off as the use cases apply it: the keys failures are counted under
//! (per account and client network, and per account over all networks), the check
//! before a password or code is looked at, and the count after a wrong one. The rule
//! itself is [`latchkey_core::lockout`]; the counts live in a
//! [`FailureStore`](crate::login_failures::FailureStore).

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::model::Email;
use latchkey_core::time::Timestamp;

use super::{AuthError, AuthService, RequestContext};
use crate::ratelimit::RateDecision;

/// The keys a login's failures are counted under.
pub(super) struct FailureKeys {
    /// This account from this client network.
    pub(super) network: String,
    /// This account from anywhere: the ceiling against distributed guessing.
    pub(super) account: String,
    /// The address tried.
    email: Email,
}

impl FailureKeys {
    pub(super) fn of(email: &Email, ctx: &RequestContext) -> Self {
        Self {
            network: format!("login-failures:{email}:{}", ctx.network()),
            account: format!("login-failures:{email}"),
            email: email.clone(),
        }
    }
}

impl AuthService {
    /// Refuse a login while the per-IP limit or the failure back-off says wait, with the
    /// longest of their waits.
    pub(super) async fn check_login_limits(
        &self,
        keys: Option<&FailureKeys>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        let ip_key = format!("login:ip:{}", ctx.ip_bucket());
        let mut wait = match self
            .limiter
            .check(&ip_key, self.policy.limits.login_per_ip)
            .await
        {
            RateDecision::Allowed => None,
            RateDecision::Limited { retry_after } => Some(retry_after),
        };
        if let Some(keys) = keys {
            let limits = &self.policy.limits;
            let from_here = self.failures.get(&keys.network).await;
            let anywhere = self.failures.get(&keys.account).await;
            let backoff = [
                limits.login_failures.wait(from_here.as_ref(), now),
                limits
                    .login_failures_per_account
                    .wait(anywhere.as_ref(), now),
            ];
            wait = wait.into_iter().chain(backoff.into_iter().flatten()).max();
        }
        match wait {
            Some(retry_after) => Err(AuthError::RateLimited { retry_after }),
            None => Ok(()),
        }
    }

    /// Count a failed password under both keys; the account's ceiling being reached is
    /// an event of its own.
    pub(super) async fn count_failure(
        &self,
        keys: &FailureKeys,
        ctx: &RequestContext,
        now: Timestamp,
    ) {
        let limits = &self.policy.limits;
        self.failures
            .record(&keys.network, &limits.login_failures, now)
            .await;
        let anywhere = self
            .failures
            .record(&keys.account, &limits.login_failures_per_account, now)
            .await;
        if anywhere.failures == limits.login_failures_per_account.free_failures {
            tracing::warn!(
                failures = anywhere.failures,
                "an account reached its ceiling of failed logins; logins to it now back off"
            );
            let mut event = self.event(SecurityEventKind::LoginCeilingReached, ctx, now);
            // Whose account, when the address has one (the webhook names it).
            event.user_id = match self.store.user_by_email(&keys.email).await {
                Ok(user) => user.map(|u| u.id),
                Err(e) => {
                    tracing::warn!(error = %e, "could not look up the account at its failure ceiling");
                    None
                }
            };
            event.detail = Some(format!("failures={}", anywhere.failures));
            self.record(event).await;
        }
    }
}
