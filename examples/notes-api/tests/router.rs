//! The notes-api router with locally minted tokens and a fixed JWKS (no Latchkey server).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_verify::{Jwk, Jwks, RemoteVerifier};
use serde_json::{json, Value};
use tower::ServiceExt;

const ISSUER: &str = "http://latchkey.test";

struct Minter {
    pair: Ed25519KeyPair,
}

impl Minter {
    fn new() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Self {
            pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        }
    }

    fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![Jwk {
                kty: "OKP".into(),
                kid: Some("k1".into()),
                alg: Some("EdDSA".into()),
                use_: Some("sig".into()),
                crv: Some("Ed25519".into()),
                x: Some(URL_SAFE_NO_PAD.encode(self.pair.public_key())),
                ..Jwk::default()
            }],
        }
    }

    fn token(&self, sub: &str, roles: &[&str], audience: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "k1" });
        let claims = json!({
            "iss": ISSUER, "sub": sub, "aud": audience, "sid": format!("sid-{sub}"),
            "roles": roles, "iat": now, "exp": now + 900, "jti": format!("jti-{sub}-{now}"),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

async fn setup() -> (Minter, Router) {
    let minter = Minter::new();
    let verifier = RemoteVerifier::builder()
        .jwks(&minter.jwks())
        .issuer(ISSUER)
        .audience("notes")
        .build()
        .await
        .unwrap();
    let app = notes_api::app(Arc::new(verifier));
    (minter, app)
}

async fn send(
    app: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn notes_are_per_user_and_need_a_valid_token() {
    let (minter, app) = setup().await;
    let alice = minter.token("alice", &["user"], "notes");
    let bob = minter.token("bob", &["user"], "notes");

    let (status, body) = send(&app, "GET", "/notes", None, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_missing"))
    );
    let wrong_audience = minter.token("alice", &["user"], "billing");
    let (status, body) = send(&app, "GET", "/notes", Some(&wrong_audience), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_invalid"))
    );
    let (status, _) = send(&app, "POST", "/notes", None, Some(json!({ "text": "x" }))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, note) = send(
        &app,
        "POST",
        "/notes",
        Some(&alice),
        Some(json!({ "text": "buy milk" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (note["owner"].as_str(), note["text"].as_str()),
        (Some("alice"), Some("buy milk"))
    );
    send(
        &app,
        "POST",
        "/notes",
        Some(&bob),
        Some(json!({ "text": "bob's" })),
    )
    .await;

    let (status, notes) = send(&app, "GET", "/notes", Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(notes.as_array().unwrap().len(), 1);
    assert_eq!(notes[0]["text"], "buy milk");

    let (status, body) = send(
        &app,
        "POST",
        "/notes",
        Some(&alice),
        Some(json!({ "text": "  " })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_note"))
    );
    let (status, body) = send(
        &app,
        "POST",
        "/notes",
        Some(&alice),
        Some(json!({ "nope": 1 })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_note"))
    );
}

#[tokio::test]
async fn admin_notes_need_the_admin_role() {
    let (minter, app) = setup().await;
    let alice = minter.token("alice", &["user"], "notes");
    let root = minter.token("root", &["admin"], "notes");
    send(
        &app,
        "POST",
        "/notes",
        Some(&alice),
        Some(json!({ "text": "one" })),
    )
    .await;
    send(
        &app,
        "POST",
        "/notes",
        Some(&root),
        Some(json!({ "text": "two" })),
    )
    .await;

    let (status, _) = send(&app, "GET", "/admin/notes", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = send(&app, "GET", "/admin/notes", Some(&alice), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_role"))
    );
    let (status, notes) = send(&app, "GET", "/admin/notes", Some(&root), None).await;
    assert_eq!(status, StatusCode::OK);
    let texts: Vec<&str> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["one", "two"]);

    let (status, health) = send(&app, "GET", "/healthz", None, None).await;
    assert_eq!((status, health["keys"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(health["status"], "ok");
    assert_eq!(health["revocations_stale"], false);
}
