//! Throw-away databases for tests of this crate and of crates that use it (enable the
//! `testing` feature): a fresh SQLite file in its own temporary directory, or a fresh
//! PostgreSQL database on the test server, removed again when the handle is dropped.
//!
//! PostgreSQL is found at `LATCHKEY_TEST_POSTGRES_URL` (an admin URL, any database),
//! else at `postgres://postgres@127.0.0.1:5432/postgres` or `postgres://root@…`. If it
//! cannot be reached, [`TestDatabase::postgres`] panics when `CI=true` (a CI run must
//! really exercise PostgreSQL) and otherwise prints a "skipping" line and returns `None`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use crate::Backend;

/// Environment variable naming the PostgreSQL server (admin URL) for tests.
pub const POSTGRES_URL_ENV: &str = "LATCHKEY_TEST_POSTGRES_URL";

/// Admin URLs tried when [`POSTGRES_URL_ENV`] is unset.
const DEFAULT_POSTGRES_URLS: [&str; 2] = [
    "postgres://postgres@127.0.0.1:5432/postgres",
    "postgres://root@127.0.0.1:5432/postgres",
];

/// How long to wait for the PostgreSQL server to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A database that exists only for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    SqliteDir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A new, empty SQLite database file in a fresh directory under the system's
    /// temporary directory.
    pub fn sqlite() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("latchkey-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let url = format!("sqlite://{}", dir.join("latchkey.db").display());
        Ok(Self {
            url,
            cleanup: Cleanup::SqliteDir(dir),
        })
    }

    /// A new, empty PostgreSQL database, or `None` (after saying so on stderr) if no
    /// server is reachable outside CI.
    ///
    /// # Panics
    ///
    /// If no server is reachable and `CI=true`, or if the server refuses to create the
    /// database.
    #[allow(clippy::panic)]
    pub async fn postgres() -> Option<Self> {
        let candidates: Vec<String> = match std::env::var(POSTGRES_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => vec![url],
            _ => DEFAULT_POSTGRES_URLS
                .iter()
                .map(|url| (*url).to_owned())
                .collect(),
        };
        let mut failures = Vec::new();
        for admin_url in candidates {
            let mut conn = match tokio::time::timeout(
                CONNECT_TIMEOUT,
                PgConnection::connect(&admin_url),
            )
            .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(err)) => {
                    failures.push(err.to_string());
                    continue;
                }
                Err(_) => {
                    failures.push("timed out".to_owned());
                    continue;
                }
            };
            let name = format!("latchkey_test_{}", Uuid::new_v4().simple());
            if let Err(err) = conn
                .execute(format!("CREATE DATABASE \"{name}\"").as_str())
                .await
            {
                panic!("PostgreSQL is reachable but refused CREATE DATABASE {name}: {err}");
            }
            let _ = conn.close().await;
            return Some(Self {
                url: with_database(&admin_url, &name),
                cleanup: Cleanup::Postgres { admin_url, name },
            });
        }
        let reason = failures.join("; ");
        if std::env::var("CI").is_ok_and(|ci| ci.eq_ignore_ascii_case("true")) {
            panic!(
                "PostgreSQL not reachable but CI=true requires it (set {POSTGRES_URL_ENV}): {reason}"
            );
        }
        // Straight to the process's stderr, past the test harness's output capture, so
        // the skip shows in a normal `cargo test` run.
        let _ = writeln!(
            std::io::stderr(),
            "skipping: PostgreSQL not reachable (set {POSTGRES_URL_ENV}): {reason}"
        );
        None
    }

    /// The URL to hand to [`crate::open`] or a backend's `connect`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which backend the database belongs to.
    pub fn backend(&self) -> Backend {
        match self.cleanup {
            Cleanup::SqliteDir(_) => Backend::Sqlite,
            Cleanup::Postgres { .. } => Backend::Postgres,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                // Drop may run inside an async runtime (or while a test unwinds), so the
                // drop gets its own thread and runtime. FORCE ends connections still open.
                let admin_url = admin_url.clone();
                let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let dropper = std::thread::spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    runtime.block_on(async move {
                        let connect = PgConnection::connect(&admin_url);
                        if let Ok(Ok(mut conn)) =
                            tokio::time::timeout(CONNECT_TIMEOUT, connect).await
                        {
                            let _ = conn.execute(statement.as_str()).await;
                            let _ = conn.close().await;
                        }
                    });
                });
                let _ = dropper.join();
            }
        }
    }
}

/// `url` with its database (path) replaced by `name`, keeping any query parameters.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_replaced_and_query_kept() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/postgres?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
