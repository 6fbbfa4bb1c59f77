//! Rotations on PostgreSQL, batched: the rotations waiting at one moment are applied by
//! one statement, one round trip and one commit (one WAL flush) for all of them, as the
//! SQLite refresh lane group-commits its batches.
//!
//! A [`BatchQueue`] hands the rotations waiting to [`apply`], which keeps the first per
//! session (a later one of the same session is answered with a conflict once the batch
//! has committed, and its caller decides again against what committed) and runs
//! [`ROTATE_BATCH`]. A rotation is answered only after the commit that holds it.
//!
//! Several replicas run batches at once. Each batch locks its sessions' rows in id order
//! before it changes anything, so two batches cannot wait on each other in a circle; a
//! deadlock or serialization failure all the same (another writer that locks sessions
//! in another order) is retried, a few times, as a whole.

use std::collections::HashSet;

use latchkey_core::store::{RotateOutcome, Rotation, StoreError};
use sqlx::PgPool;
use uuid::Uuid;

use super::batch_queue::BatchQueue;
use crate::convert::{generation_to_db, next_generation};
use crate::error::{copy_error, lost_a_race, map_error};

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

/// The queue through which the store applies rotations.
pub(super) type RotationBatcher = BatchQueue<Rotation, RotateOutcome>;

/// Start the rotation batches on `pool` (inside a Tokio runtime).
pub(super) fn start(pool: PgPool) -> RotationBatcher {
    // One batch at a time: a rotation of a session another batch in flight holds would
    // wait for that batch's row lock; in sequence it is simply in the next batch.
    BatchQueue::start("rotation", 1, move |rotations| {
        let pool = pool.clone();
        async move { apply(&pool, &rotations).await }
    })
}

/// Apply one batch; one outcome per rotation, in order.
async fn apply(pool: &PgPool, rotations: &[Rotation]) -> Vec<Result<RotateOutcome, StoreError>> {
    let mut sessions = HashSet::with_capacity(rotations.len());
    let mut columns = Columns::default();
    // Whether each rotation goes into the statement: the first of its session, with a
    // successor generation that fits.
    let applied: Vec<Result<bool, StoreError>> = rotations
        .iter()
        .map(|rotation| {
            next_generation(rotation.presented_generation)?;
            let first = sessions.insert(rotation.session_id);
            if first {
                columns.push(rotation);
            }
            Ok(first)
        })
        .collect();
    let rotated = run(pool, &columns).await;
    rotations
        .iter()
        .zip(applied)
        .map(|(rotation, applied)| match (applied?, &rotated) {
            (false, _) => Ok(RotateOutcome::Conflict),
            (true, Ok(rotated)) if rotated.contains(&rotation.session_id.as_uuid()) => {
                Ok(RotateOutcome::Rotated)
            }
            (true, Ok(_)) => Ok(RotateOutcome::Conflict),
            (true, Err(e)) => Err(copy_error(e)),
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
