//! The use cases, free of HTTP: one module per group, all methods of [`AuthService`].
//!
//! - `account`: log in (with the failure back-off and device tracking), change
//!   password, the caller's own security events;
//! - `registration`: register (without telling which addresses have accounts, unless
//!   configured to), and accounts made by the CLI and admins;
//! - `sessions`: the caller's sessions, revoking one or all, logout;
//! - `refresh`: refresh-token rotation;
//! - `tokens`: signing and checking access tokens;
//! - `admin`: users, their sessions and the audit log, for admins;
//! - `keys`: the signing-key ring;
//! - `mfa` (with `totp`, its cryptography): the second factor and step-up;
//! - `mfa_login`: the login's second step;
//! - this module: the service itself, its start-up and what every use case shares.
//!
//! Handlers translate requests into these calls and [`AuthError`]s into responses.

mod account;
mod admin;
mod at_rest;
mod cli;
mod email;
mod error;
mod keys;
mod mfa;
mod mfa_login;
mod notices;
mod oauth;
mod policy;
mod refresh;
mod registration;
mod sessions;
mod throttle;
mod tokens;
mod totp;

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use latchkey_core::audit::{SecurityEvent, SecurityEventKind};
use latchkey_core::device::network_of;
use latchkey_core::keys::KeyRing;
use latchkey_core::model::SessionId;
use latchkey_core::refresh::{RefreshKeys, RefreshToken};
use latchkey_core::sealing::{DataSealer, DatabaseSealer};
use latchkey_core::store::{RevocationEntry, Store};
use latchkey_core::time::Timestamp;
use latchkey_verify::Validation;
use tokio::sync::Mutex;

pub use account::EventView;
pub use admin::{UserPage, UserView};
pub use email::EmailPolicy;
pub use error::{AuthError, Reauthentication};
pub use mfa::{MfaStatus, SecondFactor, TotpEnrollment};
pub use mfa_login::{LoginOutcome, MfaPending, MFA_METHODS};
pub use notices::Notices;
pub use oauth::{Introspection, TokenHint};
pub use policy::{RateLimits, ServicePolicy};
pub use sessions::SessionView;

use crate::clock::Clock;
use crate::config::RateSpec;
use crate::hashing::HashPool;
use crate::login_failures::FailureStore;
use crate::ratelimit::{RateDecision, RateLimiter};
use crate::revocation::{RevocationCache, RevocationFanout};
use crate::telemetry::Metrics;
use crate::token_cache::VerifiedTokenCache;

/// Who is asking: recorded in the audit log and used for rate limits.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The client's IP address.
    pub client_ip: Option<String>,
    /// The `User-Agent` header, truncated to 256 bytes.
    pub user_agent: Option<String>,
}

impl RequestContext {
    fn ip(&self) -> Option<IpAddr> {
        self.client_ip.as_deref().and_then(|ip| ip.parse().ok())
    }

    /// The client's network (IPv4 /24, IPv6 /64), for per-account failure counts.
    fn network(&self) -> String {
        self.ip().map_or_else(|| "unknown".to_owned(), network_of)
    }

    /// The bucket of per-IP limits: the IPv4 address, or the IPv6 /64 (one subscriber
    /// usually holds a whole /64).
    fn ip_bucket(&self) -> String {
        match self.ip() {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(ip @ IpAddr::V6(_)) => network_of(ip),
            None => "unknown".to_owned(),
        }
    }
}

/// A freshly issued pair.
#[derive(Debug)]
pub struct IssuedTokens {
    /// The access token (JWT).
    pub access_token: String,
    /// Its lifetime.
    pub expires_in: Duration,
    /// The refresh token for the client to keep.
    pub refresh_token: RefreshToken,
    /// The refresh token's idle lifetime.
    pub refresh_expires_in: Duration,
    /// The session (`sid`).
    pub session_id: SessionId,
}

/// What the service needs besides the store, made by the application's wiring.
pub struct Collaborators {
    /// Rate limits (in process or shared through Redis).
    pub limiter: Arc<dyn RateLimiter>,
    /// Failed-login counts (in process or shared through Redis).
    pub failures: Arc<dyn FailureStore>,
    /// Revocation announcements to other replicas, when configured.
    pub fanout: Option<Arc<dyn RevocationFanout>>,
    /// The password-hashing threads.
    pub hashing: HashPool,
    /// The clock every time comparison reads ([`Clock::system`] outside tests).
    pub clock: Clock,
}

/// The use cases, sharing the store, keys, revocation cache and limits.
pub struct AuthService {
    store: Arc<dyn Store>,
    policy: ServicePolicy,
    validation: Validation,
    refresh_keys: RefreshKeys,
    key_ring: RwLock<Arc<KeyRing>>,
    key_reload: Mutex<Option<Timestamp>>,
    /// Bumped whenever the key ring changes; verified-token cache entries carry it.
    key_generation: AtomicU64,
    /// The count of key revocations the key ring has been reloaded for.
    key_revocations_seen: AtomicU64,
    revocations: RevocationCache,
    verified: VerifiedTokenCache,
    limiter: Arc<dyn RateLimiter>,
    failures: Arc<dyn FailureStore>,
    fanout: Option<Arc<dyn RevocationFanout>>,
    hashing: HashPool,
    /// Seals TOTP secrets for storage.
    mfa_sealer: DataSealer,
    email: email::EmailKit,
    metrics: Arc<Metrics>,
    clock: Clock,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// Set up keys (first start makes and stores them), load what is revoked, and build
    /// the service.
    pub async fn start(
        store: Arc<dyn Store>,
        policy: ServicePolicy,
        collaborators: Collaborators,
    ) -> Result<Self, AuthError> {
        let now = collaborators.clock.now();
        let master = store
            .secret_or_insert(
                "refresh_token_master",
                &RefreshKeys::generate_master_secret(),
            )
            .await?;
        let refresh_keys = RefreshKeys::from_master_secret(&master)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let master_sealers = policy.master_sealers.as_ref();
        let mfa_sealer = DataSealer::new(
            DatabaseSealer::totp(&master).map_err(AuthError::Sealing)?,
            master_sealers.map(|m| m.totp_secrets.clone()),
        );
        let email = email::EmailKit::new(&master, master_sealers.map(|m| m.mail_outbox.clone()))?;
        keys::ensure_signing_key(store.as_ref(), &policy, now).await?;
        let ring = keys::load_key_ring(store.as_ref(), &policy).await?;
        // Tokens living longer than this server issues are refused, whatever they say.
        let validation = Validation::new(
            policy.issuer.clone(),
            policy.audience.clone(),
            policy.leeway,
        )
        .with_max_lifetime(policy.access_ttl);
        let service = Self {
            store,
            validation,
            refresh_keys,
            key_ring: RwLock::new(Arc::new(ring)),
            key_reload: Mutex::new(None),
            key_generation: AtomicU64::new(0),
            key_revocations_seen: AtomicU64::new(0),
            revocations: RevocationCache::default(),
            verified: VerifiedTokenCache::new(policy.verified_token_cache),
            limiter: collaborators.limiter,
            failures: collaborators.failures,
            fanout: collaborators.fanout,
            metrics: Arc::new(Metrics::new(&collaborators.hashing)),
            hashing: collaborators.hashing,
            mfa_sealer,
            email,
            policy,
            clock: collaborators.clock,
        };
        service.seal_at_rest().await?;
        service.sync_revocations().await?;
        Ok(service)
    }

    /// The store, for the application's background tasks.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The password-hashing threads.
    pub fn hashing(&self) -> &HashPool {
        &self.hashing
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The clock the service reads.
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The policy.
    pub fn policy(&self) -> &ServicePolicy {
        &self.policy
    }

    /// The revocation cache, for the application's background tasks.
    pub(crate) fn revocations(&self) -> &RevocationCache {
        &self.revocations
    }

    /// Pick up revocations other processes wrote to the store's log.
    pub async fn sync_revocations(&self) -> Result<(), AuthError> {
        self.revocations
            .sync_from(self.store.as_ref(), self.clock.now())
            .await?;
        Ok(())
    }

    /// The revocation log after `after`, for resource services (`latchkey-verify`).
    pub async fn revocations_after(&self, after: i64) -> Result<Vec<RevocationEntry>, AuthError> {
        Ok(self
            .store
            .revocations_after(after, self.clock.now(), 1000)
            .await?)
    }

    /// Whether the store answers, for readiness.
    pub async fn store_is_ready(&self) -> bool {
        match self.store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "readiness: database unavailable");
                false
            }
        }
    }

    async fn limit(&self, key: String, spec: RateSpec) -> Result<(), AuthError> {
        match self.limiter.check(&key, spec).await {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => {
                self.metrics.rate_limited(&key);
                Err(AuthError::RateLimited { retry_after })
            }
        }
    }

    async fn limit_ip(
        &self,
        action: &str,
        ctx: &RequestContext,
        spec: RateSpec,
    ) -> Result<(), AuthError> {
        self.limit(format!("{action}:ip:{}", ctx.ip_bucket()), spec)
            .await
    }

    fn event(
        &self,
        kind: SecurityEventKind,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> SecurityEvent {
        SecurityEvent {
            at: now,
            kind,
            user_id: None,
            session_id: None,
            client_ip: ctx.client_ip.clone(),
            user_agent: ctx.user_agent.clone(),
            detail: None,
        }
    }

    async fn record(&self, event: SecurityEvent) {
        // The audit log must not make a login fail; a lost event is logged loudly instead.
        if let Err(e) = self.store.record_event(&event).await {
            tracing::error!(kind = event.kind.as_str(), error = %e, "could not record security event");
        }
    }

    /// Housekeeping: drop expired revocations, ended sessions and keys no token needs.
    pub async fn purge(&self) -> Result<u64, AuthError> {
        let now = self.clock.now();
        self.revocations.purge(now);
        let mut purged = self
            .store
            .purge_expired(now, now.minus(self.policy.rotation.session_lifetime))
            .await?;
        let keys_needed_since =
            now.minus(self.policy.access_tokens_outlive_by() + Duration::from_secs(60));
        purged += self
            .store
            .delete_signing_keys_retired_before(keys_needed_since)
            .await?;
        // Settled mail is kept a week for the record.
        purged += self
            .store
            .purge_email(now, now.minus(Duration::from_secs(7 * 86400)))
            .await?;
        // So are settled webhook messages.
        purged += self
            .store
            .purge_webhooks(now.minus(Duration::from_secs(7 * 86400)))
            .await?;
        Ok(purged)
    }
}
