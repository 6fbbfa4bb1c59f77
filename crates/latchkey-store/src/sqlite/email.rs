//! E-mail tokens, verified addresses and the mail outbox on SQLite. Each change runs in
//! one `BEGIN IMMEDIATE` transaction on the writer, so spending a token is a
//! compare-and-set no other writer can interleave with.

use async_trait::async_trait;
use latchkey_core::email::{EmailTokenHash, EmailTokenPurpose, StoredEmailToken};
use latchkey_core::model::{Email, UserId};
use latchkey_core::store::{
    DeliveryAttempt, EmailStore, EmailTokenEffect, EmailTokenOutcome, EmailTokenUse, NewEmailToken,
    OutboxMail, PasswordResetRequest, QueuedMail, StoreError,
};
use latchkey_core::time::Timestamp;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::accounts::revoke_sessions_of;
use super::SqliteStore;
use crate::convert::{limit_to_db, opt_ts, ts, user_id_from_text};
use crate::error::map_error;

pub(super) async fn insert_token(
    conn: &mut SqliteConnection,
    token: &StoredEmailToken,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO email_tokens (hash, user_id, purpose, email, created_at, expires_at, \
         used_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
    )
    .bind(token.hash.as_bytes().as_slice())
    .bind(token.user_id.to_string())
    .bind(token.purpose.as_str())
    .bind(token.email.as_str())
    .bind(token.created_at.unix_millis())
    .bind(token.expires_at.unix_millis())
    .execute(&mut *conn)
    .await
    .map_err(map_error)?;
    Ok(())
}

/// Queue `mail`, or with `settled` an already settled row without its payload (the
/// stand-in written for a reset of an unknown address, so both cost one insert).
pub(super) async fn insert_mail(
    conn: &mut SqliteConnection,
    mail: &OutboxMail,
    settled: bool,
) -> Result<(), StoreError> {
    let (kind, settled_at) = if settled {
        ("discarded", Some(mail.created_at.unix_millis()))
    } else {
        (mail.kind.as_str(), None)
    };
    sqlx::query(
        "INSERT INTO mail_outbox (kind, payload, created_at, attempts, next_attempt_at, \
         sent_at) VALUES (?, ?, ?, 0, ?, ?)",
    )
    .bind(kind)
    .bind((!settled).then_some(mail.payload.as_slice()))
    .bind(mail.created_at.unix_millis())
    .bind(mail.created_at.unix_millis())
    .bind(settled_at)
    .execute(&mut *conn)
    .await
    .map_err(map_error)?;
    Ok(())
}

fn token_from_row(row: &SqliteRow) -> Result<StoredEmailToken, StoreError> {
    let hash: Vec<u8> = row.try_get("hash").map_err(map_error)?;
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| StoreError::Internal("stored token hash is not 32 bytes".into()))?;
    let purpose: String = row.try_get("purpose").map_err(map_error)?;
    Ok(StoredEmailToken {
        hash: EmailTokenHash::from_bytes(hash),
        user_id: user_id_from_text(&row.try_get::<String, _>("user_id").map_err(map_error)?)?,
        purpose: EmailTokenPurpose::parse(&purpose)
            .ok_or_else(|| StoreError::Internal("unknown stored token purpose".into()))?,
        email: Email::from_trusted(row.try_get("email").map_err(map_error)?),
        created_at: ts(row.try_get("created_at").map_err(map_error)?),
        expires_at: ts(row.try_get("expires_at").map_err(map_error)?),
        used_at: opt_ts(row.try_get("used_at").map_err(map_error)?),
    })
}

#[async_trait]
impl EmailStore for SqliteStore {
    async fn issue_email_token(&self, new: &NewEmailToken) -> Result<(), StoreError> {
        let mut tx = self.begin_immediate().await?;
        insert_token(&mut tx, &new.token).await?;
        insert_mail(&mut tx, &new.mail, false).await?;
        tx.commit().await.map_err(map_error)
    }

    async fn request_password_reset(
        &self,
        request: &PasswordResetRequest,
    ) -> Result<Option<UserId>, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let user: Option<String> =
            sqlx::query_scalar("SELECT id FROM users WHERE email = ? AND disabled_at IS NULL")
                .bind(request.email.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_error)?;
        let user = user.as_deref().map(user_id_from_text).transpose()?;
        if let Some(user_id) = user {
            let token = StoredEmailToken {
                user_id,
                ..request.token.clone()
            };
            insert_token(&mut tx, &token).await?;
        }
        insert_mail(&mut tx, &request.mail, user.is_none()).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(user)
    }

    async fn email_token(
        &self,
        hash: &EmailTokenHash,
    ) -> Result<Option<StoredEmailToken>, StoreError> {
        let row = sqlx::query("SELECT * FROM email_tokens WHERE hash = ?")
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.reader)
            .await
            .map_err(map_error)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn use_email_token(&self, use_: &EmailTokenUse) -> Result<EmailTokenOutcome, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let now = use_.now.unix_millis();
        let user = use_.user_id.to_string();
        let email: Option<String> = sqlx::query_scalar(
            "UPDATE email_tokens SET used_at = ?1 WHERE hash = ?2 AND purpose = ?3 \
             AND user_id = ?4 AND used_at IS NULL AND expires_at > ?1 RETURNING email",
        )
        .bind(now)
        .bind(use_.hash.as_bytes().as_slice())
        .bind(use_.purpose.as_str())
        .bind(&user)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_error)?;
        let Some(email) = email else {
            tx.rollback().await.map_err(map_error)?;
            return Ok(EmailTokenOutcome::Invalid);
        };
        sqlx::query(
            "UPDATE email_tokens SET used_at = ?1 \
             WHERE user_id = ?2 AND purpose = ?3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(&user)
        .bind(use_.purpose.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        let (statement, revocation) = match &use_.effect {
            EmailTokenEffect::ResetPassword {
                new_hash,
                revocation,
            } => {
                let done = sqlx::query(
                    "UPDATE users SET password_hash = ?, \
                     email_verified_at = coalesce(email_verified_at, ?) WHERE id = ? AND email = ?",
                )
                .bind(new_hash)
                .bind(now)
                .bind(&user)
                .bind(&email)
                .execute(&mut *tx)
                .await;
                (done, Some(revocation))
            }
            EmailTokenEffect::VerifyAddress => {
                let done = sqlx::query(
                    "UPDATE users SET email_verified_at = coalesce(email_verified_at, ?) \
                     WHERE id = ? AND email = ?",
                )
                .bind(now)
                .bind(&user)
                .bind(&email)
                .execute(&mut *tx)
                .await;
                (done, None)
            }
            EmailTokenEffect::ChangeAddress => {
                let done =
                    sqlx::query("UPDATE users SET email = ?, email_verified_at = ? WHERE id = ?")
                        .bind(&email)
                        .bind(now)
                        .bind(&user)
                        .execute(&mut *tx)
                        .await;
                (done, None)
            }
        };
        let changed = match statement.map_err(map_error) {
            Ok(done) => done.rows_affected() == 1,
            Err(StoreError::EmailTaken) => {
                tx.rollback().await.map_err(map_error)?;
                return Ok(EmailTokenOutcome::EmailTaken);
            }
            Err(other) => return Err(other),
        };
        if !changed {
            tx.rollback().await.map_err(map_error)?;
            return Ok(EmailTokenOutcome::Invalid);
        }
        let revoked = match revocation {
            Some(revocation) => revoke_sessions_of(&mut tx, use_.user_id, None, revocation).await?,
            None => Vec::new(),
        };
        if let Some(notice) = &use_.notice {
            insert_mail(&mut tx, notice, false).await?;
        }
        tx.commit().await.map_err(map_error)?;
        Ok(EmailTokenOutcome::Applied { revoked })
    }

    async fn email_verified_at(&self, user: UserId) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<Option<i64>> =
            sqlx::query_scalar("SELECT email_verified_at FROM users WHERE id = ?")
                .bind(user.to_string())
                .fetch_optional(&self.reader)
                .await
                .map_err(map_error)?;
        Ok(opt_ts(at.flatten()))
    }

    async fn enqueue_mail(&self, mail: &OutboxMail) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await.map_err(map_error)?;
        insert_mail(&mut conn, mail, false).await
    }

    async fn claim_mail(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        // The worker polls: look on a reader first, so an empty outbox costs no write lock.
        let due: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM mail_outbox WHERE sent_at IS NULL \
             AND failed_at IS NULL AND next_attempt_at <= ?)",
        )
        .bind(now.unix_millis())
        .fetch_one(&self.reader)
        .await
        .map_err(map_error)?;
        if !due {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_immediate().await?;
        let rows = sqlx::query(
            "UPDATE mail_outbox SET next_attempt_at = ?1 WHERE id IN (\
                SELECT id FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL \
                AND next_attempt_at <= ?2 ORDER BY next_attempt_at, id LIMIT ?3) \
             RETURNING id, kind, payload, attempts",
        )
        .bind(lease_until.unix_millis())
        .bind(now.unix_millis())
        .bind(limit_to_db(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                Ok(QueuedMail {
                    id: row.try_get("id").map_err(map_error)?,
                    kind: row.try_get("kind").map_err(map_error)?,
                    payload: row
                        .try_get::<Option<Vec<u8>>, _>("payload")
                        .map_err(map_error)?
                        .unwrap_or_default(),
                    attempts: u32::try_from(row.try_get::<i64, _>("attempts").map_err(map_error)?)
                        .unwrap_or(u32::MAX),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    async fn settle_mail(
        &self,
        id: i64,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = now.unix_millis();
        let query = match attempt {
            DeliveryAttempt::Sent => sqlx::query(
                "UPDATE mail_outbox SET sent_at = ?, payload = NULL, attempts = attempts + 1, \
                 last_error = NULL WHERE id = ?",
            )
            .bind(now)
            .bind(id),
            DeliveryAttempt::Retry { at, error } => sqlx::query(
                "UPDATE mail_outbox SET next_attempt_at = ?, last_error = ?, \
                 attempts = attempts + 1 WHERE id = ?",
            )
            .bind(at.unix_millis())
            .bind(error.as_str())
            .bind(id),
            DeliveryAttempt::GiveUp { error } => sqlx::query(
                "UPDATE mail_outbox SET failed_at = ?, last_error = ?, payload = NULL, \
                 attempts = attempts + 1 WHERE id = ?",
            )
            .bind(now)
            .bind(error.as_str())
            .bind(id),
        };
        query.execute(&self.writer).await.map_err(map_error)?;
        Ok(())
    }

    async fn failed_mail(&self, limit: u32) -> Result<Vec<(i64, String, String)>, StoreError> {
        sqlx::query_as(
            "SELECT id, kind, coalesce(last_error, '') FROM mail_outbox \
             WHERE failed_at IS NOT NULL ORDER BY id DESC LIMIT ?",
        )
        .bind(limit_to_db(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_error)
    }

    async fn purge_email(
        &self,
        now: Timestamp,
        settled_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let tokens = sqlx::query("DELETE FROM email_tokens WHERE expires_at <= ?")
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        let mail = sqlx::query("DELETE FROM mail_outbox WHERE coalesce(sent_at, failed_at) < ?")
            .bind(settled_before.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(tokens.rows_affected() + mail.rows_affected())
    }
}
