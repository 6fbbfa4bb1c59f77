//! The delivery loop every outbox shares (mail, webhook messages): use cases write rows
//! into a table of the store, in the same transaction as the change they tell of, and a
//! worker on each replica claims due rows with a lease (moving their next attempt
//! forward, so no other replica takes them meanwhile), tries each, and records the
//! outcome: delivered, retry at a later time (back-off), or given up and kept as failed.
//! A restart loses nothing: the table is the queue. Delivery is at-least-once (a crash
//! between the delivery and its record repeats it).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use latchkey_core::store::{DeliveryAttempt, StoreError};
use latchkey_core::time::Timestamp;
use tokio::sync::Notify;

use crate::clock::Clock;

/// A failed attempt: why, whether trying again could help, and how long the other side
/// asked us to wait (`Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) permanent: bool,
    pub(crate) message: String,
    pub(crate) retry_after: Option<Duration>,
}

impl Failure {
    /// A failure that a retry may cure.
    pub(crate) fn transient(message: impl Into<String>) -> Self {
        Self {
            permanent: false,
            message: short(&message.into()),
            retry_after: None,
        }
    }

    /// A failure no retry cures.
    pub(crate) fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::transient(message)
        }
    }
}

/// At most 300 characters of an error, for the store and the log.
fn short(message: &str) -> String {
    message.chars().take(300).collect()
}

/// One kind of outbox: how its rows are claimed, delivered, rescheduled and settled.
#[async_trait]
pub(crate) trait Courier: Send + Sync + 'static {
    /// A claimed row.
    type Item: Send + Sync + 'static;

    /// The outbox's name in logs (`mail`, `webhook`).
    const NAME: &'static str;

    /// Claim up to `limit` rows due at `now`, leased until `lease_until`.
    async fn claim(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Self::Item>, StoreError>;

    /// Try to deliver one row.
    async fn deliver(&self, item: &Self::Item) -> Result<(), Failure>;

    /// After `failure` (not permanent), when to try `item` again; `None` to give up.
    fn retry_at(&self, item: &Self::Item, failure: &Failure, now: Timestamp) -> Option<Timestamp>;

    /// Record how an attempt ended.
    async fn settle(
        &self,
        item: &Self::Item,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// What to call `item` in the log (its id and kind; never its content).
    fn describe(&self, item: &Self::Item) -> String;

    /// Told each attempt's outcome (for metrics).
    fn observe(&self, _attempt: &DeliveryAttempt) {}
}

/// How a worker polls and how much it takes on at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    /// How often it looks for due rows when nothing wakes it.
    pub(crate) poll: Duration,
    /// How long a claimed row is not handed out again; longer than one delivery takes.
    pub(crate) lease: Duration,
    /// Rows claimed at once.
    pub(crate) batch: u32,
    /// Rows of a batch tried at the same time.
    pub(crate) concurrency: usize,
}

/// Deliver what is due, then wait for `wake` or the next poll, for ever.
pub(crate) async fn run<C: Courier>(
    courier: C,
    wake: Arc<Notify>,
    schedule: Schedule,
    clock: Clock,
) {
    let poll = schedule.poll.max(Duration::from_millis(20));
    loop {
        drain(&courier, schedule, &clock).await;
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// Deliver every row due now, batch by batch.
async fn drain<C: Courier>(courier: &C, schedule: Schedule, clock: &Clock) {
    loop {
        let now = clock.now();
        let batch = match courier
            .claim(now, now.plus(schedule.lease), schedule.batch)
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(outbox = C::NAME, error = %e, "could not read the outbox");
                return;
            }
        };
        if batch.is_empty() {
            return;
        }
        futures::stream::iter(&batch)
            .for_each_concurrent(schedule.concurrency.max(1), |item| {
                attempt(courier, item, clock)
            })
            .await;
    }
}

/// Try one row and record the outcome.
async fn attempt<C: Courier>(courier: &C, item: &C::Item, clock: &Clock) {
    let outcome = match courier.deliver(item).await {
        Ok(()) => {
            tracing::debug!(outbox = C::NAME, item = %courier.describe(item), "delivered");
            DeliveryAttempt::Sent
        }
        Err(failure) => {
            let now = clock.now();
            let retry_at = (!failure.permanent)
                .then(|| courier.retry_at(item, &failure, now))
                .flatten();
            let item = courier.describe(item);
            match retry_at {
                Some(at) => {
                    tracing::warn!(outbox = C::NAME, %item, error = %failure.message, "delivery failed; will retry");
                    DeliveryAttempt::Retry {
                        at,
                        error: failure.message,
                    }
                }
                None => {
                    tracing::error!(outbox = C::NAME, %item, error = %failure.message, "delivery failed; given up and recorded as failed");
                    DeliveryAttempt::GiveUp {
                        error: failure.message,
                    }
                }
            }
        }
    };
    courier.observe(&outcome);
    if let Err(e) = courier.settle(item, &outcome, clock.now()).await {
        tracing::warn!(outbox = C::NAME, item = %courier.describe(item), error = %e, "could not record a delivery attempt");
    }
}
