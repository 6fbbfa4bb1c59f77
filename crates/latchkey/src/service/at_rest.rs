//! Secrets sealed at rest besides the signing keys: TOTP secrets and queued mail. Once
//! a master secret is configured (`LATCHKEY_MASTER_SECRET_FILE`), values sealed before
//! under the database's own key are sealed again under the master secret's keys at
//! start, in one transaction (each value a compare-and-set, so a replica starting at the
//! same moment, or a change in between, loses nothing). Without a master secret, values
//! sealed under one stop the start, as sealed signing keys do.

use latchkey_core::email::OUTBOX_CONTEXT;
use latchkey_core::sealing::{KeySealer, SealError};
use latchkey_core::store::{Reseal, SealedField};

use super::{AuthError, AuthService};

impl AuthService {
    /// Bring every sealed TOTP secret and queued mail under the configured key.
    pub(super) async fn seal_at_rest(&self) -> Result<(), AuthError> {
        let values = self.store.sealed_values().await?;
        if self.policy.master_sealers.is_none() {
            if values.iter().any(|v| KeySealer::is_sealed(&v.sealed)) {
                return Err(AuthError::Sealing(SealError::SecretMissing));
            }
            return Ok(());
        }
        let email_keys = self.email_keys();
        let mut reseals = Vec::new();
        for value in values {
            let (sealer, context) = match value.field {
                SealedField::TotpSecret(user) => (&self.mfa_sealer, user.to_string()),
                SealedField::MailPayload(_) => (email_keys.outbox(), OUTBOX_CONTEXT.to_owned()),
            };
            match sealer.reseal(&context, &value.sealed) {
                Ok(Some(new)) => reseals.push(Reseal {
                    field: value.field,
                    old: value.sealed,
                    new,
                }),
                Ok(None) => {}
                // Nothing can open it: leave it, and say so.
                Err(e) => {
                    tracing::error!(field = ?value.field, error = %e, "a sealed value does not open; left as it is")
                }
            }
        }
        if !reseals.is_empty() {
            let sealed = self.store.reseal(&reseals).await?;
            tracing::info!(
                sealed,
                "sealed TOTP secrets and queued mail stored before the master secret under it"
            );
        }
        Ok(())
    }
}
