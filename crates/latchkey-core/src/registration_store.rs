//! Registration as one store call: the new account with its event and verification
//! mail, or, when the address has an account already, what to do instead, all in one
//! transaction. Re-exported from [`crate::store`].
//!
//! One call for both outcomes is what lets a server answer a registration of a taken
//! address exactly as a fresh one (`LATCHKEY_REGISTRATION_ENUMERATION=false`): the same
//! request does the same work, and the store, not a read a moment before, decides which
//! way it goes (two registrations of one address at once: one account, one notice).

use async_trait::async_trait;

use crate::audit::SecurityEvent;
use crate::model::User;
use crate::store::{NewEmailToken, OutboxMail, StoreError};
use crate::time::Timestamp;

/// A registration to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The new account.
    pub user: User,
    /// Its `user_registered` event.
    pub registered: SecurityEvent,
    /// Its verification link and mail.
    pub verification: NewEmailToken,
    /// What to write when the address has an account already; `None`: nothing.
    pub if_taken: Option<TakenAddress>,
}

/// What a registration of an address that has an account writes instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenAddress {
    /// The event to record for the existing account (the store fills in its `user_id`,
    /// and its `detail` with [`TakenAddress::NOTICE_QUEUED`] when the notice is queued).
    pub event: SecurityEvent,
    /// The notice to queue to the address ...
    pub notice: OutboxMail,
    /// ... unless an event of the same kind recorded at or after this time says a notice
    /// was queued: at most one notice per address in that while.
    pub quiet_since: Timestamp,
}

impl TakenAddress {
    /// The `detail` of the event of an attempt whose notice was queued.
    pub const NOTICE_QUEUED: &'static str = "owner notified";
}

/// How a registration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationOutcome {
    /// The account was made, with its event and verification mail.
    Created,
    /// The address has an account: nothing of the new one was written, only the
    /// registration's [`TakenAddress`] event, if any, and its notice if this says so.
    Taken {
        /// Whether the notice was queued.
        notified: bool,
    },
}

/// Registering accounts.
#[async_trait]
pub trait RegistrationStore: Send + Sync {
    /// Insert the user, its event, its verification token and mail; or, if the address
    /// is taken, record `if_taken`'s event for the existing account and queue its
    /// notice unless one was queued since `quiet_since`. One transaction either way.
    async fn register(
        &self,
        registration: &Registration,
    ) -> Result<RegistrationOutcome, StoreError>;
}
