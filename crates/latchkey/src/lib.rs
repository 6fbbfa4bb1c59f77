//! Latchkey: an authentication token server, as a library and the `latchkey` binary.
//!
//! - [`config::Config`]: every setting, from flags and `LATCHKEY_*` variables;
//! - [`service::AuthService`]: the use cases, free of HTTP;
//! - [`http::router`]: the axum routes, mountable in another app;
//! - [`app::Application`]: wiring and the background tasks.

pub mod app;
mod clients;
pub mod clock;
pub mod config;
mod hashing;
pub mod http;
mod login_failures;
pub mod mail;
mod outbox;
mod ratelimit;
mod redis_link;
mod revocation;
pub mod service;
mod telemetry;
mod token_cache;
mod ui_settings;
pub mod webhooks;

pub use app::Application;
pub use config::Config;
