//! Values the server seals before storing them (TOTP secrets, queued mail), listed and
//! replaced so that they can be sealed again under another key: the master secret's,
//! once `LATCHKEY_MASTER_SECRET_FILE` is configured. Re-exported from [`crate::store`].

use async_trait::async_trait;

use crate::model::UserId;
use crate::store::StoreError;

/// Where a sealed value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedField {
    /// A user's TOTP secret (pending or confirmed).
    TotpSecret(UserId),
    /// The payload of a mail not yet settled (id in the outbox).
    MailPayload(i64),
}

/// A sealed value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// Where.
    pub field: SealedField,
    /// The sealed bytes.
    pub sealed: Vec<u8>,
}

/// A sealed value to replace: `new` in place of `old`, only if the field still holds
/// `old` (a compare-and-set, so a value changed meanwhile is left alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reseal {
    /// Where.
    pub field: SealedField,
    /// What was read.
    pub old: Vec<u8>,
    /// What to store instead.
    pub new: Vec<u8>,
}

/// Sealed values, for sealing them again.
#[async_trait]
pub trait SealedStore: Send + Sync {
    /// Every TOTP secret and every payload of mail not yet settled.
    async fn sealed_values(&self) -> Result<Vec<SealedValue>, StoreError>;
    /// Apply every replacement whose field still holds its `old` value, in one
    /// transaction. Returns how many were applied.
    async fn reseal(&self, reseals: &[Reseal]) -> Result<u64, StoreError>;
}
