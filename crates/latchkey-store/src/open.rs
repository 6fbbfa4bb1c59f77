//! Opening a store from a database URL, in two modes:
//!
//! - [`open`] (the server, `latchkey migrate`): creates a missing SQLite file and
//!   applies pending migrations;
//! - [`open_existing`] (read-only and admin commands): never creates a file and never
//!   migrates; a missing or unmigrated database is an error that says what to run.
//!
//! Both turn the usual start-up mistakes (a SQLite file in a directory that does not
//! exist, a PostgreSQL database that was never created) into one sentence a person can
//! act on. Messages never carry the URL's password.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use latchkey_core::store::{Store, StoreError};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::error::{database_code, map_error, PG_UNDEFINED_DATABASE};
use crate::migrations::{self, EmbeddedMigrations};
use crate::{
    Backend, BackendSettings, PostgresSettings, PostgresStore, SqliteSettings, SqliteStore,
};

/// Whether opening may create and migrate the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    CreateAndMigrate,
    ExistingOnly,
}

/// Connect to the database at `url` (`sqlite://latchkey.db`, `postgres://…`), apply
/// pending migrations and return the store. A missing SQLite file is created (its
/// directory must exist).
pub async fn open(url: &str, settings: BackendSettings) -> Result<Arc<dyn Store>, StoreError> {
    open_in(url, settings, Mode::CreateAndMigrate).await
}

/// Connect to an existing, fully migrated database without changing it: no file is
/// created and no migration runs. For commands that only read or change rows (listing
/// users or keys, admin changes): a typo in the URL must not create a new database.
///
/// Fails with [`StoreError::Internal`] naming what to do when the SQLite file does not
/// exist, or the schema lacks migrations this version needs (or has ones it does not
/// know).
pub async fn open_existing(
    url: &str,
    settings: BackendSettings,
) -> Result<Arc<dyn Store>, StoreError> {
    open_in(url, settings, Mode::ExistingOnly).await
}

async fn open_in(
    url: &str,
    settings: BackendSettings,
    mode: Mode,
) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::of_url(url) {
        Some(Backend::Sqlite) => {
            let options = SqliteConnectOptions::from_str(url).map_err(map_error)?;
            let path = options.get_filename().to_path_buf();
            check_sqlite_path(&path, mode)?;
            if mode == Mode::ExistingOnly {
                let check = options.read_only(true).create_if_missing(false);
                let mut conn = check.connect().await.map_err(map_error)?;
                let applied = sqlite_applied_versions(&mut conn).await;
                let _ = conn.close().await;
                check_migrated(
                    applied?,
                    migrations::SQLITE,
                    &format!("the database {}", path.display()),
                )
                .await?;
            }
            let sqlite = SqliteSettings {
                max_connections: settings.max_connections,
                acquire_timeout: settings.acquire_timeout,
                synchronous: settings.sqlite_synchronous,
                allow_insecure_permissions: settings.sqlite_allow_insecure_permissions,
                ..SqliteSettings::default()
            };
            let store = SqliteStore::connect(url, sqlite).await?;
            if mode == Mode::CreateAndMigrate {
                store.migrate().await?;
            }
            Ok(Arc::new(store))
        }
        Some(Backend::Postgres) => {
            let options = PgConnectOptions::from_str(url).map_err(map_error)?;
            let postgres = PostgresSettings {
                max_connections: settings.max_connections,
                acquire_timeout: settings.acquire_timeout,
            };
            let store = PostgresStore::connect(url, postgres)
                .await
                .map_err(|e| explain_postgres(e, &options))?;
            match mode {
                Mode::CreateAndMigrate => store.migrate().await?,
                Mode::ExistingOnly => {
                    let mut conn = options.connect().await.map_err(map_error)?;
                    let applied = postgres_applied_versions(&mut conn).await;
                    let _ = conn.close().await;
                    check_migrated(
                        applied?,
                        migrations::POSTGRES,
                        &format!("the database {}", postgres_place(&options)),
                    )
                    .await?;
                }
            }
            Ok(Arc::new(store))
        }
        // Never echo the URL: it may carry a password.
        None => Err(StoreError::Internal(
            "unsupported database URL: expected a sqlite: or postgres: URL".to_owned(),
        )),
    }
}

/// The directory must exist (SQLite creates files, not directories); in
/// [`Mode::ExistingOnly`] the file must exist too.
fn check_sqlite_path(path: &Path, mode: Mode) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        return Err(StoreError::Internal(format!(
            "directory {} does not exist: create it, or point LATCHKEY_DATABASE_URL at another one",
            dir.display()
        )));
    }
    if !dir.is_dir() {
        return Err(StoreError::Internal(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    if mode == Mode::ExistingOnly && !path.exists() {
        return Err(StoreError::Internal(format!(
            "no database at {}: check LATCHKEY_DATABASE_URL, or create it with `latchkey migrate`",
            path.display()
        )));
    }
    Ok(())
}

/// The versions recorded as applied, or `None` when the migrations table is missing.
async fn sqlite_applied_versions(
    conn: &mut sqlx::SqliteConnection,
) -> Result<Option<Vec<i64>>, StoreError> {
    let table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_error)?;
    if table.is_none() {
        return Ok(None);
    }
    let versions = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut *conn)
        .await
        .map_err(map_error)?;
    Ok(Some(versions))
}

/// The versions recorded as applied, or `None` when the migrations table is missing.
async fn postgres_applied_versions(
    conn: &mut sqlx::PgConnection,
) -> Result<Option<Vec<i64>>, StoreError> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(map_error)?;
    if table.is_none() {
        return Ok(None);
    }
    let versions = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut *conn)
        .await
        .map_err(map_error)?;
    Ok(Some(versions))
}

/// Every embedded migration applied, and none this version does not know.
async fn check_migrated(
    applied: Option<Vec<i64>>,
    embedded: EmbeddedMigrations,
    what: &str,
) -> Result<(), StoreError> {
    let Some(mut applied) = applied else {
        return Err(StoreError::Internal(format!(
            "{what} has no Latchkey schema: run `latchkey migrate` first"
        )));
    };
    applied.sort_unstable();
    let migrator = embedded.migrator().await?;
    let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    if let Some(unknown) = applied.iter().find(|v| !known.contains(v)) {
        return Err(StoreError::Internal(format!(
            "{what} has schema version {unknown}, newer than this latchkey knows: upgrade latchkey"
        )));
    }
    let missing = known.iter().filter(|v| !applied.contains(v)).count();
    if missing > 0 {
        return Err(StoreError::Internal(format!(
            "{what} lacks {missing} of {} schema migrations: run `latchkey migrate` first",
            known.len()
        )));
    }
    Ok(())
}

/// `host:port`, for messages.
fn postgres_place(options: &PgConnectOptions) -> String {
    let database = options.get_database().unwrap_or(options.get_username());
    format!(
        "{database} on {}:{}",
        options.get_host(),
        options.get_port()
    )
}

/// A PostgreSQL connect failure in words a person can act on.
fn explain_postgres(error: StoreError, options: &PgConnectOptions) -> StoreError {
    if database_code(&error) != Some(PG_UNDEFINED_DATABASE) {
        return error;
    }
    let database = options.get_database().unwrap_or(options.get_username());
    let host = options.get_host();
    let port = options.get_port();
    let local = matches!(host, "localhost" | "127.0.0.1" | "::1") || host.starts_with('/');
    let flags = if local && port == 5432 {
        String::new()
    } else {
        format!("-h {host} -p {port} ")
    };
    StoreError::Internal(format!(
        "database {database} does not exist on {host}:{port}: create it with createdb {flags}{database}"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_missing_directory_is_named() {
        let err = check_sqlite_path(
            Path::new("./no-such-dir-4f1c/latchkey.db"),
            Mode::CreateAndMigrate,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("directory ./no-such-dir-4f1c does not exist"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_refused_only_when_it_must_exist() {
        let path = Path::new("no-such-file-4f1c.db");
        check_sqlite_path(path, Mode::CreateAndMigrate).unwrap();
        let err = check_sqlite_path(path, Mode::ExistingOnly).unwrap_err();
        assert!(err.to_string().contains("no database at"), "{err}");
    }

    #[test]
    fn an_undefined_postgres_database_says_how_to_create_it() {
        let options =
            PgConnectOptions::from_str("postgres://u:hunter2@127.0.0.1:5432/latchkey").unwrap();
        let err = explain_postgres(
            StoreError::Internal("database error 3D000".to_owned()),
            &options,
        );
        assert_eq!(
            err.to_string(),
            "store failure: database latchkey does not exist on 127.0.0.1:5432: create it with createdb latchkey"
        );
        let options = PgConnectOptions::from_str("postgres://u@db.internal:6543/auth").unwrap();
        let err = explain_postgres(
            StoreError::Internal("database error 3D000".to_owned()),
            &options,
        );
        assert!(err
            .to_string()
            .ends_with("create it with createdb -h db.internal -p 6543 auth"));
    }
}
