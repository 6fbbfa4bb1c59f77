//! The account operations of the PostgreSQL backend: sessions with their devices, bulk
//! revocation, and admin changes to users.
//!
//! Concurrency: a login locks its user's row `FOR SHARE` while it checks the user is
//! still enabled with the same password, so a concurrent disable, role change or
//! password change (which lock the row for update and revoke the sessions) either
//! happens first (the login then sees it and stops) or waits for the login's session to
//! exist (and then revokes it too). Changes that could remove the last admin take a
//! transaction-level advisory lock first, so two admins demoting each other at once
//! cannot both succeed.

use latchkey_core::model::{SessionId, UserId};
use latchkey_core::store::{
    CreateSessionOutcome, NewSession, PasswordChange, SessionDetails, SessionRevocation,
    StoreError, UserAccess, UserDeletion, UserUpdate, UserUpdateOutcome,
};
use latchkey_core::time::Timestamp;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{append_revocation, get, insert_event, session_from_row, PostgresStore};
use crate::convert::{
    event_for_session, opt_ts, roles_from_db, roles_to_db, same_access, ts, KIND_SESSION,
};
use crate::error::map_error;

/// Key of the advisory lock that serialises changes which could remove the last admin
/// (the bytes of "LtchAdmn").
const LAST_ADMIN_LOCK: i64 = 0x4c74_6368_4164_6d6e;

/// Whether an enabled admin other than `$1` exists.
const ANOTHER_ADMIN: &str = "SELECT EXISTS (SELECT 1 FROM users WHERE id <> $1 \
     AND disabled_at IS NULL AND (',' || roles || ',') LIKE '%,admin,%')";

impl PostgresStore {
    pub(super) async fn create_session_tx(
        &self,
        new: &NewSession,
    ) -> Result<CreateSessionOutcome, StoreError> {
        let session = &new.session;
        let user_id = session.user_id.as_uuid();
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let roles: Option<String> = sqlx::query_scalar(
            "SELECT roles FROM users \
             WHERE id = $1 AND disabled_at IS NULL AND password_hash = $2 FOR SHARE",
        )
        .bind(user_id)
        .bind(&new.password_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_error)?;
        let Some(roles) = roles else {
            tx.rollback().await.map_err(map_error)?;
            return Ok(CreateSessionOutcome::UserChanged);
        };
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, latest_generation, revoked_at, \
             client_ip, user_agent, device, last_ip, auth_methods) \
             VALUES ($1, $2, $3, 0, NULL, $4, $5, $6, $4, $7)",
        )
        .bind(session.id.as_uuid())
        .bind(user_id)
        .bind(session.created_at.unix_millis())
        .bind(new.client_ip.as_deref())
        .bind(new.user_agent.as_deref())
        .bind(&new.device.name)
        .bind(new.auth_methods.as_db())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, session_id, generation, issued_at, spent_at) \
             VALUES ($1, $2, 0, $3, NULL)",
        )
        .bind(new.first_token.as_bytes().as_slice())
        .bind(session.id.as_uuid())
        .bind(session.created_at.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        let previous: Option<i64> = sqlx::query_scalar(
            "INSERT INTO user_devices (user_id, device_key, last_seen_at, previous_seen_at) \
             VALUES ($1, $2, $3, NULL) ON CONFLICT (user_id, device_key) DO UPDATE \
             SET previous_seen_at = user_devices.last_seen_at, \
                 last_seen_at = EXCLUDED.last_seen_at \
             RETURNING previous_seen_at",
        )
        .bind(user_id)
        .bind(&new.device.key)
        .bind(session.created_at.unix_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(CreateSessionOutcome::Created {
            roles: roles_from_db(&roles)?,
            device_last_seen: opt_ts(previous),
        })
    }

    pub(super) async fn user_sessions_query(
        &self,
        user: UserId,
    ) -> Result<Vec<SessionDetails>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id, s.user_id, s.created_at, s.latest_generation, s.revoked_at, \
                    s.client_ip, s.user_agent, s.device, s.last_ip, t.issued_at AS last_used_at \
             FROM sessions s JOIN refresh_tokens t \
               ON t.session_id = s.id AND t.generation = s.latest_generation \
             WHERE s.user_id = $1 AND s.revoked_at IS NULL \
             ORDER BY s.created_at DESC, s.id",
        )
        .bind(user.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?;
        rows.iter()
            .map(|row| {
                Ok(SessionDetails {
                    session: session_from_row(row)?,
                    last_used_at: ts(get(row, "last_used_at")?),
                    client_ip: get(row, "client_ip")?,
                    last_ip: get(row, "last_ip")?,
                    user_agent: get(row, "user_agent")?,
                    device: get::<Option<String>>(row, "device")?.unwrap_or_default(),
                })
            })
            .collect()
    }

    pub(super) async fn revoke_user_sessions_tx(
        &self,
        user: UserId,
        except: Option<SessionId>,
        revocation: &SessionRevocation,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let revoked = revoke_sessions_of(&mut tx, user, except, revocation).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(revoked)
    }

    pub(super) async fn update_user_tx(
        &self,
        update: &UserUpdate,
    ) -> Result<UserUpdateOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        if update.keep_an_admin {
            lock_admins(&mut tx).await?;
        }
        let unchanged = access_of(&mut tx, update.id)
            .await?
            .is_some_and(|stored| same_access(&stored, &update.expected));
        if !unchanged {
            tx.rollback().await.map_err(map_error)?;
            return Ok(UserUpdateOutcome::Conflict);
        }
        if update.keep_an_admin && !another_admin(&mut tx, update.id).await? {
            tx.rollback().await.map_err(map_error)?;
            return Ok(UserUpdateOutcome::LastAdmin);
        }
        sqlx::query("UPDATE users SET roles = $1, disabled_at = $2 WHERE id = $3")
            .bind(roles_to_db(&update.new.roles))
            .bind(update.new.disabled_at.map(Timestamp::unix_millis))
            .bind(update.id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        let revoked = match &update.revoke_sessions {
            Some(revocation) => revoke_sessions_of(&mut tx, update.id, None, revocation).await?,
            None => Vec::new(),
        };
        tx.commit().await.map_err(map_error)?;
        Ok(UserUpdateOutcome::Applied { revoked })
    }

    pub(super) async fn delete_user_tx(
        &self,
        deletion: &UserDeletion,
    ) -> Result<UserUpdateOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        if deletion.keep_an_admin {
            lock_admins(&mut tx).await?;
        }
        if access_of(&mut tx, deletion.id).await?.is_none() {
            tx.rollback().await.map_err(map_error)?;
            return Ok(UserUpdateOutcome::Conflict);
        }
        if deletion.keep_an_admin && !another_admin(&mut tx, deletion.id).await? {
            tx.rollback().await.map_err(map_error)?;
            return Ok(UserUpdateOutcome::LastAdmin);
        }
        let revoked = revoke_sessions_of(&mut tx, deletion.id, None, &deletion.revocation).await?;
        // Sessions, their tokens and the devices go with the user (ON DELETE CASCADE).
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(deletion.id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(UserUpdateOutcome::Applied { revoked })
    }

    pub(super) async fn change_password_tx(
        &self,
        change: &PasswordChange,
    ) -> Result<UserUpdateOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let changed =
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
                .bind(&change.new_hash)
                .bind(change.id.as_uuid())
                .bind(&change.expected_hash)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        if changed.rows_affected() != 1 {
            tx.rollback().await.map_err(map_error)?;
            return Ok(UserUpdateOutcome::Conflict);
        }
        let revoked =
            revoke_sessions_of(&mut tx, change.id, change.keep_session, &change.revocation).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(UserUpdateOutcome::Applied { revoked })
    }
}

async fn lock_admins(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LAST_ADMIN_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(map_error)?;
    Ok(())
}

/// The user's roles and disabled state, locking the row; `None` if there is no such user.
async fn access_of(conn: &mut PgConnection, id: UserId) -> Result<Option<UserAccess>, StoreError> {
    let row: Option<(String, Option<i64>)> =
        sqlx::query_as("SELECT roles, disabled_at FROM users WHERE id = $1 FOR UPDATE")
            .bind(id.as_uuid())
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_error)?;
    row.map(|(roles, disabled_at)| {
        Ok(UserAccess {
            roles: roles_from_db(&roles)?,
            disabled_at: opt_ts(disabled_at),
        })
    })
    .transpose()
}

async fn another_admin(conn: &mut PgConnection, id: UserId) -> Result<bool, StoreError> {
    sqlx::query_scalar(ANOTHER_ADMIN)
        .bind(id.as_uuid())
        .fetch_one(&mut *conn)
        .await
        .map_err(map_error)
}

/// Revoke every unrevoked session of `user` but `except`, each with its revocation log
/// entry and event, inside the caller's transaction.
pub(super) async fn revoke_sessions_of(
    conn: &mut PgConnection,
    user: UserId,
    except: Option<SessionId>,
    revocation: &SessionRevocation,
) -> Result<Vec<SessionId>, StoreError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = $1 \
         WHERE user_id = $2 AND revoked_at IS NULL AND id IS DISTINCT FROM $3 RETURNING id",
    )
    .bind(revocation.now.unix_millis())
    .bind(user.as_uuid())
    .bind(except.map(|id| id.as_uuid()))
    .fetch_all(&mut *conn)
    .await
    .map_err(map_error)?;
    let mut revoked = Vec::with_capacity(ids.len());
    for id in ids {
        let session = SessionId::from(id);
        insert_event(&mut *conn, &event_for_session(revocation, session)).await?;
        append_revocation(
            conn,
            KIND_SESSION,
            &session.to_string(),
            revocation.access_tokens_until,
        )
        .await?;
        revoked.push(session);
    }
    Ok(revoked)
}
