//! Domain values that are parsed once at the edge and trusted afterwards
//! ("parse, don't validate"): identifiers, e-mail addresses, passwords, roles.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::Timestamp;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random identifier.
            pub fn generate() -> Self {
                Self(Uuid::new_v4())
            }

            /// The identifier as a UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// Identifies a user; the access token's `sub`.
    UserId
);
uuid_id!(
    /// Identifies a session, that is one refresh-token family; the access token's `sid`.
    SessionId
);

/// Why an input value was refused. Each variant has a stable code for API errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    /// The e-mail address is not a plausible address.
    #[error("the e-mail address is not valid")]
    Email,
    /// The password is shorter than 8 bytes.
    #[error("the password must be at least 8 bytes long")]
    PasswordTooShort,
    /// The password is longer than 1024 bytes.
    #[error("the password must be at most 1024 bytes long")]
    PasswordTooLong,
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
            && !normalised
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
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

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed: 8 to 1024 bytes. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Check the length rules.
    pub fn parse(raw: String) -> Result<Self, InvalidInput> {
        match raw.len() {
            0..=7 => Err(InvalidInput::PasswordTooShort),
            8..=1024 => Ok(Self(raw)),
            _ => Err(InvalidInput::PasswordTooLong),
        }
    }

    /// The password's bytes, for hashing only.
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
}

/// A stored refresh token: only its keyed hash is known to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// The keyed hash of the token (never the token).
    pub hash: crate::refresh::RefreshTokenHash,
    /// The session (family) it belongs to.
    pub session_id: SessionId,
    /// Its place in the family: the login token is 0, each rotation adds one.
    pub generation: u32,
    /// When it was issued; the idle lifetime counts from here.
    pub issued_at: Timestamp,
    /// When it was spent by a rotation, if it was.
    pub spent_at: Option<Timestamp>,
}
