//! Cost of verifying an access token, per algorithm: the full `verify_access_token`
//! (parse, base64url, JSON header and claims, signature, claim checks) against the raw
//! `VerificationKey::verify_signature` on the same key and message, so the overhead of
//! everything but the cryptography is visible. With the feature `remote`, also
//! `RemoteVerifier::verify_at` (adds the key-set snapshot and the revocation lookup).
//!
//! Run: `cargo bench -p latchkey-verify --all-features --bench verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/common/keys.rs"]
#[allow(dead_code, unreachable_pub)]
mod keys;

use std::hint::black_box;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use keys::{claims_at, TestKey, AUDIENCE, ISSUER};
use latchkey_verify::{verify_access_token, KeySet, Validation, VerificationKey};

const NOW: i64 = 1_763_900_000;

const HS256_SECRET: [u8; 32] = [7; 32];

fn test_keys() -> [TestKey; 4] {
    [
        TestKey::ed25519("ed"),
        TestKey::es256("ec"),
        TestKey::rs256("rsa"),
        TestKey::hs256("hs", &HS256_SECRET),
    ]
}

/// The verifier's key for `key`: from the public JWK, or the shared secret for HS256.
fn verification_key(key: &TestKey) -> VerificationKey {
    if key.alg() == "HS256" {
        VerificationKey::hs256(key.kid.clone(), &HS256_SECRET).unwrap()
    } else {
        VerificationKey::from_jwk(&key.jwk()).unwrap()
    }
}

fn bench(c: &mut Criterion) {
    let validation = Validation::new(ISSUER, AUDIENCE, Duration::from_secs(30));
    let claims = claims_at(
        NOW,
        "user-1",
        "3f1c0a52-6a5e-4f43-9a43-2a0c7bb1d0e4",
        "jti-1",
        &["reader"],
    );
    #[cfg(feature = "remote")]
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    for key in test_keys() {
        let token = key.token(&claims);
        let (signing_input, signature_b64) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
        let mut set = KeySet::new();
        set.insert(verification_key(&key));
        assert!(verify_access_token(&token, &set, &validation, NOW).is_ok());
        let raw = set.get(&key.kid).unwrap();
        assert!(raw.verify_signature(signing_input.as_bytes(), &signature));

        let mut group = c.benchmark_group(key.alg());
        group.bench_function("verify_signature", |b| {
            b.iter(|| {
                raw.verify_signature(black_box(signing_input.as_bytes()), black_box(&signature))
            })
        });
        group.bench_function("verify_access_token", |b| {
            b.iter(|| verify_access_token(black_box(&token), &set, &validation, NOW))
        });
        #[cfg(feature = "remote")]
        {
            let mut remote_set = KeySet::new();
            remote_set.insert(verification_key(&key));
            let verifier = runtime
                .block_on(
                    latchkey_verify::RemoteVerifier::builder()
                        .key_set(remote_set)
                        .issuer(ISSUER)
                        .audience(AUDIENCE)
                        .build(),
                )
                .unwrap();
            group.bench_function("RemoteVerifier::verify_at", |b| {
                b.iter(|| runtime.block_on(verifier.verify_at(black_box(&token), NOW)))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
