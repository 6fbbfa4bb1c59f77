//! The signing-key ring: first key on first start, rotation, reloads to pick up keys
//! other replicas made.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::keys::{KeyRing, SigningKey};
use latchkey_core::sealing::{KeySealer, SealError};
use latchkey_core::store::{Revoked, Store, StoredSigningKey};
use latchkey_core::time::Timestamp;

use super::{AuthError, AuthService, RequestContext, ServicePolicy};

const MIN_KEY_RELOAD_GAP: Duration = Duration::from_secs(1);

impl AuthService {
    /// The current key ring.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        match self.key_ring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reload the key ring unless that happened less than a second ago. Returns whether
    /// a reload happened.
    pub(super) async fn reload_keys_if_due(&self) -> bool {
        let mut last = self.key_reload.lock().await;
        let now = self.clock.now();
        if last.is_some_and(|at| now < at.plus(MIN_KEY_RELOAD_GAP)) {
            return false;
        }
        *last = Some(now);
        match self.reload_keys().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not reload signing keys");
                false
            }
        }
    }

    /// Reload the key ring from the store.
    pub async fn reload_keys(&self) -> Result<(), AuthError> {
        let ring = load_key_ring(self.store.as_ref(), &self.policy).await?;
        if let Ok(mut current) = self.key_ring.write() {
            let keys_changed = current.kids() != ring.kids();
            *current = Arc::new(ring);
            // Claims cached under the old ring may carry a key that is gone. The periodic
            // reload (LATCHKEY_KEY_RELOAD) mostly finds the same keys: only a change
            // costs each live token a signature check again.
            if keys_changed {
                self.key_generation.fetch_add(1, Ordering::AcqRel);
                self.verified.clear();
            }
        }
        Ok(())
    }

    /// After a key revocation reached this process (from here, another replica or the
    /// store's log), reload the key ring before checking another token: the revoked key
    /// is gone from the store, and the reload flushes the verified-token cache. One
    /// caller reloads; the others wait for it. If the store cannot be read, the next
    /// request tries again.
    pub(super) async fn follow_key_revocations(&self) {
        let seen = self.revocations.key_revocations();
        if self.key_revocations_seen.load(Ordering::Acquire) == seen {
            return;
        }
        let mut last = self.key_reload.lock().await;
        if self.key_revocations_seen.load(Ordering::Acquire) == seen {
            return;
        }
        match self.reload_keys().await {
            Ok(()) => {
                *last = Some(self.clock.now());
                self.key_revocations_seen.store(seen, Ordering::Release);
            }
            Err(e) => {
                tracing::error!(error = %e, "a signing key was revoked but the key ring could not be reloaded")
            }
        }
    }

    /// Revoke a signing key (after a leak): its tokens stop verifying here and, through
    /// the revocation log and Redis, on every replica and in every service that reads the
    /// revocation feed. The active key is first replaced by a new one.
    pub async fn revoke_key(&self, kid: &str, ctx: &RequestContext) -> Result<(), AuthError> {
        let ring = self.key_ring();
        if ring.active().kid() == kid {
            if self.policy.hs256_secret.is_some() {
                // The configured secret is the only signer; replace the secret instead.
                return Err(AuthError::KeyNotFound);
            }
            rotate_signing_key(self.store.as_ref(), &self.policy, self.clock.now()).await?;
        }
        let now = self.clock.now();
        let until = now.plus(self.policy.access_tokens_outlive_by());
        if !self.store.revoke_signing_key(kid, until).await? {
            return Err(AuthError::KeyNotFound);
        }
        self.revoke_locally(Revoked::Key(kid.to_owned()), until)
            .await;
        self.follow_key_revocations().await;
        let mut event = self.event(SecurityEventKind::SigningKeyRevoked, ctx, now);
        event.detail = Some(format!("kid={kid}"));
        self.record(event).await;
        Ok(())
    }

    /// Make a new signing key the active one; the previous one keeps verifying.
    pub async fn rotate_keys(&self, ctx: &RequestContext) -> Result<String, AuthError> {
        let kid = rotate_signing_key(self.store.as_ref(), &self.policy, self.clock.now()).await?;
        self.reload_keys().await?;
        let mut event = self.event(SecurityEventKind::SigningKeyRotated, ctx, self.clock.now());
        event.detail = Some(format!("kid={kid}"));
        self.record(event).await;
        Ok(kid)
    }

    /// The stored signing keys, newest first (for `latchkey keys list`).
    pub async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, AuthError> {
        Ok(self.store.signing_keys().await?)
    }
}

/// On first start (no keys yet) make one; when the configured algorithm differs from the
/// active key's, rotate to a key of the configured algorithm.
pub(super) async fn ensure_signing_key(
    store: &dyn Store,
    policy: &ServicePolicy,
    now: Timestamp,
) -> Result<(), AuthError> {
    let keys = store.signing_keys().await?;
    seal_unsealed_keys(store, policy, &keys).await?;
    let active = keys.iter().find(|k| k.retired_at.is_none());
    match active {
        None => {
            let key = sealed(policy, SigningKey::generate(policy.algorithm, now)?)?;
            if !store.insert_first_signing_key(&key).await? {
                tracing::info!("another replica made the first signing key");
            }
        }
        Some(active)
            if active.algorithm != policy.algorithm.as_str() && policy.hs256_secret.is_none() =>
        {
            tracing::info!(from = %active.algorithm, to = %policy.algorithm, "signing algorithm changed; rotating key");
            if let Err(e) = rotate_signing_key(store, policy, now).await {
                // Replicas starting together may race to rotate; one winner is enough.
                let rotated_by_another =
                    store.signing_keys().await?.iter().any(|k| {
                        k.retired_at.is_none() && k.algorithm == policy.algorithm.as_str()
                    });
                if !rotated_by_another {
                    return Err(e);
                }
            }
        }
        Some(_) => {}
    }
    Ok(())
}

/// Store a new active key of the configured algorithm, retiring the current one.
async fn rotate_signing_key(
    store: &dyn Store,
    policy: &ServicePolicy,
    now: Timestamp,
) -> Result<String, AuthError> {
    let key = sealed(policy, SigningKey::generate(policy.algorithm, now)?)?;
    store.rotate_signing_key(&key).await?;
    Ok(key.kid)
}

/// The key as it is stored: sealed when a master secret is configured.
fn sealed(
    policy: &ServicePolicy,
    mut key: StoredSigningKey,
) -> Result<StoredSigningKey, AuthError> {
    if let Some(sealer) = policy.key_sealer() {
        key.private_key = sealer
            .seal(&key.kid, &key.private_key)
            .map_err(seal_error)?;
    }
    Ok(key)
}

fn seal_error(e: SealError) -> AuthError {
    AuthError::Internal(e.to_string())
}

/// With a master secret configured, seal the keys stored before it was (once; a replica
/// that loses the race finds them sealed). Without one, say that keys are stored in clear.
async fn seal_unsealed_keys(
    store: &dyn Store,
    policy: &ServicePolicy,
    keys: &[StoredSigningKey],
) -> Result<(), AuthError> {
    let Some(sealer) = policy.key_sealer() else {
        if keys.iter().all(|k| !KeySealer::is_sealed(&k.private_key)) {
            tracing::warn!(
                "private signing keys are stored unsealed in the database; set \
                 LATCHKEY_MASTER_SECRET_FILE so a copy of the database cannot sign tokens"
            );
        }
        return Ok(());
    };
    for key in keys
        .iter()
        .filter(|k| !KeySealer::is_sealed(&k.private_key))
    {
        let sealed = sealer
            .seal(&key.kid, &key.private_key)
            .map_err(seal_error)?;
        if store
            .replace_signing_key_material(&key.kid, &key.private_key, &sealed)
            .await?
        {
            tracing::info!(kid = %key.kid, "sealed a signing key stored before sealing was configured");
        }
    }
    Ok(())
}

pub(super) async fn load_key_ring(
    store: &dyn Store,
    policy: &ServicePolicy,
) -> Result<KeyRing, AuthError> {
    let stored = store
        .signing_keys()
        .await?
        .into_iter()
        .map(|mut key| {
            key.private_key = KeySealer::open(policy.key_sealer(), &key.kid, &key.private_key)
                .map_err(|e| match e {
                    SealError::SecretMissing | SealError::WrongSecret => AuthError::Sealing(e),
                    other => seal_error(other),
                })?;
            Ok(key)
        })
        .collect::<Result<Vec<_>, AuthError>>()?;
    let ring = match &policy.hs256_secret {
        Some(secret) => KeyRing::with_active(SigningKey::hs256_from_secret(secret)?, &stored)?,
        None => KeyRing::from_stored(&stored)?,
    };
    Ok(ring)
}
