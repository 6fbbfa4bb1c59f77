//! `Validation::max_lifetime`: tokens whose `exp - iat` exceeds the bound plus the leeway
//! are refused, at the exact edge.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::keys::{claims_at, now, TestKey, AUDIENCE, ISSUER};
use latchkey_verify::{verify_access_token, Jwks, KeySet, TokenError, Validation};

fn keys(key: &TestKey) -> KeySet {
    KeySet::from_jwks(&Jwks {
        keys: vec![key.jwk()],
    })
}

/// A token issued at `iat` that lives `lifetime` seconds.
fn token_living(key: &TestKey, iat: i64, lifetime: i64) -> String {
    let mut claims = claims_at(iat, "user-1", "sid-1", "jti-1", &[]);
    claims["exp"] = (iat + lifetime).into();
    key.token(&claims)
}

#[test]
fn lifetime_is_bounded_by_max_lifetime_plus_leeway() {
    let key = TestKey::ed25519("ed-1");
    let keys = keys(&key);
    let now = now();
    let validation = Validation::new(ISSUER, AUDIENCE, Duration::from_secs(30))
        .with_max_lifetime(Duration::from_secs(900));
    assert_eq!(validation.max_lifetime, Some(Duration::from_secs(900)));

    // 900 s TTL + 30 s leeway: 930 s is the longest accepted lifetime.
    for lifetime in [60, 900, 930] {
        let token = token_living(&key, now, lifetime);
        let claims = verify_access_token(&token, &keys, &validation, now);
        assert!(claims.is_ok(), "lifetime {lifetime}: {claims:?}");
    }
    for lifetime in [931, 3600, 365 * 24 * 3600] {
        let token = token_living(&key, now, lifetime);
        let refused = verify_access_token(&token, &keys, &validation, now);
        assert_eq!(
            refused,
            Err(TokenError::LifetimeTooLong),
            "lifetime {lifetime}"
        );
        // The public code does not tell which check failed.
        assert_eq!(TokenError::LifetimeTooLong.code(), "token_invalid");
    }

    // Backdating `iat` does not help: the lifetime is `exp - iat`, whatever `now` is.
    let backdated = token_living(&key, now - 600, 1200);
    assert_eq!(
        verify_access_token(&backdated, &keys, &validation, now),
        Err(TokenError::LifetimeTooLong)
    );

    // Without a leeway the bound is exact.
    let strict = Validation::new(ISSUER, AUDIENCE, Duration::ZERO)
        .with_max_lifetime(Duration::from_secs(900));
    assert!(verify_access_token(&token_living(&key, now, 900), &keys, &strict, now).is_ok());
    assert_eq!(
        verify_access_token(&token_living(&key, now, 901), &keys, &strict, now),
        Err(TokenError::LifetimeTooLong)
    );
}

#[test]
fn without_max_lifetime_any_lifetime_is_accepted() {
    let key = TestKey::ed25519("ed-1");
    let keys = keys(&key);
    let now = now();
    let validation = Validation::new(ISSUER, AUDIENCE, Duration::from_secs(30));
    assert_eq!(validation.max_lifetime, None);
    let year = token_living(&key, now, 365 * 24 * 3600);
    assert!(verify_access_token(&year, &keys, &validation, now).is_ok());
}

#[test]
fn a_token_without_iat_is_refused() {
    let key = TestKey::ed25519("ed-1");
    let keys = keys(&key);
    let now = now();
    let validation = Validation::new(ISSUER, AUDIENCE, Duration::from_secs(30))
        .with_max_lifetime(Duration::from_secs(900));
    let mut claims = claims_at(now, "user-1", "sid-1", "jti-1", &[]);
    claims.as_object_mut().unwrap().remove("iat");
    let refused = verify_access_token(&key.token(&claims), &keys, &validation, now);
    assert_eq!(refused, Err(TokenError::BadClaims));
    assert_eq!(refused.unwrap_err().code(), "token_invalid");
}
