//! What Latchkey needs from storage, one trait per capability, backend-neutral.
//!
//! Backends live in the `latchkey-store` crate. Business logic never branches on the
//! backend: it holds an `Arc<dyn Store>` and calls these methods. Every method that
//! changes state that matters (rotation, revocation) is atomic in the backend.

use async_trait::async_trait;

use crate::audit::SecurityEvent;
use crate::model::{Email, RefreshState, Role, Session, SessionId, User, UserId};
use crate::refresh::{RefreshTokenHash, RefreshTokenLookup};
use crate::time::Timestamp;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A user with this e-mail address exists already.
    #[error("a user with this e-mail address exists already")]
    EmailTaken,
    /// The backend could not be reached or timed out; the operation did not happen.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Too many operations are waiting already (a bounded queue is full); this one was
    /// refused at once and did not happen. Retry shortly.
    #[error("the store is busy; retry shortly")]
    Busy,
    /// The backend answered with data this version cannot understand, or another
    /// unexpected failure.
    #[error("store failure: {0}")]
    Internal(String),
}

/// Users and their credentials.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Insert a new user. Fails with [`StoreError::EmailTaken`] if the address is in use.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    /// The user with this (normalised) address.
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    /// The user with this id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Up to `limit` users ordered by e-mail address, starting after `after` if given.
    async fn list_users(&self, after: Option<&Email>, limit: u32) -> Result<Vec<User>, StoreError>;
    /// Replace a user's roles. Returns false if there is no such user.
    async fn set_user_roles(&self, id: UserId, roles: &[Role]) -> Result<bool, StoreError>;
}

/// The spending of one refresh token and the issuing of its successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The family.
    pub session_id: SessionId,
    /// Hash of the token presented (to be marked spent).
    pub presented: RefreshTokenHash,
    /// Generation of the presented token; the session's latest must still be this.
    pub presented_generation: u32,
    /// Hash of the successor (generation `presented_generation + 1`).
    pub successor: RefreshTokenHash,
    /// The time of the rotation: the presented token's `spent_at`, the successor's `issued_at`.
    pub now: Timestamp,
}

/// How an attempted rotation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The presented token was spent and the successor stored, all in one transaction.
    Rotated,
    /// Nothing changed: another request spent the token first, or the session was
    /// revoked meanwhile. Reload the state and decide again.
    Conflict,
}

/// Sessions (refresh-token families).
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Store a new session together with its first refresh token (generation 0).
    async fn create_session(
        &self,
        session: &Session,
        first_token: &RefreshTokenHash,
    ) -> Result<(), StoreError>;
    /// The stored token `lookup` finds, its session and its user's roles, in one read:
    /// the token at `lookup.locator` (or, without a locator, the token stored before
    /// tokens carried one) whose hash is `lookup.hash`. `None` if there is none.
    async fn refresh_state(
        &self,
        lookup: &RefreshTokenLookup,
    ) -> Result<Option<RefreshState>, StoreError>;
    /// Apply a rotation as one compare-and-set: the token must be unspent and the
    /// session unrevoked with `latest_generation == presented_generation`.
    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError>;
    /// The session with this id.
    async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError>;
    /// Revoke a session and, in the same transaction, append it to the revocation log
    /// (in force until `access_tokens_until`) and record `event`. Idempotent: returns
    /// false, and records nothing, if the session was revoked already or is unknown.
    async fn revoke_session(
        &self,
        id: SessionId,
        now: Timestamp,
        access_tokens_until: Timestamp,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError>;
}

/// What a revocation log entry revokes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Revoked {
    /// One access token, by `jti`.
    AccessToken(String),
    /// Every access token of a session, by `sid`.
    Session(SessionId),
}

/// One entry of the revocation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEntry {
    /// Position in the log; strictly increasing.
    pub seq: i64,
    /// What is revoked.
    pub revoked: Revoked,
    /// After this instant every token the entry kills has expired anyway.
    pub expires_at: Timestamp,
}

/// The revocation log: the access-token denylist and revoked sessions, each entry kept
/// as long as the tokens it kills live. It is the truth from which in-process caches
/// (and other replicas) learn what is revoked.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Append the denial of one access token. Idempotent per `jti`.
    async fn deny_access_token(&self, jti: &str, expires_at: Timestamp) -> Result<(), StoreError>;
    /// Entries with `seq > after` that are still in force at `now`, oldest first, at most `limit`.
    async fn revocations_after(
        &self,
        after: i64,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<RevocationEntry>, StoreError>;
}

/// A persisted signing key (private material included).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// Key id, as in the JWT header and the JWKS.
    pub kid: String,
    /// The JWS algorithm name (`EdDSA`, `ES256`, `RS256`, `HS256`).
    pub algorithm: String,
    /// PKCS#8 DER for asymmetric keys, the raw secret for HS256.
    pub private_key: Vec<u8>,
    /// When the key was made.
    pub created_at: Timestamp,
    /// When a newer key replaced it for signing; `None` for the active key.
    pub retired_at: Option<Timestamp>,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_key", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// Signing keys and other server secrets.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// All stored signing keys, newest first.
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError>;
    /// Store `key` as the active key only if there is no active key yet (first start,
    /// possibly on several replicas at once). Returns whether it was stored.
    async fn insert_first_signing_key(&self, key: &StoredSigningKey) -> Result<bool, StoreError>;
    /// Retire the active key (as of `key.created_at`) and make `key` the active one, atomically.
    async fn rotate_signing_key(&self, key: &StoredSigningKey) -> Result<(), StoreError>;
    /// Delete keys retired before `cutoff`. Returns how many.
    async fn delete_signing_keys_retired_before(
        &self,
        cutoff: Timestamp,
    ) -> Result<u64, StoreError>;
    /// The secret stored under `name`, storing `candidate` first if there is none yet.
    /// Concurrent callers all get the same secret.
    async fn secret_or_insert(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// The audit log of security events.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Append an event.
    async fn record_event(&self, event: &SecurityEvent) -> Result<(), StoreError>;
    /// The newest `limit` events, newest first, optionally only those of one user.
    async fn recent_events(
        &self,
        user: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, StoreError>;
}

/// Housekeeping and health.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Check that the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Delete revocation entries expired at `now` and sessions (with their tokens)
    /// created before `sessions_created_before`. Returns how many rows went.
    async fn purge_expired(
        &self,
        now: Timestamp,
        sessions_created_before: Timestamp,
    ) -> Result<u64, StoreError>;
}

/// Everything a Latchkey server needs from its store.
pub trait Store:
    UserStore + SessionStore + RevocationStore + KeyStore + AuditLog + Maintenance
{
}

impl<T> Store for T where
    T: UserStore + SessionStore + RevocationStore + KeyStore + AuditLog + Maintenance
{
}
