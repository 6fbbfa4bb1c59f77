//! The SQLite backend: Latchkey's embedded default, one file next to the server.
//!
//! SQLite allows one writer at a time. A deferred transaction (`BEGIN`) that reads and
//! then writes can fail at once with `SQLITE_BUSY` when another connection wrote in
//! between, which would turn two concurrent refreshes into a "database is locked" error
//! instead of a clean conflict. So this backend funnels writes through a dedicated
//! one-connection writer pool (in-process writers queue fairly for it) and starts every
//! multi-statement write with `BEGIN IMMEDIATE`, which takes the write lock up front and
//! waits (`busy_timeout`) for other writers. Reads use a separate pool and, thanks to
//! WAL, never block the writer nor are blocked by it.
//!
//! The refresh path, the hot one, has a connection and a thread of its own
//! ([`refresh_lane`]): it answers token-state reads and group-commits rotations, each as
//! one statement (the `rotations` view's trigger; a conflict fails that statement alone
//! and changes nothing), paying one WAL sync per batch instead of one per refresh. Each
//! caller gets its outcome only after the commit, so durability is unchanged.

mod accounts;
mod email;
mod events;
mod keys;
mod mfa;
mod refresh_lane;
mod registration;
mod revocations;
mod sealed;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_core::audit::SecurityEvent;
use latchkey_core::model::{Email, RefreshState, Role, Session, SessionId, User, UserId};
use latchkey_core::refresh::RefreshTokenLookup;
use latchkey_core::store::{
    AuditLog, CreateSessionOutcome, EventPosition, LoggedEvent, Maintenance, NewSession,
    PasswordChange, RotateOutcome, Rotation, SessionDetails, SessionRevocation, SessionStore,
    StoreError, UserDeletion, UserStore, UserUpdate, UserUpdateOutcome,
};
use latchkey_core::time::Timestamp;
use latchkey_core::webhook::webhook_type;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous as DriverSynchronous,
};
use sqlx::{Decode, Row, Sqlite, Transaction, Type};

use crate::convert::{
    event_kind_from_db, generation_from_db, limit_to_db, opt_ts, roles_from_db, roles_to_db,
    session_id_from_text, ts, user_id_from_text, KIND_SESSION,
};
use crate::error::{map_error, map_migrate_error};
use crate::migrations;
use events::insert_event;
use refresh_lane::RefreshLane;

/// Page cache of each read-pool connection, in KiB (SQLite's default is about 2 MiB).
/// The readers serve scattered single-row lookups (a user by e-mail at login, a
/// session's details) whose pages the OS page cache keeps anyway; a small cache each
/// keeps the pool's memory bounded on a large store (8 readers: 4 MiB, not 16).
const READER_CACHE_KIB: u32 = 512;

/// How hard SQLite works to make a commit durable (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSynchronous {
    /// Sync the WAL on every commit: a committed rotation or revocation survives a power
    /// cut. The default.
    #[default]
    Full,
    /// Sync only at checkpoints: faster, and the database stays consistent, but the last
    /// commits before a power cut (not a crash of the process) may be lost.
    Normal,
}

impl From<SqliteSynchronous> for DriverSynchronous {
    fn from(level: SqliteSynchronous) -> Self {
        match level {
            SqliteSynchronous::Full => DriverSynchronous::Full,
            SqliteSynchronous::Normal => DriverSynchronous::Normal,
        }
    }
}

/// Connection settings of the SQLite backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteSettings {
    /// Connections of the read pool (the writer and the refresh lane have one more each).
    pub max_connections: u32,
    /// How long an operation waits for a free connection before it fails as unavailable.
    pub acquire_timeout: Duration,
    /// How long a statement waits for a lock held by another connection or process.
    pub busy_timeout: Duration,
    /// Durability of commits.
    pub synchronous: SqliteSynchronous,
    /// Open a database file (or `-wal`/`-shm` file) that group or others may read or
    /// write. Off (the default): [`SqliteStore::connect`] refuses such a file, since it
    /// holds private keys and password hashes. A new file is created 0600 either way.
    pub allow_insecure_permissions: bool,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            synchronous: SqliteSynchronous::Full,
            allow_insecure_permissions: false,
        }
    }
}

/// The SQLite implementation of [`latchkey_core::store::Store`]. Cheap to clone (the
/// clones share the pools).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Connections for reads.
    reader: SqlitePool,
    /// The one connection that writes everything but rotations.
    writer: SqlitePool,
    /// The refresh path: token-state reads and group-committed rotations.
    refresh_lane: RefreshLane,
}

/// Create the database file with mode 0600 if it is missing, then (unless `allow_insecure`)
/// refuse it, or its `-wal`/`-shm` file, when group or others may read or write it.
#[cfg(unix)]
fn secure_database_file(path: &std::path::Path, allow_insecure: bool) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    // Created, or there already; any other failure (a missing directory, say) is left
    // for SQLite to report in its own words, after the checks below.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    if allow_insecure {
        return Ok(());
    }
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(name.into());
    }
    for file in files {
        let mode = match std::fs::metadata(&file) {
            Ok(metadata) => metadata.permissions().mode() & 0o777,
            Err(_) => continue,
        };
        if mode & 0o077 != 0 {
            return Err(StoreError::Internal(format!(
                "the database file {} has mode {mode:03o}: group or others can read or \
                 write it, and it holds private keys and password hashes; run \
                 `chmod 600` on it (and its -wal and -shm files), or allow it explicitly \
                 (LATCHKEY_ALLOW_INSECURE_DB_PERMISSIONS=true)",
                file.display()
            )));
        }
    }
    Ok(())
}

/// File modes are a unix matter; elsewhere the file is left to SQLite.
#[cfg(not(unix))]
fn secure_database_file(_path: &std::path::Path, _allow_insecure: bool) -> Result<(), StoreError> {
    Ok(())
}

impl SqliteStore {
    /// Open (creating it if missing) the database file named by `url`, such as
    /// `sqlite://latchkey.db` or `sqlite:///var/lib/latchkey/latchkey.db`, in WAL mode
    /// with foreign keys on. Does not migrate; see [`SqliteStore::migrate`].
    ///
    /// A missing file is created with mode 0600 (SQLite gives its `-wal` and `-shm`
    /// files the main file's mode). An existing file, `-wal` or `-shm` that group or
    /// others can read or write is refused unless
    /// [`SqliteSettings::allow_insecure_permissions`] is set.
    pub async fn connect(url: &str, options: SqliteSettings) -> Result<Self, StoreError> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(StoreError::Internal(
                "in-memory SQLite databases are not supported; name a database file".to_owned(),
            ));
        }
        let connect_options = SqliteConnectOptions::from_str(url)
            .map_err(map_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout)
            .synchronous(options.synchronous.into());
        secure_database_file(
            connect_options.get_filename(),
            options.allow_insecure_permissions,
        )?;
        // The writer first: it creates the file and switches it to WAL before any
        // reader opens it.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect_options.clone())
            .await
            .map_err(map_error)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(
                connect_options
                    .clone()
                    .pragma("cache_size", format!("-{READER_CACHE_KIB}")),
            )
            .await
            .map_err(map_error)?;
        let refresh_lane = RefreshLane::start(
            connect_options.get_filename(),
            options.busy_timeout,
            options.synchronous,
        )?;
        Ok(Self {
            reader,
            writer,
            refresh_lane,
        })
    }

    /// Apply the embedded schema migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::SQLITE
            .migrator()
            .await?
            .run(&self.writer)
            .await
            .map_err(map_migrate_error)
    }

    /// Close all connections, waiting for running operations to finish. Later calls
    /// fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.refresh_lane.close().await;
        self.writer.close().await;
        self.reader.close().await;
    }

    /// A write transaction that holds the database's write lock from its first statement.
    async fn begin_immediate(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_error)
    }
}

/// Read column `column` of `row`, mapping failures to a [`StoreError`].
fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(column).map_err(map_error)
}

fn user_from_row(row: &SqliteRow) -> Result<User, StoreError> {
    Ok(User {
        id: user_id_from_text(&get::<String>(row, "id")?)?,
        email: Email::from_trusted(get(row, "email")?),
        password_hash: get(row, "password_hash")?,
        roles: roles_from_db(&get::<String>(row, "roles")?)?,
        created_at: ts(get(row, "created_at")?),
        disabled_at: opt_ts(get(row, "disabled_at")?),
    })
}

fn session_from_row(row: &SqliteRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: session_id_from_text(&get::<String>(row, "id")?)?,
        user_id: user_id_from_text(&get::<String>(row, "user_id")?)?,
        created_at: ts(get(row, "created_at")?),
        latest_generation: generation_from_db(get(row, "latest_generation")?)?,
        revoked_at: opt_ts(get(row, "revoked_at")?),
    })
}

fn event_from_row(row: &SqliteRow) -> Result<SecurityEvent, StoreError> {
    let user_id: Option<String> = get(row, "user_id")?;
    let session_id: Option<String> = get(row, "session_id")?;
    Ok(SecurityEvent {
        at: ts(get(row, "at")?),
        kind: event_kind_from_db(&get::<String>(row, "kind")?)?,
        user_id: user_id.as_deref().map(user_id_from_text).transpose()?,
        session_id: session_id
            .as_deref()
            .map(session_id_from_text)
            .transpose()?,
        client_ip: get(row, "client_ip")?,
        user_agent: get(row, "user_agent")?,
        detail: get(row, "detail")?,
    })
}

const USER_COLUMNS: &str = "id, email, password_hash, roles, created_at, disabled_at";
const SESSION_COLUMNS: &str = "id, user_id, created_at, latest_generation, revoked_at";
const EVENT_COLUMNS: &str = "at, kind, user_id, session_id, client_ip, user_agent, detail";

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, roles, created_at, disabled_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id.to_string())
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(roles_to_db(&user.roles))
        .bind(user.created_at.unix_millis())
        .bind(user.disabled_at.map(Timestamp::unix_millis))
        .execute(&self.writer)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?"))
            .bind(email.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(map_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(map_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self, after: Option<&Email>, limit: u32) -> Result<Vec<User>, StoreError> {
        let rows = match after {
            Some(after) => {
                sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE email > ? ORDER BY email LIMIT ?"
                ))
                .bind(after.as_str())
                .bind(limit_to_db(limit))
                .fetch_all(&self.reader)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY email LIMIT ?"
                ))
                .bind(limit_to_db(limit))
                .fetch_all(&self.reader)
                .await
            }
        }
        .map_err(map_error)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn set_user_roles(&self, id: UserId, roles: &[Role]) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET roles = ? WHERE id = ?")
            .bind(roles_to_db(roles))
            .bind(id.to_string())
            .execute(&self.writer)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_user(&self, update: &UserUpdate) -> Result<UserUpdateOutcome, StoreError> {
        self.update_user_tx(update).await
    }

    async fn delete_user(&self, deletion: &UserDeletion) -> Result<UserUpdateOutcome, StoreError> {
        self.delete_user_tx(deletion).await
    }

    async fn change_password(
        &self,
        change: &PasswordChange,
    ) -> Result<UserUpdateOutcome, StoreError> {
        self.change_password_tx(change).await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, new: &NewSession) -> Result<CreateSessionOutcome, StoreError> {
        self.create_session_tx(new).await
    }

    async fn refresh_state(
        &self,
        lookup: &RefreshTokenLookup,
    ) -> Result<Option<RefreshState>, StoreError> {
        self.refresh_lane.refresh_state(lookup).await
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        self.refresh_lane.rotate(rotation).await
    }

    async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(map_error)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn revoke_session(
        &self,
        id: SessionId,
        now: Timestamp,
        access_tokens_until: Timestamp,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let revoked =
            sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now.unix_millis())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        if revoked.rows_affected() != 1 {
            tx.rollback().await.map_err(map_error)?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO revocations (kind, value, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (kind, value) DO NOTHING",
        )
        .bind(KIND_SESSION)
        .bind(id.to_string())
        .bind(access_tokens_until.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(true)
    }

    async fn user_sessions(&self, user: UserId) -> Result<Vec<SessionDetails>, StoreError> {
        self.user_sessions_query(user).await
    }

    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        revocation: &SessionRevocation,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.revoke_user_sessions_tx(user, except, revocation).await
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn record_event(&self, event: &SecurityEvent) -> Result<(), StoreError> {
        if webhook_type(event).is_none() {
            let mut conn = self.writer.acquire().await.map_err(map_error)?;
            return insert_event(&mut conn, event).await;
        }
        // With its webhook messages: one transaction.
        let mut tx = self.begin_immediate().await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(map_error)
    }

    async fn recent_events(
        &self,
        user: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, StoreError> {
        let rows = match user {
            Some(user) => {
                sqlx::query(&format!(
                    "SELECT {EVENT_COLUMNS} FROM security_events WHERE user_id = ? \
                     ORDER BY at DESC, id DESC LIMIT ?"
                ))
                .bind(user.to_string())
                .bind(limit_to_db(limit))
                .fetch_all(&self.reader)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {EVENT_COLUMNS} FROM security_events \
                     ORDER BY at DESC, id DESC LIMIT ?"
                ))
                .bind(limit_to_db(limit))
                .fetch_all(&self.reader)
                .await
            }
        }
        .map_err(map_error)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn logged_events(
        &self,
        user: Option<UserId>,
        after: Option<EventPosition>,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        self.logged_events_query(user, after, limit).await
    }
}

#[async_trait]
impl Maintenance for SqliteStore {
    /// Fails when the database does not answer, and when the refresh lane has stopped
    /// (its thread ended or a WAL sync failed): every refresh would fail then.
    async fn ping(&self) -> Result<(), StoreError> {
        self.refresh_lane.check_running()?;
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn purge_expired(
        &self,
        now: Timestamp,
        sessions_created_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let revocations = sqlx::query("DELETE FROM revocations WHERE expires_at <= ?")
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        // Their refresh tokens go with them (ON DELETE CASCADE).
        let sessions = sqlx::query("DELETE FROM sessions WHERE created_at < ?")
            .bind(sessions_created_before.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(revocations.rows_affected() + sessions.rows_affected())
    }

    async fn count_live_sessions(
        &self,
        created_after: Timestamp,
        used_after: Timestamp,
    ) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions s JOIN refresh_tokens t \
               ON t.session_id = s.id AND t.generation = s.latest_generation \
             WHERE s.revoked_at IS NULL AND s.created_at > ? AND t.issued_at > ?",
        )
        .bind(created_after.unix_millis())
        .bind(used_after.unix_millis())
        .fetch_one(&self.reader)
        .await
        .map_err(map_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// What the `rotations_apply` trigger raises when the compare-and-set fails.
pub(crate) const ROTATION_CONFLICT: &str = "rotation_conflict";

#[cfg(test)]
mod tests {
    use latchkey_core::store::Maintenance;

    use super::*;

    #[tokio::test]
    async fn ping_fails_once_the_refresh_lane_has_stopped() {
        let dir = std::env::temp_dir().join(format!("latchkey-ping-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("ping.db").display());
        let store = SqliteStore::connect(&url, SqliteSettings::default())
            .await
            .unwrap();
        store.ping().await.unwrap();
        // The lane alone stops; the pools still answer `SELECT 1`.
        store.refresh_lane.close().await;
        let err = store.ping().await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}
