//! Upgrading a store that holds refresh tokens issued before tokens carried a locator
//! (SQLite migrations 0001-0002, PostgreSQL 0001): those tokens are still found by their
//! hash, spent ones included (so reuse is still detected), and rotate into tokens that
//! are found by locator only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use latchkey_core::model::SessionId;
use latchkey_core::refresh::{RefreshTokenHash, RefreshTokenLookup, TokenLocator};
use latchkey_core::store::{RotateOutcome, Rotation, Store};
use latchkey_core::time::Timestamp;
use latchkey_store::testing::TestDatabase;
use latchkey_store::{open, BackendSettings};
use sqlx::error::BoxDynError;
use sqlx::migrate::{resolve_blocking, Migration, MigrationSource, Migrator};
use sqlx::Connection;
use uuid::Uuid;

/// The migrations in `dir` up to and including `last`: the schema an older release left.
#[derive(Debug)]
struct MigrationsUpTo {
    dir: &'static str,
    last: i64,
}

impl MigrationSource<'static> for MigrationsUpTo {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async move {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(self.dir);
            Ok(resolve_blocking(&path)?
                .into_iter()
                .map(|(migration, _)| migration)
                .filter(|migration| migration.version <= self.last)
                .collect())
        })
    }
}

async fn migrator_up_to(dir: &'static str, last: i64) -> Migrator {
    Migrator::new(MigrationsUpTo { dir, last }).await.unwrap()
}

const LEGACY_HASH: [u8; 32] = [0x4c; 32];
const CREATED_AT: i64 = 1_700_000_000_000;

fn by_hash(hash: [u8; 32]) -> RefreshTokenLookup {
    RefreshTokenLookup {
        locator: None,
        hash: RefreshTokenHash::from_bytes(hash),
    }
}

fn at(session_id: SessionId, generation: u32, hash: [u8; 32]) -> RefreshTokenLookup {
    RefreshTokenLookup {
        locator: Some(TokenLocator {
            session_id,
            generation,
        }),
        hash: RefreshTokenHash::from_bytes(hash),
    }
}

/// What must hold after the upgrade, on either backend.
async fn legacy_token_works_after_upgrade(store: Arc<dyn Store>, session_id: SessionId) {
    let state = store.refresh_state(&by_hash(LEGACY_HASH)).await.unwrap();
    let state = state.expect("the legacy token is found by its hash");
    assert_eq!(state.session.id, session_id);
    assert_eq!(state.token.generation, 0);
    assert_eq!(state.token.spent_at, None);

    let successor = [0x5d; 32];
    let rotation = Rotation {
        session_id,
        presented: RefreshTokenHash::from_bytes(LEGACY_HASH),
        presented_generation: 0,
        successor: RefreshTokenHash::from_bytes(successor),
        now: Timestamp::from_unix_millis(CREATED_AT + 60_000),
        client_ip: None,
    };
    assert_eq!(
        store.rotate(&rotation).await.unwrap(),
        RotateOutcome::Rotated
    );

    let next = store
        .refresh_state(&at(session_id, 1, successor))
        .await
        .unwrap();
    assert_eq!(
        next.expect("the successor is found at its place")
            .token
            .generation,
        1
    );
    assert_eq!(
        store.refresh_state(&by_hash(successor)).await.unwrap(),
        None,
        "a new token is not found by hash alone"
    );
    let spent = store.refresh_state(&by_hash(LEGACY_HASH)).await.unwrap();
    assert_eq!(
        spent
            .expect("the spent legacy token is still found")
            .token
            .spent_at,
        Some(rotation.now),
        "so presenting it again is detected as reuse"
    );
}

#[tokio::test]
async fn sqlite_keeps_tokens_issued_before_locators() {
    let db = TestDatabase::sqlite().unwrap();
    let session_id = SessionId::generate();
    {
        let options: sqlx::sqlite::SqliteConnectOptions = db.url().parse().unwrap();
        let mut conn = sqlx::SqliteConnection::connect_with(&options.create_if_missing(true))
            .await
            .unwrap();
        migrator_up_to("sqlite", 2)
            .await
            .run(&mut conn)
            .await
            .unwrap();
        let user_id = Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO users VALUES (?, 'old@example.com', 'x', 'user', ?)")
            .bind(&user_id)
            .bind(CREATED_AT)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO sessions VALUES (?, ?, ?, 0, NULL)")
            .bind(session_id.to_string())
            .bind(&user_id)
            .bind(CREATED_AT)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, session_id, generation, issued_at) \
             VALUES (?, ?, 0, ?)",
        )
        .bind(LEGACY_HASH.as_slice())
        .bind(session_id.to_string())
        .bind(CREATED_AT)
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    // sqlx created the file with the umask's mode, as servers before 0600 files did.
    let settings = BackendSettings {
        sqlite_allow_insecure_permissions: true,
        ..BackendSettings::default()
    };
    let store = open(db.url(), settings).await.unwrap();
    legacy_token_works_after_upgrade(store, session_id).await;
}

#[tokio::test]
async fn postgres_keeps_tokens_issued_before_locators() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let session_id = SessionId::generate();
    {
        let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
        migrator_up_to("postgres", 1)
            .await
            .run(&mut conn)
            .await
            .unwrap();
        let user_id = Uuid::new_v4();
        sqlx::query("INSERT INTO users VALUES ($1, 'old@example.com', 'x', 'user', $2)")
            .bind(user_id)
            .bind(CREATED_AT)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO sessions VALUES ($1, $2, $3, 0, NULL)")
            .bind(session_id.as_uuid())
            .bind(user_id)
            .bind(CREATED_AT)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, session_id, generation, issued_at) \
             VALUES ($1, $2, 0, $3)",
        )
        .bind(LEGACY_HASH.as_slice())
        .bind(session_id.as_uuid())
        .bind(CREATED_AT)
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let store = open(db.url(), BackendSettings::default()).await.unwrap();
    legacy_token_works_after_upgrade(store, session_id).await;
}
