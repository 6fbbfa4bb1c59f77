//! The revocation log of the PostgreSQL backend: what replicas and verifiers follow.

use async_trait::async_trait;
use latchkey_core::store::{RevocationEntry, RevocationStore, StoreError};
use latchkey_core::time::Timestamp;
use sqlx::PgConnection;

use super::{get, PostgresStore};
use crate::convert::{limit_to_db, revocation_from_db, KIND_ACCESS_TOKEN};
use crate::error::map_error;

/// Append to the revocation log inside the caller's transaction.
///
/// A `BIGSERIAL` hands out numbers in call order, not commit order: without a lock, an
/// entry with a smaller `seq` could become visible after a reader has already moved its
/// cursor past a larger one, and would be skipped for good. The advisory lock, held
/// until the transaction ends, makes `seq` order commit order.
pub(super) async fn append_revocation(
    conn: &mut PgConnection,
    kind: &str,
    value: &str,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(REVOCATION_APPEND_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(map_error)?;
    sqlx::query(
        "INSERT INTO revocations (kind, value, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (kind, value) DO NOTHING",
    )
    .bind(kind)
    .bind(value)
    .bind(expires_at.unix_millis())
    .execute(&mut *conn)
    .await
    .map_err(map_error)?;
    Ok(())
}

/// Key of the transaction-level advisory lock that serialises appends to the
/// revocation log (the bytes of "LtchRevk").
const REVOCATION_APPEND_LOCK: i64 = 0x4c74_6368_5265_766b;

#[async_trait]
impl RevocationStore for PostgresStore {
    async fn deny_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        append_revocation(&mut tx, KIND_ACCESS_TOKEN, jti, expires_at).await?;
        tx.commit().await.map_err(map_error)
    }

    async fn revocations_after(
        &self,
        after: i64,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, value, expires_at FROM revocations \
             WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(now.unix_millis())
        .bind(limit_to_db(limit))
        .fetch_all(&self.pool)
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
