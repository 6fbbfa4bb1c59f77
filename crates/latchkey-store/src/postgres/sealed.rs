//! Sealed values on PostgreSQL (TOTP secrets, queued mail), listed and sealed again in
//! one transaction, each replacement a compare-and-set.

use async_trait::async_trait;
use latchkey_core::model::UserId;
use latchkey_core::store::{Reseal, SealedField, SealedStore, SealedValue, StoreError};
use uuid::Uuid;

use super::PostgresStore;
use crate::error::map_error;

#[async_trait]
impl SealedStore for PostgresStore {
    async fn sealed_values(&self) -> Result<Vec<SealedValue>, StoreError> {
        let secrets: Vec<(Uuid, Vec<u8>)> =
            sqlx::query_as("SELECT user_id, sealed_secret FROM user_totp")
                .fetch_all(&self.pool)
                .await
                .map_err(map_error)?;
        let payloads: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT id, payload FROM mail_outbox WHERE payload IS NOT NULL")
                .fetch_all(&self.pool)
                .await
                .map_err(map_error)?;
        let secrets = secrets.into_iter().map(|(user, sealed)| SealedValue {
            field: SealedField::TotpSecret(UserId::from(user)),
            sealed,
        });
        let payloads = payloads.into_iter().map(|(id, sealed)| SealedValue {
            field: SealedField::MailPayload(id),
            sealed,
        });
        Ok(secrets.chain(payloads).collect())
    }

    async fn reseal(&self, reseals: &[Reseal]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let mut applied = 0;
        for reseal in reseals {
            let query = match reseal.field {
                SealedField::TotpSecret(user) => sqlx::query(
                    "UPDATE user_totp SET sealed_secret = $1 \
                     WHERE user_id = $2 AND sealed_secret = $3",
                )
                .bind(reseal.new.as_slice())
                .bind(user.as_uuid()),
                SealedField::MailPayload(id) => sqlx::query(
                    "UPDATE mail_outbox SET payload = $1 WHERE id = $2 AND payload = $3",
                )
                .bind(reseal.new.as_slice())
                .bind(id),
            };
            applied += query
                .bind(reseal.old.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(map_error)?
                .rows_affected();
        }
        tx.commit().await.map_err(map_error)?;
        Ok(applied)
    }
}
