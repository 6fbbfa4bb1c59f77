//! `Jwk`/`Jwks` parsing and key import: no panic, whatever the key material.
#![no_main]

use latchkey_verify::{Jwk, Jwks, KeySet, VerificationKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(jwks) = serde_json::from_slice::<Jwks>(data) {
        let keys = KeySet::from_jwks(&jwks);
        let _ = keys.len();
    }
    if let Ok(jwk) = serde_json::from_slice::<Jwk>(data) {
        if let Ok(key) = VerificationKey::from_jwk(&jwk) {
            // Arbitrary message and signature: checking must answer, not panic.
            let _ = key.verify_signature(data, data);
            let _ = key.verify_signature(b"", &[]);
        }
    }
});
