//! Webhooks for security events: the store queues a message per endpoint in the same
//! transaction as each event that is sent (see [`latchkey_core::webhook`]), and the
//! [`WebhookWorker`] posts them, signed as Standard Webhooks says, with the retries and
//! leases of [`crate::outbox`] (shared with mail), giving up `LATCHKEY_WEBHOOK_GIVE_UP_AFTER`
//! after the event. `latchkey webhooks test` posts a test message at once ([`send_test`]).

pub mod config;
mod sender;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_core::retry::RetryPolicy;
use latchkey_core::store::{DeliveryAttempt, QueuedWebhook, Store, StoreError};
use latchkey_core::time::Timestamp;
use latchkey_core::webhook::{new_message_id, next_delivery, test_body, DeliveryPolicy};
use tokio::sync::Notify;

pub use config::{WebhookConfig, WebhookUrl};

use crate::clock::{self, Clock};
use crate::config::values::ConfigError;
use crate::outbox::{Courier, Failure, Schedule};
use crate::telemetry::Metrics;
use config::origin_of;
use sender::Sender;

/// The longest wait between two attempts at one message.
const BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// Why webhooks could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSetupError {
    /// A setting, or the secret file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS settings.
    #[error("webhooks: TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The endpoints could not be stored.
    #[error("webhooks: {0}")]
    Store(#[from] StoreError),
}

/// The worker that posts what the webhook outbox holds.
pub struct WebhookWorker {
    store: Arc<dyn Store>,
    sender: Sender,
    policy: DeliveryPolicy,
    poll: Duration,
    lease: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for WebhookWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookWorker")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl WebhookWorker {
    /// Store the configured endpoints (so events are queued for them from now on, and
    /// messages for endpoints no longer configured are given up) and make the worker,
    /// or `None` without endpoints.
    pub async fn start(
        config: &WebhookConfig,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Self>, WebhookSetupError> {
        store
            .set_webhook_endpoints(&config.endpoints(), clock::now())
            .await?;
        let Some(signer) = config.signer()?.filter(|_| !config.webhook_url.is_empty()) else {
            return Ok(None);
        };
        let origins: Vec<String> = config.webhook_url.iter().map(WebhookUrl::origin).collect();
        tracing::info!(endpoints = ?origins, "webhooks: posting security events");
        Ok(Some(Self {
            store,
            sender: Sender::new(signer, config.webhook_timeout.0)?,
            policy: DeliveryPolicy {
                backoff: RetryPolicy {
                    max_attempts: u32::MAX,
                    base: config.webhook_retry_base.0,
                    cap: BACKOFF_CAP,
                },
                give_up_after: config.webhook_give_up_after.0,
            },
            poll: config.webhook_poll.0,
            lease: config.webhook_timeout.0 + Duration::from_secs(60),
            metrics,
        }))
    }

    /// Post what is due by `clock`, then wait for the next poll, for ever.
    pub async fn run(self, clock: Clock) {
        let schedule = Schedule {
            poll: self.poll,
            lease: self.lease,
            batch: 32,
            concurrency: 8,
        };
        // Nothing rings it: events are recorded by many use cases, and the poll is short.
        crate::outbox::run(self, Arc::new(Notify::new()), schedule, clock).await;
    }
}

/// A fraction in `0..1` from the system's random numbers, to spread retries.
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[async_trait]
impl Courier for WebhookWorker {
    type Item = QueuedWebhook;

    const NAME: &'static str = "webhook";

    async fn claim(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<QueuedWebhook>, StoreError> {
        self.store.claim_webhooks(now, lease_until, limit).await
    }

    async fn deliver(&self, message: &QueuedWebhook) -> Result<(), Failure> {
        self.sender
            .post(&message.endpoint, &message.message_id, &message.body)
            .await
            .map(drop)
    }

    fn retry_at(
        &self,
        message: &QueuedWebhook,
        failure: &Failure,
        now: Timestamp,
    ) -> Option<Timestamp> {
        next_delivery(
            message.attempts.saturating_add(1),
            message.created_at,
            now,
            failure.retry_after,
            jitter(),
            &self.policy,
        )
    }

    async fn settle(
        &self,
        message: &QueuedWebhook,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if !self.store.settle_webhook(message, attempt, now).await? {
            tracing::warn!(item = %self.describe(message), "webhook: the lease ran out before the attempt was recorded; another worker has the message");
        }
        Ok(())
    }

    fn describe(&self, message: &QueuedWebhook) -> String {
        format!(
            "{} {} to {}",
            message.message_id,
            message.event_type,
            origin_of(&message.endpoint)
        )
    }

    fn observe(&self, attempt: &DeliveryAttempt) {
        self.metrics.webhook_delivery(match attempt {
            DeliveryAttempt::Sent => "delivered",
            DeliveryAttempt::Retry { .. } => "retry",
            DeliveryAttempt::GiveUp { .. } => "failed",
        });
    }
}

/// How a test message fared at one endpoint.
#[derive(Debug)]
pub struct TestDelivery {
    /// The endpoint.
    pub url: String,
    /// The answer's status when 2xx, or why it failed.
    pub outcome: Result<u16, String>,
}

/// Post one signed test message (`webhook.test`) to every configured endpoint now,
/// without the store. Fails when no endpoint or no secret is configured.
pub async fn send_test(config: &WebhookConfig) -> Result<Vec<TestDelivery>, WebhookSetupError> {
    if config.webhook_url.is_empty() {
        return Err(ConfigError {
            setting: "LATCHKEY_WEBHOOK_URL",
            reason: "no webhook endpoint is configured".to_owned(),
        }
        .into());
    }
    let Some(signer) = config.signer()? else {
        return Err(ConfigError {
            setting: "LATCHKEY_WEBHOOK_SECRET_FILE",
            reason: "no signing secret is configured".to_owned(),
        }
        .into());
    };
    let sender = Sender::new(signer, config.webhook_timeout.0)?;
    let id = new_message_id();
    let body = test_body(clock::now());
    let posts = config.webhook_url.iter().map(|url| {
        let (sender, id, body) = (&sender, &id, &body);
        async move {
            let outcome = sender
                .post(url.as_str(), id, body)
                .await
                .map(|status| status.as_u16())
                .map_err(|failure| failure.message);
            TestDelivery {
                url: url.as_str().to_owned(),
                outcome,
            }
        }
    });
    Ok(futures::future::join_all(posts).await)
}
