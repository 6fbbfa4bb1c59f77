//! Rotations on PostgreSQL, batched: the rotations waiting at one moment are applied by
//! one statement, one round trip and one commit (one WAL flush) for all of them, as the
//! SQLite refresh lane group-commits its batches.
//!
//! One task per store takes every rotation queued (up to [`MAX_BATCH`]), keeps the first
//! per session (a later one of the same session is answered with a conflict once the
//! batch has committed, and its caller decides again against what committed), and runs
//! [`ROTATE_BATCH`]. A rotation is answered only after the commit that holds it.
//!
//! Several replicas run batches at once. Each batch locks its sessions' rows in id order
//! before it changes anything, so two batches cannot wait on each other in a circle; a
//! deadlock or serialization failure all the same (another writer that locks sessions
//! in another order) is retried, a few times, as a whole.

use latchkey_core::store::{RotateOutcome, Rotation, StoreError};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::convert::{generation_to_db, next_generation};
use crate::error::map_error;

/// Most rotations applied by one statement.
const MAX_BATCH: usize = 256;

/// Most rotations waiting for a batch; beyond it a rotation is refused as busy (503)
/// instead of piling up behind a slow database.
const MAX_QUEUED: usize = 4096;

/// How many times a batch that lost a deadlock or a serialization check is tried.
const ATTEMPTS: usize = 3;

/// The rotations of a batch as one statement, over arrays with one element per
/// rotation (at most one per session).
///
/// `locked` takes the sessions' row locks in id order. `advanced` is each rotation's
/// compare-and-set: the session, unrevoked, moves from the presented generation to the
/// next only while the presented token is its unspent token of that generation.
/// Concurrent rotations of one family from other batches queue on the row lock, and the
/// losers find the generation moved (READ COMMITTED re-checks the row). `spent` and
/// `issued` spend the presented tokens and store the successors of the sessions that
/// advanced. The answer is the ids of the sessions rotated; should a session have moved
/// without its token being spent, the statement fails on a cast naming
/// `rotation_conflict` and backs out whole.
const ROTATE_BATCH: &str = "\
WITH input AS ( \
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bytea[], $4::bytea[], \
                         $5::bigint[], $6::text[]) \
        AS i(session_id, generation, presented, successor, rotated_at, client_ip) \
), locked AS ( \
    SELECT s.id FROM sessions s WHERE s.id IN (SELECT session_id FROM input) \
    ORDER BY s.id FOR UPDATE \
), advanced AS ( \
    UPDATE sessions s \
    SET latest_generation = i.generation + 1, last_ip = COALESCE(i.client_ip, s.last_ip) \
    FROM input i \
    WHERE s.id = i.session_id AND s.id IN (SELECT id FROM locked) \
      AND s.latest_generation = i.generation AND s.revoked_at IS NULL \
      AND EXISTS (SELECT 1 FROM refresh_tokens t \
                  WHERE t.hash = i.presented AND t.session_id = i.session_id \
                    AND t.generation = i.generation AND t.spent_at IS NULL) \
    RETURNING s.id \
), spent AS ( \
    UPDATE refresh_tokens t SET spent_at = i.rotated_at \
    FROM input i \
    WHERE i.session_id IN (SELECT id FROM advanced) \
      AND t.hash = i.presented AND t.session_id = i.session_id \
      AND t.generation = i.generation AND t.spent_at IS NULL \
    RETURNING t.session_id \
), issued AS ( \
    INSERT INTO refresh_tokens (hash, session_id, generation, issued_at, spent_at) \
    SELECT i.successor, i.session_id, i.generation + 1, i.rotated_at, NULL \
    FROM input i WHERE i.session_id IN (SELECT session_id FROM spent) \
    RETURNING session_id \
) \
SELECT COALESCE(array_agg(session_id), '{}') AS rotated, \
       CASE WHEN count(*) = (SELECT count(*) FROM advanced) THEN 0 \
            ELSE ('rotation_conflict ' || (SELECT count(*) FROM advanced))::int END AS checked \
FROM issued";

/// A rotation waiting for its batch, and where its outcome goes.
type Queued = (Rotation, oneshot::Sender<Result<RotateOutcome, StoreError>>);

/// The handle through which the store queues rotations. The batching task ends when
/// the last handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct RotationBatcher {
    queue: mpsc::Sender<Queued>,
}

impl RotationBatcher {
    /// Start the batching task on `pool`. Must be called inside a Tokio runtime.
    pub(super) fn start(pool: PgPool) -> Self {
        let (queue, requests) = mpsc::channel(MAX_QUEUED);
        tokio::spawn(serve(pool, requests));
        Self { queue }
    }

    /// Apply `rotation` in the next batch; answers once that batch has committed.
    pub(super) async fn rotate(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send((rotation.clone(), reply))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                mpsc::error::TrySendError::Closed(_) => stopped(),
            })?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the PostgreSQL rotation batcher has stopped".to_owned())
}

/// The batching task: take what is queued, apply it, answer, until every handle is gone.
async fn serve(pool: PgPool, mut requests: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (first_per_session, repeats) = split_repeats(std::mem::take(&mut batch));
        let outcomes = apply(&pool, &first_per_session).await;
        for ((_, reply), outcome) in first_per_session.into_iter().zip(outcomes) {
            // A caller that went away (request cancelled) needs no answer.
            let _ = reply.send(outcome);
        }
        for (_, reply) in repeats {
            let _ = reply.send(Ok(RotateOutcome::Conflict));
        }
    }
}

/// The first rotation of each session, in queue order, and the later ones.
fn split_repeats(batch: Vec<Queued>) -> (Vec<Queued>, Vec<Queued>) {
    let mut seen = std::collections::HashSet::with_capacity(batch.len());
    batch
        .into_iter()
        .partition(|(rotation, _)| seen.insert(rotation.session_id))
}

/// Apply one batch (one rotation per session); one outcome per rotation, in order.
async fn apply(pool: &PgPool, batch: &[Queued]) -> Vec<Result<RotateOutcome, StoreError>> {
    let mut columns = Columns::default();
    let mut outcomes: Vec<Option<Result<RotateOutcome, StoreError>>> = Vec::new();
    for (rotation, _) in batch {
        match next_generation(rotation.presented_generation) {
            Ok(_) => {
                columns.push(rotation);
                outcomes.push(None);
            }
            Err(e) => outcomes.push(Some(Err(e))),
        }
    }
    let rotated = run(pool, &columns).await;
    let mut ids = columns.session_ids.iter();
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| {
                let Some(id) = ids.next() else {
                    return Err(StoreError::Internal("rotation batch misaligned".into()));
                };
                match &rotated {
                    Ok(rotated) if rotated.contains(id) => Ok(RotateOutcome::Rotated),
                    Ok(_) => Ok(RotateOutcome::Conflict),
                    Err(e) => Err(crate::error::copy_error(e)),
                }
            })
        })
        .collect()
}

/// Run [`ROTATE_BATCH`], retrying a lost deadlock or serialization check.
async fn run(pool: &PgPool, columns: &Columns) -> Result<Vec<Uuid>, StoreError> {
    if columns.session_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = sqlx::query_as::<_, (Vec<Uuid>, i32)>(ROTATE_BATCH)
            .bind(&columns.session_ids)
            .bind(&columns.generations)
            .bind(&columns.presented)
            .bind(&columns.successors)
            .bind(&columns.rotated_at)
            .bind(&columns.client_ips)
            .fetch_one(pool)
            .await;
        match result {
            Ok((rotated, _)) => return Ok(rotated),
            Err(e) if attempt < ATTEMPTS && lost_a_race(&e) => continue,
            Err(e) => return Err(map_error(e)),
        }
    }
}

/// A deadlock (`40P01`) or serialization failure (`40001`): worth trying again.
fn lost_a_race(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// The statement's array parameters, one element per rotation.
#[derive(Default)]
struct Columns {
    session_ids: Vec<Uuid>,
    generations: Vec<i64>,
    presented: Vec<Vec<u8>>,
    successors: Vec<Vec<u8>>,
    rotated_at: Vec<i64>,
    client_ips: Vec<Option<String>>,
}

impl Columns {
    fn push(&mut self, rotation: &Rotation) {
        self.session_ids.push(rotation.session_id.as_uuid());
        self.generations
            .push(generation_to_db(rotation.presented_generation));
        self.presented.push(rotation.presented.as_bytes().to_vec());
        self.successors.push(rotation.successor.as_bytes().to_vec());
        self.rotated_at.push(rotation.now.unix_millis());
        self.client_ips.push(rotation.client_ip.clone());
    }
}
