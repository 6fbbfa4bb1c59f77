//! Any single-byte change to a valid access token makes verification fail, for every
//! algorithm: header, payload, signature and the dots between them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::keys::{claims_at, now, TestKey, AUDIENCE, ISSUER};
use latchkey_verify::{verify_access_token, Jwks, KeySet, Validation};
use proptest::prelude::*;

/// Keys made once (RSA key generation is slow) and shared by every case.
fn shared(make: fn() -> TestKey, cell: &'static OnceLock<TestKey>) -> &'static TestKey {
    cell.get_or_init(make)
}

static ED: OnceLock<TestKey> = OnceLock::new();
static EC: OnceLock<TestKey> = OnceLock::new();
static RS: OnceLock<TestKey> = OnceLock::new();

fn signed(key: &TestKey) -> (String, KeySet) {
    let token = key.token(&claims_at(now(), "user-1", "sid-1", "jti-1", &["user"]));
    (
        token,
        KeySet::from_jwks(&Jwks {
            keys: vec![key.jwk()],
        }),
    )
}

fn refuses_every_single_byte_change(
    key: &TestKey,
    position: prop::sample::Index,
    byte: u8,
) -> Result<(), TestCaseError> {
    let (token, keys) = signed(key);
    let validation = Validation::new(ISSUER, AUDIENCE, Duration::from_secs(30));
    verify_access_token(&token, &keys, &validation, now()).expect("the original verifies");
    let mut bytes = token.into_bytes();
    let at = position.index(bytes.len());
    prop_assume!(bytes[at] != byte);
    bytes[at] = byte;
    // Bytes that are not UTF-8 cannot even be presented as a token.
    if let Ok(tampered) = String::from_utf8(bytes) {
        let verified = verify_access_token(&tampered, &keys, &validation, now());
        prop_assert!(
            verified.is_err(),
            "changed byte {} to {:#04x}: {}",
            at,
            byte,
            tampered
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn an_ed25519_token_changed_in_one_byte_is_refused(position: prop::sample::Index, byte: u8) {
        refuses_every_single_byte_change(shared(|| TestKey::ed25519("ed"), &ED), position, byte)?;
    }

    #[test]
    fn an_es256_token_changed_in_one_byte_is_refused(position: prop::sample::Index, byte: u8) {
        refuses_every_single_byte_change(shared(|| TestKey::es256("ec"), &EC), position, byte)?;
    }

    #[test]
    fn an_rs256_token_changed_in_one_byte_is_refused(position: prop::sample::Index, byte: u8) {
        refuses_every_single_byte_change(shared(|| TestKey::rs256("rs"), &RS), position, byte)?;
    }
}

/// Exhaustively, for one Ed25519 token: every position, every printable ASCII byte.
#[test]
fn every_single_byte_change_of_an_ed25519_token_is_refused() {
    let key = TestKey::ed25519("ed");
    let (token, keys) = signed(&key);
    let validation = Validation::new(ISSUER, AUDIENCE, Duration::from_secs(30));
    let original = token.as_bytes();
    for at in 0..original.len() {
        for byte in 0x20u8..0x7f {
            if byte == original[at] {
                continue;
            }
            let mut bytes = original.to_vec();
            bytes[at] = byte;
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(
                verify_access_token(&tampered, &keys, &validation, now()).is_err(),
                "changed byte {at} to {:?}",
                byte as char
            );
        }
    }
}
