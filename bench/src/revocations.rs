//! `revocations`: how fast PostgreSQL takes session revocations, for docs/SCALING.md.
//!
//! Every revocation appends to the revocation log under one transaction-level advisory
//! lock (it makes the log's `seq` order its commit order, which the replicas' cursors
//! rely on), so revocations commit one after another across all replicas. This measures
//! `SessionStore::revoke_session` from `clients` concurrent tasks, then the same three
//! statements without the lock (raw SQL, never used by the server: what removing that
//! serialisation point could buy).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use latchkey_core::audit::{SecurityEvent, SecurityEventKind};
use latchkey_core::model::SessionId;
use latchkey_core::model::{Email, Role, User, UserId};
use latchkey_core::store::Store;
use latchkey_core::time::Timestamp;
use latchkey_store::BackendSettings;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

/// Options of `revocations`.
#[derive(Debug, clap::Args)]
pub(crate) struct RevocationOptions {
    /// An empty PostgreSQL database (migrated here).
    #[arg(long)]
    database_url: String,
    /// Concurrent revoking tasks.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_unix_millis(millis)
}

/// Insert `count` unrevoked sessions of a new user with one statement.
async fn sessions(pool: &PgPool, store: &dyn Store, count: usize) -> Result<Vec<SessionId>> {
    let user = User {
        id: UserId::generate(),
        email: Email::parse(&format!(
            "revoker-{}@bench.example",
            Uuid::new_v4().simple()
        ))?,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        roles: vec![Role::user()],
        created_at: now(),
        disabled_at: None,
    };
    store.insert_user(&user).await?;
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, latest_generation, revoked_at) \
         SELECT id, $2, $3, 0, NULL FROM unnest($1::uuid[]) AS id",
    )
    .bind(&ids)
    .bind(user.id.as_uuid())
    .bind(now().unix_millis())
    .execute(pool)
    .await?;
    Ok(ids.into_iter().map(SessionId::from).collect())
}

fn event(id: SessionId) -> SecurityEvent {
    SecurityEvent {
        at: now(),
        kind: SecurityEventKind::SessionRevoked,
        user_id: None,
        session_id: Some(id),
        client_ip: None,
        user_agent: None,
        detail: None,
    }
}

/// The store's revocation, without the advisory lock.
async fn revoke_unordered(pool: &PgPool, id: SessionId) -> Result<bool> {
    let at = now();
    let mut tx = pool.begin().await?;
    let done =
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at.unix_millis())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await?;
    sqlx::query("INSERT INTO security_events (at, kind, session_id) VALUES ($1, $2, $3)")
        .bind(at.unix_millis())
        .bind(SecurityEventKind::SessionRevoked.as_str())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO revocations (kind, value, expires_at) VALUES ('session', $1, $2) \
         ON CONFLICT (kind, value) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(at.unix_millis() + 900_000)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// WAL position (bytes) and WAL fsyncs so far (`pg_stat_wal`, the whole cluster).
async fn wal(pool: &PgPool) -> Result<(f64, f64)> {
    let row: (f64, f64) = sqlx::query_as(
        "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8, wal_sync::float8 FROM pg_stat_wal",
    )
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// Revocations per second, WAL bytes and WAL fsyncs per revocation.
struct Measured {
    rate: f64,
    wal_bytes: f64,
    fsyncs: f64,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} revocations/s; per revocation {:.0} WAL bytes, {:.3} WAL fsyncs (whole cluster)",
            self.rate, self.wal_bytes, self.fsyncs
        )
    }
}

/// Revoke from `clients` tasks for `seconds`: revocations per second.
async fn measure(
    pool: &PgPool,
    ids: Vec<SessionId>,
    clients: usize,
    seconds: f64,
    revoke: impl Fn(SessionId) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool>>>>
        + Clone
        + 'static,
) -> Result<Measured> {
    let (wal_before, syncs_before) = wal(pool).await?;
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let local = tokio::task::LocalSet::new();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (ids, next, revoke) = (ids.clone(), next.clone(), revoke.clone());
        tasks.push(local.spawn_local(async move {
            let mut done = 0u64;
            while Instant::now() < until {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                if !revoke(*id).await? {
                    bail!("session {id} was already revoked");
                }
                done += 1;
            }
            Ok(done)
        }));
    }
    let total = local
        .run_until(async {
            let mut total = 0;
            for task in tasks {
                total += task.await??;
            }
            Ok::<_, anyhow::Error>(total)
        })
        .await?;
    if next.load(Ordering::Relaxed) >= ids.len() {
        bail!("ran out of sessions: raise the pool of sessions");
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let (wal_after, syncs_after) = wal(pool).await?;
    let done = (total as f64).max(1.0);
    Ok(Measured {
        rate,
        wal_bytes: (wal_after - wal_before) / done,
        fsyncs: (syncs_after - syncs_before) / done,
    })
}

/// Run both measurements and print them.
pub(crate) async fn run(options: &RevocationOptions) -> Result<()> {
    if !options.database_url.starts_with("postgres") {
        bail!("revocations measures PostgreSQL: expected a postgres:// URL");
    }
    let store: Arc<dyn Store> =
        latchkey_store::open(&options.database_url, BackendSettings::default()).await?;
    let pool = PgPoolOptions::new()
        .max_connections(BackendSettings::default().max_connections)
        .connect(&options.database_url)
        .await?;
    let pool_size = 60_000;
    let ids = sessions(&pool, store.as_ref(), pool_size).await?;
    let until = now().unix_millis() + 900_000;
    let with_store = {
        let store = store.clone();
        move |id: SessionId| {
            let store = store.clone();
            Box::pin(async move {
                Ok(store
                    .revoke_session(id, now(), Timestamp::from_unix_millis(until), &event(id))
                    .await?)
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool>>>>
        }
    };
    let measured = measure(&pool, ids, options.clients, options.seconds, with_store).await?;
    println!(
        "revoke_session (advisory lock), {} clients: {measured}",
        options.clients
    );
    let ids = sessions(&pool, store.as_ref(), pool_size).await?;
    let unordered = {
        let pool = pool.clone();
        move |id: SessionId| {
            let pool = pool.clone();
            Box::pin(async move { revoke_unordered(&pool, id).await })
                as std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool>>>>
        }
    };
    let measured = measure(&pool, ids, options.clients, options.seconds, unordered).await?;
    println!(
        "the same statements without the lock, {} clients: {measured}",
        options.clients
    );
    Ok(())
}
