//! Conversions between domain values and their column representations that both
//! backends share, so SQLite and PostgreSQL store (and refuse) exactly the same things.

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::model::{Role, SessionId, UserId};
use latchkey_core::store::{RevocationEntry, Revoked, StoreError};
use latchkey_core::time::Timestamp;
use uuid::Uuid;

use crate::error::corrupt;

/// `revocations.kind` of an entry that denies one access token (by `jti`).
pub(crate) const KIND_ACCESS_TOKEN: &str = "access_token";
/// `revocations.kind` of an entry that revokes a whole session (by `sid`).
pub(crate) const KIND_SESSION: &str = "session";
/// `revocations.kind` of an entry that revokes a signing key (by `kid`).
pub(crate) const KIND_KEY: &str = "key";

/// Roles as stored: comma-joined names (role names never contain a comma).
pub(crate) fn roles_to_db(roles: &[Role]) -> String {
    roles.iter().map(Role::as_str).collect::<Vec<_>>().join(",")
}

/// Roles read back from the `roles` column.
pub(crate) fn roles_from_db(stored: &str) -> Result<Vec<Role>, StoreError> {
    if stored.is_empty() {
        return Ok(Vec::new());
    }
    stored
        .split(',')
        .map(|name| Role::parse(name).map_err(|_| corrupt("role name")))
        .collect()
}

/// A refresh-token generation as stored (BIGINT / INTEGER).
pub(crate) fn generation_to_db(generation: u32) -> i64 {
    i64::from(generation)
}

/// A refresh-token generation read back.
pub(crate) fn generation_from_db(stored: i64) -> Result<u32, StoreError> {
    u32::try_from(stored).map_err(|_| corrupt("refresh token generation"))
}

/// The generation of the successor of a token of generation `presented`.
pub(crate) fn next_generation(presented: u32) -> Result<u32, StoreError> {
    presented
        .checked_add(1)
        .ok_or_else(|| StoreError::Internal("refresh token generation overflow".to_owned()))
}

/// A timestamp read back from a BIGINT column of Unix milliseconds.
pub(crate) fn ts(stored: i64) -> Timestamp {
    Timestamp::from_unix_millis(stored)
}

/// An optional timestamp read back.
pub(crate) fn opt_ts(stored: Option<i64>) -> Option<Timestamp> {
    stored.map(Timestamp::from_unix_millis)
}

/// A `LIMIT` value.
pub(crate) fn limit_to_db(limit: u32) -> i64 {
    i64::from(limit)
}

/// A UUID read back from a TEXT column (SQLite).
pub(crate) fn uuid_from_text(stored: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(stored).map_err(|_| corrupt("identifier"))
}

/// A security event kind read back.
pub(crate) fn event_kind_from_db(stored: &str) -> Result<SecurityEventKind, StoreError> {
    SecurityEventKind::parse(stored).ok_or_else(|| corrupt("security event kind"))
}

/// A revocation log entry read back from `(seq, kind, value, expires_at)`.
pub(crate) fn revocation_from_db(
    seq: i64,
    kind: &str,
    value: String,
    expires_at: i64,
) -> Result<RevocationEntry, StoreError> {
    let revoked = match kind {
        KIND_ACCESS_TOKEN => Revoked::AccessToken(value),
        KIND_SESSION => Revoked::Session(SessionId::from(uuid_from_text(&value)?)),
        KIND_KEY => Revoked::Key(value),
        _ => return Err(corrupt("revocation kind")),
    };
    Ok(RevocationEntry {
        seq,
        revoked,
        expires_at: ts(expires_at),
    })
}

/// A user id read back from a TEXT column (SQLite).
pub(crate) fn user_id_from_text(stored: &str) -> Result<UserId, StoreError> {
    uuid_from_text(stored).map(UserId::from)
}

/// A session id read back from a TEXT column (SQLite).
pub(crate) fn session_id_from_text(stored: &str) -> Result<SessionId, StoreError> {
    uuid_from_text(stored).map(SessionId::from)
}

/// Whether two users' access is the same: the same roles in any order, and the same
/// disabled state.
pub(crate) fn same_access(
    a: &latchkey_core::store::UserAccess,
    b: &latchkey_core::store::UserAccess,
) -> bool {
    fn sorted(roles: &[Role]) -> Vec<&Role> {
        let mut roles: Vec<&Role> = roles.iter().collect();
        roles.sort();
        roles.dedup();
        roles
    }
    sorted(&a.roles) == sorted(&b.roles) && a.disabled_at == b.disabled_at
}

/// The event recorded for one session of a bulk revocation.
pub(crate) fn event_for_session(
    revocation: &latchkey_core::store::SessionRevocation,
    session: SessionId,
) -> latchkey_core::audit::SecurityEvent {
    let mut event = revocation.event.clone();
    event.session_id = Some(session);
    event
}
