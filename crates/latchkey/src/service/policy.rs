//! [`ServicePolicy`]: the lifetimes, identities and limits the use cases work with,
//! taken from the config once at start-up.

use std::time::Duration;

use latchkey_core::lockout::BackoffPolicy;
use latchkey_core::rotation::RotationPolicy;
use latchkey_core::sealing::{KeySealer, MasterSealers};
use secrecy::ExposeSecret;

use crate::config::{Config, RateSpec};

/// The lifetimes and identities the service works with, from the config.
#[derive(Clone)]
pub struct ServicePolicy {
    /// Rotation lifetimes.
    pub rotation: RotationPolicy,
    /// Access-token lifetime.
    pub access_ttl: Duration,
    /// Accepted clock skew.
    pub leeway: Duration,
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// Algorithm of newly made keys.
    pub algorithm: latchkey_verify::Algorithm,
    /// A configured HS256 secret, used as the active key instead of a stored one.
    pub hs256_secret: Option<Vec<u8>>,
    /// Rate limits.
    pub limits: RateLimits,
    /// How many verified access tokens to remember (0: verify every time).
    pub verified_token_cache: usize,
    /// Seal private signing keys, TOTP secrets and queued mail at rest, when a master
    /// secret is configured.
    pub master_sealers: Option<MasterSealers>,
    /// The issuer shown by authenticator apps for TOTP.
    pub mfa_issuer: String,
    /// How recent a login must be for sensitive changes (step-up).
    pub reauth_window: Duration,
    /// How recent a login must be for admin work.
    pub admin_max_auth_age: Duration,
    /// Whether registering a taken address answers 409 `email_taken` (else as a fresh
    /// registration, with a notice to the address).
    pub registration_enumeration: bool,
    /// E-mail: links, token lifetimes, limits, notices.
    pub email: super::EmailPolicy,
}

impl std::fmt::Debug for ServicePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServicePolicy")
            .field("rotation", &self.rotation)
            .field("access_ttl", &self.access_ttl)
            .field("leeway", &self.leeway)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithm", &self.algorithm)
            .field(
                "hs256_secret",
                &self.hs256_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("limits", &self.limits)
            .field("verified_token_cache", &self.verified_token_cache)
            .field(
                "master_sealers",
                &self.master_sealers.as_ref().map(|_| "<configured>"),
            )
            .field("mfa_issuer", &self.mfa_issuer)
            .field("reauth_window", &self.reauth_window)
            .field("admin_max_auth_age", &self.admin_max_auth_age)
            .field("registration_enumeration", &self.registration_enumeration)
            .field("email", &self.email)
            .finish()
    }
}

/// The configured rate limits and login back-off.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Registrations per IP.
    pub register_per_ip: RateSpec,
    /// Logins per IP.
    pub login_per_ip: RateSpec,
    /// Failed logins per account and client network.
    pub login_failures: BackoffPolicy,
    /// Failed logins per account over all networks: the ceiling against distributed
    /// guessing.
    pub login_failures_per_account: BackoffPolicy,
    /// Refreshes per IP.
    pub refresh_per_ip: RateSpec,
    /// Refreshes per account.
    pub refresh_per_account: RateSpec,
    /// Logouts per IP.
    pub logout_per_ip: RateSpec,
}

impl ServicePolicy {
    /// The policy the config describes, with the sealers made from the master secret
    /// the caller read (see [`crate::config::Config::master_secret_file`]).
    pub fn from_config(config: &Config, master_sealers: Option<MasterSealers>) -> Self {
        let login_failures = BackoffPolicy {
            free_failures: config.login_free_failures,
            base: Duration::from_secs(1),
            cap: config.login_backoff_cap.0,
            forget_after: Duration::from_secs(24 * 3600),
        };
        Self {
            rotation: RotationPolicy {
                idle_ttl: config.refresh_ttl.0,
                session_lifetime: config.session_lifetime.0,
                reuse_grace: config.reuse_grace.0,
            },
            access_ttl: config.access_ttl.0,
            leeway: config.leeway.0,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            algorithm: config.algorithm,
            hs256_secret: config
                .hs256_secret
                .as_ref()
                .map(|s| s.expose_secret().as_bytes().to_vec()),
            verified_token_cache: config.verified_token_cache,
            master_sealers,
            mfa_issuer: config.mfa_issuer.clone(),
            reauth_window: config.reauth_window.0,
            admin_max_auth_age: config.admin_max_auth_age.0,
            registration_enumeration: config.registration_enumeration,
            email: super::EmailPolicy::from_config(config),
            limits: RateLimits {
                register_per_ip: config.rate_register_per_ip,
                login_per_ip: config.rate_login_per_ip,
                login_failures,
                login_failures_per_account: BackoffPolicy {
                    free_failures: config.login_account_ceiling,
                    ..login_failures
                },
                refresh_per_ip: config.rate_refresh_per_ip,
                refresh_per_account: config.rate_refresh_per_account,
                logout_per_ip: config.rate_logout_per_ip,
            },
        }
    }

    /// The signing keys' sealer, when a master secret is configured.
    pub(crate) fn key_sealer(&self) -> Option<&KeySealer> {
        self.master_sealers.as_ref().map(|m| &*m.signing_keys)
    }

    /// How long after a revocation access tokens issued before it can still be presented.
    pub(crate) fn access_tokens_outlive_by(&self) -> Duration {
        self.access_ttl + self.leeway
    }
}
