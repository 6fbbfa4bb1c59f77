//! The conformance cases, one `async fn(Harness)` each, backend-neutral.

mod accounts;
mod audit;
mod email;
mod keys;
mod maintenance;
mod mfa;
mod registration;
mod revocations;
mod rotation_batches;
mod sealed;
mod sessions;
mod users;
mod webhooks;

pub(crate) use accounts::*;
pub(crate) use audit::*;
pub(crate) use email::*;
pub(crate) use keys::*;
pub(crate) use maintenance::*;
pub(crate) use mfa::*;
pub(crate) use registration::*;
pub(crate) use revocations::*;
pub(crate) use rotation_batches::*;
pub(crate) use sealed::*;
pub(crate) use sessions::*;
pub(crate) use users::*;
pub(crate) use webhooks::*;
