//! `CompactJws::parse`, then verification against a fixed key set (Ed25519 and HS256):
//! no input may panic, and nothing the fuzzer writes may verify (it holds no key).
#![no_main]

use latchkey_verify::{verify_access_token, CompactJws, KeySet, Validation, VerificationKey};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::Duration;

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = KeySet::new();
        // An Ed25519 public key (RFC 8032 test 1) and an HS256 secret nobody else has.
        let ed = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        if let Ok(key) = VerificationKey::ed25519("ed", &ed) {
            keys.insert(key);
        }
        if let Ok(key) = VerificationKey::hs256("hs", b"fuzz-secret-fuzz-secret-fuzz-secret!!") {
            keys.insert(key);
        }
        keys
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jws) = CompactJws::parse(token) {
        assert!(jws.verify_in(keys()).is_err(), "a fuzzed token verified");
    }
    let validation = Validation::new("https://auth.test", "api", Duration::from_secs(30));
    assert!(verify_access_token(token, keys(), &validation, 1_700_000_000).is_err());
});
