//! What the second factor needs from storage: the TOTP authenticator of each user, the
//! recovery codes (hashed), and the pending second steps of logins (`mfa_token`s,
//! hashed). Re-exported from [`crate::store`].
//!
//! Every proof of a code is applied by the store as a compare-and-set in the same
//! transaction as the change it allows: a TOTP step is accepted only if it is newer than
//! the last one accepted for the user, a recovery code only while unused. So a code
//! accepted on one replica is refused on every other.

use async_trait::async_trait;

use crate::audit::SecurityEvent;
use crate::model::UserId;
use crate::store::StoreError;
use crate::time::Timestamp;

/// The stored form of a recovery code (see [`crate::mfa::recovery_code_hash`]).
pub type RecoveryCodeHash = [u8; 32];

/// A user's TOTP authenticator as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// Whose.
    pub user_id: UserId,
    /// The secret, sealed by the server (never stored in the clear).
    pub sealed_secret: Vec<u8>,
    /// When this secret was enrolled.
    pub created_at: Timestamp,
    /// When it was confirmed; `None` while enrolment is pending (nothing active).
    pub confirmed_at: Option<Timestamp>,
    /// The newest time step accepted for this user.
    pub last_step: Option<i64>,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("user_id", &self.user_id)
            .field("sealed_secret", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// The activation of a pending TOTP secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpConfirmation {
    /// Whose.
    pub user_id: UserId,
    /// The pending secret the code was checked against: activated only if it is still
    /// the pending one.
    pub sealed_secret: Vec<u8>,
    /// The time step of the code that confirmed it (recorded as the last accepted).
    pub step: i64,
    /// The first set of recovery codes.
    pub recovery_codes: Vec<RecoveryCodeHash>,
    /// When.
    pub now: Timestamp,
    /// The event to record with it.
    pub event: SecurityEvent,
}

impl std::fmt::Debug for TotpConfirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpConfirmation")
            .field("user_id", &self.user_id)
            .field("step", &self.step)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// A code the user presented, as the store checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MfaProof {
    /// A TOTP code that matched this time step: accepted only if newer than the last
    /// accepted step.
    TotpStep(i64),
    /// A recovery code with this hash: accepted only if it is the user's and unused.
    RecoveryCode(RecoveryCodeHash),
}

/// How a change that needs a proof ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaCompletion {
    /// The proof was accepted (spent) and the change applied, in one transaction.
    Completed,
    /// Nothing changed: the code was used before (or is not the user's).
    ProofRefused,
    /// Nothing changed: the second factor is not on, or the login attempt is gone.
    Gone,
}

/// The second step of a login: what the `mfa_token` stands for.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    /// SHA-256 of the `mfa_token` (the token itself is never stored).
    pub token_hash: [u8; 32],
    /// Whose login it is.
    pub user_id: UserId,
    /// The password hash the first step was checked against.
    pub password_hash: String,
    /// Where the client asked for its refresh token in the first step.
    pub refresh_delivery: String,
    /// When the first step succeeded.
    pub created_at: Timestamp,
    /// When the token stops working.
    pub expires_at: Timestamp,
    /// Wrong codes presented so far.
    pub failures: u32,
    /// Whether it completed a login already.
    pub used: bool,
}

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .field("failures", &self.failures)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

/// The second factor's storage.
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// The user's TOTP authenticator, pending or active.
    async fn totp(&self, user: UserId) -> Result<Option<TotpRecord>, StoreError>;
    /// Store a pending (unconfirmed) secret, replacing a pending one, and record
    /// `event`. Returns false, storing nothing, if the user has an active one or is gone.
    async fn put_pending_totp(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        now: Timestamp,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError>;
    /// Activate the pending secret, store the first recovery codes and record the
    /// event, if `sealed_secret` is still the pending one. Returns whether it did.
    async fn confirm_totp(&self, confirmation: &TotpConfirmation) -> Result<bool, StoreError>;
    /// Spend `proof` and replace the user's recovery codes with `codes`, recording
    /// `event`, in one transaction.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        proof: &MfaProof,
        codes: &[RecoveryCodeHash],
        now: Timestamp,
        event: &SecurityEvent,
    ) -> Result<MfaCompletion, StoreError>;
    /// How many of the user's recovery codes are unused.
    async fn unused_recovery_codes(&self, user: UserId) -> Result<u32, StoreError>;
    /// Turn the second factor off (authenticator, recovery codes and pending logins go),
    /// recording `event`: after spending `proof` if given (the user), without (an admin).
    /// [`MfaCompletion::Gone`] if there was nothing to turn off.
    async fn delete_totp(
        &self,
        user: UserId,
        proof: Option<&MfaProof>,
        now: Timestamp,
        event: &SecurityEvent,
    ) -> Result<MfaCompletion, StoreError>;
    /// Spend `proof` (a TOTP step or a recovery code) of the user's active factor on its
    /// own, for a change that happens elsewhere (a password reset by e-mail), recording
    /// `event` if given. [`MfaCompletion::Gone`] if the factor is not active.
    async fn spend_mfa_proof(
        &self,
        user: UserId,
        proof: &MfaProof,
        now: Timestamp,
        event: Option<&SecurityEvent>,
    ) -> Result<MfaCompletion, StoreError>;
    /// Store the second step of a login (and forget expired ones).
    async fn insert_mfa_challenge(&self, challenge: &MfaChallenge) -> Result<(), StoreError>;
    /// The login step whose token has this hash.
    async fn mfa_challenge(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<MfaChallenge>, StoreError>;
    /// Count one wrong code against an unused login step; returns the new count, `None`
    /// if there is no such unused step.
    async fn count_mfa_challenge_failure(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<u32>, StoreError>;
    /// Spend `proof` and mark the login step used, in one transaction, if the step is
    /// unused, unexpired at `now`, has fewer than `max_failures` wrong codes, and the
    /// user's second factor is on.
    async fn complete_mfa_challenge(
        &self,
        token_hash: &[u8; 32],
        proof: &MfaProof,
        now: Timestamp,
        max_failures: u32,
    ) -> Result<MfaCompletion, StoreError>;
}
