//! Secrets sealed at rest: AES-256-GCM under keys derived (HKDF-SHA256) from a master
//! secret kept outside the database, so a copy of the database alone can neither sign
//! tokens nor read TOTP secrets or queued mail.
//!
//! A sealed value is stored as `MAGIC || nonce (12 bytes) || ciphertext+tag`, with what
//! it belongs to as additional data (a signing key's `kid`, a TOTP secret's user id): a
//! sealed value moved to another row does not open. Each purpose has its own key
//! ([`SealPurpose`]). Keys stored before sealing existed are plain PKCS#8 DER (or a raw
//! HS256 secret), which never start with `MAGIC`.
//!
//! TOTP secrets and queued mail were sealed before under keys derived from the
//! database's own secret ([`DatabaseSealer`], `nonce || ciphertext+tag`, no prefix).
//! [`DataSealer`] opens both forms, seals with the master secret's key once one is
//! configured, and tells which stored values to seal again.

use std::sync::Arc;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::{hkdf, rand};

/// The first bytes of every sealed key.
const MAGIC: &[u8] = b"lk-sealed-v1:";

/// Why a stored key could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key is sealed and no sealing secret is configured.
    #[error("secrets in the database are sealed; configure the master secret that sealed them")]
    SecretMissing,
    /// The key does not open with this secret (another secret, or altered data).
    #[error("a signing key does not open with the configured master secret")]
    WrongSecret,
    /// The secret is shorter than 32 bytes.
    #[error("the master secret must be at least 32 bytes")]
    WeakSecret,
    /// The random source failed.
    #[error("the random source failed")]
    Random,
}

/// Seals and opens private keys.
pub struct KeySealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySealer(<redacted>)")
    }
}

struct Aes256KeyLen;

impl hkdf::KeyType for Aes256KeyLen {
    fn len(&self) -> usize {
        32
    }
}

/// What a sealer protects: each purpose has its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealPurpose {
    /// Private signing keys (additional data: the `kid`).
    SigningKeys,
    /// TOTP secrets (additional data: the user id).
    TotpSecrets,
    /// Payloads of queued mail (no additional data).
    MailOutbox,
}

impl SealPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::SigningKeys => b"signing-keys",
            Self::TotpSecrets => b"totp-secrets",
            Self::MailOutbox => b"mail-outbox",
        }
    }
}

/// The sealers one master secret yields, one per [`SealPurpose`].
#[derive(Debug, Clone)]
pub struct MasterSealers {
    /// For private signing keys.
    pub signing_keys: Arc<KeySealer>,
    /// For TOTP secrets.
    pub totp_secrets: Arc<KeySealer>,
    /// For queued mail.
    pub mail_outbox: Arc<KeySealer>,
}

impl MasterSealers {
    /// Every sealer from the master secret (at least 32 bytes).
    pub fn from_secret(secret: &[u8]) -> Result<Self, SealError> {
        let sealer = |purpose| KeySealer::for_purpose(secret, purpose).map(Arc::new);
        Ok(Self {
            signing_keys: sealer(SealPurpose::SigningKeys)?,
            totp_secrets: sealer(SealPurpose::TotpSecrets)?,
            mail_outbox: sealer(SealPurpose::MailOutbox)?,
        })
    }
}

impl KeySealer {
    /// The signing keys' sealer from the master secret (at least 32 bytes).
    pub fn from_secret(secret: &[u8]) -> Result<Self, SealError> {
        Self::for_purpose(secret, SealPurpose::SigningKeys)
    }

    /// The sealer of `purpose` from the master secret (at least 32 bytes).
    pub fn for_purpose(secret: &[u8], purpose: SealPurpose) -> Result<Self, SealError> {
        if secret.len() < 32 {
            return Err(SealError::WeakSecret);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"latchkey key sealing v1").extract(secret);
        let mut bytes = [0u8; 32];
        prk.expand(&[purpose.label()], Aes256KeyLen)
            .and_then(|okm| okm.fill(&mut bytes))
            .map_err(|_| SealError::WeakSecret)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::WeakSecret)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Whether stored key material is sealed.
    pub fn is_sealed(stored: &[u8]) -> bool {
        stored.starts_with(MAGIC)
    }

    /// Seal `private_key` of key `kid` (or any value, with what it belongs to as `kid`).
    pub fn seal(&self, kid: &str, private_key: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut sealed = private_key.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Open the stored material of key `kid`; plain (never sealed) material is returned
    /// as it is.
    pub fn open(sealer: Option<&Self>, kid: &str, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(rest) = stored.strip_prefix(MAGIC) else {
            return Ok(stored.to_vec());
        };
        let sealer = sealer.ok_or(SealError::SecretMissing)?;
        if rest.len() < NONCE_LEN {
            return Err(SealError::WrongSecret);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::WrongSecret)?;
        let mut buffer = ciphertext.to_vec();
        let plain = sealer
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer)
            .map_err(|_| SealError::WrongSecret)?;
        Ok(plain.to_vec())
    }
}

/// A key derived from the database's own secret (`refresh_token_master`), as TOTP
/// secrets and queued mail were sealed before a master secret file existed: stored as
/// `nonce || ciphertext+tag`. A copy of the database holds that secret, so this sealing
/// protects only against a copy of one table; [`DataSealer`] moves values off it.
pub struct DatabaseSealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for DatabaseSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseSealer(<redacted>)")
    }
}

impl DatabaseSealer {
    /// The TOTP secrets' key from the database's secret.
    pub fn totp(database_secret: &[u8]) -> Result<Self, SealError> {
        Self::derive(
            database_secret,
            b"latchkey mfa v1",
            b"latchkey totp secret seal v1",
        )
    }

    /// The queued mail's key from the database's secret.
    pub fn mail_outbox(database_secret: &[u8]) -> Result<Self, SealError> {
        Self::derive(database_secret, b"latchkey email v1", b"outbox-seal")
    }

    fn derive(secret: &[u8], salt: &[u8], label: &'static [u8]) -> Result<Self, SealError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(secret);
        let mut bytes = [0u8; 32];
        prk.expand(&[label], Aes256KeyLen)
            .and_then(|okm| okm.fill(&mut bytes))
            .map_err(|_| SealError::WeakSecret)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::WeakSecret)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// `nonce || ciphertext+tag` of `plain`, with `context` as additional data.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SealError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// What [`DatabaseSealer::seal`] sealed with `context`.
    pub fn open(&self, context: &str, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        if stored.len() < NONCE_LEN {
            return Err(SealError::WrongSecret);
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::WrongSecret)?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| SealError::WrongSecret)?;
        Ok(plain.to_vec())
    }
}

/// Seals one kind of data at rest (TOTP secrets, queued mail): under the master
/// secret's key when one is configured, else under the database's; opens both forms.
#[derive(Debug)]
pub struct DataSealer {
    master: Option<Arc<KeySealer>>,
    database: DatabaseSealer,
}

impl DataSealer {
    /// A sealer with the database's key and, when configured, the master secret's.
    pub fn new(database: DatabaseSealer, master: Option<Arc<KeySealer>>) -> Self {
        Self { master, database }
    }

    /// Seal `plain` belonging to `context`.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        match &self.master {
            Some(master) => master.seal(context, plain),
            None => self.database.seal(context, plain),
        }
    }

    /// Open a stored value of either form.
    pub fn open(&self, context: &str, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        if KeySealer::is_sealed(stored) {
            KeySealer::open(self.master.as_deref(), context, stored)
        } else {
            self.database.open(context, stored)
        }
    }

    /// The stored value sealed again under the master secret's key, if a master secret
    /// is configured and the value is under the database's key; `None` otherwise.
    pub fn reseal(&self, context: &str, stored: &[u8]) -> Result<Option<Vec<u8>>, SealError> {
        match &self.master {
            Some(master) if !KeySealer::is_sealed(stored) => {
                let plain = self.database.open(context, stored)?;
                master.seal(context, &plain).map(Some)
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn sealed_keys_open_only_with_their_secret_and_kid() {
        let sealer = KeySealer::from_secret(SECRET).unwrap();
        let sealed = sealer.seal("kid-1", b"private key bytes").unwrap();
        assert!(KeySealer::is_sealed(&sealed));
        assert!(!sealed.windows(17).any(|w| w == b"private key bytes"));
        assert_eq!(
            KeySealer::open(Some(&sealer), "kid-1", &sealed).unwrap(),
            b"private key bytes"
        );
        assert_eq!(
            KeySealer::open(Some(&sealer), "kid-2", &sealed),
            Err(SealError::WrongSecret)
        );
        let other = KeySealer::from_secret(b"another secret of thirty-two bytes!").unwrap();
        assert_eq!(
            KeySealer::open(Some(&other), "kid-1", &sealed),
            Err(SealError::WrongSecret)
        );
        assert_eq!(
            KeySealer::open(None, "kid-1", &sealed),
            Err(SealError::SecretMissing)
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(
            KeySealer::open(Some(&sealer), "kid-1", &altered),
            Err(SealError::WrongSecret)
        );
    }

    #[test]
    fn each_purpose_has_its_own_key_and_signing_keys_keep_theirs() {
        let sealers = MasterSealers::from_secret(SECRET).unwrap();
        let sealed = sealers.totp_secrets.seal("user-1", b"totp").unwrap();
        assert_eq!(
            KeySealer::open(Some(&sealers.totp_secrets), "user-1", &sealed).unwrap(),
            b"totp"
        );
        for other in [&sealers.signing_keys, &sealers.mail_outbox] {
            assert_eq!(
                KeySealer::open(Some(other), "user-1", &sealed),
                Err(SealError::WrongSecret)
            );
        }
        // Keys sealed before purposes existed still open.
        let before = KeySealer::from_secret(SECRET)
            .unwrap()
            .seal("k", b"key")
            .unwrap();
        assert_eq!(
            KeySealer::open(Some(&sealers.signing_keys), "k", &before).unwrap(),
            b"key"
        );
    }

    #[test]
    fn data_sealers_open_both_forms_and_reseal_only_database_sealed_values() {
        let database_secret = [7u8; 32];
        let database_only = DataSealer::new(DatabaseSealer::totp(&database_secret).unwrap(), None);
        let old = database_only.seal("user-1", b"secret").unwrap();
        assert!(!KeySealer::is_sealed(&old));
        assert_eq!(database_only.reseal("user-1", &old).unwrap(), None);

        let master = MasterSealers::from_secret(SECRET).unwrap().totp_secrets;
        let both = DataSealer::new(
            DatabaseSealer::totp(&database_secret).unwrap(),
            Some(master.clone()),
        );
        assert_eq!(both.open("user-1", &old).unwrap(), b"secret");
        let new = both.reseal("user-1", &old).unwrap().unwrap();
        assert!(KeySealer::is_sealed(&new));
        assert_eq!(both.open("user-1", &new).unwrap(), b"secret");
        assert_eq!(both.reseal("user-1", &new).unwrap(), None);
        assert_eq!(both.open("user-2", &new), Err(SealError::WrongSecret));
        // The database's secret alone opens the old form, not the new one.
        assert_eq!(database_only.open("user-1", &old).unwrap(), b"secret");
        assert_eq!(
            database_only.open("user-1", &new),
            Err(SealError::SecretMissing)
        );
        let fresh = both.seal("user-1", b"fresh").unwrap();
        assert!(KeySealer::is_sealed(&fresh));
    }

    #[test]
    fn plain_keys_pass_through_and_short_secrets_are_refused() {
        assert_eq!(
            KeySealer::open(None, "k", b"\x30\x2e plain der").unwrap(),
            b"\x30\x2e plain der"
        );
        assert_eq!(
            KeySealer::from_secret(b"too short").unwrap_err(),
            SealError::WeakSecret
        );
        let sealer = KeySealer::from_secret(SECRET).unwrap();
        assert_ne!(
            sealer.seal("k", b"x").unwrap(),
            sealer.seal("k", b"x").unwrap()
        );
        assert!(format!("{sealer:?}").contains("redacted"));
    }
}
