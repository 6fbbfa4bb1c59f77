//! What webhooks need from storage: the endpoints, and the outbox of messages to them.
//! Re-exported from [`crate::store`].
//!
//! The outbox is written by [`crate::store::AuditLog::record_event`] (and every other
//! method that records an event) in the same transaction as the event: one message per
//! endpoint for each event [`crate::webhook::webhook_type`] names. Workers on any number
//! of replicas claim due messages with a lease (a compare-and-set: one claimer wins
//! each), post them and settle them, fenced by that lease.

use async_trait::async_trait;

use crate::store::{DeliveryAttempt, StoreError};
use crate::time::Timestamp;

/// A message claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedWebhook {
    /// Its row in the outbox.
    pub id: i64,
    /// Where it goes.
    pub endpoint: String,
    /// The `webhook-id`, the same for every endpoint and retry.
    pub message_id: String,
    /// Its `type`.
    pub event_type: String,
    /// The JSON body, exactly as signed and sent.
    pub body: String,
    /// When the event happened.
    pub created_at: Timestamp,
    /// Attempts so far, this one not counted.
    pub attempts: u32,
    /// The lease this claim holds; settling is refused once another claim replaced it.
    pub lease_until: Timestamp,
}

/// A message not delivered (yet), for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// Its row in the outbox.
    pub id: i64,
    /// Where it goes.
    pub endpoint: String,
    /// The `webhook-id`.
    pub message_id: String,
    /// Its `type`.
    pub event_type: String,
    /// When the event happened.
    pub created_at: Timestamp,
    /// Attempts so far.
    pub attempts: u32,
    /// When it is tried next (or its lease ends); `None` once given up.
    pub next_attempt_at: Option<Timestamp>,
    /// When it was given up.
    pub failed_at: Option<Timestamp>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// Webhook endpoints and the outbox of messages to them.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Make `endpoints` the endpoints events are queued for from now on. Messages still
    /// queued for any other endpoint are given up (recorded as failed at `now`), in the
    /// same transaction.
    async fn set_webhook_endpoints(
        &self,
        endpoints: &[String],
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Claim up to `limit` messages due at `now`, oldest first, each leased until
    /// `lease_until`: a message is handed to one claimer only, and again only once its
    /// lease has ended.
    async fn claim_webhooks(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<QueuedWebhook>, StoreError>;
    /// Record how an attempt ended, if `claim`'s lease still holds. Returns false, and
    /// changes nothing, if it does not (the message was claimed again after the lease
    /// ended, or settled).
    async fn settle_webhook(
        &self,
        claim: &QueuedWebhook,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Messages queued or given up, newest first.
    async fn undelivered_webhooks(&self, limit: u32) -> Result<Vec<WebhookDelivery>, StoreError>;
    /// Delete messages delivered or given up before `settled_before`. Returns how many.
    async fn purge_webhooks(&self, settled_before: Timestamp) -> Result<u64, StoreError>;
}
