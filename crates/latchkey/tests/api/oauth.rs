//! RFC 8414 metadata, RFC 7662 introspection and RFC 7009 revocation, as a resource
//! service calls them; and RFC 6750's challenge on protected routes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_verify::AccessClaims;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) const CLIENT: &str = "notes-api";
pub(crate) const SECRET: &str = "s3cret-of-notes-api-0123";

pub(crate) const OTHER: (&str, &str) = ("other", "0123456789abcdef0123");

async fn app() -> TestApp {
    app_with(&[]).await
}

pub(crate) async fn app_with(extra: &[&str]) -> TestApp {
    let clients = format!("{CLIENT}:{SECRET},{}:{}", OTHER.0, OTHER.1);
    let mut args = vec!["--clients", &clients];
    args.extend_from_slice(extra);
    spawn_app(&args).await
}

pub(crate) fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap()
}

/// POST a form to `path` with HTTP Basic client credentials.
async fn post_form(
    app: &TestApp,
    path: &str,
    auth: Option<(&str, &str)>,
    body: &str,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(path))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some((id, secret)) = auth {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let response = post_form(
        app,
        "/oauth/introspect",
        Some((CLIENT, SECRET)),
        &form(&[("token", token)]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn claims_of(token: &str) -> AccessClaims {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn the_metadata_document_lists_the_endpoints_and_algorithms() {
    let app = app().await;
    let response = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issuer"], "https://auth.test");
    assert_eq!(body["jwks_uri"], "https://auth.test/.well-known/jwks.json");
    assert_eq!(
        body["introspection_endpoint"],
        "https://auth.test/oauth/introspect"
    );
    assert_eq!(
        body["revocation_endpoint"],
        "https://auth.test/oauth/revoke"
    );
    let methods = json!(["client_secret_basic", "client_secret_post"]);
    assert_eq!(
        body["introspection_endpoint_auth_methods_supported"],
        methods
    );
    assert_eq!(body["revocation_endpoint_auth_methods_supported"], methods);
    assert_eq!(body["response_types_supported"], json!([]));
    assert_eq!(
        body["access_token_signing_alg_values_supported"],
        json!(["EdDSA"])
    );
}

#[tokio::test]
async fn protected_routes_answer_401_with_a_bearer_invalid_token_challenge() {
    let app = app().await;
    let response = app.me("not-a-token").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Bearer error=\"invalid_token\""
    );
    let response = app.client.get(app.url("/auth/me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
}

#[tokio::test]
async fn a_live_access_token_introspects_active_with_its_claims() {
    let app = app().await;
    let tokens = app.user_with_session("ada@example.com").await;
    let claims = claims_of(&tokens.access);
    let body = introspect(&app, &tokens.access).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["sub"], claims.sub);
    assert_eq!(body["sid"], claims.sid);
    assert_eq!(body["jti"], claims.jti);
    assert_eq!(body["iss"], "https://auth.test");
    assert_eq!(body["aud"], json!(["test-api"]));
    assert_eq!(body["exp"], claims.exp);
    assert_eq!(body["iat"], claims.iat);
    assert_eq!(body["roles"], json!(["user"]));

    // client_secret_post works too.
    let body = form(&[
        ("token", &tokens.access),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
    ]);
    let response = post_form(&app, "/oauth/introspect", None, &body).await;
    assert_eq!(response.json::<Value>().await.unwrap()["active"], true);
}

#[tokio::test]
async fn expired_revoked_and_garbage_tokens_introspect_inactive_without_detail() {
    let app = app().await;
    let tokens = app.user_with_session("bo@example.com").await;
    let genuine = claims_of(&tokens.access);
    let expired = app
        .service
        .key_ring()
        .active()
        .sign(&AccessClaims {
            iat: genuine.iat - 2000,
            exp: genuine.iat - 1000,
            ..genuine.clone()
        })
        .unwrap();
    for token in [
        expired.as_str(),
        "garbage",
        "a.b.c",
        &format!("{}x", tokens.refresh),
    ] {
        assert_eq!(
            introspect(&app, token).await,
            json!({ "active": false }),
            "{token}"
        );
    }
    // A second session's access token stays active while the first one's is revoked.
    let other = app.login_body("bo@example.com").await;
    assert_eq!(introspect(&app, &tokens.access).await["active"], true);
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .json(&json!({ "refresh_token": tokens.refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // At once: no wait for a poll.
    assert_eq!(
        introspect(&app, &tokens.access).await,
        json!({ "active": false })
    );
    assert_eq!(
        introspect(&app, &tokens.refresh).await,
        json!({ "active": false })
    );
    assert_eq!(introspect(&app, &other.access).await["active"], true);
}

#[tokio::test]
async fn a_refresh_token_is_active_only_while_it_is_the_newest_of_a_live_session() {
    let app = app().await;
    let tokens = app.user_with_session("cy@example.com").await;
    let body = introspect(&app, &tokens.refresh).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["sid"], claims_of(&tokens.access).sid);
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());
    // Introspection rotates nothing: the token still refreshes, once.
    let hinted = form(&[
        ("token", &tokens.refresh),
        ("token_type_hint", "refresh_token"),
    ]);
    let response = post_form(&app, "/oauth/introspect", Some((CLIENT, SECRET)), &hinted).await;
    assert_eq!(response.json::<Value>().await.unwrap()["active"], true);
    let response = app.refresh_body(&tokens.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let next = Tokens::from(response.json::<Value>().await.unwrap());
    assert_eq!(
        introspect(&app, &tokens.refresh).await,
        json!({ "active": false })
    );
    assert_eq!(introspect(&app, &next.refresh).await["active"], true);
}

#[tokio::test]
async fn bad_client_credentials_are_refused_with_a_basic_challenge() {
    // Six failures from one address: more free ones than that, for this test.
    let app = app_with(&["--login-free-failures", "10"]).await;
    let tokens = app.user_with_session("di@example.com").await;
    let body = form(&[("token", &tokens.access)]);
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        for auth in [
            None,
            Some((CLIENT, "wrong-secret-0123456789")),
            Some(("nobody", SECRET)),
            Some(("other", SECRET)),
        ] {
            let response = post_form(&app, path, auth, &body).await;
            assert_eq!(
                response.headers()[header::WWW_AUTHENTICATE],
                "Basic realm=\"latchkey\""
            );
            let error = assert_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
            assert_eq!(error["error"], "invalid_client");
        }
    }
    // Two authentication methods at once, a missing token, a JSON body: invalid_request.
    let both = form(&[
        ("token", &tokens.access),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
    ]);
    let response = post_form(&app, "/oauth/introspect", Some((CLIENT, SECRET)), &both).await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    let response = post_form(&app, "/oauth/introspect", Some((CLIENT, SECRET)), "").await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    let response = app
        .client
        .post(app.url("/oauth/introspect"))
        .basic_auth(CLIENT, Some(SECRET))
        .json(&json!({ "token": tokens.access }))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    // Nothing was revoked by the refused calls.
    assert_eq!(app.me(&tokens.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revocation_answers_200_and_ends_sessions_or_denies_access_tokens() {
    let app = app().await;
    let revoke = |token: String| {
        let app = &app;
        async move {
            let response = post_form(
                app,
                "/oauth/revoke",
                Some((CLIENT, SECRET)),
                &form(&[("token", &token)]),
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK, "{token}");
        }
    };
    // Unknown and malformed tokens: 200 as well.
    revoke("unknown-token".into()).await;
    revoke("a.b.c".into()).await;

    // A refresh token: its session ends, so its access token stops working.
    let first = app.user_with_session("ed@example.com").await;
    revoke(first.refresh.clone()).await;
    assert_error(
        app.refresh_body(&first.refresh).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
    assert_error(
        app.me(&first.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    revoke(first.refresh.clone()).await;

    // An access token: it is denied; its session (and refresh token) goes on.
    let second = app.login_body("ed@example.com").await;
    revoke(second.access.clone()).await;
    assert_error(
        app.me(&second.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_eq!(
        introspect(&app, &second.access).await,
        json!({ "active": false })
    );
    let response = app.refresh_body(&second.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let renewed = Tokens::from(response.json::<Value>().await.unwrap());
    assert_eq!(app.me(&renewed.access).await.status(), StatusCode::OK);
}
