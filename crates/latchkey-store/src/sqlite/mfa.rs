//! The second factor in the SQLite backend. Every change runs in one `BEGIN IMMEDIATE`
//! transaction on the writer, and a proof (TOTP step or recovery code) is spent by an
//! `UPDATE ... WHERE` that matches only while the proof is unspent: of two requests (or
//! two replicas on one file) presenting the same code, one updates a row and the other
//! none.

use async_trait::async_trait;
use latchkey_core::audit::SecurityEvent;
use latchkey_core::model::UserId;
use latchkey_core::store::{
    MfaChallenge, MfaCompletion, MfaProof, MfaStore, RecoveryCodeHash, StoreError,
    TotpConfirmation, TotpRecord,
};
use latchkey_core::time::Timestamp;
use sqlx::SqliteConnection;

use super::{get, insert_event, SqliteStore};
use crate::convert::{opt_ts, ts, user_id_from_text};
use crate::error::map_error;

/// Whether the user's second factor is on.
const TOTP_ACTIVE: &str =
    "SELECT EXISTS (SELECT 1 FROM user_totp WHERE user_id = ? AND confirmed_at IS NOT NULL)";

/// Spend `proof` for `user` inside a transaction; false if it was spent before (or is
/// not the user's, or the second factor is off).
async fn spend_proof(
    conn: &mut SqliteConnection,
    user: &str,
    proof: &MfaProof,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let result = match proof {
        MfaProof::TotpStep(step) => {
            sqlx::query(
                "UPDATE user_totp SET last_step = ?1 WHERE user_id = ?2 \
                 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < ?1)",
            )
            .bind(step)
            .bind(user)
            .execute(&mut *conn)
            .await
        }
        MfaProof::RecoveryCode(hash) => {
            sqlx::query(
                "UPDATE recovery_codes SET used_at = ?1 WHERE user_id = ?2 AND code_hash = ?3 \
                 AND used_at IS NULL AND EXISTS (SELECT 1 FROM user_totp \
                     WHERE user_id = ?2 AND confirmed_at IS NOT NULL)",
            )
            .bind(now.unix_millis())
            .bind(user)
            .bind(hash.as_slice())
            .execute(&mut *conn)
            .await
        }
    };
    Ok(result.map_err(map_error)?.rows_affected() == 1)
}

async fn insert_codes(
    conn: &mut SqliteConnection,
    user: &str,
    codes: &[RecoveryCodeHash],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?")
        .bind(user)
        .execute(&mut *conn)
        .await
        .map_err(map_error)?;
    for code in codes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash, used_at) VALUES (?, ?, NULL)")
            .bind(user)
            .bind(code.as_slice())
            .execute(&mut *conn)
            .await
            .map_err(map_error)?;
    }
    Ok(())
}

async fn totp_active(conn: &mut SqliteConnection, user: &str) -> Result<bool, StoreError> {
    sqlx::query_scalar(TOTP_ACTIVE)
        .bind(user)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_error)
}

#[async_trait]
impl MfaStore for SqliteStore {
    async fn totp(&self, user: UserId) -> Result<Option<TotpRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, sealed_secret, created_at, confirmed_at, last_step \
             FROM user_totp WHERE user_id = ?",
        )
        .bind(user.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(map_error)?;
        row.map(|row| {
            Ok(TotpRecord {
                user_id: user_id_from_text(&get::<String>(&row, "user_id")?)?,
                sealed_secret: get(&row, "sealed_secret")?,
                created_at: ts(get(&row, "created_at")?),
                confirmed_at: opt_ts(get(&row, "confirmed_at")?),
                last_step: get(&row, "last_step")?,
            })
        })
        .transpose()
    }

    async fn put_pending_totp(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        now: Timestamp,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let stored = sqlx::query(
            "INSERT INTO user_totp (user_id, sealed_secret, created_at, confirmed_at, last_step) \
             SELECT id, ?2, ?3, NULL, NULL FROM users WHERE id = ?1 \
             ON CONFLICT (user_id) DO UPDATE \
             SET sealed_secret = excluded.sealed_secret, created_at = excluded.created_at \
             WHERE user_totp.confirmed_at IS NULL",
        )
        .bind(user.to_string())
        .bind(sealed_secret)
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?
        .rows_affected()
            == 1;
        if stored {
            insert_event(&mut tx, event).await?;
        }
        tx.commit().await.map_err(map_error)?;
        Ok(stored)
    }

    async fn confirm_totp(&self, confirmation: &TotpConfirmation) -> Result<bool, StoreError> {
        let user = confirmation.user_id.to_string();
        let mut tx = self.begin_immediate().await?;
        let confirmed = sqlx::query(
            "UPDATE user_totp SET confirmed_at = ?1, last_step = ?2 \
             WHERE user_id = ?3 AND sealed_secret = ?4 AND confirmed_at IS NULL",
        )
        .bind(confirmation.now.unix_millis())
        .bind(confirmation.step)
        .bind(&user)
        .bind(confirmation.sealed_secret.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?
        .rows_affected()
            == 1;
        if !confirmed {
            tx.rollback().await.map_err(map_error)?;
            return Ok(false);
        }
        insert_codes(&mut tx, &user, &confirmation.recovery_codes).await?;
        insert_event(&mut tx, &confirmation.event).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(true)
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        proof: &MfaProof,
        codes: &[RecoveryCodeHash],
        now: Timestamp,
        event: &SecurityEvent,
    ) -> Result<MfaCompletion, StoreError> {
        let user = user.to_string();
        let mut tx = self.begin_immediate().await?;
        if !totp_active(&mut tx, &user).await? {
            tx.rollback().await.map_err(map_error)?;
            return Ok(MfaCompletion::Gone);
        }
        if !spend_proof(&mut tx, &user, proof, now).await? {
            tx.rollback().await.map_err(map_error)?;
            return Ok(MfaCompletion::ProofRefused);
        }
        insert_codes(&mut tx, &user, codes).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(MfaCompletion::Completed)
    }

    async fn unused_recovery_codes(&self, user: UserId) -> Result<u32, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
        )
        .bind(user.to_string())
        .fetch_one(&self.reader)
        .await
        .map_err(map_error)?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn delete_totp(
        &self,
        user: UserId,
        proof: Option<&MfaProof>,
        now: Timestamp,
        event: &SecurityEvent,
    ) -> Result<MfaCompletion, StoreError> {
        let user = user.to_string();
        let mut tx = self.begin_immediate().await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM user_totp WHERE user_id = ?)")
                .bind(&user)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_error)?;
        let active = totp_active(&mut tx, &user).await?;
        // A user turns off only an active factor; an admin also clears a pending one.
        if !exists || (proof.is_some() && !active) {
            tx.rollback().await.map_err(map_error)?;
            return Ok(MfaCompletion::Gone);
        }
        if let Some(proof) = proof {
            if !spend_proof(&mut tx, &user, proof, now).await? {
                tx.rollback().await.map_err(map_error)?;
                return Ok(MfaCompletion::ProofRefused);
            }
        }
        for statement in [
            "DELETE FROM recovery_codes WHERE user_id = ?",
            "DELETE FROM mfa_challenges WHERE user_id = ?",
            "DELETE FROM user_totp WHERE user_id = ?",
        ] {
            sqlx::query(statement)
                .bind(&user)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        }
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(MfaCompletion::Completed)
    }

    async fn spend_mfa_proof(
        &self,
        user: UserId,
        proof: &MfaProof,
        now: Timestamp,
        event: Option<&SecurityEvent>,
    ) -> Result<MfaCompletion, StoreError> {
        let user = user.to_string();
        let mut tx = self.begin_immediate().await?;
        if !totp_active(&mut tx, &user).await? {
            tx.rollback().await.map_err(map_error)?;
            return Ok(MfaCompletion::Gone);
        }
        if !spend_proof(&mut tx, &user, proof, now).await? {
            tx.rollback().await.map_err(map_error)?;
            return Ok(MfaCompletion::ProofRefused);
        }
        if let Some(event) = event {
            insert_event(&mut tx, event).await?;
        }
        tx.commit().await.map_err(map_error)?;
        Ok(MfaCompletion::Completed)
    }

    async fn insert_mfa_challenge(&self, challenge: &MfaChallenge) -> Result<(), StoreError> {
        let mut tx = self.begin_immediate().await?;
        sqlx::query("DELETE FROM mfa_challenges WHERE expires_at < ?")
            .bind(challenge.created_at.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        sqlx::query(
            "INSERT INTO mfa_challenges (token_hash, user_id, password_hash, refresh_delivery, \
             created_at, expires_at, failures, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(challenge.token_hash.as_slice())
        .bind(challenge.user_id.to_string())
        .bind(&challenge.password_hash)
        .bind(&challenge.refresh_delivery)
        .bind(challenge.created_at.unix_millis())
        .bind(challenge.expires_at.unix_millis())
        .bind(i64::from(challenge.failures))
        .bind(challenge.used.then_some(challenge.created_at.unix_millis()))
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(())
    }

    async fn mfa_challenge(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, password_hash, refresh_delivery, created_at, expires_at, \
             failures, used_at FROM mfa_challenges WHERE token_hash = ?",
        )
        .bind(token_hash.as_slice())
        .fetch_optional(&self.reader)
        .await
        .map_err(map_error)?;
        row.map(|row| {
            Ok(MfaChallenge {
                token_hash: *token_hash,
                user_id: user_id_from_text(&get::<String>(&row, "user_id")?)?,
                password_hash: get(&row, "password_hash")?,
                refresh_delivery: get(&row, "refresh_delivery")?,
                created_at: ts(get(&row, "created_at")?),
                expires_at: ts(get(&row, "expires_at")?),
                failures: u32::try_from(get::<i64>(&row, "failures")?).unwrap_or(u32::MAX),
                used: get::<Option<i64>>(&row, "used_at")?.is_some(),
            })
        })
        .transpose()
    }

    async fn count_mfa_challenge_failure(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<u32>, StoreError> {
        let failures: Option<i64> = sqlx::query_scalar(
            "UPDATE mfa_challenges SET failures = failures + 1 \
             WHERE token_hash = ? AND used_at IS NULL RETURNING failures",
        )
        .bind(token_hash.as_slice())
        .fetch_optional(&self.writer)
        .await
        .map_err(map_error)?;
        Ok(failures.map(|f| u32::try_from(f).unwrap_or(u32::MAX)))
    }

    async fn complete_mfa_challenge(
        &self,
        token_hash: &[u8; 32],
        proof: &MfaProof,
        now: Timestamp,
        max_failures: u32,
    ) -> Result<MfaCompletion, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let user: Option<String> = sqlx::query_scalar(
            "UPDATE mfa_challenges SET used_at = ?1 WHERE token_hash = ?2 AND used_at IS NULL \
             AND expires_at > ?1 AND failures < ?3 RETURNING user_id",
        )
        .bind(now.unix_millis())
        .bind(token_hash.as_slice())
        .bind(i64::from(max_failures))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_error)?;
        let Some(user) = user else {
            tx.rollback().await.map_err(map_error)?;
            return Ok(MfaCompletion::Gone);
        };
        if !totp_active(&mut tx, &user).await? {
            tx.rollback().await.map_err(map_error)?;
            return Ok(MfaCompletion::Gone);
        }
        if !spend_proof(&mut tx, &user, proof, now).await? {
            tx.rollback().await.map_err(map_error)?;
            return Ok(MfaCompletion::ProofRefused);
        }
        tx.commit().await.map_err(map_error)?;
        Ok(MfaCompletion::Completed)
    }
}
