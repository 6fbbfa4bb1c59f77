//! The one place where driver errors become [`StoreError`]s, for both backends.
//!
//! Callers must be able to tell "the e-mail address is taken" (a client error) from
//! "the database is down" (retry later) from everything else (a bug or corrupt data),
//! and the messages must never carry SQL text or row data: a failing statement may have
//! been binding a password hash, a refresh-token hash or a private key.

use latchkey_core::store::StoreError;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::MigrateError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// The name of the unique constraint on `users.email` (same in both schemas).
const USERS_EMAIL_CONSTRAINT: &str = "users_email_key";

/// How [`StoreError::Internal`] messages for database error codes begin.
const DATABASE_ERROR: &str = "database error ";

/// PostgreSQL's SQLSTATE for "database does not exist".
pub(crate) const PG_UNDEFINED_DATABASE: &str = "3D000";

/// The database error code a [`StoreError`] made by [`map_error`] carries, if any (for
/// start-up messages that need the URL's context to explain it).
pub(crate) fn database_code(error: &StoreError) -> Option<&str> {
    match error {
        StoreError::Internal(message) => message
            .strip_prefix(DATABASE_ERROR)
            .and_then(|rest| rest.split_whitespace().next()),
        _ => None,
    }
}

/// Translate a driver error into the store's error vocabulary. Not logged here: the
/// caller decides (the server's HTTP error mapping logs each failure once).
pub(crate) fn map_error(err: sqlx::Error) -> StoreError {
    classify(&err)
}

/// Translate a rusqlite error (the SQLite refresh lane) into the store's error
/// vocabulary, by the same rules as [`map_error`]: transient SQLite codes are
/// [`StoreError::Unavailable`], the rest [`StoreError::Internal`] with the code only.
pub(crate) fn map_rusqlite_error(err: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match err {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen => StoreError::Unavailable(format!(
                "database busy or going away (code {})",
                failure.extended_code
            )),
            _ => StoreError::Internal(format!("database error {}", failure.extended_code)),
        },
        // Column conversions: the index and type only, never the value.
        rusqlite::Error::InvalidColumnType(index, _, _)
        | rusqlite::Error::FromSqlConversionFailure(index, _, _)
        | rusqlite::Error::IntegralValueOutOfRange(index, _) => {
            StoreError::Internal(format!("could not decode stored column {index}"))
        }
        _ => StoreError::Internal("unexpected SQLite driver failure".to_owned()),
    }
}

/// The same failure again, for each caller of a batch that failed as a whole.
pub(crate) fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::EmailTaken => StoreError::EmailTaken,
        StoreError::Unavailable(detail) => StoreError::Unavailable(detail.clone()),
        StoreError::Busy => StoreError::Busy,
        StoreError::Internal(detail) => StoreError::Internal(detail.clone()),
    }
}

/// Translate a failed migration run into the store's error vocabulary.
pub(crate) fn map_migrate_error(err: MigrateError) -> StoreError {
    classify_migrate(&err)
}

fn classify(err: &sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => map_database_error(db.as_ref()),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".to_owned())
        }
        sqlx::Error::PoolClosed => {
            StoreError::Unavailable("the database connection pool is closed".to_owned())
        }
        // The OS message ("Connection refused (os error 111)") carries no data.
        sqlx::Error::Io(io_err) => {
            StoreError::Unavailable(format!("cannot reach the database: {io_err}"))
        }
        sqlx::Error::Tls(_) => {
            StoreError::Unavailable("TLS failure while connecting to the database".to_owned())
        }
        sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable("the database connection worker stopped".to_owned())
        }
        sqlx::Error::Protocol(_) => {
            StoreError::Unavailable("database protocol error; connection dropped".to_owned())
        }
        // Built from the database URL, never from row data; the parser's messages name
        // the faulty part without echoing the URL (which may hold a password).
        sqlx::Error::Configuration(source) => {
            StoreError::Internal(format!("invalid database configuration: {source}"))
        }
        sqlx::Error::Migrate(migrate) => classify_migrate(migrate),
        sqlx::Error::ColumnDecode { index, .. } => {
            StoreError::Internal(format!("could not decode stored column {index}"))
        }
        sqlx::Error::ColumnNotFound(column) => {
            StoreError::Internal(format!("stored row lacks column {column}"))
        }
        sqlx::Error::Decode(_) => {
            StoreError::Internal("could not decode a stored value".to_owned())
        }
        sqlx::Error::Encode(_) => StoreError::Internal("could not encode a value".to_owned()),
        sqlx::Error::RowNotFound => StoreError::Internal("expected row is missing".to_owned()),
        _ => StoreError::Internal("unexpected database driver failure".to_owned()),
    }
}

fn classify_migrate(err: &MigrateError) -> StoreError {
    match err {
        MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => {
            match classify(inner) {
                StoreError::Internal(message) => {
                    StoreError::Internal(format!("database migration failed: {message}"))
                }
                other => other,
            }
        }
        // The remaining variants describe migration versions and files, no row data.
        other => StoreError::Internal(format!("database migration failed: {other}")),
    }
}

/// A store error for stored data that this version cannot interpret.
pub(crate) fn corrupt(what: &str) -> StoreError {
    tracing::error!(what, "stored data is not understood");
    StoreError::Internal(format!("stored data is not understood: {what}"))
}

fn map_database_error(db: &dyn DatabaseError) -> StoreError {
    if matches!(db.kind(), ErrorKind::UniqueViolation) && is_users_email(db) {
        return StoreError::EmailTaken;
    }
    let code = db.code().map(|code| code.into_owned()).unwrap_or_default();
    if is_transient(db, &code) {
        return StoreError::Unavailable(format!("database busy or going away (code {code})"));
    }
    // Only the code and the constraint name: PostgreSQL's message and detail may quote
    // the offending values.
    match db.constraint() {
        Some(constraint) => {
            StoreError::Internal(format!("{DATABASE_ERROR}{code} on constraint {constraint}"))
        }
        None => StoreError::Internal(format!("{DATABASE_ERROR}{code}")),
    }
}

/// Whether a unique violation is the one on `users.email`.
fn is_users_email(db: &dyn DatabaseError) -> bool {
    // PostgreSQL names the constraint; SQLite only says "UNIQUE constraint failed:
    // users.email" (its own text, not row data).
    db.constraint() == Some(USERS_EMAIL_CONSTRAINT) || db.message().ends_with("users.email")
}

/// PostgreSQL's SQLSTATE for a transaction that lost a serialization check.
const SERIALIZATION_FAILURE: &str = "40001";
/// PostgreSQL's SQLSTATE for a transaction chosen as a deadlock's victim.
const DEADLOCK_DETECTED: &str = "40P01";

/// Whether PostgreSQL rolled the statement back because it lost a race with another
/// transaction (deadlock victim, serialization failure): trying it again may succeed.
pub(crate) fn lost_a_race(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == SERIALIZATION_FAILURE || code == DEADLOCK_DETECTED)
}

/// Whether the database says "cannot serve this right now, try again": the statement
/// (and its transaction) did not happen.
fn is_transient(db: &dyn DatabaseError, code: &str) -> bool {
    if db.try_downcast_ref::<PgDatabaseError>().is_some() {
        // SQLSTATE: connection exceptions, insufficient resources, operator intervention
        // (shutdown, statement timeout), serialization failure, deadlock, lock timeout.
        return code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57")
            || code == SERIALIZATION_FAILURE
            || code == DEADLOCK_DETECTED
            || code == "55P03";
    }
    if db.try_downcast_ref::<SqliteError>().is_some() {
        // Extended result code; the primary code is the low byte.
        const SQLITE_BUSY: i32 = 5;
        const SQLITE_LOCKED: i32 = 6;
        const SQLITE_IOERR: i32 = 10;
        const SQLITE_FULL: i32 = 13;
        const SQLITE_CANTOPEN: i32 = 14;
        return code.parse::<i32>().is_ok_and(|extended| {
            matches!(
                extended & 0xff,
                SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN
            )
        });
    }
    false
}
