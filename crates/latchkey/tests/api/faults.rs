//! Faults: the database or Redis goes away and comes back. Each test runs its own
//! private instance (never the machine's shared one).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use latchkey_store::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::helpers::*;
use crate::replicas::{eventually, login, logout, me, readiness, refresh, register, Replica};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// A private `redis-server` on its own port.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start_on(port: u16) -> Option<Child> {
        let spawned = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Ok(child) => Some(child),
            Err(e) if in_ci() => panic!("redis-server could not start and CI=true: {e}"),
            Err(e) => {
                eprintln!("skipping: redis-server not available: {e}");
                None
            }
        }
    }

    pub async fn start() -> Option<Self> {
        let port = free_port();
        let child = Self::start_on(port)?;
        let redis = Self {
            port,
            child: Some(child),
        };
        redis.wait_until_up().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn wait_until_up(&self) {
        let url = self.url();
        let up = eventually(Duration::from_secs(10), || {
            let url = url.clone();
            async move {
                let Ok(client) = redis::Client::open(url.as_str()) else {
                    return false;
                };
                client.get_multiplexed_async_connection().await.is_ok()
            }
        })
        .await;
        assert!(up.is_some(), "private redis-server did not come up");
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    async fn restart(&mut self) {
        self.stop().await;
        self.child = Self::start_on(self.port);
        self.wait_until_up().await;
    }
}

/// A private PostgreSQL cluster made with `initdb` in a temp dir, on its own port.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    async fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .find(|b| b.join("initdb").exists())
            });
        let Some(bin) = bin else {
            if in_ci() {
                panic!("PostgreSQL server binaries (initdb) not found and CI=true");
            }
            eprintln!("skipping: initdb not found");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        Self::as_postgres_owner(dir.path()).await;
        let pg = Self {
            bin,
            data,
            port: free_port(),
            _dir: dir,
        };
        let initdb = pg.bin.join("initdb");
        let status = pg
            .command(
                &initdb,
                &[
                    "-D",
                    &pg.data.display().to_string(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ],
            )
            .status()
            .await
            .unwrap();
        assert!(status.success(), "initdb failed");
        pg.up().await;
        Some(pg)
    }

    /// Root may not run PostgreSQL: hand the directory to the `postgres` user.
    async fn as_postgres_owner(path: &Path) {
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres", &path.display().to_string()])
                .status()
                .await
                .unwrap();
            assert!(status.success());
        }
    }

    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.data.display()
        );
        let status = self
            .command(
                &self.bin.join("pg_ctl"),
                &[
                    "-D",
                    &self.data.display().to_string(),
                    "-o",
                    &options,
                    "-w",
                    "start",
                ],
            )
            .status()
            .await
            .unwrap();
        assert!(status.success(), "pg_ctl start failed");
    }

    async fn down(&self) {
        let status = self
            .command(
                &self.bin.join("pg_ctl"),
                &[
                    "-D",
                    &self.data.display().to_string(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            )
            .status()
            .await
            .unwrap();
        assert!(status.success(), "pg_ctl stop failed");
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = if is_root() {
            std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&pg_ctl)
                .args(["-D", &data, "-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
        } else {
            std::process::Command::new(&pg_ctl)
                .args(["-D", &data, "-m", "immediate", "stop"])
                .status()
        };
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[tokio::test]
async fn database_outage_gives_503_and_the_server_recovers_by_itself() {
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    let app = spawn_app_with_url(&pg.url(), &["--database-acquire-timeout", "1s"]).await;
    let tokens = app.user_with_session("yul@example.com").await;

    pg.down().await;
    let response = app.refresh_body(&tokens.refresh).await;
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    )
    .await;
    let response = app
        .post_json(
            "/auth/login",
            &json!({ "email": "yul@example.com", "password": PASSWORD }),
        )
        .await;
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    )
    .await;
    assert_eq!(
        app.me(&tokens.access).await.status(),
        StatusCode::OK,
        "the protected path needs no database"
    );
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    pg.up().await;
    let recovered = eventually(Duration::from_secs(20), || async {
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
    })
    .await;
    assert!(recovered.is_some(), "ready again once the database is back");
    // Nothing was half-written: the refresh token refused during the outage still works.
    let response = app.refresh_body(&tokens.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn redis_outage_degrades_but_logins_refreshes_and_revocations_go_on() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let a = Replica::start(db.url(), Some(&redis.url()), &[]).await;
    let b = Replica::start(db.url(), Some(&redis.url()), &[]).await;
    let client = reqwest::Client::new();
    register(&client, &a, "zed@example.com").await;

    redis.stop().await;
    let degraded = eventually(Duration::from_secs(5), || async {
        let body = readiness(&client, &a).await;
        body["status"] == "degraded" && body["redis"] == "unavailable"
    })
    .await;
    assert!(degraded.is_some(), "readiness says degraded");

    // Logins and refreshes go on; a logout on B still reaches A (through the store).
    let session = login(&client, &a, "zed@example.com").await;
    let response = refresh(&client, &b, &session.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let next = Tokens::from(response.json::<Value>().await.unwrap());
    assert_eq!(
        logout(&client, &b, &next.access).await,
        StatusCode::NO_CONTENT
    );
    let seen = eventually(Duration::from_secs(3), || async {
        me(&client, &a, &next.access).await == StatusCode::UNAUTHORIZED
    });
    assert!(
        seen.await.is_some(),
        "the revocation made during the outage reaches A"
    );

    // Redis comes back: ready again, and fan-out works again.
    redis.restart().await;
    let ready = eventually(Duration::from_secs(10), || async {
        let body = readiness(&client, &b).await;
        body["status"] == "ready"
    })
    .await;
    assert!(ready.is_some(), "ready again after Redis returns");
    let session = login(&client, &a, "zed@example.com").await;
    assert_eq!(
        logout(&client, &b, &session.access).await,
        StatusCode::NO_CONTENT
    );
    let seen = eventually(Duration::from_secs(1), || async {
        me(&client, &a, &session.access).await == StatusCode::UNAUTHORIZED
    });
    assert!(seen.await.is_some());
    a.stop().await;
    b.stop().await;
}
