//! Webhooks for security events, as the Standard Webhooks specification has them:
//! which events are sent and under which `type`, the message body, the signing secret
//! (`whsec_` + base64) and the signature (`v1,` + base64 of HMAC-SHA256 over
//! `{id}.{timestamp}.{body}`), and how long a delivery is retried.
//!
//! The store queues a message per configured endpoint in the same transaction as the
//! event ([`webhook_type`] says which events); the server's worker signs and posts it.

use std::fmt;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;

use crate::audit::{SecurityEvent, SecurityEventKind};
use crate::device::Device;
use crate::model::Email;
use crate::retry::RetryPolicy;
use crate::time::Timestamp;

/// The `type` of the message `latchkey webhooks test` sends.
pub const TEST_TYPE: &str = "webhook.test";

/// The webhook `type` of an event, or `None` if the event is not sent. Types are
/// grouped as the specification recommends (`user.`, `session.`, `mfa.`).
pub fn webhook_type(event: &SecurityEvent) -> Option<&'static str> {
    use SecurityEventKind as Kind;
    Some(match event.kind {
        Kind::NewDevice => "session.new_device",
        Kind::RefreshReuseDetected => "session.refresh_reuse_detected",
        Kind::PasswordChanged => "user.password_changed",
        Kind::UserDisabled => "user.disabled",
        // Only for an account that exists: guesses at unknown addresses lock nothing.
        Kind::LoginCeilingReached if event.user_id.is_some() => "user.login_ceiling_reached",
        Kind::MfaEnrolled => "mfa.enrolled",
        Kind::MfaConfirmed => "mfa.confirmed",
        Kind::MfaDisabled => "mfa.disabled",
        Kind::MfaReset => "mfa.reset",
        Kind::RecoveryCodesRegenerated => "mfa.recovery_codes_regenerated",
        Kind::RecoveryCodeUsed => "mfa.recovery_code_used",
        _ => return None,
    })
}

/// A fresh message id (`msg_` and 32 hex digits): the same for every endpoint and every
/// retry of one message, so receivers can use it as an idempotency key.
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

/// What a message says about an event: who, which session, from where. Never a token,
/// secret or password.
#[derive(Debug, Serialize)]
struct EventData<'a> {
    user_id: Option<String>,
    email: Option<&'a str>,
    session_id: Option<String>,
    ip: Option<&'a str>,
    device: Option<String>,
}

#[derive(Serialize)]
struct Body<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: String,
    data: T,
}

fn body(kind: &str, at: Timestamp, data: impl Serialize) -> String {
    let body = Body {
        kind,
        timestamp: at.to_rfc3339(),
        data,
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// The body of the message for `event` under `kind` (its [`webhook_type`]), with the
/// account's address as it is now: `{"type", "timestamp", "data": {"user_id", "email",
/// "session_id", "ip", "device"}}`, absent values as `null`.
pub fn event_body(kind: &str, event: &SecurityEvent, email: Option<&Email>) -> String {
    let device = event
        .user_agent
        .as_deref()
        .map(|ua| Device::of(Some(ua), None).name);
    let data = EventData {
        user_id: event.user_id.map(|id| id.to_string()),
        email: email.map(Email::as_str),
        session_id: event.session_id.map(|id| id.to_string()),
        ip: event.client_ip.as_deref(),
        device,
    };
    body(kind, event.at, data)
}

/// The body of the test message.
pub fn test_body(at: Timestamp) -> String {
    #[derive(Serialize)]
    struct TestData {
        message: &'static str,
    }
    let data = TestData {
        message: "a test message from `latchkey webhooks test`",
    };
    body(TEST_TYPE, at, data)
}

/// Why a webhook secret was refused (never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// There is no secret.
    #[error("no secret given")]
    Missing,
    /// The text is not `whsec_` followed by base64.
    #[error("a secret must be whsec_ followed by base64 (as `echo whsec_$(openssl rand -base64 32)` makes)")]
    Format,
    /// The decoded secret is shorter than 24 or longer than 64 bytes.
    #[error("a secret must decode to 24 to 64 bytes (the specification's bounds)")]
    Length,
}

/// The signing secrets: the first is the current one; with more (during a rotation)
/// every one signs, so receivers that know either accept the message.
#[derive(Clone)]
pub struct WebhookSigner {
    keys: Vec<hmac::Key>,
}

impl fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSigner({} secret(s), redacted)", self.keys.len())
    }
}

impl WebhookSigner {
    /// The secrets in `text`, separated by white space, each `whsec_` + base64.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let keys = text
            .split_whitespace()
            .map(|secret| {
                let encoded = secret.strip_prefix("whsec_").ok_or(SecretError::Format)?;
                let raw = STANDARD.decode(encoded).map_err(|_| SecretError::Format)?;
                if !(24..=64).contains(&raw.len()) {
                    return Err(SecretError::Length);
                }
                Ok(hmac::Key::new(hmac::HMAC_SHA256, &raw))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SecretError::Missing);
        }
        Ok(Self { keys })
    }

    /// The `webhook-signature` header of message `id` sent at `timestamp` (Unix seconds)
    /// with `body`: `v1,<base64>` per secret, separated by spaces.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let signed = format!("{id}.{timestamp}.{body}");
        let signatures: Vec<String> = self
            .keys
            .iter()
            .map(|key| {
                let tag = hmac::sign(key, signed.as_bytes());
                format!("v1,{}", STANDARD.encode(tag.as_ref()))
            })
            .collect();
        signatures.join(" ")
    }
}

/// How long and how often a message is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// The back-off between attempts (the same rule as mail).
    pub backoff: RetryPolicy,
    /// After this long since the event, a message is given up.
    pub give_up_after: Duration,
}

/// When to try a message queued at `queued_at` again after its `attempts`-th failed
/// attempt, or `None` to give up: the back-off wait, stretched by `jitter` (a fraction
/// in `0..1`, adding up to a tenth) and by the receiver's `Retry-After` if longer
/// (within the back-off's cap); never later than `give_up_after` after `queued_at`.
pub fn next_delivery(
    attempts: u32,
    queued_at: Timestamp,
    now: Timestamp,
    retry_after: Option<Duration>,
    jitter: f64,
    policy: &DeliveryPolicy,
) -> Option<Timestamp> {
    let wait = policy.backoff.wait_after(attempts)?;
    let wait = wait.saturating_add(wait.mul_f64(jitter.clamp(0.0, 1.0) / 10.0));
    let wait = retry_after.map_or(wait, |asked| wait.max(asked.min(policy.backoff.cap)));
    let at = now.plus(wait);
    (at <= queued_at.plus(policy.give_up_after)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;

    fn event(kind: SecurityEventKind, user: Option<UserId>) -> SecurityEvent {
        SecurityEvent {
            at: Timestamp::from_unix_millis(1_796_124_440_123),
            kind,
            user_id: user,
            session_id: None,
            client_ip: Some("203.0.113.9".to_owned()),
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".to_owned(),
            ),
            detail: Some("secret detail".to_owned()),
        }
    }

    #[test]
    fn only_security_changes_are_sent() {
        let user = Some(UserId::generate());
        let sent: Vec<&str> = SecurityEventKind::ALL
            .into_iter()
            .filter_map(|kind| webhook_type(&event(kind, user)))
            .collect();
        assert_eq!(
            sent,
            [
                "session.refresh_reuse_detected",
                "session.new_device",
                "user.password_changed",
                "user.disabled",
                "user.login_ceiling_reached",
                "mfa.enrolled",
                "mfa.confirmed",
                "mfa.disabled",
                "mfa.recovery_code_used",
                "mfa.recovery_codes_regenerated",
                "mfa.reset",
            ]
        );
        let unknown = event(SecurityEventKind::LoginCeilingReached, None);
        assert_eq!(webhook_type(&unknown), None);
        for kind in sent.iter().chain([&TEST_TYPE]) {
            assert!(kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._".contains(c)));
        }
    }

    #[test]
    fn the_body_names_the_account_and_device_but_no_detail() {
        let user = UserId::generate();
        let email = Email::parse("ann@example.com").unwrap();
        let event = event(SecurityEventKind::NewDevice, Some(user));
        let body = event_body("session.new_device", &event, Some(&email));
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "type": "session.new_device",
                "timestamp": "2026-12-01T11:27:20.123Z",
                "data": {
                    "user_id": user.to_string(),
                    "email": "ann@example.com",
                    "session_id": null,
                    "ip": "203.0.113.9",
                    "device": "Firefox on Linux",
                }
            })
        );
        assert!(
            !body.contains("secret detail") && !body.contains('\n'),
            "{body}"
        );
    }

    /// The specification's own example (the JavaScript and Python libraries' tests).
    #[test]
    fn signatures_match_the_reference_example() {
        let signer = WebhookSigner::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signer.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_secret_signs_during_a_rotation() {
        let both = WebhookSigner::parse(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        )
        .unwrap();
        let header = both.sign("msg_1", 1, "{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert!(!format!("{both:?}").contains("MfKQ"));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert_eq!(
            WebhookSigner::parse("  ").unwrap_err(),
            SecretError::Missing
        );
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!"] {
            assert_eq!(WebhookSigner::parse(bad).unwrap_err(), SecretError::Format);
        }
        let short = format!("whsec_{}", STANDARD.encode([1u8; 16]));
        assert_eq!(
            WebhookSigner::parse(&short).unwrap_err(),
            SecretError::Length
        );
    }

    #[test]
    fn deliveries_back_off_then_give_up_after_the_window() {
        let policy = DeliveryPolicy {
            backoff: RetryPolicy {
                max_attempts: u32::MAX,
                base: Duration::from_secs(5),
                cap: Duration::from_secs(3600),
            },
            give_up_after: Duration::from_secs(3 * 24 * 3600),
        };
        let queued = Timestamp::from_unix_millis(0);
        let wait = |attempts, now: Timestamp, retry_after, jitter| {
            next_delivery(attempts, queued, now, retry_after, jitter, &policy)
                .map(|at| at.duration_since(now))
        };
        assert_eq!(wait(1, queued, None, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(wait(2, queued, None, 0.0), Some(Duration::from_secs(10)));
        let jittered = wait(2, queued, None, 0.999).unwrap();
        assert!(jittered > Duration::from_secs(10) && jittered < Duration::from_secs(11));
        assert_eq!(wait(30, queued, None, 0.0), Some(Duration::from_secs(3600)));
        // A longer Retry-After is honoured up to the cap.
        let asked = Some(Duration::from_secs(120));
        assert_eq!(wait(1, queued, asked, 0.0), Some(Duration::from_secs(120)));
        let huge = Some(Duration::from_secs(86_400));
        assert_eq!(wait(1, queued, huge, 0.0), Some(Duration::from_secs(3600)));
        // Nothing is scheduled past the window.
        let late = queued
            .plus(policy.give_up_after)
            .minus(Duration::from_secs(60));
        assert_eq!(wait(30, late, None, 0.0), None);
        assert_eq!(wait(1, late, None, 0.0), Some(Duration::from_secs(5)));
    }
}
