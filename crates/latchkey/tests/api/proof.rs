//! Claims that other tests did not prove: the default HSTS header, 405 as JSON, the
//! CORS preflight, the router mounted in another axum app (with and without the peer
//! address), and a replica learning a rotated key only through the unknown-`kid` path.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request};
use axum::Router;
use clap::Parser;
use reqwest::StatusCode;
use serde_json::Value;
use tower::ServiceExt;

use crate::helpers::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: latchkey::Config,
}

/// The real router on a fresh SQLite file, with the defaults except `extra`.
async fn router_with(extra: &[&str]) -> (tempfile::TempDir, latchkey::Application, Router) {
    let (dir, path) = temp_db();
    let url = format!("sqlite://{}", path.display());
    let mut args = vec!["latchkey", "--bind", "127.0.0.1:0", "--database-url", &url];
    args.extend_from_slice(extra);
    let config = Cli::try_parse_from(args).unwrap().config;
    let app = latchkey::Application::build(config).await.unwrap();
    let router = latchkey::http::router(app.state().clone());
    (dir, app, router)
}

async fn send(router: &Router, mut request: Request<Body>) -> axum::response::Response {
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4711))));
    router.clone().oneshot(request).await.unwrap()
}

async fn json_of(response: axum::response::Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn hsts_is_sent_by_default_and_off_turns_it_off() {
    let (_dir, _app, router) = router_with(&[]).await;
    let response = send(
        &router,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        response.headers()[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
    let (_dir, _app, router) = router_with(&["--hsts", "off"]).await;
    let response = send(
        &router,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(response
        .headers()
        .get(header::STRICT_TRANSPORT_SECURITY)
        .is_none());
}

#[tokio::test]
async fn a_wrong_method_is_405_method_not_allowed_as_json() {
    let (_dir, _app, router) = router_with(&[]).await;
    let response = send(
        &router,
        Request::get("/auth/login").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(json_of(response).await["code"], "method_not_allowed");
}

#[tokio::test]
async fn the_cors_preflight_answers_an_allowed_origin_only() {
    let (_dir, _app, router) = router_with(&[
        "--cookie-secure",
        "false",
        "--allowed-origins",
        "https://app.example",
    ])
    .await;
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/auth/refresh")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,x-latchkey-csrf",
            )
            .body(Body::empty())
            .unwrap()
    };
    let allowed = send(&router, preflight("https://app.example")).await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    let allowed_headers = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("x-latchkey-csrf"),
        "{allowed_headers}"
    );

    let refused = send(&router, preflight("https://evil.example")).await;
    assert!(
        refused
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none(),
        "a refused origin gets no Access-Control-Allow-Origin"
    );
}

/// Serve `app` on port 0, with or without the peer address; returns its base URL.
async fn serve(app: Router, connect_info: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    if connect_info {
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
    } else {
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }
    address
}

#[tokio::test]
async fn the_router_mounted_in_another_app_needs_the_peer_address() {
    let (_dir, _app, latchkey_routes) = router_with(&[]).await;
    let app = Router::new()
        .route("/hello", axum::routing::get(|| async { "hello" }))
        .merge(latchkey_routes);
    let client = reqwest::Client::new();
    let register = |base: String, email: &'static str| {
        let client = client.clone();
        async move {
            client
                .post(format!("{base}/auth/register"))
                .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
                .send()
                .await
                .unwrap()
        }
    };

    // With the peer address: the host app's route and Latchkey's both work.
    let with = serve(app.clone(), true).await;
    let hello = client.get(format!("{with}/hello")).send().await.unwrap();
    assert_eq!(hello.text().await.unwrap(), "hello");
    assert_eq!(
        register(with.clone(), "mia@example.com").await.status(),
        StatusCode::CREATED
    );

    // Without it, Latchkey refuses rather than putting every client in one bucket;
    // the host app's own routes are untouched.
    let without = serve(app, false).await;
    let hello = client.get(format!("{without}/hello")).send().await.unwrap();
    assert_eq!(hello.status(), StatusCode::OK);
    let response = register(without, "noa@example.com").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "connect_info_missing");
}

fn kid_of(access: &str) -> String {
    use base64::Engine as _;
    let header = access.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_replica_loads_a_key_rotated_elsewhere_on_its_first_unknown_kid() {
    let (_dir, path) = temp_db();
    // No Redis, keys reloaded hourly: only the unknown-kid path can make B accept.
    let args = ["--key-reload", "1h", "--revocation-poll", "1h"];
    let a = spawn_app_on(&path, &args).await;
    let b = spawn_app_on(&path, &args).await;
    let admin = a.create_admin("root@example.com").await;
    let old_kid = kid_of(&admin.access);
    assert_eq!(b.me(&admin.access).await.status(), StatusCode::OK);

    let rotated = a
        .client
        .post(a.url("/admin/keys/rotate"))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert!(rotated.status().is_success(), "{}", rotated.status());
    let fresh = a.login_body("root@example.com").await;
    assert_ne!(kid_of(&fresh.access), old_kid, "A signs with the new key");
    assert_eq!(
        b.me(&fresh.access).await.status(),
        StatusCode::OK,
        "B accepts a token signed with a key it had not loaded"
    );
}

/// After Redis restarts, a logout on one replica still reaches the other through
/// fan-out (the store is polled hourly, so nothing else can deliver it): both replicas
/// resubscribe by themselves.
#[tokio::test]
async fn revocations_reach_other_replicas_again_after_redis_restarts() {
    let Some(mut redis) = crate::faults::PrivateRedis::start().await else {
        return;
    };
    let (_dir, path) = temp_db();
    let url = redis.url();
    let args = ["--redis-url", url.as_str(), "--revocation-poll", "1h"];
    let a = spawn_app_on(&path, &args).await;
    let b = spawn_app_on(&path, &args).await;
    assert_eq!(
        a.register("ola@example.com").await.status(),
        StatusCode::CREATED
    );
    redis.restart().await;

    let delivered = crate::replicas::eventually(std::time::Duration::from_secs(30), || async {
        // A fresh session per attempt: a message published while B was still
        // reconnecting is lost by design (the hourly poll would catch it).
        let session = a.login_body("ola@example.com").await;
        let response = a
            .client
            .post(a.url("/auth/logout"))
            .bearer_auth(&session.access)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        crate::replicas::eventually(std::time::Duration::from_secs(2), || async {
            b.me(&session.access).await.status() == StatusCode::UNAUTHORIZED
        })
        .await
        .is_some()
    })
    .await;
    assert!(
        delivered.is_some(),
        "no logout reached the other replica within 30 s of Redis coming back"
    );
}
