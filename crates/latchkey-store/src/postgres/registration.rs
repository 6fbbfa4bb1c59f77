//! Registration on PostgreSQL: one transaction inserts the account (`ON CONFLICT DO
//! NOTHING`: a concurrent registration of the address waits for the first to commit,
//! then finds the address taken) and writes what goes with either outcome.

use async_trait::async_trait;
use latchkey_core::audit::SecurityEvent;
use latchkey_core::model::UserId;
use latchkey_core::store::{
    Registration, RegistrationOutcome, RegistrationStore, StoreError, TakenAddress,
};
use latchkey_core::time::Timestamp;
use uuid::Uuid;

use super::email::{insert_mail, insert_token};
use super::{insert_event, PostgresStore};
use crate::convert::roles_to_db;
use crate::error::map_error;

#[async_trait]
impl RegistrationStore for PostgresStore {
    async fn register(
        &self,
        registration: &Registration,
    ) -> Result<RegistrationOutcome, StoreError> {
        let user = &registration.user;
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, password_hash, roles, created_at, disabled_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email) DO NOTHING",
        )
        .bind(user.id.as_uuid())
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
        // The owner's row is locked: concurrent attempts decide on the notice one by one.
        let owner: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM users WHERE email = $1 FOR UPDATE")
                .bind(user.email.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_error)?;
        let mut notified = false;
        if let Some(owner) = owner {
            let notified_lately: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM security_events \
                 WHERE user_id = $1 AND kind = $2 AND at >= $3 AND detail = $4)",
            )
            .bind(owner)
            .bind(taken.event.kind.as_str())
            .bind(taken.quiet_since.unix_millis())
            .bind(TakenAddress::NOTICE_QUEUED)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_error)?;
            notified = !notified_lately;
            let event = SecurityEvent {
                user_id: Some(UserId::from(owner)),
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
