//! `latchkey_store::open`: backend selection by URL and error mapping at connect time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use latchkey_core::store::StoreError;
use latchkey_store::testing::TestDatabase;
use latchkey_store::{open, open_existing, Backend, BackendSettings, SqliteSettings, SqliteStore};

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

/// The applied migrations: version, checksum, success.
async fn applied_postgres_migrations(url: &str) -> Vec<(i64, Vec<u8>, bool)> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

/// A second open on a migrated database applies nothing, changes no recorded checksum,
/// and keeps the data written after the first.
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
    let applied = applied_postgres_migrations(db.url()).await;
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(
        applied.len(),
        shipped,
        "every shipped migration is applied once"
    );
    assert!(applied.iter().all(|(_, _, success)| *success));

    let user = latchkey_core::model::User {
        id: latchkey_core::model::UserId::generate(),
        email: latchkey_core::model::Email::parse("kept@example.com").unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        roles: vec![latchkey_core::model::Role::user()],
        created_at: latchkey_core::time::Timestamp::from_unix_millis(1_000),
        disabled_at: None,
    };
    first.insert_user(&user).await.unwrap();

    let second = open(db.url(), settings).await.unwrap();
    assert_eq!(
        applied_postgres_migrations(db.url()).await,
        applied,
        "the second open applied or changed nothing"
    );
    let kept = second.user_by_email(&user.email).await.unwrap();
    assert_eq!(
        kept.map(|u| u.id),
        Some(user.id),
        "data survives a second open"
    );
    first.ping().await.unwrap();
}

#[tokio::test]
async fn open_existing_creates_no_sqlite_file_and_requires_the_schema() {
    let db = TestDatabase::sqlite().unwrap();
    let path = db.url().trim_start_matches("sqlite://").to_owned();
    let err = refusal(open_existing(db.url(), BackendSettings::default()).await);
    assert!(err.to_string().contains("no database at"), "{err}");
    assert!(!std::path::Path::new(&path).exists(), "a file was created");

    std::fs::write(&path, b"").unwrap();
    // Written with the umask's mode: made private, as Latchkey itself creates it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = refusal(open_existing(db.url(), BackendSettings::default()).await);
    assert!(err.to_string().contains("run `latchkey migrate`"), "{err}");

    open(db.url(), BackendSettings::default()).await.unwrap();
    let store = open_existing(db.url(), BackendSettings::default())
        .await
        .unwrap();
    store.ping().await.unwrap();
    assert!(store.signing_keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_sqlite_file_in_a_missing_directory_names_the_directory() {
    let db = TestDatabase::sqlite().unwrap();
    let path = db.url().trim_start_matches("sqlite://").to_owned();
    let missing = std::path::Path::new(&path).with_file_name("data");
    let url = format!("sqlite://{}", missing.join("latchkey.db").display());
    let err = refusal(open(&url, BackendSettings::default()).await);
    assert!(
        err.to_string()
            .contains(&format!("directory {} does not exist", missing.display())),
        "{err}"
    );
    assert!(!missing.exists());
}

#[tokio::test]
async fn open_existing_does_not_migrate_postgres() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let settings = BackendSettings {
        max_connections: 2,
        ..BackendSettings::default()
    };
    let err = refusal(open_existing(db.url(), settings).await);
    assert!(err.to_string().contains("has no Latchkey schema"), "{err}");
    open(db.url(), settings).await.unwrap();
    open_existing(db.url(), settings)
        .await
        .unwrap()
        .ping()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_postgres_database_says_how_to_create_it_without_the_password() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    // The same server and user, a database nobody created.
    let (server, _) = db.url().rsplit_once('/').unwrap();
    let url = format!("{server}/latchkey_never_created");
    let url_with_password = url.replacen("://", "://ignored:hunter2@", 1);
    for url in [url.as_str(), url_with_password.as_str()] {
        let Err(err) = open_existing(url, BackendSettings::default()).await else {
            panic!("opened a database that does not exist");
        };
        let message = err.to_string();
        if url.contains("hunter2") {
            // Another user: refused before the database is looked up, but never echoed.
            assert!(!message.contains("hunter2"), "{message}");
            continue;
        }
        assert!(
            message.contains("database latchkey_never_created does not exist on ")
                && message.ends_with("create it with createdb latchkey_never_created"),
            "{message}"
        );
    }
}

/// The error of an open that must fail (`dyn Store` has no `Debug` for `unwrap_err`).
fn refusal<T>(result: Result<T, StoreError>) -> StoreError {
    match result {
        Ok(_) => panic!("opened"),
        Err(err) => err,
    }
}
