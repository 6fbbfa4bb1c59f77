//! One refresh-token rotation through the store, per backend:
//!
//! - SQLite in a fresh file under the temporary directory, with `synchronous=FULL`
//!   (the server's default: every commit is fsynced) and `synchronous=NORMAL`;
//! - PostgreSQL in a fresh database on `postgres://postgres@127.0.0.1:5432/postgres`
//!   (or `LATCHKEY_TEST_POSTGRES_URL`), skipped with a note when unreachable.
//!
//! Per backend: `rotate` (the compare-and-set transaction alone), `refresh` (the read of
//! the token's state followed by the rotation, the store work of one `POST /auth/refresh`)
//! and `rotate_x32` (32 sessions rotating concurrently; the time shown is per rotation,
//! so its inverse is the store's rotation throughput with 32 clients).
//!
//! Run: `cargo bench -p latchkey-store --bench rotation`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use latchkey_core::device::Device;
use latchkey_core::model::{Email, Role, Session, SessionId, User, UserId};
use latchkey_core::refresh::{RefreshTokenHash, RefreshTokenLookup, TokenLocator};
use latchkey_core::store::{CreateSessionOutcome, NewSession, RotateOutcome, Rotation, Store};
use latchkey_core::time::Timestamp;
use latchkey_store::testing::TestDatabase;
use latchkey_store::{BackendSettings, SqliteSynchronous};
use tokio::runtime::Runtime;

/// The stored password hash of the benchmark user (never checked here).
const PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";

const CONCURRENT: u32 = 32;

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_unix_millis(i64::try_from(millis).unwrap())
}

/// A token hash unique to (`family`, `generation`).
fn hash(family: u32, generation: u32) -> RefreshTokenHash {
    let mut bytes = [0xA5; 32];
    bytes[..4].copy_from_slice(&family.to_le_bytes());
    bytes[4..8].copy_from_slice(&generation.to_le_bytes());
    RefreshTokenHash::from_bytes(bytes)
}

/// One refresh-token family (session) and the generation of its newest token.
struct Family {
    number: u32,
    session: SessionId,
    generation: u32,
}

impl Family {
    async fn create(store: &dyn Store, user: UserId, number: u32) -> Self {
        let session = Session {
            id: SessionId::generate(),
            user_id: user,
            created_at: now(),
            latest_generation: 0,
            revoked_at: None,
        };
        let outcome = store
            .create_session(&NewSession {
                session: session.clone(),
                first_token: hash(number, 0),
                password_hash: PASSWORD_HASH.to_owned(),
                client_ip: None,
                user_agent: None,
                device: Device::of(None, None),
                auth_methods: Default::default(),
            })
            .await
            .unwrap();
        assert!(matches!(outcome, CreateSessionOutcome::Created { .. }));
        Self {
            number,
            session: session.id,
            generation: 0,
        }
    }

    /// Spend the newest token and store its successor.
    async fn rotate(&mut self, store: &dyn Store) {
        let rotation = Rotation {
            session_id: self.session,
            presented: hash(self.number, self.generation),
            presented_generation: self.generation,
            successor: hash(self.number, self.generation + 1),
            now: now(),
            client_ip: None,
        };
        let outcome = store.rotate(&rotation).await.unwrap();
        assert_eq!(outcome, RotateOutcome::Rotated);
        self.generation += 1;
    }

    /// What a refresh does in the store: read the token's state, then rotate.
    async fn refresh(&mut self, store: &dyn Store) {
        let lookup = RefreshTokenLookup {
            locator: Some(TokenLocator {
                session_id: self.session,
                generation: self.generation,
            }),
            hash: hash(self.number, self.generation),
        };
        let state = store.refresh_state(&lookup).await.unwrap();
        assert!(state.is_some());
        self.rotate(store).await;
    }
}

async fn user(store: &dyn Store) -> UserId {
    let user = User {
        id: UserId::generate(),
        email: Email::parse("bench@example.com").unwrap(),
        password_hash: PASSWORD_HASH.into(),
        roles: vec![Role::user()],
        created_at: now(),
        disabled_at: None,
    };
    store.insert_user(&user).await.unwrap();
    user.id
}

fn bench_backend(c: &mut Criterion, runtime: &Runtime, name: &str, store: Arc<dyn Store>) {
    let (mut single, mut families) = runtime.block_on(async {
        let user = user(store.as_ref()).await;
        let single = Family::create(store.as_ref(), user, 0).await;
        let mut families = Vec::new();
        for number in 1..=CONCURRENT {
            families.push(Family::create(store.as_ref(), user, number).await);
        }
        (single, families)
    });
    let mut group = c.benchmark_group(name);
    group.bench_function("rotate", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    single.rotate(store.as_ref()).await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("refresh", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    single.refresh(store.as_ref()).await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function(format!("rotate_x{CONCURRENT}"), |b| {
        b.iter_custom(|iters| {
            // Each of the 32 families rotates ceil(iters / 32) times, all at once.
            let rounds = iters.div_ceil(u64::from(CONCURRENT));
            let taken = std::mem::take(&mut families);
            let (elapsed, back) = runtime.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = taken
                    .into_iter()
                    .map(|mut family| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            for _ in 0..rounds {
                                family.rotate(store.as_ref()).await;
                            }
                            family
                        })
                    })
                    .collect();
                let mut back = Vec::new();
                for task in tasks {
                    back.push(task.await.unwrap());
                }
                (start.elapsed(), back)
            });
            families = back;
            // Report the time of `iters` rotations at the measured rate.
            let done = rounds * u64::from(CONCURRENT);
            elapsed.mul_f64(iters as f64 / done as f64)
        })
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for (name, synchronous) in [
        ("sqlite_full", SqliteSynchronous::Full),
        ("sqlite_normal", SqliteSynchronous::Normal),
    ] {
        let db = TestDatabase::sqlite().unwrap();
        let settings = BackendSettings {
            sqlite_synchronous: synchronous,
            ..BackendSettings::default()
        };
        let store = runtime
            .block_on(latchkey_store::open(db.url(), settings))
            .unwrap();
        bench_backend(c, &runtime, name, store);
    }
    match runtime.block_on(TestDatabase::postgres()) {
        Some(db) => {
            let store = runtime
                .block_on(latchkey_store::open(db.url(), BackendSettings::default()))
                .unwrap();
            bench_backend(c, &runtime, "postgres", store);
        }
        None => println!("postgres: skipped, PostgreSQL is not reachable (see the note above)"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
