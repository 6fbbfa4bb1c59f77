//! Registration on SQLite: one `BEGIN IMMEDIATE` transaction inserts the account (or
//! finds the address taken) and writes what goes with either outcome.

use async_trait::async_trait;
use latchkey_core::audit::SecurityEvent;
use latchkey_core::store::{
    Registration, RegistrationOutcome, RegistrationStore, StoreError, TakenAddress,
};
use latchkey_core::time::Timestamp;

use super::email::{insert_mail, insert_token};
use super::{insert_event, SqliteStore};
use crate::convert::{roles_to_db, user_id_from_text};
use crate::error::map_error;

#[async_trait]
impl RegistrationStore for SqliteStore {
    async fn register(
        &self,
        registration: &Registration,
    ) -> Result<RegistrationOutcome, StoreError> {
        let user = &registration.user;
        let mut tx = self.begin_immediate().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, password_hash, roles, created_at, disabled_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
        )
        .bind(user.id.to_string())
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(roles_to_db(&user.roles))
        .bind(user.created_at.unix_millis())
        .bind(user.disabled_at.map(Timestamp::unix_millis))
        .execute(&mut *tx)
        .await
        .map_err(map_error)?
        .rows_affected();
        if inserted == 1 {
            insert_event(&mut tx, &registration.registered).await?;
            insert_token(&mut tx, &registration.verification.token).await?;
            insert_mail(&mut tx, &registration.verification.mail, false).await?;
            tx.commit().await.map_err(map_error)?;
            return Ok(RegistrationOutcome::Created);
        }
        let Some(taken) = &registration.if_taken else {
            tx.commit().await.map_err(map_error)?;
            return Ok(RegistrationOutcome::Taken { notified: false });
        };
        let owner: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE email = ?")
            .bind(user.email.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_error)?;
        let mut notified = false;
        if let Some(owner) = owner {
            let notified_lately: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM security_events \
                 WHERE user_id = ? AND kind = ? AND at >= ? AND detail = ?)",
            )
            .bind(&owner)
            .bind(taken.event.kind.as_str())
            .bind(taken.quiet_since.unix_millis())
            .bind(TakenAddress::NOTICE_QUEUED)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_error)?;
            notified = !notified_lately;
            let event = SecurityEvent {
                user_id: Some(user_id_from_text(&owner)?),
                detail: notified.then(|| TakenAddress::NOTICE_QUEUED.to_owned()),
                ..taken.event.clone()
            };
            insert_event(&mut tx, &event).await?;
            if notified {
                insert_mail(&mut tx, &taken.notice, false).await?;
            }
        }
        tx.commit().await.map_err(map_error)?;
        Ok(RegistrationOutcome::Taken { notified })
    }
}
