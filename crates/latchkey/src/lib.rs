//! Latchkey: an authentication token server, as a library and the `latchkey` binary.
//!
//! - [`config::Config`]: every setting, from flags and `LATCHKEY_*` variables;
//! - [`service::AuthService`]: the use cases, free of HTTP;
//! - [`http::router`]: the axum routes, mountable in another app;
//! - [`app::Application`]: wiring and the background tasks.

pub mod app;
pub mod clients;
pub mod clock;
pub mod config;
pub mod hashing;
pub mod http;
pub mod login_failures;
pub mod mail;
pub mod ratelimit;
pub mod redis_link;
pub mod revocation;
pub mod service;
pub mod telemetry;
pub mod token_cache;

pub use app::Application;
pub use config::Config;
