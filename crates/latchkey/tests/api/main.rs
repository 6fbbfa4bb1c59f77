//! Integration tests: each starts the real server (the same `Application` the binary
//! runs) on a random port with its own database, and drives it over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod helpers;
mod mail_sink;

mod accounts;
mod admin_reauth;
mod admin_users;
mod api_fuzz;
mod browser;
mod browser_ui;
mod brute_force;
mod cli;
mod crash;
mod email;
mod email_delivery;
mod faults;
mod flow;
mod fuzz_replay;
mod hardening;
mod input;
mod interop;
mod key_revocation;
mod keys;
mod mfa;
mod oauth;
mod oauth_backoff;
mod observability;
mod openapi;
#[cfg(feature = "otlp")]
mod otlp;
mod passwords;
mod proof;
mod redis_shared;
mod registration;
mod replicas;
mod rotation;
mod sealing;
mod services;
mod tokens;
mod webhooks;
