//! The account operations of the SQLite backend: sessions with their devices, bulk
//! revocation, and admin changes to users. Each runs in one `BEGIN IMMEDIATE`
//! transaction on the writer, so a read-then-write inside it is a compare-and-set: no
//! other writer can come in between.

use latchkey_core::model::{SessionId, UserId};
use latchkey_core::store::{
    CreateSessionOutcome, NewSession, PasswordChange, SessionDetails, SessionRevocation,
    StoreError, UserAccess, UserDeletion, UserUpdate, UserUpdateOutcome,
};
use latchkey_core::time::Timestamp;
use sqlx::{Sqlite, SqliteConnection, Transaction};

use super::{get, insert_event, session_from_row, SqliteStore};
use crate::convert::{
    event_for_session, opt_ts, roles_from_db, roles_to_db, same_access, session_id_from_text, ts,
    KIND_SESSION,
};
use crate::error::map_error;

/// Whether an enabled admin other than `?1` exists.
const ANOTHER_ADMIN: &str = "SELECT EXISTS (SELECT 1 FROM users WHERE id <> ?1 \
     AND disabled_at IS NULL AND (',' || roles || ',') LIKE '%,admin,%')";

impl SqliteStore {
    pub(super) async fn create_session_tx(
        &self,
        new: &NewSession,
    ) -> Result<CreateSessionOutcome, StoreError> {
        let session = &new.session;
        let mut tx = self.begin_immediate().await?;
        let roles: Option<String> = sqlx::query_scalar(
            "SELECT roles FROM users WHERE id = ? AND disabled_at IS NULL AND password_hash = ?",
        )
        .bind(session.user_id.to_string())
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
             VALUES (?, ?, ?, 0, NULL, ?, ?, ?, ?, ?)",
        )
        .bind(session.id.to_string())
        .bind(session.user_id.to_string())
        .bind(session.created_at.unix_millis())
        .bind(new.client_ip.as_deref())
        .bind(new.user_agent.as_deref())
        .bind(&new.device.name)
        .bind(new.client_ip.as_deref())
        .bind(new.auth_methods.as_db())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        sqlx::query(
            "INSERT INTO refresh_tokens (session_id, generation, hash, issued_at) \
             VALUES (?, 0, ?, ?)",
        )
        .bind(session.id.to_string())
        .bind(new.first_token.as_bytes().as_slice())
        .bind(session.created_at.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        let previous: Option<i64> = sqlx::query_scalar(
            "INSERT INTO user_devices (user_id, device_key, last_seen_at, previous_seen_at) \
             VALUES (?, ?, ?, NULL) ON CONFLICT (user_id, device_key) DO UPDATE \
             SET previous_seen_at = user_devices.last_seen_at, \
                 last_seen_at = excluded.last_seen_at \
             RETURNING previous_seen_at",
        )
        .bind(session.user_id.to_string())
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
             WHERE s.user_id = ? AND s.revoked_at IS NULL \
             ORDER BY s.created_at DESC, s.id",
        )
        .bind(user.to_string())
        .fetch_all(&self.reader)
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
        let mut tx = self.begin_immediate().await?;
        let revoked = revoke_sessions_of(&mut tx, user, except, revocation).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(revoked)
    }

    pub(super) async fn update_user_tx(
        &self,
        update: &UserUpdate,
    ) -> Result<UserUpdateOutcome, StoreError> {
        let mut tx = self.begin_immediate().await?;
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
        sqlx::query("UPDATE users SET roles = ?, disabled_at = ? WHERE id = ?")
            .bind(roles_to_db(&update.new.roles))
            .bind(update.new.disabled_at.map(Timestamp::unix_millis))
            .bind(update.id.to_string())
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
        let mut tx = self.begin_immediate().await?;
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
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(deletion.id.to_string())
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
        let mut tx = self.begin_immediate().await?;
        let changed =
            sqlx::query("UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?")
                .bind(&change.new_hash)
                .bind(change.id.to_string())
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

/// The user's roles and disabled state, or `None` if there is no such user.
async fn access_of(
    conn: &mut SqliteConnection,
    id: UserId,
) -> Result<Option<UserAccess>, StoreError> {
    let row: Option<(String, Option<i64>)> =
        sqlx::query_as("SELECT roles, disabled_at FROM users WHERE id = ?")
            .bind(id.to_string())
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

async fn another_admin(conn: &mut SqliteConnection, id: UserId) -> Result<bool, StoreError> {
    sqlx::query_scalar(ANOTHER_ADMIN)
        .bind(id.to_string())
        .fetch_one(&mut *conn)
        .await
        .map_err(map_error)
}

/// Revoke every unrevoked session of `user` but `except`, each with its revocation log
/// entry and event, inside the caller's transaction.
pub(super) async fn revoke_sessions_of(
    tx: &mut Transaction<'static, Sqlite>,
    user: UserId,
    except: Option<SessionId>,
    revocation: &SessionRevocation,
) -> Result<Vec<SessionId>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = ? \
         WHERE user_id = ? AND revoked_at IS NULL AND id IS NOT ? RETURNING id",
    )
    .bind(revocation.now.unix_millis())
    .bind(user.to_string())
    .bind(except.map(|id| id.to_string()))
    .fetch_all(&mut **tx)
    .await
    .map_err(map_error)?;
    let mut revoked = Vec::with_capacity(ids.len());
    for id in ids {
        let session = session_id_from_text(&id)?;
        sqlx::query(
            "INSERT INTO revocations (kind, value, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (kind, value) DO NOTHING",
        )
        .bind(KIND_SESSION)
        .bind(&id)
        .bind(revocation.access_tokens_until.unix_millis())
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
        insert_event(tx, &event_for_session(revocation, session)).await?;
        revoked.push(session);
    }
    Ok(revoked)
}
