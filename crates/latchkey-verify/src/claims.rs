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
    /// How the user authenticated (RFC 8176: `pwd`, `otp`, `mfa`, ...); empty in tokens
    /// from issuers (or Latchkey versions) that do not say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the user authenticated (logged in), Unix seconds; kept across refreshes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Whether the user's e-mail address was verified when the token was issued; absent
    /// in tokens from servers (or versions) that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl AccessClaims {
    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the user authenticated with more than one factor: `amr` says `mfa`, or
    /// names a one-time code besides the password (RFC 8176).
    pub fn is_multi_factor(&self) -> bool {
        let has = |method: &str| self.amr.iter().any(|m| m == method);
        has("mfa") || (has("pwd") && (has("otp") || has("hwk") || has("swk")))
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
///
/// Build one with [`Validation::new`] (and [`with_max_lifetime`](Self::with_max_lifetime)),
/// so that settings added later do not break your code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The expected `iss`.
    pub issuer: String,
    /// The audience that `aud` must contain.
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// The longest lifetime (`exp - iat`) a token may claim, leeway added; `None` sets no
    /// bound. Set it to the issuer's access-token TTL, so that a token minted with a
    /// stolen key (or by a misconfigured issuer) for a year is refused. A longer token
    /// is refused as [`TokenError::LifetimeTooLong`] (code `token_invalid`).
    pub max_lifetime: Option<Duration>,
}

impl Validation {
    /// Expect this issuer and audience, tolerate `leeway` of clock skew, and set no bound
    /// on the token lifetime.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, leeway: Duration) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway,
            max_lifetime: None,
        }
    }

    /// Refuse tokens whose `exp - iat` exceeds `max_lifetime` plus the leeway.
    #[must_use]
    pub fn with_max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = Some(max_lifetime);
        self
    }
}

/// Verify a compact access token: signature with the key named by `kid` (algorithm from
/// the key), `typ: at+jwt`, then `iss`, `aud`, `exp`, `nbf` and `iat` at `now_unix_secs`,
/// and the lifetime `exp - iat` when [`Validation::max_lifetime`] is set.
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
    if let Some(max_lifetime) = validation.max_lifetime {
        let max_lifetime = i64::try_from(max_lifetime.as_secs()).unwrap_or(i64::MAX);
        if claims.exp.saturating_sub(claims.iat) > max_lifetime.saturating_add(leeway) {
            return Err(TokenError::LifetimeTooLong);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn amr_and_auth_time_are_optional_and_name_the_factors() {
        let old = r#"{"iss":"i","sub":"s","aud":"a","sid":"x","iat":1,"exp":2,"jti":"j"}"#;
        let claims: AccessClaims = serde_json::from_str(old).unwrap();
        assert_eq!((claims.amr.len(), claims.auth_time), (0, None));
        assert!(!claims.is_multi_factor());
        for (amr, multi) in [
            (vec!["pwd"], false),
            (vec!["otp"], false),
            (vec!["pwd", "otp"], true),
            (vec!["mfa"], true),
        ] {
            let claims = AccessClaims {
                amr: amr.iter().map(|m| (*m).to_owned()).collect(),
                ..claims.clone()
            };
            assert_eq!(claims.is_multi_factor(), multi, "{amr:?}");
        }
        // Absent claims stay absent on the wire.
        let written = serde_json::to_string(&claims).unwrap();
        assert!(!written.contains("amr") && !written.contains("auth_time"));
    }
}
