//! The axum extractor, the role guard and `VerifyLayer`: 401 with the JSON body and
//! `WWW-Authenticate`, 403 for a missing role, 200 otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "axum")]

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{header, Request, Response, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use common::keys::{claims_at, now, TestKey, AUDIENCE, ISSUER};
use common::server::{AuthServer, FEED_SECRET};
use latchkey_verify::axum::{bearer_token, AuthRejection, Claims, VerifyLayer};
use latchkey_verify::{AccessClaims, Jwks, RemoteVerifier, TokenError};
use serde_json::{json, Value};
use tower::{service_fn, Layer, ServiceExt};

async fn static_verifier(key: &TestKey) -> Arc<RemoteVerifier> {
    let verifier = RemoteVerifier::builder()
        .jwks(&Jwks {
            keys: vec![key.jwk()],
        })
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .await
        .unwrap();
    Arc::new(verifier)
}

/// A state with more than the verifier in it, to show `FromRef`.
#[derive(Clone)]
struct AppState {
    verifier: Arc<RemoteVerifier>,
    greeting: &'static str,
}

impl FromRef<AppState> for Arc<RemoteVerifier> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.verifier)
    }
}

fn extractor_app(verifier: Arc<RemoteVerifier>) -> Router {
    async fn me(
        claims: Claims,
        axum::extract::State(state): axum::extract::State<AppState>,
    ) -> String {
        format!("{} {}", state.greeting, claims.sub)
    }
    async fn admin(claims: Claims) -> Result<String, AuthRejection> {
        claims.require_role("admin")?;
        Ok(format!("admin {}", claims.sub))
    }
    async fn staff(claims: Claims) -> Result<&'static str, AuthRejection> {
        claims.require_any_role(&["admin", "support"])?;
        Ok("staff")
    }
    async fn maybe(claims: Option<Claims>) -> String {
        claims.map_or_else(|| "anonymous".to_owned(), |c| c.sub.clone())
    }
    Router::new()
        .route("/me", get(me))
        .route("/admin", get(admin))
        .route("/staff", get(staff))
        .route("/maybe", get(maybe))
        .with_state(AppState {
            verifier,
            greeting: "hello",
        })
}

fn layer_app(verifier: Arc<RemoteVerifier>) -> Router {
    let admin = Router::new()
        .route(
            "/admin",
            get(|Extension(claims): Extension<AccessClaims>| async move {
                format!("admin {}", claims.sub)
            }),
        )
        .route_layer(VerifyLayer::new(Arc::clone(&verifier)).require_role("admin"));
    Router::new()
        // The extractor reuses the claims the layer verified.
        .route(
            "/me",
            get(|claims: Claims| async move { format!("hello {}", claims.sub) }),
        )
        .route_layer(VerifyLayer::new(Arc::clone(&verifier)))
        .merge(admin)
        .with_state(verifier)
}

async fn call(
    app: &Router,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    if status != StatusCode::OK {
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
    }
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, challenge, String::from_utf8(body.to_vec()).unwrap())
}

fn error_code(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap();
    assert!(
        value["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    value["code"].as_str().unwrap().to_owned()
}

/// The cases every front (extractor or layer) must answer alike.
async fn check_front(app: &Router, key: &TestKey) {
    let now = now();
    let user = format!(
        "Bearer {}",
        key.token(&claims_at(now, "alice", "s1", "j1", &["reader"]))
    );
    let admin = format!(
        "Bearer {}",
        key.token(&claims_at(now, "root", "s2", "j2", &["admin"]))
    );
    let expired = format!(
        "Bearer {}",
        key.token(&claims_at(now - 3600, "alice", "s1", "j3", &[]))
    );
    let stranger = TestKey::ed25519("stranger");
    let foreign = format!(
        "Bearer {}",
        stranger.token(&claims_at(now, "eve", "s4", "j4", &["admin"]))
    );

    let (status, challenge, body) = call(app, "/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(error_code(&body), "token_missing");

    let (status, _, body) = call(app, "/me", Some("Basic YWxpY2U6c2VjcmV0")).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "token_missing")
    );

    for (bad, expected) in [
        ("Bearer not-a-token", "token_invalid"),
        (foreign.as_str(), "token_invalid"),
        (expired.as_str(), "token_expired"),
    ] {
        let (status, challenge, body) = call(app, "/me", Some(bad)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer error="invalid_token""#)
        );
        assert_eq!(error_code(&body), expected);
    }

    let (status, _, body) = call(app, "/me", Some(&user)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello alice"));
    // The scheme is case-insensitive.
    let lower = user.replacen("Bearer", "bearer", 1);
    assert_eq!(call(app, "/me", Some(&lower)).await.0, StatusCode::OK);

    let (status, challenge, body) = call(app, "/admin", Some(&user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer error="insufficient_scope""#)
    );
    assert_eq!(error_code(&body), "insufficient_role");
    let (status, _, body) = call(app, "/admin", Some(&admin)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "admin root"));
    // A bad token on an admin route is still a 401, not a 403.
    assert_eq!(
        call(app, "/admin", Some(&foreign)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(app, "/admin", None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_extractor_answers_401_403_and_200() {
    let key = TestKey::ed25519("ed-1");
    let app = extractor_app(static_verifier(&key).await);
    check_front(&app, &key).await;

    let now = now();
    let support = format!(
        "Bearer {}",
        key.token(&claims_at(now, "bob", "s", "j", &["support"]))
    );
    let reader = format!(
        "Bearer {}",
        key.token(&claims_at(now, "carol", "s", "j", &["reader"]))
    );
    assert_eq!(call(&app, "/staff", Some(&support)).await.0, StatusCode::OK);
    let (status, _, body) = call(&app, "/staff", Some(&reader)).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::FORBIDDEN, "insufficient_role")
    );

    // Option<Claims>: no header is fine, a bad token is not.
    assert_eq!(call(&app, "/maybe", None).await.2, "anonymous");
    assert_eq!(call(&app, "/maybe", Some(&support)).await.2, "bob");
    assert_eq!(
        call(&app, "/maybe", Some("Bearer x.y.z")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_layer_answers_401_403_and_200() {
    let key = TestKey::es256("ec-1");
    let app = layer_app(static_verifier(&key).await);
    check_front(&app, &key).await;
}

#[tokio::test]
async fn the_layer_wraps_any_tower_service() {
    let key = TestKey::ed25519("ed-1");
    let verifier = static_verifier(&key).await;
    // A plain tower service over http types, with String bodies: no axum routing.
    let inner = service_fn(|request: Request<String>| async move {
        let claims = request.extensions().get::<AccessClaims>().unwrap();
        Ok::<_, Infallible>(Response::new(format!("{} {}", claims.sub, request.body())))
    });
    let service = VerifyLayer::new(verifier)
        .require_role("writer")
        .layer(inner);

    let token = key.token(&claims_at(now(), "dora", "s", "j", &["writer"]));
    let request = Request::post("/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body("hi".to_owned())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.into_body(), "dora hi");

    let request = Request::post("/").body(String::new()).unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(body["code"], "token_missing");

    let token = key.token(&claims_at(now(), "dora", "s", "j", &["reader"]));
    let request = Request::post("/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_revoked_token_gets_401_token_revoked() {
    let key = TestKey::ed25519("ed-1");
    let server = AuthServer::start(Jwks {
        keys: vec![key.jwk()],
    })
    .await;
    let verifier = RemoteVerifier::builder()
        .jwks_url(server.jwks_url())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .revocation_feed(server.feed_url(), FEED_SECRET)
        .revocation_poll_interval(std::time::Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    let app = extractor_app(Arc::new(verifier));
    let now = now();
    let bearer = format!(
        "Bearer {}",
        key.token(&claims_at(now, "alice", "sid-9", "j", &[]))
    );
    assert_eq!(call(&app, "/me", Some(&bearer)).await.0, StatusCode::OK);
    server.revoke("session", "sid-9", now + 900);
    common::eventually(std::time::Duration::from_secs(5), || async {
        let (status, _, body) = call(&app, "/me", Some(&bearer)).await;
        status == StatusCode::UNAUTHORIZED && error_code(&body) == "token_revoked"
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_stale_revocation_state_gets_503_for_extractor_and_layer() {
    let key = TestKey::ed25519("ed-1");
    let server = AuthServer::start(Jwks {
        keys: vec![key.jwk()],
    })
    .await;
    let verifier = Arc::new(
        RemoteVerifier::builder()
            .jwks_url(server.jwks_url())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .revocation_feed(server.feed_url(), FEED_SECRET)
            .revocation_poll_interval(std::time::Duration::from_millis(20))
            .max_revocation_staleness(Some(std::time::Duration::from_millis(100)))
            .build()
            .await
            .unwrap(),
    );
    let bearer = format!(
        "Bearer {}",
        key.token(&claims_at(now(), "alice", "sid-1", "j", &[]))
    );
    let apps = [
        extractor_app(Arc::clone(&verifier)),
        layer_app(Arc::clone(&verifier)),
    ];
    for app in &apps {
        assert_eq!(call(app, "/me", Some(&bearer)).await.0, StatusCode::OK);
    }
    server
        .state
        .feed_broken
        .store(true, std::sync::atomic::Ordering::SeqCst);
    common::eventually(std::time::Duration::from_secs(5), || async {
        call(&apps[0], "/me", Some(&bearer)).await.0 == StatusCode::SERVICE_UNAVAILABLE
    })
    .await
    .unwrap();
    for app in &apps {
        let response = app
            .clone()
            .oneshot(
                Request::get("/me")
                    .header(header::AUTHORIZATION, &bearer)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "1");
        // Not the token's fault: no challenge that would send the client to log in again.
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(
            error_code(std::str::from_utf8(&body).unwrap()),
            "revocation_state_stale"
        );
    }
    // A request without a token is still 401 token_missing.
    let (status, challenge, body) = call(&apps[0], "/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(error_code(&body), "token_missing");
}

#[test]
fn bearer_tokens_are_read_strictly() {
    let headers = |values: &[&str]| {
        let mut map = axum::http::HeaderMap::new();
        for value in values {
            map.append(header::AUTHORIZATION, value.parse().unwrap());
        }
        map
    };
    assert_eq!(bearer_token(&headers(&[])), Err(TokenError::Missing));
    assert_eq!(
        bearer_token(&headers(&["Bearer"])),
        Err(TokenError::Missing)
    );
    assert_eq!(
        bearer_token(&headers(&["Bearer   "])),
        Err(TokenError::Missing)
    );
    assert_eq!(
        bearer_token(&headers(&["Basic abc"])),
        Err(TokenError::Missing)
    );
    assert_eq!(
        bearer_token(&headers(&["Bearerabc"])),
        Err(TokenError::Missing)
    );
    assert_eq!(bearer_token(&headers(&["Bearer a.b.c"])), Ok("a.b.c"));
    assert_eq!(bearer_token(&headers(&["BEARER  a.b.c "])), Ok("a.b.c"));
    assert_eq!(
        bearer_token(&headers(&["Bearer a.b.c", "Bearer d.e.f"])),
        Err(TokenError::Malformed)
    );
    let rejection = AuthRejection::from(TokenError::WrongAudience);
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(rejection.code(), "token_invalid");
    // The message does not tell a prober which check failed.
    assert!(!rejection.message().contains("audience"));
    let body: Value = serde_json::from_str(&rejection.body()).unwrap();
    assert_eq!(
        body,
        json!({ "error": "the access token is invalid", "code": "token_invalid" })
    );
}
