//! Security notices by mail: "your password was changed", "new sign-in from <device>",
//! "suspicious refresh, session ended", "two-factor sign-in turned off". Each is on by
//! default and switchable; each is queued in the outbox and never makes the action it
//! tells of fail.

use latchkey_core::audit::{SecurityEvent, SecurityEventKind};
use latchkey_core::model::{Email, User, UserId};
use serde_json::{json, Value};

use super::AuthService;

/// Which security notices are mailed.
#[derive(Debug, Clone, Copy)]
pub struct Notices {
    /// "Your password was changed."
    pub password_changed: bool,
    /// "New sign-in from <device>."
    pub new_device: bool,
    /// "Suspicious refresh detected; the session was ended."
    pub reuse: bool,
    /// "Two-factor sign-in was turned off."
    pub mfa_disabled: bool,
}

impl AuthService {
    /// Queue a notice that goes with no other change. A failure is logged, never
    /// returned: a notice must not make the action it tells of fail.
    pub(super) async fn notify(&self, kind: &str, to: &Email, vars: Value) {
        let mail = self.outbox_mail(kind, to, vars, self.clock.now());
        match self.store.enqueue_mail(&mail).await {
            Ok(()) => self.email.mail_queued(),
            Err(e) => tracing::error!(kind, error = %e, "mail: could not queue a notice"),
        }
    }

    /// Queue the notice of `kind` to `user` (at `known`, or the stored address) if that
    /// notice is switched on.
    pub(super) async fn notify_user(
        &self,
        kind: &str,
        user: UserId,
        known: Option<&Email>,
        vars: Value,
    ) {
        let notices = self.policy.email.notices;
        let on = match kind {
            "password_changed" => notices.password_changed,
            "new_device" => notices.new_device,
            "refresh_reuse" => notices.reuse,
            "mfa_disabled" => notices.mfa_disabled,
            _ => true,
        };
        if !on {
            return;
        }
        if let Some(email) = known {
            return self.notify(kind, email, vars).await;
        }
        match self.store.user_by_id(user).await {
            Ok(Some(user)) => self.notify(kind, &user.email, vars).await,
            Ok(None) => {}
            Err(e) => {
                tracing::error!(kind, error = %e, "mail: could not read the user for a notice")
            }
        }
    }

    /// Tell `user` of a sign-in from a new device, unless it is their first sign-in ever
    /// (every device is new then).
    pub(super) async fn notify_new_device(&self, user: &User, event: &SecurityEvent) {
        if !self.policy.email.notices.new_device {
            return;
        }
        let earlier = match self.store.recent_events(Some(user.id), 100).await {
            Ok(events) => events.iter().any(|e| {
                e.kind == SecurityEventKind::LoginSucceeded && e.session_id != event.session_id
            }),
            Err(e) => {
                tracing::error!(error = %e, "mail: could not read events for a notice");
                return;
            }
        };
        if earlier {
            let vars = json!({
                "device": event.detail, "ip": event.client_ip, "at": event.at.to_rfc3339(),
            });
            self.notify_user("new_device", user.id, Some(&user.email), vars)
                .await;
        }
    }

    /// Tell `user` that two-factor sign-in was turned off (by the user; an admin reset
    /// is in the audit log).
    pub(super) async fn notify_mfa_disabled(&self, user: UserId, ctx_ip: Option<&str>) {
        let vars = json!({ "at": self.clock.now().to_rfc3339(), "ip": ctx_ip });
        self.notify_user("mfa_disabled", user, None, vars).await;
    }
}
