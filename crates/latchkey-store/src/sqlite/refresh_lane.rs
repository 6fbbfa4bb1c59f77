//! The refresh path of the SQLite backend, on a thread of its own.
//!
//! A refresh reads the presented token's state, then rotates it. Both requests go to one
//! thread that owns one SQLite connection (rusqlite, prepared statements cached). The
//! thread takes every request waiting, answers the reads at once, then applies all the
//! waiting rotations in one `BEGIN IMMEDIATE` transaction (group commit).
//!
//! Durability: at `synchronous=FULL` (the default) a rotation is answered only after the
//! WAL holding it has been synced. The lane commits at `NORMAL` (no sync) and hands the
//! batch's answers to a second thread, which syncs the WAL file and then answers; the
//! lane meanwhile serves the next reads and batch. So the sync no longer stalls the
//! refresh path, and a sync covers every batch committed before it. What this allows:
//! another request can read a rotation before it is durable (a concurrent refresh of
//! the same token then gets the grace-window replay, or reuse detection). If power is
//! lost before the sync, that rotation is undone and its successor is unknown: its
//! holder must log in again. Nothing is ever accepted that was not issued. A failed sync
//! stops the lane: every later refresh is refused as unavailable until restart.
//!
//! Why a thread and not the sqlx pools: each sqlx statement is a round trip to a worker
//! thread, so a batch of `n` rotations cost `n + 2` hops and every read another one; here
//! each request is one hop. And the page cache stays warm: in WAL mode a connection
//! keeps its cache across its own commits but drops it when another connection commits,
//! so a separate reader re-read its B-tree paths after every batch.
//!
//! The queue is bounded ([`MAX_QUEUED`] requests waiting): beyond it a request is refused
//! at once with [`StoreError::Busy`] (503 `overloaded`) instead of piling up behind a
//! slow disk or a held write lock. Whether the lane still runs (its thread alive, no
//! failed sync) is part of the store's `ping`, so `/readyz` reports a stopped lane.
//!
//! The lane's connection is a second writer next to the sqlx writer (everything that is
//! not a refresh). SQLite's write lock serializes the two, as it serializes processes
//! sharing the file: each takes it with `BEGIN IMMEDIATE` and waits `busy_timeout`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use latchkey_core::mfa::AuthMethods;
use latchkey_core::model::{RefreshState, RefreshTokenRecord, Session};
use latchkey_core::refresh::RefreshTokenLookup;
use latchkey_core::store::{RotateOutcome, Rotation, StoreError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use tokio::sync::oneshot;

use super::{SqliteSynchronous, ROTATION_CONFLICT};
use crate::convert::{
    generation_from_db, generation_to_db, next_generation, opt_ts, roles_from_db,
    session_id_from_text, ts, user_id_from_text,
};
use crate::error::{copy_error, map_rusqlite_error};

/// Most requests taken from the queue before the batch's rotations are committed.
const MAX_BATCH: usize = 128;

/// Most requests waiting in the lane's queue; more are refused with [`StoreError::Busy`].
/// Enough for thousands of concurrent refreshes (the lane serves one batch of up to
/// [`MAX_BATCH`] per commit), small enough that a stalled disk cannot hold unbounded
/// memory and callers hear "busy" instead of timing out.
pub(super) const MAX_QUEUED: usize = 4096;

/// Page cache of the lane's connection, in KiB: enough for the upper levels of the
/// B-trees a refresh descends on a store of a million sessions. Pages are allocated as
/// they are first read, so a small store never uses it all.
const CACHE_KIB: i64 = 16 * 1024;

/// The token's row, its successor's issue time (when it was spent: migration 0002), its
/// session and the user's roles; the columns of [`StateColumns`].
macro_rules! select_state {
    () => {
        "SELECT t.generation, t.issued_at, successor.issued_at, \
                s.id, s.user_id, s.created_at, s.latest_generation, s.revoked_at, u.roles, \
                s.auth_methods, \
                u.email_verified_at IS NOT NULL \
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
              JOIN users u ON u.id = s.user_id \
              LEFT JOIN refresh_tokens successor \
                   ON successor.session_id = t.session_id \
                  AND successor.generation = t.generation + 1 "
    };
}

/// A token with a locator is found at its place, and only with its hash.
const STATE_AT_LOCATOR: &str = concat!(
    select_state!(),
    "WHERE t.session_id = ?1 AND t.generation = ?2 AND t.hash = ?3"
);

/// A token from before locators is found through the legacy hash index (migration 0003).
const STATE_BY_LEGACY_HASH: &str = concat!(select_state!(), "WHERE t.hash = ?1 AND t.legacy = 1");

/// One rotation as one statement: the `rotations` view's trigger (migrations 0002, 0003,
/// 0004) checks the compare-and-set and applies it, or raises [`ROTATION_CONFLICT`].
const INSERT_ROTATION: &str = "INSERT INTO rotations (session_id, presented_hash, \
     presented_generation, successor_hash, successor_generation, rotated_at, client_ip) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// The handle through which the store sends the lane its requests. Dropping the last
/// handle (or [`RefreshLane::close`]) stops the thread once the queue is empty.
#[derive(Debug, Clone)]
pub(super) struct RefreshLane {
    requests: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

/// What the handles, the lane thread and the sync thread share.
#[derive(Debug)]
struct Shared {
    /// Requests sent and not yet taken by the lane (counted in [`RefreshLane::send`],
    /// uncounted as the lane takes them).
    queued: AtomicUsize,
    /// Most requests waiting; more are refused.
    limit: usize,
    /// The lane thread has ended (closed, or every handle gone, or a panic).
    stopped: AtomicBool,
    /// A WAL sync failed: nothing more may be served (see the module documentation).
    sync_failed: AtomicBool,
}

/// Marks the lane stopped when the lane thread ends, however it ends.
struct StopOnExit(Arc<Shared>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
    }
}

/// What the lane thread is asked to do.
enum Request {
    /// Read a presented token's state.
    State {
        lookup: RefreshTokenLookup,
        reply: oneshot::Sender<Result<Option<RefreshState>, StoreError>>,
    },
    /// Apply a rotation in the next group commit.
    Rotate {
        rotation: Rotation,
        reply: oneshot::Sender<Result<RotateOutcome, StoreError>>,
    },
    /// Commit what is queued before this, then stop.
    Close { done: oneshot::Sender<()> },
}

impl RefreshLane {
    /// Open a connection to the database file at `path` (which must exist, in WAL mode)
    /// and start the lane's thread on it.
    pub(super) fn start(
        path: &Path,
        busy_timeout: Duration,
        synchronous: SqliteSynchronous,
    ) -> Result<Self, StoreError> {
        Self::start_with_limit(path, busy_timeout, synchronous, MAX_QUEUED)
    }

    /// [`RefreshLane::start`] with at most `limit` requests waiting.
    fn start_with_limit(
        path: &Path,
        busy_timeout: Duration,
        synchronous: SqliteSynchronous,
        limit: usize,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            limit,
            stopped: AtomicBool::new(false),
            sync_failed: AtomicBool::new(false),
        });
        let conn = open(path, busy_timeout)?;
        let answers = match synchronous {
            SqliteSynchronous::Normal => Answers::AtCommit,
            SqliteSynchronous::Full => Answers::after_sync(&wal_path(path), Arc::clone(&shared))?,
        };
        let (requests, queue) = mpsc::channel();
        let exit = StopOnExit(Arc::clone(&shared));
        spawn("latchkey-sqlite-refresh", move || {
            let exit = exit;
            serve(conn, answers, &queue, &exit.0);
        })?;
        Ok(Self { requests, shared })
    }

    /// `Ok` while the lane serves; [`StoreError::Unavailable`] once its thread has
    /// ended or a WAL sync has failed (every refresh is then refused until restart).
    pub(super) fn check_running(&self) -> Result<(), StoreError> {
        if self.shared.stopped.load(Ordering::Acquire) {
            Err(stopped())
        } else if self.shared.sync_failed.load(Ordering::Acquire) {
            Err(sync_failed())
        } else {
            Ok(())
        }
    }

    /// The state of the token `lookup` finds, as of the last committed batch.
    pub(super) async fn refresh_state(
        &self,
        lookup: &RefreshTokenLookup,
    ) -> Result<Option<RefreshState>, StoreError> {
        let lookup = lookup.clone();
        self.ask(|reply| Request::State { lookup, reply }).await
    }

    /// Apply `rotation` in the next group commit; answers once the commit is durable (at
    /// `synchronous=FULL`, after the WAL sync that covers it).
    pub(super) async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let rotation = rotation.clone();
        self.ask(|reply| Request::Rotate { rotation, reply }).await
    }

    /// Send the request `make` builds around a reply channel, and wait for the answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply))?;
        answer.await.map_err(|_| stopped())?
    }

    /// Commit the rotations already queued and stop the thread (closing its connection).
    /// Later requests fail with [`StoreError::Unavailable`].
    pub(super) async fn close(&self) {
        let (done, stopped) = oneshot::channel();
        // Counted (the lane uncounts whatever it takes) but never refused for a full queue.
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        if self.requests.send(Request::Close { done }).is_ok() {
            // An error means the thread has already gone, which is what was asked.
            let _ = stopped.await;
        } else {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
        self.shared.stopped.store(true, Ordering::Release);
    }

    /// Queue a read or a rotation, unless [`Shared::limit`] requests are waiting already.
    fn send(&self, request: Request) -> Result<(), StoreError> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(stopped());
        }
        let waiting = self.shared.queued.fetch_add(1, Ordering::AcqRel);
        if waiting >= self.shared.limit {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(StoreError::Busy);
        }
        self.requests.send(request).map_err(|_| {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            stopped()
        })
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the SQLite refresh lane has stopped".to_owned())
}

fn sync_failed() -> StoreError {
    StoreError::Unavailable(
        "syncing the SQLite WAL failed; refreshes are refused until restart".to_owned(),
    )
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
        .map_err(|e| StoreError::Internal(format!("cannot start thread {name}: {e}")))
}

/// The WAL file SQLite keeps next to the database file while any connection is open.
fn wal_path(database: &Path) -> PathBuf {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// A rotation's caller and its outcome, to be sent once the batch is durable.
type Answer = (
    oneshot::Sender<Result<RotateOutcome, StoreError>>,
    Result<RotateOutcome, StoreError>,
);

/// When a committed batch's callers hear of their outcomes.
enum Answers {
    /// At once (`synchronous=NORMAL`: no sync is promised).
    AtCommit,
    /// After the sync thread has synced the WAL (`synchronous=FULL`).
    AfterSync {
        batches: mpsc::Sender<Vec<Answer>>,
        syncer: JoinHandle<()>,
        shared: Arc<Shared>,
    },
}

impl Answers {
    fn after_sync(wal: &Path, shared: Arc<Shared>) -> Result<Self, StoreError> {
        // Any descriptor of the file syncs it. It exists: the lane's connection is open
        // in WAL mode, and SQLite removes it only when the last connection closes.
        let wal = File::open(wal).map_err(|e| {
            StoreError::Unavailable(format!("cannot open the SQLite WAL file: {}", e.kind()))
        })?;
        let (batches, queue) = mpsc::channel();
        let syncer = {
            let shared = Arc::clone(&shared);
            spawn("latchkey-sqlite-sync", move || {
                sync_then_answer(&wal, &queue, &shared.sync_failed)
            })?
        };
        Ok(Self::AfterSync {
            batches,
            syncer,
            shared,
        })
    }

    /// Whether a sync has failed: nothing more may be served.
    fn failed(&self) -> bool {
        match self {
            Self::AtCommit => false,
            Self::AfterSync { shared, .. } => shared.sync_failed.load(Ordering::Acquire),
        }
    }

    fn send(&self, answers: Vec<Answer>) {
        match self {
            Self::AtCommit => answer_all(answers),
            Self::AfterSync { batches, .. } => {
                if let Err(mpsc::SendError(answers)) = batches.send(answers) {
                    // The sync thread is gone, so these cannot be made durable.
                    for (reply, _) in answers {
                        let _ = reply.send(Err(sync_failed()));
                    }
                }
            }
        }
    }

    /// Answer everything handed over so far, then stop the sync thread.
    fn finish(self) {
        if let Self::AfterSync {
            batches, syncer, ..
        } = self
        {
            drop(batches);
            // A panicked sync thread has dropped its callers' answers: they hear "stopped".
            let _ = syncer.join();
        }
    }
}

fn answer_all(answers: Vec<Answer>) {
    for (reply, outcome) in answers {
        // A caller that went away (request cancelled) needs no answer.
        let _ = reply.send(outcome);
    }
}

/// The sync thread: take every committed batch waiting, sync the WAL once, answer them.
fn sync_then_answer(wal: &File, queue: &mpsc::Receiver<Vec<Answer>>, failed: &AtomicBool) {
    while let Ok(mut answers) = queue.recv() {
        while let Ok(more) = queue.try_recv() {
            answers.extend(more);
        }
        if failed.load(Ordering::Acquire) {
            answers.into_iter().for_each(|(reply, _)| {
                let _ = reply.send(Err(sync_failed()));
            });
            continue;
        }
        match wal.sync_all() {
            Ok(()) => answer_all(answers),
            Err(e) => {
                // After a failed sync the kernel may have dropped the pages: what was
                // committed may be lost, and a later sync would not say so. Fail closed.
                failed.store(true, Ordering::Release);
                tracing::error!(error = %e, "syncing the SQLite WAL failed; refusing refreshes until restart");
                answers.into_iter().for_each(|(reply, _)| {
                    let _ = reply.send(Err(sync_failed()));
                });
            }
        }
    }
}

/// The lane's connection. It commits at `synchronous=NORMAL` whatever the setting:
/// at `FULL` the sync thread syncs instead (see the module documentation).
fn open(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    // The thread owns the connection, so SQLite's per-connection mutex is not needed.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(map_rusqlite_error)?;
    let mode = (|| {
        conn.busy_timeout(busy_timeout)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        conn.pragma_query_value(None, "journal_mode", |row| row.get::<_, String>(0))
    })()
    .map_err(map_rusqlite_error)?;
    // The sqlx writer switched the file to WAL before the lane opened it. Checked, because
    // readers answering between commits and the one sync per batch both depend on it.
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!(
            "the SQLite refresh lane expected WAL mode, found {mode}"
        )));
    }
    Ok(conn)
}

/// The lane thread: serve batches until closed or every handle is gone.
fn serve(mut conn: Connection, answers: Answers, queue: &mpsc::Receiver<Request>, shared: &Shared) {
    let mut rotations = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = queue.recv() {
        let mut close = None;
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(request) = next.take() {
            shared.queued.fetch_sub(1, Ordering::AcqRel);
            taken += 1;
            match request {
                Request::State { lookup, reply } => {
                    let state = if answers.failed() {
                        Err(sync_failed())
                    } else {
                        read_state(&conn, &lookup)
                    };
                    // A caller that went away (request cancelled) needs no answer.
                    let _ = reply.send(state);
                }
                Request::Rotate { rotation, reply } => rotations.push((rotation, reply)),
                Request::Close { done } => {
                    close = Some(done);
                    break;
                }
            }
            if taken < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if answers.failed() {
            for (_, reply) in rotations.drain(..) {
                let _ = reply.send(Err(sync_failed()));
            }
        } else if !rotations.is_empty() {
            let outcomes = commit_rotations(&mut conn, rotations.iter().map(|(r, _)| r));
            let batch = rotations.drain(..).map(|(_, reply)| reply).zip(outcomes);
            answers.send(batch.collect());
        }
        if let Some(done) = close {
            answers.finish();
            drop(conn);
            let _ = done.send(());
            return;
        }
    }
    answers.finish();
}

/// Apply the rotations in one transaction. A conflict fails its own statement and
/// changes nothing, so the others are unaffected; a failed `BEGIN` or `COMMIT` fails
/// them all (and nothing of them is stored).
fn commit_rotations<'r>(
    conn: &mut Connection,
    rotations: impl ExactSizeIterator<Item = &'r Rotation>,
) -> Vec<Result<RotateOutcome, StoreError>> {
    let count = rotations.len();
    let all_failed = |error: rusqlite::Error| {
        let error = map_rusqlite_error(error);
        (0..count).map(|_| Err(copy_error(&error))).collect()
    };
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return all_failed(e),
    };
    let outcomes = rotations
        .map(|rotation| apply_rotation(&tx, rotation))
        .collect();
    match tx.commit() {
        Ok(()) => outcomes,
        Err(e) => all_failed(e),
    }
}

fn apply_rotation(conn: &Connection, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
    let successor_generation = next_generation(rotation.presented_generation)?;
    let applied = conn.prepare_cached(INSERT_ROTATION).and_then(|mut insert| {
        insert.execute(params![
            rotation.session_id.to_string(),
            rotation.presented.as_bytes().as_slice(),
            generation_to_db(rotation.presented_generation),
            rotation.successor.as_bytes().as_slice(),
            generation_to_db(successor_generation),
            rotation.now.unix_millis(),
            rotation.client_ip.as_deref(),
        ])
    });
    match applied {
        Ok(_) => Ok(RotateOutcome::Rotated),
        Err(rusqlite::Error::SqliteFailure(_, Some(message))) if message == ROTATION_CONFLICT => {
            Ok(RotateOutcome::Conflict)
        }
        Err(e) => Err(map_rusqlite_error(e)),
    }
}

fn read_state(
    conn: &Connection,
    lookup: &RefreshTokenLookup,
) -> Result<Option<RefreshState>, StoreError> {
    let hash = lookup.hash.as_bytes().as_slice();
    let found = match lookup.locator {
        Some(at) => conn
            .prepare_cached(STATE_AT_LOCATOR)
            .and_then(|mut select| {
                select
                    .query_row(
                        params![
                            at.session_id.to_string(),
                            generation_to_db(at.generation),
                            hash
                        ],
                        StateColumns::read,
                    )
                    .optional()
            }),
        None => conn
            .prepare_cached(STATE_BY_LEGACY_HASH)
            .and_then(|mut select| {
                select
                    .query_row(params![hash], StateColumns::read)
                    .optional()
            }),
    }
    .map_err(map_rusqlite_error)?;
    found.map(|columns| columns.into_state(lookup)).transpose()
}

/// The columns of `select_state!`, as read; checked and converted by
/// [`StateColumns::into_state`] outside rusqlite's row callback.
struct StateColumns {
    generation: i64,
    issued_at: i64,
    spent_at: Option<i64>,
    session_id: String,
    user_id: String,
    created_at: i64,
    latest_generation: i64,
    revoked_at: Option<i64>,
    roles: String,
    auth_methods: Option<String>,
    email_verified: bool,
}

impl StateColumns {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            generation: row.get(0)?,
            issued_at: row.get(1)?,
            spent_at: row.get(2)?,
            session_id: row.get(3)?,
            user_id: row.get(4)?,
            created_at: row.get(5)?,
            latest_generation: row.get(6)?,
            revoked_at: row.get(7)?,
            roles: row.get(8)?,
            auth_methods: row.get(9)?,
            email_verified: row.get(10)?,
        })
    }

    fn into_state(self, lookup: &RefreshTokenLookup) -> Result<RefreshState, StoreError> {
        let session = Session {
            id: session_id_from_text(&self.session_id)?,
            user_id: user_id_from_text(&self.user_id)?,
            created_at: ts(self.created_at),
            latest_generation: generation_from_db(self.latest_generation)?,
            revoked_at: opt_ts(self.revoked_at),
        };
        Ok(RefreshState {
            token: RefreshTokenRecord {
                hash: lookup.hash.clone(),
                session_id: session.id,
                generation: generation_from_db(self.generation)?,
                issued_at: ts(self.issued_at),
                spent_at: opt_ts(self.spent_at),
            },
            session,
            roles: roles_from_db(&self.roles)?,
            auth_methods: AuthMethods::from_db(self.auth_methods.as_deref()),
            email_verified: self.email_verified,
        })
    }
}

#[cfg(test)]
mod tests {
    use latchkey_core::model::SessionId;
    use latchkey_core::refresh::RefreshTokenHash;
    use latchkey_core::time::Timestamp;

    use super::*;

    /// A fresh database file in WAL mode, in its own directory (removed by the caller).
    fn wal_database() -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("latchkey-lane-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lane.db");
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        (dir, path)
    }

    fn rotation() -> Rotation {
        Rotation {
            session_id: SessionId::generate(),
            presented: RefreshTokenHash::from_bytes([1; 32]),
            presented_generation: 0,
            successor: RefreshTokenHash::from_bytes([2; 32]),
            now: Timestamp::from_unix_millis(1),
            client_ip: None,
        }
    }

    fn read(lane: &RefreshLane) -> Result<oneshot::Receiver<ReadAnswer>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let lookup = RefreshTokenLookup {
            locator: None,
            hash: RefreshTokenHash::from_bytes([3; 32]),
        };
        lane.send(Request::State { lookup, reply })?;
        Ok(answer)
    }

    type ReadAnswer = Result<Option<RefreshState>, StoreError>;

    #[test]
    fn a_full_queue_refuses_at_once_with_busy() {
        // A lane whose queue nobody serves: the bound alone decides.
        let (requests, _queue) = mpsc::channel();
        let lane = RefreshLane {
            requests,
            shared: Arc::new(Shared {
                queued: AtomicUsize::new(0),
                limit: 2,
                stopped: AtomicBool::new(false),
                sync_failed: AtomicBool::new(false),
            }),
        };
        let _first = read(&lane).unwrap();
        let _second = read(&lane).unwrap();
        assert!(matches!(read(&lane), Err(StoreError::Busy)));
        assert_eq!(lane.shared.queued.load(Ordering::Acquire), 2);
    }

    #[tokio::test]
    async fn requests_beyond_the_bound_are_busy_while_the_lane_waits_and_served_after() {
        let (dir, path) = wal_database();
        let limit = 4;
        let lane = RefreshLane::start_with_limit(
            &path,
            Duration::from_secs(60),
            SqliteSynchronous::Normal,
            limit,
        )
        .unwrap();
        // Another connection holds the write lock, so the lane's first commit waits.
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (reply, first) = oneshot::channel();
        lane.send(Request::Rotate {
            rotation: rotation(),
            reply,
        })
        .unwrap();
        while lane.shared.queued.load(Ordering::Acquire) != 0 {
            tokio::task::yield_now().await;
        }
        // The lane took the rotation; it takes at most a batch more before it commits.
        let mut accepted = Vec::new();
        let mut busy = 0;
        for _ in 0..limit + MAX_BATCH {
            match read(&lane) {
                Ok(answer) => accepted.push(answer),
                Err(StoreError::Busy) => busy += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(busy > 0, "a full queue refuses");
        assert!(lane.check_running().is_ok(), "a busy lane still runs");
        blocker.execute_batch("COMMIT").unwrap();
        // Everything accepted is answered (the database has no tables: errors, but answers).
        assert!(first.await.is_ok());
        for answer in accepted {
            assert!(answer.await.is_ok());
        }
        assert_eq!(lane.shared.queued.load(Ordering::Acquire), 0);
        assert!(read(&lane).unwrap().await.is_ok(), "room again");
        lane.close().await;
        drop(blocker);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_stopped_lane_says_so() {
        let (dir, path) = wal_database();
        let lane =
            RefreshLane::start(&path, Duration::from_secs(5), SqliteSynchronous::Full).unwrap();
        assert!(lane.check_running().is_ok());
        lane.close().await;
        assert!(matches!(
            lane.check_running(),
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            read(&lane).map(|_| ()),
            Err(StoreError::Unavailable(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_failed_sync_counts_as_stopped() {
        let (dir, path) = wal_database();
        let lane =
            RefreshLane::start(&path, Duration::from_secs(5), SqliteSynchronous::Full).unwrap();
        // What `sync_then_answer` records when `fsync` fails.
        lane.shared.sync_failed.store(true, Ordering::Release);
        assert!(matches!(
            lane.check_running(),
            Err(StoreError::Unavailable(_))
        ));
        lane.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}
