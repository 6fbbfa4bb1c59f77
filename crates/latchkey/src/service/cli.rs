//! The service as the admin commands of the `latchkey` binary use it: on a store that
//! exists already, without creating anything.
//!
//! [`AuthService::start`] makes the first signing key and the refresh-token master
//! secret when they are missing, which is right for a server and wrong for `latchkey
//! user list` run against a mistyped database URL. [`AuthService::open_for_admin`]
//! writes nothing at start-up. The methods admins use (users, their roles and sessions,
//! the audit log, listing keys) never sign or hash tokens, so this service holds a
//! throwaway signing key and refresh secret, made in memory and never stored: anything
//! it signed would be refused everywhere else, which is the point.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use latchkey_core::keys::{KeyRing, SigningKey};
use latchkey_core::refresh::RefreshKeys;
use latchkey_core::sealing::{DataSealer, DatabaseSealer};
use latchkey_core::store::Store;
use latchkey_verify::Validation;
use tokio::sync::Mutex;

use super::{AuthError, AuthService, Collaborators, ServicePolicy};
use crate::revocation::RevocationCache;
use crate::telemetry::Metrics;
use crate::token_cache::VerifiedTokenCache;

impl AuthService {
    /// The service on an existing store, for admin commands: writes nothing at start-up
    /// (no signing key, no secret), and cannot issue tokens anyone accepts. Changes
    /// through it (roles, disabling, deleting, revoking sessions) obey the same rules
    /// as over HTTP, and revocations reach running servers through the store's log.
    pub fn open_for_admin(
        store: Arc<dyn Store>,
        policy: ServicePolicy,
        collaborators: Collaborators,
    ) -> Result<Self, AuthError> {
        let refresh_keys = RefreshKeys::from_master_secret(&RefreshKeys::generate_master_secret())
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let throwaway = SigningKey::hs256_from_secret(&RefreshKeys::generate_master_secret())?;
        // Admin commands never enrol or check a second factor: a throwaway key here too.
        let mfa_sealer = DataSealer::new(
            DatabaseSealer::totp(&RefreshKeys::generate_master_secret())
                .map_err(AuthError::Sealing)?,
            None,
        );
        // Nor do they send mail.
        let email = super::email::EmailKit::new(&RefreshKeys::generate_master_secret(), None)?;
        let ring = KeyRing::with_active(throwaway, &[])?;
        let validation = Validation::new(
            policy.issuer.clone(),
            policy.audience.clone(),
            policy.leeway,
        )
        .with_max_lifetime(policy.access_ttl);
        Ok(Self {
            store,
            validation,
            refresh_keys,
            key_ring: RwLock::new(Arc::new(ring)),
            key_reload: Mutex::new(None),
            key_generation: AtomicU64::new(0),
            key_revocations_seen: AtomicU64::new(0),
            mfa_sealer,
            email,
            revocations: RevocationCache::default(),
            verified: VerifiedTokenCache::new(policy.verified_token_cache),
            limiter: collaborators.limiter,
            failures: collaborators.failures,
            fanout: collaborators.fanout,
            metrics: Arc::new(Metrics::new(&collaborators.hashing)),
            hashing: collaborators.hashing,
            policy,
            clock: collaborators.clock,
        })
    }
}
