//! A store under test on a throw-away database, plus fixtures shared by the cases.

use std::sync::Arc;
use std::time::Duration;

use latchkey_core::audit::{SecurityEvent, SecurityEventKind};
use latchkey_core::device::Device;
use latchkey_core::model::{Email, Role, Session, SessionId, User, UserId};
use latchkey_core::refresh::{RefreshTokenHash, RefreshTokenLookup, TokenLocator};
use latchkey_core::store::{CreateSessionOutcome, NewSession, Rotation, Store};
use latchkey_core::time::Timestamp;
use latchkey_store::testing::TestDatabase;
use latchkey_store::{
    open, Backend, BackendSettings, PostgresSettings, PostgresStore, SqliteSettings, SqliteStore,
    SqliteSynchronous,
};
use uuid::Uuid;

/// Small pools: many PostgreSQL cases run in parallel against one server.
const POOL_SIZE: u32 = 4;

/// One backend's store on its own fresh database.
pub(crate) struct Harness {
    /// The store under test.
    pub(crate) store: Arc<dyn Store>,
    /// The same store by its concrete type, to close it; `None` after a reopen.
    concrete: Option<Concrete>,
    /// Declared last so it is dropped (and the database removed) after the stores.
    db: TestDatabase,
}

enum Concrete {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Harness {
    /// A migrated SQLite store on a new file.
    pub(crate) async fn sqlite() -> Self {
        let db = TestDatabase::sqlite().expect("create a temporary directory");
        Self::connect(db, SqliteSynchronous::Full).await
    }

    /// A migrated SQLite store on a new file, at `synchronous=NORMAL`.
    pub(crate) async fn sqlite_normal() -> Self {
        let db = TestDatabase::sqlite().expect("create a temporary directory");
        Self::connect(db, SqliteSynchronous::Normal).await
    }

    /// A migrated PostgreSQL store on a new database, or `None` if the test must skip.
    pub(crate) async fn postgres() -> Option<Self> {
        Some(Self::connect(TestDatabase::postgres().await?, SqliteSynchronous::Full).await)
    }

    /// Connect with the backend's own `connect` and `migrate` (the other stores of a
    /// case come from [`latchkey_store::open`], so both paths are exercised).
    async fn connect(db: TestDatabase, synchronous: SqliteSynchronous) -> Self {
        let (store, concrete): (Arc<dyn Store>, Concrete) = match db.backend() {
            Backend::Sqlite => {
                let settings = SqliteSettings {
                    max_connections: POOL_SIZE,
                    synchronous,
                    ..SqliteSettings::default()
                };
                let store = SqliteStore::connect(db.url(), settings)
                    .await
                    .expect("connect");
                store.migrate().await.expect("migrate");
                (Arc::new(store.clone()), Concrete::Sqlite(store))
            }
            Backend::Postgres => {
                let settings = PostgresSettings {
                    max_connections: POOL_SIZE,
                    ..PostgresSettings::default()
                };
                let store = PostgresStore::connect(db.url(), settings)
                    .await
                    .expect("connect");
                store.migrate().await.expect("migrate");
                (Arc::new(store.clone()), Concrete::Postgres(store))
            }
        };
        Self {
            store,
            concrete: Some(concrete),
            db,
        }
    }

    /// Close the store's connections; the `store` handle stays but no longer works.
    pub(crate) async fn close(&mut self) {
        match self.concrete.take() {
            Some(Concrete::Sqlite(store)) => store.close().await,
            Some(Concrete::Postgres(store)) => store.close().await,
            None => {}
        }
    }

    /// Close the store and open the same database again with [`latchkey_store::open`].
    pub(crate) async fn reopen(&mut self) {
        self.close().await;
        self.store = self.open_another().await;
    }

    /// Another, independent store on the same database, as another process would have.
    pub(crate) async fn open_another(&self) -> Arc<dyn Store> {
        let settings = BackendSettings {
            max_connections: POOL_SIZE,
            acquire_timeout: Duration::from_secs(5),
            ..BackendSettings::default()
        };
        open(self.db.url(), settings)
            .await
            .expect("open the same database again")
    }
}

/// A timestamp `millis` after the epoch.
pub(crate) fn t(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis)
}

/// A fresh random refresh-token hash.
pub(crate) fn random_hash() -> RefreshTokenHash {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    RefreshTokenHash::from_bytes(bytes)
}

/// How a caller finds the token with this hash at (`session_id`, `generation`).
pub(crate) fn located(
    session_id: SessionId,
    generation: u32,
    hash: RefreshTokenHash,
) -> RefreshTokenLookup {
    RefreshTokenLookup {
        locator: Some(TokenLocator {
            session_id,
            generation,
        }),
        hash,
    }
}

/// How a caller finds the successor that `rotation` stores.
pub(crate) fn successor_of(rotation: &Rotation) -> RefreshTokenLookup {
    located(
        rotation.session_id,
        rotation.presented_generation + 1,
        rotation.successor.clone(),
    )
}

/// A user (not stored yet) with the given address and the `user` role.
pub(crate) fn new_user(email: &str) -> User {
    User {
        id: UserId::generate(),
        email: Email::parse(email).expect("valid address"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        roles: vec![Role::user()],
        created_at: t(1_000),
        disabled_at: None,
    }
}

/// Store a new user and return it.
pub(crate) async fn stored_user(store: &Arc<dyn Store>, email: &str) -> User {
    let user = new_user(email);
    store.insert_user(&user).await.expect("insert user");
    user
}

/// Store a new session of `user` created at `created_at`; returns it with how to find
/// its first token.
pub(crate) async fn stored_session(
    store: &Arc<dyn Store>,
    user: &User,
    created_at: Timestamp,
) -> (Session, RefreshTokenLookup) {
    let session = Session {
        id: SessionId::generate(),
        user_id: user.id,
        created_at,
        latest_generation: 0,
        revoked_at: None,
    };
    let first = random_hash();
    let outcome = store
        .create_session(&NewSession {
            session: session.clone(),
            first_token: first.clone(),
            password_hash: user.password_hash.clone(),
            client_ip: Some("203.0.113.7".to_owned()),
            user_agent: Some("conformance/1.0".to_owned()),
            device: Device::of(Some("conformance/1.0"), None),
            auth_methods: Default::default(),
        })
        .await
        .expect("create session");
    assert!(
        matches!(outcome, CreateSessionOutcome::Created { .. }),
        "{outcome:?}"
    );
    let first = located(session.id, 0, first);
    (session, first)
}

/// A security event with request details filled in.
pub(crate) fn event(
    kind: SecurityEventKind,
    at: Timestamp,
    user: Option<UserId>,
    session: Option<SessionId>,
) -> SecurityEvent {
    SecurityEvent {
        at,
        kind,
        user_id: user,
        session_id: session,
        client_ip: Some("203.0.113.7".to_owned()),
        user_agent: Some("conformance/1.0".to_owned()),
        detail: Some(format!("{} at {}", kind.as_str(), at.unix_millis())),
    }
}
