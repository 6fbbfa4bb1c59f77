//! Webhook endpoints and the webhook outbox on SQLite. Claims and endpoint changes run
//! in `BEGIN IMMEDIATE` transactions on the one writer, so a claim is a compare-and-set
//! no other writer (in this process or another) can interleave with.

use async_trait::async_trait;
use latchkey_core::store::{
    DeliveryAttempt, QueuedWebhook, StoreError, WebhookDelivery, WebhookStore,
};
use latchkey_core::time::Timestamp;
use sqlx::sqlite::SqliteRow;

use super::{get, SqliteStore};
use crate::convert::{limit_to_db, opt_ts, ts};
use crate::error::map_error;

/// The outbox rows still to deliver.
const PENDING: &str = "delivered_at IS NULL AND failed_at IS NULL";

/// Why the messages of an endpoint that is no longer configured were given up.
const ENDPOINT_REMOVED: &str = "the endpoint is no longer in LATCHKEY_WEBHOOK_URL";

/// Settling a claim, each only while the claim's lease holds (`id`, lease): delivered
/// at `?`; retry at `?` with an error; failed at `?` with an error.
const SETTLE_DELIVERED: &str = "UPDATE webhook_outbox SET delivered_at = ?, body = NULL, \
     attempts = attempts + 1, last_error = NULL \
     WHERE id = ? AND next_attempt_at = ? AND delivered_at IS NULL AND failed_at IS NULL";
const SETTLE_RETRY: &str = "UPDATE webhook_outbox SET next_attempt_at = ?, last_error = ?, \
     attempts = attempts + 1 \
     WHERE id = ? AND next_attempt_at = ? AND delivered_at IS NULL AND failed_at IS NULL";
const SETTLE_FAILED: &str = "UPDATE webhook_outbox SET failed_at = ?, last_error = ?, \
     body = NULL, attempts = attempts + 1 \
     WHERE id = ? AND next_attempt_at = ? AND delivered_at IS NULL AND failed_at IS NULL";

fn attempts_from_db(stored: i64) -> u32 {
    u32::try_from(stored).unwrap_or(u32::MAX)
}

fn queued_from_row(row: &SqliteRow, lease_until: Timestamp) -> Result<QueuedWebhook, StoreError> {
    Ok(QueuedWebhook {
        id: get(row, "id")?,
        endpoint: get(row, "endpoint")?,
        message_id: get(row, "message_id")?,
        event_type: get(row, "event_type")?,
        body: get::<Option<String>>(row, "body")?.unwrap_or_default(),
        created_at: ts(get(row, "created_at")?),
        attempts: attempts_from_db(get(row, "attempts")?),
        lease_until,
    })
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn set_webhook_endpoints(
        &self,
        endpoints: &[String],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_immediate().await?;
        sqlx::query("DELETE FROM webhook_endpoints")
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        for url in endpoints {
            sqlx::query("INSERT INTO webhook_endpoints (url) VALUES (?) ON CONFLICT DO NOTHING")
                .bind(url)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        }
        sqlx::query(&format!(
            "UPDATE webhook_outbox SET failed_at = ?, last_error = ?, body = NULL \
             WHERE {PENDING} AND endpoint NOT IN (SELECT url FROM webhook_endpoints)"
        ))
        .bind(now.unix_millis())
        .bind(ENDPOINT_REMOVED)
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)
    }

    async fn claim_webhooks(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<QueuedWebhook>, StoreError> {
        // Workers poll: look on a reader first, so an empty outbox costs no write lock.
        let due: bool = sqlx::query_scalar(&format!(
            "SELECT EXISTS (SELECT 1 FROM webhook_outbox WHERE {PENDING} \
             AND next_attempt_at <= ?)"
        ))
        .bind(now.unix_millis())
        .fetch_one(&self.reader)
        .await
        .map_err(map_error)?;
        if !due {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_immediate().await?;
        let rows = sqlx::query(&format!(
            "UPDATE webhook_outbox SET next_attempt_at = ?1 WHERE id IN (\
                SELECT id FROM webhook_outbox WHERE {PENDING} AND next_attempt_at <= ?2 \
                ORDER BY next_attempt_at, id LIMIT ?3) \
             RETURNING id, endpoint, message_id, event_type, body, created_at, attempts"
        ))
        .bind(lease_until.unix_millis())
        .bind(now.unix_millis())
        .bind(limit_to_db(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        let mut claimed = rows
            .iter()
            .map(|row| queued_from_row(row, lease_until))
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|m| (m.created_at, m.id));
        Ok(claimed)
    }

    async fn settle_webhook(
        &self,
        claim: &QueuedWebhook,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (sql, value, error) = match attempt {
            DeliveryAttempt::Sent => (SETTLE_DELIVERED, now.unix_millis(), None),
            DeliveryAttempt::Retry { at, error } => {
                (SETTLE_RETRY, at.unix_millis(), Some(error.as_str()))
            }
            DeliveryAttempt::GiveUp { error } => {
                (SETTLE_FAILED, now.unix_millis(), Some(error.as_str()))
            }
        };
        let mut query = sqlx::query(sql).bind(value);
        if let Some(error) = error {
            query = query.bind(error);
        }
        let done = query
            .bind(claim.id)
            .bind(claim.lease_until.unix_millis())
            .execute(&self.writer)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn undelivered_webhooks(&self, limit: u32) -> Result<Vec<WebhookDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, endpoint, message_id, event_type, created_at, attempts, \
             next_attempt_at, failed_at, last_error FROM webhook_outbox \
             WHERE delivered_at IS NULL ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(limit_to_db(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_error)?;
        rows.iter()
            .map(|row| {
                let failed_at = opt_ts(get(row, "failed_at")?);
                Ok(WebhookDelivery {
                    id: get(row, "id")?,
                    endpoint: get(row, "endpoint")?,
                    message_id: get(row, "message_id")?,
                    event_type: get(row, "event_type")?,
                    created_at: ts(get(row, "created_at")?),
                    attempts: attempts_from_db(get(row, "attempts")?),
                    next_attempt_at: failed_at
                        .is_none()
                        .then(|| get(row, "next_attempt_at").map(ts))
                        .transpose()?,
                    failed_at,
                    last_error: get(row, "last_error")?,
                })
            })
            .collect()
    }

    async fn purge_webhooks(&self, settled_before: Timestamp) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM webhook_outbox WHERE coalesce(delivered_at, failed_at) < ?")
                .bind(settled_before.unix_millis())
                .execute(&self.writer)
                .await
                .map_err(map_error)?;
        Ok(done.rows_affected())
    }
}
