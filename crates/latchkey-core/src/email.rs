//! E-mail tokens and the outbox: the single-use tokens sent in links (password reset,
//! address verification), and the sealing of queued mail (retries follow [`crate::retry`]).
//!
//! Like refresh tokens, an e-mail token is 256 random bits that the store knows only by
//! a keyed hash (HMAC-SHA256 under a key derived from the server's master secret), so a
//! copy of the database does not hold a usable link. Whether a stored token may still be
//! used is decided here ([`token_usable`]) and applied by the store as a compare-and-set.
//!
//! Mail waiting in the outbox holds links in clear until it is sent, so its payload is
//! sealed with AES-256-GCM ([`EmailKeys::seal`]) and dropped once the mail is sent or
//! given up: under a key from the master secret kept outside the database when one is
//! configured, else under one derived from the same secret as the token hashes.

use std::fmt;

use std::sync::Arc;

use aws_lc_rs::{hkdf, hmac, rand};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::model::{Email, UserId};
use crate::sealing::{DataSealer, DatabaseSealer, KeySealer};
use crate::time::Timestamp;

/// What a token in a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailTokenPurpose {
    /// Set a new password without the old one.
    PasswordReset,
    /// Confirm that the user reads the account's address.
    VerifyEmail,
    /// Confirm a new address before the account moves to it.
    ChangeEmail,
}

impl EmailTokenPurpose {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::VerifyEmail => "verify_email",
            Self::ChangeEmail => "change_email",
        }
    }

    /// The purpose a stored name means.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::PasswordReset, Self::VerifyEmail, Self::ChangeEmail]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// A token as the link carries it: 256 random bits, base64url. Never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailToken(String);

impl EmailToken {
    /// A token as a client sent it back, if it has the shape of one.
    pub fn parse(raw: &str) -> Option<Self> {
        let decoded = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
        (decoded.len() == 32).then(|| Self(raw.trim().to_owned()))
    }

    /// The text to put in a link.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EmailToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailToken(<redacted>)")
    }
}

/// The keyed hash the store knows an e-mail token by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EmailTokenHash([u8; 32]);

impl EmailTokenHash {
    /// A hash as stored.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A sealed outbox payload could not be opened (another master secret, or tampered).
#[derive(Debug, thiserror::Error)]
#[error("the sealed mail payload could not be opened")]
pub struct UnsealError;

/// The keys of e-mail tokens and outbox payloads.
pub struct EmailKeys {
    hash_key: hmac::Key,
    outbox: DataSealer,
}

impl fmt::Debug for EmailKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailKeys(<redacted>)")
    }
}

/// The additional data of outbox payloads (none: a payload is not tied to its row).
pub const OUTBOX_CONTEXT: &str = "";

struct KeyLen;

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        32
    }
}

fn expand(prk: &hkdf::Prk, label: &'static [u8]) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    let info = [label];
    // Expanding 32 bytes from HKDF-SHA256 cannot fail (the limit is 255 * 32 bytes).
    if let Ok(okm) = prk.expand(&info, KeyLen) {
        let _ = okm.fill(&mut bytes);
    }
    bytes
}

impl EmailKeys {
    /// Derive the keys from the database's secret (at least 32 bytes; the caller
    /// checks that when it derives the refresh keys from the same secret); payloads are
    /// sealed under the master secret's `outbox` sealer when one is given.
    pub fn new(
        database_secret: &[u8],
        outbox: Option<Arc<KeySealer>>,
    ) -> Result<Self, UnsealError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"latchkey email v1").extract(database_secret);
        let database = DatabaseSealer::mail_outbox(database_secret).map_err(|_| UnsealError)?;
        Ok(Self {
            hash_key: hmac::Key::new(hmac::HMAC_SHA256, &expand(&prk, b"email-token-hash")),
            outbox: DataSealer::new(database, outbox),
        })
    }

    /// The keys from the database's secret alone (payloads sealed under it).
    pub fn from_master_secret(database_secret: &[u8]) -> Result<Self, UnsealError> {
        Self::new(database_secret, None)
    }

    /// The payloads' sealer, to seal stored payloads again under a new key.
    pub fn outbox(&self) -> &DataSealer {
        &self.outbox
    }

    /// A fresh random token.
    pub fn new_token(&self) -> EmailToken {
        let mut secret = [0u8; 32];
        fill_random(&mut secret);
        EmailToken(URL_SAFE_NO_PAD.encode(secret))
    }

    /// The keyed hash of `token` for `purpose` (a token for one purpose matches nothing
    /// stored for another).
    pub fn hash(&self, token: &EmailToken, purpose: EmailTokenPurpose) -> EmailTokenHash {
        let mut ctx = hmac::Context::with_key(&self.hash_key);
        ctx.update(purpose.as_str().as_bytes());
        ctx.update(b"\0");
        ctx.update(token.0.as_bytes());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(ctx.sign().as_ref());
        EmailTokenHash(bytes)
    }

    /// Seal an outbox payload.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        // Sealing fails only if the random source does; an empty result opens to nothing.
        self.outbox
            .seal(OUTBOX_CONTEXT, plaintext)
            .unwrap_or_default()
    }

    /// Open a payload [`EmailKeys::seal`] made (under either key).
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, UnsealError> {
        self.outbox
            .open(OUTBOX_CONTEXT, sealed)
            .map_err(|_| UnsealError)
    }
}

/// An e-mail token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEmailToken {
    /// Its keyed hash.
    pub hash: EmailTokenHash,
    /// Whose.
    pub user_id: UserId,
    /// What for.
    pub purpose: EmailTokenPurpose,
    /// The address the token was sent to: the account's for a reset or a verification,
    /// the new one for a change of address. The token works only while it still fits.
    pub email: Email,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was used or voided.
    pub used_at: Option<Timestamp>,
}

/// Whether `stored` may be used now for `purpose`: unused, unexpired, the right purpose.
pub fn token_usable(
    stored: Option<&StoredEmailToken>,
    purpose: EmailTokenPurpose,
    now: Timestamp,
) -> bool {
    stored.is_some_and(|t| t.purpose == purpose && t.used_at.is_none() && now < t.expires_at)
}

#[allow(clippy::panic)]
fn fill_random(bytes: &mut [u8]) {
    if rand::fill(bytes).is_err() {
        panic!("the system random number generator failed");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn keys() -> EmailKeys {
        EmailKeys::from_master_secret(&[7u8; 32]).unwrap()
    }

    #[test]
    fn tokens_are_256_bits_and_hash_per_purpose() {
        let keys = keys();
        let token = keys.new_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(token.expose()).unwrap().len(), 32);
        assert_eq!(EmailToken::parse(token.expose()), Some(token.clone()));
        let reset = keys.hash(&token, EmailTokenPurpose::PasswordReset);
        assert_eq!(reset, keys.hash(&token, EmailTokenPurpose::PasswordReset));
        assert_ne!(reset, keys.hash(&token, EmailTokenPurpose::VerifyEmail));
        let other = EmailKeys::from_master_secret(&[8u8; 32]).unwrap();
        assert_ne!(reset, other.hash(&token, EmailTokenPurpose::PasswordReset));
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn payloads_sealed_under_the_master_secret_open_with_it_only() {
        let master = crate::sealing::MasterSealers::from_secret(&[9u8; 32]).unwrap();
        let with_master = EmailKeys::new(&[7u8; 32], Some(master.mail_outbox)).unwrap();
        let old = keys().seal(b"old");
        let new = with_master.seal(b"new");
        assert_eq!(with_master.open(&old).unwrap(), b"old");
        assert_eq!(with_master.open(&new).unwrap(), b"new");
        assert!(keys().open(&new).is_err());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "abc", "!!!!", &"A".repeat(44)] {
            assert!(EmailToken::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn sealed_payloads_open_only_under_the_same_secret() {
        let sealed = keys().seal(b"hello");
        assert_eq!(keys().open(&sealed).unwrap(), b"hello");
        let other = EmailKeys::from_master_secret(&[8u8; 32]).unwrap();
        assert!(other.open(&sealed).is_err());
        assert!(keys().open(&sealed[..5]).is_err());
    }

    #[test]
    fn a_token_is_usable_once_before_it_expires_for_its_purpose() {
        let now = Timestamp::from_unix_millis(1_000_000);
        let stored = StoredEmailToken {
            hash: EmailTokenHash([0; 32]),
            user_id: UserId::generate(),
            purpose: EmailTokenPurpose::PasswordReset,
            email: Email::parse("a@example.com").unwrap(),
            created_at: now,
            expires_at: now.plus(Duration::from_secs(60)),
            used_at: None,
        };
        let reset = EmailTokenPurpose::PasswordReset;
        assert!(token_usable(Some(&stored), reset, now));
        assert!(!token_usable(None, reset, now));
        assert!(!token_usable(
            Some(&stored),
            EmailTokenPurpose::VerifyEmail,
            now
        ));
        assert!(!token_usable(Some(&stored), reset, stored.expires_at));
        let used = StoredEmailToken {
            used_at: Some(now),
            ..stored
        };
        assert!(!token_usable(Some(&used), reset, now));
    }
}
