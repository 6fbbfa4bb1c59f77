//! Mail delivery, off the request path: use cases write mail into the store's outbox
//! (in the same transaction as the change it tells of, where there is one) and the
//! [`Outbox`] worker sends it, with retries and back-off, through SMTP or, with no SMTP
//! server configured, as `.eml` files into a directory. A mail that fails for good is
//! logged and recorded as failed in the outbox. Nothing is lost on a restart: the
//! outbox is the queue. The claiming, leasing and retrying are [`crate::outbox`]'s,
//! shared with webhooks.
//!
//! Payloads (recipient and template values, links included) are sealed in the outbox and
//! dropped once a mail is settled; see [`latchkey_core::email::EmailKeys`].

pub mod config;
mod templates;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_core::email::EmailKeys;
use latchkey_core::retry::{next_attempt, RetryPolicy};
use latchkey_core::store::{DeliveryAttempt, QueuedMail, Store, StoreError};
use latchkey_core::time::Timestamp;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

pub use config::{MailConfig, SmtpUrl};
pub use templates::{TemplateError, Templates};

use crate::clock::Clock;
use crate::outbox::{Courier, Failure, Schedule};

/// How long a claimed mail is not handed out again (to this or another replica) while
/// it is being sent.
const LEASE: Duration = Duration::from_secs(120);

/// What the outbox holds for a mail, sealed: the recipient and the template values.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Payload {
    /// The recipient's address.
    pub(crate) to: String,
    /// The values the templates see.
    pub(crate) vars: serde_json::Value,
}

/// Why mail delivery could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailSetupError {
    /// A template does not parse.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The SMTP URL is not usable.
    #[error("LATCHKEY_SMTP_URL: {0}")]
    Smtp(String),
    /// The mail directory cannot be made.
    #[error("LATCHKEY_MAIL_DIR {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `LATCHKEY_MAIL_FROM` is not an address.
    #[error("LATCHKEY_MAIL_FROM is not an address")]
    From,
}

/// Where mail goes.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl Transport {
    /// The transport the settings name, with a sentence for the start-up log.
    fn from_config(config: &MailConfig) -> Result<(Self, String), MailSetupError> {
        match &config.smtp_url {
            Some(url) => {
                let mut raw = url.expose().to_owned();
                // Credentials never travel in clear: STARTTLS is required with them.
                if raw.starts_with("smtp://") && url.has_credentials() && !raw.contains("tls=") {
                    raw.push_str(if raw.contains('?') { "&" } else { "?" });
                    raw.push_str("tls=required");
                }
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&raw)
                    .map_err(|e| MailSetupError::Smtp(e.to_string()))?
                    .timeout(Some(Duration::from_secs(20)))
                    .build();
                let security = if raw.starts_with("smtps://") {
                    "TLS"
                } else if raw.contains("tls=required") {
                    "STARTTLS"
                } else {
                    "no TLS"
                };
                let note = format!("mail: sending through {} ({security})", url.redacted());
                Ok((Self::Smtp(transport), note))
            }
            None => {
                let dir = &config.mail_dir;
                std::fs::create_dir_all(dir).map_err(|source| MailSetupError::Directory {
                    path: dir.display().to_string(),
                    source,
                })?;
                let note = format!(
                    "mail: no LATCHKEY_SMTP_URL set; writing each mail as an .eml file into {}",
                    dir.display()
                );
                Ok((Self::Files(AsyncFileTransport::new(dir)), note))
            }
        }
    }

    async fn send(&self, message: Message) -> Result<(), Failure> {
        match self {
            Self::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| {
                if e.is_permanent() {
                    Failure::permanent(e.to_string())
                } else {
                    Failure::transient(e.to_string())
                }
            }),
            Self::Files(files) => files
                .send(message)
                .await
                .map(drop)
                .map_err(|e| Failure::transient(e.to_string())),
        }
    }
}

/// The worker that sends what the outbox holds.
pub struct Outbox {
    store: Arc<dyn Store>,
    keys: Arc<EmailKeys>,
    transport: Transport,
    templates: Templates,
    from: Mailbox,
    retry: RetryPolicy,
    poll: Duration,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("from", &self.from)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Set up delivery as `config` says and log, once, where mail goes. `wake` is the
    /// signal the use cases give when they queue mail.
    pub fn new(
        config: &MailConfig,
        store: Arc<dyn Store>,
        keys: Arc<EmailKeys>,
        wake: Arc<Notify>,
    ) -> Result<Self, MailSetupError> {
        let templates = Templates::load(config.mail_templates.as_deref())?;
        let from = config
            .mail_from
            .parse::<Mailbox>()
            .map_err(|_| MailSetupError::From)?;
        let (transport, note) = Transport::from_config(config)?;
        tracing::info!("{note}");
        Ok(Self {
            store,
            keys,
            transport,
            templates,
            from,
            retry: RetryPolicy {
                max_attempts: config.mail_max_attempts,
                base: config.mail_retry_base.0,
                cap: Duration::from_secs(3600),
            },
            poll: config.mail_poll.0.max(Duration::from_millis(50)),
            wake,
        })
    }

    /// Send what is due by `clock`, then wait for new mail or the next poll, for ever.
    pub async fn run(self, clock: Clock) {
        let wake = self.wake.clone();
        let schedule = Schedule {
            poll: self.poll,
            lease: LEASE,
            batch: 16,
            concurrency: 1,
        };
        crate::outbox::run(self, wake, schedule, clock).await;
    }

    /// The message a queued mail stands for.
    fn message(&self, mail: &QueuedMail) -> Result<Message, Failure> {
        let plain = self
            .keys
            .open(&mail.payload)
            .map_err(|e| Failure::permanent(e.to_string()))?;
        let payload: Payload = serde_json::from_slice(&plain)
            .map_err(|_| Failure::permanent("the payload is not readable"))?;
        let to = payload
            .to
            .parse::<Mailbox>()
            .map_err(|_| Failure::permanent("the recipient is not an address"))?;
        let rendered = self
            .templates
            .render(&mail.kind, &payload.vars)
            .map_err(|e| Failure::permanent(e.to_string()))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| Failure::permanent(e.to_string()))
    }
}

#[async_trait]
impl Courier for Outbox {
    type Item = QueuedMail;

    const NAME: &'static str = "mail";

    async fn claim(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        self.store.claim_mail(now, lease_until, limit).await
    }

    async fn deliver(&self, mail: &QueuedMail) -> Result<(), Failure> {
        self.transport.send(self.message(mail)?).await
    }

    fn retry_at(&self, mail: &QueuedMail, _failure: &Failure, now: Timestamp) -> Option<Timestamp> {
        next_attempt(mail.attempts.saturating_add(1), now, &self.retry)
    }

    async fn settle(
        &self,
        mail: &QueuedMail,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.store.settle_mail(mail.id, attempt, now).await
    }

    fn describe(&self, mail: &QueuedMail) -> String {
        format!("mail {} ({})", mail.id, mail.kind)
    }
}
