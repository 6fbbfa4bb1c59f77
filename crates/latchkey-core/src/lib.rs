//! Latchkey's domain core.
//!
//! Architecture invariant: nothing in this crate does network or disk I/O or reads the
//! clock. Time comes in as a [`time::Timestamp`] parameter; storage is reached only
//! through the traits in [`store`], implemented elsewhere.

pub mod accounts;
pub mod audit;
pub mod device;
pub mod email;
pub mod ids;
pub mod keys;
pub mod lockout;
pub mod mfa;
mod mfa_store;
pub mod model;
pub mod password;
pub mod refresh;
mod registration_store;
pub mod retry;
pub mod rotation;
mod sealed_store;
pub mod sealing;
pub mod store;
pub mod time;
pub mod webhook;
mod webhook_store;
