//! Domain values that are parsed once at the edge and trusted afterwards
//! ("parse, don't validate"): identifiers, e-mail addresses, passwords, roles.

use std::fmt;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

pub use crate::ids::{SessionId, UserId};
use crate::refresh::RefreshTokenHash;
use crate::time::Timestamp;

/// Why an input value was refused. Each variant has a stable code for API errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    /// The e-mail address is not a plausible address.
    #[error("the e-mail address is not valid")]
    Email,
    /// The password has fewer than [`Password::MIN_CHARS`] characters (Unicode code
    /// points, counted after NFKC normalisation).
    #[error("the password must be at least 8 characters long")]
    PasswordTooShort,
    /// The password is longer than [`Password::MAX_BYTES`] bytes of UTF-8, as typed or
    /// after NFKC normalisation.
    #[error("the password must be at most 1024 bytes long")]
    PasswordTooLong,
    /// The password is among the most common ones or otherwise easy to guess (zxcvbn
    /// score below [`Password::MIN_SCORE`]).
    #[error("the password is too easy to guess; choose a longer or less common one")]
    PasswordTooWeak,
    /// A role name is not 1 to 64 characters of `a-z`, `0-9`, `_`, `-`, `.`, `:`.
    #[error("a role must be 1 to 64 characters of a-z, 0-9, '_', '-', '.', ':'")]
    Role,
}

impl InvalidInput {
    /// The stable machine-readable code of this refusal.
    pub fn code(self) -> &'static str {
        match self {
            Self::Email => "email_invalid",
            Self::PasswordTooShort => "password_too_short",
            Self::PasswordTooLong => "password_too_long",
            Self::PasswordTooWeak => "password_too_weak",
            Self::Role => "role_invalid",
        }
    }
}

/// A normalised e-mail address: trimmed and lower-cased, at most 254 bytes, one `@`
/// with a non-empty local part and a domain that contains a dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Normalise and check an address as typed by a user.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let normalised = raw.trim().to_lowercase();
        let valid = normalised.len() <= 254
            && !normalised.chars().any(is_invisible)
            && match normalised.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && local.len() <= 64
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !domain.contains("..")
                }
                None => false,
            };
        if valid {
            Ok(Self(normalised))
        } else {
            Err(InvalidInput::Email)
        }
    }

    /// An address read back from the store, where it was saved already normalised.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters an address must not hold because a reader cannot see them: white space,
/// control characters, and format characters (general category `Cf`: zero-width
/// spaces and joiners, bidirectional overrides and isolates such as U+202E, the byte
/// order mark), plus the Hangul fillers, which render as blanks. An address that looks
/// like `admin@example.com` must be `admin@example.com`.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || c.general_category() == GeneralCategory::Format
        || matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The form of a password that is hashed and verified: Unicode NFKC (compatibility
/// composition). Borrows when the text is already in that form (all ASCII text is).
/// Whitespace and case are kept as typed.
pub fn normalise(raw: &str) -> Cow<'_, str> {
    if is_nfkc_quick(raw.chars()) == IsNormalized::Yes {
        Cow::Borrowed(raw)
    } else {
        let normalised: String = raw.nfkc().collect();
        if normalised == raw {
            Cow::Borrowed(raw)
        } else {
            Cow::Owned(normalised)
        }
    }
}

/// A new password, checked and normalised: its NFKC form has at least 8 characters
/// (Unicode code points, as NIST SP 800-63B counts them), at most 1024 bytes, and is not
/// among the passwords an attacker tries first (zxcvbn). The NFKC form is what gets
/// hashed, so a password typed in full-width or composed/decomposed forms on another
/// keyboard still matches; [`normalise`] is the same step for a password presented at
/// login (and [`PasswordHasher::verify`](crate::password::PasswordHasher::verify)
/// applies it itself). Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Fewest characters (Unicode code points of the NFKC form).
    pub const MIN_CHARS: usize = 8;
    /// Most bytes, both as typed and in the NFKC form. Bounds the Argon2 input and
    /// matches the check login does on the typed password.
    pub const MAX_BYTES: usize = 1024;
    /// Lowest zxcvbn score (0 to 4) accepted. Score 1 and below means "guessable in
    /// fewer than 10^6 tries": the most common passwords, a dictionary word with a
    /// digit, keyboard walks, repeats.
    pub const MIN_SCORE: u8 = 2;

    /// Check and normalise a new password as typed.
    pub fn parse(raw: String) -> Result<Self, InvalidInput> {
        Self::parse_with_context(raw, &[])
    }

    /// Like [`Password::parse`], also refusing passwords built from `user_inputs` (such
    /// as the account's e-mail address), which zxcvbn counts as cheap guesses.
    pub fn parse_with_context(raw: String, user_inputs: &[&str]) -> Result<Self, InvalidInput> {
        // Checked on the typed form first, so normalising never works on more than
        // MAX_BYTES of input.
        if raw.len() > Self::MAX_BYTES {
            return Err(InvalidInput::PasswordTooLong);
        }
        let normalised = normalise(&raw).into_owned();
        if normalised.len() > Self::MAX_BYTES {
            return Err(InvalidInput::PasswordTooLong);
        }
        if normalised.chars().count() < Self::MIN_CHARS {
            return Err(InvalidInput::PasswordTooShort);
        }
        // zxcvbn looks at the first 100 characters only, which bounds its cost.
        if u8::from(zxcvbn::zxcvbn(&normalised, user_inputs).score()) < Self::MIN_SCORE {
            return Err(InvalidInput::PasswordTooWeak);
        }
        Ok(Self(normalised))
    }

    /// The NFKC-normalised password's bytes, for hashing only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A role name such as `admin`: 1 to 64 characters of `a-z0-9_-.:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Role(String);

impl Role {
    /// The role every registered user gets.
    pub fn user() -> Self {
        Self("user".to_owned())
    }

    /// The role that may use the admin routes.
    pub fn admin() -> Self {
        Self("admin".to_owned())
    }

    /// Check a role name.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b':'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidInput::Role)
        }
    }

    /// The role name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's identifier.
    pub id: UserId,
    /// The normalised e-mail address, unique among users.
    pub email: Email,
    /// The Argon2id hash in PHC string format.
    pub password_hash: String,
    /// The user's roles.
    pub roles: Vec<Role>,
    /// When the user was created.
    pub created_at: Timestamp,
    /// When an admin disabled the account; `None` while it is enabled.
    pub disabled_at: Option<Timestamp>,
}

impl User {
    /// Whether the user may use the admin routes now: enabled and holding `admin`.
    pub fn is_active_admin(&self) -> bool {
        self.disabled_at.is_none() && self.roles.contains(&Role::admin())
    }
}

/// A session: one login and the family of refresh tokens rotated from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session's identifier (`sid`).
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// When the user logged in; the absolute lifetime counts from here.
    pub created_at: Timestamp,
    /// The generation of the newest refresh token of the family (the login token is 0).
    pub latest_generation: u32,
    /// When the session was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// What a refresh needs to know, read in one go: the presented token's record, its
/// session, and the roles its user holds now (for the new access token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    /// The stored token.
    pub token: RefreshTokenRecord,
    /// Its session.
    pub session: Session,
    /// The session's user's current roles.
    pub roles: Vec<Role>,
    /// How the session's user proved who they are at login (for `amr`).
    pub auth_methods: crate::mfa::AuthMethods,
    /// Whether the user's current e-mail address is verified.
    pub email_verified: bool,
}

/// A stored refresh token: only its keyed hash is known to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// The keyed hash of the token (never the token).
    pub hash: RefreshTokenHash,
    /// The session (family) it belongs to.
    pub session_id: SessionId,
    /// Its place in the family: the login token is 0, each rotation adds one.
    pub generation: u32,
    /// When it was issued; the idle lifetime counts from here.
    pub issued_at: Timestamp,
    /// When it was spent by a rotation, if it was.
    pub spent_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_with_invisible_characters_are_refused() {
        for raw in [
            "ad\u{200B}min@example.com",    // zero-width space
            "admin\u{200D}@example.com",    // zero-width joiner
            "\u{200E}admin@example.com",    // left-to-right mark
            "admin@exa\u{202E}elpmaxe.com", // right-to-left override
            "admin@example\u{2066}.com",    // left-to-right isolate
            "admin@example.com\u{2069}",    // pop directional isolate
            "\u{FEFF}admin@example.com",    // byte order mark
            "ad\u{00AD}min@example.com",    // soft hyphen
            "ad\u{3164}min@example.com",    // Hangul filler
            "ad min@example.com",
            "ad\u{7}min@example.com",
        ] {
            assert_eq!(
                Email::parse(raw).err(),
                Some(InvalidInput::Email),
                "{raw:?} was accepted"
            );
        }
        // Visible non-ASCII letters stay allowed.
        assert!(Email::parse("zoë@exämple.com").is_ok());
        assert!(Email::parse("用户@例子.中国").is_ok());
    }

    fn refusal(raw: &str) -> Option<InvalidInput> {
        Password::parse(raw.to_owned()).err()
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        // Three CJK characters are nine bytes: too short all the same.
        assert_eq!(refusal("密码锁"), Some(InvalidInput::PasswordTooShort));
        assert_eq!(refusal("ąęł"), Some(InvalidInput::PasswordTooShort));
        // Eight unusual characters are enough.
        assert!(Password::parse("海豚跳过月亮的桥".to_owned()).is_ok());
        // Counted after normalisation: the one-character ligature "ﬃ" is three letters.
        assert_eq!(refusal("ﬃ"), Some(InvalidInput::PasswordTooShort));
    }

    #[test]
    fn passwords_are_hashed_in_nfkc_form() {
        let full_width =
            Password::parse("ｃｏｒｒｅｃｔ\u{3000}ｈｏｒｓｅ\u{3000}ｂａｔｔｅｒｙ".to_owned())
                .unwrap();
        let ascii = Password::parse("correct horse battery".to_owned()).unwrap();
        assert_eq!(full_width.expose(), ascii.expose());
        assert_eq!(ascii.expose(), b"correct horse battery");
        let composed = Password::parse("crème brûlée au café".to_owned()).unwrap();
        let decomposed =
            Password::parse("cre\u{300}me bru\u{302}le\u{301}e au cafe\u{301}".to_owned()).unwrap();
        assert_eq!(composed.expose(), decomposed.expose());
        assert_eq!(composed.expose(), "crème brûlée au café".as_bytes());
    }

    #[test]
    fn length_cap_holds_before_and_after_normalisation() {
        assert_eq!(
            refusal(&"x".repeat(Password::MAX_BYTES + 1)),
            Some(InvalidInput::PasswordTooLong)
        );
        // 300 × U+FDFA is 900 bytes as typed and about 10,000 bytes in NFKC.
        let expanding = "\u{FDFA}".repeat(300);
        assert!(expanding.len() <= Password::MAX_BYTES);
        assert_eq!(refusal(&expanding), Some(InvalidInput::PasswordTooLong));
        let long: String = "correct horse battery staple "
            .repeat(40)
            .chars()
            .take(Password::MAX_BYTES)
            .collect();
        assert!(Password::parse(long).is_ok());
    }

    #[test]
    fn common_passwords_are_too_weak() {
        for weak in [
            "12345678",
            "password",
            "password1",
            "Password1!",
            "qwertyuiop",
            "iloveyou123",
            "trustno1trustno1",
            "ｐａｓｓｗｏｒｄ１２３", // full-width "password123"
            "aaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(refusal(weak), Some(InvalidInput::PasswordTooWeak), "{weak}");
        }
        assert_eq!(InvalidInput::PasswordTooWeak.code(), "password_too_weak");
    }

    #[test]
    fn passphrases_and_the_documented_passwords_pass() {
        for strong in [
            "correct horse battery staple",
            "correct horse battery",
            "correct horse",
            "a long admin password",
            "benchmark-password-1",
            "k9#mQ2zx",
        ] {
            assert_eq!(refusal(strong), None, "{strong}");
        }
    }

    #[test]
    fn the_account_name_makes_a_password_weaker() {
        let raw = "quinnsworth2024";
        assert!(Password::parse(raw.to_owned()).is_ok());
        assert_eq!(
            Password::parse_with_context(
                raw.to_owned(),
                &["quinnsworth@example.com", "quinnsworth"]
            )
            .err(),
            Some(InvalidInput::PasswordTooWeak)
        );
    }

    #[test]
    fn password_debug_is_redacted() {
        let password = Password::parse("correct horse battery".to_owned()).unwrap();
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
    }
}
