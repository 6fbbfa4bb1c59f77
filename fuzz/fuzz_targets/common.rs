//! The real router on a temp SQLite database, built once per fuzzing process, with an
//! admin's and a user's access token, and a refresh token of the user.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use clap::Parser;
use latchkey::service::RequestContext;
use latchkey::{Application, Config};
use latchkey_core::model::{Email, Password, Role};
use tower::ServiceExt;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

/// Each target uses some of these.
#[allow(dead_code)]
pub struct Fixture {
    pub runtime: tokio::runtime::Runtime,
    pub router: Router,
    pub user_access: String,
    pub admin_access: String,
}

const PASSWORD: &str = "correct horse battery staple";

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn build() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let url = format!("sqlite://{}", dir.path().join("fuzz.db").display());
    let config = Cli::try_parse_from([
        "latchkey",
        "--bind",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--issuer",
        "https://auth.test",
        "--audience",
        "fuzz",
        "--cookie-secure",
        "false",
        "--allowed-origins",
        "https://app.test",
        "--rate-login-per-ip",
        "1000000/1m",
        "--rate-register-per-ip",
        "1000000/1m",
        "--rate-refresh-per-ip",
        "1000000/1m",
        "--rate-logout-per-ip",
        "1000000/1m",
        "--rate-refresh-per-account",
        "1000000/1m",
    ])
    .unwrap()
    .config;
    let (router, user, admin) = runtime.block_on(async {
        let app = Box::leak(Box::new(Application::build(config).await.unwrap()));
        let service = app.state().service.clone();
        for (email, roles) in [
            ("user@fuzz.test", vec![Role::user()]),
            ("admin@fuzz.test", vec![Role::user(), Role::admin()]),
        ] {
            service
                .create_user(
                    Email::parse(email).unwrap(),
                    Password::parse(PASSWORD.into()).unwrap(),
                    roles,
                    &RequestContext::default(),
                )
                .await
                .unwrap();
        }
        let router = latchkey::http::router(app.state().clone());
        let user = login(&router, "user@fuzz.test").await;
        let admin = login(&router, "admin@fuzz.test").await;
        (router, user, admin)
    });
    Fixture {
        runtime,
        router,
        user_access: user,
        admin_access: admin,
    }
}

async fn login(router: &Router, email: &str) -> String {
    let body = serde_json::json!({
        "email": email, "password": PASSWORD, "refresh_delivery": "body"
    });
    let request = Request::post("/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = send_async(router, request).await;
    assert_eq!(response.0, StatusCode::OK, "{}", response.1);
    let value: serde_json::Value = serde_json::from_str(&response.1).unwrap();
    value["access_token"].as_str().unwrap().to_owned()
}

async fn send_async(router: &Router, mut request: Request<Body>) -> (StatusCode, String) {
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4711))));
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Send `request`; panic (a finding) on any 5xx or a non-JSON error body.
pub fn send(request: Request<Body>) {
    let fixture = fixture();
    let (status, body) = fixture
        .runtime
        .block_on(send_async(&fixture.router, request));
    assert!(!status.is_server_error(), "{status}: {body}");
    if status.is_client_error() {
        let value: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("{status} without a JSON body: {body}"));
        assert!(value["code"].is_string(), "{status} without a code: {body}");
    }
}
