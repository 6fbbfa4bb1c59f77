//! Signing keys and named secrets of the SQLite backend.

use async_trait::async_trait;
use latchkey_core::store::{KeyStore, StoreError, StoredSigningKey};
use latchkey_core::time::Timestamp;
use sqlx::sqlite::SqliteRow;

use super::{get, SqliteStore};
use crate::convert::{opt_ts, ts, KIND_KEY};
use crate::error::map_error;

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid DESC"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(map_error)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn insert_first_signing_key(&self, key: &StoredSigningKey) -> Result<bool, StoreError> {
        // The partial unique index on active keys makes a second active key a conflict.
        let done = sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, retired_at) \
             VALUES (?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(key.private_key.as_slice())
        .bind(key.created_at.unix_millis())
        .execute(&self.writer)
        .await
        .map_err(map_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotate_signing_key(&self, key: &StoredSigningKey) -> Result<(), StoreError> {
        let mut tx = self.begin_immediate().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL")
            .bind(key.created_at.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, retired_at) \
             VALUES (?, ?, ?, ?, NULL)",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(key.private_key.as_slice())
        .bind(key.created_at.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)
    }

    async fn delete_signing_keys_retired_before(
        &self,
        cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?")
                .bind(cutoff.unix_millis())
                .execute(&self.writer)
                .await
                .map_err(map_error)?;
        Ok(done.rows_affected())
    }

    async fn revoke_signing_key(
        &self,
        kid: &str,
        log_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let deleted =
            sqlx::query("DELETE FROM signing_keys WHERE kid = ? AND retired_at IS NOT NULL")
                .bind(kid)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        if deleted.rows_affected() != 1 {
            tx.rollback().await.map_err(map_error)?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO revocations (kind, value, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (kind, value) DO NOTHING",
        )
        .bind(KIND_KEY)
        .bind(kid)
        .bind(log_until.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(true)
    }

    async fn replace_signing_key_material(
        &self,
        kid: &str,
        expected: &[u8],
        replacement: &[u8],
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET private_key = ? WHERE kid = ? AND private_key = ?",
        )
        .bind(replacement)
        .bind(kid)
        .bind(expected)
        .execute(&self.writer)
        .await
        .map_err(map_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn secret_or_insert(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut tx = self.begin_immediate().await?;
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        let value: Vec<u8> = sqlx::query_scalar("SELECT value FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(value)
    }
}

fn key_from_row(row: &SqliteRow) -> Result<StoredSigningKey, StoreError> {
    Ok(StoredSigningKey {
        kid: get(row, "kid")?,
        algorithm: get(row, "algorithm")?,
        private_key: get(row, "private_key")?,
        created_at: ts(get(row, "created_at")?),
        retired_at: opt_ts(get(row, "retired_at")?),
    })
}

const KEY_COLUMNS: &str = "kid, algorithm, private_key, created_at, retired_at";
