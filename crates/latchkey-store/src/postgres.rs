//! The PostgreSQL backend, for running several Latchkey replicas on one database.
//!
//! Every state change that races (rotation, revocation, first key, secrets) is a
//! conditional statement whose affected-row count decides the outcome, inside one
//! READ COMMITTED transaction: a concurrent loser blocks on the winner's row lock, then
//! re-checks its `WHERE` clause against the committed row, matches nothing, and reports
//! a conflict rather than an error. Transactions that lock both a session and its
//! tokens always lock the session first, so they cannot deadlock each other. Rotations,
//! the hot path, are applied in batches, one statement each (`postgres/rotation_batch.rs`);
//! so are the refresh path's state reads (`postgres/state_batch.rs`).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_core::audit::SecurityEvent;
use latchkey_core::model::{Email, RefreshState, Role, Session, SessionId, User, UserId};
use latchkey_core::refresh::RefreshTokenLookup;
use latchkey_core::store::{
    AuditLog, CreateSessionOutcome, EventPosition, LoggedEvent, Maintenance, NewSession,
    PasswordChange, RotateOutcome, Rotation, SessionDetails, SessionRevocation, SessionStore,
    StoreError, UserDeletion, UserStore, UserUpdate, UserUpdateOutcome,
};
use latchkey_core::time::Timestamp;
use latchkey_core::webhook::webhook_type;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Decode, Postgres, Row, Type};
use uuid::Uuid;

use crate::convert::{
    event_kind_from_db, generation_from_db, limit_to_db, opt_ts, roles_from_db, roles_to_db, ts,
    KIND_SESSION,
};
use crate::error::{map_error, map_migrate_error};
use crate::migrations;

mod accounts;
mod batch_queue;
mod email;
mod events;
mod keys;
mod mfa;
mod registration;
mod revocations;
mod rotation_batch;
mod sealed;
mod state_batch;
mod webhooks;

use events::insert_event;
use revocations::append_revocation;
use rotation_batch::RotationBatcher;
use state_batch::StateBatcher;

/// Connection settings of the PostgreSQL backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresSettings {
    /// Size of the connection pool.
    pub max_connections: u32,
    /// How long an operation waits for a connection before it fails as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL implementation of [`latchkey_core::store::Store`]. Cheap to clone
/// (the clones share the pool).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Reads refresh-token states in batches (`postgres/state_batch.rs`).
    states: StateBatcher,
    /// Applies rotations in batches (`postgres/rotation_batch.rs`).
    rotations: RotationBatcher,
}

impl PostgresStore {
    /// Connect to the database named by `url` (`postgres://user:password@host/db`).
    /// Does not migrate; see [`PostgresStore::migrate`].
    pub async fn connect(url: &str, options: PostgresSettings) -> Result<Self, StoreError> {
        let connect_options = PgConnectOptions::from_str(url)
            .map_err(map_error)?
            .application_name("latchkey");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect_options)
            .await
            .map_err(map_error)?;
        let states = state_batch::start(pool.clone());
        let rotations = rotation_batch::start(pool.clone());
        Ok(Self {
            pool,
            states,
            rotations,
        })
    }

    /// Apply the embedded schema migrations that have not run yet. Safe to call from
    /// several replicas at once (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::POSTGRES
            .migrator()
            .await?
            .run(&self.pool)
            .await
            .map_err(map_migrate_error)
    }

    /// Close all connections, waiting for running operations to finish. Later calls
    /// fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Read column `column` of `row`, mapping failures to a [`StoreError`].
fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(column).map_err(map_error)
}

fn user_from_row(row: &PgRow) -> Result<User, StoreError> {
    Ok(User {
        id: UserId::from(get::<Uuid>(row, "id")?),
        email: Email::from_trusted(get(row, "email")?),
        password_hash: get(row, "password_hash")?,
        roles: roles_from_db(&get::<String>(row, "roles")?)?,
        created_at: ts(get(row, "created_at")?),
        disabled_at: opt_ts(get(row, "disabled_at")?),
    })
}

fn session_from_row(row: &PgRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: SessionId::from(get::<Uuid>(row, "id")?),
        user_id: UserId::from(get::<Uuid>(row, "user_id")?),
        created_at: ts(get(row, "created_at")?),
        latest_generation: generation_from_db(get(row, "latest_generation")?)?,
        revoked_at: opt_ts(get(row, "revoked_at")?),
    })
}

fn event_from_row(row: &PgRow) -> Result<SecurityEvent, StoreError> {
    Ok(SecurityEvent {
        at: ts(get(row, "at")?),
        kind: event_kind_from_db(&get::<String>(row, "kind")?)?,
        user_id: get::<Option<Uuid>>(row, "user_id")?.map(UserId::from),
        session_id: get::<Option<Uuid>>(row, "session_id")?.map(SessionId::from),
        client_ip: get(row, "client_ip")?,
        user_agent: get(row, "user_agent")?,
        detail: get(row, "detail")?,
    })
}

const USER_COLUMNS: &str = "id, email, password_hash, roles, created_at, disabled_at";
const SESSION_COLUMNS: &str = "id, user_id, created_at, latest_generation, revoked_at";
const EVENT_COLUMNS: &str = "at, kind, user_id, session_id, client_ip, user_agent, detail";

#[async_trait]
impl UserStore for PostgresStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, roles, created_at, disabled_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.as_uuid())
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(roles_to_db(&user.roles))
        .bind(user.created_at.unix_millis())
        .bind(user.disabled_at.map(Timestamp::unix_millis))
        .execute(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self, after: Option<&Email>, limit: u32) -> Result<Vec<User>, StoreError> {
        // `email` has the "C" collation: byte order, the same as SQLite's.
        let rows = match after {
            Some(after) => {
                sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE email > $1 ORDER BY email LIMIT $2"
                ))
                .bind(after.as_str())
                .bind(limit_to_db(limit))
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY email LIMIT $1"
                ))
                .bind(limit_to_db(limit))
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(map_error)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn set_user_roles(&self, id: UserId, roles: &[Role]) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET roles = $1 WHERE id = $2")
            .bind(roles_to_db(roles))
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_user(&self, update: &UserUpdate) -> Result<UserUpdateOutcome, StoreError> {
        self.update_user_tx(update).await
    }

    async fn delete_user(&self, deletion: &UserDeletion) -> Result<UserUpdateOutcome, StoreError> {
        self.delete_user_tx(deletion).await
    }

    async fn change_password(
        &self,
        change: &PasswordChange,
    ) -> Result<UserUpdateOutcome, StoreError> {
        self.change_password_tx(change).await
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, new: &NewSession) -> Result<CreateSessionOutcome, StoreError> {
        self.create_session_tx(new).await
    }

    async fn refresh_state(
        &self,
        lookup: &RefreshTokenLookup,
    ) -> Result<Option<RefreshState>, StoreError> {
        self.states.ask(lookup.clone()).await
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        self.rotations.ask(rotation.clone()).await
    }

    async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn revoke_session(
        &self,
        id: SessionId,
        now: Timestamp,
        access_tokens_until: Timestamp,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let revoked =
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now.unix_millis())
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        if revoked.rows_affected() != 1 {
            tx.rollback().await.map_err(map_error)?;
            return Ok(false);
        }
        insert_event(&mut tx, event).await?;
        append_revocation(&mut tx, KIND_SESSION, &id.to_string(), access_tokens_until).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(true)
    }

    async fn user_sessions(&self, user: UserId) -> Result<Vec<SessionDetails>, StoreError> {
        self.user_sessions_query(user).await
    }

    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        revocation: &SessionRevocation,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.revoke_user_sessions_tx(user, except, revocation).await
    }
}

#[async_trait]
impl AuditLog for PostgresStore {
    async fn record_event(&self, event: &SecurityEvent) -> Result<(), StoreError> {
        if webhook_type(event).is_none() {
            let mut conn = self.pool.acquire().await.map_err(map_error)?;
            return insert_event(&mut conn, event).await;
        }
        // With its webhook messages: one transaction.
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_error)
    }

    async fn recent_events(
        &self,
        user: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, StoreError> {
        let rows = match user {
            Some(user) => {
                sqlx::query(&format!(
                    "SELECT {EVENT_COLUMNS} FROM security_events WHERE user_id = $1 \
                     ORDER BY at DESC, id DESC LIMIT $2"
                ))
                .bind(user.as_uuid())
                .bind(limit_to_db(limit))
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {EVENT_COLUMNS} FROM security_events \
                     ORDER BY at DESC, id DESC LIMIT $1"
                ))
                .bind(limit_to_db(limit))
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(map_error)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn logged_events(
        &self,
        user: Option<UserId>,
        after: Option<EventPosition>,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        self.logged_events_query(user, after, limit).await
    }
}

#[async_trait]
impl Maintenance for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn purge_expired(
        &self,
        now: Timestamp,
        sessions_created_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let revocations = sqlx::query("DELETE FROM revocations WHERE expires_at <= $1")
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        // Their refresh tokens go with them (ON DELETE CASCADE, session row locked first).
        let sessions = sqlx::query("DELETE FROM sessions WHERE created_at < $1")
            .bind(sessions_created_before.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(revocations.rows_affected() + sessions.rows_affected())
    }

    async fn count_live_sessions(
        &self,
        created_after: Timestamp,
        used_after: Timestamp,
    ) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions s JOIN refresh_tokens t \
               ON t.session_id = s.id AND t.generation = s.latest_generation \
             WHERE s.revoked_at IS NULL AND s.created_at > $1 AND t.issued_at > $2",
        )
        .bind(created_after.unix_millis())
        .bind(used_after.unix_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
