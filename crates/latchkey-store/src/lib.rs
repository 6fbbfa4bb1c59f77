//! Latchkey's storage backends: SQLite (embedded, the default) and PostgreSQL (for
//! several replicas), both implementing [`latchkey_core::store::Store`].
//!
//! The server picks one at start-up with [`open`] from the database URL and from then on
//! only sees an `Arc<dyn Store>`. Both backends pass the same conformance suite
//! (`tests/conformance`), so behaviour never depends on the backend.

use std::sync::Arc;
use std::time::Duration;

use latchkey_core::store::{Store, StoreError};

mod convert;
mod error;
mod migrations;
pub mod postgres;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use postgres::{PostgresSettings, PostgresStore};
pub use sqlite::{SqliteSettings, SqliteStore, SqliteSynchronous};

/// Connection settings for whichever backend [`open`] picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendSettings {
    /// Pool size (for SQLite: the read pool; writes use one extra connection).
    pub max_connections: u32,
    /// How long an operation waits for a free connection before it fails with
    /// [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
    /// SQLite only: durability of commits.
    pub sqlite_synchronous: SqliteSynchronous,
    /// SQLite only: open a database file that group or others may read or write (see
    /// [`SqliteSettings::allow_insecure_permissions`]).
    pub sqlite_allow_insecure_permissions: bool,
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            sqlite_synchronous: SqliteSynchronous::Full,
            sqlite_allow_insecure_permissions: false,
        }
    }
}

/// Which backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:` URLs.
    Sqlite,
    /// `postgres:` and `postgresql:` URLs.
    Postgres,
}

impl Backend {
    /// The backend for `url`, judged by its scheme; `None` if it is neither.
    pub fn of_url(url: &str) -> Option<Self> {
        let (scheme, _) = url.split_once(':')?;
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }
}

/// Connect to the database at `url` (`sqlite://latchkey.db`, `postgres://…`), apply
/// pending migrations and return the store.
pub async fn open(url: &str, settings: BackendSettings) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::of_url(url) {
        Some(Backend::Sqlite) => {
            let sqlite = SqliteSettings {
                max_connections: settings.max_connections,
                acquire_timeout: settings.acquire_timeout,
                synchronous: settings.sqlite_synchronous,
                allow_insecure_permissions: settings.sqlite_allow_insecure_permissions,
                ..SqliteSettings::default()
            };
            let store = SqliteStore::connect(url, sqlite).await?;
            store.migrate().await?;
            Ok(Arc::new(store))
        }
        Some(Backend::Postgres) => {
            let postgres = PostgresSettings {
                max_connections: settings.max_connections,
                acquire_timeout: settings.acquire_timeout,
            };
            let store = PostgresStore::connect(url, postgres).await?;
            store.migrate().await?;
            Ok(Arc::new(store))
        }
        // Never echo the URL: it may carry a password.
        None => Err(StoreError::Internal(
            "unsupported database URL: expected a sqlite: or postgres: URL".to_owned(),
        )),
    }
}
