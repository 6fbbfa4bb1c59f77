//! The request and response shapes of the servers under test: Latchkey (snake_case,
//! refresh token in the body on request) and the Express peer (camelCase).

use clap::ValueEnum;
use serde_json::{json, Value};

/// The password of every benchmark user (and of every seeded user).
pub(crate) const PASSWORD: &str = "benchmark-password-1";

/// Which API a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Api {
    /// Latchkey: `/auth/me`, `{"refresh_token"}`.
    Latchkey,
    /// The Express peer: `/api/profile`, `{"refreshToken"}`.
    Peer,
    /// The ceiling server: `/auth/me` only.
    Ceiling,
}

/// A user's credentials.
#[derive(Debug, Clone)]
pub(crate) struct Creds {
    /// The e-mail address.
    pub(crate) email: String,
    /// The password.
    pub(crate) password: String,
}

impl Creds {
    /// The `n`th benchmark user.
    pub(crate) fn bench(n: usize) -> Self {
        Self {
            email: format!("bench-{n}@bench.example"),
            password: PASSWORD.to_owned(),
        }
    }

    /// The `n`th seeded user (see `seed`).
    pub(crate) fn seeded(n: u64) -> Self {
        Self {
            email: seeded_email(n),
            password: PASSWORD.to_owned(),
        }
    }
}

/// The address of the `n`th seeded user: zero-padded so that address order is index order.
pub(crate) fn seeded_email(n: u64) -> String {
    format!("seed-{n:08}@seed.example")
}

/// An access token and the refresh token issued with it.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    /// The bearer token.
    pub(crate) access: String,
    /// The refresh token to present next.
    pub(crate) refresh: String,
}

impl Api {
    /// The route that needs a valid access token.
    pub(crate) fn protected_path(self) -> &'static str {
        match self {
            Self::Latchkey | Self::Ceiling => "/auth/me",
            Self::Peer => "/api/profile",
        }
    }

    /// `POST /auth/register` body (the same for both servers).
    pub(crate) fn register_body(self, creds: &Creds) -> Vec<u8> {
        json!({ "email": creds.email, "password": creds.password })
            .to_string()
            .into_bytes()
    }

    /// `POST /auth/login` body; Latchkey is asked for the refresh token in the body.
    pub(crate) fn login_body(self, creds: &Creds) -> Vec<u8> {
        match self {
            Self::Latchkey | Self::Ceiling => json!({
                "email": creds.email,
                "password": creds.password,
                "refresh_delivery": "body",
            }),
            Self::Peer => json!({ "email": creds.email, "password": creds.password }),
        }
        .to_string()
        .into_bytes()
    }

    /// `POST /auth/refresh` body.
    pub(crate) fn refresh_body(self, refresh_token: &str) -> Vec<u8> {
        match self {
            Self::Latchkey | Self::Ceiling => json!({ "refresh_token": refresh_token }),
            Self::Peer => json!({ "refreshToken": refresh_token }),
        }
        .to_string()
        .into_bytes()
    }

    /// The token pair in a login or refresh response.
    pub(crate) fn tokens(self, body: &[u8]) -> Option<Tokens> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let (access, refresh) = match self {
            Self::Latchkey | Self::Ceiling => ("access_token", "refresh_token"),
            Self::Peer => ("accessToken", "refreshToken"),
        };
        Some(Tokens {
            access: value.get(access)?.as_str()?.to_owned(),
            refresh: value.get(refresh)?.as_str()?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_pairs_are_read_from_both_shapes() {
        let latchkey = br#"{"access_token":"a","token_type":"Bearer","refresh_token":"r"}"#;
        let peer = br#"{"accessToken":"a","refreshToken":"r"}"#;
        for (api, body) in [(Api::Latchkey, &latchkey[..]), (Api::Peer, &peer[..])] {
            let tokens = api.tokens(body).unwrap();
            assert_eq!(
                (tokens.access.as_str(), tokens.refresh.as_str()),
                ("a", "r")
            );
        }
        assert!(Api::Latchkey.tokens(peer).is_none());
    }

    #[test]
    fn seeded_addresses_sort_in_index_order() {
        assert!(seeded_email(9) < seeded_email(10));
        assert!(seeded_email(99_999) < seeded_email(1_000_000));
    }
}
