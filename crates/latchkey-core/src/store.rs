//! What Latchkey needs from storage, one trait per capability, backend-neutral.
//!
//! Backends live in the `latchkey-store` crate. Business logic never branches on the
//! backend: it holds an `Arc<dyn Store>` and calls these methods. Every method that
//! changes state that matters (rotation, revocation) is atomic in the backend.

use async_trait::async_trait;

use crate::audit::SecurityEvent;
use crate::device::Device;
use crate::email::{EmailTokenHash, EmailTokenPurpose, StoredEmailToken};
use crate::mfa::AuthMethods;
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
    /// Apply a change of roles or disabled state as one compare-and-set (see
    /// [`UserUpdate`]), revoking the user's live sessions in the same transaction when
    /// asked.
    async fn update_user(&self, update: &UserUpdate) -> Result<UserUpdateOutcome, StoreError>;
    /// Delete a user with their sessions, tokens and devices, revoking the live sessions
    /// in the same transaction (so access tokens die at once). Security events keep the
    /// user id only.
    async fn delete_user(&self, deletion: &UserDeletion) -> Result<UserUpdateOutcome, StoreError>;
    /// Replace a password hash if it is still `expected_hash`, revoking the user's other
    /// live sessions in the same transaction.
    async fn change_password(
        &self,
        change: &PasswordChange,
    ) -> Result<UserUpdateOutcome, StoreError>;
}

/// The revocation of sessions as part of a larger change: when, until when their access
/// tokens must be refused, and the event recorded once per revoked session (with its
/// `session_id` filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRevocation {
    /// The time of the revocation.
    pub now: Timestamp,
    /// The revocation log entries stay in force until then.
    pub access_tokens_until: Timestamp,
    /// The event to record per session.
    pub event: SecurityEvent,
}

/// A user's roles and disabled state: what an admin changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAccess {
    /// The roles.
    pub roles: Vec<Role>,
    /// When the account was disabled, if it is.
    pub disabled_at: Option<Timestamp>,
}

/// A change to a user's access, decided on `expected` (applied only if the stored
/// user still has exactly those roles and that disabled state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserUpdate {
    /// Whose.
    pub id: UserId,
    /// What the decision was made on.
    pub expected: UserAccess,
    /// What to store.
    pub new: UserAccess,
    /// Refuse with [`UserUpdateOutcome::LastAdmin`] unless another enabled admin exists
    /// (set when the change takes an enabled admin's admin rights away).
    pub keep_an_admin: bool,
    /// Revoke the user's live sessions too (privileges reduced).
    pub revoke_sessions: Option<SessionRevocation>,
}

/// The deletion of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDeletion {
    /// Whose.
    pub id: UserId,
    /// As in [`UserUpdate::keep_an_admin`].
    pub keep_an_admin: bool,
    /// The revocation of their live sessions.
    pub revocation: SessionRevocation,
}

/// A password change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordChange {
    /// Whose.
    pub id: UserId,
    /// The hash the change was decided on.
    pub expected_hash: String,
    /// The new hash.
    pub new_hash: String,
    /// The session that goes on (the one that asked); every other is revoked.
    pub keep_session: Option<SessionId>,
    /// The revocation of the other sessions.
    pub revocation: SessionRevocation,
}

/// How a user change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserUpdateOutcome {
    /// Applied; these sessions were revoked with it.
    Applied {
        /// The sessions revoked.
        revoked: Vec<SessionId>,
    },
    /// Nothing changed: the user is gone or changed since the decision. Re-read and
    /// decide again.
    Conflict,
    /// Nothing changed: the change would leave no enabled admin.
    LastAdmin,
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
    /// The client's address, kept as the session's last address.
    pub client_ip: Option<String>,
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

/// A login about to become a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The session (generation 0, unrevoked).
    pub session: Session,
    /// Its first refresh token.
    pub first_token: RefreshTokenHash,
    /// The password hash the login was checked against: the session is made only if the
    /// user still has it and is not disabled.
    pub password_hash: String,
    /// The client's address.
    pub client_ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The device, for the session list and new-device detection.
    pub device: Device,
    /// How the user proved who they are (kept for the session's access tokens' `amr`).
    pub auth_methods: AuthMethods,
}

/// How creating a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateSessionOutcome {
    /// Stored.
    Created {
        /// The user's roles as of the session's creation (for its first access token).
        roles: Vec<Role>,
        /// When this user last logged in from this device before now, if ever.
        device_last_seen: Option<Timestamp>,
    },
    /// Nothing stored: the user is gone, disabled, or changed password meanwhile.
    UserChanged,
}

/// A session as its owner sees it in a session list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDetails {
    /// The session.
    pub session: Session,
    /// When its newest refresh token was issued: the login or the last refresh.
    pub last_used_at: Timestamp,
    /// The address it was made from.
    pub client_ip: Option<String>,
    /// The address of its last refresh (or login).
    pub last_ip: Option<String>,
    /// The `User-Agent` it was made with.
    pub user_agent: Option<String>,
    /// A readable device name.
    pub device: String,
}

/// Sessions (refresh-token families).
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Store a new session with its first refresh token (generation 0) and note the
    /// device, in one transaction, if the user is still as the login saw them.
    async fn create_session(&self, new: &NewSession) -> Result<CreateSessionOutcome, StoreError>;
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
    /// The user's unrevoked sessions, newest first.
    async fn user_sessions(&self, user: UserId) -> Result<Vec<SessionDetails>, StoreError>;
    /// Revoke every unrevoked session of `user` but `except`, each with its log entry and
    /// event, in one transaction. Returns the sessions revoked.
    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        revocation: &SessionRevocation,
    ) -> Result<Vec<SessionId>, StoreError>;
}

/// What a revocation log entry revokes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Revoked {
    /// One access token, by `jti`.
    AccessToken(String),
    /// Every access token of a session, by `sid`.
    Session(SessionId),
    /// Every access token signed with a key, by `kid` (a leaked key).
    Key(String),
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
    /// Revoke a retired key: delete it and, in the same transaction, append its `kid` to
    /// the revocation log until `log_until` (when every token it signed has expired).
    /// Returns false, changing nothing, if there is no such retired key.
    async fn revoke_signing_key(&self, kid: &str, log_until: Timestamp)
        -> Result<bool, StoreError>;
    /// Delete keys retired before `cutoff`. Returns how many.
    async fn delete_signing_keys_retired_before(
        &self,
        cutoff: Timestamp,
    ) -> Result<u64, StoreError>;
    /// Replace the private material of key `kid` if it is still `expected` (sealing keys
    /// stored before sealing was configured). Returns whether it was replaced.
    async fn replace_signing_key_material(
        &self,
        kid: &str,
        expected: &[u8],
        replacement: &[u8],
    ) -> Result<bool, StoreError>;
    /// The secret stored under `name`, storing `candidate` first if there is none yet.
    /// Concurrent callers all get the same secret.
    async fn secret_or_insert(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// The audit log of security events.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Append an event, and queue its webhook message for every endpoint (see
    /// [`WebhookStore`]) in the same transaction when it is one that is sent.
    async fn record_event(&self, event: &SecurityEvent) -> Result<(), StoreError>;
    /// The newest `limit` events, newest first, optionally only those of one user.
    async fn recent_events(
        &self,
        user: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, StoreError>;
    /// A page of the log in `(at, id)` order, with each event's id and its account's
    /// current address, optionally only of one user: with `after`, the first `limit`
    /// entries after that position; without, the last `limit` entries.
    async fn logged_events(
        &self,
        user: Option<UserId>,
        after: Option<EventPosition>,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, StoreError>;
}

/// A position in the audit log: entries are ordered by time, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventPosition {
    /// The event's time.
    pub at: Timestamp,
    /// The event's id (unique; not in commit order on PostgreSQL).
    pub id: i64,
}

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Where it is in the log.
    pub position: EventPosition,
    /// The event.
    pub event: SecurityEvent,
    /// The current address of its account, if it has one that still exists.
    pub email: Option<Email>,
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
    /// How many sessions are live: not revoked, created after `created_after` (the
    /// absolute lifetime) and with their newest refresh token issued after `used_after`
    /// (the idle lifetime). For the live-sessions gauge; one counting query.
    async fn count_live_sessions(
        &self,
        created_after: Timestamp,
        used_after: Timestamp,
    ) -> Result<u64, StoreError>;
}

pub use crate::mfa_store::{
    MfaChallenge, MfaCompletion, MfaProof, MfaStore, RecoveryCodeHash, TotpConfirmation, TotpRecord,
};
pub use crate::registration_store::{
    Registration, RegistrationOutcome, RegistrationStore, TakenAddress,
};
pub use crate::sealed_store::{Reseal, SealedField, SealedStore, SealedValue};
pub use crate::webhook_store::{QueuedWebhook, WebhookDelivery, WebhookStore};

/// Everything a Latchkey server needs from its store.
pub trait Store:
    UserStore
    + SessionStore
    + RevocationStore
    + KeyStore
    + AuditLog
    + Maintenance
    + MfaStore
    + EmailStore
    + RegistrationStore
    + SealedStore
    + WebhookStore
{
}

impl<T> Store for T where
    T: UserStore
        + SessionStore
        + RevocationStore
        + KeyStore
        + AuditLog
        + Maintenance
        + MfaStore
        + EmailStore
        + RegistrationStore
        + SealedStore
        + WebhookStore
{
}

/// Mail to be sent: written to the outbox, in the same transaction as the change it
/// tells of where there is one, and sent later by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMail {
    /// Which mail (a template name), kept in clear for the record.
    pub kind: String,
    /// Recipient, subject data and links, sealed ([`crate::email::EmailKeys::seal`]).
    pub payload: Vec<u8>,
    /// When it was queued.
    pub created_at: Timestamp,
}

/// A queued mail claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    /// Its id in the outbox.
    pub id: i64,
    /// Which mail.
    pub kind: String,
    /// The sealed payload.
    pub payload: Vec<u8>,
    /// Attempts so far, this one not counted.
    pub attempts: u32,
}

/// How an attempt to deliver what an outbox holds (a mail, a webhook message) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryAttempt {
    /// Delivered (to the mail server, to the webhook receiver); the payload is dropped.
    Sent,
    /// Failed; try again at `at`.
    Retry {
        /// When.
        at: Timestamp,
        /// Why it failed (no secrets).
        error: String,
    },
    /// Failed for the last time; recorded as failed, the payload dropped.
    GiveUp {
        /// Why it failed (no secrets).
        error: String,
    },
}

/// A new e-mail token with the mail that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmailToken {
    /// The token as stored (`used_at` empty).
    pub token: StoredEmailToken,
    /// The mail with its link.
    pub mail: OutboxMail,
}

/// A password-reset request for an address that may or may not have an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordResetRequest {
    /// The address asked for.
    pub email: Email,
    /// The token to store if the address has an enabled account (its `user_id` is
    /// replaced by the account's).
    pub token: StoredEmailToken,
    /// Its mail, queued with it.
    pub mail: OutboxMail,
}

/// What using an e-mail token does besides spending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailTokenEffect {
    /// Set the password, revoke every session (the address counts as verified too).
    ResetPassword {
        /// The new hash.
        new_hash: String,
        /// The revocation of all sessions.
        revocation: SessionRevocation,
    },
    /// Mark the account's address verified (if it is still the token's address).
    VerifyAddress,
    /// Move the account to the token's address, verified.
    ChangeAddress,
}

/// The use of an e-mail token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTokenUse {
    /// The token presented.
    pub hash: EmailTokenHash,
    /// What it must be for.
    pub purpose: EmailTokenPurpose,
    /// The user the decision was made for (the token's, read a moment ago).
    pub user_id: UserId,
    /// Now: the token must be unexpired and unused at this instant.
    pub now: Timestamp,
    /// What it does.
    pub effect: EmailTokenEffect,
    /// A notice queued with the change.
    pub notice: Option<OutboxMail>,
}

/// How the use of an e-mail token ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailTokenOutcome {
    /// Spent, with every other unused token of the user for that purpose; the effect
    /// applied; these sessions revoked.
    Applied {
        /// The sessions revoked.
        revoked: Vec<SessionId>,
    },
    /// Nothing changed: unknown, used, expired, for another purpose or user, or the
    /// address no longer fits.
    Invalid,
    /// Nothing changed: the new address belongs to another account by now.
    EmailTaken,
}

/// E-mail tokens, verified addresses and the outbox of mail to send.
#[async_trait]
pub trait EmailStore: Send + Sync {
    /// Store a token and queue its mail, in one transaction.
    async fn issue_email_token(&self, new: &NewEmailToken) -> Result<(), StoreError>;
    /// Look the address up and, if it has an enabled account, store the token and queue
    /// the mail, in one transaction. Otherwise write an already settled outbox row
    /// without payload, so both answers cost the same store work. Returns the account, if any.
    async fn request_password_reset(
        &self,
        request: &PasswordResetRequest,
    ) -> Result<Option<UserId>, StoreError>;
    /// The token stored under this hash, used or not.
    async fn email_token(
        &self,
        hash: &EmailTokenHash,
    ) -> Result<Option<StoredEmailToken>, StoreError>;
    /// Spend a token as one compare-and-set, void the user's other tokens for the same
    /// purpose, apply its effect and queue the notice, all in one transaction.
    async fn use_email_token(&self, use_: &EmailTokenUse) -> Result<EmailTokenOutcome, StoreError>;
    /// When the user's current address was verified, if it was (`None` also for an
    /// unknown user).
    async fn email_verified_at(&self, user: UserId) -> Result<Option<Timestamp>, StoreError>;
    /// Queue a mail that goes with no other change.
    async fn enqueue_mail(&self, mail: &OutboxMail) -> Result<(), StoreError>;
    /// Claim up to `limit` queued mails due at `now`: each is leased until `lease_until`
    /// (not handed out again before then), so replicas sharing the store do not send the
    /// same mail at once.
    async fn claim_mail(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError>;
    /// Record how an attempt to send a claimed mail ended.
    async fn settle_mail(
        &self,
        id: i64,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Mails that were given up, newest first (for operators and tests).
    async fn failed_mail(&self, limit: u32) -> Result<Vec<(i64, String, String)>, StoreError>;
    /// Delete expired tokens and outbox rows settled before `settled_before`. Returns
    /// how many rows went.
    async fn purge_email(
        &self,
        now: Timestamp,
        settled_before: Timestamp,
    ) -> Result<u64, StoreError>;
}
