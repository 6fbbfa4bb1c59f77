use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use latchkey::clock::TestClock;
use latchkey::service::{AuthService, RequestContext};
use latchkey::{Application, Config};
use latchkey_core::model::{Email, Password, Role};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

#[derive(Parser)]
#[command(args_override_self = true)]
struct TestCli {
    #[command(flatten)]
    config: Config,
}

/// A running server and a client for it.
pub struct TestApp {
    pub address: String,
    /// The separate metrics listener's base URL, when `--metrics-bind` is given.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub service: Arc<AuthService>,
    /// The server's clock: `clock.advance(..)` instead of sleeping.
    pub clock: TestClock,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

pub const PASSWORD: &str = "correct horse battery staple";

/// A fresh database file in a temp dir.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latchkey.db");
    (dir, path)
}

pub fn config_for_url(url: &str, extra: &[&str]) -> Config {
    // Mail of tests that do not read it goes next to the test's database (or a scratch
    // directory), never into the crate.
    let mail_dir = url
        .strip_prefix("sqlite://")
        .and_then(|path| std::path::Path::new(path).parent())
        .map_or_else(
            || std::env::temp_dir().join("latchkey-test-mail"),
            |dir| dir.join("mail"),
        );
    let mail_dir = mail_dir.to_str().unwrap().to_owned();
    let mut args = vec![
        "latchkey",
        "--mail-dir",
        &mail_dir,
        "--bind",
        "127.0.0.1:0",
        "--database-url",
        url,
        "--issuer",
        "https://auth.test",
        "--audience",
        "test-api",
        "--cookie-secure",
        "false",
        "--hsts",
        "max-age=63072000",
        "--rate-login-per-ip",
        "1000/1m",
        "--rate-register-per-ip",
        "1000/1m",
        "--rate-refresh-per-ip",
        "10000/1m",
        "--rate-logout-per-ip",
        "10000/1m",
        "--rate-refresh-per-account",
        "10000/1m",
    ];
    args.extend_from_slice(extra);
    TestCli::try_parse_from(args).unwrap().config
}

pub async fn spawn_app(extra: &[&str]) -> TestApp {
    let (dir, path) = temp_db();
    let mut app = spawn_app_on(&path, extra).await;
    app._dir = Some(dir);
    app
}

pub async fn spawn_app_on(db_path: &std::path::Path, extra: &[&str]) -> TestApp {
    spawn_app_with_url(&format!("sqlite://{}", db_path.display()), extra).await
}

pub async fn spawn_app_with_url(url: &str, extra: &[&str]) -> TestApp {
    let clock = TestClock::new();
    let app = Application::build_with_clock(config_for_url(url, extra), clock.clock())
        .await
        .expect("server starts");
    let address = format!("http://{}", app.local_addr());
    let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
    let service = app.state().service.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        metrics_address,
        client,
        service,
        clock,
        shutdown: Some(tx),
        server: Some(server),
        _dir: None,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Stop serving and wait until the server has let go of the port and database.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
        self._dir.take()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// GET `path` with a bearer token and return the JSON body.
    pub async fn get_json(&self, path: &str, bearer: &str) -> Value {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    pub async fn register(&self, email: &str) -> Response {
        self.post_json(
            "/auth/register",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await
    }

    /// Log in a native client: tokens in the body.
    pub async fn login_body(&self, email: &str) -> Tokens {
        let response = self
            .post_json(
                "/auth/login",
                &json!({ "email": email, "password": PASSWORD, "refresh_delivery": "body" }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        Tokens::from(response.json::<Value>().await.unwrap())
    }

    pub async fn user_with_session(&self, email: &str) -> Tokens {
        assert_eq!(self.register(email).await.status(), StatusCode::CREATED);
        self.login_body(email).await
    }

    pub async fn refresh_body(&self, refresh_token: &str) -> Response {
        self.post_json("/auth/refresh", &json!({ "refresh_token": refresh_token }))
            .await
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.client
            .get(self.url("/auth/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn create_admin(&self, email: &str) -> Tokens {
        self.service
            .create_user(
                Email::parse(email).unwrap(),
                Password::parse(PASSWORD.into()).unwrap(),
                vec![Role::user(), Role::admin()],
                &RequestContext::default(),
            )
            .await
            .unwrap();
        self.login_body(email).await
    }
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl From<Value> for Tokens {
    fn from(body: Value) -> Self {
        Self {
            access: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        }
    }
}

/// Assert a JSON error response with this status and code.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "expected {status} {code}");
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["code"], code, "body: {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "body: {body}"
    );
    body
}

/// The string field `field` of every object in the JSON array `array`.
pub fn strings(array: &Value, field: &str) -> Vec<String> {
    let items = array.as_array().expect("a JSON array");
    items
        .iter()
        .map(|item| item[field].as_str().expect("a string field").to_owned())
        .collect()
}
