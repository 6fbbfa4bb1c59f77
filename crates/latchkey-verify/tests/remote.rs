//! `RemoteVerifier` against a stand-in Latchkey server: JWKS fetch, refresh and rotation,
//! forged tokens, the revocation feed, and the background tasks' lifetime.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "remote")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use common::keys::{claims_at, hs256_token, now, TestKey, AUDIENCE, ISSUER};
use common::server::{AuthServer, FEED_SECRET};
use latchkey_verify::{
    Jwks, KeySet, RemoteError, RemoteVerifier, RemoteVerifierBuilder, TokenError, VerificationKey,
};
use serde_json::json;

const PATIENCE: Duration = Duration::from_secs(5);

fn jwks(keys: &[&TestKey]) -> Jwks {
    Jwks {
        keys: keys.iter().map(|k| k.jwk()).collect(),
    }
}

fn builder(server: &AuthServer) -> RemoteVerifierBuilder {
    RemoteVerifier::builder()
        .jwks_url(server.jwks_url())
        .issuer(ISSUER)
        .audience(AUDIENCE)
}

fn code(result: Result<latchkey_verify::AccessClaims, TokenError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => error.code(),
    }
}

#[tokio::test]
async fn valid_tokens_of_every_algorithm_are_accepted() {
    let (ed, ec, rsa) = (
        TestKey::ed25519("ed-1"),
        TestKey::es256("ec-1"),
        TestKey::rs256("rsa-1"),
    );
    let server = AuthServer::start(jwks(&[&ed, &ec, &rsa])).await;
    let verifier = builder(&server).build().await.unwrap();
    assert_eq!(verifier.status().keys, 3);
    assert!(verifier.status().keys_fetched_at.is_some());
    for key in [&ed, &ec, &rsa] {
        let token = key.token(&claims_at(now(), "user-1", "sid-1", "jti-1", &["reader"]));
        let claims = verifier.verify(&token).await.unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.aud, vec![AUDIENCE.to_owned()]);
        assert!(claims.has_role("reader"));
    }
    // One fetch at build; valid tokens never cause another.
    assert_eq!(server.jwks_hits(), 1);
}

#[tokio::test]
async fn forged_tokens_are_refused_with_their_codes() {
    let ed = TestKey::ed25519("ed-1");
    let rsa = TestKey::rs256("rsa-1");
    let server = AuthServer::start(jwks(&[&ed, &rsa])).await;
    let verifier = builder(&server).build().await.unwrap();
    let now = now();
    let claims = claims_at(now, "user-1", "sid-1", "jti-1", &[]);

    // alg: none, with and without a signature part.
    let none_header = json!({ "alg": "none", "typ": "at+jwt", "kid": "ed-1" });
    let input = common::keys::signing_input(&none_header, &claims);
    assert_eq!(
        code(verifier.verify(&format!("{input}.")).await),
        "token_invalid"
    );
    assert_eq!(code(verifier.verify(&input).await), "token_invalid");

    // HS256 "signed" with the public key bytes, or the JWK text, as the HMAC secret.
    for key in [&ed, &rsa] {
        let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": key.kid });
        let jwk_text = serde_json::to_string(&key.jwk()).unwrap();
        for secret in [key.public_key_bytes(), jwk_text.into_bytes()] {
            let forged = hs256_token(&secret, &header, &claims);
            assert_eq!(
                verifier.verify(&forged).await,
                Err(TokenError::AlgorithmMismatch)
            );
        }
    }

    // A token whose header claims another of our algorithms for this key.
    let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": "ed-1" });
    assert_eq!(
        code(
            verifier
                .verify(&ed.token_with_header(&header, &claims))
                .await
        ),
        "token_invalid"
    );

    // Signed by a key the server never published, under a known kid.
    let impostor = TestKey::ed25519("ed-1");
    assert_eq!(
        verifier.verify(&impostor.token(&claims)).await,
        Err(TokenError::BadSignature)
    );

    // Tampered payload.
    let token = ed.token(&claims);
    let parts: Vec<&str> = token.split('.').collect();
    let richer = claims_at(now, "admin", "sid-1", "jti-1", &["admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        common::keys::b64(richer.to_string()),
        parts[2]
    );
    assert_eq!(
        verifier.verify(&tampered).await,
        Err(TokenError::BadSignature)
    );

    // Wrong audience and issuer.
    let mut other_aud = claims.clone();
    other_aud["aud"] = json!("billing");
    assert_eq!(
        verifier.verify(&ed.token(&other_aud)).await,
        Err(TokenError::WrongAudience)
    );
    let mut other_iss = claims.clone();
    other_iss["iss"] = json!("http://evil.test");
    assert_eq!(
        verifier.verify(&ed.token(&other_iss)).await,
        Err(TokenError::WrongIssuer)
    );

    // Expired (beyond the 30 s leeway), and inside the leeway.
    let expired = claims_at(now - 1000, "user-1", "sid-1", "jti-1", &[]);
    assert_eq!(
        code(verifier.verify(&ed.token(&expired)).await),
        "token_expired"
    );
    let just_expired = claims_at(now - 910, "user-1", "sid-1", "jti-1", &[]);
    assert_eq!(code(verifier.verify(&ed.token(&just_expired)).await), "ok");
    let token = ed.token(&claims);
    assert_eq!(code(verifier.verify_at(&token, now + 929).await), "ok");
    assert_eq!(
        code(verifier.verify_at(&token, now + 930).await),
        "token_expired"
    );

    // Not an access token: refresh+jwt, or no typ at all.
    let refresh = json!({ "alg": "EdDSA", "typ": "refresh+jwt", "kid": "ed-1" });
    assert_eq!(
        verifier
            .verify(&ed.token_with_header(&refresh, &claims))
            .await,
        Err(TokenError::WrongType)
    );
    let untyped = json!({ "alg": "EdDSA", "kid": "ed-1" });
    assert_eq!(
        code(
            verifier
                .verify(&ed.token_with_header(&untyped, &claims))
                .await
        ),
        "token_invalid"
    );

    // Garbage and nothing.
    assert_eq!(code(verifier.verify("a.b.c").await), "token_invalid");
    assert_eq!(code(verifier.verify("").await), "token_missing");

    // None of the above made the verifier fetch the JWKS again.
    assert_eq!(server.jwks_hits(), 1);

    // Unknown kid: refused after exactly one refetch...
    let stranger = TestKey::ed25519("stranger");
    assert_eq!(
        code(verifier.verify(&stranger.token(&claims)).await),
        "token_invalid"
    );
    assert_eq!(server.jwks_hits(), 2);
    // ...and a second one within min_refetch_interval (10 s) costs the server nothing.
    let other = TestKey::ed25519("stranger-2");
    assert_eq!(
        verifier.verify(&other.token(&claims)).await,
        Err(TokenError::UnknownKey)
    );
    assert_eq!(server.jwks_hits(), 2);
    // No kid at all: a refetch could not help, so none is made.
    let no_kid = json!({ "alg": "EdDSA", "typ": "at+jwt" });
    assert_eq!(
        verifier
            .verify(&ed.token_with_header(&no_kid, &claims))
            .await,
        Err(TokenError::UnknownKey)
    );
    assert_eq!(server.jwks_hits(), 2);
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_refetch() {
    let ed = TestKey::ed25519("ed-1");
    let server = AuthServer::start(jwks(&[&ed])).await;
    let verifier = Arc::new(builder(&server).build().await.unwrap());
    let claims = claims_at(now(), "user-1", "sid-1", "jti-1", &[]);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let token = TestKey::ed25519(&format!("unknown-{i}")).token(&claims);
        let verifier = Arc::clone(&verifier);
        tasks.spawn(async move { verifier.verify(&token).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap(), Err(TokenError::UnknownKey));
    }
    assert_eq!(server.jwks_hits(), 2);
}

#[tokio::test]
async fn key_rotation_at_the_server_needs_no_restart() {
    let old = TestKey::es256("2024-old");
    let server = AuthServer::start(jwks(&[&old])).await;
    let verifier = builder(&server)
        .jwks_refresh_interval(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let claims = claims_at(now(), "user-1", "sid-1", "jti-1", &[]);
    let old_token = old.token(&claims);
    assert!(verifier.verify(&old_token).await.is_ok());

    // The server rotates: the new key signs, the old one still verifies.
    let new = TestKey::ed25519("2025-new");
    server.set_jwks(jwks(&[&new, &old]));
    let new_token = new.token(&claims);
    // At once: the unknown kid triggers a refetch, no need to wait for the refresh.
    assert_eq!(verifier.verify(&new_token).await.unwrap().sub, "user-1");
    assert!(verifier.verify(&old_token).await.is_ok());

    // The server drops the old key: the background refresh stops trusting it.
    server.set_jwks(jwks(&[&new]));
    let dropped = eventually(PATIENCE, || async {
        verifier.verify(&old_token).await == Err(TokenError::UnknownKey)
    })
    .await;
    assert!(
        dropped.is_ok(),
        "the retired key was still trusted after {dropped:?}"
    );
    assert!(verifier.verify(&new_token).await.is_ok());
    assert_eq!(verifier.status().keys, 1);
}

#[tokio::test]
async fn an_empty_or_broken_jwks_does_not_replace_the_known_keys() {
    let ed = TestKey::ed25519("ed-1");
    let server = AuthServer::start(jwks(&[&ed])).await;
    let verifier = builder(&server).build().await.unwrap();
    server.set_jwks(Jwks { keys: vec![] });
    assert!(matches!(
        verifier.refresh_keys().await,
        Err(RemoteError::NoUsableKeys { .. })
    ));
    let token = ed.token(&claims_at(now(), "u", "s", "j", &[]));
    assert!(verifier.verify(&token).await.is_ok());
}

async fn revocation_setup(poll: Duration) -> (TestKey, AuthServer, RemoteVerifier) {
    let ed = TestKey::ed25519("ed-1");
    let server = AuthServer::start(jwks(&[&ed])).await;
    let verifier = builder(&server)
        .revocation_feed(server.feed_url(), FEED_SECRET)
        .revocation_poll_interval(poll)
        .build()
        .await
        .unwrap();
    (ed, server, verifier)
}

#[tokio::test]
async fn a_revoked_token_is_refused_within_the_poll_interval() {
    let poll = Duration::from_millis(100);
    let (key, server, verifier) = revocation_setup(poll).await;
    let now = now();
    let token = key.token(&claims_at(now, "user-1", "sid-1", "jti-1", &[]));
    let sibling = key.token(&claims_at(now, "user-1", "sid-1", "jti-2", &[]));
    assert!(verifier.verify(&token).await.is_ok());

    server.revoke("access_token", "jti-1", now + 900);
    let refused = eventually(PATIENCE, || async {
        verifier.verify(&token).await == Err(TokenError::Revoked)
    })
    .await
    .unwrap_or_else(|after| panic!("still accepted after {after:?}"));
    eprintln!("revoked jti refused after {refused:?} (poll interval {poll:?})");
    assert!(refused < poll * 10, "took {refused:?}");
    assert_eq!(code(verifier.verify(&token).await), "token_revoked");
    // Another token of the same session is untouched.
    assert!(verifier.verify(&sibling).await.is_ok());
    assert_eq!(verifier.status().revoked_tokens, 1);
    assert_eq!(verifier.status().revocation_cursor, Some(1));
}

#[tokio::test]
async fn a_revoked_session_refuses_every_token_of_it() {
    let (key, server, verifier) = revocation_setup(Duration::from_millis(50)).await;
    let now = now();
    let first = key.token(&claims_at(now, "user-1", "sid-1", "jti-1", &[]));
    let second = key.token(&claims_at(now, "user-1", "sid-1", "jti-2", &[]));
    let other_session = key.token(&claims_at(now, "user-1", "sid-2", "jti-3", &[]));
    server.revoke("session", "sid-1", now + 900);
    eventually(PATIENCE, || async {
        verifier.verify(&first).await == Err(TokenError::Revoked)
    })
    .await
    .unwrap();
    assert_eq!(verifier.verify(&second).await, Err(TokenError::Revoked));
    assert!(verifier.verify(&other_session).await.is_ok());
    assert_eq!(verifier.status().revoked_sessions, 1);
}

#[tokio::test]
async fn the_feed_is_read_page_by_page_and_stale_entries_are_forgotten() {
    let ed = TestKey::ed25519("ed-1");
    let server = AuthServer::start(jwks(&[&ed])).await;
    server
        .state
        .page_size
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let now = now();
    // Long gone (even with the 30 s leeway), recently expired (inside it), and live.
    server.revoke("access_token", "gone", now - 3600);
    server.revoke("access_token", "in-leeway", now - 10);
    server.revoke("session", "sid-live", now + 600);
    server.revoke("access_token", "live", now + 600);
    server.revoke("future_kind", "whatever", now + 600);
    let verifier = builder(&server)
        .revocation_feed(server.feed_url(), FEED_SECRET)
        .build()
        .await
        .unwrap();
    // Caught up at build: 3 pages of 2, then an empty one.
    let status = verifier.status();
    assert_eq!(status.revocation_cursor, Some(5));
    assert_eq!(status.revoked_tokens, 2, "{status:?}");
    assert_eq!(status.revoked_sessions, 1);
    assert!(status.revocations_synced_at.is_some());
    assert_eq!(server.feed_hits(), 4);
    let token = ed.token(&claims_at(now, "u", "sid-live", "j", &[]));
    assert_eq!(verifier.verify(&token).await, Err(TokenError::Revoked));
}

#[tokio::test]
async fn a_failing_feed_keeps_the_known_revocations_and_recovers() {
    let (key, server, verifier) = revocation_setup(Duration::from_millis(20)).await;
    let now = now();
    let token = key.token(&claims_at(now, "user-1", "sid-1", "jti-1", &[]));
    let later = key.token(&claims_at(now, "user-1", "sid-2", "jti-2", &[]));
    server.revoke("access_token", "jti-1", now + 900);
    eventually(PATIENCE, || async {
        verifier.verify(&token).await == Err(TokenError::Revoked)
    })
    .await
    .unwrap();

    server
        .state
        .feed_broken
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let hits = server.feed_hits();
    eventually(PATIENCE, || async { server.feed_hits() >= hits + 3 })
        .await
        .unwrap();
    assert_eq!(verifier.verify(&token).await, Err(TokenError::Revoked));
    assert!(verifier.sync_revocations().await.is_err());

    server
        .state
        .feed_broken
        .store(false, std::sync::atomic::Ordering::SeqCst);
    server.revoke("session", "sid-2", now + 900);
    eventually(PATIENCE, || async {
        verifier.verify(&later).await == Err(TokenError::Revoked)
    })
    .await
    .unwrap();
    assert_eq!(verifier.verify(&token).await, Err(TokenError::Revoked));
}

#[tokio::test]
async fn build_fails_fast_unless_told_otherwise() {
    let ed = TestKey::ed25519("ed-1");
    let server = AuthServer::start(jwks(&[&ed])).await;

    // Settings.
    let missing = RemoteVerifier::builder()
        .jwks_url(server.jwks_url())
        .audience("a")
        .build()
        .await;
    assert!(matches!(missing, Err(RemoteError::MissingSetting(_))));
    let missing = RemoteVerifier::builder()
        .issuer("i")
        .audience("a")
        .build()
        .await;
    assert!(matches!(missing, Err(RemoteError::MissingSetting(_))));
    let bad_url = RemoteVerifier::builder()
        .jwks_url("not a url")
        .issuer("i")
        .audience("a")
        .build()
        .await;
    assert!(matches!(bad_url, Err(RemoteError::InvalidUrl { .. })));

    // An unreachable JWKS: a port that was free a moment ago.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        )
    };
    let unreachable = RemoteVerifier::builder()
        .jwks_url(&closed)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .await;
    assert!(
        matches!(unreachable, Err(RemoteError::Request { .. })),
        "{unreachable:?}"
    );

    // A JWKS path that 404s, a wrong feed secret, a feed the server does not offer.
    let not_found = RemoteVerifier::builder()
        .jwks_url(format!("{}/nope", server.base))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .await;
    assert!(matches!(
        not_found,
        Err(RemoteError::Status { status: 404, .. })
    ));
    let wrong_secret = builder(&server)
        .revocation_feed(server.feed_url(), "not-the-secret")
        .build()
        .await;
    assert!(matches!(
        wrong_secret,
        Err(RemoteError::Status { status: 401, .. })
    ));
    let no_feed = builder(&server)
        .revocation_feed(format!("{}/auth/no-feed", server.base), FEED_SECRET)
        .build()
        .await;
    assert!(matches!(
        no_feed,
        Err(RemoteError::Status { status: 404, .. })
    ));

    // fail_fast(false): built anyway, tokens refused until keys arrive.
    let lenient = RemoteVerifier::builder()
        .jwks_url(&closed)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .fail_fast(false)
        .build()
        .await
        .unwrap();
    assert_eq!(lenient.status().keys, 0);
    let token = ed.token(&claims_at(now(), "u", "s", "j", &[]));
    assert_eq!(code(lenient.verify(&token).await), "token_invalid");
}

#[tokio::test]
async fn background_tasks_stop_when_the_verifier_is_dropped() {
    let ed = TestKey::ed25519("ed-1");
    let server = AuthServer::start(jwks(&[&ed])).await;
    let verifier = builder(&server)
        .jwks_refresh_interval(Duration::from_millis(10))
        .revocation_feed(server.feed_url(), FEED_SECRET)
        .revocation_poll_interval(Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    let (jwks_before, feed_before) = (server.jwks_hits(), server.feed_hits());
    eventually(PATIENCE, || async {
        server.jwks_hits() >= jwks_before + 3 && server.feed_hits() >= feed_before + 3
    })
    .await
    .unwrap();
    drop(verifier);
    // A request already in flight may still land; then the counts must settle (the
    // tasks polled every 10 ms, so they never would if still running) and stay put.
    let counts = || (server.jwks_hits(), server.feed_hits());
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut last = counts();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let current = counts();
        if current == last {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "requests went on after the drop"
        );
        last = current;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counts(), last);
}

#[tokio::test]
async fn fixed_keys_need_no_server_and_may_be_hs256() {
    let secret = b"a shared secret of at least 32 bytes!";
    let mut keys = KeySet::new();
    keys.insert(VerificationKey::hs256("shared", secret).unwrap());
    let verifier = RemoteVerifier::builder()
        .key_set(keys)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .await
        .unwrap();
    let hs = TestKey::hs256("shared", secret);
    let claims = claims_at(now(), "user-1", "sid-1", "jti-1", &[]);
    assert!(verifier.verify(&hs.token(&claims)).await.is_ok());
    // An unknown kid is simply refused: there is nothing to refetch.
    let stranger = TestKey::ed25519("stranger");
    assert_eq!(
        verifier.verify(&stranger.token(&claims)).await,
        Err(TokenError::UnknownKey)
    );
    assert_eq!(verifier.status().revocation_cursor, None);

    // A static JWKS drops oct keys, as KeySet::from_jwks does.
    let ed = TestKey::ed25519("ed-1");
    let verifier = RemoteVerifier::builder()
        .jwks(&jwks(&[&ed]))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .await
        .unwrap();
    assert!(verifier.verify(&ed.token(&claims)).await.is_ok());
}

#[test]
fn building_outside_a_runtime_is_an_error_not_a_panic() {
    let ed = TestKey::ed25519("ed-1");
    let builder = RemoteVerifier::builder()
        .jwks(&jwks(&[&ed]))
        .issuer(ISSUER)
        .audience(AUDIENCE);
    let outcome = futures_lite_block_on(builder.build());
    assert!(matches!(outcome, Err(RemoteError::NoRuntime)));
}

/// A minimal executor for a future that never waits (the build fails at once).
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the build waited outside a runtime"),
    }
}

fn set_feed_broken(server: &AuthServer, broken: bool) {
    server
        .state
        .feed_broken
        .store(broken, std::sync::atomic::Ordering::SeqCst);
}

#[tokio::test]
async fn plain_http_urls_are_refused_unless_loopback_or_allowed() {
    let ed = TestKey::ed25519("ed-1");
    // No request is made: the URLs are refused before any fetch.
    let insecure_jwks = RemoteVerifier::builder()
        .jwks_url("http://auth.example.com/.well-known/jwks.json")
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .await;
    assert!(
        matches!(
            insecure_jwks,
            Err(RemoteError::InsecureUrl {
                setting: "jwks_url",
                ..
            })
        ),
        "{insecure_jwks:?}"
    );
    let insecure_feed = RemoteVerifier::builder()
        .jwks(&jwks(&[&ed]))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .revocation_feed("http://auth.example.com/auth/revocations", FEED_SECRET)
        .build()
        .await;
    assert!(
        matches!(
            insecure_feed,
            Err(RemoteError::InsecureUrl {
                setting: "revocation_feed",
                ..
            })
        ),
        "{insecure_feed:?}"
    );
    // The secret never shows in the error.
    let message = insecure_feed.unwrap_err().to_string();
    assert!(!message.contains(FEED_SECRET), "{message}");

    // allow_insecure_http: the same kind of URL is used (here it fails at the network:
    // 0.0.0.0 is not loopback, and nothing listens on port 1).
    let allowed = RemoteVerifier::builder()
        .jwks_url("http://0.0.0.0:1/.well-known/jwks.json")
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .allow_insecure_http(true)
        .http_timeout(Duration::from_secs(2))
        .build()
        .await;
    assert!(
        matches!(allowed, Err(RemoteError::Request { .. })),
        "{allowed:?}"
    );

    // Loopback over plain http is fine (every other test here uses 127.0.0.1).
    let server = AuthServer::start(jwks(&[&ed])).await;
    assert!(server.base.starts_with("http://127.0.0.1:"));
    let verifier = builder(&server)
        .revocation_feed(server.feed_url(), FEED_SECRET)
        .build()
        .await
        .unwrap();
    assert!(verifier.is_healthy());
}

#[tokio::test]
async fn the_leeway_is_bounded_at_five_minutes() {
    let ed = TestKey::ed25519("ed-1");
    let with_leeway = |leeway: Duration| {
        RemoteVerifier::builder()
            .jwks(&jwks(&[&ed]))
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .leeway(leeway)
            .build()
    };
    let verifier = with_leeway(Duration::from_secs(300)).await.unwrap();
    assert_eq!(verifier.validation().leeway, Duration::from_secs(300));
    let refused = with_leeway(Duration::from_secs(301)).await;
    assert_eq!(
        refused.unwrap_err(),
        RemoteError::LeewayTooLarge {
            leeway: Duration::from_secs(301),
            max: latchkey_verify::remote::MAX_LEEWAY,
        }
    );
    assert!(with_leeway(Duration::from_secs(24 * 3600)).await.is_err());
}

#[tokio::test]
async fn max_token_lifetime_refuses_longer_tokens() {
    let ed = TestKey::ed25519("ed-1");
    let verifier = RemoteVerifier::builder()
        .jwks(&jwks(&[&ed]))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .max_token_lifetime(Duration::from_secs(600))
        .build()
        .await
        .unwrap();
    assert_eq!(
        verifier.validation().max_lifetime,
        Some(Duration::from_secs(600))
    );
    let now = now();
    let living = |lifetime: i64| {
        let mut claims = claims_at(now, "user-1", "sid-1", "jti-1", &[]);
        claims["exp"] = json!(now + lifetime);
        ed.token(&claims)
    };
    // 600 s plus the default 30 s leeway.
    assert_eq!(code(verifier.verify(&living(630)).await), "ok");
    assert_eq!(
        verifier.verify(&living(631)).await,
        Err(TokenError::LifetimeTooLong)
    );
    assert_eq!(code(verifier.verify(&living(900)).await), "token_invalid");
}

#[tokio::test]
async fn a_stale_revocation_state_fails_closed_and_recovers() {
    let ed = TestKey::ed25519("ed-1");
    let server = AuthServer::start(jwks(&[&ed])).await;
    let verifier = builder(&server)
        .revocation_feed(server.feed_url(), FEED_SECRET)
        .revocation_poll_interval(Duration::from_millis(20))
        .max_revocation_staleness(Some(Duration::from_millis(200)))
        .build()
        .await
        .unwrap();
    let token = ed.token(&claims_at(now(), "user-1", "sid-1", "jti-1", &[]));
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.is_healthy());
    assert!(!verifier.status().revocations_stale);

    // The feed fails: once it has failed for longer than 200 ms, tokens are refused.
    set_feed_broken(&server, true);
    let refused = eventually(PATIENCE, || async {
        verifier.verify(&token).await == Err(TokenError::RevocationStateStale)
    })
    .await;
    assert!(refused.is_ok(), "still accepted after {refused:?}");
    assert_eq!(
        code(verifier.verify(&token).await),
        "revocation_state_stale"
    );
    assert!(!verifier.is_healthy());
    assert!(verifier.status().revocations_stale);
    assert!(verifier.revocation_staleness().unwrap() > Duration::from_millis(200));
    // Invalid tokens keep their own code: staleness says nothing about them.
    assert_eq!(code(verifier.verify("a.b.c").await), "token_invalid");

    // The feed is back: tokens are accepted again, and a revocation made during the
    // outage is in force.
    let other = ed.token(&claims_at(now(), "user-1", "sid-2", "jti-2", &[]));
    server.revoke("session", "sid-2", now() + 900);
    set_feed_broken(&server, false);
    let accepted = eventually(PATIENCE, || async { verifier.verify(&token).await.is_ok() }).await;
    assert!(accepted.is_ok(), "still refused after {accepted:?}");
    assert!(verifier.is_healthy());
    assert!(!verifier.status().revocations_stale);
    assert_eq!(verifier.verify(&other).await, Err(TokenError::Revoked));
}

#[tokio::test]
async fn a_feed_never_read_is_stale_and_fail_open_must_be_asked_for() {
    let ed = TestKey::ed25519("ed-1");
    let server = AuthServer::start(jwks(&[&ed])).await;
    set_feed_broken(&server, true);
    let token = ed.token(&claims_at(now(), "user-1", "sid-1", "jti-1", &[]));

    // fail_fast(false) with an unreadable feed: stale once the maximum has passed since
    // the build, and fine once the feed is read.
    let closed = builder(&server)
        .revocation_feed(server.feed_url(), FEED_SECRET)
        .revocation_poll_interval(Duration::from_millis(20))
        .max_revocation_staleness(Some(Duration::from_millis(100)))
        .fail_fast(false)
        .build()
        .await
        .unwrap();
    assert_eq!(closed.status().revocations_synced_at, None);
    eventually(PATIENCE, || async {
        closed.verify(&token).await == Err(TokenError::RevocationStateStale)
    })
    .await
    .unwrap();
    assert!(!closed.is_healthy());

    // Fail open, explicitly: the last known state (here: none) is used however old.
    let open = builder(&server)
        .revocation_feed(server.feed_url(), FEED_SECRET)
        .revocation_poll_interval(Duration::from_millis(20))
        .max_revocation_staleness(None)
        .fail_fast(false)
        .build()
        .await
        .unwrap();
    let hits = server.feed_hits();
    eventually(PATIENCE, || async { server.feed_hits() >= hits + 10 })
        .await
        .unwrap();
    assert!(open.verify(&token).await.is_ok());
    assert!(open.is_healthy());
    assert!(open.revocation_staleness().is_some());

    set_feed_broken(&server, false);
    eventually(PATIENCE, || async { closed.verify(&token).await.is_ok() })
        .await
        .unwrap();
    assert!(closed.is_healthy());
}

#[tokio::test]
async fn the_maximum_staleness_must_exceed_the_poll_interval() {
    let ed = TestKey::ed25519("ed-1");
    let server = AuthServer::start(jwks(&[&ed])).await;
    let refused = builder(&server)
        .revocation_feed(server.feed_url(), FEED_SECRET)
        .revocation_poll_interval(Duration::from_secs(5))
        .max_revocation_staleness(Some(Duration::from_secs(5)))
        .build()
        .await;
    assert!(
        matches!(
            refused,
            Err(RemoteError::InvalidSetting {
                setting: "max_revocation_staleness",
                ..
            })
        ),
        "{refused:?}"
    );
    // Without a feed there is nothing to be stale.
    let verifier = builder(&server).build().await.unwrap();
    assert_eq!(verifier.revocation_staleness(), None);
    assert!(verifier.is_healthy());
}
