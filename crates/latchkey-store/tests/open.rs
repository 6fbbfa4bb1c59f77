//! `latchkey_store::open`: backend selection by URL and error mapping at connect time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use latchkey_core::store::StoreError;
use latchkey_store::testing::TestDatabase;
use latchkey_store::{open, Backend, BackendSettings, SqliteSettings, SqliteStore};

#[test]
fn backend_is_chosen_by_scheme() {
    assert_eq!(
        Backend::of_url("sqlite://latchkey.db"),
        Some(Backend::Sqlite)
    );
    assert_eq!(Backend::of_url("sqlite:latchkey.db"), Some(Backend::Sqlite));
    assert_eq!(
        Backend::of_url("postgres://u@h/db"),
        Some(Backend::Postgres)
    );
    assert_eq!(
        Backend::of_url("postgresql://u@h/db"),
        Some(Backend::Postgres)
    );
    assert_eq!(Backend::of_url("mysql://u@h/db"), None);
    assert_eq!(Backend::of_url("latchkey.db"), None);
}

#[tokio::test]
async fn unsupported_url_is_refused_without_echoing_it() {
    let Err(err) = open("mysql://user:hunter2@host/db", BackendSettings::default()).await else {
        panic!("a mysql URL was accepted");
    };
    assert!(matches!(err, StoreError::Internal(_)), "got {err:?}");
    assert!(!err.to_string().contains("hunter2"));
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable() {
    let settings = BackendSettings {
        acquire_timeout: Duration::from_secs(2),
        ..BackendSettings::default()
    };
    // Port 1 on loopback: connection refused at once.
    let Err(err) = open("postgres://user:hunter2@127.0.0.1:1/db", settings).await else {
        panic!("connected to a closed port");
    };
    assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
    assert!(!err.to_string().contains("hunter2"));
}

#[tokio::test]
async fn in_memory_sqlite_is_refused() {
    let err = SqliteStore::connect("sqlite::memory:", SqliteSettings::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "got {err:?}");
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_migrations_are_idempotent() {
    let db = TestDatabase::sqlite().unwrap();
    let first = open(db.url(), BackendSettings::default()).await.unwrap();
    first.ping().await.unwrap();
    // A second open migrates an up-to-date schema: nothing to do, no error.
    let second = open(db.url(), BackendSettings::default()).await.unwrap();
    second.ping().await.unwrap();
    let path = db.url().trim_start_matches("sqlite://").to_owned();
    assert!(std::path::Path::new(&path).exists());
    assert!(
        std::path::Path::new(&format!("{path}-wal")).exists(),
        "WAL journal in use"
    );
}

#[tokio::test]
async fn postgres_migrations_are_idempotent() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let settings = BackendSettings {
        max_connections: 2,
        ..BackendSettings::default()
    };
    let first = open(db.url(), settings).await.unwrap();
    let second = open(db.url(), settings).await.unwrap();
    first.ping().await.unwrap();
    second.ping().await.unwrap();
}
