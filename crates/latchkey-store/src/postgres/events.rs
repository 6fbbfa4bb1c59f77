//! The audit log's writes and pages on PostgreSQL. Recording an event also queues its
//! webhook messages, one per endpoint, on the same connection and so in the caller's
//! transaction.

use latchkey_core::audit::SecurityEvent;
use latchkey_core::model::{Email, UserId};
use latchkey_core::store::{EventPosition, LoggedEvent, StoreError};
use latchkey_core::webhook::{event_body, new_message_id, webhook_type};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::{event_from_row, get, PostgresStore};
use crate::convert::limit_to_db;
use crate::error::map_error;

/// Insert `event` on `conn` (a transaction, or a connection) and queue its webhook
/// messages. Callers that are not in a transaction open one for events that are sent
/// (see [`webhook_type`]).
pub(super) async fn insert_event(
    conn: &mut PgConnection,
    event: &SecurityEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO security_events \
         (at, kind, user_id, session_id, client_ip, user_agent, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(event.at.unix_millis())
    .bind(event.kind.as_str())
    .bind(event.user_id.map(|id| id.as_uuid()))
    .bind(event.session_id.map(|id| id.as_uuid()))
    .bind(event.client_ip.as_deref())
    .bind(event.user_agent.as_deref())
    .bind(event.detail.as_deref())
    .execute(&mut *conn)
    .await
    .map_err(map_error)?;
    queue_webhooks(conn, event).await
}

/// Queue `event`'s message for every endpoint, if it is sent and there are endpoints.
async fn queue_webhooks(conn: &mut PgConnection, event: &SecurityEvent) -> Result<(), StoreError> {
    let Some(kind) = webhook_type(event) else {
        return Ok(());
    };
    let row = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM webhook_endpoints) AS endpoints, \
         (SELECT email FROM users WHERE id = $1) AS email",
    )
    .bind(event.user_id.map(|id| id.as_uuid()))
    .fetch_one(&mut *conn)
    .await
    .map_err(map_error)?;
    if !get::<bool>(&row, "endpoints")? {
        return Ok(());
    }
    let email = get::<Option<String>>(&row, "email")?.map(Email::from_trusted);
    sqlx::query(
        "INSERT INTO webhook_outbox \
         (endpoint, message_id, event_type, body, created_at, attempts, next_attempt_at) \
         SELECT url, $1, $2, $3, $4, 0, $4 FROM webhook_endpoints",
    )
    .bind(new_message_id())
    .bind(kind)
    .bind(event_body(kind, event, email.as_ref()))
    .bind(event.at.unix_millis())
    .execute(&mut *conn)
    .await
    .map_err(map_error)?;
    Ok(())
}

impl PostgresStore {
    /// See [`latchkey_core::store::AuditLog::logged_events`].
    pub(super) async fn logged_events_query(
        &self,
        user: Option<UserId>,
        after: Option<EventPosition>,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT e.id, e.at, e.kind, e.user_id, e.session_id, e.client_ip, e.user_agent, \
             e.detail, u.email FROM security_events e LEFT JOIN users u ON u.id = e.user_id \
             WHERE 1 = 1",
        );
        if let Some(user) = user {
            query.push(" AND e.user_id = ").push_bind(user.as_uuid());
        }
        if let Some(after) = after {
            query
                .push(" AND (e.at, e.id) > (")
                .push_bind(after.at.unix_millis())
                .push(", ")
                .push_bind(after.id)
                .push(") ORDER BY e.at, e.id");
        } else {
            query.push(" ORDER BY e.at DESC, e.id DESC");
        }
        query.push(" LIMIT ").push_bind(limit_to_db(limit));
        let rows = query
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?;
        let mut page = rows
            .iter()
            .map(|row| {
                let event = event_from_row(row)?;
                Ok(LoggedEvent {
                    position: EventPosition {
                        at: event.at,
                        id: get(row, "id")?,
                    },
                    email: get::<Option<String>>(row, "email")?.map(Email::from_trusted),
                    event,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if after.is_none() {
            page.reverse();
        }
        Ok(page)
    }
}
