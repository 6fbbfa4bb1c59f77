//! Micro-benchmarks of the domain core, the CPU work behind each request:
//!
//! - `sign/<alg>` and `verify/<alg>`: an access token signed by a freshly generated key
//!   loaded into a [`KeyRing`] (as the server does at start-up), and the same token checked
//!   with `latchkey_verify::verify_access_token` against the ring's verification keys;
//! - `rotation/decide`: the pure refresh-rotation decision;
//! - `refresh_token/hash+successor`: the two HMACs of a refresh;
//! - `argon2id/owasp`: one password hash and one verification at OWASP cost (the login
//!   ceiling per core is about 1 / this time).
//!
//! Run: `cargo bench -p latchkey-core --bench core` (add `-- sign` to pick a group).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use latchkey_core::keys::{KeyRing, SigningKey};
use latchkey_core::model::{Password, RefreshTokenRecord, Session, SessionId, UserId};
use latchkey_core::password::{HashCost, PasswordHasher};
use latchkey_core::refresh::{RefreshKeys, RefreshTokenHash, TokenLocator};
use latchkey_core::rotation::{decide, RotationDecision, RotationPolicy};
use latchkey_core::time::Timestamp;
use latchkey_verify::{verify_access_token, AccessClaims, Algorithm, Validation};

const NOW: i64 = 1_800_000_000;

/// Claims shaped like the server's: UUID `sub` and `sid`, one role, a 22-character `jti`.
fn claims() -> AccessClaims {
    AccessClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: UserId::generate().to_string(),
        aud: vec!["latchkey".into()],
        sid: SessionId::generate().to_string(),
        roles: vec!["user".into()],
        iat: NOW,
        exp: NOW + 900,
        nbf: None,
        email_verified: None,
        jti: "Qk1tZXJnZWRqdGlzYW1wbGU".into(),
        amr: Vec::new(),
        auth_time: None,
    }
}

fn validation() -> Validation {
    Validation {
        issuer: "http://127.0.0.1:8080".into(),
        audience: "latchkey".into(),
        leeway: Duration::from_secs(30),
        max_lifetime: None,
    }
}

fn sign_and_verify(c: &mut Criterion) {
    let claims = claims();
    let validation = validation();
    for algorithm in [
        Algorithm::EdDSA,
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::HS256,
    ] {
        let stored = SigningKey::generate(algorithm, Timestamp::from_unix_millis(NOW * 1000))
            .expect("key generation");
        let ring = KeyRing::from_stored(&[stored]).expect("key ring");
        let token = ring.active().sign(&claims).expect("sign");
        let checked = verify_access_token(&token, ring.verification_keys(), &validation, NOW);
        assert_eq!(checked.as_ref().ok(), Some(&claims), "{algorithm}");

        c.bench_function(&format!("sign/{algorithm}"), |b| {
            b.iter(|| ring.active().sign(black_box(&claims)))
        });
        c.bench_function(&format!("verify/{algorithm}"), |b| {
            b.iter(|| {
                verify_access_token(
                    black_box(&token),
                    ring.verification_keys(),
                    &validation,
                    NOW,
                )
            })
        });
    }
}

fn rotation_decision(c: &mut Criterion) {
    let policy = RotationPolicy {
        idle_ttl: Duration::from_secs(7 * 86_400),
        session_lifetime: Duration::from_secs(30 * 86_400),
        reuse_grace: Duration::from_secs(10),
    };
    let login = Timestamp::from_unix_millis(NOW * 1000);
    let session = Session {
        id: SessionId::generate(),
        user_id: UserId::generate(),
        created_at: login,
        latest_generation: 3,
        revoked_at: None,
    };
    let token = RefreshTokenRecord {
        hash: RefreshTokenHash::from_bytes([1; 32]),
        session_id: session.id,
        generation: 3,
        issued_at: login,
        spent_at: None,
    };
    let now = login.plus(Duration::from_secs(60));
    assert_eq!(
        decide(Some((&token, &session)), now, &policy),
        RotationDecision::Rotate {
            successor_generation: 4
        }
    );
    c.bench_function("rotation/decide", |b| {
        b.iter(|| decide(black_box(Some((&token, &session))), black_box(now), &policy))
    });

    let keys = RefreshKeys::from_master_secret(&[7; 32]).expect("refresh keys");
    let presented = keys.new_token(session.id);
    let at = TokenLocator {
        session_id: session.id,
        generation: 1,
    };
    c.bench_function("refresh_token/hash+successor", |b| {
        b.iter(|| {
            let next = keys.successor(black_box(&presented), at);
            (keys.hash(black_box(&presented)), keys.hash(&next))
        })
    });
}

fn argon2id(c: &mut Criterion) {
    let hasher = PasswordHasher::new(HashCost::OWASP).expect("hasher");
    let password = Password::parse("correct horse battery staple".into()).expect("password");
    let mut memory = hasher.new_memory();
    let hash = hasher.hash(&password, &mut memory).expect("hash");
    assert!(hasher.verify(password.expose(), Some(&hash), &mut memory));
    let mut group = c.benchmark_group("argon2id");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("owasp/hash", |b| {
        b.iter(|| hasher.hash(black_box(&password), &mut memory))
    });
    group.bench_function("owasp/verify", |b| {
        b.iter(|| hasher.verify(black_box(password.expose()), Some(&hash), &mut memory))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = sign_and_verify, rotation_decision, argon2id
}
criterion_main!(benches);
