//! Minting test tokens with aws-lc-rs: keys of every algorithm, their public JWKs, and
//! compact JWS built by hand (so forged headers are easy).

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents,
    ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_verify::Jwk;
use serde_json::{json, Value};

/// Unpadded base64url.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Signer {
    Ed25519(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    Hs256(Box<hmac::Key>),
}

/// A private key with its `kid`.
pub struct TestKey {
    pub kid: String,
    signer: Signer,
}

impl TestKey {
    pub fn ed25519(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Self::new(kid, Signer::Ed25519(pair))
    }

    pub fn es256(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        Self::new(kid, Signer::Es256(pair))
    }

    pub fn rs256(kid: &str) -> Self {
        Self::new(
            kid,
            Signer::Rs256(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()),
        )
    }

    pub fn hs256(kid: &str, secret: &[u8]) -> Self {
        Self::new(
            kid,
            Signer::Hs256(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret))),
        )
    }

    fn new(kid: &str, signer: Signer) -> Self {
        Self {
            kid: kid.to_owned(),
            signer,
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Ed25519(_) => "EdDSA",
            Signer::Es256(_) => "ES256",
            Signer::Rs256(_) => "RS256",
            Signer::Hs256(_) => "HS256",
        }
    }

    /// The public key bytes as a confused verifier might use them as an HMAC secret.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.signer {
            Signer::Ed25519(pair) => pair.public_key().as_ref().to_vec(),
            Signer::Es256(pair) => pair.public_key().as_ref().to_vec(),
            Signer::Rs256(pair) => pair.public_key().as_ref().to_vec(),
            Signer::Hs256(_) => panic!("no public key"),
        }
    }

    /// The public JWK, as the Latchkey server publishes it.
    pub fn jwk(&self) -> Jwk {
        let base = Jwk {
            kid: Some(self.kid.clone()),
            alg: Some(self.alg().to_owned()),
            use_: Some("sig".to_owned()),
            ..Jwk::default()
        };
        match &self.signer {
            Signer::Ed25519(pair) => Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(b64(pair.public_key())),
                ..base
            },
            Signer::Es256(pair) => {
                let point = pair.public_key().as_ref();
                Jwk {
                    kty: "EC".into(),
                    crv: Some("P-256".into()),
                    x: Some(b64(&point[1..33])),
                    y: Some(b64(&point[33..65])),
                    ..base
                }
            }
            Signer::Rs256(pair) => {
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                Jwk {
                    kty: "RSA".into(),
                    n: Some(b64(&components.n)),
                    e: Some(b64(&components.e)),
                    ..base
                }
            }
            Signer::Hs256(_) => panic!("HS256 keys are never published"),
        }
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Es256(pair) => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
            Signer::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .unwrap();
                signature
            }
            Signer::Hs256(key) => hmac::sign(key, message).as_ref().to_vec(),
        }
    }

    /// The standard header: `{alg, typ: "at+jwt", kid}`.
    pub fn header(&self) -> Value {
        json!({ "alg": self.alg(), "typ": "at+jwt", "kid": self.kid })
    }

    /// A token with the standard header.
    pub fn token(&self, claims: &Value) -> String {
        self.token_with_header(&self.header(), claims)
    }

    /// A token with any header, signed by this key.
    pub fn token_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let signature = self.sign(input.as_bytes());
        format!("{input}.{}", b64(signature))
    }
}

/// `base64url(header) . base64url(claims)`.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", b64(header.to_string()), b64(claims.to_string()))
}

/// An HS256 token whose HMAC secret is `secret` (for algorithm-confusion forgeries).
pub fn hs256_token(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    format!("{input}.{}", b64(hmac::sign(&key, input.as_bytes())))
}

pub const ISSUER: &str = "http://latchkey.test";
pub const AUDIENCE: &str = "notes";

/// Claims valid at `now` for 15 minutes.
pub fn claims_at(now: i64, sub: &str, sid: &str, jti: &str, roles: &[&str]) -> Value {
    json!({
        "iss": ISSUER,
        "sub": sub,
        "aud": AUDIENCE,
        "sid": sid,
        "roles": roles,
        "iat": now,
        "exp": now + 900,
        "jti": jti,
    })
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
