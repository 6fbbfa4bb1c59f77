//! Throw-away databases for tests of this crate and of crates that use it (enable the
//! `testing` feature): a fresh SQLite file in its own temporary directory, or a fresh
//! PostgreSQL database on the test server, removed again when the handle is dropped.
//!
//! PostgreSQL is found at `LATCHKEY_TEST_POSTGRES_URL` (an admin URL, any database),
//! else at `postgres://postgres@127.0.0.1:5432/postgres` or `postgres://root@…`. If it
//! cannot be reached, [`TestDatabase::postgres`] [`skip`]s: a `SKIPPED` line outside CI,
//! a failure under `CI=true` (a CI run must really exercise PostgreSQL).
//!
//! [`skip`] is the one way tests of this workspace skip for a missing service.

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

    /// A new, empty PostgreSQL database, or `None` (after [`skip`]) if no server is
    /// reachable.
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
        skip(format_args!(
            "PostgreSQL is not reachable ({reason}): start it on 127.0.0.1:5432 with trust \
             authentication, or set {POSTGRES_URL_ENV}"
        ));
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

/// Whether this run is CI's (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci.eq_ignore_ascii_case("true"))
}

/// Skip the running test because something it needs is missing: writes one line,
/// `SKIPPED <test name>: <reason>`, straight to the process's standard error, past the
/// test harness's output capture, so it shows in a plain `cargo test` run. `reason` says
/// what is missing and how to provide it. The caller then returns without testing.
///
/// # Panics
///
/// Under `CI=true`, with the same line: a CI run must test everything.
#[allow(clippy::panic)]
pub fn skip(reason: impl std::fmt::Display) {
    let line = skip_line(std::thread::current().name(), &reason.to_string());
    if in_ci() {
        panic!("{line} (CI=true: nothing may be skipped)");
    }
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The skip line; libtest runs each test on a thread named after the test.
fn skip_line(thread: Option<&str>, reason: &str) -> String {
    let test = match thread {
        Some(name) if name != "main" => name,
        _ => "(outside a test)",
    };
    format!("SKIPPED {test}: {reason}")
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
    use super::{skip, skip_line, with_database};

    /// Set in the copy of this test binary that
    /// [`a_skip_shows_in_a_plain_run_and_fails_under_ci`] starts.
    const PROBE: &str = "LATCHKEY_SKIP_PROBE";

    /// This test's own binary, running only this test, as a plain `cargo test` would
    /// (output captured), in the probe role.
    fn probe(ci: bool) -> std::process::Output {
        let name = "testing::tests::a_skip_shows_in_a_plain_run_and_fails_under_ci";
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args([name, "--exact", "--test-threads", "2"])
            .env(PROBE, "1");
        if ci {
            command.env("CI", "true");
        } else {
            command.env_remove("CI");
        }
        command.output().unwrap()
    }

    #[test]
    fn a_skip_shows_in_a_plain_run_and_fails_under_ci() {
        if std::env::var_os(PROBE).is_some() {
            skip("the probe's reason: install nothing");
            return;
        }
        let line = "SKIPPED testing::tests::a_skip_shows_in_a_plain_run_and_fails_under_ci: \
                    the probe's reason: install nothing";
        let plain = probe(false);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&plain.stdout),
            String::from_utf8_lossy(&plain.stderr),
        );
        assert!(plain.status.success(), "{stdout}{stderr}");
        assert!(stdout.contains("1 passed"), "{stdout}");
        assert!(
            stderr.lines().any(|l| l == line),
            "the skip line is on stderr: {stderr}"
        );
        let ci = probe(true);
        let stdout = String::from_utf8_lossy(&ci.stdout);
        assert!(
            !ci.status.success(),
            "under CI=true the test fails: {stdout}"
        );
        assert!(stdout.contains("1 failed"), "{stdout}");
        assert!(
            stdout.contains(&format!("{line} (CI=true: nothing may be skipped)")),
            "{stdout}"
        );
    }

    #[test]
    fn the_skip_line_names_the_test() {
        assert_eq!(
            skip_line(Some("browser_ui::pages::sign_in"), "no chromium"),
            "SKIPPED browser_ui::pages::sign_in: no chromium"
        );
        assert_eq!(skip_line(Some("main"), "x"), "SKIPPED (outside a test): x");
    }

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
