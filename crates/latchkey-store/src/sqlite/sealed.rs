//! Sealed values on SQLite (TOTP secrets, queued mail), listed and sealed again in one
//! `BEGIN IMMEDIATE` transaction, each replacement a compare-and-set.

use async_trait::async_trait;
use latchkey_core::store::{Reseal, SealedField, SealedStore, SealedValue, StoreError};

use super::SqliteStore;
use crate::convert::user_id_from_text;
use crate::error::map_error;

#[async_trait]
impl SealedStore for SqliteStore {
    async fn sealed_values(&self) -> Result<Vec<SealedValue>, StoreError> {
        let secrets: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT user_id, sealed_secret FROM user_totp")
                .fetch_all(&self.reader)
                .await
                .map_err(map_error)?;
        let payloads: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT id, payload FROM mail_outbox WHERE payload IS NOT NULL")
                .fetch_all(&self.reader)
                .await
                .map_err(map_error)?;
        let mut values = Vec::with_capacity(secrets.len() + payloads.len());
        for (user, sealed) in secrets {
            let field = SealedField::TotpSecret(user_id_from_text(&user)?);
            values.push(SealedValue { field, sealed });
        }
        values.extend(payloads.into_iter().map(|(id, sealed)| SealedValue {
            field: SealedField::MailPayload(id),
            sealed,
        }));
        Ok(values)
    }

    async fn reseal(&self, reseals: &[Reseal]) -> Result<u64, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let mut applied = 0;
        for reseal in reseals {
            let query = match reseal.field {
                SealedField::TotpSecret(user) => sqlx::query(
                    "UPDATE user_totp SET sealed_secret = ? \
                     WHERE user_id = ? AND sealed_secret = ?",
                )
                .bind(reseal.new.as_slice())
                .bind(user.to_string()),
                SealedField::MailPayload(id) => {
                    sqlx::query("UPDATE mail_outbox SET payload = ? WHERE id = ? AND payload = ?")
                        .bind(reseal.new.as_slice())
                        .bind(id)
                }
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
