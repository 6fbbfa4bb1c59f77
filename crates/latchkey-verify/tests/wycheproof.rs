//! Wycheproof vectors (C2SP, Apache-2.0, copied under tests/vectors) run against the
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! verification code: JWS, JWK sets, and the raw Ed25519 and P-256 primitives.

use latchkey_verify::{CompactJws, Jwk, Jwks, KeySet, VerificationKey};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn groups(doc: &Value) -> &Vec<Value> {
    doc["testGroups"].as_array().unwrap()
}

/// Valid JWS vectors that Latchkey refuses on purpose, each with the reason. Every other
/// valid vector must verify, and every invalid one must be refused (but see
/// [`accepted_invalid`]).
fn refused_valid(tc_id: u64) -> Option<&'static str> {
    match tc_id {
        264..=271 => Some("RS384/RS512: Latchkey supports RS256 only"),
        272..=275 | 287 | 288 | 320..=323 | 325..=328 | 346 | 350 => {
            Some("PS256/PS384/PS512: not supported")
        }
        347 | 351 => Some("ES512 (P-521): not supported"),
        372 | 373 => Some("a character outside base64url: compact JWS is decoded strictly"),
        _ => None,
    }
}

/// Invalid JWS vectors whose token is byte-for-byte a valid vector of the same group in
/// this copy of Wycheproof: they contradict each other, and Latchkey follows "valid".
fn accepted_invalid(tc_id: u64) -> Option<&'static str> {
    matches!(tc_id, 367 | 370).then_some("identical to a valid vector of its group")
}

#[test]
fn json_web_signature_vectors() {
    let doc = load("json_web_signature_test.json");
    let (mut seen, mut wrong) = (Vec::new(), Vec::new());
    for group in groups(&doc) {
        let jwk_value = group
            .get("public")
            .or_else(|| group.get("private"))
            .unwrap();
        let key = serde_json::from_value::<Jwk>(jwk_value.clone())
            .ok()
            .and_then(|jwk| VerificationKey::from_jwk(&jwk).ok());
        let tests = group["tests"].as_array().unwrap();
        for test in tests {
            let id = test["tcId"].as_u64().unwrap();
            seen.push(id);
            let jws = test["jws"].as_str().unwrap_or("");
            let verified = key.as_ref().is_some_and(|key| {
                CompactJws::parse(jws)
                    .and_then(|parsed| parsed.verify_with(key))
                    .is_ok()
            });
            let expected = match test["result"].as_str().unwrap() {
                "valid" => refused_valid(id).is_none(),
                _ => {
                    if let Some(reason) = accepted_invalid(id) {
                        let twin = tests
                            .iter()
                            .any(|t| t["result"] == "valid" && t["jws"] == test["jws"]);
                        assert!(twin, "tcId {id} is no longer {reason}: update the table");
                    }
                    accepted_invalid(id).is_some()
                }
            };
            if verified != expected {
                wrong.push(format!(
                    "tcId {id} ({}, {}): expected {}, got {}",
                    test["result"],
                    test["comment"],
                    if expected { "verified" } else { "refused" },
                    if verified { "verified" } else { "refused" },
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The exception tables name only vectors that exist.
    let listed = (0..=401).filter(|id| refused_valid(*id).or(accepted_invalid(*id)).is_some());
    for id in listed {
        assert!(
            seen.contains(&id),
            "tcId {id} is in an exception table but not in the file"
        );
    }
    assert_eq!(
        seen.len(),
        401,
        "the vector file changed: review the tables"
    );
}

#[test]
fn json_web_key_set_vectors() {
    let doc = load("json_web_key_test.json");
    let mut checked = 0;
    for group in groups(&doc) {
        let set_value = group
            .get("public")
            .or_else(|| group.get("private"))
            .unwrap();
        let keys = serde_json::from_value::<Jwks>(set_value.clone())
            .map(|jwks| KeySet::from_jwks(&jwks))
            .unwrap_or_default();
        for test in group["tests"].as_array().unwrap() {
            let jws = test["jws"].as_str().unwrap_or("");
            let verified = CompactJws::parse(jws)
                .and_then(|parsed| parsed.verify_in(&keys))
                .is_ok();
            let id = test["tcId"].as_u64().unwrap();
            // Symmetric (`oct`) keys are never taken from a key set (see
            // `KeySet::from_jwks`), so the valid HS256/HS384/HS512 sets (2, 13, 14, 15)
            // are refused by design; every other valid set verifies.
            let expected = test["result"] == "valid" && !matches!(id, 2 | 13 | 14 | 15);
            assert_eq!(
                verified, expected,
                "tcId {id} ({}, {})",
                test["result"], test["comment"]
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked, 26,
        "the vector file changed: review the expectations"
    );
}

#[test]
fn ed25519_primitive_vectors() {
    let doc = load("ed25519_test.json");
    let mut checked = 0;
    for group in groups(&doc) {
        let key = VerificationKey::ed25519("k", &hex(group["publicKey"]["pk"].as_str().unwrap()));
        for test in group["tests"].as_array().unwrap() {
            let ok = key.as_ref().is_ok_and(|key| {
                key.verify_signature(
                    &hex(test["msg"].as_str().unwrap()),
                    &hex(test["sig"].as_str().unwrap()),
                )
            });
            match test["result"].as_str().unwrap() {
                "valid" => assert!(ok, "tcId {} refused", test["tcId"]),
                "invalid" => assert!(!ok, "tcId {} accepted", test["tcId"]),
                _ => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 100);
}

#[test]
fn p256_primitive_vectors() {
    let doc = load("ecdsa_secp256r1_sha256_p1363_test.json");
    let mut checked = 0;
    for group in groups(&doc) {
        let point = hex(group["publicKey"]["uncompressed"].as_str().unwrap());
        let key = VerificationKey::es256("k", &point[1..33], &point[33..65]);
        for test in group["tests"].as_array().unwrap() {
            let ok = key.as_ref().is_ok_and(|key| {
                key.verify_signature(
                    &hex(test["msg"].as_str().unwrap()),
                    &hex(test["sig"].as_str().unwrap()),
                )
            });
            match test["result"].as_str().unwrap() {
                "valid" => assert!(ok, "tcId {} refused", test["tcId"]),
                "invalid" => assert!(!ok, "tcId {} accepted", test["tcId"]),
                _ => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 100);
}
