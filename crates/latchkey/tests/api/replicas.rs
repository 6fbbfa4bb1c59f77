//! Several server processes sharing one PostgreSQL and one Redis behave as one server.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::future::join_all;
use latchkey_store::testing::{skip, TestDatabase};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::*;

/// The shared Redis for tests, or `None` after [`skip`] (a failure under `CI=true`).
pub async fn test_redis_url() -> Option<String> {
    let url = std::env::var("LATCHKEY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let reachable = async {
        let client = redis::Client::open(url.as_str()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    match tokio::time::timeout(Duration::from_secs(3), reachable).await {
        Ok(Some(_)) => Some(url),
        _ => {
            skip(format_args!(
                "Redis is not reachable at {url}: start redis-server on 127.0.0.1:6379, \
                 or set LATCHKEY_TEST_REDIS_URL"
            ));
            None
        }
    }
}

/// A `latchkey serve` process.
pub struct Replica {
    pub address: String,
    child: Child,
}

impl Replica {
    pub async fn start(
        database_url: &str,
        redis_url: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command
            .env("LATCHKEY_BIND", "127.0.0.1:0")
            .env("LATCHKEY_DATABASE_URL", database_url)
            .env("LATCHKEY_ISSUER", "https://auth.test")
            .env("LATCHKEY_AUDIENCE", "test-api")
            .env("LATCHKEY_COOKIE_SECURE", "false")
            .env("LATCHKEY_RATE_REFRESH_PER_IP", "100000/1m")
            .env("LATCHKEY_RATE_REFRESH_PER_ACCOUNT", "100000/1m")
            .env("LATCHKEY_RATE_LOGIN_PER_IP", "10000/1m")
            .env("LATCHKEY_RATE_REGISTER_PER_IP", "10000/1m")
            .env("LATCHKEY_LOG", "warn")
            // Mail (verification at registration) goes to scratch, not the crate.
            .env(
                "LATCHKEY_MAIL_DIR",
                std::env::temp_dir().join("latchkey-test-mail"),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(redis) = redis_url {
            command.env("LATCHKEY_REDIS_URL", redis);
        }
        for (key, value) in extra {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("latchkey starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("server announces its address")
            .unwrap()
            .expect("a line on stdout");
        let address = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { address, child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// Ask the server to stop as an operator would (SIGTERM to this child, by its pid)
    /// and wait for it to exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("the server is running");
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        self.child.wait().await.unwrap()
    }
}

pub async fn refresh(
    client: &reqwest::Client,
    replica: &Replica,
    token: &str,
) -> reqwest::Response {
    client
        .post(replica.url("/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap()
}

/// Log out on the replica with an access token; the status.
pub async fn logout(client: &reqwest::Client, replica: &Replica, access: &str) -> StatusCode {
    client
        .post(replica.url("/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
}

/// The replica's `GET /readyz` body.
pub async fn readiness(client: &reqwest::Client, replica: &Replica) -> Value {
    client
        .get(replica.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn me(client: &reqwest::Client, replica: &Replica, access: &str) -> StatusCode {
    client
        .get(replica.url("/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
}

pub async fn login(client: &reqwest::Client, replica: &Replica, email: &str) -> Tokens {
    let body = json!({ "email": email, "password": PASSWORD, "refresh_delivery": "body" });
    let response = client
        .post(replica.url("/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    Tokens::from(response.json::<Value>().await.unwrap())
}

pub async fn register(client: &reqwest::Client, replica: &Replica, email: &str) {
    let body = json!({ "email": email, "password": PASSWORD });
    let response = client
        .post(replica.url("/auth/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// Poll until `check` holds, up to `limit`; returns how long it took.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() <= limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn two_replicas_on_postgres_and_redis_behave_as_one() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let Some(redis) = test_redis_url().await else {
        return;
    };
    // The store's revocation log is polled hourly: only Redis fan-out can carry a
    // revocation from one replica to the other within the bounds below.
    let grace = [
        ("LATCHKEY_REUSE_GRACE", "3s"),
        ("LATCHKEY_REVOCATION_POLL", "1h"),
    ];
    let a = Replica::start(db.url(), Some(&redis), &grace).await;
    let b = Replica::start(db.url(), Some(&redis), &grace).await;
    let client = reqwest::Client::new();

    // Login on A, refresh on B.
    register(&client, &a, "xena@example.com").await;
    let first = login(&client, &a, "xena@example.com").await;
    let response = refresh(&client, &b, &first.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second = Tokens::from(response.json::<Value>().await.unwrap());
    assert_eq!(
        me(&client, &a, &second.access).await,
        StatusCode::OK,
        "B's token works on A"
    );

    // The spent token replayed on A after the grace window revokes the family on both.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_error(
        refresh(&client, &a, &first.refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;
    assert_error(
        refresh(&client, &b, &second.refresh).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
    let revoked_on_b = eventually(Duration::from_secs(1), || async {
        me(&client, &b, &second.access).await == StatusCode::UNAUTHORIZED
    });
    assert!(
        revoked_on_b.await.is_some(),
        "B rejects the family's access token within 1 s"
    );

    // Logout on B rejects the access token on A within 1 s.
    let session = login(&client, &a, "xena@example.com").await;
    assert_eq!(me(&client, &a, &session.access).await, StatusCode::OK);
    assert_eq!(
        logout(&client, &b, &session.access).await,
        StatusCode::NO_CONTENT
    );
    let took = eventually(Duration::from_secs(1), || async {
        me(&client, &a, &session.access).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(took.is_some(), "A rejects the logged-out token within 1 s");

    // 100 concurrent refreshes of one token, spread over A and B: one successor, no 500.
    let chain = login(&client, &b, "xena@example.com").await;
    let requests = (0..100).map(|i| {
        let replica = if i % 2 == 0 { &a } else { &b };
        refresh(&client, replica, &chain.refresh)
    });
    let mut successors = HashSet::new();
    for response in join_all(requests).await {
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "every concurrent refresh succeeds"
        );
        successors.insert(Tokens::from(response.json::<Value>().await.unwrap()).refresh);
    }
    assert_eq!(successors.len(), 1, "one successor across both replicas");

    let ready = readiness(&client, &a).await;
    assert_eq!(
        ready,
        json!({ "status": "ready", "database": "ok", "redis": "ok" })
    );
    a.stop().await;
    b.stop().await;
}
