//! Signing keys and named secrets of the PostgreSQL backend.

use async_trait::async_trait;
use latchkey_core::store::{KeyStore, StoreError, StoredSigningKey};
use latchkey_core::time::Timestamp;
use sqlx::postgres::PgRow;

use super::{append_revocation, get, PostgresStore};
use crate::convert::{opt_ts, ts, KIND_KEY};
use crate::error::map_error;

#[async_trait]
impl KeyStore for PostgresStore {
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid DESC"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn insert_first_signing_key(&self, key: &StoredSigningKey) -> Result<bool, StoreError> {
        // The partial unique index on active keys makes a second active key a conflict;
        // a racing insert waits for the first to commit, then does nothing.
        let done = sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, NULL) ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(key.private_key.as_slice())
        .bind(key.created_at.unix_millis())
        .execute(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotate_signing_key(&self, key: &StoredSigningKey) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(key.created_at.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, NULL)",
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
        let done = sqlx::query(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1",
        )
        .bind(cutoff.unix_millis())
        .execute(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(done.rows_affected())
    }

    async fn revoke_signing_key(
        &self,
        kid: &str,
        log_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let deleted =
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1 AND retired_at IS NOT NULL")
                .bind(kid)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        if deleted.rows_affected() != 1 {
            tx.rollback().await.map_err(map_error)?;
            return Ok(false);
        }
        append_revocation(&mut tx, KIND_KEY, kid, log_until).await?;
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
            "UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3",
        )
        .bind(replacement)
        .bind(kid)
        .bind(expected)
        .execute(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn secret_or_insert(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        // A racing insert waits for the first to commit, then does nothing; the SELECT,
        // a new statement with a new snapshot, then sees the winner's value.
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await
        .map_err(map_error)?;
        sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(map_error)
    }
}

fn key_from_row(row: &PgRow) -> Result<StoredSigningKey, StoreError> {
    Ok(StoredSigningKey {
        kid: get(row, "kid")?,
        algorithm: get(row, "algorithm")?,
        private_key: get(row, "private_key")?,
        created_at: ts(get(row, "created_at")?),
        retired_at: opt_ts(get(row, "retired_at")?),
    })
}

const KEY_COLUMNS: &str = "kid, algorithm, private_key, created_at, retired_at";
