use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_core::keys::{KeyRing, SigningKey};
use latchkey_core::time::Timestamp;
use latchkey_verify::{AccessClaims, Algorithm};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn claims_of(token: &str) -> AccessClaims {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn access_tokens_carry_the_documented_header_and_claims() {
    let app = spawn_app(&[]).await;
    let tokens = app.user_with_session("jo@example.com").await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(tokens.access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert!(header["kid"].is_string());
    let claims = claims_of(&tokens.access);
    assert_eq!(claims.iss, "https://auth.test");
    assert_eq!(claims.aud, ["test-api"]);
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(claims.roles, ["user"]);
    assert!(!claims.jti.is_empty() && !claims.sid.is_empty());
}

#[tokio::test]
async fn forged_and_misused_tokens_are_refused_with_their_codes() {
    let app = spawn_app(&[]).await;
    let tokens = app.user_with_session("kim@example.com").await;
    let ring = app.service.key_ring();
    let genuine = claims_of(&tokens.access);
    let [header, payload, signature]: [&str; 3] = tokens
        .access
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let now = Timestamp::from_unix_millis(genuine.iat * 1000);

    // Signed by the real key, but expired.
    let expired = ring
        .active()
        .sign(&AccessClaims {
            iat: genuine.iat - 2000,
            exp: genuine.iat - 1000,
            ..genuine.clone()
        })
        .unwrap();
    // Signed by the real key, but for another audience.
    let wrong_aud = ring
        .active()
        .sign(&AccessClaims {
            aud: vec!["other-api".into()],
            ..genuine.clone()
        })
        .unwrap();
    // Payload changed after signing (roles escalated).
    let escalated = b64(
        &json!({ "roles": ["admin"], "sub": genuine.sub, "iss": genuine.iss, "aud": "test-api",
        "sid": genuine.sid, "iat": genuine.iat, "exp": genuine.exp, "jti": genuine.jti }),
    );
    let tampered = format!("{header}.{escalated}.{signature}");
    // alg: none, with and without a signature.
    let none_header =
        b64(&json!({ "alg": "none", "typ": "at+jwt", "kid": claims_kid(&tokens.access) }));
    let alg_none = format!("{none_header}.{payload}.");
    let alg_none_sig = format!("{none_header}.{payload}.{signature}");
    // A different Ed25519 key claiming the real kid.
    let mut other = SigningKey::generate(Algorithm::EdDSA, now).unwrap();
    other.kid = claims_kid(&tokens.access);
    let wrong_key = KeyRing::from_stored(&[other])
        .unwrap()
        .active()
        .sign(&genuine)
        .unwrap();
    // HS256 "signed" with the server's public key bytes (algorithm confusion).
    let public_x = ring.jwks().keys[0].x.clone().unwrap();
    let hs_header =
        b64(&json!({ "alg": "HS256", "typ": "at+jwt", "kid": claims_kid(&tokens.access) }));
    let hs_input = format!("{hs_header}.{payload}");
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        &URL_SAFE_NO_PAD.decode(&public_x).unwrap(),
    );
    let hs_sig = URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, hs_input.as_bytes()));
    let confused = format!("{hs_input}.{hs_sig}");
    // A kid the server never had.
    let unknown_kid_header = b64(&json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "no-such-key" }));
    let unknown_kid = format!("{unknown_kid_header}.{payload}.{signature}");

    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", expired, "token_expired"),
        ("wrong audience", wrong_aud, "token_invalid"),
        ("tampered payload", tampered, "token_invalid"),
        ("alg none", alg_none, "token_invalid"),
        ("alg none with signature", alg_none_sig, "token_invalid"),
        ("wrong key", wrong_key, "token_invalid"),
        ("HS256 with the public key", confused, "token_invalid"),
        ("unknown kid", unknown_kid, "token_invalid"),
        (
            "refresh token as access token",
            tokens.refresh.clone(),
            "token_invalid",
        ),
        ("garbage", "not-a-jwt".into(), "token_invalid"),
        ("oversized", "a".repeat(9000), "token_invalid"),
    ];
    for (name, token, code) in cases {
        let response = app.me(&token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{name}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{name}: {body}");
    }
    let response = app
        .client
        .get(app.url("/auth/me"))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "token_missing").await;
    // The genuine token still works after all that.
    assert_eq!(app.me(&tokens.access).await.status(), StatusCode::OK);
}

fn claims_kid(token: &str) -> String {
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}
