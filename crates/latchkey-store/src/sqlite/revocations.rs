//! The revocation log of the SQLite backend: what replicas and verifiers follow.

use async_trait::async_trait;
use latchkey_core::store::{RevocationEntry, RevocationStore, StoreError};
use latchkey_core::time::Timestamp;

use super::{get, SqliteStore};
use crate::convert::{limit_to_db, revocation_from_db, KIND_ACCESS_TOKEN};
use crate::error::map_error;

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn deny_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<(), StoreError> {
        // One statement on the single writer: seq order is commit order.
        sqlx::query(
            "INSERT INTO revocations (kind, value, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (kind, value) DO NOTHING",
        )
        .bind(KIND_ACCESS_TOKEN)
        .bind(jti)
        .bind(expires_at.unix_millis())
        .execute(&self.writer)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn revocations_after(
        &self,
        after: i64,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, value, expires_at FROM revocations \
             WHERE seq > ? AND expires_at > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(now.unix_millis())
        .bind(limit_to_db(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_error)?;
        rows.iter()
            .map(|row| {
                revocation_from_db(
                    get(row, "seq")?,
                    &get::<String>(row, "kind")?,
                    get(row, "value")?,
                    get(row, "expires_at")?,
                )
            })
            .collect()
    }
}
