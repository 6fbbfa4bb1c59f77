//! Access-token claims and their validation.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::TokenError;
use crate::jwk::KeySet;
use crate::jws::CompactJws;

/// The `typ` header of Latchkey access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The claims of a Latchkey access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience. A single audience is written as a string; a string or an array is
    /// accepted when reading.
    #[serde(deserialize_with = "audience", serialize_with = "audience_out")]
    pub aud: Vec<String>,
    /// Session id: the refresh-token family this token was issued from.
    pub sid: String,
    /// The user's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Not before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique token id, for the denylist.
    pub jti: String,
}

impl AccessClaims {
    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

fn audience_out<S: serde::Serializer>(aud: &[String], serializer: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => serializer.serialize_str(one),
        many => many.serialize(serializer),
    }
}

fn audience<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(aud) => vec![aud],
        OneOrMany::Many(auds) => auds,
    })
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The expected `iss`.
    pub issuer: String,
    /// The audience that `aud` must contain.
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
}

/// Verify a compact access token: signature with the key named by `kid` (algorithm from
/// the key), `typ: at+jwt`, then `iss`, `aud`, `exp`, `nbf` and `iat` at `now_unix_secs`.
///
/// Revocation is not checked here: that needs the issuer's revocation state.
pub fn verify_access_token(
    token: &str,
    keys: &KeySet,
    validation: &Validation,
    now_unix_secs: i64,
) -> Result<AccessClaims, TokenError> {
    let jws = CompactJws::parse(token)?;
    let payload = jws.verify_in(keys)?;
    let typ_ok = jws.header.typ.as_deref().is_some_and(|typ| {
        typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
            || typ.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(TokenError::WrongType);
    }
    let claims: AccessClaims =
        serde_json::from_slice(&payload).map_err(|_| TokenError::BadClaims)?;
    check_claims(&claims, validation, now_unix_secs)?;
    Ok(claims)
}

fn check_claims(
    claims: &AccessClaims,
    validation: &Validation,
    now: i64,
) -> Result<(), TokenError> {
    let leeway = i64::try_from(validation.leeway.as_secs()).unwrap_or(i64::MAX);
    if claims.iss != validation.issuer {
        return Err(TokenError::WrongIssuer);
    }
    if !claims.aud.contains(&validation.audience) {
        return Err(TokenError::WrongAudience);
    }
    if now >= claims.exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    let not_before = claims.nbf.unwrap_or(claims.iat).max(claims.iat);
    if now.saturating_add(leeway) < not_before {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}
