//! Fill a Latchkey SQLite store with N users, each with one session and the session's
//! first refresh token, all sharing one precomputed Argon2id hash of [`PASSWORD`] (so a
//! benchmark can log any of them in).
//!
//! The first `via_store` users go through `latchkey_store::open` and the store traits,
//! timed: each `insert_user` and `create_session` is its own transaction, fsynced at
//! `synchronous=FULL`, so that path manages a few thousand rows a second, and a million
//! users would take many minutes. The rest is bulk SQL into the same file (after the
//! store has created and migrated it): multi-row `INSERT`s, 50,000 users per
//! transaction, `synchronous=OFF` for the seeding connection only. Identifiers, e-mail
//! addresses and token hashes are generated up front and inserted in ascending order, so
//! every B-tree grows at its end; the resulting tables and indexes hold the same rows
//! as if the server had written them, only more densely packed.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use latchkey_core::device::Device;
use latchkey_core::model::{Email, Password, Role, Session, SessionId, User, UserId};
use latchkey_core::password::{HashCost, PasswordHasher};
use latchkey_core::refresh::{RefreshKeys, RefreshTokenHash};
use latchkey_core::store::NewSession;
use latchkey_core::time::Timestamp;
use latchkey_store::BackendSettings;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};
use uuid::Uuid;

use crate::api::{seeded_email, PASSWORD};

const ROWS_PER_STATEMENT: usize = 500;
const ROWS_PER_TRANSACTION: usize = 50_000;

/// What a seeding run did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeedReport {
    /// Users (and sessions) in the store.
    pub(crate) users: u64,
    /// Of which inserted through the store traits.
    pub(crate) via_store: u64,
    /// Time of the trait path.
    pub(crate) via_store_time: Duration,
    /// Time of the bulk path.
    pub(crate) bulk_time: Duration,
    /// Size of the database file afterwards.
    pub(crate) file_bytes: u64,
}

impl SeedReport {
    /// Users per second through the store traits, if any went that way.
    pub(crate) fn via_store_rate(&self) -> Option<f64> {
        (self.via_store > 0).then(|| self.via_store as f64 / self.via_store_time.as_secs_f64())
    }

    /// Users per second through bulk SQL.
    pub(crate) fn bulk_rate(&self) -> f64 {
        (self.users - self.via_store) as f64 / self.bulk_time.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seeded {} users with one session each ({:.0} MiB file): bulk SQL {:.0} users/s",
            self.users,
            self.file_bytes as f64 / 1_048_576.0,
            self.bulk_rate()
        )?;
        if let Some(rate) = self.via_store_rate() {
            write!(
                f,
                "; the store traits {rate:.0} users/s for the first {} (1M that way: ~{:.0} min)",
                self.via_store,
                1_000_000.0 / rate / 60.0
            )?;
        }
        Ok(())
    }
}

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_unix_millis(millis)
}

/// The refresh-token keys of the store at `store` (made and stored if it has none yet,
/// exactly as the server does on its first start).
async fn refresh_keys(store: &dyn latchkey_core::store::Store) -> Result<RefreshKeys> {
    let master = store
        .secret_or_insert(
            "refresh_token_master",
            &RefreshKeys::generate_master_secret(),
        )
        .await?;
    RefreshKeys::from_master_secret(&master).context("the stored refresh master is too short")
}

/// A first refresh token for session `id`: its text if it is one of the first `known`,
/// and the hash to store.
fn first_token(
    keys: &RefreshKeys,
    id: Uuid,
    n: usize,
    known: usize,
    tokens: &mut Vec<String>,
) -> [u8; 32] {
    let token = keys.new_token(SessionId::from(id));
    if n < known {
        tokens.push(token.expose().to_owned());
    }
    *keys.hash(&token).as_bytes()
}

fn random_hash() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes
}

fn insert_sql(table: &str, columns: &str, rows: usize) -> String {
    let width = columns.split(',').count();
    let row = format!("({})", vec!["?"; width].join(", "));
    format!(
        "INSERT INTO {table} ({columns}) VALUES {}",
        vec![row; rows].join(", ")
    )
}

/// Seed the SQLite database file at `path` (created and migrated if missing) with
/// `users` users, the first `via_store` of them through the store traits.
pub(crate) async fn seed(path: &Path, users: u64, via_store: u64) -> Result<SeedReport> {
    Ok(seed_with_tokens(path, users, via_store, 0).await?.0)
}

/// [`seed`], and the first refresh token (generation 0, valid, made with the store's own
/// refresh key as the server would) of the first `known` users' sessions, in user order.
/// A benchmark exchanges them on `POST /auth/refresh` for live access tokens without a
/// single login. The other sessions get a random hash, as before.
pub(crate) async fn seed_with_tokens(
    path: &Path,
    users: u64,
    via_store: u64,
    known: usize,
) -> Result<(SeedReport, Vec<String>)> {
    let url = format!("sqlite://{}", path.display());
    let hasher = PasswordHasher::new(HashCost::OWASP)?;
    let password_hash = hasher.hash(
        &Password::parse(PASSWORD.to_owned())?,
        &mut hasher.new_memory(),
    )?;
    let now = now();
    let via_store = via_store.min(users);

    let store = latchkey_store::open(&url, BackendSettings::default()).await?;
    let keys = refresh_keys(store.as_ref()).await?;
    let mut tokens = Vec::with_capacity(known);
    let started = Instant::now();
    for n in 0..via_store {
        let user = User {
            id: UserId::generate(),
            email: Email::parse(&seeded_email(n))?,
            password_hash: password_hash.clone(),
            roles: vec![Role::user()],
            created_at: now,
            disabled_at: None,
        };
        store.insert_user(&user).await?;
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id,
            created_at: now,
            latest_generation: 0,
            revoked_at: None,
        };
        store
            .create_session(&NewSession {
                first_token: RefreshTokenHash::from_bytes(first_token(
                    &keys,
                    session.id.as_uuid(),
                    usize::try_from(n)?,
                    known,
                    &mut tokens,
                )),
                session,
                password_hash: password_hash.clone(),
                client_ip: None,
                user_agent: None,
                device: Device::of(None, None),
                auth_methods: Default::default(),
            })
            .await?;
    }
    let via_store_time = started.elapsed();
    drop(store);

    let started = Instant::now();
    let bulk = usize::try_from(users - via_store)?;
    let options = SqliteConnectOptions::from_str(&url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .foreign_keys(false)
        .pragma("cache_size", "-262144")
        .pragma("temp_store", "memory");
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let mut user_ids: Vec<Uuid> = (0..bulk).map(|_| Uuid::new_v4()).collect();
    user_ids.sort_unstable();
    let mut session_ids: Vec<Uuid> = (0..bulk).map(|_| Uuid::new_v4()).collect();
    session_ids.sort_unstable();
    let first = usize::try_from(via_store)?;
    // Keyed by (session, generation): the hashes need no order of their own.
    let hashes: Vec<[u8; 32]> = session_ids
        .iter()
        .enumerate()
        .map(|(k, id)| {
            if first + k < known {
                first_token(&keys, *id, first + k, known, &mut tokens)
            } else {
                random_hash()
            }
        })
        .collect();
    let millis = now.unix_millis();
    for tx_start in (0..bulk).step_by(ROWS_PER_TRANSACTION) {
        let tx_end = (tx_start + ROWS_PER_TRANSACTION).min(bulk);
        let mut tx = conn.begin().await?;
        for start in (tx_start..tx_end).step_by(ROWS_PER_STATEMENT) {
            let range = start..(start + ROWS_PER_STATEMENT).min(tx_end);
            let sql = insert_sql(
                "users",
                "id, email, password_hash, roles, created_at",
                range.len(),
            );
            let mut query = sqlx::query(&sql);
            for k in range.clone() {
                query = query
                    .bind(user_ids[k].to_string())
                    .bind(seeded_email((first + k) as u64))
                    .bind(password_hash.as_str())
                    .bind("user")
                    .bind(millis);
            }
            query.execute(&mut *tx).await?;
            let sql = insert_sql(
                "sessions",
                "id, user_id, created_at, latest_generation, revoked_at",
                range.len(),
            );
            let mut query = sqlx::query(&sql);
            for k in range.clone() {
                query = query
                    .bind(session_ids[k].to_string())
                    .bind(user_ids[k].to_string())
                    .bind(millis)
                    .bind(0_i64)
                    .bind(None::<i64>);
            }
            query.execute(&mut *tx).await?;
            let sql = insert_sql(
                "refresh_tokens",
                "hash, session_id, generation, issued_at",
                range.len(),
            );
            let mut query = sqlx::query(&sql);
            for k in range {
                query = query
                    .bind(hashes[k].as_slice())
                    .bind(session_ids[k].to_string())
                    .bind(0_i64)
                    .bind(millis);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if (tx_end / ROWS_PER_TRANSACTION) % 4 == 0 || tx_end == bulk {
            eprintln!("  seeded {} / {users} users", first + tx_end);
        }
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    // Written at synchronous=OFF, so hundreds of MiB are still dirty in the page cache:
    // write them out now, or the kernel does it during the first measured round.
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("syncing {}", path.display()))?;
    let bulk_time = started.elapsed();
    let file_bytes = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let report = SeedReport {
        users,
        via_store,
        via_store_time,
        bulk_time,
        file_bytes,
    };
    Ok((report, tokens))
}

#[cfg(test)]
mod tests {
    use super::insert_sql;

    #[test]
    fn multi_row_insert() {
        assert_eq!(
            insert_sql("t", "a, b", 2),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
    }
}
