//! Faults: the database or Redis goes away and comes back. Each test runs its own
//! private instance (never the machine's shared one).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use latchkey_store::testing::{skip, TestDatabase};
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
            Err(e) => {
                skip(format_args!(
                    "redis-server could not start ({e}): apt-get install redis-server"
                ));
                None
            }
        }
    }

    /// A port the OS just handed out may be taken again before `redis-server` binds it
    /// (by another test's private instance, say): the instance that answers on the port
    /// must be this child, by its pid, or the next port is tried.
    pub async fn start() -> Option<Self> {
        for _ in 0..5 {
            let port = free_port();
            let child = Self::start_on(port)?;
            let mut redis = Self {
                port,
                child: Some(child),
            };
            if redis.answers_as_ours().await {
                return Some(redis);
            }
            redis.stop().await;
        }
        panic!("no private redis-server got a port of its own in 5 tries");
    }

    /// Whether the server on the port is this child (not someone else's).
    async fn answers_as_ours(&self) -> bool {
        let Some(pid) = self.child.as_ref().and_then(Child::id) else {
            return false;
        };
        let url = self.url();
        let expected = format!("process_id:{pid}");
        eventually(Duration::from_secs(10), || {
            let (url, expected) = (url.clone(), expected.clone());
            async move {
                let Ok(client) = redis::Client::open(url.as_str()) else {
                    return false;
                };
                let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                    return false;
                };
                let info: String = redis::cmd("INFO")
                    .arg("server")
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                info.lines().any(|line| line.trim() == expected)
            }
        })
        .await
        .is_some()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        self.child = Self::start_on(self.port);
        assert!(
            self.answers_as_ours().await,
            "the restarted redis-server did not get its port back"
        );
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
            skip("PostgreSQL's server programs (initdb) are not under /usr/lib/postgresql: apt-get install postgresql");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        Self::as_postgres_owner(dir.path()).await;
        let mut pg = Self {
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
        // The port may be taken between free_port() and the bind: try another.
        for _ in 0..5 {
            if pg.try_up().await {
                return Some(pg);
            }
            pg.port = free_port();
        }
        panic!("no private PostgreSQL got a port of its own in 5 tries");
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
        assert!(self.try_up().await, "pg_ctl start failed");
    }

    async fn try_up(&self) -> bool {
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
        status.success()
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
